"""One declaration per operation: a new one is picked up by every generator and by the docs.

The last test adds an operation the way a contributor would -- a model class
and its step (the contract), and one ``Operation`` in the registry (its field
table, call, docs and domains) -- in a copy of the package, and sees the wire
codec, ``fields``, ADAPTER.md's command table and the schema, the vectors'
random draw, the stateful tests' strategies and the sweep's alphabet all
take it up, with nothing else edited, and the reference run it.  The others
show that a declaration missing what a generator needs fails with a message
that says what to declare, instead of being skipped.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from stateful.strategies import operations

if TYPE_CHECKING:
    from models.explore import alphabet
else:
    from meerkat_ref.models.explore import alphabet

from meerkat_ref._model import model
from meerkat_ref.oracle.engine._cases import random_op, step_clauses
from meerkat_ref.oracle.engine._clauses import clause_ids
from meerkat_ref.registry import (
    AT_ONCE,
    OPERATIONS,
    DomainError,
    Draw,
    Pool,
    _operations,
    draws,
    sweep_alphabet,
)
from meerkat_ref.specgen.docs import ROOT


def _with_read(monkeypatch: pytest.MonkeyPatch, **changes: Any) -> None:
    """The registry with ``read``'s declaration changed."""
    patched = tuple(replace(o, **changes) if o.name == "read" else o
                    for o in _operations.OPERATIONS)
    monkeypatch.setattr(_operations, "OPERATIONS", patched)
    monkeypatch.setitem(_operations.BY_MODEL, model.Read,
                        next(o for o in patched if o.name == "read"))


def test_an_operation_with_no_draw_fails_every_draw(monkeypatch: pytest.MonkeyPatch) -> None:
    _with_read(monkeypatch, draw=None)
    state = model.init(2, True)
    for draw in (lambda: random_op(random.Random(1), state), lambda: operations(state, True)):
        with pytest.raises(DomainError, match=r"operation 'read' declares no draw: give its "
                                              r"Operation a draw=Draw\(weight, rank\)"):
            draw()


def test_an_operation_with_no_sweep_fails_the_sweep(monkeypatch: pytest.MonkeyPatch) -> None:
    _with_read(monkeypatch, sweep=None)
    with pytest.raises(DomainError, match=r"operation 'read' declares no sweep: .* or \(\)"):
        sweep_alphabet()


def test_a_field_with_no_domain_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    session = replace(_operations.SESSION, domain=None)
    _with_read(monkeypatch, table=(session,))
    with pytest.raises(DomainError, match="'read' declares no domain for field 'session'"):
        draws()


def test_an_operation_with_no_clauses_fails_the_vectors(monkeypatch: pytest.MonkeyPatch) -> None:
    _with_read(monkeypatch, clauses=())
    with pytest.raises(DomainError, match=r"'read' declares no clauses: give its Operation "
                                          r"clauses=\(\.\.\.\)"):
        step_clauses(model.Read(1), model.init(1, True), model.Err(model.NOT_FOUND))


def test_a_domain_a_generator_does_not_know_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    _with_read(monkeypatch, table=(replace(_operations.SESSION, domain=Pool("moods")),),
               draw=Draw(100, 3))
    state = model.init(2, True)
    with pytest.raises(DomainError, match="random draw cannot interpret the domain "
                                          r"Pool\(name='moods'\) of 'id'"):
        for seed in range(20):
            random_op(random.Random(seed), state)


def test_the_model_s_bfs_tries_every_operation() -> None:
    """The one alphabet the registry cannot give: the model's own BFS (``models/explore.py``),
    which the refinement of the two models (``tests/test_model_concurrent.py``) runs over.

    Store faults are the vectors' (``fail_next_save``): the BFS explores without them.
    """
    tried = {type(op) for op in alphabet(2)}
    assert {o.model for o in OPERATIONS} - tried == {model.FailNextSave}
    assert {a.drawn.model for a in AT_ONCE} <= tried


def test_every_declared_clause_is_one_of_the_contract() -> None:
    """An operation's ``clauses`` name clauses ``spec/CONTRACT.md`` has: one missing fails here."""
    known = set(clause_ids())
    for entry in OPERATIONS:
        assert entry.clauses and set(entry.clauses) <= known, entry.name


MODEL_CLASS = '''

@dataclass(frozen=True, repr=False)
class Ping(_Short):  # a toy: is the session there?
    id: int
'''

MODEL_STEP = '''            case Ping(id=n):  # a toy: live or stored
                return Ok(None) if sid(n) in self.live or sid(n) in self.store else Err(NOT_FOUND)
'''

DECLARATION = '''

async def _ping(svc: Service, sid: SessionId) -> None:
    await svc.read(sid)


PING = Operation(
    "ping", model.Ping, (SESSION,), _on_session(_ping), _none, values.decode_none,
    about="ping", answers="`null`", errors=_NOT_FOUND,
    draw=Draw(1, 15), sweep=(SweepCall("ping"),), clauses=("READ",),
)
'''

