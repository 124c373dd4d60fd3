"""Plain and bounded depth-first search: every schedule (under a preemption bound, if one).

The default search is DPOR (``_dpor``); this one, the scheduler ``dfs``
(``DfsScheduler``), stays for a preemption bound (``--scheduler
dfs:bound=N``, the older ``check --bound N``: the fewest-preemption
counterexamples first) and, with ``reduce=False`` (``dfs:reduce=false``), as
the plain DFS DPOR is validated against.

Stateless model checking (VeriSoft/CHESS style): each schedule is a fresh
run from the start (``open``), on any target that offers scheduling points
and is deterministic under control -- the reference in process, or a port
over the adapter.  After a run, every step past its forced prefix is a
branch point: each other ready task (and, where the budget allows, the same
task with its store call failed, or a crash) becomes a new prefix to run.

Preemption bound (Musuvathi & Qadeer, 2007): a preemption is switching away
from the task that ran last while it could still run.  Most concurrency bugs
need very few; bounding them keeps the search polynomial.  ``None``: no bound.

Reduction: sleep sets (Godefroid, 1996).  Two next steps are *independent*
when they belong to different tasks, carry two different session ids, and
neither is a store listing or a fault: such steps touch disjoint state (the
service keys everything per session), so both orders reach the same state.
When a sibling branch has covered step ``t``, a later sibling puts ``t`` to
sleep, and a run whose every ready task sleeps is abandoned as covered
(counted as pruned).  Crashes get a reduction of their own: a crash keeps
only the store and the answers already given, so a crash is tried only
right after a step that wrote the store or answered a client.  The rule is
deliberately conservative: a step with no session (create before its id
exists, list, the stop/resume sweeps) is dependent on everything.  Combined
with the preemption bound, sleep sets may skip a schedule whose covering
sibling was cut by the bound; the count of schedules run is exact, the claim
is "all schedules within the bound, up to the reduction".  (The session-id
rule ignores the shared clock, which makes it unsound for steps on two
sessions that both tick it; DPOR's footprints do not have that gap.)
``reduce=False`` turns both reductions off: every schedule is run.  (The
crash rule also treats two runs as one when they differ only in a call
invoked and never answered before the crash: the same store, the same
answers, but not the same end-state fingerprint, which lists that call.)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from ..targets import Point, Target
from ._run import Node, RunOutcome
from ._scenarios import Scenario
from ._scheduler import Param, Scheduler, SearchReport, explore_with
from ._strategies import Aborted, Budget, Choice, Strategy

StepDesc = tuple[str, str, str | None]


def dependent(a: StepDesc, b: StepDesc, fault: bool = False) -> bool:
    """Whether the order of two next steps can matter (conservative)."""
    if fault or a[0] == b[0]:
        return True
    if a[2] is None or b[2] is None or a[2] == b[2]:
        return True
    return "store.list" in (a[1], b[1])


def preemptions(choices: Sequence[Choice], nodes: Sequence[Node]) -> int:
    count = 0
    for j in range(1, len(choices)):
        previous = choices[j - 1]
        if previous.crash or choices[j].crash or choices[j].label == previous.label:
            continue
        if any(r[0] == previous.label for r in nodes[j].ready):
            count += 1
    return count


class GuidedStrategy:
    """Follow a prefix, then continue without preempting; skip sleeping tasks."""

    def __init__(self, prefix: Sequence[Choice], sleep: frozenset[StepDesc],
                 reduce: bool = True) -> None:
        self.prefix = list(prefix)
        self.reduce = reduce
        self.sleep: set[StepDesc] = set(sleep)
        self.sleeps: list[frozenset[StepDesc]] = []
        self._last: str | None = None

    def choose(self, step: int, ready: Sequence[Point], budget: Budget) -> Choice:
        from ._monitor import short

        self.sleeps.append(frozenset(self.sleep))
        descs = {p.task: (p.task, p.kind, p.session and short(p.session)) for p in ready}
        if step < len(self.prefix):
            choice = self.prefix[step]
        else:
            awake = [p for p in ready if descs[p.task] not in self.sleep]
            if not awake:
                raise Aborted("every ready task is asleep: this schedule is covered elsewhere")
            same = [p for p in awake if p.task == self._last]
            choice = Choice((same or awake)[0].task)
        taken = descs.get(choice.label)
        if taken is not None and self.reduce:
            self.sleep = {
                s for s in self.sleep
                if not dependent(s, taken, choice.fault) and s[0] != choice.label
            }
        if choice.crash:
            self.sleep = set()
        self._last = choice.label
        return choice


class DfsScheduler(Scheduler):
    """Depth-first search as a scheduler: every schedule within ``bound`` (the module doc).

    ``reduce`` (the default): sleep sets and the crash reduction; ``False``:
    the plain DFS, every schedule, which DPOR is validated against.
    """

    name = "dfs"
    about = ("depth-first search, every schedule (bound: preemptions at most; reduce=false: "
             "no sleep sets, the plain DFS)")
    params = (
        Param("bound", "int?", None, "the preemption bound (none: every schedule)", 0),
        Param("reduce", "bool", True, "sleep sets and the crash reduction"),
    )
    exhaustive = True

    def __init__(self, bound: int | None = None, reduce: bool = True) -> None:
        self._bound = bound
        self.reduce = reduce
        self._stack: list[tuple[list[Choice], frozenset[StepDesc]]] = [([], frozenset())]
        self._scenario: Scenario | None = None
        self._report: SearchReport | None = None
        self._kinds: tuple[str, ...] = ("",)  # the ways a store call can fail

    @property
    def label(self) -> str:
        shown = "none" if self._bound is None else str(self._bound)
        return f"dfs(p<={shown})" if self.reduce else f"plain-dfs(p<={shown})"

    @property
    def bound(self) -> int | None:
        return self._bound

    def start(self, target: Target, scenario: Scenario, report: SearchReport) -> None:
        self._scenario, self._report = scenario, report
        self._kinds = ("", *target.fault_kinds)

    async def next_run(self) -> GuidedStrategy | None:
        if not self._stack:
            return None
        prefix, sleep = self._stack.pop()
        return GuidedStrategy(prefix, sleep, self.reduce)

    async def finish(self, run: Strategy, outcome: RunOutcome) -> None:
        assert isinstance(run, GuidedStrategy)
        assert self._scenario is not None and self._report is not None
        _branch(outcome, run, len(run.prefix), self._scenario, self._bound, self._stack,
                self._report, self._kinds)


async def explore_dfs(
    target: Target,
    scenario: Scenario,
    *,
    bound: int | None,
    store: str = "memory",
    max_schedules: int | None = None,
    stop_on_violation: bool = False,
    progress: Callable[[SearchReport], None] | None = None,
    reduce: bool = True,
    found: Callable[[SearchReport, RunOutcome], None] | None = None,
    seen: Callable[[RunOutcome], None] | None = None,
) -> SearchReport:
    """Run every schedule of ``scenario`` on ``target`` within ``bound``: ``DfsScheduler`` in
    the one loop (``explore_with``, which says what ``found`` and ``seen`` are told)."""
    return await explore_with(target, scenario, DfsScheduler(bound, reduce), store=store,
                              max_schedules=max_schedules,
                              stop_on_violation=stop_on_violation, progress=progress,
                              found=found, seen=seen)


def _branch(
    outcome: RunOutcome,
    guide: GuidedStrategy,
    start: int,
    scenario: Scenario,
    bound: int | None,
    stack: list[tuple[list[Choice], frozenset[StepDesc]]],
    report: SearchReport,
    fault_kinds: Sequence[str] = ("",),
) -> None:
    # A crash discards everything but the store and the answers already given,
    # so crashing after a step that changed neither is the same as crashing
    # before it: only steps that wrote the store or answered a client matter.
    durable_steps = {s.index for s in outcome.steps if s.store is not None}
    durable_steps |= {c.responded for c in outcome.history if c.responded is not None}
    for i in range(start, len(outcome.nodes)):
        node = outcome.nodes[i]
        taken = node.chosen
        kinds = {r[0]: (r[1], r[2], r[3]) for r in node.ready}
        done: list[StepDesc] = []
        if not taken.crash and taken.label in kinds:
            done.append((taken.label, kinds[taken.label][0], kinds[taken.label][1]))
        faults_used = sum(1 for c in outcome.choices[:i] if c.fault)
        crashes_used = sum(1 for c in outcome.choices[:i] if c.crash)
        options: list[Choice] = []
        for label, (_kind, _session, faultable) in kinds.items():
            if label != taken.label:
                options.append(Choice(label))
            if faultable and faults_used < scenario.faults:
                options.extend(Choice(label, fault=True, kind=kind) for kind in fault_kinds
                               if not (label == taken.label and taken.fault and taken.kind == kind))
        if crashes_used < scenario.crashes and not taken.crash:
            if i == 0 or i - 1 in durable_steps or not guide.reduce:
                options.append(Choice(crash=True))
            else:
                report.pruned += 1  # same store and same answers as crashing one step earlier
        sleep_here = guide.sleeps[i] if i < len(guide.sleeps) else frozenset()
        for alt in options:
            new_prefix = [*outcome.choices[:i], alt]
            if alt.crash:
                stack.append((new_prefix, frozenset()))
                continue
            kind, session, _ = kinds[alt.label]
            desc: StepDesc = (alt.label, kind, session)
            if not alt.fault and guide.reduce and desc in sleep_here:
                report.pruned += 1
                continue
            if bound is not None and preemptions(new_prefix, outcome.nodes) > bound:
                continue
            inherited = (
                (sleep_here | frozenset(done)) if not alt.fault and guide.reduce else frozenset()
            )
            child_sleep = frozenset(
                s for s in inherited if s[0] != alt.label and not dependent(s, desc, alt.fault)
            )
            stack.append((new_prefix, child_sleep))
            if not alt.fault:
                done.append(desc)


async def find_counterexample(
    target: Target,
    scenario: Scenario,
    *,
    max_bound: int = 3,
    store: str = "memory",
    max_schedules: int = 20_000,
) -> tuple[RunOutcome | None, int, float]:
    """Search with bounds 0, 1, ... so the first counterexample has the fewest preemptions.

    Returns (the shortest violating run found at the smallest bound, schedules run, seconds).
    """
    started = time.perf_counter()
    total = 0
    for bound in range(max_bound + 1):
        report = await explore_dfs(
            target, scenario, bound=bound, store=store, max_schedules=max_schedules,
            stop_on_violation=True,
        )
        total += report.schedules + report.pruned
        found = report.first()
        if found is not None:
            return found, total, time.perf_counter() - started
    return None, total, time.perf_counter() - started


__all__ = [
    "DfsScheduler",
    "GuidedStrategy",
    "SearchReport",
    "dependent",
    "explore_dfs",
    "find_counterexample",
    "preemptions",
]
