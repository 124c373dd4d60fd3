"""The contract under concurrency: each call as the atomic actions clause ATOMIC names.

``sessions.step`` says what one call does when nothing else runs: the whole
call, then quiescence.  Under concurrency a call takes time, and others see
its moments: a create reserves its place, takes its id, registers, runs its
turn and saves, each a separate action; a turn pushes its user message, then
its reply, ends, then saves through the gate; an archive marks the gate,
deletes the row, then stops the task; a host loop takes queued messages and
checkpoints in the background; a persistent ``list`` is two reads; the
checkpointer sweeps go one gate at a time; any store call can fail.  This
module cuts every call into those actions, so the linearizability checker
(``oracle/engine/_linearize.py``) asks whether some interleaving of them
explains *everything* a history observed -- every answer with its payload,
the store after every step, quiescence at the end -- instead of excusing
what an atomic model cannot produce.

Shape (pure, like ``sessions.py``): a ``World`` (what the calls share) and one
``Run`` per call in flight (how far it got), both frozen and hashable.
``begin(op)`` is a call's first ``Run``; ``advance(world, rid, run)`` lists
what its next action may leave (empty: it waits -- for a lock, a message, a
task to end -- or it has finished: ``run.result`` is set).  ``restart``
is a crash.  Comments name the clauses; the action boundaries are the ones
``meerkat_ref/service/_placement.py`` lists for the reference (clause
ATOMIC), merged where nothing observable can happen in between (a gated
write's check and its save hold the gate's lock throughout).

Refinement: a call run alone from a quiescent world until nothing can move
ends exactly as ``sessions.step`` says, result and state
(``tests/test_model_concurrent.py`` checks it on every state the model's BFS
reaches), so the two models are one contract at two grains.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .sessions import (
    AGENT_ERROR,
    BUSY,
    COMPACT,
    FAIL_BUILD,
    FAIL_TURN,
    NOT_FOUND,
    NOT_RUNNING,
    PERSISTENCE_DISABLED,
    STORE_ERROR,
    Archive,
    CancelAllCheckpointers,
    Crashed,
    Create,
    Err,
    HostMessage,
    Interrupt,
    List,
    LoadPersisted,
    Ok,
    Op,
    Read,
    RearmAllCheckpointers,
    Result,
    RunResult,
    Session,
    StartTurn,
    _summary,
    _view,
    sid,
)


@dataclass(frozen=True)
class Gate:
    """A session's checkpointer gate [CHECKPOINT-GATE]; ``holder``: an archive holding its lock."""

    archived: bool = False
    armed: bool = True
    saved: int = -1  # the revision last saved through it
    in_map: bool = True  # archive drops it from the map when done; a slow save still holds it
    holder: int | None = None
    # Which of the session's gates: an archive that finds none in the map puts in a fresh
    # tombstone while an older, dropped one may still be held or waited on by other archives
    # (its own archive failed: [ARCHIVE-ATOMIC]); the two are two locks.  ``users``: the
    # archives holding or waiting on this one.  A dropped gate still used is kept under
    # ``_retired(id, gen)`` until its last archive lets it go.
    gen: int = 0
    users: int = 0


@dataclass(frozen=True)
class Task:
    """A session's task [LIVE-TASK] and what it holds."""

    session: Session
    registered: bool = True  # in the live map: read, list, turns, interrupt, inject see it
    turn: int | None = None  # the run admitted [TURN-BUSY]: running until its turn ends
    inside: int | None = None  # the run whose turn the task has taken up
    cancel: bool = False  # an interrupt (or a stop) waits for the turn's next action
    stopped: bool = False  # archive cancelled the task: it ends once no turn is inside
    inbox: tuple[str, ...] = ()  # [HOST-MESSAGE] queued, not yet taken by a loop


