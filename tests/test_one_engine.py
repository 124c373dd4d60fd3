"""One engine, two targets: the reference in process and behind its adapter run alike.

The same scenario under the same strategy must give the same run whichever
target carries it -- the same schedule, the same points, the same answers,
the same store -- because the engine is one and both targets serve one
object (the adapter server is an ``InProcessTarget`` behind JSON lines).
Every strategy works over a port: exhaustive search, Hypothesis, random,
PCT, exact replay.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import trio
from helpers import ADAPTER_TIMEOUT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meerkat_ref.oracle.engine import (
    SCENARIOS,
    HypothesisStrategy,
    PCTStrategy,
    RandomStrategy,
    ReplayStrategy,
    RunOutcome,
    Strategy,
    explore_dfs,
    get_scenario,
    run_schedule,
)
from meerkat_ref.oracle.targets import Target, adapter_target
from meerkat_ref.variants import Variant

T = TypeVar("T")
ADAPTER = [sys.executable, "-m", "meerkat_ref.adapter"]


def both(fn: Callable[[Target], Awaitable[T]]) -> tuple[T, T]:
    """``fn`` on the in-process reference, then on the reference behind its adapter."""

    async def main() -> tuple[T, T]:
        async with Variant.parse("reference").target() as local:
            here = await fn(local)
        async with adapter_target(ADAPTER, ADAPTER_TIMEOUT) as port:
            there = await fn(port)
        return here, there

    return trio.run(main)


def shape(outcome: RunOutcome) -> tuple[Any, ...]:
    return (
        [c.to_json() for c in outcome.choices],
        [s.to_json() for s in outcome.steps],
        [c.to_json() for c in outcome.history],
        [v.to_json() for v in outcome.violations],
        outcome.end_state,
    )


def test_a_seeded_strategy_runs_alike_on_both_targets() -> None:
    """Every scenario, PCT and random: the same run on both; each replays on the other."""

    def strategies() -> list[Strategy]:
        return [PCTStrategy(7, depth=3), RandomStrategy(7)]

    async def run_all(target: Target) -> list[RunOutcome]:
        return [await run_schedule(target, s, strategy)
                for s in SCENARIOS for strategy in strategies()]

    here, there = both(run_all)
    for mine, theirs in zip(here, there, strict=True):
        assert shape(mine) == shape(theirs), mine.scenario
        assert mine.ok, mine.violations

    async def replay_all(target: Target) -> list[RunOutcome]:
        return [await run_schedule(target, get_scenario(o.scenario), ReplayStrategy(o.choices))
                for o in there]

    again, back = both(replay_all)
    assert [shape(o) for o in again] == [shape(o) for o in here]
    assert [shape(o) for o in back] == [shape(o) for o in here]


def test_exhaustive_search_counts_alike_on_both_targets() -> None:
    scenario = get_scenario("turn-save-vs-archive")
    here, there = both(lambda t: explore_dfs(t, scenario, bound=1))
    assert (here.schedules, here.pruned, here.states) == (
        there.schedules, there.pruned, there.states
    )
    assert here.schedules > 10 and here.violations == there.violations == 0


@settings(max_examples=8, database=None, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_hypothesis_drives_a_port_as_it_drives_the_reference(data: st.DataObject) -> None:
    scenario = get_scenario("create-vs-archive")

    async def main() -> RunOutcome:
        async with adapter_target(ADAPTER, ADAPTER_TIMEOUT) as port:
            return await run_schedule(port, scenario, HypothesisStrategy(data))

    outcome = trio.run(main)
    assert outcome.ok, outcome.violations
