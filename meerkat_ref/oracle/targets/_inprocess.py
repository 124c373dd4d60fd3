"""The reference (or any Python service) as a target, in this process.

``InProcessTarget`` runs a service built by a ``ServiceFactory`` under
``ControlledPoints``, inside the caller's ``trio.run``: the engine and the
service share one event loop, so ``settle`` is exactly Trio's "every other
task is blocked" (plus: no store call is still in a worker thread).  It is
also what ``python -m meerkat_ref.adapter`` serves over JSON lines, so the
reference a port is compared with and the reference ``check`` explores are
one object.

Determinism, as ``spec/ADAPTER.md`` section 2 asks of every adapter: ``open``
starts a fresh store, a ``LogicalClock`` whose first tick is 1 and ids
``sid(1)``, ``sid(2)``, ...; ``restart`` keeps store, clock and id counter.

Beyond the protocol it can show what a port cannot (``introspect``): which
session tasks are still running, turns running and admitted per session,
every gate, the store writes that landed (and whether a session's own task
made them), and each checkpoint that returned.  The monitor uses them as
white-box evidence on top of the rules it checks from the wire.  All of it
comes from the service's public ``statistics()`` and from the seams the
target owns (the store, the clock, the agent builder, the checkpointer it
wraps), never from the service's private names; so does each step's
footprint (``_footprints``: declared by the service, checked at the seams).

Capability ``events`` [EVENTS]: a subscriber task subscribes to every
session as it registers and reads each stream at every settle
(``_streams``); ``settle`` reports what it read since the last settle, and
``introspect`` each session's whole stream so far.

Every call it starts runs in its own task named by the call's ``task``
label.  Nothing here schedules anything itself: tasks run only between
``settle`` calls, when ``release`` (or control off) lets them.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import tempfile
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import trio
import trio.testing

from ..._errors import SessionError, SessionStoreError
from ..._model import model
from ..._seams import Footprints, LogicalClock, SchedulingPoints
from ..._types import (
    CreateSessionRequest,
    InvalidArgument,
    RunResult,
    Session,
    SessionFilter,
    SessionId,
    SessionMeta,
)
from ...agent._protocol import EventInjector, EventSink, SessionAgent, SessionAgentBuilder
from ...agent._scripted import ScriptedAgentBuilder, counter_ids
from ...registry import WireError, from_wire, operation, to_wire
from ...registry import _values as values
from ...registry._values import Json
from ...service._statistics import ServiceStatistics
from ...store._base import SessionStore
from ...store._kinds import StoreKind, store_kind
from ._footprints import Recorder, TaskInstrument
from ._points import FAULT_KINDS, ControlledPoints, NotParked
from ._protocol import Answer, GateState, Introspection, OpenRefused, Point, Settled
from ._streams import Subscriptions
from ._wire import ProtocolError, dumps


class Service(Protocol):
    """What the target needs of a service: the registry's calls, a lifetime, statistics."""

    async def __aenter__(self) -> Any: ...

    async def __aexit__(self, *exc: object) -> bool | None: ...

    def statistics(self) -> ServiceStatistics: ...


ServiceFactory = Callable[[SessionAgentBuilder, int, SessionStore | None, SchedulingPoints], Any]
"""Builds a service: (agent builder, capacity, store or ``None`` for ephemeral, points)."""


# -- white-box watching ---------------------------------------------------------------------


@dataclass
class _Watch:
    """Facts gathered between two settles (and counters that span them)."""

    running_turns: dict[str, int] = field(default_factory=dict)
    turn_revision: dict[int, int] = field(default_factory=dict)  # id(RunResult) -> revision
    writes: list[tuple[str, int, bool]] = field(default_factory=list)
    checkpoints: list[tuple[str, int, int]] = field(default_factory=list)
    in_flight: int = 0
    idle: trio.Event = field(default_factory=trio.Event)
    settles: int = 0  # how many settles so far: a checkpoint remembers when it started
    recorder: Recorder = field(default_factory=Recorder)  # what each step touched


