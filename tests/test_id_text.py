"""Session id text: the canonical form and nothing else, in the API and on the wire [IDS].

``SessionId.parse`` (behind every call that takes an id, and behind the
adapter's ``session`` field) accepts exactly the text ``str(id)`` gives:
lower-case hex, 8-4-4-4-12, hyphens.  Every other spelling that Python's
``uuid.UUID`` would have taken is ``INVALID_ARGUMENT``; a port needs one
regular expression, and no two texts name the same session.
"""

from __future__ import annotations

import uuid

import pytest

from meerkat_ref import InvalidArgument, SessionId
from meerkat_ref.registry import WireError, from_wire

ONE = "00000000-0000-0000-0000-00000000abcd"

# Every one of these is a UUID to Python's uuid.UUID, and not canonical.
NOT_CANONICAL = [
    ONE.upper(),
    "{" + ONE + "}",
    "urn:uuid:" + ONE,
    ONE.replace("-", ""),
    " " + ONE,
    ONE + "\n",
    "000000000000000000000000000_abcd",  # int(text, 16) allows "_" between digits
    " 0000000000000000000000000000abcd",  # and a leading space
    "0000000-00000-0000-0000-00000000abcd",  # the hyphens in the wrong places
]


@pytest.mark.parametrize("text", NOT_CANONICAL, ids=repr)
def test_python_accepts_it_but_the_contract_does_not(text: str) -> None:
    uuid.UUID(text.strip())  # the old rule: any text uuid.UUID parses
    with pytest.raises(InvalidArgument, match="canonical UUID text"):
        SessionId.parse(text)


@pytest.mark.parametrize("text", NOT_CANONICAL, ids=repr)
def test_on_the_wire_it_is_invalid_argument_not_bad_request(text: str) -> None:
    with pytest.raises(InvalidArgument):
        from_wire({"cmd": "read", "session": text})
    with pytest.raises(WireError) as info:  # a session that is not a string: the shape
        from_wire({"cmd": "read", "session": 1})
    assert info.value.code == "BAD_REQUEST"


def test_canonical_text_round_trips() -> None:
    for n in (1, 0xABC, 2**128 - 1):
        sid = SessionId.from_int(n)
        assert SessionId.parse(str(sid)) == sid
        assert SessionId.parse(sid) is sid
    fresh = SessionId.new()
    assert SessionId.parse(str(fresh)) == fresh
