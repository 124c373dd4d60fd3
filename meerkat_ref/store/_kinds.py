"""Store kinds: the one place that names the stores the commands run on, and what each supports.

A *kind* is a name, a factory and a declaration.  The factory takes a
directory that belongs to the store (empty at first) and returns an async
context manager that opens a ``SessionStore`` keeping its data there; leaving
the context closes it, and calling the factory again with the same directory
opens the same data again (for a kind that declares ``reopen``).  Every
command that takes ``--store`` (``check``, ``sweep``, ``tour``, ``python -m
meerkat_ref.adapter``), the in-process target, the benchmarks and the tests
make their stores through a kind, and ``meerkat_ref.testing.check_session_store``
checks a kind (ours or a third party's) against the store clauses of
``spec/CONTRACT.md`` section 6, skipping, with the reason, what a kind does
not declare.

``--store`` takes ``KIND[:PATH]`` (``parse_store``): ``memory``, ``sqlite``,
``sqlite:/some/dir``, a kind a package registers under the entry point group
``meerkat_ref.stores``, or a module path ``package.module:NAME[:PATH]`` naming
a ``StoreKind`` or a bare factory (its ``supports`` attribute, if any, is its
declaration).  PATH is a directory: where the command makes its stores.

Why here, in ``store/``: the doors, the oracle's in-process target and the
test-only ``testing`` floor all need the list, and ``store/`` is the floor
below all of them that already knows both backends.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import re
import sqlite3
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Protocol

from .._types import InvalidArgument
from ._base import SessionStore
from ._faults import DriverFaults
from ._memory import MemoryStore
from ._sqlite import SqliteStore

__all__ = [
    "BUILTIN_KINDS",
    "CAPABILITIES",
    "ENTRY_POINT_GROUP",
    "FaultyStoreFactory",
    "StoreFactory",
    "StoreKind",
    "StoreOption",
    "kind_names",
    "parse_store",
    "store_kind",
]

ENTRY_POINT_GROUP = "meerkat_ref.stores"
"""The entry point group a package registers its store kinds under (name -> ``module:attr``)."""

CAPABILITIES: Mapping[str, str] = {
    "reopen": "opened again over the same directory after a clean close, it holds every "
    "acknowledged write [STORE-COMMIT]",
    "close": "leaving the factory's context closes the store: writes submitted before are "
    "applied and acknowledged, calls made after raise SessionStoreError [STORE-COMMIT]",
    "crash": "a process killed with SIGKILL loses no acknowledged write, and no write cut by "
    "the kill is half applied [STORE-COMMIT]",
    "owner": "one opener of a directory at a time, across processes: a second is refused "
    "with SessionStoreError naming the holder's pid; the holder's death frees it "
    "[STORE-OWNER]",
    "files": "the data is in files under the directory: a damaged file is refused or its "
    "sessions named, never opened as an empty store [STORE-DAMAGE]",
    "faults": "its 'faulty' factory opens a store over a driver told to fail (DriverFaults): "
    "an error that is not damage fails only the calls that met it, names nothing damaged "
    "and loses nothing, and a write that does not fit a full disk fails alone "
    "[STORE-FAILURE]",
    "drop": "a store dropped without closing (its factory's context entered, never left) "
    "frees what it held once garbage-collected: its files close, and the directory opens "
    "again with every acknowledged write [STORE-OWNER]",
}
"""What a kind may declare; the store contract checks each only where it is declared."""


class StoreFactory(Protocol):
    """Opens a store keeping its data in ``directory`` (the store's own; empty at first)."""

    def __call__(self, directory: Path, /) -> AbstractAsyncContextManager[SessionStore]: ...


class FaultyStoreFactory(Protocol):
    """Opens a store as ``StoreFactory`` does, over a driver that consults ``faults``."""

    def __call__(self, directory: Path, faults: DriverFaults, /
                 ) -> AbstractAsyncContextManager[SessionStore]: ...


@dataclass(frozen=True)
class StoreKind:
    """A named store factory and what it declares (``CAPABILITIES``).

    ``unthreaded``, if given, opens the same store with no threads of its own
    (every call on the event loop's thread): what the explorer opens, so that
    a schedule replays step for step.  ``spec`` is how another process names
    the kind again (the store contract's crash and owner checks start one):
    a built-in or entry point name, or ``module:attr``.  ``faulty``, for a
    kind that declares ``faults``, opens the store over a driver that fails
    as a ``DriverFaults`` plan says.
    """

    name: str
    open: StoreFactory
    supports: frozenset[str] = frozenset()
    about: str = ""
    unthreaded: StoreFactory | None = None
    spec: str | None = None
    faulty: FaultyStoreFactory | None = None

    def __post_init__(self) -> None:
        unknown = sorted(set(self.supports) - set(CAPABILITIES))
        if unknown:
            raise InvalidArgument(
                f"store kind {self.name!r} declares unknown capabilities {', '.join(unknown)}; "
                f"known: {', '.join(CAPABILITIES)}")
        if "faults" in self.supports and self.faulty is None:
            raise InvalidArgument(
                f"store kind {self.name!r} declares 'faults' but gives no 'faulty' factory")

    @property
    def reopens(self) -> bool:
        """Whether its data outlives the store object (else keep the one store across restarts)."""
        return "reopen" in self.supports

    def explorer_open(self, directory: Path) -> AbstractAsyncContextManager[SessionStore]:
        """The factory the explorer uses: ``unthreaded`` where there is one."""
        return (self.unthreaded or self.open)(directory)


SQLITE_FILE = "sessions.sqlite"
"""The file a ``sqlite`` store keeps in its directory."""


@contextlib.asynccontextmanager
async def _open_memory(directory: Path) -> AsyncIterator[SessionStore]:
    yield MemoryStore()


def _open_sqlite(directory: Path) -> SqliteStore:
    return SqliteStore(Path(directory) / SQLITE_FILE)


def _open_sqlite_unthreaded(directory: Path) -> SqliteStore:
    return SqliteStore(Path(directory) / SQLITE_FILE, threaded=False)


def _open_sqlite_faulty(directory: Path, faults: DriverFaults) -> SqliteStore:
    """SQLite told to fail as ``faults`` says: the errors come from SQLite itself.

    A progress handler on the writer's and the reader's connections (not the
    checkpointer's: its failures are logged, never a call's) interrupts the
    step the plan fails (``SQLITE_INTERRUPT``); ``room`` becomes the
    writer's ``max_page_count`` (``SQLITE_FULL`` past it).
    """

    def wire(role: str, conn: sqlite3.Connection) -> None:
        if role == "checkpointer":
            return
        if role == "writer" and faults.room is not None:
            pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
            size = int(conn.execute("PRAGMA page_size").fetchone()[0])
            conn.execute(f"PRAGMA max_page_count = {pages + -(-faults.room // size)}")
        conn.set_progress_handler(lambda: int(faults.step()), 1)

    return SqliteStore(Path(directory) / SQLITE_FILE, on_connect=wire)


BUILTIN_KINDS: Mapping[str, StoreKind] = {
    kind.name: kind
    for kind in (
        StoreKind("memory", _open_memory, frozenset(),
                  "MemoryStore: a dict in this process (the explorer keeps it across a "
                  "restart; nothing survives the process)", spec="memory"),
        StoreKind("sqlite", _open_sqlite, frozenset(CAPABILITIES),
                  f"SqliteStore: one SQLite file, {SQLITE_FILE}, in the directory",
                  unthreaded=_open_sqlite_unthreaded, spec="sqlite",
                  faulty=_open_sqlite_faulty),
    )
}
"""Our two stores, by name: the default vocabulary of ``--store``."""

_MODULE_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def _registered() -> dict[str, str]:
    """Kinds other packages register (entry point name -> ``module:attr``)."""
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def kind_names() -> list[str]:
    """Every kind a name reaches: ours, then those registered by entry points."""
    return [*BUILTIN_KINDS, *sorted(set(_registered()) - set(BUILTIN_KINDS))]


def _load(target: str, name: str) -> StoreKind:
    """The kind ``module:attr`` names: a ``StoreKind``, or a factory (``supports`` declared on it).
    """
    module_name, _, attr = target.partition(":")
    try:
        obj: object = importlib.import_module(module_name)
    except ImportError as exc:
        raise InvalidArgument(f"store {name!r}: cannot import {module_name!r} ({exc})") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise InvalidArgument(f"store {name!r}: {module_name!r} has no {attr!r}")
        obj = getattr(obj, part)
    if isinstance(obj, StoreKind):
        return obj if obj.spec is not None else dataclasses.replace(obj, spec=name)
    if not callable(obj):
        raise InvalidArgument(f"store {name!r}: {target!r} is neither a StoreKind nor a factory")
    supports = getattr(obj, "supports", ())
    if isinstance(supports, str) or not isinstance(supports, Iterable):
        raise InvalidArgument(f"store {name!r}: its 'supports' must be a set of capability names")
    factory: StoreFactory = obj
    return StoreKind(name, factory, frozenset(str(s) for s in supports),
                     (getattr(obj, "__doc__", None) or "").strip().split("\n")[0], spec=name,
                     faulty=getattr(obj, "faulty", None))


def store_kind(spec: str | StoreKind) -> StoreKind:
    """The kind a name, an entry point or a ``module:attr`` path names.

    ``InvalidArgument`` (``INVALID_ARGUMENT``) for one nothing names.
    """
    if isinstance(spec, StoreKind):
        return spec
    if not isinstance(spec, str):
        raise InvalidArgument(f"a store kind is a name, got {type(spec).__name__}")
    if spec in BUILTIN_KINDS:
        return BUILTIN_KINDS[spec]
    registered = _registered()
    if spec in registered:
        return _load(registered[spec], spec)
    if _MODULE_PATH.match(spec):
        return _load(spec, spec)
    raise InvalidArgument(
        f"unknown store {spec!r}: use {', '.join(kind_names())}, KIND:DIR, or a module path "
        "package.module:NAME[:DIR]")


@dataclass(frozen=True)
class StoreOption:
    """What ``--store KIND[:PATH]`` said: the kind's name (or module path) and the path."""

    kind: str
    path: str | None = None

    def resolve(self) -> StoreKind:
        return store_kind(self.kind)

    def __str__(self) -> str:
        return self.kind if self.path is None else f"{self.kind}:{self.path}"


def parse_store(text: str) -> StoreOption:
    """``KIND``, ``KIND:PATH``, ``module:attr`` or ``module:attr:PATH``, the kind resolved.

    A name before the first ``:`` that is a kind (ours or an entry point's)
    takes the rest as its path; otherwise the first two parts are a module
    path.  ``InvalidArgument`` for anything that names no kind or an empty path.
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidArgument("--store is empty: use KIND[:DIR], e.g. sqlite or sqlite:/tmp/runs")
    head, sep, rest = text.partition(":")
    if head in BUILTIN_KINDS or head in _registered():
        option = StoreOption(head, rest if sep else None)
    else:
        module, sep2, tail = rest.partition(":")
        if not sep or not _MODULE_PATH.match(f"{head}:{module}"):
            store_kind(text)  # raises, naming what is known
        option = StoreOption(f"{head}:{module}", tail if sep2 else None)
    if option.path is not None and not option.path.strip():
        raise InvalidArgument(f"--store {text!r}: the path after ':' is empty")
    option.resolve()
    return option
