"""Upstream's ``tests/ephemeral_contract.rs``, against every service.

Each behaviour of the crate's contract test runs on ``EphemeralSessionService``
and on ``PersistentSessionService`` (memory and SQLite stores): wrapping the
live service in persistence must not change what a caller sees of it.  Where
upstream sleeps to let a turn get going, these tests use the mock clock
(``autojump_clock``) or park the turn at a scheduling point.
"""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path
from typing import cast

import pytest
import trio
import trio.testing
from helpers import (
    SERVICE_KINDS,
    HoldPoints,
    Outcome,
    ServiceKind,
    create_req,
    error_of,
    live_part,
    make_builder,
    open_service,
    reached,
    settle,
    sid,
    spawn,
    turn_req,
)

from meerkat_ref import (
    AgentError,
    EventKind,
    PersistentSessionService,
    RunResult,
    SessionBusy,
    SessionNotFound,
    SessionNotRunning,
    SessionQuery,
    UserMessage,
)
from meerkat_ref.agent import scripted_usage

CAPACITY_TEXT = re.compile(
    r"^Max sessions reached \((\d+)/(\d+)\)(?:; (\d+) more being created or stopping)?$"
)


@pytest.fixture(params=SERVICE_KINDS)
def kind(request: pytest.FixtureRequest) -> ServiceKind:
    return cast(ServiceKind, request.param)


def assert_cancelled(outcome: Outcome[RunResult]) -> None:
    err = error_of(outcome)
    assert isinstance(err, AgentError)
    assert err.code == "AGENT_ERROR"
    assert "cancelled" in str(err).lower()


# -- create, defer, turns -------------------------------------------------------


async def test_create_and_run_turn(kind: ServiceKind, tmp_path: Path) -> None:
    async with open_service(kind, tmp_path) as svc:
        result = await svc.create_session(create_req("Hello there"))
        assert result.session_id == sid(1)
        assert result.text == "echo: Hello there"
        assert result.usage == scripted_usage("Hello there")
        assert result.turns == 1
        view = await svc.read(result.session_id)
        assert view.state.session_id == sid(1)
        assert view.state.message_count == 2
        assert view.state.last_assistant_text == "echo: Hello there"
        assert view.billing.total_tokens == scripted_usage("Hello there").total_tokens


async def test_create_with_system_prompt_keeps_it_first(kind: ServiceKind, tmp_path: Path) -> None:
    async with open_service(kind, tmp_path) as svc:
        result = await svc.create_session(create_req("hi", system_prompt="be brief"))
        session = await svc.export_session(result.session_id)
        assert [m.role for m in session.messages] == ["system", "user", "assistant"]
        assert session.messages[0].content == "be brief"


async def test_deferred_initial_turn_runs_nothing_then_a_turn_works(
    kind: ServiceKind, tmp_path: Path
) -> None:
    async with open_service(kind, tmp_path) as svc:
        result = await svc.create_session(create_req("defer first turn", defer=True))
        assert (result.text, result.turns, result.tool_calls) == ("", 0, 0)
        sessions = await svc.list()
        assert [s.session_id for s in sessions] == [result.session_id]
        view = await svc.read(result.session_id)
        assert view.state.message_count == 0
        assert view.state.is_active is False
        assert view.state.last_assistant_text is None

        started = await svc.start_turn(result.session_id, turn_req("now run"))
        assert started.text == "echo: now run"
        session = await svc.export_session(result.session_id)
        # The deferred prompt was never run: only the later turn is in the history.
        assert [m.content for m in session.messages] == ["now run", "echo: now run"]


async def test_subscribe_before_first_turn(kind: ServiceKind, tmp_path: Path) -> None:
    async with open_service(kind, tmp_path) as svc:
        created = await svc.create_session(create_req("defer stream", defer=True))
        stream = await svc.subscribe_session_events(created.session_id)
        assert stream.drain() == []
        await svc.start_turn(created.session_id, turn_req("trigger"))
        events = stream.drain()
        assert events, "the stream attached before the first turn saw nothing"
        assert events[0].kind is EventKind.RUN_STARTED
        assert events[0].text == "trigger"
        assert events[-1].kind is EventKind.RUN_COMPLETED


