"""The persistent session service: live sessions plus a ``SessionStore``.

Wraps ``EphemeralSessionService``.  Saves the full session after create and
after each turn, and host loops save through a checkpointer after each
interaction.  ``read`` and ``list`` merge live sessions with stored ones.

The contract's central promise (clause ARCHIVE-FINAL): once ``archive(id)``
has returned, no write for ``id`` reaches the store again, no later ``read``,
``list`` or ``load_persisted`` shows it, and its agent (host loop included)
has stopped.  The seed (0.4.0) breaks it through four windows; the reference
closes each, and ``_seed.py`` reopens them one by one:

1. *Save after a turn or create* went outside the gate.  Here every write
   goes through ``CheckpointerGate.write`` (``_persist``).
2. *Create racing archive*: the seed recorded the gate after the create
   returned.  Here it is recorded in the same step as the session's
   registration (``_on_register``), so whoever can name the session can
   archive its gate.
3. *Archived host loop*: the seed's archive queued a shutdown behind the loop.
   Here archive cancels the session task and waits for it to end.
4. *Skip-unchanged by length*: here the gate compares revisions.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, replace
from types import TracebackType
from typing import ClassVar, Self

import trio

from .._errors import CANCELLED_TEXT, AgentError, SessionError, SessionNotFound, SessionStoreError
from .._seams import DEFAULT_POINTS, Footprints, SchedulingPoints
from .._types import (
    BuildOptions,
    CreateSessionRequest,
    InvalidArgument,
    RunResult,
    Session,
    SessionFilter,
    SessionId,
    SessionInfo,
    SessionMeta,
    SessionQuery,
    SessionSummary,
    SessionUsage,
    SessionView,
    StartTurnRequest,
    as_session_id,
    require,
)
from ..agent._events import EventStream
from ..agent._protocol import EventInjector, SessionAgentBuilder
from ..store._base import PointedStore, SessionStore
from ._ephemeral import EphemeralSessionService, paginate
from ._gate import CheckpointerGate, StoreCheckpointer
from ._placement import FOOTPRINTS
from ._statistics import GateStatistics, ServiceStatistics

STORE_METHODS = ("save", "load", "list", "delete", "exists")
"""The ``SessionStore`` protocol's calls: a service refuses a store lacking one."""


def _store_error(exc: Exception, what: str, session_id: SessionId | None = None) -> SessionError:
    if isinstance(exc, SessionError):
        return exc
    return SessionStoreError(f"store {what} failed: {exc}", session_id=session_id)


@dataclass
class ArchiveProgress:
    """How far an archive got: the row removed (``committed``), and what it found."""

    in_store: bool = False
    committed: bool = False
    live: bool = False


def _summary_of(meta: SessionMeta) -> SessionSummary:
    return SessionSummary(
        session_id=meta.id,
        created_at=meta.created_at,
        updated_at=meta.updated_at,
        message_count=meta.message_count,
        total_tokens=meta.total_tokens,
        is_active=False,
    )


