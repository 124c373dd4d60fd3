"""Concurrent groups drawn from the sweep's alphabet, under the controlled scheduler.

The sequential stateful tests (``test_stateful``) compare every step with the
model at quiescence; here Hypothesis draws a starting situation, a group of
2 or 3 calls at once from the same alphabet as ``meerkat-ref sweep`` (create,
host-mode create, turn, inject, interrupt, read, list, a page, archive, the
checkpointer sweeps, load_persisted, on one or two sessions), at most one
store fault and one crash, and then the schedule itself, choice by choice
(``HypothesisStrategy``).  Every rule and linearizability are checked.  A
failure shrinks the group and its schedule together, to the smallest pair
of calls and the shortest interleaving that still breaks a rule.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
from hypothesis import Phase, given, note, settings
from hypothesis import strategies as st

from meerkat_ref.oracle.engine import HypothesisStrategy, run_schedule, swimlane
from meerkat_ref.oracle.sweep import SITUATIONS, calls, group
from meerkat_ref.oracle.targets import InProcessTarget
from meerkat_ref.variants import Variant

from .mutants import CheckThenAct, PageBeforeMerge

REFERENCE = Variant.parse("reference")


def draw_group(data: st.DataObject, ops: tuple[str, ...] | None = None,
               situations: tuple[str, ...] = tuple(SITUATIONS)) -> Any:
    """A situation, 1 or 2 sessions, 2 or 3 calls at once, and what may fail."""
    sessions = data.draw(st.integers(1, 2), label="sessions")
    possible = [s for s in situations if s != "mixed" or sessions == 2]
    situation = data.draw(st.sampled_from(possible), label="situation")
    alphabet = calls(sessions, ops)
    chosen = data.draw(st.lists(st.sampled_from(alphabet), min_size=2, max_size=3),
                       label="calls")
    faults = data.draw(st.integers(0, 1), label="faults")
    crashes = data.draw(st.integers(0, 1), label="crashes")
    return group(situation, sessions, chosen, faults=faults, crashes=crashes)


def run_group(make_target: Any, data: st.DataObject, **narrow: Any) -> None:
    scenario = draw_group(data, **narrow)
    note(f"scenario {scenario.name}")

    async def main() -> Any:
        async with make_target() as target:
            return await run_schedule(target, scenario, HypothesisStrategy(data))

    outcome = trio.run(main)
    if not outcome.ok:
        raise AssertionError(f"{scenario.name}: {outcome.violations[0].rule}: "
                             f"{outcome.violations[0].message}\n{swimlane(outcome)}")


@given(data=st.data())
def test_reference_survives_concurrent_groups(data: st.DataObject) -> None:
    run_group(REFERENCE.target, data)


def _mutant(cls: type) -> Any:
    return lambda: InProcessTarget(lambda b, c, s, p: cls(b, c, s, points=p))


NARROW: dict[type, dict[str, Any]] = {  # the part of the alphabet each mutant is about
    CheckThenAct: {"ops": ("turn", "read", "interrupt"), "situations": ("idle", "host")},
    PageBeforeMerge: {"ops": ("create", "page", "read"), "situations": ("stored", "mixed")},
}


@pytest.mark.parametrize("mutant", [CheckThenAct, PageBeforeMerge], ids=lambda m: m.__name__)
def test_concurrent_groups_catch_the_concurrency_mutants(mutant: type) -> None:
    @settings(max_examples=300, derandomize=True, database=None, phases=[Phase.generate],
              report_multiple_bugs=False)
    @given(data=st.data())
    def groups(data: st.DataObject) -> None:
        run_group(_mutant(mutant), data, **NARROW[mutant])

    with pytest.raises(AssertionError):
        groups()
