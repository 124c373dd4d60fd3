"""WAL checkpoints (``store/_checkpoint.py``): beside the writer, never in a save's way.

- a threaded store's checkpoints run on the checkpointer thread, never on
  the event loop's thread or the writer's, while the log stays small;
- under a steady stream of saves the log does not grow without bound: once
  it is big, the writer runs one checkpoint itself and the log restarts;
- an unthreaded store (the explorer's) checkpoints inline, with no thread,
  and a store at durability ``full`` on its writer's thread;
- if the checkpointer dies, the writer takes its checkpoints over;
- every save is still there after all of it (and after a reopen).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from pathlib import Path
from types import MappingProxyType

import pytest
import trio

from meerkat_ref._types import Session, SessionId, UserMessage
from meerkat_ref.store import SqliteStore, _checkpoint
from meerkat_ref.store._checkpoint import PAGES, Checkpoints

PAGE = 4096  # SQLite's default page size, which the store keeps


def session(n: int, size: int = 200) -> Session:
    return Session(
        id=SessionId.from_int(n),
        created_at=n,
        updated_at=n + 1,
        messages=(UserMessage("x" * size),),
        metadata=MappingProxyType({}),
    )


class HeldCheckpointer:
    """Holds the checkpointer thread before each of its checkpoints until ``let_go``.

    Each wait gives up after 60 s of real time: a broken test fails instead of
    hanging.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._arrived = 0  # checkpoints the thread brought to the gate
        self._let = 0  # checkpoints the test let run

    def gate(self) -> None:
        """On the checkpointer thread, before a checkpoint: wait until it is let go."""
        with self._cond:
            self._arrived += 1
            mine = self._arrived
            self._cond.notify_all()
            assert self._cond.wait_for(lambda: self._let >= mine, timeout=60), "never let go"

    async def wait_arrived(self) -> None:
        def arrived() -> bool:
            with self._cond:
                return self._cond.wait_for(lambda: self._arrived > self._let, timeout=60)

        assert await trio.to_thread.run_sync(arrived), "the checkpointer never came"

    def let_go(self) -> None:
        with self._cond:
            self._let += 1
            self._cond.notify_all()


def record_checkpoints(
    monkeypatch: pytest.MonkeyPatch, held: HeldCheckpointer | None = None
) -> list[tuple[str, bool]]:
    """Every checkpoint from now on, as (thread name, run by the writer).

    With ``held``, the checkpointer's (not the writer's) wait at its gate first.
    """
    seen: list[tuple[str, bool]] = []
    inner = Checkpoints._checkpoint

    def spy(self: Checkpoints, cursor: object, rows: int, *, by_writer: bool) -> None:
        seen.append((threading.current_thread().name, by_writer))
        if held is not None and not by_writer:
            held.gate()
        inner(self, cursor, rows, by_writer=by_writer)  # type: ignore[arg-type]

    monkeypatch.setattr(Checkpoints, "_checkpoint", spy)
    return seen


def background_asked(store: SqliteStore) -> bool:
    """Whether a background checkpoint is asked for or running."""
    checkpoints = store._checkpoints
    with checkpoints._mutex:
        return checkpoints._asked is not None or checkpoints._running


async def save_and_let_checkpoint(store: SqliteStore, s: Session) -> None:
    """Save, then wait for the background checkpoint the save asked for, if any.

    Otherwise what runs where would depend on how soon the checkpointer's
    thread is scheduled: a checkpoint asked for is dropped if the store
    closes before the thread takes it, and while one is pending the saves
    that come due ask for none (so the writer may end up running the last).
    """
    await store.save(s)
    if background_asked(store):
        await trio.to_thread.run_sync(store._checkpoints.wait_idle)


async def test_checkpoints_run_on_the_checkpointer_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = record_checkpoints(monkeypatch)
    async with SqliteStore(tmp_path / "s.db") as store:
        for n in range(600):  # inline saves, on this thread
            await save_and_let_checkpoint(store, session(n))
        assert await store.load(SessionId.from_int(599)) == session(599)
    assert seen, "600 saves of a page or more each must have needed a checkpoint"
    assert set(seen) == {("checkpointer", False)}


OVERLAP = 40  # pairs of saves committed while each background checkpoint runs


