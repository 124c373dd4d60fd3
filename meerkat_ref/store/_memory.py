"""An in-memory ``SessionStore``: the reference the SQLite store is checked against.

Sessions are frozen dataclasses, so the store keeps the objects themselves
(no encoding, no deep copy; only a non-empty metadata mapping is copied, as
it is the one field a caller could still mutate).  A sorted index in list order lets ``list`` page
without sorting on every call, the way the SQLite index does.
"""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

import trio
from sortedcontainers import SortedList

from .._types import Session, SessionFilter, SessionId, SessionMeta, list_order_key

__all__ = ["MemoryStore"]

_EVERYTHING = SessionFilter()

# (list_order_key..., id): unique per session because the key contains the id.
_IndexEntry = tuple[int, str, SessionId]


def _entry(session: Session) -> _IndexEntry:
    neg_updated, id_text = list_order_key(session.updated_at, session.id)
    return (neg_updated, id_text, session.id)


class MemoryStore:
    """Sessions in a dict, plus an index ordered by ``list_order_key``.

    Every method is one Trio checkpoint followed by synchronous work, so each
    call is atomic (nothing else runs in the middle) yet still yields to the
    scheduler like real I/O would.  The checkpoint comes first: a call
    cancelled at it has changed nothing.
    """

    def __init__(self) -> None:
        self._sessions: dict[SessionId, Session] = {}
        self._index = SortedList()  # of _IndexEntry

    async def save(self, session: Session) -> None:
        await trio.lowlevel.checkpoint()
        if session.metadata:
            # The dataclass is frozen but a metadata dict handed in could still
            # be mutated by its owner afterwards; keep a private read-only copy.
            session = replace(session, metadata=MappingProxyType(dict(session.metadata)))
        old = self._sessions.get(session.id)
        if old is not None:
            self._index.remove(_entry(old))
        self._sessions[session.id] = session
        self._index.add(_entry(session))

    async def load(self, session_id: SessionId) -> Session | None:
        await trio.lowlevel.checkpoint()
        return self._sessions.get(session_id)

    async def list(self, filter: SessionFilter = _EVERYTHING) -> list[SessionMeta]:
        await trio.lowlevel.checkpoint()
        offset = filter.offset or 0
        limit = filter.limit
        if limit == 0:
            return []
        if filter.created_after is None and filter.updated_after is None:
            # No filter: the page is a slice of the index, O(log n + page).
            stop = None if limit is None else offset + limit
            return [self._sessions[e[2]].meta() for e in self._index.islice(offset, stop)]
        end = len(self._index)
        if filter.updated_after is not None:
            # Entries updated strictly after t form a prefix of the index:
            # (-t,) sorts before every entry whose updated_at equals t.
            end = self._index.bisect_left((-filter.updated_after,))
        out: list[SessionMeta] = []
        skipped = 0
        for entry in self._index.islice(0, end):
            meta = self._sessions[entry[2]].meta()
            if not filter.admits(meta):
                continue
            if skipped < offset:
                skipped += 1
                continue
            out.append(meta)
            if limit is not None and len(out) >= limit:
                break
        return out

    async def delete(self, session_id: SessionId) -> None:
        await trio.lowlevel.checkpoint()
        old = self._sessions.pop(session_id, None)
        if old is not None:
            self._index.remove(_entry(old))

    async def exists(self, session_id: SessionId) -> bool:
        await trio.lowlevel.checkpoint()
        return session_id in self._sessions

    def snapshot(self) -> dict[SessionId, Session]:
        """A copy of the contents, for tests and the explorer (no checkpoint)."""
        return dict(self._sessions)

    def __len__(self) -> int:
        return len(self._sessions)

    def __repr__(self) -> str:
        return f"MemoryStore({len(self)} sessions)"
