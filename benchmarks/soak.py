"""5. Soak: many live sessions, turns, host loops and archives mixed, on SQLite.

``run_soak`` is the engine; ``benchmarks/bench_soak.py`` runs it at full size
(1,000 live sessions, 10,000 turns) and ``tests/test_soak.py`` scaled down.

Shape.  The run is ``cycles`` cycles.  A cycle fills ``live`` slots with new
sessions (half deferred, half running their first turn), then one worker per
slot loops until the cycle's share of turns is done, picking each step at
random:

- a turn (``start_turn``) on its session;
- a host loop (``host_share``): start a host-mode turn, wait for its first
  reply, inject 1..``max_injected`` messages (some ``/compact``), wait for
  some of them to be served, then end it by ``interrupt`` (the session lives
  on) or by ``archive`` (a new session takes the slot);
- an archive (``archive_share``), two times in three racing a turn on the
  same session (started just before it or just after it, 0..6 scheduling
  points apart, so they meet at different stages); a new session takes the
  slot.

Then every remaining session is archived and the cycle is checked.  The store
is a threaded ``SqliteStore``, as in production; the service runs with
``max_sessions == live``, so capacity must come back on every archive.

Checks (each failure is a ``violation``):

- no deadlock: the whole run finishes inside ``trio.move_on_after(budget_s)``;
- no resurrection: right after each ``archive`` returns, and again after the
  cycle, the id is not in the store (``load_persisted``), ``read`` raises
  ``SessionNotFound``, its gate is gone; after the cycle ``list`` is empty
  and the raw store lists nothing;
- no task left behind: right after each ``archive`` the id is not in
  ``svc.inner.statistics().running_tasks``; after the cycle no session task runs and
  the Trio task tree has as many tasks as before the cycle;
- every session created was archived exactly once;
- memory: after each cycle (everything archived, ``gc.collect()``), the
  traced bytes are back at their starting level within ``memory_tolerance``,
  and the live traced blocks have not grown since the previous cycle beyond
  ``LEAK_BLOCKS_PER_SESSION`` per session archived + ``LEAK_BLOCK_SLACK``.

With faults (``fault_rate`` > 0) the store is wrapped in
``benchmarks.faults.FaultyStore``: that share of writes fail (an I/O error on
one save, a locked file, a full disk for a few writes).  Then a create or
turn may answer ``SESSION_STORE_ERROR`` (counted: the session stays live,
[SAVE-FAILED]) and an archive may fail and is tried again (nothing changed,
[ARCHIVE-ATOMIC]); and each acknowledged create or turn is checked at once
against the store (its revision, or a newer one, is stored: [DURABILITY]).
``benchmarks/soak_kill.py`` adds SIGKILLs of a real process.

The first violation stops the run (``fail_fast``); a run stopped by the
budget is reported as a deadlock, and the service's nursery is then
cancelled so that leaving the service cannot hang on a task nobody stopped.

Why that tolerance.  Emptying a CPython dict or set does not shrink its
table, and tables are re-allocated as they grow under load, so after a cycle
the containers that held one entry per live session or task keep tables at
their high-water size: Trio's task set and run-queue lists, the service's
``_sessions``, ``_tasks`` and ``_gates`` dicts, the store lock's parking lot.
The soak keeps up to three Trio tasks per live session (the session task, its
worker, a turn racing an archive or a host-mode turn) and one waiter on the
store's lock.  At high water a dict costs up to ~72 bytes per entry and a set
~86, so those tables come to roughly 500-800 bytes per live session, whence
``TABLE_BYTES_PER_LIVE = 1024``, plus ``FIXED_SLACK`` for what is not per
session (``sqlite3`` keeps up to 200 dead cursor weakrefs before it sweeps
them, about 17 KiB).  ``residual_top`` lists the largest residual
allocations, to show what the residual is.

Those tables do not grow with the number of sessions *processed*; a leak
does.  So a second check, in live allocations (blocks) rather than bytes: a
table is one block however large it grew, while a leak is at least one block
per leaked object.  With two or more cycles, the live blocks after a cycle
may exceed those after the previous one by at most
``LEAK_BLOCKS_PER_SESSION`` (one block per ten sessions) per session that
cycle archived, plus ``LEAK_BLOCK_SLACK`` for the cursor-weakref sweep and
such.  Anything kept per archived session, even one ``SessionId`` (three
blocks: itself, its ``UUID``, its ``int``), exceeds it.
"""

