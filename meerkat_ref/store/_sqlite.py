"""A ``SessionStore`` in one SQLite file (standard-library ``sqlite3``).

Layout: one row per session.  The listing columns (times, counts, metadata)
are stored beside the encoded body so ``list`` is a query over an index and
never reads a body; ``load`` reads only the body.

Durability (the ``durability`` constructor option; the journal is always WAL):

``"normal"`` (default)
    ``PRAGMA synchronous=NORMAL``.  In WAL mode a committed transaction
    survives a crash of the application, but the last transactions before a
    power loss or OS crash may be rolled back (never corrupted).
``"full"``
    ``PRAGMA synchronous=FULL``: the WAL is synced at every commit, so a
    committed ``save``/``delete`` also survives power loss, at the cost of an
    fsync per commit.

Writes: group commit.  One writer connection, and a long-lived thread
for it.  Every ``save``/``delete`` waiting together is written in
one transaction, in the order submitted, and each is acknowledged (the call
returns) only after that transaction has committed, so at the configured
durability.  A transaction that fails is rolled back and acknowledges
nothing; if it held more than one write, each is then tried again alone, in
order, so one bad write cannot fail its neighbours (unless the failure is
"database is locked": another connection holds the file, and every write in
the batch fails with that error at once).  Where the batch is written: at
``"normal"``, while the writer thread is idle, on the event loop's thread
(the first write leads, the writes of every other call in progress join it,
one transaction; the hand-off to a thread would cost two wake-ups, more
than the commit, which at ``"normal"`` is a WAL append, never an fsync).  At
``"full"`` every commit syncs, so every batch goes through the thread.
At ``"normal"`` WAL checkpoints run on a thread of their own beside the
writer (``_checkpoint.py``), so commits do not wait for them (except for the
occasional one that lets the log restart, which the writer runs itself); at
``"full"`` the writer's thread runs them between batches.
Reads (``load``, ``list``, ``exists``, ``check``) have their own connection
and lane, so they neither wait for a commit nor hold one up.  See
``_lane.py`` for the threads, where a task may switch, and the exact meaning
of a cancelled call (in short: ``Cancelled`` means the write did not
happen, a return means it did).

One owner: the constructor takes an OS lock on ``<db>.lock`` (``_owner.py``)
before touching the file; a second opener, in this process or another, is
refused with ``SessionStoreError`` naming the holder's pid.

Damage (``docs/store-damage.md`` has the whole table):

- A new store is made only where no file exists, under a temporary name that
  is linked into place once its schema is written, so an existing file was
  always a complete store when it appeared.  An existing file that is empty
  (0 bytes), not an SQLite database, truncated, of another schema, or without
  the sessions table, is refused with ``SessionStoreError`` naming the file
  and what is wrong: never opened as an empty store.  ``salvage`` copies
  what is still readable in such a file into a new store.
- A row whose listing columns are corrupt is skipped by ``list`` and
  recorded in ``corrupt_ids`` (plus a log warning); a row whose body is
  corrupt makes ``load`` of that id raise ``SessionStoreError`` naming it.
  Neither hides or breaks any other row.
- A damaged page (SQLite says the file is malformed) makes ``list`` walk the
  table around it (``_salvage.py``): rows on the page are named from the
  indexes where possible, recorded and skipped, everything else is listed.
  ``load`` and ``exists`` retry a failed lookup without the id index.
- ``check()`` always completes: it scans every row, names the damaged ones
  and records what it cannot name in ``damage``.

Error messages quote at most ``MAX_SHOWN`` characters of stored data.
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import logging
import math
import os
import secrets
import sqlite3
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal, TypeVar, cast

import trio

from .._errors import SessionStoreError
from .._types import (
    InvalidArgument,
    Session,
    SessionFilter,
    SessionId,
    SessionMeta,
    list_order_key,
)
from ._checkpoint import Checkpoints
from ._codec import cap, decode_metadata, decode_session, encode_metadata, encode_session
from ._lane import Job, Lane
from ._owner import OwnerLock
from ._salvage import (
    Walk,
    describe,
    fetch_row,
    index_entries,
    is_busy,
    is_damage,
    quick_check,
    walk_table,
)

__all__ = ["SCHEMA_VERSION", "Durability", "Salvage", "SqliteStore"]

_log = logging.getLogger(__name__)

T = TypeVar("T")

Durability = Literal["normal", "full"]

SCHEMA_VERSION = 1
"""Kept in ``PRAGMA user_version``.  Anything above this was written by a
newer build and is refused rather than misread.  Bodies carry their own
``format`` (``_codec.FORMAT``); both are unchanged since the first release."""

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_CHECK_BATCH = 256
_MAX_BUSY_TIMEOUT = 2**31 / 1000  # SQLite's busy timeout is an int of milliseconds

_MAGIC = b"SQLite format 3\x00"

_COLUMNS = ("id", "created_at", "updated_at", "message_count", "total_tokens", "metadata", "body")

_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS sessions (
        id TEXT PRIMARY KEY,
        created_at INTEGER,
        updated_at INTEGER,
        message_count INTEGER,
        total_tokens INTEGER,
        metadata TEXT,
        body TEXT
    )
    """,
    # Exactly the list order (list_order_key), so a page is an index range scan.
    "CREATE INDEX IF NOT EXISTS sessions_by_updated ON sessions (updated_at DESC, id ASC)",
)

_ON_CONFLICT = """
    ON CONFLICT (id) DO UPDATE SET
        created_at = excluded.created_at,
        updated_at = excluded.updated_at,
        message_count = excluded.message_count,
        total_tokens = excluded.total_tokens,
        metadata = excluded.metadata,
        body = excluded.body
"""


