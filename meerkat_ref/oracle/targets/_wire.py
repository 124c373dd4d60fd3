"""The adapter protocol's framing: version, codes, one JSON line, quoting received text.

Shared by both ends: the oracle's ``AdapterTarget`` (which reads what a port
writes) and the reference adapter server.  Everything about *operations*
(commands, fields, values) is the registry's (``meerkat_ref.registry``); this
module is only about lines.  ``spec/ADAPTER.md`` is the prose form.
"""

from __future__ import annotations

import json

from ..._errors import ERROR_CODES
from ...registry._values import Json

PROTOCOL = "meerkat-ref/adapter@1"
VECTORS_FORMAT = "meerkat-ref/vectors@1"


class ProtocolError(Exception):
    """The target broke the protocol; the message says where."""


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

CONTROL_FIELDS: dict[str, tuple[str, ...]] = {
    "hello": (),
    "open": ("capacity", "persistent"),
    "settle": ("store", "events"),
    "control": ("points",),
    "release": ("task", "fault", "kind"),
    "at_once": ("commands",),
    "exit": (),
    "bye": (),
}
"""Each control command and the fields it may carry besides ``id`` and ``cmd`` (rule
WIRE-FIELDS of ``spec/ADAPTER.md``: any other field is ``BAD_REQUEST``)."""

CONTROL_COMMANDS: tuple[str, ...] = tuple(CONTROL_FIELDS)

MAX_LINE = 1 << 20
"""Longest command line an adapter must accept, in bytes (``spec/ADAPTER.md`` section 1)."""


def dumps(value: Json) -> str:
    """One JSON line: compact, keys in insertion order, ASCII-safe."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True)


def show(line: str | bytes, limit: int = 200) -> str:
    """A received line, quoted and cut, for error messages (never interpreted)."""
    if isinstance(line, bytes):
        line = line[: limit * 4].decode("utf-8", "replace")
    text = line.rstrip("\n")
    return repr(text if len(text) <= limit else text[:limit] + "...")


__all__ = [
    "CONTRACT_CODES",
    "CONTROL_COMMANDS",
    "MAX_LINE",
    "PROTOCOL",
    "PROTOCOL_CODES",
    "VECTORS_FORMAT",
    "dumps",
    "show",
]
