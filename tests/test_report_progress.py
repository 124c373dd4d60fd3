"""Progress output that fits where it goes, and tables that line up.

The clock is a counter the test moves, so the cadence is tested exactly and
nothing sleeps.
"""

from __future__ import annotations

import io
import json
import sys

import pytest

from meerkat_ref.report._progress import (
    EVERY,
    JsonProgress,
    LineProgress,
    RichProgress,
    make_progress,
)
from meerkat_ref.report._table import aligned_table, display_width


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def drive(progress: LineProgress | JsonProgress, clock: FakeClock) -> None:
    """Thirty updates a quarter second apart (7.5 s), then the true totals at 8 s."""
    progress.start("turn-save-vs-archive", total=400)
    for n in range(1, 31):
        clock.now += 0.25
        progress.update(10 * n, n, 0)
    clock.now += 0.5
    progress.finish(320, 31, 1)
    progress.close()


def test_on_a_pipe_one_whole_line_per_report_at_most_one_per_interval() -> None:
    out, clock = io.StringIO(), FakeClock()
    progress = make_progress(out, json_mode=False, clock=clock, every=2.0)
    assert isinstance(progress, LineProgress)
    drive(progress, clock)
    text = out.getvalue()
    assert "\r" not in text and "\x1b" not in text, "no rewrites, no escape codes"
    lines = text.splitlines()
    assert text.endswith("\n") and len(lines) == 1 + 3 + 1, "start, at 2 s, 4 s, 6 s, finish"
    assert lines[0] == "turn-save-vs-archive: started (400 schedules)"
    assert lines[1] == (
        "turn-save-vs-archive: 80/400 (20%) schedules, 8 states, 0 violations, 40 schedules/s, 2.0s"
    )
    assert lines[-1] == (
        "turn-save-vs-archive: done, 320/400 (80%) schedules, 31 states, 1 violation, "
        "40 schedules/s, 8.0s"
    )


def test_json_lines_events_with_the_same_cadence_and_true_totals() -> None:
    out, clock = io.StringIO(), FakeClock()
    progress = make_progress(out, json_mode=True, clock=clock, every=2.0)
    assert isinstance(progress, JsonProgress)
    drive(progress, clock)
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [e["event"] for e in events] == ["start", "progress", "progress", "progress", "finish"]
    assert events[0] == {"event": "start", "scenario": "turn-save-vs-archive", "total": 400}
    assert events[-1] == {
        "event": "finish",
        "scenario": "turn-save-vs-archive",
        "schedules": 320,
        "total": 400,
        "states": 31,
        "violations": 1,
        "elapsed": 8.0,
        "rate": 40.0,
    }


def test_a_terminal_even_with_json_gets_json() -> None:
    assert isinstance(make_progress(Terminal(), json_mode=True), JsonProgress)


def test_a_terminal_gets_the_live_display(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "xterm-256color")
    live = make_progress(Terminal(), json_mode=False)
    assert isinstance(live, RichProgress)
    live.close()
    monkeypatch.setenv("TERM", "dumb")
    assert isinstance(make_progress(Terminal(), json_mode=False), LineProgress)


def test_the_live_display_shows_each_scenario_with_its_counts() -> None:
    out, clock = Terminal(), FakeClock()
    live = RichProgress(out, clock, force_terminal=True, width=140)
    live.start("turn-save-vs-archive", total=200)
    clock.now += 2.0
    live.update(100, 7, 0)
    live.finish(200, 8, 0)
    live.start("create-[red]vs[/red]-archive")  # unknown total; markup in a name is text
    clock.now += 4.0
    live.update(50, 3, 1)
    live.finish(60, 3, 1)
    live.close()
    screen = out.getvalue()
    assert "turn-save-vs-archive" in screen and "create-[red]vs[/red]-archive" in screen
    assert "200/200 (100%) schedules, 8 states, 0 violations, 100 schedules/s, 2.0s" in screen
    assert "60 schedules, 3 states, 1 violation, 15 schedules/s, 4.0s" in screen
    assert "\x1b[" in screen, "a terminal display: it redraws in place"


def test_stdout_sent_elsewhere_is_not_pulled_into_the_display(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``check > file`` on a terminal: the counterexamples must land in the file."""
    to_file = io.StringIO()
    monkeypatch.setattr(sys, "stdout", to_file)
    live = RichProgress(Terminal(), FakeClock(), force_terminal=True)
    live.start("s")
    assert sys.stdout is to_file
    print("counterexample")
    live.close()
    assert to_file.getvalue() == "counterexample\n"
    same_terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", same_terminal)
    live = RichProgress(Terminal(), FakeClock(), force_terminal=True)
    live.start("s")
    assert sys.stdout is not same_terminal, "on the same terminal, prints go above the display"
    live.close()
    assert sys.stdout is same_terminal


def test_progress_is_a_context_manager_that_closes() -> None:
    out, clock = io.StringIO(), FakeClock()
    with LineProgress(out, clock, EVERY) as progress:
        progress.start("s")
    assert out.getvalue() == "s: started\n"


def positions(line: str) -> dict[int, str]:
    """Display column -> the character that starts there (a wide one covers two columns)."""
    out, at = {}, 0
    for ch in line:
        out[at] = ch
        at += display_width(ch)
    return out


def test_table_columns_line_up_with_wide_and_odd_values() -> None:
    rows = [
        ("window", "scenario", "rule(s)", "schedules", "seconds"),
        ("1 save-after-turn", "turn-save-vs-archive", "ARCHIVE-FINAL,LINEARIZABLE", 39, "0.21"),
        ("3 archived-host-loop", "host-checkpoint-vs-archive", "ARCHIVE-STOP", 1, "12.00"),
        ("会话 wide", "e\u0301 combining", "line\nbreak\ttab", 123456, "0.1"),
        ("short row",),
    ]
    widths = [20, 26, 26, 9, 7]  # the widest cell of each column, counted by hand
    text = aligned_table(rows, numeric_columns={3, 4})
    lines = text.splitlines()
    assert len(lines) == len(rows) + 1
    assert lines[1] == "  ".join("-" * n for n in widths)
    boundaries = [sum(widths[:i]) + 2 * i for i in range(1, len(widths))]
    for line in lines[:1] + lines[2:-1]:
        at = positions(line)
        for b in boundaries:
            assert at.get(b - 2) == " " and at.get(b - 1) == " ", (b, line)
    assert lines[2].endswith("       39     0.21"), "numbers are right-aligned"
    assert lines[4].startswith("会话 wide" + " " * 11 + "  e\u0301 combining")
    assert [positions(lines[0])[b] for b in boundaries] == ["s", "r", "s", "s"]
    assert "line break tab" in lines[4]
    assert lines[-1] == "short row"
    assert all(line == line.rstrip() for line in lines)


def test_display_width_counts_terminal_columns() -> None:
    assert display_width("ARCHIVE-FINAL,LINEARIZABLE") == 26
    assert display_width("会话") == 4
    assert display_width("e\u0301") == 1
    assert aligned_table([]) == ""
