"""The session services: ephemeral and persistent (the seed variant: ``meerkat_ref.testing``)."""

from ._ephemeral import EphemeralSessionService
from ._gate import CheckpointerGate, StoreCheckpointer
from ._persistent import PersistentSessionService
from ._statistics import GateStatistics, ServiceStatistics

__all__ = [
    "CheckpointerGate",
    "EphemeralSessionService",
    "GateStatistics",
    "PersistentSessionService",
    "ServiceStatistics",
    "StoreCheckpointer",
]
