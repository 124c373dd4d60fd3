"""The seed-faithful variant (``seed-0.4.0``): the reference with the seed's windows reopened.

Each window is one small, named override of one step of the reference
(``PersistentSessionService``'s ``create_session``/``archive`` steps, the
ephemeral service's stop, the gate's notion of "unchanged"), so the explorer
can open them one at a time and the teaching docs can show the exact lines
that differ.  Nothing here is for production use.

=====  ==========================  =============================================
 no.    name                        what the seed does
=====  ==========================  =============================================
 1      ``save-after-turn``         export, then save, outside the gate
 2      ``create-racing-archive``   record the gate only after create returns
 3      ``archived-host-loop``      archive queues a shutdown behind the loop
 4      ``skip-by-length``          checkpointer skips when the count is equal
=====  ==========================  =============================================

The variant keeps the reference's archive order (the row first, then the live
session); the seed stops the live session first, which matters only for a
crash in the middle of an archive and is not one of the four windows.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Iterable
from typing import ClassVar

import trio

from .._errors import SessionStoreError
from .._seams import DEFAULT_POINTS, Footprints, SchedulingPoints
from .._types import Session, SessionId
from ..agent._protocol import SessionAgentBuilder
from ..service._ephemeral import EphemeralSessionService, _Handle, _Shutdown
from ..service._gate import CheckpointerGate
from ..service._persistent import PersistentSessionService
from ..service._placement import SEED_FOOTPRINTS
from ..store._base import SessionStore


class Window(enum.Enum):
    SAVE_AFTER_TURN = "save-after-turn"
    CREATE_RACING_ARCHIVE = "create-racing-archive"
    ARCHIVED_HOST_LOOP = "archived-host-loop"
    SKIP_BY_LENGTH = "skip-by-length"

    @property
    def number(self) -> int:
        return list(Window).index(self) + 1


ALL_WINDOWS: frozenset[Window] = frozenset(Window)


class _LengthGate(CheckpointerGate):
    """Window 4: "unchanged" means "same message count as the last save"."""

    saved_count = 0

    def unchanged(self, session: Session) -> bool:
        return session.message_count == self.saved_count

    def remember(self, session: Session) -> None:
        super().remember(session)
        self.saved_count = session.message_count


class _QueueingEphemeral(EphemeralSessionService):
    """Window 3: archive queues a shutdown command behind whatever the task runs, and returns."""

    def _stop_task(self, handle: _Handle) -> None:
        with contextlib.suppress(trio.ClosedResourceError, trio.BrokenResourceError):
            handle.commands.send_nowait(_Shutdown())

    async def _await_stopped(self, handle: _Handle) -> None:
        return None  # the seed does not wait: a host loop never reads the shutdown


class SeedPersistentSessionService(PersistentSessionService):
    """``PersistentSessionService`` with the chosen windows of the seed reopened."""

    footprints: ClassVar[Footprints] = SEED_FOOTPRINTS  # window 1 reads at cmd.send

    def __init__(
        self,
        builder: SessionAgentBuilder,
        max_sessions: int,
        store: SessionStore,
        *,
        points: SchedulingPoints = DEFAULT_POINTS,
        windows: Iterable[Window] = ALL_WINDOWS,
    ) -> None:
        self.windows = frozenset(windows)
        super().__init__(builder, max_sessions, store, points=points)

    def _make_inner(
        self, builder: SessionAgentBuilder, max_sessions: int, points: SchedulingPoints
    ) -> EphemeralSessionService:
        if Window.ARCHIVED_HOST_LOOP in self.windows:
            return _QueueingEphemeral(builder, max_sessions, points=points)
        return super()._make_inner(builder, max_sessions, points)

    def _new_gate(self, session_id: SessionId | None = None) -> CheckpointerGate:
        if Window.SKIP_BY_LENGTH in self.windows:
            gate = _LengthGate(self._points)
            gate.session_id = session_id
            return gate
        return super()._new_gate(session_id)

    # Window 2: the gate is recorded only after the live create returned.

    def _on_register(self, session_id: SessionId, gate: CheckpointerGate) -> bool:
        if Window.CREATE_RACING_ARCHIVE not in self.windows:
            return super()._on_register(session_id, gate)
        gate.session_id = session_id
        return True

    async def _after_create(self, session_id: SessionId, gate: CheckpointerGate) -> None:
        if Window.CREATE_RACING_ARCHIVE in self.windows:
            # The seed takes its map lock and records the gate only now.
            await self._points.point("map.acquire", session_id)
            self._gates[session_id] = gate

    async def _turn_gate(self, session_id: SessionId) -> CheckpointerGate | None:
        if Window.CREATE_RACING_ARCHIVE in self.windows:
            return self._gates.get(session_id)  # none yet: the live side decides
        return await super()._turn_gate(session_id)

    async def _archive_gate(self, sid: SessionId) -> tuple[CheckpointerGate, bool]:
        if (
            Window.CREATE_RACING_ARCHIVE in self.windows
            and sid not in self._gates
            and sid in self.inner.statistics().live
        ):
            return self._new_gate(sid), False  # live with no gate yet: a fresh one, unrecorded
        return await super()._archive_gate(sid)

    async def _persist(self, gate: CheckpointerGate | None, snapshot: Session) -> None:
        if Window.SAVE_AFTER_TURN in self.windows:
            # Window 1: export the live session, then save it, holding nothing.
            session = await self.inner.export_session(snapshot.id)
            try:
                await self.store.save(session)
            except SessionStoreError:
                raise
            except Exception as exc:
                raise SessionStoreError(
                    f"store save failed: {exc}", session_id=snapshot.id
                ) from exc
            if gate is not None:
                gate.remember(session)
            return
        if gate is None:  # window 2 alone: the session's gate was never recorded
            gate = self._new_gate(snapshot.id)
        # The seed reports success even when an archive made the gate skip the save.
        await gate.write(self.store, snapshot, checkpoint=False)


def parse_windows(names: Iterable[str]) -> frozenset[Window]:
    """Window names (or numbers) from the command line; ``ValueError`` names a bad one."""
    chosen = set()
    by_name = {w.value: w for w in Window} | {str(w.number): w for w in Window}
    for name in names:
        try:
            chosen.add(by_name[name])
        except KeyError:
            raise ValueError(
                f"unknown window {name!r}; known: {', '.join(sorted(by_name))}"
            ) from None
    return frozenset(chosen)


__all__ = ["ALL_WINDOWS", "SeedPersistentSessionService", "Window", "parse_windows"]
