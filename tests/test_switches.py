"""Where the service may switch tasks without a scheduling point: only where it cannot matter.

The explorer switches tasks only at scheduling points (README, "What the
explorer does not see").  Real Trio also switches at every plain checkpoint
(``await trio.lowlevel.checkpoint()``, ``trio.sleep``, ...), so a step that
reads the service's state, passes a plain checkpoint and then acts on what
it read has a window no explored schedule opens.  A planted bug of that
kind (a plain checkpoint between ``start_turn``'s busy check and its set:
five turns started at once on plain Trio are all admitted) passes ``check``
and the CI sweeps; ``conform`` sees it only because the adapter's process
runs calls freely between points, and ``test_ephemeral.py`` because its
five racers run on plain Trio.  Rather than explore every plain checkpoint
(each would be a step of its own), the reference keeps them where no window
can open, and this file holds every ``await`` of ``meerkat_ref/service`` to
that rule:

- a *plain switch* (an awaited ``trio.*`` call) is either *leading* (a
  statement of the function's own body before which nothing reads
  ``self``: only the arguments are checked) or *trailing* (followed in its
  block by one ``return`` or ``raise`` that reads nothing of ``self``: the
  answer was decided before it);
- every other ``await`` is one the explorer orders: a scheduling point, a
  store call (a point of the pointed store), an agent's work (its steps are
  points), a wait on a lock, event or channel (the task that wakes it is the
  step that counts), or a call of the service's own code (held to the same
  rule where it is defined).  An ``await`` of any other kind fails here
  until it is classified.

``async with`` and ``async for`` are not held to it: in the service they are a gate's
lock (entered through its ``gate.acquire`` point) and a session task's inbox (a wait).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SERVICE = Path(__file__).resolve().parents[1] / "meerkat_ref" / "service"

_WAITS = {"wait", "acquire", "receive"}
"""Methods that park the task until another step wakes it."""
_OWN = ("self", "inner", "gate", "stack", "handle")
"""Receivers that are the service's own objects (their code is held to the rule where defined)."""
_ORDERED_ROOTS = {"store": "a store call", "agent": "an agent's work",
                  "_builder": "an agent's build", "_points": "a scheduling point"}


def _dotted(node: ast.expr) -> list[str]:
    """``self.store.load`` -> ["self", "store", "load"]; [] for anything else."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return parts[::-1]
    return []


def kind(awaited: ast.expr) -> str | None:
    """What an awaited expression is, for the rule; ``None``: not classified."""
    if not isinstance(awaited, ast.Call):
        return None
    name = _dotted(awaited.func)
    if not name:
        return None
    if name[0] == "trio":
        return "plain switch"
    for part in name[:-1]:
        if part in _ORDERED_ROOTS:
            return _ORDERED_ROOTS[part]
    if name[-1] in _WAITS:
        return "a wait"
    if name[0] in _OWN:
        return "the service's own code"
    return None


def _reads_self(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Name) and n.id == "self" for n in ast.walk(node))


def _blocks(fn: ast.AsyncFunctionDef) -> list[list[ast.stmt]]:
    """Every statement list in ``fn`` (its body, and those of its ifs, loops, trys, withs)."""
    out: list[list[ast.stmt]] = []
    for node in ast.walk(fn):
        for field in ("body", "orelse", "finalbody"):
            block = getattr(node, field, None)
            if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
                out.append(block)
        for handler in getattr(node, "handlers", []):
            out.append(handler.body)
    return out


def violations(source: str, filename: str = "<source>") -> list[str]:
    """Every ``await`` of ``source`` that breaks the module doc's rule, said as a sentence."""
    found: list[str] = []
    tree = ast.parse(source, filename)
    for fn in (n for n in ast.walk(tree) if isinstance(n, ast.AsyncFunctionDef)):
        blocks = _blocks(fn)
        for node in ast.walk(fn):
            if not isinstance(node, ast.Await):
                continue
            what = kind(node.value)
            where = f"{filename}:{node.lineno} ({fn.name}): await {ast.unparse(node.value)}"
            if what is None:
                found.append(f"{where}: not a point, a store call, an agent's work, a wait or "
                             "the service's own code; classify it (tests/test_switches.py)")
            elif what == "plain switch" and not _placed_safely(fn, blocks, node):
                found.append(f"{where}: a plain switch between a read of the service's state "
                             "and its use (the explorer never switches there); move it before "
                             "the first read, or just before the return or raise")
    return found


