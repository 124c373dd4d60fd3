"""The session services: ephemeral, persistent, and the seed-faithful variant."""

from ._ephemeral import EphemeralSessionService
from ._gate import CheckpointerGate, StoreCheckpointer
from ._persistent import PersistentSessionService
from ._seed import ALL_WINDOWS, SeedPersistentSessionService, Window, parse_windows

__all__ = [
    "ALL_WINDOWS",
    "CheckpointerGate",
    "EphemeralSessionService",
    "PersistentSessionService",
    "SeedPersistentSessionService",
    "StoreCheckpointer",
    "Window",
    "parse_windows",
]
