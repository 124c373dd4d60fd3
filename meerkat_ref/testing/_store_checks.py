"""The store contract's checks: one async function per promise of ``spec/CONTRACT.md`` section 6.

Each check is registered with ``@_check(name, *clauses, needs=...)`` into
``STORE_CHECKS`` (in the order they run); its docstring's first paragraph
is what ``--list`` and the report say it promises, and names its clauses.
A check gets a ``_Context`` (the kind, a fresh directory of its own, the
seed) and raises ``_CheckFailed`` with a sentence saying what the store did
instead; ``_store_contract`` runs them and reports.  See that module for why
failures are raised explicitly and why nothing here needs pytest.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
import importlib
import os
import random
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, NoReturn

import trio
import trio.testing

from .._errors import SessionStoreError
from .._types import (
    AssistantMessage,
    Message,
    Session,
    SessionFilter,
    SessionId,
    SessionMeta,
    SystemMessage,
    ToolResultMessage,
    Usage,
    UserMessage,
    list_order_key,
)
from ..store._base import SessionStore
from ..store._faults import DriverFaults
from ..store._kinds import CAPABILITIES, StoreKind

__all__ = [
    "MAX_ERROR_CHARS",
    "STORE_CHECKS",
    "StoreCheck",
    "StoreCheckSkipped",
    "crash_session",
    "importable",
    "rich_session",
    "sample_session",
]

MAX_ERROR_CHARS = 600
"""The longest error message a damaged store may give ([STORE-DAMAGE]: a short excerpt only)."""


# -- results ----------------------------------------------------------------------------------


class _CheckFailed(Exception):
    """A promise the store broke, said in words."""


class StoreCheckSkipped(Exception):
    """A check was not run: the store does not declare what it needs (the reason says what)."""

    def __init__(self, check: str, reason: str) -> None:
        super().__init__(f"{check}: {reason}")
        self.check = check
        self.reason = reason


@dataclass(frozen=True)
class StoreCheck:
    """One check of the store contract: its name, the clauses it checks, what it needs."""

    name: str
    clauses: tuple[str, ...]
    needs: frozenset[str]
    run: Callable[[_Context], Awaitable[None]] = field(repr=False, compare=False)

    @property
    def about(self) -> str:
        """The first sentence of its docstring: what it promises."""
        doc = (self.run.__doc__ or "").strip()
        return " ".join(doc.split("\n\n")[0].split())

    def __str__(self) -> str:
        return self.name


# -- the context a check runs in --------------------------------------------------------------


@dataclass
class _Context:
    kind: StoreKind
    directory: Path
    seed: int
    examples: int
    launcher: tuple[str, ...] = ()  # what runs a module in a child: default this Python's -m
    _places: int = 0

    def place(self) -> Path:
        """A fresh directory for one store (the factory's to keep its data in)."""
        self._places += 1
        path = self.directory / f"store-{self._places}"
        path.mkdir()
        return path

    def open(self, place: Path) -> contextlib.AbstractAsyncContextManager[SessionStore]:
        return self.kind.open(place)

    def faulty(self, faults: DriverFaults) -> contextlib.AbstractAsyncContextManager[SessionStore]:
        """A store on a fresh place over a driver that fails as ``faults`` says."""
        assert self.kind.faulty is not None  # "faults" is declared, so there is one
        return self.kind.faulty(self.place(), faults)

    @contextlib.asynccontextmanager
    async def fresh(self) -> AsyncIterator[SessionStore]:
        """A store on a fresh place, closed afterwards."""
        async with self.open(self.place()) as store:
            yield store


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise _CheckFailed(message)


def _fail(message: str) -> NoReturn:
    raise _CheckFailed(message)


async def _settled() -> None:
    """Let a store's own background tasks run out, once every call has returned.

    A correct store has nothing left to do then; one that applies a write
    later (after answering it cancelled, or after a delete overtook it)
    does it now, and the reads that follow see it.
    """
    await trio.testing.wait_all_tasks_blocked(cushion=0.01)


_CHECKS: list[StoreCheck] = []


_Run = Callable[["_Context"], Awaitable[None]]


def _check(name: str, *clauses: str, needs: Iterable[str] = ()) -> Callable[[_Run], _Run]:
    def register(fn: _Run) -> _Run:
        wanted = frozenset(needs)
        assert wanted <= set(CAPABILITIES), wanted
        _CHECKS.append(StoreCheck(name, clauses, wanted, fn))
        return fn

    return register


# -- sessions the checks save -----------------------------------------------------------------


def _sid(n: int) -> SessionId:
    return SessionId.from_int(n)


def _number(session_id: SessionId) -> int:
    return session_id.value.int


def _label(session_id: SessionId) -> str:
    n = _number(session_id)
    return f"s{n}" if n < 10**12 else str(session_id)


def sample_session(n: int, *, created: int = 0, updated: int | None = None,
             messages: tuple[Message, ...] = (), metadata: dict[str, str] | None = None,
             revision: int = 0) -> Session:
    return Session(id=_sid(n), created_at=created,
                   updated_at=created if updated is None else updated, messages=messages,
                   metadata=MappingProxyType(dict(metadata or {})), revision=revision)


ALL_MESSAGES: tuple[Message, ...] = (
    SystemMessage("be brief"),
    UserMessage('hello ✓ \u0000 \ud800 "quoted"'),
    AssistantMessage("hi", Usage(input_tokens=3, output_tokens=5)),
    AssistantMessage(""),
    ToolResultMessage(tool_use_id="tool-1", content="42"),
    ToolResultMessage(tool_use_id="tool-2", content="boom", is_error=True),
)
"""Every message type, with text a careless encoder gets wrong (NUL, a lone surrogate, quotes)."""


def rich_session(n: int = 1) -> Session:
    s = sample_session(n, created=10, updated=20, metadata={"model": "m", "ü": "ß"})
    for i, m in enumerate(ALL_MESSAGES):
        s = s.push(m, now=20 + i)
    return s


def crash_session(n: int) -> Session:
    """What the crash check's child saves as session ``n`` (the parent knows it from ``n``)."""
    return Session(id=_sid(n), created_at=n, updated_at=n + 1,
                   messages=(UserMessage(f"{n}:" + "x" * 200),), metadata=MappingProxyType({}),
                   revision=1)


def _show(value: object) -> str:
    if value is None:
        return "None"
    if isinstance(value, Session):
        return (f"Session({_label(value.id)}, created {value.created_at}, updated "
                f"{value.updated_at}, {len(value.messages)} messages, revision {value.revision})")
    if isinstance(value, SessionMeta):
        return f"{_label(value.id)}@{value.updated_at}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    text = repr(value)
    return text if len(text) <= 200 else text[:200] + "..."


def _difference(got: Session | None, want: Session | None) -> str:
    """Where two sessions differ, in words (the first field that does)."""
    if got is None or want is None:
        return f"gave {_show(got)}, expected {_show(want)}"
    for f in dataclasses.fields(Session):
        a, b = getattr(got, f.name), getattr(want, f.name)
        if f.name == "metadata":
            a, b = dict(a), dict(b)
        if a != b:
            if f.name == "messages" and len(a) == len(b):
                i = next(i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y)
                return f"message {i} is {a[i]!r}, expected {b[i]!r}"
            return f"{f.name} is {_show(a)}, expected {_show(b)}"
    return "they differ"


def _same(got: Session | None, want: Session | None, what: str) -> None:
    _expect(got == want, f"{what}: {_difference(got, want)}")


def _ids(metas: Sequence[SessionMeta]) -> list[str]:
    return [_label(m.id) for m in metas]


def _model_list(model: dict[SessionId, Session],
                f: SessionFilter = SessionFilter()) -> list[SessionMeta]:
    """The contract of ``list``, written as plainly as possible ([STORE-LIST], [LIST-ORDER])."""
    metas = sorted((s.meta() for s in model.values()),
                   key=lambda m: list_order_key(m.updated_at, m.id))
    metas = [m for m in metas if f.admits(m)]
    start = f.offset or 0
    stop = None if f.limit is None else start + f.limit
    return metas[start:stop]


def _filter_text(f: SessionFilter) -> str:
    parts = [f"{k}={v}" for k, v in (("created_after", f.created_after),
                                      ("updated_after", f.updated_after),
                                      ("limit", f.limit), ("offset", f.offset)) if v is not None]
    return f"list({', '.join(parts)})"


async def _listed(store: SessionStore, f: SessionFilter, want: list[SessionMeta],
                  context: str = "") -> None:
    got = await store.list(f)
    _expect(got == want, f"{context}{_filter_text(f)} gave {_show(got)}, expected {_show(want)}")


# -- STORE-SAVE, STORE-LOAD, STORE-LIST, STORE-DELETE, STORE-EXISTS ---------------------------


@_check("round-trip", "STORE-SAVE", "STORE-LOAD", "STORE-LIST")
async def _round_trip(ctx: _Context) -> None:
    """Every message type round-trips, alone, together and in either order: ``load`` gives
    back exactly what was saved, ``list`` its meta.

    [STORE-SAVE], [STORE-LOAD]: the saved session, equal to what was saved;
    [STORE-LIST]: ``SessionMeta`` with its counts, tokens and metadata.  A
    history may hold any message after any other, so an encoder whose path
    depends on which type comes first is held to each order.
    """
    s = rich_session()
    shapes = [s, sample_session(2, messages=tuple(reversed(ALL_MESSAGES)))]
    shapes += [sample_session(3 + i, messages=(m,)) for i, m in enumerate(ALL_MESSAGES)]
    async with ctx.fresh() as store:
        await store.save(s)
        _same(await store.load(s.id), s, f"load({_label(s.id)}) after save")
        await _listed(store, SessionFilter(), [s.meta()], "after one save, ")
        for other in shapes[1:]:
            await store.save(other)
            _same(await store.load(other.id), other,
                  f"load({_label(other.id)}) after a save of "
                  f"{', '.join(type(m).__name__ for m in other.messages)}")
        await _listed(store, SessionFilter(), sorted(
            (x.meta() for x in shapes), key=lambda m: list_order_key(m.updated_at, m.id)),
            "after every save, ")


@_check("save-replaces", "STORE-SAVE")
async def _save_replaces(ctx: _Context) -> None:
    """A save replaces the whole session: nothing of the old row is left, in ``load`` or ``list``.
    """
    replacement = sample_session(1, created=10, updated=99, messages=(UserMessage("only"),),
                           revision=7)
    async with ctx.fresh() as store:
        await store.save(rich_session(1))
        await store.save(replacement)
        _same(await store.load(_sid(1)), replacement, "load after a second save of s1")
        await _listed(store, SessionFilter(), [replacement.meta()], "after a replacing save, ")


@_check("saved-metadata-is-a-copy", "STORE-SAVE")
async def _metadata_copy(ctx: _Context) -> None:
    """The store keeps what was saved: the caller mutating its metadata mapping afterwards changes
    nothing."""
    metadata = {"k": "v"}
    async with ctx.fresh() as store:
        await store.save(Session(id=_sid(1), created_at=0, updated_at=0, metadata=metadata))
        metadata["k"] = "changed"
        loaded = await store.load(_sid(1))
        _expect(loaded is not None and dict(loaded.metadata) == {"k": "v"},
                f"the caller changed its metadata dict after save and load gives "
                f"{None if loaded is None else dict(loaded.metadata)}, expected {{'k': 'v'}}")
        shown = [dict(m.metadata) for m in await store.list()]
        _expect(shown == [{"k": "v"}],
                f"list shows metadata {shown} after the caller changed its dict")


@_check("load-missing-is-none", "STORE-LOAD")
async def _load_missing(ctx: _Context) -> None:
    """``load`` of an id never saved is ``None``, in an empty store and beside other rows."""
    async with ctx.fresh() as store:
        _same(await store.load(_sid(404)), None, "load of an unknown id in an empty store")
        await store.save(sample_session(1))
        _same(await store.load(_sid(404)), None, "load of an unknown id beside s1")


@_check("list-order", "STORE-LIST")
async def _list_order(ctx: _Context) -> None:
    """``list`` is newest ``updated_at`` first, ties by id ascending, and follows each update
    ([LIST-ORDER])."""
    async with ctx.fresh() as store:
        for n, updated in ((3, 5), (1, 5), (2, 9), (4, 1), (0, 5)):
            await store.save(sample_session(n, updated=updated))
        got = _ids(await store.list())
        _expect(got == ["s2", "s0", "s1", "s3", "s4"],
                f"list() gave {got}, expected newest first then id: [s2, s0, s1, s3, s4]")
        await store.save(sample_session(4, updated=10))
        got = _ids(await store.list())
        _expect(got[0] == "s4", f"after s4 was saved with the newest time, list() gave {got}")


_INT64_EDGES = (-(2**63) - 1, -(2**63), -(2**63) + 1, 2**63 - 2, 2**63 - 1, 2**63)
"""Times at and just past each end of a signed 64-bit integer."""


@_check("list-filters", "STORE-LIST")
async def _list_filters(ctx: _Context) -> None:
    """``created_after``/``updated_after`` keep rows strictly after them, before the page is cut.

    The newest row is the oldest created, so a page cut before filtering
    shows; times beyond 64 bits are clamped, not an error, right from the
    first one past each end (a store that maps times to 64-bit integers must
    clamp exactly there).
    """
    sessions = [sample_session(1, created=1, updated=10), sample_session(2, created=2, updated=20),
                sample_session(3, created=3, updated=30), sample_session(4, created=0, updated=40)]
    model = {s.id: s for s in sessions}
    filters = [
        SessionFilter(created_after=1), SessionFilter(created_after=3),
        SessionFilter(created_after=-1), SessionFilter(updated_after=20),
        SessionFilter(updated_after=19), SessionFilter(created_after=1, updated_after=25),
        SessionFilter(created_after=2, updated_after=10),
        SessionFilter(created_after=1, offset=1), SessionFilter(updated_after=10, limit=1),
        SessionFilter(created_after=1, limit=1), SessionFilter(created_after=0, offset=1,
                                                               limit=1),
        SessionFilter(updated_after=2**70), SessionFilter(updated_after=-(2**70)),
        SessionFilter(created_after=2**70), SessionFilter(created_after=-(2**70), limit=2),
        *(SessionFilter(created_after=t) for t in _INT64_EDGES),
        *(SessionFilter(updated_after=t, limit=3) for t in _INT64_EDGES),
    ]
    async with ctx.fresh() as store:
        for s in sessions:
            await store.save(s)
        for f in filters:
            await _listed(store, f, _model_list(model, f))


@_check("list-pages", "STORE-LIST")
async def _list_pages(ctx: _Context) -> None:
    """``offset``/``limit`` page the ordered list: pages neither repeat nor skip; huge values are
    fine."""
    sessions = [sample_session(n, updated=n) for n in range(7)]
    model = {s.id: s for s in sessions}
    async with ctx.fresh() as store:
        await _listed(store, SessionFilter(), [], "an empty store: ")
        await _listed(store, SessionFilter(created_after=0, limit=3, offset=1), [],
                      "an empty store: ")
        for s in sessions:
            await store.save(s)
        seen: list[SessionMeta] = []
        offset = 0
        while offset < 20:
            page = await store.list(SessionFilter(limit=3, offset=offset))
            if not page:
                break
            seen += page
            offset += 3
        want = _model_list(model)
        _expect(seen == want, f"pages of 3 gave {_show(seen)}, expected {_show(want)}")
        for f in (SessionFilter(offset=5), SessionFilter(limit=2), SessionFilter(offset=7),
                  SessionFilter(offset=100, limit=5), SessionFilter(offset=2**70),
                  SessionFilter(limit=0), SessionFilter(limit=0, offset=2),
                  SessionFilter(limit=2**70)):
            await _listed(store, f, _model_list(model, f))


@_check("delete-is-idempotent", "STORE-DELETE")
async def _delete_idempotent(ctx: _Context) -> None:
    """``delete`` removes the row; deleting it again, or an id never saved, succeeds and changes
    nothing."""
    async with ctx.fresh() as store:
        await store.save(sample_session(1))
        await store.save(sample_session(2))
        await store.delete(_sid(1))
        await store.delete(_sid(1))
        await store.delete(_sid(404))
        _same(await store.load(_sid(1)), None, "load of a deleted id")
        got = _ids(await store.list())
        _expect(got == ["s2"], f"after deleting s1 (twice) list() gave {got}, expected [s2]")


@_check("exists", "STORE-EXISTS")
async def _exists(ctx: _Context) -> None:
    """``exists(id)`` says whether ``load(id)`` would find a row: before, after save, after delete.
    """
    async with ctx.fresh() as store:
        _expect(not await store.exists(_sid(1)), "exists(s1) in an empty store is true")
        await store.save(sample_session(1))
        _expect(await store.exists(_sid(1)), "exists(s1) after save(s1) is false")
        _expect(not await store.exists(_sid(2)), "exists(s2) beside s1 is true")
        await store.delete(_sid(1))
        _expect(not await store.exists(_sid(1)), "exists(s1) after delete(s1) is true")


@_check("random-histories", "STORE-SAVE", "STORE-LOAD", "STORE-LIST", "STORE-DELETE",
        "STORE-EXISTS")
async def _random_histories(ctx: _Context) -> None:
    """Random saves and deletes agree with a dict after every step: ``list``, filters, pages,
    ``load``, ``exists``.

    Few ids (saves replace) and few times (ties need the id); ``examples``
    histories of up to 25 steps, drawn from ``seed``; a failure prints its
    history whole.
    """
    rng = random.Random(ctx.seed)
    ids = range(7)
    async with ctx.fresh() as store:
        for example in range(ctx.examples):
            for n in ids:  # every history starts from an empty store
                await store.delete(_sid(n))
            model: dict[SessionId, Session] = {}
            history: list[str] = []

            def where(history: list[str] = history, example: int = example) -> str:
                return f"history {example} (seed {ctx.seed}): {'; '.join(history) or 'empty'}: "

            for _ in range(rng.randrange(26)):
                n = rng.randrange(6) if rng.random() < 0.7 else rng.randrange(7)
                if rng.random() < 0.7:
                    created, updated, count = rng.randrange(5), rng.randrange(5), rng.randrange(3)
                    s = sample_session(n, created=created, updated=updated,
                                 messages=tuple(UserMessage(f"m{i}") for i in range(count)))
                    await store.save(s)
                    model[s.id] = s
                    history.append(f"save(s{n}, created={created}, updated={updated}, "
                                   f"{count} messages)")
                else:
                    await store.delete(_sid(n))
                    model.pop(_sid(n), None)
                    history.append(f"delete(s{n})")
                await _listed(store, SessionFilter(), _model_list(model), where())
            for _ in range(rng.randrange(5)):
                f = SessionFilter(
                    created_after=rng.choice([None, *range(-1, 6)]),
                    updated_after=rng.choice([None, *range(-1, 6)]),
                    limit=rng.choice([None, *range(8)]), offset=rng.choice([None, *range(8)]))
                await _listed(store, f, _model_list(model, f), where())
            for n in ids:
                _same(await store.load(_sid(n)), model.get(_sid(n)), f"{where()}load(s{n})")
                there = await store.exists(_sid(n))
                _expect(there == (_sid(n) in model),
                        f"{where()}exists(s{n}) is {there}, load says {_sid(n) in model}")


# -- STORE-FAILURE: what a store refuses, it refuses whole ------------------------------------


def _edge(n: int, **fields: Any) -> Session:
    """An edge case of session ``n``: a message and metadata unlike the row it replaces."""
    fields.setdefault("messages", (UserMessage(f"edge {n}"),))
    fields.setdefault("metadata", {"v": "edge"})
    return sample_session(n, **fields)


def _before(n: int) -> Session:
    return sample_session(n, updated=1, messages=(UserMessage("before"), UserMessage("before")),
                    metadata={"v": "before"})


def _edge_sessions() -> list[tuple[str, Session]]:
    huge_usage = _edge(4).push(AssistantMessage("x", Usage(2**70, 1)), now=1)
    return [
        ("the largest 64-bit times", _edge(1, created=2**63 - 1, updated=2**63 - 1)),
        ("the smallest 64-bit times", _edge(2, created=-(2**63), updated=-(2**63))),
        ("times beyond 64 bits", _edge(3, created=2**64, updated=2**64)),
        ("token counts beyond 64 bits", huge_usage),
        ("a revision beyond 64 bits", _edge(5, revision=2**64)),
        ("a 1 MB message", _edge(6, messages=(UserMessage("x" * 2**20),))),
        ("2,000 messages", _edge(7, messages=tuple(UserMessage(f"m{i}") for i in range(2000)))),
        ("odd text in metadata", _edge(8, metadata={"\x00": "\ud800", "": "", "\u2028": "é"})),
        # Ill-typed values (a caller that broke the types): refused, or kept as given.
        ("a time that is a bool", _edge(9, updated=True)),
        ("a time that is a float", _edge(10, created=1.5, updated=2.5)),
        ("a message's token count that is a bool",
         _edge(11).push(AssistantMessage("x", Usage(True, 1)), now=1)),
        ("a message's token count that is a float",
         _edge(12).push(AssistantMessage("x", Usage(1.5, 1)), now=1)),  # type: ignore[arg-type]
    ]


@_check("failed-save-changes-nothing", "STORE-FAILURE", "STORE-SAVE", "STORE-COMMIT")
async def _edge_values(ctx: _Context) -> None:
    """A save of an extreme value round-trips, or fails leaving the old row (or the new one), never
    a mix.

    Times and counts at and beyond 64 bits, a 1 MB message, 2,000 messages,
    NUL and lone surrogates in metadata, a time or a token count of the
    wrong type (a bool, a float): a store may refuse what it cannot
    hold ([STORE-FAILURE]), but a write that fails was not applied, or (if it
    failed after committing) was applied whole ([STORE-COMMIT],
    [SAVE-FAILED]), and a write that returned loads back equal: a store that
    took it cannot then call it malformed; the store works on afterwards.
    """
    async with ctx.fresh() as store:
        for i, (what, s) in enumerate(_edge_sessions()):
            before = _before(_number(s.id)) if i % 2 == 0 else None
            if before is not None:
                await store.save(before)
            try:
                await store.save(s)
            except Exception as exc:
                now = await store.load(s.id)
                _expect(now in (before, s),
                        f"save of {what} failed ({type(exc).__name__}: {str(exc)[:200]}) and "
                        f"left {_show(now)}: neither the row before ({_show(before)}) nor the "
                        "new one")
                _expect(await store.exists(s.id) == (now is not None),
                        f"after the failed save of {what}, exists disagrees with load")
                continue
            _same(await store.load(s.id), s, f"load after a save of {what}")
            listed = [m for m in await store.list() if m.id == s.id]
            _expect(listed == [s.meta()],
                    f"after a save of {what}, list() shows {_show(listed)}, expected its meta")
        after = sample_session(99, updated=5)
        await store.save(after)
        _same(await store.load(after.id), after, "a save after the extreme ones")


# -- STORE-COMMIT: concurrency and cancellation ---------------------------------------------


@_check("concurrent-writes-all-land", "STORE-SAVE", "STORE-DELETE", "STORE-COMMIT")
async def _concurrent_writes(ctx: _Context) -> None:
    """40 saves and 20 deletes made at once all return, and the store holds exactly their result."""
    async with ctx.fresh() as store:
        for n in range(40, 60):
            await store.save(sample_session(n, updated=n))
        async with trio.open_nursery() as nursery:
            for n in range(40):
                nursery.start_soon(store.save, sample_session(n, updated=n))
            for n in range(40, 60):
                nursery.start_soon(store.delete, _sid(n))
        got = _ids(await store.list())
        want = [f"s{n}" for n in reversed(range(40))]
        _expect(got == want, f"after 40 concurrent saves and 20 deletes list() gave {got}")


@_check("a-refused-write-fails-alone", "STORE-FAILURE", "STORE-COMMIT")
async def _refused_alone(ctx: _Context) -> None:
    """A write the store refuses fails alone: the writes made at once with it all land.

    Each extreme value of ``failed-save-changes-nothing`` is saved at the same
    time as ten ordinary saves.  A store may refuse the extreme one
    ([STORE-FAILURE]); a store that groups writes (one transaction for many)
    must not let that refusal fail the others ([STORE-COMMIT]: each write is
    applied, or fails, on its own).
    """
    async with ctx.fresh() as store:
        for k, (what, extreme) in enumerate(_edge_sessions()):
            others = [sample_session(100 + 10 * k + i, updated=i) for i in range(10)]
            failed: list[str] = []

            async def save(session: Session, failed: list[str] = failed,
                           extreme: Session = extreme) -> None:
                try:
                    await store.save(session)
                except Exception as exc:
                    if session is not extreme:
                        failed.append(f"{_label(session.id)}: {type(exc).__name__}: "
                                      f"{str(exc)[:200]}")

            async with trio.open_nursery() as nursery:
                for session in [*others[:5], extreme, *others[5:]]:
                    nursery.start_soon(save, session)
            _expect(not failed, f"saves made at once with a save of {what} failed: "
                                f"{'; '.join(failed)}")
            for other in others:
                _same(await store.load(other.id), other,
                      f"load({_label(other.id)}), saved at once with a save of {what}")


# -- STORE-FAILURE: errors of the driver under the store --------------------------------------


_FAULT_DEPTHS = (1, 2, 3, 5, 8)
"""How deep into a call a transient driver error is put (``fail_next(n)``: the n-th step
fails, and those before it too: a call met by n failing steps in a row)."""

ROOM = 256 * 1024
"""The room a full disk leaves, in bytes: ten ordinary saves fit, a 1 MB message does not."""


async def _answers(what: str, call: Callable[[], Awaitable[object]],
                   want: Callable[[], object]) -> None:
    """Make ``call``; it must raise SessionStoreError or answer ``want()``."""
    try:
        got = await call()
    except SessionStoreError:
        return
    except Exception as exc:
        _fail(f"{what}: raised {type(exc).__name__} ({str(exc)[:200]}), expected "
              "SessionStoreError or the right answer")
    expected = want()
    _expect(got == expected, f"{what}: answered {_show(got)} instead of failing, expected "
            f"{_show(expected)}: a driver error taken for missing or damaged data")


@_check("driver-errors-are-not-damage", "STORE-FAILURE", needs=("faults",))
async def _driver_errors(ctx: _Context) -> None:
    """A driver error that is not damage fails only the call that met it, with SessionStoreError;
    it names nothing damaged and loses nothing.

    Over a driver told to fail (``DriverFaults``): each kind of call
    (``load``, ``exists``, ``list``, a page of it, ``save``, ``delete``) is
    made while the first 1, 2, 3, 5 or 8 steps of the driver's work fail, and
    during an outage (every step fails).  Each must raise
    ``SessionStoreError`` or give the right answer (a read that answers
    "missing", a short list, or a session named damaged is data lost to
    the caller); a write that failed was not applied.  After each, with
    the driver well again, every session loads whole and ``list`` gives them
    all: nothing was marked damaged or skipped for an error that was not
    damage.
    """
    faults = DriverFaults()
    async with ctx.faulty(faults) as store:
        sessions = [rich_session(n) for n in range(1, 4)]
        sessions += [sample_session(n, updated=n) for n in range(4, 24)]
        for s in sessions:
            await store.save(s)
        model = {s.id: s for s in sessions}
        page = SessionFilter(offset=3, limit=5)
        fresh = iter(range(100, 10_000))
        plans: list[tuple[str, Callable[[], None]]] = [
            (f"the driver's first {n} step(s) failing", functools.partial(faults.fail_next, n))
            for n in _FAULT_DEPTHS]
        plans.append(("a driver outage", functools.partial(faults.outage, True)))
        met = 0
        for under, arm in plans:
            target = sessions[(met % len(sessions))]
            newer = replace(target, updated_at=target.updated_at + 100, revision=
                            target.revision + 1, metadata={"v": str(met)})
            new = sample_session(next(fresh), updated=50)
            gone = sessions[-1 - met % 5]
            reads: list[tuple[str, Callable[[], Awaitable[object]], Callable[[], object]]] = [
                (f"load({_label(target.id)})", functools.partial(store.load, target.id),
                 functools.partial(model.get, target.id)),
                (f"exists({_label(target.id)})", functools.partial(store.exists, target.id),
                 functools.partial(model.__contains__, target.id)),
                ("list()", store.list, lambda: _model_list(model)),
                (_filter_text(page), functools.partial(store.list, page),
                 lambda: _model_list(model, page)),
            ]
            for what, call, want in reads:
                before = faults.failed
                arm()
                await _answers(f"under {under}, {what}", call, want)
                faults.clear()
                met += faults.failed > before
                await _whole(store, model, f"after {what} under {under}")
            writes: list[tuple[str, Callable[[], Awaitable[None]], Callable[[], None]]] = [
                (f"save of a new version of {_label(target.id)}",
                 functools.partial(store.save, newer),
                 functools.partial(model.__setitem__, newer.id, newer)),
                (f"save of a new session {_label(new.id)}", functools.partial(store.save, new),
                 functools.partial(model.__setitem__, new.id, new)),
                (f"delete({_label(gone.id)})", functools.partial(store.delete, gone.id),
                 functools.partial(_forget, model, gone.id)),
            ]
            for what, write, apply in writes:
                before = faults.failed
                arm()
                try:
                    await write()
                except SessionStoreError:
                    pass
                except Exception as exc:
                    _fail(f"under {under}, {what}: raised {type(exc).__name__} "
                          f"({str(exc)[:200]}), expected SessionStoreError or success")
                else:
                    apply()
                faults.clear()
                met += faults.failed > before
                await _whole(store, model, f"after {what} under {under}")
        _expect(met > 0, "no call met a driver error: the 'faulty' factory's driver never "
                "consults its DriverFaults")


def _forget(model: dict[SessionId, Session], session_id: SessionId) -> None:
    model.pop(session_id, None)


async def _whole(store: SessionStore, model: dict[SessionId, Session], what: str) -> None:
    """With the driver well: every session of ``model`` loads whole, and list gives exactly them."""
    for session_id, session in model.items():
        try:
            got = await store.load(session_id)
        except Exception as exc:
            _fail(f"{what}, with the driver well again: load({_label(session_id)}) raised "
                  f"{type(exc).__name__} ({str(exc)[:200]}): a driver error left it named "
                  "damaged")
        _same(got, session, f"{what}, with the driver well again: load({_label(session_id)})")
    listed = await store.list()
    want = _model_list(model)
    _expect(listed == want, f"{what}, with the driver well again: list() gave {_show(listed)}, "
            f"expected {_show(want)}")


@_check("a-driver-refusal-fails-alone", "STORE-FAILURE", "STORE-COMMIT", needs=("faults",))
async def _driver_refusal_alone(ctx: _Context) -> None:
    """A write the driver refuses (a full disk, an interrupted step) fails alone: the writes made
    at once with it land.

    Over a driver whose disk has room for 256 KB more: a save of a 1 MB
    message is made at the same time as ten ordinary saves, and only it may
    fail.  Then, the next 1, 2 or 3 steps of the driver's work failing, ten
    saves made at once: at most as many fail as steps failed
    ([STORE-COMMIT]: a write that fails does not fail the writes that shared
    its transaction; a busy file, where every waiting write fails, is not
    among these errors).
    """
    faults = DriverFaults(room=ROOM)
    async with ctx.faulty(faults) as store:
        big = _edge(6, messages=(UserMessage("x" * 2**20),))
        others = [sample_session(200 + i, updated=i) for i in range(10)]
        failed = await _at_once(store, [*others[:5], big, *others[5:]], spare=big)
        _expect(not failed, f"saves made at once with a save too big for the disk's room "
                f"failed: {'; '.join(failed)}")
        for other in others:
            _same(await store.load(other.id), other,
                  f"load({_label(other.id)}), saved at once with a save too big for the disk")
        for n in (1, 2, 3):
            batch = [sample_session(300 + 10 * n + i, updated=i) for i in range(10)]
            faults.fail_next(n)
            failed = await _at_once(store, batch)
            faults.clear()
            _expect(len(failed) <= n, f"with {n} step(s) of the driver's work failing, "
                    f"{len(failed)} of 10 saves made at once failed: {'; '.join(failed)}")


async def _at_once(store: SessionStore, sessions: list[Session],
                   spare: Session | None = None) -> list[str]:
    """Save ``sessions`` at once; what failed, as sentences (``spare`` may fail unsaid)."""
    failed: list[str] = []

    async def save(session: Session) -> None:
        try:
            await store.save(session)
        except Exception as exc:
            if session is not spare:
                failed.append(f"{_label(session.id)}: {type(exc).__name__}: {str(exc)[:200]}")

    async with trio.open_nursery() as nursery:
        for session in sessions:
            nursery.start_soon(save, session)
    return failed


LONG_PATH = 700
"""Characters in the long directory path ``a-long-path-opens-or-is-refused`` opens a store in
(more than SQLite's 512-byte limit on a file name; less than the system's 4,096)."""


@_check("a-long-path-opens-or-is-refused", "STORE-FAILURE")
async def _long_path(ctx: _Context) -> None:
    """A store opened in a directory whose path is 700 characters long works, or is refused with
    SessionStoreError: never another exception.

    The directory is made of nested names of 100 characters each (each
    within any file system's limit on one name, the whole beyond what some
    drivers take: SQLite refuses a file name past 512 bytes).  A store that
    cannot keep its data there says so as every store failure does
    ([STORE-FAILURE]); one that opens keeps a save.
    """
    place = ctx.place()
    while len(str(place)) < LONG_PATH:
        place = place / ("d" * 100)
    place.mkdir(parents=True)
    session = sample_session(1)
    try:
        async with ctx.open(place) as store:
            await store.save(session)
            _same(await store.load(session.id), session,
                  f"load after a save, in a directory of {len(str(place))} characters")
    except SessionStoreError:
        return
    except _CheckFailed:
        raise
    except Exception as exc:
        _fail(f"opened in a directory of {len(str(place))} characters, the store let "
              f"{type(exc).__name__} through ({str(exc)[:200]}), not SessionStoreError")


@_check("writes-apply-in-order", "STORE-COMMIT")
async def _writes_in_order(ctx: _Context) -> None:
    """Writes of one id made while others are still in flight are applied in the order they were
    made.

    Each call is made once every earlier one has been made and is blocked (or
    done), so "made before" is well defined; a store that reorders waiting
    writes (or drops one of a batch) ends with the wrong row.
    """
    steps: list[tuple[str, Callable[[SessionStore], Awaitable[None]]]] = [
        ("save(s1 r1)", lambda st: st.save(sample_session(1, updated=2, revision=1))),
        ("save(s1 r2)", lambda st: st.save(sample_session(1, updated=3, revision=2))),
        ("delete(s1)", lambda st: st.delete(_sid(1))),
        ("delete(s2)", lambda st: st.delete(_sid(2))),
        ("save(s2 r3)", lambda st: st.save(sample_session(2, updated=5, revision=3))),
        ("save(s3 r1)", lambda st: st.save(sample_session(3, updated=4, revision=1))),
        ("save(s3 r4)", lambda st: st.save(sample_session(3, updated=7, revision=4))),
    ]
    async with ctx.fresh() as store:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(store.save, sample_session(9, updated=10))
            await trio.testing.wait_all_tasks_blocked()
            for _, step in steps:
                nursery.start_soon(step, store)
                await trio.testing.wait_all_tasks_blocked()
        want = {_sid(9): sample_session(9, updated=10),
                _sid(2): sample_session(2, updated=5, revision=3),
                _sid(3): sample_session(3, updated=7, revision=4)}
        order = "; ".join(label for label, _ in steps)
        for n in (1, 2, 3, 9):
            _same(await store.load(_sid(n)), want.get(_sid(n)),
                  f"after {order} (each made while the earlier ones were in flight), load(s{n})")


@_check("delete-is-the-last-word", "STORE-COMMIT")
async def _delete_last_word(ctx: _Context) -> None:
    """Once a ``delete`` has returned, nothing submitted before it is applied after it (archive
    relies on it)."""
    place = ctx.place()
    async with ctx.open(place) as store:
        seen: list[Session | None] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(store.save, sample_session(9, updated=10))
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(store.save, sample_session(1, updated=6, revision=5))
            await trio.testing.wait_all_tasks_blocked()

            async def archive() -> None:
                await store.delete(_sid(1))
                seen.append(await store.load(_sid(1)))

            nursery.start_soon(archive)
        await _settled()
        _expect(seen == [None], f"load(s1) right after delete(s1) returned gave {_show(seen[0])}"
                f": a save made before the delete landed after it")
        _same(await store.load(_sid(1)), None, "load(s1) once every call had returned")
    if "reopen" in ctx.kind.supports:
        async with ctx.open(place) as store:
            _same(await store.load(_sid(1)), None, "load(s1) after the store was reopened")


@_check("reads-see-whole-rows", "STORE-SAVE")
async def _whole_rows(ctx: _Context) -> None:
    """A reader sees the old row or the new one, never a mix, while saves replace it over and over.
    """
    a = rich_session(1)
    b = sample_session(1, created=10, updated=99, messages=(UserMessage("only"),),
                 metadata={"k": "v"}, revision=7)
    problems: list[str] = []
    async with ctx.fresh() as store:
        await store.save(a)

        async def writer() -> None:
            for i in range(40):
                await store.save(b if i % 2 == 0 else a)

        async def reader() -> None:
            for _ in range(40):
                got = await store.load(a.id)
                if got != a and got != b:
                    problems.append(f"load gave {_show(got)}: {_difference(got, a)}")
                metas = await store.list()
                if metas not in ([a.meta()], [b.meta()]):
                    problems.append(f"list() gave {_show(metas)}: neither row's meta")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(writer)
            for _ in range(3):
                nursery.start_soon(reader)
    _expect(not problems, "while saves replaced s1: " + "; ".join(problems[:3]))


@_check("cancelled-call-changes-nothing", "STORE-COMMIT")
async def _cancelled_call(ctx: _Context) -> None:
    """A call made in a cancelled scope raises ``Cancelled`` (it is a checkpoint) and changes
    nothing."""
    async with ctx.fresh() as store:
        await store.save(sample_session(2))
        calls: list[tuple[str, Callable[[], Awaitable[object]]]] = [
            ("save(s1)", lambda: store.save(sample_session(1))),
            ("load(s1)", lambda: store.load(_sid(1))),
            ("list()", lambda: store.list()),
            ("list(limit=0)", lambda: store.list(SessionFilter(limit=0))),
            ("delete(s2)", lambda: store.delete(_sid(2))),
            ("exists(s1)", lambda: store.exists(_sid(1))),
        ]
        for what, call in calls:
            with trio.CancelScope() as scope:
                scope.cancel()
                await call()
            _expect(scope.cancelled_caught,
                    f"{what} in a cancelled scope returned instead of raising Cancelled")
        _expect(not await store.exists(_sid(1)), "a save cancelled before it began landed")
        _expect(await store.exists(_sid(2)), "a delete cancelled before it began landed")


@_check("cancellation-tells-the-truth", "STORE-COMMIT")
async def _cancellation_truth(ctx: _Context) -> None:
    """Under cancellations at random moments, a write that returned was applied and one that raised
    ``Cancelled`` was not.

    Savers write fresh ids, then deleters delete them, while a canceller
    (seeded) cancels calls at random moments: cancelled while waiting, a
    write is never applied; once it has started it returns its real outcome
    ([STORE-COMMIT]).  What must hold holds in every interleaving; which
    paths a run reaches is the machine's business.
    """
    rng = random.Random(ctx.seed)
    survivors: set[SessionId] = set()
    async with ctx.fresh() as store:
        for phase in ("save", "delete"):
            done: set[SessionId] = set()
            refused: set[SessionId] = set()
            scopes: list[trio.CancelScope] = []

            async def worker(first: int, phase: str = phase, done: set[SessionId] = done,
                             refused: set[SessionId] = refused,
                             scopes: list[trio.CancelScope] = scopes) -> None:
                for n in range(first, first + 25):
                    with trio.CancelScope() as scope:
                        scopes.append(scope)
                        try:
                            if phase == "save":
                                await store.save(sample_session(n, updated=n))
                            else:
                                await store.delete(_sid(n))
                        except trio.Cancelled:
                            refused.add(_sid(n))
                            raise
                        done.add(_sid(n))

            async def canceller(scopes: list[trio.CancelScope] = scopes) -> None:
                for _ in range(300):
                    for _ in range(rng.randrange(3)):
                        await trio.lowlevel.cancel_shielded_checkpoint()
                    live = [s for s in scopes if not s.cancel_called]
                    if live:
                        rng.choice(live[-6:]).cancel()
                    await trio.lowlevel.checkpoint()

            async with trio.open_nursery() as nursery:
                for w in range(6):
                    nursery.start_soon(worker, 1_000 * (w + 1))
                nursery.start_soon(canceller)
            await _settled()
            stored = {m.id for m in await store.list()}
            if phase == "save":
                lost = sorted(done - stored)
                ghosts = sorted(refused & stored)
                _expect(not lost, f"saves that returned but are not stored: "
                        f"{[_label(i) for i in lost[:5]]}")
                _expect(not ghosts, f"saves that raised Cancelled but are stored: "
                        f"{[_label(i) for i in ghosts[:5]]}")
                survivors = stored
            else:  # only ids whose save landed can be deleted or kept
                back = sorted(done & stored)
                gone = sorted((refused & survivors) - stored)
                _expect(not back, f"deletes that returned but whose rows are still there: "
                        f"{[_label(i) for i in back[:5]]}")
                _expect(not gone, f"deletes that raised Cancelled but whose rows are gone: "
                        f"{[_label(i) for i in gone[:5]]}")
                _expect(stored == survivors - done,
                        "the rows left after the deletes are not the saved ones minus the deleted")


LONG_WRITERS = 8
LONG_WRITES = 1_000
"""The long history: writers at once, and writes each (``LONG_WRITERS * LONG_WRITES`` in all)."""


@_check("long-history-keeps-every-write", "STORE-COMMIT", "STORE-SAVE", "STORE-DELETE")
async def _long_history(ctx: _Context) -> None:
    """Thousands of writes all return and the store holds exactly the last of each: what a store
    does only now and then, after many writes, breaks none of them.

    ``LONG_WRITERS`` writers at once, each with ids of its own, save
    ``LONG_WRITES`` sessions each in turn and delete every tenth: 8,000
    writes, far past the point where a store does its periodic upkeep (SQLite:
    a WAL checkpoint about every 1,000 pages, in the background, and the
    writer's own when the log grew too long to restart), several times over.
    Every write must return ([STORE-COMMIT]: a write is acknowledged once
    committed, and one that fails was not applied), and at the end ``load``
    and ``list`` show the last write of each id ([STORE-SAVE],
    [STORE-DELETE]).  The other checks write tens of rows: a store whose
    upkeep (a checkpoint, a compaction, a log rotation) fails or loses rows
    passes them all.
    """
    filler = "x" * 200
    last: dict[SessionId, Session | None] = {}
    failures: list[str] = []

    async def writer(w: int, store: SessionStore) -> None:
        for i in range(LONG_WRITES):
            n = 1_000 * (w + 1) + i % 8
            try:
                if i % 10 == 9:
                    await store.delete(_sid(n))
                    last[_sid(n)] = None
                else:
                    s = sample_session(n, updated=i, messages=(UserMessage(f"{i} {filler}"),))
                    await store.save(s)
                    last[_sid(n)] = s
            except SessionStoreError as exc:
                failures.append(f"writer {w}'s write {i} ({'delete' if i % 10 == 9 else 'save'}"
                                f" of {_label(_sid(n))}) failed: {str(exc)[:200]}")
                return

    async with ctx.fresh() as store:
        async with trio.open_nursery() as nursery:
            for w in range(LONG_WRITERS):
                nursery.start_soon(writer, w, store)
        _expect(not failures, f"in a long history of {LONG_WRITERS} x {LONG_WRITES} writes: "
                + "; ".join(failures[:3]))
        model = {i: s for i, s in last.items() if s is not None}
        for session_id, want in sorted(last.items()):
            _same(await store.load(session_id), want,
                  f"after {LONG_WRITERS} x {LONG_WRITES} writes, load({_label(session_id)})")
        await _listed(store, SessionFilter(), _model_list(model),
                      f"after {LONG_WRITERS} x {LONG_WRITES} writes, ")


# -- STORE-COMMIT across a close, a reopen and a crash --------------------------------------


@_check("reopen-keeps-acknowledged-writes", "STORE-COMMIT", "STORE-LOAD", "STORE-LIST",
        needs=("reopen",))
async def _reopen_keeps(ctx: _Context) -> None:
    """Closed and opened again over the same directory, the store holds exactly what was
    acknowledged."""
    sessions = [rich_session(1), sample_session(2, updated=5),
                sample_session(3, updated=9, metadata={"a": "b"})]
    place = ctx.place()
    async with ctx.open(place) as store:
        for s in sessions:
            await store.save(s)
        await store.save(replace(sessions[2], revision=4, updated_at=99))
        await store.delete(_sid(2))
    async with ctx.open(place) as again:
        _same(await again.load(_sid(1)), sessions[0], "after reopening, load(s1)")
        _same(await again.load(_sid(2)), None, "after reopening, load of the deleted s2")
        _same(await again.load(_sid(3)), replace(sessions[2], revision=4, updated_at=99),
              "after reopening, load of the replaced s3")
        got = _ids(await again.list())
        _expect(got == ["s3", "s1"], f"after reopening, list() gave {got}, expected [s3, s1]")


@_check("close-applies-what-was-submitted", "STORE-COMMIT", "STORE-FAILURE",
        needs=("close", "reopen"))
async def _close_drains(ctx: _Context) -> None:
    """Closing applies every write made before it began, and refuses (``SessionStoreError``) calls
    made after.

    The writers run in a nursery opened before the store, so they are still
    waiting on their writes while the store's context is left (by the task
    that entered it, as Trio requires).
    """
    place = ctx.place()
    outcomes: dict[int, str] = {}
    began = trio.Event()

    async def save(store: SessionStore, n: int) -> None:
        try:
            await store.save(sample_session(n, updated=n))
            outcomes[n] = "ok"
        except SessionStoreError as exc:
            outcomes[n] = f"SessionStoreError: {exc}"

    async def after_close(store: SessionStore) -> None:
        await began.wait()
        for n in (6, 7):
            await save(store, n)

    async with trio.open_nursery() as nursery, ctx.open(place) as store:
        for n in range(1, 6):
            nursery.start_soon(save, store, n)
        nursery.start_soon(after_close, store)
        await trio.testing.wait_all_tasks_blocked()  # each made: done, or waiting inside
        began.set()
    early = {n: outcomes.get(n) for n in range(1, 6)}
    _expect(all(v == "ok" for v in early.values()),
            f"saves made before close began did not all return: {early}")
    for n in (6, 7):
        _expect(outcomes.get(n, "").startswith("SessionStoreError"),
                f"a save made after close began gave {outcomes.get(n)!r}, expected "
                "SessionStoreError")
    for what, call in (("load", lambda: store.load(_sid(1))), ("list", lambda: store.list())):
        try:
            await call()
        except SessionStoreError:
            continue
        _fail(f"{what} on a closed store answered instead of raising SessionStoreError")
    async with ctx.open(place) as again:
        got = _ids(await again.list())
        _expect(got == ["s5", "s4", "s3", "s2", "s1"],
                f"reopened after close: list() gave {got}, expected [s5, s4, s3, s2, s1]")


def importable(obj: object) -> str | None:
    """``module:qualname`` if importing it gives back ``obj`` itself (so a child can make it too).
    """
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not module or not qualname or "<" in qualname or module == "__main__":
        return None
    try:
        found: object = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError):
        return None
    return f"{module}:{qualname}" if found is obj else None


