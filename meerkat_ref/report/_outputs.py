"""Where reports go: a path is checked before a long run, and written after it.

Why check first: ``check`` may search for minutes; finding out at the end
that ``--junit-xml`` names a directory, or that ``--html`` sits under a
regular file, loses the run.  So each command asks ``output_problem``
before it starts and refuses a bad path with one line (exit 2).

The check does not create anything (a clean run must not leave an empty
``counterexamples/`` behind): the path, or else its nearest existing
ancestor, must be a directory we may write in; a file path must not be a
directory.  ``os.access`` is only a hint when running as root, so the
writers still turn an ``OSError`` into ``OutputError`` with the same kind
of one-line message.
"""

from __future__ import annotations

import os
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
    if target.exists():
        if directory and not target.is_dir():
            return "exists and is not a directory"
        if not directory and target.is_dir():
            return "is a directory"
        writable = target if directory else target.parent
        if not os.access(writable, os.W_OK | os.X_OK):
            return f"{writable} is not writable"
        return None
    ancestor = _nearest(target.parent if not directory else target)
    if not ancestor.is_dir():
        return f"cannot be made: {ancestor} is not a directory"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return f"cannot be made: {ancestor} is not writable"
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
