"""Any port as a target, over the adapter protocol (``spec/ADAPTER.md``).

``AdapterTarget`` speaks JSON lines to an adapter process through
``AdapterClient`` (which checks the shape of every line it reads) and turns
what comes back into the same plain data the in-process target gives:
``Point``s from the adapter's point events and ``settle`` answers, ``Answer``s
whose values are decoded into model values by the registry.  A value a port
sends that does not decode is kept as a ``Malformed`` value, which equals no
model value, so every comparison with the model fails on it and the report
shows what was sent.

Scheduling is the port's to offer: with the ``points`` capability the engine
controls every interleaving, exactly as in process; without it the engine
can only run free (the port interleaves as it will).

Footprints too: a port that offers ``footprints`` declares in its ``hello``
what a step released at each kind of point, and a call from its start to its
first point, may touch, in the contract's resources (``spec/ADAPTER.md``
section 6).  Each ``settle`` then says what the step just taken touched
(``Settled.footprint``), as the in-process target does, from the same
``Recorder``: the declaration for the point released or the calls started,
and the oracle's own resources from what the wire showed (every task that
announced a point or left one ran; every answer writes its caller's
response).  The port has no seams the oracle owns, so its store, clock and
ids count as declared, and only ``--audit`` can catch a declaration that
leaves something out.  Without the capability every step touches
everything: exact, only slower.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import trio

from ..._groups import unwrap_single
from ..._model import model
from ..._seams import Footprints
from ...registry import expand, operation, to_wire
from ...registry._values import Json, decode_news, decode_store
from ._client import AdapterClient
from ._client import Answer as WireAnswer
from ._footprints import GROUPS, Recorder
from ._protocol import Answer, Footprint, Introspection, OpenRefused, Point, Settled
from ._wire import PROTOCOL, ProtocolError, dumps


@dataclass(frozen=True)
class Malformed:
    """An ``ok`` value a port sent that is not the documented shape (equal to no model value)."""

    value: Json
    reason: str


def _point(event: dict[str, Json]) -> Point:
    session = event.get("session")
    return Point(
        str(event["task"]), str(event["kind"]), session if isinstance(session, str) else None
    )


class AdapterTarget:
    """A port behind its adapter; see the module docstring.  Make one with ``adapter_target``."""

    def __init__(self, client: AdapterClient) -> None:
        self.client = client
        self.hello: dict[str, Json] = {}
        self._ops: dict[str, object] = {}  # call id -> the model op it stands for (or raw cmd)
        self._unreported: dict[str, None] = {}  # calls of this run whose answer is not yet given
        self._event_index = 0
        self._releases: list[str] = []  # release requests sent, not yet checked
        self._store: dict[str, model.Session] | None = None  # the last settle's store, if fresh
        self._hooks_off_by = "open"  # what last turned the hooks off ("" while they are on)
        self._recorder = Recorder(seams=False)  # the step's footprint, from the declaration
        self._declared: Footprints | None = None  # hello's, for a persistent service
        self._parked: dict[str, Point] = {}  # as the last settle reported them
        self._callers: dict[str, str] = {}  # call id -> the task it runs in
        self._fault_kinds: tuple[str, ...] = ()  # hello's, beside the plain fault

    async def _greet(self) -> None:
        hello = await self.client.call_ok({"cmd": "hello"})
        if not isinstance(hello, dict) or hello.get("protocol") != PROTOCOL:
            shown = repr(hello)[:200]
            raise ProtocolError(
                f'hello must answer {{"protocol": {PROTOCOL!r}, ...}}, got {shown}'
            )
        self.hello = hello
        if "footprints" in self.capabilities:
            try:
                self._declared = Footprints.from_json(hello.get("footprints"), GROUPS)
            except ValueError as exc:
                raise ProtocolError(f"hello offers footprints, but its declaration is not one "
                                    f"(spec/ADAPTER.md section 6): {exc}") from None
        self._fault_kinds = _fault_kinds(hello.get("fault_kinds", []), self.capabilities)

    @property
    def footprints(self) -> Footprints | None:
        """The port's declaration, if its ``hello`` offered one (``footprints``)."""
        return self._declared

    @property
    def description(self) -> str:
        h = self.hello
        parts = [str(h.get("implementation", "?")), str(h.get("version", ""))]
        if h.get("variant"):
            parts.append(f"(variant {h['variant']})")
        return " ".join(p for p in parts if p)

    @property
    def capabilities(self) -> frozenset[str]:
        caps = self.hello.get("capabilities")
        return frozenset(c for c in caps if isinstance(c, str)) if isinstance(caps, list) else (
            frozenset()
        )

    def transcript(self) -> list[str]:
        return list(self.client.transcript)

    @property
    def requests(self) -> int:
        return self.client.sent_count

    async def open(self, capacity: Json, persistent: bool) -> None:
        self.client.mark()
        self._ops.clear()
        self._unreported.clear()
        self._event_index = 0
        self._hooks_off_by = "open"
        self._parked.clear()
        self._callers.clear()
        self._recorder.take()
        # The declaration is the persistent service's (spec/ADAPTER.md section 6): an
        # ephemeral one is explored with every step touching everything.
        self._recorder.declaration = self._declared if persistent else None
        answer = await self.client.call({"cmd": "open", "capacity": capacity,
                                         "persistent": persistent})
        if answer.code == "INVALID_ARGUMENT":  # the service refused it [INPUT]
            raise OpenRefused(answer.code, answer.message)
        if not answer.ok:
            raise ProtocolError(f"{self.client.line(answer.rid)} was answered "
                                f"{answer.as_result()} ({answer.message})")

    async def call(self, op: object, task: str) -> str:
        cmd = op if isinstance(op, dict) else to_wire(op)
        self._store = None
        if cmd.get("cmd") != "observe_store":  # answered at once, in no task
            cmd = {**cmd, "task": task}
        rid = await self.client.send(cmd)
        self._ops[rid] = op
        self._unreported[rid] = None
        self._started(rid, op, task)
        return rid

    def _started(self, rid: str, op: object, task: str) -> None:
        """A call started in ``task``: its declared first step, and the oracle's resources."""
        name: str | None = None
        session: str | None = None
        if not isinstance(op, dict):
            (plain,) = expand(op)
            entry = operation(plain)
            name = entry.name
            n = entry.session(plain)
            session = None if n is None else model.sid(n)
        self._callers[rid] = task
        recorder = self._recorder
        recorder.started(task, name, session)
        recorder.reads.add(("resp", "*"))  # real-time order: after every answer so far
        recorder.writes.add(("task", task))

    async def at_once(self, ops: Sequence[object], task: str | None = None) -> list[str]:
        cmds = []
        for op in ops:
            cmd = op if isinstance(op, dict) else to_wire(op)
            cmds.append({**cmd, **({"task": task} if task else {})})
        self._store = None
        batch, rids = await self.client.send_at_once(cmds)
        await self.client.wait(batch)
        self.client.check_batch(batch)
        for rid, op in zip(rids, ops, strict=True):
            self._ops[rid] = op
            self._unreported[rid] = None
            self._started(rid, op, task or f"req {rid}")
        return rids

    def _answer(self, rid: str, wire: WireAnswer) -> Answer:
        if wire.crashed:
            return Answer(model.Crashed())
        if wire.code is not None:
            return Answer(model.Err(wire.code), wire.message)
        op = self._ops.get(rid)
        if op is None or isinstance(op, dict):
            return Answer(model.Ok(Malformed(wire.value, "an answer to a raw command")))
        try:
            (plain,) = expand(op)
            return Answer(model.Ok(operation(plain).decode(wire.value)))
        except ValueError as exc:
            return Answer(model.Ok(Malformed(wire.value, str(exc))))

    def _arrived(self) -> list[tuple[str, Answer]]:
        """The answers to this run's calls that came since the last settle, in arrival order.

        Only the run's unanswered calls are looked at, never every request
        the client ever sent: that walk grew with each schedule explored and
        was what slowed ``check --adapter`` down run after run (issue 20).
        """
        fresh = []
        for rid in self._unreported:
            wire = self.client.answer(rid)
            if wire is not None:
                fresh.append((self.client.arrived(rid), rid, wire))
        out = []
        for _, rid, wire in sorted(fresh, key=lambda f: f[0]):
            del self._unreported[rid]
            out.append((rid, self._answer(rid, wire)))
        return out

    async def settle(self) -> Settled:
        """Settle, and ask for the store in the same answer (``"store": true``).

        An adapter that does not know the flag answers without a store; then
        ``observe_store`` asks separately.  With the capability ``events`` it
        asks for the events too (``"events": true``), which must then come.
        Releases sent since the last
        settle are checked here: the adapter answers lines in order, so by
        now each has its answer.
        """
        ask_events = "events" in self.capabilities
        cmd: dict[str, Json] = {"cmd": "settle", "store": True}
        if ask_events:
            cmd["events"] = True
        value = await self.client.call_ok(cmd)
        parked = value.get("parked") if isinstance(value, dict) else None
        if not isinstance(parked, list) or not all(
            isinstance(p, dict) and isinstance(p.get("task"), str) for p in parked
        ):
            raise ProtocolError(f'settle must answer {{"parked": [...]}}, got {value!r:.200}')
        self._check_releases()
        if self._hooks_off_by and parked:
            raise ProtocolError(self._parked_while_off(parked))
        self._store = None
        if isinstance(value, dict) and "store" in value:
            try:
                self._store = decode_store(value["store"])
            except ValueError as exc:
                raise ProtocolError(f"settle answered a malformed store: {exc}") from None
        news = None
        if ask_events:
            if not isinstance(value, dict) or "events" not in value:
                raise ProtocolError('settle with "events": true must answer "events" (the '
                                    "adapter offers the events capability)")
            try:
                news = decode_news(value["events"])
            except ValueError as exc:
                raise ProtocolError(f"settle answered malformed events: {exc}") from None
        events = self.client.events[self._event_index:]
        self._event_index = len(self.client.events)
        now = tuple(sorted((_point(p) for p in parked), key=lambda p: p.task))
        announced = tuple(_point(e) for e in events)
        answers = tuple(self._arrived())
        return Settled(parked=now, answers=answers, points=announced,
                       footprint=self._step_taken(now, announced, answers), events=news)

    def _step_taken(self, now: Sequence[Point], announced: Sequence[Point],
                    answers: Sequence[tuple[str, Answer]]) -> Footprint | None:
        """What the step this settle ends touched: the declaration, and what the wire showed.

        A task ran if it announced a point, or left the point it was parked at
        without being released (cancelled, or its call crashed): its resource
        ``task`` is written, so the step that made it move and its own next
        step keep their order.  An answer writes its caller's response (the
        run loop adds what the rules know of calls in flight, ``inflight``).
        """
        recorder = self._recorder
        before, self._parked = self._parked, {p.task: p for p in now}
        for p in announced:
            recorder.writes.add(("task", p.task.split("#")[0]))
        for label, p in before.items():
            if self._parked.get(label) != p:
                recorder.writes.add(("task", label.split("#")[0]))
        for rid, _ in answers:
            task = self._callers.pop(rid, None)
            if task is not None:
                recorder.writes.add(("resp", task))
        return recorder.take()  # None (everything) without a declaration

    def _parked_while_off(self, parked: Sequence[dict[str, Json]]) -> str:
        """Why a task parked while the hooks are off is a protocol error, naming what it holds.

        ``open``, ``restart`` and ``control`` off turn the hooks off (spec/ADAPTER.md
        section 6): nothing parks then, and a call parked anyway is never
        answered, which the oracle would otherwise meet as a bare timeout.
        """
        first = _point(parked[0])
        where = f"{first.kind}" + (f" of {first.session}" if first.session else "")
        held = [self.client.line(rid) for rid in self._unreported
                if f'"task":{dumps(first.task)}' in self.client.line(rid)]
        what = f"; it holds {held[0]}, which can never be answered" if held else ""
        return (f"the adapter keeps its hooks on after {self._hooks_off_by}: settle reports "
                f"{first.task!r} parked at {where}{what} (spec/ADAPTER.md section 6: open and "
                "restart turn the hooks off, and no task parks while they are off)")

    async def wait_any(self, calls: Sequence[str]) -> None:
        await self.client.wait_any(list(calls))

    async def control(self, on: bool) -> None:
        self._store = None
        await self.client.call_ok({"cmd": "control", "points": on})
        self._hooks_off_by = "" if on else "control with points false"
        self._recorder.take()  # what ran before is no step of the schedule


    async def cancel(self, task: str) -> None:
        """Never asked: the adapter protocol cannot cancel a caller (no ``cancel`` capability)."""
        raise LookupError(f"a port's caller cannot be cancelled over the adapter ({task})")

    @property
    def fault_kinds(self) -> tuple[str, ...]:
        """The ways beside the plain fault that ``hello`` offered (``fault_kinds``)."""
        return self._fault_kinds

    async def release(self, task: str, fault: bool = False, kind: str = "") -> None:
        """Send the release without waiting: the next ``settle`` checks its answer.

        The adapter acts on lines in order, so pipelining the release and the
        settle changes nothing but a round trip.
        """
        if kind and (not fault or kind not in self._fault_kinds):
            raise ValueError(f"the port offers no fault kind {kind!r}")
        cmd: dict[str, Json] = {"cmd": "release", "task": task}
        if fault:
            cmd["fault"] = True
            if kind:
                cmd["kind"] = kind
        recorder = self._recorder
        recorder.writes.add(("task", task.split("#")[0]))
        parked = self._parked.get(task)
        if parked is not None:
            recorder.released(task, parked.kind, parked.session)
        self._store = None
        self._releases.append(await self.client.send(cmd, flush=False))

    def _check_releases(self) -> None:
        for rid in self._releases:
            answer = self.client.answer(rid)
            if answer is None:
                raise ProtocolError(f"{self.client.line(rid)} was not answered before the "
                                    "settle sent after it (answers must come in order)")
            if answer.code == "NOT_PARKED":
                self._releases.clear()
                raise LookupError(answer.message)
            if not answer.ok:
                raise ProtocolError(
                    f"{self.client.line(rid)} was answered {answer.as_result()} "
                    f"({answer.message})"
                )
        self._releases.clear()

    async def restart(self) -> None:
        self._store = None
        self._parked.clear()
        self._hooks_off_by = "restart"
        await self.client.call_ok({"cmd": "restart"})

    async def observe_store(self) -> dict[str, model.Session]:
        if self._store is not None:
            return dict(self._store)
        value = await self.client.call_ok({"cmd": "observe_store"})
        try:
            return decode_store(value)
        except ValueError as exc:
            raise ProtocolError(f"observe_store answered a malformed store: {exc}") from None

    def introspect(self) -> Introspection | None:
        return None

    async def exit(self) -> None:
        await self.client.call_ok({"cmd": "exit"})

    async def shutdown(self) -> list[tuple[str, str]] | None:
        return None  # the protocol has no graceful exit: only a crash stops a service

    async def close(self) -> None:
        """Nothing per run: the adapter process lives until ``adapter_target`` ends."""


