"""Our DPOR against a table no one here wrote: the DPOR literature's benchmark programs.

Issue 18.  The classic programs (``engine.classics``) run through the same
DPOR tree as every scenario.  For each small size: DPOR reaches every end
state the plain DFS reaches (soundness); the Mazurkiewicz traces counted over
every schedule (``_traces``) match the closed form where one is known; DPOR
runs at least one complete schedule per trace (a sound DPOR cannot run
fewer) and, because its sleep sets never let two complete runs fall in one
trace (Godefroid 1996), exactly one.  What DPOR does beyond that -- runs
abandoned as covered, source-DPOR's known excess on ``lastzero`` -- is
measured in ``benchmarks/bench_dpor_classics.py``, not pinned here.

And the gap it shows: where an acquire of a held lock is *not enabled* (the
papers' model), our DPOR misses a behaviour (a strict xfail below): it learns
that a process was disabled only when the process was ready and another
step took that away.  A Trio task meets a lock inside a step of its own,
which is the model ``classics`` uses by default (``Program.waits``).
"""

from __future__ import annotations

from typing import Any

import pytest

from meerkat_ref.oracle.check import in_process
from meerkat_ref.oracle.engine import (
    count_traces,
    explore_dpor,
    foata,
    get_scenario,
    scenario_traces,
)
from meerkat_ref.oracle.engine.classics import (
    FS_BLOCKS,
    FS_INODES,
    INDEXER_MESSAGES,
    INDEXER_SIZE,
    ClassicReport,
    Program,
    every_schedule,
    explore_program,
    filesystem,
    indexer,
    lastzero,
    readers,
)
from meerkat_ref.oracle.targets import Footprint, InProcessTarget
from meerkat_ref.variants import Variant


def _both(program: Program) -> tuple[ClassicReport, ClassicReport]:
    dpor = explore_program(program)
    every = every_schedule(program, max_schedules=20_000)
    assert every.exhausted and dpor.exhausted
    return dpor, every


def _sound_and_one_per_trace(program: Program) -> int:
    """The checks every program must pass; returns the traces counted."""
    dpor, every = _both(program)
    traces = len(every.traces)
    assert dpor.end_states == every.end_states, f"{program.title}: DPOR missed an end state"
    assert dpor.traces == every.traces  # every trace reached: soundness, trace by trace
    assert dpor.schedules >= traces  # the floor for any sound DPOR
    assert dpor.schedules == len(dpor.traces) == traces  # sleep sets: no trace run twice
    return traces


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_readers_has_2_to_the_n_traces_and_dpor_is_optimal_on_it(n: int) -> None:
    assert _sound_and_one_per_trace(readers(n)) == 2 ** n
    assert explore_program(readers(n)).pruned == 0  # optimal: no run abandoned either


def lastzero_traces(n: int) -> int:
    """(N+3) 2^(N-2): the POPL 2014 count (as the interweave crate reproduces it)."""
    return (n + 3) << (n - 2)  # n >= 2


@pytest.mark.parametrize("n", [2, 3])
def test_lastzero_traces_match_the_published_closed_form(n: int) -> None:
    assert _sound_and_one_per_trace(lastzero(n)) == lastzero_traces(n)


@pytest.mark.parametrize("n", [4, 5, 6])
def test_lastzero_dpor_runs_one_schedule_per_published_trace(n: int) -> None:
    """Sizes the plain DFS takes too long for here: DPOR's distinct traces against the form."""
    dpor = explore_program(lastzero(n))
    assert dpor.schedules == len(dpor.traces) == lastzero_traces(n)
    # Every conflict of lastzero is a read and the one write of a cell (0 before, > 0 after):
    # two traces differ in what some thread read, so each ends its own way.
    assert len(dpor.end_states) == dpor.schedules


def _slots(n: int) -> list[int]:
    return [((m * 11 + tid) * 7) % INDEXER_SIZE
            for tid in range(n) for m in range(1, INDEXER_MESSAGES + 1)]


def test_indexer_threads_meet_from_12_so_below_it_there_is_one_trace() -> None:
    """Below 12 threads every message hashes to a slot of its own: no step of two threads
    conflict, so there is exactly one trace, and DPOR runs one schedule."""
    assert len(set(_slots(11))) == len(_slots(11))
    assert len(set(_slots(12))) < len(_slots(12))
    assert _sound_and_one_per_trace(indexer(2)) == 1
    for n in (3, 11):
        dpor = explore_program(indexer(n))
        assert (dpor.schedules, dpor.pruned) == (1, 0)
    assert explore_program(indexer(12)).schedules > 1


def test_indexer_with_collisions_is_searched_soundly() -> None:
    assert _sound_and_one_per_trace(indexer(2, size=8)) > 1


def test_filesystem_threads_meet_from_14_so_below_it_there_is_one_trace() -> None:
    """Thread i takes inode i and starts at block 2i mod 26: distinct below 14 threads."""
    starts = [(tid % FS_INODES * 2) % FS_BLOCKS for tid in range(14)]
    assert len(set(starts[:13])) == 13 and starts[13] == starts[0]
    dpor = explore_program(filesystem(13))
    assert (dpor.schedules, dpor.pruned) == (1, 0)
    assert explore_program(filesystem(14)).schedules > 1


def test_filesystem_with_two_threads_on_one_block_is_searched_soundly() -> None:
    assert _sound_and_one_per_trace(filesystem(2, blocks=2)) > 1


