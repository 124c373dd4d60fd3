"""Footprints: what each step of a service in this process may touch, for partial-order reduction.

The explorer may skip reordering two steps only if they *commute*: neither
writes anything the other reads or writes.  A step is everything that runs
after the oracle releases one task (or starts one call): that task until it
parks, blocks or ends, and every task it wakes, each until it does the same.

What a step touches is **declared by the service** (``service.footprints``,
a ``Footprints``; the reference's table is ``service/_placement.py``), in the
contract's resources (``row:<id>``, ``live:<id>``, ``gate:<id>``, ``clock``,
...), never read from its private names: a step released at a point takes
the declaration of that point's (role, kind), a call just started takes its
operation's.  Three resources live behind seams the target itself provides
(``SEAM_GROUPS``: the store's rows, the clock, the id factory), so every
access to them is seen as it happens; for those the footprint names what
happened (exact: a turn's last step, which ticks nothing, does not conflict
with another session's tick), and the declaration is checked against it.
To it all the target adds the oracle's own resources:

- ``task``: every service task that ran (a Trio instrument).  A step that
  wakes a task, and that task's next step, so always conflict: this is how
  "enables" enters the happens-before order.
- ``resp``: a call answered writes its task's; a new call reads ``*``, so
  real-time order between calls is kept.
- ``inflight``: what the oracle's rules know of calls in flight.  Every
  step whose declaration names one session's resources reads it (here).
  The writes are the run loop's (``engine/_run.py``, ``_judged``), which
  knows the rules: the invocation and answer of a call whose moment some
  rule's verdict reads (``JUDGED_IN_FLIGHT``: the operations the rules'
  ``excuses`` and ``orders`` name, and the monitor's own) write it for the
  session the call names (every session, for a checkpointer sweep; for a
  create, nothing when invoked and its new session when answered:
  ``_run._in_flight`` says why), as does a failed store call.  The rules excuse some effects while
  a call is in flight (a checkpoint skipped while an archive of its session
  was invoked), so such steps keep their order with the invocation, or a
  reordering could hide a violation.

Fail safe: a step touches *everything* (its footprint is ``None``) when the
service declares nothing (a factory the target does not know), when its
point's (role, kind) or its call is declared nowhere, or when a task of the
service other than a call's or a session's ran in it (code no declaration
is about).  And the seams the target owns see some accesses as they happen
(each store call's row, each clock tick, each id taken): one the declaration
does not name is an error of the declaration, so that step too touches
everything, and the problem is kept for the engine to report
(``problems``).  Everything else a declaration leaves out, only the audit
(``meerkat-ref check --audit``: both orders of steps called independent,
the whole state compared) can show.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterable, Iterator

import trio

from ..._seams import SESSION, Footprints, Touches
from ...service._placement import RESOURCES
from ._protocol import Footprint, Resource

GROUPS = frozenset(name.split(":")[0] for name, _ in RESOURCES)
"""The contract's resource groups, the names a declaration may use (a port's too)."""

SESSION_GROUPS = frozenset({"row", "live", "turn", "agent", "inbox", "gate"})
"""Resource groups kept per session: touching one item reads that session's ``inflight``."""

SEAM_GROUPS = frozenset({"row", "clock", "ids"})
"""Resources that live behind seams the target owns (the store, the clock, the id factory):
every access to them is seen as it happens, so a footprint names exactly those that happened
(and a declaration that leaves one out is an error, ``problems``)."""


def service_task(name: str) -> bool:
    """Whether a Trio task is one of the service's (a call's or a session's)."""
    return name.startswith(("c:", "session ", "req "))


def role(label: str) -> str | None:
    """``session`` for a session's own task, ``caller`` for a call's, else ``None``."""
    name = label.split("#")[0]
    if name.startswith("session "):
        return "session"
    return "caller" if service_task(name) else None


def resolve(touches: Touches, session: str | None) -> tuple[set[Resource], set[Resource]]:
    """The resources a declaration names for a point on ``session`` (reads, writes)."""
    item = "*" if session is None else session

    def parse(name: str) -> Resource:
        group, _, rest = name.partition(":")
        return group, item if rest == SESSION else rest

    return {parse(n) for n in touches.reads}, {parse(n) for n in touches.writes}


def covered(resource: Resource, declared: Iterable[Resource]) -> bool:
    """Whether ``resource`` is one of ``declared``, or in a group declared whole (``*``)."""
    group, _ = resource
    return any(d == resource or d == (group, "*") for d in declared)


