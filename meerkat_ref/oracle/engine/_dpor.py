"""Dynamic partial-order reduction: each behaviour once, not each interleaving of it.

Source-DPOR with sleep sets (Abdulla, Aronis, Jonsson, Sagonas: "Optimal
dynamic partial order reduction", POPL 2014, Algorithm 1), stateless: every
schedule is a fresh run from the start, as in ``_search``.  Two schedules
that differ only in the order of steps that commute reach the same end
state, so one of them is enough; DPOR finds, after each run, the pairs of
steps whose order *can* matter (a race) and schedules the reversal of each
race once, instead of trying every order of everything.

Steps and processes.  A process is a task label (``c:<client>``: the
client's next call and the call's own task; ``session s<n>``: a session's
task).  A step is what runs between two settles after one release (the
released task and every task it woke).  Two steps *conflict* when their
footprints (``targets.Footprint``: what each may read and write, as the
service declares it, ``service/_placement.py``) meet, or when they belong
to one process.  A target that gives no footprint (a port over the
adapter that declares none), or a step no declaration covers, conflicts with every other:
still exact, less reduction.  The reduction is only as sound as the
declarations: ``audit`` (``check --audit``, ``_audit``) runs both orders of
a sample of the pairs it calls independent and compares the whole state,
and the in-process target compares each step's store calls, clock ticks
and ids with its declaration as it runs; a mismatch is an oracle error
(``SearchReport.oracle_errors``).  Happens-before is the transitive closure of "earlier and
conflicting"; a task's step that was enabled by another step (woken, or a
client freed by an answer) conflicts with it because the waker ran that
task (footprint group ``task``).

Faults and crashes.  A store fault is a process of its own too: while a
task waits at a store call and the run may still fail one, ``t!fault``
(``FAULTED``) is enabled beside ``t``: the same store call, failed.  It is
the same task, so it conflicts with ``t`` (the one that runs first disables
the other, and a disabled process is a race: ``_disabled``), and its
footprint is its own, recorded as it runs.  Each other way the target
offers to fail a store call (``Target.fault_kinds``: in process, the
store contract's own ``SessionStoreError`` beside a third-party store's
``OSError``) is one more such process, ``t!fault:<kind>``: a service may
handle the two apart, so neither stands for the other.  So DPOR explores a fault where
it can matter, once per trace, inside the one tree of the scenario: a run
that never reaches a store call is run once, where a fault decided in
advance (a *plan*: fail the ``n``-th store call of ``t``) ran every
interleaving again for each plan, including all those in which its fault
is never reached (measured on the named scenario store-faults: 2,747
schedules as plans, 1,094 as processes, every one a distinct trace).  A
cancelled caller is still a plan ([CALLER-CANCEL]: every plan its
fault-free runs reached).  A crash is
a process of its own whose one step ends the run; a run that ends without a
crash counts as crashing at its very end (nothing is left to lose), which is
how crashes at earlier points are found as races with it.  What a crash
leads to depends only on what outlives the process and on the history the
verdicts read: after it the target restarts a fresh service on the same
store, and the run does nothing but read back (reads, loads, a list: no
call that ticks the clock, takes an id or changes a row).  So the crash's
footprint (``CRASH_FOOTPRINT``) reads the store's rows, every call invoked
and every answer, and the oracle's ``inflight``; a step that touches none
of them (a session's task appending a message its save has not written
yet, a gate taken, a task woken) ends, crashed right after, exactly as a
crash right before it does, and DPOR crashes the run before the first of
such a stretch only (measured: ``idle/1s/create+turn/fault/crash`` 4,141
schedules to 2,053, the same 38 end states).  The in-process target sees
every row access at its store seam, so this rests on exact footprints, not
declared ones; the audit checks the claim itself (``_audit``: for a sample
of the steps a crash does not conflict with, a crash right before the step
and one right after it, each to the end of the read-back, must end alike).

Answers before a crash.  A crash right after a step that only answers
calls (``_answers_only``: no row written, no call sent, no store call
failed) leaves what a crash right before it leaves -- the same rows, the
same calls -- and a history that knows those answers; and every rule is at
least as strict with an answer known as with its call cut: linearizability
(a response only adds constraints: a linearization with it is one with
the call pending), DURABILITY and ARCHIVE-FINAL (an acknowledged turn,
create or archive is an obligation; a cut one is not), and each excuse
(granted while a call is in flight, withdrawn by its answer).  So DPOR does
not reverse a crash's race with such a step (``ANSWERS_FIRST``): the crash
before it is covered by one after it, which the run's later races place
(right before the next step a crash depends on, or at the end), and the
causal order still puts the answers first where a reversal needs them (the
crash still depends on the step).  What is given up is an end state that
is another's with a call cut instead of answered (``_run.covers``); the
test suite checks that every end state of the plain DFS is reached or so
covered, with the same verdicts, and ``--audit`` crashes sampled runs on
both sides of such a step: the same store and rules broken after only
(``_audit.Auditor.crashes``).  Measured:
``crash-restart`` 186 schedules to 129, ``host/1s/inject+rearm+rearm/fault/crash``
4,328 to 3,004.

Twins.  Two clients with the same calls (``_scenarios.twins``) are
interchangeable: the service is handed calls, not callers, so a run in
which the later twin calls first has a mirror, the same steps with the two
labels swapped, that ends in the same state up to the swap and breaks the
same rules.  So a run of DPOR has a client wait to call until its twin has
(``DporRun.twins_in_order``; ``_run``), and that first call reads the
twin's (``call:<twin>``), so it happens after it, as any step a step
enabled does; end states name twins alike (``_run.end_view``).  What
the mirrors hold is the service's to keep; ``--audit`` runs the mirror of
a sample of the runs (``_audit.Auditor.mirrors``).  Measured:
``host/1s/inject+rearm+rearm/fault/crash`` 8,647 schedules to 4,328.

The claim: for each scenario and each plan, every Mazurkiewicz trace (every
schedule up to reordering steps that commute, and up to a swap of twins) is
run at least once, or one that covers it (a crash moved past answers), so
every reachable end state is reached or covered and every violation a run
can show is reached.  The
test suite checks it against the plain DFS on every scenario small enough
for the latter, and on the DPOR literature's benchmark programs (``classics``,
run by the same ``DporTree``), beside their Mazurkiewicz traces (``_traces``).
Its limit, shown there: a process is known to be disabled only when it was
ready and a step took that away (``_disabled``); a process that reaches a
lock another took long before, in a model where that acquire is simply not
enabled, is not seen (a Trio task blocks inside a step of its own instead).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..targets import CLIENT_CALL, Footprint, Point, Target
from ._audit import Auditor
from ._run import RunOutcome
from ._scenarios import Scenario, twins
from ._scheduler import Param, Scheduler, SearchReport, _footprint_problems, explore_with
from ._strategies import Aborted, Budget, Choice, ScheduleDiverged, Strategy

CRASH = "process:crash"
"""The label of the crash's own process."""

