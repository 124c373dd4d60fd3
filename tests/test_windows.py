"""The seed's four windows, each forced by hand, against the reference and the seed.

For each window a scenario parks one task at one scheduling point (``HoldPoints``),
runs ``archive`` to completion (or as far as it can get) in between, then lets
the parked task go on.  ``violations`` then lists every way the archived
session can still be seen: a store row, ``load_persisted``, ``read``, ``list``,
a running session task.

(a) Against ``PersistentSessionService`` (memory and SQLite stores) the list is
    empty, right after ``archive`` returns and once everything has settled.
(b) Against ``SeedPersistentSessionService`` with that one window open, the
    same scenario resurrects, leaks or loses the write, which shows each test
    can fail.

Where the reference has no equivalent of the seed's point (``map.acquire``
exists only in the seed), the reference is parked at the corresponding point of
its own path: the first point after the same step.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
import trio
from helpers import (
    AnyStore,
    HoldPoints,
    Outcome,
    create_req,
    error_of,
    make_builder,
    open_persistent,
    reached,
    settle,
    sid,
    spawn,
    turn_req,
    violations,
)

from meerkat_ref import (
    CANCELLED_TEXT,
    AgentError,
    EventKind,
    PersistentSessionService,
    RunResult,
    SessionId,
    SessionNotFound,
)
from meerkat_ref.agent import COMPACTED_TEXT
from meerkat_ref.testing import Window, raw_store

RESURRECTED = {"store row", "load_persisted", "read", "list"}


@dataclass
class Run:
    """What one forced interleaving left behind."""

    session_id: SessionId
    archive_finished_first: bool  # archive returned while the other task was parked
    at_archive: set[str] | None  # violations right after archive returned (if it did first)
    final: set[str]  # violations once everything settled
    archive_error: Exception | None
    caller: Outcome[RunResult]  # the create or turn that raced archive


Scenario = Callable[[PersistentSessionService, HoldPoints, trio.Nursery], Awaitable[Run]]


@contextlib.asynccontextmanager
async def harness(
    store: AnyStore, windows: set[Window] | None, *, max_sessions: int = 10
) -> AsyncIterator[tuple[PersistentSessionService, HoldPoints, trio.Nursery]]:
    """A service (reference if ``windows`` is None) sharing one ``HoldPoints`` with its agents.

    The seed's archived host loop (window 3) is never stopped by ``shutdown``, so
    the whole harness is cancelled on the way out rather than left to hang.
    """
    points = HoldPoints()
    with trio.CancelScope() as cleanup:
        try:
            async with (
                trio.open_nursery() as nursery,
                open_persistent(
                    store,
                    builder=make_builder(points=points),
                    points=points,
                    windows=windows,
                    max_sessions=max_sessions,
                ) as svc,
            ):
                yield svc, points, nursery
                points.release_all()
                if windows is not None:
                    cleanup.cancel()
                    await trio.lowlevel.checkpoint()
        finally:
            points.release_all()


async def race_archive(
    svc: PersistentSessionService,
    nursery: trio.Nursery,
    session_id: SessionId,
    caller: Outcome[RunResult],
    release: Callable[[], None],
) -> Run:
    """With the other task parked: archive, look, let the parked task go, look again."""
    archive = spawn(nursery, lambda: svc.archive(session_id))
    await settle()
    finished_first = archive.done.is_set()
    at_archive = await violations(svc, session_id) if finished_first else None
    release()
    await archive.wait()
    await settle()
    return Run(
        session_id=session_id,
        archive_finished_first=finished_first,
        at_archive=at_archive,
        final=await violations(svc, session_id),
        archive_error=archive.error,
        caller=caller,
    )


def assert_harmless(run: Run) -> None:
    assert run.archive_error is None
    if run.at_archive is not None:
        assert run.at_archive == set(), f"visible right after archive: {run.at_archive}"
    assert run.final == set(), f"archived session came back: {run.final}"


def assert_cancelled(outcome: Outcome[RunResult]) -> None:
    err = error_of(outcome)
    assert isinstance(err, AgentError)
    assert "cancelled" in str(err).lower()


# -- window 1: the save after a turn (or create) ----------------------------------------


async def turn_save_race(
    svc: PersistentSessionService, points: HoldPoints, nursery: trio.Nursery, kind: str
) -> Run:
    """A second turn has ended; its save is parked at ``kind``; archive runs."""
    s = (await svc.create_session(create_req("first"))).session_id
    hold = points.hold(kind, s)
    turn = spawn(nursery, lambda: svc.start_turn(s, turn_req("second")))
    await reached(hold)
    return await race_archive(svc, nursery, s, turn, hold.release)


async def create_save_race(
    svc: PersistentSessionService,
    points: HoldPoints,
    nursery: trio.Nursery,
    kind: str | tuple[str, ...],
) -> Run:
    """A create is parked at ``kind`` (between registration and its save); archive runs."""
    s = sid(1)
    hold = points.hold(kind, s)
    create = spawn(nursery, lambda: svc.create_session(create_req("first")))
    await reached(hold)
    return await race_archive(svc, nursery, s, create, hold.release)


RACES = {"turn": turn_save_race, "create": create_save_race}


@pytest.mark.parametrize("path", ["turn", "create"])
@pytest.mark.parametrize("kind", ["gate.acquire", "store.save"])
async def test_window1_reference_save_after_archive_is_harmless(
    store: AnyStore, path: str, kind: str
) -> None:
    async with harness(store, None) as (svc, points, nursery):
        run = await RACES[path](svc, points, nursery, kind)
        assert_harmless(run)
        if kind == "gate.acquire":
            # Parked before the gate: archive completes first, the save then gives
            # up, and the caller is told its call was cancelled: never a success
            # the store does not hold (DURABILITY).
            assert run.archive_finished_first
            assert isinstance(run.caller.error, AgentError)
            assert run.caller.error.message == CANCELLED_TEXT
        else:
            # Parked inside the gate (mid-write): archive waits for it, then deletes.
            assert not run.archive_finished_first
            expected = {"turn": "echo: second", "create": "echo: first"}[path]
            assert run.caller.result().text == expected


@pytest.mark.parametrize("path", ["turn", "create"])
async def test_window1_seed_save_after_archive_resurrects(store: AnyStore, path: str) -> None:
    async with harness(store, {Window.SAVE_AFTER_TURN}) as (svc, points, nursery):
        run = await RACES[path](svc, points, nursery, "store.save")
        assert run.archive_finished_first
        assert run.at_archive == set()  # archive did its job ...
        assert run.final == RESURRECTED  # ... and the late save undid it
        assert run.caller.error is None


# -- window 2: create racing archive ---------------------------------------------------


# The first point after the create's turn returned: the seed's late gate recording
# (``map.acquire``), or in the reference (which has none) the save's gate.
AFTER_CREATE_TURN = ("map.acquire", "gate.acquire")


@pytest.mark.parametrize("kind", ["cmd.send", "after-turn"])
async def test_window2_reference_archive_between_registration_and_save(
    store: AnyStore, kind: str
) -> None:
    async with harness(store, None) as (svc, points, nursery):
        park = AFTER_CREATE_TURN if kind == "after-turn" else kind
        run = await create_save_race(svc, points, nursery, park)
        assert run.archive_finished_first
        assert_harmless(run)
        assert svc.gate_armed(run.session_id) is None  # no gate left behind
        # Archived before the create could save: the create reports it was cancelled.
        assert isinstance(run.caller.error, AgentError)
        assert run.caller.error.message == CANCELLED_TEXT


async def test_window2_seed_archive_before_gate_is_recorded_resurrects(store: AnyStore) -> None:
    async with harness(store, {Window.CREATE_RACING_ARCHIVE}) as (svc, points, nursery):
        run = await create_save_race(svc, points, nursery, AFTER_CREATE_TURN)
        assert points.count("map.acquire", run.session_id) == 1  # parked there
        assert run.archive_finished_first
        assert run.at_archive == set()
        assert run.final == RESURRECTED
        # And the archived session's gate is tracked, armed, for good.
        assert svc.gate_armed(run.session_id) is True


async def host_create_checkpoint_race(
    svc: PersistentSessionService, points: HoldPoints, nursery: trio.Nursery, which: str
) -> Run:
    """A host-mode create (which never returns) is parked at a loop checkpoint; archive runs.

    ``first``: the checkpoint right after the create's prompt (nothing saved yet).
    ``next``: the checkpoint after an injected message (the first one was saved).
    """
    s = sid(1)
    if which == "first":
        hold = points.hold("checkpoint", s)
        create = spawn(nursery, lambda: svc.create_session(create_req("h", host_mode=True)))
    else:
        create = spawn(nursery, lambda: svc.create_session(create_req("h", host_mode=True)))
        await settle()
        assert await raw_store(svc).load(s) is not None
        hold = points.hold("checkpoint", s)
        injector = await svc.event_injector(s)
        assert injector is not None
        injector.inject("more")
    await reached(hold)
    assert not create.done.is_set()
    return await race_archive(svc, nursery, s, create, hold.release)


@pytest.mark.parametrize("which", ["first", "next"])
async def test_window2_reference_host_create_checkpoint_after_archive(
    store: AnyStore, which: str
) -> None:
    async with harness(store, None) as (svc, points, nursery):
        run = await host_create_checkpoint_race(svc, points, nursery, which)
        assert run.archive_finished_first
        assert_harmless(run)
        assert_cancelled(run.caller)


async def test_window2_seed_host_create_checkpoint_after_archive_resurrects(
    store: AnyStore,
) -> None:
    # The host-mode create never records its gate, and (window 3) archive does not
    # stop its loop: the loop's checkpoint lands after archive deleted the row.
    windows = {Window.CREATE_RACING_ARCHIVE, Window.ARCHIVED_HOST_LOOP}
    async with harness(store, windows) as (svc, points, nursery):
        run = await host_create_checkpoint_race(svc, points, nursery, "first")
        assert run.archive_finished_first
        assert run.at_archive == {"running task"}
        assert run.final == RESURRECTED | {"running task"}
        assert svc.gate_armed(run.session_id) is None  # the gate was never recorded


# -- window 3: the archived host loop ----------------------------------------------------


@dataclass
class HostArchive:
    session_id: SessionId
    at_archive: set[str]
    final: set[str]
    inject_error: Exception | None
    interrupt_error: Exception | None
    events_after_archive: list[EventKind]
    stream_ended: bool
    loop: Outcome[RunResult]


async def archive_host_loop_then_inject(
    svc: PersistentSessionService, nursery: trio.Nursery, start: str
) -> HostArchive:
    """Archive a session whose host loop is serving, then push a message into it.

    ``start``: ``turn`` starts the loop with ``start_turn`` on a deferred session,
    ``create`` with a host-mode ``create_session`` (which never returns).
    """
    s = sid(1)
    if start == "turn":
        await svc.create_session(create_req("unused", defer=True))
        loop = spawn(nursery, lambda: svc.start_turn(s, turn_req("h", host_mode=True)))
    else:
        loop = spawn(nursery, lambda: svc.create_session(create_req("h", host_mode=True)))
    await settle()
    assert await raw_store(svc).load(s) is not None  # the loop's first checkpoint
    injector = await svc.event_injector(s)
    assert injector is not None
    stream = await svc.subscribe_session_events(s)

    ended = trio.Event()
    after: list[EventKind] = []

    async def consume() -> None:
        async for event in stream:
            after.append(event.kind)
        ended.set()

    await svc.archive(s)
    at_archive = await violations(svc, s)
    nursery.start_soon(consume)
    interrupt_error: Exception | None = None
    try:
        await svc.interrupt(s)
    except SessionNotFound as exc:
        interrupt_error = exc
    inject_error: Exception | None = None
    try:
        injector.inject("after archive")
    except SessionNotFound as exc:
        inject_error = exc
    await settle()
    return HostArchive(
        session_id=s,
        at_archive=at_archive,
        final=await violations(svc, s),
        inject_error=inject_error,
        interrupt_error=interrupt_error,
        events_after_archive=after,
        stream_ended=ended.is_set(),
        loop=loop,
    )


@pytest.mark.parametrize("start", ["turn", "create"])
async def test_window3_reference_archive_stops_the_host_loop(store: AnyStore, start: str) -> None:
    async with harness(store, None, max_sessions=1) as (svc, _points, nursery):
        run = await archive_host_loop_then_inject(svc, nursery, start)
        assert run.at_archive == set()
        assert run.final == set()
        assert run.loop.done.is_set()
        assert_cancelled(run.loop)
        assert isinstance(run.inject_error, SessionNotFound)  # nobody is listening
        assert isinstance(run.interrupt_error, SessionNotFound)
        assert run.events_after_archive == []
        assert run.stream_ended
        # Its capacity is back: with max_sessions=1 a new session fits.
        assert (await svc.create_session(create_req("next"))).text == "echo: next"


async def test_window3_seed_archived_host_loop_keeps_running(store: AnyStore) -> None:
    async with harness(store, {Window.ARCHIVED_HOST_LOOP}, max_sessions=1) as (
        svc,
        _points,
        nursery,
    ):
        run = await archive_host_loop_then_inject(svc, nursery, "turn")
        assert run.at_archive == {"running task"}
        assert run.final == {"running task"}  # window 2 closed: its writes are gated
        assert not run.loop.done.is_set()
        assert run.inject_error is None
        # Nothing can stop it: interrupt no longer finds the session ...
        assert isinstance(run.interrupt_error, SessionNotFound)
        # ... and it keeps serving messages after archive.
        assert run.events_after_archive[:2] == [EventKind.HOST_MESSAGE, EventKind.TEXT_COMPLETE]
        assert not run.stream_ended
        # Its capacity is never given back.
        with pytest.raises(AgentError, match="Max sessions reached"):
            await svc.create_session(create_req("next"))


async def test_window3_seed_with_window2_writes_back(store: AnyStore) -> None:
    windows = {Window.ARCHIVED_HOST_LOOP, Window.CREATE_RACING_ARCHIVE}
    async with harness(store, windows) as (svc, _points, nursery):
        run = await archive_host_loop_then_inject(svc, nursery, "create")
        assert run.at_archive == {"running task"}
        assert run.final == RESURRECTED | {"running task"}
        stored = await svc.load_persisted(run.session_id)
        assert stored is not None
        assert stored.messages[-1].content == "echo: after archive"


# -- window 4: skip-unchanged by length ---------------------------------------------------


async def compact_in_host_loop(svc: PersistentSessionService, nursery: trio.Nursery) -> SessionId:
    s = (await svc.create_session(create_req("unused", defer=True))).session_id
    spawn(nursery, lambda: svc.start_turn(s, turn_req("h", host_mode=True)))
    await settle()
    stream = await svc.subscribe_session_events(s)
    injector = await svc.event_injector(s)
    assert injector is not None
    injector.inject("a")
    await settle()
    injector.inject("/compact")
    await settle()
    assert EventKind.COMPACTED in [e.kind for e in stream.drain()]
    return s


async def test_window4_reference_saves_a_compaction(store: AnyStore) -> None:
    async with harness(store, None) as (svc, _points, nursery):
        s = await compact_in_host_loop(svc, nursery)
        live = await svc.export_session(s)
        stored = await svc.load_persisted(s)
        assert stored is not None
        assert stored == live
        assert [m.content for m in stored.messages] == [
            COMPACTED_TEXT,
            COMPACTED_TEXT,
            COMPACTED_TEXT,
            "echo: a",
        ]


async def test_window4_seed_loses_a_compaction(store: AnyStore) -> None:
    async with harness(store, {Window.SKIP_BY_LENGTH}) as (svc, _points, nursery):
        s = await compact_in_host_loop(svc, nursery)
        live = await svc.export_session(s)
        stored = await svc.load_persisted(s)
        assert stored is not None
        assert stored.message_count == live.message_count  # why the seed skipped it
        assert stored != live
        assert stored.revision < live.revision
        assert COMPACTED_TEXT not in [m.content for m in stored.messages]
