"""Progress of a search, in the form that fits where the output goes.

Why three forms: on a terminal a person watches a live display; in a CI log
or a pipe, ``\\r`` rewrites turn into one enormous line or thousands of
half-lines, so there each report is a whole line, at a steady cadence; a
program reading ``--json`` wants events it can parse.  One interface,
``Progress``, so the engine reports once and ``make_progress`` picks:

- ``RichProgress`` when the stream is a terminal (and ``TERM`` is not
  ``dumb``): a live display per scenario, built on rich, with schedules,
  distinct end states, violations, schedules/s, elapsed time, and a bar when
  the total is known (a pulsing one when it is not).
- ``LineProgress`` otherwise: one line at ``start``, at most one line per
  ``every`` seconds on ``update``, and always a last line with the true
  totals on ``finish``.
- ``JsonProgress`` with ``json_mode``: the same cadence, as JSON lines
  (``{"event": "start" | "progress" | "finish", ...}``).

Time comes from an injectable ``clock`` (seconds, monotonic), so tests drive
the cadence without sleeping.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Protocol, Self, TextIO

if TYPE_CHECKING:
    from rich.progress import Progress as RichLive
    from rich.progress import TaskID

Clock = Callable[[], float]

EVERY = 2.0
"""Seconds between two progress lines on a pipe: often enough to show life, rare enough to read."""


class Progress(Protocol):
    """What the engine calls; one scenario at a time, ``close`` once at the end."""

    def start(self, scenario: str, total: int | None = None) -> None:
        """A scenario begins; ``total`` is its number of schedules, if known."""

    def update(self, schedules: int, states: int | None, violations: int) -> None:
        """Counts so far (``states`` None: not counted); may be called as often as one likes."""

    def finish(self, schedules: int, states: int | None, violations: int) -> None:
        """The scenario is done: these are its true totals."""

    def ended(self, scenario: str, schedules: int, states: int | None, violations: int,
              seconds: float) -> None:
        """A scenario explored elsewhere (another process) is done: its start and finish."""

    def counterexample(self, rules: Sequence[str], schedule: str) -> None:
        """The current scenario's first counterexample was found and written to ``schedule``."""

    def close(self) -> None:
        """No more scenarios (stops a live display)."""


