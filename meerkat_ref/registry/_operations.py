"""The one list of operations: each declared once, as a field table, and everything derived.

Every operation of the contract appears here exactly once (``OPERATIONS``), as
an ``Operation``: its wire command's fields (``Field``: wire name, JSON kind,
default, the model attribute it fills, its enum and its contract check), the
service call that performs it (``call``, whose answer is converted to a model
value once, by ``_values``), how a port's JSON answer is read back
(``decode``), its row of the docs, and what generators draw it from (each
field's ``domain``, ``draw``, ``sweep``: ``_domains``).  Derived from the
table, written nowhere else: ``fields``, the codec (``from_wire``,
``to_wire``), the session an operation names, ``describe``, ADAPTER.md's
command table and the schema's command objects (``specgen/docs.py``), the
vectors' random draw, the stateful tests' strategies and the sweep's
alphabet.  The adapter server, the oracle's targets, the vectors and the
stateful tests all go through this table.

Field checks follow rule WIRE-FIELDS of ``spec/ADAPTER.md`` (section 3): a
command whose shape is wrong -- a missing field, a field of the wrong JSON
type, a value outside its enum (``initial_turn``), a field the command does
not have -- is ``BAD_REQUEST`` (a ``WireError``); a well-shaped value the
contract rejects (clause INPUT: a session id that is not canonical UUID text,
a negative ``limit``, a blank ``model``) is ``INVALID_ARGUMENT``
(``InvalidArgument``).  Every field's shape is checked before any value, so
a command that is both is ``BAD_REQUEST``; both are raised before anything
is touched.  An integer is a JSON number with no fractional part, so ``1.0``
is ``1`` (as in JSON Schema, and as a JavaScript port reads it).
"""

from __future__ import annotations

import functools
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
from ._domains import (
    Count,
    Domain,
    Draw,
    Drawn,
    Flag,
    OneOf,
    Pool,
    Sessions,
    SweepCall,
    undeclared,
)
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


# -- the field table ---------------------------------------------------------------------

REQUIRED: Any = _MISSING
"""A field's default when the command must carry it."""


@dataclass(frozen=True)
class Field:
    """One field of a command, declared once: from it the codec, the docs and the schema.

    ``kind`` is the JSON kind (``str``, ``bool``, ``int``, ``str?``, ``int?``:
    ``?`` allows null) or ``session`` (a string holding canonical id text,
    the model's ``n``).  ``attr`` is the model attribute it fills (``None``:
    read and checked, never passed on: create's ``model``).  ``enum`` maps
    each allowed wire value to its model value (a value outside it is
    ``BAD_REQUEST``); ``check`` is the contract's own check of a well-shaped
    value (its message, or ``None``: fine), answered ``INVALID_ARGUMENT``
    [INPUT].  ``domain`` is what generators draw it from; ``shown`` how
    ``describe`` shows it (``""``: not, ``"repr"``: quoted, ``"="``:
    ``attr=value`` with the other ``=`` fields, when one is set; any other
    word: that word when the value is true); ``about``, a note for the docs.
    """

    name: str
    kind: str
    attr: str | None
    default: Json = REQUIRED
    enum: tuple[tuple[Json, object], ...] = ()
    check: Callable[[Any], str | None] | None = None
    domain: Domain | None = None
    shown: str = ""
    about: str = ""

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def read(self, msg: Mapping[str, Json]) -> Json:
        """The field's wire value, its shape checked (``WireError`` BAD_REQUEST if wrong)."""
        kind = "str" if self.kind == "session" else self.kind
        raw = field(msg, self.name, kind, self.default)
        if self.enum and not any(type(raw) is type(w) and raw == w for w, _ in self.enum):
            allowed = " or ".join(str(w) for w, _ in self.enum)
            raise WireError("BAD_REQUEST", f"{msg.get('cmd')!s}: {self.name} must be {allowed}")
        return raw

    def value(self, raw: Json) -> object:
        """The model value of a well-shaped wire value; ``InvalidArgument`` if refused."""
        if self.kind == "session":
            return SessionId.parse(raw).value.int  # [IDS] canonical text only
        if self.check is not None and raw is not None:
            problem = self.check(raw)
            if problem is not None:
                raise InvalidArgument(problem)
        if self.enum:
            return dict(self.enum)[raw]
        return raw

    def wire(self, value: object) -> Json:
        """The wire value of a model value."""
        if self.kind == "session":
            assert isinstance(value, int)
            return session_text(value)
        if self.enum:
            return next(w for w, m in self.enum if m == value)
        return value

    def at_default(self, value: object) -> bool:
        """Whether ``value`` is what the command means without the field (so it is left out)."""
        return not self.required and value == self.value(self.default)


