"""The stateful test must catch every deliberately broken service in ``mutants.py``.

Each mutant gets the same random stateful run as the real services, derandomized
(a fixed seed) and without shrinking, within a fixed number of examples; the run
must fail.  A survivor means the stateful test got weaker: strengthen it.

Beside it, the shortest sequence known to expose each mutant, which the real
service must pass: a readable example of what each clause forbids.
"""

from __future__ import annotations

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from ._model import (
    Archive,
    CancelAllCheckpointers,
    Create,
    CreatesAtOnce,
    HostMessage,
    Op,
    Read,
    Restart,
    TurnsAtOnce,
)
from .harness import MEMORY, check_ops
from .mutants import MUTANTS
from .test_stateful import run_random

EXAMPLES = 200
"""Examples a mutant may survive, at most (a run stops at its first failure)."""


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_stateful_run_catches_mutant(name: str) -> None:
    @settings(max_examples=EXAMPLES, derandomize=True, database=None, phases=[Phase.generate],
              report_multiple_bugs=False)
    @given(data=st.data())
    def stateful_run(data: st.DataObject) -> None:
        run_random(MUTANTS[name], data)

    with pytest.raises(AssertionError):
        stateful_run()


SHORTEST: dict[str, tuple[int, list[Op]]] = {  # mutant: (capacity, ops)
    "page-before-merge": (1, [Create("a")]),  # the page List(1, 1) checked after it
    "archive-keeps-row": (1, [Create("a"), Archive(1)]),
    "read-live-only": (1, [Create("a"), Restart(), Read(1)]),
    "check-then-act": (1, [Create("a"), TurnsAtOnce(1, "a")]),
    "capacity-after-build": (1, [CreatesAtOnce(2)]),
    "ignores-arming": (1, [Create("a", host_mode=True), CancelAllCheckpointers(),
                           HostMessage(1, "x")]),
}


def test_every_mutant_has_a_shortest_sequence() -> None:
    assert SHORTEST.keys() == MUTANTS.keys()


@pytest.mark.parametrize("name", sorted(SHORTEST))
def test_shortest_sequence(name: str) -> None:
    capacity, ops = SHORTEST[name]
    check_ops(ops, MEMORY, capacity)
    with pytest.raises(AssertionError):
        check_ops(ops, MUTANTS[name], capacity)
