"""Explicit-state check of the model: breadth-first over every operation sequence.

Every sequence of operations from a small fixed alphabet, up to ``depth``
steps, over ``slots`` session ids (1..slots); states are deduplicated, and at
every state the model's invariants must hold, and no result may show an
archived session.  ``python -m meerkat_ref.models.explore --depth 4 --slots 2``.

Deduplication ignores ``State.completed``: it reports what the last step
completed and has no influence on later steps.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from .sessions import (
    Archive,
    CancelAllCheckpointers,
    Create,
    CreatesAtOnce,
    HostMessage,
    Interrupt,
    List,
    LoadPersisted,
    Many,
    ObserveStore,
    Ok,
    Op,
    Read,
    RearmAllCheckpointers,
    Restart,
    Result,
    StartTurn,
    State,
    Summary,
    TurnsAtOnce,
    View,
    init,
    sid,
    step,
    violations,
)


def alphabet(slots: int) -> tuple[Op, ...]:
    """The operations tried at every state: prompts "a", "b c"; messages "x", "/compact"."""
    ops: list[Op] = [
        Create("a"),
        Create("b c", defer=True),
        Create("a", host_mode=True),
        Create("a", system_prompt="s"),
        CreatesAtOnce(2),
        List(),
        List(0, 1),
        List(1, 1),
        CancelAllCheckpointers(),
        RearmAllCheckpointers(),
        Restart(),
        ObserveStore(),
    ]
    for n in range(1, slots + 1):
        ops += [
            StartTurn(n, "a"),
            StartTurn(n, "b c", host_mode=True),
            TurnsAtOnce(n, "a"),
            HostMessage(n, "x"),
            HostMessage(n, "/compact"),
            Interrupt(n),
            Read(n),
            Archive(n),
            LoadPersisted(n),
        ]
    return tuple(ops)


def archived_hidden(before: State, op: Op, result: Result) -> bool:
    """[ARCHIVE-FINAL] no read, list or load shows a session archived before the call."""
    gone = before.archived
    if isinstance(op, Read | LoadPersisted) and sid(op.id) in gone:
        return not (isinstance(result, Ok) and result.value is not None)
    if isinstance(result, Ok) and isinstance(result.value, tuple):
        return not any(isinstance(r, Summary | View) and r.session_id in gone for r in result.value)
    if isinstance(result, Ok) and isinstance(result.value, dict):
        return not gone & result.value.keys()
    if isinstance(result, Many):
        return all(archived_hidden(before, op, r) for r in result.results)
    return True


@dataclass(frozen=True)
class Report:
    depth: int  # the deepest level explored completely
    slots: int
    capacity: int
    persistent: bool
    states: int  # distinct states reached (the initial one included)
    transitions: int  # steps taken
    new_per_depth: tuple[int, ...]  # distinct states first reached at each depth
    violation: tuple[tuple[Op, ...], tuple[str, ...]] | None  # the path and what broke
    seconds: float

    def __str__(self) -> str:
        kind = "persistent" if self.persistent else "ephemeral"
        lines = [
            f"model BFS ({kind}, capacity {self.capacity}, {self.slots} slots): "
            f"depth {self.depth}, {self.states} distinct states, "
            f"{self.transitions} transitions, {self.seconds:.1f} s",
            f"new states per depth: {list(self.new_per_depth)}",
        ]
        if self.violation is None:
            lines.append("invariants: all hold")
        else:
            path, broken = self.violation
            lines.append(f"VIOLATION {list(broken)} after {list(path)}")
        return "\n".join(lines)


def _key(state: State) -> State:
    return replace(state, completed=())


def explore(
    depth: int = 4, slots: int = 2, capacity: int | None = None, persistent: bool = True
) -> Report:
    """Breadth-first search to ``depth``; stops at the first violation."""
    started = time.perf_counter()
    cap = slots if capacity is None else capacity
    ops = alphabet(slots)
    root = init(cap, persistent)
    # Each state remembers one shortest path to it, for the report.
    paths: dict[State, tuple[Op, ...]] = {_key(root): ()}
    frontier = [root]
    per_depth = [1]
    transitions = 0
    for level in range(1, depth + 1):
        found: list[State] = []
        for state in frontier:
            path = paths[_key(state)]
            for op in ops:
                result, after = step(state, op)
                transitions += 1
                broken = violations(after)
                if not archived_hidden(state, op, result):
                    broken.append("archived_hidden")
                if broken:
                    return Report(level, slots, cap, persistent, len(paths), transitions,
                                  tuple(per_depth), ((*path, op), tuple(broken)),
                                  time.perf_counter() - started)
                key = _key(after)
                if key not in paths:
                    paths[key] = (*path, op)
                    found.append(after)
        per_depth.append(len(found))
        frontier = found
    return Report(depth, slots, cap, persistent, len(paths), transitions, tuple(per_depth),
                  None, time.perf_counter() - started)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m meerkat_ref.models.explore")
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--slots", type=int, default=2, help="session ids 1..slots")
    parser.add_argument("--capacity", type=int, default=None, help="default: slots")
    parser.add_argument("--ephemeral", action="store_true", help="model the ephemeral service")
    args = parser.parse_args(argv)
    report = explore(args.depth, args.slots, args.capacity, not args.ephemeral)
    print(report)
    return 0 if report.violation is None else 1


if __name__ == "__main__":
    raise SystemExit(main())
