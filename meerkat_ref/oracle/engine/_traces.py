"""Mazurkiewicz traces: how many behaviours a sound DPOR must explore at least.

Two complete executions are *equivalent* when one becomes the other by
swapping adjacent steps that commute: steps of different processes whose
footprints do not conflict (``Footprint.conflicts``; a step with no
footprint conflicts with every step), the same independence relation DPOR
(``_dpor``) reduces by.  An equivalence class is a Mazurkiewicz trace; a
sound DPOR runs at least one schedule of each, an optimal one exactly one
(Abdulla, Aronis, Jonsson, Sagonas: "Optimal dynamic partial order
reduction", POPL 2014).  So the number of traces is the floor any DPOR's
count of complete schedules is measured against.

The count here does not trust DPOR: it takes *every* schedule (the plain
DFS, no reduction) and counts the distinct Foata normal forms (Cartier and
Foata, 1969; Diekert and Rozenberg, "The Book of Traces", 1995, ch. 1):
each step's level is one more than the highest level of an earlier step it
depends on; the form is the steps grouped by level.  Two executions have the
same Foata normal form exactly when they are equivalent.  A step is named by
its process, its place in the process, a tag (a store fault, a cancel: what
makes the same process's step another step) and its footprint.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence

from ..targets import Footprint, Target
from ._dpor import CRASH, CRASH_FOOTPRINT
from ._run import RunOutcome
from ._scenarios import Scenario
from ._search import SearchReport, explore_dfs

TraceStep = tuple[str, Hashable, Footprint | None]
"""One step of an execution: (process, tag, footprint)."""

FoataForm = tuple[tuple[tuple[str, int, Hashable, Footprint | None], ...], ...]

def _dependent(a: TraceStep, b: TraceStep) -> bool:
    if a[0] == b[0]:
        return True
    fa, fb = a[2], b[2]
    return fa is None or fb is None or fa.conflicts(fb)


def foata(steps: Sequence[TraceStep]) -> FoataForm:
    """The Foata normal form of one execution: equal for two executions iff equivalent."""
    levels: list[int] = []
    seen: dict[str, int] = {}
    named: list[tuple[str, int, Hashable, Footprint | None]] = []
    for j, step in enumerate(steps):
        level = 0
        for i in range(j):
            if levels[i] >= level and _dependent(steps[i], step):
                level = levels[i] + 1
        levels.append(level)
        k = seen.get(step[0], 0)
        seen[step[0]] = k + 1
        named.append((step[0], k, step[1], step[2]))
    grouped: list[list[tuple[str, int, Hashable, Footprint | None]]] = [
        [] for _ in range(max(levels, default=-1) + 1)]
    for level, event in zip(levels, named, strict=True):
        grouped[level].append(event)
    # Two steps on one level are independent, so of two processes: the process orders them.
    return tuple(tuple(sorted(group, key=lambda e: e[0])) for group in grouped)


def count_traces(executions: Iterable[Sequence[TraceStep]]) -> int:
    """How many Mazurkiewicz traces ``executions`` (complete ones) fall into."""
    return len({foata(steps) for steps in executions})


def outcome_steps(outcome: RunOutcome) -> list[TraceStep]:
    """A controlled run's steps as trace steps; a run cut by a crash, only what it depends on.

    The crash is a process of its own with ``CRASH_FOOTPRINT``, and it ends the
    run, so one more equivalence holds (``_dpor``'s module doc): a step right
    before the crash that does not conflict with it may be dropped (a crash
    right before it ends alike).  Applied until nothing more can be dropped,
    that keeps exactly the steps the crash depends on, directly or through
    steps that happen before those; the rest can each be moved to just before
    the crash (nothing kept comes after any of them in happens-before) and
    dropped.  So a crashed run's trace is the trace of those steps, then the
    crash.
    """
    steps: list[TraceStep] = []
    for i, choice in enumerate(outcome.choices):
        if choice.crash:
            crash: TraceStep = (CRASH, "crash", CRASH_FOOTPRINT)
            return [*_depended_on(steps, crash), crash]
        tag = ("fault" + (f":{choice.kind}" if choice.kind else "") if choice.fault else
               "cancel" if choice.cancel else "")
        footprint = outcome.footprints[i] if i < len(outcome.footprints) else None
        steps.append((choice.label, tag, footprint))
    return steps


def _depended_on(steps: Sequence[TraceStep], last: TraceStep) -> list[TraceStep]:
    """The steps ``last`` depends on, directly or through later ones it depends on."""
    keep = [False] * len(steps)
    for j in range(len(steps) - 1, -1, -1):
        keep[j] = _dependent(steps[j], last) or any(
            keep[k] and _dependent(steps[j], steps[k]) for k in range(j + 1, len(steps)))
    return [step for step, kept in zip(steps, keep, strict=True) if kept]


async def scenario_traces(target: Target, scenario: Scenario, *,
                          max_schedules: int | None = None) -> tuple[int, SearchReport]:
    """The traces of ``scenario`` on ``target``, counted over the plain DFS's every schedule.

    Returns (traces, the plain DFS's report); the count is exact only when
    ``report.exhausted``.
    """
    forms: set[FoataForm] = set()

    def seen(outcome: RunOutcome) -> None:
        if not outcome.aborted:
            forms.add(foata(outcome_steps(outcome)))

    report = await explore_dfs(target, scenario, bound=None, reduce=False,
                               max_schedules=max_schedules, seen=seen)
    return len(forms), report


__all__ = ["FoataForm", "TraceStep", "count_traces", "foata", "outcome_steps",
           "scenario_traces"]