@dataclass(frozen=True)
class World:
    """What concurrent calls share.  Maps are tuples of (key, value) sorted by key."""

    capacity: int
    persistent: bool
    clock: int = 1  # [TIME]
    next_id: int = 1  # [IDS]
    reserved: int = 0  # [CAPACITY] places held: builds in flight and tasks not yet ended
    tasks: tuple[tuple[str, Task], ...] = ()
    gates: tuple[tuple[str, Gate], ...] = ()
    store: tuple[tuple[str, Session], ...] = ()
    archived: frozenset[str] = frozenset()
    acked: tuple[tuple[str, int], ...] = ()  # as in sessions.State
    refusals: int = 0  # [SAVE-FAILED] saves the store refuses next (``FailNextSave``)

    def __hash__(self) -> int:
        # Worlds are hashed over and over by the checker's sets: computed once
        found = self.__dict__.get("_hash")
        if found is None:
            found = hash((self.clock, self.next_id, self.reserved, self.tasks, self.gates,
                          self.store, self.archived, self.acked, self.refusals))
            object.__setattr__(self, "_hash", found)
        return int(found)


@dataclass(frozen=True)
class Run:
    """One call's progress: its next action ``pc``; ``result`` once it has answered."""

    op: Op
    pc: str
    sid: str | None = None  # the session it works on (a create's, once its id is taken)
    value: object = None  # what it carries between actions: a text, a snapshot, a page
    fault: str | None = None  # its next store call of this kind fails [STORE-FAILURE]
    result: Result | None = None
    detached: bool = False  # its caller was cancelled [CALLER-CANCEL]: it ends, answering no one

    def __hash__(self) -> int:
        found = self.__dict__.get("_hash")
        if found is None:
            found = hash((self.op, self.pc, self.sid, self.value, self.fault, self.result,
                          self.detached))
            object.__setattr__(self, "_hash", found)
        return int(found)


@dataclass(frozen=True)
class _Archiving:
    tombstone: bool = False
    was_archived: bool = False
    in_store: bool = False
    gen: int = 0  # which of the session's gates it holds or waits on (``Gate.gen``)


_DEAD = object()  # an action a fault was aimed at, which would not call the store: impossible


def begin(op: Op) -> Run:
    """A call's first ``Run`` (``TypeError`` for what is not a call of the service)."""
    first = _FIRST.get(type(op))
    if first is None:
        raise TypeError(f"not a service call: {op!r}")
    return Run(op, first)


def init(capacity: int, persistent: bool) -> World:
    return World(capacity, persistent)


def restart(world: World) -> World:
    """[RESTART] the process dies: tasks, gates and places are gone; store, clock, ids stay."""
    return replace(world, tasks=(), gates=(), reserved=0)


def fail_next_save(world: World) -> World:
    """[SAVE-FAILED] the store refuses its next save (an ephemeral service has none)."""
    return replace(world, refusals=world.refusals + 1) if world.persistent else world


def advance(world: World, rid: int, run: Run) -> tuple[tuple[World, Run], ...]:
    """What run ``rid``'s next action may leave: none if it waits or has answered."""
    if run.result is not None:
        return ()
    w = _Working(world)
    out = _ACTIONS[run.pc](w, rid, run)
    if out is None or out is _DEAD:
        return ()
    if isinstance(out, list):  # a choice (the sweeps take their gates in any order)
        return tuple((w2.freeze(), r) for w2, r in out)
    assert isinstance(out, Run)
    return ((w.freeze(), out),)


def cancel(world: World, rid: int, run: Run) -> tuple[World, Run]:
    """[CALLER-CANCEL] the call's caller is cancelled where it waits, before its next action.

    Before a turn is handed to the session's task a create gives back its
    place (once built and registered: the session stays, idle) and a turn
    its admission; once handed over, the turn runs on with no one to answer
    and its save is not made.  An archive cancelled before its commit point
    changes nothing; after it, the session is stopped all the same and the
    gate let go at once, the task ending when its turn has.  A cancelled read,
    page or sweep simply stops (a sweep leaves the gates it had not reached).
    The result: ``run`` done with no answer (``Crashed``), or ``detached``.
    """
    w = _Working(world)
    pc, sid = run.pc, run.sid
    gone = replace(run, pc="done", result=Crashed(), fault=None)
    if isinstance(run.op, Create) and pc == "build":
        w.reserved -= 1  # [CAPACITY] a place is given back on every failure before registration
    elif pc == "send":
        assert sid is not None
        task = w.tasks.get(sid)
        if task is not None and task.turn == rid:
            w.tasks[sid] = replace(task, turn=None)  # the admission is given back
    elif pc in ("user", "reply", "end", "checkpoint", "take", "serve"):
        return world, replace(run, detached=True)  # the turn (or loop) runs on; no save
    elif pc in ("exists", "delete"):
        _abort(w, run)  # [ARCHIVE-ATOMIC] before the commit point: nothing changed
    elif pc == "lock" and isinstance(run.value, _Archiving):
        key = _gate_key(w, run)
        gate = w.gates[key]
        # no longer waiting; its tombstone goes too
        _let_go(w, key, gate, in_map=gate.in_map and not run.value.tombstone)
    elif pc == "stop":
        _stop(w, rid, run)  # [ARCHIVE-ATOMIC] committed: the session is stopped anyway
        _release(w, run, Ok(None))
        return w.freeze(), replace(run, pc="wait", detached=True)
    return w.freeze(), gone