CRASH_FOOTPRINT = Footprint(reads=frozenset({
    ("row", "*"), ("resp", "*"), ("call", "*"), ("inflight", "*"),
}))
"""What a crash's outcome depends on (the module doc, "Faults and crashes"): the store's
rows, every call invoked (``call``) and answered (``resp``), and what the rules know of
calls in flight and faults (``inflight``).  It writes nothing: it ends the run."""

FAULTED = "!fault"
"""``t + FAULTED``: task ``t``'s next step with its store call failed (see the module doc);
``t + FAULTED + ":" + kind``: failed in the way ``kind`` names (``Target.fault_kinds``)."""


def _variant(label: str) -> tuple[str, bool, str]:
    """A label's task, whether its store call fails, and how ("" the plain fault)."""
    task, faulted, kind = label.partition(FAULTED)
    return task, bool(faulted), kind[1:]


def _process(label: str) -> str:
    """The task a label's step belongs to (a fault variant is its task's step)."""
    return _variant(label)[0]


def _faulted(label: str) -> bool:
    return FAULTED in label

Plan = tuple[str, str, int] | None
"""A plan: ("fault", task, n) fails the n-th store call (1-based) of a task; ("cancel",
task, n) cancels a client's caller at the n-th point its task parks at [CALLER-CANCEL];
``None``: neither."""


