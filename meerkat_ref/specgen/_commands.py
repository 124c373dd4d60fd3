"""ADAPTER.md's command table and the schema's command objects, read from the registry.

Each operation's field table (``registry.Operation.table``) is its command:
the table of section 3 of ``spec/ADAPTER.md`` (section ``commands``) and the
objects of ``#/$defs/serviceCall`` and ``#/$defs/serviceCommand`` in
``spec/adapter.schema.json`` are drawn from it, so the prose, the schema and
the codec the reference runs (``from_wire``) cannot disagree on a field, a
kind, a default or an enum [WIRE-FIELDS].
"""

from __future__ import annotations

import json
from typing import Any

from ..registry import OPERATIONS, Field, Operation

_WORDS = {"str": "string", "bool": "bool", "int": "int", "str?": "string or null",
          "int?": "int or null"}
_TYPES: dict[str, Any] = {"str": "string", "bool": "boolean", "int": "integer",
                          "str?": ["string", "null"], "int?": ["integer", "null"]}


def _note(f: Field) -> str:
    """What the table says of a field besides its name: kind, enum, default, contract check."""
    parts: list[str] = []
    if f.enum:
        shown = [f"`{w}`" + (" (default)" if w == f.default else "") for w, _ in f.enum]
        parts.append(" or ".join(shown))
    elif f.kind != "session":
        parts.append(_WORDS[f.kind])
        if not f.required and f.default is not None:
            parts.append(f"default `{json.dumps(f.default)}`")
    if f.about:
        parts.append(f.about)
    return ", ".join(parts)


def _fields(entry: Operation) -> str:
    required = [f"`{f.name}`" + (f" ({f.about})" if f.about else "")
                for f in entry.table if f.required]
    optional = [f"`{f.name}` ({_note(f)})" for f in entry.table if not f.required]
    return "; ".join(p for p in (", ".join(required), ", ".join(optional)) if p)


def render_commands() -> str:
    """Section 3's table of the commands of the contract, one row per operation."""
    lines = ["| command | fields | model | ok value | errors |", "| --- | --- | --- | --- | --- |"]
    for o in OPERATIONS:
        cells = (f"`{o.name}`", _fields(o), f"`{o.model.__name__}`", o.answers, o.errors)
        lines.append("|" + "|".join(f" {c} " if c else " " for c in cells) + "|")
    return "\n".join(lines)


def _property(f: Field) -> dict[str, Any]:
    if f.kind == "session":
        return {"$ref": "#/$defs/sessionArg"}
    out: dict[str, Any] = {"enum": [w for w, _ in f.enum]} if f.enum else {"type": _TYPES[f.kind]}
    words = [f"default {json.dumps(f.default)}"] if (
        not f.required and f.default is not None) else []
    words += [f.about] if f.about else []
    if words:
        out["description"] = "; ".join(words)
    return out


def _object(entry: Operation, description: str) -> dict[str, Any]:
    return {
        "description": description.replace("`", ""),
        "type": "object",
        "required": ["id", "cmd", *(f.name for f in entry.table if f.required)],
        "additionalProperties": False,
        "properties": {
            "id": {"$ref": "#/$defs/requestId"},
            "cmd": {"const": entry.name},
            "task": {"$ref": "#/$defs/task"},
            **{f.name: _property(f) for f in entry.table},
        },
    }


def _answered(entry: Operation) -> str:
    errors = f"; {entry.errors}" if entry.errors else ""
    return f"{entry.about}. Answered {entry.answers}{errors}."


def schema_with_commands(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with its service calls and process commands drawn from the registry."""
    defs = dict(schema["$defs"])
    calls = [_object(o, _answered(o)) for o in OPERATIONS if o.call is not None]
    process = [_object(o, f"{o.name}: {_answered(o)}") for o in OPERATIONS if o.call is None]
    defs["serviceCall"] = {**defs["serviceCall"], "oneOf": calls}
    defs["serviceCommand"] = {**defs["serviceCommand"],
                              "oneOf": [{"$ref": "#/$defs/serviceCall"}, *process]}
    return {**schema, "$defs": defs}


def render_schema(text: str) -> str:
    """The schema file's new text: its command objects drawn afresh, everything else kept."""
    return json.dumps(schema_with_commands(json.loads(text)), indent=1) + "\n"


__all__ = ["render_commands", "render_schema", "schema_with_commands"]
