"""A pure model of the session contract: what each call returns, one call at a time.

Shape (Porcupine's): ``init(capacity, persistent) -> State`` and
``step(state, op) -> (Result, State)``.  States, operations and results are
frozen dataclasses compared with ``==``.  Nothing here reads a clock, does I/O,
draws a random number or imports the service: this file is the contract.

A step is one call followed by quiescence (every task the call set off has run
until it blocks).  So a plain turn has finished when the next step begins, and
a session is *running* only while a host-mode turn serves its host loop.

Pending calls.  A host-mode ``create``/``start_turn`` does not return while its
loop serves: its result is ``Pending()``.  When a later step ends that call
(``Interrupt``, ``Archive``, ``Restart``), the new state's ``completed`` lists
``(session id, result)`` for each call the step completed, in id order; it is
empty after every other step.  ``Restart`` completes them with ``Crashed()``:
the process died, so the caller gets no answer.

Events [EVENTS].  ``step_events`` is ``step`` that also says what each session
published during the step, as a subscriber that subscribed when the session
registered and reads only after the step sees it (``News``): the model of
the event streams.  ``step`` gives the same result and state.

Ids are the text of ``uuid.UUID(int=n)`` (``sid(n)``); operations name a
session by its ``n``.  The store's one fault is a refused save
(``FailNextSave``): the next save it is asked for fails, as with a locked
file or a full disk.  Time is a logical clock: one tick per change.  The
persistent-only calls (``LoadPersisted``, ``Cancel``/``RearmAllCheckpointers``)
answer ``SESSION_PERSISTENCE_DISABLED`` on an ephemeral service.

Comments name the spec's clauses (CREATE, TURN, ...).  "seed:" marks where the
reference deliberately differs from the seed (meerkat 0.4.0), whose windows it
closes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields, replace

AGENT_ERROR, NOT_FOUND, BUSY = "AGENT_ERROR", "SESSION_NOT_FOUND", "SESSION_BUSY"
NOT_RUNNING, PERSISTENCE_DISABLED = "SESSION_NOT_RUNNING", "SESSION_PERSISTENCE_DISABLED"
STORE_ERROR = "SESSION_STORE_ERROR"
COMPACT = "/compact"
FAIL_BUILD = "/fail-build"  # [CREATE] the scripted builder refuses a create with this prompt
FAIL_TURN = "/fail"  # [TURN] the scripted agent fails a turn whose prompt this is


def sid(n: int) -> str:
    """[IDS] The id of the n-th session created (n from 1, counted across restarts)."""
    return str(uuid.UUID(int=n))


class _Short:
    """A repr without the fields left at their default: ``Create(prompt='a')``."""

    def __repr__(self) -> str:
        shown = [f"{f.name}={getattr(self, f.name)!r}" for f in fields(self)  # type: ignore[arg-type]
                 if getattr(self, f.name) != f.default]
        return f"{type(self).__name__}({', '.join(shown)})"


# -- results ------------------------------------------------------------------

@dataclass(frozen=True, repr=False)
class Ok(_Short):
    value: object = None

@dataclass(frozen=True)
class Err:
    code: str

@dataclass(frozen=True)
class Pending:
    """The call has not returned: its host loop is serving."""

@dataclass(frozen=True)
class Crashed:
    """A pending call whose process died (``Restart``): no answer is defined."""

@dataclass(frozen=True)
class Many:
    """The results of calls made at once, in model order: compare as a multiset."""
    results: tuple[Result, ...]

Result = Ok | Err | Pending | Crashed | Many

# -- events [EVENTS] --------------------------------------------------------------

RUN_STARTED, TEXT_COMPLETE, RUN_COMPLETED = "run_started", "text_complete", "run_completed"
RUN_CANCELLED, HOST_MESSAGE, COMPACTED = "run_cancelled", "host_message", "compacted"
EVENT_BUFFER = 256  # [EVENTS] a subscriber this many events behind loses its oldest

@dataclass(frozen=True, repr=False)
class Event(_Short):
    """[EVENTS] One event a session published: its kind and what it carries."""
    kind: str
    text: str = ""
    input_tokens: int = 0
    output_tokens: int = 0

@dataclass(frozen=True, repr=False)
class News(_Short):
    """[EVENTS] What one session's subscriber reads after a step.

    The subscriber subscribed when the session registered and reads only
    once the step is over: the events the step published (the last
    ``EVENT_BUFFER`` of them), how many it lost because it fell that far
    behind (``lagged``), and whether the stream ended (the session task did).
    """
    events: tuple[Event, ...] = ()
    lagged: int = 0
    ended: bool = False

# -- values ---------------------------------------------------------------------

@dataclass(frozen=True)
class Session:
    """A session's data: what the store keeps, and what a live session holds."""
    created_at: int
    updated_at: int
    message_count: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    last_assistant_text: str | None = None
    revision: int = 0  # counts changes

