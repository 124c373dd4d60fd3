"""Exploring over a port: the rate at the 100th schedule and at the 1,000th (issue 20).

``meerkat-ref check --adapter CMD`` explores a port the way ``check`` explores
the reference, one schedule after another over one adapter process.  Its
cost per schedule must not grow as the search goes on: issue 20 measured
13 schedules/s falling to 3/s over the reference's own adapter, the time
spent in the oracle's process (a lookup that walked every request ever
sent).  This measures, over a real adapter process, a search of the
scenario ``create-vs-archive`` (about 2,100 schedules over a port, which
gives no footprints for DPOR to reduce with), cut at the last mark:

- the rate (schedules per second of wall time) over the 50 schedules that
  end at each mark, and
- the oracle's own CPU time per schedule over the same window (this
  process's CPU, not the adapter's: what grew was the oracle's work, and
  CPU time is not inflated by other load on a shared machine).

The goal is a flat cost: the oracle's CPU per schedule at the 1,000th within
1.25x of the 100th.  Adapters: the reference (``python -m
meerkat_ref.adapter``) and, when ``node`` is on PATH, the JavaScript port of
``spec/porting/``.

    python -m benchmarks.bench_port [--quick]
    python -m benchmarks.bench_port --whole [--without]   (every named scenario, exhausted)
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import trio

from meerkat_ref._spec import spec_dir
from meerkat_ref.oracle.engine import SCENARIOS, SearchReport, explore, get_scenario
from meerkat_ref.oracle.targets import adapter_target

from ._common import Row, Section, Table, at_most, fmt_rate, markdown_table, render_section, say

SCENARIO = "create-vs-archive"
WINDOW = 50  # schedules each rate is measured over, ending at the mark (explore reports every 50)
GOAL = 1.25  # CPU per schedule at the last mark over that at the first, at most


@dataclass(frozen=True)
class Mark:
    schedules: int  # the schedule the window ends at
    rate: float  # schedules per wall second over the window
    cpu_ms: float  # this process's CPU milliseconds per schedule over the window


@dataclass(frozen=True)
class Measured:
    adapter: str
    marks: tuple[Mark, ...]
    seconds: float


def adapters(footprints: bool = False) -> list[tuple[str, list[str]]]:
    """The adapters measured: the reference, and the JS port where ``node`` runs.

    Without ``footprints`` each is asked to declare none (every step then conflicts with
    every other): the rate is measured over a long search, and with its declaration a
    port explores ``SCENARIO`` whole in fewer schedules than the last mark.
    """
    reference = [sys.executable, "-m", "meerkat_ref.adapter"]
    if not footprints:
        reference += ["--capabilities", "points,faults,placement,events,exit"]
    out = [("reference (python -m meerkat_ref.adapter)", reference)]
    node = shutil.which("node")
    port = spec_dir() / "porting" / "memory-port.mjs"
    if node is not None and port.is_file():
        out.append(("JS port (spec/porting/memory-port.mjs)",
                    [node, str(port), *([] if footprints else ["--no-footprints"])]))
    return out


async def whole(argv: Sequence[str]) -> list[tuple[str, int, int, float]]:
    """Every named scenario over the adapter ``argv``, each exhausted: (name, schedules,
    end states, seconds), as ``meerkat-ref check --adapter`` explores them."""
    out = []
    async with adapter_target(list(argv), timeout=30.0) as target:
        for scenario in SCENARIOS:
            began = time.perf_counter()
            report = await explore(target, scenario)
            if not report.exhausted or report.violating:
                raise RuntimeError(f"{scenario.name} over {argv}: not exhausted, or violated")
            out.append((scenario.name, report.schedules, report.states,
                        time.perf_counter() - began))
    return out


def whole_table(without: bool) -> Table:
    """Every named scenario over each adapter, with its footprints (and, if asked, without)."""
    rows = []
    for declared in (True, False) if without else (True,):
        for name, argv in adapters(footprints=declared):
            say(f"port: {name}, every named scenario, footprints {'on' if declared else 'off'}")
            found = trio.run(whole, argv)
            label = f"{name}, {'its footprints' if declared else 'no footprints'}"
            rows += [[label, n, f"{k:,}", str(st), f"{sec:.1f}"] for n, k, st, sec in found]
            rows.append([label, "**all**", f"{sum(f[1] for f in found):,}",
                         str(sum(f[2] for f in found)), f"{sum(f[3] for f in found):.1f}"])
    return Table("every named scenario over a port (check --adapter)",
                 ["adapter", "scenario", "schedules", "end states", "seconds"], rows)


async def measure(argv: Sequence[str], marks: Sequence[int]) -> tuple[Mark, ...]:
    """Explore ``SCENARIO`` over the adapter ``argv`` up to the last mark; each mark's window."""
    wanted = sorted(marks)
    clock: dict[int, tuple[float, float]] = {}  # schedules run -> (wall, cpu) at that moment

    def tick(report: SearchReport) -> None:
        clock[report.schedules + report.pruned] = (time.perf_counter(), time.process_time())

    async with adapter_target(list(argv), timeout=30.0) as target:
        await explore(target, get_scenario(SCENARIO), max_schedules=wanted[-1],
                      progress=tick)
    out = []
    for mark in wanted:
        start, end = clock.get(mark - WINDOW), clock.get(mark)
        if start is None or end is None:
            raise RuntimeError(f"the search of {SCENARIO} ended before schedule {mark}")
        out.append(Mark(mark, WINDOW / (end[0] - start[0]),
                        (end[1] - start[1]) * 1000 / WINDOW))
    return tuple(out)


