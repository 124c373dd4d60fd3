"""Hypothesis as a scheduler: every choice of a run is a draw, so a failing schedule shrinks.

``HypothesisStrategy`` draws each choice from Hypothesis's ``data`` (the
draws shrink towards "first ready task, no fault"); it is what a
``@given`` test uses directly (``tests/stateful``).  ``HypothesisScheduler``
puts the same strategy behind the scheduler protocol, where the engine's
loop, not Hypothesis, owns the runs: Hypothesis runs its test in a thread
of its own, and each test case hands the loop one run (a ``_Bridge`` whose
``choose`` asks that thread for the draw) and waits for its outcome; a run
that broke a rule fails the test case, so Hypothesis shrinks it, and each
shrink attempt is one more run the loop counts.  ``runs``: the test cases
Hypothesis generates (shrinking adds to them); ``seed``: its seed.  The
loop stopping (``stop_on_violation``, ``max_schedules``) ends the test at
once, before any shrinking: ``check --keep-going`` lets it shrink.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from typing import Any

import trio

from ..targets import Point, Target
from ._run import RunOutcome
from ._scenarios import Scenario
from ._scheduler import Param, Scheduler, SearchReport
from ._strategies import Aborted, Budget, Choice, Strategy


class HypothesisStrategy:
    """Each choice is ``data.draw(...)``: Hypothesis shrinks the schedule itself."""

    def __init__(self, data: Any) -> None:
        from hypothesis import strategies as st

        self._data = data
        self._st = st

    def choose(self, step: int, ready: Sequence[Point], budget: Budget) -> Choice:
        st = self._st
        if budget.crashes > 0 and self._data.draw(st.integers(0, 19), label="crash?") == 19:
            return Choice(crash=True)
        index = self._data.draw(st.integers(0, len(ready) - 1), label=f"step {step}")
        point = ready[index]
        fault, kind = False, ""
        if point.faultable and budget.faults > 0:
            fault = self._data.draw(st.integers(0, 4), label="fault?") == 4
        if fault and budget.fault_kinds:
            kind = self._data.draw(st.sampled_from(("", *budget.fault_kinds)), label="how?")
        return Choice(point.task, fault=fault, kind=kind)


class _Stop(BaseException):
    """The loop stopped: end Hypothesis's test at once (not a failure it would shrink)."""


class _Violated(Exception):
    """A run broke a rule: the test case fails, and Hypothesis shrinks it."""


_GAVE_UP = object()  # the Hypothesis thread ended the test case while drawing (an overrun)


class _Bridge:
    """One run's strategy in the loop's thread; each choice is drawn in Hypothesis's."""

    def __init__(self, requests: queue.Queue[tuple[Any, ...]]) -> None:
        self._requests = requests
        self.answers: queue.Queue[object] = queue.Queue()

    def choose(self, step: int, ready: Sequence[Point], budget: Budget) -> Choice:
        self._requests.put(("choose", self, step, ready, budget))
        answer = self.answers.get()  # at once: the other thread only draws
        if not isinstance(answer, Choice):
            raise Aborted("Hypothesis ended this test case (its draws ran over)")
        return answer


class HypothesisScheduler(Scheduler):
    name = "hypothesis"
    about = "every choice a Hypothesis draw: runs test cases, a failing schedule shrunk"
    params = (
        Param("runs", "int", 100, "test cases Hypothesis generates (shrinking adds runs)", 1),
        Param("seed", "int", 1, "Hypothesis's seed"),
    )

    def __init__(self, runs: int = 100, seed: int = 1) -> None:
        self.runs, self.seed = runs, seed
        self._to_loop: queue.Queue[_Bridge | None] = queue.Queue()
        self._to_test: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._done = False

    def start(self, target: Target, scenario: Scenario, report: SearchReport) -> None:
        report.sampled = True

    def _test(self) -> None:
        from hypothesis import HealthCheck, Phase, Verbosity, given, seed, settings
        from hypothesis import strategies as st

        @seed(self.seed)
        @settings(max_examples=self.runs, database=None, deadline=None, derandomize=False,
                  phases=(Phase.generate, Phase.shrink), verbosity=Verbosity.quiet,
                  suppress_health_check=list(HealthCheck), report_multiple_bugs=False)
        @given(st.data())
        def case(data: Any) -> None:
            strategy = HypothesisStrategy(data)
            bridge = _Bridge(self._to_test)
            self._to_loop.put(bridge)
            while True:
                message = self._to_test.get()
                if message[0] == "stop":
                    raise _Stop
                if message[1] is not bridge:
                    continue  # of a run this thread gave up on
                if message[0] == "outcome":
                    outcome: RunOutcome = message[2]
                    if outcome.violations:
                        raise _Violated(outcome.violations[0].rule)
                    return
                try:
                    bridge.answers.put(strategy.choose(*message[2:]))
                except BaseException:
                    bridge.answers.put(_GAVE_UP)
                    raise

        try:
            case()
        except (_Stop, Exception):
            pass  # a violation is the loop's to report; Hypothesis's own verdict is not needed
        finally:
            self._to_loop.put(None)

    async def next_run(self) -> Strategy | None:
        if self._done:
            return None
        if self._thread is None:
            self._thread = threading.Thread(target=self._test, name="hypothesis-scheduler",
                                            daemon=True)
            self._thread.start()
        bridge = await trio.to_thread.run_sync(self._to_loop.get)
        if bridge is None:
            self._done = True
        return bridge

    async def finish(self, run: Strategy, outcome: RunOutcome) -> None:
        self._to_test.put(("outcome", run, outcome))

    async def close(self) -> None:
        if self._thread is None:
            return
        self._to_test.put(("stop",))
        await trio.to_thread.run_sync(self._thread.join)


__all__ = ["HypothesisScheduler", "HypothesisStrategy"]