@dataclass(eq=False)
class _Node:
    """A point of the search tree: the state after the steps before it."""

    ready: tuple[str, ...]
    sleep: dict[str, Footprint | None]  # on entry: processes whose step here is covered
    taken: str
    backtrack: dict[str, None] = field(default_factory=dict)  # to explore (ordered)
    done: dict[str, Footprint | None] = field(default_factory=dict)  # explored, with footprints
    footprint: Footprint | None = None  # of the step taken here, in the current run
    pred: int = 0  # bitmask of the steps that happen before the one taken here


def _conflict(a: Footprint | None, b: Footprint | None) -> bool:
    return a is None or b is None or a.conflicts(b)


class DporRun:
    """The strategy of one run: follow the tree to ``branch``, then go on and grow it."""

    twins_in_order = True
    """Twins call in order (``_scenarios.twins``; the module doc, "Twins")."""

    def __init__(self, tree: list[_Node], branch: int, plan: Plan,
                 reached: set[tuple[str, str, int]], variants: bool = False) -> None:
        self.tree = tree
        self.branch = branch
        self.plan = plan
        self.variants = variants  # a store fault as a process of its own (the module doc)
        self.reached = reached
        self._calls: dict[str, int] = {}
        self._parks: dict[str, int] = {}
        self._sleep: dict[str, Footprint | None] = {}
        self._next_sleep: dict[str, Footprint | None] = {}
        self._last: str | None = None
        self._step = -1
        self.crashed = False
        self.final_ready: tuple[str, ...] = ()  # ready when the run stopped short (aborted)
        # (step, label): the label's step, asleep before that step, stayed asleep after it
        # (called independent of it): claims a run never shows as a pair.  Kept only for
        # the audit (``None``: not auditing, nothing to keep).
        self.kept_asleep: list[tuple[int, str]] | None = None

    def _choice(self, label: str, ready: Sequence[Point]) -> Choice:
        if label == CRASH:
            self.crashed = True
            self.tree[self._step].footprint = CRASH_FOOTPRINT
            return Choice(crash=True)
        label, faulted, kind = _variant(label)
        point = next((p for p in ready if p.task == label), None)
        if point is not None and faulted and not point.faultable:
            point = None
        if point is None:
            shown = ", ".join(p.task for p in ready)
            raise ScheduleDiverged(
                f"the target is not deterministic: {label!r} is not ready again (ready: {shown})"
            )
        fault = cancel = False
        if point.faultable:
            n = self._calls.get(label, 0) + 1
            self._calls[label] = n
            self.reached.add(("fault", label, n))
            fault = faulted or self.plan == ("fault", label, n)
        if label.startswith("c:") and point.kind != CLIENT_CALL:
            n = self._parks.get(label, 0) + 1
            self._parks[label] = n
            self.reached.add(("cancel", label, n))
            cancel = self.plan == ("cancel", label, n)
        return Choice(label, fault=fault, cancel=cancel, kind=kind if faulted else "")

    def choose(self, step: int, ready: Sequence[Point], budget: Budget) -> Choice:
        self._step = step
        enabled = tuple(p.task for p in ready)
        if self.variants and budget.faults > 0:
            enabled += tuple(p.task + FAULTED + way for p in ready if p.faultable
                             for way in ("", *(":" + k for k in budget.fault_kinds)))
        enabled += (CRASH,) if budget.crashes > 0 else ()
        if step < len(self.tree):
            node = self.tree[step]
            if step == self.branch:
                self._sleep = {**node.sleep, **node.done}
                self._sleep.pop(node.taken, None)
            label = node.taken
        else:
            entry = self._next_sleep
            # A fault variant last: the run goes on as the fault-free runs did, and a
            # fault is tried where a race or a disabled variant asks for it.
            awake = sorted((p for p in enabled if p not in entry and p != CRASH),
                           key=_faulted)
            if awake:
                label = self._last if self._last in awake else awake[0]
            elif CRASH in enabled and CRASH not in entry:
                label = CRASH
            else:
                self.final_ready = enabled
                raise Aborted("every ready task is asleep: this behaviour is covered elsewhere")
            node = _Node(enabled, dict(entry), label, {label: None})
            self.tree.append(node)
            self._sleep = dict(entry)
        self._last = label
        return self._choice(label, ready)

    def observe(self, footprint: Footprint | None) -> None:
        """The footprint of the step just taken (called by the run loop after it settles)."""
        node = self.tree[self._step]
        node.footprint = footprint
        taken = _process(node.taken)
        self._next_sleep = {
            q: f for q, f in self._sleep.items()
            if _process(q) != taken and not _conflict(f, footprint)
        }
        if self.kept_asleep is not None:
            self.kept_asleep.extend((self._step, q) for q in self._next_sleep if q != CRASH)


