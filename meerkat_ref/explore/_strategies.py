"""Strategies: who runs next.  Each is a small object with one method, ``choose``.

- ``RandomStrategy``: uniform over ready tasks; faults and crashes with small odds.
- ``PCTStrategy``: probabilistic concurrency testing (Burckhardt et al., 2010):
  random task priorities, ``depth - 1`` random change points at which the
  running task drops to the lowest priority; always run the highest ready.
  Finds any bug of depth ``d`` with probability at least ``1/(n k^(d-1))``.
- ``ReplayStrategy``: follow a recorded schedule, step for step.
- ``HypothesisStrategy``: every choice drawn from Hypothesis, so a failing
  schedule shrinks (the draws shrink towards "first ready task, no fault").
- Bounded-exhaustive search lives in ``_dfs.py``; it drives ``GuidedStrategy``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from ._control import Aborted, Choice, Parked
from ._runner import Budget


class RandomStrategy:
    def __init__(self, seed: int, fault_odds: float = 0.05, crash_odds: float = 0.02) -> None:
        self._rng = random.Random(seed)
        self._fault_odds = fault_odds
        self._crash_odds = crash_odds

    def choose(self, step: int, ready: Sequence[Parked], budget: Budget) -> Choice:
        if budget.crashes > 0 and self._rng.random() < self._crash_odds:
            return Choice(crash=True)
        parked = self._rng.choice(list(ready))
        fault = parked.faultable and budget.faults > 0 and self._rng.random() < self._fault_odds
        return Choice(parked.label, fault=fault)


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

    def choose(self, step: int, ready: Sequence[Parked], budget: Budget) -> Choice:
        if budget.crashes > 0 and step == self._crash_at:
            return Choice(crash=True)
        for parked in ready:
            if parked.label not in self._priority:
                self._priority[parked.label] = 1_000 + self._rng.random()
        if step in self._changes and self._last is not None:
            self._priority[self._last] = -self._changes[step]  # drop below every fresh task
        best = max(ready, key=lambda p: self._priority[p.label])
        self._last = best.label
        fault = best.faultable and budget.faults > 0 and step >= self._fault_at
        return Choice(best.label, fault=fault)


class ReplayStrategy:
    """Follows ``choices``; a schedule that names a task that is not ready raises."""

    def __init__(self, choices: Sequence[Choice]) -> None:
        self._choices = list(choices)

    def choose(self, step: int, ready: Sequence[Parked], budget: Budget) -> Choice:
        if step < len(self._choices):
            return self._choices[step]
        # Past the recorded end (a schedule cut short): run the first ready task.
        return Choice(ready[0].label)


class HypothesisStrategy:
    """Each choice is ``data.draw(...)``: Hypothesis shrinks the schedule itself."""

    def __init__(self, data: Any) -> None:
        from hypothesis import strategies as st

        self._data = data
        self._st = st

    def choose(self, step: int, ready: Sequence[Parked], budget: Budget) -> Choice:
        st = self._st
        if budget.crashes > 0 and self._data.draw(st.integers(0, 19), label="crash?") == 19:
            return Choice(crash=True)
        index = self._data.draw(st.integers(0, len(ready) - 1), label=f"step {step}")
        parked = ready[index]
        fault = False
        if parked.faultable and budget.faults > 0:
            fault = self._data.draw(st.integers(0, 4), label="fault?") == 4
        return Choice(parked.label, fault=fault)


class GuidedStrategy:
    """Follow a prefix, then continue without preempting; skip sleeping tasks.

    Used by the bounded-exhaustive search.  ``sleep`` holds the next steps
    (label, kind, session) already covered by a sibling branch; a sleeping
    task stays asleep until a dependent step runs.
    """

    def __init__(
        self, prefix: Sequence[Choice], sleep: frozenset[tuple[str, str, str | None]]
    ) -> None:
        self.prefix = list(prefix)
        self.sleep: set[tuple[str, str, str | None]] = set(sleep)
        self.sleeps: list[frozenset[tuple[str, str, str | None]]] = []
        self._last: str | None = None

    def choose(self, step: int, ready: Sequence[Parked], budget: Budget) -> Choice:
        from ._dfs import dependent

        self.sleeps.append(frozenset(self.sleep))
        if step < len(self.prefix):
            choice = self.prefix[step]
        else:
            awake = [p for p in ready if (p.label, p.kind, p.session) not in self.sleep]
            if not awake:
                raise Aborted("every ready task is asleep: this schedule is covered elsewhere")
            same = [p for p in awake if p.label == self._last]
            choice = Choice((same or awake)[0].label)
        taken = next((p for p in ready if p.label == choice.label), None)
        if taken is not None:
            step_desc = (taken.label, taken.kind, taken.session)
            self.sleep = {
                s
                for s in self.sleep
                if not dependent(s, step_desc, choice.fault) and s[0] != taken.label
            }
        if choice.crash:
            self.sleep = set()
        self._last = choice.label
        return choice