@pytest.mark.parametrize("durability", ["normal", "full"])
async def test_a_steady_stream_of_saves_keeps_the_log_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, durability: str
) -> None:
    """Without the writer's restarts the log would hold every page ever written.

    SQLite restarts the log only once a checkpoint has copied every frame of
    it back, and a background checkpoint never copies what was committed
    while it ran.  How much that is, is up to the machine's load; here it is
    not: the checkpointer is held before each of its checkpoints while the
    test opens a read transaction (the pin), commits ``OVERLAP`` pairs, lets
    the checkpoint run and waits for it, then ends the read.  A checkpoint
    copies nothing past a reader's snapshot, so the pairs committed after
    the pin stay in the log uncopied, just as commits made during the
    checkpoint would: every background checkpoint leaves the log
    unrestartable, by the same amount on any machine.
    """
    reset = 2 * PAGES
    monkeypatch.setattr(_checkpoint, "RESET_PAGES", reset)
    held = HeldCheckpointer()
    seen = record_checkpoints(monkeypatch, held)
    path = tmp_path / "s.db"
    wal, biggest, pairs = f"{path}-wal", 0, 3000
    done = 0

    async with SqliteStore(path, durability=durability) as store:  # type: ignore[arg-type]
        checkpoints = store._checkpoints

        async def save_pair() -> None:
            nonlocal biggest, done
            async with trio.open_nursery() as nursery:  # two at a time: batches too
                nursery.start_soon(store.save, session(2 * done, 6000))
                nursery.start_soon(store.save, session(2 * done + 1, 6000))
            done += 1
            biggest = max(biggest, os.path.getsize(wal))

        pin = sqlite3.connect(path, isolation_level=None)
        try:
            while done < pairs:
                await save_pair()
                if not background_asked(store):
                    continue
                await held.wait_arrived()
                pin.execute("BEGIN")
                pin.execute("SELECT count(*) FROM sessions").fetchone()  # the read begins
                for _ in range(OVERLAP):
                    await save_pair()
                held.let_go()
                await trio.to_thread.run_sync(checkpoints.wait_idle)
                pin.execute("COMMIT")
        finally:
            pin.close()
    # The log is found big by a checkpoint (>= reset) that it had outgrown by at most
    # about PAGES when that one was asked and OVERLAP pairs more when it ran; it grows
    # until the next is due (about PAGES), then the writer restarts it.  Without the
    # restarts it grows to every page written.
    bound = (reset + 3 * PAGES) * (PAGE + 24) + 32  # frames of a page and a header each
    assert 2 * pairs * 2 * PAGE > 2 * bound, "the test must write far more than the bound"
    assert biggest <= bound, (biggest, bound, seen)
    if durability == "normal":
        assert ("checkpointer", False) in seen and ("writer", True) in seen
    else:  # at full the writer's thread runs every checkpoint (see _checkpoint.py)
        assert seen and set(seen) == {("writer", True)}
    async with SqliteStore(path) as again:
        for n in (0, pairs, 2 * pairs - 1):
            assert await again.load(SessionId.from_int(n)) == session(n, 6000)


async def test_an_unthreaded_store_checkpoints_inline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = record_checkpoints(monkeypatch)
    before = {thread.name for thread in threading.enumerate()}
    async with SqliteStore(tmp_path / "s.db", threaded=False) as store:
        assert {thread.name for thread in threading.enumerate()} == before
        for n in range(600):
            await store.save(session(n))
    assert seen and set(seen) == {(threading.current_thread().name, True)}


async def test_if_the_checkpointer_dies_the_writer_takes_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[tuple[str, bool]] = []
    inner = Checkpoints._checkpoint

    def dies(self: Checkpoints, cursor: object, rows: int, *, by_writer: bool) -> None:
        seen.append((threading.current_thread().name, by_writer))
        if not by_writer:
            raise RuntimeError("a bug in the checkpointer")
        inner(self, cursor, rows, by_writer=by_writer)  # type: ignore[arg-type]

    monkeypatch.setattr(Checkpoints, "_checkpoint", dies)
    monkeypatch.setattr(threading, "excepthook", lambda args: None)  # it is expected
    with caplog.at_level(logging.ERROR, logger="meerkat_ref.store._checkpoint"):
        async with SqliteStore(tmp_path / "s.db") as store:
            for n in range(1500):  # the checkpointer dies at its first; then the writer's
                await save_and_let_checkpoint(store, session(n))
            assert await store.load(SessionId.from_int(1499)) == session(1499)
    assert seen[0] == ("checkpointer", False)
    assert ("writer", True) in seen[1:]
    assert "the checkpointer died" in caplog.text