def _upsert(rows: int) -> str:
    """``rows`` sessions in one statement; a later row for the same id replaces an earlier one."""
    values = ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * rows)
    return (
        "INSERT INTO sessions "
        "(id, created_at, updated_at, message_count, total_tokens, metadata, body) "
        f"VALUES {values} {_ON_CONFLICT}"
    )


_UPSERT = _upsert(1)
_CHUNK = 64
"""Most rows in one upsert statement: a group of saves is written as chunks
of at most this many, so the statements stay few (each SQLite call lets the
event loop's thread take the GIL, and getting it back can take a while) and
their texts stay in the connection's statement cache (128 by default)."""
_UPSERTS = [""] + [_upsert(n) for n in range(1, _CHUNK + 1)]

_DELETE = "DELETE FROM sessions WHERE id = ?"

_EVERYTHING = SessionFilter()

_LIST_COLUMNS = "id, created_at, updated_at, message_count, total_tokens, metadata"


def list_query(filter: SessionFilter) -> tuple[str, list[int]] | None:
    """The SQL and parameters for one ``list`` page; ``None`` if it is surely empty.

    Module-level so tests can ``EXPLAIN QUERY PLAN`` it.  Bounds are clamped
    to SQLite's 64-bit integers instead of overflowing.
    """
    if filter.limit == 0:
        return None
    where: list[str] = []
    params: list[int] = []
    bounds = (("created_at", filter.created_after), ("updated_at", filter.updated_after))
    for column, after in bounds:
        if after is None or after < _INT64_MIN:
            continue  # every stored time is after it
        if after >= _INT64_MAX:
            return None  # no stored time is after it
        where.append(f"{column} > ?")
        params.append(after)
    sql = f"SELECT {_LIST_COLUMNS} FROM sessions"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY updated_at DESC, id ASC LIMIT ? OFFSET ?"
    params.append(-1 if filter.limit is None else min(filter.limit, _INT64_MAX))
    params.append(min(filter.offset or 0, _INT64_MAX))
    return sql, params


# --- rows ------------------------------------------------------------------


class _CorruptRow(Exception):
    """Internal: a listing row that cannot be turned into a ``SessionMeta``."""


def _count(value: object, name: str) -> int:
    if type(value) is not int:
        raise _CorruptRow(f"{name} is {type(value).__name__} {cap(repr(value))}, not an integer")
    return value


def _id_of(raw_id: object) -> SessionId:
    """The session id a row's ``id`` column holds (text, read as bytes or str)."""
    if isinstance(raw_id, bytes):
        try:
            raw_id = raw_id.decode("utf-8")
        except UnicodeDecodeError:
            raise _CorruptRow("id is not UTF-8 text") from None
    if not isinstance(raw_id, str):
        raise _CorruptRow(f"id is {type(raw_id).__name__}, not text")
    try:
        session_id = SessionId.parse(raw_id)
    except InvalidArgument:
        raise _CorruptRow("id is not a UUID") from None
    if str(session_id) != raw_id:
        raise _CorruptRow("id is not in canonical form")  # load() could never find it
    return session_id


def _meta_from_row(row: Sequence[object]) -> SessionMeta:
    raw_id, created_at, updated_at, message_count, total_tokens, metadata = row
    session_id = _id_of(raw_id)
    try:
        meta_map = decode_metadata(metadata)
    except SessionStoreError as exc:
        raise _CorruptRow(exc.message) from None
    return SessionMeta(
        id=session_id,
        created_at=_count(created_at, "created_at"),
        updated_at=_count(updated_at, "updated_at"),
        message_count=_count(message_count, "message_count"),
        total_tokens=_count(total_tokens, "total_tokens"),
        metadata=meta_map,
    )


def _row_label(raw_id: object) -> str:
    """How a row is named in ``corrupt_ids`` and logs: its id text, or a capped repr."""
    if isinstance(raw_id, bytes):
        with contextlib.suppress(UnicodeDecodeError):
            raw_id = raw_id.decode("utf-8")
    return cap(raw_id) if isinstance(raw_id, str) else cap(repr(raw_id))


def _in_int64(value: int) -> bool:
    return _INT64_MIN <= value <= _INT64_MAX


# --- the jobs the two lanes run ----------------------------------------------


class _Write(Job[None]):
    """A ``save`` (``row`` set) or a ``delete`` (``row`` is ``None``) for the writer."""

    __slots__ = ("id_text", "row")

    def __init__(
        self, what: str, session_id: SessionId, id_text: str, row: tuple[object, ...] | None
    ) -> None:
        super().__init__(what, session_id)
        self.id_text = id_text
        self.row = row


class _Read(Job[T]):
    """A read: ``fn`` on the reader connection."""

    __slots__ = ("fn",)

    def __init__(
        self,
        fn: Callable[[sqlite3.Cursor], T],
        what: str,
        session_id: SessionId | None = None,
    ) -> None:
        super().__init__(what, session_id)
        self.fn = fn


def _failed(job: Job[T], exc: BaseException) -> SessionStoreError:
    """The error a job's caller gets for a driver error (the cause kept, the text capped)."""
    error = SessionStoreError(f"{job.what} failed: {describe(exc)}", session_id=job.session_id)
    error.__cause__ = exc
    return error


def _rollback(cur: sqlite3.Cursor) -> None:
    if cur.connection.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            cur.execute("ROLLBACK")


