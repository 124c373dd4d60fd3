"""2. Store writes: ``SqliteStore.save`` against raw ``sqlite3`` doing the same inserts.

Each save writes a new session of 10 messages (five exchanges).  The baseline
is plain ``sqlite3`` on a fresh file with the store's schema, the same pragmas
(WAL, and ``synchronous`` NORMAL or FULL) and the store's own upsert
statement, one ``BEGIN IMMEDIATE … COMMIT`` per insert, one insert after the
other, with the rows encoded beforehand: the cost of the database alone, for
the same durability per acknowledged write.

Ways measured (rounds alternate them; each figure is the median over rounds,
so a burst of noise on the shared machine lands on every way):

- one saver, one session at a time: raw; raw plus the store's encoding per
  insert; ``SqliteStore.save`` as configured by default; the same store with
  every save sent through its writer thread (no inline commit when idle);
  ``threaded=False``; and the wave-1 path, reproduced (a ``trio.Lock`` and
  one ``trio.to_thread.run_sync`` per save, the standard library's ``json``:
  what the store did before), for the before/after split;
- 10 and 100 tasks saving at once (``SqliteStore.save``, group commit),
  against raw sequential commits.

Goals (issue 12): one saver ≥ 0.8× raw; 10 and 100 savers ≥ 2× raw; encoding
at most a quarter of a save's cost; for both durability settings.  Also
reported: the latency of one acknowledged save (p50, p99), the JSON encoders
compared (the choice of msgspec), and ``load`` against the wave-1 read path.
"""

from __future__ import annotations

import gc
import json
import os
import random
import shutil
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import trio

from meerkat_ref import Session, SqliteStore
from meerkat_ref.store._codec import (
    _decode_checked,
    _fast_doc,
    decode_session,
    encode_metadata,
    encode_session,
    encode_session_stdlib,
    session_of_document,
)
from meerkat_ref.store._sqlite import _SCHEMA, _UPSERT, Durability

from ._common import (
    Row,
    Section,
    Table,
    at_least,
    at_most,
    fmt_rate,
    fmt_ratio,
    fmt_seconds,
    median,
    percentile,
    profile_async,
    say,
)
from ._data import make_session, random_ids, remove_db

ONE_GOAL = at_least(0.8)
MANY_GOAL = at_least(2.0)
ENCODE_GOAL = at_most(0.25)
DURABILITIES: tuple[Durability, ...] = ("normal", "full")
DEFAULT_DURABILITY: Durability = "normal"  # SqliteStore(path)'s default; see its docstring
EXCHANGES = 5  # 10 messages per session
CONCURRENCY = (10, 100)

ONE_WAYS = ("raw", "raw+encode", "store", "store-thread", "store-unthreaded", "wave1")
ONE_NAMES = {
    "raw": "raw sqlite3 (rows encoded beforehand)",
    "raw+encode": "raw sqlite3 + the store's encoding per insert",
    "store": "`SqliteStore.save` (default)",
    "store-thread": "`SqliteStore.save`, every save through the writer thread",
    "store-unthreaded": "`SqliteStore.save`, `threaded=False`",
    "wave1": "wave-1 path: `trio.to_thread` per save + stdlib `json`",
}


@dataclass(frozen=True)
class StoreScale:
    saves: dict[Durability, int]  # saves per way, one saver
    chunk: dict[Durability, int]  # saves per turn, one saver
    many: dict[Durability, int]  # saves per way, savers at once
    many_chunk: dict[Durability, int]  # saves per turn, savers at once
    rounds: int
    codec: int  # sessions per codec measurement
    loads: int  # loads per read measurement


FULL = StoreScale(
    saves={"normal": 2_000, "full": 400},
    chunk={"normal": 500, "full": 50},
    many={"normal": 4_000, "full": 1_000},
    many_chunk={"normal": 1_000, "full": 500},
    rounds=5,
    codec=2_000,
    loads=2_000,
)
QUICK = StoreScale(
    saves={"normal": 300, "full": 50},
    chunk={"normal": 50, "full": 10},
    many={"normal": 400, "full": 200},
    many_chunk={"normal": 200, "full": 100},
    rounds=1,
    codec=200,
    loads=200,
)


def sessions_for(count: int, seed: int) -> list[Session]:
    base = time.time_ns() // 1000
    return [
        make_session(sid, base + i, exchanges=EXCHANGES, system=False)
        for i, sid in enumerate(random_ids(count, seed))
    ]


