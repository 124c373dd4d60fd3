"""DPOR, the default search: as complete as the plain DFS, with far fewer schedules.

The reduction is only worth its name if it loses nothing: on every scenario
small enough for the plain DFS (every schedule, no reduction, no bound) to
finish, DPOR must reach exactly the same set of distinct end states.  The
ci profile checks the named scenarios that finish in seconds and a slice of
the generated sweep; ``MEERKAT_PROFILE=deep`` checks every named scenario
whose plain DFS finishes (minutes).  Beside it: footprints (what makes two
steps commute), the seed's windows and the test mutants found by DPOR.
"""

from __future__ import annotations

import os
from functools import partial
from typing import Any

import pytest

from meerkat_ref.oracle.check import explore, in_process
from meerkat_ref.oracle.engine import SCENARIOS, Scenario, get_scenario
from meerkat_ref.oracle.engine._dpor import explore_dpor
from meerkat_ref.oracle.sweep import SCOPES, every_budget, scenarios
from meerkat_ref.oracle.targets import Footprint, InProcessTarget
from meerkat_ref.testing import Window
from meerkat_ref.variants import Variant

DEEP = os.environ.get("MEERKAT_PROFILE") == "deep"
REFERENCE = Variant.parse("reference")

# Named scenarios whose plain DFS finishes within about 20 s here (the rest: deep profile
# only; host-create-vs-archive's plain DFS runs past 6,000 schedules).
QUICK = ["turn-save-vs-archive", "create-vs-archive", "stop-resume-vs-inject", "turns-at-once",
         "creates-at-capacity", "crash-restart"]
# A scenario that cancels a caller has no plain-DFS floor: the plain DFS cancels no caller
# (DPOR does, by plans), so their end states differ by design (benchmarks/README.md: "n/c").
SLOW = [s.name for s in SCENARIOS if s.name not in QUICK and not s.cancels]


def _both(scenario: Scenario) -> tuple[Any, Any]:
    async def run(target: InProcessTarget) -> tuple[Any, Any]:
        dpor = await explore_dpor(target, scenario)
        plain = await _plain(target, scenario)
        return dpor, plain

    return in_process(REFERENCE.target(), run)


async def _plain(target: InProcessTarget, scenario: Scenario) -> Any:
    from meerkat_ref.oracle.engine import explore_dfs

    return await explore_dfs(target, scenario, bound=None, reduce=False)


@pytest.mark.parametrize(
    "name", QUICK + [pytest.param(n, marks=pytest.mark.skipif(not DEEP, reason="deep profile"))
                     for n in SLOW]
)
def test_dpor_reaches_every_end_state_of_the_plain_dfs(name: str) -> None:
    dpor, plain = _both(get_scenario(name))
    print(f"{name}: dpor {dpor.schedules} schedules, plain {plain.schedules} "
          f"({plain.schedules / max(dpor.schedules, 1):.0f}x); {plain.states} end states")
    assert plain.exhausted and dpor.exhausted
    assert dpor.end_states == plain.end_states
    assert dpor.violations == plain.violations == 0
    assert dpor.schedules <= plain.schedules
    if name == "turn-save-vs-archive":
        assert plain.schedules >= 5 * dpor.schedules  # 985 against 107 when written


def _generated(pick: int) -> list[Scenario]:
    """A fixed slice of the default sweep, each budget apart: every ``pick``-th scenario (some
    with a fault, a crash, both or neither)."""
    every = scenarios(every_budget(SCOPES["default"]))
    return every[::pick]


