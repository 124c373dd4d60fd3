"""PCT: probabilistic concurrency testing (Burckhardt et al., ASPLOS 2010), as a scheduler.

Random task priorities, ``depth - 1`` random change points at which the
running task drops to the lowest priority; always run the highest ready.
A run finds any bug of depth ``d`` with probability at least
``1/(n k^(d-1))`` (``n`` tasks, ``k`` steps), so ``runs`` seeded runs find
it with the odds that compounds to; nothing is claimed beyond the runs made.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import ClassVar

from ..targets import Point
from ._scheduler import Param, SeededScheduler
from ._strategies import Budget, Choice, Strategy


class PCTStrategy:
    def __init__(self, seed: int, depth: int = 3, expected_steps: int = 60) -> None:
        if depth < 1:
            raise ValueError("PCT depth must be at least 1")
        self._rng = random.Random(seed)
        self._priority: dict[str, float] = {}
        self._changes = {self._rng.randint(1, expected_steps): i for i in range(1, depth)}
        self._last: str | None = None
        self._fault_at = self._rng.randint(0, expected_steps)
        self._crash_at = self._rng.randint(1, expected_steps)

    def choose(self, step: int, ready: Sequence[Point], budget: Budget) -> Choice:
        if budget.crashes > 0 and step == self._crash_at:
            return Choice(crash=True)
        for point in ready:
            if point.task not in self._priority:
                self._priority[point.task] = 1_000 + self._rng.random()
        if step in self._changes and self._last is not None:
            self._priority[self._last] = -self._changes[step]  # drop below every fresh task
        best = max(ready, key=lambda p: self._priority[p.task])
        self._last = best.task
        fault = best.faultable and budget.faults > 0 and step >= self._fault_at
        kind = self._rng.choice(("", *budget.fault_kinds)) if fault else ""
        return Choice(best.task, fault=fault, kind=kind)


class PctScheduler(SeededScheduler):
    """``runs`` PCT runs of depth ``depth``, seeded ``seed``, ``seed + step``, ..."""

    name = "pct"
    about = "probabilistic concurrency testing: runs seeded runs of bug depth depth"
    params: ClassVar[tuple[Param, ...]] = (
        *SeededScheduler.params,
        Param("depth", "int", 3, "the bug depth aimed at (priority change points + 1)", 1),
        Param("steps", "int", 60, "the run length the change points are drawn within", 1),
    )

    def __init__(self, runs: int = 100, seed: int = 1, step: int = 1, depth: int = 3,
                 steps: int = 60) -> None:
        super().__init__(runs, seed, step)
        self.depth, self.steps = depth, steps

    @property
    def label(self) -> str:
        return f"pct(depth={self.depth})"

    def strategy(self, seed: int) -> Strategy:
        return PCTStrategy(seed, depth=self.depth, expected_steps=self.steps)


__all__ = ["PCTStrategy", "PctScheduler"]