def doomed(world: World, rid: int, run: Run) -> bool:
    """Whether ``run``'s next action is one a fault was aimed at but which calls no store."""
    return run.result is None and _ACTIONS[run.pc](_Working(world), rid, run) is _DEAD


# -- the working copy ---------------------------------------------------------------------


class _Working:
    """One action's mutable copy of a World; never escapes ``advance``.

    The maps are copied only when an action touches them (most touch one or
    two), and a World nothing changed is handed back as it was.
    """

    def __init__(self, s: World) -> None:
        self.s = s
        self.clock, self.next_id, self.reserved = s.clock, s.next_id, s.reserved
        self.refusals = s.refusals
        self._tasks: dict[str, Task] | None = None
        self._gates: dict[str, Gate] | None = None
        self._store: dict[str, Session] | None = None
        self._archived: set[str] | None = None
        self._acked: dict[str, int] | None = None

    @property
    def tasks(self) -> dict[str, Task]:
        if self._tasks is None:
            self._tasks = dict(self.s.tasks)
        return self._tasks

    @property
    def gates(self) -> dict[str, Gate]:
        if self._gates is None:
            self._gates = dict(self.s.gates)
        return self._gates

    @property
    def store(self) -> dict[str, Session]:
        if self._store is None:
            self._store = dict(self.s.store)
        return self._store

    @property
    def archived(self) -> set[str]:
        if self._archived is None:
            self._archived = set(self.s.archived)
        return self._archived

    @property
    def acked(self) -> dict[str, int]:
        if self._acked is None:
            self._acked = dict(self.s.acked)
        return self._acked

    @property
    def persistent(self) -> bool:
        return self.s.persistent

    def copy(self) -> _Working:
        return _Working(self.freeze())

    def freeze(self) -> World:
        s = self.s
        tasks = s.tasks if self._tasks is None else tuple(sorted(self._tasks.items()))
        gates = s.gates if self._gates is None else tuple(sorted(self._gates.items()))
        store = s.store if self._store is None else tuple(sorted(self._store.items()))
        archived = s.archived if self._archived is None else frozenset(self._archived)
        acked = s.acked if self._acked is None else tuple(sorted(self._acked.items()))
        after = World(s.capacity, s.persistent, self.clock, self.next_id, self.reserved, tasks,
                      gates, store, archived, acked, self.refusals)
        return s if after == s else after

    def tick(self) -> int:
        self.clock += 1  # [TIME] one reading per change
        return self.clock - 1

    def live(self, id: str) -> Task | None:
        """The task of a registered session (what calls that name a session find)."""
        task = self.tasks.get(id)
        return task if task is not None and task.registered else None

    def change(self, id: str, **changes: object) -> None:
        task = self.tasks[id]
        self.tasks[id] = replace(task, session=replace(task.session, **changes))  # type: ignore[arg-type]

    def gated_write(self, rid: int, run: Run, snapshot: Session, checkpoint: bool) -> object:
        """[CHECKPOINT-GATE] under the lock: archived, disarmed or not newer writes nothing.

        ``None``: the lock is held by an archive (wait).  Else ``archived``,
        ``skipped``, ``failed`` ([SAVE-FAILED]) or ``saved``.
        """
        assert run.sid is not None
        gate = self.gates[run.sid]
        if gate.holder is not None and gate.holder != rid:
            return None
        if gate.archived:
            outcome = "archived"
        elif (checkpoint and not gate.armed) or snapshot.revision <= gate.saved:
            outcome = "skipped"
        elif run.fault == "store.save":
            return "failed"
        elif self.refusals:
            self.refusals -= 1
            return "failed"
        else:
            self.store[run.sid] = snapshot
            self.gates[run.sid] = replace(gate, saved=snapshot.revision)
            return "saved"
        return _DEAD if run.fault is not None else outcome


