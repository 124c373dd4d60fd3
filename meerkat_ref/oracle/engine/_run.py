"""One run of a scenario on a target: the engine's loop, the same for every target.

Controlled (a strategy is given; the target must offer scheduling points):

1. ``open`` a fresh service; run the setup calls one by one, points off;
   start the background calls; settle.
2. Points on.  Then, step after step: settle; record the answers that
   arrived and look at the store (and, in process, inside); check every rule
   (``Monitor``); the ready points are the parked tasks plus each idle
   client's ``client.call``; the strategy picks one; the engine sends that
   client's next call, or releases that task (failing its store call if the
   choice says so), or crashes the process (``restart``).  The run ends when
   nothing is ready (a client still waiting then, other than on a host loop,
   is a deadlock), at a crash, or at ``max_steps``.
3. Points off; restart; read back every session id met (``read``,
   ``load_persisted``), ``list``, observe the store: archived stays gone.
   Then the history is checked for linearizability against the model.

Free (no strategy): the same, except that the target interleaves as it will:
every client's first call is sent at once, each next one as soon as the
previous is answered; steps are the oracle's own sends and receipts, which
only loosen real-time order, so the checks stay sound.

The result is plain data (``RunOutcome``): choices, steps, history, the
store after each step, violations, and the request lines that replay it.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..._model import model
from ...registry import operation
from ..targets import CLIENT_CALL, Answer, Footprint, GateState, Introspection, Point, Target
from ._linearize import ModelFailure
from ._monitor import JUDGED_IN_FLIGHT, Call, Monitor, Violation, short
from ._scenarios import ClientOp, Scenario, twins
from ._strategies import Aborted, Budget, Choice, ScheduleDiverged, Strategy
from .rules import FAULT

StoreView = tuple[tuple[str, int, int], ...]
"""The store after a step: (session label, revision, message count), by label."""


@dataclass(frozen=True)
class Snapshot:
    """The state after a step, for pictures: the whole store and (in process) every gate."""

    store: tuple[tuple[str, int, int, int], ...]  # label, revision, message count, updated_at
    gates: tuple[tuple[str, GateState], ...] | None


@dataclass(frozen=True)
class Step:
    """One row of a trace: who ran, at which point, and the store after it if it changed."""

    index: int
    label: str
    kind: str
    session: str | None  # short label
    fault: bool = False
    crash: bool = False
    store: tuple[tuple[str, int], ...] | None = None  # (session, message count) if it changed
    after: Snapshot | None = field(default=None, compare=False)  # the whole state after it
    fault_kind: str = ""  # with ``fault``: how it failed ("" the target's plain fault)

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"index": self.index, "task": self.label, "point": self.kind}
        if self.session:
            out["session"] = self.session
        if self.fault:
            out["fault"] = True
        if self.fault_kind:
            out["fault_kind"] = self.fault_kind
        if self.crash:
            out["crash"] = True
        if self.store is not None:
            out["store"] = dict(self.store)
        return out


@dataclass(frozen=True)
class Node:
    """What the strategy saw at one step: the ready points, and what it chose."""

    ready: tuple[tuple[str, str, str | None, bool], ...]  # label, kind, session, faultable
    chosen: Choice


@dataclass
class RunOutcome:
    scenario: str
    variant: str  # what ran: the target's description
    choices: list[Choice]
    steps: list[Step]
    violations: list[Violation]
    history: list[Call]
    nodes: list[Node] = field(default_factory=list)
    snapshots: list[Snapshot] = field(default_factory=list)  # [0] before step 0, then after each
    end_state: str = ""
    end_view: EndView | None = field(default=None, compare=False)  # the end state as data
    aborted: bool = False
    crashed_at: int | None = None
    lines: list[str] = field(default_factory=list)  # a run that broke a rule: lines to replay it
    exact: bool = True  # a replay followed its schedule exactly
    free: bool = False  # the target interleaved as it would (no strategy)
    # What each step (one per choice but a crash) touched, as the target declared it (controlled
    # runs; ``None`` where undeclared): what ``_traces`` needs to tell two schedules' traces apart.
    footprints: list[Footprint | None] = field(default_factory=list, compare=False)

    @property
    def ok(self) -> bool:
        return not self.violations


@dataclass
class _Client:
    name: str
    ops: tuple[ClientOp, ...]
    index: int = 0
    tries: int = 0
    call: Call | None = None

    @property
    def label(self) -> str:
        return f"c:{self.name}"

    def current(self) -> ClientOp | None:
        return self.ops[self.index] if self.index < len(self.ops) else None

    def idle(self) -> bool:
        return self.call is None and self.current() is not None

    def answered(self, answer: Answer) -> None:
        op = self.current()
        assert op is not None
        self.tries += 1
        self.call = None
        if answer.code == "SESSION_NOT_FOUND" and self.tries < op.attempts:
            return  # the same call again
        self.index += 1
        self.tries = 0


def _session_of(op: object) -> str | None:
    n = operation(op).session(op)
    return None if n is None else model.sid(n)


class _Runner:
    def __init__(self, target: Target, scenario: Scenario, max_steps: int) -> None:
        self.target = target
        self.scenario = scenario
        self.max_steps = max_steps
        self.monitor = Monitor(capacity=scenario.capacity,
                               placement="placement" in target.capabilities)
        self.calls: dict[str, Call] = {}  # call id -> call, in flight
        self.owners: dict[str, _Client] = {}
        self.clients = [_Client(name, ops) for name, ops in scenario.clients]
        self.twins = twins(scenario)  # a client -> its identical twin before it
        self.called: set[str] = set()  # the clients (labels) that have sent a call
        self.outcome = RunOutcome(
            scenario.name, target.description, [], [], self.monitor.violations,
            self.monitor.history,
        )
        self._last_view: StoreView = ()
        # Calls parked at the first point they reached when invoked, never released since,
        # by task label: a call invoked now is started at once with each (TURN-BUSY).
        self.first_point: dict[str, Call] = {}

    # -- calls -----------------------------------------------------------------------------

    async def invoke(self, client: str, op: object, step: int, owner: _Client | None = None) -> str:
        call = Call(client, op, step)
        self.monitor.invoked(call)
        cid = await self.target.call(op, f"c:{client}")
        call.call_id = cid
        self.calls[cid] = call
        if owner is not None:
            owner.call = call
            self.owners[cid] = owner
            self.called.add(owner.label)
        return cid

    def absorb(self, answers: Sequence[tuple[str, Answer]]) -> list[_Client]:
        """Record answers (responded at the monitor's step); the clients they free."""
        freed = []
        for cid, answer in answers:
            call = self.calls.pop(cid, None)
            if call is None:
                continue
            self.monitor.answered(call, answer)
            owner = self.owners.pop(cid, None)
            if owner is not None:
                owner.answered(answer)
                freed.append(owner)
        return freed

    async def call_and_wait(self, client: str, op: object) -> None:
        """One call with points off, waited for (setup and read-back)."""
        cid = await self.invoke(client, op, self.monitor.step)
        while cid in self.calls:
            in_flight = tuple(self.calls.values())
            settled = await self.target.settle()
            self.monitor.observe(await self.target.observe_store(), settled.parked,
                                 settled.points, in_flight, self.target.introspect())
            self.absorb(settled.answers)
            if cid in self.calls and not settled.answers:
                await self.target.wait_any([cid])

    # -- looking -----------------------------------------------------------------------------

    async def look(self, parked: Sequence[Point], announced: Sequence[Point],
                   in_flight: Sequence[Call]) -> Introspection | None:
        store = await self.target.observe_store()
        intro = self.target.introspect()
        self.monitor.observe(store, parked, announced, in_flight, intro)
        self.outcome.snapshots.append(Snapshot(
            tuple(sorted((short(k), v.revision, v.message_count, v.updated_at)
                         for k, v in store.items())),
            None if intro is None else tuple(sorted((short(k), g) for k, g in intro.gates.items())),
        ))
        return intro

    # -- phases -------------------------------------------------------------------------------

    async def setup(self) -> None:
        await self.target.open(self.scenario.capacity, True)
        for op in self.scenario.setup:
            if isinstance(op, model.Restart):  # a setup may leave sessions stored only
                monitor = self.monitor
                monitor.history.append(Call("process", op, monitor.step, monitor.step, "ok"))
                await self.target.restart()
                monitor.restarted()
                await self.target.settle()
                continue
            await self.call_and_wait("setup", op)
        for name, op in self.scenario.background:
            await self.invoke(name, op, self.monitor.step)
        settled = await self.target.settle()
        self.absorb(settled.answers)
        self.monitor.store = dict(await self.target.observe_store())
        intro = self.target.introspect()
        if intro is not None:
            self.monitor.live_now = intro.live
        self._last_view = tuple(
            (short(k), v.revision, v.message_count) for k, v in sorted(self.monitor.store.items())
        )

    async def controlled(self, strategy: Strategy) -> None:
        outcome, monitor = self.outcome, self.monitor
        kinds = self.target.fault_kinds if self.scenario.faults > 0 else ()
        budget = Budget(self.scenario.faults, self.scenario.crashes, self.scenario.cancels,
                        kinds)
        await self.target.control(True)
        step = 0
        pending: tuple[int, Choice, Point | None] | None = None  # the step just taken
        observe = getattr(strategy, "observe", None)  # a reducing search wants footprints
        # A reducing search may have twins call in order (``_scenarios.twins``): a client
        # is not ready until its twin has called, and its first call reads the twin's.
        in_order = self.twins if getattr(strategy, "twins_in_order", False) else {}
        first_call = False  # the last step sent a client's first call
        invoked: tuple[str, Call] | None = None  # the call the last step sent, by its task
        while True:
            in_flight = tuple(self.calls.values())
            settled = await self.target.settle()
            monitor.step = max(step - 1, 0)  # what this settle shows, the last step did
            intro = await self.look(settled.parked, settled.points, in_flight)
            answered = [self.calls[cid] for cid, _ in settled.answers if cid in self.calls]
            self.absorb(settled.answers)
            footprint = settled.footprint
            if pending is not None and footprint is not None:
                footprint = _judged(footprint, pending[1], pending[2], invoked, answered)
                if first_call and invoked is not None and invoked[0] in in_order:
                    # Enabled by the twin's first call: ordered after it (happens-before).
                    footprint = Footprint(footprint.reads | {("call", in_order[invoked[0]])},
                                          footprint.writes)
            if invoked is not None:
                label, call = invoked
                if call.responded is None and any(p.task == label for p in settled.parked):
                    self.first_point[label] = call
                invoked = None
            if pending is not None:
                self._record_step(*pending)
                outcome.footprints.append(footprint)
                if observe is not None:
                    observe(footprint)
            ready = list(settled.parked) + [
                Point(c.label, CLIENT_CALL, _session_of(c.current().op))  # type: ignore[union-attr]
                for c in self.clients
                if c.idle() and not (c.label in in_order and in_order[c.label] not in self.called)
            ]
            ready.sort(key=lambda p: p.task)
            if not ready:
                monitor.ended(intro)
                stuck = [c.label for c in self.clients if c.call is not None and not c.call.host]
                if stuck:
                    monitor.violate(
                        "LIVENESS", f"deadlock: {', '.join(stuck)} blocked, no task can run"
                    )
                else:
                    monitor.quiet()
                break
            if step >= self.max_steps:
                monitor.violate("LIVENESS", f"no end after {self.max_steps} steps")
                break
            monitor.step = step
            try:
                choice = strategy.choose(step, ready, budget)
            except Aborted:
                outcome.aborted = True
                return
            outcome.nodes.append(Node(
                tuple((p.task, p.kind, p.session and short(p.session), p.faultable)
                      for p in ready), choice))
            outcome.choices.append(choice)
            if choice.crash:
                budget.crashes -= 1
                outcome.steps.append(Step(step, "process", "crash", None, crash=True))
                outcome.crashed_at = step
                self.calls.clear()  # cut by the crash: never answered
                await self.target.restart()
                monitor.restarted()
                await self.target.settle()
                return
            point = next((p for p in ready if p.task == choice.label), None)
            if point is None:
                shown = ", ".join(p.task for p in ready)
                raise ScheduleDiverged(
                    f"at step {step}: no task {choice.label!r} is ready (ready: {shown})")
            if point.kind == CLIENT_CALL:
                client = next(c for c in self.clients if c.label == choice.label and c.idle())
                op = client.current()
                assert op is not None
                first_call = client.label not in self.called
                cid = await self.invoke(client.name, op.op, step, client)
                call = self.calls[cid]
                monitor.started_together(call, [c for c in self.first_point.values()
                                                if c.responded is None])
                invoked = (client.label, call)
            else:
                first_call = False
                self.first_point.pop(choice.label, None)
                if choice.fault and budget.faults <= 0:
                    raise ScheduleDiverged(
                        f"at step {step}: the store call of {choice.label!r} is to fail, but "
                        "this run may inject no store fault (the target does not offer "
                        "faults, or the scenario allows none)")
                if choice.fault and choice.kind and choice.kind not in budget.fault_kinds:
                    raise ScheduleDiverged(
                        f"at step {step}: the store call of {choice.label!r} is to fail as "
                        f"{choice.kind!r}, which the target does not offer")
                cancelled = self._call_of(choice.label) if choice.cancel else None
                if choice.cancel and (budget.cancels <= 0 or cancelled is None):
                    raise ScheduleDiverged(
                        f"at step {step}: the caller of {choice.label!r} is to be cancelled, but "
                        "this run may cancel none (or it is no client's call)")
                try:
                    if choice.cancel:
                        await self.target.cancel(choice.label)
                    else:
                        await self.target.release(choice.label, choice.fault, choice.kind)
                except LookupError as exc:
                    raise ScheduleDiverged(f"at step {step}: {exc}") from None
                if choice.fault:
                    budget.faults -= 1
                    monitor.fault(point.kind, self._call_of(choice.label), point.session)
                if cancelled is not None:
                    budget.cancels -= 1
                    monitor.cancelled(cancelled)
            pending = (step, choice, point)
            step += 1
        await self.target.control(False)

    def _call_of(self, label: str) -> Call | None:
        """The call a client's task (``c:<client>``) is running; ``None`` for a session's task."""
        task = label.split("#")[0]
        return next((c for c in self.calls.values() if f"c:{c.client}" == task), None)

    def _record_step(self, index: int, choice: Choice, point: Point | None) -> None:
        snapshot = self.outcome.snapshots[-1]
        view = tuple((label, count) for label, _rev, count, _t in snapshot.store)
        full = tuple((label, rev, count) for label, rev, count, _t in snapshot.store)
        changed = full != self._last_view
        self._last_view = full
        assert point is not None
        self.outcome.steps.append(Step(
            index, choice.label, point.kind, point.session and short(point.session),
            choice.fault, store=view if changed else None, after=snapshot,
            fault_kind=choice.kind,
        ))

    async def free(self) -> None:
        monitor = self.monitor
        tick = monitor.step

        def next_tick() -> int:
            nonlocal tick
            tick += 1
            monitor.step = tick
            return tick

        first = [c for c in self.clients if c.idle()]
        invoked = next_tick()
        calls = []
        for c in first:
            op = c.current()
            assert op is not None
            call = Call(c.name, op.op, invoked)
            monitor.invoked(call)
            calls.append(call)
        cids = await self.target.at_once([c.current().op for c in first])  # type: ignore[union-attr]
        for c, call, cid in zip(first, calls, cids, strict=True):
            call.call_id = cid
            c.call = call
            self.calls[cid] = call
            self.owners[cid] = c
        for i, call in enumerate(calls):  # one at_once: all started at once
            monitor.started_together(call, calls[:i])
        while True:
            plain = [cid for cid, call in self.calls.items() if not call.host]
            if plain:
                await self.target.wait_any(plain)
            settled = await self.target.settle()
            if not settled.answers:
                break  # nothing moves: done, or (a plain call waits) a deadlock
            in_flight = tuple(self.calls.values())
            next_tick()
            await self.look(settled.parked, settled.points, in_flight)
            freed = self.absorb(settled.answers)
            for c in freed:
                if c.idle():
                    op = c.current()
                    assert op is not None
                    await self.invoke(c.name, op.op, next_tick(), c)
        stuck = [c.label for c in self.clients if c.call is not None and not c.call.host]
        if stuck:
            monitor.violate("LIVENESS", f"deadlock: {', '.join(stuck)} blocked, nothing answers")
        else:
            monitor.quiet()
        self.outcome.free = True

    async def _post_step(self, label: str, kind: str) -> None:
        """A row for a moment after the run: the restart, the read-back (violations cite them)."""
        store = await self.target.observe_store()
        intro = self.target.introspect()
        snapshot = Snapshot(
            tuple(sorted((short(k), v.revision, v.message_count, v.updated_at)
                         for k, v in store.items())),
            None if intro is None else tuple(sorted((short(k), g) for k, g in intro.gates.items())),
        )
        view = tuple((label_, count) for label_, _rev, count, _t in snapshot.store)
        self.outcome.steps.append(Step(self.monitor.step, label, kind, None, store=view,
                                       after=snapshot))

    async def post(self) -> None:
        """Restart, read back every id met, look at the store; then check the history."""
        monitor = self.monitor
        if self.outcome.crashed_at is None:
            monitor.finished()  # host loops still serving count as admitted
        steps = self.outcome.steps
        monitor.step = max(monitor.step, steps[-1].index if steps else 0) + 1
        monitor.history.append(Call("process", model.Restart(), monitor.step, monitor.step, "ok"))
        self.calls.clear()
        self.owners.clear()
        if self.outcome.crashed_at is None:
            # The service left as a program leaves it, where the target can show it.
            for clause, problem in await self.target.shutdown() or ():
                monitor.violate(clause, problem)
        await self.target.restart()
        monitor.restarted()
        await self.target.settle()
        await self._post_step("process", "restart")
        monitor.step += 1
        for sid in sorted(monitor.seen):
            n = int(sid.replace("-", ""), 16)
            await self.call_and_wait("post", model.Read(n))
            await self.call_and_wait("post", model.LoadPersisted(n))
        await self.call_and_wait("post", model.List())
        monitor.store = dict(await self.target.observe_store())
        await self._post_step("post", "read-back")
        monitor.read_back()  # ARCHIVE-FINAL after the restart; LINEARIZABLE
        self.outcome.end_view = end_view(monitor, self.twins)
        self.outcome.end_state = _fingerprint(self.outcome.end_view)
        if monitor.violations:  # the request lines are wanted for a counterexample only
            self.outcome.lines = self.target.transcript()


EndView = tuple[tuple[tuple[str, object], ...], tuple[tuple[str, tuple[tuple[str, str], ...]], ...]]
"""An end state as data: the store's rows (by key), and each client's calls with their
answers in its own order (by client, twins named alike); ``end_state`` is its hash."""


def end_view(monitor: Monitor, twins: dict[str, str]) -> EndView:
    """The end state: the store, and each client's calls with their answers, in its own order.

    Calls are grouped by client: the order in which two clients happened to
    *send* calls that do not touch each other is an interleaving, not a
    state.  Twins (``_scenarios.twins``) are named by the first of them and
    their groups sorted, so a run and its mirror (the twins swapped) are one
    end state: judged up to the swap, as the twins are interchangeable.
    """
    def first(client: str) -> str:
        label = f"c:{client}"
        while label in twins:
            label = twins[label]
        return label

    by_client: dict[str, list[tuple[str, str]]] = {}
    for c in monitor.history:
        by_client.setdefault(c.client, []).append((c.text(), str(c.result)))
    return (
        tuple(sorted(monitor.store.items())),
        tuple(sorted((first(client), tuple(calls)) for client, calls in by_client.items())),
    )


def _fingerprint(view: EndView) -> str:
    return hashlib.sha1(repr(view).encode()).hexdigest()[:12]


CUT = str(None)
"""A call's answer in an ``EndView`` when it never came (a crash cut it)."""


def covers(view: EndView, other: EndView) -> bool:
    """Whether ``view`` is ``other`` with some calls a crash cut there answered here.

    A crash right after an answer is judged at least as strictly as one right
    before it (``_dpor``, "Answers before a crash"), so an end state covered
    by one reached needs no run of its own.  Equal views cover each other.
    """
    store, clients = view
    other_store, other_clients = other
    if store != other_store or len(clients) != len(other_clients):
        return False
    groups: dict[str, list[tuple[tuple[str, str], ...]]] = {}
    for name, calls in other_clients:
        groups.setdefault(name, []).append(calls)
    mine: dict[str, list[tuple[tuple[str, str], ...]]] = {}
    for name, calls in clients:
        mine.setdefault(name, []).append(calls)
    if groups.keys() != mine.keys():
        return False

    def answered(a: tuple[tuple[str, str], ...], b: tuple[tuple[str, str], ...]) -> bool:
        return len(a) == len(b) and all(
            x == y or (x[0] == y[0] and y[1] == CUT) for x, y in zip(a, b, strict=True))

    for name, theirs in groups.items():  # twins: some pairing of the group (at most three)
        ours = mine[name]
        if len(ours) != len(theirs) or not any(
                all(answered(a, b) for a, b in zip(order, theirs, strict=True))
                for order in itertools.permutations(ours)):
            return False
    return True


KNOWN = "known"
"""The ``inflight`` item for what the monitor keeps of every session at once: the sessions
known live (``Monitor.known_live``), which a create's or an archive's answer changes, and a
create's answer (CAPACITY counts them) and a disarm's invocation (the gates it disarms) read."""


def _in_flight(call: Call, *, answered: bool) -> set[str]:
    """The ``inflight`` items a judged call's invocation (or answer) writes.

    A call writes its session's item; one that names no session writes ``*``,
    which every session's steps read.  A create names none when it is invoked,
    but nothing a verdict reads changes then for any session but its own
    (DURABILITY starts watching for its row; LIVENESS's excuse is read only
    when nothing can run), and every step of its own session comes after it:
    the create's own steps start that session's task.  So its invocation
    writes nothing here, and its answer writes its new session's item and
    ``KNOWN``, as an archive's answer does.  (Before, a create wrote ``*``
    both times, and every step of every other session raced with it.)
    """
    if call.name == "create":
        if not answered:
            return set()
        created = call.value.session_id if isinstance(call.value, model.RunResult) else None
        return {KNOWN} if created is None else {created, KNOWN}
    item = call.session_id or "*"
    return {item, KNOWN} if answered and call.name == "archive" else {item}


def _judged(footprint: Footprint, choice: Choice, point: Point | None,
            invoked: tuple[str, Call] | None, answered: Sequence[Call]) -> Footprint:
    """``footprint`` with what the step changed of the calls in flight the rules judge by.

    A verdict may read when a call of some operations is invoked or answered:
    a rule excuses an effect while one is in flight (its ``excuses``), or
    reads the moment itself (its ``orders``: a create's answer against the
    capacity), or the monitor keeps what the answer changed
    (``JUDGED_IN_FLIGHT``).  So such a call's invocation and answer, and a
    failed store call, write the oracle's resource ``inflight`` for the
    session they name (``*``: a call that names none; a create: ``_in_flight``),
    and every step on a session reads it (``targets._footprints``).  Any other call (a read, a
    list, an inject, ...) writes nothing there: its invocation is ordered by
    ``resp`` (real time), its effects by what it touches.  A step that
    touches everything (``None``) stays so: a cancelled caller's, say.
    """
    sessions = {item for c in answered if c.name in JUDGED_IN_FLIGHT
                for item in _in_flight(c, answered=True)}
    if invoked is not None:
        footprint = Footprint(footprint.reads, footprint.writes | {("call", invoked[0])})
        if invoked[1].name in JUDGED_IN_FLIGHT:
            sessions |= _in_flight(invoked[1], answered=False)
    if choice.fault and FAULT in JUDGED_IN_FLIGHT:
        sessions.add((point.session if point is not None else None) or "*")
    if not sessions:
        return footprint
    return Footprint(footprint.reads, footprint.writes | {("inflight", s) for s in sessions})


async def run_schedule(
    target: Target,
    scenario: Scenario,
    strategy: Strategy | None,
    *,
    max_steps: int = 400,
    read_back: bool = True,
) -> RunOutcome:
    """Run ``scenario`` once on ``target``: controlled by ``strategy``, or free if ``None``.

    Store faults are injected only where the target offers them (``Scenario.within``).
    ``read_back=False`` leaves the target as the last step left it (no restart,
    no read-back, no linearizability check): the audit compares that state.
    """
    scenario, _ = scenario.within(target.capabilities)
    runner = _Runner(target, scenario, max_steps)
    await runner.setup()
    if strategy is None:
        await runner.free()
    else:
        await runner.controlled(strategy)
        if runner.outcome.aborted:
            runner.outcome.lines = target.transcript()
            return runner.outcome
    if not read_back:
        return runner.outcome
    try:
        await runner.post()
    except ModelFailure as exc:
        exc.schedule = tuple(runner.outcome.choices)  # what replays it
        raise
    exact = getattr(strategy, "exact", True)
    runner.outcome.exact = bool(exact)
    return runner.outcome


__all__ = ["CUT", "EndView", "Node", "RunOutcome", "Snapshot", "Step", "covers", "end_view",
           "run_schedule"]