@pytest.mark.xfail(strict=True, reason="our DPOR does not see a process disabled by a lock "
                   "taken before it got there (Program.waits=False): the papers' lock model")
def test_dpor_with_locks_that_disable_an_acquire() -> None:
    dpor, every = _both(filesystem(2, blocks=2, waits=False))
    assert dpor.end_states == every.end_states


# -- the trace counter itself ------------------------------------------------------------------


def _fp(reads: tuple[str, ...] = (), writes: tuple[str, ...] = ()) -> Footprint:
    return Footprint(frozenset(("var", v) for v in reads), frozenset(("var", v) for v in writes))


def test_foata_form_is_the_same_exactly_for_equivalent_executions() -> None:
    rx, wx, ry = _fp(reads=("x",)), _fp(writes=("x",)), _fp(reads=("y",))
    a, b, c = ("a", "", rx), ("b", "", ry), ("c", "", wx)
    assert foata([a, b, c]) == foata([b, a, c])  # a and b commute
    assert foata([a, c]) != foata([c, a])  # a read and a write of x do not
    assert foata([a, ("b", "", rx)]) == foata([("b", "", rx), a])  # two reads commute
    assert foata([a, ("a", "", ry)]) != foata([("a", "", ry), a])  # one process: program order
    assert count_traces([[a, b, c], [b, a, c], [a, c, b], [c, a, b]]) == 2
    assert foata([("a", "", None), b]) != foata([b, ("a", "", None)])  # undeclared: touches all


def _dpor_and_traces(name: str) -> tuple[Any, int, Any]:
    """DPOR's report, the traces counted over every schedule, and the plain DFS's report."""
    scenario = get_scenario(name)

    async def run(target: InProcessTarget) -> tuple[Any, int, Any]:
        dpor = await explore_dpor(target, scenario)
        traces, plain = await scenario_traces(target, scenario)
        return dpor, traces, plain

    return in_process(Variant.parse("reference").target(), run)


@pytest.mark.parametrize("name", ["turns-at-once", "creates-at-capacity"])
def test_named_scenarios_dpor_runs_one_schedule_per_trace(name: str) -> None:
    """The floor on our own scenarios: traces over the plain DFS's every schedule."""
    dpor, traces, plain = _dpor_and_traces(name)
    assert plain.exhausted and dpor.exhausted
    assert dpor.end_states == plain.end_states
    assert dpor.schedules == traces <= plain.schedules


def test_a_crashed_run_s_trace_is_what_the_crash_depends_on(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash ends the run, and a step right before it that it does not conflict with may
    be dropped (``outcome_steps``): crash-restart's 1,421 schedules fall into 151 traces so
    (313 when a crash conflicted with every step), and DPOR, which crashes a run once per
    stretch of such steps, runs at least one schedule of each (186 when written) and
    reaches every end state of the plain DFS.  With answers before a crash
    (``ANSWERS_FIRST``, the default) it goes below that floor, by design: a crash right
    before a step that only answers is covered by one right after it, so the end states
    it gives up are each covered by one it reaches."""
    from meerkat_ref.oracle.engine import _dpor

    monkeypatch.setattr(_dpor, "ANSWERS_FIRST", False)
    dpor, traces, plain = _dpor_and_traces("crash-restart")
    assert plain.exhausted and dpor.exhausted
    assert dpor.end_states == plain.end_states
    assert traces <= dpor.schedules < plain.schedules
    monkeypatch.setattr(_dpor, "ANSWERS_FIRST", True)
    first, _, _ = _dpor_and_traces("crash-restart")
    assert first.exhausted and first.schedules < dpor.schedules
    assert first.end_states <= plain.end_states and not first.uncovered(plain)
    assert first.violations == plain.violations == 0


@pytest.mark.parametrize("name", ["stop-resume-vs-inject"])
def test_where_dpor_reduces_nothing_every_schedule_is_its_own_trace(name: str) -> None:
    """README's reading of DPOR's 1.0x scenarios: not a weak reduction, a relation that
    leaves nothing to reduce.  A call a rule's excuse covers for every session while it is
    in flight (a checkpointer sweep) writes ``inflight:*``, and every session step reads
    its session's: so every schedule of this scenario is a trace of its own, and any sound
    DPOR runs them all.  (``creates-at-capacity`` was such a scenario while a create wrote
    ``inflight:*``; ``test_named_scenarios_dpor_runs_one_schedule_per_trace`` has it.)"""
    dpor, traces, plain = _dpor_and_traces(name)
    assert plain.exhausted and dpor.exhausted
    assert dpor.schedules == traces == plain.schedules


def test_the_benchmark_table_flags_a_missed_end_state() -> None:
    """``benchmarks.bench_dpor_classics``: its exit status rests on ``Measured.sound``."""
    import sys
    from pathlib import Path

    root = str(Path(__file__).resolve().parent.parent)
    if root not in sys.path:  # benchmarks/ sits beside tests/ and is not installed
        sys.path.insert(0, root)
    from benchmarks.bench_dpor_classics import classics_table, measure

    good = measure(readers(3), 1_000)
    gap = measure(filesystem(2, blocks=2, waits=False), 1_000)
    assert good.sound and (good.traces, good.dpor_runs, good.same_states) == (8, 8, "yes")
    assert not gap.sound and gap.same_states == "NO"
    table = classics_table([good, gap])
    assert "| readers | 3 | 8 | 8 | 0 | 8 | 24 | yes | 8 = 2^N" in table