def _done(run: Run, result: Result) -> Run:
    return replace(run, pc="done", result=result, fault=None)


def _failed(run: Run, kind: str) -> bool:
    """Whether this action's store call (of ``kind``) is the one a fault was aimed at."""
    return run.fault == kind


def _wrong_fault(run: Run, kind: str) -> bool:
    return run.fault is not None and run.fault != kind


# -- create, turns, host loops --------------------------------------------------------------


def _reserve(w: _Working, rid: int, run: Run) -> Run:
    # [CAPACITY] check and reserve in one step, before the build: no id, no tick if full;
    # [IDS] the id is taken with the place, its creation tick comes later
    if w.reserved >= w.s.capacity:
        return _done(run, Err(AGENT_ERROR))
    assert isinstance(run.op, Create)
    if run.op.prompt == FAIL_BUILD:
        return _done(run, Err(AGENT_ERROR))  # [CREATE] refused at once: its place given back
    w.reserved += 1
    id = sid(w.next_id)
    w.next_id += 1
    return replace(run, pc="build", sid=id)


def _build(w: _Working, rid: int, run: Run) -> Run:
    # [CREATE] built at one tick (a system prompt is message 1), then registered with its
    # gate in the same step [ATOMIC]; a first turn holds the admission from here
    op = run.op
    assert isinstance(op, Create) and run.sid is not None
    t = w.tick()
    session = Session(t, t, 0 if op.system_prompt is None else 1)
    gate = w.gates.get(run.sid)
    if gate is not None and gate.in_map:
        w.reserved -= 1  # [ARCHIVE] an archive of this very id holds a tombstone: refused
        return _done(run, Err(AGENT_ERROR))
    w.tasks[run.sid] = Task(session, turn=None if op.defer else rid)
    if w.persistent:
        w.gates[run.sid] = Gate()
    if op.defer:  # [DEFER] no turn; persistent: saved before create returns
        if not w.persistent:
            return _done(run, Ok(RunResult(run.sid, "", 0, 0, 0)))
        return replace(run, pc="save", value=(RunResult(run.sid, "", 0, 0, 0), session))
    return replace(run, pc="send", value=op.prompt)


def _admit(w: _Working, rid: int, run: Run) -> Run:
    # [TURN-BUSY] admission is one check-and-set: not live, busy, or admitted
    op = run.op
    assert isinstance(op, StartTurn)
    id = sid(op.id)
    gate = w.gates.get(id)
    task = w.live(id)
    if task is None or (w.persistent and (gate is None or not gate.in_map)):
        return _done(run, Err(NOT_FOUND))
    if task.turn is not None:
        return _done(run, Err(BUSY))
    w.tasks[id] = replace(task, turn=rid)
    return replace(run, pc="send", sid=id, value=op.prompt)


def _send(w: _Working, rid: int, run: Run) -> Run:
    # The turn is handed to the session's task; once the task has ended (archived) it
    # cannot be: a create was cancelled, a turn finds no session
    assert run.sid is not None
    task = w.tasks.get(run.sid)
    if task is None:
        return _done(run, Err(AGENT_ERROR if isinstance(run.op, Create) else NOT_FOUND))
    w.tasks[run.sid] = replace(task, inside=rid)
    return replace(run, pc="user")


def _cancelled(w: _Working, run: Run) -> bool:
    assert run.sid is not None
    task = w.tasks.get(run.sid)
    return task is None or task.cancel


def _stop_turn(w: _Working, run: Run) -> Run:
    # [INTERRUPT][ARCHIVE-STOP] the turn (or loop) ends cancelled: what it appended stays,
    # it saves nothing; an interrupt is not remembered past it [INTERRUPT-RUNNING]
    assert run.sid is not None
    task = w.tasks.get(run.sid)
    if task is not None:
        w.tasks[run.sid] = replace(task, turn=None, inside=None, cancel=task.stopped)
    return _done(run, Err(AGENT_ERROR))


def _host(run: Run) -> bool:
    return bool(getattr(run.op, "host_mode", False))