PROBE = '''
import json, trio
from hypothesis import find, settings
from meerkat_ref._model import model
from meerkat_ref.oracle import sweep
from meerkat_ref.oracle.engine._cases import expected_steps, random_cases
from meerkat_ref.oracle.engine._sequential import run_case
from meerkat_ref import InvalidArgument
from meerkat_ref.registry import BY_NAME, WireError, from_wire, to_wire
from meerkat_ref.specgen._commands import render_commands, render_schema
from meerkat_ref.variants import Variant
from pathlib import Path
from stateful.strategies import operations

out = {}
ping = model.Ping(1)
out["wire"] = to_wire(ping)
out["back"] = from_wire(to_wire(ping)) == ping
out["fields"] = BY_NAME["ping"].fields
for bad in ({"cmd": "ping"}, {"cmd": "ping", "session": "s1"}, {"cmd": "ping", "session": 1}):
    try:
        from_wire(bad)
    except (WireError, InvalidArgument) as e:
        out.setdefault("refused", []).append(getattr(e, "code", "INVALID_ARGUMENT"))
out["row"] = [r for r in render_commands().splitlines() if "`ping`" in r]
schema = json.loads(render_schema(Path("spec/adapter.schema.json").read_text()))
out["schema"] = [o["properties"] for o in schema["$defs"]["serviceCall"]["oneOf"]
                 if o["properties"]["cmd"] == {"const": "ping"}]
cases = [c for c in random_cases(count=16) if any(isinstance(o, model.Ping) for o in c.ops)]
out["drawn"] = len(cases)
out["checks"] = sorted({s.checks for s in expected_steps(cases[0]) if isinstance(s.op, model.Ping)})

async def run():
    async with Variant.parse("reference").target("memory") as target:
        found = await run_case(target, cases[0], expected_steps(cases[0]))
    return None if found is None else str(found)

out["run"] = trio.run(run)
state = model.init(2, True)
out["strategy"] = repr(find(operations(state, True), lambda op: isinstance(op, model.Ping),
                            settings=settings(database=None, max_examples=2000)))
out["sweep"] = [label for label, _ in sweep.calls(2) if label.startswith("ping")]
out["scope"] = "ping" in sweep.SCOPES["default"].ops
print(json.dumps(out))
'''


def _insert(path: Path, before: str, text: str) -> None:
    source = path.read_text(encoding="utf-8")
    assert source.count(before) == 1, before
    path.write_text(source.replace(before, text + before), encoding="utf-8")


def test_an_operation_is_one_declaration(tmp_path: Path) -> None:
    """A model class and its step, one ``Operation``: codec, docs, draws and sweep take it up."""
    root = tmp_path / "repo"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "meerkat_ref", root / "meerkat_ref", ignore=ignore)
    shutil.copytree(ROOT / "models", root / "meerkat_ref" / "models", ignore=ignore)
    shutil.copytree(ROOT / "spec", root / "spec", ignore=ignore)
    (root / "stateful").mkdir()
    for name in ("__init__.py", "_model.py", "strategies.py"):
        shutil.copy(ROOT / "tests" / "stateful" / name, root / "stateful" / name)
    sessions = root / "meerkat_ref" / "models" / "sessions.py"
    _insert(sessions, "\n\n@dataclass(frozen=True, repr=False)\nclass TurnsAtOnce", MODEL_CLASS)
    _insert(sessions, '        raise TypeError(f"not an operation: {op!r}")', MODEL_STEP)
    registry = root / "meerkat_ref" / "registry" / "_operations.py"
    _insert(registry, "\n\nOPERATIONS: tuple[Operation, ...] = (", DECLARATION)
    _insert(registry, '\n)\n"""Every operation, in the order', "\n    PING,")
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(PROBE)], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout)
    s1 = model.sid(1)
    assert got["wire"] == {"cmd": "ping", "session": s1} and got["back"]
    assert got["fields"] == ["session"]
    assert got["refused"] == ["BAD_REQUEST", "INVALID_ARGUMENT", "BAD_REQUEST"]
    assert got["row"] == ["| `ping` | `session` | `Ping` | `null` | `SESSION_NOT_FOUND` |"]
    assert got["schema"] == [{"id": {"$ref": "#/$defs/requestId"}, "cmd": {"const": "ping"},
                              "task": {"$ref": "#/$defs/task"},
                              "session": {"$ref": "#/$defs/sessionArg"}}]
    assert got["drawn"] > 0 and got["run"] is None, got
    assert ["READ"] in got["checks"]
    assert got["strategy"] == "Ping(id=1)"
    assert got["sweep"] == ["ping1", "ping2"] and got["scope"]
    assert "ping" not in _operations.BY_NAME  # the copy, not this package