from __future__ import annotations

import gc
import logging
import math
import random
import sysconfig
import time
import tracemalloc
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path

import trio

from meerkat_ref import (
    CANCELLED_TEXT,
    AgentError,
    CreateSessionRequest,
    EventKind,
    EventStream,
    InitialTurnPolicy,
    PersistentSessionService,
    SessionError,
    SessionFilter,
    SessionId,
    SessionNotFound,
    SessionQuery,
    SessionStoreError,
    SqliteStore,
    StartTurnRequest,
)
from meerkat_ref.agent import COMPACT_COMMAND, ScriptedAgentBuilder
from meerkat_ref.store import SessionStore

from .faults import FaultyStore

TABLE_BYTES_PER_LIVE = 1024
"""Allowance for container tables left at their high-water size, per live session."""

FIXED_SLACK = 64 * 1024
"""Allowance for one-off allocations that are not per session (caches, free lists)."""

LEAK_BLOCKS_PER_SESSION = 0.1
"""Largest cycle-to-cycle growth in live blocks, per session archived in the cycle ..."""

LEAK_BLOCK_SLACK = 256
"""... plus this many blocks, for noise that does not depend on the session count."""

MAX_VIOLATIONS_KEPT = 50

ARCHIVE_ATTEMPTS = 50
"""An archive that fails on a store fault is tried again, up to this many times in all."""


@dataclass(frozen=True)
class SoakConfig:
    live: int = 1_000
    turns: int = 10_000
    cycles: int = 2
    host_share: float = 0.10
    archive_share: float = 0.05
    max_injected: int = 4
    budget_s: float = 300.0
    seed: int = 6
    fail_fast: bool = True  # stop the run at the first violation
    fault_rate: float = 0.0  # share of store writes that fail (benchmarks.faults)
    fault_span: int = 4  # writes a full disk refuses in a row

    def __post_init__(self) -> None:
        if self.live < 1 or self.turns < 1 or self.cycles < 1:
            raise ValueError("live, turns and cycles must be positive")
        if not 0 <= self.host_share + self.archive_share < 1:
            raise ValueError("host_share + archive_share must be in [0, 1)")
        if not 0 <= self.fault_rate < 1 or self.fault_span < 1:
            raise ValueError("fault_rate must be in [0, 1) and fault_span positive")


def memory_tolerance(config: SoakConfig) -> int:
    """Bytes the traced memory may stay above its start once everything is archived."""
    return TABLE_BYTES_PER_LIVE * config.live + FIXED_SLACK


