"""CHECKPOINT (5.2) and CHECKPOINT-GATE (5.3) of ``spec/CONTRACT.md``: what checkpoints write.

The state of the checkpointer sweep (``cancel_all_checkpointers`` /
``rearm_all_checkpointers``: in flight, disarmed, which sessions it reached)
the monitor keeps (``Monitor.sweeping``, ``disarmed``, ``disarmed_ids``): both
rules read it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ...._model import model
from ...targets import Introspection, Point
from .._calls import Call
from .._labels import short
from ._base import FAULT, Excuse, Rule

if TYPE_CHECKING:
    from .._monitor import Monitor

SWEEP = ("cancel_all_checkpointers", "rearm_all_checkpointers")


class CheckpointGate(Rule):
    """While disarmed (``cancel_all_checkpointers`` answered, no
    ``rearm_all_checkpointers`` overlapped it, and none invoked since: a disarm and a
    re-arm in flight together leave the gates ``unsettled``, judged by neither rule
    here, ``Monitor.invoked``), the stored revision of a session
    the sweep disarmed changes only under a plain turn of that session in flight
    (wire); no write by a session's own task lands for it (inside).

    No create is excused: a create saves a session no sweep can have disarmed
    before the create's own save (its id is new, and only a session already
    stored is judged), so an excuse for creates in flight, which would cover
    every session (a create names none), excused nothing real; the default
    sweep's 176 scenarios that put a create beside a sweep explore 79,644
    schedules without it and find nothing."""

    clause = "CHECKPOINT-GATE"
    wire = (
        "while checkpointers are disarmed, a disarmed session's stored revision changes only "
        "under a plain turn of it in flight"
    )
    evidence = ("wire", "inside")
    order = 30
    excuses = (
        Excuse(("start_turn",), "a disarmed session's stored revision changing", mode="plain"),
    )

    def observe(self, before: Mapping[str, model.Session], parked: Sequence[Point],
                announced: Sequence[Point], in_flight: Sequence[Call]) -> None:
        monitor = self.monitor
        if not monitor.disarmed:
            return
        excused: set[str] = set()
        for excuse in self.excuses:  # the declaration is the check
            excused |= excuse.sessions(in_flight, before)
        store = monitor.store
        for sid in sorted(monitor.disarmed_ids & set(store)):
            old, new = before.get(sid), store[sid]
            if old is not None and new.revision != old.revision and sid not in excused:
                self.violate(
                    f"{short(sid)} saved at revision {new.revision} while its checkpointer "
                    "was disarmed and no turn of it was in flight",
                )

    def write(self, session: str, revision: int, by_session_task: bool) -> None:
        monitor = self.monitor
        if by_session_task and monitor.disarmed and session in monitor.disarmed_ids:
            self.violate(
                f"checkpoint of {short(session)} written after cancel_all_checkpointers returned",
            )


class Checkpoint(Rule):
    """A checkpoint call that returned while armed (no sweep in flight, not disarmed, not
    unsettled, from its start to its end) left the store at its revision or newer (inside only:
    the wire does not say which revision a checkpoint wrote)."""

    clause = "CHECKPOINT"
    evidence = ("inside",)
    order = 40
    excuses = (
        Excuse(SWEEP, "a checkpoint not stored", session="any", span="until a rearm answers"),
        Excuse(("archive",), "a checkpoint not stored", span="from invocation on"),
        Excuse((FAULT,), "a checkpoint not stored", span="from invocation on"),
    )

    def __init__(self, monitor: Monitor) -> None:
        super().__init__(monitor)
        self._archive_invoked: set[str] = set()
        self._faulted: set[str] = set()
        self._swept_settles: set[int] = set()  # settles seen while a sweep was on

    def invoke(self, call: Call) -> None:
        if call.name == "archive" and call.session_id is not None:
            self._archive_invoked.add(call.session_id)

    def fault(self, kind: str, call: Call | None, session: str | None) -> None:
        if session is not None:
            self._faulted.add(session)

    def inside(self, intro: Introspection) -> None:
        monitor = self.monitor
        settles = intro.settles
        if monitor.sweeping or monitor.disarmed:
            self._swept_settles.add(settles)
        for sid, revision, started in intro.checkpoints:
            swept = any(started <= s <= settles for s in self._swept_settles)
            if swept or monitor.sweeping or monitor.disarmed:
                continue
            if sid in self._archive_invoked or sid in self._faulted:
                continue
            stored = monitor.store.get(sid)
            if stored is None or stored.revision < revision:
                have = "nothing" if stored is None else f"revision {stored.revision}"
                self.violate(
                    f"checkpoint of {short(sid)} at revision {revision} acknowledged, "
                    f"store has {have}",
                )
