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
from .._types import RunResult, Session, SessionSummary, SessionView, Usage

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


def model_event(kind: str, text: str, usage: Usage) -> model.Event:
    """An event the service published (an ``AgentEvent``'s kind value, text, usage) [EVENTS]."""
    return model.Event(kind, text, usage.input_tokens, usage.output_tokens)


# -- model -> JSON ------------------------------------------------------------------------

EVENT_FIELDS: dict[str, tuple[str, ...]] = {
    model.RUN_STARTED: ("text",),
    model.TEXT_COMPLETE: ("text", "input_tokens", "output_tokens"),
    model.RUN_COMPLETED: ("text", "input_tokens", "output_tokens"),
    model.HOST_MESSAGE: ("text",),
    model.COMPACTED: (),
    model.RUN_CANCELLED: (),
}
"""Each event kind of the contract and what it carries on the wire ([EVENTS]: the prompt, a
reply with its usage, a message's text; a compaction and a cancellation carry nothing)."""


def _event(e: model.Event) -> dict[str, Json]:
    keys = EVENT_FIELDS.get(e.kind)
    if keys is None:  # no kind of the contract: everything it holds, to show what it is
        keys = tuple(k for k in ("text", "input_tokens", "output_tokens") if getattr(e, k))
    return {"kind": e.kind, **{k: getattr(e, k) for k in keys}}


def _news(n: model.News) -> dict[str, Json]:
    out: dict[str, Json] = {"events": [_event(e) for e in n.events]}
    if n.lagged:
        out["lagged"] = n.lagged
    if n.ended:
        out["ended"] = True
    return out

_RECORDS: tuple[type, ...] = (model.RunResult, model.View, model.Summary, model.Session)


def _record(value: object) -> dict[str, Json]:
    return {f.name: getattr(value, f.name) for f in fields(value)}  # type: ignore[arg-type]


def encode(value: object) -> Json:
    """The wire form of a model value (an operation's ``ok`` value)."""
    if value is None or isinstance(value, str | int):
        return value
    if isinstance(value, _RECORDS):
        return _record(value)
    if isinstance(value, model.Event):
        return _event(value)
    if isinstance(value, model.News):
        return _news(value)
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


def _decode_event(value: Json, where: str) -> model.Event:
    if not isinstance(value, dict) or not isinstance(value.get("kind"), str):
        raise ValueError(f"{where}: expected an object with a string \"kind\", got {value!r:.60}")
    kind = value["kind"]
    need = EVENT_FIELDS.get(kind, ())
    args: dict[str, Any] = {}
    for key, check in (("text", _TYPES["str"]), ("input_tokens", _TYPES["int"]),
                       ("output_tokens", _TYPES["int"])):
        if key not in value:
            if key in need:
                raise ValueError(f"{where}: a {kind} event needs {key!r}")
            continue
        if not check(value[key]):
            raise ValueError(f"{where}.{key}: got {value[key]!r:.60}")
        args[key] = value[key]
    return model.Event(kind, **args)


def decode_news(value: Json) -> dict[str, model.News]:
    """Events per session, as ``settle`` with ``"events": true`` answers them [EVENTS]."""
    if not isinstance(value, dict):
        raise ValueError(f"events: expected an object, got {type(value).__name__}")
    out: dict[str, model.News] = {}
    for sid, news in value.items():
        where = f"events[{str(sid)[:40]}]"
        if not isinstance(news, dict) or not isinstance(news.get("events", []), list):
            raise ValueError(f"{where}: expected {{\"events\": [...]}}, got {news!r:.60}")
        lagged, ended = news.get("lagged", 0), news.get("ended", False)
        if not _TYPES["int"](lagged) or not _TYPES["bool"](ended):
            raise ValueError(f"{where}: lagged must be an int and ended a bool")
        events = tuple(_decode_event(e, f"{where}.events[{i}]")
                       for i, e in enumerate(news.get("events", [])))
        out[str(sid)] = model.News(events, lagged, ended)
    return out


def decode_none(value: Json) -> None:
    if value is not None:
        raise ValueError(f"expected null, got {value!r:.60}")


__all__ = [
    "EVENT_FIELDS",
    "Json",
    "decode_news",
    "decode_none",
    "decode_run",
    "decode_session",
    "decode_store",
    "decode_summaries",
    "decode_view",
    "encode",
    "model_event",
    "model_run",
    "model_session",
    "model_summary",
    "model_view",
]
