"""The ``SessionStore`` protocol and the wrapper that makes store calls visible.

Contract (clause STORE-*, see spec/CONTRACT.md):

- ``save(session)`` creates or replaces the whole session, atomically.
- ``load(id)`` returns the session or ``None``; an undecodable row raises
  ``SessionStoreError`` naming that session.
- ``list(filter)`` returns ``SessionMeta`` newest ``updated_at`` first, ties
  by id ascending (``list_order_key``), filters applied before the page.
- ``delete(id)`` is idempotent: deleting a missing id succeeds.
- ``exists(id)`` says whether ``load`` would find a row.
"""

from __future__ import annotations

from typing import Protocol

from .._seams import DEFAULT_POINTS, SchedulingPoints
from .._types import Session, SessionFilter, SessionId, SessionMeta

_EVERYTHING = SessionFilter()


class SessionStore(Protocol):
    async def save(self, session: Session) -> None: ...

    async def load(self, session_id: SessionId) -> Session | None: ...

    async def list(self, filter: SessionFilter = _EVERYTHING) -> list[SessionMeta]: ...

    async def delete(self, session_id: SessionId) -> None: ...

    async def exists(self, session_id: SessionId) -> bool: ...


class PointedStore:
    """Wraps a store so every call is a scheduling point first.

    The services always talk to their store through this wrapper, so the
    explorer sees (and can reorder around, or fail) every store call without
    the stores knowing anything about it.
    """

    def __init__(self, inner: SessionStore, points: SchedulingPoints = DEFAULT_POINTS) -> None:
        self.inner = inner
        self._points = points

    async def save(self, session: Session) -> None:
        await self._points.point("store.save", session.id)
        await self.inner.save(session)

    async def load(self, session_id: SessionId) -> Session | None:
        await self._points.point("store.load", session_id)
        return await self.inner.load(session_id)

    async def list(self, filter: SessionFilter = _EVERYTHING) -> list[SessionMeta]:
        await self._points.point("store.list", None)
        return await self.inner.list(filter)

    async def delete(self, session_id: SessionId) -> None:
        await self._points.point("store.delete", session_id)
        await self.inner.delete(session_id)

    async def exists(self, session_id: SessionId) -> bool:
        await self._points.point("store.exists", session_id)
        return await self.inner.exists(session_id)
