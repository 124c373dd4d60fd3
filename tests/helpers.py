"""Shared factories for the service tests: plain functions and small classes, no fixtures.

- ``make_builder`` / ``create_req`` / ``turn_req``: deterministic agents and requests.
- ``open_service``: an ephemeral, persistent or seed service as ``async with``.
- ``HoldPoints``: a ``SchedulingPoints`` that parks a chosen task at a chosen
  point (kind + session) until the test releases it, so a test can run
  ``archive`` to completion in between and force one exact interleaving.
- ``spawn``: run a call in a nursery and keep its result or ``Exception``.
- ``violations``: every way an archived session can still be seen.
- ``adapter_with``: the reference's adapter (or a variant's) as a command that
  runs a few lines of Python ahead of each line it handles: an adapter that
  misbehaves at a chosen moment.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from typing import Generic, Literal, TypeVar, cast

import pytest
import trio
import trio.testing

from meerkat_ref import (
    CreateSessionRequest,
    EphemeralSessionService,
    InitialTurnPolicy,
    LogicalClock,
    MemoryStore,
    PersistentSessionService,
    ScriptedAgentBuilder,
    SessionError,
    SessionId,
    SessionNotFound,
    SqliteStore,
    StartTurnRequest,
)
from meerkat_ref._seams import DEFAULT_POINTS, SchedulingPoints
from meerkat_ref.oracle.engine import RunOutcome
from meerkat_ref.store import BUILTIN_KINDS, store_kind
from meerkat_ref.testing import SeedPersistentSessionService, Window, counter_ids, raw_store

T = TypeVar("T")

ADAPTER_TIMEOUT = 120.0
"""How long a test lets a port's adapter process take to answer any one line, in seconds.