def _statements(jobs: list[_Write]) -> list[tuple[str, tuple[object, ...]]]:
    """The batch as few statements as keep its order: runs of saves as chunked upserts."""
    out: list[tuple[str, tuple[object, ...]]] = []
    run: list[object] = []
    rows = 0
    for job in jobs:
        if job.row is not None:
            run.extend(job.row)
            rows += 1
            if rows < _CHUNK:
                continue
        if rows:
            out.append((_UPSERTS[rows], tuple(run)))
            run, rows = [], 0
        if job.row is None:
            out.append((_DELETE, (job.id_text,)))
    if rows:
        out.append((_UPSERTS[rows], tuple(run)))
    return out


def _commit(cur: sqlite3.Cursor, jobs: list[Job[None]]) -> None:
    """The writer's batch: every job in one transaction, in order; acknowledged by its commit.

    One statement (a single save or delete, or saves that fit one chunk) is
    its own transaction in autocommit mode; more are wrapped in ``BEGIN
    IMMEDIATE … COMMIT``.  Either way the jobs are done only once SQLite has
    committed.  A failed transaction is rolled back; with more than one job,
    each is tried again alone (see the module docstring), except when the
    file is locked.  Runs on the writer's thread (or inline); no Trio.
    """
    if len(jobs) == 1:  # the common case when idle: no planning
        only = cast(_Write, jobs[0])
        statements = [(_DELETE, (only.id_text,)) if only.row is None else (_UPSERT, only.row)]
    else:
        statements = _statements(cast(builtins.list[_Write], jobs))
    try:
        if len(statements) == 1:
            cur.execute(*statements[0])
        else:
            cur.execute("BEGIN IMMEDIATE")
            for statement in statements:
                cur.execute(*statement)
            cur.execute("COMMIT")
    except (sqlite3.Error, OverflowError) as exc:
        _rollback(cur)
        if len(jobs) > 1 and not is_busy(exc):
            for job in jobs:
                _commit(cur, [job])
            return
        for job in jobs:
            job.error = _failed(job, exc)
        return
    for job in jobs:
        job.value = None


def _read_each(cur: sqlite3.Cursor, jobs: list[Job[object]]) -> None:
    """The reader's batch: each job on its own; a driver error fails that job only."""
    for job in jobs:
        assert isinstance(job, _Read)
        try:
            job.value = job.fn(cur)
        except (sqlite3.Error, OverflowError) as exc:
            # OverflowError: a Python int beyond SQLite's 64 bits.
            job.error = _failed(job, exc)


# --- every readable row, around damage -------------------------------------

Reader = Callable[[Callable[[sqlite3.Cursor], T], str], Awaitable[T]]
"""Runs a function on some cursor (the store's reader lane, or salvage's own)."""


async def _walk_rows(
    read: Reader[object],
    columns: str,
    visit: Callable[[Sequence[object]], None],
    note: Callable[[str], None],
) -> builtins.list[tuple[object, BaseException]]:
    """Call ``visit((rowid, *columns))`` for every readable row; return the rows that are not.

    The table is walked a batch at a time (each batch one ``read``, so
    other calls may run in between), around unreadable pages; then the rows
    the indexes know but the walk did not reach are fetched one by one.
    Returns (stored id, error) for each row an index names but nothing can
    read; other problems go to ``note``.  Switch points: each ``read``.
    """
    seen: set[int] = set()
    after: int | None = None
    while True:
        walk = cast(
            Walk,
            await read(
                functools.partial(walk_table, columns=columns, after=after, limit=_CHECK_BATCH),
                "scan sessions",
            ),
        )
        for row in walk.rows:
            seen.add(int(cast(int, row[0])))
            visit(row)
        for problem in walk.problems:
            note(problem)
        if walk.after is None:
            break
        after = walk.after
    entries, problems = cast(
        tuple[dict[int, object], builtins.list[str]],
        await read(index_entries, "scan the indexes"),
    )
    for problem in problems:
        note(problem)
    lost: builtins.list[tuple[object, BaseException]] = []
    for rowid, raw_id in entries.items():
        if rowid in seen:
            continue
        found = await read(
            functools.partial(fetch_row, columns=columns, rowid=rowid), "read one row"
        )
        if isinstance(found, tuple):
            visit(found)
        elif isinstance(found, BaseException):
            lost.append((raw_id, found))
    return lost


def _session_of_row(row: Sequence[object]) -> Session:
    """A ``(rowid, *listing columns, body)`` row checked whole: the session, or why not.

    Raises ``_CorruptRow`` (id or listing columns) or ``SessionStoreError`` (body).
    """
    _rowid, raw_id, *listing, body = row
    session_id = _id_of(raw_id)
    _meta_from_row((raw_id, *listing))
    return decode_session(cast(bytes, body), expected_id=session_id)


@dataclass(frozen=True)
class Salvage:
    """What ``SqliteStore.salvage`` recovered, and what it could not."""

    recovered: builtins.list[SessionId]
    lost: builtins.list[str]  # rows that could not be read or decoded, by stored id
    problems: builtins.list[str]  # unreadable stretches, index damage, SQLite's findings


def _salvage_connection(path: str) -> sqlite3.Connection:
    """A read-only connection that reads even a truncated file (never writes to it)."""
    wal = f"{path}-wal"
    logged = os.path.exists(wal) and os.path.getsize(wal) > 0
    uri = Path(os.path.abspath(path)).as_uri() + ("?mode=ro" if logged else "?immutable=1")
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    # Use the file's real size when the header claims more pages (truncation):
    # SQLite refuses such a file otherwise.  Harmless on a read-only connection.
    conn.execute("PRAGMA writable_schema = ON")
    conn.execute("PRAGMA query_only = 1")
    conn.text_factory = bytes
    return conn


