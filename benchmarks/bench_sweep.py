"""The sweep on 1 and 2 local worker processes and on a Dask ``LocalCluster``: totals, time.

``python -m benchmarks.bench_sweep`` sweeps a scope (default ``ci``, whole)
three ways, as ``meerkat-ref sweep`` does it (each with its own ledger in a
temporary directory, so the ledger's appends are in the time):

- ``--jobs 1``: one process;
- ``--jobs 2``: a local pool of two spawned worker processes;
- ``--dask``: a ``distributed.LocalCluster`` of ``--dask-workers`` worker
  processes (one thread each), started before the clock starts (its start
  is reported on its own), the sweep sent through its client's executor.

Every way must give the same totals (scenarios, schedules, end states,
violating) and the same ledger rows (times aside): exit 1 if not.  The
ways are measured interleaved, ``--rounds`` times (median), so a burst of
load from elsewhere lands on each.  A ``--shard I/N`` is swept instead of
the whole scope when given, and the table then also gives the scope's time
extrapolated from the shard's (N times it): an estimate, as a shard is a
sample whose scenarios differ in cost, said as one.

``--help`` answers without running.  Needs the ``dask`` extra for the Dask
way (without it that way is reported as skipped).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from meerkat_ref.oracle.sweep import (
    SCOPES,
    Row,
    Scope,
    SweepResult,
    open_ledger,
    scenarios,
    shard,
    sweep,
)
from meerkat_ref.report import duration
from meerkat_ref.variants import Variant

from ._common import machine_line, markdown_table, say


@dataclass(frozen=True)
class Way:
    """One way to run the sweep: its label, its worker count, and its executor (if any)."""

    label: str
    workers: int
    executor: Executor | None = None


@dataclass
class Measured:
    way: Way
    seconds: list[float]
    result: SweepResult
    ledger_rows: frozenset[Row]


def _measure(way: Way, scope: Scope, shard_spec: str | None, workdir: Path,
             round_: int) -> tuple[float, SweepResult, frozenset[Row]]:
    make = partial(Variant.parse("reference").target, store="memory")
    path = workdir / f"{way.label.replace(' ', '-')}-{round_}.jsonl"
    began = time.perf_counter()
    with open_ledger(path, scope, ["reference"], store="memory", shard_spec=shard_spec) as ledger:
        result = sweep(make, scope, shard_spec=shard_spec, jobs=way.workers,
                       executor=way.executor, ledger=ledger)
    seconds = time.perf_counter() - began
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    rows = frozenset(replace(Row.from_json(json.loads(line)), seconds=0.0) for line in lines)
    return seconds, result, rows


def measure(scope: Scope, shard_spec: str | None, ways: Sequence[Way], rounds: int,
            workdir: Path) -> list[Measured]:
    """Each way ``rounds`` times, interleaved (round 1: every way, then round 2, ...)."""
    measured = {way.label: Measured(way, [], SweepResult(scope, "reference", 0), frozenset())
                for way in ways}
    for round_ in range(rounds):
        for way in ways:
            say(f"bench_sweep: round {round_ + 1}/{rounds}, {way.label} ...")
            seconds, result, rows = _measure(way, scope, shard_spec, workdir, round_)
            entry = measured[way.label]
            entry.seconds.append(seconds)
            entry.result, entry.ledger_rows = result, rows
            say(f"bench_sweep: {way.label}: {seconds:.1f} s, {result.schedules} schedules")
    return list(measured.values())


def disagreements(measured: Sequence[Measured]) -> list[str]:
    """What differs between the ways (totals or ledger rows): empty when they agree."""
    first = measured[0]
    problems = []
    for other in measured[1:]:
        a, b = first.result, other.result
        if (len(a.rows), a.schedules, a.states, len(a.violating)) != (
                len(b.rows), b.schedules, b.states, len(b.violating)):
            problems.append(f"totals of {first.way.label} and {other.way.label} differ")
        if first.ledger_rows != other.ledger_rows:
            problems.append(f"ledger rows of {first.way.label} and {other.way.label} differ")
    return problems


def table(measured: Sequence[Measured], scope: Scope, shard_spec: str | None) -> str:
    every = len(scenarios(scope))
    chosen = len(shard(scenarios(scope), shard_spec))
    header = ["way", "workers", "scenarios", "schedules", "end states", "violating",
              "seconds (median)", "schedules/s", "vs 1 worker"]
    if shard_spec is not None:
        header.append(f"whole scope, extrapolated (x {every / chosen:.0f})")
    base = statistics.median(measured[0].seconds)
    rows = []
    for m in measured:
        seconds = statistics.median(m.seconds)
        r = m.result
        row = [m.way.label, str(m.way.workers), f"{len(r.rows):,}", f"{r.schedules:,}",
               f"{r.states:,}", str(len(r.violating)), f"{seconds:.1f}",
               f"{r.schedules / seconds:.0f}", f"{base / seconds:.2f}x"]
        if shard_spec is not None:
            row.append(f"about {duration(seconds * every / chosen)}")
        rows.append(row)
    return markdown_table(header, rows)


def _local_cluster(workers: int) -> tuple[Way, Callable[[], None], float] | str:
    """A LocalCluster of ``workers`` processes and its client, or why not."""
    try:
        import distributed  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return "skipped: the dask extra is not installed (pip install 'meerkat-ref[dask]')"
    began = time.perf_counter()
    cluster = distributed.LocalCluster(  # type: ignore[no-untyped-call,unused-ignore]
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
    client = distributed.Client(cluster)  # type: ignore[no-untyped-call,unused-ignore]
    started = time.perf_counter() - began

    def close() -> None:
        client.close()  # type: ignore[no-untyped-call,unused-ignore]
        cluster.close()  # type: ignore[no-untyped-call,unused-ignore]

    executor = client.get_executor()  # type: ignore[no-untyped-call,unused-ignore]
    way = Way(f"Dask LocalCluster ({workers} processes)", workers, executor)
    return way, close, started


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_sweep",
        description="meerkat-ref sweep on 1 and 2 local worker processes and on a Dask "
        "LocalCluster: the same totals and ledger rows (exit 1 if not), and the wall time "
        "of each, as a Markdown table.",
    )
    parser.add_argument("--scope", default="ci", choices=sorted(SCOPES),
                        help="the scope to sweep (default ci: about a minute a way)")
    parser.add_argument("--shard", default=None, metavar="I/N",
                        help="sweep only every N-th scenario from the I-th, and extrapolate")
    parser.add_argument("--dask-workers", type=int, default=2, metavar="N",
                        help="worker processes of the LocalCluster (default 2)")
    parser.add_argument("--rounds", type=int, default=1, metavar="N",
                        help="measure each way N times, interleaved; medians (default 1)")
    args = parser.parse_args(argv)
    scope = SCOPES[args.scope]
    try:
        shard(scenarios(scope), args.shard)
    except ValueError as exc:
        parser.error(str(exc))
    ways = [Way("--jobs 1", 1), Way("--jobs 2", 2)]
    cluster = _local_cluster(args.dask_workers)
    notes = []
    close: Callable[[], None] | None = None
    if isinstance(cluster, str):
        notes.append(f"Dask: {cluster}")
    else:
        way, close, started = cluster
        ways.append(way)
        notes.append(f"The LocalCluster took {started:.1f} s to start (not in its time).")
    try:
        with tempfile.TemporaryDirectory(prefix="bench-sweep-") as workdir:
            measured = measure(scope, args.shard, ways, args.rounds, Path(workdir))
    finally:
        if close is not None:
            close()
    what = f"--scope {scope.name}" + (f" --shard {args.shard}" if args.shard else "")
    print(f"meerkat-ref sweep {what}, memory store, each way with its ledger; "
          f"{args.rounds} round(s), interleaved")
    print(machine_line())
    print()
    print(table(measured, scope, args.shard))
    problems = disagreements(measured)
    print()
    for note in [*notes, *problems]:
        print(f"- {note}")
    if not problems:
        print("- Every way gave the same totals and the same ledger rows (times aside).")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
