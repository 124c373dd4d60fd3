"""Plain values of the session contract.

Every type here is immutable data: no Trio, no I/O.  Names mirror the Rust
crate (``meerkat-core`` 0.4.0) in Python form, so a port author can map one to
the other field by field.

Timestamps are integers (microseconds since the Unix epoch under
``SystemClock``, logical ticks under ``LogicalClock``): integers compare
exactly, serialise without loss, and let the pure model in ``models/`` predict
them.
"""

from __future__ import annotations

import enum
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Protocol, TypeVar

_T = TypeVar("_T")

Timestamp = int
"""Microseconds since the epoch (system clock) or a logical tick."""

_CANONICAL_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
"""The one text of a session id (clause IDS): what ``str(uuid.UUID(...))`` gives."""


class InvalidArgument(ValueError):
    """Bad input from a caller: raised before anything is touched (clause INPUT).

    ``code`` is stable (``INVALID_ARGUMENT``) so adapters can report it.  A
    value of the wrong type is bad input too (not a bare ``TypeError``): a
    caller handles every malformed argument with one ``except``.
    """

    code = "INVALID_ARGUMENT"


SHOWN_CHARS = 80
"""How much of a bad value an error message quotes: input can be megabytes long."""


def shown(value: object, limit: int = SHOWN_CHARS) -> str:
    """``repr(value)`` for an error message, cut to about ``limit`` characters."""
    if isinstance(value, str | bytes) and len(value) > limit:
        unit = "characters" if isinstance(value, str) else "bytes"
        return f"{value[:limit]!r}... ({len(value):,} {unit})"
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def require(value: object, kind: type[_T], what: str) -> _T:
    """``value`` if it is a ``kind``; else ``InvalidArgument``: ``what`` takes a ``kind``."""
    if not isinstance(value, kind):
        raise InvalidArgument(f"{what} takes a {kind.__name__}, got {type(value).__name__}")
    return value


@dataclass(frozen=True, order=True, slots=True)
class SessionId:
    """A session's identity: a UUID, shown in its canonical text form."""

    value: uuid.UUID

    @classmethod
    def new(cls) -> SessionId:
        return cls(uuid.uuid4())

    @classmethod
    def parse(cls, text: object) -> SessionId:
        """A ``SessionId``, or its canonical text; anything else is ``InvalidArgument``.

        Canonical text only (clause IDS): 36 characters, lower-case hex digits
        in groups of 8-4-4-4-12 joined by hyphens, exactly what ``str`` of an
        id gives.  Upper case, braces, ``urn:uuid:``, bare hex, and the odd
        forms Python's ``uuid.UUID`` lets through (``_`` between digits, a
        leading space) are refused, on the wire and in the API alike: one id
        has one text, so a port needs one regular expression, not Python's
        parser.
        """
        if isinstance(text, SessionId):
            return text
        if not isinstance(text, str):
            raise InvalidArgument(f"session id must be a string, got {type(text).__name__}")
        if _CANONICAL_ID.fullmatch(text) is None:
            raise InvalidArgument(
                f"malformed session id {shown(text)}: expected canonical UUID text "
                "(lower-case 8-4-4-4-12 hex digits)"
            )
        return cls(uuid.UUID(text))

    @classmethod
    def from_int(cls, n: int) -> SessionId:
        """A deterministic id (``00000000-...-<n>``), used by tests and the explorer."""
        return cls(uuid.UUID(int=n))

    def __str__(self) -> str:
        return str(self.value)

    def short(self) -> str:
        """A short label for diagrams: the last non-zero hex digits."""
        text = self.value.hex.lstrip("0") or "0"
        return "s" + text[-6:]


def as_session_id(value: object) -> SessionId:
    """Accept a ``SessionId`` or its text form, for every public entry point."""
    return SessionId.parse(value)


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
        )


@dataclass(frozen=True, slots=True)
class SystemMessage:
    content: str
    role: str = field(default="system", init=False)


@dataclass(frozen=True, slots=True)
class UserMessage:
    content: str
    role: str = field(default="user", init=False)


@dataclass(frozen=True, slots=True)
class AssistantMessage:
    content: str
    usage: Usage = Usage()
    role: str = field(default="assistant", init=False)


@dataclass(frozen=True, slots=True)
class ToolResultMessage:
    tool_use_id: str
    content: str
    is_error: bool = False
    role: str = field(default="tool_result", init=False)


Message = SystemMessage | UserMessage | AssistantMessage | ToolResultMessage

_EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Session:
    """A full session: identity, history, times, usage.

    Immutable: the agent replaces its session on every change, so a snapshot
    handed to a checkpointer or the store can never change under it.

    ``revision`` counts changes.  The reference's checkpointer compares
    revisions, not message counts, so a change that keeps the count (a
    compaction, an edit) is still saved (window 4 of the seed).
    """

    id: SessionId
    created_at: Timestamp
    updated_at: Timestamp
    messages: tuple[Message, ...] = ()
    metadata: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    usage: Usage = Usage()
    revision: int = 0
    version: int = 1

    def push(self, message: Message, now: Timestamp) -> Session:
        usage = self.usage + message.usage if isinstance(message, AssistantMessage) else self.usage
        return replace(
            self,
            messages=(*self.messages, message),
            updated_at=now,
            usage=usage,
            revision=self.revision + 1,
        )

    def rewrite(self, messages: tuple[Message, ...], now: Timestamp) -> Session:
        """Replace the history (compaction); usage is kept, the revision moves."""
        return replace(self, messages=messages, updated_at=now, revision=self.revision + 1)

    @property
    def message_count(self) -> int:
        return len(self.messages)

    def total_tokens(self) -> int:
        return self.usage.total_tokens

    def total_usage(self) -> Usage:
        return self.usage

    def last_assistant_text(self) -> str | None:
        for message in reversed(self.messages):
            if isinstance(message, AssistantMessage):
                return message.content
        return None

    def meta(self) -> SessionMeta:
        return SessionMeta(
            id=self.id,
            created_at=self.created_at,
            updated_at=self.updated_at,
            message_count=self.message_count,
            total_tokens=self.total_tokens(),
            metadata=self.metadata,
        )