def store_row(session: Session) -> tuple[object, ...]:
    """The row ``SqliteStore.save`` writes, encoded as it encodes it."""
    id_text = str(session.id)
    return (
        id_text,
        session.created_at,
        session.updated_at,
        session.message_count,
        session.total_tokens(),
        encode_metadata(session.metadata),
        encode_session(session, id_text),
    )


def wave1_row(session: Session) -> tuple[object, ...]:
    """The row as the wave-1 store encoded it (stdlib ``json`` throughout)."""
    metadata = json.dumps(dict(session.metadata), ensure_ascii=True, sort_keys=True)
    return (
        str(session.id),
        session.created_at,
        session.updated_at,
        session.message_count,
        session.total_tokens(),
        metadata,
        encode_session_stdlib(session),
    )


def _raw_connection(path: Path, durability: Durability) -> sqlite3.Connection:
    remove_db(path)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={'FULL' if durability == 'full' else 'NORMAL'}")
    for statement in _SCHEMA:
        conn.execute(statement)
    return conn


def _insert(conn: sqlite3.Connection, row: Sequence[object]) -> None:
    conn.execute("BEGIN IMMEDIATE")
    conn.execute(_UPSERT, row)
    conn.execute("COMMIT")


class Way:
    """One way of writing sessions, on its own open file; ``chunk`` times a few writes.

    Every way writes the same sessions, a chunk at a time, the ways taking
    turns chunk by chunk (in a rotating order): on a shared machine whose disk
    and CPUs slow down and speed up from one second to the next, each way
    then meets the same conditions.  ``latencies`` collects every write's time.
    """

    def __init__(self) -> None:
        self.seconds = 0.0
        self.cpu = 0.0  # CPU time of the event loop's thread during the chunks
        self.writes = 0
        self.latencies: list[float] = []

    async def chunk(self, sessions: list[Session]) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        pass

    def per_write(self) -> float:
        return self.seconds / self.writes


class Raw(Way):
    def __init__(self, path: Path, durability: Durability, *, encode: bool) -> None:
        super().__init__()
        self.conn = _raw_connection(path, durability)
        self.encode = encode

    async def chunk(self, sessions: list[Session]) -> None:
        rows = None if self.encode else [store_row(s) for s in sessions]
        clock = time.perf_counter
        start, cpu = clock(), time.thread_time()
        for i, session in enumerate(sessions):
            begin = clock()
            _insert(self.conn, store_row(session) if rows is None else rows[i])
            self.latencies.append(clock() - begin)
        self.seconds += clock() - start
        self.cpu += time.thread_time() - cpu
        self.writes += len(sessions)

    async def close(self) -> None:
        self.conn.close()


class Wave1(Way):
    """The wave-1 store's save, reproduced: a lock, a worker thread per call, stdlib JSON."""

    def __init__(self, path: Path, durability: Durability) -> None:
        super().__init__()
        self.conn = _raw_connection(path, durability)
        self.lock = trio.Lock()

    def _write(self, session: Session) -> None:
        _insert(self.conn, wave1_row(session))

    async def chunk(self, sessions: list[Session]) -> None:
        clock = time.perf_counter
        start = clock()
        for session in sessions:
            begin = clock()
            async with self.lock:
                await trio.to_thread.run_sync(self._write, session)
            self.latencies.append(clock() - begin)
        self.seconds += clock() - start
        self.writes += len(sessions)

    async def close(self) -> None:
        self.conn.close()


class Store(Way):
    """``SqliteStore.save`` by ``savers`` tasks at once."""

    def __init__(
        self,
        store: SqliteStore,
        *,
        savers: int = 1,
        through_thread: bool = False,
    ) -> None:
        super().__init__()
        self.store = store
        self.savers = savers
        if through_thread:
            # measure the writer thread's hop
            store._writer._inline_when_alone = store._writer._inline_batches = False

    async def chunk(self, sessions: list[Session]) -> None:
        pending = iter(sessions)
        clock = time.perf_counter

        async def saver() -> None:
            for session in pending:
                begin = clock()
                await self.store.save(session)
                self.latencies.append(clock() - begin)

        start, cpu = clock(), time.thread_time()
        if self.savers == 1:
            await saver()
        else:
            async with trio.open_nursery() as nursery:
                for _ in range(self.savers):
                    nursery.start_soon(saver)
        # A checkpoint still running in the background is this way's work:
        # counted here, not left to slow the next way's turn.
        await trio.to_thread.run_sync(self.store._checkpoints.wait_idle)
        self.seconds += clock() - start
        self.cpu += time.thread_time() - cpu
        self.writes += len(sessions)

    async def close(self) -> None:
        await self.store.aclose()


