"""The SessionStore contract, run against every store.

The same tests run on ``MemoryStore`` and ``SqliteStore``, so the in-memory
reference and the real backend cannot drift apart.  SQLite-only tests at the
end cover what memory cannot fail at: restarts, damaged rows, schema versions,
driver errors.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from types import MappingProxyType

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from meerkat_ref._errors import SessionStoreError
from meerkat_ref._types import (
    AssistantMessage,
    InvalidArgument,
    Message,
    Session,
    SessionFilter,
    SessionId,
    SessionMeta,
    SystemMessage,
    ToolResultMessage,
    Usage,
    UserMessage,
    list_order_key,
)
from meerkat_ref.store import (
    MemoryStore,
    PointedStore,
    SessionStore,
    SqliteStore,
    decode_session,
    encode_session,
)
from meerkat_ref.store._sqlite import SCHEMA_VERSION, list_query

AnyStore = MemoryStore | SqliteStore

STORE_KINDS = ["memory", "sqlite"]


def _make(kind: str, directory: Path) -> AnyStore:
    if kind == "memory":
        return MemoryStore()
    return SqliteStore(directory / "sessions.db")


@pytest.fixture(params=STORE_KINDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AnyStore]:
    made = _make(request.param, tmp_path)
    try:
        yield made
    finally:
        if isinstance(made, SqliteStore):
            await made.aclose()


def sid(n: int) -> SessionId:
    return SessionId.from_int(n)


def session(
    n: int,
    *,
    created: int = 0,
    updated: int | None = None,
    messages: tuple[Message, ...] = (),
    metadata: dict[str, str] | None = None,
    revision: int = 0,
) -> Session:
    return Session(
        id=sid(n),
        created_at=created,
        updated_at=created if updated is None else updated,
        messages=messages,
        metadata=MappingProxyType(dict(metadata or {})),
        revision=revision,
    )


ALL_MESSAGES: tuple[Message, ...] = (
    SystemMessage("be brief"),
    UserMessage('hello ✓ \u0000 \ud800 "quoted"'),
    AssistantMessage("hi", Usage(input_tokens=3, output_tokens=5)),
    AssistantMessage(""),
    ToolResultMessage(tool_use_id="tool-1", content="42"),
    ToolResultMessage(tool_use_id="tool-2", content="boom", is_error=True),
)


def rich_session(n: int = 1) -> Session:
    base = session(n, created=10, updated=20, metadata={"model": "m", "ü": "ß"})
    s = base
    for i, m in enumerate(ALL_MESSAGES):
        s = s.push(m, now=20 + i)
    return s


EVERYTHING = SessionFilter()


def model_list(model: dict[SessionId, Session], f: SessionFilter = EVERYTHING) -> list[SessionMeta]:
    """The contract of ``list``, written as plainly as possible."""
    metas = sorted(
        (s.meta() for s in model.values()), key=lambda m: list_order_key(m.updated_at, m.id)
    )
    metas = [m for m in metas if f.admits(m)]
    start = f.offset or 0
    stop = None if f.limit is None else start + f.limit
    return metas[start:stop]


# --- the contract, on every store -----------------------------------------


async def test_round_trip_every_message_type(store: AnyStore) -> None:
    s = rich_session()
    await store.save(s)
    loaded = await store.load(s.id)
    assert loaded == s
    assert loaded is not None
    assert loaded.messages == ALL_MESSAGES
    assert loaded.usage == Usage(3, 5)
    assert dict(loaded.metadata) == {"model": "m", "ü": "ß"}
    assert (loaded.revision, loaded.version) == (len(ALL_MESSAGES), 1)
    [meta] = await store.list()
    assert meta == s.meta()


async def test_save_replaces(store: AnyStore) -> None:
    await store.save(rich_session(1))
    replacement = session(1, created=10, updated=99, messages=(UserMessage("only"),), revision=7)
    await store.save(replacement)
    assert await store.load(sid(1)) == replacement
    assert await store.list() == [replacement.meta()]


async def test_saved_metadata_is_not_aliased(store: AnyStore) -> None:
    metadata = {"k": "v"}
    await store.save(Session(id=sid(1), created_at=0, updated_at=0, metadata=metadata))
    metadata["k"] = "changed"
    loaded = await store.load(sid(1))
    assert loaded is not None
    assert dict(loaded.metadata) == {"k": "v"}


async def test_load_missing_is_none(store: AnyStore) -> None:
    assert await store.load(sid(404)) is None
    await store.save(session(1))
    assert await store.load(sid(404)) is None


async def test_list_order_newest_updated_first_then_id(store: AnyStore) -> None:
    await store.save(session(3, updated=5))
    await store.save(session(1, updated=5))
    await store.save(session(2, updated=9))
    await store.save(session(4, updated=1))
    await store.save(session(0, updated=5))
    assert [m.id for m in await store.list()] == [sid(2), sid(0), sid(1), sid(3), sid(4)]


async def test_list_order_follows_updates(store: AnyStore) -> None:
    await store.save(session(1, updated=1))
    await store.save(session(2, updated=2))
    await store.save(session(1, updated=3))
    assert [m.id for m in await store.list()] == [sid(1), sid(2)]


async def test_list_filters_are_strictly_after(store: AnyStore) -> None:
    await store.save(session(1, created=1, updated=10))
    await store.save(session(2, created=2, updated=20))
    await store.save(session(3, created=3, updated=30))

    async def ids(f: SessionFilter) -> list[SessionId]:
        return [m.id for m in await store.list(f)]

    assert await ids(SessionFilter(created_after=1)) == [sid(3), sid(2)]
    assert await ids(SessionFilter(created_after=3)) == []
    assert await ids(SessionFilter(created_after=-1)) == [sid(3), sid(2), sid(1)]
    assert await ids(SessionFilter(updated_after=20)) == [sid(3)]
    assert await ids(SessionFilter(updated_after=19)) == [sid(3), sid(2)]
    assert await ids(SessionFilter(created_after=1, updated_after=25)) == [sid(3)]
    assert await ids(SessionFilter(created_after=2, updated_after=10)) == [sid(3)]
    # Filters come before the page.
    assert await ids(SessionFilter(created_after=1, offset=1)) == [sid(2)]
    assert await ids(SessionFilter(updated_after=10, limit=1)) == [sid(3)]
    # Out of 64-bit range: clamped, not an error.
    assert await ids(SessionFilter(updated_after=2**70)) == []
    assert await ids(SessionFilter(updated_after=-(2**70))) == [sid(3), sid(2), sid(1)]


async def test_list_pagination(store: AnyStore) -> None:
    for n in range(7):
        await store.save(session(n, updated=n))
    everything = [m.id for m in await store.list()]
    assert everything == [sid(n) for n in reversed(range(7))]

    pages: list[SessionId] = []
    offset = 0
    while True:
        page = await store.list(SessionFilter(limit=3, offset=offset))
        if not page:
            break
        pages += [m.id for m in page]
        offset += 3
    assert pages == everything

    assert [m.id for m in await store.list(SessionFilter(offset=5))] == everything[5:]
    assert [m.id for m in await store.list(SessionFilter(limit=2))] == everything[:2]
    assert await store.list(SessionFilter(offset=7)) == []
    assert await store.list(SessionFilter(offset=100, limit=5)) == []
    assert await store.list(SessionFilter(offset=2**70)) == []
    assert await store.list(SessionFilter(limit=0)) == []
    assert await store.list(SessionFilter(limit=0, offset=2)) == []
    assert len(await store.list(SessionFilter(limit=2**70))) == 7


async def test_list_empty_store(store: AnyStore) -> None:
    assert await store.list() == []
    assert await store.list(SessionFilter(created_after=0, limit=3, offset=1)) == []


def test_filter_rejects_negative_page() -> None:
    with pytest.raises(InvalidArgument):
        SessionFilter(limit=-1)
    with pytest.raises(InvalidArgument):
        SessionFilter(offset=-1)


async def test_delete_is_idempotent(store: AnyStore) -> None:
    await store.save(session(1))
    await store.save(session(2))
    await store.delete(sid(1))
    await store.delete(sid(1))
    await store.delete(sid(404))
    assert await store.load(sid(1)) is None
    assert [m.id for m in await store.list()] == [sid(2)]


async def test_exists(store: AnyStore) -> None:
    assert not await store.exists(sid(1))
    await store.save(session(1))
    assert await store.exists(sid(1))
    assert not await store.exists(sid(2))
    await store.delete(sid(1))
    assert not await store.exists(sid(1))


async def test_pointed_store_passes_through(store: AnyStore) -> None:
    pointed: SessionStore = PointedStore(store)
    await pointed.save(session(1, updated=4))
    assert await pointed.exists(sid(1))
    assert await pointed.load(sid(1)) == session(1, updated=4)
    assert [m.id for m in await pointed.list()] == [sid(1)]
    await pointed.delete(sid(1))
    assert not await pointed.exists(sid(1))


async def test_every_call_is_a_checkpoint(store: AnyStore) -> None:
    """A cancelled scope stops each call before it changes anything."""
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: store.save(session(1)),
        lambda: store.load(sid(1)),
        lambda: store.list(),
        lambda: store.list(SessionFilter(limit=0)),
        lambda: store.delete(sid(1)),
        lambda: store.exists(sid(1)),
    ]
    for call in calls:
        with trio.CancelScope() as scope:
            scope.cancel()
            await call()
        assert scope.cancelled_caught
    assert not await store.exists(sid(1))


def test_memory_snapshot_and_len() -> None:
    async def main() -> None:
        store = MemoryStore()
        await store.save(session(1))
        await store.save(session(2))
        snap = store.snapshot()
        assert len(store) == 2
        assert set(snap) == {sid(1), sid(2)}
        snap.clear()  # a copy
        assert len(store) == 2

    trio.run(main)


# --- random histories against a dict model ---------------------------------

_ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("save"),
            st.integers(0, 5),  # id: few, so saves replace
            st.integers(0, 4),  # created
            st.integers(0, 4),  # updated: few, so ties need the id
            st.integers(0, 2),  # messages
        ),
        st.tuples(st.just("delete"), st.integers(0, 6), st.just(0), st.just(0), st.just(0)),
    ),
    max_size=25,
)

_filters = st.builds(
    SessionFilter,
    created_after=st.none() | st.integers(-1, 5),
    updated_after=st.none() | st.integers(-1, 5),
    limit=st.none() | st.integers(0, 7),
    offset=st.none() | st.integers(0, 7),
)


@pytest.mark.parametrize("kind", STORE_KINDS)
@settings(max_examples=30, deadline=None)
@given(ops=_ops, filters=st.lists(_filters, max_size=4))
def test_random_histories_match_model(
    kind: str, ops: list[tuple[str, int, int, int, int]], filters: list[SessionFilter]
) -> None:
    async def main(directory: Path) -> None:
        store = _make(kind, directory)
        model: dict[SessionId, Session] = {}
        try:
            for op, n, created, updated, count in ops:
                if op == "save":
                    msgs = tuple(UserMessage(f"m{i}") for i in range(count))
                    s = session(n, created=created, updated=updated, messages=msgs)
                    await store.save(s)
                    model[s.id] = s
                else:
                    await store.delete(sid(n))
                    model.pop(sid(n), None)
                assert await store.list() == model_list(model)
            for f in filters:
                assert await store.list(f) == model_list(model, f)
            for n in range(7):
                assert await store.load(sid(n)) == model.get(sid(n))
                assert await store.exists(sid(n)) == (sid(n) in model)
        finally:
            if isinstance(store, SqliteStore):
                await store.aclose()

    with tempfile.TemporaryDirectory() as directory:
        trio.run(main, Path(directory))


# --- codec -----------------------------------------------------------------


def test_codec_round_trip() -> None:
    s = rich_session()
    text = encode_session(s)
    assert json.loads(text)["format"] == 1
    assert decode_session(text) == s
    assert decode_session(text.encode()) == s
    assert decode_session(text, expected_id=s.id) == s


_texts = st.text(max_size=8)
_usages = st.builds(Usage, st.integers(-(2**70), 2**70), st.integers(0, 10))
_messages: st.SearchStrategy[Message] = st.one_of(
    st.builds(SystemMessage, _texts),
    st.builds(UserMessage, _texts),
    st.builds(AssistantMessage, _texts, _usages),
    st.builds(ToolResultMessage, _texts, _texts, st.booleans()),
)


@settings(max_examples=50, deadline=None)
@given(
    n=st.integers(0, 2**128 - 1),
    times=st.tuples(st.integers(), st.integers()),
    messages=st.lists(_messages, max_size=4),
    metadata=st.dictionaries(_texts, _texts, max_size=3),
    usage=_usages,
    revision=st.integers(),
)
def test_codec_round_trips_anything(
    n: int,
    times: tuple[int, int],
    messages: list[Message],
    metadata: dict[str, str],
    usage: Usage,
    revision: int,
) -> None:
    s = Session(
        id=sid(n),
        created_at=times[0],
        updated_at=times[1],
        messages=tuple(messages),
        metadata=metadata,
        usage=usage,
        revision=revision,
    )
    assert decode_session(encode_session(s)) == s


def _good_doc() -> dict[str, object]:
    doc = json.loads(encode_session(rich_session(7)))
    assert isinstance(doc, dict)
    return doc


def _mutated(change: Callable[[dict[str, object]], object]) -> str:
    doc = _good_doc()
    change(doc)
    return json.dumps(doc)


def _message(doc: dict[str, object], i: int) -> dict[str, object]:
    messages = doc["messages"]
    assert isinstance(messages, list)
    item = messages[i]
    assert isinstance(item, dict)
    return item


_ID7 = str(sid(7))

GARBAGE_WITH_ID: dict[str, str] = {
    "unknown role": _mutated(lambda d: _message(d, 1).update(role="wizard")),
    "role missing": _mutated(lambda d: _message(d, 1).pop("role")),
    "role not a string": _mutated(lambda d: _message(d, 1).update(role=3)),
    "message not an object": _mutated(lambda d: d.update(messages=["hi"])),
    "messages not a list": _mutated(lambda d: d.update(messages={"0": {}})),
    "content not a string": _mutated(lambda d: _message(d, 1).update(content=None)),
    "is_error not a bool": _mutated(lambda d: _message(d, 4).update(is_error=1)),
    "assistant usage missing": _mutated(lambda d: _message(d, 2).pop("usage")),
    "message extra field": _mutated(lambda d: _message(d, 0).update(extra=1)),
    "missing field": _mutated(lambda d: d.pop("created_at")),
    "missing usage": _mutated(lambda d: d.pop("usage")),
    "bool as int": _mutated(lambda d: d.update(revision=True)),
    "float as int": _mutated(lambda d: d.update(updated_at=1.5)),
    "string as int": _mutated(lambda d: d.update(created_at="1")),
    "usage wrong type": _mutated(lambda d: d.update(usage=[1, 2])),
    "usage field wrong": _mutated(lambda d: d.update(usage={"input_tokens": 1})),
    "metadata value not string": _mutated(lambda d: d.update(metadata={"a": 1})),
    "metadata not object": _mutated(lambda d: d.update(metadata=[])),
    "unknown format": _mutated(lambda d: d.update(format=2)),
    "format missing": _mutated(lambda d: d.pop("format")),
    "format as string": _mutated(lambda d: d.update(format="1")),
    "unknown top-level field": _mutated(lambda d: d.update(surprise=True)),
}

GARBAGE_WITHOUT_ID: dict[str, str | bytes] = {
    "empty": "",
    "not json": "{not json",
    "truncated": encode_session(rich_session(7))[:-5],
    "json array": "[]",
    "json null": "null",
    "json number": "42",
    "empty object": "{}",
    "bad id": _mutated(lambda d: d.update(id="not-a-uuid")),
    "id not canonical": _mutated(lambda d: d.update(id="{" + _ID7 + "}")),
    "id not a string": _mutated(lambda d: d.update(id=7)),
    "NaN": '{"format": NaN}',
    "deep nesting": "[" * 100_000 + "]" * 100_000,
    "not utf-8": b"\xff\xfe{}",
}


@pytest.mark.parametrize("name", sorted(GARBAGE_WITH_ID))
def test_codec_rejects_garbage_naming_the_session(name: str) -> None:
    with pytest.raises(SessionStoreError) as info:
        decode_session(GARBAGE_WITH_ID[name])
    assert _ID7 in str(info.value)
    assert info.value.session_id == sid(7)
    assert info.value.code == "SESSION_STORE_ERROR"


@pytest.mark.parametrize("name", sorted(GARBAGE_WITHOUT_ID))
def test_codec_rejects_garbage(name: str) -> None:
    with pytest.raises(SessionStoreError):
        decode_session(GARBAGE_WITHOUT_ID[name])
    # The caller's id names the session even when the body cannot.
    with pytest.raises(SessionStoreError) as info:
        decode_session(GARBAGE_WITHOUT_ID[name], expected_id=sid(9))
    assert str(sid(9)) in str(info.value)


def test_codec_rejects_body_of_another_session() -> None:
    with pytest.raises(SessionStoreError) as info:
        decode_session(encode_session(session(8)), expected_id=sid(9))
    assert str(sid(9)) in str(info.value)


def test_codec_refuses_to_encode_what_it_cannot_decode() -> None:
    bad = Session(id=sid(1), created_at=0, updated_at=0, metadata={"n": 1})  # type: ignore[dict-item]
    with pytest.raises(SessionStoreError, match=str(sid(1))):
        encode_session(bad)


# --- SQLite only ------------------------------------------------------------


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


async def test_sqlite_restart_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    sessions = [rich_session(1), session(2, updated=5), session(3, updated=9, metadata={"a": "b"})]
    async with SqliteStore(path) as store:
        for s in sessions:
            await store.save(s)
        await store.delete(sid(2))
    assert store.closed
    async with SqliteStore(path, durability="full") as again:
        assert await again.load(sid(1)) == sessions[0]
        assert await again.load(sid(2)) is None
        assert [m.id for m in await again.list()] == [sid(1), sid(3)]
        assert await again.check() == []


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


async def test_sqlite_concurrent_calls_share_one_connection(sqlite_store: SqliteStore) -> None:
    async with trio.open_nursery() as nursery:
        for n in range(40):
            nursery.start_soon(sqlite_store.save, session(n, updated=n))
    assert [m.id for m in await sqlite_store.list()] == [sid(n) for n in reversed(range(40))]


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
