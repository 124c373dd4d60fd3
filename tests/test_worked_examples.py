"""The model's worked examples (``models/examples.py``) say what the model answers.

Each example states, beside each operation, the outcome the contract
requires (``Made(1)``, ``Seen(4)``, an error code, ...) and the pending calls
the step completes.  The conformance vectors are these examples with the
model's full answers filled in, so a statement that the model does not make
would put a wrong story in the vectors; this test holds every statement to
the model, step by step.
"""

from __future__ import annotations

import pytest

from meerkat_ref._model import examples
from meerkat_ref._model import model as m


@pytest.mark.parametrize("example", examples.EXAMPLES, ids=lambda e: e.name)
def test_worked_examples(example: examples.Example) -> None:
    state = m.init(example.capacity, example.persistent)
    for index, step in enumerate(example.steps):
        op, expect = step[0], step[1]
        completed: dict[int, examples.Expect] = step[2] if len(step) == 3 else {}
        result, state = m.step(state, op)
        where = f"{example.name} step {index}: {op!r}"
        assert examples.holds(expect, result), f"{where}: the model answers {result!r}"
        assert examples.completes(completed, state.completed), (
            f"{where}: the model completes {state.completed!r}"
        )
        assert m.violations(state) == [], where


def test_a_wrong_statement_is_caught() -> None:
    state = m.init(2, True)
    result, state = m.step(state, m.Create("a"))
    assert examples.holds(examples.Made(1), result)
    assert not examples.holds(examples.Made(2), result)
    assert not examples.holds(m.STORE_ERROR, result)
    result, state = m.step(state, m.FailNextSave())
    result, state = m.step(state, m.StartTurn(1, "b"))
    assert examples.holds(m.STORE_ERROR, result)
    assert not examples.holds(examples.Ran("echo: b"), result)
