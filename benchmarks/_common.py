"""Shared pieces of the benchmarks: statistics, result rows, the machine line, profiles.

A section's headline table has the columns the issue asks for: figure,
baseline, ratio, goal, met?.  Each figure and baseline cell carries its own
value, so a reader never has to look the numbers up elsewhere.  Detail tables
and notes follow the headline table.
"""

from __future__ import annotations

import cProfile
import datetime
import io
import math
import os
import platform
import pstats
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import trio

# --- statistics ------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of a non-empty sample."""
    if not values:
        raise ValueError("percentile of an empty sample")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


@dataclass(frozen=True)
class Latency:
    """Per-call latencies of one measurement (seconds), and its wall time."""

    samples: tuple[float, ...]
    wall: float

    @property
    def p50(self) -> float:
        return percentile(self.samples, 50)

    @property
    def p95(self) -> float:
        return percentile(self.samples, 95)

    @property
    def calls(self) -> int:
        return len(self.samples)

    @property
    def rate(self) -> float:
        """Completed calls per second of wall time."""
        return self.calls / self.wall


# --- formatting ------------------------------------------------------------


def fmt_seconds(value: float) -> str:
    if value >= 1:
        return f"{value:.2f} s"
    if value >= 1e-3:
        return f"{value * 1e3:.2f} ms"
    return f"{value * 1e6:.0f} µs"


def fmt_rate(value: float, unit: str = "/s") -> str:
    if value >= 100:
        return f"{value:,.0f}{unit}"
    return f"{value:.1f}{unit}"


def fmt_bytes(value: float) -> str:
    sign = "-" if value < 0 else ""
    value = abs(value)
    if value >= 1024 * 1024:
        return f"{sign}{value / (1024 * 1024):.2f} MiB"
    if value >= 1024:
        return f"{sign}{value / 1024:.1f} KiB"
    return f"{sign}{value:.0f} B"


def fmt_ratio(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}×"
    if value >= 10:
        return f"{value:.1f}×"
    if value >= 1:
        return f"{value:.2f}×"
    return f"{value:.3f}×"  # 0.497× must not read as 0.50×


# --- results ---------------------------------------------------------------


@dataclass(frozen=True)
class Goal:
    """A bound on a ratio: ``ratio <= bound`` (at most) or ``ratio >= bound``."""

    bound: float
    at_most: bool

    def met(self, ratio: float) -> bool:
        return ratio <= self.bound if self.at_most else ratio >= self.bound

    def __str__(self) -> str:
        return f"{'≤' if self.at_most else '≥'} {fmt_ratio(self.bound)}"

    def shortfall(self, ratio: float) -> str:
        """How far a missed goal is, in words."""
        if self.at_most:
            return (
                f"{fmt_ratio(ratio)} against ≤ {fmt_ratio(self.bound)}: "
                f"{ratio / self.bound:.2f}× over"
            )
        return (
            f"{fmt_ratio(ratio)} against ≥ {fmt_ratio(self.bound)}: "
            f"{ratio / self.bound:.0%} of the goal"
        )


def at_most(bound: float) -> Goal:
    return Goal(bound, at_most=True)


def at_least(bound: float) -> Goal:
    return Goal(bound, at_most=False)


@dataclass
class Row:
    """One headline figure against its baseline.

    ``ratio`` is figure ÷ baseline unless the row says otherwise in
    ``ratio_text``; ``goal`` is ``None`` where the issue sets none (the row is
    then reported, not judged).  ``passed`` overrides the goal check for rows
    that are pass/fail checks rather than ratios.
    """

    figure: str
    baseline: str
    ratio: float | None
    goal: Goal | str | None = None
    passed: bool | None = None
    ratio_text: str | None = None

    @property
    def met(self) -> bool | None:
        if self.passed is not None:
            return self.passed
        if isinstance(self.goal, Goal) and self.ratio is not None:
            return self.goal.met(self.ratio)
        return None

    def cells(self) -> list[str]:
        if self.ratio_text is not None:
            ratio = self.ratio_text
        else:
            ratio = "—" if self.ratio is None else fmt_ratio(self.ratio)
        goal = "— (none set; reported)" if self.goal is None else str(self.goal)
        met = {True: "**yes**", False: "**NO**", None: "n/a"}[self.met]
        return [self.figure, self.baseline, ratio, goal, met]


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)


