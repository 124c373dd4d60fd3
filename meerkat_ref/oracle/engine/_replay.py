"""Replay as a scheduler: one recorded schedule, run again (``replay:file=PATH``).

The schedule file is the one ``check`` writes (``_schedule``).  Exact (the
default): a recorded task that is not ready is ``ScheduleDiverged``, the
code or the scenario changed.  ``lenient``: follow the recording where the
target lets it (a port with other scheduling points), and say whether the
replay was exact (``RunOutcome.exact``).  Explored over a scenario other
than the one the file records, it runs nothing and says so (``unchecked``).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..targets import Point, Target
from ._scenarios import Scenario
from ._schedule import load
from ._scheduler import Param, Scheduler, SearchReport
from ._strategies import Budget, Choice, Strategy


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


class ReplayScheduler(Scheduler):
    """One run: the schedule of ``file`` (or ``choices``, given in code), on its scenario."""

    name = "replay"
    about = "one recorded schedule run again (file: a schedule file check wrote)"
    params = (
        Param("file", "str", "", "the schedule file (meerkat-ref/schedule@1)"),
        Param("lenient", "bool", False, "follow it only where the target's points allow"),
    )

    def __init__(self, file: str = "", lenient: bool = False,
                 choices: Sequence[Choice] | None = None, scenario: str | None = None) -> None:
        if choices is None:
            if not file:
                raise ValueError("replay needs file=PATH, a schedule file check wrote")
            try:
                with open(file, encoding="utf-8") as fh:
                    recorded = load(fh.read())
            except OSError as exc:
                raise ValueError(f"replay: cannot read {file!r}: {exc.strerror}") from None
            except UnicodeDecodeError:
                raise ValueError(f"replay: {file!r} is not a schedule file") from None
            choices, scenario = recorded.choices, recorded.scenario
        self.choices = tuple(choices)
        self.scenario = scenario
        self.lenient = lenient
        self._left = 1

    def start(self, target: Target, scenario: Scenario, report: SearchReport) -> None:
        report.sampled = True
        if self.scenario is not None and scenario.name != self.scenario:
            self._left = 0
            report.unchecked = f"not run: the schedule replayed is one of scenario {self.scenario}"

    async def next_run(self) -> Strategy | None:
        if self._left <= 0:
            return None
        self._left -= 1
        return ReplayStrategy(self.choices, lenient=self.lenient)


__all__ = ["ReplayScheduler", "ReplayStrategy"]