@dataclass(frozen=True, slots=True)
class SessionMeta:
    """The store's listing projection of a session."""

    id: SessionId
    created_at: Timestamp
    updated_at: Timestamp
    message_count: int
    total_tokens: int
    metadata: Mapping[str, str] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class RunResult:
    text: str
    session_id: SessionId
    usage: Usage = Usage()
    turns: int = 0
    tool_calls: int = 0


@dataclass(frozen=True, slots=True)
class SessionSummary:
    session_id: SessionId
    created_at: Timestamp
    updated_at: Timestamp
    message_count: int
    total_tokens: int
    is_active: bool

    def sort_key(self) -> tuple[int, str]:
        return list_order_key(self.updated_at, self.session_id)


def list_order_key(updated_at: Timestamp, session_id: SessionId) -> tuple[int, str]:
    """The one order every listing uses: newest ``updated_at`` first, then id.

    Live and stored sessions share it, so the persistent service can merge a
    page of the store with the live sessions without reading the whole store.
    """
    return (-updated_at, str(session_id))


@dataclass(frozen=True, slots=True)
class SessionInfo:
    session_id: SessionId
    created_at: Timestamp
    updated_at: Timestamp
    message_count: int
    is_active: bool
    last_assistant_text: str | None


@dataclass(frozen=True, slots=True)
class SessionUsage:
    total_tokens: int
    usage: Usage


@dataclass(frozen=True, slots=True)
class SessionView:
    state: SessionInfo
    billing: SessionUsage


def _check_page(limit: int | None, offset: int | None) -> None:
    for name, value in (("limit", limit), ("offset", offset)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidArgument(f"{name} must be an integer or None, got {value!r}")
        if value < 0:
            raise InvalidArgument(f"{name} must not be negative, got {value}")


@dataclass(frozen=True, slots=True)
class SessionQuery:
    limit: int | None = None
    offset: int | None = None

    def __post_init__(self) -> None:
        _check_page(self.limit, self.offset)


@dataclass(frozen=True, slots=True)
class SessionFilter:
    """What a store's ``list`` selects: strictly after the given times, then a page."""

    created_after: Timestamp | None = None
    updated_after: Timestamp | None = None
    limit: int | None = None
    offset: int | None = None

    def __post_init__(self) -> None:
        _check_page(self.limit, self.offset)
        for name in ("created_after", "updated_after"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise InvalidArgument(f"{name} must be an integer timestamp or None")

    def admits(self, meta: SessionMeta) -> bool:
        if self.created_after is not None and meta.created_at <= self.created_after:
            return False
        return self.updated_after is None or meta.updated_at > self.updated_after


class InitialTurnPolicy(enum.Enum):
    RUN_IMMEDIATELY = "run_immediately"
    DEFER = "defer"


class SessionCheckpointer(Protocol):
    """Persists a session from inside a host loop (clause CHECKPOINT).

    Failures are logged, never raised: a failed save must not kill a host
    loop.  Defined here, with the values, because ``BuildOptions`` carries one.
    """

    async def checkpoint(self, session: Session) -> None: ...


@dataclass(frozen=True, slots=True)
class BuildOptions:
    """Options for building the agent; the persistent service injects a checkpointer."""

    checkpointer: SessionCheckpointer | None = None


@dataclass(frozen=True, slots=True)
class CreateSessionRequest:
    model: str
    prompt: str
    system_prompt: str | None = None
    max_tokens: int | None = None
    host_mode: bool = False
    initial_turn: InitialTurnPolicy = InitialTurnPolicy.RUN_IMMEDIATELY
    build: BuildOptions | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model.strip():
            raise InvalidArgument("model must be a non-empty string")
        if not isinstance(self.prompt, str):
            raise InvalidArgument("prompt must be a string")
        if self.system_prompt is not None and not isinstance(self.system_prompt, str):
            raise InvalidArgument("system_prompt must be a string or None")
        if self.max_tokens is not None and (
            isinstance(self.max_tokens, bool)
            or not isinstance(self.max_tokens, int)
            or self.max_tokens <= 0
        ):
            raise InvalidArgument("max_tokens must be a positive integer or None")
        if not isinstance(self.host_mode, bool):
            raise InvalidArgument("host_mode must be a bool")
        if not isinstance(self.initial_turn, InitialTurnPolicy):
            raise InvalidArgument("initial_turn must be an InitialTurnPolicy")
        if self.build is not None and not isinstance(self.build, BuildOptions):
            raise InvalidArgument(
                f"build must be a BuildOptions or None, got {type(self.build).__name__}"
            )


@dataclass(frozen=True, slots=True)
class StartTurnRequest:
    prompt: str
    host_mode: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.prompt, str):
            raise InvalidArgument("prompt must be a string")
        if not isinstance(self.host_mode, bool):
            raise InvalidArgument("host_mode must be a bool")