def run_all(marks: Sequence[int]) -> list[Measured]:
    out = []
    for name, argv in adapters():
        say(f"port: {name}, {SCENARIO}, to schedule {max(marks)}")
        began = time.perf_counter()
        measured = trio.run(measure, argv, marks)
        out.append(Measured(name, measured, time.perf_counter() - began))
    return out


def section(quick: bool) -> Section:
    marks = (100, 300) if quick else (100, 1000)
    measured = run_all(marks)
    result = Section("port", "7. Exploring over a port (check --adapter)")
    for m in measured:
        first, last = m.marks[0], m.marks[-1]
        result.rows.append(Row(
            figure=f"{m.adapter}: oracle CPU per schedule at the {last.schedules:,}th: "
            f"{last.cpu_ms:.1f} ms ({fmt_rate(last.rate)} wall)",
            baseline=f"at the {first.schedules:,}th: {first.cpu_ms:.1f} ms "
            f"({fmt_rate(first.rate)} wall)",
            ratio=last.cpu_ms / first.cpu_ms,
            goal=at_most(GOAL),
        ))
    header = ["adapter", "schedule", "schedules/s (wall, last 50)",
              "oracle CPU ms per schedule (last 50)"]
    rows = [[m.adapter, f"{k.schedules:,}", fmt_rate(k.rate), f"{k.cpu_ms:.1f}"]
            for m in measured for k in m.marks]
    result.tables.append(Table(f"DPOR over the adapter, scenario {SCENARIO}", header, rows))
    result.notes.append(
        "Each figure is over the 50 schedules that end at that schedule. The oracle's "
        "CPU is this process's alone (the adapter's process is another); wall rates include "
        "the adapter's work and any other load on the machine.")
    return result


async def run(quick: bool, workdir: Path) -> Section:
    # Each measurement is its own trio.run, which cannot nest: use a thread.
    return await trio.to_thread.run_sync(section, quick)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_port",
        description="The rate of check --adapter at the 100th and the 1,000th schedule, over "
        "the reference's adapter and (with node) the JS port.",
    )
    parser.add_argument("--quick", action="store_true",
                        help="marks at the 100th and 300th schedule instead of the 1,000th")
    parser.add_argument("--whole", action="store_true",
                        help="instead: every named scenario over each adapter with its "
                        "footprints, exhausted (schedules, end states, seconds)")
    parser.add_argument("--without", action="store_true",
                        help="with --whole: also with no footprints (slow: about 14 minutes "
                        "for the JS port)")
    args = parser.parse_args(argv)
    if args.whole:
        table = whole_table(args.without)
        print(markdown_table(table.header, table.rows))
        return 0
    print(render_section(section(args.quick)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
