"""1. List at scale: ``PersistentSessionService.list(SessionQuery(limit=50))``.

Stores hold 1k, 10k and 100k persisted sessions (filled directly: SQLite by
one ``executemany`` of real rows, memory through ``save``) plus ``LIVE`` live
sessions, which are the newest.  ``listers`` tasks call ``list`` concurrently,
``calls_each`` times each; every call's latency is recorded.  A single
lister is measured too (``solo_calls``): the latency of a call that waits
for no other.  All six stores (two kinds, three sizes) are filled first and
stay open; then ``rounds`` rounds each measure every store and size in turn,
so a burst of load from elsewhere on the machine lands on every size rather
than on one, and the figures pool the samples of all rounds.  Once filled,
the stored data is moved out of the garbage collector's sight
(``gc.freeze``): it lives for the whole run, and a full collection walking
it would otherwise land in whichever call happened to trigger it.

Goal (issue 6): the per-call latency at 100k within 1.5× of that at 1k.

In the same run, on the same data, "the seed's way" (``seed_list``: what
meerkat-session 0.4.0 does: every live summary, then *every* stored row, then
offset/limit) is measured, and the ratio seed ÷ ours is reported at equal
concurrency.  The seed's way reads the whole store per call, so at 10k and
100k it runs with fewer listers and calls (``ListScale.seed_configs``) and
ours is measured again at that same concurrency for the ratio.
"""

from __future__ import annotations

import contextlib
import gc
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import trio

from meerkat_ref import (
    CreateSessionRequest,
    InitialTurnPolicy,
    PersistentSessionService,
    Session,
    SessionFilter,
    SessionQuery,
    SessionSummary,
    SqliteStore,
)
from meerkat_ref.agent import ScriptedAgentBuilder
from meerkat_ref.store import BUILTIN_KINDS, SessionStore

from ._common import (
    Latency,
    Row,
    Section,
    Table,
    at_most,
    fmt_rate,
    fmt_ratio,
    fmt_seconds,
    profile_async,
    say,
)
from ._data import bulk_insert, fill_memory, stored_sessions

LIVE = 20
"""Live sessions in the service while listing: they are merged into every page."""

PAGE = SessionQuery(limit=50)
GOAL = at_most(1.5)
STORE_KINDS = tuple(BUILTIN_KINDS)  # the registry's: memory, sqlite
KIND_NAMES = {"memory": "MemoryStore", "sqlite": "SqliteStore"}  # how the tables name them

ListFn = Callable[[PersistentSessionService, SessionQuery], Awaitable[list[SessionSummary]]]


@dataclass(frozen=True)
class ListScale:
    sizes: tuple[int, ...]
    listers: int
    calls_each: int
    solo_calls: int  # calls by a single lister (no queueing): the uncontended latency
    rounds: int  # ours is measured this many times per store and size, interleaved
    seed_configs: dict[int, tuple[int, int]]  # size -> (listers, calls each) for the seed's way


FULL = ListScale(
    sizes=(1_000, 10_000, 100_000),
    listers=50,
    calls_each=2,
    solo_calls=6,
    rounds=10,
    seed_configs={1_000: (50, 2), 10_000: (10, 2), 100_000: (2, 2)},
)
QUICK = ListScale(  # a smoke run of the harness: smaller stores, not the goal's sizes
    sizes=(1_000, 3_000, 10_000),
    listers=50,
    calls_each=2,
    solo_calls=5,
    rounds=2,
    seed_configs={1_000: (50, 1), 3_000: (10, 1), 10_000: (2, 1)},
)


async def ours(svc: PersistentSessionService, query: SessionQuery) -> list[SessionSummary]:
    """The reference: reads only ``offset + limit + live`` stored rows, then merges."""
    return await svc.list(query)


async def seed_list(svc: PersistentSessionService, query: SessionQuery) -> list[SessionSummary]:
    """The seed's ``list`` (meerkat-session 0.4.0, ``persistent.rs``), step for step.

    1. every live summary (``inner.list(SessionQuery::default())``);
    2. the ids of those, as a set;
    3. ``store.list(SessionFilter::default())``: every stored row;
    4. append each stored row whose id is not live (no re-sort: live first);
    5. apply ``offset`` (``split_off``), then ``limit`` (``truncate``).
    """
    summaries = await svc.inner.list(SessionQuery())
    live_ids = {s.session_id for s in summaries}
    stored = await svc.store.list(SessionFilter())
    for meta in stored:
        if meta.id not in live_ids:
            summaries.append(
                SessionSummary(
                    session_id=meta.id,
                    created_at=meta.created_at,
                    updated_at=meta.updated_at,
                    message_count=meta.message_count,
                    total_tokens=meta.total_tokens,
                    is_active=False,
                )
            )
    if query.offset is not None:
        summaries = summaries[query.offset :] if query.offset < len(summaries) else []
    if query.limit is not None:
        del summaries[query.limit :]
    return summaries


