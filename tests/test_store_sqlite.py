"""What only ``SqliteStore`` does or fails at: damaged rows, schema versions, its index.

The store contract itself (what any store must do) runs for SQLite and memory
alike in ``test_store_contract.py``, through ``check_session_store``; these
are our SQLite store's own promises beyond it and the ways it words them.
(Moved from ``test_store_contract.py``.)
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from meerkat_ref._errors import SessionStoreError
from meerkat_ref._types import InvalidArgument, SessionFilter, SessionId
from meerkat_ref.store import SqliteStore, encode_session
from meerkat_ref.store._sqlite import SCHEMA_VERSION, list_query
from meerkat_ref.testing._store_checks import sample_session as session


def sid(n: int) -> SessionId:
    return SessionId.from_int(n)


def _raw(path: Path, sql: str, params: tuple[object, ...] = ()) -> None:
    """Change the file behind the store's back, as damage or another process would."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute(sql, params)
    finally:
        conn.close()


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    async with await SqliteStore.open(tmp_path / "sessions.db") as store:
        yield store


async def test_sqlite_closed_store_raises(sqlite_store: SqliteStore) -> None:
    await sqlite_store.aclose()
    await sqlite_store.aclose()  # idempotent
    with pytest.raises(SessionStoreError, match="closed"):
        await sqlite_store.load(sid(1))
    with pytest.raises(SessionStoreError, match="closed"):
        await sqlite_store.save(session(1))