async def test_second_turn_on_existing_session(kind: ServiceKind, tmp_path: Path) -> None:
    async with open_service(kind, tmp_path) as svc:
        first = await svc.create_session(create_req("Hello"))
        sessions = await svc.list()
        assert len(sessions) == 1
        session_id = sessions[0].session_id
        assert session_id == first.session_id
        second = await svc.start_turn(session_id, turn_req("Follow up"))
        assert second.text == "echo: Follow up"
        assert second.session_id == session_id
        view = await svc.read(session_id)
        assert view.state.message_count == 4
        assert view.billing.usage == scripted_usage("Hello") + scripted_usage("Follow up")
        assert len(await svc.list()) == 1


async def test_read_shows_a_running_turn_as_active(kind: ServiceKind, tmp_path: Path) -> None:
    points = HoldPoints()
    async with trio.open_nursery() as nursery, open_service(kind, tmp_path, points=points) as svc:
        created = await svc.create_session(create_req("Hello"))
        s = created.session_id
        idle = await svc.read(s)
        assert idle.state.session_id == s
        assert idle.state.is_active is False  # upstream: idle after the turn completes

        # Park the turn after it pushed the user message, before the reply.
        hold = points.hold("agent.step", s, skip=1)
        turn = spawn(nursery, lambda: svc.start_turn(s, turn_req("slow")))
        await reached(hold)
        busy = await svc.read(s)
        assert busy.state.is_active is True
        assert busy.state.message_count == 3
        [summary] = await svc.list()
        assert summary.is_active is True

        hold.release()
        await turn.wait()
        assert turn.result().text == "echo: slow"
        done = await svc.read(s)
        assert done.state.is_active is False
        assert done.state.message_count == 4


async def test_list_sessions(kind: ServiceKind, tmp_path: Path) -> None:
    async with open_service(kind, tmp_path) as svc:
        a = await svc.create_session(create_req("A"))  # ticks 1, 2, 3
        b = await svc.create_session(create_req("B"))  # ticks 4, 5, 6
        c = await svc.create_session(create_req("C", defer=True))  # tick 7
        sessions = await svc.list()
        assert [s.session_id for s in sessions] == [c.session_id, b.session_id, a.session_id]
        by_id = {s.session_id: s for s in sessions}
        assert (by_id[a.session_id].created_at, by_id[a.session_id].updated_at) == (1, 3)
        assert by_id[a.session_id].message_count == 2
        assert by_id[a.session_id].total_tokens == scripted_usage("A").total_tokens
        assert (by_id[c.session_id].created_at, by_id[c.session_id].message_count) == (7, 0)
        assert not any(s.is_active for s in sessions)
        page = await svc.list(SessionQuery(limit=1, offset=1))
        assert [s.session_id for s in page] == [b.session_id]


# -- capacity -------------------------------------------------------------------


async def test_capacity_is_atomic_under_concurrent_creates(
    kind: ServiceKind, tmp_path: Path
) -> None:
    limit, attempts = 3, 8
    points = HoldPoints()
    # Park every admitted build, so all attempts overlap with builds in flight.
    holds = [points.hold("agent.step", sid(n)) for n in range(1, limit + 1)]
    async with (
        trio.open_nursery() as nursery,
        open_service(kind, tmp_path, points=points, max_sessions=limit) as svc,
    ):
        outcomes = [
            spawn(nursery, partial(svc.create_session, create_req(f"p{i}")))
            for i in range(attempts)
        ]
        for hold in holds:
            await reached(hold)
        await settle()
        rejected = [o for o in outcomes if o.done.is_set()]
        assert len(rejected) == attempts - limit
        for outcome in rejected:
            err = error_of(outcome)
            assert isinstance(err, AgentError)
            assert err.code == "AGENT_ERROR"
            match = CAPACITY_TEXT.match(str(err))
            assert match is not None, str(err)
            assert int(match.group(2)) == limit
            assert int(match.group(1)) <= limit
            # The places creates in flight hold are counted: live + building = the limit.
            assert int(match.group(1)) + int(match.group(3) or 0) == limit
        assert live_part(svc).live_count == limit

        for hold in holds:
            hold.release()
        for outcome in outcomes:
            await outcome.wait()
        admitted = [o.result().session_id for o in outcomes if o.error is None]
        assert sorted(admitted) == [sid(n) for n in range(1, limit + 1)]
        assert len(await svc.list()) == limit

        # Full: the error names how many are active, exactly as upstream words it.
        with pytest.raises(AgentError) as info:
            await svc.create_session(create_req("one too many"))
        assert str(info.value) == f"Max sessions reached ({limit}/{limit})"
        # Archiving one gives its place back.
        await svc.archive(admitted[0])
        again = await svc.create_session(create_req("fits again"))
        assert again.text == "echo: fits again"
        assert len(await svc.list()) == limit