@dataclass(frozen=True)
class Live:
    session: Session
    pending: str | None = None  # "create" or "start_turn": the call its host loop holds
    armed: bool = True  # its checkpointer's gate [STOP-RESUME]
    inbox: tuple[str, ...] = ()  # injected messages waiting for a host loop

    @property
    def running(self) -> bool:  # at quiescence only a host loop keeps a turn running
        return self.pending is not None

@dataclass(frozen=True)
class RunResult:
    session_id: str
    text: str
    input_tokens: int
    output_tokens: int
    turns: int

@dataclass(frozen=True)
class View:
    session_id: str
    created_at: int
    updated_at: int
    message_count: int
    is_active: bool
    last_assistant_text: str | None
    total_tokens: int
    input_tokens: int
    output_tokens: int

@dataclass(frozen=True)
class Summary:
    session_id: str
    created_at: int
    updated_at: int
    message_count: int
    total_tokens: int
    is_active: bool

def _view(id: str, s: Session, active: bool) -> View:
    return View(id, s.created_at, s.updated_at, s.message_count, active, s.last_assistant_text,
                s.input_tokens + s.output_tokens, s.input_tokens, s.output_tokens)

def _summary(id: str, s: Session, active: bool) -> Summary:
    total = s.input_tokens + s.output_tokens
    return Summary(id, s.created_at, s.updated_at, s.message_count, total, active)

# -- operations (``id`` is the n of ``sid(n)``) ----------------------------------

@dataclass(frozen=True, repr=False)
class Create(_Short):
    prompt: str
    system_prompt: str | None = None
    defer: bool = False
    host_mode: bool = False

@dataclass(frozen=True, repr=False)
class StartTurn(_Short):
    id: int
    prompt: str
    host_mode: bool = False

@dataclass(frozen=True, repr=False)
class HostMessage(_Short):  # (await svc.event_injector(id)).inject(text)
    id: int
    text: str

@dataclass(frozen=True, repr=False)
class Interrupt(_Short):
    id: int

@dataclass(frozen=True, repr=False)
class Read(_Short):
    id: int

@dataclass(frozen=True, repr=False)
class List(_Short):
    offset: int | None = None
    limit: int | None = None

@dataclass(frozen=True, repr=False)
class Archive(_Short):
    id: int

@dataclass(frozen=True, repr=False)
class LoadPersisted(_Short):
    id: int

@dataclass(frozen=True, repr=False)
class CancelAllCheckpointers(_Short):
    pass

@dataclass(frozen=True, repr=False)
class RearmAllCheckpointers(_Short):
    pass

@dataclass(frozen=True, repr=False)
class Restart(_Short):  # the process dies; a new one opens the same store
    pass

@dataclass(frozen=True, repr=False)
class ObserveStore(_Short):
    pass

@dataclass(frozen=True, repr=False)
class FailNextSave(_Short):  # the store refuses its next save: a locked file, a full disk
    pass

@dataclass(frozen=True, repr=False)
class TurnsAtOnce(_Short):  # `count` start_turns of one session, all at once
    id: int
    prompt: str
    host_mode: bool = False
    count: int = 2

@dataclass(frozen=True, repr=False)
class CreatesAtOnce(_Short):  # `count` deferred creates, all at once
    count: int
    prompt: str = "a"

Op = (Create | StartTurn | HostMessage | Interrupt | Read | List | Archive | LoadPersisted
      | CancelAllCheckpointers | RearmAllCheckpointers | Restart | ObserveStore | FailNextSave
      | TurnsAtOnce | CreatesAtOnce)

# -- state ----------------------------------------------------------------------
# Maps are tuples of (key, value) sorted by key, so that states hash.

@dataclass(frozen=True)
class State:
    capacity: int
    persistent: bool
    clock: int = 1  # [TIME] the next tick; shared across restarts
    next_id: int = 1  # [IDS] the n of the next session's id; shared across restarts
    live: tuple[tuple[str, Live], ...] = ()
    store: tuple[tuple[str, Session], ...] = ()  # [DURABILITY] survives Restart
    archived: frozenset[str] = frozenset()
    acked: tuple[tuple[str, int], ...] = ()  # revision each last acknowledged plain turn left
    completed: tuple[tuple[str, Result], ...] = ()  # pending calls the last step completed
    refusals: int = 0  # [SAVE-FAILED] saves the store refuses next (the store's: Restart keeps it)


