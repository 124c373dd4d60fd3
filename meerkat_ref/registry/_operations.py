"""The one list of operations: name, model class, wire command and fields, service call.

Every operation of the contract appears here exactly once.  From an entry
everything else is derived: the wire command a model operation is sent as
(``to_wire``), the model operation a wire command stands for (``from_wire``,
which checks every field), the service call that performs it (``call``, whose
answer is converted to a model value once, by ``_values``), and how a port's
JSON answer is read back (``decode``).  The adapter server, the oracle's
targets, the vectors and the stateful tests all go through this table.

Field checks follow rule WIRE-FIELDS of ``spec/ADAPTER.md`` (section 3): a
command whose shape is wrong -- a missing field, a field of the wrong JSON
type, a value outside its enum (``initial_turn``), a field the command does
not have -- is ``BAD_REQUEST`` (a ``WireError``); a well-shaped value the
contract rejects (clause INPUT: a session id that is not canonical UUID text,
a negative ``limit``, a blank ``model``) is ``INVALID_ARGUMENT``
(``InvalidArgument``).  Both are raised before anything is touched.  An
integer is a JSON number with no fractional part, so ``1.0`` is ``1`` (as in
JSON Schema, and as a JavaScript port reads it).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from .._errors import SessionNotFound
from .._model import model
from .._types import (
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
from . import _values as values
from ._values import Json


class WireError(ValueError):
    """A command that does not have the documented shape; ``code`` is a protocol code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Injector(Protocol):
    def inject(self, text: str) -> None: ...


class Service(Protocol):
    """What an operation's ``call`` needs: the session service's public methods."""

    async def create_session(self, req: CreateSessionRequest) -> RunResult: ...
    async def start_turn(self, session_id: SessionId, req: StartTurnRequest) -> RunResult: ...
    async def event_injector(self, session_id: SessionId) -> Any: ...
    async def interrupt(self, session_id: SessionId) -> None: ...
    async def read(self, session_id: SessionId) -> SessionView: ...
    async def list(self, query: SessionQuery) -> list[SessionSummary]: ...
    async def archive(self, session_id: SessionId) -> None: ...
    async def load_persisted(self, session_id: SessionId) -> Session | None: ...
    async def cancel_all_checkpointers(self) -> None: ...
    async def rearm_all_checkpointers(self) -> None: ...


# -- fields ----------------------------------------------------------------------------

_MISSING: Any = object()


def field(msg: Mapping[str, Json], name: str, kind: str, default: Json = _MISSING) -> Json:
    """``msg[name]`` checked against ``kind`` (str, bool, int, str?, int?); BAD_REQUEST if not.

    An integral float counts as an int and comes back as one (``1.0`` is ``1``).
    """
    value = msg.get(name, _MISSING)
    if value is _MISSING:
        if default is _MISSING:
            raise WireError("BAD_REQUEST", f"{msg.get('cmd')!s}: missing field {name!r}")
        return default
    optional = kind.endswith("?")
    base = kind.rstrip("?")
    if value is None and optional:
        return None
    if base == "int" and isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON has one number type: 1.0 is the integer 1 (rule WIRE-FIELDS)
    ok = {
        "str": isinstance(value, str),
        "bool": isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool),
    }[base]
    if not ok:
        raise WireError(
            "BAD_REQUEST",
            f"{msg.get('cmd')!s}: field {name!r} must be {base}{' or null' if optional else ''}, "
            f"got {type(value).__name__}",
        )
    return value


def session_text(n: int) -> str:
    """The wire form of the model's session ``n`` (``sid(n)``)."""
    return model.sid(n)


def session_of(n: int) -> SessionId:
    return SessionId(uuid.UUID(int=n))


def _session(msg: Mapping[str, Json]) -> int:
    return SessionId.parse(field(msg, "session", "str")).value.int


def _page(value: int | None, name: str) -> int | None:
    if value is not None and value < 0:
        raise InvalidArgument(f"{name} must not be negative, got {value}")
    return value


# -- the table ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    """One operation of the contract, in every form it takes."""

    name: str  # the wire command, and the name histories use
    model: type[Any]  # the model's operation class
    from_wire: Callable[[Mapping[str, Json]], Any]  # checked command -> model op
    to_wire: Callable[[Any], dict[str, Json]]  # model op -> command
    call: Callable[[Service, Any], Awaitable[object]] | None  # None: a process-level op
    to_model: Callable[[Any], object]  # what ``call`` returned -> model value
    decode: Callable[[Json], object]  # a port's ok value -> model value
    session: Callable[[Any], int | None] = lambda op: getattr(op, "id", None)
    fields: tuple[str, ...] = ()  # every field the command may carry besides ``cmd``

    async def perform(self, svc: Service, op: object) -> tuple[object, object]:
        """Run ``op`` on ``svc``: the service's own answer, and its model value."""
        assert self.call is not None, f"{self.name} is not a service call"
        raw = await self.call(svc, op)
        return raw, self.to_model(raw)


