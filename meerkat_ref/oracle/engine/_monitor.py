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

Rules (clause ids of ``spec/CONTRACT.md``):

ARCHIVE-FINAL   After ``archive(id)`` answered ok: the store never holds the
                id again (wire: every observation of the store; white-box:
                every write as it lands), and no ``read``, ``list`` or
                ``load_persisted`` invoked after that shows it, not even after
                a restart.
ARCHIVE         An archive holds the session's gate (or a tombstone) only
                while it runs: a checkpointer gate exists for a live
                session or during an archive of it, never after
                (white-box: the service's gates).
ARCHIVE-STOP    After ``archive(id)`` answered ok, its session does no more
                work: no scheduling point of the session's own task
                (``session s<hex>``) and no agent point (``agent.step``,
                ``checkpoint``) of that session is announced at a later step
                (wire); its task has ended within ``stop_bound`` steps and by
                the end of the run (white-box).
CAPACITY        Sessions known live (their create answered ok, not archived,
                no restart since) never exceed the capacity (wire); session
                tasks alive never exceed it (white-box).
TURN-BUSY       At most one turn of a session is in flight: two different
                tasks never wait at agent points of one session at once
                (wire); of ``start_turn`` calls of one session started at
                once -- each invoked while the other still waited at the
                first scheduling point it reached when it was invoked, or sent
                in one ``at_once`` -- at most one is admitted (wire: the
                model's ``TurnsAtOnce``; admission is decided before a call's
                first point, so a second turn that queues behind the first
                is caught although the two never run at once); at most one
                agent turn runs, and at most one is taken or queued by its
                task, per session (white-box); that count of turns taken or
                queued is itself checked against the agents (white-box): never
                below one where given, never below the agent turns running
                in a live session, and at the end equal to them (a count the
                rule reads must not be able to hide a second turn).
DURABILITY      When a plain (non-host) create or turn of a session answers
                ok, the store held the session at some step while the call
                was in flight (its answer's step included), at a revision at
                least two above what it held when the call was invoked (a
                turn adds a message and a reply; wire) -- exactly at the
                turn's own revision or newer (white-box).  An archive that
                deletes the row afterwards does not excuse a save that never
                landed.
CHECKPOINT      A checkpoint call that returned while armed (no sweep in
                flight, not disarmed, from its start to its end) left the
                store at its revision or newer (white-box only: the wire does
                not say which revision a checkpoint wrote).
CHECKPOINT-GATE While disarmed (``cancel_all_checkpointers`` answered, and
                ``rearm_all_checkpointers`` not yet invoked), the stored
                revision of a session the sweep disarmed changes only under a
                plain create or turn of that session in flight (wire); no
                write by a session's own task lands for it (white-box).
EVENTS          (white-box only, so not in ``RULES``: a port's streams are
                checked by ``conform``'s sequential vectors) each session's
                event stream, read at every step, is one the contract allows
                for the calls that ran (``_event_streams``): each turn's
                events in order and complete, RUN_CANCELLED only for an
                interrupt, the stream ended exactly when the task did.
LIVENESS        When nothing can run, no client waits on a call other than a
                host-mode turn; a run ends within ``max_steps``.
LINEARIZABLE    (after the run, ``_linearize``) some real-time order of the
                calls gets every call's outcome from the model.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from ..._model import model
from ...registry import describe, operation
from ..targets import AGENT_KINDS, Answer, Introspection, Point
from ._event_streams import stream_problem
from ._labels import short
from ._linearize import Cancel, Event, Fault, Invoke, Observe, Quiet, Respond, Restart

RULES: tuple[str, ...] = (
    "ARCHIVE",
    "ARCHIVE-FINAL",
    "ARCHIVE-STOP",
    "CAPACITY",
    "TURN-BUSY",
    "DURABILITY",
    "CHECKPOINT",
    "CHECKPOINT-GATE",
    "LIVENESS",
    "LINEARIZABLE",
)
"""Every rule the monitor checks, each a clause id of ``spec/CONTRACT.md``."""


@dataclass(frozen=True)
class Violation:
    rule: str
    step: int
    message: str

    def to_json(self) -> dict[str, object]:
        return {"rule": self.rule, "step": self.step, "message": self.message}


@dataclass
class Call:
    """One client call: plain data, for the history, the drawings and the reports."""

    client: str
    op: object  # the model operation (or a raw wire command, a dict)
    invoked: int
    responded: int | None = None
    result: str | None = None  # "ok", "ok:<detail>", or an error code
    message: str = ""  # for an error: its text
    value: object = None  # the model value it answered
    call_id: str = ""
    index: int = -1  # its place in the history (events name calls by it)

    @property
    def name(self) -> str:
        if isinstance(self.op, dict):
            return str(self.op.get("cmd"))
        return operation(self.op).name

    @property
    def session_id(self) -> str | None:
        """The session the call names (canonical text), if it names one."""
        if isinstance(self.op, dict):
            s = self.op.get("session")
            return s if isinstance(s, str) else None
        n = operation(self.op).session(self.op)
        return None if n is None else model.sid(n)

    @property
    def session(self) -> str | None:
        s = self.session_id
        return None if s is None else short(s)

    @property
    def host(self) -> bool:
        return bool(getattr(self.op, "host_mode", False))

    @property
    def created(self) -> str | None:
        if isinstance(self.value, model.RunResult) and self.name == "create":
            return short(self.value.session_id)
        return None

    @property
    def shown(self) -> tuple[str, ...]:
        if isinstance(self.value, tuple):
            return tuple(short(getattr(s, "session_id", None)) for s in self.value)
        return ()

    def text(self) -> str:
        return self.op.get("cmd", "?") if isinstance(self.op, dict) else describe(self.op)

    def to_json(self) -> dict[str, object]:
        return {
            "client": self.client,
            "op": self.name,
            "call": self.text(),
            "session": self.session,
            "invoked": self.invoked,
            "responded": self.responded,
            "result": self.result,
        }


def _result_text(call: Call, answer: Answer) -> str:
    if answer.code is not None:
        return answer.code
    if call.name == "load_persisted":
        return "ok:none" if call.value is None else "ok:found"
    return "ok"


@dataclass
class Monitor:
    capacity: int
    stop_bound: int = 8
    step: int = 0
    violations: list[Violation] = field(default_factory=list)
    history: list[Call] = field(default_factory=list)
    store: dict[str, model.Session] = field(default_factory=dict)  # the last observation
    archived: dict[str, int] = field(default_factory=dict)  # id -> step its archive answered
    archive_invoked: set[str] = field(default_factory=set)
    faulted: set[str] = field(default_factory=set)
    known_live: set[str] = field(default_factory=set)
    seen: set[str] = field(default_factory=set)  # every session id met anywhere
    disarmed: bool = False  # cancel_all answered, rearm not yet invoked
    disarmed_ids: frozenset[str] = frozenset()  # sessions whose gate the sweep reached
    sweeping: bool = False  # a cancel_all or rearm is in flight, or disarmed
    swept_settles: set[int] = field(default_factory=set)
    live_now: frozenset[str] | None = None  # white-box: live sessions at the last step
    placement: bool = False  # the target parks where service/_placement.py says (evidence)
    _events: list[Event] = field(default_factory=list)
    _calling: dict[str, Call] = field(default_factory=dict)  # client -> its call in flight
    _archiving: dict[str, int] = field(default_factory=dict)  # session -> archives in flight
    _observed: Observe | None = None  # the store seen at the last settle, not yet logged
    together: list[tuple[Call, Call]] = field(default_factory=list)  # turns started at once
    _floor: dict[int, int] = field(default_factory=dict)  # id(call) -> store revision at invoke
    _peak: dict[int, dict[str, int]] = field(default_factory=dict)  # id(call) -> highest seen
    _seen_violations: set[tuple[str, str]] = field(default_factory=set)
    _calls_changed: int = 0  # bumped as a call is invoked, answered or cancelled
    _streams_checked: dict[str, tuple[model.News, bool, int]] = field(default_factory=dict)

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
        self._calls_changed += 1
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
        if name == "archive" and sid is not None:
            self.archive_invoked.add(sid)
            self._archiving[sid] = self._archiving.get(sid, 0) + 1
        if name in ("cancel_all_checkpointers", "rearm_all_checkpointers"):
            self.sweeping = True
        if name == "cancel_all_checkpointers":
            # The sweep disarms the gates there are when it starts (this step);
            # sessions created later start armed (clause STOP-RESUME).
            live = self.live_now if self.live_now is not None else frozenset(self.known_live)
            self.disarmed_ids = live
        if name == "rearm_all_checkpointers":
            self.disarmed = False
        if name in ("create", "start_turn") and sid is not None:
            stored = self.store.get(sid)
            self._floor[id(call)] = -1 if stored is None else stored.revision
        if name in ("create", "start_turn") and not call.host:
            self._peak[id(call)] = {}

    def answered(self, call: Call, answer: Answer) -> None:
        if isinstance(answer.result, model.Crashed):
            return  # the process died under it: never answered
        self._calls_changed += 1
        self._ended(call)
        if not isinstance(call.op, dict | model.ObserveStore):
            self._events.append(Respond(self.step, call.index, answer.result))
            if self._calling.get(call.client) is call:
                del self._calling[call.client]
        call.responded = self.step
        call.message = answer.message
        if isinstance(answer.result, model.Ok):
            call.value = answer.result.value
        call.result = _result_text(call, answer)
        if not answer.ok:
            return
        name, sid = call.name, call.session_id
        if name in ("read", "load_persisted") and sid is not None and call.value is not None:
            self.check_visible(call, [sid])
        elif name == "list" and isinstance(call.value, tuple):
            self.check_visible(call, [getattr(s, "session_id", "") for s in call.value])
        elif name == "create" and isinstance(call.value, model.RunResult):
            created = call.value.session_id
            self.seen.add(created)
            self.known_live.add(created)
            self._check_capacity_known()
        elif name == "archive" and sid is not None:
            self.archived.setdefault(sid, self.step)
            self.known_live.discard(sid)
        elif name == "cancel_all_checkpointers":
            self.disarmed = True
        elif name == "rearm_all_checkpointers":
            self.sweeping = False
        if name in ("create", "start_turn") and not call.host:
            session = call.value.session_id if isinstance(call.value, model.RunResult) else sid
            if session is not None:
                self._check_durable(call, session, answer.revision)
        if name == "start_turn" and self.together:
            self.check_together()

    def started_together(self, call: Call, others: Iterable[Call]) -> None:
        """``call`` was started while none of ``others`` had run past its first point.

        The engine says so for a call invoked while each of ``others`` waits
        at the first scheduling point it reached (never released since), and
        for the calls of one ``at_once``.  Two such ``start_turn`` calls of one
        session are the model's ``TurnsAtOnce``: at most one is admitted.
        """
        if call.name != "start_turn" or call.session_id is None:
            return
        for other in others:
            if other is not call and other.name == "start_turn" and (
                    other.session_id == call.session_id):
                self.together.append((other, call))

    def check_together(self, *, final: bool = False) -> None:
        """TURN-BUSY for turns started at once: not two of them admitted.

        Admitted: answered ok; at the end of a run (``final``), also a
        host-mode turn still unanswered (its loop serves).
        """
        def admitted(call: Call) -> bool:
            return call.result == "ok" or (final and call.host and call.responded is None)

        for first, second in self.together:
            if admitted(first) and admitted(second):
                self.violate(
                    "TURN-BUSY",
                    f"two turns of {first.session} started at once were both admitted: "
                    f"{first.client}'s start_turn (invoked at step {first.invoked}) and "
                    f"{second.client}'s (step {second.invoked}), each invoked before the "
                    "other passed its first scheduling point; one must get SESSION_BUSY "
                    "(calls do not queue)",
                )

    def restarted(self) -> None:
        self.known_live.clear()
        self._calling.clear()
        self._archiving.clear()
        self._log(Restart(self.step))

    def fault(self, kind: str, call: Call | None, session: str | None) -> None:
        """A store call was made to fail: a client's call's, or a session's host loop's."""
        if session is not None:
            self.faulted.add(session)
        index = None if call is None else call.index
        self._log(Fault(self.step, kind, index, None if call is not None else session))

    def cancelled(self, call: Call) -> None:
        """[CALLER-CANCEL] ``call``'s caller was cancelled where it waited: no answer will come."""
        self._calls_changed += 1
        self._log(Cancel(self.step, call.index))
        self._ended(call)

    def _ended(self, call: Call) -> None:
        """``call`` is no longer in flight (answered, or its caller cancelled)."""
        if call.name == "archive" and call.session_id in self._archiving:
            left = self._archiving[call.session_id] - 1
            if left:
                self._archiving[call.session_id] = left
            else:
                del self._archiving[call.session_id]

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

    def check_visible(self, call: Call, shown: Iterable[str]) -> None:
        """A read/list/load_persisted invoked after an archive answered must not show it."""
        for sid in shown:
            returned = self.archived.get(sid)
            if returned is not None and returned <= call.invoked:
                self.violate(
                    "ARCHIVE-FINAL",
                    f"{call.name} invoked at step {call.invoked} shows {short(sid)}, "
                    f"archived at step {returned}",
                )

    def _check_capacity_known(self) -> None:
        if len(self.known_live) > self.capacity:
            shown = ", ".join(sorted(short(s) for s in self.known_live))
            self.violate(
                "CAPACITY",
                f"{len(self.known_live)} sessions live at once ({shown}), capacity "
                f"{self.capacity}",
            )

    def _check_durable(self, call: Call, sid: str, revision: int | None) -> None:
        """[DURABILITY] saved before it answered: the store showed it at some step since.

        Every store observation while the call was in flight counts (the one
        of the settle that brought its answer included), so an archive that
        deleted the row after the save does not hide the save -- and a
        success answered for a save that never landed (the gate was
        archived first) is caught, archive or not.
        """
        peak = self._peak.pop(id(call), {}).get(sid)
        stored = self.store.get(sid)
        if peak is not None and (stored is None or stored.revision < peak):
            stored = replace(stored or model.Session(0, 0), revision=peak)
        if revision is not None:
            need, what = revision, f"at revision {revision}"
        else:
            floor = self._floor.get(id(call), -1)
            need = 0 if floor < 0 else floor + 2
            what = "(at least revision 0)" if floor < 0 else f"(stored revision was {floor})"
        if stored is None or stored.revision < need:
            have = "nothing" if stored is None else f"revision {stored.revision}"
            self.violate(
                "DURABILITY",
                f"{call.name} of {short(sid)} {what} acknowledged, store has {have}",
            )

    # -- each step ------------------------------------------------------------------------

    def observe(
        self,
        store: Mapping[str, model.Session],
        parked: Iterable[Point],
        announced: Iterable[Point],
        plain_in_flight: frozenset[str],
        intro: Introspection | None,
    ) -> None:
        """Everything known after one step: the store, the points, what a target showed inside.

        ``plain_in_flight``: sessions with a plain create or turn invoked and
        not answered before this step (their saves may change the store).
        """
        before = self.store
        self.store = dict(store)
        for peaks in self._peak.values():
            for sid, row in self.store.items():
                if row.revision > peaks.get(sid, -1):
                    peaks[sid] = row.revision
        self._log(None)
        self._observed = Observe(self.step, tuple(sorted(self.store.items())),
                                 self._where(parked) if self.placement else None)
        self.seen.update(self.store)
        for sid in self.archived:
            if sid in self.store:
                self.violate("ARCHIVE-FINAL", f"archived {short(sid)} is in the store")
        if self.disarmed:
            for sid in sorted(self.disarmed_ids & set(self.store)):
                old, new = before.get(sid), self.store[sid]
                if old is not None and new.revision != old.revision and sid not in plain_in_flight:
                    self.violate(
                        "CHECKPOINT-GATE",
                        f"{short(sid)} saved at revision {new.revision} while its checkpointer "
                        "was disarmed and no turn of it was in flight",
                    )
        for p in announced:
            if p.session is not None:
                self.seen.add(p.session)
            for sid, returned in self.archived.items():
                own = p.task == f"session {short(sid)}"
                if (own or (p.kind in AGENT_KINDS and p.session == sid)) and self.step > returned:
                    self.violate(
                        "ARCHIVE-STOP",
                        f"archived {short(sid)} still works: {p.task} reached {p.kind} at step "
                        f"{self.step}, after its archive answered at step {returned}",
                    )
        working: dict[str, set[str]] = {}
        for p in parked:
            if p.kind in AGENT_KINDS and p.session is not None:
                working.setdefault(p.session, set()).add(p.task)
        for sid, tasks in sorted(working.items()):
            if len(tasks) > 1:
                self.violate(
                    "TURN-BUSY",
                    f"two turns of {short(sid)} in flight at once: "
                    f"{' and '.join(sorted(tasks))} both wait at agent points",
                )
        if intro is not None:
            self._white_box(intro)

    def _white_box(self, intro: Introspection) -> None:
        self.live_now = intro.live
        for sid in sorted(set(intro.gates) - intro.live - set(self._archiving)):
            self.violate(
                "ARCHIVE",
                f"{short(sid)} has a checkpointer gate but is not live and no archive of it runs",
            )
        settles = intro.settles
        if self.sweeping or self.disarmed:
            self.swept_settles.add(settles)
        for sid, _revision, by_session_task in intro.writes:
            if sid in self.archived:
                self.violate(
                    "ARCHIVE-FINAL",
                    f"{short(sid)} written to the store after its archive returned (resurrected)",
                )
            if by_session_task and self.disarmed and sid in self.disarmed_ids:
                self.violate(
                    "CHECKPOINT-GATE",
                    f"checkpoint of {short(sid)} written after cancel_all_checkpointers returned",
                )
        for sid, revision, started in intro.checkpoints:
            swept = any(started <= s <= settles for s in self.swept_settles)
            if swept or self.sweeping or self.disarmed:
                continue
            if sid in self.archive_invoked or sid in self.faulted:
                continue
            stored = self.store.get(sid)
            if stored is None or stored.revision < revision:
                have = "nothing" if stored is None else f"revision {stored.revision}"
                self.violate(
                    "CHECKPOINT",
                    f"checkpoint of {short(sid)} at revision {revision} acknowledged, "
                    f"store has {have}",
                )
        for sid, returned in self.archived.items():
            if sid in intro.running_tasks and self.step - returned > self.stop_bound:
                self.violate(
                    "ARCHIVE-STOP",
                    f"archived {short(sid)}'s task still runs {self.step - returned} steps "
                    "after archive returned",
                )
        if len(intro.running_tasks) > self.capacity:
            self.violate(
                "CAPACITY",
                f"{len(intro.running_tasks)} session tasks alive, max {self.capacity}",
            )
        for sid, n in sorted(intro.running_turns.items()):
            if n > 1:
                self.violate("TURN-BUSY", f"{n} turns run at once in {short(sid)}")
        for sid, n in sorted(intro.admitted.items()):
            if n > 1:
                self.violate("TURN-BUSY", f"{n} turns admitted at once in {short(sid)}")
        self._check_admitted(intro, at_end=False)
        self._check_events(intro)

    def _check_admitted(self, intro: Introspection, *, at_end: bool) -> None:
        """The count of turns taken or queued (``admitted``) agrees with the agents.

        TURN-BUSY's white-box half reads that count, so a count that is off
        would hide a second turn: it lists only sessions with some (at least
        one each), a live session whose agent runs a turn has it counted,
        and when nothing can move every count is the agent turns running
        (a host loop's), since a turn queued then would never be taken.
        """
        for sid, n in sorted(intro.admitted.items()):
            running = intro.running_turns.get(sid, 0)
            if n < 1 or (at_end and n != running):
                self.violate("TURN-BUSY", f"the service counts {n} turns taken or queued "
                             f"in {short(sid)}, with {running} agent turns running")
        for sid, running in sorted(intro.running_turns.items()):
            if sid in intro.live and intro.admitted.get(sid, 0) < running:
                self.violate("TURN-BUSY", f"{running} agent turns run in {short(sid)}, but "
                             f"the service counts {intro.admitted.get(sid, 0)} taken or queued")

    def _check_events(self, intro: Introspection) -> None:
        """EVENTS: every session's stream so far is one its calls allow (``_event_streams``).

        A stream is judged again only when something its verdict reads changed:
        the stream (the target replaces a session's ``News`` when it reads more),
        whether its task runs, or the calls (one is invoked, answered, cancelled).
        """
        for sid, news in sorted(intro.events.items()):
            running = sid in intro.running_tasks
            last = self._streams_checked.get(sid)
            if last is not None and last[0] is news and last[1:] == (running,
                                                                     self._calls_changed):
                continue
            self._streams_checked[sid] = (news, running, self._calls_changed)
            calls = [c for c in self.history if c.session_id == sid or (
                isinstance(c.value, model.RunResult) and c.value.session_id == sid)]
            cancels = sum(c.name == "interrupt" and c.result in (None, "ok") for c in calls)
            turns = sum(isinstance(c.value, model.RunResult) and c.value.turns > 0
                        and not c.host for c in calls)
            problem = stream_problem(news, cancels=cancels, turns=turns, running=running)
            if problem is not None:
                self.violate("EVENTS", f"the event stream of {short(sid)}: {problem}")

    def ended(self, intro: Introspection | None) -> None:
        """At the end of a run (nothing can move): every archived session's task has ended."""
        if intro is None:
            return
        for sid in self.archived:
            if sid in intro.running_tasks:
                self.violate("ARCHIVE-STOP", f"archived {short(sid)}'s task never ends")
        self._check_admitted(intro, at_end=True)


__all__ = ["RULES", "Call", "Monitor", "Violation", "short"]
