"""``check``'s search: scenarios explored exhaustively on a target.

The engine over a target: ``explore_all`` explores each scenario with one
scheduler (``engine.SchedulerSpec``: DPOR by default, in full; any other of
``engine.SCHEDULERS``, ``check --scheduler``; the older ``bound`` and
``search`` name one too, ``engine.legacy_scheduler``), whatever the target
(the reference in process, or a port over the adapter with ``check
--adapter``).  The synchronous helpers run an in-process target in its own
``trio.run``, for the command line and tests; ``explore_in_processes``
spreads scenarios over a pool of processes (``check --jobs``), each scenario
still explored whole by one of them, so the results are the same however
many there are.  ``audit`` (``check --audit``) checks DPOR's independence
relation as it goes (``engine/_audit.py``); what it finds is each report's
``oracle_errors``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import trio

from ..engine import (
    RunOutcome,
    Scenario,
    SchedulerSpec,
    SearchReport,
    Strategy,
    legacy_scheduler,
    run_schedule,
    with_audit,
)
from ..engine import explore as _explore
from ..engine import find_counterexample as _find
from ..runner import run_parallel
from ..targets import InProcessTarget, ProtocolError, Target

T = TypeVar("T")

DEFAULT = -1
"""``bound=DEFAULT``: each scenario's own (``Scenario.bound``; ``None`` for the named ones)."""


NO_POINTS = (
    "not explored: the target does not offer the points capability (scheduling hooks), "
    "through which every schedule is chosen; meerkat-ref conform runs such a port "
    "free-running"
)
"""Why ``check`` explores nothing on a port without hooks."""


def scheduler_for(scenario: Scenario, *, bound: int | None = DEFAULT, search: str = "dpor",
                  scheduler: SchedulerSpec | None = None,
                  audit: int | None = None) -> SchedulerSpec:
    """The scheduler that explores ``scenario``: ``scheduler`` if given (auditing, if asked),
    else what ``bound`` (``DEFAULT``: the scenario's own) and ``search`` name."""
    if scheduler is not None:
        return with_audit(scheduler, audit)
    chosen = scenario.bound if bound == DEFAULT else bound
    return legacy_scheduler(chosen, search, audit)


class ExplorationCut(Exception):
    """A protocol error stopped ``explore_all``: the reports so far come with it.

    ``reports`` holds every scenario explored before, and the one the error
    cut (its counts so far, ``exhausted`` false); ``error`` is what stopped it.
    """

    def __init__(self, reports: list[SearchReport], error: ProtocolError) -> None:
        super().__init__(str(error))
        self.reports = reports
        self.error = error


async def explore_all(
    target: Target,
    scenarios: Sequence[Scenario],
    *,
    bound: int | None = DEFAULT,
    search: str = "dpor",
    scheduler: SchedulerSpec | None = None,
    store: str = "memory",
    max_schedules: int | None = None,
    stop_on_violation: bool = False,
    started: Callable[[Scenario], None] | None = None,
    progress: Callable[[SearchReport], None] | None = None,
    finished: Callable[[SearchReport], None] | None = None,
    found: Callable[[SearchReport, RunOutcome], None] | None = None,
    audit: int | None = None,
) -> list[SearchReport]:
    """Each scenario explored on ``target`` by its scheduler (``scheduler_for``).

    ``stop_on_violation``: a scenario's search ends at its first violating
    run.  ``found`` is told of each violating run as soon as it is recorded.
    A target without scheduling points explores nothing: each report says so
    (``unchecked``).  A ``ProtocolError`` raises ``ExplorationCut``, which
    keeps the reports so far.
    """
    reports: list[SearchReport] = []
    for scenario in scenarios:
        if started is not None:
            started(scenario)
        spec = scheduler_for(scenario, bound=bound, search=search, scheduler=scheduler,
                             audit=audit)
        if "points" not in target.capabilities:
            made = spec.make()
            report = SearchReport(scenario.name, target.description, made.label, store,
                                  made.bound, exhausted=False, unchecked=NO_POINTS)
        else:
            try:
                report = await _explore_one(target, scenario, spec, store, max_schedules,
                                            stop_on_violation, progress, found)
            except _Cut as cut:
                raise ExplorationCut([*reports, cut.report], cut.error) from cut.error
        if finished is not None:
            finished(report)
        reports.append(report)
    return reports


class _Cut(Exception):
    def __init__(self, report: SearchReport, error: ProtocolError) -> None:
        super().__init__(str(error))
        self.report, self.error = report, error