async def test_sqlite_corrupt_body(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    async with SqliteStore(path) as store:
        for n in range(1, 4):
            await store.save(session(n, updated=n))
        _raw(path, "UPDATE sessions SET body = ? WHERE id = ?", ("{broken", str(sid(2))))
        with pytest.raises(SessionStoreError) as info:
            await store.load(sid(2))
        assert str(sid(2)) in str(info.value)
        assert info.value.session_id == sid(2)
        assert str(sid(2)) in store.corrupt_ids
        # Everything else is untouched.
        assert await store.load(sid(1)) == session(1, updated=1)
        assert await store.load(sid(3)) == session(3, updated=3)
        assert [m.id for m in await store.list()] == [sid(3), sid(2), sid(1)]
        assert await store.exists(sid(2))  # exists never decodes the body
        assert await store.check() == [sid(2)]
        # Saving over the damage repairs it.
        await store.save(session(2, updated=2))
        assert await store.load(sid(2)) == session(2, updated=2)
        assert str(sid(2)) not in store.corrupt_ids
        assert await store.check() == []


async def test_sqlite_body_of_another_session(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    async with SqliteStore(path) as store:
        await store.save(session(1))
        await store.save(session(2))
        _raw(
            path,
            "UPDATE sessions SET body = ? WHERE id = ?",
            (encode_session(session(2)), str(sid(1))),
        )
        with pytest.raises(SessionStoreError, match=str(sid(1))):
            await store.load(sid(1))
        assert await store.load(sid(2)) == session(2)
        assert await store.check() == [sid(1)]


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("updated_at", "yesterday"),
        ("created_at", None),
        ("message_count", 1.5),
        ("total_tokens", b"\x00"),
        ("metadata", "{not json"),
        ("metadata", '{"a": 1}'),
        ("metadata", "[]"),
        ("id", "not-a-uuid"),
        ("id", f"urn:uuid:{SessionId.from_int(2)}"),  # a UUID, but not canonical
    ],
)
async def test_sqlite_corrupt_listing_columns(
    tmp_path: Path, column: str, value: object, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "sessions.db"
    async with SqliteStore(path) as store:
        for n in range(1, 4):
            await store.save(session(n, updated=n))
        _raw(path, f"UPDATE sessions SET {column} = ? WHERE id = ?", (value, str(sid(2))))
        label = value if column == "id" else str(sid(2))
        with caplog.at_level(logging.WARNING, logger="meerkat_ref.store._sqlite"):
            listed = await store.list()
        assert [m.id for m in listed] == [sid(3), sid(1)]
        assert label in store.corrupt_ids
        assert label in caplog.text
        # Filters and pages still work around it (the offset counts the bad row).
        assert [m.id for m in await store.list(SessionFilter(updated_after=0))] == [sid(3), sid(1)]
        pages = [await store.list(SessionFilter(limit=1, offset=i)) for i in range(4)]
        assert [m.id for page in pages for m in page] == [sid(3), sid(1)]
        # Other rows are unaffected.
        assert await store.load(sid(1)) == session(1, updated=1)
        assert await store.load(sid(3)) == session(3, updated=3)


async def test_sqlite_check_reports_bad_id_rows(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    async with SqliteStore(path) as store:
        await store.save(session(1))
        _raw(path, "INSERT INTO sessions (id, body) VALUES ('junk', 'junk')")
        _raw(path, "INSERT INTO sessions (id, body) VALUES (NULL, NULL)")
        assert await store.check() == []
        assert {"junk", "None"} <= store.corrupt_ids
        assert [m.id for m in await store.list()] == [sid(1)]


async def test_sqlite_check_scans_in_batches(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "s.db") as store:
        for n in range(600):
            await store.save(session(n))
        _raw(tmp_path / "s.db", "UPDATE sessions SET body = 'x' WHERE id = ?", (str(sid(599)),))
        _raw(tmp_path / "s.db", "UPDATE sessions SET body = 'x' WHERE id = ?", (str(sid(0)),))
        assert sorted(await store.check()) == [sid(0), sid(599)]


def test_sqlite_future_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    _raw(path, f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(SessionStoreError, match="schema version 2"):
        SqliteStore(path)
    # Refusing did not touch the file.
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == []
    finally:
        conn.close()


async def test_sqlite_schema_creation_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    for _ in range(3):
        async with SqliteStore(path) as store:
            await store.save(session(1))
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_sqlite_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(SessionStoreError, match="does not exist"):
        SqliteStore(tmp_path / "no" / "such" / "sessions.db")


async def test_sqlite_open_missing_directory_async(tmp_path: Path) -> None:
    with pytest.raises(SessionStoreError):
        await SqliteStore.open(tmp_path / "nope" / "sessions.db")


def test_sqlite_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(SessionStoreError, match="not an SQLite database"):
        SqliteStore(path)


def test_sqlite_bad_durability(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument):
        SqliteStore(tmp_path / "s.db", durability="sometimes")  # type: ignore[arg-type]


async def test_sqlite_driver_errors_are_wrapped(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    async with SqliteStore(path, busy_timeout=0) as store:
        await store.save(session(1))
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
            with pytest.raises(SessionStoreError, match="locked") as info:
                await store.save(session(2))
            assert info.value.session_id == sid(2)
            assert isinstance(info.value.__cause__, sqlite3.OperationalError)
            # Reads still work in WAL mode, and the failed save left nothing.
            assert not await store.exists(sid(2))
            other.execute("ROLLBACK")
        finally:
            other.close()
        await store.save(session(2))  # the connection is still usable
        assert await store.exists(sid(2))


async def test_sqlite_out_of_range_integers_are_wrapped(sqlite_store: SqliteStore) -> None:
    with pytest.raises(SessionStoreError, match="Overflow"):
        await sqlite_store.save(session(1, created=2**64))
    assert not await sqlite_store.exists(sid(1))


@pytest.mark.parametrize(
    "f",
    [
        SessionFilter(),
        SessionFilter(limit=10, offset=20),
        SessionFilter(updated_after=5, limit=10),
    ],
)
async def test_sqlite_list_pages_from_the_index(tmp_path: Path, f: SessionFilter) -> None:
    """``list`` is an index scan: no sort of the table, no read of ``body``."""
    await (await SqliteStore.open(tmp_path / "s.db")).aclose()  # creates the schema
    query = list_query(f)
    assert query is not None
    sql, params = query
    assert "body" not in sql
    conn = sqlite3.connect(tmp_path / "s.db")
    try:
        plan = " ".join(str(row[-1]) for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params))
    finally:
        conn.close()
    assert "sessions_by_updated" in plan, plan
    assert "TEMP B-TREE" not in plan, plan
