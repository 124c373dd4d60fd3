"""Session stores: the protocol, the scheduling-point wrapper, and two backends.

``MemoryStore`` is the in-process reference; ``SqliteStore`` keeps sessions in
one SQLite file (a group-commit writer thread, one owner per file, damage
contained; ``SqliteStore.salvage`` returns a ``Salvage``).
``encode_session``/``decode_session`` are the JSON body format the SQLite
store writes.
"""

from ._base import PointedStore, SessionStore
from ._codec import decode_session, encode_session
from ._memory import MemoryStore
from ._sqlite import Salvage, SqliteStore

__all__ = [
    "MemoryStore",
    "PointedStore",
    "Salvage",
    "SessionStore",
    "SqliteStore",
    "decode_session",
    "encode_session",
]
