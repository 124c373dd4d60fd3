"""The controlled scheduler: the seam object that parks tasks, and the loop that picks one.

How it works.  ``ControlledPoints`` is a ``SchedulingPoints``: a task that
reaches a point registers what it is about to do (kind, session) and waits
on its own event.  The controller waits until every other task is blocked
(``trio.testing.wait_all_tasks_blocked``): the tasks parked at points are
then exactly the ones that could run next, and the strategy picks one.  Only
that task is released; it runs until its next point (or until it blocks on a
lock, a channel, a reply), and the loop repeats.

So any ready task may be chosen any number of times in a row: the schedule
is the explorer's, not Trio's.  Trio's own randomised scheduling only
shuffles each batch of runnable tasks, which cannot produce "the turn
exports; archive runs to completion; the turn saves".

A schedule is the list of choices, each naming the released task by its
label (its Trio task name, made unique in order of first appearance), plus
whether the step was made to fail (a store fault) or whether the process
crashed there.  Replaying the same choices reproduces the run exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import trio
import trio.testing

from .._errors import SessionStoreError
from .._types import SessionId


class Aborted(Exception):
    """A strategy gave up on this run (pruned as redundant)."""


@dataclass
class Parked:
    """A task waiting at a scheduling point."""

    task: trio.lowlevel.Task
    label: str
    kind: str
    session: str | None
    session_id: SessionId | None = None
    event: trio.Event = field(default_factory=trio.Event)
    fault: bool = False

    @property
    def faultable(self) -> bool:
        return self.kind.startswith("store.") and self.kind != "store.list"

    def describe(self) -> str:
        where = f" {self.session}" if self.session else ""
        return f"{self.kind}{where}"


@dataclass(frozen=True)
class Choice:
    """One decision: release ``label`` (failing its store call if ``fault``), or crash."""

    label: str = ""
    fault: bool = False
    crash: bool = False

    def to_json(self) -> object:
        if self.crash:
            return {"crash": True}
        if self.fault:
            return {"run": self.label, "fault": True}
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
                return Choice(run, fault=bool(value.get("fault", False)))
        raise ValueError(f"not a schedule choice: {value!r}")


class ControlledPoints:
    """The explorer's ``SchedulingPoints``: every point parks until released."""

    def __init__(self) -> None:
        self.parked: dict[trio.lowlevel.Task, Parked] = {}
        self.enabled = False
        self._labels: dict[trio.lowlevel.Task, str] = {}
        self._used: dict[str, int] = {}

    def label_of(self, task: trio.lowlevel.Task) -> str:
        label = self._labels.get(task)
        if label is None:
            n = self._used.get(task.name, 0) + 1
            self._used[task.name] = n
            label = task.name if n == 1 else f"{task.name}#{n}"
            self._labels[task] = label
        return label

    async def point(self, kind: str, session_id: SessionId | None = None) -> None:
        if not self.enabled:
            await trio.lowlevel.checkpoint()
            return
        task = trio.lowlevel.current_task()
        short = session_id.short() if session_id else None
        parked = Parked(task, self.label_of(task), kind, short, session_id)
        self.parked[task] = parked
        try:
            await parked.event.wait()
        finally:
            self.parked.pop(task, None)
        if parked.fault:
            raise SessionStoreError(f"injected fault at {kind}", session_id=session_id)

    def ready(self) -> list[Parked]:
        return sorted(self.parked.values(), key=lambda p: p.label)

    def release(self, choice: Choice) -> Parked:
        for parked in self.parked.values():
            if parked.label == choice.label:
                del self.parked[parked.task]
                parked.fault = choice.fault
                parked.event.set()
                return parked
        ready = ", ".join(p.label for p in self.ready()) or "none"
        raise ScheduleDiverged(f"no task {choice.label!r} is ready (ready: {ready})")


class ScheduleDiverged(Exception):
    """A replayed schedule named a task that is not ready: the code or scenario changed."""


async def quiesce() -> None:
    """Wait until every other task is blocked (parked, or waiting on something)."""
    await trio.testing.wait_all_tasks_blocked()
