"""A store call fails in two ways, each explored: a third-party store's ``OSError`` and the
store contract's own ``SessionStoreError`` (``targets._points``, [STORE-FAILURE]).

A service may handle the two apart (``service/_gate.py`` passes a
``SessionError`` on and wraps any other), so a bug in either branch must be
found.  Here: each branch broken on its own is found by DPOR and by the plain
DFS, and a target that offers only the plain fault misses the one in the
contract's branch (so the kind, not luck, is what finds it); the points raise
what the kind names; a schedule keeps the kind, and an old one without it
still reads.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest
import trio
from helpers import ADAPTER_TIMEOUT

from meerkat_ref import SessionStoreError
from meerkat_ref._errors import SessionError
from meerkat_ref.oracle.check import in_process
from meerkat_ref.oracle.engine import Scenario
from meerkat_ref.oracle.engine._dpor import explore_dpor
from meerkat_ref.oracle.engine._search import explore_dfs
from meerkat_ref.oracle.engine._strategies import Choice
from meerkat_ref.oracle.sweep import calls, group
from meerkat_ref.oracle.targets import InProcessTarget, adapter_target
from meerkat_ref.oracle.targets._adapter import _fault_kinds
from meerkat_ref.oracle.targets._points import FAULT_KINDS, ControlledPoints
from meerkat_ref.oracle.targets._wire import ProtocolError
from meerkat_ref.service import _gate
from meerkat_ref.service._gate import CheckpointerGate
from meerkat_ref.store._base import SessionStore
from meerkat_ref.variants import Variant

REFERENCE = Variant.parse("reference")
ADAPTER = [sys.executable, "-m", "meerkat_ref.adapter"]


def _swallowing(kind: type[Exception]) -> Any:
    """A gate's ``write`` that takes a save failing with ``kind`` as a save done (the turn
    or create answers ok, nothing is durable): a planted bug of one branch.

    It wraps the real ``write``, which passes the store's own ``SessionError`` on as it
    is and wraps any other exception (its ``__cause__``): so what the store raised is
    told apart exactly as the gate's two branches tell it."""
    original = CheckpointerGate.write

    async def write(self: CheckpointerGate, store: SessionStore, session: Any, *,
                    checkpoint: bool) -> bool:
        try:
            return await original(self, store, session, checkpoint=checkpoint)
        except SessionStoreError as exc:
            raised = exc if exc.__cause__ is None else exc.__cause__
            if isinstance(raised, kind):
                return True  # the bug: an answer given before the work is durable
            raise

    return write


class _PlainFaultsOnly(InProcessTarget):
    @property
    def fault_kinds(self) -> tuple[str, ...]:
        return ()


def _scenario() -> Scenario:
    every = dict(calls(1))
    return group("empty", 1, [("create", every["create"]), ("turn", every["turn"])], faults=1)


def _explore(target: InProcessTarget, search: str) -> Any:
    scenario = _scenario()

    async def run(t: InProcessTarget) -> Any:
        if search == "dpor":
            return await explore_dpor(t, scenario)
        return await explore_dfs(t, scenario, bound=None, reduce=False, max_schedules=3000)

    return in_process(target, run)


@pytest.mark.parametrize("search", ["dpor", "dfs"])
@pytest.mark.parametrize("swallowed", [SessionError, OSError])
def test_a_save_failure_swallowed_in_either_branch_is_found(
        search: str, swallowed: type[Exception], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_gate.CheckpointerGate, "write", _swallowing(swallowed))
    report = _explore(REFERENCE.target(), search)
    assert report.violations, report
    rules = {v.rule for run in report.violating for v in run.violations}
    assert "DURABILITY" in rules, rules
    kinds = {c.kind for run in report.violating for c in run.choices if c.fault}
    assert kinds == ({"store-error"} if swallowed is SessionError else {""}), kinds


def test_with_the_plain_fault_only_the_contracts_branch_goes_unseen(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_gate.CheckpointerGate, "write", _swallowing(SessionError))
    plain = _explore(_PlainFaultsOnly(REFERENCE.factory, description="plain faults only"),
                     "dpor")
    assert plain.exhausted and plain.violations == 0
    both = _explore(REFERENCE.target(), "dpor")
    assert both.violations and both.schedules > plain.schedules


