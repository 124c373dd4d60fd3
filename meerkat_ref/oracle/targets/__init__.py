"""Targets: what the engine drives, reached only through the ``Target`` protocol.

Two of them: ``InProcessTarget`` (a Python service under ``ControlledPoints``,
in the engine's own ``trio.run``) and ``AdapterTarget`` (any port, over the
JSON-lines adapter protocol).  Both answer with the plain data of
``_protocol``.
"""

from ._adapter import AdapterTarget, Malformed, adapter_target
from ._client import AdapterClient
from ._inprocess import InProcessTarget, ServiceFactory
from ._points import ControlledPoints, NotParked, Parked
from ._protocol import (
    AGENT_KINDS,
    CLIENT_CALL,
    Answer,
    Footprint,
    GateState,
    Introspection,
    OpenRefused,
    Point,
    Settled,
    Target,
)
from ._wire import (
    CONTRACT_CODES,
    CONTROL_COMMANDS,
    CONTROL_FIELDS,
    MAX_LINE,
    PROTOCOL,
    PROTOCOL_CODES,
    VECTORS_FORMAT,
    ProtocolError,
    dumps,
    show,
)

__all__ = [
    "AGENT_KINDS",
    "CLIENT_CALL",
    "CONTRACT_CODES",
    "CONTROL_COMMANDS",
    "CONTROL_FIELDS",
    "MAX_LINE",
    "PROTOCOL",
    "PROTOCOL_CODES",
    "VECTORS_FORMAT",
    "AdapterClient",
    "AdapterTarget",
    "Answer",
    "ControlledPoints",
    "Footprint",
    "GateState",
    "InProcessTarget",
    "Introspection",
    "Malformed",
    "NotParked",
    "OpenRefused",
    "Parked",
    "Point",
    "ProtocolError",
    "ServiceFactory",
    "Settled",
    "Target",
    "adapter_target",
    "dumps",
    "show",
]
