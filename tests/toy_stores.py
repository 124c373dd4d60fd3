"""A third party's store, small: the store contract's checks judged against it and its bugs.

``ToyStore`` keeps its sessions in one JSON file (``toy.json``, rewritten
whole through a rename on every write) beside a lock file (``toy.lock``,
``flock``), and declares every capability.  It is written the way a third
party would write one, from the contract and not from ``SqliteStore``: the
correct toy passing every check shows the suite asks only what the contract
says.  Each entry of ``BUGS`` gives the toy one bug (a broken promise of
section 6 of ``spec/CONTRACT.md``), and ``tests/test_store_contract_checks.py``
shows the check named beside it fails that toy, saying so.

``group=True`` makes writes wait in a queue that a background task commits,
all of it at once, whenever every other task is blocked (a group commit): the
toy then has writes in flight while others are made, which the order and
last-word checks need to be able to fail.

Module-level ``StoreKind``s (``CORRECT``, ...) are what the checks that run
the store in a child process import again (``tests`` is on its path).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import weakref
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

import trio
import trio.testing

from meerkat_ref._errors import SessionStoreError
from meerkat_ref._types import (
    AssistantMessage,
    Session,
    SessionFilter,
    SessionId,
    SessionMeta,
    Usage,
    list_order_key,
)
from meerkat_ref.store import (
    CAPABILITIES,
    DriverFaults,
    StoreKind,
    decode_session,
    encode_session,
)

BUGS: dict[str, str] = {
    "drops-usage": "keeps assistant messages without their token usage",
    "merge-on-save": "a save merges its metadata into the old row's",
    "load-missing-raises": "load of an unknown id raises KeyError",
    "alias-metadata": "keeps the caller's metadata dict itself",
    "ties-by-insertion": "lists equal times in insertion order, not by id",
    "inclusive-filters": "keeps rows at created_after/updated_after too",
    "page-then-filter": "cuts the page before it filters",
    "limit-zero-means-all": "a limit of 0 gives every row (``if limit:``)",
    "delete-missing-raises": "deleting an id never saved raises",
    "exists-remembers": "exists says true for a deleted id",
    "half-applied-failure": "a refused save leaves half of itself",
    "lost-update": "a save writes back a copy taken before its checkpoint",
    "torn-save": "a save replaces messages, checkpoints, then the rest",
    "apply-then-checkpoint": "a call applies its write, then checkpoints (a cancel lands after)",
    "reverse-batches": "(group) commits a batch newest first",
    "refusal-fails-batch": "(group) a save it refuses fails every write committed with it",
    "delete-skips-queue": "(group) a delete is applied at once, ahead of queued saves",
    "cancel-leaves-write": "(group) a cancelled call's queued write is committed anyway",
    "forgets-last-write": "writes the file every other write only",
    "flush-on-close-only": "writes the file only when closed",
    "close-does-not-refuse": "calls after close are served",
    "no-lock": "takes no lock",
    "unreadable-is-empty": "a file it cannot read opens as an empty store",
    "upkeep-fails": "after 2,000 writes, its periodic compaction fails every write",
    "driver-error-is-damage": "a read its driver fails answers as if the rows were gone",
    "driver-error-fails-batch": "(group) a driver error in a batch fails every write of it",
    "dropped-keeps-lock": "a store dropped without closing keeps its lock file open",
    "long-path-os-error": "in a directory of over 500 characters, lets an OSError through",
}

_LIMIT = 2**63


def _fits(session: Session) -> bool:
    ints = [session.created_at, session.updated_at, session.revision,
            session.usage.input_tokens, session.usage.output_tokens]
    return all(-_LIMIT <= i < _LIMIT for i in ints)


@dataclass
class _Job:
    what: str
    session: Session | None
    session_id: SessionId
    done: trio.Event = field(default_factory=trio.Event)
    taken: bool = False
    error: Exception | None = None


class ToyStore:
    """A JSON-file store; see the module docstring."""

    def __init__(self, directory: Path, bugs: frozenset[str] = frozenset(),
                 group: bool = False, faults: DriverFaults | None = None) -> None:
        unknown = bugs - set(BUGS)
        assert not unknown, unknown
        self.path = Path(directory) / "toy.json"
        self.bugs = bugs
        self.group = group
        self.rows: dict[SessionId, Session] = {}
        self.deleted: set[SessionId] = set()  # for exists-remembers
        self.closed = False
        self.writes = 0
        self.queue: list[_Job] = []
        self.queued = trio.Event()
        self._lock: int | None = None
        self._unlock: weakref.finalize[[int], ToyStore] | None = None
        self._stack = contextlib.AsyncExitStack()
        self.faults = faults  # the "driver": consulted once per call, and per commit
        self.grown = 0  # bytes written since open, against faults.room

    # -- lifetime --------------------------------------------------------------------------

    async def __aenter__(self) -> ToyStore:
        if "long-path-os-error" in self.bugs and len(str(self.path)) > 500:
            raise OSError(36, "File name too long", str(self.path))
        if "no-lock" not in self.bugs:
            self._take_lock()
        try:
            self._read()
        except BaseException:
            self._release()
            raise
        if self.group:
            nursery = await self._stack.enter_async_context(trio.open_nursery())
            nursery.start_soon(self._committer)
            self._stack.callback(nursery.cancel_scope.cancel)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.group:  # what was submitted before close is committed
            batch, self.queue = self.queue, []
            self._commit(batch)
        if "close-does-not-refuse" not in self.bugs:
            self.closed = True
        if "forgets-last-write" not in self.bugs:
            self._write()
        await self._stack.aclose()
        self._release()

    def _take_lock(self) -> None:
        path = self.path.with_suffix(".lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            os.close(fd)
            raise SessionStoreError(f"toy store {self.path} is held by pid {holder}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock = fd
        if "dropped-keeps-lock" not in self.bugs:  # a dropped toy lets its lock go
            self._unlock = weakref.finalize(self, os.close, fd)

    def _release(self) -> None:
        if self._unlock is not None:
            self._unlock.detach()
            self._unlock = None
        if self._lock is not None:
            os.ftruncate(self._lock, 0)
            os.close(self._lock)
            self._lock = None

    # -- the driver ------------------------------------------------------------------------

    def _driver(self, *writing: Session) -> None:
        """One round trip to the toy's driver: it fails as ``faults`` says (none by default)."""
        if self.faults is None:
            return
        if self.faults.step():
            raise SessionStoreError("the toy's driver failed this step (a transient error)")
        size = sum(len(json.dumps(encode_session(s))) for s in writing)
        if self.faults.room is not None and self.grown + size > self.faults.room:
            raise SessionStoreError("the toy's disk is full")
        self.grown += size

    def _read(self) -> None:
        if not self.path.exists():
            return
        try:
            data = json.loads(self.path.read_bytes())
            self.rows = {SessionId.parse(k): decode_session(v, expected_id=SessionId.parse(k))
                         for k, v in data.items()}
        except (ValueError, SessionStoreError, AttributeError) as exc:
            if "unreadable-is-empty" in self.bugs:
                self.rows = {}
                return
            raise SessionStoreError(f"toy store {self.path} cannot be read: "
                                    f"{type(exc).__name__}") from None

    def _write(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({str(k): encode_session(v) for k, v in self.rows.items()}))
        os.replace(tmp, self.path)

    def _wrote(self) -> None:
        self.writes += 1
        if "upkeep-fails" in self.bugs and self.writes > 2_000:
            raise SessionStoreError("the toy store's compaction failed")
        if "flush-on-close-only" in self.bugs:
            return
        if "forgets-last-write" in self.bugs and self.writes % 2:
            return
        self._write()

    def _open(self) -> None:
        if self.closed:
            raise SessionStoreError("the toy store is closed")

    # -- writes ----------------------------------------------------------------------------

    def _kept(self, session: Session) -> Session:
        if "drops-usage" in self.bugs:
            session = replace(session, messages=tuple(
                replace(m, usage=Usage()) if isinstance(m, AssistantMessage) else m
                for m in session.messages))
        if "merge-on-save" in self.bugs and session.id in self.rows:
            merged = {**self.rows[session.id].metadata, **session.metadata}
            session = replace(session, metadata=merged)
        if "alias-metadata" in self.bugs:
            return session
        return replace(session, metadata=MappingProxyType(dict(session.metadata)))

    def _apply_save(self, session: Session) -> None:
        self.rows[session.id] = self._kept(session)
        self.deleted.discard(session.id)

    def _apply_delete(self, session_id: SessionId) -> None:
        if self.rows.pop(session_id, None) is None and "delete-missing-raises" in self.bugs:
            raise KeyError(session_id)
        self.deleted.add(session_id)

    async def save(self, session: Session) -> None:
        if "apply-then-checkpoint" not in self.bugs:
            await trio.lowlevel.checkpoint()
        self._open()
        if not _fits(session) and self.group and "refusal-fails-batch" in self.bugs:
            await self._queued(_Job("save", session, session.id))  # refused at the commit
            return
        if not _fits(session):
            if "half-applied-failure" in self.bugs:
                old = self.rows.get(session.id, session)
                self.rows[session.id] = replace(old, metadata=session.metadata,
                                                messages=session.messages)
            raise SessionStoreError(f"a value of session {session.id} does not fit in 64 bits",
                                    session_id=session.id)
        encode_session(session)  # what the file cannot hold is refused before anything changes
        if self.group:
            await self._queued(_Job("save", session, session.id))
        elif "lost-update" in self.bugs:
            copy = dict(self.rows)
            await trio.lowlevel.checkpoint()
            copy[session.id] = self._kept(session)
            self.rows = copy
        elif "torn-save" in self.bugs and session.id in self.rows:
            self.rows[session.id] = replace(self.rows[session.id], messages=session.messages)
            await trio.lowlevel.checkpoint()
            self._apply_save(session)
        else:
            self._driver(session)
            self._apply_save(session)
        self._wrote()
        if "apply-then-checkpoint" in self.bugs:
            await trio.lowlevel.checkpoint()

    async def delete(self, session_id: SessionId) -> None:
        if "apply-then-checkpoint" not in self.bugs:
            await trio.lowlevel.checkpoint()
        self._open()
        if self.group and "delete-skips-queue" not in self.bugs:
            await self._queued(_Job("delete", None, session_id))
        else:
            self._driver()
            self._apply_delete(session_id)
        self._wrote()
        if "apply-then-checkpoint" in self.bugs:
            await trio.lowlevel.checkpoint()

    async def _queued(self, job: _Job) -> None:
        self.queue.append(job)
        self.queued.set()
        try:
            await job.done.wait()
        except trio.Cancelled:
            if not job.taken and "cancel-leaves-write" not in self.bugs:
                self.queue.remove(job)
            raise
        if job.error is not None:
            raise job.error

    async def _committer(self) -> None:
        while True:
            await self.queued.wait()
            # Wait until every other task is blocked (a driver waiting for quiescence
            # is woken first: its cushion is smaller), then commit all that waits.
            await trio.testing.wait_all_tasks_blocked(cushion=0.0001)
            self.queued = trio.Event()
            batch, self.queue = self.queue, []
            self._commit(batch)

    def _commit(self, batch: list[_Job]) -> None:
        unfit = [j for j in batch if j.session is not None and not _fits(j.session)]
        if unfit:  # only with "refusal-fails-batch": the whole batch is refused
            for job in batch:
                job.taken = True
                job.error = SessionStoreError(f"{job.what} failed: a value in its batch "
                                              "does not fit in 64 bits")
                job.done.set()
            return
        try:
            self._driver(*(j.session for j in batch if j.session is not None))
        except SessionStoreError as exc:
            if len(batch) > 1 and "driver-error-fails-batch" not in self.bugs:
                for job in batch:  # the batch's one transaction failed: each alone
                    self._commit([job])
                return
            for job in batch:
                job.taken = True
                job.error = exc
                job.done.set()
            return
        for job in batch[::-1] if "reverse-batches" in self.bugs else batch:
            job.taken = True
            if job.session is not None:
                self._apply_save(job.session)
            else:
                with contextlib.suppress(KeyError):
                    self._apply_delete(job.session_id)
            job.done.set()

    # -- reads -----------------------------------------------------------------------------

    async def load(self, session_id: SessionId) -> Session | None:
        await trio.lowlevel.checkpoint()
        self._open()
        try:
            self._driver()
        except SessionStoreError:
            if "driver-error-is-damage" in self.bugs:
                return None
            raise
        if "load-missing-raises" in self.bugs:
            return self.rows[session_id]
        return self.rows.get(session_id)

    async def exists(self, session_id: SessionId) -> bool:
        await trio.lowlevel.checkpoint()
        self._open()
        self._driver()
        if "exists-remembers" in self.bugs and session_id in self.deleted:
            return True
        return session_id in self.rows

    async def list(self, filter: SessionFilter = SessionFilter()) -> list[SessionMeta]:
        await trio.lowlevel.checkpoint()
        self._open()
        try:
            self._driver()
        except SessionStoreError:
            if "driver-error-is-damage" in self.bugs:
                return []
            raise
        metas = [s.meta() for s in self.rows.values()]
        if "ties-by-insertion" in self.bugs:
            metas.sort(key=lambda m: -m.updated_at)
        else:
            metas.sort(key=lambda m: list_order_key(m.updated_at, m.id))
        start = filter.offset or 0
        stop = None if filter.limit is None else start + filter.limit
        if "limit-zero-means-all" in self.bugs and not filter.limit:
            stop = None
        if "page-then-filter" in self.bugs:
            return [m for m in metas[start:stop] if filter.admits(m)]
        if "inclusive-filters" in self.bugs:
            kept = [m for m in metas
                    if (filter.created_after is None or m.created_at >= filter.created_after)
                    and (filter.updated_after is None or m.updated_at >= filter.updated_after)]
        else:
            kept = [m for m in metas if filter.admits(m)]
        return kept[start:stop]


