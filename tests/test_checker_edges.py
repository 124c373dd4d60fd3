"""Edge mutants: services changed just beyond what the checker used to excuse, each caught.

The linearizability checker used to look away where an atomic model could
not follow: payloads, runs with store faults, an interrupt of a plain turn,
host loops beside the checkpointer sweeps, a call cut short.  It now checks
every run against the concurrent model (``models/concurrent.py``), payloads
and store included.  Each mutant below is a real service bug of a kind that
used to walk through one of those excuses; ``check`` must find each, in the
named scenario or the small generated one given, by the rule given.  (No
test of one mutant closes a class: each stands for the class the removed
excuse hid.)  What is still not compared has its edge too: error texts are
not, so a busy answer under the wrong code is caught here; malformed wire
commands are judged by ``conform``'s input cases
(``tests/test_misreadings.py``, ``tests/test_wire_fields.py``).  The early
place needs where the tasks wait as evidence (capability ``placement``):
the create's task parked past its reservation while the stopping task's
call has not been answered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import trio

from meerkat_ref import (
    EphemeralSessionService,
    PersistentSessionService,
    RunResult,
    SchedulingPoints,
    Session,
    SessionId,
    StartTurnRequest,
)
from meerkat_ref._errors import SessionBusy, SessionNotFound, SessionNotRunning
from meerkat_ref._types import as_session_id
from meerkat_ref.agent import EventInjector, SessionAgentBuilder
from meerkat_ref.oracle.check import explore
from meerkat_ref.oracle.engine import Scenario, get_scenario, scenario_from_spec
from meerkat_ref.oracle.targets import InProcessTarget
from meerkat_ref.service import CheckpointerGate
from meerkat_ref.service._persistent import ArchiveProgress
from meerkat_ref.store import SessionStore

S1 = "00000000-0000-0000-0000-000000000001"


def _with_inner(inner: type[EphemeralSessionService]) -> type[PersistentSessionService]:
    class Mutant(PersistentSessionService):
        def _make_inner(self, builder: SessionAgentBuilder, max_sessions: int,
                        points: SchedulingPoints) -> EphemeralSessionService:
            return inner(builder, max_sessions, points=points)

    return Mutant


def _with_gate(gate: type[CheckpointerGate]) -> type[PersistentSessionService]:
    class Mutant(PersistentSessionService):
        def _new_gate(self, session_id: SessionId | None = None) -> CheckpointerGate:
            made = gate(self._points)
            made.session_id = session_id
            return made

    return Mutant


# -- payloads: a slow save overwrites a newer one ([CHECKPOINT-GATE] revisions) -------------


class _NotMonotonic(CheckpointerGate):
    def unchanged(self, session: Session) -> bool:
        return False  # the mutation: an older snapshot may replace a newer one


# -- an acknowledged write that is not in the store ([DURABILITY]) ---------------------------


class AcksRefusedSave(PersistentSessionService):
    async def _persist(self, gate: CheckpointerGate | None, snapshot: Session) -> None:
        assert gate is not None
        await gate.write(self.store, snapshot, checkpoint=False)  # archived: a success anyway


# -- a failed archive leaves its mark: later saves silently dropped ([ARCHIVE-ATOMIC]) --------


class FailedArchiveKeepsMark(PersistentSessionService):
    async def _archive_steps(self, sid: SessionId, progress: ArchiveProgress) -> None:
        progress.committed = True  # the mutation: committed before the row is gone
        await super()._archive_steps(sid, progress)


# -- an interrupt answered ok whose plain turn runs on ([INTERRUPT]) --------------------------


class _InterruptSparesPlainTurns(EphemeralSessionService):
    async def interrupt(self, session_id: SessionId | str) -> None:
        sid = as_session_id(session_id)
        await trio.lowlevel.checkpoint()
        handle = self._get(sid)
        if not handle.turn_running:
            raise SessionNotRunning(sid)
        if handle.current is not None and not handle.current.host_mode:
            return  # the mutation: "ok", and the plain turn runs to completion
        handle.interrupt_requested = True
        if handle.turn_scope is not None:
            handle.turn_scope.cancel()


# -- capacity given back when archive unregisters, not when the task ends ([CAPACITY]) --------


class _EarlyPlace(EphemeralSessionService):
    async def archive(self, session_id: SessionId | str) -> None:
        sid = as_session_id(session_id)
        handle = self._sessions.get(sid)
        if handle is not None:
            self._reserved -= 1  # the mutation: the place is back while the task still runs
            self._reserved_back = getattr(self, "_reserved_back", 0) + 1
        await super().archive(session_id)

    def _finish_task(self, handle: object) -> None:
        if getattr(self, "_reserved_back", 0):
            self._reserved_back -= 1
            self._reserved += 1  # given back already
        super()._finish_task(handle)  # type: ignore[arg-type]


# -- the sweep disarms without the gate's lock ([STOP-RESUME]) --------------------------------


class SweepWithoutLock(PersistentSessionService):
    async def cancel_all_checkpointers(self) -> None:
        for gate in list(self._gates.values()):
            await self._points.point("gate.acquire", gate.session_id)
            gate.armed = False  # the mutation: a checkpoint holding the lock writes after


# -- a cancelled caller keeps what it held ([CALLER-CANCEL]) -----------------------------------


class _CancelKeepsAdmission(EphemeralSessionService):
    async def _send_turn(
        self, handle: Any, prompt: str, host_mode: bool
    ) -> tuple[RunResult, Session]:
        try:
            return await super()._send_turn(handle, prompt, host_mode)
        except trio.Cancelled:
            handle.turn_running = True  # the mutation: the admission is not given back
            raise


class CancelKeepsTombstone(PersistentSessionService):
    """The archive as it was before the explorer cancelled one at its gate's lock."""

    async def archive(self, session_id: SessionId | str) -> None:
        sid = as_session_id(session_id)
        gate, tombstone = await self._archive_gate(sid)
        progress = ArchiveProgress()
        async with gate.held():
            try:
                gate.archived = True
                await self._archive_steps(sid, progress)
            finally:
                if (progress.committed or tombstone) and self._gates.get(sid) is gate:
                    del self._gates[sid]
        if not progress.live and not progress.in_store:
            raise SessionNotFound(sid)


