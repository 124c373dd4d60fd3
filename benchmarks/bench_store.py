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
import random
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
    saves: dict[Durability, int]  # saves per one-saver measurement
    many: dict[Durability, int]  # saves per concurrent measurement
    rounds: int
    codec: int  # sessions per codec measurement
    loads: int  # loads per read measurement


FULL = StoreScale(
    saves={"normal": 2_000, "full": 300},
    many={"normal": 3_000, "full": 1_000},
    rounds=5,
    codec=2_000,
    loads=2_000,
)
QUICK = StoreScale(
    saves={"normal": 300, "full": 50},
    many={"normal": 300, "full": 100},
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


def raw_inserts(
    path: Path, durability: Durability, sessions: list[Session], encode: bool
) -> list[float]:
    """Seconds per insert for plain sqlite3, one transaction each, one after another."""
    conn = _raw_connection(path, durability)
    times: list[float] = []
    try:
        rows = None if encode else [store_row(s) for s in sessions]
        gc.collect()
        clock = time.perf_counter
        if rows is not None:
            for row in rows:
                start = clock()
                _insert(conn, row)
                times.append(clock() - start)
        else:
            for session in sessions:
                start = clock()
                _insert(conn, store_row(session))
                times.append(clock() - start)
    finally:
        conn.close()
    return times


async def wave1_saves(path: Path, durability: Durability, sessions: list[Session]) -> list[float]:
    """The wave-1 store's save, reproduced: lock, a worker thread per call, stdlib JSON."""
    conn = _raw_connection(path, durability)
    lock = trio.Lock()

    def write(session: Session) -> None:
        _insert(conn, wave1_row(session))

    times: list[float] = []
    try:
        gc.collect()
        for session in sessions:
            start = time.perf_counter()
            async with lock:
                await trio.to_thread.run_sync(write, session)
            times.append(time.perf_counter() - start)
    finally:
        conn.close()
    return times


async def store_saves(
    path: Path,
    durability: Durability,
    sessions: list[Session],
    *,
    savers: int = 1,
    threaded: bool = True,
    through_thread: bool = False,
) -> tuple[list[float], float]:
    """Per-save latencies and the wall time for ``savers`` tasks to save ``sessions``."""
    remove_db(path)
    store = await SqliteStore.open(path, durability=durability, threaded=threaded)
    if through_thread:
        store._writer._inline_when_alone = False  # measure the writer thread's hop
    times: list[float] = []
    pending = iter(sessions)

    async def saver() -> None:
        clock = time.perf_counter
        for session in pending:
            start = clock()
            await store.save(session)
            times.append(clock() - start)

    try:
        gc.collect()
        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for _ in range(savers):
                nursery.start_soon(saver)
        wall = time.perf_counter() - start
    finally:
        await store.aclose()
    return times, wall


async def _one(way: str, path: Path, durability: Durability, sessions: list[Session]) -> float:
    """Seconds per save, one saver."""
    if way in ("raw", "raw+encode"):
        times = raw_inserts(path, durability, sessions, encode=way == "raw+encode")
        return sum(times) / len(times)
    if way == "wave1":
        times = await wave1_saves(path, durability, sessions)
        return sum(times) / len(times)
    _, wall = await store_saves(
        path,
        durability,
        sessions,
        threaded=way != "store-unthreaded",
        through_thread=way == "store-thread",
    )
    return wall / len(sessions)


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
    path = workdir / "store-bench.db"
    per_save: dict[tuple[str, str], list[float]] = {}  # seconds per save, one per round
    many_rate: dict[tuple[str, int], list[float]] = {}
    latencies: dict[tuple[str, int], list[float]] = {}
    for durability in DURABILITIES:
        count = scale.saves[durability]
        for round_no in range(scale.rounds):
            say(f"store: {durability}, round {round_no + 1}/{scale.rounds}, {count} saves per way")
            sessions = sessions_for(count, seed=round_no)
            ways = ONE_WAYS if round_no % 2 == 0 else tuple(reversed(ONE_WAYS))
            for way in ways:
                per_save.setdefault((durability, way), []).append(
                    await _one(way, path, durability, sessions)
                )
            many = sessions_for(scale.many[durability], seed=100 + round_no)
            for savers in (1, *CONCURRENCY):
                times, wall = await store_saves(path, durability, many, savers=savers)
                many_rate.setdefault((durability, savers), []).append(len(many) / wall)
                latencies.setdefault((durability, savers), []).extend(times)
            raw_times = raw_inserts(path, durability, many, encode=False)
            latencies.setdefault((durability, 0), []).extend(raw_times)
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
        for savers in CONCURRENCY:
            rate = median(many_rate[(durability, savers)])
            section.rows.append(
                Row(
                    figure=f"{savers} savers at once, durability={durability}: "
                    f"{fmt_rate(rate, ' saves/s')}",
                    baseline=f"raw sqlite3, sequential commits: {fmt_rate(1 / raw, ' inserts/s')}",
                    ratio=rate * raw,
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
        f"One saver: where the time goes (median of {scale.rounds} round(s); 10-message sessions)",
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
        f"Savers at once (group commit; {scale.many['normal']:,} saves at normal, "
        f"{scale.many['full']:,} at full; median of {scale.rounds} round(s)); latency of one "
        "acknowledged save, pooled over rounds",
        ["Durability", "Savers", "Saves/s", "vs raw sequential", "p50", "p99"],
    )
    for durability in DURABILITIES:
        raw = median(per_save[(durability, "raw")])
        raw_lat = latencies[(durability, 0)]
        many_table.rows.append(
            [
                durability,
                "raw sqlite3, one at a time",
                fmt_rate(1 / raw),
                "1.00×",
                fmt_seconds(percentile(raw_lat, 50)),
                fmt_seconds(percentile(raw_lat, 99)),
            ]
        )
        for savers in (1, *CONCURRENCY):
            rate = median(many_rate[(durability, savers)])
            lat = latencies[(durability, savers)]
            many_table.rows.append(
                [
                    durability,
                    str(savers),
                    fmt_rate(rate),
                    fmt_ratio(rate * raw),
                    fmt_seconds(percentile(lat, 50)),
                    fmt_seconds(percentile(lat, 99)),
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
            section.notes.append(
                f"**Goal missed, one saver, durability={durability}:** "
                f"{ONE_GOAL.shortfall(raw / store)}.  A save takes {fmt_seconds(store)} against "
                f"{fmt_seconds(raw)} raw; through the writer thread {fmt_seconds(thread)} "
                f"(the hop to the thread and back costs about "
                f"{fmt_seconds(thread - store)} here)."
            )
    section.notes.append(
        "**How a save is written.**  At durability `normal`, a save made while the writer is "
        "idle and no other task is ready to run is committed on the event loop's thread at "
        "once (a WAL append: no fsync; checkpoints are the writer thread's), since nothing "
        "else could run meanwhile and a hand-off would add two thread wake-ups.  Otherwise "
        "(another task is runnable, a batch is in progress, or durability is `full`, where "
        "every commit syncs) it is queued for the long-lived writer thread, which commits "
        "every queued save in one transaction (group commit) and acknowledges each after that "
        "commit.  `store-thread` above forces the second way for one saver, to show the "
        "hop's cost on this machine."
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