def _child_env() -> dict[str, str]:
    """The environment of a child that must import what this process imports."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([p or os.getcwd() for p in sys.path])
    return env


class _Child:
    """A child process running the store (``_store_child``); its stdout read as whole lines."""

    def __init__(self, process: trio.Process, stderr: Path) -> None:
        self.process = process
        self.stderr = stderr
        self.buffer = b""
        self.eof = False

    @classmethod
    async def start(cls, ctx: _Context, mode: str, place: Path) -> _Child:
        spec = ctx.kind.spec
        assert spec is not None
        err = ctx.directory / f"child-{mode}.stderr"
        with err.open("wb") as sink:
            process = await trio.lowlevel.open_process(
                [*(ctx.launcher or (sys.executable, "-m")), "meerkat_ref.testing._store_child",
                 mode, spec, str(place)],
                stdout=subprocess.PIPE, stderr=sink, env=_child_env())
        return cls(process, err)

    async def line(self) -> str | None:
        """The next whole line; ``None`` at the end (a last line cut by a kill is dropped)."""
        assert self.process.stdout is not None
        while b"\n" not in self.buffer:
            if self.eof:
                return None
            chunk = await self.process.stdout.receive_some(65536)
            if not chunk:
                self.eof = True
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode("utf-8", "replace")

    def errors(self) -> str:
        text = self.stderr.read_text(encoding="utf-8", errors="replace")
        return text[-800:] if text else "(nothing on stderr)"

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
        with trio.CancelScope(shield=True):
            await self.process.wait()


def _needs_a_child(ctx: _Context) -> None:
    if ctx.kind.spec is None:
        raise StoreCheckSkipped("", "it runs the store in a child process, which must import "
                                "the factory: give a kind by name or module path, or a "
                                "module-level factory")


@_check("crash-loses-no-acknowledged-write", "STORE-COMMIT", needs=("crash",))
async def _crash(ctx: _Context) -> None:
    """A process killed (SIGKILL) while 8 writers save and delete loses no acknowledged write.

    A child process saves fresh sessions and deletes every third one, printing
    each acknowledgement (and each delete as it is made); it is killed in the
    middle of that.  Reopened, the store holds every acknowledged save of a
    session no delete was made for, holds no session whose delete was
    acknowledged, and every row it holds is whole (exactly what the child
    saved); a delete made but not acknowledged may have landed or not.
    """
    _needs_a_child(ctx)
    place = ctx.place()
    child = await _Child.start(ctx, "crash", place)
    seen: dict[str, set[int]] = {"saved": set(), "deleting": set(), "deleted": set()}
    saved, deleting, deleted = seen["saved"], seen["deleting"], seen["deleted"]
    killed = False
    try:
        # Every line counts, those still in the pipe after the kill too (acknowledged
        # before the child died); the kill comes once 400 saves were acknowledged.
        while (line := await child.line()) is not None:
            kind, _, number = line.partition(" ")
            if kind in seen and number.isdigit():
                seen[kind].add(int(number))
            if len(saved) >= 400 and not killed:
                child.process.send_signal(signal.SIGKILL)
                killed = True
    finally:
        await child.kill()
    _expect(child.process.returncode == -signal.SIGKILL,
            f"the child ended with status {child.process.returncode} before it was killed, "
            f"after {len(saved)} saves: {child.errors()}")
    async with ctx.open(place) as store:
        present = {m.id for m in await store.list()}
        kept = saved - deleting  # acknowledged, and no delete of it made before the kill
        lost = sorted(n for n in kept if _sid(n) not in present)
        _expect(not lost, f"acknowledged saves lost by the kill: {lost[:5]} "
                f"({len(lost)} of {len(kept)})")
        back = sorted(n for n in deleted if _sid(n) in present)
        _expect(not back, f"acknowledged deletes undone by the kill: {back[:5]}")
        for session_id in sorted(present):
            loaded = await store.load(session_id)
            want = crash_session(_number(session_id))
            _same(loaded, want, f"after the kill, load({_label(session_id)})")


# -- STORE-OWNER ------------------------------------------------------------------------------


async def _refused(ctx: _Context, place: Path, holder: int, what: str) -> None:
    """Opening ``place`` must raise ``SessionStoreError`` naming the holder's pid."""
    try:
        async with ctx.open(place):
            pass
    except SessionStoreError as exc:
        _expect(str(holder) in str(exc),
                f"{what}: refused, but the error does not name the holder's pid {holder}: {exc}")
        return
    except Exception as exc:
        _fail(f"{what}: refused with {type(exc).__name__} ({exc}), expected SessionStoreError")
    _fail(f"{what}: a second store opened the same directory")