@dataclass
class Section:
    key: str
    title: str
    rows: list[Row] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    profiles: list[tuple[str, str]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # hard failures: the run exits non-zero
    seconds: float = 0.0

    @property
    def missed(self) -> list[Row]:
        return [row for row in self.rows if row.met is False]


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    out = [line(header), "|" + "|".join("---" for _ in header) + "|"]
    out.extend(line(r) for r in rows)
    return "\n".join(out)


HEADLINE = ["Figure", "Baseline (same run)", "Ratio", "Goal", "Met?"]


def render_section(section: Section) -> str:
    parts = [f"## {section.title}", ""]
    if section.rows:
        parts += [markdown_table(HEADLINE, [r.cells() for r in section.rows]), ""]
    for table in section.tables:
        parts += [f"**{table.title}**", "", markdown_table(table.header, table.rows), ""]
    for note in section.notes:
        parts += [note, ""]
    for failure in section.failures:
        parts += [f"- **FAILED:** {failure}"]
    if section.failures:
        parts.append("")
    for title, text in section.profiles:
        parts += [
            f"<details><summary>{title}</summary>",
            "",
            "```text",
            text.rstrip(),
            "```",
            "",
            "</details>",
            "",
        ]
    parts.append(f"_Section time: {section.seconds:.1f} s._")
    return "\n".join(parts) + "\n"


# --- the machine -------------------------------------------------------------


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def git_revision(root: Path) -> str:
    try:
        rev = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return rev + (" (with uncommitted changes)" if dirty else "")


def machine_line() -> str:
    cores = os.cpu_count() or 0
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = cores
    python = f"{platform.python_implementation()} {platform.python_version()}"
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"{cpu_model()}, {cores} cores ({usable} usable), {python}, trio {trio.__version__}, "
        f"SQLite {sqlite3.sqlite_version}, {sys.platform}, {now}"
    )


# --- profiling ---------------------------------------------------------------


_HARNESS = ("__main__.py:", "_common.py:")  # the benchmark driver's own frames


def _trim_stats(text: str, top: int) -> str:
    """Keep the pstats header line and the first ``top`` rows, minus the driver's frames."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith("ncalls"):
            total = next((x.strip() for x in lines[:i] if "function calls" in x), "")
            body = [x for x in lines[i + 1 :] if x.strip() and not any(h in x for h in _HARNESS)]
            return "\n".join([total, lines[i], *body[:top]])
    return text


async def profile_async(run: Callable[[], Awaitable[object]], top: int = 18) -> str:
    """cProfile the event-loop thread while ``run`` is awaited.

    cProfile sees one thread: work done in Trio's worker threads (the SQLite
    calls) shows up as time the event loop spends waiting (``epoll.poll``).
    Rows are sorted by own time (``tottime``), then the same profile by
    cumulative time follows, both trimmed to ``top`` lines.
    """
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        await run()
    finally:
        profiler.disable()
    own = io.StringIO()
    pstats.Stats(profiler, stream=own).strip_dirs().sort_stats("tottime").print_stats(top + 10)
    cumulative = io.StringIO()
    stats = pstats.Stats(profiler, stream=cumulative).strip_dirs().sort_stats("cumulative")
    stats.print_stats(top + 10)
    return (
        "by own time (tottime):\n"
        + _trim_stats(own.getvalue(), top)
        + "\n\nby cumulative time:\n"
        + _trim_stats(cumulative.getvalue(), top)
    )


# --- progress ------------------------------------------------------------------

_START = time.perf_counter()


def say(message: str) -> None:
    """A progress line on stderr (results go to the Markdown file)."""
    print(f"[{time.perf_counter() - _START:7.1f}s] {message}", file=sys.stderr, flush=True)