@pytest.mark.parametrize("scenario", _generated(401 if not DEEP else 7), ids=lambda s: s.name)
def test_dpor_matches_plain_dfs_on_generated_scenarios(scenario: Scenario) -> None:
    async def run(target: InProcessTarget) -> tuple[Any, Any]:
        dpor = await explore_dpor(target, scenario)
        from meerkat_ref.oracle.engine import explore_dfs

        plain = await explore_dfs(target, scenario, bound=None, reduce=False,
                                  max_schedules=1_500)
        return dpor, plain

    dpor, plain = in_process(REFERENCE.target(), run)
    if not plain.exhausted:
        # Too big for the plain DFS to finish here: whatever it did reach, DPOR reached too.
        assert plain.end_states <= dpor.end_states
        assert plain.violations == dpor.violations == 0
        return
    assert dpor.end_states == plain.end_states
    assert dpor.violations == plain.violations


# -- footprints ----------------------------------------------------------------------------


def _fp(reads: list[tuple[str, str]] = [], writes: list[tuple[str, str]] = []) -> Footprint:  # noqa: B006
    return Footprint(frozenset(reads), frozenset(writes))


def test_footprints_conflict_on_a_write_meeting_an_access() -> None:
    row1, row2 = ("row", "s1"), ("row", "s2")
    assert not _fp([row1]).conflicts(_fp([row1]))  # two reads commute
    assert _fp([row1]).conflicts(_fp(writes=[row1]))
    assert _fp(writes=[row1]).conflicts(_fp(writes=[row1]))
    assert not _fp(writes=[row1]).conflicts(_fp(writes=[row2]))
    assert _fp([("row", "*")]).conflicts(_fp(writes=[row2]))  # a listing reads every row
    assert _fp(writes=[("live", "*")]).conflicts(_fp([("live", "s1")]))  # a whole group
    assert not _fp([("row", "*")]).conflicts(_fp([row2]))


def test_steps_report_what_they_touched() -> None:
    """A store call names its row; a create takes an id and ticks the clock; archive, the gate."""
    from meerkat_ref.oracle.engine._dpor import DporRun
    from meerkat_ref.oracle.engine._run import run_schedule

    async def run(target: InProcessTarget) -> list[Footprint | None]:
        tree: list[Any] = []
        await run_schedule(target, get_scenario("create-vs-archive"), DporRun(tree, 0, None,
                                                                               set()))
        return [n.footprint for n in tree]

    prints = in_process(REFERENCE.target(), run)
    assert all(p is not None for p in prints)
    touched = set().union(*(p.reads | p.writes for p in prints if p is not None))
    assert ("ids", "") in touched and ("clock", "") in touched
    assert any(group == "row" for group, _ in touched)
    assert any(group == "gate" for group, _ in touched)


# -- what DPOR must still find ----------------------------------------------------------------

WINDOW_SCENARIOS = {
    Window.SAVE_AFTER_TURN: "turn-save-vs-archive",
    Window.CREATE_RACING_ARCHIVE: "create-vs-archive",
    Window.ARCHIVED_HOST_LOOP: "host-checkpoint-vs-archive",
    Window.SKIP_BY_LENGTH: "host-checkpoint-vs-archive",
}


@pytest.mark.parametrize("window", list(Window), ids=lambda w: w.value)
def test_dpor_finds_each_seed_window_alone(window: Window) -> None:
    variant = Variant.parse(f"seed-0.4.0:{window.value}")
    report = explore(variant.target(), get_scenario(WINDOW_SCENARIOS[window]), bound=None,
                     stop_on_violation=True)
    assert report.violations, f"DPOR missed window {window.value}"


def _mutant(cls: type) -> InProcessTarget:
    return InProcessTarget(lambda b, c, s, p: cls(b, c, s, points=p), description=cls.__name__)


