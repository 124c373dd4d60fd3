"""Run one scenario under one strategy: one schedule, start to finish.

A run is its own ``trio.run``: a fresh store (memory, or SQLite in a
directory), a fresh service of the chosen variant, the scenario's setup with
points off, then the clients with points on and the controller choosing
every step.  A crash choice cancels the whole "process" (service and
clients), marks its store handle dead, and opens a new service over the same
store; the post-phase then reads everything back.  The result is plain data.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import trio

from .._seams import LogicalClock
from ..agent._scripted import ScriptedAgentBuilder, counter_ids
from ..service._persistent import PersistentSessionService
from ..service._seed import SeedPersistentSessionService, Window
from ..store._base import SessionStore
from ..store._memory import MemoryStore
from ..store._sqlite import SqliteStore
from ._control import Aborted, Choice, ControlledPoints, Parked, ScheduleDiverged, quiesce
from ._linearize import check as check_history
from ._linearize import check_lists
from ._monitor import Call, Monitor, RecordingStore, Violation, WatchedBuilder
from ._scenarios import Ctx, Scenario, Script


class Strategy(Protocol):
    def choose(self, step: int, ready: Sequence[Parked], budget: Budget) -> Choice: ...


@dataclass
class Budget:
    """Faults and crashes the strategy may still inject in this run."""

    faults: int = 0
    crashes: int = 0


@dataclass(frozen=True)
class Variant:
    """Which service to run: the reference, or the seed with some windows open."""

    name: str
    windows: frozenset[Window] = frozenset()

    @staticmethod
    def parse(text: str) -> Variant:
        """``reference``, ``seed-0.4.0`` (all windows), or ``seed-0.4.0:<window>[,<window>]``."""
        from ..service._seed import ALL_WINDOWS, parse_windows

        if text == "reference":
            return Variant("reference")
        if text == "seed-0.4.0":
            return Variant("seed-0.4.0", ALL_WINDOWS)
        if text.startswith("seed-0.4.0:"):
            chosen = parse_windows(text.split(":", 1)[1].split(","))
            return Variant(text, chosen)
        raise ValueError(
            f"unknown variant {text!r}; use reference, seed-0.4.0 or seed-0.4.0:<window>"
        )

    def make(
        self,
        builder: WatchedBuilder,
        store: SessionStore,
        points: ControlledPoints,
        max_sessions: int,
    ) -> PersistentSessionService:
        if self.name == "reference":
            return PersistentSessionService(builder, max_sessions, store, points=points)
        return SeedPersistentSessionService(
            builder, max_sessions, store, points=points, windows=self.windows
        )


@dataclass(frozen=True)
class Step:
    """One row of a trace: who ran, at which point, and the store if it changed."""

    index: int
    label: str
    kind: str
    session: str | None
    fault: bool = False
    crash: bool = False
    store: tuple[tuple[str, int], ...] | None = None  # (session, message count) after the step

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"index": self.index, "task": self.label, "point": self.kind}
        if self.session:
            out["session"] = self.session
        if self.fault:
            out["fault"] = True
        if self.crash:
            out["crash"] = True
        if self.store is not None:
            out["store"] = dict(self.store)
        return out


@dataclass
class Node:
    """What the strategy saw at one step: the ready tasks and their next points."""

    ready: tuple[tuple[str, str, str | None, bool], ...]  # label, kind, session, faultable
    chosen: Choice


@dataclass
class RunOutcome:
    scenario: str
    variant: str
    choices: list[Choice]
    steps: list[Step]
    violations: list[Violation]
    history: list[Call]
    nodes: list[Node] = field(default_factory=list)
    end_state: str = ""
    aborted: bool = False
    crashed_at: int | None = None

    @property
    def ok(self) -> bool:
        return not self.violations


def _store_view(monitor: Monitor) -> tuple[tuple[str, int], ...]:
    return tuple(sorted((sid.short(), v[1]) for sid, v in monitor.shadow.items()))


class _Process:
    """One incarnation of the service: it can crash, and a new one can be opened."""

    def __init__(
        self,
        raw: SessionStore,
        monitor: Monitor,
        points: ControlledPoints,
        scenario: Scenario,
        variant: Variant,
        builder: WatchedBuilder,
    ) -> None:
        self.store = RecordingStore(raw, monitor)
        self.svc = variant.make(builder, self.store, points, scenario.max_sessions)
        self.ctx = Ctx(self.svc, points, monitor)


async def _drive(
    scenario: Scenario,
    variant: Variant,
    strategy: Strategy | None,
    raw: SessionStore,
    max_steps: int,
) -> RunOutcome:
    points = ControlledPoints()
    monitor = Monitor(max_sessions=scenario.max_sessions)
    builder = WatchedBuilder(
        ScriptedAgentBuilder(clock=LogicalClock(), points=points, id_factory=counter_ids()), monitor
    )
    budget = Budget(scenario.faults, scenario.crashes)
    outcome = RunOutcome(scenario.name, variant.name, [], [], monitor.violations, monitor.history)
    proc = _Process(raw, monitor, points, scenario, variant, builder)
    diverged: ScheduleDiverged | None = None
    with trio.CancelScope() as process_scope:
        async with proc.svc, trio.open_nursery() as nursery:
            for name, script in scenario.background:
                nursery.start_soon(script, proc.ctx, name, name=f"c:{name}")
            if scenario.setup is not None:
                await scenario.setup(proc.ctx, "setup")
            await quiesce()
            points.enabled = strategy is not None  # None: Trio's own scheduling (a baseline)
            clients_done: set[str] = set()

            async def run_client(name: str, script: Script) -> None:
                await script(proc.ctx, name)
                clients_done.add(name)

            for name, script in scenario.clients:
                nursery.start_soon(run_client, name, script, name=f"c:{name}")
            step = 0
            while True:
                await quiesce()
                monitor.step = step
                monitor.check_step(proc.svc.inner.running_tasks())
                ready = points.ready()
                if not ready or strategy is None:
                    monitor.check_ended(proc.svc.inner.running_tasks())
                    stuck = [
                        f"c:{c}"
                        for c, _ in scenario.clients
                        if c not in clients_done and c not in proc.ctx.host_waiting
                    ]
                    if stuck:
                        monitor.violate(
                            "LIVENESS", f"deadlock: {', '.join(stuck)} blocked, no task can run"
                        )
                    break
                if step >= max_steps:
                    monitor.violate("LIVENESS", f"no end after {max_steps} steps")
                    break
                try:
                    choice = strategy.choose(step, ready, budget)
                except Aborted:
                    outcome.aborted = True
                    break
                outcome.nodes.append(
                    Node(tuple((p.label, p.kind, p.session, p.faultable) for p in ready), choice)
                )
                outcome.choices.append(choice)
                if choice.crash:
                    budget.crashes -= 1
                    outcome.steps.append(Step(step, "process", "crash", None, crash=True))
                    outcome.crashed_at = step
                    proc.store.dead = True
                    points.enabled = False
                    process_scope.cancel()
                    break
                try:
                    parked = points.release(choice)
                except ScheduleDiverged as exc:
                    diverged = exc
                    break
                if choice.fault:
                    budget.faults -= 1
                    if parked.session_id is not None:
                        monitor.faulted.add(parked.session_id)
                monitor.store_changed = False
                step += 1
                await quiesce()
                view = _store_view(monitor) if monitor.store_changed else None
                outcome.steps.append(
                    Step(
                        step - 1,
                        parked.label,
                        parked.kind,
                        parked.session,
                        choice.fault,
                        store=view,
                    )
                )
            points.enabled = False
            nursery.cancel_scope.cancel()
    if diverged is not None:
        raise diverged
    if outcome.aborted:
        return outcome
    # Crashed or not, restart over the same store and read everything back.
    monitor.step += 1
    monitor.history.append(Call("process", "restart", None, monitor.step, monitor.step, "ok"))
    proc = _Process(raw, monitor, points, scenario, variant, builder)
    async with proc.svc:
        await _post_phase(proc.ctx, monitor)
    if not any(c.fault for c in outcome.choices) and strategy is not None:
        problem = check_lists(monitor.history) or check_history(
            monitor.history, scenario.max_sessions
        )
        if problem is not None:
            monitor.violate("LINEARIZABLE", problem)
    outcome.end_state = _fingerprint(monitor)
    return outcome


async def _post_phase(ctx: Ctx, monitor: Monitor) -> None:
    """After the run (and a restart): archived stays gone, acknowledged stays."""
    monitor.step += 1
    for sid in sorted(monitor.issued):
        await ctx.read("post", sid)
        await ctx.load("post", sid)
    await ctx.list("post")
    monitor.check_step(frozenset())


def _fingerprint(monitor: Monitor) -> str:
    text = repr(
        (
            sorted((str(k), v) for k, v in monitor.shadow.items()),
            [(c.client, c.op, c.result) for c in monitor.history],
        )
    )
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def run_once(
    scenario: Scenario,
    variant: Variant,
    strategy: Strategy,
    *,
    store: str = "memory",
    store_dir: str | None = None,
    max_steps: int = 400,
) -> RunOutcome:
    """Run one schedule of ``scenario`` in a fresh ``trio.run`` and a fresh store."""

    async def main() -> RunOutcome:
        if store == "memory":
            return await _drive(scenario, variant, strategy, MemoryStore(), max_steps)
        with tempfile.TemporaryDirectory(dir=store_dir) as tmp:
            sqlite = SqliteStore(os.path.join(tmp, "sessions.sqlite"), threaded=False)
            try:
                return await _drive(scenario, variant, strategy, sqlite, max_steps)
            finally:
                await sqlite.aclose()

    return trio.run(main)


def run_free(
    scenario: Scenario, variant: Variant, seed: int, *, deterministic_hook: bool = False
) -> RunOutcome:
    """A baseline: the same scenario and checks, but Trio schedules (no points parked).

    ``seed`` seeds Trio's scheduler randomness.  By default Trio reverses each
    batch of runnable tasks with probability 1/2; ``deterministic_hook`` uses
    the mode Trio enables under Hypothesis instead (each batch shuffled).
    """
    import trio._core._run as trio_run

    saved = trio_run._ALLOW_DETERMINISTIC_SCHEDULING
    trio_run._ALLOW_DETERMINISTIC_SCHEDULING = deterministic_hook  # type: ignore[misc]
    trio_run._r.seed(seed)
    try:
        return trio.run(_drive, scenario, variant, None, MemoryStore(), 400)
    finally:
        trio_run._ALLOW_DETERMINISTIC_SCHEDULING = saved  # type: ignore[misc]


__all__ = ["Budget", "RunOutcome", "Step", "Strategy", "Variant", "run_free", "run_once"]