@dataclass
class SoakReport:
    config: SoakConfig
    elapsed: float = 0.0
    deadlocked: bool = False
    turns: int = 0
    turns_cancelled: int = 0  # racing turns cut short by the archive
    turns_refused: int = 0  # racing turns that found the session already archived
    host_loops: int = 0
    host_messages_injected: int = 0
    host_messages_served: int = 0  # ones the soak waited for (others may be served too)
    interrupts: int = 0
    archives_mid_run: int = 0
    archives: int = 0
    creates: int = 0
    violations: list[str] = field(default_factory=list)
    violation_count: int = 0
    memory_start: int = 0
    memory_loaded: int = 0  # traced, with every slot live, before the final archive of a cycle
    memory_after: list[int] = field(default_factory=list)  # after each cycle
    blocks_start: int = 0  # live traced allocations (blocks) at the start
    blocks_after: list[int] = field(default_factory=list)  # and after each cycle
    memory_peak: int = 0
    archived_per_cycle: list[int] = field(default_factory=list)
    tasks_start: int = 0
    tasks_after: list[int] = field(default_factory=list)
    residual_top: list[str] = field(default_factory=list)
    # with faults
    store_writes: int = 0
    faults: dict[str, int] = field(default_factory=dict)  # kind -> writes failed
    creates_unsaved: int = 0  # creates answered SESSION_STORE_ERROR (live, unsaved)
    turns_unsaved: int = 0  # turns answered SESSION_STORE_ERROR (done, unsaved)
    archive_retries: int = 0  # archives that failed on a fault and were tried again
    checkpoints_failed: int = 0  # host-loop checkpoints whose save failed (logged, not raised)
    acks_checked: int = 0  # acknowledged creates and turns checked against the store
    lost: int = 0  # ... whose revision the store did not hold
    resurrected: int = 0  # archived sessions seen again (store, read)

    @property
    def operations(self) -> int:
        """Calls made: creates, turns (done, cancelled, refused, unsaved), host loops, archives."""
        return (self.creates + self.turns + self.turns_cancelled + self.turns_refused
                + self.turns_unsaved + self.host_loops + self.archives + self.archive_retries)

    @property
    def faults_injected(self) -> int:
        return sum(self.faults.values())

    @property
    def leaked_tasks(self) -> int:
        """Trio tasks left over after a cycle, at most (0: none leaked)."""
        return max((abs(t - self.tasks_start) for t in self.tasks_after), default=0)

    @property
    def tolerance(self) -> int:
        return memory_tolerance(self.config)

    @property
    def residual(self) -> int:
        """Traced bytes above the start after the last cycle."""
        return (
            self.memory_after[-1] if self.memory_after else self.memory_start
        ) - self.memory_start

    @property
    def cycle_growth(self) -> list[int]:
        """Growth in live blocks from the end of each cycle to the end of the next."""
        return [b - a for a, b in zip(self.blocks_after, self.blocks_after[1:], strict=False)]

    @property
    def leak_limits(self) -> list[int]:
        return [
            math.floor(LEAK_BLOCKS_PER_SESSION * n) + LEAK_BLOCK_SLACK
            for n in self.archived_per_cycle[1:]
        ]

    @property
    def memory_ok(self) -> bool:
        if not self.memory_after or self.residual > self.tolerance:
            return False
        return all(g <= limit for g, limit in zip(self.cycle_growth, self.leak_limits, strict=True))

    @property
    def ok(self) -> bool:
        return not self.deadlocked and self.violation_count == 0 and self.memory_ok

    def problems(self) -> list[str]:
        """Every failed check, in words (empty when ``ok``)."""
        out: list[str] = []
        if self.deadlocked:
            out.append(f"deadlock: not finished within the {self.config.budget_s:.0f} s budget")
        if self.violation_count:
            out.append(
                f"{self.violation_count} violation(s), first: " + "; ".join(self.violations[:5])
            )
        if not self.memory_after:
            out.append("memory: no cycle completed")
        elif self.residual > self.tolerance:
            out.append(
                f"memory: {self.residual:,} B above the start after everything was archived "
                f"(tolerance {self.tolerance:,} B); top residual lines: "
                + "; ".join(self.residual_top[:5])
            )
        for i, (growth, limit) in enumerate(zip(self.cycle_growth, self.leak_limits, strict=True)):
            if growth > limit:
                out.append(
                    f"memory: cycle {i + 2} ended with {growth:,} more live blocks than cycle "
                    f"{i + 1} (limit {limit:,} = {LEAK_BLOCKS_PER_SESSION} × "
                    f"{self.archived_per_cycle[i + 1]:,} sessions archived + {LEAK_BLOCK_SLACK})"
                )
        return out


def count_tasks() -> int:
    """Every task in this Trio run (the whole tree from the root task)."""
    root = trio.lowlevel.current_root_task()
    if root is None:
        return 0
    pending = [root]
    count = 0
    while pending:
        task = pending.pop()
        count += 1
        for nursery in task.child_nurseries:
            pending.extend(nursery.child_tasks)
    return count


def _traced() -> int:
    """Traced bytes now, after a full collection."""
    gc.collect()
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def _blocks() -> int:
    """Live traced allocations now (call right after ``_traced``)."""
    return len(tracemalloc.take_snapshot().traces)


