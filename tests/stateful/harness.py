"""Drive a real service side by side with the pure model, one operation at a time.

A ``Harness`` owns one service (ephemeral, or persistent over a ``MemoryStore``
or a ``SqliteStore``), a ``LogicalClock`` and a counter id factory shared across
restarts, and a nursery for calls that stay pending (host-mode turns).  Every
call runs as its own task; after it the harness waits for quiescence (every
task blocked and no store call in flight), so a call that has not returned by
then is ``Pending()``, exactly as the model says.

``check_ops(ops, backend)`` runs a list of operations against both and raises
``AssertionError`` at the first difference; a failing Hypothesis example
prints a line to paste into a regression test.  ``replay(ops, backend)`` only
runs them and returns what the service answered.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import trio
import trio.testing

from meerkat_ref import (
    CreateSessionRequest,
    EphemeralSessionService,
    LogicalClock,
    MemoryStore,
    PersistentSessionService,
    SessionError,
    SessionFilter,
    SessionId,
    SessionMeta,
    SessionQuery,
    SqliteStore,
)
from meerkat_ref import Session as ServiceSession
from meerkat_ref.agent import ScriptedAgentBuilder
from meerkat_ref.registry import _values as values
from meerkat_ref.registry import operation
from meerkat_ref.store import SessionStore
from meerkat_ref.testing import counter_ids

from . import _model as model
from ._model import (
    Archive,
    Crashed,
    Create,
    CreatesAtOnce,
    Err,
    List,
    Many,
    ObserveStore,
    Ok,
    Op,
    Pending,
    Read,
    Restart,
    Result,
    StartTurn,
    State,
    TurnsAtOnce,
)

Service = EphemeralSessionService | PersistentSessionService
ServiceFactory = Callable[[ScriptedAgentBuilder, int, SessionStore | None], Service]
Completed = tuple[tuple[str, Result], ...]

MODEL = "meerkat_ref.models.sessions"


class CheckFailed(AssertionError):
    """The service and the model disagree, or an invariant broke."""


def expect(ok: bool, message: str) -> None:
    if not ok:
        raise CheckFailed(message)


# -- backends ----------------------------------------------------------------------


def _ephemeral(builder: ScriptedAgentBuilder, capacity: int, _: SessionStore | None) -> Service:
    return EphemeralSessionService(builder, capacity)


def _persistent(
    builder: ScriptedAgentBuilder, capacity: int, store: SessionStore | None
) -> Service:
    assert store is not None
    return PersistentSessionService(builder, capacity, store)


@dataclass(frozen=True)
class Backend:
    """A service factory and the store it runs on (``None``: ephemeral)."""

    name: str
    store: str | None  # "memory", "sqlite" or None
    make: ServiceFactory

    @property
    def persistent(self) -> bool:
        return self.store is not None


MEMORY = Backend("memory", "memory", _persistent)
SQLITE = Backend("sqlite", "sqlite", _persistent)
EPHEMERAL = Backend("ephemeral", None, _ephemeral)
BACKENDS = {b.name: b for b in (MEMORY, SQLITE, EPHEMERAL)}


# -- test doubles --------------------------------------------------------------------


class _PairPoints:
    """Trio checkpoints, except the one right after the builder takes an id."""

    skip_next = False

    async def point(self, kind: str, session_id: SessionId | None = None) -> None:
        if self.skip_next:
            self.skip_next = False
            return
        await trio.lowlevel.checkpoint()


class PairedBuilder(ScriptedAgentBuilder):
    """The scripted builder with its switch moved from between id and clock to before both.

    So concurrent creates take ids and creation ticks in the same order, and
    the n-th id gets the n-th tick, as the model (one create after another)
    says.  A create still switches inside the build, so a capacity check made
    after the build would be seen to overshoot.
    """

    def __init__(self, clock: LogicalClock, ids: Callable[[], SessionId]) -> None:
        self._pair = _PairPoints()
        self._ids = ids
        super().__init__(clock=clock, points=self._pair, id_factory=self._next_id)

    def _next_id(self) -> SessionId:
        self._pair.skip_next = True  # the builder's very next call is its point
        return self._ids()

    async def build_agent(self, req: CreateSessionRequest) -> Any:
        await trio.lowlevel.checkpoint()
        return await super().build_agent(req)


_EVERYTHING = SessionFilter()


class CountingStore:
    """Passes every call to ``inner`` and counts calls in flight, for quiescence.

    A task waiting for SQLite's worker thread counts as blocked, so waiting
    for every task to block is not enough: we also wait for this to reach 0.
    """

    def __init__(self, inner: SessionStore) -> None:
        self.inner = inner
        self.in_flight = 0
        self._idle = trio.Event()

    @contextlib.asynccontextmanager
    async def _counted(self) -> AsyncIterator[None]:
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1
            if self.in_flight == 0:
                self._idle.set()

    async def wait_idle(self) -> None:
        while self.in_flight:
            self._idle = trio.Event()
            await self._idle.wait()

    async def save(self, session: ServiceSession) -> None:
        async with self._counted():
            await self.inner.save(session)

    async def load(self, session_id: SessionId) -> ServiceSession | None:
        async with self._counted():
            return await self.inner.load(session_id)

    async def list(self, filter: SessionFilter = _EVERYTHING) -> list[SessionMeta]:
        async with self._counted():
            return await self.inner.list(filter)

    async def delete(self, session_id: SessionId) -> None:
        async with self._counted():
            await self.inner.delete(session_id)

    async def exists(self, session_id: SessionId) -> bool:
        async with self._counted():
            return await self.inner.exists(session_id)


# -- service values as model values: the registry's one codec ------------------------

stored = values.model_session
view = values.model_view
summary = values.model_summary


def multiset(results: Sequence[Result]) -> list[str]:
    return sorted(map(repr, results))


def same(expected: Result, actual: Result) -> bool:
    if isinstance(expected, Many) and isinstance(actual, Many):
        return multiset(expected.results) == multiset(actual.results)
    return expected == actual


# -- the harness ----------------------------------------------------------------------


CallFn = Callable[[], Awaitable[Result]]


@dataclass(eq=False)
class _Call:
    session: str | None = None  # set once the call is known to be pending
    result: Result | None = None
    failure: CheckFailed | None = None
    dropped: bool = False  # its process died: it will never answer


@dataclass
class Harness:
    backend: Backend
    capacity: int
    path: str | None = None  # the SQLite file
    clock: LogicalClock = field(default_factory=LogicalClock)
    builder: PairedBuilder = field(init=False)
    raw: SessionStore | None = None
    store: CountingStore | None = None
    svc: Any = None
    pending: dict[str, _Call] = field(default_factory=dict)
    completed: list[tuple[str, Result]] = field(default_factory=list)
    _stack: contextlib.AsyncExitStack | None = None
    _calls: trio.Nursery | None = None

    def __post_init__(self) -> None:
        self.builder = PairedBuilder(self.clock, counter_ids())

    # lifetime: open a process, close it ("restart" = close, then open again)

    async def open(self) -> None:
        if self.backend.store == "memory" and self.raw is None:
            self.raw = MemoryStore()
        elif self.backend.store == "sqlite":
            assert self.path is not None
            self.raw = await SqliteStore.open(self.path)
        self.store = None if self.raw is None else CountingStore(self.raw)
        stack = contextlib.AsyncExitStack()
        self.svc = await stack.enter_async_context(
            self.backend.make(self.builder, self.capacity, self.store))
        self._calls = await stack.enter_async_context(trio.open_nursery())
        self._stack = stack

    async def close(self) -> None:
        """The process dies: callers are dropped, the service stops, the store stays."""
        for call in self.pending.values():
            call.dropped = True
        self.pending.clear()
        if self._calls is not None:
            self._calls.cancel_scope.cancel()
        if self._stack is not None:
            await self._stack.aclose()
        self._stack = self._calls = None
        if isinstance(self.raw, SqliteStore):
            await self.raw.aclose()

    @property
    def inner(self) -> EphemeralSessionService:
        svc = self.svc
        inner: EphemeralSessionService = (
            svc.inner if isinstance(svc, PersistentSessionService) else svc)
        return inner

    async def settle(self) -> None:
        """Quiescence: every task blocked and no store call in flight."""
        while True:
            await trio.testing.wait_all_tasks_blocked()
            if self.store is None or self.store.in_flight == 0:
                return
            await self.store.wait_idle()

    # calls: each runs as its own task; what has not returned at quiescence is pending

    async def _run(self, call: _Call, fn: CallFn) -> None:
        try:
            result = await fn()
        except SessionError as exc:
            result = Err(exc.code)
        except CheckFailed as exc:  # handed to the driver, not to the nursery
            call.failure = exc
            result = Err("CHECK_FAILED")
        call.result = result
        if call.session is not None and not call.dropped:
            self.completed.append((call.session, result))
            del self.pending[call.session]

    async def _calls_at_once(self, fns: Sequence[CallFn], session: str | None = None,
                             may_pend: bool = False) -> list[Result]:
        """Start every call, wait for quiescence, and return what each answered.

        A call that may pend (a create or a turn) and has not returned is
        ``Pending()``, recorded under ``session`` (for a create: the session it
        registered); any other call must have returned.
        """
        assert self._calls is not None
        before = self.inner.statistics().live
        calls = [_Call() for _ in fns]
        for call, fn in zip(calls, fns, strict=True):
            self._calls.start_soon(self._run, call, fn)
        await self.settle()
        results: list[Result] = []
        for call in calls:
            if call.failure is not None:
                raise call.failure
            if call.result is not None:
                results.append(call.result)
                continue
            expect(may_pend, "the call did not return at quiescence")
            if session is None:
                (new,) = self.inner.statistics().live - before
                session = str(new)
            expect(session not in self.pending, f"two pending calls for {session}")
            call.session = session
            self.pending[session] = call
            results.append(Pending())
        return results

    async def _call(self, fn: CallFn) -> Result:
        return (await self._calls_at_once([fn]))[0]

    def _registry_call(self, op: Op) -> CallFn:
        """The service call ``op`` stands for, from the operation registry (the one list)."""
        entry = operation(op)

        async def call() -> Result:
            _, value = await entry.perform(self.svc, op)
            return Ok(value)

        return call

    async def apply(self, op: Op) -> tuple[Result, Completed]:
        """Make the call ``op`` stands for, wait for quiescence, and report.

        Returns the call's result and the pending calls that completed meanwhile.
        """
        self.completed = []
        result = await self._apply(op)
        await self.settle()
        return result, tuple(sorted(self.completed))

    async def _apply(self, op: Op) -> Result:
        call = self._registry_call
        match op:
            case Create():
                return (await self._calls_at_once([call(op)], may_pend=True))[0]
            case CreatesAtOnce(count=count, prompt=prompt):
                fns = [call(Create(prompt, defer=True)) for _ in range(count)]
                return Many(tuple(await self._calls_at_once(fns)))
            case StartTurn(id=n):
                return (await self._calls_at_once([call(op)], model.sid(n), may_pend=True))[0]
            case TurnsAtOnce(id=n, prompt=prompt, host_mode=host, count=count):
                fns = [call(StartTurn(n, prompt, host)) for _ in range(count)]
                return Many(tuple(await self._calls_at_once(fns, model.sid(n), may_pend=host)))
            case Archive(id=n):
                archive = call(op)

                async def archive_and_check() -> Result:
                    result = await archive()
                    # [ARCHIVE-STOP] checked as archive returns, before anything else runs
                    expect(SessionId.from_int(n) not in self.inner.statistics().running_tasks,
                           f"archive({n}) returned but its session task still runs")
                    return result

                return await self._call(archive_and_check)
            case Restart():
                for name in sorted(self.pending):
                    self.completed.append((name, Crashed()))
                await self.close()
                await self.open()
                return Ok(None)
            case ObserveStore():
                return Ok(await self.observe_store())
        if operation(op).call is not None:  # every other call: as the registry makes it
            return await self._call(call(op))
        raise TypeError(f"not an operation: {op!r}")

    # observation

    async def observe_store(self) -> dict[str, model.Session]:
        """The store's contents, read around the service (no scheduling points)."""
        if isinstance(self.raw, MemoryStore):
            return {str(k): stored(v) for k, v in self.raw.snapshot().items()}
        if isinstance(self.raw, SqliteStore):
            out = {}
            for meta in await self.raw.list():
                found = await self.raw.load(meta.id)
                assert found is not None
                out[str(meta.id)] = stored(found)
            return out
        return {}

    async def check(self, state: State) -> None:
        """Compare everything observable with the model's state; check the invariants."""
        ids = {SessionId.parse(i) for i, _ in state.live}
        inner = self.inner
        # [CAPACITY] and [ARCHIVE-STOP]: at quiescence exactly the live sessions have tasks
        expect(inner.live_count <= state.capacity, f"{inner.live_count} live > {state.capacity}")
        expect(inner.statistics().live == ids, f"live {sorted(map(str, inner.statistics().live))}")
        tasks = inner.statistics().running_tasks
        expect(tasks == ids, f"tasks {sorted(map(str, tasks))}")
        expect(inner.live_count == len(ids), f"live_count {inner.live_count} != {len(ids)}")
        if isinstance(self.svc, PersistentSessionService):
            got = await self.observe_store()
            want = dict(state.store)
            expect(got == want, f"store differs:\n  service {got}\n  model   {want}")
            for name, rev in state.acked:  # [DURABILITY]
                expect(name in got and got[name].revision >= rev, f"store behind a turn of {name}")
            for name, live in state.live:  # [STOP-RESUME]
                armed = self.svc.gate_armed(SessionId.parse(name))
                expect(armed == live.armed, f"{name}: gate armed {armed}, model {live.armed}")
        # [LIST-ORDER][LIST-PAGE] the whole list, and every page of one and of the rest
        want_all, _ = model.step(state, List())
        assert isinstance(want_all, Ok) and isinstance(want_all.value, tuple)
        pages = [List()] + [List(k, limit) for k in range(len(want_all.value) + 1)
                            for limit in (1, None)]
        for page in pages:
            want_page, _ = model.step(state, page)
            rows = await self.svc.list(SessionQuery(limit=page.limit, offset=page.offset))
            got_page = Ok(tuple(summary(r) for r in rows))
            expect(got_page == want_page,
                   f"{page!r} differs:\n  service {got_page}\n  model   {want_page}")
        # [READ] every session ever created, against the model
        for n in range(1, state.next_id):
            want_view, _ = model.step(state, Read(n))
            try:
                got_view: Result = Ok(view(await self.svc.read(model.sid(n))))
            except SessionError as exc:
                got_view = Err(exc.code)
            expect(got_view == want_view,
                   f"Read({n}) differs:\n  service {got_view}\n  model   {want_view}")
        # [ARCHIVE-FINAL] no read or load shows an archived session
        for name in sorted(state.archived):
            with contextlib.suppress(SessionError):
                await self.svc.read(name)
                raise CheckFailed(f"read shows archived {name}")
            if isinstance(self.svc, PersistentSessionService):
                expect(await self.svc.load_persisted(name) is None, f"load shows archived {name}")
        await self.settle()


