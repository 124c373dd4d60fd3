"""``PersistentSessionService`` as a whole: the seed's own tests, and what it adds.

The seed's tests (``persistent.rs``) exercise only the store and a hand-built
checkpointer, because upstream had no agent builder to build a service with.
Here each of them runs against the real service: the checkpointer is the one
the service injects into the agent (captured by ``CapturingBuilder``), and the
host-mode checkpoints come from a real host loop.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import pytest
import trio
from helpers import (
    SERVICE_KINDS,
    AnyStore,
    HoldPoints,
    Outcome,
    ServiceKind,
    close_store,
    create_req,
    error_of,
    live_part,
    make_builder,
    open_persistent,
    open_service,
    reached,
    settle,
    sid,
    spawn,
    turn_req,
)

from meerkat_ref import (
    AgentError,
    AssistantMessage,
    CreateSessionRequest,
    LogicalClock,
    PersistentSessionService,
    RunResult,
    ScriptedAgentBuilder,
    Session,
    SessionCheckpointer,
    SessionError,
    SessionId,
    SessionNotFound,
    SessionQuery,
    SessionStoreError,
    SqliteStore,
    Usage,
    UserMessage,
)
from meerkat_ref.agent import ScriptedAgent, scripted_usage
from meerkat_ref.testing import raw_store


@pytest.fixture(params=SERVICE_KINDS)
def kind(request: pytest.FixtureRequest) -> ServiceKind:
    return cast(ServiceKind, request.param)


async def reopen(store: AnyStore) -> AnyStore:
    """The same sessions after a restart: a memory store survives as is, SQLite is reopened."""
    if isinstance(store, SqliteStore):
        path = store.path
        await store.aclose()
        return SqliteStore(path)
    return store


class CapturingBuilder:
    """A scripted builder that keeps the checkpointer the service injects per session."""

    def __init__(self, inner: ScriptedAgentBuilder) -> None:
        self.inner = inner
        self.checkpointers: dict[SessionId, SessionCheckpointer] = {}

    async def build_agent(self, req: CreateSessionRequest) -> ScriptedAgent:
        agent = await self.inner.build_agent(req)
        assert req.build is not None and req.build.checkpointer is not None
        self.checkpointers[agent.session_id] = req.build.checkpointer
        return agent


@contextlib.asynccontextmanager
async def capturing_service(
    store: AnyStore,
) -> AsyncIterator[tuple[PersistentSessionService, CapturingBuilder]]:
    builder = CapturingBuilder(make_builder())
    async with PersistentSessionService(builder, 10, store) as svc:
        yield svc, builder


def assert_cancelled(outcome: Outcome[RunResult]) -> None:
    err = error_of(outcome)
    assert isinstance(err, AgentError)
    assert "cancelled" in str(err).lower()


async def host_loop(
    nursery: trio.Nursery, svc: PersistentSessionService, prompt: str = "h"
) -> tuple[SessionId, Outcome[RunResult]]:
    """A deferred session whose host loop (started by ``start_turn``) is serving, idle."""
    s = (await svc.create_session(create_req("unused", defer=True))).session_id
    loop = spawn(nursery, lambda: svc.start_turn(s, turn_req(prompt, host_mode=True)))
    await settle()
    assert not loop.done.is_set()
    return s, loop


async def inject(svc: PersistentSessionService, s: SessionId, text: str) -> None:
    injector = await svc.event_injector(s)
    assert injector is not None
    injector.inject(text)
    await settle()


async def stored_contents(svc: PersistentSessionService, s: SessionId) -> list[str]:
    stored = await svc.load_persisted(s)
    assert stored is not None, f"{s} is not in the store"
    return [m.content for m in stored.messages]


# -- the seed's tests, against the service -----------------------------------------


async def test_load_persisted_returns_the_stored_session(store: AnyStore) -> None:
    async with open_persistent(store) as svc:
        s = (await svc.create_session(create_req("Hello"))).session_id
        loaded = await svc.load_persisted(s)
        assert loaded is not None
        assert loaded.id == s
        assert loaded == await svc.export_session(s)
        assert loaded == await svc.load_persisted(str(s))  # the text form works too


async def test_load_persisted_returns_none_for_unknown(store: AnyStore) -> None:
    async with open_persistent(store) as svc:
        await svc.create_session(create_req("Hello"))
        assert await svc.load_persisted(SessionId.from_int(999)) is None


async def test_archive_deletes_from_store(store: AnyStore) -> None:
    async with open_persistent(store) as svc:
        s = (await svc.create_session(create_req("Hello"))).session_id
        keep = (await svc.create_session(create_req("Keep"))).session_id
        assert await store.load(s) is not None
        await svc.archive(s)
        assert await store.load(s) is None
        assert await svc.load_persisted(s) is None
        assert await store.load(keep) is not None


async def test_host_mode_checkpoint_saves(store: AnyStore) -> None:
    async with trio.open_nursery() as nursery, open_persistent(store) as svc:
        s, loop = await host_loop(nursery, svc)
        # start_turn has not returned, so this save is the host loop's checkpoint.
        assert await stored_contents(svc, s) == ["h", "echo: h"]
        await inject(svc, s, "more")
        assert await stored_contents(svc, s) == ["h", "echo: h", "more", "echo: more"]
        assert await svc.load_persisted(s) == await svc.export_session(s)
        assert not loop.done.is_set()


async def test_injected_checkpointer_saves_session(store: AnyStore) -> None:
    async with capturing_service(store) as (svc, builder):
        s = (await svc.create_session(create_req("x", defer=True))).session_id
        checkpointer = builder.checkpointers[s]
        session = (await svc.export_session(s)).push(UserMessage("hello"), 50)
        await checkpointer.checkpoint(session)
        loaded = await store.load(s)
        assert loaded is not None, "session should be persisted after checkpoint"
        assert loaded.id == s
        assert loaded.messages == session.messages


async def test_checkpoint_suppressed_after_cancel_all_and_rearmed(store: AnyStore) -> None:
    async with trio.open_nursery() as nursery, open_persistent(store) as svc:
        s, _loop = await host_loop(nursery, svc)
        assert svc.gate_armed(s) is True
        await svc.cancel_all_checkpointers()
        assert svc.gate_armed(s) is False
        await inject(svc, s, "a")
        assert (await svc.read(s)).state.message_count == 4
        assert await stored_contents(svc, s) == ["h", "echo: h"], "disarmed checkpoint wrote"

        # Turn saves are not checkpoints: they still happen while disarmed.
        other = (await svc.create_session(create_req("o"))).session_id
        await svc.start_turn(other, turn_req("o2"))
        assert await stored_contents(svc, other) == ["o", "echo: o", "o2", "echo: o2"]

        await svc.rearm_all_checkpointers()
        assert svc.gate_armed(s) is True
        await inject(svc, s, "b")
        assert await stored_contents(svc, s) == ["h", "echo: h", "a", "echo: a", "b", "echo: b"]


async def test_injected_checkpointer_suppressed_by_cancel_all_and_archive(
    store: AnyStore,
) -> None:
    async with capturing_service(store) as (svc, builder):
        s = (await svc.create_session(create_req("hello"))).session_id
        checkpointer = builder.checkpointers[s]
        snapshot = await svc.export_session(s)

        await svc.cancel_all_checkpointers()
        await checkpointer.checkpoint(snapshot.push(UserMessage("while stopped"), 50))
        assert await stored_contents(svc, s) == ["hello", "echo: hello"]
        await svc.rearm_all_checkpointers()
        rearmed = snapshot.push(UserMessage("resumed"), 51)
        await checkpointer.checkpoint(rearmed)
        assert await store.load(s) == rearmed

        # Archive: the gate is cancelled and the row deleted; later checkpoints are no-ops.
        await svc.archive(s)
        assert await store.load(s) is None
        await checkpointer.checkpoint(rearmed.push(UserMessage("world"), 52))
        assert await store.load(s) is None, "cancelled checkpointer wrote the session back"
        # And a rearm does not bring an archived session's gate back.
        await svc.rearm_all_checkpointers()
        await checkpointer.checkpoint(rearmed.push(UserMessage("again"), 53))
        assert await store.load(s) is None


async def test_injected_checkpointer_skips_unchanged_session(store: AnyStore) -> None:
    async with capturing_service(store) as (svc, builder):
        s = (await svc.create_session(create_req("hello"))).session_id
        checkpointer = builder.checkpointers[s]
        snapshot = await svc.export_session(s)
        assert await store.load(s) == snapshot  # saved by create

        await store.delete(s)  # to see whether the next checkpoint writes
        await checkpointer.checkpoint(snapshot)
        assert await store.load(s) is None, "unchanged session should not be re-saved"

        changed = snapshot.push(UserMessage("world"), 50)
        await checkpointer.checkpoint(changed)
        assert await store.load(s) == changed, "changed session should be saved"


async def test_archive_store_only_session_after_restart(store: AnyStore) -> None:
    async with open_persistent(store) as svc:
        s = (await svc.create_session(create_req("Hello"))).session_id
    store = await reopen(store)
    try:
        async with open_persistent(store, builder=make_builder(first_id=100)) as svc2:
            assert s not in svc2.inner.statistics().live
            assert await svc2.load_persisted(s) is not None
            await svc2.archive(s)
            assert await store.load(s) is None
            with pytest.raises(SessionNotFound):
                await svc2.read(s)
            with pytest.raises(SessionNotFound):
                await svc2.archive(s)
    finally:
        await close_store(store)


# -- read, list, restart -------------------------------------------------------------


async def test_read_falls_back_to_the_store_after_restart(store: AnyStore) -> None:
    async with open_persistent(store) as svc:
        s = (await svc.create_session(create_req("Hello", system_prompt="sys"))).session_id
        await svc.start_turn(s, turn_req("again"))
        live_view = await svc.read(s)
    store = await reopen(store)
    try:
        async with open_persistent(store, builder=make_builder(first_id=100)) as svc2:
            view = await svc2.read(s)
            assert view == live_view  # idle when saved, so even is_active agrees
            assert view.state.is_active is False
            assert view.state.message_count == 5
            assert view.state.last_assistant_text == "echo: again"
            assert view.billing.usage == scripted_usage("Hello") + scripted_usage("again")
            [summary] = await svc2.list()
            assert (summary.session_id, summary.is_active) == (s, False)
            # Store-only sessions are readable, not live.
            with pytest.raises(SessionNotFound):
                await svc2.start_turn(s, turn_req("no"))
            with pytest.raises(SessionNotFound):
                await svc2.interrupt(s)
            with pytest.raises(SessionNotFound):
                await svc2.export_session(s)
    finally:
        await close_store(store)


def _stored(n: int, updated_at: int) -> Session:
    usage = Usage(1, 2)
    return Session(
        id=SessionId.from_int(n),
        created_at=updated_at,
        updated_at=updated_at,
        messages=(UserMessage(f"stored {n}"), AssistantMessage(f"reply {n}", usage)),
        usage=usage,
        revision=2,
    )


async def test_list_merges_live_and_stored_then_pages(store: AnyStore) -> None:
    # Stored only (as after a restart): X1 at 2, X2 at 5, X3 at 9.
    x1, x2, x3 = _stored(0x101, 2), _stored(0x102, 5), _stored(0x103, 9)
    for session in (x1, x2, x3):
        await store.save(session)
    points = HoldPoints()
    builder = make_builder(points=points, clock=LogicalClock())
    async with (
        trio.open_nursery() as nursery,
        open_persistent(store, builder=builder, points=points) as svc,
    ):
        # Live, deferred: L1 at 1, L2 at 2, L3 at 3 (each also saved, at the same time).
        l1, l2, l3 = [
            (await svc.create_session(create_req(f"L{n}", defer=True))).session_id
            for n in (1, 2, 3)
        ]
        # L1 runs a turn parked after its user message (tick 4): live is newer than stored.
        hold = points.hold("agent.step", l1, skip=1)
        turn = spawn(nursery, lambda: svc.start_turn(l1, turn_req("t")))
        await reached(hold)

        everything = await svc.list()
        ids = [s.session_id for s in everything]
        # Newest updated_at first; ties (L2 and X1 at 2) by id; L1's stale stored copy hidden.
        assert ids == [x3.id, x2.id, l1, l3, l2, x1.id]
        assert [s.updated_at for s in everything] == [9, 5, 4, 3, 2, 2]
        assert [s.is_active for s in everything] == [False, False, True, False, False, False]
        by_id = {s.session_id: s for s in everything}
        assert by_id[l1].message_count == 1  # the live state, not the stored one (0)
        assert by_id[x2.id].message_count == 2
        assert by_id[x2.id].total_tokens == 3

        for offset in range(8):
            for limit in [None, *range(8)]:
                page = await svc.list(SessionQuery(limit=limit, offset=offset))
                stop = None if limit is None else offset + limit
                assert [s.session_id for s in page] == ids[offset:stop], (offset, limit)

        hold.release()
        await turn.wait()
        assert turn.result().text == "echo: t"
        # After the turn (ticks 4, 5) L1 ties X2 at 5 and comes first by id.
        after = [s.session_id for s in await svc.list()]
        assert after == [x3.id, l1, x2.id, l3, l2, x1.id]


async def test_sqlite_restart_keeps_every_session(tmp_path: Path) -> None:
    path = tmp_path / "restart.db"
    first = SqliteStore(path)
    try:
        async with open_persistent(first) as svc:
            a = (await svc.create_session(create_req("A", system_prompt="sys"))).session_id
            await svc.start_turn(a, turn_req("A2"))
            b = (await svc.create_session(create_req("B", defer=True))).session_id
            exported = {a: await svc.export_session(a), b: await svc.export_session(b)}
            listed = await svc.list()
    finally:
        await first.aclose()

    second = SqliteStore(path)
    try:
        builder = make_builder(first_id=100, clock=LogicalClock(start=1000))
        async with open_persistent(second, builder=builder) as svc2:
            for s, session in exported.items():
                assert await svc2.load_persisted(s) == session
            assert await svc2.list() == listed
            c = (await svc2.create_session(create_req("C"))).session_id
            assert [s.session_id for s in await svc2.list()] == [c, b, a]
    finally:
        await second.aclose()


# -- capacity, shutdown, lifetime ------------------------------------------------------


class ExplodingBuilder:
    """A builder with a bug: it raises a plain exception, not a SessionError."""

    async def build_agent(self, req: CreateSessionRequest) -> ScriptedAgent:
        await trio.lowlevel.checkpoint()
        raise RuntimeError("boom")


async def test_failed_build_gives_its_capacity_back(kind: ServiceKind, tmp_path: Path) -> None:
    builder = make_builder(fail_build=lambda req: req.prompt.startswith("fail"))
    async with open_service(kind, tmp_path, builder=builder, max_sessions=1) as svc:
        for i in range(3):  # more failures than there is capacity
            with pytest.raises(AgentError) as info:
                await svc.create_session(create_req(f"fail {i}"))
            assert "build failed" in str(info.value)
            assert live_part(svc).live_count == 0
        ok = (await svc.create_session(create_req("works"))).session_id
        with pytest.raises(AgentError, match=r"^Max sessions reached \(1/1\)$"):
            await svc.create_session(create_req("one too many"))
        assert [s.session_id for s in await svc.list()] == [ok]
        if isinstance(svc, PersistentSessionService):
            assert [m.id for m in await raw_store(svc).list()] == [ok]


async def test_builder_exception_becomes_agent_error_and_frees_capacity(
    store: AnyStore,
) -> None:
    async with PersistentSessionService(ExplodingBuilder(), 1, store) as svc:
        for _ in range(2):
            with pytest.raises(AgentError, match="build failed: boom"):
                await svc.create_session(create_req("x"))
        assert svc.inner.live_count == 0
        assert await store.list() == []


async def test_shutdown_stops_host_loops_but_keeps_rows(store: AnyStore) -> None:
    async with trio.open_nursery() as nursery, open_persistent(store) as svc:
        host, loop = await host_loop(nursery, svc)
        idle = (await svc.create_session(create_req("idle"))).session_id
        assert svc.inner.statistics().running_tasks == {host, idle}

        await svc.shutdown()
        assert svc.inner.statistics().running_tasks == frozenset()
        assert svc.inner.statistics().live == frozenset()
        await loop.wait()
        assert_cancelled(loop)
        # Not archived: the stored copies stay, and reads fall back to them.
        assert await stored_contents(svc, host) == ["h", "echo: h"]
        assert await stored_contents(svc, idle) == ["idle", "echo: idle"]
        view = await svc.read(host)
        assert view.state.is_active is False
        assert {s.session_id for s in await svc.list()} == {host, idle}
        assert svc.gate_armed(host) is None


async def test_context_exit_stops_every_session_task(kind: ServiceKind, tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        async with open_service(kind, tmp_path) as svc:
            live = live_part(svc)
            idle = (await svc.create_session(create_req("idle"))).session_id
            host = spawn(nursery, lambda: svc.create_session(create_req("h", host_mode=True)))
            await settle()  # the host loop is built (id 2) and serving
            deferred = (await svc.create_session(create_req("d", defer=True))).session_id
            await settle()
            assert live.statistics().running_tasks == {idle, sid(2), deferred}
            assert not host.done.is_set()
        assert live.statistics().running_tasks == frozenset()
        assert live.live_count == 0
        await host.wait()
        assert_cancelled(host)


async def test_leaving_with_the_caller_cancelled_still_shuts_down(
    kind: ServiceKind, tmp_path: Path
) -> None:
    # [SHUTDOWN]: a block left because its caller was cancelled (Ctrl-C) shuts the service
    # down as a plain exit does: every session task ended, rows kept, nothing raised but
    # the cancellation itself, which the caller's own scope absorbs.
    with trio.CancelScope() as caller:
        async with open_service(kind, tmp_path) as svc:
            live = live_part(svc)
            idle = (await svc.create_session(create_req("idle"))).session_id
            assert live.statistics().running_tasks == {idle}
            caller.cancel()
            await trio.lowlevel.checkpoint()  # the cancellation lands here, inside the block
    assert caller.cancelled_caught
    assert live.statistics().running_tasks == frozenset()
    assert live.live_count == 0


# Regression: a create whose build was in flight when the service exited raised a raw
# RuntimeError and left a phantom session (registered, counted, with no task).
async def test_create_racing_service_exit_leaves_nothing_behind(
    kind: ServiceKind, tmp_path: Path
) -> None:
    points = HoldPoints()
    build = points.hold("agent.step", sid(1))  # the builder's point, before registration
    async with trio.open_nursery() as nursery:
        async with open_service(kind, tmp_path, points=points) as svc:
            live = live_part(svc)
            create = spawn(nursery, lambda: svc.create_session(create_req("late")))
            await reached(build)
        build.release()  # the service has exited; the build now completes
        await create.wait()
    assert isinstance(create.error, SessionError), f"got {create.error!r}"
    assert live.statistics().live == frozenset()
    assert live.statistics().running_tasks == frozenset()
    assert live.live_count == 0


async def test_wait_session_registered(kind: ServiceKind, tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery, open_service(kind, tmp_path) as svc:
        waiter = spawn(nursery, svc.wait_session_registered)
        await settle()
        assert not waiter.done.is_set()
        # A host-mode create never returns while its loop serves: the waiter is how to know.
        host = spawn(nursery, lambda: svc.create_session(create_req("h", host_mode=True)))
        await waiter.wait()
        assert waiter.error is None
        [summary] = await svc.list()
        assert summary.session_id == sid(1)
        assert summary.is_active is True
        assert not host.done.is_set()

        # It waits for the *next* registration, not one that already happened.
        late = spawn(nursery, svc.wait_session_registered)
        await settle()
        assert not late.done.is_set()
        await svc.create_session(create_req("next"))
        await late.wait()
        assert late.error is None
        await svc.archive(sid(1))
        await host.wait()
        assert_cancelled(host)


async def test_export_session(store: AnyStore) -> None:
    async with open_persistent(store) as svc:
        s = (await svc.create_session(create_req("one", system_prompt="sys"))).session_id
        await svc.start_turn(s, turn_req("two"))
        exported = await svc.export_session(s)
        assert exported.id == s
        assert [(m.role, m.content) for m in exported.messages] == [
            ("system", "sys"),
            ("user", "one"),
            ("assistant", "echo: one"),
            ("user", "two"),
            ("assistant", "echo: two"),
        ]
        assert exported.revision == 4
        assert exported.usage == scripted_usage("one") + scripted_usage("two")
        assert await svc.load_persisted(s) == exported
        assert await svc.export_session(str(s)) == exported
        with pytest.raises(SessionNotFound):
            await svc.export_session(SessionId.from_int(999))
        await svc.archive(s)
        with pytest.raises(SessionNotFound):
            await svc.export_session(s)


async def test_corrupt_sqlite_row_is_contained(tmp_path: Path) -> None:
    path = tmp_path / "damaged.db"
    first = SqliteStore(path)
    try:
        async with open_persistent(first) as svc:
            bad = (await svc.create_session(create_req("bad"))).session_id
            good = (await svc.create_session(create_req("good"))).session_id
    finally:
        await first.aclose()

    with contextlib.closing(sqlite3.connect(path)) as conn:
        changed = conn.execute(
            "UPDATE sessions SET body = ? WHERE id = ?", ("{not json at all", str(bad))
        ).rowcount
        conn.commit()
    assert changed == 1

    second = SqliteStore(path)
    try:
        async with open_persistent(second, builder=make_builder(first_id=100)) as svc2:
            for attempt in (svc2.read, svc2.load_persisted):
                with pytest.raises(SessionStoreError) as info:
                    await attempt(bad)
                assert info.value.code == "SESSION_STORE_ERROR"
                assert str(bad) in str(info.value)
                assert info.value.session_id == bad
            # Nothing else is hidden or broken.
            assert (await svc2.read(good)).state.last_assistant_text == "echo: good"
            stored_good = await svc2.load_persisted(good)
            assert stored_good is not None and stored_good.message_count == 2
            assert {s.session_id for s in await svc2.list()} == {bad, good}
            new = (await svc2.create_session(create_req("new"))).session_id
            assert {s.session_id for s in await svc2.list()} == {bad, good, new}
            # The damaged row can still be archived away.
            await svc2.archive(bad)
            with pytest.raises(SessionNotFound):
                await svc2.read(bad)
            assert {s.session_id for s in await svc2.list()} == {good, new}
    finally:
        await second.aclose()