_PROMPTS = tuple(f"soak prompt {i}: tell me about item {i * 7 % 13}" for i in range(16))
_PLACEHOLDER = SessionId.from_int(0)


class _Soak:
    def __init__(
        self,
        config: SoakConfig,
        svc: PersistentSessionService,
        store: SqliteStore,
        report: SoakReport,
        faulty: FaultyStore | None = None,
    ) -> None:
        self.config = config
        self.svc = svc
        self.store = store  # the file itself: never faulted
        self.faulty = faulty
        self.report = report
        self.rng = random.Random(config.seed)
        self.slots: list[SessionId] = []
        self.archived: list[SessionId] = []  # this cycle's archived ids
        self.turn_target = 0
        self.stop = trio.CancelScope()  # cancelled at the first violation when failing fast

    # -- bookkeeping -----------------------------------------------------------

    def violation(self, text: str) -> None:
        self.report.violation_count += 1
        if len(self.report.violations) < MAX_VIOLATIONS_KEPT:
            self.report.violations.append(text)
        if self.config.fail_fast:
            self.stop.cancel()

    def prompt(self) -> str:
        return _PROMPTS[self.rng.randrange(len(_PROMPTS))]

    # -- actions ---------------------------------------------------------------

    async def create(self) -> SessionId:
        immediate = self.rng.random() < 0.5
        policy = InitialTurnPolicy.RUN_IMMEDIATELY if immediate else InitialTurnPolicy.DEFER
        try:
            result = await self.svc.create_session(
                CreateSessionRequest(model="scripted", prompt=self.prompt(), initial_turn=policy)
            )
        except SessionStoreError as exc:  # [SAVE-FAILED] live, unsaved: it takes the slot
            if exc.session_id is None:
                raise
            self.report.creates += 1
            self.report.creates_unsaved += 1
            return exc.session_id
        self.report.creates += 1
        await self.acknowledged(result.session_id)
        return result.session_id

    async def acknowledged(self, session_id: SessionId) -> None:
        """[DURABILITY] an acknowledged create or turn: its revision (or newer) is stored.

        Only for calls no archive races (the session's worker is the only
        caller on it), so the live revision now is the call's own.
        """
        live = await self.svc.export_session(session_id)
        stored = await self.svc.load_persisted(session_id)
        self.report.acks_checked += 1
        if stored is None or stored.revision < live.revision:
            self.report.lost += 1
            shown = "nothing" if stored is None else f"revision {stored.revision}"
            self.violation(f"{session_id}: acknowledged at revision {live.revision}, "
                           f"the store holds {shown}")

    async def fill(self, slot: int) -> None:
        self.slots[slot] = await self.create()

    async def turn(self, session_id: SessionId) -> None:
        try:
            await self.svc.start_turn(session_id, StartTurnRequest(self.prompt()))
        except SessionStoreError:
            self.report.turns_unsaved += 1  # [SAVE-FAILED] done, not saved
            return
        except SessionError as exc:
            self.violation(f"turn on live session {session_id} failed: {exc!r}")
            return
        self.report.turns += 1
        await self.acknowledged(session_id)

    async def archive_checked(self, session_id: SessionId) -> None:
        """Archive (again after a store fault), then check at once that nothing is left."""
        for _ in range(ARCHIVE_ATTEMPTS):
            try:
                await self.svc.archive(session_id)
                break
            except SessionStoreError:  # nothing changed [ARCHIVE-ATOMIC]: try again
                self.report.archive_retries += 1
            except SessionError as exc:
                self.violation(f"archive of {session_id} failed: {exc!r}")
                return
        else:
            self.violation(f"archive of {session_id} failed {ARCHIVE_ATTEMPTS} times")
            return
        self.report.archives += 1
        self.archived.append(session_id)
        if session_id in self.svc.inner.statistics().running_tasks:
            self.violation(f"{session_id}: session task still running after archive returned")
        if session_id in self.svc.inner.statistics().live:
            self.violation(f"{session_id}: still live after archive returned")
        if self.svc.gate_armed(session_id) is not None:
            self.violation(f"{session_id}: checkpointer gate kept after archive returned")
        if await self.svc.load_persisted(session_id) is not None:
            self.report.resurrected += 1
            self.violation(f"{session_id}: in the store right after archive returned")

    async def archive_racing(self, slot: int) -> None:
        """Archive the slot's session, usually racing a turn on it.

        A third of the time the turn starts first, a third of the time the
        archive does (the turn is then tried after the pause), and a third
        of the time there is no turn.  The pause (0..6 scheduling points)
        moves the archive across the turn's stages.  Acceptable ends of the
        turn: done, cancelled (``CANCELLED_TEXT``) or ``SessionNotFound``.
        """
        session_id = self.slots[slot]
        mode = self.rng.randrange(3)
        pause = self.rng.randint(0, 6)
        prompt = self.prompt()

        async def racer() -> None:
            try:
                await self.svc.start_turn(session_id, StartTurnRequest(prompt))
            except AgentError as exc:
                if exc.message == CANCELLED_TEXT:
                    self.report.turns_cancelled += 1
                else:
                    self.violation(f"turn racing archive of {session_id}: {exc!r}")
                return
            except SessionNotFound:
                self.report.turns_refused += 1
                return
            except SessionStoreError:
                self.report.turns_unsaved += 1  # [SAVE-FAILED]
                return
            except SessionError as exc:
                self.violation(f"turn racing archive of {session_id}: {exc!r}")
                return
            self.report.turns += 1

        async with trio.open_nursery() as nursery:
            if mode == 0:
                nursery.start_soon(racer)
            elif mode == 1:
                nursery.start_soon(self.archive_checked, session_id)
            for _ in range(pause):
                await trio.lowlevel.checkpoint()
            if mode == 1:
                await racer()
            else:
                await self.archive_checked(session_id)
        self.report.archives_mid_run += 1
        self.slots[slot] = await self.create()

    async def _await_events(
        self, stream: EventStream, count: int, kinds: Collection[EventKind]
    ) -> bool:
        """Wait for ``count`` events of ``kinds``; False if the stream ended first."""
        if count <= 0:
            return True
        seen = 0
        async for event in stream:
            if event.kind in kinds:
                seen += 1
                if seen >= count:
                    return True
        return False

    async def host_loop(self, slot: int) -> None:
        session_id = self.slots[slot]
        by_archive = self.rng.random() < 0.5
        texts = [
            COMPACT_COMMAND if self.rng.random() < 0.25 else self.prompt()
            for _ in range(self.rng.randint(1, self.config.max_injected))
        ]
        wait_for = self.rng.randint(0, len(texts))
        pause = self.rng.randint(0, 3)
        stream = await self.svc.subscribe_session_events(session_id)

        async def host_turn() -> None:
            try:
                await self.svc.start_turn(
                    session_id, StartTurnRequest(self.prompt(), host_mode=True)
                )
            except AgentError as exc:
                if exc.message != CANCELLED_TEXT:
                    self.violation(f"host loop of {session_id} ended with {exc!r}")
                return
            except SessionError as exc:
                self.violation(f"host loop of {session_id} ended with {exc!r}")
                return
            self.violation(f"host loop of {session_id} returned without being stopped")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(host_turn)
            if not await self._await_events(stream, 1, (EventKind.RUN_COMPLETED,)):
                self.violation(f"events of {session_id} ended before its host loop started")
            injector = await self.svc.event_injector(session_id)
            if injector is None:
                self.violation(f"no injector for live session {session_id}")
            else:
                for text in texts:
                    injector.inject(text)
                self.report.host_messages_injected += len(texts)
                served = (EventKind.TEXT_COMPLETE, EventKind.COMPACTED)
                if await self._await_events(stream, wait_for, served):
                    self.report.host_messages_served += wait_for
                else:
                    self.violation(f"events of {session_id} ended while its host loop served")
            for _ in range(pause):
                await trio.lowlevel.checkpoint()
            if by_archive:
                await self.archive_checked(session_id)
                self.report.archives_mid_run += 1
            else:
                try:
                    await self.svc.interrupt(session_id)
                    self.report.interrupts += 1
                except SessionError as exc:
                    self.violation(f"interrupt of host loop of {session_id}: {exc!r}")
                    nursery.cancel_scope.cancel()
        self.report.host_loops += 1
        if by_archive:
            self.slots[slot] = await self.create()

    async def worker(self, slot: int) -> None:
        host = self.config.host_share
        archive = host + self.config.archive_share
        while self.report.turns < self.turn_target:
            roll = self.rng.random()
            if roll < host:
                await self.host_loop(slot)
            elif roll < archive:
                await self.archive_racing(slot)
            else:
                await self.turn(self.slots[slot])

    # -- cycles and checks -----------------------------------------------------

    async def cycle(self, turn_target: int) -> None:
        self.turn_target = turn_target
        live = self.config.live
        self.slots = [_PLACEHOLDER] * live
        async with trio.open_nursery() as nursery:
            for slot in range(live):
                nursery.start_soon(self.fill, slot)
        async with trio.open_nursery() as nursery:
            for slot in range(live):
                nursery.start_soon(self.worker, slot)
        self.report.memory_loaded = _traced()
        async with trio.open_nursery() as nursery:
            for session_id in self.slots:
                nursery.start_soon(self.archive_checked, session_id)
        self.slots = []

    async def verify_cycle(self, cycle: int) -> None:
        svc = self.svc
        where = f"after cycle {cycle}"
        if svc.inner.statistics().running_tasks:
            self.violation(
                f"{where}: {len(svc.inner.statistics().running_tasks)} session task(s) "
                "still running"
            )
        if svc.inner.statistics().live or svc.inner.live_count:
            self.violation(f"{where}: {svc.inner.live_count} session(s) still hold capacity")
        listed = await svc.list(SessionQuery())
        if listed:
            self.violation(
                f"{where}: list shows {len(listed)} archived session(s), e.g. {listed[0]}"
            )
        stored = await self.store.list(SessionFilter())
        if stored:
            self.violation(
                f"{where}: the store still has {len(stored)} row(s), e.g. {stored[0].id}"
            )
        for session_id in self.archived:
            if await svc.load_persisted(session_id) is not None:
                self.report.resurrected += 1
                self.violation(f"{where}: archived {session_id} is back in the store")
            try:
                await svc.read(session_id)
            except SessionNotFound:
                pass
            else:
                self.report.resurrected += 1
                self.violation(f"{where}: read finds archived {session_id}")
            if svc.gate_armed(session_id) is not None:
                self.violation(f"{where}: archived {session_id} has a gate again")
        if len(set(self.archived)) != len(self.archived):
            self.violation(f"{where}: some session was archived twice")
        if self.report.archives != self.report.creates:
            self.violation(
                f"{where}: {self.report.creates} sessions created, {self.report.archives} archived"
            )
        tasks = count_tasks()
        if tasks != self.report.tasks_start:
            self.violation(
                f"{where}: {tasks - self.report.tasks_start:+d} Trio task(s) since the start"
            )
        self.report.tasks_after.append(tasks)

    async def warm_up(self) -> None:
        """One of each action on a few sessions, before measuring memory.

        Fills the caches that a first use fills (SQLite's statement cache,
        Trio's worker thread, lazily built module state), so they are part
        of the starting level and not counted as growth.
        """
        self.slots = [await self.create(), await self.create()]
        await self.turn(self.slots[0])
        await self.host_loop(0)
        await self.archive_racing(1)
        for session_id in self.slots:
            await self.archive_checked(session_id)
        await self.verify_cycle(0)
        self.slots = []
        self.archived = []
        self.report.tasks_after.clear()

    async def run(self) -> None:
        report = self.report
        report.tasks_start = count_tasks()
        await self.warm_up()
        start_snapshot = tracemalloc.take_snapshot()
        report.memory_start = _traced()
        report.blocks_start = _blocks()
        per_cycle = math.ceil(self.config.turns / self.config.cycles)
        turns_before = report.turns
        for cycle in range(1, self.config.cycles + 1):
            await self.cycle(turns_before + per_cycle * cycle)
            await self.verify_cycle(cycle)
            report.archived_per_cycle.append(len(self.archived))
            self.archived = []
            report.memory_after.append(_traced())
            report.blocks_after.append(_blocks())
        report.memory_peak = tracemalloc.get_traced_memory()[1]
        if report.residual > 0:
            end_snapshot = tracemalloc.take_snapshot()
            top = end_snapshot.compare_to(start_snapshot, "lineno")[:8]
            report.residual_top = [_portable(str(stat)) for stat in top]
        del start_snapshot