def _user(w: _Working, rid: int, run: Run) -> Run:
    # [TURN] the prompt's user message: one tick, one change (a prompt "/fail" fails here)
    if _cancelled(w, run) or run.value == FAIL_TURN:
        return _stop_turn(w, run)
    return _push_user(w, run)


def _push_user(w: _Working, run: Run) -> Run:
    assert run.sid is not None
    s = w.tasks[run.sid].session
    w.change(run.sid, updated_at=w.tick(), message_count=s.message_count + 1,
             revision=s.revision + 1)
    return replace(run, pc="reply")


def _reply(w: _Working, rid: int, run: Run) -> Run:
    # [TURN] the reply "echo: <text>": one tick, one change; usage a function of the text
    if _cancelled(w, run):
        return _stop_turn(w, run)
    assert run.sid is not None and isinstance(run.value, str)
    s, words = w.tasks[run.sid].session, len(run.value.split())
    w.change(run.sid, updated_at=w.tick(), message_count=s.message_count + 1,
             input_tokens=s.input_tokens + words + 1, output_tokens=s.output_tokens + words + 2,
             last_assistant_text=f"echo: {run.value}", revision=s.revision + 1)
    return replace(run, pc="checkpoint" if _host(run) else "end")


def _end(w: _Working, rid: int, run: Run) -> Run:
    # [TURN-BUSY] a plain turn ends: the admission is given back before its save
    if _cancelled(w, run):
        return _stop_turn(w, run)
    assert run.sid is not None and isinstance(run.value, str)
    task = w.tasks[run.sid]
    w.tasks[run.sid] = replace(task, turn=None, inside=None, cancel=task.stopped)
    words = len(run.value.split())
    result = RunResult(run.sid, f"echo: {run.value}", words + 1, words + 2, 1)
    if not w.persistent or run.detached:  # [CALLER-CANCEL] no one to answer, no save
        return _done(run, Ok(result))
    return replace(run, pc="save", value=(result, task.session))


def _save(w: _Working, rid: int, run: Run) -> object:
    # [DURABILITY] the final snapshot, through the gate; an archive that got the gate
    # first makes the call AGENT_ERROR, never a success the store does not hold;
    # [SAVE-FAILED] a refused save: STORE_ERROR, the change stays live
    if _wrong_fault(run, "store.save"):
        return _DEAD
    assert isinstance(run.value, tuple) and run.sid is not None
    result, snapshot = run.value
    outcome = w.gated_write(rid, run, snapshot, checkpoint=False)
    if outcome is None or outcome is _DEAD:
        return outcome
    if outcome == "archived":
        return _done(run, Err(AGENT_ERROR))
    if outcome == "failed":
        return _done(run, Err(STORE_ERROR))
    if not getattr(run.op, "defer", False):  # as sessions.State.acked: turns only
        w.acked[run.sid] = max(w.acked.get(run.sid, -1), snapshot.revision)
    return _done(run, Ok(result))


def _checkpoint(w: _Working, rid: int, run: Run) -> object:
    # [CHECKPOINT] a host loop saves after its prompt and after each message (armed, newer);
    # a failure is logged, never raised; an interrupt or archive cancels it (nothing written)
    if _wrong_fault(run, "store.save"):
        return _DEAD
    if _cancelled(w, run):
        return _DEAD if run.fault is not None else _stop_turn(w, run)
    assert run.sid is not None
    if w.persistent:
        outcome = w.gated_write(rid, run, w.tasks[run.sid].session, checkpoint=True)
        if outcome is None or outcome is _DEAD:
            return outcome
    return replace(run, pc="take", value=None, fault=None)


def _take(w: _Working, rid: int, run: Run) -> Run | None:
    # [HOST-MESSAGE] the loop takes the next queued message when it starts to serve it
    if _cancelled(w, run):
        return _stop_turn(w, run)
    assert run.sid is not None
    task = w.tasks[run.sid]
    if not task.inbox:
        return None  # serving, idle: waits for a message
    w.tasks[run.sid] = replace(task, inbox=task.inbox[1:])
    return replace(run, pc="serve", value=task.inbox[0])


