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
refusing.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from types import MappingProxyType

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
    "decode_metadata",
    "decode_session",
    "encode_metadata",
    "encode_session",
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
        raise _Malformed(f"{where} has unknown field(s) {', '.join(sorted(map(str, extra)))}")
    return value


def _metadata(value: object, where: str) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise _Malformed(f"{where} must be an object, got {_kind(value)}")
    out: dict[str, str] = {}
    for key, item in value.items():
        out[_str(key, f"{where} key")] = _str(item, f"{where}[{key!r}]")
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


def encode_session(session: Session) -> str:
    """The JSON text of ``session``.

    Checks types on the way out as well, so whatever ``save`` accepts,
    ``load`` can read back: a value the decoder would refuse is refused here,
    before it reaches disk.
    """
    try:
        doc: dict[str, object] = {
            "format": FORMAT,
            "id": str(session.id),
            "created_at": _int(session.created_at, "created_at"),
            "updated_at": _int(session.updated_at, "updated_at"),
            "revision": _int(session.revision, "revision"),
            "version": _int(session.version, "version"),
            "usage": _encode_usage(session.usage, "usage"),
            "metadata": _metadata(session.metadata, "metadata"),
            "messages": [
                _encode_message(m, f"messages[{i}]") for i, m in enumerate(session.messages)
            ],
        }
    except _Malformed as exc:
        raise SessionStoreError(
            f"cannot encode session {session.id}: {exc}", session_id=session.id
        ) from None
    # ensure_ascii keeps lone surrogates as \\u escapes, so the text is always
    # valid UTF-8 for SQLite and round-trips exactly.
    return json.dumps(doc, ensure_ascii=True, separators=(",", ":"), allow_nan=False)


def encode_metadata(metadata: Mapping[str, str]) -> str:
    """The JSON text of a metadata map (the SQLite listing column)."""
    try:
        return json.dumps(_metadata(metadata, "metadata"), ensure_ascii=True, sort_keys=True)
    except _Malformed as exc:
        raise SessionStoreError(f"cannot encode metadata: {exc}") from None


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
        raise _Malformed(f"{where} has unknown role {role!r}")
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
        raise _Malformed(f"id {text!r} is not a UUID") from None
    if str(parsed) != text:
        # Stores look rows up by the canonical text; any other spelling is damage.
        raise _Malformed(f"id {text!r} is not in canonical form")
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
        raise _Malformed(f"body is not JSON ({exc})") from None


def decode_session(text: str | bytes, *, expected_id: SessionId | None = None) -> Session:
    """Parse what ``encode_session`` wrote; raise ``SessionStoreError`` otherwise.

    ``expected_id`` is the id the caller looked up.  It names the session in
    errors even when the body is too damaged to say, and a body carrying a
    different id is refused: returning another session's history under this
    id would be worse than failing.
    """
    known = expected_id
    try:
        doc = _load_json(text)
        if isinstance(doc, dict) and "id" in doc:
            # Best effort, so the error below can name the session.
            with contextlib.suppress(_Malformed):
                known = known if known is not None else _parse_id(doc["id"])
        obj = _object(doc, "body", _TOP_KEYS)
        fmt = obj["format"]
        if type(fmt) is not int or fmt != FORMAT:
            raise _Malformed(f"unsupported format {fmt!r} (this build reads {FORMAT})")
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
        who = f"session {known}" if known is not None else "session (id unknown)"
        raise SessionStoreError(f"stored {who} is malformed: {exc}", session_id=known) from None


def decode_metadata(text: object) -> Mapping[str, str]:
    """Parse a metadata column; raise ``SessionStoreError`` if it is not a str→str object."""
    try:
        return MappingProxyType(_metadata(_load_json(text), "metadata"))
    except _Malformed as exc:
        raise SessionStoreError(f"malformed metadata: {exc}") from None