@_check("owner-one-opener", "STORE-OWNER", needs=("owner",))
async def _one_opener(ctx: _Context) -> None:
    """While a store has its directory open, a second opener in this process is refused, naming
    this pid; closing frees it."""
    place = ctx.place()
    async with ctx.open(place) as store:
        await store.save(sample_session(1))
        await _refused(ctx, place, os.getpid(), "a second open in the same process")
        _expect(await store.exists(_sid(1)), "the refused open disturbed the open store")
    async with ctx.open(place) as again:
        if "reopen" in ctx.kind.supports:
            _expect(await again.exists(_sid(1)), "reopened after the refusal: s1 is gone")


@_check("owner-across-processes", "STORE-OWNER", needs=("owner",))
async def _owner_processes(ctx: _Context) -> None:
    """A store held by another process is refused, naming that process; once it is killed, the
    directory is free."""
    _needs_a_child(ctx)
    place = ctx.place()
    child = await _Child.start(ctx, "hold", place)
    try:
        ready = await child.line()
        _expect(ready == "ready", f"the child did not open the store: {ready!r}; "
                f"{child.errors()}")
        await _refused(ctx, place, child.process.pid, "an open while another process holds it")
    finally:
        await child.kill()
    async with ctx.open(place) as store:
        await store.save(sample_session(1))
        _expect(await store.exists(_sid(1)), "the store opened after its holder was killed "
                "does not keep a save")