def _placed_safely(fn: ast.AsyncFunctionDef, blocks: list[list[ast.stmt]],
                   awaited: ast.Await) -> bool:
    for block in blocks:
        for i, stmt in enumerate(block):
            if not (isinstance(stmt, ast.Expr) and stmt.value is awaited):
                continue
            if block is fn.body:
                before = [s for s in block[:i]
                          if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
                if not any(_reads_self(s) for s in before):
                    return True  # leading
            rest = block[i + 1:]
            return (len(rest) == 1 and isinstance(rest[0], ast.Return | ast.Raise)
                    and not _reads_self(rest[0]))  # trailing
    return False  # awaited inside an expression: its value is used, so it is neither


MODULES = sorted(SERVICE.glob("*.py"))


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.name)
def test_every_await_of_the_service_is_ordered_or_harmless(module: Path) -> None:
    assert violations(module.read_text(encoding="utf-8"), module.name) == []


def test_the_service_has_plain_switches_and_each_kind_of_ordered_await() -> None:
    """The rule is not vacuous: the reference has every kind it tells apart."""
    kinds: set[str | None] = set()
    for module in MODULES:
        tree = ast.parse(module.read_text(encoding="utf-8"))
        kinds |= {kind(n.value) for n in ast.walk(tree) if isinstance(n, ast.Await)}
    assert kinds == {"plain switch", "a store call", "an agent's work", "an agent's build",
                     "a scheduling point", "a wait", "the service's own code"}


_INTERRUPT = '''
async def interrupt(self, session_id):
    sid = as_session_id(session_id)
    {first}
    {second}
    if not handle.turn_running:
        raise SessionNotRunning(sid)
    handle.interrupt_requested = True
'''


def test_a_lookup_moved_before_the_plain_switch_breaks_the_rule() -> None:
    """A stale handle across a plain switch, and the reference's order, side by side.  (This
    one is harmless under the contract: an interrupt that overlaps the archive may answer as
    if it came first.  The rule does not weigh that; it keeps every window shut.)"""
    lookup, switch = "handle = self._get(sid)", "await trio.lowlevel.checkpoint()"
    assert violations(_INTERRUPT.format(first=switch, second=lookup)) == []
    [found] = violations(_INTERRUPT.format(first=lookup, second=switch))
    assert "a plain switch between a read of the service's state and its use" in found


def test_a_plain_switch_between_the_busy_check_and_its_set_breaks_the_rule() -> None:
    """The planted bug of the module doc, as a copy of the reference's ``_start_turn``."""
    source = (SERVICE / "_ephemeral.py").read_text(encoding="utf-8")
    check = "            raise SessionBusy(session_id)\n"
    assert source.count(check) == 1
    planted = source.replace(check, check + "        await trio.lowlevel.checkpoint()\n")
    [found] = violations(planted, "_ephemeral.py")
    assert "(_start_turn): await trio.lowlevel.checkpoint(): a plain switch" in found


@pytest.mark.parametrize(("body", "ok"), [
    ("view = self._view(sid)\n    await trio.lowlevel.checkpoint()\n    return view", True),
    ("view = self._view(sid)\n    await trio.lowlevel.checkpoint()\n    return self._view(sid)",
     False),
    ("if self._gone(sid):\n        await trio.lowlevel.checkpoint()\n        raise Gone(sid)",
     True),
    ("x = self._x\n    await trio.sleep(0)\n    self._x = x + 1", False),
    ("x = await trio.lowlevel.checkpoint()", False),  # its value used: neither shape
    ("self._x = 1\n    x = await trio.lowlevel.checkpoint()", False),
    ("await helper()", False),
    ("await self._points.point('k', sid)\n    await self.store.load(sid)", True),
])
def test_each_shape(body: str, ok: bool) -> None:
    source = f"async def f(self, sid):\n    {body}\n"
    assert (violations(source) == []) is ok, violations(source)