async def take_turns(ways: dict[str, Way], sessions: list[Session], chunk: int) -> None:
    """Every way writes ``sessions``, ``chunk`` at a time, taking turns in a rotating order."""
    names = list(ways)
    gc.collect()
    for turn, start in enumerate(range(0, len(sessions), chunk)):
        part = sessions[start : start + chunk]
        shift = turn % len(names)
        for name in names[shift:] + names[:shift]:
            await ways[name].chunk(part)
    for way in ways.values():
        await way.close()


async def one_saver_ways(directory: Path, durability: Durability) -> dict[str, Way]:
    async def store(name: str, **options: bool) -> SqliteStore:
        remove_db(directory / name)
        return await SqliteStore.open(directory / name, durability=durability, **options)

    return {
        "raw": Raw(directory / "raw.db", durability, encode=False),
        "raw+encode": Raw(directory / "raw-encode.db", durability, encode=True),
        "store": Store(await store("store.db")),
        "store-thread": Store(await store("store-thread.db"), through_thread=True),
        "store-unthreaded": Store(await store("store-unthreaded.db", threaded=False)),
        "wave1": Wave1(directory / "wave1.db", durability),
    }


async def many_saver_ways(directory: Path, durability: Durability) -> dict[str, Way]:
    ways: dict[str, Way] = {"raw": Raw(directory / "raw.db", durability, encode=False)}
    for savers in (1, *CONCURRENCY):
        remove_db(directory / f"savers-{savers}.db")
        store = await SqliteStore.open(directory / f"savers-{savers}.db", durability=durability)
        ways[str(savers)] = Store(store, savers=savers)
    return ways


async def store_saves(path: Path, durability: Durability, sessions: list[Session]) -> None:
    """One saver, default store (for the profile)."""
    remove_db(path)
    async with await SqliteStore.open(path, durability=durability) as store:
        for session in sessions:
            await store.save(session)


# --- the codec ---------------------------------------------------------------


