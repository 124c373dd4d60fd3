"""JSON encoding of a whole ``Session``, for stores that keep text.

The format is explicit field by field (no pickle, no reflection), carries a
``format`` number so a future layout can be told apart, and is checked
strictly on the way in: a stored body is data from disk, so anything that is
not exactly what ``encode_session`` writes is reported as a
``SessionStoreError`` naming the session, never as a stray ``KeyError`` or
``TypeError`` from deep inside a caller.

Layout (format 1)::

    {"format": 1, "id": "<uuid>", "created_at": int, "updated_at": int,
     "revision": int, "version": int,
     "usage": {"input_tokens": int, "output_tokens": int},
     "metadata": {str: str, ...},
     "messages": [{"role": "system", "content": str}
                | {"role": "user", "content": str}
                | {"role": "assistant", "content": str, "usage": {...}}
                | {"role": "tool_result", "tool_use_id": str, "content": str,
                   "is_error": bool}, ...]}

Unknown keys are rejected too: with a format number available, an extra key
means corruption or a newer writer, and either way guessing is worse than
refusing.  Key order is not significant.

Two paths each way, one authority.  The *checked* path (``_checked_doc``,
``_decode_checked``: the standard library's ``json`` and a check per field
in Python) defines the format and words every error.  The *fast* path
(``msgspec``: building the document with one type test per field, and a
typed decoder that validates in C) does the common case in a fraction of
the time: measured in ``benchmarks/bench_store.py`` against the standard
library and ``orjson``, and chosen there (README, "why msgspec").  The fast
path only ever accepts what the checked path accepts, and gives the same
result; anything it is unsure of (a failed type test, a body it cannot
decode) goes to the checked path, which either raises the precise error or,
for the rare text the fast decoder refuses although it is valid (a lone
surrogate escape, which the standard library writes as ``\\ud800``), reads
it.  So rows written before msgspec was used read exactly as before.

What the fast encoder writes differs from the checked one only in how it
spells characters beyond ASCII and DEL (raw UTF-8 rather than ``\\u``
escapes; both are JSON for the same strings): for sessions whose text is
ASCII without DEL the bytes are identical.  Text
with a lone surrogate cannot be UTF-8, so such a session is written by the
checked path, with escapes, as before.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal, cast

import msgspec

from .._errors import SessionStoreError
from .._types import (
    AssistantMessage,
    InvalidArgument,
    Message,
    Session,
    SessionId,
    SystemMessage,
    ToolResultMessage,
    Usage,
    UserMessage,
)

__all__ = [
    "FORMAT",
    "cap",
    "decode_metadata",
    "decode_session",
    "encode_metadata",
    "encode_session",
    "encode_session_stdlib",
]

FORMAT = 1
"""The body layout written by ``encode_session``; the only one ``decode_session`` reads."""

_TOP_KEYS = frozenset(
    {
        "format",
        "id",
        "created_at",
        "updated_at",
        "revision",
        "version",
        "usage",
        "metadata",
        "messages",
    }
)
_USAGE_KEYS = frozenset({"input_tokens", "output_tokens"})
_MESSAGE_KEYS: dict[str, frozenset[str]] = {
    "system": frozenset({"role", "content"}),
    "user": frozenset({"role", "content"}),
    "assistant": frozenset({"role", "content", "usage"}),
    "tool_result": frozenset({"role", "tool_use_id", "content", "is_error"}),
}


class _Malformed(Exception):
    """Internal: what is wrong, without the session context (added by the caller)."""


MAX_SHOWN = 120
"""Longest excerpt of stored data an error message quotes: a damaged row may
hold megabytes, and an error echoing them helps no one."""


def cap(text: str, limit: int = MAX_SHOWN) -> str:
    """``text`` cut to ``limit`` characters, saying how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text):,} characters in all)"


def _shown(value: object) -> str:
    """``repr(value)`` for an error message, capped.  Bytes are cut before ``repr``."""
    if isinstance(value, str | bytes | bytearray) and len(value) > MAX_SHOWN:
        return f"{value[:MAX_SHOWN]!r}… ({len(value):,} in all)"
    return cap(repr(value))


