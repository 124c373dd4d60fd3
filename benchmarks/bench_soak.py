"""5. The soak at full size (the engine and its checks are in ``benchmarks/soak.py``).

6. The soak with faults: the same engine over a store whose writes fail
(``benchmarks/faults.py``), then a real process SIGKILLed at random moments
on a SQLite file (``benchmarks/soak_kill.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import trio

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
from .soak_kill import KillReport, run_kill_soak

FULL = SoakConfig(live=1_000, turns=10_000, cycles=2, budget_s=300.0)
QUICK = SoakConfig(live=50, turns=500, cycles=2, budget_s=60.0)


@dataclass(frozen=True)
class FaultsConfig:
    soak: SoakConfig
    kills: int
    kill_lines: tuple[int, int]  # a child is killed after this many lines (random in range)
    kill_fault_rate: float = 0.03


# Each acknowledged create and turn is read back from the store at once, so the
# run takes about 2.5x section 5's: the deadlock budget is doubled to keep its margin.
FAULTS_FULL = FaultsConfig(replace(FULL, fault_rate=0.03, budget_s=600.0), kills=20,
                           kill_lines=(200, 2000))
FAULTS_QUICK = FaultsConfig(replace(QUICK, fault_rate=0.05), kills=3, kill_lines=(40, 400))


async def run(config: SoakConfig, workdir: Path) -> Section:
    section = Section(
        "soak", "5. Soak: live sessions, turns, host loops and archives mixed, on SQLite"
    )
    say(f"soak: {config.live:,} live sessions, {config.turns:,} turns, {config.cycles} cycles")
    report = await run_soak(config, workdir)
    say(f"soak: done in {report.elapsed:.1f} s, ok={report.ok}")
    _report(section, report)
    return section


def _budget_row(r: SoakReport, what: str) -> Row:
    """The whole run against its deadlock budget (it must never fire)."""
    return Row(
        figure=f"{what}: {fmt_seconds(r.elapsed)}"
        + (" (**budget fired: deadlock**)" if r.deadlocked else ""),
        baseline=f"`trio.move_on_after` budget: {fmt_seconds(r.config.budget_s)}",
        ratio=r.elapsed / r.config.budget_s,
        goal="< 1× (the budget never fires)",
        passed=not r.deadlocked,
    )


def _report(section: Section, r: SoakReport) -> None:
    c = r.config
    section.rows.append(_budget_row(r, f"whole run, {r.turns:,} turns"))
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


# -- 6. with faults and kills ---------------------------------------------------------------


async def run_faults(config: FaultsConfig, workdir: Path) -> Section:
    section = Section(
        "soak-faults", "6. Soak with faults: failing store writes, and SIGKILLs of a real process"
    )
    c = config.soak
    say(f"soak with faults: {c.live:,} live, {c.turns:,} turns, {c.fault_rate:.0%} of writes "
        "failing")
    soak_dir = workdir / "soak-faults"
    soak_dir.mkdir(exist_ok=True)
    report = await run_soak(c, soak_dir)
    say(f"soak with faults: done in {report.elapsed:.1f} s, ok={report.ok}")
    say(f"kill soak: {config.kills} SIGKILLs")
    kill_dir = workdir / "soak-kill"
    kill_dir.mkdir(exist_ok=True)
    kills = await trio.to_thread.run_sync(
        lambda: run_kill_soak(kill_dir, kills=config.kills, lines=config.kill_lines,
                              fault_rate=config.kill_fault_rate))
    say(f"kill soak: {kills.text()}")
    _report_faults(section, report, kills, config)
    return section


def _report_faults(section: Section, r: SoakReport, k: KillReport, config: FaultsConfig) -> None:
    c = r.config
    section.rows += [
        _budget_row(r, "in process, whole run"),
        Row(
            figure=f"in process, {r.faults_injected:,} failed writes: acknowledged writes lost "
            f"{r.lost}, archived sessions back {r.resurrected}, other violations "
            f"{r.violation_count - r.lost - r.resurrected}",
            baseline=f"{r.acks_checked:,} acknowledged creates and turns, each checked against "
            f"the store at once; {r.archives:,} archives",
            ratio=None,
            goal="0",
            passed=r.violation_count == 0 and not r.deadlocked,
        ),
        Row(
            figure=f"in process: Trio tasks left over after a cycle: {r.leaked_tasks}; "
            f"memory back within tolerance: {'yes' if r.memory_ok else 'no'}",
            baseline=f"{r.tasks_start} tasks at the start",
            ratio=None,
            goal="0, yes",
            passed=r.leaked_tasks == 0 and r.memory_ok,
        ),
        Row(
            figure=f"{k.kills} SIGKILLs: acknowledged writes lost {k.lost}, archived sessions "
            f"back {k.resurrected}",
            baseline=f"{k.acked_checked:,} acknowledged writes and {k.archived_checked:,} "
            "archived sessions checked against the file reopened after each kill",
            ratio=None,
            goal="0",
            passed=k.lost == 0 and k.resurrected == 0,
        ),
        Row(
            figure=f"child processes that crashed on their own or hung: {k.crashes + k.hangs}",
            baseline=f"{k.rounds} processes started",
            ratio=None,
            goal="0",
            passed=k.crashes == 0 and k.hangs == 0,
        ),
    ]
    for problem in r.problems() + k.problems[:10]:
        section.failures.append(problem)
    by_kind = ", ".join(f"{kind} {n:,}" for kind, n in sorted(r.faults.items())) or "none"
    kill_kinds = ", ".join(f"{kind} {n:,}" for kind, n in sorted(k.faults.items())) or "none"
    section.tables.append(Table(
        "What the soak with faults did",
        ["Measure", "In process (faulty store)", "SIGKILLed processes (faulty store, SQLite)"],
        [
            ["operations (creates, turns, host loops, archives and their retries)",
             f"{r.operations:,}", f"{k.operations:,} answered"],
            ["store writes / faults injected", f"{r.store_writes:,} / {r.faults_injected:,}",
             f"— / {k.faults_injected:,}"],
            ["faults by kind", by_kind, kill_kinds],
            ["kills (SIGKILL at a random line)", "—", f"{k.kills}"],
            ["creates / turns answered SESSION_STORE_ERROR (live, unsaved)",
             f"{r.creates_unsaved:,} / {r.turns_unsaved:,}", f"{k.unsaved:,} in all"],
            ["archives retried after a store fault", f"{r.archive_retries:,}", "—"],
            ["host-loop checkpoints failed (logged, the loop served on)",
             f"{r.checkpoints_failed:,}", "—"],
            ["acknowledged writes checked", f"{r.acks_checked:,}",
             f"{k.acked_checked:,} ({k.superseded:,} more superseded by an archive; "
             f"{k.file_checks:,} lookups over {k.sessions_checked:,} sessions)"],
            ["archives cut by a kill (either outcome allowed, then fixed)", "—",
             f"{k.in_doubt}"],
            ["lost / resurrected", f"{r.lost} / {r.resurrected}", f"{k.lost} / {k.resurrected}"],
            ["leaked tasks", f"{r.leaked_tasks}", "— (the process is gone)"],
            ["time", fmt_seconds(r.elapsed), fmt_seconds(k.seconds)],
        ],
    ))
    section.notes.append(
        f"In process: {c.live:,} live sessions, {c.turns:,} turns, {c.cycles} cycles, the soak "
        f"of section 5 over `benchmarks.faults.FaultyStore` failing {c.fault_rate:.0%} of writes "
        f"at random (a full disk then refuses {c.fault_span} writes in a row, so the share of "
        "failed writes is higher).  A create or turn answered `SESSION_STORE_ERROR` is live and "
        "unsaved ([SAVE-FAILED]); every acknowledged one is checked against the store at once.  "
        f"Kills: {config.kills} child processes in turn on one SQLite file, each SIGKILLed after "
        f"{config.kill_lines[0]}..{config.kill_lines[1]} lines of output, with "
        f"{config.kill_fault_rate:.0%} of writes failing; after each kill the parent reopens the "
        "file and checks everything any child acknowledged so far."
    )
