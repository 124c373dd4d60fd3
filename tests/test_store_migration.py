"""Rows written before the msgspec codec read as before; rows written now read the old way.

``tests/fixtures/store-schema1.db`` was written by ``SqliteStore`` at commit
639c319 (schema version 1, bodies by the standard library's ``json`` with
``ensure_ascii``), by ``write_fixture`` below run against that commit.  The
store and the body format kept their version numbers (schema 1, format 1):
the new encoder writes the same layout, spelling non-ASCII text as UTF-8
instead of ``\\u`` escapes, so both kinds of rows are one format, and
``decode_session``'s checked path (the previous decoder, kept) reads both.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import MappingProxyType

from hypothesis import given, settings
from hypothesis import strategies as st

from meerkat_ref._errors import SessionStoreError
from meerkat_ref._types import (
    AssistantMessage,
    Message,
    Session,
    SessionId,
    SystemMessage,
    ToolResultMessage,
    Usage,
    UserMessage,
)
from meerkat_ref.store import SqliteStore, decode_session, encode_session
from meerkat_ref.store._codec import _decode_checked, encode_session_stdlib
from meerkat_ref.store._sqlite import SCHEMA_VERSION

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "store-schema1.db"


def fixture_sessions() -> list[Session]:
    """What ``write_fixture`` saved (session 5 twice, 13 saved then deleted)."""
    out = []
    msgs: tuple[Message, ...] = (
        SystemMessage("be brief"),
        UserMessage('hello ✓ \u0000 \ud800 "quoted"'),
        AssistantMessage("hi ü", Usage(3, 5)),
        AssistantMessage(""),
        ToolResultMessage(tool_use_id="tool-1", content="42"),
        ToolResultMessage(tool_use_id="tool-2", content="boom", is_error=True),
    )
    out.append(
        Session(
            id=SessionId.from_int(1),
            created_at=10,
            updated_at=25,
            messages=msgs,
            metadata=MappingProxyType({"model": "m", "ü": "ß"}),
            usage=Usage(3, 5),
            revision=6,
        )
    )
    out.append(
        Session(
            id=SessionId.from_int(2),
            created_at=-5,
            updated_at=-1,
            messages=(UserMessage("x"),),
            revision=2**70,
            version=7,
        )
    )
    for n in range(3, 13):
        out.append(
            Session(
                id=SessionId.from_int(n),
                created_at=100 + n,
                updated_at=200 + n % 4,
                messages=(
                    UserMessage(f"prompt {n}"),
                    AssistantMessage(f"echo: prompt {n}", Usage(n, 2 * n)),
                ),
                metadata=MappingProxyType({"n": str(n)}) if n % 3 == 0 else MappingProxyType({}),
                usage=Usage(n, 2 * n),
                revision=2,
            )
        )
    return out


async def write_fixture(path: str) -> None:  # pragma: no cover - run once, at 639c319
    """How the fixture was made (with the store code of that commit)."""
    async with SqliteStore(path) as store:
        for s in fixture_sessions():
            await store.save(s)
        await store.save(Session(id=SessionId.from_int(13), created_at=1, updated_at=1))
        await store.delete(SessionId.from_int(13))
        await store.save(fixture_sessions()[3])


def test_the_fixture_is_an_old_file() -> None:
    """It really holds what the previous encoder wrote: escapes, no raw UTF-8."""
    data = FIXTURE.read_bytes()
    assert data.startswith(b"SQLite format 3\x00")
    assert int.from_bytes(data[60:64], "big") == SCHEMA_VERSION  # user_version
    assert b'"hi \\u00fc"' in data and b"\\ud800" in data
    assert "ü".encode() not in data


async def test_a_store_written_before_reads_exactly_the_same(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    shutil.copyfile(FIXTURE, path)
    expected = {s.id: s for s in fixture_sessions()}
    async with SqliteStore(path) as store:
        listed = await store.list()
        assert [m.id for m in listed] == sorted(
            expected, key=lambda i: (-expected[i].updated_at, str(i))
        )
        assert listed == [expected[m.id].meta() for m in listed]
        for session_id, session in expected.items():
            assert await store.load(session_id) == session
        assert await store.load(SessionId.from_int(13)) is None
        assert await store.check() == []
        # The new writer writes into the old file: a replaced row and a new one.
        newer = Session(
            id=SessionId.from_int(1),
            created_at=10,
            updated_at=99,
            messages=(UserMessage("ü after"),),
            metadata=MappingProxyType({"ü": "ß"}),
            revision=7,
        )
        await store.save(newer)
        await store.save(Session(id=SessionId.from_int(20), created_at=1, updated_at=2))
    expected[newer.id] = newer
    async with SqliteStore(path) as again:
        for session_id, session in expected.items():
            assert await again.load(session_id) == session
        assert await again.exists(SessionId.from_int(20))
        assert await again.check() == []


# ASCII but DEL (which the standard library escapes, msgspec does not).
_ascii = st.text(st.characters(min_codepoint=0, max_codepoint=126), max_size=12)
_any_text = st.text(max_size=8)


def _sessions(text: st.SearchStrategy[str]) -> st.SearchStrategy[Session]:
    usages = st.builds(Usage, st.integers(-(2**70), 2**70), st.integers(0, 10))
    messages: st.SearchStrategy[Message] = st.one_of(
        st.builds(SystemMessage, text),
        st.builds(UserMessage, text),
        st.builds(AssistantMessage, text, usages),
        st.builds(ToolResultMessage, text, text, st.booleans()),
    )
    return st.builds(
        lambda n, t, m, md, u, r: Session(
            id=SessionId.from_int(n),
            created_at=t[0],
            updated_at=t[1],
            messages=tuple(m),
            metadata=md,
            usage=u,
            revision=r,
        ),
        st.integers(0, 2**128 - 1),
        st.tuples(st.integers(), st.integers()),
        st.lists(messages, max_size=4),
        st.dictionaries(text, text, max_size=3),
        usages,
        st.integers(),
    )


@settings(max_examples=60, deadline=None)
@given(session=_sessions(_ascii))
def test_ascii_sessions_are_written_byte_for_byte_as_before(session: Session) -> None:
    assert encode_session(session) == encode_session_stdlib(session)


@settings(max_examples=60, deadline=None)
@given(session=_sessions(_any_text))
def test_what_is_written_now_reads_the_old_way_and_the_new(session: Session) -> None:
    new = encode_session(session)
    assert json.loads(new) == json.loads(encode_session_stdlib(session))
    assert _decode_checked(new, session.id) == session  # the previous decoder
    assert decode_session(new.encode(), expected_id=session.id) == session


def _outcome(decode: object, text: str | bytes) -> object:
    try:
        return decode(text)  # type: ignore[operator]
    except SessionStoreError as exc:
        return ("error", exc.session_id)


@settings(max_examples=120, deadline=None)
@given(
    session=_sessions(_any_text),
    cuts=st.lists(st.tuples(st.integers(0, 4_000), st.integers(0, 4), st.binary(max_size=3))),
)
def test_the_fast_decoder_never_disagrees_with_the_checked_one(
    session: Session, cuts: list[tuple[int, int, bytes]]
) -> None:
    body = bytearray(encode_session(session).encode())
    for at, drop, insert in cuts:  # damage: delete a few bytes, insert a few
        at %= len(body) + 1
        body[at : at + drop] = insert
    data = bytes(body)
    assert _outcome(decode_session, data) == _outcome(lambda t: _decode_checked(t, None), data)
