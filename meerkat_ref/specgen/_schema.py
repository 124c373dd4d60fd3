"""A small JSON Schema validator: exactly the subset ``spec/*.schema.json`` use.

Why not the ``jsonschema`` package: the two schemas are written by hand (but
for the adapter schema's command objects, generated from the registry) with
a dozen keywords, and a sixty-line validator keeps the oracle standard-library
only.  An unknown keyword raises ``SchemaError`` rather than being ignored,
so the schemas cannot drift outside what is checked.

Keywords: ``type`` (one or a list), ``const``, ``enum``, ``properties``,
``required``, ``additionalProperties`` (bool or schema), ``items``,
``minItems``, ``maxItems``, ``minimum``, ``pattern`` (``re.search``),
``anyOf``, ``oneOf``, ``$ref`` (``#/$defs/<name>`` only), ``$defs``; and the
annotations ``$schema``, ``$id``, ``title``, ``description``, ``$comment``.
"""

from __future__ import annotations

import re
from typing import Any

_ANNOTATIONS = {"$schema", "$id", "title", "description", "$comment", "$defs", "examples"}
_KEYWORDS = {
    "type", "const", "enum", "properties", "required", "additionalProperties", "items",
    "minItems", "maxItems", "minimum", "pattern", "anyOf", "oneOf", "$ref",
}


class SchemaError(Exception):
    """The schema itself uses something this validator does not know."""


def _is(kind: str, value: Any) -> bool:
    if kind == "object":
        return isinstance(value, dict)
    if kind == "array":
        return isinstance(value, list)
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "null":
        return value is None
    raise SchemaError(f"unknown type {kind!r}")


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def errors(schema: dict[str, Any], value: Any, root: dict[str, Any] | None = None,
           where: str = "$") -> list[str]:
    """Every way ``value`` fails ``schema`` (empty: it is valid), each naming its path."""
    root = schema if root is None else root
    unknown = set(schema) - _KEYWORDS - _ANNOTATIONS
    if unknown:
        raise SchemaError(f"unsupported keywords {sorted(unknown)} at {where}")
    out: list[str] = []
    if "$ref" in schema:
        ref = schema["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#/$defs/"):
            raise SchemaError(f"only local #/$defs/ references are supported, got {ref!r}")
        out += errors(root["$defs"][ref[len("#/$defs/"):]], value, root, where)
    if "type" in schema:
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is(k, value) for k in kinds):
            return [*out, f"{where}: expected {' or '.join(kinds)}, got {type(value).__name__}"]
    if "const" in schema and not _same(schema["const"], value):
        out.append(f"{where}: must be {schema['const']!r}")
    if "enum" in schema and not any(_same(e, value) for e in schema["enum"]):
        out.append(f"{where}: {value!r} is not one of {schema['enum']!r}")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in value:
                out.append(f"{where}: missing {key!r}")
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in props:
                out += errors(props[key], item, root, f"{where}.{key}")
            elif extra is False:
                out.append(f"{where}: unexpected key {key!r}")
            elif isinstance(extra, dict):
                out += errors(extra, item, root, f"{where}.{key}")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            out.append(f"{where}: fewer than {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            out.append(f"{where}: more than {schema['maxItems']} items")
        if "items" in schema:
            for i, item in enumerate(value):
                out += errors(schema["items"], item, root, f"{where}[{i}]")
    if "minimum" in schema and _is("number", value) and value < schema["minimum"]:
        out.append(f"{where}: {value} is below {schema['minimum']}")
    if "pattern" in schema and isinstance(value, str) and not re.search(schema["pattern"], value):
        out.append(f"{where}: {value!r} does not match {schema['pattern']!r}")
    if "anyOf" in schema:
        tried = [errors(s, value, root, where) for s in schema["anyOf"]]
        if all(tried):
            closest = min(tried, key=len)  # the branch it nearly is, to say what is wrong
            out.append(f"{where}: matches none of anyOf; closest: " + "; ".join(closest))
    if "oneOf" in schema:
        passing = sum(1 for s in schema["oneOf"] if not errors(s, value, root, where))
        if passing != 1:
            out.append(f"{where}: matches {passing} of oneOf, not exactly 1")
    return out