def init(capacity: int, persistent: bool) -> State:
    return State(capacity=capacity, persistent=persistent)


def step(state: State, op: Op) -> tuple[Result, State]:
    w = _Step(state)
    result = w.apply(op)
    return result, w.state(state)


def step_events(state: State, op: Op) -> tuple[Result, State, tuple[tuple[str, News], ...]]:
    """``step``, and what each session's subscriber reads after it, in id order [EVENTS].

    A session that published nothing and whose stream did not end is left
    out.  Per session the events are in the order published; a subscriber
    reads the last ``EVENT_BUFFER`` of them and counts the rest as lagged
    (the session never waits for a reader).
    """
    w = _Step(state)
    result = w.apply(op)
    news = []
    for id in sorted(set(w.published) | w.ended):
        events = w.published.get(id, [])
        lost = max(0, len(events) - EVENT_BUFFER)
        news.append((id, News(tuple(events[lost:]), lost, id in w.ended)))
    return result, w.state(state), tuple(news)


class _Step:
    """One step's mutable working copy of a State; never escapes ``step``."""

    def __init__(self, s: State) -> None:
        self.capacity, self.persistent = s.capacity, s.persistent
        self.clock, self.next_id = s.clock, s.next_id
        self.live, self.store, self.acked = dict(s.live), dict(s.store), dict(s.acked)
        self.archived, self.completed = set(s.archived), list[tuple[str, Result]]()
        self.refusals = s.refusals
        self.published: dict[str, list[Event]] = {}  # [EVENTS] by session, in order
        self.ended: set[str] = set()  # [EVENTS] sessions whose stream ended

    def state(self, s: State) -> State:
        return replace(
            s, clock=self.clock, next_id=self.next_id, live=tuple(sorted(self.live.items())),
            store=tuple(sorted(self.store.items())), archived=frozenset(self.archived),
            acked=tuple(sorted(self.acked.items())), completed=tuple(sorted(self.completed)),
            refusals=self.refusals)

    def publish(self, id: str, event: Event) -> None:
        self.published.setdefault(id, []).append(event)

    def tick(self) -> int:
        # [TIME] the clock is read once per change: build, each message, each compaction
        self.clock += 1
        return self.clock - 1

    def update(self, id: str, **changes: object) -> None:
        live = self.live[id]
        self.live[id] = replace(live, session=replace(live.session, **changes))  # type: ignore[arg-type]

    def exchange(self, id: str, prompt: str) -> RunResult:
        # [TURN] a user message, then the reply "echo: <prompt>": one tick each;
        # usage is a pure function of the prompt
        s, words = self.live[id].session, len(prompt.split())
        self.tick()
        self.update(id, updated_at=self.tick(), message_count=s.message_count + 2,
                    input_tokens=s.input_tokens + words + 1,
                    output_tokens=s.output_tokens + words + 2,
                    last_assistant_text=f"echo: {prompt}", revision=s.revision + 2)
        # [EVENTS] the reply, with its usage, as it is appended
        self.publish(id, Event(TEXT_COMPLETE, f"echo: {prompt}", words + 1, words + 2))
        return RunResult(id, f"echo: {prompt}", words + 1, words + 2, 1)

    def save(self, id: str) -> bool:
        # [SAVE-FAILED] a refused save leaves the store as it was; the live session
        # keeps the change, and the next save that is not refused stores all of it
        if self.refusals:
            self.refusals -= 1
            return False
        self.store[id] = self.live[id].session
        return True

    def checkpoint(self, id: str) -> None:
        # [CHECKPOINT] a host loop saves after each interaction (persistent only);
        # [CHECKPOINT-GATE] not while disarmed, and only a newer revision
        # (seed: compared message counts, so a compaction was never saved);
        # a refused checkpoint is logged, never raised: the loop goes on
        live, old = self.live[id], self.store.get(id)
        if self.persistent and live.armed and (old is None or live.session.revision > old.revision):
            self.save(id)

    def serve(self, id: str, text: str) -> None:
        self.publish(id, Event(HOST_MESSAGE, text))  # [EVENTS] the loop took the message
        if text == COMPACT:
            # [COMPACT] history rewritten to the same length: one tick, a new
            # revision; count, usage and the latest reply are kept
            self.update(id, updated_at=self.tick(), revision=self.live[id].session.revision + 1)
            self.publish(id, Event(COMPACTED))  # [EVENTS]
        else:
            self.exchange(id, text)  # [HOST-MESSAGE] any other text is one exchange
        self.checkpoint(id)

    def turn(self, id: str, prompt: str, host_mode: bool, call: str) -> Result:
        if prompt == FAIL_TURN:
            # [TURN] the agent fails as the turn starts: nothing appended, nothing saved;
            # the session stays live and idle (a host loop never starts)
            return Err(AGENT_ERROR)
        # [EVENTS] a turn, plain or the first of a host loop: started, the reply, completed
        self.publish(id, Event(RUN_STARTED, prompt))
        result = self.exchange(id, prompt)
        self.publish(id, Event(RUN_COMPLETED, result.text, result.input_tokens,
                               result.output_tokens))
        if not host_mode:
            # [TURN][DURABILITY] saved before the call returns, whatever the gate's
            # arming (seed: saved after an export, outside the gate: window 1)
            if self.persistent:
                if not self.save(id):
                    return Err(STORE_ERROR)  # [SAVE-FAILED] done, live, but not acknowledged
                self.acked[id] = self.live[id].session.revision
            return Ok(result)
        # [HOST] the prompt, a checkpoint, then every queued message in order,
        # each followed by a checkpoint; the call stays pending while the loop serves
        self.checkpoint(id)
        for text in self.live[id].inbox:
            self.serve(id, text)
        self.live[id] = replace(self.live[id], inbox=(), pending=call)
        return Pending()

    def create(self, op: Create) -> Result:
        if len(self.live) >= self.capacity:
            return Err(AGENT_ERROR)  # [CAPACITY] checked first: no id, no tick
        if op.prompt == FAIL_BUILD:
            return Err(AGENT_ERROR)  # [CREATE] the build fails before an id or a tick
        # [CREATE][IDS] a new id, built at one tick; a system prompt is message 1
        id, t = sid(self.next_id), self.tick()
        self.next_id += 1
        count = 0 if op.system_prompt is None else 1
        self.live[id] = Live(Session(created_at=t, updated_at=t, message_count=count))
        if op.defer:  # [DEFER] no turn, an empty result; persistent: stored at once
            if self.persistent and not self.save(id):
                return Err(STORE_ERROR)  # [SAVE-FAILED] live, not stored
            return Ok(RunResult(id, "", 0, 0, 0))
        return self.turn(id, op.prompt, op.host_mode, "create")

    def start_turn(self, n: int, prompt: str, host_mode: bool) -> Result:
        id = sid(n)
        if id not in self.live:
            return Err(NOT_FOUND)
        if self.live[id].running:
            return Err(BUSY)  # [TURN-BUSY] one turn at a time
        return self.turn(id, prompt, host_mode, "start_turn")

    def stop(self, id: str) -> None:
        # [INTERRUPT][ARCHIVE-STOP] the cancelled call answers AGENT_ERROR and saves
        # nothing; checkpoints its loop already made stay
        if self.live[id].running:
            self.completed.append((id, Err(AGENT_ERROR)))
        self.live[id] = replace(self.live[id], pending=None)

    def apply(self, op: Op) -> Result:
        match op:
            case Create():
                return self.create(op)
            case CreatesAtOnce(count=count, prompt=prompt):
                # [CAPACITY] reserved before the agent is built: of creates made
                # at once, exactly min(count, free) succeed
                return Many(tuple(self.create(Create(prompt, defer=True)) for _ in range(count)))
            case StartTurn(id=n, prompt=prompt, host_mode=host):
                return self.start_turn(n, prompt, host)
            case TurnsAtOnce(id=n, prompt=prompt, host_mode=host, count=count):
                # [TURN-BUSY] admission is atomic: one call wins, the others are busy
                first = self.start_turn(n, prompt, host)
                # the others are refused as the first was: not live, busy; or, once it was
                # admitted (however its turn then ended), busy
                refused = isinstance(first, Err) and first.code in (NOT_FOUND, BUSY)
                rest = first if refused else Err(BUSY)
                return Many((first,) + (rest,) * (count - 1))
            case HostMessage(id=n, text=text):
                id = sid(n)
                if id not in self.live:
                    return Err(NOT_FOUND)  # there is no injector
                if self.live[id].running:
                    self.serve(id, text)  # [HOST-MESSAGE] a serving loop takes it now
                else:  # [HOST-MESSAGE] queued until a host loop starts
                    self.live[id] = replace(self.live[id], inbox=(*self.live[id].inbox, text))
                return Ok(None)
            case Interrupt(id=n):
                id = sid(n)
                if id not in self.live:
                    return Err(NOT_FOUND)
                if not self.live[id].running:
                    return Err(NOT_RUNNING)  # [INTERRUPT-RUNNING]
                self.stop(id)  # [INTERRUPT] returns at once; the turn ends cancelled
                # [EVENTS] the service publishes the cancellation, after whatever the loop did
                self.publish(id, Event(RUN_CANCELLED))
                return Ok(None)
            case Read(id=n):
                id = sid(n)
                if id in self.live:  # [READ] is_active: a turn is running
                    return Ok(_view(id, self.live[id].session, self.live[id].running))
                if id in self.store:  # [READ-FALLBACK] the stored copy, inactive
                    return Ok(_view(id, self.store[id], False))
                return Err(NOT_FOUND)
            case List(offset=offset, limit=limit):
                # [LIST] live sessions, then stored ones that are not live (stored copy)
                rows = [_summary(i, v.session, v.running) for i, v in self.live.items()]
                rows += [_summary(i, s, False) for i, s in self.store.items() if i not in self.live]
                rows.sort(key=lambda r: (-r.updated_at, r.session_id))  # [LIST-ORDER]
                start = offset or 0  # [LIST-PAGE] merged and ordered first, then paged
                return Ok(tuple(rows[start:None if limit is None else start + limit]))
            case Archive(id=n):
                id = sid(n)
                if id not in self.live and id not in self.store:
                    return Err(NOT_FOUND)  # [ARCHIVE] ephemeral: live sessions only
                if id in self.live:
                    # [ARCHIVE-STOP] its task, host loop included, has ended when archive
                    # returns (seed: a shutdown queued behind the loop, which never ends)
                    self.stop(id)
                    del self.live[id]
                    self.ended.add(id)  # [EVENTS] its stream ends; no RUN_CANCELLED
                # [ARCHIVE-FINAL] deleted, for good: no later write, read, list or load
                # shows it (seed: saves and checkpoints could write it back)
                self.store.pop(id, None)
                self.acked.pop(id, None)
                self.archived.add(id)
                return Ok(None)
            case LoadPersisted(id=n):
                if not self.persistent:
                    return Err(PERSISTENCE_DISABLED)
                return Ok(self.store.get(sid(n)))  # [LOAD-PERSISTED] the stored session or None
            case CancelAllCheckpointers() | RearmAllCheckpointers():
                # [STOP-RESUME] every live session's checkpointer (turn saves are not
                # affected); sessions created later start armed
                if not self.persistent:
                    return Err(PERSISTENCE_DISABLED)
                armed = isinstance(op, RearmAllCheckpointers)
                self.live = {i: replace(v, armed=armed) for i, v in self.live.items()}
                return Ok(None)
            case Restart():
                # [RESTART] the process dies: live sessions, their pending calls,
                # inboxes and gates are gone; the store, clock and id counter are not
                # ([EVENTS] so are the dead process's subscriptions: nothing is read of them)
                self.completed += [(i, Crashed()) for i, v in self.live.items() if v.running]
                self.live.clear()
                return Ok(None)
            case ObserveStore():
                return Ok(dict(self.store))
            case FailNextSave():
                # [SAVE-FAILED] one more save refused, whichever comes next; an
                # ephemeral service has no store: nothing to refuse
                if self.persistent:
                    self.refusals += 1
                return Ok(None)
        raise TypeError(f"not an operation: {op!r}")