# Each test mutant (tests/stateful/mutants.py), and the named scenario `check` finds it in
# with the rule it breaks: every class of bug the stateful tests know, found by `check` alone.
CHECK_FINDS = [
    ("ArchiveKeepsRow", "turn-save-vs-archive", "ARCHIVE-FINAL"),
    ("ReadLiveOnly", "create-vs-archive", "LINEARIZABLE"),
    ("CapacityAfterBuild", "creates-at-capacity", "CAPACITY"),
    ("IgnoresArming", "stop-resume-vs-inject", "CHECKPOINT-GATE"),
    ("DisarmStopsSaves", "saves-beside-a-disarm", "DURABILITY"),
    ("CheckThenAct", "turns-at-once", "TURN-BUSY"),
    ("PageBeforeMerge", "list-page-vs-create", "LINEARIZABLE"),
    ("ShutdownStopsNothing", "turns-at-once", "SHUTDOWN"),
    ("ShutdownWaitsForNone", "turns-at-once", "SHUTDOWN"),
    ("DropsQueuedTurns", "create-vs-archive", "LIVENESS"),
    ("InjectorOutlivesTask", "turns-at-once", "HOST-MESSAGE"),
    ("InterruptFreesTurn", "interrupt-then-turn", "LINEARIZABLE"),
]


def test_every_mutant_has_a_scenario_here() -> None:
    from stateful.mutants import service_mutants

    assert set(service_mutants()) == {m for m, _, _ in CHECK_FINDS}


@pytest.mark.parametrize(("mutant", "scenario", "rule"), CHECK_FINDS)
def test_check_finds_each_mutant(mutant: str, scenario: str, rule: str) -> None:
    from stateful import mutants

    report = explore(_mutant(getattr(mutants, mutant)), get_scenario(scenario), bound=None)
    first = report.first()
    assert first is not None, f"check's {scenario} let {mutant} through"
    # The rule the mutant breaks is named in some run (LINEARIZABLE, which compares every
    # run with the concurrent model, often names it first).
    assert rule in {v.rule for run in report.violating for v in run.violations}


@pytest.mark.parametrize(("mutant", "scope", "generated"), [
    # The default scope explores these groups with a fault and a crash (``/fault/crash``),
    # which covers them without (``tests/test_sweep.py``); the group without, here, is
    # the same finding in a tenth of the schedules.
    ("CheckThenAct", "default", "idle/1s/turn+turn"),
    ("PageBeforeMerge", "default", "stored/2s/create+page"),
    # three calls: no pair shows it, the ci3 scope (every CI run) does
    ("InterruptFreesTurn", "ci3", "idle/1s/turn+turn+interrupt"),
])
def test_sweep_finds_the_mutants(mutant: str, scope: str, generated: str) -> None:
    from stateful import mutants

    from meerkat_ref.oracle.sweep import explore_scenarios

    every = scenarios(every_budget(SCOPES[scope]))
    chosen = [(i, s) for i, s in enumerate(every) if s.name == generated]
    assert len(chosen) == 1
    (row,) = explore_scenarios(partial(_mutant, getattr(mutants, mutant)), chosen)
    assert row.rules, f"the sweep's {generated} let {mutant} through"


def test_a_store_fault_is_a_step_of_its_own_so_no_schedule_repeats_a_trace() -> None:
    """DPOR explores a store fault as a process of its own (``FAULTED``: ``t!fault``
    beside ``t`` while ``t`` waits at a store call), in the scenario's one tree.  So no
    complete schedule repeats another's trace; with a fault decided in advance (a plan
    per store call, each a tree of its own), every interleaving in which a turn was
    refused busy, and so never made its planned save, ran again."""
    from meerkat_ref.oracle.engine import foata, outcome_steps

    scenario = next(s for s in scenarios(every_budget(SCOPES["default"]))
                    if s.name == "idle/1s/turn+turn/fault")
    forms: set[object] = set()
    complete: list[bool] = []

    def seen(outcome: Any) -> None:
        if not outcome.aborted:
            complete.append(any(c.fault for c in outcome.choices))
            forms.add(foata(outcome_steps(outcome)))

    report = in_process(REFERENCE.target(),
                        lambda target: explore_dpor(target, scenario, seen=seen))
    assert report.exhausted and report.violations == 0
    assert any(complete) and not all(complete)  # runs with the fault and without it
    assert len(complete) == len(forms), f"{len(complete)} schedules, {len(forms)} traces"
