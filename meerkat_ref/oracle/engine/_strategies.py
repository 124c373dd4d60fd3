"""Strategies: who runs next.  Each is a small object with one method, ``choose``.

A strategy sees the ready points (tasks parked at scheduling points, and
clients ready to make their next call at ``client.call``) and the budget of
faults and crashes left, and returns a ``Choice``.  It never sees the target.
A strategy drives one run; a *scheduler* (``_scheduler``) hands out one
strategy per run, and each scheduler lives in a file of its own with the
strategy it uses: ``_dpor`` (``DporRun``), ``_search`` (``GuidedStrategy``),
``_pct``, ``_random``, ``_replay``, ``_hypothesis``.  Here: what they share.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ..targets import Point


class Aborted(Exception):
    """A strategy gave up on this run (pruned as redundant)."""


class ScheduleDiverged(Exception):
    """A replayed schedule named a task that is not ready: the code or scenario changed."""


@dataclass
class Budget:
    """Faults and crashes the strategy may still inject in this run, and the ways a store
    call may fail beside the target's plain fault (``Target.fault_kinds``)."""

    faults: int = 0
    crashes: int = 0
    cancels: int = 0
    fault_kinds: tuple[str, ...] = ()


@dataclass(frozen=True)
class Choice:
    """One decision: release ``label`` (failing its store call if ``fault``, the way
    ``kind`` names, or the target's plain way if none; cancelling its caller where it
    waits if ``cancel``, [CALLER-CANCEL]), or crash."""

    label: str = ""
    fault: bool = False
    crash: bool = False
    cancel: bool = False
    kind: str = ""  # with ``fault``: one of ``Target.fault_kinds``; "" the plain fault

    def to_json(self) -> object:
        if self.crash:
            return {"crash": True}
        if self.fault:
            return {"run": self.label, "fault": True, **({"kind": self.kind} if self.kind else {})}
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
            kind = value.get("kind", "")
            if isinstance(run, str) and isinstance(kind, str):
                fault = bool(value.get("fault", False))
                return Choice(run, fault=fault, cancel=bool(value.get("cancel", False)),
                              kind=kind if fault else "")
        raise ValueError(f"not a schedule choice: {value!r:.80}")


class Strategy(Protocol):
    def choose(self, step: int, ready: Sequence[Point], budget: Budget) -> Choice: ...


__all__ = [
    "Aborted",
    "Budget",
    "Choice",
    "ScheduleDiverged",
    "Strategy",
]