async def measure(
    svc: PersistentSessionService, way: ListFn, listers: int, calls_each: int
) -> Latency:
    """``listers`` concurrent tasks, each calling ``way`` ``calls_each`` times."""
    samples: list[float] = []

    async def lister() -> None:
        for _ in range(calls_each):
            start = time.perf_counter()
            await way(svc, PAGE)
            samples.append(time.perf_counter() - start)

    await way(svc, PAGE)  # warm-up: caches, the statement cache, the worker thread
    gc.collect()
    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(listers):
            nursery.start_soon(lister)
    return Latency(tuple(samples), time.perf_counter() - start)


Key = tuple[str, int, str, int]  # (store kind, size, way, listers)


def _merge(old: Latency | None, new: Latency) -> Latency:
    if old is None:
        return new
    return Latency(old.samples + new.samples, old.wall + new.wall)


async def _open_service(
    stack: contextlib.AsyncExitStack,
    kind: str,
    size: int,
    sessions: list[Session],
    workdir: Path,
) -> PersistentSessionService:
    """A service over a store holding ``sessions``, with ``LIVE`` live sessions on top.

    The store is made by its kind; it is filled the fastest way its type allows.
    """
    place = workdir / f"list-{kind}-{size}"
    shutil.rmtree(place, ignore_errors=True)
    place.mkdir(parents=True)
    stack.callback(shutil.rmtree, place, True)
    store: SessionStore = await stack.enter_async_context(BUILTIN_KINDS[kind].open(place))
    if isinstance(store, SqliteStore):
        await trio.to_thread.run_sync(bulk_insert, Path(store.path), sessions)
    else:  # through the store's own save: fast enough in memory
        await fill_memory(store, sessions)
    svc = await stack.enter_async_context(
        PersistentSessionService(ScriptedAgentBuilder(), LIVE, store)
    )
    for _ in range(LIVE):
        await svc.create_session(
            CreateSessionRequest(
                model="scripted", prompt="hi", initial_turn=InitialTurnPolicy.DEFER
            )
        )
    return svc


async def run(scale: ListScale, workdir: Path) -> Section:
    section = Section("list", "1. List at scale: `list(SessionQuery(limit=50))`")
    results: dict[Key, Latency] = {}
    sizes = sorted(scale.sizes)
    smallest, largest = sizes[0], sizes[-1]
    newest_stored = time.time_ns() // 1000 - 10**9  # every stored row is older than the live ones

    async with contextlib.AsyncExitStack() as stack:
        services: dict[tuple[str, int], PersistentSessionService] = {}
        for size in sizes:
            say(f"list: building {size:,} sessions, filling both stores")
            sessions = list(stored_sessions(size, newest=newest_stored, seed=size))
            for kind in STORE_KINDS:
                svc = await _open_service(stack, kind, size, sessions, workdir)
                # Cross-check: with the live sessions newest, both ways give the same page.
                if await ours(svc, PAGE) != await seed_list(svc, PAGE):
                    section.failures.append(
                        f"{kind} @ {size}: the seed's way and ours returned different pages"
                    )
                services[(kind, size)] = svc
            del sessions
        # The stored data lives as long as the run: keep the collector's full
        # passes from walking it inside whichever call happens to trigger one.
        gc.collect()
        gc.freeze()
        try:
            for round_no in range(scale.rounds):
                say(
                    f"list: ours, round {round_no + 1}/{scale.rounds}: "
                    f"{scale.listers}×{scale.calls_each} and 1×{scale.solo_calls} per store, size"
                )
                # Alternate the order from round to round, so a drift in load
                # within a round does not always favour the same size.
                order = sizes if round_no % 2 == 0 else sizes[::-1]
                for kind in STORE_KINDS:
                    for size in order:
                        svc = services[(kind, size)]
                        for listers, calls in (
                            (scale.listers, scale.calls_each),
                            (1, scale.solo_calls),
                        ):
                            key = (kind, size, "ours", listers)
                            lat = await measure(svc, ours, listers, calls)
                            results[key] = _merge(results.get(key), lat)
            for kind in STORE_KINDS:
                for size in sizes:
                    svc = services[(kind, size)]
                    seed_listers, seed_calls = scale.seed_configs[size]
                    say(f"list: {kind} @ {size:,}: seed's way, {seed_listers}×{seed_calls}")
                    results[(kind, size, "seed", seed_listers)] = await measure(
                        svc, seed_list, seed_listers, seed_calls
                    )
                    if seed_listers not in (scale.listers, 1):
                        # Ours at the seed's concurrency too: the ratio compares like with like.
                        results[(kind, size, "ours", seed_listers)] = await measure(
                            svc, ours, seed_listers, max(seed_calls, 5)
                        )
            for kind in STORE_KINDS:
                if largest == smallest:
                    break
                base = results[(kind, smallest, "ours", scale.listers)]
                top = results[(kind, largest, "ours", scale.listers)]
                if GOAL.met(top.p50 / base.p50) and GOAL.met(top.p95 / base.p95):
                    continue
                say(f"list: {kind} @ {largest:,} misses the goal: profiling")

                async def again(svc: PersistentSessionService = services[(kind, largest)]) -> None:
                    await measure(svc, ours, scale.listers, scale.calls_each)

                section.profiles.append(
                    (
                        f"cProfile: {KIND_NAMES.get(kind, kind)} list @ {largest:,} "
                        f"({scale.listers} listers × {scale.calls_each} calls)",
                        await profile_async(again),
                    )
                )
        finally:
            gc.unfreeze()

    _report(section, scale, results, smallest, largest)
    return section