DROP_PATIENCE = 30.0
"""Seconds a dropped store may take to close its files once garbage-collected (it takes
milliseconds; the bound only ends the wait for one that never does)."""


def _open_files_under(place: Path) -> list[str] | None:
    """The files under ``place`` this process holds open, or None where it cannot be seen."""
    fds = Path("/proc/self/fd")
    if not fds.is_dir():
        return None
    root = str(place.resolve())
    held = []
    for fd in fds.iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith(root + os.sep):
                held.append(target[len(root) + 1:])
    return sorted(held)


@_check("a-dropped-store-frees-what-it-held", "STORE-OWNER", needs=("drop", "reopen"))
async def _dropped(ctx: _Context) -> None:
    """A store dropped without closing frees what it held once garbage-collected: its files
    close, and the directory opens again with every acknowledged write.

    The factory's context is entered, sessions are saved, and every
    reference to the store is dropped without leaving the context (a
    program that forgot ``aclose``).  After a garbage collection the store
    must close its files by itself (seen through ``/proc/self/fd`` where
    there is one), and a new opener of the directory must not be refused
    ([STORE-OWNER]) and must find every save ([STORE-COMMIT]).
    """
    place = ctx.place()
    sessions = [sample_session(n, updated=n) for n in range(1, 6)]

    async def use_and_drop() -> None:
        context = ctx.open(place)
        store = await context.__aenter__()
        for s in sessions:
            await store.save(s)

    await use_and_drop()
    gc.collect()
    with trio.move_on_after(DROP_PATIENCE):
        while (held := _open_files_under(place)):
            await trio.sleep(0.01)
            gc.collect()
    _expect(not held, f"a store dropped without closing still holds {', '.join(held or [])} "
            f"open {DROP_PATIENCE:.0f} s after it was garbage-collected")
    try:
        async with ctx.open(place) as again:
            for s in sessions:
                _same(await again.load(s.id), s, f"load({_label(s.id)}) after the store "
                      "that saved it was dropped without closing")
    except SessionStoreError as exc:
        _fail(f"a store dropped without closing still holds its directory: the next opener "
              f"was refused ({str(exc)[:200]})")


