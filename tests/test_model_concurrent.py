"""The concurrent model refines the sequential one: one call alone ends as ``step`` says.

``models/concurrent.py`` cuts every call into atomic actions; ``sessions.step``
is the whole call.  They are one contract at two grains only if, from every
quiescent state, a call run alone (with the host loops already serving) until
nothing can move ends with ``step``'s result and state, whatever order the
enabled actions take.  Checked here on every state the model's BFS reaches
(persistent and ephemeral), for every call of its alphabet, and for a crash.
"""

from __future__ import annotations

from collections import deque
from dataclasses import replace
from typing import TYPE_CHECKING

import pytest

from meerkat_ref._model import concurrent as fine
from meerkat_ref._model import model

if TYPE_CHECKING:
    from models.explore import alphabet
else:
    from meerkat_ref.models.explore import alphabet

Config = tuple[fine.World, tuple[tuple[int, fine.Run], ...]]


def lift(s: model.State) -> Config:
    """The concurrent world of a quiescent sequential state (the refinement mapping's inverse)."""
    stored = dict(s.store)
    tasks, gates, runs = {}, {}, []
    for n, (id, live) in enumerate(s.live):
        rid = -(n + 1)  # a host loop already serving: the run of a call made earlier
        turn = rid if live.running else None
        tasks[id] = fine.Task(live.session, turn=turn, inside=turn, inbox=live.inbox)
        if s.persistent:
            row = stored.get(id)
            gates[id] = fine.Gate(armed=live.armed, saved=-1 if row is None else row.revision)
        if live.running:
            op: model.Op = (model.Create("", host_mode=True) if live.pending == "create"
                            else model.StartTurn(0, "", host_mode=True))
            runs.append((rid, fine.Run(op, "take", sid=id)))
    world = fine.World(
        s.capacity, s.persistent, s.clock, s.next_id, len(s.live),
        tuple(sorted(tasks.items())), tuple(sorted(gates.items())), s.store, s.archived,
        s.acked, s.refusals,
    )
    return world, tuple(runs)


def project(config: Config, before: Config, rid: int | None) -> tuple[model.Result, model.State]:
    """The sequential result and state a quiescent concurrent configuration stands for."""
    world, runs = config
    gates = dict(world.gates)
    serving = {r.sid: r for i, r in runs if r.result is None}
    live = tuple(
        (id, model.Live(
            t.session,
            pending=None if id not in serving else (
                "create" if isinstance(serving[id].op, model.Create) else "start_turn"),
            armed=gates[id].armed if world.persistent else True,
            inbox=t.inbox,
        ))
        for id, t in world.tasks
    )
    was_serving = {r.sid for i, r in before[1] if r.result is None and i < 0}
    completed = tuple(sorted(
        (r.sid, r.result) for i, r in runs
        if i < 0 and r.sid in was_serving and r.result is not None
        and r.sid is not None
    ))
    state = model.State(
        world.capacity, world.persistent, world.clock, world.next_id, live, world.store,
        world.archived, world.acked, completed, world.refusals,
    )
    if rid is None:
        return model.Ok(None), state
    mine = dict(runs)[rid]
    return (mine.result if mine.result is not None else model.Pending()), state


def quiescent_ends(start: Config) -> set[Config]:
    """Every configuration where nothing can move, reached by any order of actions."""
    seen = {start}
    todo = deque([start])
    ends = set()
    while todo:
        world, runs = todo.popleft()
        moved = False
        for k, (rid, run) in enumerate(runs):
            for w2, r2 in fine.advance(world, rid, run):
                moved = True
                nxt = (w2, (*runs[:k], (rid, r2), *runs[k + 1:]))
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        if not moved:
            ends.add((world, runs))
    return ends


def reachable(depth: int, slots: int, persistent: bool) -> list[model.State]:
    """The sequential model's states up to ``depth`` (as its BFS reaches them)."""
    ops = [o for o in alphabet(slots) if not isinstance(o, model.TurnsAtOnce | model.CreatesAtOnce)]
    root = model.init(slots, persistent)
    seen = {root}
    frontier = [root]
    for _ in range(depth):
        found = []
        for state in frontier:
            for op in ops:
                _, after = model.step(state, op)
                after = replace(after, completed=())
                if after not in seen:
                    seen.add(after)
                    found.append(after)
        frontier = found
    return sorted(seen, key=repr)


CALLS = [o for o in alphabet(2)
         if not isinstance(o, model.TurnsAtOnce | model.CreatesAtOnce | model.Restart
                           | model.ObserveStore)] + [
    # the scripted agent's failures ([CREATE], [TURN]), beyond the BFS's alphabet
    model.Create(model.FAIL_BUILD), model.Create(model.FAIL_TURN),
    model.Create(model.FAIL_TURN, host_mode=True), model.StartTurn(1, model.FAIL_TURN),
    model.StartTurn(2, model.FAIL_TURN, host_mode=True),
]


def agree(state: model.State, op: model.Op) -> str | None:
    expected = model.step(state, op)
    start = lift(state)
    if isinstance(op, model.FailNextSave):
        world, runs = start
        ends = {(fine.fail_next_save(world), runs)}
        rid = None
    else:
        rid = 0
        ends = quiescent_ends((start[0], (*start[1], (rid, fine.begin(op)))))
    got = {project(end, start, rid) for end in ends}
    if got != {expected}:
        return f"{op!r} from {state!r}:\n  step: {expected!r}\n  concurrent: {got!r}"
    return None


@pytest.mark.parametrize("persistent", [True, False], ids=["persistent", "ephemeral"])
def test_a_call_alone_ends_as_the_sequential_model_says(persistent: bool) -> None:
    states = reachable(depth=4, slots=2, persistent=persistent)
    assert len(states) > 200  # the BFS reached enough to mean something
    for state in states:
        for op in CALLS:
            problem = agree(state, op)
            assert problem is None, problem


def test_a_crash_ends_as_the_sequential_model_says() -> None:
    for state in reachable(depth=3, slots=2, persistent=True):
        world, runs = lift(state)
        _, expected = model.step(state, model.Restart())
        crashed = tuple(sorted((r.sid, model.Crashed()) for _, r in runs if r.sid is not None))
        after = (fine.restart(world), ())
        _, got = project(after, (world, ()), None)
        assert replace(got, completed=crashed) == expected


def test_concurrent_calls_can_do_what_no_sequence_can() -> None:
    """The point of the finer grain: a read between a turn's user message and its reply."""
    world, _ = lift(model.step(model.init(2, True), model.Create("a"))[1])
    turn = fine.begin(model.StartTurn(1, "b"))
    runs = ((0, turn),)
    seen_counts = set()
    for end in _all(world, runs, extra=(1, fine.begin(model.Read(1)))):
        _, rs = end
        read = dict(rs)[1]
        if isinstance(read.result, model.Ok) and isinstance(read.result.value, model.View):
            seen_counts.add(read.result.value.message_count)
    assert seen_counts == {2, 3, 4}


def _all(world: fine.World, runs: tuple[tuple[int, fine.Run], ...],
         extra: tuple[int, fine.Run]) -> set[Config]:
    return quiescent_ends((world, (*runs, extra)))
