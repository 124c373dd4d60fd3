"""Session events: order, cancellation, host loops, end of stream, lagging readers."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import pytest
import trio
from helpers import (
    SERVICE_KINDS,
    AnyService,
    HoldPoints,
    ServiceKind,
    create_req,
    error_of,
    open_service,
    reached,
    settle,
    spawn,
    turn_req,
)

from meerkat_ref import AgentError, AgentEvent, EventKind, EventStream, SessionId, SessionNotFound
from meerkat_ref.agent import scripted_usage

E = EventKind


@pytest.fixture(params=SERVICE_KINDS)
def kind(request: pytest.FixtureRequest) -> ServiceKind:
    return cast(ServiceKind, request.param)


def turn_events(s: SessionId, prompt: str) -> list[AgentEvent]:
    """The events of one completed scripted turn, exactly."""
    reply, usage = f"echo: {prompt}", scripted_usage(prompt)
    return [
        AgentEvent(E.RUN_STARTED, s, prompt),
        AgentEvent(E.TEXT_COMPLETE, s, reply, usage),
        AgentEvent(E.RUN_COMPLETED, s, reply, usage),
    ]


async def deferred(svc: AnyService) -> SessionId:
    return (await svc.create_session(create_req("unused", defer=True))).session_id


async def test_turn_events_in_order(kind: ServiceKind, tmp_path: Path) -> None:
    async with open_service(kind, tmp_path) as svc:
        s = await deferred(svc)
        first = await svc.subscribe_session_events(s)
        second = await svc.subscribe_session_events(str(s))
        await svc.start_turn(s, turn_req("hi there"))
        late = await svc.subscribe_session_events(s)
        await svc.start_turn(s, turn_req("again"))
        expected = turn_events(s, "hi there") + turn_events(s, "again")
        assert first.drain() == expected
        assert second.drain() == expected  # every subscriber sees every event
        assert late.drain() == turn_events(s, "again")  # from subscription on, no replay
        assert first.lagged == 0


async def test_other_sessions_events_stay_apart(kind: ServiceKind, tmp_path: Path) -> None:
    async with open_service(kind, tmp_path) as svc:
        a, b = await deferred(svc), await deferred(svc)
        stream_a = await svc.subscribe_session_events(a)
        await svc.start_turn(b, turn_req("for b"))
        await svc.start_turn(a, turn_req("for a"))
        assert stream_a.drain() == turn_events(a, "for a")


async def test_interrupt_publishes_run_cancelled(kind: ServiceKind, tmp_path: Path) -> None:
    points = HoldPoints()
    async with trio.open_nursery() as nursery, open_service(kind, tmp_path, points=points) as svc:
        s = await deferred(svc)
        stream = await svc.subscribe_session_events(s)
        hold = points.hold("agent.step", s, skip=1)  # after the user message, before the reply
        turn = spawn(nursery, lambda: svc.start_turn(s, turn_req("slow")))
        await reached(hold)
        await svc.interrupt(s)
        await turn.wait()
        assert isinstance(error_of(turn), AgentError)
        assert stream.drain() == [
            AgentEvent(E.RUN_STARTED, s, "slow"),
            AgentEvent(E.RUN_CANCELLED, s),
        ]
        # The next turn's events are the usual ones.
        await svc.start_turn(s, turn_req("next"))
        assert stream.drain() == turn_events(s, "next")


async def test_interrupt_before_the_turn_starts_is_not_lost(
    kind: ServiceKind, tmp_path: Path
) -> None:
    points = HoldPoints()
    async with trio.open_nursery() as nursery, open_service(kind, tmp_path, points=points) as svc:
        s = await deferred(svc)
        stream = await svc.subscribe_session_events(s)
        hold = points.hold("cmd.send", s)  # admitted, not yet sent to the session task
        turn = spawn(nursery, lambda: svc.start_turn(s, turn_req("never")))
        await reached(hold)
        await svc.interrupt(s)  # the turn is running as far as callers can tell
        hold.release()
        await turn.wait()
        err = error_of(turn)
        assert isinstance(err, AgentError)
        assert "cancelled" in str(err).lower()
        assert stream.drain() == [AgentEvent(E.RUN_CANCELLED, s)]
        assert (await svc.read(s)).state.message_count == 0


async def test_host_loop_events(kind: ServiceKind, tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery, open_service(kind, tmp_path) as svc:
        s = await deferred(svc)
        stream = await svc.subscribe_session_events(s)
        loop = spawn(nursery, lambda: svc.start_turn(s, turn_req("h", host_mode=True)))
        await settle()
        assert stream.drain() == turn_events(s, "h")
        injector = await svc.event_injector(s)
        assert injector is not None
        injector.inject("a")
        injector.inject("/compact")
        await settle()
        assert stream.drain() == [
            AgentEvent(E.HOST_MESSAGE, s, "a"),
            AgentEvent(E.TEXT_COMPLETE, s, "echo: a", scripted_usage("a")),
            AgentEvent(E.HOST_MESSAGE, s, "/compact"),
            AgentEvent(E.COMPACTED, s),
        ]
        await svc.interrupt(s)
        await loop.wait()
        assert stream.drain() == [AgentEvent(E.RUN_CANCELLED, s)]


async def collect(stream: EventStream, into: list[AgentEvent], ended: trio.Event) -> None:
    async for event in stream:
        into.append(event)
    ended.set()


async def test_stream_ends_on_archive(kind: ServiceKind, tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery, open_service(kind, tmp_path) as svc:
        s = await deferred(svc)
        other = await deferred(svc)
        seen: list[AgentEvent] = []
        ended = trio.Event()
        nursery.start_soon(collect, await svc.subscribe_session_events(s), seen, ended)
        other_stream = await svc.subscribe_session_events(other)
        await svc.start_turn(s, turn_req("one"))
        await settle()
        assert seen == turn_events(s, "one")
        assert not ended.is_set()
        await svc.archive(s)
        await settle()
        assert ended.is_set(), "the stream of an archived session did not end"
        assert seen == turn_events(s, "one")
        with pytest.raises(SessionNotFound):
            await svc.subscribe_session_events(s)
        # Other sessions' streams are unaffected.
        await svc.start_turn(other, turn_req("two"))
        assert other_stream.drain() == turn_events(other, "two")


async def test_stream_ends_when_the_service_exits(kind: ServiceKind, tmp_path: Path) -> None:
    seen: list[AgentEvent] = []
    ended = trio.Event()
    async with trio.open_nursery() as nursery:
        async with open_service(kind, tmp_path) as svc:
            s = await deferred(svc)
            nursery.start_soon(collect, await svc.subscribe_session_events(s), seen, ended)
            await svc.start_turn(s, turn_req("one"))
            await settle()
            assert not ended.is_set()
        await settle()
        assert ended.is_set()
    assert seen == turn_events(s, "one")


async def test_slow_subscriber_lags_instead_of_blocking(kind: ServiceKind, tmp_path: Path) -> None:
    turns, capacity = 100, 256  # 300 events through a per-subscriber buffer of 256
    async with trio.open_nursery() as nursery, open_service(kind, tmp_path) as svc:
        s = await deferred(svc)
        slow = await svc.subscribe_session_events(s)  # never read until the end
        fast = await svc.subscribe_session_events(s)
        seen: list[AgentEvent] = []
        ended = trio.Event()
        nursery.start_soon(collect, fast, seen, ended)
        expected: list[AgentEvent] = []
        with trio.fail_after(20):  # a guard only: a blocked publisher would hang here
            for i in range(turns):
                await svc.start_turn(s, turn_req(f"p{i}"))
                expected += turn_events(s, f"p{i}")
        await settle()
        assert seen == expected
        assert fast.lagged == 0
        assert slow.lagged == len(expected) - capacity
        assert slow.drain() == expected[-capacity:]  # the oldest were dropped
        assert (await svc.read(s)).state.message_count == 2 * turns
        await svc.archive(s)
