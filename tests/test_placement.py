"""The scheduling-point table ports follow is what the reference does (``service/_placement``).

Every row is run on the reference: its situation set up with the points off,
then the call alone, each point released as soon as it is reached; the
points passed, in order, with the task that passed each, must be the row's.
And the table in ``spec/ADAPTER.md`` is the one generated from the rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import trio

from meerkat_ref._model import model as m
from meerkat_ref.oracle.targets import InProcessTarget
from meerkat_ref.service._placement import KINDS, SEQUENCES, Row
from meerkat_ref.variants import Variant

SETUPS: dict[tuple[str, str], tuple[Sequence[object], object]] = {
    ("create", "capacity free; first turn runs"): ((), m.Create("a")),
    ("create defer", "capacity free"): ((), m.Create("a", defer=True)),
    ("create host_mode", "capacity free"): ((), m.Create("a", host_mode=True)),
    ("start_turn", "a live, idle session"): ((m.Create("a"),), m.StartTurn(1, "x")),
    ("start_turn", "an unknown or archived session"): ((), m.StartTurn(9, "x")),
    ("inject", "a serving host loop"): (
        (m.Create("a", host_mode=True),), m.HostMessage(1, "x")),
    ("inject /compact", "a serving host loop"): (
        (m.Create("a", host_mode=True),), m.HostMessage(1, "/compact")),
    ("inject", "a serving host loop, checkpointers disarmed"): (
        (m.Create("a", host_mode=True), m.CancelAllCheckpointers()), m.HostMessage(1, "x")),
    ("inject", "a live session with no host loop (queued)"): (
        (m.Create("a"),), m.HostMessage(1, "x")),
    ("read", "a live session"): ((m.Create("a"),), m.Read(1)),
    ("read", "a stored-only session"): ((m.Create("a"), m.Restart()), m.Read(1)),
    ("list", ""): ((m.Create("a"),), m.List()),
    ("load_persisted", ""): ((m.Create("a"),), m.LoadPersisted(1)),
    ("cancel_all_checkpointers", "three live sessions"): (
        (m.Create("a"), m.Create("b"), m.Create("c")), m.CancelAllCheckpointers()),
    ("interrupt", "a serving host loop"): ((m.Create("a", host_mode=True),), m.Interrupt(1)),
    ("archive", "a live, idle session"): ((m.Create("a"),), m.Archive(1)),
    ("archive", "a stored-only session"): ((m.Create("a"), m.Restart()), m.Archive(1)),
    ("archive", "an unknown id"): ((), m.Archive(9)),
}


async def passed(target: InProcessTarget, setup: Sequence[object], op: object) -> list[str]:
    await target.open(3, True)
    for step in setup:
        if isinstance(step, m.Restart):
            await target.restart()
        else:
            await target.call(step, "c:setup")
        await target.settle()
    await target.control(True)
    await target.call(op, "c:me")
    seen: list[str] = []
    while True:
        parked = (await target.settle()).parked
        if not parked:
            return seen
        first = parked[0]
        role = "caller" if first.task == "c:me" else (
            "session" if first.task.startswith("session ") else first.task)
        seen.append(f"{role}:{first.kind}")
        await target.release(first.task)


@pytest.mark.parametrize("row", SEQUENCES, ids=lambda r: f"{r.call} / {r.situation}")
def test_the_reference_passes_exactly_the_points_the_table_lists(row: Row) -> None:
    setup, op = SETUPS[(row.call, row.situation)]

    async def main() -> list[str]:
        async with Variant.parse("reference").target() as target:
            return await passed(target, setup, op)

    assert trio.run(main) == [f"{task}:{kind}" for task, kind, _ in row.points]


def test_every_row_has_its_situation_and_every_kind_is_described() -> None:
    assert set(SETUPS) == {(r.call, r.situation) for r in SEQUENCES}
    used = {kind for r in SEQUENCES for _, kind, _ in r.points}
    assert used <= {k for k, _ in KINDS}
