"""The trace format (meerkat-ref/trace@1), and traces of engine runs (``oracle.engine.trace_of``).

Traces are taken of counterexamples the live explorer finds now (no
checked-in JSON that could go stale): every violation must point at a step
of the trace -- the post-run restart and read-back are steps of the run.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from helpers import crashed_run

from meerkat_ref.oracle.engine import get_scenario, trace_of
from meerkat_ref.report import FORMAT, TraceError, parse_trace, problems
from meerkat_ref.specgen.vectors import window_counterexample
from meerkat_ref.testing import Window

RESTART_POINT, READ_BACK_POINT = "restart", "read-back"

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "trace-example.json"


def example() -> dict[str, object]:
    loaded: dict[str, object] = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    return loaded


@pytest.fixture(scope="module")
def window_1() -> dict[str, object]:
    scenario = get_scenario("turn-save-vs-archive")
    found, _, _ = window_counterexample(Window.SAVE_AFTER_TURN)
    assert found is not None
    return trace_of(found, about=scenario.about)


def test_the_hand_written_example_is_a_consistent_trace() -> None:
    trace = parse_trace(example())
    assert problems(trace) == []
    assert any(s.gates for s in trace.steps), "the example exists to show gates"


def test_window_1_becomes_a_trace_whose_violations_all_point_at_steps(
    window_1: dict[str, object],
) -> None:
    trace = parse_trace(window_1)
    assert problems(trace) == []
    assert json.loads(json.dumps(window_1)) == window_1, "plain JSON, nothing else"
    indices = [s.index for s in trace.steps]
    assert indices == list(range(len(indices)))
    for v in trace.violations:
        assert trace.step(v.step) is not None
    resurrected = next(v for v in trace.violations if "resurrected" in v.message)
    save = trace.step(resurrected.step)
    assert save is not None and save.point == "store.save" and save.session == "s1"
    assert save.store is not None and "s1" in save.store
    assert [p.point for p in trace.steps[-2:]] == [RESTART_POINT, READ_BACK_POINT]
    assert save.gates == {}, "archive took s1's gate out of the map: the save went through none"
    first = trace.steps[0].gates
    assert first is not None and "s1" in first, "an in-process run shows its gates"


def test_the_store_before_the_first_change_comes_from_setup(window_1: dict[str, object]) -> None:
    trace = parse_trace(window_1)
    first = trace.steps[0].store
    assert first is not None and set(first) == {"s1"}, "setup created s1 before step 0"
    deleted = next(s for s in trace.steps if s.point == "store.delete")
    assert deleted.store == {}


def test_a_crash_is_a_step_of_the_process_and_the_restart_follows() -> None:
    trace = parse_trace(trace_of(crashed_run()))
    assert problems(trace) == []
    crash = next(s for s in trace.steps if s.crash)
    assert crash.task == "process"
    after = [s.point for s in trace.steps if s.index > crash.index]
    assert after[0] == RESTART_POINT


def test_calls_read_as_the_client_made_them(window_1: dict[str, object]) -> None:
    trace = parse_trace(window_1)
    texts = {c.text: c.result for c in trace.calls}
    assert texts["start_turn s1 'more'"] == "ok"
    assert texts["archive s1"] == "ok"
    assert trace.setup[0].text == "create 'hello'" and trace.setup[0].result == "ok s1"
    listing = next(c for c in trace.calls if c.client == "post" and c.op == "list")
    assert listing.result == "ok [s1]"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda t: t.update(format="meerkat-ref/trace@2"), "trace.format"),
        (lambda t: t.pop("steps"), "trace.steps: missing"),
        (lambda t: t["steps"][0].update(index=True), "trace.steps[0].index"),
        (lambda t: t["steps"][0].update(index="0"), "trace.steps[0].index"),
        (lambda t: t["steps"][1].update(store=[1]), "trace.steps[1].store"),
        (lambda t: t["steps"][6]["gates"]["s1"].pop("armed"), "['s1'].armed: missing"),
        (lambda t: t["calls"][0].update(responded="10"), "trace.calls[0].responded"),
        (lambda t: t.update(tasks=["c:turn", 3]), "trace.tasks[1]"),
    ],
)
def test_a_malformed_trace_is_refused_naming_the_field(change: object, field: str) -> None:
    trace = example()
    assert callable(change)
    change(trace)
    with pytest.raises(TraceError, match=field.replace("[", r"\[").replace("]", r"\]")):
        parse_trace(trace)


def test_problems_names_every_broken_cross_reference() -> None:
    trace = copy.deepcopy(example())
    steps = trace["steps"]
    assert isinstance(steps, list)
    steps.pop()  # the run.end step, which a violation cites
    steps[1]["task"] = "c:nobody"
    steps[0]["invoked"][0]["call"] = 99
    calls = trace["calls"]
    assert isinstance(calls, list)
    calls[1]["responded"] = 50
    found = problems(parse_trace(trace))
    assert any("cites step 11, which is not in steps" in p for p in found)
    assert any("task 'c:nobody' is not one of the tasks" in p for p in found)
    assert any("names call 99" in p for p in found)
    assert any("call 2 (archive s1) is responded at step 50, not in steps" in p for p in found)
    assert any("step 9 lists call 2 as responded there; calls says step 50" in p for p in found)
    assert problems(parse_trace(example())) == [], "and nothing when nothing is broken"


def test_format_name() -> None:
    assert example()["format"] == FORMAT == "meerkat-ref/trace@1"
