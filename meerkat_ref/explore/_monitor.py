"""Invariants, checked at every step of a controlled run, and the history they read.

Everything the monitor knows it learns through seams: a ``RecordingStore``
between the service and the real store (every write that actually lands), an
instrumented agent builder (turns running, revisions at the end of turns,
checkpoint calls), and the client wrapper (invocation and response of every
operation).  It never reaches into the service except for
``running_tasks()``, the public introspection the contract's ARCHIVE-STOP
clause is stated against.

Rules (clause ids of the contract):

ARCHIVE-FINAL  no store write for an id after its archive returned; the id
               is not in the store; no read, list or load_persisted invoked
               after that shows it.
ARCHIVE-STOP   the archived session's task has ended within ``stop_bound``
               steps of archive returning.
CAPACITY       session tasks alive never exceed ``max_sessions``.
TURN-BUSY      at most one turn runs per session.
DURABILITY     when a non-host turn (or create) is acknowledged, the store
               holds that turn's revision or a newer one (unless an archive
               of the session was invoked).
CHECKPOINT     when a checkpoint call returns while armed, the store holds
               that revision or newer (unless archived, disarmed, or its
               save was made to fail).
CHECKPOINT-GATE no checkpoint write lands after ``cancel_all_checkpointers``
               returned and before ``rearm_all_checkpointers`` was invoked.
LIVENESS       no deadlock: when no task can run, no client waits on a
               call other than a host-mode turn.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import trio

from .._errors import SessionStoreError
from .._types import CreateSessionRequest, RunResult, Session, SessionFilter, SessionId, SessionMeta
from ..agent._protocol import EventInjector, EventSink, SessionAgent, SessionAgentBuilder
from ..store._base import SessionStore


@dataclass(frozen=True)
class Violation:
    rule: str
    step: int
    message: str

    def to_json(self) -> dict[str, object]:
        return {"rule": self.rule, "step": self.step, "message": self.message}


@dataclass
class Call:
    """One client operation: plain data, for the history and the drawings."""

    client: str
    op: str
    session: str | None
    invoked: int
    responded: int | None = None
    result: str | None = None  # "ok", "ok:<detail>", or an error code
    args: tuple[tuple[str, object], ...] = ()  # what the model needs: prompt, host, text
    shown: tuple[str, ...] = ()  # for list: the sessions it showed
    created: str | None = None  # for create: the session it made
    message: str = ""  # for an error: its text

    def to_json(self) -> dict[str, object]:
        return {
            "client": self.client,
            "op": self.op,
            "session": self.session,
            "invoked": self.invoked,
            "responded": self.responded,
            "result": self.result,
        }


@dataclass
class Monitor:
    max_sessions: int
    stop_bound: int = 8
    step: int = 0
    violations: list[Violation] = field(default_factory=list)
    history: list[Call] = field(default_factory=list)
    shadow: dict[SessionId, tuple[int, int, int]] = field(
        default_factory=dict
    )  # revision, count, updated
    archived: dict[SessionId, int] = field(default_factory=dict)  # id -> step archive returned
    archive_invoked: set[SessionId] = field(default_factory=set)
    faulted: set[SessionId] = field(default_factory=set)
    running_turns: dict[SessionId, int] = field(default_factory=dict)
    turn_revision: dict[int, int] = field(default_factory=dict)  # id(RunResult) -> revision
    issued: set[SessionId] = field(default_factory=set)  # every id an agent was built for
    disarmed: bool = False  # cancel_all returned, rearm not yet invoked
    disarmed_ids: frozenset[SessionId] = frozenset()  # sessions whose gate the sweep reached
    sweeping: bool = False  # a cancel_all or rearm is in flight, or disarmed
    store_changed: bool = False
    _seen: set[tuple[str, str]] = field(default_factory=set)

    def violate(self, rule: str, message: str) -> None:
        key = (rule, message)
        if key not in self._seen:
            self._seen.add(key)
            self.violations.append(Violation(rule, self.step, message))

    # -- store writes ------------------------------------------------------------

    def on_save(self, session: Session, by_session_task: bool) -> None:
        sid = session.id
        if sid in self.archived:
            self.violate(
                "ARCHIVE-FINAL",
                f"{sid.short()} written to the store after its archive returned (resurrected)",
            )
        if by_session_task and self.disarmed and sid in self.disarmed_ids:
            self.violate(
                "CHECKPOINT-GATE",
                f"checkpoint of {sid.short()} written after cancel_all_checkpointers returned",
            )
        self.shadow[sid] = (session.revision, session.message_count, session.updated_at)
        self.store_changed = True

    def on_delete(self, sid: SessionId) -> None:
        if self.shadow.pop(sid, None) is not None:
            self.store_changed = True

    # -- per-step checks ---------------------------------------------------------------

    def check_step(self, running_tasks: frozenset[SessionId]) -> None:
        for sid, returned in self.archived.items():
            if sid in self.shadow:
                self.violate("ARCHIVE-FINAL", f"archived {sid.short()} is in the store")
            if sid in running_tasks and self.step - returned > self.stop_bound:
                self.violate(
                    "ARCHIVE-STOP",
                    f"archived {sid.short()}'s task still runs {self.step - returned} steps "
                    "after archive returned",
                )
        if len(running_tasks) > self.max_sessions:
            self.violate(
                "CAPACITY", f"{len(running_tasks)} session tasks alive, max {self.max_sessions}"
            )
        for sid, n in self.running_turns.items():
            if n > 1:
                self.violate("TURN-BUSY", f"{n} turns run at once in {sid.short()}")

    def check_ended(self, running_tasks: frozenset[SessionId]) -> None:
        """At the end of a run (nothing can move): every archived session's task has ended."""
        for sid in self.archived:
            if sid in running_tasks:
                self.violate("ARCHIVE-STOP", f"archived {sid.short()}'s task never ends")

    def check_visible(self, call: Call, shown: list[SessionId]) -> None:
        """A read/list/load_persisted invoked after an archive returned must not show it."""
        for sid in shown:
            returned = self.archived.get(sid)
            if returned is not None and returned <= call.invoked:
                self.violate(
                    "ARCHIVE-FINAL",
                    f"{call.op} invoked at step {call.invoked} shows {sid.short()}, "
                    f"archived at step {returned}",
                )

    def check_durable(self, sid: SessionId, revision: int, what: str) -> None:
        if sid in self.archive_invoked or sid in self.faulted:
            return
        stored = self.shadow.get(sid)
        if stored is None or stored[0] < revision:
            have = "nothing" if stored is None else f"revision {stored[0]}"
            self.violate(
                "DURABILITY" if what == "turn" else "CHECKPOINT",
                f"{what} of {sid.short()} at revision {revision} acknowledged, store has {have}",
            )


