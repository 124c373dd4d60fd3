"""One owner per store file ([STORE-OWNER]), and the constructor's argument checks.

The owner lock is an ``flock`` on ``<db>.lock``: a second opener, in this
process or another, is refused with ``SESSION_STORE_ERROR`` naming the file
and the holder's pid; closing releases it, and so does the owner's death
(``SIGKILL`` included).  The other-process tests start real processes.
"""

from __future__ import annotations

import gc
import math
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import trio

from meerkat_ref._errors import SessionStoreError
from meerkat_ref._types import InvalidArgument, Session, SessionId
from meerkat_ref.store import SqliteStore
from meerkat_ref.store._owner import lock_path_for

ROOT = Path(__file__).resolve().parents[1]

_HOLDER = textwrap.dedent(
    """
    import sys, trio
    from meerkat_ref.store import SqliteStore

    async def main(path):
        async with SqliteStore(path) as store:
            print("ready", flush=True)
            await trio.sleep_forever()  # until killed

    trio.run(main, sys.argv[1])
    """
)


def start_holder(path: Path) -> subprocess.Popen[str]:
    """A process that opens the store at ``path`` and holds it until killed."""
    child = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    if line.strip() != "ready":
        child.kill()
        _, errors = child.communicate()
        pytest.fail(f"holder did not start: {line!r} {errors}")
    return child


def stop(child: subprocess.Popen[str], sig: int = signal.SIGKILL) -> None:
    if child.poll() is None:
        child.send_signal(sig)
    child.communicate()


def test_a_second_store_in_this_process_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"

    async def main() -> None:
        async with SqliteStore(path):
            with pytest.raises(SessionStoreError) as info:
                SqliteStore(path)
            error = info.value
            assert error.code == "SESSION_STORE_ERROR"
            assert str(path) in error.message
            assert f"this process (pid {os.getpid()})" in error.message
            # Another spelling of the same file meets the same lock.
            with pytest.raises(SessionStoreError, match="in use"):
                SqliteStore(tmp_path / "." / "s.db")
        async with SqliteStore(path) as again:  # closed: free again
            assert await again.list() == []

    trio.run(main)


def test_another_process_holding_the_store_is_named(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    holder = start_holder(path)
    try:
        with pytest.raises(SessionStoreError) as info:
            SqliteStore(path)
        assert f"process {holder.pid}" in info.value.message
        assert str(path) in info.value.message
        assert lock_path_for(str(path)) in info.value.message
    finally:
        stop(holder, signal.SIGTERM)


def test_a_killed_owner_leaves_the_store_free(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    holder = start_holder(path)
    stop(holder, signal.SIGKILL)
    assert holder.returncode == -signal.SIGKILL

    async def main() -> None:
        async with SqliteStore(path) as store:  # no stale lock to clean up
            await store.save(Session(id=SessionId.from_int(1), created_at=0, updated_at=0))
            assert await store.exists(SessionId.from_int(1))

    trio.run(main)
    # The lock file stays (deleting it could let two owners in); it names no one now.
    assert Path(lock_path_for(str(path))).read_text() == ""


def test_a_refused_open_holds_nothing(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    path.write_bytes(b"")  # refused: an empty file is not a new store
    with pytest.raises(SessionStoreError, match="empty"):
        SqliteStore(path)
    path.unlink()
    trio.run(SqliteStore(path).aclose)  # the lock was released by the refusal


def test_a_store_dropped_without_closing_frees_its_file(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = SqliteStore(path)
    trio.run(store.save, Session(id=SessionId.from_int(1), created_at=0, updated_at=0))
    del store
    gc.collect()

    async def main() -> None:
        async with SqliteStore(path) as again:  # not "in use by this process"
            assert await again.exists(SessionId.from_int(1))

    trio.run(main)


@pytest.mark.parametrize("bad", ["", ":memory:", "file:x.db?mode=memory", "a\x00b"])
def test_paths_that_are_not_a_file_are_invalid(bad: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        SqliteStore(bad)
    assert info.value.code == "INVALID_ARGUMENT"


def test_non_path_objects_are_invalid() -> None:
    with pytest.raises(InvalidArgument):
        SqliteStore(42)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        SqliteStore(b"s.db")  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [-1, -0.001, math.nan, math.inf, True, "5", None, 10**12])
def test_bad_busy_timeouts_are_invalid(tmp_path: Path, bad: object) -> None:
    with pytest.raises(InvalidArgument, match="busy_timeout"):
        SqliteStore(tmp_path / "s.db", busy_timeout=bad)  # type: ignore[arg-type]
    assert not (tmp_path / "s.db").exists()  # refused before anything was touched


def test_good_busy_timeouts_are_accepted(tmp_path: Path) -> None:
    for n, ok in enumerate([0, 0.5, 5, 3600]):
        trio.run(SqliteStore(tmp_path / f"{n}.db", busy_timeout=ok).aclose)


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SessionStoreError, match="directory"):
        SqliteStore(tmp_path)


def test_bad_threaded_flag_is_invalid(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="threaded"):
        SqliteStore(tmp_path / "s.db", threaded="no")  # type: ignore[arg-type]
