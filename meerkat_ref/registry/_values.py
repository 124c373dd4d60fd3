"""Values, converted once: service values become model values, model values become JSON.

The service speaks in ``meerkat_ref._types`` (``RunResult``, ``SessionView``,
``SessionSummary``, ``Session``); the model (``models/sessions.py``) and
everything that judges an implementation speak in the model's plain values
(``RunResult``, ``View``, ``Summary``, ``Session``).  This module is the only
place that converts between them, and the only place that gives a model value
its wire form (``spec/ADAPTER.md`` section 4).  Nothing else encodes a value.

Decoding JSON (what a port answered) is strict: every listed key must be
there with exactly its type (a ``bool`` is not an ``int``); extra keys are
ignored, as the protocol allows.  A value that does not decode is a
``ValueError`` naming the key, which the oracle reports as a protocol failure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import Any

from .._model import model
from .._types import RunResult, Session, SessionSummary, SessionView

Json = Any
"""A decoded JSON value (dict, list, str, int, float, bool or None)."""

# -- service -> model -----------------------------------------------------------------


def model_run(r: RunResult) -> model.RunResult:
    return model.RunResult(
        str(r.session_id), r.text, r.usage.input_tokens, r.usage.output_tokens, r.turns
    )


def model_view(v: SessionView) -> model.View:
    i, u = v.state, v.billing
    return model.View(
        str(i.session_id), i.created_at, i.updated_at, i.message_count, i.is_active,
        i.last_assistant_text, u.total_tokens, u.usage.input_tokens, u.usage.output_tokens,
    )


def model_summary(s: SessionSummary) -> model.Summary:
    return model.Summary(
        str(s.session_id), s.created_at, s.updated_at, s.message_count, s.total_tokens,
        s.is_active,
    )


def model_session(s: Session) -> model.Session:
    return model.Session(
        s.created_at, s.updated_at, s.message_count, s.usage.input_tokens,
        s.usage.output_tokens, s.last_assistant_text(), s.revision,
    )


# -- model -> JSON ------------------------------------------------------------------------

_RECORDS: tuple[type, ...] = (model.RunResult, model.View, model.Summary, model.Session)


def _record(value: object) -> dict[str, Json]:
    return {f.name: getattr(value, f.name) for f in fields(value)}  # type: ignore[arg-type]


def encode(value: object) -> Json:
    """The wire form of a model value (an operation's ``ok`` value)."""
    if value is None or isinstance(value, str | int):
        return value
    if isinstance(value, _RECORDS):
        return _record(value)
    if isinstance(value, tuple):
        return [encode(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): encode(v) for k, v in sorted(value.items())}
    raise TypeError(f"no wire form for {value!r}")


# -- JSON -> model ------------------------------------------------------------------------

_TYPES: dict[str, Callable[[object], bool]] = {
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
    "bool": lambda v: isinstance(v, bool),
    "str | None": lambda v: v is None or isinstance(v, str),
}


def _decode_record(cls: type[Any], value: Json, where: str) -> Any:
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected an object, got {type(value).__name__}")
    args = []
    for f in fields(cls):
        if f.name not in value:
            raise ValueError(f"{where}: missing {f.name!r}")
        item = value[f.name]
        if not _TYPES[str(f.type)](item):
            raise ValueError(f"{where}.{f.name}: expected {f.type}, got {item!r:.60}")
        args.append(item)
    return cls(*args)


def decode_run(value: Json) -> model.RunResult:
    decoded: model.RunResult = _decode_record(model.RunResult, value, "run result")
    return decoded


def decode_view(value: Json) -> model.View:
    decoded: model.View = _decode_record(model.View, value, "view")
    return decoded


def decode_summaries(value: Json) -> tuple[model.Summary, ...]:
    if not isinstance(value, list):
        raise ValueError(f"list: expected an array, got {type(value).__name__}")
    return tuple(_decode_record(model.Summary, v, f"list[{i}]") for i, v in enumerate(value))


def decode_session(value: Json) -> model.Session | None:
    if value is None:
        return None
    decoded: model.Session = _decode_record(model.Session, value, "stored session")
    return decoded


def decode_store(value: Json) -> dict[str, model.Session]:
    if not isinstance(value, dict):
        raise ValueError(f"observe_store: expected an object, got {type(value).__name__}")
    return {str(k): _decode_record(model.Session, v, f"store[{k}]") for k, v in value.items()}


def decode_none(value: Json) -> None:
    if value is not None:
        raise ValueError(f"expected null, got {value!r:.60}")


__all__ = [
    "Json",
    "decode_none",
    "decode_run",
    "decode_session",
    "decode_store",
    "decode_summaries",
    "decode_view",
    "encode",
    "model_run",
    "model_session",
    "model_summary",
    "model_view",
]