def _create_from_wire(msg: Mapping[str, Json]) -> model.Create:
    initial = field(msg, "initial_turn", "str", "run_immediately")
    if initial not in ("run_immediately", "defer"):
        raise WireError("BAD_REQUEST", "create: initial_turn must be run_immediately or defer")
    name = field(msg, "model", "str", "scripted")
    if not name.strip():
        raise InvalidArgument("model must be a non-empty string")
    return model.Create(
        prompt=field(msg, "prompt", "str"),
        system_prompt=field(msg, "system_prompt", "str?", None),
        defer=initial == "defer",
        host_mode=field(msg, "host_mode", "bool", False),
    )


def _create_to_wire(op: model.Create) -> dict[str, Json]:
    cmd: dict[str, Json] = {"cmd": "create", "prompt": op.prompt}
    if op.system_prompt is not None:
        cmd["system_prompt"] = op.system_prompt
    if op.defer:
        cmd["initial_turn"] = "defer"
    if op.host_mode:
        cmd["host_mode"] = True
    return cmd


async def _create_call(svc: Service, op: model.Create) -> RunResult:
    req = CreateSessionRequest(
        model="scripted",
        prompt=op.prompt,
        system_prompt=op.system_prompt,
        host_mode=op.host_mode,
        initial_turn=InitialTurnPolicy.DEFER if op.defer else InitialTurnPolicy.RUN_IMMEDIATELY,
    )
    return await svc.create_session(req)


def _turn_to_wire(op: model.StartTurn) -> dict[str, Json]:
    cmd: dict[str, Json] = {"cmd": "start_turn", "session": session_text(op.id),
                            "prompt": op.prompt}
    if op.host_mode:
        cmd["host_mode"] = True
    return cmd


async def _turn_call(svc: Service, op: model.StartTurn) -> RunResult:
    req = StartTurnRequest(op.prompt, op.host_mode)
    return await svc.start_turn(session_of(op.id), req)


async def _inject_call(svc: Service, op: model.HostMessage) -> None:
    injector = await svc.event_injector(session_of(op.id))
    if injector is None:
        raise SessionNotFound(session_of(op.id))
    injector.inject(op.text)


def _none(value: object) -> None:
    return None


def _on_session(name: str, cls: type[Any],
                run: Callable[[Service, SessionId], Awaitable[object]],
                to_model: Callable[[Any], object] = _none,
                decode: Callable[[Json], object] = values.decode_none) -> Operation:
    """An operation whose only field is ``session``."""

    async def call(svc: Service, op: Any) -> object:
        return await run(svc, session_of(op.id))

    return Operation(
        name, cls, lambda msg: cls(_session(msg)),
        lambda op: {"cmd": name, "session": session_text(op.id)}, call, to_model, decode,
        fields=("session",),
    )


def _no_fields(name: str, cls: type[Any], run: Callable[[Service], Awaitable[None]] | None,
               decode: Callable[[Json], object] = values.decode_none) -> Operation:
    async def call(svc: Service, op: Any) -> object:
        assert run is not None
        await run(svc)
        return None

    return Operation(name, cls, lambda msg: cls(), lambda op: {"cmd": name},
                     call if run is not None else None, _none, decode, lambda op: None)


async def _read(svc: Service, sid: SessionId) -> SessionView:
    return await svc.read(sid)


async def _load(svc: Service, sid: SessionId) -> Session | None:
    return await svc.load_persisted(sid)


def _stored(found: Session | None) -> model.Session | None:
    return None if found is None else values.model_session(found)


def _list_from_wire(msg: Mapping[str, Json]) -> model.List:
    return model.List(
        offset=_page(field(msg, "offset", "int?", None), "offset"),
        limit=_page(field(msg, "limit", "int?", None), "limit"),
    )


def _list_to_wire(op: model.List) -> dict[str, Json]:
    cmd: dict[str, Json] = {"cmd": "list"}
    if op.offset is not None:
        cmd["offset"] = op.offset
    if op.limit is not None:
        cmd["limit"] = op.limit
    return cmd


async def _list_call(svc: Service, op: model.List) -> list[SessionSummary]:
    return await svc.list(SessionQuery(limit=op.limit, offset=op.offset))


def _summaries(rows: list[SessionSummary]) -> tuple[model.Summary, ...]:
    return tuple(values.model_summary(s) for s in rows)


async def _interrupt(svc: Service, sid: SessionId) -> None:
    await svc.interrupt(sid)


async def _archive(svc: Service, sid: SessionId) -> None:
    await svc.archive(sid)


async def _cancel(svc: Service) -> None:
    await svc.cancel_all_checkpointers()


async def _rearm(svc: Service) -> None:
    await svc.rearm_all_checkpointers()


