"""LINEARIZABLE (``spec/CONTRACT.md``): the history agrees with the concurrent model."""

from __future__ import annotations

from .._linearize import check as check_history
from ._base import Rule


class Linearizable(Rule):
    """(after the run, ``_linearize``) some real-time order of the calls gets every
    call's outcome from the model."""

    clause = "LINEARIZABLE"
    wire = (
        "some real-time order of the calls gets every call's outcome from the model "
        "(`meerkat_ref/oracle/engine/_linearize.py`, with its documented relaxations)"
    )
    evidence = ("wire",)
    order = 110

    def read_back(self) -> None:
        monitor = self.monitor
        problem = check_history(monitor.events, monitor.capacity)
        if problem is not None:
            self.violate(problem[1], step=problem[0])
            monitor.violations.sort(key=lambda v: v.step)  # found at the end, cited where it is