def check_result(op: Op, want: Result, got: Result, state: State, completed: Completed) -> None:
    expect(same(want, got), f"{op!r}:\n  service {got!r}\n  model   {want!r}")
    expect(completed == state.completed,
           f"{op!r} completed:\n  service {completed!r}\n  model   {state.completed!r}")
    if isinstance(op, List) and isinstance(got, Ok):  # [LIST-ORDER] independent of the model
        rows = list(got.value)  # type: ignore[call-overload]
        expect(rows == sorted(rows, key=lambda r: (-r.updated_at, r.session_id)), "list order")
        expect(op.limit is None or len(rows) <= op.limit, "page longer than limit")
    broken = model.violations(state)
    expect(not broken, f"model invariants broke: {broken}")


# -- running a sequence ----------------------------------------------------------------

OpSource = Callable[[State], Op | None]


async def drive(backend: Backend, capacity: int, path: str | None, source: OpSource,
                trace: list[tuple[Op, Result, Completed]], checked: bool = True) -> str | None:
    """Apply ops from ``source`` (given the model's state) until it returns None.

    Records (op, service result, completed calls) in ``trace``.  Returns the
    first disagreement as text (``None``: none); checks run only if ``checked``.
    """
    harness = Harness(backend, capacity, path)
    state = model.init(capacity, backend.persistent)
    await harness.open()
    failure: str | None = None
    try:
        while (op := source(state)) is not None:
            got, completed = await harness.apply(op)
            trace.append((op, got, completed))
            want, state = model.step(state, op)
            if checked:
                check_result(op, want, got, state, completed)
                await harness.check(state)
    except CheckFailed as exc:
        failure = str(exc)
    finally:
        await harness.close()
    return failure