# -- STORE-DAMAGE -----------------------------------------------------------------------------


BLOCK = 4096
MAX_BLOCKS = 16
"""Besides a whole file emptied, overwritten or halved: one block of it overwritten, each
``BLOCK`` bytes in turn (at most ``MAX_BLOCKS`` of them, evenly spaced): damage a file can
open past, to a store that reads it in pages (SQLite's pages are 4 KB)."""


def _damages(size: int) -> list[tuple[str, Callable[[Path], None]]]:
    def empty(path: Path) -> None:
        path.write_bytes(b"")

    def garbage(path: Path) -> None:
        path.write_bytes(b"Z" * max(path.stat().st_size, 4096))

    def halved(path: Path) -> None:
        with path.open("r+b") as f:
            f.truncate(path.stat().st_size // 2)

    def block(offset: int) -> Callable[[Path], None]:
        def overwrite(path: Path) -> None:
            with path.open("r+b") as f:
                f.seek(offset)
                f.write(b"Z" * min(BLOCK, size - offset))
        return overwrite

    blocks = range(0, size, BLOCK)
    step = max(1, -(-len(blocks) // MAX_BLOCKS))
    return [("emptied", empty), ("overwritten with garbage", garbage), ("cut in half", halved),
            *((f"with bytes {o}..{min(o + BLOCK, size) - 1} overwritten", block(o))
              for o in blocks[::step])]


@_check("damaged-files-are-refused-or-named", "STORE-DAMAGE", "STORE-FAILURE",
        needs=("files", "reopen"))
async def _damage(ctx: _Context) -> None:
    """Each file of a closed store emptied, overwritten, cut in half, or one block of it
    overwritten: refused or named, never silently lost.

    The store, opened again, either refuses (``SessionStoreError``, with a
    short message), or every session it held is still loaded whole or its
    ``load`` raises ``SessionStoreError`` naming it, and ``list`` answers with
    exactly the sessions that load whole: a damaged row is skipped, every
    other row stays listable and loadable.  A store file with sessions in it
    never opens as an empty store.
    """
    sessions = [rich_session(n) for n in range(1, 4)]
    # Beyond one batch of a store that reads a damaged table in batches (SQLite's walk
    # takes 256 rows at a time): a walk resumed at the wrong row repeats or skips some.
    sessions += [sample_session(n, updated=n) for n in range(4, 300)]
    pristine = ctx.place()
    async with ctx.open(pristine) as store:
        for s in sessions:
            await store.save(s)
    files = sorted(p.relative_to(pristine) for p in pristine.rglob("*") if p.is_file())
    _expect(bool(files), "a store that declares 'files' left no file in its directory")
    for name in files:
        for how, damage in _damages((pristine / name).stat().st_size):
            place = ctx.place()
            place.rmdir()
            shutil.copytree(pristine, place)
            damage(place / name)
            what = f"{name} {how}"
            try:
                async with ctx.open(place) as store:
                    await _all_or_named(store, sessions, what)
            except SessionStoreError as exc:
                _expect(len(str(exc)) <= MAX_ERROR_CHARS,
                        f"{what}: refused with a message of {len(str(exc))} characters "
                        f"(at most {MAX_ERROR_CHARS}): {str(exc)[:200]}...")
            except _CheckFailed:
                raise
            except Exception as exc:
                _fail(f"{what}: raised {type(exc).__name__} ({str(exc)[:200]}), expected "
                      "SessionStoreError or the sessions")


async def _all_or_named(store: SessionStore, sessions: list[Session], what: str) -> None:
    whole: list[Session] = []
    for s in sessions:
        try:
            loaded = await store.load(s.id)
        except SessionStoreError as exc:
            _expect(str(s.id) in str(exc), f"{what}: load({_label(s.id)}) raised "
                    f"SessionStoreError without naming the session: {str(exc)[:200]}")
            _expect(len(str(exc)) <= MAX_ERROR_CHARS,
                    f"{what}: an error of {len(str(exc))} characters")
            continue
        _expect(loaded is not None, f"{what}: the store opened, and load({_label(s.id)}) is "
                "None: a saved session silently lost")
        _same(loaded, s, f"{what}: load({_label(s.id)})")
        whole.append(s)
    try:
        listed = await store.list()
    except SessionStoreError as exc:
        _fail(f"{what}: the store opened, and list() raised instead of skipping the damaged "
              f"rows: {str(exc)[:200]}")
    model = {s.id: s for s in whole}
    want = _model_list(model)
    _expect(listed == want, f"{what}: list() gave {_show(listed)}, expected the sessions that "
            f"load whole, {_show(want)}")
    for f in _DAMAGED_PAGES:
        try:
            page = await store.list(f)
        except SessionStoreError as exc:
            _fail(f"{what}: {_filter_text(f)} raised: {str(exc)[:200]}")
        want = _model_list(model, f)
        _expect(page == want, f"{what}: {_filter_text(f)} gave {_show(page)}, expected "
                f"{_show(want)}")


_DAMAGED_PAGES = (SessionFilter(limit=5), SessionFilter(offset=3, limit=4),
                  SessionFilter(updated_after=20, offset=2), SessionFilter(created_after=0))
"""Filters and pages a store with a damaged file must answer too (its list may take another
way there: SQLite walks the table around the damage instead of reading its index)."""


STORE_CHECKS: tuple[StoreCheck, ...] = tuple(_CHECKS)
"""Every check of the store contract, in the order they run."""