async def _explore_one(
    target: Target, scenario: Scenario, spec: SchedulerSpec, store: str,
    max_schedules: int | None, stop_on_violation: bool,
    progress: Callable[[SearchReport], None] | None,
    found: Callable[[SearchReport, RunOutcome], None] | None,
) -> SearchReport:
    """One scenario's search; a ``ProtocolError`` raises ``_Cut`` with the report so far."""
    live: list[SearchReport] = []  # the search's own report, once a callback has shown it
    began = time.perf_counter()

    def seen(report: SearchReport) -> None:
        if not live:
            live.append(report)

    def shown(report: SearchReport) -> None:
        seen(report)
        if progress is not None:
            progress(report)

    def told(report: SearchReport, outcome: RunOutcome) -> None:
        seen(report)
        if found is not None:
            found(report, outcome)

    try:
        return await _explore(target, scenario, scheduler=spec, store=store,
                              max_schedules=max_schedules, stop_on_violation=stop_on_violation,
                              progress=shown, found=told)
    except ProtocolError as exc:
        made = spec.make()
        cut = live[0] if live else SearchReport(scenario.name, target.description, made.label,
                                                store, made.bound)
        cut.exhausted = False
        cut.states = len(cut.end_states)
        cut.seconds = time.perf_counter() - began
        raise _Cut(cut, exc) from exc


def in_process(target: InProcessTarget, fn: Callable[[InProcessTarget], Awaitable[T]]) -> T:
    """Run ``fn(target)`` in a fresh ``trio.run``, inside ``async with target``."""

    async def main() -> T:
        async with target:
            return await fn(target)

    return trio.run(main)


def explore(target: InProcessTarget, scenario: Scenario, *, bound: int | None = DEFAULT,
            search: str = "dpor", scheduler: SchedulerSpec | None = None,
            max_schedules: int | None = None, stop_on_violation: bool = False,
            audit: int | None = None) -> SearchReport:
    """One scenario explored on an in-process target, synchronously (see ``explore_all``)."""
    spec = scheduler_for(scenario, bound=bound, search=search, scheduler=scheduler, audit=audit)
    return in_process(target, lambda t: _explore(
        t, scenario, scheduler=spec, store=t.store_kind,
        max_schedules=max_schedules, stop_on_violation=stop_on_violation))


def _explore_fresh(make_target: Callable[[], InProcessTarget], scenario: Scenario,
                   spec: SchedulerSpec, stop_on_violation: bool) -> SearchReport:
    return explore(make_target(), scenario, scheduler=spec, stop_on_violation=stop_on_violation)


def explore_in_processes(
    make_target: Callable[[], InProcessTarget],
    scenarios: Sequence[Scenario],
    *,
    jobs: int,
    bound: int | None = DEFAULT,
    search: str = "dpor",
    scheduler: SchedulerSpec | None = None,
    stop_on_violation: bool = False,
    finished: Callable[[SearchReport], None] | None = None,
    audit: int | None = None,
) -> list[SearchReport]:
    """``explore`` of each scenario on a fresh target, ``jobs`` processes at a time.

    ``make_target`` and the scenarios must pickle (a ``functools.partial`` of
    ``Variant.target`` does).  The processes are ``runner``'s, as the sweep's:
    spawned, not forked (the caller may hold threads, a SQLite store's, that a
    fork would copy mid-lock).  Reports come back in the order of
    ``scenarios``; ``finished`` sees each as it ends.
    """
    if jobs < 1:
        raise ValueError("jobs must be at least 1")
    calls = [(make_target, scenario, scheduler_for(scenario, bound=bound, search=search,
                                                   scheduler=scheduler, audit=audit),
              stop_on_violation) for scenario in scenarios]
    return run_parallel(_explore_fresh, calls, jobs=jobs,
                        finished=None if finished is None else lambda _, r: finished(r))


def run_once(target: InProcessTarget, scenario: Scenario, strategy: Strategy | None,
             *, max_steps: int = 400) -> RunOutcome:
    """One schedule of ``scenario`` (``strategy`` ``None``: Trio's own scheduling)."""
    return in_process(target, lambda t: run_schedule(t, scenario, strategy, max_steps=max_steps))


def find_counterexample(target: InProcessTarget, scenario: Scenario, *, max_bound: int = 3,
                        max_schedules: int = 20_000) -> tuple[RunOutcome | None, int, float]:
    """The shortest violating run at the smallest bound (see ``engine.find_counterexample``)."""
    return in_process(target, lambda t: _find(
        t, scenario, max_bound=max_bound, store=t.store_kind, max_schedules=max_schedules))


__all__ = ["DEFAULT", "NO_POINTS", "ExplorationCut", "explore", "explore_all",
           "explore_in_processes", "find_counterexample", "in_process", "run_once",
           "scheduler_for"]
