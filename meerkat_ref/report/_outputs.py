"""Where reports go: a path is checked before a long run, and written after it.

Why check first: ``check`` may search for minutes; finding out at the end
that ``--junit-xml`` names a directory, or that ``--html`` sits under a
regular file, loses the run.  So each command asks ``output_problem``
before it starts and refuses a bad path with one line (exit 2).

The check leaves nothing behind (a clean run must not leave an empty
``counterexamples/`` behind): the path, or else its nearest existing
ancestor, must be a directory; a file path must not be a directory; and the
directory is really written in -- made if missing, with a scratch file in
it, then all of that removed -- because ``os.access`` is only a hint (root
passes it everywhere, ``/proc`` and read-only mounts included), and a
problem found only when the results are written loses the run (issue 20).
The writers still turn an ``OSError`` into ``OutputError`` with the same
kind of one-line message.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


class OutputError(Exception):
    """A report could not be written; the message is one line, naming the path."""


def _nearest(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(".")


def output_problem(path: str, *, directory: bool) -> str | None:
    """Why ``path`` cannot receive a report (a directory, or a file), or None if it can."""
    if not path.strip():
        return "is empty"
    target = Path(path)
    folder = target if directory else target.parent
    if target.exists():
        if directory and not target.is_dir():
            return "exists and is not a directory"
        if not directory and target.is_dir():
            return "is a directory"
        if not os.access(folder, os.W_OK | os.X_OK):
            return f"{folder} is not writable"
        return _try_writing(folder, "")
    ancestor = _nearest(target.parent if not directory else target)
    if not ancestor.is_dir():
        return f"cannot be made: {ancestor} is not a directory"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return f"cannot be made: {ancestor} is not writable"
    return _try_writing(folder, "cannot be made: ")


def _try_writing(folder: Path, lead: str) -> str | None:
    """Make ``folder`` (and its missing parents) and a scratch file in it; remove them again."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    made: list[Path] = []
    try:
        for directory in reversed(missing):
            directory.mkdir()
            made.append(directory)
        fd, scratch = tempfile.mkstemp(dir=folder, prefix=".meerkat-ref-probe-")
        os.close(fd)
        os.unlink(scratch)
    except OSError as exc:
        where = Path(exc.filename) if exc.filename else folder
        return f"{lead}{where}: {exc.strerror or exc}"
    finally:
        for directory in reversed(made):
            with contextlib.suppress(OSError):
                directory.rmdir()
    return None


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path``, making its directory; ``OutputError`` if the system refuses."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None
    return target


def make_dir(path: str | Path) -> Path:
    """``path`` as a directory, made if missing; ``OutputError`` if the system refuses."""
    target = Path(path)
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot make directory {target}: {exc.strerror or exc}") from None
    return target