def _bits(mask: int) -> list[int]:
    out = []
    while mask:
        low = mask & -mask
        out.append(low.bit_length() - 1)
        mask ^= low
    return out


def _disabled(tree: list[_Node], branch: int, final_ready: tuple[str, ...]) -> None:
    """A step that disables another process (archive cancels a session's task) races with it.

    The disabled process's next step never ran, so its footprint is unknown:
    try it right before the disabling step; once it runs there, its races
    with earlier steps are found as usual.
    """
    for i in range(branch, len(tree)):
        node = tree[i]
        after = tree[i + 1].ready if i + 1 < len(tree) else final_ready
        for label in node.ready:
            if label != node.taken and label != CRASH and label not in after:
                node.backtrack.setdefault(label, None)  # a fault variant too: once a
                # task ran on (or a fault was taken), failing its call here is gone


def _races(tree: list[_Node], branch: int, crash_at_end: bool) -> None:
    """Add to backtrack sets the reversal of every race that ends at a step past ``branch``."""
    events: list[tuple[str, Footprint | None]] = [(_process(n.taken), n.footprint)
                                                   for n in tree]
    if crash_at_end:
        events.append((CRASH, CRASH_FOOTPRINT))
    preds: list[int] = [n.pred for n in tree[:branch]]
    for j in range(branch, len(events)):
        label_j, fp_j = events[j]
        direct = 0
        for i in range(j):
            label_i, fp_i = events[i]
            if label_i == label_j or _conflict(fp_i, fp_j):
                direct |= 1 << i
        pred = direct
        for i in _bits(direct):
            pred |= preds[i]
        preds.append(pred)
        if j < len(tree):
            tree[j].pred = pred
        if label_j == CRASH and ANSWERS_FIRST:
            # A crash races with the steps it depends on but those that only answer: the
            # crash right before such a step is covered by one after it (the module doc,
            # "Answers before a crash").  They stay in its causal past (``pred``), so a
            # reversal still runs them first where they could have come first.
            direct &= ~sum(1 << i for i in _bits(direct) if i < len(tree)
                           and _answers_only(tree[i]))
        via = 0
        for k in _bits(direct):
            via |= preds[k]
        for i in _bits(direct & ~via):
            if events[i][0] != label_j:
                _reverse(tree, events, preds, i, j)


ANSWERS_FIRST = True
"""Do not crash right before a step whose only part in a crash is answers (``_answers_only``;
the module doc, "Answers before a crash").  ``False``: every race with a crash is reversed,
for comparing against (``benchmarks``, ``tests/test_dpor.py``)."""


def _answers_only(node: _Node) -> bool:
    """Whether the step taken at ``node`` meets a crash (``CRASH_FOOTPRINT``) only by answering:
    it answers a call (``resp``) and writes nothing else a crash reads but the ``inflight``
    its answers write (not a row, not a call sent, not a store call failed)."""
    fp = node.footprint
    if fp is None or CRASH_FOOTPRINT is None or _faulted(node.taken):
        return False  # (``CRASH_FOOTPRINT`` is ``None`` only in a test's coarse crash)
    met = {group for group, _ in fp.writes} & {group for group, _ in CRASH_FOOTPRINT.reads}
    return "resp" in met and met <= {"resp", "inflight"}


