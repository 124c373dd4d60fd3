"""What the engine drives: the ``Target`` protocol, and the plain data it answers with.

A target is one implementation of the contract under test, reached the same
way whatever it is: the reference in this process (``InProcessTarget``) or a
port in another process over the adapter protocol (``AdapterTarget``).  The
engine knows nothing else about it.  The protocol is the adapter protocol of
``spec/ADAPTER.md`` as Python calls:

``open``      a fresh service (capacity, persistent), with a fresh store, a
              logical clock from tick 1 and ids ``sid(1)``, ``sid(2)``, ...
``call``      start one operation in its own task, labelled ``task``; it is
              answered later (``settle`` reports the answers that arrived)
``at_once``   start several, every one before any runs past its first point
``settle``    wait until nothing can move without the oracle: every task is
              parked at a scheduling point or blocked; report the parked
              points and the answers that arrived since the last settle
``control``   scheduling points on (tasks park, announced) or off
``release``   let one parked task run to its next point (failing its store
              call if ``fault``: the target's plain fault, or another way it
              offers, ``fault_kinds``)
``restart``   the process dies (calls in flight are answered ``Crashed``)
              and a new one opens over the same store, clock and ids
``observe_store``  the store's contents, read around the scheduling points

With the capability ``events`` a target's ``settle`` also reports what each
session published since the previous ``settle`` (``Settled.events``), as a
subscriber that subscribed when the session registered and reads only at a
settle sees it ([EVENTS]; ``spec/ADAPTER.md`` section 13).

Everything here is plain data; ``Point.session`` and ids are the canonical
UUID text, as on the wire.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ..._model import model
from ...registry._values import Json
from ._wire import ProtocolError

CLIENT_CALL = "client.call"
"""The virtual point of a client whose previous call has been answered (the oracle's own)."""

AGENT_KINDS = frozenset({"agent.step", "checkpoint"})
"""Point kinds at which an agent works on a session (its turn or its host loop)."""


@dataclass(frozen=True)
class Point:
    """A task parked at a scheduling point (or a client ready to call, ``client.call``)."""

    task: str
    kind: str
    session: str | None = None
    listing_faults: bool = field(default=False, compare=False)  # the target fails store.list too

    @property
    def faultable(self) -> bool:
        """A store call the target can make fail (``release`` with ``fault``).

        Over the adapter: a store call that reads or writes one session
        (``spec/ADAPTER.md`` section 6).  In process the listing too
        ([STORE-FAILURE]: a failed ``list`` answers ``SESSION_STORE_ERROR``).
        """
        if self.kind == "store.list":
            return self.listing_faults
        return self.kind.startswith("store.")


@dataclass(frozen=True)
class Answer:
    """What one call answered: ``Ok(value)``, ``Err(code)`` (with its message) or ``Crashed()``.

    ``revision`` is a white-box fact an in-process target adds to the answer
    of a plain (non-host) create or turn: the session's revision when its
    turn ended, so DURABILITY can be checked exactly.
    """

    result: model.Ok | model.Err | model.Crashed
    message: str = ""
    revision: int | None = None

    @property
    def code(self) -> str | None:
        return self.result.code if isinstance(self.result, model.Err) else None

    @property
    def ok(self) -> bool:
        return isinstance(self.result, model.Ok)


@dataclass(frozen=True)
class GateState:
    armed: bool
    archived: bool
    saved_revision: int


@dataclass(frozen=True)
class Introspection:
    """What only a target in this process can show (``None`` from a port).

    ``running_tasks``: sessions whose task has not ended; ``running_turns``:
    agent turns running per session; ``gates``: each session's checkpointer
    gate; ``checkpoints``: checkpoint calls that returned since the last
    settle, as (session, revision, armed-at-start and no sweep in flight);
    ``writes``: store writes that landed since the last settle, as (session,
    revision, written by a session's own task); ``admitted``: per live
    session, the turns its task has taken or has queued (at most one).
    """

    running_tasks: frozenset[str] = frozenset()
    live: frozenset[str] = frozenset()
    running_turns: Mapping[str, int] = field(default_factory=dict)
    gates: Mapping[str, GateState] = field(default_factory=dict)
    checkpoints: tuple[tuple[str, int, int], ...] = ()
    writes: tuple[tuple[str, int, bool], ...] = ()
    settles: int = 0
    admitted: Mapping[str, int] = field(default_factory=dict)  # turns taken or queued, per session
    events: Mapping[str, model.News] = field(default_factory=dict)
    """[EVENTS] every session's whole stream so far, as the target's subscriber read it at
    each settle: every event since registration, the events lost (lagged), whether it
    ended (a crash ends the streams of the dead process)."""


Resource = tuple[str, str]
"""A thing a step can touch: (group, item); item ``"*"`` stands for every item of the group."""


@dataclass(frozen=True)
class Footprint:
    """What one step may touch: the resources it reads and writes.

    A step is what runs after the engine releases one task or sends one
    call (that task, and every task it wakes).  What the service's code may
    touch is *declared by the service*, per point kind and per call
    (``service/_placement.py``, in the contract's resources: ``row:<id>``,
    ``live:<id>``, ``turn:<id>``, ``agent:<id>``, ``inbox:<id>``,
    ``gate:<id>``, ``capacity``, ``clock``, ``ids``; item ``*``: every
    session), never inferred from its private names.  The in-process target
    adds the oracle's own groups: ``task`` (a task ran: item its name),
    ``resp`` (a call answered: item its task; a new call reads ``*``, so
    real-time order between calls is kept) and ``inflight`` (the calls in
    flight the rules judge by).  Two steps *conflict* when one writes what the
    other reads or writes.

    ``Settled.footprint`` is ``None`` -- the step touches everything -- from
    a port, and in process wherever the declaration is silent or caught
    short (``_footprints``); ``check --audit`` checks the rest.
    """

    reads: frozenset[Resource] = frozenset()
    writes: frozenset[Resource] = frozenset()

    def conflicts(self, other: Footprint) -> bool:
        """Whether the order of the two steps can matter (a write meets an access)."""
        return _meets(self.writes, other.reads | other.writes) or _meets(other.writes, self.reads)


def _meets(writes: frozenset[Resource], accesses: frozenset[Resource]) -> bool:
    if not writes or not accesses:
        return False
    if not writes.isdisjoint(accesses):
        return True
    wild_w = {g for g, i in writes if i == "*"}
    wild_a = {g for g, i in accesses if i == "*"}
    if not wild_w and not wild_a:
        return False
    return any(g in wild_w for g, _ in accesses) or any(g in wild_a for g, _ in writes)


@dataclass(frozen=True)
class Settled:
    """Quiescence: who is parked (sorted by label), and the answers that arrived, in order.

    ``footprint``: what ran since the last settle touched (in process only;
    ``None`` from a port, whose steps the engine must then treat as touching
    everything).  ``events``: what each session published since the last
    settle, a session with nothing to report left out (``None``: the target
    does not offer ``events``) [EVENTS].
    """

    parked: tuple[Point, ...]
    answers: tuple[tuple[str, Answer], ...] = ()
    points: tuple[Point, ...] = ()  # points announced since the last settle, in order
    footprint: Footprint | None = None
    events: Mapping[str, model.News] | None = None


class OpenRefused(ProtocolError):
    """``open`` was refused: the service would not be built with these arguments ([INPUT]).

    A capacity that is not an integer of at least 1 is the service's to
    refuse (``INVALID_ARGUMENT``), as its constructor does; no service is
    open afterwards.  Where the oracle opens a service it expects (every
    case and scenario but the refused ones), a refusal is the target
    breaking the protocol, and reported as that.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class Target(Protocol):
    """One implementation under test; see the module docstring."""

    @property
    def description(self) -> str: ...

    @property
    def capabilities(self) -> frozenset[str]:
        """``points`` (scheduling hooks), ``faults``, ``events``, ``introspection``."""
        ...

    async def open(self, capacity: Json, persistent: bool) -> None:
        """A fresh service; ``OpenRefused`` if the service refuses ``capacity`` [INPUT]."""
        ...

    async def call(self, op: object, task: str) -> str:
        """Start ``op`` (a plain model operation, or a raw wire command ``dict``); its call id."""
        ...

    async def at_once(self, ops: Sequence[object], task: str | None = None) -> list[str]: ...

    async def settle(self) -> Settled: ...

    async def wait_any(self, calls: Sequence[str]) -> None:
        """Return once any of ``calls`` is answered (free-running), or nothing can move."""
        ...

    async def control(self, on: bool) -> None: ...

    @property
    def fault_kinds(self) -> tuple[str, ...]:
        """Ways a store call can fail beside the plain fault, each explored as a fault of its
        own (with ``faults``).  The reference offers ``store-error``: see ``_points``."""
        ...

    async def release(self, task: str, fault: bool = False, kind: str = "") -> None: ...

    async def cancel(self, task: str) -> None:
        """Capability ``cancel``: cancel the caller of client task ``task`` where it is parked
        ([CALLER-CANCEL]); its call will not answer.  ``LookupError`` if it is not parked."""
        ...

    async def restart(self) -> None: ...

    async def observe_store(self) -> dict[str, model.Session]: ...

    def introspect(self) -> Introspection | None: ...

    async def exit(self) -> None:
        """Leave the service as a program does (capability ``exit``, [SHUTDOWN]).

        Its session tasks stop, rows stay; calls in flight go on and are answered
        as the service answers them; a new call is answered ``NOT_OPEN``.
        """
        ...

    async def shutdown(self) -> list[tuple[str, str]] | None:
        """[SHUTDOWN] ``shutdown()`` on the open service, points off: what broke, by clause.

        Each broken promise is a (clause, sentence) pair: [SHUTDOWN] for a
        shutdown that does not return or leaves a session task behind,
        [HOST-MESSAGE] for an injector taken before it that still accepts a
        message after (its session's task has ended).  ``[]`` if nothing
        broke; ``None`` if the target cannot say (a port: the protocol stops
        a service only by a crash).  The service stays as ``shutdown()`` left
        it; the caller restarts it.
        """
        ...

    def transcript(self) -> list[str]:
        """The request lines of the current run (``open`` first), for a replayable report."""
        ...

    @property
    def requests(self) -> int:
        """Request lines sent so far (in process: the ones an adapter client would send)."""
        ...

    async def close(self) -> None: ...


__all__ = [
    "AGENT_KINDS",
    "CLIENT_CALL",
    "Answer",
    "Footprint",
    "GateState",
    "Introspection",
    "Point",
    "Resource",
    "Settled",
    "Target",
]