def test_the_reference_passes_both_ways_in_more_schedules() -> None:
    plain = _explore(_PlainFaultsOnly(REFERENCE.factory, description="plain faults only"),
                     "dpor")
    both = _explore(REFERENCE.target(), "dpor")
    assert plain.exhausted and both.exhausted
    assert plain.violations == both.violations == 0
    assert plain.schedules < both.schedules
    assert set(both.end_views) == set(plain.end_views)  # the same ends, reached both ways


@pytest.mark.parametrize(("kind", "raised"), [("", OSError), ("store-error", SessionStoreError)])
def test_a_released_fault_raises_what_its_kind_names(kind: str, raised: type) -> None:
    points = ControlledPoints()
    points.enabled = True
    caught: list[BaseException] = []

    async def task() -> None:
        try:
            await points.point("store.save")
        except Exception as exc:
            caught.append(exc)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(task, name="t")
            await trio.testing.wait_all_tasks_blocked()
            (label,) = points.parked
            points.release(label, fault=True, kind=kind)

    trio.run(main)
    (exc,) = caught
    assert type(exc) is raised, exc


def test_a_kind_no_target_offers_is_refused() -> None:
    assert set(FAULT_KINDS) == {"store-error"}
    points = ControlledPoints()
    points.enabled = True

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(points.point, "store.save", name="t")
            await trio.testing.wait_all_tasks_blocked()
            (label,) = points.parked
            with pytest.raises(ValueError, match="no fault kind"):
                points.release(label, fault=True, kind="disk-on-fire")
            with pytest.raises(ValueError, match="no fault kind"):
                points.release(label, fault=False, kind="store-error")
            points.release(label)

    trio.run(main)


def test_a_schedule_keeps_the_kind_and_an_old_one_reads_as_the_plain_fault() -> None:
    choice = Choice("c:turn", fault=True, kind="store-error")
    assert choice.to_json() == {"run": "c:turn", "fault": True, "kind": "store-error"}
    assert Choice.from_json(choice.to_json()) == choice
    assert Choice.from_json({"run": "c:turn", "fault": True}) == Choice("c:turn", fault=True)
    assert Choice.from_json({"run": "c:turn", "kind": "store-error"}) == Choice("c:turn")
    with pytest.raises(ValueError):
        Choice.from_json({"run": "c:turn", "fault": True, "kind": 3})


@pytest.mark.parametrize(("value", "caps", "says"), [
    ("store-error", frozenset({"faults"}), "must be a list"),
    (["store error"], frozenset({"faults"}), "must be a list"),
    (["", "x"], frozenset({"faults"}), "must be a list"),
    (["x", "x"], frozenset({"faults"}), "must be a list"),
    ([3], frozenset({"faults"}), "must be a list"),
])
def test_a_hello_whose_fault_kinds_are_not_names_is_a_protocol_error(
        value: Any, caps: frozenset[str], says: str) -> None:
    with pytest.raises(ProtocolError, match=says):
        _fault_kinds(value, caps)
    assert _fault_kinds(["store-error", "timeout-2"], frozenset({"faults"})) == (
        "store-error", "timeout-2")
    assert _fault_kinds([], frozenset()) == ()
    assert _fault_kinds(["store-error"], frozenset({"points"})) == ()  # not offered: unread


@pytest.mark.parametrize(("caps", "offered"), [
    ("points,faults", ("store-error",)), ("points", ())])
def test_the_reference_adapter_offers_its_ways_with_faults_only(
        caps: str, offered: tuple[str, ...]) -> None:
    argv = [*ADAPTER, "--capabilities", caps]

    async def main() -> None:
        async with adapter_target(argv, ADAPTER_TIMEOUT) as target:
            assert target.fault_kinds == offered
            if offered:  # a way it does not offer is refused before it is sent
                with pytest.raises(ValueError, match="offers no fault kind"):
                    await target.release("c:x", fault=True, kind="disk-on-fire")

    trio.run(main)
