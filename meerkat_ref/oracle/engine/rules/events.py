"""EVENTS (3.8 of ``spec/CONTRACT.md``): each session's event stream is one the contract allows."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...._model import model
from ...targets import Introspection
from .._event_streams import stream_problem
from .._labels import short
from ._base import Rule

if TYPE_CHECKING:
    from .._monitor import Monitor


class Events(Rule):
    """(inside only, so not in ``RULES``: a port's streams are checked by
    ``conform``'s sequential vectors) each session's event stream, read at every
    step, is one the contract allows for the calls that ran (``_event_streams``):
    each turn's events in order and complete, RUN_CANCELLED only for an interrupt,
    the stream ended exactly when the task did."""

    clause = "EVENTS"
    evidence = ("inside",)
    order = 90
    orders = ("create", "start_turn")  # the turns answered, each with its events
    listed = False

    def __init__(self, monitor: Monitor) -> None:
        super().__init__(monitor)
        self._checked: dict[str, tuple[model.News, bool, int]] = {}

    def inside(self, intro: Introspection) -> None:
        """Every session's stream so far is one its calls allow.

        A stream is judged again only when something its verdict reads changed:
        the stream (the target replaces a session's ``News`` when it reads more),
        whether its task runs, or the calls (one is invoked, answered, cancelled:
        ``Monitor.calls_changed``).
        """
        changed = self.monitor.calls_changed
        for sid, news in sorted(intro.events.items()):
            running = sid in intro.running_tasks
            last = self._checked.get(sid)
            if last is not None and last[0] is news and last[1:] == (running, changed):
                continue
            self._checked[sid] = (news, running, changed)
            calls = [c for c in self.monitor.history if c.session_id == sid or (
                isinstance(c.value, model.RunResult) and c.value.session_id == sid)]
            cancels = sum(c.name == "interrupt" and c.result in (None, "ok") for c in calls)
            turns = sum(isinstance(c.value, model.RunResult) and c.value.turns > 0
                        and not c.host for c in calls)
            problem = stream_problem(news, cancels=cancels, turns=turns, running=running)
            if problem is not None:
                self.violate(f"the event stream of {short(sid)}: {problem}")
