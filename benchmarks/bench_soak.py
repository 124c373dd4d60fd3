"""5. The soak at full size (the engine and its checks are in ``benchmarks/soak.py``)."""

from __future__ import annotations

from pathlib import Path

from ._common import Row, Section, Table, fmt_bytes, fmt_rate, fmt_seconds, say
from .soak import (
    FIXED_SLACK,
    LEAK_BLOCK_SLACK,
    LEAK_BLOCKS_PER_SESSION,
    TABLE_BYTES_PER_LIVE,
    SoakConfig,
    SoakReport,
    run_soak,
)

FULL = SoakConfig(live=1_000, turns=10_000, cycles=2, budget_s=300.0)
QUICK = SoakConfig(live=50, turns=500, cycles=2, budget_s=60.0)


async def run(config: SoakConfig, workdir: Path) -> Section:
    section = Section(
        "soak", "5. Soak: live sessions, turns, host loops and archives mixed, on SQLite"
    )
    say(f"soak: {config.live:,} live sessions, {config.turns:,} turns, {config.cycles} cycles")
    report = await run_soak(config, workdir)
    say(f"soak: done in {report.elapsed:.1f} s, ok={report.ok}")
    _report(section, report)
    return section


def _report(section: Section, r: SoakReport) -> None:
    c = r.config
    section.rows.append(
        Row(
            figure=f"whole run, {r.turns:,} turns: {fmt_seconds(r.elapsed)}"
            + (" (**budget fired: deadlock**)" if r.deadlocked else ""),
            baseline=f"`trio.move_on_after` budget: {fmt_seconds(c.budget_s)}",
            ratio=r.elapsed / c.budget_s,
            goal="< 1× (the budget never fires)",
            passed=not r.deadlocked,
        )
    )
    section.rows.append(
        Row(
            figure=f"resurrections, tasks left behind, other violations: {r.violation_count}",
            baseline=f"{r.archives:,} archives checked at once and after their cycle",
            ratio=None,
            goal="0",
            passed=r.violation_count == 0,
        )
    )
    if r.memory_after:
        loaded = r.memory_loaded - r.memory_start
        section.rows.append(
            Row(
                figure=f"traced memory after everything was archived: "
                f"{fmt_bytes(r.residual)} above the start",
                baseline=f"start: {fmt_bytes(r.memory_start)}; with {c.live:,} live: "
                f"{fmt_bytes(r.memory_loaded)} (+{fmt_bytes(loaded)})",
                ratio=r.residual / loaded if loaded > 0 else None,
                ratio_text=f"{r.residual / loaded:.1%} of the growth at load"
                if loaded > 0
                else None,
                goal=f"≤ {fmt_bytes(r.tolerance)} (1 KiB × live + 64 KiB)",
                passed=r.residual <= r.tolerance,
            )
        )
        for i, (growth, limit) in enumerate(zip(r.cycle_growth, r.leak_limits, strict=True)):
            section.rows.append(
                Row(
                    figure=f"live blocks after cycle {i + 2} vs after cycle {i + 1}: {growth:+,}",
                    baseline=f"{r.archived_per_cycle[i + 1]:,} sessions archived in cycle {i + 2}",
                    ratio=None,
                    ratio_text=f"{growth / r.archived_per_cycle[i + 1]:+.3f} blocks per session",
                    goal=f"≤ {limit:,} blocks ({LEAK_BLOCKS_PER_SESSION} × sessions "
                    f"+ {LEAK_BLOCK_SLACK})",
                    passed=growth <= limit,
                )
            )
    for problem in r.problems():
        section.failures.append(problem)

    counts = Table(
        "What the soak did",
        ["Measure", "Value"],
        [
            ["live sessions (= `max_sessions`), cycles", f"{c.live:,}, {c.cycles}"],
            ["turns completed (`start_turn`, incl. racing ones that finished)", f"{r.turns:,}"],
            ["turns/s, with tracemalloc on", fmt_rate(r.turns / r.elapsed) if r.elapsed else "—"],
            ["sessions created (half deferred, half with a first turn)", f"{r.creates:,}"],
            ["sessions archived (all of them)", f"{r.archives:,}"],
            ["… of which mid-run (racing a turn or ending a host loop)", f"{r.archives_mid_run:,}"],
            [
                "racing turns cancelled by the archive / refused (not found)",
                f"{r.turns_cancelled:,} / {r.turns_refused:,}",
            ],
            [
                "host loops (ended by interrupt: the rest by archive)",
                f"{r.host_loops:,} ({r.interrupts:,})",
            ],
            [
                "host messages injected / waited for until served",
                f"{r.host_messages_injected:,} / {r.host_messages_served:,}",
            ],
            [
                "traced memory: start, with all live, after each cycle, peak",
                ", ".join(
                    [fmt_bytes(r.memory_start), fmt_bytes(r.memory_loaded)]
                    + [fmt_bytes(m) for m in r.memory_after]
                    + [fmt_bytes(r.memory_peak)]
                ),
            ],
            [
                "live traced blocks: start, after each cycle",
                ", ".join(f"{b:,}" for b in [r.blocks_start, *r.blocks_after]),
            ],
            [
                "Trio tasks: start, after each cycle",
                ", ".join(str(t) for t in [r.tasks_start, *r.tasks_after]),
            ],
        ],
    )
    section.tables.append(counts)
    section.notes.append(
        "Memory tolerance (see the `soak.py` docstring): emptied dicts and sets keep their "
        "tables, so the service's per-session dicts, Trio's task set and run queue and the "
        f"store lock's parking lot stay at their high-water size: {TABLE_BYTES_PER_LIVE} B "
        f"per live session plus {fmt_bytes(FIXED_SLACK)} covers them (the residual "
        "allocations below are those tables).  They do not grow with the number of sessions "
        "processed, whereas a leak does; and a table is one block however large, whereas a "
        "leak is a block per leaked object.  So the live blocks after the second cycle may "
        f"exceed those after the first by at most {LEAK_BLOCKS_PER_SESSION} per session "
        f"archived plus {LEAK_BLOCK_SLACK}: one retained `SessionId` per session (3 blocks) "
        "would be 30 times over."
    )
    if r.residual_top:
        section.profiles.append(
            (
                "Largest residual allocations after the last cycle (tracemalloc, by line)",
                "\n".join(r.residual_top),
            )
        )