def _reverse(tree: list[_Node], events: list[tuple[str, Footprint | None]], preds: list[int],
             i: int, j: int) -> None:
    """Make sure some first step of "the steps not after ``i``, then ``j``" is tried at ``i``."""
    node = tree[i]
    v = [k for k in range(i + 1, j) if not (preds[k] >> i) & 1] + [j]
    mask = 0
    for k in v:
        mask |= 1 << k
    initials = [events[k][0] for k in v if not preds[k] & mask & ~(1 << k)]
    if any(label in node.backtrack for label in initials):
        return
    ready = [label for label in initials if label in node.ready]
    if not ready:
        return  # cannot be reversed here (not enabled yet): covered where it is
    wanted = events[j][0]
    node.backtrack[wanted if wanted in ready else ready[0]] = None


def _next_branch(tree: list[_Node]) -> int | None:
    """Pop finished nodes; the deepest node with a process left to try, switched to it."""
    for depth in range(len(tree) - 1, -1, -1):
        node = tree[depth]
        node.done[node.taken] = node.footprint
        left = [q for q in node.backtrack if q not in node.done and q not in node.sleep]
        if left:
            node.taken = left[0]
            node.footprint = None
            del tree[depth + 1:]
            return depth
    return None


class DporTree:
    """The search tree of one plan, and the runs that grow it: the engine's whole DPOR loop.

    ``next_run`` gives the strategy of the next run (``None``: every race is
    reversed, the plan is done); the caller runs it to its end on whatever it
    drives, then hands it back to ``finish``, which finds the run's races and
    picks the next branch.  ``explore_dpor`` drives targets with it; a program
    whose steps are plain data (``classics``: the DPOR literature's
    benchmarks) drives the same tree without a target, so the same algorithm
    can be checked against counts no one here wrote.
    """

    def __init__(self, plan: Plan = None,
                 reached: set[tuple[str, str, int]] | None = None, *,
                 variants: bool = False) -> None:
        self.nodes: list[_Node] = []
        self.plan = plan
        self.reached: set[tuple[str, str, int]] = set() if reached is None else reached
        self.variants = variants
        self._branch: int | None = 0

    def next_run(self) -> DporRun | None:
        if self._branch is None:
            return None
        return DporRun(self.nodes, self._branch, self.plan, self.reached, self.variants)

    def steps(self) -> list[tuple[str, Footprint | None]]:
        """The current run's steps: (process, footprint), in order."""
        return [(_process(node.taken), node.footprint) for node in self.nodes]

    def finish(self, run: DporRun, *, crash_at_end: bool = False) -> None:
        """The run is over: schedule the reversal of its races; choose where the next branches.

        ``crash_at_end``: the run ended normally and a crash was allowed (it
        counts as crashing at its very end; see the module doc).
        """
        assert self._branch is not None and run.branch == self._branch
        _races(self.nodes, self._branch, crash_at_end)
        _disabled(self.nodes, self._branch, run.final_ready)
        self._branch = _next_branch(self.nodes)


