"""Bad ports: the reference with one event-stream bug planted ([EVENTS]).

Each bug is a class of the survivors the mutation run left in
``meerkat_ref/agent/_events.py`` when no judge observed events
(``benchmarks/mutation-equivalents.toml``), written out as a copy of the
method with the bug in it.  ``tests/test_event_oracle.py`` plants each in
process (``plant`` with pytest's ``monkeypatch.setattr``) for ``check``, and
runs this file as an adapter for ``conform``:

    python tests/ports/event_bugs.py BUG [--capabilities LIST]

BUG is one of ``BUGS``:

starts-closed      every stream starts closed: a subscriber reads nothing, and its stream
                   ends at once
lagged-from-one    a stream's lagged count starts at 1, not 0
lagged-twice       each event a slow subscriber loses counts 2 in lagged
drops-late         a stream drops its oldest event only once it holds more than its
                   capacity (257 kept, not 256)
never-closed       closing a stream does not mark it closed: it never ends
reader-waits       the reader waits while events are buffered, and takes one when none is
publish-to-none    publish reaches no subscriber
close-ends-none    closing a session's broadcast ends none of its streams
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Callable
from typing import Any

import trio

from meerkat_ref.agent._events import AgentEvent, EventBroadcast, EventStream

Setattr = Callable[[Any, str, Any], None]


def _init(closed: bool, lagged: int) -> Callable[[EventStream, int], None]:
    def __init__(self: EventStream, capacity: int) -> None:
        self._buffer = deque[AgentEvent]()
        self._capacity = capacity
        self._closed = closed
        self._wakeup = trio.Event()
        self.lagged = lagged

    return __init__


def _push(late: bool, count: int) -> Callable[[EventStream, AgentEvent], None]:
    def _push(self: EventStream, event: AgentEvent) -> None:
        if self._closed:
            return
        full = len(self._buffer) > self._capacity if late else (
            len(self._buffer) >= self._capacity)
        if full:
            self._buffer.popleft()
            self.lagged += count
        self._buffer.append(event)
        self._wakeup.set()

    return _push


def _close_unmarked(self: EventStream) -> None:
    self._wakeup.set()  # the bug: never marked closed


async def _anext_waits(self: EventStream) -> AgentEvent:
    while self._buffer:  # the bug: ``while not self._buffer``
        if self._closed:
            raise StopAsyncIteration
        self._wakeup = trio.Event()
        await self._wakeup.wait()
    return self._buffer.popleft()


def _publish_to_none(self: EventBroadcast, event: AgentEvent) -> None:
    for stream in list[EventStream]():  # the bug: no subscriber
        stream._push(event)


def _close_none(self: EventBroadcast) -> None:
    self._closed = True
    self._streams.clear()  # the bug: its streams are never closed


BUGS: dict[str, tuple[tuple[type, str, Callable[..., Any]], ...]] = {
    "starts-closed": ((EventStream, "__init__", _init(closed=True, lagged=0)),),
    "lagged-from-one": ((EventStream, "__init__", _init(closed=False, lagged=1)),),
    "lagged-twice": ((EventStream, "_push", _push(late=False, count=2)),),
    "drops-late": ((EventStream, "_push", _push(late=True, count=1)),),
    "never-closed": ((EventStream, "_close", _close_unmarked),),
    "reader-waits": ((EventStream, "__anext__", _anext_waits),),
    "publish-to-none": ((EventBroadcast, "publish", _publish_to_none),),
    "close-ends-none": ((EventBroadcast, "close", _close_none),),
}
"""Each bug: the methods it replaces (class, name, the copy with the bug)."""


def plant(bug: str, setattr: Setattr = setattr) -> None:
    """Replace the methods ``bug`` changes (``setattr``: pytest's, to undo it after a test)."""
    for owner, name, method in BUGS[bug]:
        setattr(owner, name, method)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in BUGS:
        print(f"usage: event_bugs.py {{{'|'.join(BUGS)}}} [adapter options]", file=sys.stderr)
        return 2
    plant(argv[0])
    from meerkat_ref.adapter import main as adapter

    return adapter(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
