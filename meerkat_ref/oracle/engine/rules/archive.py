"""The archive rules of ``spec/CONTRACT.md``: ARCHIVE, ARCHIVE-FINAL, ARCHIVE-STOP (4.1 to 4.3).

What they share, the sessions archived (by the step their archive answered),
the monitor keeps (``Monitor.archived``): a fact of the run the engine's
read-back reads too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from ...._model import model
from ...targets import AGENT_KINDS, Answer, Introspection, Point
from .._calls import Call
from .._labels import short
from ._base import Excuse, Rule

if TYPE_CHECKING:
    from .._monitor import Monitor


class Archive(Rule):
    """An archive holds the session's gate (or a tombstone) only while it runs: a
    checkpointer gate exists for a live session or during an archive of it, never
    after (inside: the service's gates)."""

    clause = "ARCHIVE"
    evidence = ("inside",)
    order = 10
    excuses = (Excuse(("archive",), "a gate of a session that is not live"),)

    def __init__(self, monitor: Monitor) -> None:
        super().__init__(monitor)
        self._archiving: dict[str, int] = {}  # session -> archives of it in flight

    def invoke(self, call: Call) -> None:
        sid = call.session_id
        if sid is not None and call.name == "archive":
            self._archiving[sid] = self._archiving.get(sid, 0) + 1

    def answer(self, call: Call, answer: Answer) -> None:
        self._ended(call)

    def cancel(self, call: Call) -> None:
        self._ended(call)

    def _ended(self, call: Call) -> None:
        """``call`` is no longer in flight (answered, or its caller cancelled)."""
        if call.name == "archive" and call.session_id in self._archiving:
            left = self._archiving[call.session_id] - 1
            if left:
                self._archiving[call.session_id] = left
            else:
                del self._archiving[call.session_id]

    def restart(self) -> None:
        self._archiving.clear()

    def inside(self, intro: Introspection) -> None:
        for sid in sorted(set(intro.gates) - intro.live - set(self._archiving)):
            self.violate(
                f"{short(sid)} has a checkpointer gate but is not live and no archive of it runs",
            )


class ArchiveFinal(Rule):
    """After ``archive(id)`` answered ok: the store never holds the id again (wire:
    every observation of the store; inside: every write as it lands), and no
    ``read``, ``list`` or ``load_persisted`` invoked after that shows it, not even
    after a restart."""

    clause = "ARCHIVE-FINAL"
    wire = (
        "after an archive answered ok, no store observation holds the id, and no `read`, "
        "`list` or `load_persisted` invoked later shows it (not even after the restart)"
    )
    evidence = ("wire", "inside")
    order = 20
    orders = ("archive",)  # every store observation after the answer

    def answer(self, call: Call, answer: Answer) -> None:
        if not answer.ok:
            return
        name, value = call.name, call.value
        if name in ("read", "load_persisted") and call.session_id is not None and (
                value is not None):
            self._check_visible(call, [call.session_id])
        elif name == "list" and isinstance(value, tuple):
            self._check_visible(call, [getattr(s, "session_id", "") for s in value])

    def _check_visible(self, call: Call, shown: Iterable[str]) -> None:
        """A read/list/load_persisted invoked after an archive answered must not show it."""
        archived = self.monitor.archived
        for sid in shown:
            returned = archived.get(sid)
            if returned is not None and returned <= call.invoked:
                self.violate(
                    f"{call.name} invoked at step {call.invoked} shows {short(sid)}, "
                    f"archived at step {returned}",
                )

    def observe(self, before: Mapping[str, model.Session], parked: Sequence[Point],
                announced: Sequence[Point], in_flight: Sequence[Call]) -> None:
        store = self.monitor.store
        for sid in self.monitor.archived:
            if sid in store:
                self.violate(f"archived {short(sid)} is in the store")

    def write(self, session: str, revision: int, by_session_task: bool) -> None:
        if session in self.monitor.archived:
            self.violate(
                f"{short(session)} written to the store after its archive returned (resurrected)",
            )

    def read_back(self) -> None:
        store = self.monitor.store
        for sid in sorted(self.monitor.archived):
            if sid in store:
                self.violate(f"archived {short(sid)} is in the store after a restart")


class ArchiveStop(Rule):
    """After ``archive(id)`` answered ok, its session does no more work: no
    scheduling point of the session's own task (``session s<hex>``) and no agent
    point (``agent.step``, ``checkpoint``) of that session is announced at a later
    step (wire); its task has ended within ``stop_bound`` steps and by the end of
    the run (inside)."""

    clause = "ARCHIVE-STOP"
    wire = (
        "after an archive answered ok, no point of the session's own task (`session s<hex>`) "
        "and no `agent.step` or `checkpoint` point of that session is announced at a later "
        "step"
    )
    evidence = ("wire", "inside")
    order = 50
    orders = ("archive",)  # every point announced after the answer

    def observe(self, before: Mapping[str, model.Session], parked: Sequence[Point],
                announced: Sequence[Point], in_flight: Sequence[Call]) -> None:
        archived, step = self.monitor.archived, self.monitor.step
        if not archived:
            return
        for p in announced:
            for sid, returned in archived.items():
                own = p.task == f"session {short(sid)}"
                if (own or (p.kind in AGENT_KINDS and p.session == sid)) and step > returned:
                    self.violate(
                        f"archived {short(sid)} still works: {p.task} reached {p.kind} at step "
                        f"{step}, after its archive answered at step {returned}",
                    )

    def inside(self, intro: Introspection) -> None:
        step, bound = self.monitor.step, self.monitor.stop_bound
        for sid, returned in self.monitor.archived.items():
            if sid in intro.running_tasks and step - returned > bound:
                self.violate(
                    f"archived {short(sid)}'s task still runs {step - returned} steps "
                    "after archive returned",
                )

    def end(self, intro: Introspection | None) -> None:
        if intro is None:
            return
        for sid in self.monitor.archived:
            if sid in intro.running_tasks:
                self.violate(f"archived {short(sid)}'s task never ends")
