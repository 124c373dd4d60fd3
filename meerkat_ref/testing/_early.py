"""``archive`` as the reference first had it: two races the explorer found, kept to be drawn.

``spec/CONCURRENCY.md`` draws how the explorer found each of them again; each
is the reference with one step of ``archive`` put back as it was.
"""

from __future__ import annotations

from .._types import SessionId
from ..service._gate import CheckpointerGate
from ..service._persistent import ArchiveProgress, PersistentSessionService


class _StopFirst(PersistentSessionService):
    """The live session first, then the row, as the seed does."""

    async def _archive_steps(self, sid: SessionId, progress: ArchiveProgress) -> None:
        progress.committed = True
        progress.live = await self._stop_live(sid)
        progress.in_store = await self._remove_row(sid)


class EarlyArchiveNoTombstone(_StopFirst):
    """The first version (commit d105013).

    An archive of an id with no gate used a fresh gate it did not put in the
    map, so a create that registered that very id meanwhile went ahead: the
    archive returned success and the new session stayed live and writing.
    """

    async def _archive_gate(self, sid: SessionId) -> tuple[CheckpointerGate, bool]:
        gate = self._gates.get(sid)
        return (gate, False) if gate is not None else (self._new_gate(sid), False)


class EarlyArchiveStopFirst(_StopFirst):
    """After the first fix (commit 2916484).

    It recorded the tombstone gate, but still stopped the live session before
    deleting the row: a crash in between left the row, so the session came
    back after a restart although a concurrent turn had already been told
    ``SESSION_NOT_FOUND``.
    """

    async def _archive_gate(self, sid: SessionId) -> tuple[CheckpointerGate, bool]:
        gate = self._gates.get(sid)
        if gate is not None:
            return gate, False
        gate = self._new_gate(sid)
        self._gates[sid] = gate
        return gate, True


__all__ = ["EarlyArchiveNoTombstone", "EarlyArchiveStopFirst"]