def _report(
    section: Section,
    scale: ListScale,
    results: dict[Key, Latency],
    smallest: int,
    largest: int,
) -> None:
    for kind in STORE_KINDS:
        name = KIND_NAMES.get(kind, kind)
        base = results[(kind, smallest, "ours", scale.listers)]
        top = results[(kind, largest, "ours", scale.listers)]
        for label, value, ref in (("p50", top.p50, base.p50), ("p95", top.p95, base.p95)):
            section.rows.append(
                Row(
                    figure=f"{name} {label} @ {largest:,}: {fmt_seconds(value)}",
                    baseline=f"{name} {label} @ {smallest:,}: {fmt_seconds(ref)}",
                    ratio=value / ref,
                    goal=GOAL,
                )
            )
    for kind in STORE_KINDS:
        name = KIND_NAMES.get(kind, kind)
        for size in sorted(scale.sizes):
            listers = scale.seed_configs[size][0]
            seed = results[(kind, size, "seed", listers)]
            same = results[(kind, size, "ours", listers)]
            section.rows.append(
                Row(
                    figure=f"seed's way, {name} p50 @ {size:,} "
                    f"({listers}×{seed.calls // listers}): {fmt_seconds(seed.p50)}",
                    baseline=f"ours p50, same data, {listers} listers: {fmt_seconds(same.p50)}",
                    ratio=seed.p50 / same.p50,
                    goal=None,
                )
            )

    detail = Table(
        "Every measurement (latency per call, with the other listers running)",
        ["Store", "Sessions", "Way", "Listers × calls", "p50", "p95", "Calls/s", "p50 vs 1k"],
    )
    for (kind, size, way, listers), lat in sorted(
        results.items(), key=lambda kv: (kv[0][0], kv[0][2], kv[0][3], kv[0][1])
    ):
        base_key = (kind, smallest, way, listers)
        versus = fmt_ratio(lat.p50 / results[base_key].p50) if base_key in results else "—"
        detail.rows.append(
            [
                KIND_NAMES.get(kind, kind),
                f"{size:,}",
                "seed's way" if way == "seed" else "ours",
                f"{listers} × {lat.calls // listers}",
                fmt_seconds(lat.p50),
                fmt_seconds(lat.p95),
                fmt_rate(lat.rate),
                versus,
            ]
        )
    section.tables.append(detail)
    section.notes.append(
        f"Each store also holds {LIVE} live sessions (the newest), so every page merges "
        f"{LIVE} live summaries with {PAGE.limit} stored ones; ours reads "
        f"`offset + limit + live` = {(PAGE.limit or 0) + LIVE} stored rows per call whatever "
        "the store size (an index range scan in SQLite, an index slice in memory).  The "
        "seed's way reads and converts every stored row per call.  With many listers the "
        "latency of a call includes waiting for the others: calls share one event loop, and "
        "SQLite calls share one connection (one at a time, in a worker thread)."
    )
