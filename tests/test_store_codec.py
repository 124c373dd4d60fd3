"""The JSON body format of the SQLite store (``store/_codec.py``): what it writes it reads back.

Every message type and any value round-trips ([STORE-LOAD]); a body it did
not write, or that is damaged in any of the ways listed here, is refused
with ``SessionStoreError`` naming the session where it can ([STORE-DAMAGE]);
what it could not read back it refuses to write.  (Moved from
``test_store_contract.py``, which now runs the store contract itself.)
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
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
from meerkat_ref.store import decode_session, encode_session
from meerkat_ref.testing._store_checks import rich_session
from meerkat_ref.testing._store_checks import sample_session as session


def sid(n: int) -> SessionId:
    return SessionId.from_int(n)


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