class DporScheduler(Scheduler):
    """DPOR as a scheduler: every behaviour of a scenario, each at least once (the module doc).

    One ``DporTree`` for the scenario, its store faults processes of their own,
    then one per cancel plan the fault-free runs reached.  ``audit``: run 1 in
    ``audit`` of the pairs of adjacent steps called independent both ways
    and compare the states (``_audit``); what it finds is the report's
    ``oracle_errors``.
    """

    name = "dpor"
    about = "dynamic partial-order reduction: every behaviour once (the default)"
    params = (Param("audit", "int?", None, "audit 1 in N of the pairs called independent", 1),)
    exhaustive = True
    footprints = True

    def __init__(self, audit: int | None = None) -> None:
        self.audit = audit
        self._report: SearchReport | None = None
        self._auditor: Auditor | None = None
        self._target: Target | None = None
        self._scenario: Scenario | None = None
        self._reached: set[tuple[str, str, int]] = set()
        self._plans: list[Plan] = []
        self._tried: set[tuple[str, str, int]] = set()
        self._tree: DporTree | None = None

    def validate(self, scenario: Scenario) -> None:
        if scenario.faults > 1 or scenario.crashes > 1 or scenario.cancels > 1:
            raise ValueError("DPOR explores at most one store fault, one crash and one "
                             "cancelled caller per schedule")

    def start(self, target: Target, scenario: Scenario, report: SearchReport) -> None:
        self._target, self._scenario, self._report = target, scenario, report
        self._auditor = None if self.audit is None else Auditor(target, scenario, self.audit)
        self._plans = [None]

    async def next_run(self) -> DporRun | None:
        while True:
            if self._tree is not None:
                run = self._tree.next_run()
                if run is not None:
                    if self._auditor is not None:
                        run.kept_asleep = []
                    return run
                self._plan_done(self._tree.plan)
                self._tree = None
            if not self._plans:
                return None
            plan = self._plans.pop(0)
            # Faults are processes of the fault-free tree (the module doc); a cancel plan's
            # runs fail no store call (one fault or one cancel: the sweep's scenarios).
            self._tree = DporTree(plan, self._reached,
                                  variants=plan is None and self._scenario is not None
                                  and self._scenario.faults > 0)

    def _plan_done(self, plan: Plan) -> None:
        """After the fault-free plan: every fault and cancel plan its runs reached."""
        scenario = self._scenario
        assert scenario is not None
        if plan is None:
            kinds = {"cancel"} if scenario.cancels > 0 else set()
            new = {p for p in self._reached - self._tried if p[0] in kinds}
            self._plans.extend(sorted(new))
            self._tried |= new

    async def finish(self, run: Strategy, outcome: RunOutcome) -> None:
        assert isinstance(run, DporRun) and self._tree is not None
        report, scenario, target = self._report, self._scenario, self._target
        assert report is not None and scenario is not None and target is not None
        if self._auditor is not None:
            for error in await self._auditor.after(outcome, self._tree.steps()):
                report.oracle_error(error)
            asleep = [(i, Choice(task, fault=faulted, kind=kind))
                      for i, (task, faulted, kind) in
                      ((i, _variant(q)) for i, q in run.kept_asleep or ())]
            for error in await self._auditor.asleep(outcome, asleep):
                report.oracle_error(error)
            if scenario.crashes > 0 and CRASH_FOOTPRINT is not None:  # None: a test's
                # crash that conflicts with everything, so it claims nothing to audit
                answers = [i for i, node in enumerate(self._tree.nodes)
                           if ANSWERS_FIRST and _answers_only(node)]
                for error in await self._auditor.crashes(outcome, self._tree.steps(),
                                                         CRASH_FOOTPRINT, answers):
                    report.oracle_error(error)
            for error in await self._auditor.mirrors(outcome, twins(scenario)):
                report.oracle_error(error)
            _footprint_problems(target, scenario, report)
            report.audited, report.audit_seconds = self._auditor.pairs, self._auditor.seconds
        done_normally = not outcome.aborted and not run.crashed
        self._tree.finish(run, crash_at_end=done_normally and scenario.crashes > 0)


async def explore_dpor(
    target: Target,
    scenario: Scenario,
    *,
    store: str = "memory",
    max_schedules: int | None = None,
    stop_on_violation: bool = False,
    progress: Callable[[SearchReport], None] | None = None,
    found: Callable[[SearchReport, RunOutcome], None] | None = None,
    audit: int | None = None,
    seen: Callable[[RunOutcome], None] | None = None,
) -> SearchReport:
    """Every behaviour of ``scenario`` on ``target``: ``DporScheduler`` in the one loop.

    ``found``, ``seen``: as for ``explore_with`` (``benchmarks.bench_dpor_classics``
    counts its traces with ``seen``).  ``audit``: see ``DporScheduler``.
    """
    return await explore_with(target, scenario, DporScheduler(audit), store=store,
                              max_schedules=max_schedules,
                              stop_on_violation=stop_on_violation, progress=progress,
                              found=found, seen=seen)


__all__ = ["CRASH", "FAULTED", "DporRun", "DporScheduler", "DporTree", "explore_dpor"]
