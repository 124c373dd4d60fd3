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
    fsync per write.

Damage is contained per row: a row whose listing columns are corrupt is
skipped by ``list`` and recorded in ``corrupt_ids`` (plus a log warning); a
row whose body is corrupt makes ``load`` of that id raise
``SessionStoreError`` naming it.  Neither hides or breaks any other row.
``check()`` scans every body for such damage.
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import logging
import os
import sqlite3
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Literal, TypeVar

import trio

from .._errors import SessionStoreError
from .._types import InvalidArgument, Session, SessionFilter, SessionId, SessionMeta
from ._codec import decode_metadata, decode_session, encode_metadata, encode_session

__all__ = ["SCHEMA_VERSION", "Durability", "SqliteStore"]

_log = logging.getLogger(__name__)

T = TypeVar("T")

Durability = Literal["normal", "full"]

SCHEMA_VERSION = 1
"""Kept in ``PRAGMA user_version``.  0 means a fresh file; anything above this
was written by a newer build and is refused rather than misread."""

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_CHECK_BATCH = 256

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

_UPSERT = """
    INSERT INTO sessions
        (id, created_at, updated_at, message_count, total_tokens, metadata, body)
    VALUES (?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (id) DO UPDATE SET
        created_at = excluded.created_at,
        updated_at = excluded.updated_at,
        message_count = excluded.message_count,
        total_tokens = excluded.total_tokens,
        metadata = excluded.metadata,
        body = excluded.body
"""

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


class _CorruptRow(Exception):
    """Internal: a listing row that cannot be turned into a ``SessionMeta``."""


def _count(value: object, name: str) -> int:
    if type(value) is not int:
        raise _CorruptRow(f"{name} is {type(value).__name__} {value!r}, not an integer")
    return value


def _meta_from_row(row: Sequence[object]) -> SessionMeta:
    raw_id, created_at, updated_at, message_count, total_tokens, metadata = row
    if not isinstance(raw_id, str):
        raise _CorruptRow(f"id is {type(raw_id).__name__}, not text")
    try:
        session_id = SessionId.parse(raw_id)
    except InvalidArgument:
        raise _CorruptRow("id is not a UUID") from None
    if str(session_id) != raw_id:
        raise _CorruptRow("id is not in canonical form")  # load() could never find it
    try:
        meta_map = decode_metadata(metadata)
    except SessionStoreError as exc:
        raise _CorruptRow(str(exc)) from None
    return SessionMeta(
        id=session_id,
        created_at=_count(created_at, "created_at"),
        updated_at=_count(updated_at, "updated_at"),
        message_count=_count(message_count, "message_count"),
        total_tokens=_count(total_tokens, "total_tokens"),
        metadata=meta_map,
    )


def _row_label(raw_id: object) -> str:
    return raw_id if isinstance(raw_id, str) else repr(raw_id)