def _serve(w: _Working, rid: int, run: Run) -> Run:
    # [HOST-MESSAGE] a message is an exchange, [COMPACT] "/compact" one rewrite (one tick);
    # a message taken and then stopped is dropped, never served again
    if _cancelled(w, run):
        return _stop_turn(w, run)
    assert run.sid is not None
    if run.value == COMPACT:
        w.change(run.sid, updated_at=w.tick(),
                 revision=w.tasks[run.sid].session.revision + 1)
        return replace(run, pc="checkpoint")
    return _push_user(w, run)


# -- calls that answer at once ---------------------------------------------------------------


def _inject(w: _Working, rid: int, run: Run) -> Run:
    # [HOST-MESSAGE] queued, answered at once; not live: there is no injector
    op = run.op
    assert isinstance(op, HostMessage)
    task = w.live(sid(op.id))
    if task is None:
        return _done(run, Err(NOT_FOUND))
    w.tasks[sid(op.id)] = replace(task, inbox=(*task.inbox, op.text))
    return _done(run, Ok(None))


def _interrupt(w: _Working, rid: int, run: Run) -> Run:
    # [INTERRUPT] cancels the running turn and returns at once; [INTERRUPT-RUNNING]
    op = run.op
    assert isinstance(op, Interrupt)
    task = w.live(sid(op.id))
    if task is None:
        return _done(run, Err(NOT_FOUND))
    if task.turn is None:
        return _done(run, Err(NOT_RUNNING))
    w.tasks[sid(op.id)] = replace(task, cancel=True)
    return _done(run, Ok(None))


def _read(w: _Working, rid: int, run: Run) -> Run:
    # [READ] the live session (active while a turn runs), else [READ-FALLBACK] the store
    op = run.op
    assert isinstance(op, Read)
    id = sid(op.id)
    task = w.live(id)
    if task is not None:
        return _done(run, Ok(_view(id, task.session, task.turn is not None)))
    if not w.persistent:
        return _done(run, Err(NOT_FOUND))
    return replace(run, pc="load", sid=id)


def _load(w: _Working, rid: int, run: Run) -> object:
    if _wrong_fault(run, "store.load"):
        return _DEAD
    if _failed(run, "store.load"):
        return _done(run, Err(STORE_ERROR))
    assert run.sid is not None
    row = w.store.get(run.sid)
    return _done(run, Err(NOT_FOUND) if row is None else Ok(_view(run.sid, row, False)))


def _list(w: _Working, rid: int, run: Run) -> Run:
    # [LIST] the live half: one snapshot of every registered session
    live = tuple(_summary(i, t.session, t.turn is not None)
                 for i, t in sorted(w.tasks.items()) if t.registered)
    if not w.persistent:
        return _done(run, Ok(_page(list(live), run.op)))
    return replace(run, pc="list-store", value=live)


def _list_store(w: _Working, rid: int, run: Run) -> object:
    # [LIST][LIST-PAGE] then the store: rows not live, merged in one order, then paged
    if _wrong_fault(run, "store.list"):
        return _DEAD
    if _failed(run, "store.list"):
        return _done(run, Err(STORE_ERROR))  # [STORE-FAILURE]
    assert isinstance(run.value, tuple)
    shown = {r.session_id for r in run.value}
    rows = list(run.value) + [_summary(i, s, False) for i, s in w.store.items()
                              if i not in shown]
    return _done(run, Ok(_page(rows, run.op)))


def _page(rows: list[object], op: Op) -> tuple[object, ...]:
    assert isinstance(op, List)
    rows.sort(key=lambda r: (-r.updated_at, r.session_id))  # type: ignore[attr-defined]
    start = op.offset or 0  # [LIST-ORDER][LIST-PAGE]
    return tuple(rows[start:None if op.limit is None else start + op.limit])


def _load_row(w: _Working, rid: int, run: Run) -> object:
    # [LOAD-PERSISTED] the stored session or None
    op = run.op
    assert isinstance(op, LoadPersisted)
    if not w.persistent:
        return _done(run, Err(PERSISTENCE_DISABLED))
    if _wrong_fault(run, "store.load"):
        return _DEAD
    if _failed(run, "store.load"):
        return _done(run, Err(STORE_ERROR))
    return _done(run, Ok(w.store.get(sid(op.id))))


# -- archive ---------------------------------------------------------------------------------


