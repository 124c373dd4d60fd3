"""One scheduler protocol, and the one exploration loop that runs any scheduler.

A *scheduler* decides which schedules of a scenario to run (after
Shuttle's ``Scheduler`` trait: DFS, PCT, random and replay are one file
each, and exhaustive search is itself a scheduler).  It hands the loop one
``Strategy`` per run (``next_run``; ``None``: it has nothing left), and is
told each run's outcome (``finish``), which is where a search grows its
tree.  An *exhaustive* scheduler (DPOR, DFS) says, by running out, that
every behaviour (within its bound) was run; a sampling one (PCT, random,
Hypothesis, a replay) runs what it was asked to and claims nothing more, so
its report is never ``exhausted``.

``explore_with`` is the loop, the same for every scheduler and every
target: it counts each run (``SearchReport.record``), cuts the search at
``max_schedules``, stops at the first violation if asked, shows progress,
and for a scheduler that relies on the target's footprints (DPOR) keeps
each step the target's seams caught touching what was not declared as an
oracle error.  What the loop does not do is choose: one run of a schedule
is ``_run.run_schedule``'s, the next schedule the scheduler's.

The schedulers, their parameters and the text that names them
(``pct:depth=3,runs=200,seed=7``) are in ``_schedulers`` (the registry).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from ..targets import Target
from ._audit import OracleError
from ._linearize import ModelFailure
from ._run import EndView, RunOutcome, covers, run_schedule
from ._scenarios import Scenario
from ._strategies import Strategy


@dataclass
class SearchReport:
    scenario: str
    variant: str  # the target's description
    strategy: str
    store: str
    bound: int | None = None  # the preemption bound explored under (None: none)
    schedules: int = 0
    pruned: int = 0
    states: int = 0
    violating: list[RunOutcome] = field(default_factory=list)
    seconds: float = 0.0
    exhausted: bool = True  # every schedule within the bound was run (not cut short)
    end_states: set[str] = field(default_factory=set, repr=False)  # their fingerprints
    end_views: dict[str, EndView] = field(default_factory=dict, repr=False)  # each, as data
    unchecked: str = ""  # what the target's capabilities kept out of the search, and why
    found: Callable[[SearchReport, RunOutcome], None] | None = field(
        default=None, repr=False, compare=False)  # told of each violating run as it is recorded
    oracle_errors: list[OracleError] = field(default_factory=list)  # the oracle's own (audit)
    audited: int = 0  # pairs of steps called independent that the audit ran both ways
    audit_seconds: float = 0.0  # of ``seconds``, spent auditing
    sampled: bool = False  # a sampling scheduler's: the runs asked for, no claim of coverage

    def oracle_error(self, error: OracleError) -> None:
        """Keep an oracle error (once: many runs meet the same step)."""
        if all(e.message != error.message for e in self.oracle_errors):
            self.oracle_errors.append(error)

    @property
    def violations(self) -> int:
        return len(self.violating)

    def record(self, outcome: RunOutcome, *, stop_on_violation: bool) -> bool:
        """Count one run; ``True`` when the search must stop (a violation, as asked)."""
        if outcome.aborted:
            self.pruned += 1
        else:
            self.schedules += 1
            self.end_states.add(outcome.end_state)
            if outcome.end_view is not None:
                self.end_views.setdefault(outcome.end_state, outcome.end_view)
        if outcome.violations:
            self.violating.append(outcome)
            if self.found is not None:
                self.found(self, outcome)
            if stop_on_violation:
                self.exhausted = False
                return True
        return False

    def uncovered(self, other: SearchReport) -> list[str]:
        """The end states ``other`` reached that this search neither reached nor covered
        (``_run.covers``: one reached here is it with calls its crash cut answered): empty
        when this search lost none of ``other``'s behaviours."""
        return sorted(
            state for state, view in other.end_views.items()
            if state not in self.end_states
            and not any(covers(mine, view) for mine in self.end_views.values())
        )

    def first(self) -> RunOutcome | None:
        if not self.violating:
            return None
        return min(self.violating, key=lambda o: (len(o.steps), len(o.choices)))

    def to_json(self) -> dict[str, object]:
        return {
            "scenario": self.scenario,
            "variant": self.variant,
            "strategy": self.strategy,
            "store": self.store,
            "schedules": self.schedules,
            "pruned": self.pruned,
            "states": self.states,
            "violations": self.violations,
            "exhausted": self.exhausted,
            "bound": self.bound,
            "seconds": round(self.seconds, 3),
            "unchecked": self.unchecked or None,
            "audited": self.audited,
            "oracle_errors": [e.to_json() for e in self.oracle_errors],
        }


@dataclass(frozen=True)
class Param:
    """One parameter a scheduler takes from text (``name=value``): its kind and default.

    ``kind``: ``int``, ``int?`` (an integer or ``none``), ``bool`` (true/false,
    yes/no, 1/0) or ``str``; ``least``: the smallest integer allowed.
    """

    name: str
    kind: str
    default: object
    about: str
    least: int | None = None


