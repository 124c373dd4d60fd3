"""Rule WIRE-FIELDS of spec/ADAPTER.md: a command of the wrong shape is BAD_REQUEST; a bad value,
INVALID_ARGUMENT; both before anything is touched.

The registry checks every service command's fields (``from_wire``); the
adapter server answers with the code the check raised.  Shape: a required
field missing, a field of the wrong JSON type, a value outside its enum, a
field the command does not list.  Value: what clause INPUT rejects (an id
that is not canonical text, a negative page, a blank model).  JSON has one
number type, so ``1.0`` is the integer 1.
"""

from __future__ import annotations

from typing import Any

import pytest

from meerkat_ref import InvalidArgument
from meerkat_ref._model import model
from meerkat_ref.oracle.engine._cases import random_cases
from meerkat_ref.oracle.server import Server
from meerkat_ref.oracle.targets import dumps
from meerkat_ref.registry import OPERATIONS, WireError, expand, from_wire, operation, to_wire
from meerkat_ref.variants import Variant

S1 = model.sid(1)

WRONG_SHAPE: list[dict[str, Any]] = [
    {"cmd": "create"},
    {"cmd": "create", "prompt": 7},
    {"cmd": "create", "prompt": "x", "initial_turn": "later"},
    {"cmd": "create", "prompt": "x", "initial_turn": None},
    {"cmd": "create", "prompt": "x", "system_prompt": 3},
    {"cmd": "create", "prompt": "x", "bogus": 1},
    {"cmd": "create", "prompt": "x", "hostmode": True},
    {"cmd": "start_turn", "session": S1, "prompt": "x", "host_mode": 1},
    {"cmd": "start_turn", "session": S1},
    {"cmd": "inject", "session": S1, "text": None},
    {"cmd": "read", "session": 1},
    {"cmd": "read", "session": S1, "prompt": "x"},
    {"cmd": "list", "limit": "2"},
    {"cmd": "list", "limit": 1.5},
    {"cmd": "list", "offset": True},
    {"cmd": "list", "page": 1},
    {"cmd": "cancel_all_checkpointers", "session": S1},
]

BAD_VALUE: list[dict[str, Any]] = [
    {"cmd": "read", "session": "not-a-uuid"},
    {"cmd": "read", "session": S1.upper().replace("1", "B")},
    {"cmd": "archive", "session": "{" + S1 + "}"},
    {"cmd": "list", "limit": -1},
    {"cmd": "list", "offset": -2.0},
    {"cmd": "create", "prompt": "x", "model": " "},
]


@pytest.mark.parametrize("cmd", WRONG_SHAPE, ids=dumps)
def test_a_command_of_the_wrong_shape_is_bad_request(cmd: dict[str, Any]) -> None:
    with pytest.raises(WireError) as info:
        from_wire(cmd)
    assert info.value.code == "BAD_REQUEST"
    assert cmd["cmd"] in info.value.message


@pytest.mark.parametrize("cmd", BAD_VALUE, ids=dumps)
def test_a_well_shaped_value_the_contract_rejects_is_invalid_argument(
    cmd: dict[str, Any],
) -> None:
    with pytest.raises(InvalidArgument):
        from_wire(cmd)


def test_an_integer_is_a_number_with_no_fraction() -> None:
    op = from_wire({"cmd": "list", "offset": 1.0, "limit": 2})
    assert op == model.List(offset=1, limit=2)
    assert isinstance(op.offset, int)


def test_every_drawn_operation_goes_to_the_wire_and_back() -> None:
    """The codec is derived from each operation's field table: ``from_wire`` inverts ``to_wire``
    on every plain operation the random vectors draw, and the command carries only listed
    fields."""
    seen: set[str] = set()
    for case in random_cases(count=8, faults=True):
        for op in case.ops:
            for plain in expand(op):
                cmd = to_wire(plain)
                assert set(cmd) - {"cmd"} <= set(operation(plain).fields)
                assert from_wire(cmd) == plain
                seen.add(cmd["cmd"])
    assert seen == {o.name for o in OPERATIONS}


def test_a_bad_shape_is_found_before_a_bad_value() -> None:
    """A command both ill-shaped and ill-valued is BAD_REQUEST, as its schema says [WIRE-FIELDS]."""
    for cmd in ({"cmd": "create", "model": " "}, {"cmd": "start_turn", "session": "nope"},
                {"cmd": "list", "offset": -1, "limit": "2"}):
        with pytest.raises(WireError) as info:
            from_wire(cmd)
        assert info.value.code == "BAD_REQUEST"


async def test_the_adapter_answers_the_code_and_touches_nothing() -> None:
    out: list[dict[str, Any]] = []
    async with Variant.parse("reference").target() as target:
        server = Server(target, out.append, "reference")
        lines = [{"id": "0", "cmd": "open", "capacity": 1, "persistant": False},
                 {"id": "1", "cmd": "open", "capacity": 1},
                 {"id": "2", "cmd": "create", "prompt": "x", "bogus": 1},
                 {"id": "3", "cmd": "create", "prompt": "x", "model": ""},
                 {"id": "4", "cmd": "create", "prompt": "x", "task": "t"},
                 {"id": "5", "cmd": "settle"}]
        for line in lines:
            await server.handle(dumps(line))
    answers = {m["id"]: m for m in out if "id" in m}
    assert answers["0"]["error"]["code"] == "BAD_REQUEST"  # control commands too
    assert "persistant" in answers["0"]["error"]["message"]
    assert answers["2"]["error"]["code"] == "BAD_REQUEST"
    assert "bogus" in answers["2"]["error"]["message"]
    assert answers["3"]["error"]["code"] == "INVALID_ARGUMENT"
    # Neither took the one place: the third create, with its task label, runs.
    assert answers["4"]["ok"]["session_id"] == S1
