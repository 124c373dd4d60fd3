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
from meerkat_ref.oracle.sweep import SCOPES, calls, every_budget, group, scenarios
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
    # Every end state of the plain DFS, or one that covers it (a crash moved past answers:
    # ``_dpor``, "Answers before a crash"), and none it does not reach.
    assert dpor.end_states <= plain.end_states and not dpor.uncovered(plain)
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
        # Too big for the plain DFS to finish here: whatever it did reach, DPOR reached too
        # (or covered).
        assert not dpor.uncovered(plain)
        assert plain.violations == dpor.violations == 0
        return
    assert dpor.end_states <= plain.end_states and not dpor.uncovered(plain)
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


# -- a crash: tried only where it can end differently --------------------------------------


def _crash_restart(monkeypatch: pytest.MonkeyPatch, crash: Footprint | None,
                   audit: int | None = None) -> Any:
    from meerkat_ref.oracle.engine import _dpor

    monkeypatch.setattr(_dpor, "CRASH_FOOTPRINT", crash)
    return explore(REFERENCE.target(), get_scenario("crash-restart"), audit=audit)


def test_a_crash_is_tried_only_where_it_can_end_differently(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash right after a step that touched no row, invoked or answered no call and
    changed nothing the rules know of calls in flight ends exactly as a crash right before
    it: the crash's footprint (``CRASH_FOOTPRINT``) says so, and DPOR crashes the run once
    per such stretch.  Against a crash that conflicts with everything (``None``, as before
    it had a footprint): the same end states and verdicts, in fewer schedules."""
    from meerkat_ref.oracle.engine._dpor import CRASH_FOOTPRINT

    finer = _crash_restart(monkeypatch, CRASH_FOOTPRINT)
    coarse = _crash_restart(monkeypatch, None)
    print(f"crash-restart: {finer.schedules} schedules, {coarse.schedules} with a crash "
          "that conflicts with everything")
    assert finer.exhausted and coarse.exhausted
    assert finer.end_states <= coarse.end_states and not finer.uncovered(coarse)
    assert finer.violations == coarse.violations == 0
    assert finer.schedules < coarse.schedules  # 186 against 313 when written


def test_the_audit_runs_a_crash_both_sides_of_a_step_it_does_not_conflict_with(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The crash's footprint is a claim like any declaration: for each step it does not
    conflict with, a crash right before and one right after are run, each to the end of
    the read-back, and must end alike.  The reference passes; a crash footprint that
    leaves the store's rows out is caught: a crash right after an archive's delete ends
    without the row, one right before it with."""
    from meerkat_ref.oracle.engine._dpor import CRASH_FOOTPRINT

    honest = _crash_restart(monkeypatch, CRASH_FOOTPRINT, audit=1)
    assert honest.audited > 0 and not honest.oracle_errors
    blind = Footprint(CRASH_FOOTPRINT.reads - {("row", "*")})
    lying = _crash_restart(monkeypatch, blind, audit=1)
    errors = [e for e in lying.oracle_errors if e.kind == "not-commuting"]
    assert errors, "the audit let a crash footprint without the store through"
    assert all("crash" in e.message and "store.delete" in e.message for e in errors)
    assert any("store: " in e.message for e in errors)  # the row, there or gone
    assert errors[0].schedule[-1].crash


def _first_answers(monkeypatch: pytest.MonkeyPatch, on: bool, name: str = "crash-restart",
                   audit: int | None = None) -> Any:
    from meerkat_ref.oracle.engine import _dpor

    monkeypatch.setattr(_dpor, "ANSWERS_FIRST", on)
    return explore(REFERENCE.target(), get_scenario(name), audit=audit)


def test_a_crash_is_not_tried_right_before_a_step_that_only_answers(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash right after a step that only answers calls covers one right before it: the
    same rows, the cut calls answered, every rule at least as strict (``_dpor``, "Answers
    before a crash").  Against every race with a crash reversed: fewer schedules, the
    same verdicts, and every end state reached or covered."""
    first = _first_answers(monkeypatch, True)
    every = _first_answers(monkeypatch, False)
    print(f"crash-restart: {first.schedules} schedules, {every.schedules} with every race "
          "with a crash reversed")
    assert first.exhausted and every.exhausted
    assert first.schedules < every.schedules
    assert first.end_states <= every.end_states and not first.uncovered(every)
    assert first.violations == every.violations == 0


@pytest.mark.parametrize(("mutant", "scenario", "rule"), [
    ("ArchiveKeepsRow", "crash-restart", "ARCHIVE-FINAL"),
    ("ReadLiveOnly", "crash-restart", "LINEARIZABLE"),
])
def test_answers_before_a_crash_keep_the_crash_verdicts_of_the_mutants(
        monkeypatch: pytest.MonkeyPatch, mutant: str, scenario: str, rule: str) -> None:
    from stateful import mutants

    from meerkat_ref.oracle.engine import _dpor

    found = {}
    for on in (True, False):
        monkeypatch.setattr(_dpor, "ANSWERS_FIRST", on)
        report = explore(_mutant(getattr(mutants, mutant)), get_scenario(scenario))
        found[on] = {v.rule for run in report.violating for v in run.violations}
    assert rule in found[False]
    assert found[True] == found[False]


def test_the_audit_checks_that_a_crash_after_an_answer_covers_one_before_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The reference passes; a classifier that calls a step that also writes a row
    "only answers" is caught: the crash after it leaves another store."""
    from meerkat_ref.oracle.engine import _dpor

    honest = _first_answers(monkeypatch, True, audit=1)
    assert honest.audited > 0 and not honest.oracle_errors
    real = _dpor._answers_only

    def careless(node: Any) -> bool:
        fp = node.footprint
        return real(node) or (fp is not None and any(g == "resp" for g, _ in fp.writes))

    monkeypatch.setattr(_dpor, "_answers_only", careless)
    # A create saves its row and answers in one step of its caller's task.
    every = dict(calls(1))
    scenario = group("empty", 1, [("create", every["create"]), ("read", every["read"])],
                     crashes=1)
    lying = explore(REFERENCE.target(), scenario, audit=1)
    errors = [e for e in lying.oracle_errors if e.kind == "not-covered"]
    assert errors, "the audit let a step that writes a row through as one that only answers"
    assert any("the store differs" in e.message for e in errors)


def test_a_shutdown_that_raises_is_a_violation_not_an_oracle_crash() -> None:
    """The service under test failing in ``shutdown()`` is its breach of [SHUTDOWN], reported
    in the run that met it; the oracle goes on (found by a planted bug that made ``check``
    end in a traceback)."""
    from meerkat_ref import PersistentSessionService

    class ShutdownRaises(PersistentSessionService):
        async def shutdown(self) -> None:
            await super().shutdown()
            raise RuntimeError("planted: a shutdown that fails")

    report = explore(_mutant(ShutdownRaises), get_scenario("turns-at-once"))
    broken = [v for run in report.violating for v in run.violations if v.rule == "SHUTDOWN"]
    assert broken and "RuntimeError: planted" in broken[0].message


def test_the_crash_audit_takes_a_run_s_own_end_as_the_crash_after_its_last_step() -> None:
    """A crash right after a run's last step is the run's end (DPOR counts a run that ends
    as crashing at its very end): the audit compares the crash before that step with it,
    instead of reporting that no crash could follow (a false oracle error ``sweep --audit``
    met on this group)."""
    from meerkat_ref.oracle.engine._dpor import DporScheduler
    from meerkat_ref.oracle.engine._scheduler import explore_with

    (scenario,) = [s for s in scenarios(SCOPES["default"])
                   if s.name == "empty/1s/create-host+cancel/fault/crash"]

    async def run(target: InProcessTarget) -> Any:
        return await explore_with(target, scenario, DporScheduler(audit=1), store="memory")

    report = in_process(REFERENCE.target(), run)
    assert report.exhausted and report.audited > 0
    assert report.oracle_errors == []
