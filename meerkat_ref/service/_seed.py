"""The seed-faithful variant (``seed-0.4.0``): the reference with the seed's windows.

Each window is one small, named difference from ``PersistentSessionService``,
so the explorer can open them one at a time and the teaching docs can show
the exact lines that differ.  Nothing here is for production use.

=====  ==========================  =============================================
 no.    name                        what the seed does
=====  ==========================  =============================================
 1      ``save-after-turn``         export, then save, outside the gate
 2      ``create-racing-archive``   record the gate only after create returns
 3      ``archived-host-loop``      archive queues a shutdown behind the loop
 4      ``skip-by-length``          checkpointer skips when the count is equal
=====  ==========================  =============================================
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from .._errors import SessionStoreError
from .._seams import DEFAULT_POINTS, SchedulingPoints
from .._types import Session, SessionId
from ..agent._protocol import SessionAgentBuilder
from ..store._base import SessionStore
from ._gate import CheckpointerGate
from ._persistent import PersistentSessionService


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

    def unchanged(self, session: Session) -> bool:
        return session.message_count == self.saved_count


class SeedPersistentSessionService(PersistentSessionService):
    """``PersistentSessionService`` with the chosen windows of the seed reopened."""

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
        super().__init__(
            builder,
            max_sessions,
            store,
            points=points,
            _archive_waits_behind_turn=Window.ARCHIVED_HOST_LOOP in self.windows,
        )
        self._gate_at_registration = Window.CREATE_RACING_ARCHIVE not in self.windows

    def _new_gate(self) -> CheckpointerGate:
        if Window.SKIP_BY_LENGTH in self.windows:
            return _LengthGate(self._points)
        return CheckpointerGate(self._points)

    async def _record_gate_late(self, session_id: SessionId, gate: CheckpointerGate) -> None:
        # Window 2: the seed takes its map lock and records the gate only now.
        await self._points.point("map.acquire", session_id)
        self._gates[session_id] = gate

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
                gate.saved_count = session.message_count
                gate.saved_revision = session.revision
            return
        if gate is None:  # window 2 alone: the session's gate was never recorded
            gate = self._new_gate()
            gate.session_id = snapshot.id
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