# --- opening a file -------------------------------------------------------


def _refuse(path: str, what: str) -> SessionStoreError:
    return SessionStoreError(f"refusing to open session store {path!r}: {what}")


def _connect(path: str, busy_timeout: float) -> sqlite3.Connection:
    return sqlite3.connect(
        path,
        timeout=busy_timeout,
        # Each connection is used by one thread at a time: its lane's.
        check_same_thread=False,
        # Autocommit: transactions are explicit (BEGIN IMMEDIATE ... COMMIT).
        isolation_level=None,
    )


def _pragmas(conn: sqlite3.Connection, path: str, durability: Durability) -> None:
    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        _log.warning("session store %s: WAL unavailable, journal mode is %s", path, mode)
    conn.execute(f"PRAGMA synchronous={'FULL' if durability == 'full' else 'NORMAL'}")


def _create(path: str, durability: Durability, busy_timeout: float) -> None:
    """Make a new, empty store at ``path``, which does not exist.

    Built under a temporary name and linked into place only once its schema
    is committed (and the connection closed, so the WAL is folded in): a
    crash part-way leaves a stray temporary file, never a half-made store at
    ``path`` that a later open would have to tell from a damaged one.
    """
    temporary = f"{path}.new-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        conn = _connect(temporary, busy_timeout)
        try:
            _pragmas(conn, temporary, durability)
            conn.execute("BEGIN IMMEDIATE")
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        finally:
            conn.close()
        try:
            os.link(temporary, path)  # fails if a file appeared at ``path`` meanwhile
        except FileExistsError:
            pass  # someone else made it: it is opened and checked like any existing file
        except OSError:
            if not os.path.exists(path):  # no hard links here: a rename will do
                os.replace(temporary, path)
        if durability == "full":
            directory = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
            try:
                os.fsync(directory)  # the new name survives a power loss too
            finally:
                os.close(directory)
    finally:
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(temporary + suffix)


