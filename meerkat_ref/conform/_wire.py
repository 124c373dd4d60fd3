"""The wire form of the contract: model operations as commands, results as JSON values.

Shared by the vector generator (``meerkat_ref.vectors``), the adapter
(``meerkat_ref.adapter``) and the oracle (``meerkat-ref conform``).  Every value
is language-neutral JSON: session ids are strings (the canonical UUID text),
timestamps are integers, results are ``{"ok": value}`` or ``{"error": code}``.
``spec/ADAPTER.md`` documents every shape; this module is its executable form.

Nothing received over the wire is ever executed or used as a path: commands are
looked up by name in fixed tables and their fields type-checked here.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from .._errors import ERROR_CODES
from .._model import model

Json = Any
"""A decoded JSON value (dict, list, str, int, float, bool or None)."""

PROTOCOL = "meerkat-ref/adapter@1"
VECTORS_FORMAT = "meerkat-ref/vectors@1"

CONTRACT_CODES: tuple[str, ...] = (*ERROR_CODES, "INVALID_ARGUMENT")
"""Error codes of the contract: the service's stable codes plus malformed input."""

PROTOCOL_CODES: tuple[str, ...] = (
    "BAD_REQUEST",  # not JSON, not an object, a missing or ill-typed field
    "UNKNOWN_COMMAND",  # "cmd" names no command
    "UNSUPPORTED",  # a capability the adapter did not announce (e.g. points)
    "NOT_PARKED",  # release of a task that is not parked at a scheduling point
    "NOT_OPEN",  # a service command before "open"
    "INTERNAL",  # the adapter failed (a bug in it, not a contract answer)
)
"""Error codes of the protocol itself (never the answer to a contract operation)."""

SERVICE_COMMANDS: tuple[str, ...] = (
    "create",
    "start_turn",
    "inject",
    "interrupt",
    "read",
    "list",
    "archive",
    "load_persisted",
    "cancel_all_checkpointers",
    "rearm_all_checkpointers",
    "restart",
    "observe_store",
)
"""One command per model operation (``TurnsAtOnce``/``CreatesAtOnce`` are several at once)."""

CONTROL_COMMANDS: tuple[str, ...] = (
    "hello",
    "open",
    "settle",
    "control",
    "release",
    "at_once",
    "bye",
)

CLAUSES: tuple[str, ...] = (
    "IDS",
    "TIME",
    "CREATE",
    "DEFER",
    "CAPACITY",
    "TURN",
    "TURN-BUSY",
    "DURABILITY",
    "HOST",
    "HOST-MESSAGE",
    "COMPACT",
    "CHECKPOINT",
    "CHECKPOINT-GATE",
    "INTERRUPT",
    "INTERRUPT-RUNNING",
    "READ",
    "READ-FALLBACK",
    "LIST",
    "LIST-ORDER",
    "LIST-PAGE",
    "ARCHIVE",
    "ARCHIVE-STOP",
    "ARCHIVE-FINAL",
    "LOAD-PERSISTED",
    "STOP-RESUME",
    "RESTART",
    "INPUT",
    "LINEARIZABLE",
    "PROTOCOL",
)
"""Clause ids: the model's ``[ID]`` tags, plus the input rule, linearizability, the protocol."""


class WireError(ValueError):
    """A message that does not have the documented shape; ``code`` is a protocol code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def dumps(value: Json) -> str:
    """One JSON line: compact, keys in insertion order, ASCII-safe."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True)


def show(line: str | bytes, limit: int = 200) -> str:
    """A received line, quoted and cut, for error messages (never interpreted)."""
    text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
    text = text.rstrip("\n")
    return repr(text if len(text) <= limit else text[:limit] + "...")


# -- operations ----------------------------------------------------------------------------


def session_text(n: int) -> str:
    return model.sid(n)