# -- archive --------------------------------------------------------------------


async def test_archive_session(kind: ServiceKind, tmp_path: Path) -> None:
    async with open_service(kind, tmp_path) as svc:
        created = await svc.create_session(create_req("Hello"))
        keep = await svc.create_session(create_req("Keep"))
        await svc.archive(created.session_id)
        assert [s.session_id for s in await svc.list()] == [keep.session_id]
        with pytest.raises(SessionNotFound):
            await svc.read(created.session_id)
        assert created.session_id not in live_part(svc).statistics().running_tasks
        if isinstance(svc, PersistentSessionService):
            assert await svc.load_persisted(created.session_id) is None
        with pytest.raises(SessionNotFound) as info:
            await svc.archive(created.session_id)
        assert info.value.code == "SESSION_NOT_FOUND"


async def test_turn_on_archived_session_is_not_found(kind: ServiceKind, tmp_path: Path) -> None:
    async with open_service(kind, tmp_path) as svc:
        created = await svc.create_session(create_req("Hello"))
        await svc.archive(created.session_id)
        with pytest.raises(SessionNotFound) as info:
            await svc.start_turn(created.session_id, turn_req("After archive"))
        assert info.value.code == "SESSION_NOT_FOUND"
        assert info.value.session_id == created.session_id


# -- busy and interrupt -----------------------------------------------------------


