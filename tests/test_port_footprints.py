"""Footprints over a port (issue 18, item 5): a port declares them, DPOR reduces with them,
and ``--audit`` checks them.

A port that offers the capability ``footprints`` declares in its ``hello``
what each step of it may touch, in the contract's resources
(``spec/ADAPTER.md`` section 6).  The oracle owns no seam of a port, so the
declaration is believed as written, for the store, the clock and the ids
too, and only ``check --adapter --audit`` can show it wrong.  Here: the
declaration survives the wire; a declaration that is not one is a protocol
error naming why; the reference's adapter, declaring its own, is explored
with fewer schedules and reaches exactly the end states it reaches without
(every step touching everything); a port whose declaration leaves out what
a turn's step touches is caught by the audit (exit 3), and so is one that
only a sleep set believes (no run shows it as a pair).
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest
import trio
from helpers import ADAPTER_TIMEOUT

from meerkat_ref._seams import Footprints
from meerkat_ref.cli import main
from meerkat_ref.oracle.engine import get_scenario
from meerkat_ref.oracle.engine._dpor import explore_dpor
from meerkat_ref.oracle.targets import adapter_target
from meerkat_ref.oracle.targets._footprints import GROUPS
from meerkat_ref.service._placement import EPHEMERAL_FOOTPRINTS, FOOTPRINTS, SEED_FOOTPRINTS
from meerkat_ref.specgen._schema import errors

PORTS = Path(__file__).resolve().parent / "ports"
PYTHON = shlex.quote(sys.executable)
ALL = "points,faults,placement,events,exit"


def lying(lie: str) -> str:
    return f"{PYTHON} {shlex.quote(str(PORTS / 'lying_footprints.py'))} {lie}"


@pytest.mark.parametrize("declared", [FOOTPRINTS, SEED_FOOTPRINTS, EPHEMERAL_FOOTPRINTS],
                         ids=["reference", "seed", "ephemeral"])
def test_a_declaration_goes_over_the_wire_and_back_unchanged(declared: Footprints) -> None:
    assert Footprints.from_json(declared.to_json(), GROUPS) == declared


@pytest.mark.parametrize(("value", "says"), [
    ([], "must be an object"),
    ({"callers": {}}, "unknown key 'callers'"),
    ({"caller": []}, "footprints.caller must be an object"),
    ({"caller": {"store.save": ["row:<id>"]}}, "footprints.caller.store.save must be"),
    ({"call": {"read": {"reads": "row:<id>"}}}, "footprints.call.read.reads must be a list"),
    ({"session": {"agent.step": {"writes": ["disk"]}}}, "'disk' is not a resource"),
    ({"session": {"agent.step": {"writes": ["row:s1"]}}}, "'row:s1' is not a resource"),
    ({"session": {"agent.step": {"writes": ["row:"]}}}, "'row:' is not a resource"),
    ({"session": {"agent.step": {"reads": [], "writes": [], "may": []}}}, "must be"),
])
def test_a_declaration_that_is_not_one_is_refused_saying_where(value: object, says: str) -> None:
    with pytest.raises(ValueError, match=None) as caught:
        Footprints.from_json(value, GROUPS)
    assert says in str(caught.value)


def test_a_port_declaring_no_resource_of_the_contract_is_a_protocol_error(
        capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["check", "--adapter", lying("not-a-declaration"), "--scenario",
                 "turns-at-once", "--timeout", str(ADAPTER_TIMEOUT)])
    err = capsys.readouterr().err
    assert code == 1
    assert "hello offers footprints, but its declaration is not one" in err
    assert "'disk:<id>' is not a resource" in err


async def _explore(argv: list[str], scenario: str) -> tuple[int, set[str]]:
    async with adapter_target(argv, ADAPTER_TIMEOUT) as target:
        report = await explore_dpor(target, get_scenario(scenario))
    assert report.exhausted and not report.violating
    return report.schedules, report.end_states


# (turn-save-vs-archive: 110 against 985, and 15 s more of CI; the figures of every named
# scenario are README's, "Exploring a port in full")
@pytest.mark.parametrize("scenario", ["turns-at-once", "interrupt-then-turn"])
def test_a_port_with_footprints_is_explored_in_fewer_schedules_to_the_same_end_states(
        scenario: str) -> None:
    reference = [sys.executable, "-m", "meerkat_ref.adapter"]
    declared = trio.run(_explore, reference, scenario)
    undeclared = trio.run(_explore, [*reference, "--capabilities", ALL], scenario)
    assert declared[1] == undeclared[1]  # every behaviour, each once
    assert declared[0] < undeclared[0]


def test_the_audit_catches_a_port_whose_turn_steps_touch_more_than_it_declares(
        capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["check", "--adapter", lying("turn-step-ticks-only"), "--scenario",
                 "turn-save-vs-archive", "--audit", "all", "--timeout", str(ADAPTER_TIMEOUT)])
    out = capsys.readouterr()
    assert code == 3, out.out + out.err
    assert "ORACLE ERROR" in out.out + out.err
    assert "session s1 at agent.step" in out.out + out.err


def test_the_audit_catches_a_lie_that_only_a_sleep_set_believes(
        capsys: pytest.CaptureFixture[str]) -> None:
    """Handing a turn over declared as touching nothing: it loses one of
    interrupt-then-turn's 8 end states, and no two adjacent steps of any run show it
    (every pair run both ways ends alike).  The lie lives in a sleep set: a second
    turn's call, explored elsewhere, kept asleep over the hand-over as independent of
    it, is never run after it.  The audit runs those claims both ways too."""
    code = main(["check", "--adapter", lying("send-touches-nothing"), "--scenario",
                 "interrupt-then-turn", "--audit", "all", "--timeout", str(ADAPTER_TIMEOUT)])
    out = capsys.readouterr()
    assert code == 3, out.out + out.err
    assert "kept asleep over it" in out.err


SCHEMA = json.loads((Path(__file__).resolve().parent.parent / "spec" / "adapter.schema.json")
                    .read_text())


def _schema_errors(kind: str, value: object) -> list[str]:
    return errors({"$ref": f"#/$defs/{kind}", "$defs": SCHEMA["$defs"]}, value, SCHEMA)


@pytest.mark.parametrize("declared", [FOOTPRINTS, SEED_FOOTPRINTS], ids=["reference", "seed"])
def test_the_schema_takes_each_declaration_and_every_resource_the_oracle_knows(
        declared: Footprints) -> None:
    hello = {"protocol": "meerkat-ref/adapter@1", "implementation": "x", "version": "1",
             "contract": "meerkat-session 0.4.0", "capabilities": ["points", "footprints"],
             "footprints": declared.to_json()}
    assert _schema_errors("helloValue", hello) == []
    for group in GROUPS:  # the schema's list of groups is the oracle's, no more, no fewer
        for name in (group, f"{group}:<id>", f"{group}:*"):
            assert _schema_errors("resourceName", name) == []
    assert _schema_errors("resourceName", "disk:<id>") != []
    assert _schema_errors("resourceName", "row:s1") != []


async def _first_step(persistent: bool) -> tuple[bool, bool]:
    """(declared, the first step of a create has a footprint) over the reference's adapter."""
    from meerkat_ref._model import model

    argv = [sys.executable, "-m", "meerkat_ref.adapter"]
    async with adapter_target(argv, ADAPTER_TIMEOUT) as target:
        await target.open(2, persistent)
        await target.control(True)
        await target.call(model.Create("a"), "c:a")
        settled = await target.settle()
        return target.footprints is not None, settled.footprint is not None


def test_the_declaration_is_the_persistent_service_s() -> None:
    """``spec/ADAPTER.md`` section 6: an ephemeral service is explored without it."""
    assert trio.run(_first_step, True) == (True, True)
    assert trio.run(_first_step, False) == (True, False)
