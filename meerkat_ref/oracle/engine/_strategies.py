"""Strategies: who runs next.  Each is a small object with one method, ``choose``.

A strategy sees the ready points (tasks parked at scheduling points, and
clients ready to make their next call at ``client.call``) and the budget of
faults and crashes left, and returns a ``Choice``.  It never sees the target.

- ``RandomStrategy``: uniform over ready tasks; faults and crashes with small odds.
- ``PCTStrategy``: probabilistic concurrency testing (Burckhardt et al., 2010):
  random task priorities, ``depth - 1`` random change points at which the
  running task drops to the lowest priority; always run the highest ready.
  Finds any bug of depth ``d`` with probability at least ``1/(n k^(d-1))``.
- ``ReplayStrategy``: follow a recorded schedule; ``lenient`` follows it where
  the target lets it (a port with other scheduling points) and says whether
  the replay was exact.
- ``HypothesisStrategy``: every choice drawn from Hypothesis, so a failing
  schedule shrinks (the draws shrink towards "first ready task, no fault").
- Exhaustive search lives in ``_search.py``; it drives ``GuidedStrategy``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..targets import Point


class Aborted(Exception):
    """A strategy gave up on this run (pruned as redundant)."""


class ScheduleDiverged(Exception):
    """A replayed schedule named a task that is not ready: the code or scenario changed."""


@dataclass
class Budget:
    """Faults and crashes the strategy may still inject in this run."""

    faults: int = 0
    crashes: int = 0
    cancels: int = 0


@dataclass(frozen=True)
class Choice:
    """One decision: release ``label`` (failing its store call if ``fault``; cancelling its
    caller where it waits if ``cancel``, [CALLER-CANCEL]), or crash."""

    label: str = ""
    fault: bool = False
    crash: bool = False
    cancel: bool = False

    def to_json(self) -> object:
        if self.crash:
            return {"crash": True}
        if self.fault:
            return {"run": self.label, "fault": True}
        if self.cancel:
            return {"run": self.label, "cancel": True}
        return self.label

    @staticmethod
    def from_json(value: object) -> Choice:
        if isinstance(value, str):
            return Choice(value)
        if isinstance(value, dict):
            if value.get("crash") is True:
                return Choice(crash=True)
            run = value.get("run")
            if isinstance(run, str):
                return Choice(run, fault=bool(value.get("fault", False)),
                              cancel=bool(value.get("cancel", False)))
        raise ValueError(f"not a schedule choice: {value!r:.80}")


class Strategy(Protocol):
    def choose(self, step: int, ready: Sequence[Point], budget: Budget) -> Choice: ...


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
        return Choice(point.task, fault=fault)


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
        return Choice(best.task, fault=fault)


class ReplayStrategy:
    """Follow ``choices``.

    Exact (the default): a recorded task that is not ready raises
    ``ScheduleDiverged``.  ``lenient``: take the recorded task if ready, else
    the first later recorded task that is, else the first ready task (by
    label) -- for replaying one implementation's schedule on another whose
    scheduling points differ; ``exact`` then says whether it ever had to.
    Past the recorded end, the first ready task runs.
    """

    def __init__(self, choices: Sequence[Choice], *, lenient: bool = False) -> None:
        self._choices = list(choices)
        self._lenient = lenient
        self._at = 0
        self.exact = True

    def choose(self, step: int, ready: Sequence[Point], budget: Budget) -> Choice:
        labels = {p.task for p in ready}
        if not self._lenient:
            if self._at < len(self._choices):
                choice = self._choices[self._at]
                self._at += 1
                return choice
            return Choice(ready[0].task)
        for i in range(self._at, len(self._choices)):
            choice = self._choices[i]
            if choice.crash or choice.label in labels:
                if i != self._at:
                    self.exact = False
                self._at = i + 1
                if choice.fault and not any(p.task == choice.label and p.faultable for p in ready):
                    self.exact = False
                    return Choice(choice.label)
                return choice
        if self._at < len(self._choices):
            self.exact = False
        self._at = len(self._choices)
        return Choice(sorted(labels)[0])


class HypothesisStrategy:
    """Each choice is ``data.draw(...)``: Hypothesis shrinks the schedule itself."""

    def __init__(self, data: Any) -> None:
        from hypothesis import strategies as st

        self._data = data
        self._st = st

    def choose(self, step: int, ready: Sequence[Point], budget: Budget) -> Choice:
        st = self._st
        if budget.crashes > 0 and self._data.draw(st.integers(0, 19), label="crash?") == 19:
            return Choice(crash=True)
        index = self._data.draw(st.integers(0, len(ready) - 1), label=f"step {step}")
        point = ready[index]
        fault = False
        if point.faultable and budget.faults > 0:
            fault = self._data.draw(st.integers(0, 4), label="fault?") == 4
        return Choice(point.task, fault=fault)


__all__ = [
    "Aborted",
    "Budget",
    "Choice",
    "HypothesisStrategy",
    "PCTStrategy",
    "RandomStrategy",
    "ReplayStrategy",
    "ScheduleDiverged",
    "Strategy",
]
