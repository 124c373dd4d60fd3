"""DURABILITY (5.1 of ``spec/CONTRACT.md``): an acknowledged create or turn is stored."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from ...._model import model
from ...targets import Answer, Point
from .._calls import Call
from .._labels import short
from ._base import Rule

if TYPE_CHECKING:
    from .._monitor import Monitor


class Durability(Rule):
    """When a plain (non-host) create or turn of a session answers ok, the store held
    the session at some step while the call was in flight (its answer's step
    included), at a revision at least two above what it held when the call was
    invoked (a turn adds a message and a reply; wire) -- exactly at the turn's own
    revision or newer (inside).  An archive that deletes the row afterwards does not
    excuse a save that never landed."""

    clause = "DURABILITY"
    wire = (
        "when a plain create or turn answers ok, the store holds the session, a turn at a "
        "revision at least two above what the store held when it was invoked"
    )
    evidence = ("wire", "inside")
    order = 70
    orders = ("create", "start_turn")  # the store when each is invoked; the answer

    def __init__(self, monitor: Monitor) -> None:
        super().__init__(monitor)
        self._floor: dict[int, int] = {}  # id(call) -> store revision at invoke
        self._peak: dict[int, dict[str, int]] = {}  # id(call) -> highest revision seen, by id

    def invoke(self, call: Call) -> None:
        name = call.name
        if name not in ("create", "start_turn"):
            return
        sid = call.session_id
        if sid is not None:
            stored = self.monitor.store.get(sid)
            self._floor[id(call)] = -1 if stored is None else stored.revision
        if not call.host:
            self._peak[id(call)] = {}

    def observe(self, before: Mapping[str, model.Session], parked: Sequence[Point],
                announced: Sequence[Point], in_flight: Sequence[Call]) -> None:
        store = self.monitor.store
        for peaks in self._peak.values():
            for sid, row in store.items():
                if row.revision > peaks.get(sid, -1):
                    peaks[sid] = row.revision

    def answer(self, call: Call, answer: Answer) -> None:
        if not answer.ok or call.name not in ("create", "start_turn") or call.host:
            return
        session = call.value.session_id if isinstance(call.value, model.RunResult) else (
            call.session_id)
        if session is not None:
            self._check(call, session, answer.revision)

    def _check(self, call: Call, sid: str, revision: int | None) -> None:
        """Saved before it answered: the store showed it at some step since.

        Every store observation while the call was in flight counts (the one
        of the settle that brought its answer included), so an archive that
        deleted the row after the save does not hide the save -- and a
        success answered for a save that never landed (the gate was
        archived first) is caught, archive or not.
        """
        peak = self._peak.pop(id(call), {}).get(sid)
        stored = self.monitor.store.get(sid)
        if peak is not None and (stored is None or stored.revision < peak):
            stored = replace(stored or model.Session(0, 0), revision=peak)
        if revision is not None:
            need, what = revision, f"at revision {revision}"
        else:
            floor = self._floor.get(id(call), -1)
            need = 0 if floor < 0 else floor + 2
            what = "(at least revision 0)" if floor < 0 else f"(stored revision was {floor})"
        if stored is None or stored.revision < need:
            have = "nothing" if stored is None else f"revision {stored.revision}"
            self.violate(f"{call.name} of {short(sid)} {what} acknowledged, store has {have}")
