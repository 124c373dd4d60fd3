"""Named scenarios: a setup, and clients whose operations run concurrently.

A scenario is data plus small async scripts.  The setup runs uncontrolled
(points off) and leaves the system quiescent; then the clients start, each as
its own task, and every scheduling point from there on is the explorer's to
order.  Session ids are predictable: the n-th session created is
``SessionId.from_int(n)`` (shown ``s1``, ``s2``, ...).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from .._errors import SessionError, SessionNotFound
from .._seams import SchedulingPoints
from .._types import (
    CreateSessionRequest,
    InitialTurnPolicy,
    RunResult,
    SessionId,
    SessionQuery,
    StartTurnRequest,
)
from ..service._persistent import PersistentSessionService
from ._monitor import Call, Monitor

S1 = SessionId.from_int(1)
S2 = SessionId.from_int(2)


class Ctx:
    """What a client script can do: service calls, each recorded in the history."""

    def __init__(
        self, svc: PersistentSessionService, points: SchedulingPoints, monitor: Monitor
    ) -> None:
        self.svc = svc
        self.points = points
        self.monitor = monitor
        self.host_waiting: set[str] = set()  # clients blocked in a host-mode call

    async def _call(
        self,
        client: str,
        op: str,
        sid: SessionId | None,
        fn: Callable[[], Awaitable[object]],
        host: bool = False,
        **args: object,
    ) -> object:
        await self.points.point("client.call", sid)
        if host:
            args["host"] = True
        call = Call(
            client, op, sid.short() if sid else None, self.monitor.step, args=tuple(args.items())
        )
        self.monitor.history.append(call)
        if op == "archive" and sid is not None:
            self.monitor.archive_invoked.add(sid)
        if op in ("cancel_all_checkpointers", "rearm_all_checkpointers"):
            self.monitor.sweeping = True
        if op == "cancel_all_checkpointers":
            # The sweep disarms the gates there are when it starts (this step);
            # sessions created later start armed (clause STOP-RESUME).
            self.monitor.disarmed_ids = self.svc.inner.live_ids()
        if op == "rearm_all_checkpointers":
            self.monitor.disarmed = False
        if host:
            self.host_waiting.add(client)
        try:
            value = await fn()
        except SessionError as exc:
            call.result = exc.code
            call.message = exc.message
            call.responded = self.monitor.step
            return exc
        finally:
            self.host_waiting.discard(client)
        call.responded = self.monitor.step
        call.result = "ok"
        if op == "load_persisted":
            call.result = "ok:none" if value is None else "ok:found"
        if isinstance(value, list):
            call.shown = tuple(s.session_id.short() for s in value)
        if op == "create" and isinstance(value, RunResult):
            call.created = value.session_id.short()
        if op == "archive" and sid is not None:
            self.monitor.archived.setdefault(sid, self.monitor.step)
        if op == "cancel_all_checkpointers":
            self.monitor.disarmed = True
        if op == "rearm_all_checkpointers":
            self.monitor.sweeping = False
        if isinstance(value, RunResult) and not host:
            revision = self.monitor.turn_revision.get(id(value))
            if revision is not None:
                self.monitor.check_durable(value.session_id, revision, "turn")
        return value

    async def create(
        self, client: str, prompt: str, host: bool = False, defer: bool = False
    ) -> object:
        req = CreateSessionRequest(
            model="scripted",
            prompt=prompt,
            host_mode=host,
            initial_turn=InitialTurnPolicy.DEFER if defer else InitialTurnPolicy.RUN_IMMEDIATELY,
        )
        return await self._call(
            client,
            "create",
            None,
            lambda: self.svc.create_session(req),
            host,
            prompt=prompt,
            defer=defer,
        )

    async def turn(self, client: str, sid: SessionId, prompt: str, host: bool = False) -> object:
        req = StartTurnRequest(prompt, host_mode=host)
        return await self._call(
            client, "start_turn", sid, lambda: self.svc.start_turn(sid, req), host, prompt=prompt
        )

    async def archive(self, client: str, sid: SessionId, attempts: int = 1) -> object:
        result: object = None
        for _ in range(attempts):
            result = await self._call(client, "archive", sid, lambda: self.svc.archive(sid))
            if not isinstance(result, SessionNotFound):
                break
        return result

    async def inject(self, client: str, sid: SessionId, text: str) -> object:
        async def go() -> object:
            injector = await self.svc.event_injector(sid)
            if injector is None:
                raise SessionNotFound(sid)
            injector.inject(text)
            return None

        return await self._call(client, f"inject {text!r}", sid, go, text=text)

    async def read(self, client: str, sid: SessionId) -> object:
        call_index = len(self.monitor.history)
        result = await self._call(client, "read", sid, lambda: self.svc.read(sid))
        if not isinstance(result, SessionError):
            self.monitor.check_visible(self.monitor.history[call_index], [sid])
        return result

    async def list(self, client: str) -> object:
        call_index = len(self.monitor.history)
        result = await self._call(client, "list", None, lambda: self.svc.list(SessionQuery()))
        if isinstance(result, list):
            self.monitor.check_visible(
                self.monitor.history[call_index], [s.session_id for s in result]
            )
        return result

    async def load(self, client: str, sid: SessionId) -> object:
        call_index = len(self.monitor.history)
        result = await self._call(
            client, "load_persisted", sid, lambda: self.svc.load_persisted(sid)
        )
        if result is not None and not isinstance(result, SessionError):
            self.monitor.check_visible(self.monitor.history[call_index], [sid])
        return result

    async def cancel_all(self, client: str) -> object:
        return await self._call(
            client, "cancel_all_checkpointers", None, self.svc.cancel_all_checkpointers
        )

    async def rearm_all(self, client: str) -> object:
        return await self._call(
            client, "rearm_all_checkpointers", None, self.svc.rearm_all_checkpointers
        )


Script = Callable[[Ctx, str], Awaitable[None]]


@dataclass(frozen=True)
class Scenario:
    name: str
    about: str
    setup: Script | None
    clients: tuple[tuple[str, Script], ...]
    max_sessions: int = 2
    faults: int = 0  # store faults the explorer may inject per schedule
    crashes: int = 0  # crashes (and restarts) the explorer may inject per schedule
    background: tuple[tuple[str, Script], ...] = ()  # started in setup, e.g. host loops
    windows: tuple[str, ...] = ()  # the seed windows this scenario is built to expose
    bound: int = 2  # the preemption bound `check` exhausts it under
    spec: object = field(default=None, compare=False, hash=False)  # generated: its data form


async def _create_s1(ctx: Ctx, client: str) -> None:
    await ctx.create(client, "hello")


async def _create_s1_s2(ctx: Ctx, client: str) -> None:
    await ctx.create(client, "one")
    await ctx.create(client, "two")


async def _host_s1(ctx: Ctx, client: str) -> None:
    await ctx.create(client, "serve", host=True)


async def _turn_s1(ctx: Ctx, client: str) -> None:
    await ctx.turn(client, S1, "more")


async def _archive_s1(ctx: Ctx, client: str) -> None:
    await ctx.archive(client, S1, attempts=2)
    await ctx.read(client, S1)
    await ctx.list(client)


async def _create_then_check(ctx: Ctx, client: str) -> None:
    await ctx.create(client, "hello")
    await ctx.load(client, S1)


async def _inject_then_archive(ctx: Ctx, client: str) -> None:
    await ctx.inject(client, S1, "ping")
    await ctx.archive(client, S1, attempts=2)
    await ctx.load(client, S1)


async def _inject_two(ctx: Ctx, client: str) -> None:
    await ctx.inject(client, S1, "ping")
    await ctx.inject(client, S1, "/compact")


async def _stop_resume(ctx: Ctx, client: str) -> None:
    await ctx.cancel_all(client)
    await ctx.inject(client, S1, "ping")
    await ctx.rearm_all(client)
    await ctx.inject(client, S1, "pong")


async def _archive_s1_once(ctx: Ctx, client: str) -> None:
    await ctx.archive(client, S1)
    await ctx.load(client, S1)


async def _turn_s1_alpha(ctx: Ctx, client: str) -> None:
    await ctx.turn(client, S1, "alpha")


async def _archive_s2(ctx: Ctx, client: str) -> None:
    await ctx.archive(client, S2)


async def _turn_s2(ctx: Ctx, client: str) -> None:
    await ctx.turn(client, S2, "beta")


async def _create_and_turn(ctx: Ctx, client: str) -> None:
    await ctx.create(client, "hello")
    await ctx.turn(client, S1, "again")


async def _archive_and_look(ctx: Ctx, client: str) -> None:
    await ctx.archive(client, S1, attempts=2)
    await ctx.read(client, S1)


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "turn-save-vs-archive",
        "a turn's save after the turn races archive of the same session",
        setup=_create_s1,
        clients=(("turn", _turn_s1), ("archive", _archive_s1)),
        windows=("save-after-turn",),
    ),
    Scenario(
        "create-vs-archive",
        "archive of a session while create is still registering and saving it",
        setup=None,
        clients=(("create", _create_then_check), ("archive", _archive_s1)),
        windows=("create-racing-archive",),
    ),
    Scenario(
        "host-create-vs-archive",
        "a create whose first turn is a host loop, fed and archived while it starts",
        setup=None,
        clients=(("create", _host_s1), ("archive", _inject_then_archive)),
        windows=("create-racing-archive",),
    ),
    Scenario(
        "host-checkpoint-vs-archive",
        "a running host loop checkpoints injected messages while it is archived",
        setup=None,
        background=(("host", _host_s1),),
        clients=(("inject", _inject_two), ("archive", _archive_s1_once)),
        windows=("archived-host-loop", "skip-by-length"),
    ),
    Scenario(
        "stop-resume-vs-archive",
        "cancel_all/rearm_all checkpointers around host messages, racing archive",
        setup=None,
        background=(("host", _host_s1),),
        clients=(("stop-resume", _stop_resume), ("archive", _archive_s1_once)),
    ),
    Scenario(
        "crash-restart",
        "two sessions, a turn on each and an archive, with a crash at any point",
        setup=_create_s1_s2,
        clients=(("turn-1", _turn_s1_alpha), ("archive-2", _archive_s2), ("turn-2", _turn_s2)),
        crashes=1,
        bound=1,  # a crash at every durable step multiplies the tree: bound 2 is opt-in
    ),
    Scenario(
        "store-faults",
        "create, turn and archive with any one store call failing",
        setup=None,
        clients=(("create", _create_and_turn), ("archive", _archive_and_look)),
        faults=1,
    ),
)

BY_NAME = {s.name: s for s in SCENARIOS}


def get_scenario(name: str) -> Scenario:
    try:
        return BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown scenario {name!r}; known: {', '.join(BY_NAME)}") from None