@contextlib.asynccontextmanager
async def adapter_target(
    argv: Sequence[str], timeout: float = 10.0
) -> AsyncIterator[AdapterTarget]:
    """Start the adapter ``argv`` (never through a shell), greet it, and yield it as a target.

    Raises ``ProtocolError`` if it cannot start or does not greet properly.
    Says ``bye`` (and, if it will not go, kills it) when the block ends.
    """
    client = AdapterClient(list(argv), timeout)
    with unwrap_single():
        async with trio.open_nursery() as nursery:
            try:
                await client.start(nursery)
                target = AdapterTarget(client)
                await target._greet()
                yield target
            finally:
                with trio.CancelScope(shield=True):
                    await client.stop()
                nursery.cancel_scope.cancel()


def _fault_kinds(value: Json, capabilities: frozenset[str]) -> tuple[str, ...]:
    """``hello``'s ``fault_kinds`` (``spec/ADAPTER.md`` section 11): distinct names, each a
    way besides the plain fault the port can fail a store call.  Read only with ``faults``,
    as ``footprints`` only with its capability: the oracle uses nothing hello did not offer."""
    if value == [] or "faults" not in capabilities:
        return ()
    if (not isinstance(value, list) or len(value) > 16
            or not all(isinstance(k, str) and k and len(k) <= 40 and k.isascii()
                       and all(ch.isalnum() or ch == "-" for ch in k) for k in value)
            or len(set(value)) != len(value)):
        raise ProtocolError(f"hello's fault_kinds must be a list of distinct names of letters, "
                            f"digits and '-' (spec/ADAPTER.md section 11), got {value!r:.120}")
    return tuple(str(k) for k in value)


__all__ = ["AdapterTarget", "Malformed", "ProtocolError", "adapter_target"]