# --- checks shared by both directions --------------------------------------


def _int(value: object, where: str) -> int:
    # bool is an int subclass; a stored ``true`` is never a count or a time.
    if type(value) is not int:
        raise _Malformed(f"{where} must be an integer, got {_kind(value)}")
    return value


def _str(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise _Malformed(f"{where} must be a string, got {_kind(value)}")
    return value


def _bool(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise _Malformed(f"{where} must be a boolean, got {_kind(value)}")
    return value


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _object(value: object, where: str, keys: frozenset[str]) -> dict[str, object]:
    """A JSON object with exactly ``keys``: missing and unknown keys are both errors."""
    if not isinstance(value, dict):
        raise _Malformed(f"{where} must be an object, got {_kind(value)}")
    missing = keys - value.keys()
    if missing:
        raise _Malformed(f"{where} is missing {', '.join(sorted(missing))}")
    extra = value.keys() - keys
    if extra:
        raise _Malformed(f"{where} has unknown field(s) {cap(', '.join(sorted(map(str, extra))))}")
    return value


def _metadata(value: object, where: str) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise _Malformed(f"{where} must be an object, got {_kind(value)}")
    out: dict[str, str] = {}
    for key, item in value.items():
        out[_str(key, f"{where} key")] = _str(item, f"{where}[{_shown(key)}]")
    return out


# --- encode ----------------------------------------------------------------


def _encode_usage(usage: Usage, where: str) -> dict[str, object]:
    if not isinstance(usage, Usage):
        raise _Malformed(f"{where} must be a Usage, got {_kind(usage)}")
    return {
        "input_tokens": _int(usage.input_tokens, f"{where}.input_tokens"),
        "output_tokens": _int(usage.output_tokens, f"{where}.output_tokens"),
    }


def _encode_message(message: Message, where: str) -> dict[str, object]:
    if isinstance(message, SystemMessage | UserMessage):
        return {"role": message.role, "content": _str(message.content, f"{where}.content")}
    if isinstance(message, AssistantMessage):
        return {
            "role": message.role,
            "content": _str(message.content, f"{where}.content"),
            "usage": _encode_usage(message.usage, f"{where}.usage"),
        }
    if isinstance(message, ToolResultMessage):
        return {
            "role": message.role,
            "tool_use_id": _str(message.tool_use_id, f"{where}.tool_use_id"),
            "content": _str(message.content, f"{where}.content"),
            "is_error": _bool(message.is_error, f"{where}.is_error"),
        }
    raise _Malformed(f"{where} is not a message type the store knows: {_kind(message)}")


def _checked_doc(session: Session) -> dict[str, object]:
    """The document for ``session``, every field checked; raises ``_Malformed`` saying what."""
    return {
        "format": FORMAT,
        "id": str(session.id),
        "created_at": _int(session.created_at, "created_at"),
        "updated_at": _int(session.updated_at, "updated_at"),
        "revision": _int(session.revision, "revision"),
        "version": _int(session.version, "version"),
        "usage": _encode_usage(session.usage, "usage"),
        "metadata": _metadata(session.metadata, "metadata"),
        "messages": [_encode_message(m, f"messages[{i}]") for i, m in enumerate(session.messages)],
    }


def _fast_doc(session: Session, id_text: str) -> dict[str, object] | None:
    """The same document as ``_checked_doc``, or ``None`` when any field is not plainly right.

    One exact type test per field and no error text: the common case pays
    for nothing else.  ``None`` sends the session to ``_checked_doc``, which
    accepts a little more (subclasses) and words the error otherwise.
    """
    created, updated, revision, version = (
        session.created_at,
        session.updated_at,
        session.revision,
        session.version,
    )
    usage = session.usage
    if not (
        type(created) is int
        and type(updated) is int
        and type(revision) is int
        and type(version) is int
        and type(usage) is Usage
        and type(usage.input_tokens) is int
        and type(usage.output_tokens) is int
    ):
        return None
    metadata: dict[str, str] = {}
    if session.metadata:
        if not isinstance(session.metadata, Mapping):
            return None
        for key, value in session.metadata.items():
            if type(key) is not str or type(value) is not str:
                return None
            metadata[key] = value
    messages: list[dict[str, object]] = []
    append = messages.append
    for m in session.messages:
        kind = type(m)
        content = m.content
        if type(content) is not str:
            return None
        if kind is UserMessage or kind is SystemMessage:
            append({"role": m.role, "content": content})
        elif kind is AssistantMessage:
            used = cast(AssistantMessage, m).usage
            if not (
                type(used) is Usage
                and type(used.input_tokens) is int
                and type(used.output_tokens) is int
            ):
                return None
            append(
                {
                    "role": m.role,
                    "content": content,
                    "usage": {
                        "input_tokens": used.input_tokens,
                        "output_tokens": used.output_tokens,
                    },
                }
            )
        elif kind is ToolResultMessage:
            tool = cast(ToolResultMessage, m)
            if type(tool.tool_use_id) is not str or type(tool.is_error) is not bool:
                return None
            append(
                {
                    "role": m.role,
                    "tool_use_id": tool.tool_use_id,
                    "content": content,
                    "is_error": tool.is_error,
                }
            )
        else:
            return None
    return {
        "format": FORMAT,
        "id": id_text,
        "created_at": created,
        "updated_at": updated,
        "revision": revision,
        "version": version,
        "usage": {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens},
        "metadata": metadata,
        "messages": messages,
    }


_ENCODER = msgspec.json.Encoder()


def _stdlib_text(doc: dict[str, object]) -> str:
    # ensure_ascii keeps lone surrogates as \\u escapes, so the text is always
    # valid UTF-8 for SQLite and round-trips exactly.
    return json.dumps(doc, ensure_ascii=True, separators=(",", ":"), allow_nan=False)


def _cannot_encode(session: Session, exc: _Malformed) -> SessionStoreError:
    return SessionStoreError(f"cannot encode session {session.id}: {exc}", session_id=session.id)


def encode_session(session: Session, id_text: str | None = None) -> str:
    """The JSON text of ``session`` (the fast path; see the module docstring).

    Checks types on the way out as well, so whatever ``save`` accepts,
    ``load`` can read back: a value the decoder would refuse is refused here,
    before it reaches disk.  ``id_text`` is ``str(session.id)`` if the caller
    has it already (formatting a UUID is a noticeable part of the cost).
    Pure computation: no I/O, no await.
    """
    doc = _fast_doc(session, str(session.id) if id_text is None else id_text)
    if doc is None:
        try:
            doc = _checked_doc(session)
        except _Malformed as exc:
            raise _cannot_encode(session, exc) from None
    try:
        return _ENCODER.encode(doc).decode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate has no UTF-8 form: write it escaped, as the checked path does.
        return _stdlib_text(doc)


def encode_session_stdlib(session: Session) -> str:
    """The checked path alone: exactly what the store wrote before msgspec (kept as the reference).

    The benchmarks compare it with ``encode_session``; the tests check that
    both decode to the same session, and are byte-identical for ASCII text.
    """
    try:
        return _stdlib_text(_checked_doc(session))
    except _Malformed as exc:
        raise _cannot_encode(session, exc) from None


_EMPTY_METADATA_TEXT = "{}"
_EMPTY_METADATA: Mapping[str, str] = MappingProxyType({})


def encode_metadata(metadata: Mapping[str, str]) -> str:
    """The JSON text of a metadata map (the SQLite listing column), keys sorted."""
    if not metadata:
        return _EMPTY_METADATA_TEXT
    try:
        checked = _metadata(metadata, "metadata")
    except _Malformed as exc:
        raise SessionStoreError(f"cannot encode metadata: {exc}") from None
    try:
        return _ENCODER.encode(dict(sorted(checked.items()))).decode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(checked, ensure_ascii=True, sort_keys=True)


# --- decode ----------------------------------------------------------------


def _decode_usage(value: object, where: str) -> Usage:
    obj = _object(value, where, _USAGE_KEYS)
    return Usage(
        input_tokens=_int(obj["input_tokens"], f"{where}.input_tokens"),
        output_tokens=_int(obj["output_tokens"], f"{where}.output_tokens"),
    )


def _decode_message(value: object, where: str) -> Message:
    if not isinstance(value, dict):
        raise _Malformed(f"{where} must be an object, got {_kind(value)}")
    if "role" not in value:
        raise _Malformed(f"{where} is missing role")
    role = value["role"]
    keys = _MESSAGE_KEYS.get(role) if isinstance(role, str) else None
    if keys is None:
        raise _Malformed(f"{where} has unknown role {_shown(role)}")
    obj = _object(value, where, keys)
    content = _str(obj["content"], f"{where}.content")
    if role == "system":
        return SystemMessage(content)
    if role == "user":
        return UserMessage(content)
    if role == "assistant":
        return AssistantMessage(content, _decode_usage(obj["usage"], f"{where}.usage"))
    return ToolResultMessage(
        tool_use_id=_str(obj["tool_use_id"], f"{where}.tool_use_id"),
        content=content,
        is_error=_bool(obj["is_error"], f"{where}.is_error"),
    )


def _parse_id(value: object) -> SessionId:
    text = _str(value, "id")
    try:
        parsed = SessionId.parse(text)
    except InvalidArgument:
        raise _Malformed(f"id {_shown(text)} is not a UUID") from None
    if str(parsed) != text:
        # Stores look rows up by the canonical text; any other spelling is damage.
        raise _Malformed(f"id {_shown(text)} is not in canonical form")
    return parsed


def _load_json(text: object) -> object:
    if isinstance(text, bytes | bytearray):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            raise _Malformed("body is not UTF-8 text") from None
    if not isinstance(text, str):
        raise _Malformed(f"body must be text, got {_kind(text)}")
    try:
        return json.loads(text)
    except RecursionError:
        raise _Malformed("body is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError is a ValueError
        raise _Malformed(f"body is not JSON ({cap(str(exc))})") from None


# The fast decoder: the same layout as typed structs, validated in C.  Every
# field is required, unknown fields are refused, ``int`` refuses booleans and
# floats, the role tag picks the message type: what ``_decode_checked`` checks.


class _UsageDoc(msgspec.Struct, forbid_unknown_fields=True):
    input_tokens: int
    output_tokens: int


class _SystemDoc(msgspec.Struct, tag_field="role", tag="system", forbid_unknown_fields=True):
    content: str


class _UserDoc(msgspec.Struct, tag_field="role", tag="user", forbid_unknown_fields=True):
    content: str


class _AssistantDoc(msgspec.Struct, tag_field="role", tag="assistant", forbid_unknown_fields=True):
    content: str
    usage: _UsageDoc


class _ToolResultDoc(
    msgspec.Struct, tag_field="role", tag="tool_result", forbid_unknown_fields=True
):
    tool_use_id: str
    content: str
    is_error: bool


class _BodyDoc(msgspec.Struct, forbid_unknown_fields=True):
    format: Literal[1]
    id: str
    created_at: int
    updated_at: int
    revision: int
    version: int
    usage: _UsageDoc
    metadata: dict[str, str]
    messages: list[_SystemDoc | _UserDoc | _AssistantDoc | _ToolResultDoc]


_BODY = msgspec.json.Decoder(_BodyDoc)
_METADATA = msgspec.json.Decoder(dict[str, str])
_FAST_FAILURES = (msgspec.DecodeError, TypeError, RecursionError)
"""What the fast decoders raise for input they refuse (``ValidationError`` is a
``DecodeError``; ``TypeError``: not text at all).  Each sends the input to the
checked path, which says what is wrong."""


def _message_of(doc: _SystemDoc | _UserDoc | _AssistantDoc | _ToolResultDoc) -> Message:
    if isinstance(doc, _UserDoc):
        return UserMessage(doc.content)
    if isinstance(doc, _AssistantDoc):
        return AssistantMessage(doc.content, Usage(doc.usage.input_tokens, doc.usage.output_tokens))
    if isinstance(doc, _SystemDoc):
        return SystemMessage(doc.content)
    return ToolResultMessage(doc.tool_use_id, doc.content, doc.is_error)


def decode_session(text: str | bytes, *, expected_id: SessionId | None = None) -> Session:
    """Parse what ``encode_session`` (or an earlier build) wrote, else raise ``SessionStoreError``.

    ``expected_id`` is the id the caller looked up.  It names the session in
    errors even when the body is too damaged to say, and a body carrying a
    different id is refused: returning another session's history under this
    id would be worse than failing.  Pure computation: no I/O, no await.
    """
    try:
        doc = _BODY.decode(text)  # anything but text or bytes: TypeError
    except _FAST_FAILURES:
        return _decode_checked(text, expected_id)
    try:
        session_id = SessionId.parse(doc.id)
    except InvalidArgument:
        return _decode_checked(text, expected_id)
    if str(session_id) != doc.id or (expected_id is not None and session_id != expected_id):
        return _decode_checked(text, expected_id)  # raises, naming the session
    return Session(
        id=session_id,
        created_at=doc.created_at,
        updated_at=doc.updated_at,
        messages=tuple(_message_of(m) for m in doc.messages),
        metadata=MappingProxyType(doc.metadata),
        usage=Usage(doc.usage.input_tokens, doc.usage.output_tokens),
        revision=doc.revision,
        version=doc.version,
    )


def _decode_checked(text: object, expected_id: SessionId | None) -> Session:
    """The checked path of ``decode_session``: the authority on what a body may be."""
    try:
        doc = _load_json(text)
    except _Malformed as exc:
        raise _malformed(expected_id, exc) from None
    return session_of_document(doc, expected_id)


def session_of_document(doc: object, expected_id: SessionId | None) -> Session:
    """A parsed body checked field by field (the checked path after parsing)."""
    known = expected_id
    try:
        if isinstance(doc, dict) and "id" in doc:
            # Best effort, so the error below can name the session.
            with contextlib.suppress(_Malformed):
                known = known if known is not None else _parse_id(doc["id"])
        obj = _object(doc, "body", _TOP_KEYS)
        fmt = obj["format"]
        if type(fmt) is not int or fmt != FORMAT:
            raise _Malformed(f"unsupported format {_shown(fmt)} (this build reads {FORMAT})")
        session_id = _parse_id(obj["id"])
        if expected_id is not None and session_id != expected_id:
            raise _Malformed(f"body belongs to session {session_id}")
        raw_messages = obj["messages"]
        if not isinstance(raw_messages, list):
            raise _Malformed(f"messages must be an array, got {_kind(raw_messages)}")
        messages = tuple(_decode_message(m, f"messages[{i}]") for i, m in enumerate(raw_messages))
        metadata = _metadata(obj["metadata"], "metadata")
        return Session(
            id=session_id,
            created_at=_int(obj["created_at"], "created_at"),
            updated_at=_int(obj["updated_at"], "updated_at"),
            messages=messages,
            metadata=MappingProxyType(metadata),
            usage=_decode_usage(obj["usage"], "usage"),
            revision=_int(obj["revision"], "revision"),
            version=_int(obj["version"], "version"),
        )
    except _Malformed as exc:
        raise _malformed(known, exc) from None


def _malformed(known: SessionId | None, exc: _Malformed) -> SessionStoreError:
    who = f"session {known}" if known is not None else "session (id unknown)"
    return SessionStoreError(f"stored {who} is malformed: {exc}", session_id=known)


def decode_metadata(text: object) -> Mapping[str, str]:
    """Parse a metadata column; raise ``SessionStoreError`` if it is not a str→str object."""
    if text == b"{}" or text == "{}":
        return _EMPTY_METADATA
    try:
        return MappingProxyType(_METADATA.decode(text))  # type: ignore[arg-type]
    except _FAST_FAILURES:
        pass
    try:
        return MappingProxyType(_metadata(_load_json(text), "metadata"))
    except _Malformed as exc:
        raise SessionStoreError(f"malformed metadata: {exc}") from None
