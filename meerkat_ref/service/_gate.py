"""The checkpointer gate: the one lock every store write for a session takes.

Clause ARCHIVE-FINAL: once ``archive(id)`` returns, no write for ``id`` reaches
the store.  The reference keeps it by routing *every* write of a live
session (the save after create, the save after each turn, each host-mode
checkpoint) through ``CheckpointerGate.write``, which takes the gate's lock
and gives up if the gate is archived.  Archive takes the same lock, marks the
gate archived, stops the session and deletes the row before releasing it;
so a write either finished before archive began, or sees ``archived``.

Writes are also monotonic: a snapshot whose revision is not newer than the
last one saved is skipped, so a slow turn save can never overwrite a newer
checkpoint, and a change that keeps the message count is still saved
(window 4 of the seed compared counts).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import trio

from .._errors import SessionError, SessionStoreError
from .._seams import SchedulingPoints
from .._types import Session, SessionId
from ..store._base import SessionStore

log = logging.getLogger("meerkat_ref.checkpoint")


class CheckpointerGate:
    """Per-session gate.  ``armed`` is for checkpoints only; ``archived`` stops all writes."""

    def __init__(self, points: SchedulingPoints) -> None:
        self.lock = trio.Lock()
        self.archived = False
        self.armed = True
        self.saved_revision = -1
        self.session_id: SessionId | None = None
        self._points = points

    async def acquire(self) -> None:
        # A scheduling point before the lock: Trio hands locks off fairly, so
        # without it the hand-off order would hide interleavings from the explorer.
        await self._points.point("gate.acquire", self.session_id)
        await self.lock.acquire()

    @contextlib.asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        """``async with gate.held():`` -- the lock, released however the block ends."""
        await self.acquire()
        try:
            yield
        finally:
            self.lock.release()

    def unchanged(self, session: Session) -> bool:
        """Whether ``session`` is not newer than the last save (revisions: see window 4)."""
        return session.revision <= self.saved_revision

    def remember(self, session: Session) -> None:
        """Called with every session this gate saved."""
        self.saved_revision = session.revision

    async def write(self, store: SessionStore, session: Session, *, checkpoint: bool) -> bool:
        """Save ``session`` unless archived (or, for a checkpoint, disarmed) or not newer.

        Returns whether it saved.  Switch points: the gate acquisition and the
        store call.  Store failures raise ``SessionStoreError``.
        """
        async with self.held():
            if self.archived or (checkpoint and not self.armed) or self.unchanged(session):
                return False
            try:
                await store.save(session)
            except SessionError:
                raise
            except Exception as exc:
                raise SessionStoreError(
                    f"store save failed for {session.id}: {exc}", session_id=session.id
                ) from exc
            self.remember(session)
            return True


class StoreCheckpointer:
    """What a host loop calls after each interaction.  Never raises a store failure."""

    def __init__(self, store: SessionStore, gate: CheckpointerGate) -> None:
        self.store = store
        self.gate = gate

    async def checkpoint(self, session: Session) -> None:
        try:
            await self.gate.write(self.store, session, checkpoint=True)
        except SessionError as exc:
            # A failed save must not kill the host loop (upstream: logged, not raised).
            log.warning("host-mode checkpoint failed for %s: %s", session.id, exc)
