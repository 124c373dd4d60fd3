"""``spec/`` cannot drift: clauses, model rules, tests, drawings, all checked against the code.

- Every clause of ``spec/CONTRACT.md`` names at least one test in
  ``spec/traceability.json``, and every test named exists (found by parsing
  the test files, not by running them).
- Every clause marked ``Model: yes`` has a tag naming it in ``models/``;
  every tag in ``models/`` and ``tests/``, every "clause <NAME>" in the
  code, and every rule the explorer reports names a clause that exists.
- Every clause (and protocol rule of ADAPTER.md) is checked by ``conform``,
  or ``spec/traceability.json`` says why no conform check can reach it.
- Every sentence of CONTRACT.md and ADAPTER.md that says "must" names its
  clause in brackets, so a report can quote the rule by its id.
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

from meerkat_ref.oracle.engine._clauses import (
    Clause,
    parse_clauses,
    parse_wire_rules,
    rule_quote,
    sentences,
)
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
    "EVENTS",  # the sequential model's step_events
    # the concurrent model's own (models/concurrent.py)
    "LIVE-TASK", "ARCHIVE-ATOMIC", "STORE-FAILURE", "ATOMIC", "CALLER-CANCEL",
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


def test_readme_counts_the_clauses_there_are() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"`spec/CONTRACT.md`: {len(clauses())} numbered clauses" in readme


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
    wire = {r.id for r in spec_docs.wire_rules()[0]}
    assert set(trace) <= {c.id for c in clauses()} | wire
    for rid in wire:
        assert trace.get(rid), f"protocol rule {rid} names no test in spec/traceability.json"
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
    data["clauses"]["SHUTDOWN"] = []
    data["clauses"]["EXPORT"].append("tests/test_persistent.py::test_that_was_renamed")
    data["clauses"]["NO-SUCH-CLAUSE"] = ["tests/test_model.py::test_interrupt"]
    trace_path.write_text(json.dumps(data), encoding="utf-8")
    for name in ("sessions.py", "concurrent.py"):
        model_file = root / "models" / name
        model_file.write_text(
            model_file.read_text(encoding="utf-8").replace("# [DEFER]", "# [DEFERRED]"),
            encoding="utf-8",
        )
    data["not_by_conform"]["COMPACT"] = "claimed, but conform does check it"
    del data["not_by_conform"]["EXPORT"]
    trace_path.write_text(json.dumps(data), encoding="utf-8")
    contract = root / "spec" / "CONTRACT.md"
    text = contract.read_text(encoding="utf-8")
    text = text.replace("**Model:** no — the model's `Restart` is a crash, not a shutdown.",
                        "**Model:** yes.")
    text = text.replace("is one exchange (a user message and its reply, like a turn)",
                        "must be one exchange (a user message and its reply, like a turn)")
    contract.write_text(text, encoding="utf-8")
    adapter = root / "spec" / "ADAPTER.md"
    named = "the adapter must\n  run the same way [WIRE-REPLAY]"
    adapter.write_text(adapter.read_text(encoding="utf-8").replace(
        named, named.replace(" [WIRE-REPLAY]", "")), encoding="utf-8")
    found = "\n".join(spec_docs.problems(root))
    assert "clause COMPACT is checked by conform" in found
    assert "clause EXPORT is checked by no conform check" in found
    assert "a rule of [HOST-MESSAGE] that does not name it" in found
    assert "spec/ADAPTER.md" in found and "says must but names no clause" in found
    assert "clause SHUTDOWN names no test" in found
    assert "no test test_that_was_renamed in tests/test_persistent.py" in found
    assert "unknown clause NO-SUCH-CLAUSE" in found
    assert "models/sessions.py" in found and "unknown clause DEFERRED" in found
    assert "clause DEFER is marked 'Model: yes' but no [DEFER] tag" in found
    assert "clause SHUTDOWN is marked 'Model: yes'" in found


def test_every_clause_is_checked_by_conform_or_says_why_not() -> None:
    checked = spec_docs.conform_checks()
    exempt = spec_docs.load_not_by_conform()
    rules, problems = spec_docs.wire_rules()
    assert problems == [] and {r.id for r in rules} >= {"WIRE-FIELDS", "WIRE-REPLAY"}
    for cid in [c.id for c in clauses()] + [r.id for r in rules]:
        assert (cid in checked) != bool(exempt.get(cid)), cid
    # The six points issue 14 settled are each checked by conform.
    for cid in ("ARCHIVE", "IDS", "WIRE-FIELDS", "COMPACT", "HOST-MESSAGE", "LIVENESS"):
        assert cid in checked, cid


def test_every_must_names_its_clause() -> None:
    assert spec_docs.unnamed_rules() == []
    musts = [s for name in ("CONTRACT.md", "ADAPTER.md")
             for s in sentences((ROOT / "spec" / name).read_text(encoding="utf-8"))
             if s.normative]
    assert len(musts) >= 10  # the check has something to check


def test_rules_are_read_as_sentences() -> None:
    text = (
        "## 1. A\n\n### 1.1 [AA] a\n\n**Model:** no.\n\nIt must do x [AA]. It must not do y.\n"
        "Use *must* sparingly. See ([AA]) there; this must hold [BB].\n\n"
        "- an item: it must be so\n  on two lines [AA].\n\n```\nmust in code\n```\n"
    )
    found = sentences(text)
    normative = [(s.text, s.clause, s.owner) for s in found if s.normative]
    assert normative == [
        ("It must do x [AA].", "AA", "AA"),
        ("It must not do y.", "AA", None),
        ("See ([AA]) there; this must hold [BB].", "AA", "AA"),
        ("- an item: it must be so on two lines [AA].", "AA", "AA"),
    ]
    rules, problems = parse_wire_rules(
        "x\n\n**[WIRE-AB] Ab.** It must [WIRE-AB].\nStill it.\n\n- **[WIRE-AB] Again.** x\n")
    assert [r.id for r in rules] == ["WIRE-AB", "WIRE-AB"]
    assert rules[0].text == "**[WIRE-AB] Ab.** It must [WIRE-AB]. Still it."
    assert problems == ["rule WIRE-AB is defined twice"]


def test_a_rule_is_quoted_from_the_spec() -> None:
    quote = rule_quote("COMPACT")
    assert quote.startswith('spec/CONTRACT.md 2.8 [COMPACT]: "A prompt is never a compaction')
    assert rule_quote("WIRE-FIELDS").startswith("spec/ADAPTER.md [WIRE-FIELDS]: ")
    assert rule_quote("READ").startswith('spec/CONTRACT.md 3.1 [READ]: "For a live session')
    assert rule_quote("PROTOCOL") == ""


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