class _Counting:
    """What every form shares: the scenario, its clock, and the text of one report."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.scenario = ""
        self.total: int | None = None
        self.started = 0.0

    def begin(self, scenario: str, total: int | None) -> None:
        self.scenario, self.total, self.started = scenario, total, self.clock()

    def fields(self, schedules: int, states: int | None, violations: int) -> dict[str, object]:
        elapsed = max(0.0, self.clock() - self.started)
        rate = schedules / elapsed if elapsed > 0 else 0.0
        return {
            "scenario": self.scenario,
            "schedules": schedules,
            "total": self.total,
            "states": states,
            "violations": violations,
            "elapsed": round(elapsed, 3),
            "rate": round(rate, 1),
        }

    def start(self, scenario: str, total: int | None = None) -> None:
        raise NotImplementedError

    def finish(self, schedules: int, states: int | None, violations: int) -> None:
        raise NotImplementedError

    def ended(self, scenario: str, schedules: int, states: int | None, violations: int,
              seconds: float) -> None:
        self.start(scenario)
        self.started = self.clock() - seconds  # it ran elsewhere, for this long
        self.finish(schedules, states, violations)

    def found_text(self, rules: Sequence[str], schedule: str) -> str:
        elapsed = max(0.0, self.clock() - self.started)
        return (f"{self.scenario}: counterexample ({', '.join(rules)}) after {elapsed:.1f}s, "
                f"schedule written to {schedule}")

    def counts_text(self, schedules: int, states: int | None, violations: int) -> str:
        f = self.fields(schedules, states, violations)
        done = f"{schedules}"
        if self.total:
            done += f"/{self.total} ({100 * schedules // self.total}%)"
        plural = "" if violations == 1 else "s"
        counted = "" if states is None else f"{states} state{'' if states == 1 else 's'}, "
        noun = "schedule" if schedules == 1 and not self.total else "schedules"
        return (
            f"{done} {noun}, {counted}{violations} violation{plural}, "
            f"{f['rate']:.0f} schedules/s, {f['elapsed']:.1f}s"
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        pass


class _Throttled(_Counting):
    """At most one report per ``every`` seconds between a start and its finish."""

    def __init__(self, stream: TextIO, clock: Clock, every: float) -> None:
        super().__init__(clock)
        self.stream = stream
        self.every = every
        self.last = 0.0

    def line(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()
        self.last = self.clock()

    def due(self) -> bool:
        return self.clock() - self.last >= self.every


class LineProgress(_Throttled):
    """Plain lines for a pipe or a CI log: never a ``\\r``."""

    def start(self, scenario: str, total: int | None = None) -> None:
        self.begin(scenario, total)
        known = "" if total is None else f" ({total} schedules)"
        self.line(f"{scenario}: started{known}")

    def update(self, schedules: int, states: int | None, violations: int) -> None:
        if self.due():
            self.line(f"{self.scenario}: {self.counts_text(schedules, states, violations)}")

    def finish(self, schedules: int, states: int | None, violations: int) -> None:
        self.line(f"{self.scenario}: done, {self.counts_text(schedules, states, violations)}")

    def counterexample(self, rules: Sequence[str], schedule: str) -> None:
        self.line(self.found_text(rules, schedule))


class JsonProgress(_Throttled):
    """JSON lines: ``start``, throttled ``progress``, ``finish`` with the true totals."""

    def _event(self, event: str, body: dict[str, object]) -> None:
        self.line(json.dumps({"event": event, **body}, ensure_ascii=False))

    def start(self, scenario: str, total: int | None = None) -> None:
        self.begin(scenario, total)
        self._event("start", {"scenario": scenario, "total": total})

    def update(self, schedules: int, states: int | None, violations: int) -> None:
        if self.due():
            self._event("progress", self.fields(schedules, states, violations))

    def finish(self, schedules: int, states: int | None, violations: int) -> None:
        self._event("finish", self.fields(schedules, states, violations))

    def counterexample(self, rules: Sequence[str], schedule: str) -> None:
        self._event("counterexample", {"scenario": self.scenario, "rules": list(rules),
                                       "schedule": schedule,
                                       "elapsed": round(self.clock() - self.started, 3)})


class RichProgress(_Counting):
    """A live display on a terminal: one row per scenario, kept when it finishes.

    rich is imported here, not at module level: only a terminal pays for it.
    """

    def __init__(
        self,
        stream: TextIO,
        clock: Clock = time.monotonic,
        *,
        force_terminal: bool | None = None,
        width: int | None = None,
    ) -> None:
        from rich.console import Console
        from rich.markup import escape
        from rich.progress import BarColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as Live

        super().__init__(clock)
        console = Console(file=stream, force_terminal=force_terminal, width=width)
        self.live: RichLive = Live(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[counts]}"),
            TimeElapsedColumn(),
            console=console,
            get_time=clock,
            refresh_per_second=4,
            # Print()s to stdout are moved above the display only when stdout is this same
            # terminal; a stdout sent to a file must keep its output.
            redirect_stdout=_is_terminal(sys.stdout),
        )
        self.task: TaskID | None = None
        self.running = False
        self.escape = escape

    def start(self, scenario: str, total: int | None = None) -> None:
        self.begin(scenario, total)
        if not self.running:
            self.live.start()
            self.running = True
        self.task = self.live.add_task(self.escape(scenario), total=total, counts="starting")

    def _show(self, schedules: int, states: int | None, violations: int, *,
              done: bool) -> None:
        if self.task is None:
            return
        counts = self.counts_text(schedules, states, violations)
        if violations:
            counts = f"[red]{counts}[/red]"
        total = self.total if self.total is not None or not done else schedules
        self.live.update(self.task, completed=schedules, total=total, counts=counts)

    def update(self, schedules: int, states: int | None, violations: int) -> None:
        self._show(schedules, states, violations, done=False)

    def finish(self, schedules: int, states: int | None, violations: int) -> None:
        self._show(schedules, states, violations, done=True)
        if self.task is not None:
            self.live.stop_task(self.task)

    def counterexample(self, rules: Sequence[str], schedule: str) -> None:
        if self.running:
            self.live.console.print(self.escape(self.found_text(rules, schedule)))

    def close(self) -> None:
        if self.running:
            self.live.stop()
            self.running = False


def duration(seconds: float) -> str:
    """A span of time as a person says it: ``45 s``, ``3 min 20 s``, ``1 h 05 min``."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def time_left(elapsed: float, done: float, total: float) -> str:
    """``about 3 min 20 s left``, from the rate so far; empty before anything is done.

    The estimate assumes the work left goes at the pace of the work done: a
    guess (the units of work differ in cost), said as one ("about").
    """
    if done <= 0 or total <= done or elapsed <= 0:
        return ""
    return f"about {duration(elapsed / done * (total - done))} left"


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty() and os.environ.get("TERM") != "dumb"
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def make_progress(
    stream: TextIO, json_mode: bool, *, clock: Clock = time.monotonic, every: float = EVERY
) -> LineProgress | JsonProgress | RichProgress:
    """The form that fits ``stream``: JSON lines, a live display on a terminal, or plain lines."""
    if json_mode:
        return JsonProgress(stream, clock, every)
    if _is_terminal(stream):
        return RichProgress(stream, clock)
    return LineProgress(stream, clock, every)
