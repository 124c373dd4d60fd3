"""Reading what is still readable from a damaged SQLite file.

SQLite answers a query that touches a damaged page with ``SQLITE_CORRUPT``
(or ``NOTADB``, or an I/O error for a page cut off by truncation) and gives
up on the whole query.  For a store that would make one bad page hide every
session (``list`` fails) and stop ``check`` at the first bad row.  These
functions walk around damage instead, so the store can name what is lost and
serve everything else:

- ``walk_table``: the table in rowid order, a batch at a time.  When a batch
  fails it steps row by row up to the damage, then finds where readable rows
  begin again by probing seeks (``rowid > x`` fails exactly when the first
  leaf page it lands on is unreadable): exponentially, then by bisection.
  The stretch in between is reported as skipped.
- ``index_entries``: (rowid, id) pairs from the two indexes, each an
  index-only scan, kept up to the point where one fails: this is how rows on
  an unreadable table page get their names.
- ``fetch_row``: one row by rowid (a seek can reach a healthy page that a scan
  could not get past).

All run on the store's reader connection, in its thread (or inline), one call
at a time: pure blocking functions, no Trio.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field

from ._codec import cap

__all__ = [
    "MAX_ROWID",
    "Walk",
    "fetch_row",
    "index_entries",
    "is_busy",
    "is_damage",
    "quick_check",
    "walk_table",
]

MAX_ROWID = 2**63 - 1

# Primary result codes (the low byte of the extended code) that mean "the file is damaged".
_SQLITE_IOERR = 10
_SQLITE_CORRUPT = 11
_SQLITE_FORMAT = 24
_SQLITE_NOTADB = 26
_DAMAGE_CODES = frozenset({_SQLITE_IOERR, _SQLITE_CORRUPT, _SQLITE_FORMAT, _SQLITE_NOTADB})
_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6

INDEXES = ("sessions_by_updated", "sqlite_autoindex_sessions_1")
"""The listing index, and the one SQLite keeps for ``id PRIMARY KEY``."""


def _primary(exc: BaseException | None) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None


def is_damage(exc: BaseException | None) -> bool:
    """Whether ``exc`` says the file is damaged (as opposed to busy, full, closed…)."""
    return isinstance(exc, sqlite3.DatabaseError) and _primary(exc) in _DAMAGE_CODES


def is_busy(exc: BaseException | None) -> bool:
    """Another connection holds the lock: retrying at once would only wait again."""
    return isinstance(exc, sqlite3.OperationalError) and _primary(exc) in (
        _SQLITE_BUSY,
        _SQLITE_LOCKED,
    )


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {cap(str(exc))}"


@dataclass
class Walk:
    """One step of ``walk_table``."""

    rows: list[tuple[object, ...]] = field(default_factory=list)  # (rowid, *columns)
    after: int | None = None  # continue after this rowid; None: the walk is over
    skipped: list[tuple[int, int]] = field(default_factory=list)  # unreadable (first, last)
    problems: list[str] = field(default_factory=list)


def _seek_fails(cur: sqlite3.Cursor, after: int) -> bool:
    try:
        cur.execute(
            "SELECT rowid FROM sessions WHERE rowid > ? ORDER BY rowid LIMIT 1", (after,)
        ).fetchall()
    except sqlite3.DatabaseError as exc:
        if not is_damage(exc):
            raise
        return True
    return False


def _resume_point(cur: sqlite3.Cursor, bad: int) -> int | None:
    """The smallest ``x >= bad`` whose seek succeeds, or ``None`` if none does.

    ``bad`` is a rowid after which a seek fails.  Exponential steps find some
    readable point, then bisection the first one; about 2 × 63 seeks at most.
    """
    step = 1
    low = bad  # a seek after ``low`` fails
    while True:
        probe = bad + step
        if probe >= MAX_ROWID:
            if _seek_fails(cur, MAX_ROWID - 1):
                return None
            probe = MAX_ROWID - 1
            break
        if not _seek_fails(cur, probe):
            break
        low = probe
        step *= 2
    high = probe  # a seek after ``high`` succeeds
    while high - low > 1:
        middle = (low + high) // 2
        if _seek_fails(cur, middle):
            low = middle
        else:
            high = middle
    return high


def walk_table(cur: sqlite3.Cursor, columns: str, after: int | None, limit: int) -> Walk:
    """Up to ``limit`` rows with rowid after ``after`` (``None``: from the start), in order."""
    out = Walk()
    cursor_at = -(2**63) if after is None else after
    sql = f"SELECT rowid, {columns} FROM sessions WHERE rowid > ? ORDER BY rowid LIMIT ?"
    try:
        out.rows = cur.execute(sql, (cursor_at, limit)).fetchall()
    except sqlite3.DatabaseError as exc:
        if not is_damage(exc):
            raise
        # Row by row up to the damage, then find where reading can resume.
        while len(out.rows) < limit:
            try:
                row = cur.execute(sql, (cursor_at, 1)).fetchone()
            except sqlite3.DatabaseError as step_exc:
                if not is_damage(step_exc):
                    raise
                resume = _resume_point(cur, cursor_at)
                last = MAX_ROWID if resume is None else resume
                out.skipped.append((cursor_at + 1, last))
                out.problems.append(
                    f"table rows with rowid {cursor_at + 1}..{last} are unreadable "
                    f"({describe(step_exc)})"
                )
                out.after = resume
                return out
            if row is None:
                out.after = None
                return out
            out.rows.append(row)
            cursor_at = int(row[0])
    out.after = int(out.rows[-1][0]) if len(out.rows) == limit else None  # type: ignore[call-overload]
    return out


def index_entries(cur: sqlite3.Cursor) -> tuple[dict[int, object], list[str]]:
    """rowid -> stored id, from every index, read until each one fails."""
    found: dict[int, object] = {}
    problems: list[str] = []
    for index in INDEXES:
        try:
            cursor = cur.execute(f"SELECT rowid, id FROM sessions INDEXED BY {index}")
            while True:
                batch = cursor.fetchmany(1024)
                if not batch:
                    break
                for rowid, raw_id in batch:
                    found.setdefault(int(rowid), raw_id)
        except sqlite3.DatabaseError as exc:
            if not is_damage(exc) and not isinstance(exc, sqlite3.OperationalError):
                raise
            problems.append(f"index {index} is unreadable past some point ({describe(exc)})")
    return found, problems


def fetch_row(
    cur: sqlite3.Cursor, columns: str, rowid: int
) -> tuple[object, ...] | sqlite3.DatabaseError | None:
    """The row at ``rowid`` (``(rowid, *columns)``), ``None`` if absent, or the damage error."""
    try:
        row: tuple[object, ...] | None = cur.execute(
            f"SELECT rowid, {columns} FROM sessions WHERE rowid = ?", (rowid,)
        ).fetchone()
    except sqlite3.DatabaseError as exc:
        if not is_damage(exc):
            raise
        return exc
    return row


def quick_check(cur: sqlite3.Cursor, most: int = 20) -> list[str]:
    """SQLite's own structural check (``PRAGMA quick_check``): what it finds, capped."""
    try:
        rows: Sequence[tuple[object, ...]] = cur.execute(f"PRAGMA quick_check({most})").fetchall()
    except sqlite3.DatabaseError as exc:
        if not is_damage(exc):
            raise
        return [f"quick_check could not run: {describe(exc)}"]
    found = [_text(row[0]) for row in rows]
    return [] if found == ["ok"] else [f"quick_check: {cap(line)}" for line in found]


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)