def _find(w: _Working, rid: int, run: Run) -> Run:
    # [ARCHIVE] step 1: the gate in the map; none: ask the store first
    op = run.op
    assert isinstance(op, Archive)
    id = sid(op.id)
    if not w.persistent:  # ephemeral: the live session only
        task = w.live(id)
        if task is None:
            return _done(run, Err(NOT_FOUND))
        w.tasks[id] = replace(task, registered=False)
        w.archived.add(id)
        return replace(run, pc="stop", sid=id, value=_Archiving())
    gate = w.gates.get(id)
    if gate is not None and gate.in_map:
        return _wait_on(w, replace(run, sid=id), gate)
    return replace(run, pc="exists0", sid=id)


def _wait_on(w: _Working, run: Run, gate: Gate) -> Run:
    """The archive found ``gate`` in the map: it waits for its lock, one more of its users."""
    assert run.sid is not None
    w.gates[run.sid] = replace(gate, users=gate.users + 1)
    return replace(run, pc="lock", value=_Archiving(gen=gate.gen))


def _exists0(w: _Working, rid: int, run: Run) -> object:
    # [ARCHIVE] then the map again (a create may have registered it meanwhile); still no
    # gate: not stored is NOT_FOUND with nothing left behind, stored gets a tombstone
    if _wrong_fault(run, "store.exists"):
        return _DEAD
    if _failed(run, "store.exists"):
        return _done(run, Err(STORE_ERROR))
    assert run.sid is not None
    gate = w.gates.get(run.sid)
    if gate is not None and gate.in_map:
        return _wait_on(w, run, gate)
    if run.sid not in w.store:
        return _done(run, Err(NOT_FOUND))
    gen = 0
    if gate is not None:  # dropped from the map; if archives still use it, it stays theirs
        gen = gate.gen + 1
        if gate.users:
            w.gates[_retired(run.sid, gate.gen)] = gate
    w.gates[run.sid] = Gate(gen=gen, users=1)
    return replace(run, pc="lock", value=_Archiving(tombstone=True, gen=gen))


def _retired(id: str, gen: int) -> str:
    """Where a session's dropped gate ``gen`` is kept while archives still use it."""
    return f"{id}~{gen}"


def _gate_key(w: _Working, run: Run) -> str:
    """The key of the gate an archive holds or waits on: the session's, or a retired one."""
    assert run.sid is not None and isinstance(run.value, _Archiving)
    gate = w.gates.get(run.sid)
    if gate is None or gate.gen == run.value.gen:
        return run.sid
    return _retired(run.sid, run.value.gen)


def _let_go(w: _Working, key: str, gate: Gate, **changes: object) -> None:
    """An archive is done with its gate (``changes`` made, one user fewer); a retired gate
    its last archive let go is gone."""
    gate = replace(gate, users=max(0, gate.users - 1), **changes)  # type: ignore[arg-type]
    if "~" in key and not gate.users and gate.holder is None:
        del w.gates[key]
    else:
        w.gates[key] = gate


def _lock(w: _Working, rid: int, run: Run) -> Run | None:
    # [ARCHIVE] step 2: the gate's lock, held to the end; marked archived
    assert run.sid is not None and isinstance(run.value, _Archiving)
    key = _gate_key(w, run)
    gate = w.gates[key]
    if gate.holder is not None:
        return None
    w.gates[key] = replace(gate, holder=rid, archived=True)
    return replace(run, pc="exists", value=replace(run.value, was_archived=gate.archived))


def _abort(w: _Working, run: Run) -> Run:
    # [ARCHIVE-ATOMIC] before the commit point a failure changes nothing: the mark as it was
    assert run.sid is not None and isinstance(run.value, _Archiving)
    key = _gate_key(w, run)
    gate = w.gates[key]
    _let_go(w, key, gate, archived=run.value.was_archived, holder=None,
            in_map=gate.in_map and not run.value.tombstone)
    return _done(run, Err(STORE_ERROR))


def _exists(w: _Working, rid: int, run: Run) -> object:
    if _wrong_fault(run, "store.exists"):
        return _DEAD
    if _failed(run, "store.exists"):
        return _abort(w, run)
    assert run.sid is not None and isinstance(run.value, _Archiving)
    if run.sid in w.store:
        return replace(run, pc="delete", value=replace(run.value, in_store=True))
    return _commit(w, rid, run)