def op_commands(op: model.Op) -> list[dict[str, Json]]:
    """The commands a model operation stands for (several, sent at once, for ``*AtOnce``)."""
    match op:
        case model.Create(prompt=prompt, system_prompt=system, defer=defer, host_mode=host):
            cmd: dict[str, Json] = {"cmd": "create", "prompt": prompt}
            if system is not None:
                cmd["system_prompt"] = system
            if defer:
                cmd["initial_turn"] = "defer"
            if host:
                cmd["host_mode"] = True
            return [cmd]
        case model.CreatesAtOnce(count=count, prompt=prompt):
            return [{"cmd": "create", "prompt": prompt, "initial_turn": "defer"}] * count
        case model.StartTurn(id=n, prompt=prompt, host_mode=host):
            cmd = {"cmd": "start_turn", "session": session_text(n), "prompt": prompt}
            if host:
                cmd["host_mode"] = True
            return [cmd]
        case model.TurnsAtOnce(id=n, prompt=prompt, host_mode=host, count=count):
            return op_commands(model.StartTurn(n, prompt, host)) * count
        case model.HostMessage(id=n, text=text):
            return [{"cmd": "inject", "session": session_text(n), "text": text}]
        case model.Interrupt(id=n):
            return [{"cmd": "interrupt", "session": session_text(n)}]
        case model.Read(id=n):
            return [{"cmd": "read", "session": session_text(n)}]
        case model.List(offset=offset, limit=limit):
            cmd = {"cmd": "list"}
            if offset is not None:
                cmd["offset"] = offset
            if limit is not None:
                cmd["limit"] = limit
            return [cmd]
        case model.Archive(id=n):
            return [{"cmd": "archive", "session": session_text(n)}]
        case model.LoadPersisted(id=n):
            return [{"cmd": "load_persisted", "session": session_text(n)}]
        case model.CancelAllCheckpointers():
            return [{"cmd": "cancel_all_checkpointers"}]
        case model.RearmAllCheckpointers():
            return [{"cmd": "rearm_all_checkpointers"}]
        case model.Restart():
            return [{"cmd": "restart"}]
        case model.ObserveStore():
            return [{"cmd": "observe_store"}]
    raise TypeError(f"not a model operation: {op!r}")


def at_once(op: model.Op) -> bool:
    return isinstance(op, model.TurnsAtOnce | model.CreatesAtOnce)


# -- field access (the adapter's decoding; every field type-checked) -----------------------

_MISSING = object()


def field(msg: Mapping[str, Json], name: str, kind: str, default: Json = _MISSING) -> Json:
    """``msg[name]`` checked against ``kind`` (str, bool, int, str?, int?); BAD_REQUEST if not."""
    value = msg.get(name, _MISSING)
    if value is _MISSING:
        if default is _MISSING:
            raise WireError("BAD_REQUEST", f"{msg.get('cmd')!s}: missing field {name!r}")
        return default
    optional = kind.endswith("?")
    base = kind.rstrip("?")
    if value is None and optional:
        return None
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


def request_id(msg: Mapping[str, Json]) -> str:
    rid = msg.get("id")
    if not isinstance(rid, str) or not rid:
        raise WireError("BAD_REQUEST", 'every command needs an "id": a non-empty string')
    return rid


# -- results -------------------------------------------------------------------------------


def ok(value: Json) -> dict[str, Json]:
    return {"ok": value}


def err(code: str) -> dict[str, Json]:
    return {"error": code}


def stored_json(s: model.Session) -> dict[str, Json]:
    return {
        "created_at": s.created_at,
        "updated_at": s.updated_at,
        "message_count": s.message_count,
        "input_tokens": s.input_tokens,
        "output_tokens": s.output_tokens,
        "last_assistant_text": s.last_assistant_text,
        "revision": s.revision,
    }


def run_json(r: model.RunResult) -> dict[str, Json]:
    return {
        "session_id": r.session_id,
        "text": r.text,
        "input_tokens": r.input_tokens,
        "output_tokens": r.output_tokens,
        "turns": r.turns,
    }


def view_json(v: model.View) -> dict[str, Json]:
    return {
        "session_id": v.session_id,
        "created_at": v.created_at,
        "updated_at": v.updated_at,
        "message_count": v.message_count,
        "is_active": v.is_active,
        "last_assistant_text": v.last_assistant_text,
        "total_tokens": v.total_tokens,
        "input_tokens": v.input_tokens,
        "output_tokens": v.output_tokens,
    }


