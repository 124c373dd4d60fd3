"""Footprints that fail safe: declared by the service, checked, never read from private names.

The explorer's reduction (DPOR) reorders two steps only when their
footprints say they commute; a footprint that leaves something out makes it
skip real behaviour without a word.  So:

- the footprints are the service's declaration (``service/_placement.py``),
  and nothing the oracle learns depends on the service's private names: a
  copy of the service with every private attribute (and its handle's fields)
  renamed is explored exactly like the original, and ``check`` and the sweep
  still find every test mutant built on the copy (the rename that once hid
  the busy check-then-act mutant);
- a step nothing declares touches everything (an undeclared point kind, a
  service that declares nothing, a task of the service no declaration is
  about);
- a declaration that leaves something out is an *oracle error*: caught at the
  target's seams as it happens (a store write not declared), or by the audit,
  which runs both orders of steps called independent and compares the state;
- CI audits every named scenario, every pair (``--audit all``), in the test that
  explores them all (``tests/test_explore.py``).
"""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
from collections.abc import Iterator
from dataclasses import replace
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import trio
from test_dpor import CHECK_FINDS

from meerkat_ref import PersistentSessionService
from meerkat_ref._seams import Footprints, Touches
from meerkat_ref.oracle.check import explore, in_process
from meerkat_ref.oracle.engine import get_scenario
from meerkat_ref.oracle.engine._dpor import DporRun
from meerkat_ref.oracle.engine._run import run_schedule
from meerkat_ref.oracle.sweep import SCOPES, every_budget, explore_scenarios, scenarios
from meerkat_ref.oracle.targets import Footprint, InProcessTarget
from meerkat_ref.service import _placement
from meerkat_ref.variants import Variant

SERVICE = Path(_placement.__file__).parent
MUTANTS = Path(__file__).parent / "stateful" / "mutants.py"
HANDLE_FIELDS = ("turn_running", "interrupt_requested", "turn_scope", "task_scope", "current",
                 "queued_turns", "inbox", "commands")
"""The live handle's fields (its class is private): renamed too."""


# -- (a) the rename: nothing depends on the service's private names ------------------------


def _private_names(sources: list[str]) -> set[str]:
    """Every private attribute set or read on ``self``, private def and class in ``sources``."""
    names: set[str] = set()
    for text in sources:
        for node in ast.walk(ast.parse(text)):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id == "self"):
                names.add(node.attr)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
    return {n for n in names if n.startswith("_") and not n.startswith("__")}


def _rename(text: str, names: set[str]) -> str:
    for name in sorted(names, key=len, reverse=True):
        text = re.sub(rf"\b{re.escape(name)}\b", f"{name}_renamed", text)
    return text


def _load(name: str, path: Path, package: bool = False) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        name, path, submodule_search_locations=[str(path.parent)] if package else None)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def renamed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ModuleType, ModuleType]]:
    """(the service package, the test mutants) from a copy with private names renamed."""
    where = tmp_path_factory.mktemp("renamed") / "service"
    where.mkdir()
    files = sorted(SERVICE.glob("*.py"))
    names = _private_names([f.read_text() for f in files]) | set(HANDLE_FIELDS)
    names -= {"_placement", "_statistics"}  # module names, imported by path
    assert {"_sessions", "_gates", "_reserved", "_tasks", "_points"} <= names
    for f in files:
        (where / f.name).write_text(_rename(f.read_text(), names))
    package = "meerkat_ref._service_renamed"
    mutants_text = _rename(MUTANTS.read_text(), names)
    mutants_text = mutants_text.replace("from meerkat_ref.service import",
                                        f"from {package} import")
    mutants_text = mutants_text.replace("from meerkat_ref.service._persistent import",
                                        f"from {package}._persistent import")
    mutants_text = mutants_text.replace(
        "from .harness import",
        f"from {package} import EphemeralSessionService, PersistentSessionService\n"
        "from stateful.harness import")
    (where / "mutants.py").write_text(mutants_text)
    assert not re.search(r"self\._sessions\b", (where / "_ephemeral.py").read_text())
    service = _load(package, where / "__init__.py", package=True)
    mutants = _load(f"{package}.mutants", where / "mutants.py")
    assert mutants.PersistentSessionService is service.PersistentSessionService
    yield service, mutants
    for key in [k for k in sys.modules if k.startswith(package)]:
        del sys.modules[key]


def _target(cls: type) -> InProcessTarget:
    return InProcessTarget(lambda b, c, s, p: cls(b, c, s, points=p), description=cls.__name__)


def test_the_renamed_reference_is_explored_exactly_like_the_original(
        renamed: tuple[ModuleType, ModuleType]) -> None:
    service, _ = renamed
    scenario = get_scenario("turns-at-once")
    original = explore(_target(PersistentSessionService), scenario)
    copy = explore(_target(service.PersistentSessionService), scenario)
    assert copy.schedules == original.schedules and copy.end_states == original.end_states
    assert copy.violations == 0 and not copy.oracle_errors


