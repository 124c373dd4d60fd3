"""The rules, checked at every step of a run, on any target, and the history they read.

What the monitor learns, it learns from the engine, after every step: the
answers that arrived, the scheduling points parked and announced, and the
store as ``observe_store`` shows it -- all of which a port shows over the
wire as well as the reference does in process.  A target in this process
adds white-box evidence (``Introspection``): the session tasks still running,
turns running, each store write as it lands and each checkpoint that
returned.  A rule uses the wire evidence always, and the white-box evidence
where there is some; so every rule below is checked for ports too, in the
form the wire allows.

Rules (clause ids of ``spec/CONTRACT.md``), each a class of ``rules/`` (this
table is read from them; its order is the order their checks run in):
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ..._model import model
from ..targets import Answer, Introspection, Point
from ._calls import Call, Violation
from ._labels import short
from ._linearize import Cancel, Event, Fault, Invoke, Observe, Quiet, Respond, Restart
from .rules import RULE_CLASSES, Rule, table

__doc__ += "\n" + table(RULE_CLASSES) + "\n"

RULES: tuple[str, ...] = tuple(r.clause for r in RULE_CLASSES if r.listed)
"""Every rule the monitor checks for any target, each a clause id of ``spec/CONTRACT.md``."""

MONITOR_ORDERS: tuple[str, ...] = (
    "create", "archive", "cancel_all_checkpointers", "rearm_all_checkpointers")
"""The operations whose answers change what the monitor keeps for every rule (``answered``:
the sessions known live, archived, disarmed; a sweep in flight)."""

JUDGED_IN_FLIGHT: frozenset[str] = frozenset(
    {*MONITOR_ORDERS,
     *(op for cls in RULE_CLASSES for excuse in cls.excuses for op in excuse.ops),
     *(op for cls in RULE_CLASSES for op in cls.orders)})
"""The operations (and ``FAULT``) whose invocation or answer a verdict reads by when it
happens: the monitor's own (``MONITOR_ORDERS``), every one some rule excuses something under
while it is in flight, and every one some rule ``orders``.  Only these write the footprint
group ``inflight`` (added by the run loop, ``_run``); every other call (a read, a list, a
load, an inject, an interrupt) is ordered by real time and by what it touches."""

_HOOKS_OF = {cls: cls.hooks() for cls in RULE_CLASSES}  # read once, not at every run


def _result_text(call: Call, answer: Answer) -> str:
    if answer.code is not None:
        return answer.code
    if call.name == "load_persisted":
        return "ok:none" if call.value is None else "ok:found"
    return "ok"


@dataclass
class Monitor:
    """The facts of one run every rule may read, and the rules, each called at its hooks.

    The monitor keeps the history (and the events ``_linearize`` reads), the
    last store observed, and what several rules share: sessions met, known
    live, archived, the checkpointer sweep.  At each moment of the run it
    updates those facts first, then calls that moment's hook on every rule
    that defines it (``Rule.hooks``), in ``Rule.order``.
    """

    capacity: int
    stop_bound: int = 8
    step: int = 0
    violations: list[Violation] = field(default_factory=list)
    history: list[Call] = field(default_factory=list)
    store: dict[str, model.Session] = field(default_factory=dict)  # the last observation
    archived: dict[str, int] = field(default_factory=dict)  # id -> step its archive answered
    known_live: set[str] = field(default_factory=set)
    seen: set[str] = field(default_factory=set)  # every session id met anywhere
    disarmed: bool = False  # cancel_all answered, no rearm invoked since it was (see ``invoked``)
    disarmed_ids: frozenset[str] = frozenset()  # sessions whose gate the sweep reached
    sweeping: bool = False  # a cancel_all or rearm is in flight, or disarmed, or either
    unsettled: bool = False  # a disarm and a re-arm overlapped: armed or not, unknown
    live_now: frozenset[str] | None = None  # inside: live sessions at the last step
    placement: bool = False  # the target parks where service/_placement.py says (evidence)
    calls_changed: int = 0  # bumped as a call is invoked, answered or cancelled
    rules: tuple[Rule, ...] = field(init=False, repr=False, compare=False)
    _events: list[Event] = field(default_factory=list)
    _calling: dict[str, Call] = field(default_factory=dict)  # client -> its call in flight
    _observed: Observe | None = None  # the store seen at the last settle, not yet logged
    _seen_violations: set[tuple[str, str]] = field(default_factory=set)
    _sweeps: dict[int, bool] = field(default_factory=dict)  # sweep calls in flight: overlapped
    _hooks: dict[str, list[Callable[..., None]]] = field(init=False, repr=False, compare=False)
    _inside: list[Callable[[Introspection], None]] = field(init=False, repr=False,
                                                           compare=False)

    def __post_init__(self) -> None:
        self.rules = tuple(cls(self) for cls in RULE_CLASSES)
        self._hooks = {}
        for rule in self.rules:
            for hook in _HOOKS_OF[type(rule)]:
                self._hooks.setdefault(hook, []).append(getattr(rule, hook))
        # After a step, inside: each rule's ``inside`` in order; the step's writes go to
        # every ``write`` hook at once, write by write, where the first rule with one stands.
        self._inside = []
        for rule in self.rules:
            hooks = _HOOKS_OF[type(rule)]
            if "write" in hooks and self._writes not in self._inside:
                self._inside.append(self._writes)
            if "inside" in hooks:
                self._inside.append(rule.inside)

    def _hook(self, name: str) -> list[Callable[..., None]]:
        return self._hooks.get(name, [])

    @property
    def events(self) -> list[Event]:
        """The run as LINEARIZABLE checks it (``_linearize``): calls, answers, stores, faults.

        A settle's store is logged after the answers that settle brought
        (they were given before the adapter was quiescent: ``spec/ADAPTER.md``,
        ``settle``), so a call the model has finished must be answered by then.
        """
        self._log(None)
        return self._events

    def _log(self, event: Event | None) -> None:
        if self._observed is not None:
            self._events.append(self._observed)
            self._observed = None
        if event is not None:
            self._events.append(event)

    def violate(self, rule: str, message: str, step: int | None = None) -> None:
        key = (rule, message)
        if key not in self._seen_violations:
            self._seen_violations.add(key)
            self.violations.append(Violation(rule, self.step if step is None else step, message))

    # -- calls ---------------------------------------------------------------------------

    def invoked(self, call: Call) -> None:
        self.calls_changed += 1
        call.index = len(self.history)
        self.history.append(call)
        if not isinstance(call.op, dict | model.ObserveStore):
            # a raw wire command is answered at once with an input error [INPUT]
            self._log(Invoke(self.step, call.index, call.op))  # type: ignore[arg-type]
            self._calling[call.client] = call
        sid = call.session_id
        if sid is not None:
            self.seen.add(sid)
        name = call.name
        if name in ("cancel_all_checkpointers", "rearm_all_checkpointers"):
            self.sweeping = True
            # A disarm and a re-arm in flight together may take effect in either order, so
            # neither wins for sure: the gates are then armed or not (``unsettled``) until a
            # sweep no other overlapped answers; the rules judge only what is certain.
            overlapped = False
            for index in self._sweeps:
                if self.history[index].name != name:
                    overlapped = self._sweeps[index] = True
            self._sweeps[call.index] = overlapped
        if name == "cancel_all_checkpointers":
            # The sweep disarms the gates there are when it starts (this step);
            # sessions created later start armed (clause STOP-RESUME).
            live = self.live_now if self.live_now is not None else frozenset(self.known_live)
            self.disarmed_ids = live
        if name == "rearm_all_checkpointers":
            self.disarmed = False
        for hook in self._hook("invoke"):
            hook(call)

    def answered(self, call: Call, answer: Answer) -> None:
        if isinstance(answer.result, model.Crashed):
            return  # the process died under it: never answered
        self.calls_changed += 1
        if not isinstance(call.op, dict | model.ObserveStore):
            self._events.append(Respond(self.step, call.index, answer.result))
            if self._calling.get(call.client) is call:
                del self._calling[call.client]
        call.responded = self.step
        call.message = answer.message
        if isinstance(answer.result, model.Ok):
            call.value = answer.result.value
        call.result = _result_text(call, answer)
        overlapped = self._sweeps.pop(call.index, False)
        if answer.ok:
            name, sid = call.name, call.session_id
            if name == "create" and isinstance(call.value, model.RunResult):
                created = call.value.session_id
                self.seen.add(created)
                self.known_live.add(created)
            elif name == "archive" and sid is not None:
                self.archived.setdefault(sid, self.step)
                self.known_live.discard(sid)
            elif name in ("cancel_all_checkpointers", "rearm_all_checkpointers"):
                self.unsettled = overlapped
                self.disarmed = name == "cancel_all_checkpointers" and not overlapped
        self.sweeping = bool(self._sweeps) or self.disarmed or self.unsettled
        for hook in self._hook("answer"):
            hook(call, answer)

    def started_together(self, call: Call, others: Iterable[Call]) -> None:
        """``call`` was started while none of ``others`` had run past its first point.

        The engine says so for a call invoked while each of ``others`` waits
        at the first scheduling point it reached (never released since), and
        for the calls of one ``at_once``.
        """
        others = tuple(others)
        for hook in self._hook("together"):
            hook(call, others)

    def finished(self) -> None:
        """The schedule ended without a crash: host loops still serving count as admitted."""
        for hook in self._hook("finish"):
            hook()

    def restarted(self) -> None:
        self.known_live.clear()
        self._calling.clear()
        for hook in self._hook("restart"):
            hook()
        self._log(Restart(self.step))

    def fault(self, kind: str, call: Call | None, session: str | None) -> None:
        """A store call was made to fail: a client's call's, or a session's host loop's."""
        for hook in self._hook("fault"):
            hook(kind, call, session)
        index = None if call is None else call.index
        self._log(Fault(self.step, kind, index, None if call is not None else session))

    def cancelled(self, call: Call) -> None:
        """[CALLER-CANCEL] ``call``'s caller was cancelled where it waited: no answer will come."""
        self.calls_changed += 1
        self._log(Cancel(self.step, call.index))
        for hook in self._hook("cancel"):
            hook(call)

    def quiet(self) -> None:
        """The run ended with nothing able to move (every task blocked, every client done)."""
        self._log(Quiet(self.step))

    def _where(self, parked: Iterable[Point]) -> tuple[tuple[int | None, str | None, str], ...]:
        """Each parked task as (its call, or the session whose task it is, the point's kind)."""
        out: list[tuple[int | None, str | None, str]] = []
        for p in parked:
            task = p.task.split("#")[0]
            if task.startswith("c:"):
                call = self._calling.get(task[2:])
                if call is not None:
                    out.append((call.index, None, p.kind))
            elif task.startswith("session ") and p.session is not None:
                out.append((None, p.session, p.kind))
        return tuple(sorted(out, key=repr))

    # -- each step ------------------------------------------------------------------------

    def observe(
        self,
        store: Mapping[str, model.Session],
        parked: Sequence[Point],
        announced: Sequence[Point],
        in_flight: Sequence[Call],
        intro: Introspection | None,
    ) -> None:
        """Everything known after one step: the store, the points, what a target showed inside.

        ``in_flight``: the calls invoked and not answered before this step
        (their effects may show in the store; the rules' excuses read them).
        """
        before = self.store
        self.store = dict(store)
        self._log(None)
        self._observed = Observe(self.step, tuple(sorted(self.store.items())),
                                 self._where(parked) if self.placement else None)
        self.seen.update(self.store)
        for p in announced:
            if p.session is not None:
                self.seen.add(p.session)
        for hook in self._hook("observe"):
            hook(before, parked, announced, in_flight)
        if intro is not None:
            self.live_now = intro.live
            for inside in self._inside:
                inside(intro)

    def _writes(self, intro: Introspection) -> None:
        """Each store write of the step, in order, to every rule's ``write``."""
        hooks = self._hook("write")
        for sid, revision, by_session_task in intro.writes:
            for hook in hooks:
                hook(sid, revision, by_session_task)

    def ended(self, intro: Introspection | None) -> None:
        """At the end of a run (nothing can move)."""
        for hook in self._hook("end"):
            hook(intro)

    def read_back(self) -> None:
        """After the restart and the read-back (``store`` observed): the rules on the whole run."""
        for hook in self._hook("read_back"):
            hook()


__all__ = ["JUDGED_IN_FLIGHT", "RULES", "Call", "Monitor", "Violation", "short"]
