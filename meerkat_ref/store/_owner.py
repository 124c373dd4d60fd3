"""One owner per store file: an OS lock on a side file, ``<db>.lock``.

Why: two processes (or two ``SqliteStore`` objects in one process) over one
SQLite file break [ARCHIVE-FINAL] although SQLite itself is happy: process A
holds session s live, process B archives s (deletes its row), and A's next
turn writes s back.  SQLite's own locks only order single transactions; the
promise needs one writer for the whole life of a store.

How: ``fcntl.flock(LOCK_EX | LOCK_NB)`` on ``<db>.lock`` (next to the
database, by its real path, so two spellings or a symlink of one file meet at
the same lock).  ``flock`` locks belong to an open file description, so

- a second opener in another process, or a second ``SqliteStore`` in this
  one (a new ``open``, a new description), is refused at once, never waits;
- the lock is released by ``close``, and by the kernel when the owner dies in
  any way (``SIGKILL`` included): there is no stale lock to clean up.

The owner writes its pid into the file so a refused opener can name it.  The
file itself is never deleted: removing it while another process has it open
would let a third process lock a new file of the same name, and two owners
would exist.  The lock is advisory: it binds every ``SqliteStore`` (and
anything else that takes it), not the ``sqlite3`` command line.  A child made
by ``fork`` (without ``exec``) shares the description and so the lock; the
descriptor is close-on-exec, so processes started with ``exec`` do not.
Local file systems only: ``flock`` over NFS is emulated with byte-range locks
on some systems and not at all on others.
"""

from __future__ import annotations

import contextlib
import fcntl
import os

from .._errors import SessionStoreError
from ._codec import cap

__all__ = ["OwnerLock", "lock_path_for"]

_PID_BYTES = 32  # "<pid>\n" with room to spare; a longer file is not ours to trust


def lock_path_for(path: str) -> str:
    """The lock file of the database at ``path``: ``<real path>.lock``."""
    return os.path.realpath(path) + ".lock"


def _holder(fd: int) -> str:
    """Who holds the lock, as far as the file says (it is written by the holder)."""
    try:
        text = os.pread(fd, _PID_BYTES, 0).decode("ascii", "replace").strip()
    except OSError:
        text = ""
    if text.isdigit():
        pid = int(text)
        if pid == os.getpid():
            return f"this process (pid {pid}), through another SqliteStore"
        return f"process {pid}"
    return "another process (its pid is not recorded yet)"


class OwnerLock:
    """An acquired owner lock; ``release`` gives it up (idempotent).

    Blocking, quick file I/O (open, flock, a small write): called from the
    store's constructor, never from the event loop's hot path.
    """

    def __init__(self, db_path: str) -> None:
        self.path = lock_path_for(db_path)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise SessionStoreError(
                f"cannot open session store {db_path!r}: cannot create its lock file "
                f"{self.path!r}: {cap(str(exc))}"
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise SessionStoreError(
                f"session store {db_path!r} is in use by {holder}: a store file has one "
                f"owner at a time (its lock {self.path!r} is held); close that store or "
                "stop that process first"
            ) from None
        except OSError as exc:
            os.close(fd)
            raise SessionStoreError(
                f"cannot open session store {db_path!r}: cannot lock {self.path!r}: {cap(str(exc))}"
            ) from exc
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        except OSError:
            pass  # the lock is what matters; the pid only helps a refused opener's message
        self._fd: int | None = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)  # no stale pid for the next reader of the file
        # Closing the last descriptor of the description releases the flock.
        os.close(fd)