def summary_json(s: model.Summary) -> dict[str, Json]:
    return {
        "session_id": s.session_id,
        "created_at": s.created_at,
        "updated_at": s.updated_at,
        "message_count": s.message_count,
        "total_tokens": s.total_tokens,
        "is_active": s.is_active,
    }


def value_json(value: object) -> Json:
    if value is None:
        return None
    if isinstance(value, model.RunResult):
        return run_json(value)
    if isinstance(value, model.View):
        return view_json(value)
    if isinstance(value, model.Session):
        return stored_json(value)
    if isinstance(value, tuple):
        return [summary_json(s) for s in value]
    if isinstance(value, dict):
        return {k: stored_json(v) for k, v in sorted(value.items())}
    raise TypeError(f"no wire form for {value!r}")


def result_json(result: model.Result, session: str | None = None) -> Json:
    """A model result as a wire result; ``session`` names the session of a pending call."""
    match result:
        case model.Ok(value=value):
            return ok(value_json(value))
        case model.Err(code=code):
            return err(code)
        case model.Pending():
            return {"pending": session}
        case model.Crashed():
            return {"crashed": True}
        case model.Many(results=results):
            return [result_json(r, session) for r in results]
    raise TypeError(f"not a model result: {result!r}")


def completed_json(completed: Sequence[tuple[str, model.Result]]) -> list[Json]:
    return [{"session": s, "result": result_json(r)} for s, r in completed]


# -- comparison ----------------------------------------------------------------------------