@pytest.mark.parametrize(("mutant", "scenario", "rule"), CHECK_FINDS)
def test_check_finds_every_mutant_built_on_the_renamed_service(
        renamed: tuple[ModuleType, ModuleType], mutant: str, scenario: str, rule: str) -> None:
    from stateful import mutants as original

    _, copies = renamed
    found = explore(_target(getattr(copies, mutant)), get_scenario(scenario))
    first = found.first()
    assert first is not None, f"check's {scenario} let the renamed {mutant} through"
    # the mutant's rule, named by some run (LINEARIZABLE often names a run first)
    assert rule in {v.rule for run in found.violating for v in run.violations}
    assert not found.oracle_errors
    same = explore(_target(getattr(original, mutant)), get_scenario(scenario))
    assert found.schedules == same.schedules  # explored exactly as the original was


def test_the_sweep_finds_the_renamed_check_then_act(
        renamed: tuple[ModuleType, ModuleType]) -> None:
    _, copies = renamed
    chosen = [(i, s) for i, s in enumerate(scenarios(every_budget(SCOPES["default"])))
              if s.name == "idle/1s/turn+turn"]
    (row,) = explore_scenarios(partial(_target, copies.CheckThenAct), chosen)
    assert "TURN-BUSY" in row.rules


# -- (c) fail safe: what nothing declares touches everything --------------------------------


def _footprints(target: InProcessTarget, name: str) -> list[tuple[str, Footprint | None]]:
    async def run(t: InProcessTarget) -> list[tuple[str, Footprint | None]]:
        tree: list[Any] = []
        outcome = await run_schedule(t, get_scenario(name), DporRun(tree, 0, None, set()))
        return [(f"{s.label} {s.kind}", n.footprint) for s, n in zip(outcome.steps, tree,
                                                                      strict=False)]

    return in_process(target, run)


def _without(kind: str) -> type:
    declared = PersistentSessionService.footprints
    points = {k: v for k, v in declared.points.items() if k[1] != kind}

    class Undeclared(PersistentSessionService):
        footprints = replace(declared, points=points)

    return Undeclared


def test_a_step_at_an_undeclared_point_kind_touches_everything() -> None:
    steps = _footprints(_target(_without("store.save")), "turns-at-once")
    saves = [fp for what, fp in steps if what.endswith("store.save")]
    assert saves and all(fp is None for fp in saves)
    assert all(fp is not None for what, fp in steps if not what.endswith("store.save"))


def test_a_service_that_declares_nothing_touches_everything() -> None:
    class Silent(PersistentSessionService):
        footprints = None  # type: ignore[assignment]

    steps = _footprints(_target(Silent), "turn-save-vs-archive")
    assert steps and all(fp is None for _, fp in steps)


def test_a_stray_task_of_the_service_makes_its_step_touch_everything() -> None:
    """A task the service starts besides calls and sessions runs code nothing declares."""

    class Helper(PersistentSessionService):
        async def archive(self, session_id: Any) -> None:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(trio.lowlevel.checkpoint, name="helper")
            await super().archive(session_id)

    steps = _footprints(_target(Helper), "turn-save-vs-archive")
    entries = [fp for what, fp in steps if what == "c:archive client.call"]
    assert entries and entries[0] is None


def test_an_undeclared_kind_costs_schedules_but_loses_nothing() -> None:
    scenario = get_scenario("turn-save-vs-archive")
    honest = explore(_target(PersistentSessionService), scenario)
    blind = explore(_target(_without("gate.acquire")), scenario)
    assert blind.end_states == honest.end_states
    assert blind.schedules > honest.schedules and not blind.oracle_errors


# -- (b) a declaration that leaves something out is an oracle error -----------------------


def _lying(role: str, kind: str) -> type:
    declared = PersistentSessionService.footprints

    class Liar(PersistentSessionService):
        footprints = Footprints({**declared.points, (role, kind): Touches()}, declared.calls)

    return Liar


def test_a_store_write_the_declaration_leaves_out_is_caught_at_the_seam() -> None:
    """A save point that claims to touch nothing, though it writes a row: every check says so."""
    report = explore(_target(_lying("caller", "store.save")), get_scenario("turn-save-vs-archive"))
    kinds = {e.kind for e in report.oracle_errors}
    assert kinds == {"undeclared"}
    assert any("store.save" in e.message and "row:" in e.message for e in report.oracle_errors)


