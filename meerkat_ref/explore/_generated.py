"""Scenarios as data: drawn by Hypothesis, written into schedule files, rebuilt for replay.

A spec is plain JSON-able data, so a counterexample found with generated
operations replays anywhere::

    {"setup": [["create", "hello"]],
     "clients": [["a", [["turn", 1, "more"], ["read", 1]]],
                 ["b", [["archive", 1], ["list"]]]]}

Operations: ``["create", prompt]``, ``["create_host", prompt]``,
``["turn", n, prompt]``, ``["archive", n]``, ``["read", n]``,
``["load", n]``, ``["list"]``, ``["inject", n, text]``,
``["cancel_all"]``, ``["rearm_all"]``.  ``n`` names session ``s<n>``.
A spec is validated strictly; nothing in it is executed or used as a path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._types import SessionId
from ._scenarios import Ctx, Scenario, Script

OPS = (
    "create",
    "create_host",
    "turn",
    "archive",
    "read",
    "load",
    "list",
    "inject",
    "cancel_all",
    "rearm_all",
)
_ARITY = {
    "create": (str,),
    "create_host": (str,),
    "turn": (int, str),
    "archive": (int,),
    "read": (int,),
    "load": (int,),
    "list": (),
    "inject": (int, str),
    "cancel_all": (),
    "rearm_all": (),
}


class SpecError(ValueError):
    """A scenario spec that cannot be used."""


def _check_op(op: object) -> tuple[Any, ...]:
    if not isinstance(op, list | tuple) or not op or op[0] not in _ARITY:
        raise SpecError(f"not an operation: {op!r}; known: {', '.join(OPS)}")
    kinds = _ARITY[op[0]]
    args = tuple(op[1:])
    if len(args) != len(kinds) or not all(
        isinstance(a, k) and not isinstance(a, bool) for a, k in zip(args, kinds, strict=True)
    ):
        raise SpecError(f"bad arguments for {op[0]}: {list(args)!r}")
    if kinds and kinds[0] is int and not 1 <= args[0] <= 16:
        raise SpecError(f"session number out of range in {op!r}")
    return (op[0], *args)


async def _apply(ctx: Ctx, client: str, op: tuple[Any, ...]) -> None:
    kind, *args = op
    sid = SessionId.from_int(args[0]) if args and isinstance(args[0], int) else None
    if kind == "create":
        await ctx.create(client, args[0])
    elif kind == "create_host":
        await ctx.create(client, args[0], host=True)
    elif kind == "turn" and sid is not None:
        await ctx.turn(client, sid, args[1])
    elif kind == "archive" and sid is not None:
        await ctx.archive(client, sid)
    elif kind == "read" and sid is not None:
        await ctx.read(client, sid)
    elif kind == "load" and sid is not None:
        await ctx.load(client, sid)
    elif kind == "list":
        await ctx.list(client)
    elif kind == "inject" and sid is not None:
        await ctx.inject(client, sid, args[1])
    elif kind == "cancel_all":
        await ctx.cancel_all(client)
    elif kind == "rearm_all":
        await ctx.rearm_all(client)


def _script(ops: Sequence[tuple[Any, ...]]) -> Script:
    async def run(ctx: Ctx, client: str) -> None:
        for op in ops:
            await _apply(ctx, client, op)

    return run


def scenario_from_spec(spec: object, name: str = "generated") -> Scenario:
    """Build a scenario from a spec (see the module docstring); ``SpecError`` if malformed."""
    if not isinstance(spec, dict):
        raise SpecError("a scenario spec is an object with 'setup' and 'clients'")
    setup_ops = [_check_op(op) for op in spec.get("setup", [])]
    clients = spec.get("clients")
    if not isinstance(clients, list) or not 1 <= len(clients) <= 4:
        raise SpecError("'clients' must list 1 to 4 [name, operations] pairs")
    built: list[tuple[str, Script]] = []
    for entry in clients:
        if not (isinstance(entry, list | tuple) and len(entry) == 2 and isinstance(entry[0], str)):
            raise SpecError(f"a client is [name, operations], got {entry!r}")
        cname, ops = entry
        if not cname.isidentifier() or not isinstance(ops, list) or len(ops) > 6:
            raise SpecError(f"client {cname!r}: a plain name and at most 6 operations")
        built.append((cname, _script([_check_op(op) for op in ops])))
    return Scenario(
        name=name,
        about="generated: " + repr(spec),
        setup=_script(setup_ops) if setup_ops else None,
        clients=tuple(built),
        max_sessions=2,
        spec=spec,
    )


def draw_spec(data: Any) -> dict[str, Any]:
    """Draw a small spec from Hypothesis (``st.data()``): it shrinks with the schedule."""
    from hypothesis import strategies as st

    n = st.integers(1, 2)
    words = st.sampled_from(["a", "b c"])
    op = st.one_of(
        st.tuples(st.just("create"), words),
        st.tuples(st.just("create_host"), words),
        st.tuples(st.just("turn"), n, words),
        st.tuples(st.just("archive"), n),
        st.tuples(st.just("read"), n),
        st.tuples(st.just("load"), n),
        st.tuples(st.just("list")),
        st.tuples(st.just("inject"), n, st.sampled_from(["x", "/compact"])),
        st.tuples(st.just("cancel_all")),
        st.tuples(st.just("rearm_all")),
    )
    setup = data.draw(st.lists(st.tuples(st.just("create"), words), max_size=2), label="setup")
    clients = data.draw(
        st.lists(st.lists(op, min_size=1, max_size=3), min_size=2, max_size=3), label="clients"
    )
    return {
        "setup": [list(o) for o in setup],
        "clients": [[f"c{i}", [list(o) for o in ops]] for i, ops in enumerate(clients)],
    }
