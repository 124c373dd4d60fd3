"""``benchmarks.bench_schedule``: where a schedule's time goes, charged to parts that add up.

The figures are measured by the command and written in ``benchmarks/README.md``;
here only what makes them trustworthy: every part is charged, the parts add up
to the whole, and the engine is left as it was found.
"""

from __future__ import annotations

import sys
from pathlib import Path

import trio

from meerkat_ref.oracle.engine import _monitor, get_scenario
from meerkat_ref.oracle.targets import _inprocess

ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:  # benchmarks/ sits beside tests/ and is not installed
    sys.path.insert(0, ROOT)

from benchmarks.bench_schedule import PARTS, measure, table  # noqa: E402


def test_the_parts_add_up_to_the_whole_and_the_engine_is_put_back() -> None:
    settle, observe = _inprocess.InProcessTarget.settle, _monitor.Monitor.observe
    clock, schedules, seconds = trio.run(measure, [get_scenario("turns-at-once")])
    assert schedules == 38
    assert {part for part, _, _ in PARTS} | {"the run loop"} == set(clock.spent)
    assert all(spent > 0 for spent in clock.spent.values()), clock.spent
    assert abs(sum(clock.spent.values()) - seconds) < 0.05 * seconds
    assert _inprocess.InProcessTarget.settle is settle and _monitor.Monitor.observe is observe
    text = table(clock, schedules, seconds)
    assert text.splitlines()[-1].startswith("| whole schedule |")