def test_the_audit_reports_steps_that_do_not_commute() -> None:
    """A gate acquisition that claims to touch nothing: DPOR skips real behaviour, the audit
    runs both orders of the two acquisitions and shows the difference."""
    scenario = get_scenario("turn-save-vs-archive")
    liar = _target(_lying("caller", "gate.acquire"))
    quiet = explore(liar, scenario)
    assert not quiet.oracle_errors  # nothing a seam sees: only the audit can tell
    audited = explore(_target(_lying("caller", "gate.acquire")), scenario, audit=1)
    errors = [e for e in audited.oracle_errors if e.kind == "not-commuting"]
    assert errors, "the audit let a lying declaration through"
    first = errors[0]
    assert "gate.acquire" in first.message and "parked" in first.message
    assert first.schedule  # the steps that show it


def test_the_audit_reports_steps_independent_in_one_order_only() -> None:
    """A task's first step declared as only reading the session's place in the map: it
    commutes with the send of the first turn in every state the audit compares, but the
    send wakes the task only once it waits, so in that order the two conflict.  DPOR,
    reading the other order, ran fewer schedules than there are traces (20 against 36);
    the audit names the pair."""
    declared = PersistentSessionService.footprints

    class Fine(PersistentSessionService):
        footprints = Footprints(
            {**declared.points, ("session", "task.start"): Touches(reads=("live:<id>",))},
            declared.calls)

    report = explore(_target(Fine), get_scenario("creates-at-capacity"), audit=1)
    errors = [e for e in report.oracle_errors if e.kind == "order-dependent"]
    assert errors, "the audit let a one-sided independence through"
    assert all("task.start" in e.message and "cmd.send" in e.message for e in errors)
    assert {e.kind for e in report.oracle_errors} == {"order-dependent"}


def test_the_audit_of_the_reference_finds_nothing_and_says_what_it_ran() -> None:
    report = explore(_target(PersistentSessionService), get_scenario("create-vs-archive"),
                     audit=1)
    assert report.audited > 0 and not report.oracle_errors


def test_the_declaration_covers_every_point_kind_the_reference_passes() -> None:
    """Every (role, kind) the placement table lists is declared (else it would touch all)."""
    declared = _placement.FOOTPRINTS
    for row in _placement.SEQUENCES:
        for role, kind, _ in row.points:
            assert (role, kind) in declared.points, (row.call, role, kind)
    known = {kind for kind, _ in _placement.KINDS}
    assert {kind for _, kind in declared.points} <= known
    groups = {name.split(":")[0] for name, _ in _placement.RESOURCES}
    for touches in [*declared.points.values(), *declared.calls.values()]:
        for name in (*touches.reads, *touches.writes):
            assert name.split(":")[0] in groups, name


# -- the command line and the white-box evidence -------------------------------------------


def test_check_audit_on_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    from meerkat_ref.cli import main

    code = main(["check", "--memory", "--jobs", "1", "--scenario", "turn-save-vs-archive",
                 "--audit", "all", "--json"])
    assert code == 0
    err = capsys.readouterr().err
    assert re.search(r"audit: [1-9]\d* pairs of steps called independent run both ways; "
                     r"0 oracle error", err)


def test_an_oracle_error_makes_check_exit_3(monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    import meerkat_ref.variants as variants
    from meerkat_ref.cli import main

    liar = _lying("caller", "store.save")
    monkeypatch.setattr(variants, "_reference", lambda b, c, s, p: liar(b, c, s, points=p))
    assert main(["check", "--memory", "--jobs", "1", "--scenario", "turns-at-once"]) == 3
    assert "ORACLE ERROR (undeclared) in turns-at-once: " in capsys.readouterr().err


def test_sweep_audit_on_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    from meerkat_ref.cli import main

    every = scenarios(SCOPES["ci"])
    index = next(i for i, s in enumerate(every) if s.name == "idle/1s/create+turn")
    assert main(["sweep", "--scope", "ci", "--shard", f"{index}/{len(every)}",
                 "--audit", "all"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"audit: [1-9]\d* pairs of steps called independent run both ways; "
                     r"0 scenario\(s\) with an oracle error", out)


def test_turns_admitted_come_from_the_service_s_statistics() -> None:
    """The TURN-BUSY evidence the target shows is the service's own ``statistics()``."""
    from meerkat_ref._model import model as m

    async def main() -> tuple[dict[str, int], dict[str, int]]:
        async with Variant.parse("reference").target() as target:
            await target.open(2, True)
            await target.call(m.Create("a"), "c:setup")
            await target.settle()
            await target.control(True)
            await target.call(m.StartTurn(1, "x"), "c:me")
            await target.settle()  # parked at cmd.send: admitted, not yet sent
            before = target.introspect()
            await target.release("c:me")
            await target.settle()  # the session's task took it up
            after = target.introspect()
            assert before is not None and after is not None
            return dict(before.admitted), dict(after.admitted)

    before, after = trio.run(main)
    assert before == {} and after == {m.sid(1): 1}