def _per_item(fn: Callable[[object], object], items: Sequence[object], repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for item in items:
            fn(item)
        best = min(best, (time.perf_counter() - start) / len(items))
    return best


def codec_table(count: int) -> tuple[Table, dict[str, float]]:
    """Encode and decode a 10-message session: stdlib ``json``, msgspec, orjson."""
    sessions = sessions_for(count, seed=7)
    texts = [encode_session_stdlib(s) for s in sessions]
    blobs = [t.encode() for t in texts]
    rows: dict[str, tuple[float, float]] = {
        "stdlib `json` + checks in Python (wave 1; still the checked path)": (
            _per_item(encode_session_stdlib, sessions),  # type: ignore[arg-type]
            _per_item(lambda t: _decode_checked(t, None), texts),
        ),
        "msgspec: explicit document + `Encoder`; typed decoder (chosen)": (
            _per_item(lambda s: encode_session(s), sessions),  # type: ignore[arg-type]
            _per_item(decode_session, blobs),  # type: ignore[arg-type]
        ),
    }
    try:
        import orjson  # measured if installed; not a dependency
    except ImportError:
        orjson = None
    if orjson is not None:
        documents = [orjson.loads(b) for b in blobs]
        rows["orjson: the same document; `loads` + checks in Python"] = (
            _per_item(lambda s: orjson.dumps(_fast_doc(s, str(s.id))), sessions),  # type: ignore
            _per_item(orjson.loads, blobs)
            + _per_item(lambda d: session_of_document(d, None), documents),
        )
    table = Table(
        f"JSON encoders, per 10-message session ({count:,} sessions, best of 5)",
        ["Encoder", "Encode", "Decode (with every check)", "Encode vs stdlib"],
    )
    stdlib_encode = next(iter(rows.values()))[0]
    for name, (enc, dec) in rows.items():
        ratio = fmt_ratio(enc / stdlib_encode)
        table.rows.append([name, fmt_seconds(enc), fmt_seconds(dec), ratio])
    chosen = rows["msgspec: explicit document + `Encoder`; typed decoder (chosen)"]
    return table, {"encode": chosen[0], "decode": chosen[1], "stdlib_encode": stdlib_encode}


# --- reads ---------------------------------------------------------------------


async def load_latencies(path: Path, count: int) -> tuple[list[float], list[float]]:
    """Seconds per ``load`` of a random stored session: the store, and the wave-1 read path."""
    sessions = sessions_for(count, seed=11)
    remove_db(path)
    store = await SqliteStore.open(path)
    try:
        for session in sessions:
            await store.save(session)
        order = [s.id for s in sessions]
        random.Random(3).shuffle(order)
        ours: list[float] = []
        for sid in order:
            start = time.perf_counter()
            await store.load(sid)
            ours.append(time.perf_counter() - start)
    finally:
        await store.aclose()
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    lock = trio.Lock()

    def read(text: str) -> Session:
        row = conn.execute("SELECT body FROM sessions WHERE id = ?", (text,)).fetchone()
        return _decode_checked(row[0], None)

    theirs: list[float] = []
    try:
        for sid in order:
            start = time.perf_counter()
            async with lock:
                await trio.to_thread.run_sync(read, str(sid))
            theirs.append(time.perf_counter() - start)
    finally:
        conn.close()
    remove_db(path)
    return ours, theirs


# --- the section ---------------------------------------------------------------


async def run(scale: StoreScale, workdir: Path) -> Section:
    section = Section("store", "2. Store writes: `SqliteStore.save` vs raw sqlite3")
    load_before = os.getloadavg()
    path = workdir / "store-bench.db"
    per_save: dict[tuple[str, str], list[float]] = {}  # seconds per save, one per round
    many_rate: dict[tuple[str, int], list[float]] = {}
    latencies: dict[tuple[str, int], list[float]] = {}
    loop_cpu: dict[tuple[str, int], list[float]] = {}  # event loop's CPU per save
    for durability in DURABILITIES:
        count = scale.saves[durability]
        for round_no in range(scale.rounds):
            say(f"store: {durability}, round {round_no + 1}/{scale.rounds}, {count} saves per way")
            directory = workdir / f"store-{durability}-{round_no}"
            directory.mkdir()
            ways = await one_saver_ways(directory, durability)
            await take_turns(ways, sessions_for(count, seed=round_no), scale.chunk[durability])
            for way, measured in ways.items():
                per_save.setdefault((durability, way), []).append(measured.per_write())
            many = await many_saver_ways(directory, durability)
            await take_turns(
                many,
                sessions_for(scale.many[durability], seed=100 + round_no),
                scale.many_chunk[durability],
            )
            for name, measured in many.items():
                savers = 0 if name == "raw" else int(name)
                many_rate.setdefault((durability, savers), []).append(1 / measured.per_write())
                latencies.setdefault((durability, savers), []).extend(measured.latencies)
                loop_cpu.setdefault((durability, savers), []).append(measured.cpu / measured.writes)
            shutil.rmtree(directory)
    say("store: codec")
    codec, codec_costs = codec_table(scale.codec)
    say("store: loads")
    ours_load, wave1_load = await load_latencies(path, scale.loads)

    for durability in DURABILITIES:
        raw = median(per_save[(durability, "raw")])
        default = " (the default)" if durability == DEFAULT_DURABILITY else ""
        store = median(per_save[(durability, "store")])
        section.rows.append(
            Row(
                figure=f"one saver, `SqliteStore.save`, durability={durability}{default}: "
                f"{fmt_rate(1 / store, ' saves/s')}",
                baseline="raw sqlite3, same inserts and pragmas: "
                f"{fmt_rate(1 / raw, ' inserts/s')}",
                ratio=raw / store,
                goal=ONE_GOAL,
            )
        )
        sequential = median(many_rate[(durability, 0)])
        for savers in CONCURRENCY:
            rate = median(many_rate[(durability, savers)])
            section.rows.append(
                Row(
                    figure=f"{savers} savers at once, durability={durability}: "
                    f"{fmt_rate(rate, ' saves/s')}",
                    baseline="raw sqlite3, sequential commits: "
                    f"{fmt_rate(sequential, ' inserts/s')}",
                    ratio=rate / sequential,
                    goal=MANY_GOAL,
                )
            )
        section.rows.append(
            Row(
                figure=f"encoding a session, durability={durability}: "
                f"{fmt_seconds(codec_costs['encode'])}",
                baseline=f"one default save: {fmt_seconds(store)}",
                ratio=codec_costs["encode"] / store,
                goal=ENCODE_GOAL,
            )
        )

    detail = Table(
        f"One saver: where the time goes (10-message sessions; the ways take turns, "
        f"{scale.chunk['normal']} saves at a time at normal, {scale.chunk['full']} at full; "
        f"median of {scale.rounds} round(s))",
        ["Durability", "Way", "Writes/s", "Time per write", "vs raw"],
    )
    for durability in DURABILITIES:
        raw = median(per_save[(durability, "raw")])
        for way in ONE_WAYS:
            t = median(per_save[(durability, way)])
            detail.rows.append(
                [durability, ONE_NAMES[way], fmt_rate(1 / t), fmt_seconds(t), fmt_ratio(raw / t)]
            )
    section.tables.append(detail)

    split = Table(
        "The split of one save's cost, before (wave-1 path, reproduced) and after (differences "
        "of the medians above, encoding measured alone, so approximate)",
        ["Durability", "Way", "SQLite (raw)", "encoding", "thread hop and call path", "total"],
    )
    for durability in DURABILITIES:
        raw = median(per_save[(durability, "raw")])
        for way, encode in (
            ("wave1", codec_costs["stdlib_encode"]),
            ("store-thread", codec_costs["encode"]),
            ("store", codec_costs["encode"]),
        ):
            total = median(per_save[(durability, way)])
            rest = total - raw - encode
            split.rows.append(
                [
                    durability,
                    ONE_NAMES[way],
                    f"{fmt_seconds(raw)} ({raw / total:.0%})",
                    f"{fmt_seconds(encode)} ({encode / total:.0%})",
                    f"{fmt_seconds(rest)} ({rest / total:.0%})",
                    fmt_seconds(total),
                ]
            )
    section.tables.append(split)

    many_table = Table(
        f"Savers at once (group commit; {scale.many['normal']:,} saves per way at normal, "
        f"{scale.many['full']:,} at full, the ways taking turns {scale.many_chunk['normal']:,} "
        f"and {scale.many_chunk['full']:,} saves at a time; median of {scale.rounds} round(s)); "
        "latency of one acknowledged save, pooled",
        [
            "Durability",
            "Savers",
            "Saves/s",
            "vs raw sequential",
            "p50",
            "p99",
            "event loop's CPU per save (raw: all of it)",
        ],
    )
    for durability in DURABILITIES:
        sequential = median(many_rate[(durability, 0)])
        for savers in (0, 1, *CONCURRENCY):
            rate = median(many_rate[(durability, savers)])
            lat = latencies[(durability, savers)]
            many_table.rows.append(
                [
                    durability,
                    "raw sqlite3, one at a time" if savers == 0 else str(savers),
                    fmt_rate(rate),
                    fmt_ratio(rate / sequential),
                    fmt_seconds(percentile(lat, 50)),
                    fmt_seconds(percentile(lat, 99)),
                    fmt_seconds(median(loop_cpu[(durability, savers)])),
                ]
            )
    section.tables.append(many_table)
    section.tables.append(codec)

    reads = Table(
        f"`load` of one stored session ({len(ours_load):,} loads in random order)",
        ["Way", "p50", "p99", "mean"],
    )
    for name, lat in (
        ("`SqliteStore.load`", ours_load),
        ("wave-1 path: `trio.to_thread` per load + stdlib `json`", wave1_load),
    ):
        reads.rows.append(
            [
                name,
                fmt_seconds(percentile(lat, 50)),
                fmt_seconds(percentile(lat, 99)),
                fmt_seconds(sum(lat) / len(lat)),
            ]
        )
    section.tables.append(reads)

    for durability in DURABILITIES:
        raw = median(per_save[(durability, "raw")])
        store = median(per_save[(durability, "store")])
        if not ONE_GOAL.met(raw / store):
            thread = median(per_save[(durability, "store-thread")])
            inline = median(per_save[(durability, "store-unthreaded")])
            if durability == "full":
                why = (
                    f"At `full` every commit syncs, so it goes through the writer thread (an "
                    f"fsync never runs on the event loop's thread); the same commit on the "
                    f"loop's thread (`threaded=False`) takes {fmt_seconds(inline)}: the hop to "
                    f"the thread and back costs about {fmt_seconds(max(store - inline, 0.0))} "
                    f"here, against an fsync of {fmt_seconds(raw)}."
                )
            else:
                why = (
                    f"Through the writer thread a save takes {fmt_seconds(thread)}, which is "
                    "why a save commits on the event loop's thread when the writer is idle."
                )
            section.notes.append(
                f"**Goal missed, one saver, durability={durability}:** "
                f"{ONE_GOAL.shortfall(raw / store)}.  A save takes {fmt_seconds(store)} against "
                f"{fmt_seconds(raw)} raw.  " + why
            )
    for durability in DURABILITIES:
        sequential = median(many_rate[(durability, 0)])
        for savers in CONCURRENCY:
            rate = median(many_rate[(durability, savers)])
            if MANY_GOAL.met(rate / sequential):
                continue
            cpu = median(loop_cpu[(durability, savers)])
            section.notes.append(
                f"**Goal missed, {savers} savers, durability={durability}:** "
                f"{MANY_GOAL.shortfall(rate / sequential)}.  A raw commit costs "
                f"{fmt_seconds(1 / sequential)} on average (p50 "
                f"{fmt_seconds(percentile(latencies[(durability, 0)], 50))}: a WAL append, no "
                f"fsync), so 2× needs {fmt_seconds(1 / (2 * sequential))} per save.  At "
                "`normal` the whole of a save runs on the event loop's thread (its batch is "
                "committed there), and that thread spends "
                f"{fmt_seconds(cpu)} of CPU per save: encoding, the saver's task, parking and "
                "waking it, and its share of the batch's commit.  The rate is bound by one "
                "core running Python, not by SQLite.  At `full`, where each commit is an fsync "
                "that a batch shares, group commit multiplies the rate."
            )
    section.notes.append(
        "**How a save is written.**  At durability `normal`, while the writer thread is idle, "
        "saves commit on the event loop's thread (a WAL append, never an fsync), since a "
        "hand-off would add two thread wake-ups: the first save leads, the saves of every "
        "other call in progress join it over a pass or two of the scheduler, and the leader "
        "commits them in one transaction and acknowledges each.  At durability `full`, where "
        "every commit syncs, saves are queued; the long-lived writer thread, started in the "
        "event loop's next turn so that every task woken together has queued first, commits "
        "the whole queue in one transaction (group commit) and acknowledges each save after "
        "that commit.  `store-thread` above forces the thread for one saver at `normal`, to "
        "show the hop's cost on this machine."
    )
    section.notes.append(
        "**Checkpoints.**  Raw sqlite3 runs SQLite's automatic WAL checkpoint inside the "
        "commit that grows the log past 1000 pages (copying the pages back and syncing), "
        "which is most of the gap between its p50 and its mean above.  At `normal` the "
        "store runs checkpoints on a thread of its own beside the writer "
        "(`store/_checkpoint.py`), except one in eight, which the writer runs itself so the "
        "log can restart; at `full` the writer's thread runs them between batches (beside "
        "commits that each sync, a checkpoint's syncs made the commits slower: measured "
        "once, one saver 417 µs a save against 325 µs).  A checkpoint still running when a "
        "way's turn ends is waited for and counted in that way's time, not left to slow the "
        "next way."
    )
    load_after = os.getloadavg()
    section.notes.append(
        "**Machine load** (1-minute load average, on "
        f"{os.cpu_count()} cores): {load_before[0]:.1f} when this section began, "
        f"{load_after[0]:.1f} when it ended.  Other work on the machine competes for the "
        "cores; it slows the store's thread hand-offs (each waits to be scheduled) more than "
        "a single thread inserting in a loop, so the savers-at-once ratios fall as the load "
        "rises."
    )
    section.notes.append(
        f"**Default durability: `{DEFAULT_DURABILITY}`** (`SqliteStore(path)`): WAL with "
        "`synchronous=NORMAL`: a committed transaction survives a crash of the application; "
        "only the last transactions before a power loss or OS crash may be rolled back, never "
        'corrupted, and no commit pays an fsync.  `durability="full"` syncs the WAL at every '
        "commit (group commit shares one sync among a batch)."
    )

    ratios = {
        d: median(per_save[(d, "raw")]) / median(per_save[(d, "store")]) for d in DURABILITIES
    }
    durability = min(ratios, key=lambda d: ratios[d])
    if not ONE_GOAL.met(ratios[durability]):
        say(f"store: one saver at durability={durability} misses the goal: profiling")
        sessions = sessions_for(min(scale.saves[durability], 500), seed=99)

        async def again() -> None:
            await store_saves(path, durability, sessions)

        section.profiles.append(
            (
                f"cProfile: {len(sessions)} × `SqliteStore.save`, one saver, "
                f"durability={durability} (the event loop's thread; the writer thread's "
                "SQLite time shows as `epoll.poll`)",
                await profile_async(again),
            )
        )
    remove_db(path)
    return section
