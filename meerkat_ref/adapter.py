"""Serve the reference (or the seed variant) through the adapter protocol: JSON lines on stdio.

    python -m meerkat_ref.adapter [--variant reference|seed-0.4.0|seed-0.4.0:<window>]

The oracle (``meerkat-ref conform``) writes one command per line on stdin; this
process answers each with one line on stdout, ``{"id":..., "ok": ...}`` or
``{"id":..., "error": {"code":..., "message":...}}``.  Service calls run
concurrently, each in its own Trio task, so several may be in flight at once;
a host-mode call stays unanswered while its loop serves.  The protocol is
specified in ``spec/ADAPTER.md`` (and ``spec/adapter.schema.json``); this is
the reference implementation of it, and the one the oracle is tested against.

Determinism, as the protocol requires: ``open`` starts a fresh memory store, a
logical clock whose first tick is 1, and ids ``UUID(int=1)``, ``UUID(int=2)``,
...; ``restart`` keeps the store, the clock and the id counter.

Scheduling hooks (capability ``points``): after ``{"cmd": "control", "points":
true}`` every scheduling point of the service parks its task and is announced
as ``{"event": "point", "task": ..., "kind": ..., "session": ...}``; the task
runs on only when the oracle sends ``{"cmd": "release", "task": ...}``.
``settle`` answers once every task is parked or blocked, with the parked list.
Tasks are labelled as the explorer labels them: a request runs in a task named
by its ``"task"`` field (default ``req <id>``), a session's task is ``session
s<hex>``, so the explorer's schedules replay here step for step.

Nothing read from stdin is executed or used as a path: commands are looked up
in a fixed table, every field is type-checked, and the store is in memory.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import trio
import trio.testing

from ._errors import SessionError, SessionNotFound, SessionPersistenceDisabled, SessionStoreError
from ._seams import LogicalClock
from ._types import (
    CreateSessionRequest,
    InitialTurnPolicy,
    InvalidArgument,
    RunResult,
    Session,
    SessionId,
    SessionQuery,
    SessionSummary,
    SessionView,
    StartTurnRequest,
)
from .agent._scripted import ScriptedAgent, ScriptedAgentBuilder, counter_ids
from .conform._wire import (
    CONTROL_COMMANDS,
    PROTOCOL,
    SERVICE_COMMANDS,
    Json,
    WireError,
    dumps,
    request_id,
    show,
)
from .conform._wire import (
    field as wire_field,
)
from .explore._runner import Variant
from .service._ephemeral import EphemeralSessionService
from .service._persistent import PersistentSessionService
from .service._seed import SeedPersistentSessionService
from .store._memory import MemoryStore

MAX_LINE = 1 << 20
"""Longest accepted command line, in bytes."""

Emit = Callable[[dict[str, Json]], None]


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("meerkat-ref")
    except Exception:  # pragma: no cover - not installed
        return "unknown"


# -- service values in wire form --------------------------------------------------------


def run_json(r: RunResult) -> dict[str, Json]:
    return {
        "session_id": str(r.session_id),
        "text": r.text,
        "input_tokens": r.usage.input_tokens,
        "output_tokens": r.usage.output_tokens,
        "turns": r.turns,
    }


def view_json(v: SessionView) -> dict[str, Json]:
    i, u = v.state, v.billing
    return {
        "session_id": str(i.session_id),
        "created_at": i.created_at,
        "updated_at": i.updated_at,
        "message_count": i.message_count,
        "is_active": i.is_active,
        "last_assistant_text": i.last_assistant_text,
        "total_tokens": u.total_tokens,
        "input_tokens": u.usage.input_tokens,
        "output_tokens": u.usage.output_tokens,
    }


def summary_json(s: SessionSummary) -> dict[str, Json]:
    return {
        "session_id": str(s.session_id),
        "created_at": s.created_at,
        "updated_at": s.updated_at,
        "message_count": s.message_count,
        "total_tokens": s.total_tokens,
        "is_active": s.is_active,
    }


def stored_json(s: Session) -> dict[str, Json]:
    return {
        "created_at": s.created_at,
        "updated_at": s.updated_at,
        "message_count": s.message_count,
        "input_tokens": s.usage.input_tokens,
        "output_tokens": s.usage.output_tokens,
        "last_assistant_text": s.last_assistant_text(),
        "revision": s.revision,
    }


# -- scheduling points under the oracle's control ------------------------------------------


@dataclass(eq=False)
class _Parked:
    label: str
    kind: str
    session: SessionId | None
    event: trio.Event = field(default_factory=trio.Event)
    fault: bool = False

    def to_json(self) -> dict[str, Json]:
        return {
            "task": self.label,
            "kind": self.kind,
            "session": None if self.session is None else str(self.session),
        }


class HookPoints:
    """A ``SchedulingPoints``: a Trio checkpoint, or (control on) park until released.

    With control off it also pairs id and creation tick: the point the
    builder passes right after taking an id is skipped (``skip_next``), so
    creates made at once take ids and ticks in the same order, as the model
    says (the stateful harness's ``PairedBuilder`` does the same).
    """

    def __init__(self, emit: Emit) -> None:
        self.emit = emit
        self.enabled = False
        self.skip_next = False
        self.parked: dict[str, _Parked] = {}

    def _label(self) -> str:
        name = trio.lowlevel.current_task().name
        label, n = name, 1
        while label in self.parked:
            n += 1
            label = f"{name}#{n}"
        return label

    async def point(self, kind: str, session_id: SessionId | None = None) -> None:
        if not self.enabled:
            if self.skip_next:
                self.skip_next = False
                return
            await trio.lowlevel.checkpoint()
            return
        parked = _Parked(self._label(), kind, session_id)
        self.parked[parked.label] = parked
        self.emit({"event": "point", **parked.to_json()})
        try:
            await parked.event.wait()
        finally:
            if self.parked.get(parked.label) is parked:
                del self.parked[parked.label]
        if parked.fault:
            raise SessionStoreError(f"injected fault at {kind}", session_id=session_id)

    def release(self, label: str, fault: bool) -> None:
        parked = self.parked.get(label)
        if parked is None:
            ready = ", ".join(sorted(self.parked)) or "none"
            raise WireError("NOT_PARKED", f"no task {label!r} is parked (parked: {ready})")
        if fault and (not parked.kind.startswith("store.") or parked.kind == "store.list"):
            raise WireError(
                "BAD_REQUEST", f"a fault needs a store write or read, not {parked.kind}"
            )
        del self.parked[label]
        parked.fault = fault
        parked.event.set()

    def release_all(self) -> None:
        for parked in list(self.parked.values()):
            parked.event.set()
        self.parked.clear()

    def snapshot(self) -> list[dict[str, Json]]:
        return [self.parked[k].to_json() for k in sorted(self.parked)]


class _Builder:
    """The scripted builder over a logical clock and counter ids, shared across restarts."""

    def __init__(self, points: HookPoints) -> None:
        self.points = points
        self._ids = counter_ids()
        self.inner = ScriptedAgentBuilder(
            clock=LogicalClock(), points=points, id_factory=self._next_id
        )

    def _next_id(self) -> SessionId:
        if not self.points.enabled:
            self.points.skip_next = True  # the builder's very next call is its point
        return self._ids()

    async def build_agent(self, req: CreateSessionRequest) -> ScriptedAgent:
        if not self.points.enabled:
            await trio.lowlevel.checkpoint()  # the switch, moved before id and tick
        return await self.inner.build_agent(req)


# -- the adapter -----------------------------------------------------------------------------

Service = EphemeralSessionService | PersistentSessionService
Call = Callable[[], Awaitable[Json]]


@dataclass
class _World:
    """What survives a restart: capacity, kind, store, clock and ids."""

    capacity: int
    persistent: bool
    store: MemoryStore
    builder: _Builder


class Adapter:
    """The protocol, transport-free: feed it lines with ``handle``; it calls ``emit``.

    ``handle`` must always be called from the same task (it keeps the
    service's nursery open between calls).  ``aclose`` ends everything.
    """

    def __init__(self, variant: Variant, emit: Emit) -> None:
        self.variant = variant
        self.emit = emit
        self.points = HookPoints(emit)
        self._world: _World | None = None
        self._svc: Service | None = None
        self._calls: trio.Nursery | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._in_flight: dict[str, str] = {}  # request id -> command, in arrival order
        self._closing = False
        self._lines = 0

    # -- lifetime ----------------------------------------------------------------------

    def _make_service(self, world: _World) -> Service:
        builder = world.builder
        if not world.persistent:
            return EphemeralSessionService(builder, world.capacity, points=self.points)
        if self.variant.name == "reference":
            return PersistentSessionService(
                builder, world.capacity, world.store, points=self.points
            )
        return SeedPersistentSessionService(
            builder, world.capacity, world.store, points=self.points, windows=self.variant.windows
        )

    async def _start(self) -> None:
        assert self._world is not None
        stack = contextlib.AsyncExitStack()
        self._svc = await stack.enter_async_context(self._make_service(self._world))
        self._calls = await stack.enter_async_context(trio.open_nursery())
        self._stack = stack

    async def _stop(self) -> None:
        """The process dies: every call in flight is answered ``crashed``; the store stays."""
        self.points.enabled = False
        self.points.release_all()
        self._closing = True
        try:
            if self._calls is not None:
                self._calls.cancel_scope.cancel()
            if self._stack is not None:
                await self._stack.aclose()
        finally:
            self._closing = False
            self._stack = self._calls = self._svc = None
            for rid in list(self._in_flight):
                self.emit({"id": rid, "crashed": True})
            self._in_flight.clear()

    async def aclose(self) -> None:
        await self._stop()

    # -- answers -----------------------------------------------------------------------------

    def _answer(self, rid: str | None, result: Json = None, *, error: WireError | None = None,
                code: str = "", message: str = "") -> None:
        if rid is not None:
            self._in_flight.pop(rid, None)
        if error is not None:
            code, message = error.code, error.message
        if code:
            self.emit({"id": rid, "error": {"code": code, "message": message}})
        else:
            self.emit({"id": rid, "ok": result})

    async def _run_call(self, rid: str, call: Call) -> None:
        try:
            result = await call()
        except SessionError as exc:
            if not self._closing:
                self._answer(rid, code=exc.code, message=exc.message)
            return
        except InvalidArgument as exc:
            if not self._closing:
                self._answer(rid, code=InvalidArgument.code, message=str(exc))
            return
        except Exception as exc:  # a bug in the service or here: say so, keep serving
            if not self._closing:
                self._answer(rid, code="INTERNAL", message=f"{type(exc).__name__}: {exc}")
            return
        if not self._closing:
            self._answer(rid, result)

    # -- one line ------------------------------------------------------------------------------

    async def handle(self, line: bytes | str) -> bool:
        """Act on one command line; ``False`` once the oracle said ``bye``."""
        self._lines += 1
        rid: str | None = None
        try:
            if len(line) > MAX_LINE:
                raise WireError("BAD_REQUEST", f"line {self._lines}: longer than {MAX_LINE} bytes")
            try:
                msg = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise WireError(
                    "BAD_REQUEST", f"line {self._lines}: not JSON: {show(line)}"
                ) from None
            if not isinstance(msg, dict):
                raise WireError("BAD_REQUEST", f"line {self._lines}: not a JSON object")
            raw_id = msg.get("id")
            rid = raw_id if isinstance(raw_id, str) and raw_id else None
            rid = request_id(msg)
            cmd = msg.get("cmd")
            if not isinstance(cmd, str):
                raise WireError("BAD_REQUEST", f"request {rid}: \"cmd\" must be a string")
            if cmd in CONTROL_COMMANDS:
                return await self._control(rid, cmd, msg)
            if cmd not in SERVICE_COMMANDS:
                raise WireError("UNKNOWN_COMMAND", f"request {rid}: unknown command {cmd!r}")
            await self._service(rid, cmd, msg)
        except WireError as exc:
            self._answer(rid, error=exc)
        except InvalidArgument as exc:
            self._answer(rid, code=InvalidArgument.code, message=str(exc))
        return True

    async def _control(self, rid: str, cmd: str, msg: dict[str, Json]) -> bool:
        if cmd == "hello":
            self._answer(rid, {
                "protocol": PROTOCOL,
                "implementation": "meerkat-ref",
                "version": _version(),
                "contract": "meerkat-session 0.4.0",
                "variant": self.variant.name,
                "capabilities": ["points", "faults"],
                "store": "memory",
            })
        elif cmd == "open":
            capacity = wire_field(msg, "capacity", "int")
            persistent = wire_field(msg, "persistent", "bool", True)
            if capacity < 1:
                raise WireError("BAD_REQUEST", f"open: capacity must be at least 1, got {capacity}")
            await self._stop()
            self.points = HookPoints(self.emit)
            self._world = _World(capacity, persistent, MemoryStore(), _Builder(self.points))
            await self._start()
            self._answer(rid, None)
        elif cmd == "settle":
            await trio.testing.wait_all_tasks_blocked()
            self._answer(rid, {"parked": self.points.snapshot()})
        elif cmd == "control":
            enabled = wire_field(msg, "points", "bool")
            self.points.enabled = enabled
            if not enabled:
                self.points.release_all()
            self._answer(rid, None)
        elif cmd == "release":
            label = wire_field(msg, "task", "str")
            fault = wire_field(msg, "fault", "bool", False)
            self.points.release(label, fault)
            self._answer(rid, None)
        elif cmd == "at_once":
            self._at_once(rid, msg)
        elif cmd == "bye":
            await self._stop()
            self._answer(rid, None)
            return False
        return True

    async def _service(self, rid: str, cmd: str, msg: dict[str, Json]) -> None:
        if self._world is None or self._svc is None or self._calls is None:
            raise WireError("NOT_OPEN", f"request {rid}: {cmd} before \"open\"")
        if cmd == "restart":
            await self._stop()
            await self._start()
            self._answer(rid, None)
            return
        if cmd == "observe_store":
            snapshot = self._world.store.snapshot() if self._world.persistent else {}
            self._answer(rid, {str(k): stored_json(v) for k, v in sorted(snapshot.items())})
            return
        self._begin(rid, cmd, msg)

    def _begin(self, rid: str, cmd: str, msg: dict[str, Json]) -> None:
        """Check a service call's fields and start it in its own task (no switch here)."""
        assert self._svc is not None and self._calls is not None
        call = self._decode(cmd, msg, self._svc)
        label = wire_field(msg, "task", "str", None) or f"req {rid}"
        if rid in self._in_flight:
            raise WireError("BAD_REQUEST", f"request id {rid!r} is already in flight")
        self._in_flight[rid] = cmd
        self._calls.start_soon(self._run_call, rid, call, name=label)

    def _at_once(self, rid: str, msg: dict[str, Json]) -> None:
        """Start every sub-command before any of them runs: they are truly in flight together.

        A sub-command with a bad field is answered (under its own id) at once
        and not started; the others start in list order, in this one step.
        """
        if self._world is None or self._svc is None or self._calls is None:
            raise WireError("NOT_OPEN", f"request {rid}: at_once before \"open\"")
        subs = msg.get("commands")
        if not isinstance(subs, list) or not subs or not all(isinstance(c, dict) for c in subs):
            raise WireError("BAD_REQUEST", "at_once: \"commands\" must be a non-empty list of "
                            "command objects")
        for sub in subs:
            sub_rid: str | None = None
            try:
                sub_rid = request_id(sub)
                cmd = sub.get("cmd")
                if cmd not in SERVICE_COMMANDS or cmd in ("restart", "observe_store"):
                    raise WireError("BAD_REQUEST",
                                    f"at_once: {cmd!r} is not a service call that can run at once")
                assert isinstance(cmd, str)
                self._begin(sub_rid, cmd, sub)
            except WireError as exc:
                self._answer(sub_rid, error=exc)
            except InvalidArgument as exc:
                self._answer(sub_rid, code=InvalidArgument.code, message=str(exc))
        self._answer(rid, None)

    def _decode(self, cmd: str, msg: dict[str, Json], svc: Service) -> Call:
        """Check every field now (answering BAD_REQUEST at once); the call runs later."""

        def session() -> SessionId:
            return SessionId.parse(wire_field(msg, "session", "str"))

        persistent = isinstance(svc, PersistentSessionService)

        async def disabled() -> Json:
            raise SessionPersistenceDisabled(f"{cmd}: the service is not persistent")

        if cmd == "create":
            initial = wire_field(msg, "initial_turn", "str", "run_immediately")
            if initial not in ("run_immediately", "defer"):
                raise WireError(
                    "BAD_REQUEST", "create: initial_turn must be run_immediately or defer"
                )
            req = CreateSessionRequest(
                model=wire_field(msg, "model", "str", "scripted"),
                prompt=wire_field(msg, "prompt", "str"),
                system_prompt=wire_field(msg, "system_prompt", "str?", None),
                host_mode=wire_field(msg, "host_mode", "bool", False),
                initial_turn=InitialTurnPolicy(initial),
            )

            async def create() -> Json:
                return run_json(await svc.create_session(req))

            return create
        if cmd == "start_turn":
            sid = session()
            turn = StartTurnRequest(
                wire_field(msg, "prompt", "str"), wire_field(msg, "host_mode", "bool", False)
            )

            async def start_turn() -> Json:
                return run_json(await svc.start_turn(sid, turn))

            return start_turn
        if cmd == "inject":
            sid, text = session(), wire_field(msg, "text", "str")

            async def inject() -> Json:
                injector = await svc.event_injector(sid)
                if injector is None:
                    raise SessionNotFound(sid)
                injector.inject(text)
                return None

            return inject
        if cmd == "interrupt":
            sid = session()

            async def interrupt() -> Json:
                await svc.interrupt(sid)
                return None

            return interrupt
        if cmd == "read":
            sid = session()

            async def read() -> Json:
                return view_json(await svc.read(sid))

            return read
        if cmd == "list":
            query = SessionQuery(
                limit=wire_field(msg, "limit", "int?", None),
                offset=wire_field(msg, "offset", "int?", None),
            )

            async def list_() -> Json:
                return [summary_json(s) for s in await svc.list(query)]

            return list_
        if cmd == "archive":
            sid = session()

            async def archive() -> Json:
                await svc.archive(sid)
                return None

            return archive
        if cmd == "load_persisted":
            sid = session()
            if not isinstance(svc, PersistentSessionService):
                return disabled
            persisted = svc

            async def load_persisted() -> Json:
                found = await persisted.load_persisted(sid)
                return None if found is None else stored_json(found)

            return load_persisted
        if cmd in ("cancel_all_checkpointers", "rearm_all_checkpointers"):
            if not persistent:
                return disabled
            assert isinstance(svc, PersistentSessionService)
            sweep = (
                svc.cancel_all_checkpointers
                if cmd == "cancel_all_checkpointers"
                else svc.rearm_all_checkpointers
            )

            async def arming() -> Json:
                await sweep()
                return None

            return arming
        raise WireError("UNKNOWN_COMMAND", f"unknown command {cmd!r}")  # pragma: no cover


# -- stdio -------------------------------------------------------------------------------------


async def _stdin_lines() -> AsyncIterator[bytes]:
    """Lines of stdin: a non-blocking pipe read by Trio, or a thread for a terminal."""
    if os.name == "posix" and not sys.stdin.isatty():
        stream = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
        buffer = b""
        async with stream:
            while True:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    break
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    yield line
                if len(buffer) > MAX_LINE:
                    yield buffer  # answered BAD_REQUEST (too long), then dropped
                    buffer = b""
        if buffer.strip():
            yield buffer
        return
    while True:
        line = await trio.to_thread.run_sync(sys.stdin.buffer.readline)
        if not line:
            return
        yield line.rstrip(b"\n")


def _stdout_emit(msg: dict[str, Json]) -> None:
    sys.stdout.write(dumps(msg) + "\n")
    sys.stdout.flush()


async def serve(variant: Variant, emit: Emit = _stdout_emit) -> None:
    adapter = Adapter(variant, emit)
    try:
        async for line in _stdin_lines():
            if not line.strip():
                continue
            if not await adapter.handle(line):
                break
    finally:
        with trio.CancelScope(shield=True):
            await adapter.aclose()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m meerkat_ref.adapter",
        description="Serve the reference session service through the adapter protocol "
        "(JSON lines on stdin/stdout; see spec/ADAPTER.md).",
    )
    parser.add_argument(
        "--variant",
        default="reference",
        help="reference (default), seed-0.4.0, or seed-0.4.0:<window>[,<window>]",
    )
    args = parser.parse_args(argv)
    try:
        variant = Variant.parse(args.variant)
    except ValueError as exc:
        print(f"meerkat_ref.adapter: {exc}", file=sys.stderr)
        return 2
    try:
        trio.run(serve, variant)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