# -- what is still not compared: error texts, so the code must carry the meaning ([ERRORS]) --


class _BusyAsNotFound(EphemeralSessionService):
    async def _start_turn(
        self, session_id: SessionId, req: StartTurnRequest
    ) -> tuple[RunResult, Session]:
        try:
            return await super()._start_turn(session_id, req)
        except SessionBusy as exc:  # the mutation: the busy text, under another code
            raise SessionNotFound(session_id) from exc


# -- an injected message answered ok and never queued ([HOST-MESSAGE]) ------------------------


class _Drop:
    def inject(self, text: str) -> None:
        pass


class InjectDrops(PersistentSessionService):
    async def event_injector(self, session_id: SessionId | str) -> EventInjector | None:
        found = await super().event_injector(session_id)
        return None if found is None else _Drop()


def _spec(setup: list[dict[str, object]], clients: list[list[object]], capacity: int = 2,
          background: list[list[object]] | None = None, faults: int = 0) -> Scenario:
    spec: dict[str, object] = {"setup": setup, "clients": clients, "capacity": capacity}
    if background:
        spec["background"] = background
    if faults:
        spec["faults"] = faults
    return scenario_from_spec(spec, "edge")


CREATE: dict[str, object] = {"cmd": "create", "prompt": "a"}
HOST: dict[str, object] = {"cmd": "create", "prompt": "serve", "host_mode": True}

