"""Session stores: the protocol, the scheduling-point wrapper, and two backends.

``MemoryStore`` is the in-process reference; ``SqliteStore`` keeps sessions in
one SQLite file (a group-commit writer thread, one owner per file, damage
contained; ``SqliteStore.salvage`` returns a ``Salvage``).
``encode_session``/``decode_session`` are the JSON body format the SQLite
store writes.  ``StoreKind``/``store_kind``/``parse_store``: the named kinds
(``memory``, ``sqlite``, plug-ins) every ``--store`` option and the store
contract suite (``meerkat_ref.testing.check_session_store``) make stores through;
``DriverFaults`` is the plan a kind's ``faulty`` factory fails its driver by.
"""

from ._base import PointedStore, SessionStore
from ._codec import decode_session, encode_session
from ._faults import DriverFaults
from ._kinds import (
    BUILTIN_KINDS,
    CAPABILITIES,
    FaultyStoreFactory,
    StoreFactory,
    StoreKind,
    StoreOption,
    kind_names,
    parse_store,
    store_kind,
)
from ._memory import MemoryStore
from ._sqlite import Salvage, SqliteStore

__all__ = [
    "BUILTIN_KINDS",
    "CAPABILITIES",
    "DriverFaults",
    "FaultyStoreFactory",
    "MemoryStore",
    "PointedStore",
    "Salvage",
    "SessionStore",
    "SqliteStore",
    "StoreFactory",
    "StoreKind",
    "StoreOption",
    "decode_session",
    "encode_session",
    "kind_names",
    "parse_store",
    "store_kind",
]