def _not_blank(value: str) -> str | None:
    return None if value.strip() else "model must be a non-empty string"


def _not_negative(name: str) -> Callable[[int], str | None]:
    def check(value: int) -> str | None:
        return f"{name} must not be negative, got {value}" if value < 0 else None

    return check


SESSION = Field("session", "session", "id", domain=Sessions())
PAGE_FIELDS = (
    Field("offset", "int?", "offset", None, check=_not_negative("offset"), domain=Pool("page"),
          shown="=", about="negative is INVALID_ARGUMENT"),
    Field("limit", "int?", "limit", None, check=_not_negative("limit"), domain=Pool("page"),
          shown="=", about="negative is INVALID_ARGUMENT"),
)


# -- the table ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    """One operation of the contract, declared once, in every form it takes.

    ``table`` is its field table; everything about its command is derived
    from it (``fields``, ``from_wire``, ``to_wire``, ``session``, ``describe``,
    ADAPTER.md's command table and the schema's command objects).  ``call``
    is the service call that performs it (``None``: a process-level
    operation, which the target performs itself), ``to_model`` turns what
    ``call`` returned into a model value, ``decode`` reads a port's answer.
    ``clauses`` are the clauses of ``spec/CONTRACT.md`` a step of it checks
    (the vectors' ``checks``; ``_cases.step_clauses`` refines them by the
    state).  ``draw`` and ``sweep`` (with each field's ``domain``) are what the
    generators interpret; ``None`` is "not declared", which a generator
    refuses (``DomainError``), where ``()`` says "the sweep makes no call of
    it".  ``about``, ``answers`` and ``errors`` are its row of the docs.
    """

    name: str  # the wire command, and the name histories use
    model: type[Any]  # the model's operation class
    table: tuple[Field, ...]
    call: Callable[[Service, Any], Awaitable[object]] | None
    to_model: Callable[[Any], object]
    decode: Callable[[Json], object]
    about: str = ""  # what it is, for the schema: the service call
    answers: str = ""  # its ok value, for the docs
    errors: str = ""  # the error codes it may answer, for the docs
    draw: Draw | None = None
    sweep: tuple[SweepCall, ...] | None = None
    clauses: tuple[str, ...] = ()  # what a step of it checks, first the one blamed

    @property
    def fields(self) -> tuple[str, ...]:
        """Every field the command may carry besides ``cmd``."""
        return tuple(f.name for f in self.table)

    def from_wire(self, msg: Mapping[str, Json]) -> Any:
        """The model operation of a command whose fields are known (rule WIRE-FIELDS).

        Every field's shape first (``BAD_REQUEST``), then the contract's checks
        of the values (``INVALID_ARGUMENT``): a command that is both ill-shaped
        and ill-valued is ``BAD_REQUEST``, as its schema says.
        """
        raws = [(f, f.read(msg)) for f in self.table]
        values = {f.attr: f.value(raw) for f, raw in raws}
        return self.model(**{attr: v for attr, v in values.items() if attr is not None})

    def to_wire(self, op: Any) -> dict[str, Json]:
        """The command of a model operation; a field at its default is left out."""
        cmd: dict[str, Json] = {"cmd": self.name}
        for f in self.table:
            if f.attr is None:
                continue
            value = getattr(op, f.attr)
            if not f.at_default(value):
                cmd[f.name] = f.wire(value)
        return cmd

    def session(self, op: Any) -> int | None:
        """The ``n`` of the session ``op`` names, if it names one."""
        for f in self.table:
            if f.kind == "session" and f.attr is not None:
                value: int = getattr(op, f.attr)
                return value
        return None

    def drawn(self) -> Drawn:
        """How the generators draw it; ``DomainError`` if it declares no ``draw`` or a domain."""
        if self.draw is None:
            raise undeclared(self.name, "draw", "give its Operation a draw=Draw(weight, rank)")
        args = []
        for f in self.table:
            if f.attr is None:
                continue
            if f.domain is None:
                raise undeclared(self.name, f"domain for field {f.name!r}",
                                 "give the Field a domain= (Sessions(), Pool(...), Flag(p)...)")
            args.append((f.attr, f.domain))
        return Drawn(self.name, self.model, tuple(args), self.draw)

    async def perform(self, svc: Service, op: object) -> tuple[object, object]:
        """Run ``op`` on ``svc``: the service's own answer, and its model value."""
        assert self.call is not None, f"{self.name} is not a service call"
        raw = await self.call(svc, op)
        return raw, self.to_model(raw)


async def _create_call(svc: Service, op: model.Create) -> RunResult:
    req = CreateSessionRequest(
        model="scripted",
        prompt=op.prompt,
        system_prompt=op.system_prompt,
        host_mode=op.host_mode,
        initial_turn=InitialTurnPolicy.DEFER if op.defer else InitialTurnPolicy.RUN_IMMEDIATELY,
    )
    return await svc.create_session(req)


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


def _on_session(run: Callable[[Service, SessionId], Awaitable[object]],
                ) -> Callable[[Service, Any], Awaitable[object]]:
    """The call of an operation whose only argument is its session."""

    async def call(svc: Service, op: Any) -> object:
        return await run(svc, session_of(op.id))

    return call


def _no_args(run: Callable[[Service], Awaitable[None]],
             ) -> Callable[[Service, Any], Awaitable[None]]:
    async def call(svc: Service, op: Any) -> None:
        await run(svc)

    return call


async def _read(svc: Service, sid: SessionId) -> SessionView:
    return await svc.read(sid)


async def _load(svc: Service, sid: SessionId) -> Session | None:
    return await svc.load_persisted(sid)


def _stored(found: Session | None) -> model.Session | None:
    return None if found is None else values.model_session(found)


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


_PERSISTENCE = "`SESSION_PERSISTENCE_DISABLED`"
_NOT_FOUND = "`SESSION_NOT_FOUND`"

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "create", model.Create,
        (Field("prompt", "str", "prompt", domain=Pool("prompt"), shown="repr"),
         Field("system_prompt", "str?", "system_prompt", None, domain=OneOf((None, "s"))),
         Field("model", "str", None, "scripted", check=_not_blank,
               about="blank is INVALID_ARGUMENT"),
         Field("initial_turn", "str", "defer", "run_immediately",
               enum=(("run_immediately", False), ("defer", True)), domain=Flag(0.3),
               shown="defer"),
         Field("host_mode", "bool", "host_mode", False, domain=Flag(0.4), shown="host")),
        _create_call, values.model_run, values.decode_run,
        about="create_session", answers="run result",
        errors="`AGENT_ERROR` (capacity: `Max sessions reached (a/m)`; cancelled: "
               "`Agent error: run cancelled`)",
        draw=Draw(6, 0), clauses=("CREATE", "IDS", "TIME"),
        sweep=(SweepCall("create", {"prompt": "hello"}),
               SweepCall("create-host", {"prompt": "serve", "host_mode": True})),
    ),
    Operation(
        "start_turn", model.StartTurn,
        (SESSION, Field("prompt", "str", "prompt", domain=Pool("prompt"), shown="repr"),
         Field("host_mode", "bool", "host_mode", False, domain=Flag(0.4), shown="host")),
        _turn_call, values.model_run, values.decode_run,
        about="start_turn", answers="run result",
        errors=f"{_NOT_FOUND}, `SESSION_BUSY`, `AGENT_ERROR`",
        draw=Draw(5, 1), sweep=(SweepCall("turn", {"prompt": "more"}),),
        clauses=("TURN", "TIME"),
    ),
    Operation(
        "inject", model.HostMessage,
        (SESSION, Field("text", "str", "text", domain=Pool("text"), shown="repr")),
        _inject_call, _none, values.decode_none,
        about="(await event_injector(session)).inject(text)", answers="`null`",
        errors=f"{_NOT_FOUND} (no injector)",
        draw=Draw(5, 2), sweep=(SweepCall("inject", {"text": "ping"}),),
        clauses=("HOST-MESSAGE",),
    ),
    Operation(
        "interrupt", model.Interrupt, (SESSION,), _on_session(_interrupt), _none,
        values.decode_none, about="interrupt", answers="`null`",
        errors=f"{_NOT_FOUND}, `SESSION_NOT_RUNNING`",
        draw=Draw(3, 6), sweep=(SweepCall("interrupt"),), clauses=("INTERRUPT",),
    ),
    Operation(
        "read", model.Read, (SESSION,), _on_session(_read), values.model_view,
        values.decode_view, about="read", answers="view", errors=_NOT_FOUND,
        draw=Draw(2, 3), sweep=(SweepCall("read"),), clauses=("READ",),
    ),
    Operation(
        "list", model.List, PAGE_FIELDS, _list_call, _summaries, values.decode_summaries,
        about="list(SessionQuery(limit, offset))", answers="list of summaries",
        draw=Draw(3, 4), clauses=("LIST", "LIST-ORDER"),
        # the second row of a page: merging live and stored before paging shows
        sweep=(SweepCall("list"), SweepCall("page", {"offset": 1, "limit": 1})),
    ),
    Operation(
        "archive", model.Archive, (SESSION,), _on_session(_archive), _none, values.decode_none,
        about="archive", answers="`null`", errors=_NOT_FOUND,
        draw=Draw(3, 5), sweep=(SweepCall("archive"),), clauses=("ARCHIVE", "ARCHIVE-FINAL"),
    ),
    Operation(
        "cancel_all_checkpointers", model.CancelAllCheckpointers, (), _no_args(_cancel), _none,
        values.decode_none, about="cancel_all_checkpointers", answers="`null`",
        errors=_PERSISTENCE, draw=Draw(1, 11, persistent=True), sweep=(SweepCall("cancel"),),
        clauses=("STOP-RESUME", "CHECKPOINT-GATE"),
    ),
    Operation(
        "rearm_all_checkpointers", model.RearmAllCheckpointers, (), _no_args(_rearm), _none,
        values.decode_none, about="rearm_all_checkpointers", answers="`null`",
        errors=_PERSISTENCE, draw=Draw(1, 12, persistent=True), sweep=(SweepCall("rearm"),),
        clauses=("STOP-RESUME", "CHECKPOINT-GATE"),
    ),
    Operation(
        "load_persisted", model.LoadPersisted, (SESSION,), _on_session(_load), _stored,
        values.decode_session, about="load_persisted", answers="stored session or `null`",
        errors=_PERSISTENCE, draw=Draw(1, 10, persistent=True), sweep=(SweepCall("load"),),
        clauses=("LOAD-PERSISTED",),
    ),
    # The sweep makes none of these three calls itself: its crashes and faults are its own
    # dimensions, and it observes the store after every step.
    Operation(
        "restart", model.Restart, (), None, _none, values.decode_none,
        about="the process dies and a new one opens the same store",
        answers="`null`, after answering every call in flight `crashed` (in the order they "
                "were sent); a new process over the same store, clock and ids",
        draw=Draw(2, 7), sweep=(), clauses=("RESTART",),
    ),
    Operation(
        "observe_store", model.ObserveStore, (), None, _none, values.decode_store,
        about="every stored session",
        answers="`{id: stored session}`, read around the service (no scheduling points); "
                "`{}` when ephemeral",
        draw=Draw(1, 13), sweep=(), clauses=("DURABILITY", "CHECKPOINT"),
    ),
    Operation(
        "fail_next_save", model.FailNextSave, (), None, _none, values.decode_none,
        about="a store fault",
        answers="`null`, at once; the store refuses the next save it is asked for (capability "
                "`faults`, section 11)",
        draw=Draw(3, 14, persistent=True, faults=True), sweep=(), clauses=("SAVE-FAILED",),
    ),
)
"""Every operation, in the order ``spec/ADAPTER.md`` lists them.

The last three act on the process or the store, not through the service
(``call`` is ``None``): the target performs them itself, in order, in no task.
``fail_next_save`` is a store fault [SAVE-FAILED], for targets with the
``faults`` capability.
"""

