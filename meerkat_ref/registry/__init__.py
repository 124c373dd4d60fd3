"""The operation registry: one entry per operation, and the one codec for values.

See ``_operations`` (the table) and ``_values`` (service values to model values,
model values to and from JSON).  Imports only the ground floor.
"""

from ._operations import (
    BY_MODEL,
    BY_NAME,
    OPERATIONS,
    PROCESS_COMMANDS,
    SERVICE_COMMANDS,
    Operation,
    Service,
    WireError,
    at_once,
    describe,
    expand,
    field,
    from_wire,
    known_fields,
    operation,
    session_of,
    session_text,
    to_wire,
)
from ._values import Json, encode

__all__ = [
    "BY_MODEL",
    "BY_NAME",
    "OPERATIONS",
    "PROCESS_COMMANDS",
    "SERVICE_COMMANDS",
    "Json",
    "Operation",
    "Service",
    "WireError",
    "at_once",
    "describe",
    "encode",
    "expand",
    "field",
    "from_wire",
    "known_fields",
    "operation",
    "session_of",
    "session_text",
    "to_wire",
]
