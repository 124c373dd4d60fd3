"""Twins: two clients with the same calls are explored in one order, and judged up to a swap.

DPOR has a client wait to call until its twin has (``_scenarios.twins``),
and names twins alike in an end state (``_run.end_view``).  Sound only
because the service cannot tell its callers apart; ``--audit`` runs
mirrors to check that (``_audit.Auditor.mirrors``).  Here: the relation
itself, the reduction against DPOR without it (same end states, same
violations, fewer schedules), against the plain DFS, and the audit catching
a service that does tell its callers apart.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio

from meerkat_ref import PersistentSessionService, SessionId
from meerkat_ref.oracle.check import in_process
from meerkat_ref.oracle.engine import Scenario
from meerkat_ref.oracle.engine._dpor import DporRun, DporScheduler, explore_dpor
from meerkat_ref.oracle.engine._scenarios import ClientOp, twins
from meerkat_ref.oracle.engine._scheduler import explore_with
from meerkat_ref.oracle.sweep import calls, group
from meerkat_ref.oracle.targets import InProcessTarget
from meerkat_ref.variants import Variant

REFERENCE = Variant.parse("reference")


def _calls(*names: str, sessions: int = 1) -> list[tuple[str, object]]:
    every = dict(calls(sessions))
    return [(name, every[name]) for name in names]


def test_twins_are_clients_with_the_same_calls_each_mapped_to_the_nearest_before_it() -> None:
    scenario = group("idle", 1, _calls("turn", "read", "turn", "turn"))
    assert twins(scenario) == {"c:turn-2": "c:turn-0", "c:turn-3": "c:turn-2"}
    assert twins(group("idle", 2, _calls("read1", "read2", sessions=2))) == {}
    # A different number of attempts is a different client.
    (name, ops), (other, _) = scenario.clients[:2]
    again = Scenario("x", "", clients=((name, ops), (other, (ClientOp(ops[0].op, 2),))))
    assert twins(again) == {}


def test_a_scenario_that_cancels_a_caller_has_no_twins() -> None:
    scenario = group("idle", 1, _calls("turn", "turn"))
    assert twins(scenario)
    from dataclasses import replace

    assert twins(replace(scenario, cancels=1)) == {}


def _dpor(scenario: Scenario, *, in_order: bool, monkeypatch: pytest.MonkeyPatch) -> Any:
    from meerkat_ref.oracle.engine import _dpor as dpor

    monkeypatch.setattr(DporRun, "twins_in_order", in_order)
    monkeypatch.setattr(dpor, "ANSWERS_FIRST", False)  # twins alone: the same end states

    async def run(target: InProcessTarget) -> Any:
        return await explore_dpor(target, scenario)

    return in_process(REFERENCE.target(), run)


@pytest.mark.parametrize(("situation", "sessions", "names", "faults"), [
    ("idle", 1, ("turn", "turn"), 1),
    ("stored", 2, ("archive2", "archive2"), 1),
    ("host", 1, ("page", "rearm", "rearm"), 1),
    ("empty", 1, ("create", "create"), 0),  # with a fault too: 35 s here
])
def test_twins_in_order_reach_every_end_state_in_fewer_schedules(
        situation: str, sessions: int, names: tuple[str, ...], faults: int,
        monkeypatch: pytest.MonkeyPatch) -> None:
    scenario = group(situation, sessions, _calls(*names, sessions=sessions), faults=faults,
                     crashes=1)
    ordered = _dpor(scenario, in_order=True, monkeypatch=monkeypatch)
    every = _dpor(scenario, in_order=False, monkeypatch=monkeypatch)
    assert ordered.exhausted and every.exhausted
    assert ordered.end_states == every.end_states
    assert ordered.violations == every.violations == 0
    assert ordered.schedules < every.schedules


class TellsCallersApart(PersistentSessionService):
    """Remembers which task called ``archive`` first; if its label ends in ``-1``, an archive
    keeps the row.  Only the order of the twins' first calls tells, so DPOR's twins in order
    never meet it, and the mirror audit does."""

    first: str | None = None

    async def archive(self, session_id: SessionId | str) -> None:
        if self.first is None:
            self.first = trio.lowlevel.current_task().name
        await super().archive(session_id)

    async def _remove_row(self, sid: SessionId) -> bool:
        if self.first is not None and self.first.endswith("-1"):
            return await self.store.exists(sid)  # the row stays
        return await super()._remove_row(sid)


def _telling() -> InProcessTarget:
    cls: type = TellsCallersApart
    return InProcessTarget(lambda b, c, s, p: cls(b, c, s, points=p),
                           description="TellsCallersApart")


def test_the_mirror_audit_catches_a_service_that_tells_its_callers_apart() -> None:
    scenario = group("idle", 1, _calls("archive", "archive"))

    async def run(target: InProcessTarget) -> Any:
        plain = await explore_dpor(target, scenario)
        audited = await explore_with(target, scenario, DporScheduler(audit=1), store="memory")
        return plain, audited

    plain, audited = in_process(_telling(), run)
    # In order, archive-0 always archives first: the broken half is the mirrors' alone.
    assert plain.exhausted and plain.violations == 0
    assert audited.oracle_errors
    assert {e.kind for e in audited.oracle_errors} == {"twins-differ"}, audited.oracle_errors


def test_the_reference_passes_the_mirror_audit() -> None:
    scenario = group("stored", 2, _calls("archive2", "archive2", sessions=2), faults=1,
                     crashes=1)

    async def run(target: InProcessTarget) -> Any:
        return await explore_with(target, scenario, DporScheduler(audit=1), store="memory")

    report = in_process(REFERENCE.target(), run)
    assert report.exhausted and report.audited > report.schedules
    assert report.oracle_errors == []


@pytest.mark.parametrize("name", ["idle/2s/turn1+turn1/fault/crash",
                                  "mixed/2s/list+list/fault/crash"])
def test_the_reference_passes_every_audit_on_twin_groups_of_the_default_scope(
        name: str) -> None:
    """Twins, a fault and a crash at once: the mirrors, the footprints, the sleep sets and
    the crash's claims (answers first among them), every pair run both ways."""
    from meerkat_ref.oracle.sweep import SCOPES, scenarios

    (scenario,) = [s for s in scenarios(SCOPES["default"]) if s.name == name]
    assert twins(scenario)

    async def run(target: InProcessTarget) -> Any:
        return await explore_with(target, scenario, DporScheduler(audit=1), store="memory")

    report = in_process(REFERENCE.target(), run)
    assert report.exhausted and report.violations == 0
    assert report.audited > report.schedules
    assert report.oracle_errors == []