def _write(conn: sqlite3.Connection, sql: str, params: Sequence[object]) -> None:
    """Run one statement in its own explicit transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(sql, params)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise


def _guarded(
    fn: Callable[[sqlite3.Connection], T],
    conn: sqlite3.Connection,
    what: str,
    session_id: SessionId | None,
) -> T:
    """Run ``fn`` (in a worker thread), turning driver errors into ``SessionStoreError``."""
    try:
        return fn(conn)
    except (sqlite3.Error, OverflowError) as exc:
        # OverflowError: a Python int beyond SQLite's 64 bits.
        raise SessionStoreError(
            f"{what} failed: {type(exc).__name__}: {exc}", session_id=session_id
        ) from exc


def _check_batch(
    conn: sqlite3.Connection, after: int | None
) -> tuple[list[tuple[object, str | None]], int | None]:
    """One batch of ``check``: rows after rowid ``after``, decoded.

    Returns the failures as (raw id, reason), reason ``None`` when the id
    itself is damaged, and the rowid to continue after (``None`` at the end).
    """
    if after is None:
        cursor = conn.execute(
            "SELECT rowid, id, body FROM sessions ORDER BY rowid LIMIT ?", (_CHECK_BATCH,)
        )
    else:
        cursor = conn.execute(
            "SELECT rowid, id, body FROM sessions WHERE rowid > ? ORDER BY rowid LIMIT ?",
            (after, _CHECK_BATCH),
        )
    rows = cursor.fetchall()
    failures: list[tuple[object, str | None]] = []
    for _rowid, raw_id, body in rows:
        try:
            expected = SessionId.parse(raw_id)
        except InvalidArgument:
            failures.append((raw_id, None))
            continue
        if str(expected) != raw_id:
            failures.append((raw_id, None))
            continue
        try:
            decode_session(body, expected_id=expected)
        except SessionStoreError as exc:
            failures.append((raw_id, exc.message))
    more = len(rows) == _CHECK_BATCH
    return failures, (int(rows[-1][0]) if more else None)


def _configure(conn: sqlite3.Connection, path: str, durability: Durability) -> None:
    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if str(mode).lower() != "wal" and path != ":memory:":
        _log.warning("session store %s: WAL unavailable, journal mode is %s", path, mode)
    conn.execute(f"PRAGMA synchronous={'FULL' if durability == 'full' else 'NORMAL'}")

    def check_version() -> int:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise SessionStoreError(
                f"session store {path!r} has schema version {version}, newer than the "
                f"{SCHEMA_VERSION} this build understands; refusing to open it "
                f"(upgrade meerkat-ref, or use another file)"
            )
        if version < 0:
            raise SessionStoreError(f"session store {path!r} has unknown schema version {version}")
        return version

    check_version()  # before taking the write lock: a refused file is not touched
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = check_version()  # again, under the lock: another opener may have won
        for statement in _SCHEMA:
            conn.execute(statement)
        if version != SCHEMA_VERSION:
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise


def _open(path: str, durability: Durability, busy_timeout: float) -> sqlite3.Connection:
    if path != ":memory:" and not path.startswith("file:"):
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            raise SessionStoreError(
                f"cannot open session store {path!r}: directory {parent!r} does not exist"
            )
    try:
        conn = sqlite3.connect(
            path,
            timeout=busy_timeout,
            # Used from Trio's worker threads, one at a time (see SqliteStore._lock).
            check_same_thread=False,
            # Autocommit: transactions are explicit (BEGIN IMMEDIATE ... COMMIT).
            isolation_level=None,
        )
    except sqlite3.Error as exc:
        raise SessionStoreError(f"cannot open session store {path!r}: {exc}") from exc
    try:
        _configure(conn, path, durability)
    except sqlite3.Error as exc:
        conn.close()
        raise SessionStoreError(f"cannot open session store {path!r}: {exc}") from exc
    except BaseException:
        conn.close()
        raise
    return conn


class SqliteStore:
    """A ``SessionStore`` backed by one SQLite file.

    ``SqliteStore(path)`` opens (and if needed creates) the database right
    away, which is brief blocking I/O; inside Trio prefer
    ``await SqliteStore.open(path)``, which does it in a worker thread.  Use
    it as ``async with`` or call ``aclose()``.

    ``threaded=False`` runs each call on the event loop's own thread.  The
    explorer uses it: a call in a worker thread looks "blocked" to
    ``wait_all_tasks_blocked``, so a controlled schedule could move on before
    the write lands.  Each call is still preceded by a scheduling point, so
    interleavings around store calls are explored all the same.

    ``busy_timeout`` (seconds) is how long a write waits for another process
    holding the file's write lock before failing with ``SessionStoreError``.

    ``corrupt_ids`` holds the row ids (as stored text) that this store has
    found damaged: by ``list`` (listing columns), ``load`` (body) or
    ``check`` (body).  A later successful ``save`` or ``delete`` of the id
    removes it.

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
    ) -> None:
        if durability not in ("normal", "full"):
            raise InvalidArgument(f"durability must be 'normal' or 'full', got {durability!r}")
        self.path = os.fspath(path)
        self.durability: Durability = durability
        self.corrupt_ids: set[str] = set()
        # One connection, one user at a time.  A trio.Lock around each
        # to_thread call (rather than a threading.Lock inside it): waiters
        # queue fairly in Trio and stay cancellable, and they do not each
        # park a worker thread.  to_thread.run_sync is not abandoned on
        # cancel, so the lock is only released once the thread is done with
        # the connection.
        self._lock = trio.Lock()
        self._threaded = threaded
        self._conn: sqlite3.Connection | None = _open(self.path, durability, busy_timeout)

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str],
        *,
        durability: Durability = "normal",
        busy_timeout: float = 5.0,
    ) -> SqliteStore:
        """Construct in a worker thread, so opening never blocks the event loop."""
        make = functools.partial(cls, path, durability=durability, busy_timeout=busy_timeout)
        return await trio.to_thread.run_sync(make)

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
        """Close the connection; idempotent.  Later calls raise ``SessionStoreError``."""
        # Shielded: an aclose that was asked for completes even when cancelled.
        with trio.CancelScope(shield=True):
            async with self._lock:
                conn, self._conn = self._conn, None
                if conn is not None:
                    await trio.to_thread.run_sync(
                        _guarded, lambda c: c.close(), conn, f"closing {self.path!r}", None
                    )

    @property
    def closed(self) -> bool:
        return self._conn is None

    async def _call(
        self,
        fn: Callable[[sqlite3.Connection], T],
        what: str,
        session_id: SessionId | None = None,
    ) -> T:
        async with self._lock:
            conn = self._conn
            if conn is None:
                raise SessionStoreError(
                    f"{what}: session store {self.path!r} is closed", session_id=session_id
                )
            if not self._threaded:
                return _guarded(fn, conn, what, session_id)
            return await trio.to_thread.run_sync(_guarded, fn, conn, what, session_id)

    def _record(self, label: str, reason: str) -> None:
        if label not in self.corrupt_ids:
            self.corrupt_ids.add(label)
            _log.warning("session store %s: corrupt row %s: %s", self.path, label, reason)

    # --- the SessionStore protocol ----------------------------------------

    async def save(self, session: Session) -> None:
        def op(conn: sqlite3.Connection) -> None:
            body = encode_session(session)
            metadata = encode_metadata(session.metadata)
            params = (
                str(session.id),
                session.created_at,
                session.updated_at,
                session.message_count,
                session.total_tokens(),
                metadata,
                body,
            )
            _write(conn, _UPSERT, params)

        await self._call(op, f"save session {session.id}", session.id)
        self.corrupt_ids.discard(str(session.id))

    async def load(self, session_id: SessionId) -> Session | None:
        def op(conn: sqlite3.Connection) -> Session | SessionStoreError | None:
            row = conn.execute(
                "SELECT body FROM sessions WHERE id = ?", (str(session_id),)
            ).fetchone()
            if row is None:
                return None
            try:
                return decode_session(row[0], expected_id=session_id)
            except SessionStoreError as exc:
                return exc  # raised below, after recording the damage

        result = await self._call(op, f"load session {session_id}", session_id)
        if isinstance(result, SessionStoreError):
            self._record(str(session_id), result.message)
            raise result
        return result

    async def list(self, filter: SessionFilter = _EVERYTHING) -> list[SessionMeta]:
        query = list_query(filter)
        if query is None:
            await trio.lowlevel.checkpoint()  # still a checkpoint, like every call
            return []
        sql, params = query

        def op(conn: sqlite3.Connection) -> tuple[list[SessionMeta], list[tuple[str, str]]]:
            metas: list[SessionMeta] = []
            damaged: list[tuple[str, str]] = []
            for row in conn.execute(sql, params):
                try:
                    metas.append(_meta_from_row(row))
                except _CorruptRow as exc:
                    damaged.append((_row_label(row[0]), str(exc)))
            return metas, damaged

        metas, damaged = await self._call(op, "list sessions")
        for label, reason in damaged:
            self._record(label, reason)
        return metas

    async def delete(self, session_id: SessionId) -> None:
        def op(conn: sqlite3.Connection) -> None:
            _write(conn, "DELETE FROM sessions WHERE id = ?", (str(session_id),))

        await self._call(op, f"delete session {session_id}", session_id)
        self.corrupt_ids.discard(str(session_id))

    async def exists(self, session_id: SessionId) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            row = conn.execute(
                "SELECT 1 FROM sessions WHERE id = ? LIMIT 1", (str(session_id),)
            ).fetchone()
            return row is not None

        return await self._call(op, f"exists session {session_id}", session_id)

    # --- maintenance ------------------------------------------------------

    async def check(self) -> builtins.list[SessionId]:
        """Integrity check: decode every body; return the ids that fail.

        Reads the whole table, in batches by rowid so other calls can run in
        between.  Rows whose id is not a UUID cannot be returned as a
        ``SessionId``; they are recorded in ``corrupt_ids`` (and logged) only.
        Rows changed during the scan are seen in whichever state the batch
        read.
        """
        bad: builtins.list[SessionId] = []
        last: int | None = None
        while True:
            batch = functools.partial(_check_batch, after=last)
            failures, last = await self._call(batch, "check sessions")
            for raw_id, reason in failures:
                label = _row_label(raw_id)
                if reason is None:
                    self._record(label, "id is not a canonical UUID")
                else:
                    self._record(label, reason)
                    bad.append(SessionId.parse(raw_id))
            if last is None:
                return bad

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else "open"
        return f"SqliteStore({self.path!r}, durability={self.durability!r}, {state})"