async def test_concurrent_turns_give_exactly_one_busy(
    kind: ServiceKind, tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    builder = make_builder(turn_delay=5.0)
    async with trio.open_nursery() as nursery, open_service(kind, tmp_path, builder=builder) as svc:
        created = await svc.create_session(create_req("Hello"))
        s = created.session_id
        slow = spawn(nursery, lambda: svc.start_turn(s, turn_req("Slow")))
        await trio.sleep(1)  # mock time: the slow turn is mid-way
        with pytest.raises(SessionBusy) as info:
            await svc.start_turn(s, turn_req("Fast"))
        assert info.value.code == "SESSION_BUSY"
        await slow.wait()
        assert slow.result().text == "echo: Slow"

        # Many at once: exactly one is admitted.
        racers = [spawn(nursery, partial(svc.start_turn, s, turn_req(f"r{i}"))) for i in range(5)]
        for racer in racers:
            await racer.wait()
        winners = [r for r in racers if r.error is None]
        busy = [r for r in racers if isinstance(r.error, SessionBusy)]
        assert (len(winners), len(busy)) == (1, 4)
        view = await svc.read(s)
        assert view.state.message_count == 6  # create, Slow, and one racer
        # Once idle again, the next turn is admitted.
        assert (await svc.start_turn(s, turn_req("after"))).text == "echo: after"


async def test_interrupt_cancels_inflight_turn(
    kind: ServiceKind, tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    builder = make_builder(turn_delay=10.0)
    async with trio.open_nursery() as nursery, open_service(kind, tmp_path, builder=builder) as svc:
        created = await svc.create_session(create_req("Hello", defer=True))
        s = created.session_id
        started = trio.current_time()
        turn = spawn(nursery, lambda: svc.start_turn(s, turn_req("Slow")))
        await trio.sleep(1)
        assert (await svc.read(s)).state.is_active is True
        await svc.interrupt(s)
        await turn.wait()
        assert_cancelled(turn)
        assert trio.current_time() - started < 10.0, "the turn ran to its end"
        view = await svc.read(s)
        assert view.state.is_active is False
        # What the turn did before the interrupt is kept; the reply never came.
        session = await svc.export_session(s)
        assert session.messages == (UserMessage("Slow"),)
        # The session is usable afterwards.
        assert (await svc.start_turn(s, turn_req("next"))).text == "echo: next"


async def test_interrupt_when_idle_is_not_running(kind: ServiceKind, tmp_path: Path) -> None:
    async with open_service(kind, tmp_path) as svc:
        ran = await svc.create_session(create_req("Hello"))
        deferred = await svc.create_session(create_req("later", defer=True))
        for s in (ran.session_id, deferred.session_id):
            with pytest.raises(SessionNotRunning) as info:
                await svc.interrupt(s)
            assert info.value.code == "SESSION_NOT_RUNNING"
            assert info.value.session_id == s
        # A NOT_RUNNING interrupt is not remembered: the next turn runs normally.
        assert (await svc.start_turn(ran.session_id, turn_req("x"))).text == "echo: x"


async def test_interrupt_of_host_turn_returns_without_waiting(
    kind: ServiceKind, tmp_path: Path
) -> None:
    points = HoldPoints()
    async with trio.open_nursery() as nursery, open_service(kind, tmp_path, points=points) as svc:
        created = await svc.create_session(create_req("Hello", defer=True))
        s = created.session_id
        host = spawn(nursery, lambda: svc.start_turn(s, turn_req("host turn", host_mode=True)))
        await settle()
        assert not host.done.is_set(), "a host-mode turn must keep serving"
        assert (await svc.read(s)).state.is_active is True

        # Make the loop busy in a step that cannot acknowledge a cancel yet.
        hold = points.hold("agent.step", s, shield=True)
        injector = await svc.event_injector(s)
        assert injector is not None
        injector.inject("busy")
        await reached(hold)
        try:
            interrupt = spawn(nursery, lambda: svc.interrupt(s))
            await settle()
            assert interrupt.done.is_set(), "interrupt waited for the host loop"
            assert interrupt.error is None
            assert not host.done.is_set()
        finally:
            hold.release()
        await host.wait()
        assert_cancelled(host)
        assert (await svc.read(s)).state.is_active is False


# -- a caller cancelled part-way -------------------------------------------------------


# Regression: a start_turn/create_session cancelled at its cmd.send point used to
# leave turn_running set with no turn sent, so the session was SESSION_BUSY forever.
@pytest.mark.parametrize("call", ["start_turn", "create_session"])
async def test_cancelled_caller_does_not_wedge_the_session(
    kind: ServiceKind, tmp_path: Path, call: str
) -> None:
    points = HoldPoints()
    async with trio.open_nursery() as nursery, open_service(kind, tmp_path, points=points) as svc:
        if call == "start_turn":
            s = (await svc.create_session(create_req("Hello"))).session_id
        else:
            s = sid(1)
        hold = points.hold("cmd.send", s)
        scope = trio.CancelScope()

        async def cancellable() -> None:
            with scope:
                if call == "start_turn":
                    await svc.start_turn(s, turn_req("given up"))
                else:
                    await svc.create_session(create_req("given up"))

        nursery.start_soon(cancellable)
        await reached(hold)
        scope.cancel()  # the caller gives up (a timeout, say) before the turn is sent
        await settle()
        assert hold.cancelled

        # Whatever became of the abandoned turn, the session must not stay busy.
        view = await svc.read(s)
        assert view.state.is_active is False, "session stuck active after a cancelled call"
        result = await svc.start_turn(s, turn_req("next"))
        assert result.text == "echo: next"


# Regression: an archive cancelled at its archive.stop point used to remove the session
# from the map without stopping its task, which then leaked (unreachable by archive or
# shutdown, its capacity never returned, and the service's exit hung on it).
async def test_cancelled_archive_does_not_leak_the_session_task(
    kind: ServiceKind, tmp_path: Path
) -> None:
    points = HoldPoints()
    async with open_service(kind, tmp_path, points=points, max_sessions=1) as svc:
        s = (await svc.create_session(create_req("Hello"))).session_id
        hold = points.hold("archive.stop", s)
        with trio.CancelScope() as scope:

            async def cancel_when_parked() -> None:
                await reached(hold)
                scope.cancel()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(cancel_when_parked)
                await svc.archive(s)
        await settle()
        live = live_part(svc)
        # Every session task must still be reachable: live (archivable again) or ended.
        assert live.statistics().running_tasks <= live.statistics().live, "session task leaked"
        if isinstance(svc, PersistentSessionService):
            # The row went before the stop: the archive had already happened.
            assert await svc.load_persisted(s) is None
        with pytest.raises(SessionNotFound):
            await svc.archive(s)
        # Its capacity is back (max_sessions=1).
        assert (await svc.create_session(create_req("next"))).text == "echo: next"
        await svc.shutdown()
        assert live.statistics().running_tasks == frozenset()
        assert live.live_count == 0
