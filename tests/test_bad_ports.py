"""Bad ports of our own, run as separate adapter processes: conform's concurrent phase names them.

Each port in ``tests/ports/`` is the reference with one rule broken in a way
only an interleaving shows, served over the real adapter protocol: a port
whose ``archive`` answers before its session task has stopped, one that
lets two turns of a session run at once, and one whose busy check and act
are two steps, so that a second turn queues behind the first (issue 20:
``check --adapter`` let it through while conform's vectors caught it).
The rules that catch them are checked from the wire (scheduling-point events), the same rules the
in-process explorer applies, so a port written in any language is held to
them.  Each failure comes with a counterexample that replays: the engine,
given its scenario and choices, breaks the same rule again on a fresh
adapter process.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import trio
from helpers import ADAPTER_TIMEOUT

from meerkat_ref.oracle.conform import Options, Report, conform
from meerkat_ref.oracle.engine import Choice, ReplayStrategy, run_schedule, scenario_from_spec
from meerkat_ref.oracle.targets import adapter_target

PORTS = Path(__file__).resolve().parent / "ports"
SEARCH = "concurrent search (hooks)"


def argv(port: str) -> list[str]:
    return [sys.executable, str(PORTS / port)]


@pytest.mark.parametrize(
    ("port", "scenario", "rule"),
    [
        ("late_archive.py", "host-checkpoint-vs-archive", "ARCHIVE-STOP"),
        ("overlapping_turns.py", "turns-at-once", "TURN-BUSY"),
        ("busy_check_then_act.py", "turns-at-once", "TURN-BUSY"),
        ("interrupt_frees_turn.py", "interrupt-then-turn", "LINEARIZABLE"),
    ],
)
def test_concurrent_search_names_the_broken_rule_with_a_replayable_counterexample(
    port: str, scenario: str, rule: str
) -> None:
    report = conform(argv(port), Options(random_cases=0, free_runs=0, search_runs=8,
                                         scenarios=(scenario,), shrink_budget=0,
                                         timeout=ADAPTER_TIMEOUT))
    assert not report.ok
    assert report.failed_in[SEARCH][rule] > 0, report.text()
    best = report.by_phase[SEARCH][rule]
    assert best.scenario is not None and best.choices
    assert best.lines[0].startswith('{"id":"1","cmd":"open"')
    text = report.text()
    assert f"{SEARCH}: " in text and rule in text

    async def replay() -> set[str]:
        async with adapter_target(argv(port), ADAPTER_TIMEOUT) as target:
            again = await run_schedule(
                target, scenario_from_spec(best.scenario, scenario),
                ReplayStrategy([Choice.from_json(c) for c in best.choices]),
            )
        return {v.rule for v in again.violations}

    assert rule in trio.run(replay), "the counterexample does not replay"


def test_a_port_that_declares_footprints_is_searched_by_dpor_and_its_three_call_bug_found() -> None:
    """Conform's default exhaustive search over a port that declares its footprints is DPOR.

    The port's bug needs a turn, an interrupt and a second turn, the interrupt
    preempting: the bounded DFS conform runs over a port that declares nothing
    (bound 0) never runs such a schedule, and passes it; DPOR runs every
    behaviour of the scenario and names it.
    """
    def run(search: str) -> Report:
        return conform(argv("interrupt_frees_turn.py"),
                       Options(random_cases=0, free_runs=0, search_runs=0,
                               scenarios=("interrupt-then-turn",), shrink_budget=0,
                               timeout=ADAPTER_TIMEOUT, search=search))

    found = run("auto")
    assert not found.ok and found.failed_in[SEARCH]["LINEARIZABLE"] > 0, found.text()
    (search,) = found.searches
    assert search["strategy"] == "dpor" and search["exhausted"], search
    assert "by DPOR, every behaviour once (the adapter declares its footprints" in found.text()
    bounded = run("dfs")
    assert bounded.ok, bounded.text()
    assert "within preemption bound 0" in bounded.text()


def test_the_reference_passes_the_same_searches() -> None:
    for scenario in ("host-checkpoint-vs-archive", "turns-at-once"):
        report = conform([sys.executable, "-m", "meerkat_ref.adapter"],
                         Options(random_cases=0, free_runs=0, search_runs=8,
                                 scenarios=(scenario,), shrink_budget=0,
                                 timeout=ADAPTER_TIMEOUT))
        assert report.ok, report.text()


@pytest.mark.parametrize(
    ("port", "scenario", "rule"),
    [
        ("late_archive.py", "host-checkpoint-vs-archive", "ARCHIVE-STOP"),
        ("overlapping_turns.py", "turns-at-once", "TURN-BUSY"),
        ("busy_check_then_act.py", "turns-at-once", "TURN-BUSY"),
    ],
)
def test_check_adapter_sees_what_conform_sees(port: str, scenario: str, rule: str) -> None:
    """One engine, two doors: ``check --adapter``'s search finds each bad port's rule too."""
    from meerkat_ref.oracle.check import explore_all
    from meerkat_ref.oracle.engine import get_scenario

    async def search() -> set[str]:
        async with adapter_target(argv(port)) as target:
            (report,) = await explore_all(target, [get_scenario(scenario)],
                                          stop_on_violation=True)
        first = report.first()
        return set() if first is None else {v.rule for v in first.violations}

    # The rule the port breaks, or LINEARIZABLE: the concurrent model often names the
    # run first (conform's report names the rule itself: the tests above).
    assert trio.run(search) & {rule, "LINEARIZABLE"}