def run_source(backend: Backend, capacity: int, source: OpSource,
               trace: list[tuple[Op, Result, Completed]], checked: bool) -> str | None:
    """``drive`` in its own ``trio.run`` (mock clock; a fresh SQLite file if needed)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "sessions.sqlite") if backend.store == "sqlite" else None
        return trio.run(drive, backend, capacity, path, source, trace, checked,
                        clock=trio.testing.MockClock())


def _from_list(ops: Sequence[Op]) -> OpSource:
    it = iter(ops)
    return lambda state: next(it, None)


def replay(ops: Sequence[Op], backend: Backend | str = MEMORY,
           capacity: int = 2) -> list[tuple[Result, Completed]]:
    """Run ``ops`` against a fresh service; return each call's result and completions."""
    backend = BACKENDS[backend] if isinstance(backend, str) else backend
    trace: list[tuple[Op, Result, Completed]] = []
    run_source(backend, capacity, _from_list(ops), trace, checked=False)
    return [(result, completed) for _, result, completed in trace]


def check_ops(ops: Sequence[Op], backend: Backend | str = MEMORY, capacity: int = 2) -> None:
    """Run ``ops`` against a fresh service and the model; raise at the first difference."""
    backend = BACKENDS[backend] if isinstance(backend, str) else backend
    failure = run_source(backend, capacity, _from_list(ops), [], checked=True)
    if failure is not None:
        raise AssertionError(failure)


def replay_line(ops: Sequence[Op], backend: Backend, capacity: int) -> str:
    """Python to paste into a regression test (a mutant is named as ``MUTANTS[...]``)."""
    where = repr(backend.name) if backend.name in BACKENDS else f"MUTANTS[{backend.name!r}]"
    return f"check_ops({list(ops)!r}, {where}, capacity={capacity})"

