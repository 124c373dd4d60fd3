"""The monitor's rules are declared objects: one class per clause, everything else read from them.

``RULES``, the monitor's docstring table and the traceability table of
``spec/CONTRACT.md`` are derived from the classes of
``meerkat_ref/oracle/engine/rules``; the monitor calls a hook only on the
rules that define it.  The last test adds a rule the way a contributor would
-- one new module holding one class, in a copy of the package -- and sees it
checked, listed and documented with nothing else edited.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import trio

from meerkat_ref.oracle.engine import RULES, Monitor, RunOutcome, _monitor, get_scenario
from meerkat_ref.oracle.engine._clauses import parse_clauses
from meerkat_ref.oracle.engine._search import explore_dfs
from meerkat_ref.oracle.engine.rules import FAULT, HOOKS, RULE_CLASSES, Rule
from meerkat_ref.registry import OPERATIONS
from meerkat_ref.specgen import docs as spec_docs
from meerkat_ref.specgen.docs import ROOT
from meerkat_ref.variants import Variant

WIRE_HOOKS = ("observe", "read_back")
"""Hooks that judge from what every target shows (a wire rule's evidence)."""
INSIDE_HOOKS = ("write", "inside", "end")
"""Hooks that are handed what only a target in this process shows."""


def test_rules_is_read_from_the_classes() -> None:
    assert tuple(r.clause for r in RULE_CLASSES if r.listed) == RULES
    assert set(RULES) == {"ARCHIVE", "ARCHIVE-FINAL", "ARCHIVE-STOP", "CAPACITY", "TURN-BUSY",
                          "DURABILITY", "CHECKPOINT", "CHECKPOINT-GATE", "LIVENESS",
                          "LINEARIZABLE"}
    assert "EVENTS" in {r.clause for r in RULE_CLASSES} - set(RULES)  # inside only: unlisted


def test_every_rule_is_a_clause_declared_once() -> None:
    ids = {c.id for c in parse_clauses((ROOT / "spec" / "CONTRACT.md").read_text("utf-8"))[0]}
    clauses = [r.clause for r in RULE_CLASSES]
    assert len(set(clauses)) == len(clauses)
    assert set(clauses) <= ids
    assert [r.order for r in RULE_CLASSES] == sorted({r.order for r in RULE_CLASSES})


def test_declared_evidence_matches_the_hooks() -> None:
    """A rule says what evidence it needs; its hooks may not read any other."""
    for rule in RULE_CLASSES:
        assert rule.evidence and set(rule.evidence) <= {"wire", "inside"}, rule
        assert rule.statement(), f"{rule.__name__} states no rule"
        hooks = set(rule.hooks())
        if "inside" not in rule.evidence:
            assert not hooks & set(INSIDE_HOOKS), f"{rule.__name__} reads inside evidence"
        if "wire" not in rule.evidence:
            assert not hooks & set(WIRE_HOOKS), f"{rule.__name__} judges from the wire"


def test_every_excuse_names_operations_that_exist() -> None:
    names = {op.name for op in OPERATIONS} | {FAULT}
    for rule in RULE_CLASSES:
        for excuse in rule.excuses:
            assert excuse.ops and set(excuse.ops) <= names, (rule.__name__, excuse)
            assert excuse.what in excuse.text()
    gate = next(r for r in RULE_CLASSES if r.clause == "CHECKPOINT-GATE")
    assert {op for e in gate.excuses for op in e.ops} == {"start_turn"}
    assert all(e.mode == "plain" for e in gate.excuses)


def test_the_monitor_calls_a_hook_only_on_the_rules_that_define_it() -> None:
    monitor = Monitor(capacity=1)
    assert [type(r) for r in monitor.rules] == list(RULE_CLASSES)
    for hook in HOOKS:
        called = [getattr(f, "__self__", None) for f in monitor._hooks.get(hook, [])]
        defines = [r for r in monitor.rules if hook in r.hooks()]
        assert called == defines, hook
    assert all(getattr(type(r), h) is not getattr(Rule, h) for r in monitor.rules
               for h in r.hooks())


def test_the_docstring_table_lists_every_rule() -> None:
    doc = _monitor.__doc__ or ""
    for rule in RULE_CLASSES:
        assert f"\n{rule.clause:<16}" in doc, rule.clause
        assert " ".join(rule.statement().split()[:6]) in " ".join(doc.split()), rule.clause


def test_what_a_port_is_judged_by_is_each_wire_rule_s_own_words() -> None:
    """ADAPTER.md's table of rules is each rule's ``wire``; a rule inside only has none."""
    table = spec_docs.render_wire_rules()
    for rule in RULE_CLASSES:
        assert bool(rule.wire) == ("wire" in rule.evidence), rule.clause
        assert (f"| [{rule.clause}] | {rule.wire} |" in table) == bool(rule.wire), rule.clause


def test_the_traceability_names_each_rule_class() -> None:
    where = spec_docs.explorer_rules()
    for rule in RULE_CLASSES:
        assert where[rule.clause][0].startswith(f"{rule.__module__.rsplit('.', 1)[1]}."
                                                f"{rule.__name__} ("), where[rule.clause]
    assert any(w.startswith("_run.") for w in where["LIVENESS"])  # the loop raises it


TOY = '''
"""A rule added by a contributor: one class, one module, nothing else."""

from __future__ import annotations

from ...targets import Introspection
from ._base import Rule


class Export(Rule):
    """A toy: at the end, no session task runs (inside)."""

    clause = "EXPORT"
    evidence = ("inside",)
    order = 95

    def end(self, intro: Introspection | None) -> None:
        if intro is not None and intro.running_tasks:
            self.violate(f"{len(intro.running_tasks)} session tasks still run")
'''

PROBE = '''
import json
from meerkat_ref.oracle.engine import RULES, Monitor, _monitor
from meerkat_ref.oracle.targets import Introspection
from meerkat_ref.specgen import docs
from pathlib import Path

monitor = Monitor(capacity=1)
monitor.ended(Introspection(running_tasks=frozenset({"s1"})))
row = next(line for line in docs.render_traceability(Path.cwd()).splitlines()
           if "[EXPORT]" in line)
print(json.dumps({"rules": RULES, "doc": _monitor.__doc__, "row": row,
                  "violations": [v.to_json() for v in monitor.violations]}))
'''


def test_a_rule_is_one_class_in_one_new_module(tmp_path: Path) -> None:
    """A new module with one rule class: the monitor runs it, RULES lists it, the docs show it."""
    root = tmp_path / "repo"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for part in ("spec", "models", "meerkat_ref"):
        shutil.copytree(ROOT / part, root / part, ignore=ignore)
    (root / "meerkat_ref" / "oracle" / "engine" / "rules" / "export.py").write_text(
        textwrap.dedent(TOY), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=root, env=env, check=True,
                          capture_output=True, text=True, timeout=300)
    got = json.loads(done.stdout)
    assert "EXPORT" in got["rules"] and "EXPORT" not in RULES
    assert "\nEXPORT          A toy: at the end, no session task runs" in got["doc"]
    assert "`export.Export (inside)`" in got["row"]
    assert got["violations"] == [
        {"rule": "EXPORT", "step": 0, "message": "1 session tasks still run"}]


async def _outcomes(name: str, schedules: int) -> list[RunOutcome]:
    seen: list[RunOutcome] = []
    async with Variant.parse("reference").target("memory") as target:
        await explore_dfs(target, get_scenario(name), bound=1, max_schedules=schedules,
                          seen=seen.append)
    return seen


@pytest.mark.parametrize("name", ["create-vs-archive", "turn-save-vs-archive",
                                  "stop-resume-vs-inject", "turn-archive-rearm"])
def test_the_footprints_order_every_call_an_excuse_names(name: str) -> None:
    """What the rules excuse under a call in flight, DPOR keeps in order with that call.

    A step that invokes or answers a call some rule's ``excuses`` name writes
    the ``inflight`` resource of the session the call names (``*``: every
    session, for a call naming none), which every step touching that
    session reads (``targets/_footprints.py``); so no reordering moves a
    step the rules would excuse out from under the call, or into it.  A
    create is the exception ``_in_flight`` argues: named by LIVENESS's
    excuse, read only when nothing can run, its invocation writes nothing
    there and its answer its new session's item and ``known``.
    """
    from meerkat_ref.oracle.engine._run import KNOWN, _in_flight

    named = {op for rule in RULE_CLASSES for e in rule.excuses for op in e.ops}
    checked = 0
    for outcome in trio.run(_outcomes, name, 12):
        steps = outcome.steps[:len(outcome.footprints)]  # the restart and read-back have none
        assert not any(s.crash for s in steps)
        by_step = {step.index: (step, fp) for step, fp in zip(steps, outcome.footprints,
                                                              strict=True)}
        for call in outcome.history:
            if call.client in ("setup", "post", "process") or call.name not in named:
                continue
            sent = by_step.get(call.invoked)  # a background call was sent before any step
            if sent is not None and sent[0].label != f"c:{call.client}":
                sent = None
            answered = None if call.responded is None else by_step.get(call.responded)
            for found in (sent, answered):
                if found is None:
                    continue
                at, fp = found[0].index, found[1]
                want = {("inflight", item)
                        for item in _in_flight(call, answered=found is answered)}
                if call.name == "create":
                    created = getattr(call.value, "session_id", None)
                    assert want == (set() if found is sent else {("inflight", KNOWN)} | (
                        set() if created is None else {("inflight", created)}))
                else:
                    assert ("inflight", call.session_id or "*") in want
                assert fp is None or want <= fp.writes, (name, call.text(), at, fp)
                checked += 1
    assert checked, f"{name}: no call an excuse names was invoked or answered in a step"


def test_every_call_a_rule_judges_by_is_an_operation_so_dpor_keeps_its_moments() -> None:
    """A rule's ``excuses`` and ``orders`` name the calls whose moments its verdict reads;
    DPOR keeps exactly those in order (``JUDGED_IN_FLIGHT``).  A misspelt name would match
    no call and silently let DPOR reorder what the rule judges by, so each must be one of
    the registry's operations (or a failed store call)."""
    from meerkat_ref.oracle.engine._monitor import JUDGED_IN_FLIGHT, MONITOR_ORDERS
    from meerkat_ref.oracle.engine.rules import FAULT, RULE_CLASSES
    from meerkat_ref.registry import SERVICE_COMMANDS

    named = {op for cls in RULE_CLASSES for e in cls.excuses for op in e.ops}
    named |= {op for cls in RULE_CLASSES for op in cls.orders} | set(MONITOR_ORDERS)
    assert named == JUDGED_IN_FLIGHT
    assert named - {FAULT} <= set(SERVICE_COMMANDS), sorted(named - {FAULT} - set(
        SERVICE_COMMANDS))
    # the reads, lists, loads, injects and interrupts are what the reduction is for
    assert not {"read", "list", "load_persisted", "inject", "interrupt"} & named
