"""Random scheduling as a scheduler: each run uniform over the ready tasks, seeded.

Faults and crashes are injected with small odds where the scenario allows
them.  The cheapest sampler, and a baseline for PCT; it claims nothing
beyond the runs it made.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from ..targets import Point
from ._scheduler import SeededScheduler
from ._strategies import Budget, Choice, Strategy


class RandomStrategy:
    def __init__(self, seed: int, fault_odds: float = 0.05, crash_odds: float = 0.02) -> None:
        self._rng = random.Random(seed)
        self._fault_odds = fault_odds
        self._crash_odds = crash_odds

    def choose(self, step: int, ready: Sequence[Point], budget: Budget) -> Choice:
        if budget.crashes > 0 and self._rng.random() < self._crash_odds:
            return Choice(crash=True)
        point = self._rng.choice(list(ready))
        fault = point.faultable and budget.faults > 0 and self._rng.random() < self._fault_odds
        kind = self._rng.choice(("", *budget.fault_kinds)) if fault else ""
        return Choice(point.task, fault=fault, kind=kind)


class RandomScheduler(SeededScheduler):
    """``runs`` uniformly random runs, seeded ``seed``, ``seed + step``, ..."""

    name = "random"
    about = "uniformly random schedules: runs seeded runs"

    def strategy(self, seed: int) -> Strategy:
        return RandomStrategy(seed)


__all__ = ["RandomScheduler", "RandomStrategy"]
