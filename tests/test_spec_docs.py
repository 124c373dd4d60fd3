"""``spec/`` cannot drift: clauses, model rules, tests, drawings, all checked against the code.

- Every clause of ``spec/CONTRACT.md`` names at least one test in
  ``spec/traceability.json``, and every test named exists (found by parsing
  the test files, not by running them).
- Every clause marked ``Model: yes`` has a tag naming it in ``models/``;
  every tag in ``models/`` and ``tests/``, every "clause <NAME>" in the
  code, and every rule the explorer reports names a clause that exists.
- The traceability table in CONTRACT.md and every drawing in
  ``spec/CONCURRENCY.md`` are exactly what ``meerkat_ref.specgen.docs``
  generates now: the drawings are the counterexamples the explorer finds
  today, so a change that moves one fails here until the page is
  regenerated (``python -m meerkat_ref.specgen.docs``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from meerkat_ref.oracle.engine._clauses import Clause, parse_clauses
from meerkat_ref.specgen import docs as spec_docs
from meerkat_ref.specgen.docs import ROOT, Drawing
from meerkat_ref.testing import Window

CONTRACT = ROOT / "spec" / "CONTRACT.md"
CONCURRENCY = ROOT / "spec" / "CONCURRENCY.md"

# The clause ids the model already used when the contract was written: all must stay.
MODEL_CLAUSES = {
    "CREATE", "CAPACITY", "DEFER", "TURN", "TURN-BUSY", "HOST", "HOST-MESSAGE", "COMPACT",
    "INTERRUPT", "INTERRUPT-RUNNING", "READ", "READ-FALLBACK", "LIST", "LIST-ORDER",
    "LIST-PAGE", "ARCHIVE", "ARCHIVE-FINAL", "ARCHIVE-STOP", "CHECKPOINT", "CHECKPOINT-GATE",
    "STOP-RESUME", "LOAD-PERSISTED", "RESTART", "DURABILITY", "TIME", "IDS", "SAVE-FAILED",
}  # fmt: skip

# What each drawing must show broken: the clause the window (or race) violates.
EXPECTED_RULE = {
    "window-1": "ARCHIVE-FINAL",
    "window-2": "ARCHIVE-FINAL",
    "window-3": "ARCHIVE-STOP",
    "window-4": "CHECKPOINT",
    "race-create-vs-archive": "ARCHIVE-FINAL",
    "race-crash-restart": "LINEARIZABLE",
}


@pytest.fixture(scope="module")
def drawings() -> list[Drawing]:
    return spec_docs.drawings()


def clauses() -> list[Clause]:
    found, problems = parse_clauses(CONTRACT.read_text(encoding="utf-8"))
    assert problems == []
    return found


# -- the clauses and their traceability ----------------------------------------------------


def test_contract_clauses_are_well_formed() -> None:
    found = clauses()
    ids = {c.id for c in found}
    assert ids >= MODEL_CLAUSES
    assert {c.id for c in found if c.model} == MODEL_CLAUSES
    for extra in ("INPUT", "ERRORS", "EVENTS", "ARCHIVE-ATOMIC", "LINEARIZABLE", "STORE-SAVE"):
        assert extra in ids


def test_every_clause_names_a_test_that_exists() -> None:
    trace = spec_docs.load_traceability()
    for c in clauses():
        assert trace.get(c.id), f"clause {c.id} names no test in spec/traceability.json"
    assert set(trace) <= {c.id for c in clauses()}
    functions: dict[str, set[str]] = {}
    for cid, tests in trace.items():
        for node in tests:
            path, _, name = node.partition("::")
            if path not in functions:
                functions[path] = spec_docs.test_functions(ROOT / path)
            assert name in functions[path], f"{cid}: no test {node}"


def test_model_encoded_clauses_have_model_rules() -> None:
    tagged = {m.clause for m in spec_docs.model_tags()}
    for c in clauses():
        if c.model:
            assert c.id in tagged, f"{c.id} is marked 'Model: yes' but has no rule in models/"
        else:
            assert c.id not in tagged, f"{c.id} is marked 'Model: no' but models/ tags it"


def test_every_clause_name_in_the_code_exists() -> None:
    ids = {c.id for c in clauses()}
    for m in spec_docs.model_tags() + spec_docs.other_mentions():
        name = m.clause
        if name.endswith("-*"):
            assert any(i.startswith(name[:-1]) for i in ids), f"{m.path}:{m.line}: {name}"
        else:
            assert name in ids, f"{m.path}:{m.line} names unknown clause {name}"
    for rule, where in spec_docs.explorer_rules().items():
        assert rule in ids, f"the explorer reports {rule} ({where}), which is no clause"


def test_no_traceability_problems() -> None:
    assert spec_docs.problems() == []


def _copy_root(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for part in ("spec", "models", "tests", "meerkat_ref"):
        shutil.copytree(ROOT / part, root / part, ignore=ignore)
    return root


def test_problems_are_caught(tmp_path: Path) -> None:
    """Each kind of break is reported: the checks can fail."""
    root = _copy_root(tmp_path)
    trace_path = root / "spec" / "traceability.json"
    data = json.loads(trace_path.read_text(encoding="utf-8"))
    data["clauses"]["EVENTS"] = []
    data["clauses"]["EXPORT"].append("tests/test_persistent.py::test_that_was_renamed")
    data["clauses"]["NO-SUCH-CLAUSE"] = ["tests/test_model.py::test_interrupt"]
    trace_path.write_text(json.dumps(data), encoding="utf-8")
    sessions = root / "models" / "sessions.py"
    sessions.write_text(
        sessions.read_text(encoding="utf-8").replace("# [DEFER]", "# [DEFERRED]"), encoding="utf-8"
    )
    contract = root / "spec" / "CONTRACT.md"
    text = contract.read_text(encoding="utf-8")
    contract.write_text(
        text.replace("**Model:** no — the model has no events.", "**Model:** yes."),
        encoding="utf-8",
    )
    found = "\n".join(spec_docs.problems(root))
    assert "clause EVENTS names no test" in found
    assert "no test test_that_was_renamed in tests/test_persistent.py" in found
    assert "unknown clause NO-SUCH-CLAUSE" in found
    assert "models/sessions.py" in found and "unknown clause DEFERRED" in found
    assert "clause DEFER is marked 'Model: yes' but no [DEFER] tag" in found
    assert "clause EVENTS is marked 'Model: yes'" in found


def test_clause_numbering_is_checked() -> None:
    text = "## 1. A\n\n### 1.1 [AA] a\n\n**Model:** no.\n\n### 1.3 [BB] b\n\n**Model:** yes.\n"
    found, problems = parse_clauses(text)
    assert [c.id for c in found] == ["AA", "BB"] and [c.model for c in found] == [False, True]
    assert problems == ["clause BB is numbered 1.3, expected 1.2"]
    _, problems = parse_clauses("## 1. A\n\n### 1.1 [AA] a\n\nno model line\n")
    assert problems == ["clause AA has no '**Model:** yes|no' line"]


def test_traceability_table_is_current() -> None:
    sections = spec_docs.sections_of(CONTRACT.read_text(encoding="utf-8"))
    assert sections["traceability"] == spec_docs.render_traceability(), (
        "spec/CONTRACT.md's table is stale: run python -m meerkat_ref.specgen.docs"
    )


# -- the drawings ----------------------------------------------------------------------------


def test_every_window_and_race_is_drawn(drawings: list[Drawing]) -> None:
    names = [d.section for d in drawings]
    assert names == [f"window-{w.number}" for w in Window] + [
        "race-create-vs-archive",
        "race-crash-restart",
    ]
    for d in drawings:
        assert EXPECTED_RULE[d.section] in {v.rule for v in d.outcome.violations}, d.section


def test_drawings_match_what_the_explorer_finds(drawings: list[Drawing]) -> None:
    sections = spec_docs.sections_of(CONCURRENCY.read_text(encoding="utf-8"))
    for d in drawings:
        assert sections.get(d.section) == spec_docs.render_drawing(d), (
            f"spec/CONCURRENCY.md section {d.section} no longer matches the explorer's "
            "counterexample: run python -m meerkat_ref.specgen.docs"
        )


def test_window_drawings_name_their_scenario(drawings: list[Drawing]) -> None:
    by_section = {d.section: d for d in drawings}
    assert by_section["window-1"].scenario == "turn-save-vs-archive"
    assert by_section["window-2"].scenario == "create-vs-archive"
    assert by_section["window-3"].scenario == "host-checkpoint-vs-archive"
    assert by_section["window-4"].scenario == "host-checkpoint-vs-archive"
    text = spec_docs.render_drawing(by_section["window-1"])
    assert "```mermaid\nsequenceDiagram" in text and "c_turn->>Store" in text
    assert "```text\nstep |" in text and "VIOLATION ARCHIVE-FINAL" in text


# -- the command -------------------------------------------------------------------------------


def test_check_and_regenerate(
    tmp_path: Path,
    drawings: list[Drawing],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(spec_docs, "drawings", lambda: drawings)
    root = _copy_root(tmp_path)
    assert spec_docs.main(["--check", "--root", str(root)]) == 0
    page = root / "spec" / "CONCURRENCY.md"
    original = page.read_text(encoding="utf-8")
    page.write_text(original.replace("step | ", "step  | ", 1), encoding="utf-8")
    assert spec_docs.main(["--check", "--root", str(root)]) == 1
    assert "section window-1 is out of date" in capsys.readouterr().err
    assert page.read_text(encoding="utf-8") != original  # --check writes nothing
    assert spec_docs.main(["--root", str(root)]) == 0
    assert page.read_text(encoding="utf-8") == original
    assert spec_docs.main(["--check", "--root", str(tmp_path / "nowhere")]) == 2


def test_sections_markers() -> None:
    text = "a\n<!-- BEGIN x -->\nold\n<!-- END x -->\n<!-- BEGIN y -->\nkeep\n<!-- END y -->\n"
    assert spec_docs.sections_of(text) == {"x": "old", "y": "keep"}
    assert spec_docs.sections_of(spec_docs.replace_sections(text, {"x": "new"})) == {
        "x": "new",
        "y": "keep",
    }
    with pytest.raises(ValueError, match="no markers"):
        spec_docs.replace_sections(text, {"z": ""})
    with pytest.raises(ValueError, match="never closed"):
        spec_docs.sections_of("<!-- BEGIN x -->\n")
    with pytest.raises(ValueError, match="does not close"):
        spec_docs.sections_of("<!-- BEGIN x -->\n<!-- END y -->\n")