class Scheduler:
    """What every scheduler is: the registry makes one per scenario explored (see module doc).

    A subclass names itself (``name``: the registry's key), says what it is
    (``about``) and what it takes (``params``: its ``__init__``'s keyword
    arguments, parsed from text by the registry), and whether running out
    means every behaviour was run (``exhaustive``).
    """

    name: ClassVar[str] = ""
    about: ClassVar[str] = ""
    params: ClassVar[tuple[Param, ...]] = ()
    exhaustive: ClassVar[bool] = False
    footprints: ClassVar[bool] = False
    """It trusts the target's declared footprints: a step caught touching what its declaration
    does not name is an oracle error of its search (DPOR)."""

    @property
    def label(self) -> str:
        """What the report calls this search (``SearchReport.strategy``)."""
        return self.name

    @property
    def bound(self) -> int | None:
        """The preemption bound it explores under (``None``: none)."""
        return None

    def validate(self, scenario: Scenario) -> None:
        """Refuse (``ValueError``) a scenario it cannot explore, before anything runs."""

    def start(self, target: Target, scenario: Scenario, report: SearchReport) -> None:
        """The search begins: ``scenario`` as the target can run it, ``report`` to count into."""

    async def next_run(self) -> Strategy | None:
        """The strategy of the next run; ``None``: nothing left to run."""
        raise NotImplementedError

    async def finish(self, run: Strategy, outcome: RunOutcome) -> None:
        """``run`` ended with ``outcome`` (counted already) and the search goes on."""

    async def close(self) -> None:
        """The search is over, run out or stopped (a scheduler that holds a thread ends it)."""


class SeededScheduler(Scheduler):
    """A sampler: ``runs`` runs, each its own strategy seeded ``seed``, ``seed + step``, ..."""

    params: ClassVar[tuple[Param, ...]] = (
        Param("runs", "int", 100, "schedules to run per scenario", 0),
        Param("seed", "int", 1, "the first run's seed"),
        Param("step", "int", 1, "between two runs' seeds", 1),
    )

    def __init__(self, runs: int = 100, seed: int = 1, step: int = 1) -> None:
        self.seeds: Sequence[int] = range(seed, seed + runs * step, step)
        self._at = 0

    def strategy(self, seed: int) -> Strategy:
        raise NotImplementedError

    def start(self, target: Target, scenario: Scenario, report: SearchReport) -> None:
        report.sampled = True

    async def next_run(self) -> Strategy | None:
        if self._at >= len(self.seeds):
            return None
        self._at += 1
        return self.strategy(self.seeds[self._at - 1])

    @property
    def seed(self) -> int:
        """The seed of the last run handed out (for naming it)."""
        return self.seeds[self._at - 1]


def _footprint_problems(target: Target, scenario: Scenario, report: SearchReport) -> None:
    """Steps the target's seams caught touching what their declaration does not name."""
    problems = getattr(target, "footprint_problems", None)
    if callable(problems):
        for text in problems():
            report.oracle_error(OracleError("undeclared", scenario.name, text))


async def explore_with(
    target: Target,
    scenario: Scenario,
    scheduler: Scheduler,
    *,
    store: str = "memory",
    max_schedules: int | None = None,
    stop_on_violation: bool = False,
    progress: Callable[[SearchReport], None] | None = None,
    found: Callable[[SearchReport, RunOutcome], None] | None = None,
    seen: Callable[[RunOutcome], None] | None = None,
) -> SearchReport:
    """Run ``scheduler``'s schedules of ``scenario`` on ``target``; see the module doc.

    ``found`` is told of each violating run as soon as it is recorded (with
    the report so far), so a caller can show a counterexample at once;
    ``seen`` of every run (``_traces`` counts the plain DFS's traces with it).
    ``progress`` sees the report every 50 runs.
    """
    scheduler.validate(scenario)
    report = SearchReport(scenario.name, target.description, scheduler.label, store,
                          scheduler.bound, found=found)
    scenario, report.unchecked = scenario.within(target.capabilities)
    started = time.perf_counter()
    scheduler.start(target, scenario, report)
    try:
        while (run := await scheduler.next_run()) is not None:
            if max_schedules is not None and report.schedules >= max_schedules:
                report.exhausted = False
                break
            try:
                outcome = await run_schedule(target, scenario, run)
            except ModelFailure as exc:  # the oracle's own error: reported, the search ends
                report.oracle_error(OracleError("model-failed", scenario.name, str(exc),
                                                exc.schedule))
                report.exhausted = False
                break
            if seen is not None:
                seen(outcome)
            if scheduler.footprints:
                _footprint_problems(target, scenario, report)
            if report.record(outcome, stop_on_violation=stop_on_violation):
                break
            await scheduler.finish(run, outcome)
            if progress is not None and (report.schedules + report.pruned) % 50 == 0:
                report.states = len(report.end_states)
                report.seconds = time.perf_counter() - started
                progress(report)
    finally:
        await scheduler.close()
    if not scheduler.exhaustive:
        report.exhausted = False
    report.states = len(report.end_states)
    report.seconds = time.perf_counter() - started
    return report


__all__ = ["Param", "Scheduler", "SearchReport", "SeededScheduler", "explore_with"]
