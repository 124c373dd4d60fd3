"""Deliberately broken services, kept in tests only: the stateful test must catch each.

Each mutant is the smallest change that breaks one clause.  If the stateful
test lets one survive, strengthen the test; never drop the mutant.

Not a mutant: paging live and stored sessions *separately* and then merging.
It looks wrong, but no reachable state tells it apart: the clock is shared
across restarts, so every stored-only session (last written before the last
restart) is older than every live session and every live session's stored
copy, and the store's page then holds exactly the stored-only rows the true
page needs.
"""

from __future__ import annotations

import contextlib
import heapq
from typing import Any

import trio

from meerkat_ref import (
    CreateSessionRequest,
    EphemeralSessionService,
    PersistentSessionService,
    RunResult,
    SchedulingPoints,
    Session,
    SessionBusy,
    SessionFilter,
    SessionId,
    SessionNotFound,
    SessionQuery,
    SessionSummary,
    SessionView,
    StartTurnRequest,
)
from meerkat_ref.agent import ScriptedAgentBuilder, SessionAgent, SessionAgentBuilder
from meerkat_ref.service import CheckpointerGate
from meerkat_ref.service._persistent import _summary_of
from meerkat_ref.store import SessionStore

from .harness import Backend, Service

_ALL = SessionQuery()

# -- 1. list paginates before merging live and stored [LIST-PAGE] ---------------------


class PageBeforeMerge(PersistentSessionService):
    """Pages the store, then merges in every live session and cuts to the limit."""

    async def list(self, query: SessionQuery = _ALL) -> list[SessionSummary]:
        live = self.inner._live_summaries()
        live_ids = {s.session_id for s in live}
        stored = await self.store.list(SessionFilter(limit=query.limit, offset=query.offset))
        rest = [_summary_of(m) for m in stored if m.id not in live_ids]
        return list(heapq.merge(live, rest, key=SessionSummary.sort_key))[: query.limit]


# -- 2. archive forgets the store [ARCHIVE-FINAL] ---------------------------------------


class ArchiveKeepsRow(PersistentSessionService):
    async def _remove_row(self, sid: SessionId) -> bool:
        return await self.store.exists(sid)  # the mutation: no delete follows


# -- 3. read does not fall back to the store [READ-FALLBACK] -----------------------------


class ReadLiveOnly(PersistentSessionService):
    async def read(self, session_id: SessionId | str) -> SessionView:
        sid = SessionId.parse(session_id)
        await trio.lowlevel.checkpoint()
        view = self.inner._live_view(sid)
        if view is None:
            raise SessionNotFound(sid)
        return view


# -- 4. busy check is check-then-act [TURN-BUSY] -------------------------------------------


class _CheckThenActEphemeral(EphemeralSessionService):
    async def _start_turn(
        self, session_id: SessionId, req: StartTurnRequest
    ) -> tuple[RunResult, Session]:
        handle = self._get(session_id)
        if handle.turn_running:
            raise SessionBusy(session_id)
        # The window: another caller checks here too.  A scheduling point, as
        # every await in the reference is one: the explorer switches only there.
        await self._points.point("cmd.send", session_id)
        handle.turn_running = True
        return await self._send_turn(handle, req.prompt, req.host_mode)


class CheckThenAct(PersistentSessionService):
    def _make_inner(
        self, builder: SessionAgentBuilder, max_sessions: int, points: SchedulingPoints
    ) -> EphemeralSessionService:
        return _CheckThenActEphemeral(builder, max_sessions, points=points)


# -- 5. capacity counted after building the agent [CAPACITY] ------------------------------


class _CountAfterBuild:
    """Wraps the builder so a create's capacity is not counted while its agent builds."""

    def __init__(self, builder: SessionAgentBuilder, service: EphemeralSessionService) -> None:
        self.builder = builder
        self.service = service

    async def build_agent(self, req: CreateSessionRequest) -> SessionAgent:
        self.service._reserved -= 1  # the mutation: others check meanwhile
        try:
            return await self.builder.build_agent(req)
        finally:
            self.service._reserved += 1  # counted only once built


class CapacityAfterBuild(PersistentSessionService):
    def _make_inner(
        self, builder: SessionAgentBuilder, max_sessions: int, points: SchedulingPoints
    ) -> EphemeralSessionService:
        inner = super()._make_inner(builder, max_sessions, points)
        inner._builder = _CountAfterBuild(builder, inner)
        return inner


# -- 6. the checkpointer ignores its gate's arming [CHECKPOINT-GATE] ----------------------


class _GateOneWay(CheckpointerGate):
    """A gate that treats every write as a checkpoint (``AS``: True) or none (False)."""

    AS: bool

    async def write(self, store: SessionStore, session: Session, *, checkpoint: bool) -> bool:
        return await super().write(store, session, checkpoint=self.AS)


class _GatedOneWay(PersistentSessionService):
    GATE: type[_GateOneWay]

    def _new_gate(self, session_id: SessionId | None = None) -> CheckpointerGate:
        gate = self.GATE(self._points)
        gate.session_id = session_id
        return gate


class _DeafGate(_GateOneWay):
    AS = False


class IgnoresArming(_GatedOneWay):
    GATE = _DeafGate