class _RecordingStore:
    """Between the service and the real store: sees every write that lands.

    Keeps the shadow ``observe_store`` answers with, counts calls in flight
    (a threaded store's call looks blocked to Trio, so quiescence waits for
    them), refuses the saves ``fail_next_save`` asked it to [SAVE-FAILED],
    and after a crash refuses every call of the dead process.
    """

    def __init__(self, inner: SessionStore, world: _World, watch: _Watch):
        self.inner = inner
        self.world = world
        self.shadow = world.shadow
        self.watch = watch
        self.dead = False

    @contextlib.asynccontextmanager
    async def _call(self, session_id: SessionId | None) -> Any:
        if self.dead:
            raise SessionStoreError("process crashed", session_id=session_id)
        self.watch.in_flight += 1
        try:
            yield
        finally:
            self.watch.in_flight -= 1
            if self.watch.in_flight == 0:
                self.watch.idle.set()

    async def save(self, session: Session) -> None:
        self.watch.recorder.write("row", str(session.id))
        async with self._call(session.id):
            if self.world.refusals:
                self.world.refusals -= 1
                raise OSError("the store refused this save (fail_next_save)")
            await self.inner.save(session)
        if self.dead:
            return  # landed in a dead process's last moment: the shadow follows the file
        self.shadow[str(session.id)] = values.model_session(session)
        by_task = trio.lowlevel.current_task().name.startswith("session ")
        self.watch.writes.append((str(session.id), session.revision, by_task))

    async def load(self, session_id: SessionId) -> Session | None:
        self.watch.recorder.read("row", str(session_id))
        async with self._call(session_id):
            return await self.inner.load(session_id)

    async def list(self, filter: SessionFilter = SessionFilter()) -> list[SessionMeta]:
        self.watch.recorder.read("row", "*")
        async with self._call(None):
            return await self.inner.list(filter)

    async def delete(self, session_id: SessionId) -> None:
        self.watch.recorder.write("row", str(session_id))
        async with self._call(session_id):
            await self.inner.delete(session_id)
        self.shadow.pop(str(session_id), None)

    async def exists(self, session_id: SessionId) -> bool:
        self.watch.recorder.read("row", str(session_id))
        async with self._call(session_id):
            return await self.inner.exists(session_id)


class _WatchedCheckpointer:
    def __init__(self, inner: Any, watch: _Watch) -> None:
        self.inner = inner
        self.watch = watch

    async def checkpoint(self, session: Session) -> None:
        started = self.watch.settles
        await self.inner.checkpoint(session)
        self.watch.checkpoints.append((str(session.id), session.revision, started))


class _WatchedAgent:
    """Counts running turns and remembers each plain turn's final revision."""

    def __init__(self, inner: SessionAgent, watch: _Watch) -> None:
        self.inner = inner
        self.watch = watch

    @property
    def session_id(self) -> SessionId:
        return self.inner.session_id

    def session(self) -> Session:
        return self.inner.session()

    def event_injector(self) -> EventInjector | None:
        return self.inner.event_injector()

    async def _counted(
        self, run: Callable[[str, EventSink], Awaitable[RunResult]], prompt: str, emit: EventSink
    ) -> RunResult:
        sid = str(self.inner.session_id)
        turns = self.watch.running_turns
        turns[sid] = turns.get(sid, 0) + 1
        try:
            result = await run(prompt, emit)
        finally:
            turns[sid] -= 1
        self.watch.turn_revision[id(result)] = self.inner.session().revision
        return result

    async def run_turn(self, prompt: str, emit: EventSink) -> RunResult:
        return await self._counted(self.inner.run_turn, prompt, emit)

    async def run_host_mode(self, prompt: str, emit: EventSink) -> RunResult:
        return await self._counted(self.inner.run_host_mode, prompt, emit)


class _RecordingClock:
    """The logical clock, each tick recorded: timestamps are part of the end state."""

    def __init__(self, watch: _Watch) -> None:
        self.inner = LogicalClock()
        self.watch = watch

    def now(self) -> int:
        self.watch.recorder.write("clock", "")
        return self.inner.now()

    def peek(self) -> int:
        self.watch.recorder.read("clock", "")
        return self.inner.peek()


class _PointsProxy:
    """The builder's points, so a restart's fresh ``ControlledPoints`` is always the one used."""

    def __init__(self, builder: _Builder) -> None:
        self.builder = builder

    async def point(self, kind: str, session_id: SessionId | None = None) -> None:
        await self.builder.points.point(kind, session_id)


