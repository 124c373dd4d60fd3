"""Agent events, and the per-session broadcast that carries them.

A subscriber may attach as soon as a session is registered, before its first
turn.  A slow subscriber lags (its oldest undelivered events are dropped and
counted) rather than blocking the session: an agent must never wait on a
reader.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass

import trio

from .._types import SessionId, Usage


class EventKind(enum.Enum):
    RUN_STARTED = "run_started"
    TEXT_COMPLETE = "text_complete"
    RUN_COMPLETED = "run_completed"
    RUN_CANCELLED = "run_cancelled"
    HOST_MESSAGE = "host_message"
    COMPACTED = "compacted"


@dataclass(frozen=True, slots=True)
class AgentEvent:
    kind: EventKind
    session_id: SessionId
    text: str = ""
    usage: Usage = Usage()


class EventStream:
    """One subscriber's view of a session's events; an async iterator.

    Ends when the session is archived or the service shuts down.  ``lagged``
    counts events dropped because this subscriber fell ``capacity`` behind.
    """

    def __init__(self, capacity: int) -> None:
        self._buffer: deque[AgentEvent] = deque()
        self._capacity = capacity
        self._closed = False
        self._wakeup = trio.Event()
        self.lagged = 0

    def _push(self, event: AgentEvent) -> None:
        if self._closed:
            return
        if len(self._buffer) >= self._capacity:
            self._buffer.popleft()
            self.lagged += 1
        self._buffer.append(event)
        self._wakeup.set()

    def _close(self) -> None:
        self._closed = True
        self._wakeup.set()

    def __aiter__(self) -> AsyncIterator[AgentEvent]:
        return self

    async def __anext__(self) -> AgentEvent:
        while not self._buffer:
            if self._closed:
                raise StopAsyncIteration
            self._wakeup = trio.Event()
            await self._wakeup.wait()
        return self._buffer.popleft()

    def drain(self) -> list[AgentEvent]:
        """Every event received so far, without waiting."""
        out = list(self._buffer)
        self._buffer.clear()
        return out


class EventBroadcast:
    """Fan-out of one session's events to every current subscriber."""

    def __init__(self, capacity: int = 256) -> None:
        self._capacity = capacity
        self._streams: list[EventStream] = []
        self._closed = False

    def subscribe(self) -> EventStream:
        stream = EventStream(self._capacity)
        if self._closed:
            stream._close()
        else:
            self._streams.append(stream)
        return stream

    def publish(self, event: AgentEvent) -> None:
        for stream in self._streams:
            stream._push(event)

    def close(self) -> None:
        self._closed = True
        for stream in self._streams:
            stream._close()
        self._streams.clear()