def toy(bugs: frozenset[str] = frozenset(), *, group: bool = False, name: str = "toy",
        spec: str | None = None) -> StoreKind:
    """The toy as a store kind declaring every capability.

    Except ``drop`` with group commit: its committer runs in a nursery the
    store's context opens, and Trio forbids leaving a nursery unclosed, so a
    group toy cannot be dropped without closing.
    """

    def open_toy(directory: Path) -> ToyStore:
        return ToyStore(directory, bugs, group)

    def open_faulty(directory: Path, faults: DriverFaults) -> ToyStore:
        return ToyStore(directory, bugs, group, faults)

    supports = frozenset(CAPABILITIES) - ({"drop"} if group else set())
    return StoreKind(name, open_toy, supports, "a JSON-file store (tests)", spec=spec,
                     faulty=open_faulty)


CORRECT = toy(spec="toy_stores:CORRECT")
GROUP = toy(group=True, name="toy (group commit)", spec="toy_stores:GROUP")
FLUSH_ON_CLOSE_ONLY = toy(frozenset({"flush-on-close-only"}), name="toy:flush-on-close-only",
                          spec="toy_stores:FLUSH_ON_CLOSE_ONLY")
NO_LOCK = toy(frozenset({"no-lock"}), name="toy:no-lock", spec="toy_stores:NO_LOCK")


def kind_with(bug: str) -> StoreKind:
    """The toy with one bug (group commit for the bugs that need writes in flight)."""
    for kind in (FLUSH_ON_CLOSE_ONLY, NO_LOCK):
        if kind.name == f"toy:{bug}":
            return kind
    return toy(frozenset({bug}), group=BUGS[bug].startswith("(group)"), name=f"toy:{bug}")