class _ArmedForEveryWrite(_GateOneWay):
    AS = True


class DisarmStopsSaves(_GatedOneWay):
    """The other way round [STOP-RESUME]: a disarm stops a turn's and a create's save too."""

    GATE = _ArmedForEveryWrite


# -- 7. shutdown stops no task, or returns before they end [SHUTDOWN] ------------------------


class _ShutdownStopsNothingEphemeral(EphemeralSessionService):
    async def shutdown(self) -> None:
        for handle in list(self._tasks.values()):
            await handle.done.wait()  # the mutation: waits for tasks it never stopped


class ShutdownStopsNothing(PersistentSessionService):
    def _make_inner(
        self, builder: SessionAgentBuilder, max_sessions: int, points: SchedulingPoints
    ) -> EphemeralSessionService:
        return _ShutdownStopsNothingEphemeral(builder, max_sessions, points=points)


class _ShutdownWaitsForNoneEphemeral(EphemeralSessionService):
    async def shutdown(self) -> None:
        handles = list(self._tasks.values())
        self._sessions.clear()
        for handle in handles:
            handle.task_scope.cancel()  # the mutation: returns before any of them ended


class ShutdownWaitsForNone(PersistentSessionService):
    def _make_inner(
        self, builder: SessionAgentBuilder, max_sessions: int, points: SchedulingPoints
    ) -> EphemeralSessionService:
        return _ShutdownWaitsForNoneEphemeral(builder, max_sessions, points=points)


# -- 8. a turn still queued when its task ends is dropped, never answered [LIVENESS] --------


class _DropsQueuedTurnsEphemeral(EphemeralSessionService):
    def _finish_task(self, handle: Any) -> None:
        while True:  # the mutation: whatever is still queued is thrown away unanswered
            try:
                handle.inbox.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
        super()._finish_task(handle)


class DropsQueuedTurns(PersistentSessionService):
    def _make_inner(
        self, builder: SessionAgentBuilder, max_sessions: int, points: SchedulingPoints
    ) -> EphemeralSessionService:
        return _DropsQueuedTurnsEphemeral(builder, max_sessions, points=points)


# -- 9. an injector taken before its session's task ended accepts messages after it ----------
# [HOST-MESSAGE]: ``inject`` raises SESSION_NOT_FOUND once the session task has ended.


class _Swallowing:
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def inject(self, text: str) -> None:
        # The mutation: a message after the end is dropped, and the caller told ok.
        with contextlib.suppress(SessionNotFound):
            self.inner.inject(text)


class _InjectorOutlivesTaskEphemeral(EphemeralSessionService):
    async def event_injector(self, session_id: SessionId | str) -> Any:
        injector = await super().event_injector(session_id)
        return None if injector is None else _Swallowing(injector)


class InjectorOutlivesTask(PersistentSessionService):
    def _make_inner(
        self, builder: SessionAgentBuilder, max_sessions: int, points: SchedulingPoints
    ) -> EphemeralSessionService:
        return _InjectorOutlivesTaskEphemeral(builder, max_sessions, points=points)


# -- an interrupt frees the turn's slot [TURN-BUSY] -----------------------------------------
# A flag reset by the wrong call: the interrupt, not the turn's end, clears ``turn_running``,
# so a turn started while the interrupted one still unwinds is admitted beside it.  It takes
# three calls (a turn, an interrupt, a second turn), so no pair shows it.


class _InterruptFreesTurnEphemeral(EphemeralSessionService):
    async def interrupt(self, session_id: SessionId | str) -> None:
        await super().interrupt(session_id)
        handle = self._sessions.get(SessionId.parse(session_id))
        if handle is not None:
            handle.turn_running = False  # the mutation


class InterruptFreesTurn(PersistentSessionService):
    def _make_inner(
        self, builder: SessionAgentBuilder, max_sessions: int, points: SchedulingPoints
    ) -> EphemeralSessionService:
        return _InterruptFreesTurnEphemeral(builder, max_sessions, points=points)


# -- as backends for the harness -------------------------------------------------------------


def _backend(name: str, cls: type[PersistentSessionService]) -> Backend:
    def make(builder: ScriptedAgentBuilder, capacity: int, store: SessionStore | None) -> Service:
        assert store is not None
        return cls(builder, capacity, store)

    return Backend(name, "memory", make)


MUTANTS: dict[str, Backend] = {
    b.name: b
    for b in (
        _backend("page-before-merge", PageBeforeMerge),
        _backend("archive-keeps-row", ArchiveKeepsRow),
        _backend("read-live-only", ReadLiveOnly),
        _backend("check-then-act", CheckThenAct),
        _backend("capacity-after-build", CapacityAfterBuild),
        _backend("ignores-arming", IgnoresArming),
    )
}


def service_mutants() -> dict[str, type[PersistentSessionService]]:
    """Every mutant service class of this module, by class name: the one list that the tests
    (``tests/test_dpor.py``: each has a scenario ``check`` finds it in) and the benchmarks
    (``benchmarks.bench_subsume``) plant."""
    return {name: value for name, value in globals().items()
            if isinstance(value, type) and not name.startswith("_")
            and issubclass(value, PersistentSessionService)
            and value is not PersistentSessionService}
