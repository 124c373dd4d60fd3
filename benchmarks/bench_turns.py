"""3. Turns through the service, and memory per live session.

Turns: ``c`` concurrent workers (1, 10, 100), each running sequential turns
on its own sessions, ``TURNS_PER_SESSION`` turns per session (so histories
stay short and every way sees the same history lengths; a worker with more
turns to run moves on to its next session).  Sessions are created beforehand
(deferred) and only the turns are timed.  Measured, interleaved per round:

- the scripted agent called directly (``build_agent`` then ``run_turn``): the
  baseline, the cost of the turn itself;
- ``EphemeralSessionService`` (no store): the session task and its commands;
- ``PersistentSessionService`` on a ``MemoryStore``: plus the gate and a save;
- ``PersistentSessionService`` on a ``SqliteStore`` (default durability): the
  headline figure.

The issue sets no goal for turns: the ratio service ÷ direct is reported
(the overhead factor is its inverse).

Memory: tracemalloc's traced bytes per live session with 10,000 sessions
created (deferred) in an ``EphemeralSessionService(max_sessions=10_001)``,
against the bytes per bare agent from ``build_agent`` alone.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

import trio

from meerkat_ref import (
    AgentEvent,
    CreateSessionRequest,
    EphemeralSessionService,
    InitialTurnPolicy,
    MemoryStore,
    PersistentSessionService,
    SessionId,
    SqliteStore,
    StartTurnRequest,
)
from meerkat_ref.agent import ScriptedAgent, ScriptedAgentBuilder

from ._common import (
    Row,
    Section,
    Table,
    fmt_bytes,
    fmt_rate,
    fmt_ratio,
    fmt_seconds,
    median,
    profile_async,
    say,
)
from ._data import remove_db

TURNS_PER_SESSION = 20
PROMPT = "summarise the last three messages in one short sentence please"
DEFERRED = CreateSessionRequest(
    model="scripted", prompt="hello", initial_turn=InitialTurnPolicy.DEFER
)
WAYS = ("direct", "ephemeral", "persistent-memory", "persistent-sqlite")
WAY_NAMES = {
    "direct": "scripted agent, direct",
    "ephemeral": "EphemeralSessionService",
    "persistent-memory": "PersistentSessionService + MemoryStore",
    "persistent-sqlite": "PersistentSessionService + SqliteStore",
}


@dataclass(frozen=True)
class TurnScale:
    concurrency: tuple[int, ...]
    turns: int  # aimed-at turns per measurement (at least TURNS_PER_SESSION per worker)
    rounds: int
    memory_sessions: int


FULL = TurnScale(concurrency=(1, 10, 100), turns=2_400, rounds=5, memory_sessions=10_000)
QUICK = TurnScale(concurrency=(1, 10, 100), turns=400, rounds=1, memory_sessions=1_000)


def _ignore(event: AgentEvent) -> None:
    return None


def sessions_per_worker(scale: TurnScale, concurrency: int) -> int:
    return max(1, scale.turns // (TURNS_PER_SESSION * concurrency))


async def direct(concurrency: int, per_worker: int) -> tuple[int, float]:
    """Turns and seconds for agents driven directly, ``concurrency`` tasks at a time."""
    builder = ScriptedAgentBuilder()
    agents: list[list[ScriptedAgent]] = [
        [await builder.build_agent(DEFERRED) for _ in range(per_worker)] for _ in range(concurrency)
    ]

    async def worker(mine: list[ScriptedAgent]) -> None:
        for agent in mine:
            for _ in range(TURNS_PER_SESSION):
                await agent.run_turn(PROMPT, _ignore)

    gc.collect()
    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for mine in agents:
            nursery.start_soon(worker, mine)
    return concurrency * per_worker * TURNS_PER_SESSION, time.perf_counter() - start


async def through_service(
    way: str, concurrency: int, per_worker: int, workdir: Path
) -> tuple[int, float]:
    """Turns and seconds through a service (``way`` names which), sessions made beforehand."""
    capacity = concurrency * per_worker
    builder = ScriptedAgentBuilder()
    svc: EphemeralSessionService | PersistentSessionService
    sqlite: SqliteStore | None = None
    path = workdir / "turns.db"
    if way == "ephemeral":
        svc = EphemeralSessionService(builder, capacity)
    elif way == "persistent-memory":
        svc = PersistentSessionService(builder, capacity, MemoryStore())
    else:
        remove_db(path)
        sqlite = await SqliteStore.open(path)
        svc = PersistentSessionService(builder, capacity, sqlite)
    try:
        async with svc:
            ids: list[list[SessionId]] = [
                [(await svc.create_session(DEFERRED)).session_id for _ in range(per_worker)]
                for _ in range(concurrency)
            ]

            async def worker(mine: list[SessionId]) -> None:
                request = StartTurnRequest(PROMPT)
                for session_id in mine:
                    for _ in range(TURNS_PER_SESSION):
                        await svc.start_turn(session_id, request)

            gc.collect()
            start = time.perf_counter()
            async with trio.open_nursery() as nursery:
                for mine in ids:
                    nursery.start_soon(worker, mine)
            elapsed = time.perf_counter() - start
    finally:
        if sqlite is not None:
            await sqlite.aclose()
    return capacity * TURNS_PER_SESSION, elapsed


async def _one(way: str, concurrency: int, per_worker: int, workdir: Path) -> tuple[int, float]:
    if way == "direct":
        return await direct(concurrency, per_worker)
    return await through_service(way, concurrency, per_worker, workdir)


def _traced_now() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


async def memory_per_session(count: int) -> tuple[float, float]:
    """Traced bytes per live session in the ephemeral service, and per bare agent."""
    builder = ScriptedAgentBuilder()
    await builder.build_agent(DEFERRED)  # warm-up
    tracemalloc.start()
    try:
        before = _traced_now()
        agents = [await builder.build_agent(DEFERRED) for _ in range(count)]
        bare = (_traced_now() - before) / count
    finally:
        tracemalloc.stop()
    del agents
    gc.collect()

    async with EphemeralSessionService(builder, max_sessions=count + 1) as svc:
        await svc.create_session(DEFERRED)  # warm-up (stays live, counted before)
        tracemalloc.start()
        try:
            before = _traced_now()
            for _ in range(count):
                await svc.create_session(DEFERRED)
            per_session = (_traced_now() - before) / count
        finally:
            tracemalloc.stop()
    return per_session, bare


async def run(scale: TurnScale, workdir: Path) -> Section:
    section = Section("turns", "3. Turns per second, and memory per live session")
    rates: dict[tuple[str, int], list[float]] = {}
    for concurrency in scale.concurrency:
        per_worker = sessions_per_worker(scale, concurrency)
        for round_no in range(scale.rounds):
            say(
                f"turns: {concurrency} concurrent, {per_worker} session(s) each, "
                f"round {round_no + 1}/{scale.rounds}"
            )
            for way in WAYS:
                turns, elapsed = await _one(way, concurrency, per_worker, workdir)
                rates.setdefault((way, concurrency), []).append(turns / elapsed)

    sampled = scale.concurrency[1] if len(scale.concurrency) > 1 else scale.concurrency[0]

    async def sample() -> None:
        await through_service("persistent-sqlite", sampled, 1, workdir)

    say(f"turns: profiling PersistentSessionService + SqliteStore at {sampled}")
    section.profiles.append(
        (
            f"cProfile (for information, no goal): {sampled * TURNS_PER_SESSION} turns through "
            f"PersistentSessionService + SqliteStore, {sampled} concurrent sessions (event-loop "
            "thread; the worker thread's SQLite time shows as `epoll.poll`)",
            await profile_async(sample),
        )
    )

    say(f"memory: {scale.memory_sessions:,} live sessions")
    per_session, bare = await memory_per_session(scale.memory_sessions)

    for concurrency in scale.concurrency:
        service = median(rates[("persistent-sqlite", concurrency)])
        baseline = median(rates[("direct", concurrency)])
        section.rows.append(
            Row(
                figure=f"PersistentSessionService + SqliteStore, {concurrency} concurrent "
                f"session(s): {fmt_rate(service, ' turns/s')}",
                baseline=f"scripted agent called directly, {concurrency} task(s): "
                f"{fmt_rate(baseline, ' turns/s')}",
                ratio=service / baseline,
                ratio_text=f"{fmt_ratio(service / baseline)} "
                f"(overhead {fmt_ratio(baseline / service)})",
            )
        )
    section.rows.append(
        Row(
            figure=f"EphemeralSessionService, traced memory per live session at "
            f"{scale.memory_sessions:,} live: {fmt_bytes(per_session)}",
            baseline=f"bare agent from `build_agent`, per agent: {fmt_bytes(bare)}",
            ratio=per_session / bare,
        )
    )

    detail = Table(
        f"Turns/s by layer (median of {scale.rounds} round(s); {TURNS_PER_SESSION} turns per "
        "session; ratio to direct in brackets)",
        ["Concurrent sessions", *(WAY_NAMES[w] for w in WAYS)],
    )
    for concurrency in scale.concurrency:
        base = median(rates[("direct", concurrency)])
        cells = [str(concurrency)]
        for way in WAYS:
            rate = median(rates[(way, concurrency)])
            cells.append(
                fmt_rate(rate)
                if way == "direct"
                else f"{fmt_rate(rate)} ({fmt_ratio(rate / base)})"
            )
        detail.rows.append(cells)
    section.tables.append(detail)
    cost = Table(
        "Time per turn by layer, and what each layer adds (from the medians above)",
        ["Concurrent sessions", "direct", "+ session task", "+ gate and save (memory)", "+ SQLite"],
    )
    for concurrency in scale.concurrency:
        per = [1 / median(rates[(way, concurrency)]) for way in WAYS]
        cost.rows.append(
            [
                str(concurrency),
                fmt_seconds(per[0]),
                fmt_seconds(per[1] - per[0]),
                fmt_seconds(per[2] - per[1]),
                fmt_seconds(per[3] - per[2]),
            ]
        )
    section.tables.append(cost)
    section.notes.append(
        "Memory is tracemalloc's count of live Python allocations (the SQLite library's own "
        "memory is not included; the ephemeral service has none).  A live session is its "
        "agent and session plus the service's handle, command channel, event broadcast, "
        "cancel scopes and its Trio task (coroutine frames)."
    )
    return section