class RecordingStore:
    """Passes calls to the real store and tells the monitor about every write that lands.

    After a crash the old process's handle is ``dead``: a dead process cannot
    write, so its calls fail instead of reaching the store.
    """

    def __init__(self, inner: SessionStore, monitor: Monitor) -> None:
        self.inner = inner
        self.monitor = monitor
        self.dead = False

    def _alive(self, session_id: SessionId | None) -> None:
        if self.dead:
            raise SessionStoreError("process crashed", session_id=session_id)

    async def save(self, session: Session) -> None:
        self._alive(session.id)
        await self.inner.save(session)
        task = trio.lowlevel.current_task()
        self.monitor.on_save(session, by_session_task=task.name.startswith("session "))

    async def load(self, session_id: SessionId) -> Session | None:
        self._alive(session_id)
        return await self.inner.load(session_id)

    async def list(self, filter: SessionFilter = SessionFilter()) -> list[SessionMeta]:
        self._alive(None)
        return await self.inner.list(filter)

    async def delete(self, session_id: SessionId) -> None:
        self._alive(session_id)
        await self.inner.delete(session_id)
        self.monitor.on_delete(session_id)

    async def exists(self, session_id: SessionId) -> bool:
        self._alive(session_id)
        return await self.inner.exists(session_id)


class _WatchedCheckpointer:
    def __init__(self, inner: Any, monitor: Monitor) -> None:
        self.inner = inner
        self.monitor = monitor

    async def checkpoint(self, session: Session) -> None:
        swept_before = self.monitor.sweeping or self.monitor.disarmed
        await self.inner.checkpoint(session)
        if not swept_before and not self.monitor.sweeping and not self.monitor.disarmed:
            self.monitor.check_durable(session.id, session.revision, "checkpoint")


class _WatchedAgent:
    """Counts running turns and remembers each turn's final revision."""

    def __init__(self, inner: SessionAgent, monitor: Monitor) -> None:
        self.inner = inner
        self.monitor = monitor

    @property
    def session_id(self) -> SessionId:
        return self.inner.session_id

    def session(self) -> Session:
        return self.inner.session()

    def event_injector(self) -> EventInjector | None:
        return self.inner.event_injector()

    async def _counted(
        self, run: Callable[[str, EventSink], Any], prompt: str, emit: EventSink
    ) -> RunResult:
        sid = self.inner.session_id
        self.monitor.running_turns[sid] = self.monitor.running_turns.get(sid, 0) + 1
        try:
            result: RunResult = await run(prompt, emit)
        finally:
            self.monitor.running_turns[sid] -= 1
        self.monitor.turn_revision[id(result)] = self.inner.session().revision
        return result

    async def run_turn(self, prompt: str, emit: EventSink) -> RunResult:
        return await self._counted(self.inner.run_turn, prompt, emit)

    async def run_host_mode(self, prompt: str, emit: EventSink) -> RunResult:
        return await self._counted(self.inner.run_host_mode, prompt, emit)


class WatchedBuilder:
    """Wraps a builder so the monitor sees turns and checkpoints."""

    def __init__(self, inner: SessionAgentBuilder, monitor: Monitor) -> None:
        self.inner = inner
        self.monitor = monitor

    async def build_agent(self, req: CreateSessionRequest) -> SessionAgent:
        if req.build is not None and req.build.checkpointer is not None:
            watched = _WatchedCheckpointer(req.build.checkpointer, self.monitor)
            req = replace(req, build=replace(req.build, checkpointer=watched))
        agent = await self.inner.build_agent(req)
        self.monitor.issued.add(agent.session_id)
        return _WatchedAgent(agent, self.monitor)
