"""``meerkat-ref tour``: the service on a store (SQLite by default), narrated, in a few seconds.

Creates sessions, runs turns, runs a host-mode loop that checkpoints each
injected message, archives, restarts the service over the same store and
lists what survived.  Every line it prints is read back from the service.
The store is made by its kind (``--store KIND[:DIR]``, ``store.parse_store``):
reopened over the same directory for the restart, or, for a kind that does
not reopen (``memory``), kept open across it.  ``run_tour_file`` is the old
``--store FILE``: that SQLite file.

The tour's session ids are deterministic (s1, s2, ...), so it refuses a
store that already holds sessions rather than overwrite them (issue 11); a
file or directory that cannot be a store is one line on stderr and exit 2,
never a traceback.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import trio
import trio.testing

from ._errors import SessionError, SessionStoreError
from ._seams import LogicalClock
from ._types import CreateSessionRequest, SessionId, SessionQuery, StartTurnRequest
from .agent import ScriptedAgentBuilder
from .agent._scripted import counter_ids
from .service import PersistentSessionService
from .store import SqliteStore, StoreKind
from .store._base import SessionStore

_Opener = Callable[[], AbstractAsyncContextManager[SessionStore]]


def run_tour(kind: StoreKind, directory: str) -> int:
    """The tour on a ``kind`` store in ``directory``; 2 (one line on stderr) if unusable."""
    shown = f"{kind.name}:{directory}"
    if not os.path.isdir(directory):
        return _refuse(f"--store {shown!r}: {directory!r} is not a directory")
    return _run(lambda: kind.open(Path(directory)), kind.reopens,
                f"{kind.name} in {directory}", shown, "an empty directory")


def run_tour_file(path: str) -> int:
    """The tour on the SQLite file ``path`` (the old ``--store FILE``)."""
    if os.path.isdir(path):
        return _refuse(f"--store {path!r} is a directory; give a file name in it")
    return _run(lambda: SqliteStore(path), True, f"SQLite at {path}", path, "a new file")


def _run(open_store: _Opener, reopens: bool, where: str, shown: str, instead: str) -> int:
    try:
        return trio.run(_tour, open_store, reopens, where)
    except SessionStoreError as exc:
        return _refuse(f"--store {shown!r}: {exc.code}: {exc.message}")
    except _NotEmpty as exc:
        return _refuse(
            f"--store {shown!r} already holds {exc.count} session(s); the tour's ids are fixed "
            f"and would overwrite them: give {instead}"
        )


class _NotEmpty(Exception):
    def __init__(self, count: int) -> None:
        super().__init__(count)
        self.count = count


def _refuse(message: str) -> int:
    print(f"meerkat-ref tour: {message}", file=sys.stderr)
    return 2


async def _tour(open_store: _Opener, reopens: bool, where: str) -> int:
    async with contextlib.AsyncExitStack() as kept:
        # A store that does not reopen is kept open across the restart.
        reopen = open_store if reopens else _kept(await kept.enter_async_context(open_store()))
        return await _narrate(reopen, where)


def _kept(store: SessionStore) -> _Opener:
    @contextlib.asynccontextmanager
    async def same() -> AsyncIterator[SessionStore]:
        yield store

    return same


async def _narrate(open_store: _Opener, where: str) -> int:
    clock, ids = LogicalClock(), counter_ids()

    def say(text: str) -> None:
        print(text, flush=True)

    async with open_store() as store:
        already = await store.list()
        if already:
            raise _NotEmpty(len(already))
        say(f"store: {where}")
        builder = ScriptedAgentBuilder(clock=clock, id_factory=ids)
        async with PersistentSessionService(builder, max_sessions=4, store=store) as svc:
            first = await svc.create_session(
                CreateSessionRequest(model="scripted", prompt="hello there")
            )
            a = first.session_id
            say(f"create {a.short()}: {first.text!r}, {first.usage.total_tokens} tokens")
            second = await svc.start_turn(a, StartTurnRequest("and again"))
            say(f"turn on {a.short()}: {second.text!r}")
            b = (
                await svc.create_session(
                    CreateSessionRequest(model="scripted", prompt="to be archived")
                )
            ).session_id
            say(f"create {b.short()}")

            ended: list[str] = []

            async def host() -> None:
                try:
                    await svc.create_session(
                        CreateSessionRequest(model="scripted", prompt="serve", host_mode=True)
                    )
                    ended.append("ok")
                except SessionError as exc:
                    ended.append(exc.code)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(host)
                await trio.testing.wait_all_tasks_blocked()
                h = (await svc.list(SessionQuery(limit=1)))[0].session_id
                active = (await svc.read(h)).state.is_active
                say(f"host-mode session {h.short()} is serving (is_active={active})")
                injector = await svc.event_injector(h)
                assert injector is not None
                for text in ("ping", "pong"):
                    injector.inject(text)
                    await trio.testing.wait_all_tasks_blocked()
                    stored = await svc.load_persisted(h)
                    count = stored.message_count if stored else 0
                    say(f"  injected {text!r}: checkpoint saved {count} messages")
                await svc.interrupt(h)
            # A host loop serves until interrupted; ending cancelled is what an interrupt does.
            how = "as an interrupt should" if ended == ["AGENT_ERROR"] else "UNEXPECTEDLY"
            say(f"interrupt {h.short()}: the host loop ended cancelled ({ended[0]}), {how}")
            await svc.archive(b)
            say(f"archive {b.short()}: read -> {await _read_code(svc, b)}")
            say("stopping the service (live sessions end; their rows stay)")
    say("restarting over the same store")
    async with open_store() as store:
        builder = ScriptedAgentBuilder(clock=clock, id_factory=ids)
        async with PersistentSessionService(builder, max_sessions=4, store=store) as svc:
            for summary in await svc.list():
                say(
                    f"  listed {summary.session_id.short()}: {summary.message_count} messages, "
                    f"{summary.total_tokens} tokens, active={summary.is_active}"
                )
            say(f"archived {b.short()} after restart: read -> {await _read_code(svc, b)}")
            view = await svc.read(a)
            say(f"{a.short()} after restart: last reply {view.state.last_assistant_text!r}")
    return 0


async def _read_code(svc: PersistentSessionService, sid: SessionId) -> str:
    try:
        await svc.read(sid)
    except SessionError as exc:
        return exc.code
    return "found"