def _check_file(path: str) -> None:
    """Refuse an existing file that cannot be a store, before SQLite touches it."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(100)
            size = os.fstat(fh.fileno()).st_size
        header = head[: len(_MAGIC)]
    except IsADirectoryError:
        raise _refuse(path, "it is a directory") from None
    except OSError as exc:
        raise SessionStoreError(f"cannot open session store {path!r}: {describe(exc)}") from exc
    if size == 0:
        raise _refuse(
            path,
            "the file is empty (0 bytes).  A new store is only ever created where no file "
            "exists (and appears complete), so an empty file is not a new store: it may be "
            "one that lost its content.  Delete it to start a new store, or restore it",
        )
    if header != _MAGIC:
        raise _refuse(
            path,
            f"it is not an SQLite database (its first bytes are {cap(repr(header), 40)}, not "
            "the SQLite header): the header is damaged, or this is another kind of file",
        )
    claimed = _claimed_pages(head)
    page_size = int.from_bytes(head[16:18], "big") or 65536
    wal = f"{path}-wal"
    has_log = os.path.exists(wal) and os.path.getsize(wal) > 0
    if claimed is not None and not has_log and claimed * page_size > size:
        raise _refuse(
            path,
            f"it is truncated: its header says {claimed} pages of {page_size} bytes, the file "
            f"holds {size // page_size}.  SqliteStore.salvage() copies every session still "
            "readable into a new file and names the lost ones",
        )


def _claimed_pages(head: bytes) -> int | None:
    """The page count the header vouches for, if it does (SQLite's own rule)."""
    if len(head) < 100:
        return None
    pages = int.from_bytes(head[28:32], "big")
    if pages == 0 or head[24:28] != head[92:96]:  # change counter vs "version valid for"
        return None
    return pages


def _check_schema(conn: sqlite3.Connection, path: str) -> bool:
    """Refuse a database that is not a session store; say whether the listing index is there."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise _refuse(
            path,
            f"it has schema version {version}, newer than the {SCHEMA_VERSION} this build "
            "understands (upgrade meerkat-ref, or use another file)",
        )
    if version != SCHEMA_VERSION:
        raise _refuse(
            path,
            f"it is an SQLite database but not a session store (schema version {version}, "
            f"expected {SCHEMA_VERSION})",
        )
    columns = tuple(row[1] for row in conn.execute("PRAGMA table_info(sessions)"))
    if not columns:
        raise _refuse(
            path,
            "it has no sessions table (it was dropped, or the file was damaged); it would "
            "open as an empty store and every stored session would be lost",
        )
    if columns != _COLUMNS:
        raise _refuse(path, f"its sessions table has columns {cap(', '.join(columns))}")
    names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    return "sessions_by_updated" in names


def _probe_table(conn: sqlite3.Connection, path: str) -> None:
    """Refuse a table whose root page is unreadable: it would list as empty."""
    failures: list[BaseException] = []
    for sql in ("SELECT min(rowid) FROM sessions", "SELECT max(rowid) FROM sessions"):
        try:
            conn.execute(sql).fetchall()
        except sqlite3.DatabaseError as exc:
            if not is_damage(exc):
                raise
            failures.append(exc)
    if len(failures) == 2:
        raise _refuse(
            path,
            f"its sessions table cannot be read at all ({describe(failures[0])}); it would "
            "list as empty",
        )


ConnectHook = Callable[[str, sqlite3.Connection], None]
"""Called with a role (``"writer"``, ``"reader"``, ``"checkpointer"``) and its connection."""


def _open_files(
    path: str, durability: Durability, busy_timeout: float, *, checkpointer: bool,
    on_connect: ConnectHook | None = None,
) -> tuple[sqlite3.Connection, sqlite3.Connection, sqlite3.Connection | None]:
    """The writer, reader and (if asked) checkpointer connections to ``path`` (made if absent).

    ``on_connect`` sees each connection once the store has set it up (see
    ``SqliteStore``): the seam a driver-fault plan is wired through.
    """
    if not os.path.lexists(path):
        wal = path + "-wal"
        if os.path.exists(wal) and os.path.getsize(wal) > 0:
            raise _refuse(
                path,
                f"the database file is missing but its write-ahead log {wal!r} is not: "
                "that log holds committed sessions; restore the database file (or remove "
                "the log to start a new store)",
            )
        try:
            _create(path, durability, busy_timeout)
        except sqlite3.Error as exc:
            raise SessionStoreError(
                f"cannot create session store {path!r}: {describe(exc)}"
            ) from exc
        except OSError as exc:
            raise SessionStoreError(
                f"cannot create session store {path!r}: {describe(exc)}"
            ) from exc
    _check_file(path)
    writer: sqlite3.Connection | None = None
    reader: sqlite3.Connection | None = None
    background: sqlite3.Connection | None = None
    try:
        writer = _connect(path, busy_timeout)
        _pragmas(writer, path, durability)
        writer.execute("PRAGMA wal_autocheckpoint = 0")  # see _checkpoint.py
        if not _check_schema(writer, path):
            _log.warning("session store %s: the listing index was missing; rebuilding it", path)
            writer.execute(_SCHEMA[1])
        _probe_table(writer, path)
        reader = _connect(path, busy_timeout)
        reader.execute("PRAGMA query_only = 1")
        # Text comes back as bytes: decoding is ours to do, so a damaged row
        # gives a clear error naming it, not the driver's dump of its bytes.
        reader.text_factory = bytes
        if checkpointer:
            background = _connect(path, busy_timeout)
            _pragmas(background, path, durability)  # the checkpoint syncs as the writer would
            background.execute("PRAGMA wal_autocheckpoint = 0")
        if on_connect is not None:
            on_connect("writer", writer)
            on_connect("reader", reader)
            if background is not None:
                on_connect("checkpointer", background)
    except BaseException as exc:
        for conn in (background, reader, writer):
            if conn is not None:
                conn.close()
        if isinstance(exc, sqlite3.DatabaseError) and is_damage(exc):
            raise _refuse(
                path, f"it is damaged: SQLite cannot read its schema ({describe(exc)})"
            ) from exc
        if isinstance(exc, sqlite3.Error):
            raise SessionStoreError(f"cannot open session store {path!r}: {describe(exc)}") from exc
        raise
    return writer, reader, background


def _checked_path(path: object) -> str:
    if not isinstance(path, str | os.PathLike):
        raise InvalidArgument(f"path must be a str or os.PathLike, got {type(path).__name__}")
    text = os.fspath(path)
    if not isinstance(text, str):
        raise InvalidArgument("path must be text, not bytes")
    if text in ("", ":memory:") or text.startswith("file:"):
        raise InvalidArgument(
            f"path must name a file, got {cap(repr(text))} (SQLite would open a temporary "
            "or in-memory database, which every restart loses, or read a URI; use "
            "MemoryStore for a store in memory)"
        )
    if "\x00" in text:
        raise InvalidArgument("path must not contain a NUL character")
    return text


def _checked_timeout(busy_timeout: object) -> float:
    if (
        isinstance(busy_timeout, bool)
        or not isinstance(busy_timeout, int | float)
        or not math.isfinite(busy_timeout)
        or not 0 <= busy_timeout <= _MAX_BUSY_TIMEOUT
    ):
        raise InvalidArgument(
            f"busy_timeout must be a number of seconds from 0 to {_MAX_BUSY_TIMEOUT:,.0f}, "
            f"got {cap(repr(busy_timeout))}"
        )
    return float(busy_timeout)


def _closed_error(path: str, job: Job[T]) -> SessionStoreError:
    return SessionStoreError(
        f"{job.what}: session store {path!r} is closed", session_id=job.session_id
    )


def _abandon(
    writer: Lane[None], reader: Lane[object], checkpoints: Checkpoints, owner: OwnerLock
) -> None:
    """What a store dropped without ``aclose`` does (no call can be in flight: none holds it)."""
    reader.abandon()
    checkpoints.stop()
    writer.abandon()
    owner.release()


# --- the store ---------------------------------------------------------------


class SqliteStore:
    """A ``SessionStore`` backed by one SQLite file.

    ``SqliteStore(path)`` takes the file's owner lock, opens (and if needed
    creates) the database and starts its writer and reader threads (and
    at ``"normal"`` its checkpointer) right away: brief blocking I/O.  Inside Trio prefer ``await
    SqliteStore.open(path)``, which does it in a worker thread.  Use it as
    ``async with`` or call ``aclose()``; until then the file stays locked
    (the lock also goes when the process ends).

    ``threaded=False`` keeps no threads: each call runs on the event loop's
    own thread after one checkpoint, and writes commit one by one.  The
    explorer uses it: a call in a thread looks "blocked" to
    ``wait_all_tasks_blocked``, so a controlled schedule could move on
    before the write lands.  Each call is still preceded by a scheduling
    point, so interleavings around store calls are explored all the same.

    ``busy_timeout`` (seconds, 0 to about 24 days) is how long a write waits
    for another connection holding the file's write lock before failing with
    ``SessionStoreError``.

    ``on_connect(role, connection)``, if given, is called once for each
    connection (``"writer"``, ``"reader"``, ``"checkpointer"``) after the
    store has set it up, before any call: the seam through which the store
    contract wires a ``DriverFaults`` plan into SQLite itself (a progress
    handler, a page limit), so driver errors reach the store's own handling.

    Cancellation ([STORE-COMMIT]): a ``save`` or ``delete`` whose caller is
    cancelled before the writer took it raises ``Cancelled`` and never
    happens; once the writer has it, the call waits for the commit and
    returns (or raises) the true outcome, and the cancellation reaches the
    caller at its next checkpoint.  So ``Cancelled`` always means "not
    written", as it did when each call was a ``trio.to_thread`` call.  The
    service's archive relies on it ([ARCHIVE-ATOMIC]): a delete that raised
    ``Cancelled`` left the row in place.

    ``corrupt_ids`` holds the row ids (as stored text) that this store has
    found damaged: by ``list`` (listing columns, unreadable pages), ``load``
    (body) or ``check``.  A later successful ``save`` or ``delete`` of the id
    removes it.  ``damage`` holds what ``check`` (and a ``list`` that had to
    walk around damage) found wrong with the file beyond single rows.

    Paging over damaged rows: ``list`` pages with SQL ``LIMIT``/``OFFSET``
    and drops corrupt rows afterwards, so offsets count damaged rows too.  A
    page that covered one is shorter than ``limit`` (a short page is not
    proof of the end), but consecutive pages still neither repeat nor skip a
    healthy session.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        durability: Durability = "normal",
        busy_timeout: float = 5.0,
        threaded: bool = True,
        on_connect: ConnectHook | None = None,
    ) -> None:
        if durability not in ("normal", "full"):
            raise InvalidArgument(f"durability must be 'normal' or 'full', got {durability!r}")
        if not isinstance(threaded, bool):
            raise InvalidArgument(f"threaded must be a bool, got {type(threaded).__name__}")
        self.path = _checked_path(path)
        timeout = _checked_timeout(busy_timeout)
        self.durability: Durability = durability
        self.corrupt_ids: set[str] = set()
        self.damage: list[str] = []
        self._walk_lists = False  # set once a list found the index path damaged
        self._closing = False
        parent = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(parent):
            raise SessionStoreError(
                f"cannot open session store {self.path!r}: directory {parent!r} does not exist"
            )
        if os.path.isdir(self.path):
            raise _refuse(self.path, "it is a directory")
        self._owner = OwnerLock(self.path)
        try:
            writer, reader, background = _open_files(
                self.path, durability, timeout,
                # At "full" the checkpoint's syncs would share the disk with every
                # commit's sync; there the writer's thread checkpoints (measured:
                # benchmarks/README.md, "Checkpoints").
                checkpointer=threaded and durability == "normal",
                on_connect=on_connect,
            )
        except BaseException:
            self._owner.release()
            raise
        self._checkpoints = checkpoints = Checkpoints(self.path, background)
        # Nothing the lanes keep may refer to the store (see the finalizer below).
        closed = functools.partial(_closed_error, self.path)

        def write(cur: sqlite3.Cursor, jobs: builtins.list[Job[None]]) -> None:
            _commit(cur, jobs)
            checkpoints.wrote(jobs)

        try:
            self._writer: Lane[None] = Lane(
                "writer",
                writer,
                write,
                closed,
                threaded=threaded,
                # Never an fsync on the event loop's thread: at "full" every commit syncs.
                inline_batches=durability == "normal",
                upkeep=checkpoints,
            )
        except BaseException:
            checkpoints.close()
            writer.close()
            reader.close()
            self._owner.release()
            raise
        try:
            self._reader: Lane[object] = Lane(
                "reader",
                reader,
                _read_each,
                closed,
                threaded=threaded,
                inline_when_alone=True,
            )
        except BaseException:
            checkpoints.close()
            reader.close()
            self._owner.release()  # the writer thread idles until the process ends
            raise
        self._writer.start_collector()
        self._reader.start_collector()
        # Dropped without aclose: stop the threads and free the file anyway, so
        # a forgotten store does not keep its file locked until the process ends.
        self._finalizer = weakref.finalize(
            self, _abandon, self._writer, self._reader, checkpoints, self._owner
        )

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str],
        *,
        durability: Durability = "normal",
        busy_timeout: float = 5.0,
        threaded: bool = True,
        on_connect: ConnectHook | None = None,
    ) -> SqliteStore:
        """Construct in a worker thread, so opening never blocks the event loop."""

        def make() -> SqliteStore:
            return cls(path, durability=durability, busy_timeout=busy_timeout, threaded=threaded,
                       on_connect=on_connect)

        store = await trio.to_thread.run_sync(make)
        store._writer.start_collector()  # made in a worker thread: start them here
        store._reader.start_collector()
        return store

    async def __aenter__(self) -> SqliteStore:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Finish what was submitted, close, release the file; idempotent.

        Calls made after ``aclose`` began raise ``SessionStoreError``;
        writes submitted before are committed and acknowledged first (the
        writer drains its queue), reads likewise answered.  Shielded: a close
        that was asked for completes even when cancelled.  Switch points:
        waiting for each thread to finish.
        """
        self._closing = True
        with trio.CancelScope(shield=True):
            # The reader and the checkpointer first, so the writer's connection
            # is the last one open: closing it folds the WAL back into the
            # database file.  (Writes still draining checkpoint on the writer.)
            await self._reader.close()
            if self._checkpoints.threaded:  # wait for its checkpoint off the loop
                await trio.to_thread.run_sync(self._checkpoints.close)
            await self._writer.close()
            self._owner.release()
            self._finalizer.detach()

    @property
    def closed(self) -> bool:
        return self._closing

    def _closed_error(self, job: Job[T]) -> SessionStoreError:
        return _closed_error(self.path, job)

    async def _read(
        self,
        fn: Callable[[sqlite3.Cursor], T],
        what: str,
        session_id: SessionId | None = None,
    ) -> T:
        job: _Read[T] = _Read(fn, what, session_id)
        if self._closing:
            await trio.lowlevel.checkpoint()
            raise self._closed_error(job)
        return await self._reader.submit(job)  # type: ignore[arg-type, return-value]

    async def _write(self, job: _Write) -> None:
        if self._closing:
            await trio.lowlevel.checkpoint()
            raise self._closed_error(job)
        await self._writer.submit(job)

    def _record(self, label: str, reason: str) -> None:
        if label not in self.corrupt_ids:
            self.corrupt_ids.add(label)
            _log.warning("session store %s: corrupt row %s: %s", self.path, label, cap(reason))

    def _note(self, problem: str) -> None:
        if problem not in self.damage:
            self.damage.append(problem)
            _log.warning("session store %s: %s", self.path, problem)

    # --- the SessionStore protocol ----------------------------------------

    async def save(self, session: Session) -> None:
        """Write ``session`` (create or replace); return once it is committed.

        Encoding happens here, before the write is queued, so a session that
        cannot be stored is refused (``SessionStoreError``) without touching
        the writer.  Switch point: waiting for the writer (see ``_lane.py``).
        """
        id_text = str(session.id)
        what = f"save session {id_text}"
        body = encode_session(session, id_text)
        metadata = encode_metadata(session.metadata)
        created, updated = session.created_at, session.updated_at
        count, tokens = session.message_count, session.total_tokens()
        if not (
            _INT64_MIN <= created <= _INT64_MAX
            and _INT64_MIN <= updated <= _INT64_MAX
            and _INT64_MIN <= tokens <= _INT64_MAX  # (a message count always fits)
        ):
            big = next(v for v in (created, updated, tokens) if not _in_int64(v))
            raise SessionStoreError(
                f"{what} failed: OverflowError: {cap(str(big))} does not fit SQLite's "
                "64-bit integers",
                session_id=session.id,
            )
        row = (id_text, created, updated, count, tokens, metadata, body)
        await self._write(_Write(what, session.id, id_text, row))
        self.corrupt_ids.discard(id_text)

    async def _by_id(self, sql: str, what: str, session_id: SessionId) -> object:
        """One row by id (``sql`` takes the id); around a damaged index if need be.

        The id lookup goes through the primary-key index.  If SQLite says the
        file is damaged, the lookup is tried once more with the index out of
        the way (``NOT INDEXED``: a scan of the table, slow but only then), so
        a damaged index page does not hide an intact row; if the row itself
        is unreadable, the first error stands and the id is recorded.
        """
        params = (str(session_id),)
        scan = sql.replace("FROM sessions", "FROM sessions NOT INDEXED")

        def indexed(cur: sqlite3.Cursor) -> object:
            return cur.execute(sql, params).fetchone()

        def scanned(cur: sqlite3.Cursor) -> object:
            return cur.execute(scan, params).fetchone()

        try:
            return await self._read(indexed, what, session_id)
        except SessionStoreError as exc:
            cause = exc.__cause__
            if cause is None or not is_damage(cause):
                raise
            try:
                row = await self._read(scanned, what, session_id)
            except SessionStoreError:
                self._record(str(session_id), exc.message)
                raise exc from None
            self._note(f"the id index is damaged ({describe(cause)}); run check()")
            return row

    async def load(self, session_id: SessionId) -> Session | None:
        """The stored session, or ``None``.  Switch point: the reader lane (one more on damage)."""
        row = await self._by_id(
            "SELECT body FROM sessions WHERE id = ?", f"load session {session_id}", session_id
        )
        if row is None:
            return None
        assert isinstance(row, tuple)
        try:
            return decode_session(row[0], expected_id=session_id)
        except SessionStoreError as exc:
            self._record(str(session_id), exc.message)
            raise

    async def list(self, filter: SessionFilter = _EVERYTHING) -> builtins.list[SessionMeta]:
        """One page in list order, from the index.  Switch point: the reader lane.

        If SQLite reports damage, this and every later ``list`` walk the table
        around it instead (one reader job per batch of rows: more switch points).
        """
        query = list_query(filter)
        if query is None:
            await trio.lowlevel.checkpoint()  # still a checkpoint, like every call
            return []
        sql, params = query

        def op(cur: sqlite3.Cursor) -> builtins.list[Sequence[object]]:
            return cur.execute(sql, params).fetchall()

        if not self._walk_lists:
            try:
                rows = await self._read(op, "list sessions")
            except SessionStoreError as exc:
                if not is_damage(exc.__cause__):
                    raise
                self._walk_lists = True
                self._note(
                    f"listing through the index failed ({describe(exc.__cause__)}); "  # type: ignore[arg-type]
                    "lists now walk the table around the damage (run check())"
                )
            else:
                metas: builtins.list[SessionMeta] = []
                for row in rows:
                    try:
                        metas.append(_meta_from_row(row))
                    except _CorruptRow as bad:
                        self._record(_row_label(row[0]), str(bad))
                return metas
        return await self._walked_list(filter)

    async def delete(self, session_id: SessionId) -> None:
        """Remove the row (idempotent); return once committed.  Switch point: the writer."""
        id_text = str(session_id)
        await self._write(_Write(f"delete session {id_text}", session_id, id_text, None))
        self.corrupt_ids.discard(id_text)

    async def exists(self, session_id: SessionId) -> bool:
        """Whether ``load`` would find a row.  Switch point: the reader lane."""
        what = f"exists session {session_id}"
        row = await self._by_id("SELECT 1 FROM sessions WHERE id = ? LIMIT 1", what, session_id)
        return row is not None

    # --- around damage ----------------------------------------------------

    async def _every_row(
        self, columns: str, visit: Callable[[Sequence[object]], None]
    ) -> builtins.list[str]:
        """``_walk_rows`` on this store's reader; records the unreadable rows, returns their ids."""
        lost = await _walk_rows(self._read, columns, visit, self._note)
        labels = []
        for raw_id, error in lost:
            label = _row_label(raw_id)
            self._record(label, f"its table page is unreadable ({describe(error)})")
            labels.append(label)
        return labels

    async def _walked_list(self, filter: SessionFilter) -> builtins.list[SessionMeta]:
        """``list`` the slow way, for a file with damaged pages: every readable row, sorted."""
        metas: builtins.list[SessionMeta] = []

        def visit(row: Sequence[object]) -> None:
            try:
                meta = _meta_from_row(row[1:])
            except _CorruptRow as bad:
                self._record(_row_label(row[1]), str(bad))
                return
            if filter.admits(meta):
                metas.append(meta)

        await self._every_row(_LIST_COLUMNS, visit)
        metas.sort(key=lambda m: list_order_key(m.updated_at, m.id))
        start = filter.offset or 0
        return metas[start : None if filter.limit is None else start + filter.limit]

    # --- maintenance ------------------------------------------------------

    async def check(self) -> builtins.list[SessionId]:
        """Integrity check: read every row, decode every body; return the ids that fail.

        Always completes.  Reads the whole table in batches by rowid, so
        other calls run in between, walking around unreadable pages; rows on
        such pages are named from the indexes where possible.  Returns the
        ids of damaged rows (listing columns, body, or unreadable); rows
        whose id itself is damaged cannot be returned as a ``SessionId`` and
        are recorded in ``corrupt_ids`` (and logged) only.  ``damage`` is
        replaced by what this check found wrong with the file as a whole,
        SQLite's ``quick_check`` included.  Rows changed during the scan are
        seen in whichever state the batch read.
        """
        bad: builtins.list[SessionId] = []
        self.damage = []

        def visit(row: Sequence[object]) -> None:
            try:
                _session_of_row(row)
            except (_CorruptRow, SessionStoreError) as exc:
                label = _row_label(row[1])
                self._record(label, str(exc))
                with contextlib.suppress(_CorruptRow):
                    bad.append(_id_of(row[1]))  # a row whose id is damaged has no SessionId

        lost = await self._every_row(f"{_LIST_COLUMNS}, body", visit)
        for label in lost:
            with contextlib.suppress(_CorruptRow):
                bad.append(_id_of(label))
        for problem in await self._read(quick_check, "quick_check"):
            self._note(problem)
        return bad

    @classmethod
    async def salvage(
        cls,
        source: str | os.PathLike[str],
        target: str | os.PathLike[str],
        *,
        durability: Durability = "normal",
    ) -> Salvage:
        """Copy every session still readable in the damaged store ``source`` into a new ``target``.

        For a file the store refuses to open (truncated, or damaged past what
        ``list`` can walk around) and for one that opens but has lost pages.
        ``source`` is read through a read-only connection and never written;
        its owner lock is held meanwhile.  ``target`` must not exist; it is
        a new store holding the recovered sessions.  Returns what was
        recovered, the ids of the rows that could not be (named from the
        table or the indexes), and the problems met.  Switch points: each
        batch read (in a worker thread) and each save into ``target``.
        """
        src, dst = _checked_path(source), _checked_path(target)
        if os.path.lexists(dst):
            raise InvalidArgument(f"salvage target {dst!r} exists; name a new file")
        if not os.path.isfile(src):
            raise SessionStoreError(f"cannot salvage {src!r}: no such file")
        owner = OwnerLock(src)
        problems: builtins.list[str] = []
        lost: builtins.list[str] = []
        sessions: builtins.list[Session] = []
        try:
            try:
                conn = _salvage_connection(src)
            except sqlite3.Error as exc:
                raise SessionStoreError(f"cannot salvage {src!r}: {describe(exc)}") from exc
            cur = conn.cursor()

            async def read(fn: Callable[[sqlite3.Cursor], T], what: str) -> T:
                try:
                    return await trio.to_thread.run_sync(fn, cur)
                except sqlite3.Error as exc:
                    raise SessionStoreError(
                        f"cannot salvage {src!r}: {what}: {describe(exc)}"
                    ) from exc

            def visit(row: Sequence[object]) -> None:
                try:
                    sessions.append(_session_of_row(row))
                except (_CorruptRow, SessionStoreError) as exc:
                    lost.append(_row_label(row[1]))
                    problems.append(f"row {_row_label(row[1])}: {cap(str(exc))}")

            try:
                unreadable = await _walk_rows(
                    read,
                    f"{_LIST_COLUMNS}, body",
                    visit,
                    problems.append,
                )
            finally:
                conn.close()
            lost += [_row_label(raw_id) for raw_id, _ in unreadable]
            async with cls(dst, durability=durability) as store:
                for session in sessions:
                    await store.save(session)
        finally:
            owner.release()
        return Salvage([s.id for s in sessions], lost, problems)

    def __repr__(self) -> str:
        state = "closed" if self._closing else "open"
        return f"SqliteStore({self.path!r}, durability={self.durability!r}, {state})"