@dataclass(frozen=True)
class AtOnce:
    """A model operation that stands for several plain calls made at once [ATOMIC].

    ``expand`` gives the calls (the target sends them in one ``at_once``);
    ``drawn`` is how generators draw it.
    """

    drawn: Drawn
    expand: Callable[[Any], tuple[Any, ...]]


def _turns(op: model.TurnsAtOnce) -> tuple[model.StartTurn, ...]:
    return (model.StartTurn(op.id, op.prompt, op.host_mode),) * op.count


def _creates(op: model.CreatesAtOnce) -> tuple[model.Create, ...]:
    return (model.Create(op.prompt, defer=True),) * op.count


AT_ONCE: tuple[AtOnce, ...] = (
    AtOnce(Drawn("turns_at_once", model.TurnsAtOnce,
                 (("id", Sessions()), ("prompt", Pool("prompt")), ("host_mode", Flag(0.4)),
                  ("count", Count(2, 3))), Draw(2, 8)), _turns),
    AtOnce(Drawn("creates_at_once", model.CreatesAtOnce,
                 (("count", Count(2, 4)), ("prompt", Pool("prompt"))), Draw(2, 9)), _creates),
)
"""The model operations that are several plain calls at once (``expand``)."""

_AT_ONCE: dict[type[Any], AtOnce] = {a.drawn.model: a for a in AT_ONCE}