# -- invariants: pure predicates on a State -------------------------------------

def capacity_respected(s: State) -> bool:
    return len(s.live) <= s.capacity  # [CAPACITY]

def archived_gone(s: State) -> bool:  # [ARCHIVE-FINAL] neither live nor stored
    return not s.archived & ({i for i, _ in s.live} | {i for i, _ in s.store})

def store_not_behind_acks(s: State) -> bool:  # [DURABILITY]
    store = dict(s.store)
    return all(i in store and store[i].revision >= rev for i, rev in s.acked)

def time_and_ids_ordered(s: State) -> bool:
    sessions = [v.session for _, v in s.live] + [v for _, v in s.store]
    return all(x.created_at <= x.updated_at < s.clock for x in sessions) and all(  # [TIME]
        uuid.UUID(i).int < s.next_id for i, _ in (*s.live, *s.store))  # [IDS]

def inbox_only_when_idle(s: State) -> bool:  # [HOST] a serving loop has drained its inbox
    return not any(v.running and v.inbox for _, v in s.live)

INVARIANTS = (capacity_respected, archived_gone, store_not_behind_acks,
              time_and_ids_ordered, inbox_only_when_idle)

def violations(s: State) -> list[str]:
    """The names of the invariants ``s`` breaks (empty: all hold)."""
    return [inv.__name__ for inv in INVARIANTS if not inv(s)]
