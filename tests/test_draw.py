"""The text swimlane and the Mermaid diagram say what happened, where it happened (issue 13).

Each test is one wording problem a reader met: an answer drawn in the column
of whoever ran when it came, violations citing steps the table does not
have, Mermaid dropping all but three violations, and window 4's skipped save
that no row showed.
"""

from __future__ import annotations

import functools

import pytest

from meerkat_ref.oracle.engine import RunOutcome, mermaid, swimlane
from meerkat_ref.specgen.docs import find_window
from meerkat_ref.testing import Window


@functools.cache
def window(w: Window) -> RunOutcome:
    return find_window(w).outcome


def rows(lane: str) -> dict[int, dict[str, str]]:
    """Step -> column -> cell, read back from the swimlane's text."""
    lines = lane.splitlines()
    head = [c.strip() for c in lines[0].split(" | ")]
    out = {}
    for line in lines[2:]:
        if line.startswith("VIOLATION"):
            break
        cells = [c.strip() for c in line.split(" | ")]
        cells += [""] * (len(head) - len(cells))
        out[int(cells[0])] = dict(zip(head, cells, strict=True))
    return out


def test_an_answer_is_drawn_in_the_column_of_the_client_that_called() -> None:
    outcome = window(Window.SKIP_BY_LENGTH)  # a host loop, answered while archive runs
    answered = next(c for c in outcome.history if c.client == "host")
    assert answered.responded is not None
    table = rows(swimlane(outcome))
    row = table[answered.responded]
    assert row["c:host"] == "create 'serve' host -> AGENT_ERROR"
    assert "AGENT_ERROR" not in row["c:archive"]
    diagram = mermaid(outcome)
    assert "Note over c_host: create 'serve' host -> AGENT_ERROR" in diagram
    assert "Note over c_archive: create" not in diagram


@pytest.mark.parametrize("w", list(Window), ids=lambda w: w.value)
def test_every_violation_cites_a_row_and_mermaid_shows_them_all(w: Window) -> None:
    outcome = window(w)
    assert outcome.violations
    table = rows(swimlane(outcome))
    for v in outcome.violations:
        assert v.rule in table[v.step]["violation"], (v, table.get(v.step))
        assert table[v.step]["store"], "the store is shown where a violation is cited"
    diagram = mermaid(outcome)
    notes = [line for line in diagram.splitlines() if "VIOLATION" in line]
    assert len(notes) == len(outcome.violations)
    for note, v in zip(notes, outcome.violations, strict=True):
        assert f"VIOLATION {v.rule} at step {v.step}:" in note


def test_window_4_shows_the_save_that_did_not_happen() -> None:
    outcome = window(Window.SKIP_BY_LENGTH)
    v = next(v for v in outcome.violations if v.rule == "CHECKPOINT")
    step = next(s for s in outcome.steps if s.index == v.step)
    row = rows(swimlane(outcome))[v.step]
    assert row[step.label].endswith("checkpoint returned without store.save"), row
    assert "checkpoint returned without store.save" in mermaid(outcome)


def test_a_client_call_names_the_call_it_made() -> None:
    outcome = window(Window.SAVE_AFTER_TURN)
    table = rows(swimlane(outcome))
    archive = next(c for c in outcome.history if c.name == "archive")
    assert table[archive.invoked]["c:archive"] == "client.call: archive s1"
    assert archive.responded is not None
    assert table[archive.responded]["c:archive"].endswith("archive s1 -> ok")


def test_both_drawings_read_the_trace_alone() -> None:
    """Issue 19: every drawing reads the one trace in ``report``, not the engine's run.

    The trace written to JSON and read back draws the same text as the
    outcome did; a trace written by hand (``docs/trace-example.json``, as a
    port's would be) draws too, its store shown only where it says it
    ``changed`` or a violation is cited.
    """
    import json
    from pathlib import Path

    from meerkat_ref import report
    from meerkat_ref.oracle.engine import trace_of

    outcome = window(Window.SKIP_BY_LENGTH)
    back = json.loads(json.dumps(trace_of(outcome)))
    assert report.swimlane(back) == swimlane(outcome)
    assert report.mermaid(back) == mermaid(outcome)
    example = json.loads((Path(__file__).resolve().parents[1] / "docs" / "trace-example.json")
                         .read_text(encoding="utf-8"))

    def stored(lane: str) -> list[int]:
        return [int(line.split(" | ")[0]) for line in lane.splitlines() if "{s1:" in line]

    assert set(rows(report.swimlane(example))) == {s["index"] for s in example["steps"]}
    assert stored(report.swimlane(example)) == sorted({v["step"] for v in example["violations"]})
    assert "Note over Store: s1" not in report.mermaid(example)
    example["steps"][0]["changed"] = True
    assert stored(report.swimlane(example))[0] == example["steps"][0]["index"]
    assert "Note over Store: s1:2 msgs" in report.mermaid(example)