EDGES: list[tuple[str, Callable[[], type[PersistentSessionService]], Callable[[], Scenario],
                  str]] = [
    ("slow-save-overwrites", lambda: _with_gate(_NotMonotonic),
     lambda: get_scenario("turns-at-once"), "LINEARIZABLE"),
    ("acks-refused-save", lambda: AcksRefusedSave,
     lambda: get_scenario("turn-save-vs-archive"), "DURABILITY"),
    ("failed-archive-keeps-mark", lambda: FailedArchiveKeepsMark,
     lambda: get_scenario("store-faults"), "LINEARIZABLE"),
    ("interrupt-spares-plain-turns", lambda: _with_inner(_InterruptSparesPlainTurns),
     lambda: _spec([CREATE], [["t", [{"cmd": "start_turn", "session": S1, "prompt": "b"}]],
                              ["i", [{"cmd": "interrupt", "session": S1}]]]),
     "LINEARIZABLE"),
    ("capacity-back-early", lambda: _with_inner(_EarlyPlace),
     lambda: _spec([], [["a", [{"cmd": "archive", "session": S1}]], ["c", [CREATE]]],
                   capacity=1, background=[["host", HOST]]),
     "LINEARIZABLE"),
    ("sweep-without-lock", lambda: SweepWithoutLock,
     lambda: get_scenario("stop-resume-vs-inject"), "LINEARIZABLE"),
    ("inject-drops", lambda: InjectDrops,
     lambda: get_scenario("stop-resume-vs-inject"), "LINEARIZABLE"),
    ("busy-as-not-found", lambda: _with_inner(_BusyAsNotFound),
     lambda: get_scenario("turns-at-once"), "LINEARIZABLE"),
    ("cancel-keeps-admission", lambda: _with_inner(_CancelKeepsAdmission),
     lambda: get_scenario("cancelled-turn"), "LINEARIZABLE"),
    ("cancel-keeps-tombstone", lambda: CancelKeepsTombstone,
     lambda: get_scenario("cancelled-archive-of-stored"), "ARCHIVE"),
]


def _target(cls: type[PersistentSessionService]) -> InProcessTarget:
    def make(b: SessionAgentBuilder, c: int, s: SessionStore | None,
             p: SchedulingPoints) -> PersistentSessionService:
        assert s is not None
        return cls(b, c, s, points=p)

    return InProcessTarget(make, description=cls.__name__)


@pytest.mark.parametrize(("name", "mutant", "scenario", "rule"), EDGES,
                         ids=[e[0] for e in EDGES])
def test_check_finds_each_edge_mutant(
    name: str, mutant: Callable[[], type[PersistentSessionService]],
    scenario: Callable[[], Scenario], rule: str,
) -> None:
    report = explore(_target(mutant()), scenario(), bound=None, stop_on_violation=True)
    first = report.first()
    assert first is not None, f"check let {name} through"
    if rule not in {v.rule for v in first.violations}:
        # Another rule saw the mutant first (an injector that never refuses also breaks
        # HOST-MESSAGE at the run's end): the relaxation's own rule must still see it.
        report = explore(_target(mutant()), scenario(), bound=None)
    assert rule in {v.rule for run in report.violating for v in run.violations}, (
        first.violations)


@pytest.mark.parametrize("scenario", [
    lambda: _spec([CREATE], [["t", [{"cmd": "start_turn", "session": S1, "prompt": "b"}]],
                             ["i", [{"cmd": "interrupt", "session": S1}]]]),
    lambda: _spec([], [["a", [{"cmd": "archive", "session": S1}]], ["c", [CREATE]]],
                  capacity=1, background=[["host", HOST]]),
], ids=["turn-vs-interrupt", "archive-host-vs-create-at-capacity"])
def test_the_reference_passes_the_edge_scenarios(scenario: Callable[[], Scenario]) -> None:
    report = explore(_target(PersistentSessionService), scenario(), bound=None)
    assert report.exhausted and not report.violations