OPERATIONS: tuple[Operation, ...] = (
    Operation("create", model.Create, _create_from_wire, _create_to_wire, _create_call,
              values.model_run, values.decode_run, lambda op: None,
              ("prompt", "system_prompt", "model", "initial_turn", "host_mode")),
    Operation(
        "start_turn", model.StartTurn,
        lambda msg: model.StartTurn(_session(msg), field(msg, "prompt", "str"),
                                    field(msg, "host_mode", "bool", False)),
        _turn_to_wire, _turn_call, values.model_run, values.decode_run,
        fields=("session", "prompt", "host_mode"),
    ),
    Operation(
        "inject", model.HostMessage,
        lambda msg: model.HostMessage(_session(msg), field(msg, "text", "str")),
        lambda op: {"cmd": "inject", "session": session_text(op.id), "text": op.text},
        _inject_call, _none, values.decode_none, fields=("session", "text"),
    ),
    _on_session("interrupt", model.Interrupt, _interrupt),
    _on_session("read", model.Read, _read, values.model_view, values.decode_view),
    Operation("list", model.List, _list_from_wire, _list_to_wire, _list_call, _summaries,
              values.decode_summaries, lambda op: None, ("offset", "limit")),
    _on_session("archive", model.Archive, _archive),
    _on_session("load_persisted", model.LoadPersisted, _load, _stored, values.decode_session),
    _no_fields("cancel_all_checkpointers", model.CancelAllCheckpointers, _cancel),
    _no_fields("rearm_all_checkpointers", model.RearmAllCheckpointers, _rearm),
    _no_fields("restart", model.Restart, None),
    _no_fields("observe_store", model.ObserveStore, None, values.decode_store),
    _no_fields("fail_next_save", model.FailNextSave, None),
)
"""Every operation, in the order ``spec/ADAPTER.md`` lists them.

The last three act on the process or the store, not through the service
(``call`` is ``None``): the target performs them itself, in order, in no task.
``fail_next_save`` is a store fault [SAVE-FAILED], for targets with the
``faults`` capability.
"""

BY_NAME: dict[str, Operation] = {o.name: o for o in OPERATIONS}
BY_MODEL: dict[type[Any], Operation] = {o.model: o for o in OPERATIONS}

SERVICE_COMMANDS: tuple[str, ...] = tuple(o.name for o in OPERATIONS)
"""The wire commands, one per model operation (the ``*AtOnce`` ones are several at once)."""

PROCESS_COMMANDS: tuple[str, ...] = tuple(o.name for o in OPERATIONS if o.call is None)
"""The commands that are not service calls: never in an ``at_once``, answered in order."""


def operation(op: object) -> Operation:
    """The entry of a (plain) model operation."""
    try:
        return BY_MODEL[type(op)]
    except KeyError:
        raise TypeError(f"not a plain model operation: {op!r}") from None


def expand(op: object) -> tuple[Any, ...]:
    """The plain operations a model operation stands for: several, sent at once, for ``*AtOnce``."""
    match op:
        case model.TurnsAtOnce(id=n, prompt=prompt, host_mode=host, count=count):
            return (model.StartTurn(n, prompt, host),) * count
        case model.CreatesAtOnce(count=count, prompt=prompt):
            return (model.Create(prompt, defer=True),) * count
    operation(op)
    return (op,)


def at_once(op: object) -> bool:
    return isinstance(op, model.TurnsAtOnce | model.CreatesAtOnce)


def to_wire(op: object) -> dict[str, Json]:
    return operation(op).to_wire(op)


def from_wire(msg: Mapping[str, Json]) -> Any:
    """The model operation a wire command stands for; ``WireError``/``InvalidArgument`` if bad."""
    cmd = msg.get("cmd")
    entry = BY_NAME.get(cmd) if isinstance(cmd, str) else None
    if entry is None:
        raise WireError("UNKNOWN_COMMAND", f"unknown command {cmd!r}")
    known_fields(msg, entry.fields)
    return entry.from_wire(msg)


def known_fields(msg: Mapping[str, Json], fields: tuple[str, ...]) -> None:
    """BAD_REQUEST if ``msg`` carries a field besides ``cmd`` and ``fields`` (rule WIRE-FIELDS).

    A misspelt optional field (``hostmode``) would otherwise be ignored and the
    call run with its default: the caller would never learn of the typo.
    """
    extra = sorted(k for k in msg if k != "cmd" and k not in fields)
    if extra:
        shown = ", ".join(repr(k[:40]) for k in extra[:5])
        plural = "s" if len(extra) > 1 else ""
        raise WireError("BAD_REQUEST", f"{msg.get('cmd')!s}: unknown field{plural} {shown}")


def describe(op: object) -> str:
    """A short text of an operation for people: ``start_turn s1 'more'``."""
    entry = operation(op)
    parts = [entry.name]
    n = entry.session(op)
    if n is not None:
        parts.append(session_of(n).short())
    for key in ("prompt", "text"):
        if hasattr(op, key):
            parts.append(repr(getattr(op, key)))
    if getattr(op, "host_mode", False):
        parts.append("host")
    if getattr(op, "defer", False):
        parts.append("defer")
    if isinstance(op, model.List) and (op.offset is not None or op.limit is not None):
        parts.append(f"offset={op.offset} limit={op.limit}")
    return " ".join(parts)


__all__ = [
    "BY_MODEL",
    "BY_NAME",
    "OPERATIONS",
    "PROCESS_COMMANDS",
    "SERVICE_COMMANDS",
    "Operation",
    "Service",
    "WireError",
    "at_once",
    "describe",
    "expand",
    "field",
    "from_wire",
    "known_fields",
    "operation",
    "session_of",
    "session_text",
    "to_wire",
]