def draws() -> tuple[Drawn, ...]:
    """Every kind of model operation the generators draw, in the draw's order (by rank).

    ``DomainError`` if an operation declares no draw or leaves a field's domain out.
    """
    return tuple(sorted((*(o.drawn() for o in OPERATIONS), *(a.drawn for a in AT_ONCE)),
                        key=lambda d: d.draw.rank))


def sweep_alphabet() -> tuple[tuple[str, Callable[[int], object] | None, object], ...]:
    """The calls the sweep makes: (label, the call on session ``n`` or ``None``, the plain call).

    One entry per ``SweepCall``, in the registry's order: an operation with a
    session gives its call on ``n`` (and ``None`` as the plain call); one
    without gives ``None`` and its one call.  ``DomainError`` if an operation
    declares no ``sweep``.
    """
    out: list[tuple[str, Callable[[int], object] | None, object]] = []
    for entry in OPERATIONS:
        if entry.sweep is None:
            raise undeclared(entry.name, "sweep",
                             "give its Operation sweep=(SweepCall(label, {...}), ...), or () "
                             "if the sweep makes no call of it")
        keyed = next((f.attr for f in entry.table if f.kind == "session"), None)
        for call in entry.sweep:
            if keyed is None:
                out.append((call.label, None, entry.model(**call.args)))
            else:
                out.append((call.label, functools.partial(_on, entry.model, keyed, call.args),
                            None))
    return tuple(out)


