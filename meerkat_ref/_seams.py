"""The seams the service is reached through: clock and scheduling points.

The service never imports the explorer.  Instead every place where an
interleaving matters calls ``await points.point(kind, session_id)`` on an
injected ``SchedulingPoints``.  In production that is ``TrioPoints``: one Trio
checkpoint, nothing more.  The explorer (issue 4) passes its own object,
which parks the calling task until it chooses to release it.

The point kinds the reference uses, what each precedes, and the exact
sequence each call passes are listed once, in ``service/_placement.py``
(normative for ports: ``spec/ADAPTER.md`` section 6 is generated from it,
and a test runs every row against the reference).
"""

from __future__ import annotations

import time
from typing import Protocol

import trio

from ._types import SessionId, Timestamp


class Clock(Protocol):
    """Where timestamps come from.  Read once per session change, never more."""

    def now(self) -> Timestamp: ...


class SystemClock:
    """Wall-clock microseconds, forced strictly increasing within a process.

    Strictly increasing keeps ``updated_at`` a total order on changes, so list
    order never depends on ties.
    """

    def __init__(self) -> None:
        self._last = 0

    def now(self) -> Timestamp:
        value = max(time.time_ns() // 1000, self._last + 1)
        self._last = value
        return value


class LogicalClock:
    """A counter: each read returns the next tick.  Used by tests and the model."""

    def __init__(self, start: int = 0) -> None:
        self._next = start + 1

    def now(self) -> Timestamp:
        value = self._next
        self._next += 1
        return value

    def peek(self) -> Timestamp:
        """The tick the next ``now()`` will return (does not advance)."""
        return self._next


class SchedulingPoints(Protocol):
    """Called before every step whose order relative to other tasks matters."""

    async def point(self, kind: str, session_id: SessionId | None = None) -> None: ...


class TrioPoints:
    """Production seam: a plain Trio checkpoint (a cancel point and a yield)."""

    async def point(self, kind: str, session_id: SessionId | None = None) -> None:
        await trio.lowlevel.checkpoint()


DEFAULT_POINTS: SchedulingPoints = TrioPoints()