def matches(expected: Json, actual: Json) -> bool:
    """Whether ``actual`` is ``expected``: objects may carry extra keys; bools are not ints."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and matches(v, actual[k]) for k, v in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(matches(e, a) for e, a in zip(expected, actual, strict=True))
        )
    if isinstance(expected, bool) or isinstance(actual, bool):
        return isinstance(expected, bool) and isinstance(actual, bool) and expected == actual
    return bool(type(expected) is type(actual) and expected == actual)


def matches_multiset(expected: Sequence[Json], actual: Sequence[Json]) -> bool:
    """Results of calls made at once: some pairing matches each expected to one actual."""
    if len(expected) != len(actual):
        return False

    def pair(i: int, used: frozenset[int]) -> bool:
        if i == len(expected):
            return True
        return any(
            j not in used and matches(expected[i], a) and pair(i + 1, used | {j})
            for j, a in enumerate(actual)
        )

    return pair(0, frozenset())


# -- clauses -------------------------------------------------------------------------------


def _n_of(text: str) -> int:
    return uuid.UUID(text).int


def step_clauses(op: model.Op, before: model.State, result: model.Result) -> list[str]:
    """The clauses a step checks, the one a difference is reported under first."""
    live = dict(before.live)
    store = dict(before.store)

    def target(n: int) -> str:
        return model.sid(n)

    match op:
        case model.Create(defer=defer, host_mode=host):
            if isinstance(result, model.Err):
                return ["CAPACITY"]
            first = "DEFER" if defer else ("HOST" if host else "CREATE")
            rest = ["IDS", "TIME"] + (["DURABILITY"] if before.persistent else [])
            return [first, *rest]
        case model.CreatesAtOnce():
            return ["CAPACITY", "IDS"]
        case model.StartTurn(id=n):
            if target(n) in before.archived and isinstance(result, model.Err):
                return ["ARCHIVE-FINAL", "TURN"]
            if result == model.Err(model.BUSY):
                return ["TURN-BUSY"]
            if isinstance(result, model.Pending):
                return ["HOST", "TURN"]
            return ["TURN", "TIME"] + (["DURABILITY"] if before.persistent else [])
        case model.TurnsAtOnce():
            return ["TURN-BUSY"]
        case model.HostMessage(id=n, text=text):
            if target(n) in before.archived and isinstance(result, model.Err):
                return ["ARCHIVE-FINAL", "HOST-MESSAGE"]
            running = target(n) in live and live[target(n)].running
            if running and text == model.COMPACT:
                return ["COMPACT", "HOST-MESSAGE", "CHECKPOINT"]
            return ["HOST-MESSAGE"] + (["CHECKPOINT"] if running and before.persistent else [])
        case model.Interrupt():
            if result == model.Err(model.NOT_RUNNING):
                return ["INTERRUPT-RUNNING"]
            return ["INTERRUPT"]
        case model.Read(id=n):
            if target(n) in before.archived:
                return ["ARCHIVE-FINAL", "READ"]
            if target(n) not in live and target(n) in store:
                return ["READ-FALLBACK", "READ"]
            return ["READ"]
        case model.List(offset=offset, limit=limit):
            extra = ["ARCHIVE-FINAL"] if before.archived else []
            if offset is not None or limit is not None:
                return ["LIST-PAGE", "LIST-ORDER", "LIST", *extra]
            return ["LIST", "LIST-ORDER", *extra]
        case model.Archive(id=n):
            if target(n) in live and live[target(n)].running:
                return ["ARCHIVE-STOP", "ARCHIVE", "ARCHIVE-FINAL"]
            return ["ARCHIVE", "ARCHIVE-FINAL"]
        case model.LoadPersisted(id=n):
            if target(n) in before.archived and before.persistent:
                return ["ARCHIVE-FINAL", "LOAD-PERSISTED"]
            return ["LOAD-PERSISTED"]
        case model.CancelAllCheckpointers() | model.RearmAllCheckpointers():
            return ["STOP-RESUME", "CHECKPOINT-GATE"]
        case model.Restart():
            return ["RESTART"]
        case model.ObserveStore():
            extra = ["ARCHIVE-FINAL"] if before.archived else []
            return ["DURABILITY", "CHECKPOINT", *extra]
    return ["PROTOCOL"]


def _shown_ids(value: Json) -> set[str]:
    """Session ids an answer shows (a view, a list, a stored session map)."""
    if isinstance(value, dict):
        if isinstance(value.get("session_id"), str):
            return {value["session_id"]}
        return {k for k in value if _is_uuid(k)}
    if isinstance(value, list):
        return {r["session_id"] for r in value if isinstance(r, dict) and "session_id" in r}
    return set()


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _only_differ_in(expected: Json, actual: Json, keys: set[str]) -> bool:
    """Whether two answers are the same except, somewhere inside, for ``keys``."""

    def strip(value: Json) -> Json:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in keys}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return matches(strip(expected), strip(actual))


def blame(
    op: model.Op,
    before: model.State,
    clauses: Sequence[str],
    want: Json,
    got: Json,
    completed_differs: bool = False,
) -> str:
    """The clause a difference between ``want`` and ``got`` is reported under.

    ``clauses`` are the step's (``step_clauses``); the first is the default.
    """
    if completed_differs and not isinstance(op, model.Restart):
        if isinstance(op, model.Archive):
            return "ARCHIVE-STOP"
        if isinstance(op, model.Interrupt):
            return "INTERRUPT"
        return clauses[0]
    if isinstance(got, dict) and "ok" in got and before.archived:
        shown = _shown_ids(got["ok"])
        if isinstance(op, model.LoadPersisted) and got["ok"] is not None:
            shown.add(model.sid(op.id))
        if shown & before.archived:
            return "ARCHIVE-FINAL"
    if isinstance(want, dict) and isinstance(got, dict) and "ok" in want and "ok" in got:
        w, g = want["ok"], got["ok"]
        if (
            isinstance(op, model.List)
            and isinstance(w, list)
            and isinstance(g, list)
            and sorted(map(dumps, w)) == sorted(map(dumps, g))
        ):
            return "LIST-ORDER"
        if isinstance(op, model.ObserveStore) and isinstance(w, dict) and isinstance(g, dict):
            return _store_blame(before, w, g)
        if _only_differ_in(w, g, {"created_at", "updated_at"}):
            return "TIME"
        if _only_differ_in(w, g, {"session_id"}):
            return "IDS"
    return clauses[0]


def _store_blame(before: model.State, want: dict[str, Json], got: dict[str, Json]) -> str:
    live = dict(before.live)
    for sid in sorted(set(want) | set(got)):
        w, g = want.get(sid), got.get(sid)
        if matches(w, g):
            continue
        if g is not None and sid in before.archived:
            return "ARCHIVE-FINAL"
        session = live.get(sid)
        if session is not None and not session.armed and g is not None and w is not None:
            return "CHECKPOINT-GATE"
        if session is not None and session.running:
            return "CHECKPOINT"
        return "DURABILITY"
    return "DURABILITY"
