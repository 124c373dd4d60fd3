"""Keep ``spec/`` honest: generate its drawings and its traceability table, and check them.

``python -m meerkat_ref.specgen.docs`` rewrites, in place, every generated
section of ``spec/CONTRACT.md``, ``spec/CONCURRENCY.md`` and ``spec/ADAPTER.md``:
the text between ``<!-- BEGIN name -->`` and ``<!-- END name -->``; and the
command objects of ``spec/adapter.schema.json``.  ``--check`` writes
nothing; it exits 1 if a section differs from what would be generated, or if
the traceability is broken (see ``problems``), and says what.

Generated sections:

``window-1`` .. ``window-4`` (CONCURRENCY.md)
    The minimal counterexample through each window of the seed, opened
    alone, as the explorer finds it: ``find_counterexample(scenario,
    Variant.parse("seed-0.4.0:<window>"), max_bound=2)`` over ``SCENARIOS``,
    those built for the window first, skipping scenarios with crashes; drawn
    by ``mermaid`` and ``swimlane``.
``race-create-vs-archive``, ``race-crash-restart`` (CONCURRENCY.md)
    The two races the explorer found in early versions of the reference,
    found again by the same search in a reconstruction of the early
    ``archive`` (``EarlyArchiveNoTombstone``, ``EarlyArchiveStopFirst``).
``commands`` (ADAPTER.md), and the command objects of ``adapter.schema.json``
    Every command of the contract, its fields, answer and errors: each
    operation's declaration in the registry (``_commands``).
``wire-rules`` (ADAPTER.md)
    The rules a port is judged by, each as checked from the wire: the
    ``wire`` of each rule class (``oracle/engine/rules``).
``points`` (ADAPTER.md)
    Where the reference puts its scheduling points: ``service/_placement``'s
    kinds and sequences (``tests/test_placement.py`` runs the sequences).
``traceability`` (CONTRACT.md)
    Clause (and protocol rule of ADAPTER.md) -> model rules (``[ID]`` tags in
    ``models/``) -> explorer rules (the rule classes, ``oracle/engine/rules``) -> conform (the
    clauses its checks report, or the reason none can) -> tests
    (``spec/traceability.json``).

Everything is deterministic: the depth-first search is, and nothing here
prints a time.
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import re
import sys
import tokenize
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import trio

from .._seams import SchedulingPoints, Touches
from ..agent._protocol import SessionAgentBuilder
from ..oracle.engine import SCENARIOS, RunOutcome, Scenario, find_counterexample, preemptions
from ..oracle.engine import mermaid as draw_mermaid
from ..oracle.engine import swimlane as draw_swimlane
from ..oracle.engine._cases import example_cases, expected_steps, random_cases
from ..oracle.engine._clauses import (
    CLAUSE_ID,
    Clause,
    WireRule,
    parse_clauses,
    parse_wire_rules,
    sentences,
)
from ..oracle.engine.rules import RULE_CLASSES
from ..oracle.targets import InProcessTarget
from ..service._persistent import PersistentSessionService
from ..service._placement import CALL_FOOTPRINTS, KINDS, POINT_FOOTPRINTS, RESOURCES, SEQUENCES
from ..store._base import SessionStore
from ..testing import EarlyArchiveNoTombstone, EarlyArchiveStopFirst, Window
from ._commands import render_commands, render_schema
from .vectors import window_counterexample

ROOT = Path(__file__).resolve().parents[2]
"""The repository root (``spec/``, ``models/``, ``tests/`` sit here in a checkout)."""

_TAG = re.compile(rf"\[({CLAUSE_ID})\]")
_CODE_MENTION = re.compile(rf"\bclauses? ({CLAUSE_ID}(?:-\*)?)")
_MARKER = re.compile(r"<!-- (BEGIN|END) ([a-z0-9-]+) -->")

# -- where the clauses are named: model tags, code mentions, explorer rules -------------------


@dataclass(frozen=True)
class Mention:
    clause: str  # may end in "-*": a family of clauses (HOST-*, STORE-*)
    path: str  # relative to the root
    line: int
    where: str  # the innermost def or class around it ("" at module level)


def _scopes(tree: ast.Module) -> list[tuple[int, int, str]]:
    spans: list[tuple[int, int, str]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}"
                spans.append((child.lineno, child.end_lineno or child.lineno, name))
                visit(child, name + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    return spans


def _enclosing(spans: Sequence[tuple[int, int, str]], line: int) -> str:
    inside = [s for s in spans if s[0] <= line <= s[1]]
    return max(inside, key=lambda s: s[0])[2] if inside else ""


def _python_files(root: Path, *dirs: str) -> list[Path]:
    out: list[Path] = []
    for d in dirs:
        out += sorted((root / d).rglob("*.py"))
    return out


def _prose(text: str, strings: bool) -> list[tuple[int, str]]:
    """Comments (and string literals) of a Python source, by line: where clauses are named."""
    kinds = (tokenize.COMMENT, tokenize.STRING) if strings else (tokenize.COMMENT,)
    out: list[tuple[int, str]] = []
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type in kinds:
            for offset, line in enumerate(tok.string.splitlines()):
                out.append((tok.start[0] + offset, line))
    return out


def _mentions(
    root: Path, paths: Iterable[Path], pattern: re.Pattern[str], *, strings: bool = True
) -> list[Mention]:
    found: list[Mention] = []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        if pattern.search(text) is None:
            continue  # the common case, and tokenizing is slow
        spans = _scopes(ast.parse(text))
        rel = path.relative_to(root).as_posix()
        for number, line in _prose(text, strings):
            for match in pattern.finditer(line):
                found.append(Mention(match.group(1), rel, number, _enclosing(spans, number)))
    return found


def model_tags(root: Path = ROOT) -> list[Mention]:
    """Every ``[ID]`` tag in ``models/``: the rules of the pure model."""
    return _mentions(root, _python_files(root, "models"), _TAG)


def other_mentions(root: Path = ROOT) -> list[Mention]:
    """Clause names used elsewhere.

    Tags and "clause <ID>" in the comments of ``tests/`` (test data in their
    strings is not a reference), and "clause <ID>" in the comments and
    docstrings of the package.
    """
    tests = _python_files(root, "tests")
    tagged = _mentions(root, tests, _TAG, strings=False)
    named = _mentions(root, tests, _CODE_MENTION, strings=False)
    named += _mentions(root, _python_files(root, "meerkat_ref"), _CODE_MENTION)
    return tagged + named


def explorer_rules(root: Path = ROOT) -> dict[str, list[str]]:
    """Rules the explorer checks -> where: each rule class, and any other place raising it.

    Read from the rule classes (``oracle/engine/rules``: one per clause, its
    evidence with it), then from the engine's source, for a rule something
    other than its class reports (``violate("RULE", ...)``: LIVENESS, which
    only the engine's loop can judge).
    """
    rules: dict[str, list[str]] = {
        cls.clause: [f"{cls.__module__.rsplit('.', 1)[1]}.{cls.__name__} "
                     f"({', '.join(cls.evidence)})"]
        for cls in RULE_CLASSES
    }
    for path in _python_files(root, "meerkat_ref/oracle/engine"):
        text = path.read_text(encoding="utf-8")
        if "violate(" not in text:
            continue
        tree = ast.parse(text)
        spans = _scopes(tree)
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "violate"
                and node.args
            ):
                continue
            for sub in ast.walk(node.args[0]):
                if (
                    isinstance(sub, ast.Constant)
                    and isinstance(sub.value, str)
                    and re.fullmatch(CLAUSE_ID, sub.value)
                ):
                    where = f"{path.stem}.{_enclosing(spans, node.lineno)}"
                    places = rules.setdefault(sub.value, [])
                    if where not in places:
                        places.append(where)
    return rules


# -- the tests each clause names --------------------------------------------------------


def _traceability_json(root: Path) -> dict[str, object]:
    data = json.loads((root / "spec" / "traceability.json").read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("format") != "meerkat-ref/traceability@1":
        raise ValueError("spec/traceability.json: format must be meerkat-ref/traceability@1")
    return data


def load_traceability(root: Path = ROOT) -> dict[str, list[str]]:
    """``spec/traceability.json``: clause id -> test node ids (``path::function``)."""
    clauses = _traceability_json(root)["clauses"]
    if not isinstance(clauses, dict):
        raise ValueError("spec/traceability.json: 'clauses' must map ids to lists of tests")
    out: dict[str, list[str]] = {}
    for cid, tests in clauses.items():
        if not isinstance(tests, list) or not all(isinstance(t, str) for t in tests):
            raise ValueError(f"spec/traceability.json: {cid} must list test node ids")
        out[str(cid)] = list(tests)
    return out


def load_not_by_conform(root: Path = ROOT) -> dict[str, str]:
    """``spec/traceability.json``'s ``not_by_conform``: clause id -> why no conform check can."""
    reasons = _traceability_json(root).get("not_by_conform", {})
    if not isinstance(reasons, dict) or not all(isinstance(r, str) for r in reasons.values()):
        raise ValueError("spec/traceability.json: 'not_by_conform' must map ids to reasons")
    return {str(k): str(v) for k, v in reasons.items()}


def conform_checks() -> dict[str, str]:
    """Every clause ``conform`` checks -> how: a sequential step's clauses, or a monitor rule.

    Read from the code, not restated: the ``checks`` of every step of the
    sequential cases conform runs (the model's examples, the malformed
    inputs, the hooks cases, the seeded random sequences), and ``RULES``,
    which every concurrent run is checked against.
    """
    how: dict[str, str] = {r.clause: f"every concurrent run (monitor: {r.__name__})"
                           for r in RULE_CLASSES if r.listed}
    for case in (*example_cases(), *random_cases()):
        for step in expected_steps(case):
            for clause in step.checks:
                how.setdefault(clause, f"sequential vectors ({case.name})")
    return how


def wire_rules(root: Path = ROOT) -> tuple[list[WireRule], list[str]]:
    return parse_wire_rules((root / "spec" / "ADAPTER.md").read_text(encoding="utf-8"))


def unnamed_rules(root: Path = ROOT) -> list[str]:
    """Sentences of CONTRACT.md and ADAPTER.md that say "must" but name no clause.

    In CONTRACT.md a sentence written inside a clause must name that clause
    (``[ID]``); elsewhere, and in ADAPTER.md, it must name some clause or
    protocol rule that exists.  "*must*" in emphasis mentions the word and is
    no rule.
    """
    contract = (root / "spec" / "CONTRACT.md").read_text(encoding="utf-8")
    adapter = (root / "spec" / "ADAPTER.md").read_text(encoding="utf-8")
    ids = {c.id for c in parse_clauses(contract)[0]} | {r.id for r in parse_wire_rules(adapter)[0]}
    found: list[str] = []
    for name, text in (("CONTRACT.md", contract), ("ADAPTER.md", adapter)):
        for s in sentences(text):
            if not s.normative:
                continue
            named = set(s.names) & ids
            if s.clause is not None and name == "CONTRACT.md":
                if s.clause not in named:
                    found.append(f"spec/{name}:{s.line}: a rule of [{s.clause}] that does not "
                                 f"name it: {s.text[:120]!r}")
            elif not named:
                found.append(f"spec/{name}:{s.line}: a sentence says must but names no clause: "
                             f"{s.text[:120]!r}")
    return found


def test_functions(path: Path) -> set[str]:
    """``function`` and ``Class::method`` names of the tests in one file (parsed, not run)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    names.add(f"{node.name}::{item.name}")
    return names


def problems(root: Path = ROOT) -> list[str]:
    """Everything that breaks the traceability; empty when it holds.

    - every clause has at least one test, and each named test exists;
    - every clause the contract marks ``Model: yes`` has an ``[ID]`` tag in
      ``models/``, and one marked ``no`` has none;
    - every ``[ID]`` tag in ``models/`` and ``tests/``, every "clause <ID>" in
      the package and the tests (``other_mentions``), and every rule the explorer reports, names a
      clause of the contract (``ID-*`` names a family: some clause starts
      with ``ID-``);
    - every clause and protocol rule is checked by ``conform``
      (``conform_checks``), or ``not_by_conform`` in traceability.json says
      why it cannot be (and only then);
    - every sentence that says "must" names its clause (``unnamed_rules``).
    """
    clauses, found = parse_clauses((root / "spec" / "CONTRACT.md").read_text(encoding="utf-8"))
    rules, broken_rules = wire_rules(root)
    found += broken_rules
    ids = {c.id for c in clauses} | {r.id for r in rules}
    trace = load_traceability(root)
    tags = model_tags(root)
    tagged = {m.clause for m in tags}
    checked = conform_checks()
    exempt = load_not_by_conform(root)
    for cid in [c.id for c in clauses] + [r.id for r in rules]:
        if not trace.get(cid):
            found.append(f"clause {cid} names no test in spec/traceability.json")
        if cid in checked and cid in exempt:
            found.append(f"clause {cid} is checked by conform ({checked[cid]}) but "
                         "spec/traceability.json lists it under not_by_conform")
        elif cid not in checked and not exempt.get(cid, "").strip():
            found.append(f"clause {cid} is checked by no conform check, and "
                         "spec/traceability.json's not_by_conform gives no reason")
    found += [f"spec/traceability.json: not_by_conform names unknown clause {cid}"
              for cid in exempt if cid not in ids]
    found += unnamed_rules(root)
    for c in clauses:
        if c.model and c.id not in tagged:
            found.append(f"clause {c.id} is marked 'Model: yes' but no [{c.id}] tag is in models/")
        if not c.model and c.id in tagged:
            found.append(f"clause {c.id} is marked 'Model: no' but models/ tags [{c.id}]")
    found += [
        f"spec/traceability.json names unknown clause {cid}" for cid in trace if cid not in ids
    ]

    def known(name: str) -> bool:
        if name.endswith("-*"):
            return any(i.startswith(name[:-1]) for i in ids)
        return name in ids

    for m in tags + other_mentions(root):
        if not known(m.clause):
            found.append(f"{m.path}:{m.line} names unknown clause {m.clause}")
    for rule, where in explorer_rules(root).items():
        if rule not in ids:
            found.append(f"explorer rule {rule} ({', '.join(where)}) is not a clause")
    cache: dict[str, set[str]] = {}
    for cid, tests in trace.items():
        for node in tests:
            path, sep, name = node.partition("::")
            if not sep or not name:
                found.append(f"{cid}: {node!r} is not a 'path::function' test id")
                continue
            file = root / path
            if not file.is_file():
                found.append(f"{cid}: no test file {path}")
                continue
            if path not in cache:
                cache[path] = test_functions(file)
            if name not in cache[path]:
                found.append(f"{cid}: no test {name} in {path}")
    return found


def render_traceability(root: Path = ROOT) -> str:
    """The table between the ``traceability`` markers of CONTRACT.md."""
    clauses, _ = parse_clauses((root / "spec" / "CONTRACT.md").read_text(encoding="utf-8"))
    wire, _ = wire_rules(root)
    trace = load_traceability(root)
    checked = conform_checks()
    exempt = load_not_by_conform(root)
    tagged: dict[str, list[str]] = {}
    for m in model_tags(root):
        where = f"{Path(m.path).stem}.{m.where}" if m.where else Path(m.path).stem
        places = tagged.setdefault(m.clause, [])
        if where not in places:
            places.append(where)
    explorer = explorer_rules(root)
    lines = [
        "| clause | model | model rules (`[ID]` tags in `models/`) | explorer rule | conform "
        "| tests |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    rows = [(f"{c.number} [{c.id}](#{_anchor(c)})", c.id, "yes" if c.model else "no")
            for c in clauses]
    rows += [(f"[{r.id}](ADAPTER.md)", r.id, "no") for r in wire]
    for label, cid, flag in rows:
        model = ", ".join(f"`{w}`" for w in tagged.get(cid, [])) or "—"
        seen = ", ".join(f"`{w}`" for w in explorer.get(cid, [])) or "—"
        conform = "yes" if cid in checked else f"no: {exempt.get(cid, '**no reason given**')}"
        tests = ", ".join(f"`{_short(t)}`" for t in trace.get(cid, [])) or "**none**"
        lines.append(f"| {label} | {flag} | {model} | {seen} | {conform} | {tests} |")
    return "\n".join(lines)


def _short(node: str) -> str:
    path, _, name = node.partition("::")
    return f"{Path(path).stem}::{name}"


def _anchor(c: Clause) -> str:
    """GitHub's anchor for the clause's heading."""
    heading = f"{c.number} [{c.id}] {c.title}".lower()
    kept = "".join(ch for ch in heading if ch.isalnum() or ch in " -_")
    return kept.replace(" ", "-")


# -- the drawings ----------------------------------------------------------------------


@dataclass(frozen=True)
class Drawing:
    section: str  # the marker name
    scenario: str
    variant: str
    call: str  # how to find it again, as Python
    outcome: RunOutcome


def find_window(window: Window) -> Drawing:
    """The first counterexample through ``window`` alone, as the explorer finds it."""
    found, _, _ = window_counterexample(window)
    if found is None:
        raise LookupError(f"the explorer found no counterexample through window {window.value}")
    call = f"window_counterexample(Window({window.value!r}))"
    return Drawing(f"window-{window.number}", found.scenario, found.variant, call, found)


EARLY_RACES: tuple[tuple[str, str, type[PersistentSessionService]], ...] = (
    ("race-create-vs-archive", "create-vs-archive", EarlyArchiveNoTombstone),
    ("race-crash-restart", "crash-restart", EarlyArchiveStopFirst),
)


def early_target(cls: type[PersistentSessionService]) -> InProcessTarget:
    """The reference with one early ``archive`` put back, as an in-process target."""

    def make(builder: SessionAgentBuilder, capacity: int, store: SessionStore | None,
             points: SchedulingPoints) -> PersistentSessionService:
        assert store is not None
        return cls(builder, capacity, store, points=points)

    # An early archive parks where it did then (a fresh gate first), not where the
    # placement table says: no placement evidence.
    return InProcessTarget(make, description=f"early:{cls.__name__}", placement=False)


def find_early_race(
    section: str, scenario_name: str, cls: type[PersistentSessionService]
) -> Drawing:
    scenario: Scenario = next(s for s in SCENARIOS if s.name == scenario_name)

    async def main() -> RunOutcome | None:
        async with early_target(cls) as target:
            found, _, _ = await find_counterexample(target, scenario, max_bound=2)
            return found

    found = trio.run(main)
    if found is None:
        raise LookupError(f"the explorer found no counterexample for {cls.__name__}")
    call = (
        f'find_counterexample(early_target({cls.__name__}), get_scenario("{scenario_name}"), '
        "max_bound=2)"
    )
    return Drawing(section, scenario_name, found.variant, call, found)


def render_wire_rules() -> str:
    """ADAPTER.md's table of the rules a port is judged by: each rule class's ``wire``."""
    lines = ["| clause | checked from the wire |", "| --- | --- |"]
    lines += [f"| [{r.clause}] | {r.wire} |" for r in RULE_CLASSES if "wire" in r.evidence]
    return "\n".join(lines)


def render_points() -> str:
    """The table of where the reference puts its scheduling points (``service/_placement``),
    with what each step may touch (its declared footprints)."""

    def named(t: Touches) -> str:
        parts = [f"{verb} " + " ".join(f"`{n}`" for n in names)
                 for verb, names in (("reads", t.reads), ("writes", t.writes)) if names]
        return "; ".join(parts) or "nothing"

    def touches(role: str, kind: str) -> str:
        found = POINT_FOOTPRINTS.get((role, kind))
        return "—" if found is None else named(found)

    lines = ["| kind | what it precedes | a step released here touches (caller) | (session) |",
             "| --- | --- | --- | --- |"]
    lines += [f"| `{kind}` | {what} | {touches('caller', kind)} | {touches('session', kind)} |"
              for kind, what in KINDS]
    lines += ["", "| call | from its start to its first point, touches |", "| --- | --- |"]
    lines += [f"| `{call}` | {named(t)} |" for call, t in CALL_FOOTPRINTS.items()]
    lines += ["", "| resource | what it is |", "| --- | --- |"]
    lines += [f"| `{name}` | {what} |" for name, what in RESOURCES]
    lines += ["", "| call | situation | points, in order |", "| --- | --- | --- |"]
    for row in SEQUENCES:
        shown = "<br>".join(
            f"{n}. {task}: `{kind}`" + (f" — {note}" if note else "")
            for n, (task, kind, note) in enumerate(row.points, 1)
        ) or "none"
        lines.append(f"| `{row.call}` | {row.situation or '—'} | {shown} |")
    return "\n".join(lines)


def render_drawing(d: Drawing) -> str:
    outcome = d.outcome
    rules: list[str] = []
    for v in outcome.violations:
        if v.rule not in rules:
            rules.append(v.rule)
    first = outcome.violations[0]
    count = preemptions(outcome.choices, outcome.nodes)
    plural = "" if count == 1 else "s"
    summary = (
        f"Found by `{d.call}`: scenario `{d.scenario}`, {len(outcome.steps)} steps, "
        f"{count} preemption{plural}. Breaks {', '.join(rules)}; "
        f"first {first.rule} at step {first.step}."
    )
    return "\n".join(
        [
            summary,
            "",
            "```mermaid",
            draw_mermaid(outcome),
            "```",
            "",
            "```text",
            draw_swimlane(outcome),
            "```",
        ]
    )


def drawings() -> list[Drawing]:
    """Every drawing of CONCURRENCY.md, found afresh (a few seconds)."""
    found = [find_window(w) for w in Window]
    found += [find_early_race(*race) for race in EARLY_RACES]
    return found


# -- sections between markers --------------------------------------------------------------


def sections_of(text: str) -> dict[str, str]:
    """The body of every ``<!-- BEGIN x -->`` .. ``<!-- END x -->`` pair (without the markers)."""
    out: dict[str, str] = {}
    open_name: str | None = None
    start = 0
    for match in _MARKER.finditer(text):
        kind, name = match.groups()
        if kind == "BEGIN":
            if open_name is not None:
                raise ValueError(f"section {name} begins inside section {open_name}")
            open_name, start = name, match.end()
        else:
            if open_name != name:
                raise ValueError(f"END {name} does not close {open_name}")
            if name in out:
                raise ValueError(f"section {name} appears twice")
            out[name] = text[start : match.start()].strip("\n")
            open_name = None
    if open_name is not None:
        raise ValueError(f"section {open_name} is never closed")
    return out


def replace_sections(text: str, bodies: Mapping[str, str]) -> str:
    """``text`` with the named sections' bodies replaced; other sections untouched."""
    missing = set(bodies) - set(sections_of(text))
    if missing:
        raise ValueError(f"no markers for section(s) {', '.join(sorted(missing))}")

    def swap(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in bodies:
            return match.group(0)
        return f"<!-- BEGIN {name} -->\n{bodies[name]}\n<!-- END {name} -->"

    return re.sub(r"<!-- BEGIN ([a-z0-9-]+) -->.*?<!-- END \1 -->", swap, text, flags=re.DOTALL)


def generate(root: Path = ROOT, found: Sequence[Drawing] | None = None) -> dict[Path, str]:
    """The new text of each generated file (``found``: drawings already computed)."""
    contract = root / "spec" / "CONTRACT.md"
    concurrency = root / "spec" / "CONCURRENCY.md"
    adapter = root / "spec" / "ADAPTER.md"
    schema = root / "spec" / "adapter.schema.json"
    drawn = drawings() if found is None else found
    return {
        adapter: replace_sections(
            adapter.read_text(encoding="utf-8"),
            {"points": render_points(), "wire-rules": render_wire_rules(),
             "commands": render_commands()},
        ),
        schema: render_schema(schema.read_text(encoding="utf-8")),
        contract: replace_sections(
            contract.read_text(encoding="utf-8"), {"traceability": render_traceability(root)}
        ),
        concurrency: replace_sections(
            concurrency.read_text(encoding="utf-8"), {d.section: render_drawing(d) for d in drawn}
        ),
    }


def stale(root: Path = ROOT, found: Sequence[Drawing] | None = None) -> list[str]:
    """Generated sections whose text differs from what the code produces now."""
    out: list[str] = []
    for path, new in generate(root, found).items():
        if path.suffix == ".json":  # generated in parts, checked whole
            if path.read_text(encoding="utf-8") != new:
                out.append(f"{path.relative_to(root).as_posix()}: its commands are out of date")
            continue
        old_sections, new_sections = sections_of(path.read_text(encoding="utf-8")), sections_of(new)
        for name, body in new_sections.items():
            if old_sections.get(name) != body:
                out.append(f"{path.relative_to(root).as_posix()}: section {name} is out of date")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m meerkat_ref.specgen.docs",
        description="Regenerate the drawings and the traceability table in spec/.",
    )
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if anything is out of date"
    )
    parser.add_argument("--root", type=Path, default=ROOT, help="the repository root")
    args = parser.parse_args(argv)
    root: Path = args.root
    if not (root / "spec" / "CONTRACT.md").is_file():
        print(f"no spec/CONTRACT.md under {root}: run from a checkout", file=sys.stderr)
        return 2
    broken = problems(root)
    for line in broken:
        print(f"traceability: {line}", file=sys.stderr)
    found = drawings()
    if args.check:
        out_of_date = stale(root, found)
        for line in out_of_date:
            print(line, file=sys.stderr)
        if not broken and not out_of_date:
            print("spec/ is up to date")
        return 1 if broken or out_of_date else 0
    for path, text in generate(root, found).items():
        if path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            print(f"rewrote {path.relative_to(root).as_posix()}")
    return 1 if broken else 0


if __name__ == "__main__":
    raise SystemExit(main())