A guard against a hang, never what a test measures: the CLI's default (10 s)
suits a user's machine, but the reference adapter's first answer (its
imports) took over 5 s on a CI machine at load 12, and a run that timed out
there would be a red CI for nothing.  Only a test of the timeout itself sets
a shorter one.
"""

AnyStore = MemoryStore | SqliteStore
AnyService = EphemeralSessionService | PersistentSessionService
ServiceKind = Literal["ephemeral", "persistent-memory", "persistent-sqlite"]
StoreKind = Literal["memory", "sqlite"]

SERVICE_KINDS: list[ServiceKind] = ["ephemeral", "persistent-memory", "persistent-sqlite"]
STORE_KINDS: list[StoreKind] = cast(list[StoreKind], list(BUILTIN_KINDS))  # the registry's

MODEL = "scripted-model"


def sid(n: int) -> SessionId:
    """The id the n-th build of a ``counter_ids()`` builder gets."""
    return SessionId.from_int(n)


def make_builder(
    *,
    points: SchedulingPoints = DEFAULT_POINTS,
    turn_delay: float = 0.0,
    clock: LogicalClock | None = None,
    first_id: int = 1,
    fail_build: Callable[[CreateSessionRequest], bool] | None = None,
) -> ScriptedAgentBuilder:
    return ScriptedAgentBuilder(
        turn_delay,
        clock=clock if clock is not None else LogicalClock(),
        points=points,
        id_factory=counter_ids(first_id),
        fail_build=fail_build,
    )


def create_req(
    prompt: str = "hello",
    *,
    host_mode: bool = False,
    defer: bool = False,
    system_prompt: str | None = None,
) -> CreateSessionRequest:
    return CreateSessionRequest(
        model=MODEL,
        prompt=prompt,
        system_prompt=system_prompt,
        host_mode=host_mode,
        initial_turn=InitialTurnPolicy.DEFER if defer else InitialTurnPolicy.RUN_IMMEDIATELY,
    )


def turn_req(prompt: str = "again", *, host_mode: bool = False) -> StartTurnRequest:
    return StartTurnRequest(prompt=prompt, host_mode=host_mode)


async def close_store(store: AnyStore) -> None:
    if isinstance(store, SqliteStore):
        await store.aclose()


@contextlib.asynccontextmanager
async def open_service(
    kind: ServiceKind,
    directory: Path,
    *,
    builder: ScriptedAgentBuilder | None = None,
    max_sessions: int = 10,
    points: SchedulingPoints = DEFAULT_POINTS,
) -> AsyncIterator[AnyService]:
    """An ephemeral or persistent service (with a fresh store), entered and exited."""
    builder = builder if builder is not None else make_builder(points=points)
    if kind == "ephemeral":
        async with EphemeralSessionService(builder, max_sessions, points=points) as eph:
            yield eph
        return
    async with (
        store_kind(kind.removeprefix("persistent-")).open(directory) as store,
        PersistentSessionService(builder, max_sessions, store, points=points) as svc,
    ):
        yield svc


@contextlib.asynccontextmanager
async def open_persistent(
    store: AnyStore,
    *,
    builder: ScriptedAgentBuilder | None = None,
    max_sessions: int = 10,
    points: SchedulingPoints = DEFAULT_POINTS,
    windows: Iterable[Window] | None = None,
) -> AsyncIterator[PersistentSessionService]:
    """The reference (``windows=None``) or the seed variant with ``windows`` open."""
    builder = builder if builder is not None else make_builder(points=points)
    svc: PersistentSessionService
    if windows is None:
        svc = PersistentSessionService(builder, max_sessions, store, points=points)
    else:
        svc = SeedPersistentSessionService(
            builder, max_sessions, store, points=points, windows=windows
        )
    async with svc:
        yield svc


# -- forcing interleavings ------------------------------------------------------


class Hold:
    """One parked call: the first call matching (kinds, session) after ``skip`` others."""

    def __init__(
        self, kinds: tuple[str, ...], session_id: SessionId | None, *, skip: int, shield: bool
    ) -> None:
        self.kinds = kinds
        self.session_id = session_id
        self.skip = skip
        self.shield = shield
        self.reached = trio.Event()  # the held task is parked
        self.resumed = trio.Event()  # the held task went on past the point
        self.cancelled = False  # the held task was cancelled while parked
        self._released = trio.Event()

    def matches(self, kind: str, session_id: SessionId | None) -> bool:
        return kind in self.kinds and (self.session_id is None or session_id == self.session_id)

    def release(self) -> None:
        self._released.set()

    @property
    def released(self) -> bool:
        return self._released.is_set()

    async def park(self) -> None:
        self.reached.set()
        try:
            if self.shield:
                with trio.CancelScope(shield=True):
                    await self._released.wait()
            else:
                await self._released.wait()
        except trio.Cancelled:
            self.cancelled = True
            raise
        self.resumed.set()


class HoldPoints:
    """``SchedulingPoints`` that parks chosen calls; otherwise a plain checkpoint.

    ``hold(kind, session_id, skip=n)`` parks the (n+1)-th matching call made
    after it is armed; every other call passes.  ``kind`` may be a tuple: the
    first point of any of those kinds matches (the same step reached through
    different paths, e.g. the seed's ``map.acquire`` and the reference's
    ``gate.acquire`` after a create's turn).  ``shield=True`` parks it
    uncancellably (a step that cannot be interrupted half-way, such as a
    store write already handed to a thread).  ``log`` records every point.
    """

    def __init__(self) -> None:
        self._holds: list[Hold] = []
        self.log: list[tuple[str, SessionId | None]] = []

    def hold(
        self,
        kind: str | tuple[str, ...],
        session_id: SessionId | None = None,
        *,
        skip: int = 0,
        shield: bool = False,
    ) -> Hold:
        kinds = (kind,) if isinstance(kind, str) else kind
        hold = Hold(kinds, session_id, skip=skip, shield=shield)
        self._holds.append(hold)
        return hold

    def release_all(self) -> None:
        for hold in self._holds:
            hold.release()
        self._holds.clear()

    def count(self, kind: str, session_id: SessionId | None = None) -> int:
        return sum(1 for k, s in self.log if k == kind and (session_id is None or s == session_id))

    async def point(self, kind: str, session_id: SessionId | None = None) -> None:
        self.log.append((kind, session_id))
        for hold in self._holds:
            if hold.matches(kind, session_id):
                if hold.skip > 0:
                    hold.skip -= 1
                    continue
                self._holds.remove(hold)
                await hold.park()
                break
        await trio.lowlevel.checkpoint()


# -- background calls -------------------------------------------------------------


class Outcome(Generic[T]):
    """The result of a call run by ``spawn``: a value or the ``Exception`` it raised."""

    def __init__(self) -> None:
        self.done = trio.Event()
        self.value: T | None = None
        self.error: Exception | None = None

    def result(self) -> T:
        assert self.done.is_set(), "the call has not finished"
        if self.error is not None:
            raise self.error
        return cast(T, self.value)

    async def wait(self) -> Outcome[T]:
        await self.done.wait()
        return self


def spawn(nursery: trio.Nursery, call: Callable[[], Awaitable[T]]) -> Outcome[T]:
    """Start ``call()`` in ``nursery``; its exception (if any) is kept, not raised."""
    outcome: Outcome[T] = Outcome()

    async def run() -> None:
        try:
            outcome.value = await call()
        except Exception as exc:
            outcome.error = exc
        finally:
            outcome.done.set()

    nursery.start_soon(run)
    return outcome


async def settle() -> None:
    """Let every task run until all are blocked and no store call is in a worker thread.

    ``wait_all_tasks_blocked`` counts a task waiting for a thread (the SQLite
    store's calls) as blocked, so on its own it can return mid-write.  Taking
    every token of the default thread limiter waits for those threads to
    report back; then the tasks they wake get to run too.  No clock involved.
    """
    limiter = trio.to_thread.current_default_thread_limiter()
    while True:
        await trio.testing.wait_all_tasks_blocked()
        if limiter.borrowed_tokens == 0:
            return
        borrowers = [object() for _ in range(int(limiter.total_tokens))]
        for borrower in borrowers:
            await limiter.acquire_on_behalf_of(borrower)
        for borrower in borrowers:
            limiter.release_on_behalf_of(borrower)


async def reached(hold: Hold) -> None:
    """Wait until ``hold`` has parked its task; fail (not hang) if nothing ever reaches it.

    Only for tests without timers: once every task is blocked, a hold not yet
    reached never will be.
    """
    await settle()
    assert hold.reached.is_set(), f"no task reached {hold.kinds} for {hold.session_id}"


# -- what an archived session must not show ----------------------------------------


async def violations(svc: PersistentSessionService, session_id: SessionId) -> set[str]:
    """Every way ``session_id`` can still be seen; empty iff it is archived for good.

    ``store row``: the raw store has it; ``load_persisted``, ``read``, ``list``:
    the service shows it; ``running task``: its session task has not ended;
    ``live``: it is still registered.
    """
    found: set[str] = set()
    if await raw_store(svc).load(session_id) is not None:
        found.add("store row")
    if await svc.load_persisted(session_id) is not None:
        found.add("load_persisted")
    try:
        await svc.read(session_id)
        found.add("read")
    except SessionNotFound:
        pass
    if any(s.session_id == session_id for s in await svc.list()):
        found.add("list")
    if session_id in svc.inner.statistics().running_tasks:
        found.add("running task")
    if session_id in svc.inner.statistics().live:
        found.add("live")
    return found


async def assert_healthy(svc: AnyService) -> None:
    """A normal create and turn still work, and read shows them."""
    result = await svc.create_session(create_req("still fine"))
    assert result.text == "echo: still fine"
    again = await svc.start_turn(result.session_id, turn_req("and again"))
    assert again.text == "echo: and again"
    view = await svc.read(result.session_id)
    assert view.state.message_count == 4
    assert view.state.is_active is False


def error_of(outcome: Outcome[T]) -> SessionError:
    """The ``SessionError`` a background call ended with (fails if it had another end)."""
    assert outcome.done.is_set(), "the call has not finished"
    assert isinstance(outcome.error, SessionError), (
        f"expected a SessionError, got {outcome.error!r}"
    )
    return outcome.error


def live_part(svc: AnyService) -> EphemeralSessionService:
    """The ephemeral service holding the live sessions (the service itself, or its inner)."""
    return svc.inner if isinstance(svc, PersistentSessionService) else svc


def crashed_run() -> RunOutcome:
    """A run of ``crash-restart`` on the reference that crashes at its second step.

    The report tests need a run with a crash in it, violating or not.
    """
    from meerkat_ref.oracle.engine import Choice, ReplayStrategy, get_scenario, run_schedule
    from meerkat_ref.variants import Variant

    async def main() -> RunOutcome:
        async with Variant.parse("reference").target() as target:
            strategy = ReplayStrategy([Choice("c:archive-2"), Choice(crash=True)])
            return await run_schedule(target, get_scenario("crash-restart"), strategy)

    return trio.run(main)


def adapter_with(tmp_path: Path, name: str, before: str, variant: str = "reference") -> str:
    """The adapter of ``variant``, running ``before`` (Python) ahead of each line it handles.

    ``msg`` is the line read, ``seen`` every line so far (this one last);
    ``os``, ``sys``, ``json`` and ``stdout_emit`` are at hand.  Returns the
    command line that starts it.
    """
    import shlex
    import sys

    script = tmp_path / name
    script.write_text(
        "import json, os, sys, trio\n"
        "from meerkat_ref.oracle.server import Server, stdin_lines, stdout_emit\n"
        "from meerkat_ref.variants import Variant\n"
        "async def main():\n"
        "    seen = []\n"
        f"    async with Variant.parse({variant!r}).target() as t:\n"
        f"        a = Server(t, stdout_emit, {variant!r})\n"
        "        async for line in stdin_lines():\n"
        "            msg = json.loads(line)\n"
        "            seen.append(msg)\n"
        + "".join("            " + row + "\n" for row in before.strip().splitlines())
        + "            if not await a.handle(line):\n"
        "                break\n"
        "trio.run(main)\n"
    )
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}"


def skip_outside_ci(reason: str) -> None:
    """Skip on a developer's machine; fail in CI, whose ``.ci/run`` installs what is missing.

    CI machines set ``CI``: there a skip would hide that what the test checks was
    never checked, so it is a failure instead.
    """
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (in CI: .ci/run installs it)", pytrace=False)
    pytest.skip(reason, allow_module_level=True)
