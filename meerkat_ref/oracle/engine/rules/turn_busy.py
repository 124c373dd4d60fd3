"""TURN-BUSY (2.5 of ``spec/CONTRACT.md``): one turn of a session at a time."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from ...._model import model
from ...targets import AGENT_KINDS, Answer, Introspection, Point
from .._calls import Call
from .._labels import short
from ._base import Rule

if TYPE_CHECKING:
    from .._monitor import Monitor


class TurnBusy(Rule):
    """At most one turn of a session is in flight: two different tasks never wait
    at agent points of one session at once (wire); of ``start_turn`` calls of one
    session started at once -- each invoked while the other still waited at the
    first scheduling point it reached when it was invoked, or sent in one
    ``at_once`` -- at most one is admitted (wire: the model's ``TurnsAtOnce``;
    admission is decided before a call's first point, so a second turn that queues
    behind the first is caught although the two never run at once); at most one
    agent turn runs, and at most one is taken or queued by its task, per session
    (inside); that count of turns taken or queued is itself checked against the
    agents (inside): never below one where given, never below the agent turns
    running in a live session, and at the end equal to them (a count the rule reads
    must not be able to hide a second turn)."""

    clause = "TURN-BUSY"
    wire = (
        "two different tasks never wait at `agent.step`/`checkpoint` points of one session at "
        "once; of `start_turn` calls of one session started at once (one invoked while the "
        "other's task still waits at the first point it reached when it was invoked, or both "
        "in one `at_once`), at most one is admitted (answered ok, or a host loop still "
        "serving at the end): the model's `TurnsAtOnce`, since admission is decided before a "
        "call's first point. A second turn that queues behind the first instead of being "
        "refused is caught so, though the two never run at once"
    )
    evidence = ("wire", "inside")
    order = 80
    orders = ("start_turn",)  # turns started together; which were admitted

    def __init__(self, monitor: Monitor) -> None:
        super().__init__(monitor)
        self._together: list[tuple[Call, Call]] = []  # turns of one session started at once

    def together(self, call: Call, others: Iterable[Call]) -> None:
        """Two ``start_turn`` calls of one session started at once: the model's ``TurnsAtOnce``.

        The engine says so for a call invoked while each of ``others`` waits
        at the first scheduling point it reached (never released since), and
        for the calls of one ``at_once``.
        """
        if call.name != "start_turn" or call.session_id is None:
            return
        for other in others:
            if other is not call and other.name == "start_turn" and (
                    other.session_id == call.session_id):
                self._together.append((other, call))

    def answer(self, call: Call, answer: Answer) -> None:
        if answer.ok and call.name == "start_turn" and self._together:
            self._check_together()

    def finish(self) -> None:
        self._check_together(final=True)  # host loops still serving count as admitted

    def _check_together(self, *, final: bool = False) -> None:
        """Not two turns started at once both admitted.

        Admitted: answered ok; at the end of a run (``final``), also a
        host-mode turn still unanswered (its loop serves).
        """
        def admitted(call: Call) -> bool:
            return call.result == "ok" or (final and call.host and call.responded is None)

        for first, second in self._together:
            if admitted(first) and admitted(second):
                self.violate(
                    f"two turns of {first.session} started at once were both admitted: "
                    f"{first.client}'s start_turn (invoked at step {first.invoked}) and "
                    f"{second.client}'s (step {second.invoked}), each invoked before the "
                    "other passed its first scheduling point; one must get SESSION_BUSY "
                    "(calls do not queue)",
                )

    def observe(self, before: Mapping[str, model.Session], parked: Sequence[Point],
                announced: Sequence[Point], in_flight: Sequence[Call]) -> None:
        working: dict[str, set[str]] = {}
        for p in parked:
            if p.kind in AGENT_KINDS and p.session is not None:
                working.setdefault(p.session, set()).add(p.task)
        for sid, tasks in sorted(working.items()):
            if len(tasks) > 1:
                self.violate(
                    f"two turns of {short(sid)} in flight at once: "
                    f"{' and '.join(sorted(tasks))} both wait at agent points",
                )

    def inside(self, intro: Introspection) -> None:
        for sid, n in sorted(intro.running_turns.items()):
            if n > 1:
                self.violate(f"{n} turns run at once in {short(sid)}")
        for sid, n in sorted(intro.admitted.items()):
            if n > 1:
                self.violate(f"{n} turns admitted at once in {short(sid)}")
        self._check_admitted(intro, at_end=False)

    def end(self, intro: Introspection | None) -> None:
        if intro is not None:
            self._check_admitted(intro, at_end=True)

    def _check_admitted(self, intro: Introspection, *, at_end: bool) -> None:
        """The count of turns taken or queued (``admitted``) agrees with the agents.

        This rule's inside half reads that count, so a count that is off
        would hide a second turn: it lists only sessions with some (at least
        one each), a live session whose agent runs a turn has it counted,
        and when nothing can move every count is the agent turns running
        (a host loop's), since a turn queued then would never be taken.
        """
        for sid, n in sorted(intro.admitted.items()):
            running = intro.running_turns.get(sid, 0)
            if n < 1 or (at_end and n != running):
                self.violate(f"the service counts {n} turns taken or queued "
                             f"in {short(sid)}, with {running} agent turns running")
        for sid, running in sorted(intro.running_turns.items()):
            if sid in intro.live and intro.admitted.get(sid, 0) < running:
                self.violate(f"{running} agent turns run in {short(sid)}, but "
                             f"the service counts {intro.admitted.get(sid, 0)} taken or queued")
