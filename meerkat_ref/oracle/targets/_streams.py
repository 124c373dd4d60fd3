"""Every session's event stream, subscribed as the session registers, read at each settle.

Capability ``events`` of a target in this process (clause EVENTS of
``spec/CONTRACT.md``; ``spec/ADAPTER.md`` section 13 for the wire).

Subscribing.  A subscription sees only what is published after it (no
replay), and the contract makes a session subscribable from its
registration, before its first turn.  So one task of the target waits on the
service's ``wait_session_registered()``, which the service wakes in the very
step that registers a session, before the session's own task has run; woken,
it subscribes to every live session it has not subscribed to yet (several
may register before it runs) and waits again, with no checkpoint between its
last look at the live sessions and the wait, so no registration slips past.
Under the oracle's control it has subscribed before anything is released (a
settle waits for it); run free, it subscribes two Trio scheduling batches
after the registration, while the session's first event comes three at the
earliest (the turn is handed to the session's task, taken up, and a point is
passed before ``RUN_STARTED``).  The task lives beside the service, not in
its task tree (spawned with ``start_soon`` from there), so the footprint
recorder does not count it as the service's (a subscription only adds a
reader: nothing the service decides reads it).

Reading.  Only at a settle, through the stream's own async iterator, never
waiting (a cancelled scope ends the read where nothing is buffered), so a
session that published more than a stream holds between two settles shows
the loss (``lagged``) as a reader that slow would see it, and a stream that
ended says so (``StopAsyncIteration``).  A stream that fails to be read is
reported as one event of kind ``unreadable`` (no kind of the contract, so it
matches nothing the model says) and read no more.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import trio

from ..._errors import SessionError
from ..._model import model
from ...registry import _values as values

UNREADABLE = "unreadable"
"""The kind of the one event that stands for a stream whose reading raised."""


@dataclass
class _Open:
    stream: Any  # the service's EventStream
    lagged: int = 0  # its lagged count at the last read


async def _read_now(stream: Any) -> tuple[list[model.Event], bool]:
    """What ``stream`` holds now, without waiting; and whether it ended."""
    out: list[model.Event] = []
    with trio.CancelScope() as scope:
        scope.cancel()  # a read that would wait is cancelled where it waits, ending the loop
        while True:
            try:
                event = await stream.__anext__()
            except StopAsyncIteration:
                return out, True
            out.append(values.model_event(event.kind.value, event.text, event.usage))
    return out, False


class Subscriptions:
    """One target's subscriber: every session's stream, and what it read of each."""

    def __init__(self) -> None:
        self._open: dict[str, _Open] = {}
        self._scope: trio.CancelScope | None = None
        self._news: dict[str, model.News] = {}  # read since the last ``take``
        self.whole: dict[str, model.News] = {}  # read since registration, every process

    async def _watch(self, svc: Any, ready: trio.Event) -> None:
        known: set[str] = set()
        ready.set()
        while True:
            while fresh := sorted(str(s) for s in svc.statistics().live if str(s) not in known):
                for sid in fresh:
                    known.add(sid)
                    self.whole.setdefault(sid, model.News())
                    try:
                        stream = await svc.subscribe_session_events(sid)
                    except SessionError:  # archived before this task got to it: it ended
                        self._add(sid, [], 0, True)
                    else:
                        self._open[sid] = _Open(stream)
            await svc.wait_session_registered()

    async def start(self, nursery: trio.Nursery, svc: Any) -> None:
        """Subscribe to ``svc``'s sessions from now on, in a task of ``nursery``."""
        scope = trio.CancelScope()
        self._scope = scope

        async def watch() -> None:
            with scope:
                await self._watch(svc, ready)

        # start_soon, not start: a task ``start`` spawns is a child of the caller (the
        # service's process) until it has started, so the footprint recorder would count it
        # as the service's, and every step that woke it would touch everything.
        ready = trio.Event()
        nursery.start_soon(watch, name="event subscriber")
        await ready.wait()

    def _add(self, sid: str, events: list[model.Event], lagged: int, ended: bool) -> None:
        for book in (self._news, self.whole):
            old = book.get(sid, model.News())
            book[sid] = replace(old, events=old.events + tuple(events),
                                lagged=old.lagged + lagged, ended=old.ended or ended)

    async def collect(self) -> None:
        """Read every open stream (at quiescence: nothing else runs meanwhile)."""
        for sid, entry in list(self._open.items()):
            try:
                events, ended = await _read_now(entry.stream)
                lagged = entry.stream.lagged - entry.lagged
            except Exception as exc:  # a broken stream: say so, stop reading it
                del self._open[sid]
                self._add(sid, [model.Event(UNREADABLE, f"{type(exc).__name__}: {exc}")], 0,
                          False)
                continue
            entry.lagged += lagged
            if ended:
                del self._open[sid]
            if events or lagged or ended:
                self._add(sid, events, lagged, ended)

    def take(self) -> dict[str, model.News]:
        """What was read since the last ``take``, by session."""
        out, self._news = self._news, {}
        return dict(sorted(out.items()))

    def crash(self) -> None:
        """The process died: its subscriptions with it; their streams count as ended.

        What was read and not taken is lost, as a dead adapter's would be.
        """
        if self._scope is not None:
            self._scope.cancel()
            self._scope = None
        for sid in self._open:
            self.whole[sid] = replace(self.whole[sid], ended=True)
        self._open.clear()
        self._news.clear()


__all__ = ["UNREADABLE", "Subscriptions"]