def _delete(w: _Working, rid: int, run: Run) -> object:
    # [ARCHIVE] step 3: the row deleted, the commit point (an archive on another of the
    # session's gates may have deleted it first: a delete of no row deletes nothing)
    if _wrong_fault(run, "store.delete"):
        return _DEAD
    if _failed(run, "store.delete"):
        return _abort(w, run)
    assert run.sid is not None
    w.store.pop(run.sid, None)
    return _commit(w, rid, run)


def _commit(w: _Working, rid: int, run: Run) -> Run:
    # [ARCHIVE-FINAL] from here on the session is gone for every call; the live side leaves
    # the map in the same step, its task is stopped next
    assert run.sid is not None and isinstance(run.value, _Archiving)
    task = w.live(run.sid)
    if task is not None or run.value.in_store:
        w.archived.add(run.sid)
    w.acked.pop(run.sid, None)
    if task is None:
        return _release(w, run, Ok(None) if run.value.in_store else Err(NOT_FOUND))
    w.tasks[run.sid] = replace(task, registered=False)
    return replace(run, pc="stop")


def _stop(w: _Working, rid: int, run: Run) -> Run:
    # [ARCHIVE-STOP] step 4: the task is cancelled, a running turn or loop with it
    assert run.sid is not None
    task = w.tasks.get(run.sid)
    if task is not None:
        w.tasks[run.sid] = replace(task, stopped=True, cancel=True)
    return replace(run, pc="wait")


def _wait(w: _Working, rid: int, run: Run) -> Run | None:
    # [ARCHIVE-STOP] archive returns once the task has ended; [CAPACITY] its place is back
    assert run.sid is not None
    task = w.tasks.get(run.sid)
    if task is not None:
        if task.inside is not None:
            return None  # its turn has yet to end
        del w.tasks[run.sid]
        w.reserved -= 1
    if run.detached:  # its cancelled caller let the gate go already
        return _done(run, Crashed())
    return _release(w, run, Ok(None))


def _release(w: _Working, run: Run, result: Result) -> Run:
    # [ARCHIVE] step 5: the gate leaves the map (still archived), the lock is released
    assert run.sid is not None
    key = _gate_key(w, run)
    gate = w.gates.get(key)
    if gate is not None:
        _let_go(w, key, gate, holder=None, in_map=False)
    return _done(run, result)


# -- the checkpointer sweeps ---------------------------------------------------------------------


def _sweep_start(w: _Working, rid: int, run: Run) -> Run:
    # [STOP-RESUME] the gates there are when it begins; sessions registered later start armed
    if not w.persistent:
        return _done(run, Err(PERSISTENCE_DISABLED))
    gates = tuple(i for i, g in sorted(w.gates.items()) if g.in_map)
    return replace(run, pc="sweep", value=gates) if gates else _done(run, Ok(None))


def _sweep(w: _Working, rid: int, run: Run) -> list[tuple[_Working, Run]] | None:
    # [STOP-RESUME] one gate at a time, each under its lock, in no promised order
    assert isinstance(run.value, tuple)
    armed = isinstance(run.op, RearmAllCheckpointers)
    out = []
    for id in run.value:
        gate = w.gates[id]
        if gate.holder is not None:
            continue
        w2 = w.copy()
        w2.gates[id] = replace(gate, armed=armed)
        rest = tuple(i for i in run.value if i != id)
        out.append((w2, replace(run, value=rest) if rest else _done(run, Ok(None))))
    return out or None


_FIRST: dict[type, str] = {
    Create: "reserve", StartTurn: "admit", HostMessage: "inject", Interrupt: "interrupt",
    Read: "read", List: "list", Archive: "find", LoadPersisted: "load-row",
    CancelAllCheckpointers: "sweep-start", RearmAllCheckpointers: "sweep-start",
}

_ACTIONS = {
    "reserve": _reserve, "build": _build, "admit": _admit, "send": _send, "user": _user,
    "reply": _reply, "end": _end, "save": _save, "checkpoint": _checkpoint, "take": _take,
    "serve": _serve, "inject": _inject, "interrupt": _interrupt, "read": _read,
    "load": _load, "list": _list, "list-store": _list_store, "load-row": _load_row,
    "find": _find, "exists0": _exists0, "lock": _lock, "exists": _exists,
    "delete": _delete, "stop": _stop, "wait": _wait, "sweep-start": _sweep_start,
    "sweep": _sweep,
}
