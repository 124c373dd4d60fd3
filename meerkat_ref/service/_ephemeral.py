"""The ephemeral session service: live sessions only, nothing persisted.

One long-lived Trio task per session owns its agent; the service talks to it
by sending commands (clause LIVE-TASK).  Everything the service keeps is in
``self._sessions`` and mutated only between awaits, so Trio's single thread
makes each check-and-set below atomic without a lock; every ``await`` is
listed where it can switch tasks.

Differences from the Rust 0.4.0 crate, all deliberate:

- ``read``/``list``/``export_session`` take the agent's current (immutable)
  session directly instead of queueing behind a running turn, so a read of a
  host-mode session answers at once and list counts are never stale.
- ``archive`` cancels the session task (a running turn, host loop included)
  and waits for it to end (clause ARCHIVE-STOP; window 3 of the seed, which
  ``meerkat_ref.testing`` reopens by overriding ``_stop_task``).
- An interrupt that arrives after a turn is admitted but before it starts is
  not lost: the turn starts cancelled (clause INTERRUPT-RUNNING).
- Capacity is released when the session task has ended, not when the handle
  leaves the map, so live agents never exceed ``max_sessions``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import ClassVar, Self

import trio

from .._errors import (
    CANCELLED_TEXT,
    AgentError,
    SessionBusy,
    SessionError,
    SessionNotFound,
    SessionNotRunning,
    SessionPersistenceDisabled,
    capacity_error,
)
from .._groups import unwrap_single
from .._seams import DEFAULT_POINTS, Footprints, SchedulingPoints
from .._types import (
    CreateSessionRequest,
    InitialTurnPolicy,
    InvalidArgument,
    RunResult,
    Session,
    SessionId,
    SessionInfo,
    SessionQuery,
    SessionSummary,
    SessionUsage,
    SessionView,
    StartTurnRequest,
    as_session_id,
    require,
    shown,
)
from ..agent._events import AgentEvent, EventBroadcast, EventKind, EventStream
from ..agent._protocol import EventInjector, SessionAgent, SessionAgentBuilder
from ._placement import EPHEMERAL_FOOTPRINTS
from ._statistics import ServiceStatistics

OnRegister = Callable[[SessionId], bool]
"""Called as a session registers; returning False refuses the registration."""


class _Reply:
    """A one-shot answer from the session task to the caller waiting for it."""

    def __init__(self) -> None:
        self._done = trio.Event()
        self._value: tuple[RunResult, Session] | None = None
        self._error: SessionError | None = None

    def set(self, value: tuple[RunResult, Session] | SessionError) -> None:
        if self._done.is_set():
            return
        if isinstance(value, SessionError):
            self._error = value
        else:
            self._value = value
        self._done.set()

    async def wait(self) -> tuple[RunResult, Session]:
        await self._done.wait()
        if self._error is not None:
            raise self._error
        assert self._value is not None
        return self._value


@dataclass
class _Turn:
    prompt: str
    host_mode: bool
    reply: _Reply


class _Shutdown:
    pass


class _Slot:
    """A place of capacity being held by a create (see ``_reservation``)."""

    kept = False

    def keep(self) -> None:
        self.kept = True


@dataclass(eq=False)
class _Handle:
    """What the service keeps per live session."""

    agent: SessionAgent
    commands: trio.MemorySendChannel[_Turn | _Shutdown]
    inbox: trio.MemoryReceiveChannel[_Turn | _Shutdown]
    events: EventBroadcast = field(default_factory=EventBroadcast)
    turn_running: bool = False  # the admission flag: set by start_turn, cleared by the task
    interrupt_requested: bool = False
    turn_scope: trio.CancelScope | None = None
    task_scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    done: trio.Event = field(default_factory=trio.Event)
    current: _Turn | None = None
    queued_turns: int = 0  # turns sent to the task and not yet taken up (for statistics)

    @property
    def session_id(self) -> SessionId:
        return self.agent.session_id

    def summary(self) -> SessionSummary:
        session = self.agent.session()
        return SessionSummary(
            session_id=session.id,
            created_at=session.created_at,
            updated_at=session.updated_at,
            message_count=session.message_count,
            total_tokens=session.total_tokens(),
            is_active=self.turn_running,
        )


def check_capacity(max_sessions: object) -> None:
    """A capacity is a positive ``int`` (not a ``bool``): ``InvalidArgument`` otherwise."""
    if isinstance(max_sessions, bool) or not isinstance(max_sessions, int) or max_sessions < 1:
        raise InvalidArgument(f"max_sessions must be a positive integer, got {shown(max_sessions)}")


def paginate(items: list[SessionSummary], query: SessionQuery) -> list[SessionSummary]:
    start = query.offset or 0
    stop = None if query.limit is None else start + query.limit
    return items[start:stop]


class EphemeralSessionService:
    """Live sessions in memory; see the module docstring for the contract."""

    footprints: ClassVar[Footprints] = EPHEMERAL_FOOTPRINTS
    """What each step may touch (``service/_placement.py``): the explorer's reduction reads it."""

    def __init__(
        self,
        builder: SessionAgentBuilder,
        max_sessions: int,
        *,
        points: SchedulingPoints = DEFAULT_POINTS,
    ) -> None:
        check_capacity(max_sessions)
        if not callable(getattr(builder, "build_agent", None)):
            raise InvalidArgument(
                f"builder must be a SessionAgentBuilder, got {type(builder).__name__}"
            )
        self._builder = builder
        self.max_sessions = max_sessions
        self._points = points
        self._sessions: dict[SessionId, _Handle] = {}
        self._tasks: dict[SessionId, _Handle] = {}  # session tasks not yet ended
        self._reserved = 0  # capacity held: sessions being built plus live tasks
        self._registered = trio.Event()
        self._closing = False  # set when the service starts to exit: no new sessions
        self._nursery: trio.Nursery | None = None
        self._stack: contextlib.AsyncExitStack | None = None

    # -- lifetime -----------------------------------------------------------

    async def __aenter__(self) -> Self:
        stack = contextlib.AsyncExitStack()
        self._nursery = await stack.enter_async_context(trio.open_nursery())
        self._stack = stack
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._stack is not None
        self._closing = True
        with trio.CancelScope(shield=True):
            await self.shutdown()
        self._nursery = None
        # The nursery wraps whatever left the block in an exception group; a group
        # of one is raised as that exception, so ``except SessionNotFound`` around
        # the ``async with`` catches it (clause SHUTDOWN).
        with unwrap_single():
            return await self._stack.__aexit__(exc_type, exc, tb)

    def _require_nursery(self) -> trio.Nursery:
        if self._nursery is None:
            raise RuntimeError("use the service as `async with ...:` before calling it")
        return self._nursery

    @contextlib.contextmanager
    def _reservation(self) -> Iterator[_Slot]:
        """Hold one place of capacity (clause CAPACITY); given back unless ``keep()`` was called.

        Checked and taken in one step (no await), so creates made at once
        can never overshoot; every way out of the ``with`` block that did not
        keep the place -- an error, a cancellation -- gives it back.
        """
        if self._reserved >= self.max_sessions:
            raise capacity_error(len(self._sessions), self._reserved, self.max_sessions)
        self._reserved += 1
        slot = _Slot()
        try:
            yield slot
        finally:
            if not slot.kept:
                self._reserved -= 1

    @property
    def live_count(self) -> int:
        """Session tasks holding capacity (built, registered or still stopping)."""
        return self._reserved

    # -- create ---------------------------------------------------------------

    async def create_session(self, req: CreateSessionRequest) -> RunResult:
        result, _ = await self._create(req)
        return result

    async def _create(
        self, req: CreateSessionRequest, on_register: OnRegister | None = None
    ) -> tuple[RunResult, Session]:
        """Create, register, and run (or defer) the first turn.

        Switch points: building the agent, sending the first turn, waiting for
        its reply.  Capacity is reserved before the first of them (clause
        CAPACITY), and ``on_register`` runs in the same step as registration,
        so whoever can see the session can see what ``on_register`` recorded.
        """
        require(req, CreateSessionRequest, "create_session")
        nursery = self._require_nursery()
        with self._reservation() as slot:
            try:
                agent = await self._builder.build_agent(req)  # may switch
            except SessionError:
                raise
            except Exception as exc:
                raise AgentError(f"Agent error: build failed: {exc}") from exc
            session_id = agent.session_id
            if self._closing:
                raise AgentError("Agent error: the service is shutting down")
            if session_id in self._sessions:
                raise AgentError(f"Duplicate session ID generated: {session_id}")
            send, receive = trio.open_memory_channel[_Turn | _Shutdown](math.inf)
            handle = _Handle(agent=agent, commands=send, inbox=receive)
            # Register, notify and start the task in one step (no await between).
            if on_register is not None and not on_register(session_id):
                raise AgentError(f"Agent error: session id {session_id} is being archived")
            self._sessions[session_id] = handle
            self._registered.set()
            self._registered = trio.Event()
            self._tasks[session_id] = handle
            nursery.start_soon(self._session_task, handle, name=f"session {session_id.short()}")
            slot.keep()  # the session task holds it now; it gives it back when it ends
        if req.initial_turn is InitialTurnPolicy.DEFER:
            return RunResult(text="", session_id=session_id), agent.session()
        handle.turn_running = True
        try:
            return await self._send_turn(handle, req.prompt, req.host_mode)
        except SessionNotFound:
            # Archived before its first turn was sent: the create was cancelled.
            raise AgentError(CANCELLED_TEXT, session_id=session_id) from None

    # -- turns ----------------------------------------------------------------

    async def start_turn(self, session_id: SessionId | str, req: StartTurnRequest) -> RunResult:
        sid = as_session_id(session_id)
        require(req, StartTurnRequest, "start_turn")
        result, _ = await self._start_turn(sid, req)
        return result

    async def _start_turn(
        self, session_id: SessionId, req: StartTurnRequest
    ) -> tuple[RunResult, Session]:
        """Admit exactly one turn at a time (clause TURN-BUSY).

        The check and the set of ``turn_running`` happen in one step, so of
        racing callers exactly one wins; the rest get ``SESSION_BUSY``.
        """
        handle = self._get(session_id)
        if handle.turn_running:
            raise SessionBusy(session_id)
        handle.turn_running = True
        return await self._send_turn(handle, req.prompt, req.host_mode)

    async def _send_turn(
        self, handle: _Handle, prompt: str, host_mode: bool
    ) -> tuple[RunResult, Session]:
        reply = _Reply()
        try:
            await self._points.point("cmd.send", handle.session_id)  # may switch
        except BaseException:
            # Cancelled before the turn was sent: give the admission back, or
            # the session would answer SESSION_BUSY forever.
            handle.turn_running = False
            raise
        try:
            handle.commands.send_nowait(_Turn(prompt, host_mode, reply))
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            handle.turn_running = False
            raise SessionNotFound(handle.session_id) from None
        handle.queued_turns += 1
        return await reply.wait()  # may switch: the turn runs

    async def _session_task(self, handle: _Handle) -> None:
        """Owns the agent; runs commands one at a time until shut down or cancelled."""
        try:
            with handle.task_scope:
                # A new task need not run before its creator goes on: a turn may be sent,
                # and the session archived, before it takes anything (LIVENESS: whatever
                # is still queued when it ends is answered by ``_finish_task``).
                await self._points.point("task.start", handle.session_id)  # may switch
                async for command in handle.inbox:
                    if isinstance(command, _Shutdown):
                        break
                    handle.queued_turns -= 1
                    handle.current = command
                    outcome = await self._run_turn(handle, command)
                    handle.current = None
                    command.reply.set(outcome)
        finally:
            self._finish_task(handle)

    async def _run_turn(
        self, handle: _Handle, turn: _Turn
    ) -> tuple[RunResult, Session] | SessionError:
        agent = handle.agent
        result: RunResult | SessionError | None = None
        with trio.CancelScope() as scope:
            handle.turn_scope = scope
            if handle.interrupt_requested:
                scope.cancel()
            try:
                if turn.host_mode:
                    result = await agent.run_host_mode(turn.prompt, handle.events.publish)
                else:
                    result = await agent.run_turn(turn.prompt, handle.events.publish)
            except SessionError as exc:
                result = exc
            except Exception as exc:  # an agent bug must not take the service down
                result = AgentError(f"Agent error: {exc!r}")
        handle.turn_scope = None
        if result is None:  # our own scope was cancelled: an interrupt
            handle.events.publish(AgentEvent(EventKind.RUN_CANCELLED, handle.session_id))
            result = AgentError(CANCELLED_TEXT, session_id=handle.session_id)
        handle.interrupt_requested = False
        handle.turn_running = False
        if isinstance(result, SessionError):
            return result
        return result, agent.session()

    def _finish_task(self, handle: _Handle) -> None:
        """Whatever ended the task: answer every waiter, close everything, free capacity."""
        cancelled = AgentError(CANCELLED_TEXT, session_id=handle.session_id)
        if handle.current is not None:
            handle.current.reply.set(cancelled)
        handle.commands.close()
        while True:
            try:
                pending = handle.inbox.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
            if isinstance(pending, _Turn):
                pending.reply.set(cancelled)
        handle.queued_turns = 0
        handle.inbox.close()
        handle.turn_running = False
        handle.events.close()
        injector = handle.agent.event_injector()
        close = getattr(injector, "close", None)
        if callable(close):
            close()
        if self._sessions.get(handle.session_id) is handle:
            del self._sessions[handle.session_id]
        if self._tasks.get(handle.session_id) is handle:
            del self._tasks[handle.session_id]
        self._reserved -= 1
        handle.done.set()

    # -- interrupt, read, list, export ----------------------------------------

    async def interrupt(self, session_id: SessionId | str) -> None:
        """Cancel the running turn and return without waiting for it (clause INTERRUPT)."""
        sid = as_session_id(session_id)
        await trio.lowlevel.checkpoint()
        handle = self._get(sid)
        if not handle.turn_running:
            raise SessionNotRunning(sid)
        handle.interrupt_requested = True
        if handle.turn_scope is not None:
            handle.turn_scope.cancel()

    def _get(self, session_id: SessionId) -> _Handle:
        handle = self._sessions.get(session_id)
        if handle is None:
            raise SessionNotFound(session_id)
        return handle

    def _live_view(self, session_id: SessionId) -> SessionView | None:
        handle = self._sessions.get(session_id)
        if handle is None:
            return None
        session = handle.agent.session()
        return SessionView(
            state=SessionInfo(
                session_id=session.id,
                created_at=session.created_at,
                updated_at=session.updated_at,
                message_count=session.message_count,
                is_active=handle.turn_running,
                last_assistant_text=session.last_assistant_text(),
            ),
            billing=SessionUsage(total_tokens=session.total_tokens(), usage=session.usage),
        )

    async def read(self, session_id: SessionId | str) -> SessionView:
        sid = as_session_id(session_id)
        await trio.lowlevel.checkpoint()
        view = self._live_view(sid)
        if view is None:
            raise SessionNotFound(sid)
        return view

    def _live_summaries(self) -> list[SessionSummary]:
        """Live summaries in list order (newest ``updated_at`` first, then id)."""
        return sorted((h.summary() for h in self._sessions.values()), key=SessionSummary.sort_key)

    async def list(self, query: SessionQuery = SessionQuery()) -> list[SessionSummary]:
        require(query, SessionQuery, "list")
        await trio.lowlevel.checkpoint()
        return paginate(self._live_summaries(), query)

    async def export_session(self, session_id: SessionId | str) -> Session:
        sid = as_session_id(session_id)
        await self._points.point("cmd.send", sid)
        return self._get(sid).agent.session()

    # -- persistence: not here ------------------------------------------------

    async def load_persisted(self, session_id: SessionId | str) -> Session | None:
        """An ephemeral service persists nothing (clause LOAD-PERSISTED)."""
        as_session_id(session_id)
        await trio.lowlevel.checkpoint()
        raise SessionPersistenceDisabled("this service keeps no store")

    async def cancel_all_checkpointers(self) -> None:
        await trio.lowlevel.checkpoint()
        raise SessionPersistenceDisabled("this service keeps no store")

    async def rearm_all_checkpointers(self) -> None:
        await trio.lowlevel.checkpoint()
        raise SessionPersistenceDisabled("this service keeps no store")

    # -- archive and shutdown -------------------------------------------------

    async def archive(self, session_id: SessionId | str) -> None:
        """Remove the session and stop its task, host loop included (clause ARCHIVE-STOP).

        Switch points: before the stop, and while waiting for the task to end.
        """
        sid = as_session_id(session_id)
        handle = self._sessions.pop(sid, None)
        if handle is None:
            await trio.lowlevel.checkpoint()
            raise SessionNotFound(sid)
        try:
            await self._points.point("archive.stop", sid)
        finally:
            # Even if this caller is cancelled here, the session is out of the
            # map and nobody else could stop it: stop it now.
            self._stop_task(handle)
        await self._await_stopped(handle)

    def _stop_task(self, handle: _Handle) -> None:
        """Stop the session's task, a running turn or host loop included (ARCHIVE-STOP)."""
        handle.task_scope.cancel()

    async def _await_stopped(self, handle: _Handle) -> None:
        """Archive returns only once the task has ended (may switch while it unwinds)."""
        await handle.done.wait()

    async def shutdown(self) -> None:
        """Stop every live session (their stored copies, if any, stay)."""
        # Every task not yet ended, archived ones included: with the seed's
        # archive (window 3) an archived host loop is still running.
        handles = list(self._tasks.values())
        self._sessions.clear()
        for handle in handles:
            handle.task_scope.cancel()
        for handle in handles:
            await handle.done.wait()

    # -- events and injection -------------------------------------------------

    async def subscribe_session_events(self, session_id: SessionId | str) -> EventStream:
        """Every event of the session from now on; available before the first turn."""
        sid = as_session_id(session_id)
        await trio.lowlevel.checkpoint()
        return self._get(sid).events.subscribe()

    async def event_injector(self, session_id: SessionId | str) -> EventInjector | None:
        sid = as_session_id(session_id)
        await trio.lowlevel.checkpoint()
        handle = self._sessions.get(sid)
        return None if handle is None else handle.agent.event_injector()

    async def wait_session_registered(self) -> None:
        """Return when the next session is registered (as upstream: the next one)."""
        await self._registered.wait()

    def statistics(self) -> ServiceStatistics:
        """A consistent snapshot of the service (see ``ServiceStatistics``)."""
        admitted = {
            sid: n for sid, h in self._sessions.items()
            if (n := h.queued_turns + (h.current is not None))
        }
        return ServiceStatistics(
            live=frozenset(self._sessions),
            running_tasks=frozenset(self._tasks),
            reserved=self._reserved,
            max_sessions=self.max_sessions,
            admitted=admitted,
        )