def _on(cls: type[Any], keyed: str, args: Mapping[str, Any], n: int) -> object:
    return cls(**{keyed: n, **args})


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
    several = _AT_ONCE.get(type(op))
    if several is not None:
        return several.expand(op)
    operation(op)
    return (op,)


def at_once(op: object) -> bool:
    return type(op) in _AT_ONCE


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
    """A short text of an operation for people: ``start_turn s1 'more'`` (fields' ``shown``)."""
    entry = operation(op)
    parts = [entry.name]
    n = entry.session(op)
    if n is not None:
        parts.append(session_of(n).short())
    paged = False
    for f in entry.table:
        if f.attr is None or f.kind == "session" or not f.shown:
            continue
        value = getattr(op, f.attr)
        if f.shown == "repr":
            parts.append(repr(value))
        elif f.shown == "=":
            group = [g for g in entry.table if g.shown == "=" and g.attr is not None]
            if not paged and any(not g.at_default(getattr(op, str(g.attr))) for g in group):
                parts.append(" ".join(f"{g.attr}={getattr(op, str(g.attr))}" for g in group))
            paged = True
        elif value:
            parts.append(f.shown)
    return " ".join(parts)


__all__ = [
    "AT_ONCE",
    "BY_MODEL",
    "BY_NAME",
    "OPERATIONS",
    "PROCESS_COMMANDS",
    "SERVICE_COMMANDS",
    "AtOnce",
    "Field",
    "Operation",
    "Service",
    "WireError",
    "at_once",
    "describe",
    "draws",
    "expand",
    "field",
    "from_wire",
    "known_fields",
    "operation",
    "session_of",
    "session_text",
    "sweep_alphabet",
    "to_wire",
]