class _Builder:
    """The scripted builder on the target's clock and ids, watched.

    With control off it switches before taking an id and skips the point
    between id and tick (``ControlledPoints.pair_ids``), so ids and creation
    ticks pair up as in the model.  Shared across restarts.
    """

    def __init__(self, watch: _Watch, on_point: Callable[[Point], None] | None) -> None:
        self.points = ControlledPoints(on_point)
        self.watch = watch
        self.agents: dict[str, SessionAgent] = {}  # built in the current process, by id
        self.ids_taken = 0
        self._ids = counter_ids()
        self.clock = _RecordingClock(watch)
        self.inner = ScriptedAgentBuilder(
            clock=self.clock, points=_PointsProxy(self), id_factory=self._next_id
        )

    def _next_id(self) -> SessionId:
        self.watch.recorder.write("ids", "")
        self.points.pair_ids()
        self.ids_taken += 1
        return self._ids()

    async def build_agent(self, req: CreateSessionRequest) -> SessionAgent:
        if not self.points.enabled:
            await trio.lowlevel.checkpoint()  # the switch, moved before id and tick
        if req.build is not None and req.build.checkpointer is not None:
            watched = _WatchedCheckpointer(req.build.checkpointer, self.watch)
            req = replace(req, build=replace(req.build, checkpointer=watched))
        agent = await self.inner.build_agent(req)
        self.agents[str(agent.session_id)] = agent
        return _WatchedAgent(agent, self.watch)


_SCRATCH = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
"""Where a run's SQLite file goes by default: memory-backed if the system has it.

Each schedule opens a fresh file; on a disk, its syncs dominate the run.
The crash the explorer injects is the process's, not the machine's (the
file is reopened, never lost), so a memory-backed file tests the same thing.
"""


# -- the target ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _text(session_id: SessionId) -> str:
    """A session id's canonical text, cached (the target reports the same few ids every step)."""
    return str(session_id)


def _late_inject(injector: EventInjector) -> str | None:
    """``None`` if ``inject`` refuses as [HOST-MESSAGE] says; else what it did instead."""
    try:
        injector.inject("a message after the end")
    except SessionError as exc:
        if exc.code == "SESSION_NOT_FOUND":
            return None
        return f"raised {exc.code} ({exc})"
    except Exception as exc:  # any other error is not the refusal the clause names
        return f"raised {type(exc).__name__} ({exc})"
    return "accepted a message"


def _answer_of(exc: BaseException) -> Answer | None:
    if isinstance(exc, SessionError):
        return Answer(model.Err(exc.code), exc.message)
    if isinstance(exc, InvalidArgument):
        return Answer(model.Err(InvalidArgument.code), str(exc))
    if isinstance(exc, WireError):
        return Answer(model.Err(exc.code), exc.message)
    return None


@dataclass
class _World:
    """What survives a restart: capacity, kind, store, clock and ids, the store's refusals."""

    capacity: Json
    persistent: bool
    raw: SessionStore | None
    shadow: dict[str, model.Session]
    builder: _Builder
    directory: tempfile.TemporaryDirectory[str] | None = None
    refusals: int = 0  # saves the store refuses next (``fail_next_save``)
    opened: contextlib.AbstractAsyncContextManager[SessionStore] | None = None  # ``raw``'s


