"""Store faults: a ``SessionStore`` wrapper whose writes fail the ways a real store's do.

Used by the soak with faults (``benchmarks/soak.py``, ``benchmarks/soak_kill.py``)
and by the tests of [SAVE-FAILED] and [STORE-FAILURE].  Three kinds:

``save-fails``
    One save raises ``OSError(EIO)``: an I/O error on that write alone.
``locked``
    The file is locked by another process: the write waits (a few
    scheduling points stand in for SQLite's busy timeout: no wall clock)
    and then raises ``sqlite3.OperationalError("database is locked")``.
``disk-full``
    The disk is full: this write and the next ``span - 1`` writes fail with
    ``OSError(ENOSPC)``, then space is back.

Saves and deletes can fail (a ``delete`` fails only ``locked`` or
``disk-full``); reads (``load``, ``list``, ``exists``) never do: SQLite's
readers are not blocked by a writer in WAL mode, and a full disk still
reads.  Faults come from ``fail_next`` (in order, deterministic) or at
random (``rate``, from ``random.Random(seed)``).  Only the public store API
is used, so the wrapper fits any store, whatever its writer does inside.
"""

from __future__ import annotations

import collections
import errno
import random
import sqlite3
from collections.abc import Awaitable, Callable

import trio

from meerkat_ref import Session, SessionFilter, SessionId, SessionMeta
from meerkat_ref.store import SessionStore

KINDS = ("save-fails", "locked", "disk-full")
LOCK_WAIT_POINTS = 3
"""Scheduling points a locked write waits before it gives up (the busy timeout)."""


class FaultyStore:
    """``inner`` with failing writes; see the module docstring."""

    def __init__(self, inner: SessionStore, *, rate: float = 0.0, seed: int = 0,
                 span: int = 4, on_fault: Callable[[str, str], None] | None = None) -> None:
        if not 0 <= rate <= 1 or span < 1:
            raise ValueError("rate must be in [0, 1] and span at least 1")
        self.inner = inner
        self.on_fault = on_fault  # called with (kind, write) as each fault is injected
        self.rate = rate
        self.span = span
        self.rng = random.Random(seed)
        self.injected: collections.Counter[str] = collections.Counter()  # kind -> faults
        self.failed_writes: collections.Counter[str] = collections.Counter()  # save/delete
        self.writes = 0  # write calls made (failed or not)
        self.spells = 0  # times the disk filled up (each refuses ``span`` writes)
        self._queued: list[str] = []
        self._full = 0  # writes the full disk still refuses

    def fail_next(self, kind: str = "save-fails", count: int = 1) -> None:
        """The next ``count`` writes fail with ``kind`` (before any random fault)."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        self._queued += [kind] * count

    def _draw(self, write: str) -> str | None:
        if self._queued:
            return self._queued.pop(0)
        if self._full:
            self._full -= 1
            return "disk-full"
        if self.rate and self.rng.random() < self.rate:
            kinds = KINDS if write == "save" else KINDS[1:]
            kind = self.rng.choice(kinds)
            if kind == "disk-full":
                self._full = self.span - 1
                self.spells += 1
            return kind
        return None

    async def _write(self, write: str, run: Callable[[], Awaitable[None]]) -> None:
        self.writes += 1
        kind = self._draw(write)
        if kind is None:
            await run()
            return
        self.injected[kind] += 1
        self.failed_writes[write] += 1
        if self.on_fault is not None:
            self.on_fault(kind, write)
        if kind == "locked":
            for _ in range(LOCK_WAIT_POINTS):
                await trio.lowlevel.checkpoint()
            raise sqlite3.OperationalError("database is locked")
        await trio.lowlevel.checkpoint()
        if kind == "disk-full":
            raise OSError(errno.ENOSPC, "No space left on device")
        raise OSError(errno.EIO, "Input/output error")

    @property
    def faults(self) -> int:
        """Writes that failed, all kinds."""
        return sum(self.failed_writes.values())

    async def save(self, session: Session) -> None:
        await self._write("save", lambda: self.inner.save(session))

    async def delete(self, session_id: SessionId) -> None:
        await self._write("delete", lambda: self.inner.delete(session_id))

    async def load(self, session_id: SessionId) -> Session | None:
        return await self.inner.load(session_id)

    async def list(self, filter: SessionFilter = SessionFilter()) -> list[SessionMeta]:
        return await self.inner.list(filter)

    async def exists(self, session_id: SessionId) -> bool:
        return await self.inner.exists(session_id)


__all__ = ["KINDS", "LOCK_WAIT_POINTS", "FaultyStore"]
