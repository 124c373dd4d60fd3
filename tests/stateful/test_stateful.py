"""Hypothesis stateful tests: random operation sequences against each service and the model.

One ``trio.run`` per example; each next operation is drawn (inside the run)
from what the model's state makes interesting.  Every result, every completed
pending call, the store and the invariants are compared after every step.  A
failure notes a ``check_ops([...], backend, capacity=...)`` line to paste into
a regression test.
"""

from __future__ import annotations

import pytest
from hypothesis import event, given, note
from hypothesis import strategies as st

from ._model import Err, Op, Result, State
from .harness import BACKENDS, Backend, Completed, replay_line, run_source
from .strategies import MAX_STEPS, operations


def run_random(backend: Backend, data: st.DataObject) -> None:
    """One example: draw a capacity and a length, then operations one by one."""
    capacity = data.draw(st.integers(1, 3), label="capacity")
    steps = data.draw(st.integers(1, MAX_STEPS), label="steps")
    ops: list[Op] = []

    def source(state: State) -> Op | None:
        if len(ops) >= steps:
            return None
        op = data.draw(operations(state, backend.persistent))
        ops.append(op)
        return op

    trace: list[tuple[Op, Result, Completed]] = []
    try:
        failure = run_source(backend, capacity, source, trace, checked=True)
    finally:
        note(replay_line(ops, backend, capacity))
    for op, got, _ in trace:  # shown by --hypothesis-show-statistics
        event(f"{type(op).__name__} -> {got.code if isinstance(got, Err) else type(got).__name__}")
    if failure is not None:
        raise AssertionError(failure)


@pytest.mark.parametrize("backend", ["memory", "sqlite", "ephemeral"])
@given(data=st.data())
def test_service_matches_model(backend: str, data: st.DataObject) -> None:
    run_random(BACKENDS[backend], data)