class InProcessTarget:
    """A service in this process, as a ``Target``; see the module docstring."""

    def __init__(
        self,
        make_service: ServiceFactory,
        *,
        description: str = "reference (in process)",
        store: str | StoreKind = "memory",
        store_dir: str | None = None,
        threaded_store: bool = False,
        on_point: Callable[[Point], None] | None = None,
        on_answer: Callable[[str, Answer], None] | None = None,
        placement: bool = True,
        events: bool = True,
    ) -> None:
        self._kind = store_kind(store)  # InvalidArgument (a ValueError) for an unknown kind
        self._make = make_service
        self._description = description
        self._placement = placement  # parks as service/_placement.py says ([WIRE-PLACEMENT])
        self._events = events  # subscribes to every session and reports its events [EVENTS]
        self._subs = Subscriptions()
        self.store_kind = self._kind.name
        self._store_dir = store_dir
        self._threaded = threaded_store
        self.on_point = on_point  # called as a task parks (the adapter server announces it)
        self.on_answer = on_answer  # called as a call is answered
        self._world: _World | None = None
        self._watch = _Watch()
        self._svc: Any = None
        self._store: _RecordingStore | None = None
        self._calls: trio.Nursery | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._host: trio.Nursery | None = None
        self._process_scope: trio.CancelScope | None = None
        self._process_done = trio.Event()
        self._leave = trio.Event()  # set by ``exit``: the process leaves the service
        self._left = trio.Event()  # the service's ``async with`` has returned
        self._in_flight: dict[str, str] = {}  # call id -> its task label
        self._callers: dict[str, trio.CancelScope] = {}  # a call's task label -> its scope
        self._answers: list[tuple[str, Answer]] = []
        self._answered = trio.Event()
        self._ids = itertools.count(1)
        self._lines: list[tuple[str, Mapping[str, Json]]] = []
        self._sent = 0

    # -- facts about the target --------------------------------------------------------

    @property
    def description(self) -> str:
        return self._description

    @property
    def capabilities(self) -> frozenset[str]:
        caps = {"points", "faults", "introspection", "cancel", "exit"}
        if self._events:
            caps.add("events")
        return frozenset(caps | {"placement"} if self._placement else caps)

    @property
    def points(self) -> ControlledPoints:
        assert self._world is not None, "open the target first"
        return self._world.builder.points

    def transcript(self) -> list[str]:
        """The lines an adapter client would have sent for this run (rendered on demand)."""
        return [dumps({"id": rid, **cmd}) for rid, cmd in self._lines]

    def _log(self, cmd: Mapping[str, Json]) -> str:
        rid = str(next(self._ids))
        self._lines.append((rid, cmd))
        self._sent += 1
        return rid

    @property
    def requests(self) -> int:
        return self._sent

    # -- lifetime ------------------------------------------------------------------------

    async def _open_store(self, world: _World) -> SessionStore | None:
        """The store of this incarnation, made by its kind ([RESTART]: the same data).

        A kind that reopens (SQLite) is opened again over the world's
        directory at each start; one that does not (memory) keeps its one
        store open across restarts, as a database server outlives the
        service's process.
        """
        if not world.persistent:
            return None
        if world.raw is not None and not self._kind.reopens:
            return world.raw
        if world.directory is None:
            world.directory = tempfile.TemporaryDirectory(dir=self._store_dir or _SCRATCH)
        place = Path(world.directory.name)
        world.opened = self._kind.open(place) if self._threaded else self._kind.explorer_open(place)
        world.raw = await world.opened.__aenter__()
        return world.raw

    @staticmethod
    async def _close_store(world: _World) -> None:
        opened, world.opened = world.opened, None
        if opened is not None:
            with trio.CancelScope(shield=True):
                await opened.__aexit__(None, None, None)

    async def _process(self, task_status: trio.TaskStatus[trio.CancelScope]) -> None:
        """One incarnation of the service: it lives until its scope is cancelled (a crash)."""
        world = self._world
        assert world is not None
        done = trio.Event()
        self._process_done = done
        try:
            raw = await self._open_store(world)
            self._store = None if raw is None else _RecordingStore(raw, world, self._watch)
            recorder = self._watch.recorder
            recorder.process = trio.lowlevel.current_task()
            world.builder.agents.clear()
            with trio.CancelScope() as scope:
                service = self._make(world.builder, world.capacity, self._store,
                                     world.builder.points)
                declared = getattr(service, "footprints", None)
                recorder.declaration = declared if isinstance(declared, Footprints) else None
                # The calls' nursery outside the service's: a program may leave the
                # service while calls are still in flight ([SHUTDOWN], ``exit``).
                leave = self._leave = trio.Event()
                self._left = trio.Event()
                async with trio.open_nursery() as calls:
                    with trio.CancelScope() as leaving:
                        async with service as svc:
                            self._svc, self._calls = svc, calls
                            if self._events and self._host is not None:
                                # Beside the service, not in its task tree: see ``_streams``.
                                await self._subs.start(self._host, svc)
                            task_status.started(scope)
                            await leave.wait()
                            # The block is left by a cancelled caller, as Ctrl-C leaves it:
                            # the harder of the two ways out, which [SHUTDOWN] treats alike.
                            leaving.cancel()
                    self._left.set()
                    await trio.sleep_forever()  # calls in flight go on until a crash
        finally:
            self._svc = self._calls = None
            if self._kind.reopens:
                await self._close_store(world)
            done.set()

    async def exit(self) -> None:
        """Leave the service as a program leaves its ``async with`` ([SHUTDOWN]).

        Its session tasks are stopped (their calls answered ``AGENT_ERROR``), the
        rows stay; calls still in flight go on (a create that was building is
        refused), and a new call is answered ``NOT_OPEN``.  If everything comes
        to rest while the exit has not returned, it never will: a protocol error.
        The block is left with its caller cancelled (a program stopped by
        Ctrl-C), which the contract treats as a plain exit: a service that does
        not shield its shutdown from that cancellation leaves its tasks running.
        """
        if self._svc is None or self._leave.is_set():
            raise ProtocolError("exit: no service is open")
        self._leave.set()
        await self._quiesce()
        if not self._left.is_set():
            raise ProtocolError("exit: the service's exit does not return: everything is at "
                                "rest and it still waits")

    async def _start(self) -> None:
        if self._host is None:
            raise RuntimeError("use the target as `async with target:` before opening it")
        self._process_scope = await self._host.start(self._process)

    async def _stop(self) -> None:
        """The process dies: calls in flight are answered ``Crashed``; the store stays.

        The dead process's store handle refuses every call from the moment
        of the crash, so nothing its cancelled tasks do can reach the store.
        """
        world = self._world
        if self._store is not None:
            self._store.dead = True
        self._subs.crash()
        if self._process_scope is not None:
            # Cancel before anything is released: a parked task is then woken
            # by the cancellation itself and runs no further step of its own
            # (released first, it would run on to its next checkpoint -- a
            # message pushed, a clock tick -- in a process that is dead).
            self._process_scope.cancel()
            self._process_scope = None
            with trio.CancelScope(shield=True):
                await self._process_done.wait()
        if world is not None:
            world.builder.points.enabled = False
            world.builder.points.release_all()
        for cid in list(self._in_flight):
            self._arrive(cid, Answer(model.Crashed()))
        self._in_flight.clear()

    async def __aenter__(self) -> InProcessTarget:
        self._stack = contextlib.AsyncExitStack()
        self._instrument = TaskInstrument(self._watch.recorder)
        trio.lowlevel.add_instrument(self._instrument)
        self._stack.callback(trio.lowlevel.remove_instrument, self._instrument)
        self._host = await self._stack.enter_async_context(trio.open_nursery())
        return self

    async def __aexit__(self, *exc: object) -> None:
        with trio.CancelScope(shield=True):
            await self.close()
        assert self._stack is not None
        self._host = None
        await self._stack.aclose()

    async def open(self, capacity: Json, persistent: bool) -> None:
        await self.close()
        self._lines = []
        self._ids = itertools.count(1)
        self._log({"cmd": "open", "capacity": capacity, "persistent": persistent})
        recorder = self._watch.recorder
        self._watch = _Watch(recorder=recorder)
        recorder.take()
        self._answers = []
        self._subs = Subscriptions()
        self._world = _World(
            capacity, persistent, None, {}, _Builder(self._watch, self._point)
        )
        try:
            await self._start()
        except InvalidArgument as exc:  # the service's own check of its capacity [INPUT]
            await self.close()
            raise OpenRefused(exc.code, str(exc)) from None

    async def restart(self) -> None:
        self._log({"cmd": "restart"})
        await self._stop()
        await self._start()

    async def close(self) -> None:
        """End the current service (if any) and forget its store."""
        await self._stop()
        if self._world is not None:
            await self._close_store(self._world)
            if self._world.directory is not None:
                self._world.directory.cleanup()
        self._world = None

    # -- calls ----------------------------------------------------------------------------

    def _point(self, point: Point) -> None:
        if self.on_point is not None:
            self.on_point(point)

    def _arrive(self, cid: str, answer: Answer) -> None:
        label = self._in_flight.pop(cid, None)
        if label is not None:
            self._watch.recorder.writes.add(("resp", label))
        self._answers.append((cid, answer))
        self._answered.set()
        if self.on_answer is not None:
            self.on_answer(cid, answer)

    def _decode(self, op: object) -> object:
        if isinstance(op, dict):
            decoded = from_wire(op)
            if operation(decoded).call is None:
                raise WireError("BAD_REQUEST", f"{op.get('cmd')!r} is not a service call")
            return decoded
        return op

    async def _run(self, cid: str, op: object, task: str) -> None:
        entry = operation(op)
        answer = Answer(model.Crashed())  # cancelled where it waited: no answer [CALLER-CANCEL]
        with trio.CancelScope() as scope:
            self._callers[task] = scope
            try:
                raw, value = await entry.perform(self._svc, op)
            except Exception as exc:
                answer = _answer_of(exc) or Answer(
                    model.Err("INTERNAL"), f"{type(exc).__name__}: {exc}"
                )
            else:
                revision = self._watch.turn_revision.pop(id(raw), None)
                answer = Answer(model.Ok(value), revision=revision)
            finally:
                if self._callers.get(task) is scope:
                    del self._callers[task]
        if cid in self._in_flight:
            self._arrive(cid, answer)

    def start(self, cid: str, op: object, task: str) -> None:
        """Check ``op`` and start it in a task labelled ``task`` (no switch here).

        A raw command with a bad field is answered at once and not started.
        """
        started = self._started(cid, op, task)
        if self._world is not None and self._world.builder.points.enabled:
            # A step: the call's declared start, or (answered by the target itself,
            # outside the service) declared nowhere, so it touches everything.
            entry = None if started is None else operation(started)
            n = None if entry is None else entry.session(started)
            self._watch.recorder.started(task, None if entry is None else entry.name,
                                         None if n is None else model.sid(n))

    def _started(self, cid: str, op: object, task: str) -> object | None:
        """Start ``op`` (its decoded form); ``None`` if it was answered at once instead."""
        if self._calls is None or self._leave.is_set():
            self._arrive(cid, Answer(model.Err("NOT_OPEN"), "a call before open or after exit"))
            return None
        if isinstance(op, model.ObserveStore) or (isinstance(op, dict)
                                                   and op.get("cmd") == "observe_store"):
            world = self._world
            store = {} if world is None or not world.persistent else dict(sorted(
                world.shadow.items()))
            self._arrive(cid, Answer(model.Ok(store)))
            return None
        if isinstance(op, model.FailNextSave) or (isinstance(op, dict)
                                                  and op.get("cmd") == "fail_next_save"):
            self.fail_next_save()
            self._arrive(cid, Answer(model.Ok(None)))
            return None
        try:
            decoded = self._decode(op)
        except Exception as exc:
            answer = _answer_of(exc)
            if answer is None:
                raise
            self._arrive(cid, answer)
            return None
        self._in_flight[cid] = task
        recorder = self._watch.recorder
        recorder.reads.add(("resp", "*"))  # real-time order: after every answer so far
        recorder.writes.add(("task", task))
        self._calls.start_soon(self._run, cid, decoded, task, name=task)
        return decoded

    async def call(self, op: object, task: str) -> str:
        cmd = op if isinstance(op, dict) else to_wire(op)
        cid = self._log({**cmd, "task": task})
        self.start(cid, op, task)
        return cid

    async def at_once(self, ops: Sequence[object], task: str | None = None) -> list[str]:
        subs, cids = [], []
        for op in ops:
            cid = str(next(self._ids))
            cmd = op if isinstance(op, dict) else to_wire(op)
            subs.append({"id": cid, **cmd, **({"task": task} if task else {})})
            cids.append(cid)
        self._log({"cmd": "at_once", "commands": subs})
        for cid, op in zip(cids, ops, strict=True):
            self.start(cid, op, task or f"req {cid}")
        return cids

    # -- scheduling -------------------------------------------------------------------------

    async def _quiesce(self) -> None:
        while True:
            await trio.testing.wait_all_tasks_blocked()
            if self._watch.in_flight == 0:
                return
            self._watch.idle = trio.Event()
            await self._watch.idle.wait()

    async def settle(self) -> Settled:
        recorder = self._watch.recorder
        with recorder.recording():
            await self._quiesce()
        footprint = recorder.take()
        self._watch.settles += 1
        answers, self._answers = tuple(self._answers), []
        points = self._world.builder.points if self._world is not None else None
        await self._subs.collect()  # at quiescence: nothing else runs meanwhile
        return Settled(
            parked=points.ready() if points is not None else (),
            answers=answers,
            points=points.drain() if points is not None else (),
            footprint=footprint,
            events=self._subs.take() if self._events else None,
        )

    async def wait_any(self, calls: Sequence[str]) -> None:
        """Return when one of ``calls`` has an answer waiting, or everything is blocked."""
        waiting = set(calls)
        if any(cid in waiting for cid, _ in self._answers):
            return
        async with trio.open_nursery() as nursery:

            async def answered() -> None:
                while not any(cid in waiting for cid, _ in self._answers):
                    self._answered = trio.Event()
                    await self._answered.wait()
                nursery.cancel_scope.cancel()

            async def blocked() -> None:
                await self._quiesce()
                nursery.cancel_scope.cancel()

            nursery.start_soon(answered)
            nursery.start_soon(blocked)

    async def control(self, on: bool) -> None:
        self._log({"cmd": "control", "points": on})
        points = self.points
        points.enabled = on
        if not on:
            points.release_all()
        self._watch.recorder.take()  # what ran before is no step of the schedule

    @property
    def fault_kinds(self) -> tuple[str, ...]:
        """``store-error`` beside the plain fault: ``_points.FAULT_KINDS``."""
        return tuple(FAULT_KINDS)

    async def release(self, task: str, fault: bool = False, kind: str = "") -> None:
        self._log({"cmd": "release", "task": task, **({"fault": True} if fault else {}),
                   **({"kind": kind} if fault and kind else {})})
        recorder = self._watch.recorder
        recorder.writes.add(("task", task.split("#")[0]))
        parked = self.points.parked.get(task)
        if parked is not None and self.points.enabled:
            recorder.released(task, parked.kind, parked.point.session)
        try:
            self.points.release(task, fault, kind)
        except NotParked as exc:
            raise LookupError(str(exc)) from None

    async def cancel(self, task: str) -> None:
        """Capability ``cancel``: the caller of a parked client task is cancelled where it waits.

        As a caller's timeout would [CALLER-CANCEL]: the call's task gets
        ``Cancelled`` at its point and unwinds; the call never answers.  What
        the unwinding touches no point declares, so the step touches everything.
        """
        self._log({"cmd": "cancel", "task": task})
        parked = self.points.parked.get(task)
        scope = self._callers.get(task.split("#")[0])
        if parked is None or scope is None:
            raise LookupError(f"no client task {task!r} is parked")
        recorder = self._watch.recorder
        recorder.writes.add(("task", task.split("#")[0]))
        if self.points.enabled:
            recorder.released(task, parked.kind, parked.point.session)
            recorder.unknown.append(f"{task} cancelled at {parked.kind}: its unwinding is "
                                    "declared nowhere")
        scope.cancel()

    def fail_next_save(self) -> None:
        """Capability ``faults``: the store refuses its next save [SAVE-FAILED].

        Refusals add up, are used in order by whatever saves next (a create's,
        a turn's, a checkpoint's save), outlive a restart (they are the
        store's) and are cleared by ``open``; an ephemeral service has no store.
        """
        world = self._world
        if world is not None and world.persistent:
            world.refusals += 1

    # -- looking ----------------------------------------------------------------------------

    async def observe_store(self) -> dict[str, model.Session]:
        self._log({"cmd": "observe_store"})
        world = self._world
        if world is None or not world.persistent:
            return {}
        return dict(sorted(world.shadow.items()))

    async def shutdown(self) -> list[tuple[str, str]] | None:
        """``shutdown()`` as a program calls it at the end ([SHUTDOWN]); see ``Target``.

        Run in a task of its own beside the calls still in flight (a host
        loop's turn, at a run's end), points off.  When it returns, before
        anything else runs, no session task may be left and no session live:
        it stops every one and waits for each to end.  If everything comes
        to rest while it has not returned, it waits for good.  Answers that
        arrive meanwhile are dropped: the engine stopped tracking its calls.

        Before it, the injector of every live session is taken, and after it
        each must refuse a message with ``SESSION_NOT_FOUND`` ([HOST-MESSAGE]:
        it raises once the session task has ended).  This is the one place a
        run holds an injector across its session's end, at no cost in
        schedules: the alphabet's ``inject`` takes and uses it in one step.
        """
        svc, calls, world = self._svc, self._calls, self._world
        if svc is None or calls is None or world is None or self._leave.is_set():
            return None
        if world.builder.points.ready():
            return None  # a task parked (a run cut at max_steps): it must not run on now
        world.builder.points.enabled = False
        seen: list[ServiceStatistics] = []
        held: list[tuple[SessionId, EventInjector]] = []
        raised: list[Exception] = []

        async def shut() -> None:
            try:
                for sid in sorted(svc.statistics().live, key=_text):
                    injector = await svc.event_injector(sid)
                    if injector is not None:
                        held.append((sid, injector))
                await svc.shutdown()
            except Exception as exc:  # the service's failure, reported: never the oracle's
                raised.append(exc)
                return
            seen.append(svc.statistics())  # at once: nothing else ran since it returned

        calls.start_soon(shut)
        await self._quiesce()
        self._answers = []
        if raised:
            exc = raised[0]
            return [("SHUTDOWN", f"shutdown() raised {type(exc).__name__}: {exc} (it must stop "
                                 "every session task and return)")]
        if not seen:
            left = sorted(map(_text, svc.statistics().running_tasks))
            return [("SHUTDOWN",
                     f"shutdown() never returns: everything is at rest and it still waits "
                     f"(session tasks not ended: {', '.join(left) or 'none'})")]
        stats = seen[0]
        broken: list[tuple[str, str]] = []
        if stats.running_tasks or stats.live:
            tasks = ", ".join(sorted(map(_text, stats.running_tasks))) or "none"
            live = ", ".join(sorted(map(_text, stats.live))) or "none"
            broken.append(("SHUTDOWN", f"shutdown() returned with session tasks still running "
                                       f"({tasks}) and sessions still live ({live})"))
        for sid, injector in held:
            answer = _late_inject(injector)
            if answer is not None:
                broken.append(("HOST-MESSAGE",
                               f"an injector of {_text(sid)} taken before shutdown() {answer} "
                               "after it returned; once the session task has ended, inject "
                               "must raise SESSION_NOT_FOUND"))
        return broken

    def introspect(self) -> Introspection | None:
        if self._svc is None:
            return None
        stats: ServiceStatistics = self._svc.statistics()
        watch = self._watch
        text = _text
        out = Introspection(
            running_tasks=frozenset(text(s) for s in stats.running_tasks),
            live=frozenset(text(s) for s in stats.live),
            running_turns={k: v for k, v in watch.running_turns.items() if v},
            gates={
                text(s): GateState(g.armed, g.archived, g.saved_revision)
                for s, g in stats.gates.items()
            },
            checkpoints=tuple(watch.checkpoints),
            writes=tuple(watch.writes),
            settles=watch.settles,
            admitted={text(s): n for s, n in stats.admitted.items()},
            events=dict(self._subs.whole),
        )
        watch.checkpoints.clear()
        watch.writes.clear()
        return out

    def footprint_problems(self) -> list[str]:
        """Steps whose declared footprint left out what the seams saw, since the last call.

        Each is an error of the service's declaration (its step was treated
        as touching everything, so the exploration stayed sound); the engine
        reports them as oracle errors.
        """
        recorder = self._watch.recorder
        out, recorder.problems = recorder.problems, []
        return out

    def state(self) -> dict[str, object]:
        """Everything the service and its seams hold right now, as plain data (for the audit).

        From the service's public ``statistics()`` (live sessions, running
        tasks, capacity held, gates with their locks, turns admitted), the
        agents the target built (each one's whole session), the turns
        running, the clock's next tick, the ids taken, the store's pending
        refusals and every session's event stream as read so far.  The store's
        rows and the answers are the engine's to add.
        """
        world = self._world
        if self._svc is None or world is None:
            return {}
        stats: ServiceStatistics = self._svc.statistics()
        builder = world.builder
        return {
            "live": sorted(map(str, stats.live)),
            "running_tasks": sorted(map(str, stats.running_tasks)),
            "reserved": stats.reserved,
            "gates": sorted((str(s), repr(g)) for s, g in stats.gates.items()),
            "admitted": sorted((str(s), n) for s, n in stats.admitted.items()),
            "running_turns": sorted((k, v) for k, v in self._watch.running_turns.items() if v),
            "agents": sorted((sid, repr(a.session())) for sid, a in builder.agents.items()),
            "clock": builder.clock.inner.peek(),
            "ids": builder.ids_taken,
            "refusals": world.refusals,
            "events": sorted((sid, repr(news)) for sid, news in self._subs.whole.items()),
        }

    @property
    def service(self) -> Any:
        """The running service (for tests that look inside)."""
        return self._svc


__all__ = ["InProcessTarget", "ServiceFactory"]