def _portable(line: str) -> str:
    """A tracemalloc line without the machine's paths: ``trio/_core/_run.py:405: ...``.

    Results are checked in; where this machine keeps its files is nobody's business.
    """
    for marker in ("site-packages/", "meerkat_ref/", "benchmarks/"):
        at = line.find(marker)
        if at >= 0:
            start = at + len("site-packages/") if marker == "site-packages/" else at
            return line[start:]
    stdlib = sysconfig.get_paths()["stdlib"].rstrip("/") + "/"
    if line.startswith(stdlib):  # the standard library, wherever this Python keeps it
        return "<stdlib>/" + line[len(stdlib):]
    return line


class _CountCheckpointFailures(logging.Filter):
    """Counts the service's "checkpoint failed" warnings [CHECKPOINT] instead of printing them."""

    def __init__(self, report: SoakReport) -> None:
        super().__init__()
        self.report = report

    def filter(self, record: logging.LogRecord) -> bool:
        self.report.checkpoints_failed += 1
        return False


ServiceFactory = Callable[[SessionStore, int], PersistentSessionService]


def reference_service(store: SessionStore, max_sessions: int) -> PersistentSessionService:
    return PersistentSessionService(ScriptedAgentBuilder(), max_sessions, store)


async def run_soak(
    config: SoakConfig,
    directory: Path,
    make_service: ServiceFactory = reference_service,
) -> SoakReport:
    """Run the soak on a threaded ``SqliteStore`` in ``directory``; never raises for a failed check.

    ``make_service(store, max_sessions)`` builds the service under test (the
    reference by default; a test passes the seed variant to show the checks
    catch its windows).  Traces memory with tracemalloc for the run (and
    stops it again if it was not already tracing).  A crash inside the run is
    recorded as a violation.
    """
    report = SoakReport(config)
    counted = _CountCheckpointFailures(report)
    checkpoint_log = logging.getLogger("meerkat_ref.checkpoint")
    checkpoint_log.addFilter(counted)
    # Counted through the log: make sure whoever ran before us has not hushed it.
    level = checkpoint_log.level
    checkpoint_log.setLevel(logging.WARNING)
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    store = await SqliteStore.open(directory / "soak.db")
    faulty = None
    if config.fault_rate:
        faulty = FaultyStore(store, rate=config.fault_rate, seed=config.seed,
                             span=config.fault_span)
    try:
        async with make_service(faulty or store, config.live) as svc:
            soak = _Soak(config, svc, store, report, faulty)
            start = time.perf_counter()
            with trio.move_on_after(config.budget_s) as budget, soak.stop:
                try:
                    await soak.run()
                except Exception as exc:  # an ExceptionGroup from a nursery, most likely
                    soak.violation(f"the soak crashed: {exc!r}")
            report.elapsed = time.perf_counter() - start
            report.deadlocked = budget.cancelled_caught
            if report.deadlocked or report.violation_count:
                # Something may still be running that shutdown does not know of
                # (a session task left behind by an archive): cancel the service's
                # nursery, or leaving the service would wait for it forever.
                nursery = svc.inner._nursery
                if nursery is not None:
                    nursery.cancel_scope.cancel()
    finally:
        await store.aclose()
        if not was_tracing:
            tracemalloc.stop()
        checkpoint_log.removeFilter(counted)
        checkpoint_log.setLevel(level)
    if faulty is not None:
        report.store_writes = faulty.writes
        report.faults = dict(faulty.injected)
    return report