class Recorder:
    """One step's footprint: declared at its release, completed as it runs, taken after."""

    def __init__(self, *, seams: bool = True) -> None:
        # seams: the target sees every access to the store, clock and ids as it happens (in
        # process); over a port it sees none, and the declaration stands for those too.
        self.seams = seams
        self.on = False
        self.declaration: Footprints | None = None  # the running service's (None: unknown)
        self.process: trio.lowlevel.Task | None = None  # the task a service lives in
        self.lineage: weakref.WeakSet[trio.lowlevel.Task] = weakref.WeakSet()
        self.problems: list[str] = []  # declarations the seams caught leaving something out
        self._clear()

    def _clear(self) -> None:
        self.step: str | None = None  # what was released (None: no step of a schedule)
        self.unknown: list[str] = []  # why this step must touch everything
        self.declared_reads: set[Resource] = set()
        self.declared_writes: set[Resource] = set()
        self.seen_reads: set[Resource] = set()  # what the target's own seams saw
        self.seen_writes: set[Resource] = set()
        self.reads: set[Resource] = set()  # the oracle's own resources
        self.writes: set[Resource] = set()

    # -- what was released -----------------------------------------------------------------

    def _declare(self, what: str, touches: Touches | None, session: str | None) -> None:
        self.step = what if self.step is None else f"{self.step}, {what}"
        if self.declaration is None:
            self.unknown.append("the service declares no footprints")
        elif touches is None:
            self.unknown.append(f"{what}: declared nowhere")
        else:
            reads, writes = resolve(touches, session)
            self.declared_reads |= reads
            self.declared_writes |= writes

    def released(self, label: str, kind: str, session: str | None) -> None:
        """A task parked at a point of ``kind`` (on ``session``) is released."""
        who = role(label)
        points = self.declaration.points if self.declaration is not None else {}
        touches = None if who is None else points.get((who, kind))
        self._declare(f"{label} at {kind}", touches, session)

    def started(self, label: str, operation: str | None, session: str | None) -> None:
        """A call of ``operation`` starts in task ``label`` (``None``: not a service call)."""
        calls = self.declaration.calls if self.declaration is not None else {}
        touches = None if operation is None else calls.get(operation)
        self._declare(f"{label} calls {operation or 'the target'}", touches, session)

    # -- what ran -----------------------------------------------------------------------------

    def read(self, group: str, item: str) -> None:
        """A seam saw a read (a store call's row, the clock looked at)."""
        if self.on:
            self.seen_reads.add((group, item))

    def write(self, group: str, item: str) -> None:
        """A seam saw a write (a row saved or deleted, a clock tick, an id taken)."""
        if self.on:
            self.seen_writes.add((group, item))

    def ran(self, task: trio.lowlevel.Task) -> None:
        """A task took a step while recording: its own resource, or (a stray one) everything."""
        if not self.on or task not in self.lineage:
            return  # the oracle's own tasks, Trio's, a threaded store's
        if service_task(task.name):
            self.writes.add(("task", task.name))
        elif self.step is not None:
            self.unknown.append(f"task {task.name!r} of the service ran (no declaration is "
                                "about it)")

    def spawned(self, task: trio.lowlevel.Task) -> None:
        """Tasks started by the service's process, or by one of its tasks, are the service's."""
        nursery = task.parent_nursery
        parent = nursery.parent_task if nursery is not None else None
        if parent is not None and (parent is self.process or parent in self.lineage):
            self.lineage.add(task)

    @contextlib.contextmanager
    def recording(self) -> Iterator[None]:
        self.on = True
        try:
            yield
        finally:
            self.on = False

    def take(self) -> Footprint | None:
        """This step's footprint (``None``: touches everything); ready for the next step."""
        try:
            if self.step is None or self.unknown:
                return None
            declared = self.declared_reads | self.declared_writes
            missing = sorted(r for r in self.seen_writes if not covered(r, self.declared_writes))
            missing += sorted(r for r in self.seen_reads - self.seen_writes
                              if not covered(r, declared))
            if missing:
                shown = ", ".join(f"{g}:{i}" if i else g for g, i in missing)
                self.problems.append(f"{self.step}: the target's seams saw {shown}, which its "
                                     "declaration does not name")
                return None
            # The seams' own resources as they were touched (exact), the rest as declared.
            seen = SEAM_GROUPS if self.seams else frozenset()
            reads = {r for r in self.declared_reads if r[0] not in seen}
            writes = {r for r in self.declared_writes if r[0] not in seen}
            reads |= self.seen_reads | self.reads
            writes |= self.seen_writes | self.writes
            reads |= {("inflight", item) for group, item in reads | writes
                      if group in SESSION_GROUPS and item != "*"}
            return Footprint(frozenset(reads), frozenset(writes))
        finally:
            self._clear()


class TaskInstrument(trio.abc.Instrument):
    """Keeps the service's task tree, and records every service task that takes a step."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    def task_spawned(self, task: trio.lowlevel.Task) -> None:
        self.recorder.spawned(task)

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if self.recorder.on:
            self.recorder.ran(task)


__all__ = ["GROUPS", "Recorder", "TaskInstrument", "covered", "resolve", "role", "service_task"]