class PersistentSessionService:
    """Live sessions backed by a store; see the module docstring for the contract."""

    footprints: ClassVar[Footprints] = FOOTPRINTS
    """What each step may touch (``service/_placement.py``): the explorer's reduction reads it.

    A variant that changes what follows a point declares it here (the audit,
    ``meerkat-ref check --audit``, shows a declaration that leaves something out).
    """

    def __init__(
        self,
        builder: SessionAgentBuilder,
        max_sessions: int,
        store: SessionStore,
        *,
        points: SchedulingPoints = DEFAULT_POINTS,
    ) -> None:
        missing = [m for m in STORE_METHODS if not callable(getattr(store, m, None))]
        if missing:
            raise InvalidArgument(
                f"store must be a SessionStore, got {type(store).__name__} "
                f"(no {', '.join(missing)})"
            )
        self.inner = self._make_inner(builder, max_sessions, points)
        self.store: PointedStore = PointedStore(store, points)
        self._points = points
        self._gates: dict[SessionId, CheckpointerGate] = {}

    async def __aenter__(self) -> Self:
        await self.inner.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        self._gates.clear()
        return await self.inner.__aexit__(exc_type, exc, tb)

    @property
    def max_sessions(self) -> int:
        return self.inner.max_sessions

    # -- the small steps variants override ------------------------------------
    #
    # ``create_session`` and ``archive`` are fixed sequences of the steps
    # below.  The seed variant (``meerkat_ref.testing``), the early versions
    # drawn in spec/CONCURRENCY.md and the test mutants each override one
    # step; none copies a whole operation.

    def _make_inner(
        self, builder: SessionAgentBuilder, max_sessions: int, points: SchedulingPoints
    ) -> EphemeralSessionService:
        """The live side."""
        return EphemeralSessionService(builder, max_sessions, points=points)

    def _new_gate(self, session_id: SessionId | None = None) -> CheckpointerGate:
        gate = CheckpointerGate(self._points)
        gate.session_id = session_id
        return gate

    def _on_register(self, session_id: SessionId, gate: CheckpointerGate) -> bool:
        """Record the gate in the same step the session registers (closes window 2).

        False refuses the registration: an archive of this very id holds its
        gate (a tombstone, see ``_archive_gate``).
        """
        gate.session_id = session_id
        if session_id in self._gates:
            return False
        self._gates[session_id] = gate
        return True

    async def _after_create(self, session_id: SessionId, gate: CheckpointerGate) -> None:
        """Between the live create and its save: nothing (the gate is recorded already)."""

    async def _turn_gate(self, session_id: SessionId) -> CheckpointerGate | None:
        """The gate a turn's save goes through; a session with none is not live."""
        gate = self._gates.get(session_id)
        if gate is None:
            await trio.lowlevel.checkpoint()
            raise SessionNotFound(session_id)
        return gate

    # -- create and turns -----------------------------------------------------

    async def create_session(self, req: CreateSessionRequest) -> RunResult:
        """Create a session with a gated checkpointer, run its first turn, save it.

        A store failure of the final save raises ``SESSION_STORE_ERROR`` naming
        the session, which stays live (as in the seed).
        """
        require(req, CreateSessionRequest, "create_session")
        gate = self._new_gate()
        checkpointer = StoreCheckpointer(self.store, gate)
        req = replace(req, build=replace(req.build or BuildOptions(), checkpointer=checkpointer))

        result, snapshot = await self.inner._create(
            req, lambda session_id: self._on_register(session_id, gate)
        )  # may switch
        await self._after_create(result.session_id, gate)
        await self._persist(gate, snapshot)
        return result

    async def start_turn(self, session_id: SessionId | str, req: StartTurnRequest) -> RunResult:
        sid = as_session_id(session_id)
        require(req, StartTurnRequest, "start_turn")
        gate = await self._turn_gate(sid)
        result, snapshot = await self.inner._start_turn(sid, req)  # may switch
        await self._persist(gate, snapshot)
        return result

    async def _persist(self, gate: CheckpointerGate | None, snapshot: Session) -> None:
        """Save the snapshot a create or turn ended with, through the gate (window 1).

        If an archive got the gate first, the turn is not saved and the caller
        gets ``AGENT_ERROR`` (cancelled) rather than a success the store does
        not hold: an acknowledged turn is always durable (clause DURABILITY).
        """
        assert gate is not None
        await gate.write(self.store, snapshot, checkpoint=False)
        if gate.archived:
            raise AgentError(CANCELLED_TEXT, session_id=snapshot.id)

    # -- interrupt, read, list ------------------------------------------------

    async def interrupt(self, session_id: SessionId | str) -> None:
        await self.inner.interrupt(session_id)

    async def read(self, session_id: SessionId | str) -> SessionView:
        """The live session, else the stored one, shown inactive (clause READ-FALLBACK)."""
        sid = as_session_id(session_id)
        view = self.inner._live_view(sid)
        if view is not None:
            await trio.lowlevel.checkpoint()
            return view
        try:
            session = await self.store.load(sid)  # may switch
        except Exception as exc:
            raise _store_error(exc, "load", sid) from exc
        if session is None:
            raise SessionNotFound(sid)
        return SessionView(
            state=SessionInfo(
                session_id=session.id,
                created_at=session.created_at,
                updated_at=session.updated_at,
                message_count=session.message_count,
                is_active=False,
                last_assistant_text=session.last_assistant_text(),
            ),
            billing=SessionUsage(total_tokens=session.total_tokens(), usage=session.usage),
        )

    async def list(self, query: SessionQuery = SessionQuery()) -> list[SessionSummary]:
        """Live and stored sessions merged in one order, then paginated (clause LIST).

        Order: newest ``updated_at`` first, ties by id; a live session shows its
        live state and hides its stored copy.  Only the first
        ``offset + limit + live`` stored rows are read: the stored sessions
        that make the page are among them, whatever the live ones are.
        """
        require(query, SessionQuery, "list")
        live = self.inner._live_summaries()
        live_ids = {s.session_id for s in live}
        need = None if query.limit is None else (query.offset or 0) + query.limit + len(live)
        try:
            stored = await self.store.list(SessionFilter(limit=need))  # may switch
        except Exception as exc:
            raise _store_error(exc, "list") from exc
        rest = (_summary_of(m) for m in stored if m.id not in live_ids)
        merged = list(heapq.merge(live, rest, key=SessionSummary.sort_key))
        return paginate(merged, query)

    async def load_persisted(self, session_id: SessionId | str) -> Session | None:
        sid = as_session_id(session_id)
        try:
            return await self.store.load(sid)
        except Exception as exc:
            raise _store_error(exc, "load", sid) from exc

    async def export_session(self, session_id: SessionId | str) -> Session:
        return await self.inner.export_session(session_id)

    # -- archive ---------------------------------------------------------------

    async def archive(self, session_id: SessionId | str) -> None:
        """Archive a live or store-only session, for good (clause ARCHIVE-FINAL).

        Under the gate's lock: mark it archived (every write waiting for the
        lock will then give up), then ``_archive_steps``: delete the stored
        row, then stop the live session and wait for its task to end.
        Success if either side had the session; ``SESSION_NOT_FOUND`` if
        neither did.

        All or nothing (clause ARCHIVE-ATOMIC): until the row is gone
        (``committed``), a store failure (``SESSION_STORE_ERROR``) or a
        cancelled caller puts the gate's flag back as it found it (an earlier
        archive's mark stays) and nothing changed;
        once the row is gone the session is archived even if the process
        dies before the live side is stopped (found by the explorer:
        crash-restart).  Switch points: the gate acquisition, ``exists``,
        ``delete``, the stop.
        """
        sid = as_session_id(session_id)
        gate, tombstone = await self._archive_gate(sid)
        progress = ArchiveProgress()
        try:
            async with gate.held():
                was_archived = gate.archived  # a second archive of one session: keep the first's
                try:
                    gate.archived = True
                    await self._archive_steps(sid, progress)
                finally:
                    if not progress.committed:
                        gate.archived = was_archived  # nothing happened: as it was
                    if (progress.committed or tombstone) and self._gates.get(sid) is gate:
                        del self._gates[sid]
        except BaseException:
            # Cancelled while waiting for the lock (found by the explorer: a cancelled
            # archive of a stored-only id left its tombstone in the map for good).
            if tombstone and self._gates.get(sid) is gate:
                del self._gates[sid]
            raise
        if not progress.live and not progress.in_store:
            raise SessionNotFound(sid)

    async def _archive_steps(self, sid: SessionId, progress: ArchiveProgress) -> None:
        """The row first, then the live session (see ``archive``)."""
        progress.in_store = await self._remove_row(sid)
        progress.committed = True
        progress.live = await self._stop_live(sid)

    async def _remove_row(self, sid: SessionId) -> bool:
        """Delete the stored row; whether there was one.  Switch points: ``exists``, ``delete``."""
        try:
            in_store = await self.store.exists(sid)
            if in_store:
                await self.store.delete(sid)
        except Exception as exc:
            raise _store_error(exc, "exists/delete", sid) from exc
        return in_store

    async def _stop_live(self, sid: SessionId) -> bool:
        """Stop the live session and wait for its task; whether there was one."""
        try:
            await self.inner.archive(sid)
        except SessionNotFound:
            return False
        return True

    async def _archive_gate(self, sid: SessionId) -> tuple[CheckpointerGate, bool]:
        """The gate archive must hold: the live session's, or a tombstone for a stored one.

        A session that is neither live nor stored is ``SESSION_NOT_FOUND`` at
        once, with nothing left behind.  For a stored-only session a fresh
        gate (a tombstone: the second value is True) goes into the map,
        so a create that registers that very id while the archive runs (an id
        reused) is refused instead of living on after archive returns (found
        by the explorer: create-vs-archive).  Switch point: ``exists``.
        """
        while True:
            gate = self._gates.get(sid)
            if gate is not None:
                return gate, False
            try:
                stored = await self.store.exists(sid)
            except Exception as exc:
                raise _store_error(exc, "exists", sid) from exc
            if sid in self._gates:
                continue  # it registered while we looked: archive the live session
            if not stored:
                raise SessionNotFound(sid)
            tombstone = self._new_gate(sid)
            self._gates[sid] = tombstone
            return tombstone, True

    # -- checkpointer gates ----------------------------------------------------

    async def cancel_all_checkpointers(self) -> None:
        """Disarm every live session's checkpointer (used by stop).

        When this returns, no checkpoint write of a session the sweep reached is
        in flight, and none starts until ``rearm_all_checkpointers``.  Sessions
        created later start armed (as upstream); turn saves are not affected
        (clause STOP-RESUME).
        """
        for gate in list(self._gates.values()):
            async with gate.held():
                gate.armed = False

    async def rearm_all_checkpointers(self) -> None:
        """Re-arm every tracked gate (used by resume); archived gates stay off."""
        for gate in list(self._gates.values()):
            async with gate.held():
                gate.armed = True

    def statistics(self) -> ServiceStatistics:
        """The live side's snapshot plus every checkpointer gate (see ``ServiceStatistics``)."""
        gates = {
            sid: GateStatistics(g.armed, g.archived, g.saved_revision, g.lock.locked())
            for sid, g in self._gates.items()
        }
        return replace(self.inner.statistics(), gates=gates)

    def gate_armed(self, session_id: SessionId) -> bool | None:
        """Whether the session's checkpointer is armed (``None``: no gate)."""
        gate = self._gates.get(session_id)
        return None if gate is None else gate.armed and not gate.archived

    # -- pass-throughs ---------------------------------------------------------

    async def subscribe_session_events(self, session_id: SessionId | str) -> EventStream:
        return await self.inner.subscribe_session_events(session_id)

    async def event_injector(self, session_id: SessionId | str) -> EventInjector | None:
        return await self.inner.event_injector(session_id)

    async def wait_session_registered(self) -> None:
        await self.inner.wait_session_registered()

    async def shutdown(self) -> None:
        """Stop every live session; stored copies stay (they are not archived)."""
        await self.inner.shutdown()
        self._gates.clear()
