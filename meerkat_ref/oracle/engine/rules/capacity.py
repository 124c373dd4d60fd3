"""CAPACITY (2.2 of ``spec/CONTRACT.md``): never more sessions live than the capacity."""

from __future__ import annotations

from ...._model import model
from ...targets import Answer, Introspection
from .._calls import Call
from .._labels import short
from ._base import Rule


class Capacity(Rule):
    """Sessions known live (their create answered ok, not archived, no restart
    since) never exceed the capacity (wire); session tasks alive never exceed it
    (inside)."""

    clause = "CAPACITY"
    wire = (
        "sessions whose create answered ok, not archived, no restart since, never exceed the "
        "capacity"
    )
    evidence = ("wire", "inside")
    order = 60
    orders = ("create", "archive")  # the sessions known live: creates and archives answered

    def answer(self, call: Call, answer: Answer) -> None:
        # the monitor has added the session to ``known_live`` already
        if answer.ok and call.name == "create" and isinstance(call.value, model.RunResult):
            live, capacity = self.monitor.known_live, self.monitor.capacity
            if len(live) > capacity:
                shown = ", ".join(sorted(short(s) for s in live))
                self.violate(f"{len(live)} sessions live at once ({shown}), capacity {capacity}")

    def inside(self, intro: Introspection) -> None:
        if len(intro.running_tasks) > self.monitor.capacity:
            self.violate(
                f"{len(intro.running_tasks)} session tasks alive, max {self.monitor.capacity}",
            )
