"""``SqliteStore``'s writer: group commit, and the guarantees that make it trustworthy.

- saves waiting together are written in one transaction, each acknowledged
  only after that transaction committed;
- a failed transaction fails exactly the writes in it (one bad write does
  not fail its neighbours: they are retried alone), and "database is
  locked" fails the whole batch at once;
- saves and deletes of one id are applied in the order submitted, and once
  a delete is acknowledged nothing submitted before it lands afterwards;
- a cancelled save either never ran (``Cancelled``) or ran and says so;
- closing drains what was submitted and refuses what comes later;
- a process killed with SIGKILL mid-batch loses no acknowledged write,
  brings back nothing deleted, and keeps nothing of the batch it cut.

No sleeps, and no race left to luck: the writer thread is held at the start
of each batch (``HeldWriter``) and an inline batch's leader at each of its
passes (``HeldBatch``) until the test lets them go, and the test waits for
them with ``trio.to_thread`` or ``wait_all_tasks_blocked`` (``HeldWriter.settle``
waits for both: every task blocked and the thread held or idle).  The
killed process is killed where it says it stands, inside a transaction.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import pytest
import trio
import trio.testing

from meerkat_ref._errors import SessionStoreError
from meerkat_ref._types import Session, SessionId, UserMessage
from meerkat_ref.store import SqliteStore
from meerkat_ref.store._lane import Job, Lane
from meerkat_ref.store._sqlite import Durability

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks/ sits beside tests/ and is not installed
    sys.path.insert(0, str(ROOT))

from benchmarks.soak_kill import _Lines  # noqa: E402


def sid(n: int) -> SessionId:
    return SessionId.from_int(n)


def session(n: int, revision: int = 1) -> Session:
    return Session(
        id=sid(n),
        created_at=n,
        updated_at=n + revision,
        messages=(UserMessage(f"m{revision}"),),
        metadata=MappingProxyType({}),
        revision=revision,
    )


def stored(path: Path) -> dict[SessionId, int]:
    """What another connection sees: id -> updated_at (committed rows only)."""
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT id, updated_at FROM sessions").fetchall()
    finally:
        conn.close()
    return {SessionId.parse(i): u for i, u in rows}


class HeldWriter:
    """Holds the writer thread at the start of each batch until the test lets it run.

    ``release`` lets every batch run from then on; ``step`` lets one more
    run.  ``batches`` records each batch's jobs (by ``what``) and the thread
    it ran on (inline batches, on the event loop's thread, are recorded and
    never held); ``held`` is the batch the thread holds, if any.  Every wait
    for the thread gives up after 60 s of real time: a broken test fails
    instead of hanging.
    """

    def __init__(self, store: SqliteStore, *, hold: bool = True) -> None:
        self.batches: list[tuple[list[str], str]] = []
        self.held: list[Job[None]] = []
        self._cond = threading.Condition()
        self._entered = 0  # batches the thread brought to run_batch
        self._permits = 0 if hold else sys.maxsize  # batches the test let run
        self._rung_for = 0  # _entered when the thread last rang the doorbell
        self._rings = 0  # how often the thread rang it (once after each batch)
        lane = self._lane = store._writer
        inner = lane._run_batch

        def run(cursor: sqlite3.Cursor, jobs: list[Job[None]]) -> None:
            self.batches.append(([job.what for job in jobs], threading.current_thread().name))
            if threading.current_thread() is lane._thread:
                with self._cond:
                    self._entered += 1
                    mine = self._entered
                    self.held = jobs
                    self._cond.notify_all()
                    let = self._cond.wait_for(lambda: self._permits >= mine, timeout=60)
                    self.held = []
                assert let, "the test never let the writer's batch run"
            inner(cursor, jobs)

        lane._run_batch = run
        if lane._bell is not None:
            ring = lane._bell.ring

            def rung() -> None:
                ring()
                if threading.current_thread() is lane._thread:
                    with self._cond:
                        self._rung_for = self._entered
                        self._rings += 1
                        self._cond.notify_all()

            lane._bell.ring = rung  # type: ignore[method-assign]

    async def wait_entered(self) -> None:
        """Wait until the thread has brought a batch to the gate (held there unless released)."""
        def entered() -> bool:
            with self._cond:
                return self._cond.wait_for(lambda: self._entered > 0, timeout=60)

        assert await trio.to_thread.run_sync(entered)

    def release(self) -> None:
        with self._cond:
            self._permits = sys.maxsize
            self._cond.notify_all()

    @property
    def parked(self) -> bool:
        """Whether the thread holds a batch, waiting for ``step`` or ``release``."""
        with self._cond:
            return self._entered > self._permits

    def step(self) -> None:
        """Let the batch the thread holds run (the next one is held again)."""
        with self._cond:
            assert self._entered > self._permits, "no batch is held"
            self._permits += 1
            self._cond.notify_all()

    def _quiet(self) -> bool:
        """Under ``_cond``: the thread holds a batch, or is idle with nothing it may take."""
        if self._entered > self._permits:
            return True
        lane = self._lane
        with lane._mutex:
            busy = lane._running or (bool(lane._queue) and lane._kicked)
        return not busy and self._rung_for == self._entered

    def _wait_quiet(self) -> None:
        with self._cond:
            assert self._cond.wait_for(self._quiet, timeout=60), "the writer thread never settled"

    async def settle(self) -> None:
        """Return once every task is blocked and the thread is held or idle with nothing to take.

        Then nothing moves until the test does something: a cancel or a new
        save meets a state no thread can change under it.  The thread is
        idle only once it rang the doorbell for its last batch, and that ring
        is seen (the collector runs) by the ``wait_all_tasks_blocked`` that
        follows it: a ring meanwhile means looking again.
        """
        while True:
            with self._cond:
                rings = self._rings
            await trio.testing.wait_all_tasks_blocked()
            with self._cond:
                if self._quiet() and self._rings == rings:
                    return
            await trio.to_thread.run_sync(self._wait_quiet)


def through_thread(store: SqliteStore) -> SqliteStore:
    """Send every write through the writer thread (no inline commit, alone or in a batch)."""
    store._writer._inline_when_alone = store._writer._inline_batches = False
    return store


async def spawn_save(
    nursery: trio.Nursery, store: SqliteStore, s: Session, results: dict[str, object]
) -> None:
    async def run() -> None:
        try:
            await store.save(s)
            results[str(s.id)] = "ok"
        except SessionStoreError as exc:
            results[str(s.id)] = exc

    nursery.start_soon(run)
    await trio.testing.wait_all_tasks_blocked()


async def test_saves_waiting_together_commit_in_one_transaction(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    async with SqliteStore(path) as store:
        held = HeldWriter(through_thread(store))
        results: dict[str, object] = {}
        async with trio.open_nursery() as nursery:
            await spawn_save(nursery, store, session(1), results)
            await held.wait_entered()  # batch 1 = [save 1], held in the thread
            for n in range(2, 7):
                await spawn_save(nursery, store, session(n), results)
            # Nothing acknowledged, nothing visible: the held batch has not committed.
            assert results == {}
            assert stored(path) == {}
            held.release()
        assert results == {str(sid(n)): "ok" for n in range(1, 7)}
        assert [len(jobs) for jobs, _ in held.batches] == [1, 5]
        assert all(thread == "writer" for _, thread in held.batches)
        assert set(stored(path)) == {sid(n) for n in range(1, 7)}


async def test_an_acknowledged_save_is_committed(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    async with SqliteStore(path) as store:
        held = HeldWriter(through_thread(store), hold=False)
        for n in range(1, 4):
            await store.save(session(n))
            # Returned: another connection sees it already (it was committed).
            assert sid(n) in stored(path)
        assert len(held.batches) == 3


async def test_a_failed_transaction_fails_only_its_bad_write(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    bad = sid(3)
    async with SqliteStore(path) as store:
        trigger = sqlite3.connect(path, isolation_level=None)
        trigger.execute(
            f"CREATE TRIGGER refuse BEFORE INSERT ON sessions WHEN NEW.id = '{bad}' "
            "BEGIN SELECT RAISE(ABORT, 'refused by a test trigger'); END"
        )
        trigger.close()
        held = HeldWriter(through_thread(store))
        results: dict[str, object] = {}
        async with trio.open_nursery() as nursery:
            await spawn_save(nursery, store, session(1), results)
            await held.wait_entered()
            for n in (2, 3, 4):
                await spawn_save(nursery, store, session(n), results)
            held.release()
        # Batch [2, 3, 4] failed as a whole, was rolled back, and each was tried
        # alone: only 3 fails, naming itself; 1 (another batch) is untouched.
        assert [len(jobs) for jobs, _ in held.batches[:2]] == [1, 3]
        assert results[str(sid(1))] == "ok"
        assert results[str(sid(2))] == "ok"
        assert results[str(sid(4))] == "ok"
        error = results[str(bad)]
        assert isinstance(error, SessionStoreError)
        assert error.session_id == bad
        assert str(bad) in error.message and "refused by a test trigger" in error.message
        assert set(stored(path)) == {sid(1), sid(2), sid(4)}


async def test_a_locked_file_fails_the_whole_batch_at_once(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    async with SqliteStore(path, busy_timeout=0) as store:
        held = HeldWriter(through_thread(store))
        other = sqlite3.connect(path, isolation_level=None)
        results: dict[str, object] = {}
        try:
            async with trio.open_nursery() as nursery:
                await spawn_save(nursery, store, session(1), results)
                await held.wait_entered()
                other.execute("BEGIN IMMEDIATE")  # another writer takes the file
                for n in (2, 3):
                    await spawn_save(nursery, store, session(n), results)
                held.release()
        finally:
            other.execute("ROLLBACK")
            other.close()
        # Every write of each batch failed with "locked", tried once (no retries).
        assert len(held.batches) == 2
        for n in (1, 2, 3):
            error = results[str(sid(n))]
            assert isinstance(error, SessionStoreError) and "locked" in error.message
            assert error.session_id == sid(n)
        assert stored(path) == {}
        await store.save(session(5))  # the writer is fine afterwards
        assert set(stored(path)) == {sid(5)}


async def test_writes_of_one_id_keep_their_order_within_a_batch(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    async with SqliteStore(path) as store:
        held = HeldWriter(through_thread(store))
        steps: list[Callable[[], object]] = [
            lambda: store.save(session(1, revision=1)),
            lambda: store.save(session(1, revision=2)),
            lambda: store.delete(sid(1)),  # archive: the last word for 1
            lambda: store.delete(sid(2)),
            lambda: store.save(session(2, revision=3)),  # 2 was deleted, then saved
            lambda: store.save(session(3, revision=1)),
            lambda: store.save(session(3, revision=4)),
        ]
        acknowledged: list[int] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(store.save, session(9))
            await held.wait_entered()
            for i, step in enumerate(steps):

                async def run(i: int = i, step: Callable[[], object] = step) -> None:
                    await step()  # type: ignore[misc]
                    acknowledged.append(i)

                nursery.start_soon(run)
                await trio.testing.wait_all_tasks_blocked()
            held.release()
        assert [len(jobs) for jobs, _ in held.batches] == [1, len(steps)]
        assert sorted(acknowledged) == list(range(len(steps)))
        assert stored(path) == {sid(9): 10, sid(2): 5, sid(3): 7}


async def test_nothing_lands_after_a_delete_was_acknowledged(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    async with SqliteStore(path) as store:
        held = HeldWriter(through_thread(store))
        seen_after_delete: list[dict[SessionId, int]] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(store.save, session(9))
            await held.wait_entered()
            nursery.start_soon(store.save, session(1, revision=5))
            await trio.testing.wait_all_tasks_blocked()

            async def archive() -> None:
                await store.delete(sid(1))
                seen_after_delete.append(stored(path))

            nursery.start_soon(archive)
            await trio.testing.wait_all_tasks_blocked()
            held.release()
        assert seen_after_delete == [{sid(9): 10}]
    assert stored(path) == {sid(9): 10}  # and after everything drained and closed


async def test_a_save_cancelled_while_queued_never_lands(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    async with SqliteStore(path) as store:
        held = HeldWriter(through_thread(store))
        outcome: list[str] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(store.save, session(9))
            await held.wait_entered()
            scope = trio.CancelScope()

            async def save() -> None:
                with scope:
                    await store.save(session(1))
                    outcome.append("returned")
                outcome.append("cancelled" if scope.cancelled_caught else "done")

            nursery.start_soon(save)
            await trio.testing.wait_all_tasks_blocked()
            scope.cancel()  # the job is still queued: it is withdrawn
            await trio.testing.wait_all_tasks_blocked()
            assert outcome == ["cancelled"]
            held.release()
        assert [len(jobs) for jobs, _ in held.batches] == [1]
        assert stored(path) == {sid(9): 10}


async def test_a_save_after_a_withdrawn_kick_is_still_written(tmp_path: Path) -> None:
    """A lost wake-up, found by the soak with faults (3 runs in 80 hung).

    A lone save kicks the thread; cancelled before the thread takes it, it is
    withdrawn and leaves the thread "kicked" with nothing queued, so the thread
    sleeps on.  The next save found the thread kicked, did not notify it, and
    every later save queued behind it forever.  The state is set here directly
    (the cancel must land between the kick and the thread waking, which no
    test can time); ``fail_after`` only turns a hang into a failure.
    """
    path = tmp_path / "s.db"
    async with SqliteStore(path) as store:
        lane = through_thread(store)._writer
        await store.save(session(1))  # the thread has run once and waits again
        with lane._mutex:
            lane._kicked = True  # what a kick left when its only job was withdrawn
        with trio.fail_after(30):
            await store.save(session(2))
            async with trio.open_nursery() as nursery:
                for n in range(3, 8):
                    nursery.start_soon(store.save, session(n))
    assert set(stored(path)) == {sid(n) for n in range(1, 8)}


async def test_a_save_cancelled_after_the_writer_took_it_says_it_landed(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    async with SqliteStore(path) as store:
        held = HeldWriter(through_thread(store))
        outcome: list[str] = []
        scope = trio.CancelScope()

        async def save() -> None:
            with scope:
                await store.save(session(1))
                outcome.append("returned")  # the truth: it landed
                await trio.lowlevel.checkpoint()  # the cancellation is delivered here
                outcome.append("not reached")
            outcome.append("cancelled" if scope.cancelled_caught else "done")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(save)
            await held.wait_entered()  # the thread holds the batch [save 1]
            scope.cancel()
            await trio.testing.wait_all_tasks_blocked()
            assert outcome == []  # refused for now: it waits for the real outcome
            held.release()
        assert outcome == ["returned", "cancelled"]
        assert stored(path) == {sid(1): 2}


async def test_close_drains_what_was_submitted_and_refuses_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = SqliteStore(path)
    held = HeldWriter(through_thread(store))
    results: dict[str, object] = {}
    async with trio.open_nursery() as nursery:
        await spawn_save(nursery, store, session(1), results)
        await held.wait_entered()
        await spawn_save(nursery, store, session(2), results)
        nursery.start_soon(store.aclose)
        await trio.testing.wait_all_tasks_blocked()
        assert store.closed
        with pytest.raises(SessionStoreError, match="closed"):
            await store.save(session(3))
        with pytest.raises(SessionStoreError, match="closed"):
            await store.load(sid(1))
        held.release()
    assert results == {str(sid(1)): "ok", str(sid(2)): "ok"}
    assert set(stored(path)) == {sid(1), sid(2)}
    assert not os.path.exists(f"{path}-wal")  # the last connection folded the WAL back
    async with SqliteStore(path) as again:  # and the file is free again
        assert await again.load(sid(2)) == session(2)


async def test_a_lone_save_commits_inline_and_full_durability_never_does(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "normal.db") as store:
        held = HeldWriter(store, hold=False)
        await store.save(session(1))
        await store.delete(sid(1))
        assert [thread for _, thread in held.batches] == [threading.current_thread().name] * 2
    async with SqliteStore(tmp_path / "full.db", durability="full") as store:
        held = HeldWriter(store, hold=False)
        await store.save(session(1))
        await store.delete(sid(1))
        assert [thread for _, thread in held.batches] == ["writer", "writer"]


# --- inline batches: durability normal, the writer thread idle ------------------------


class HeldBatch:
    """Holds a writer's inline batch open (its leader waits) until the test lets it go.

    ``let_pass`` lets the leader's current pass end (it then looks at who has
    joined, and either runs the batch or waits again); ``release`` lets every
    pass go from then on.  The wait is shielded, as the leader's switch
    points are, and gives up after 60 s of real time (as ``HeldWriter``
    does): a broken test fails instead of hanging.
    """

    def __init__(self, store: SqliteStore) -> None:
        self.go = trio.Event()
        self.released = False
        self.lane = store._writer

        async def held() -> None:
            if not self.released:
                with trio.CancelScope(shield=True), trio.move_on_after(60):
                    await self.go.wait()
            await trio.lowlevel.cancel_shielded_checkpoint()

        self.lane._gather_pass = held

    @property
    def gathering(self) -> bool:
        return self.lane._gathering is not None

    def let_pass(self) -> None:
        go, self.go = self.go, trio.Event()
        go.set()

    def release(self) -> None:
        self.released = True
        self.go.set()


async def save_into(store: SqliteStore, s: Session, results: dict[str, object]) -> None:
    """``store.save(s)``, its outcome recorded: "ok", "cancelled" or the error."""
    with trio.CancelScope() as scope:
        results[f"scope {s.id}"] = scope
        try:
            await store.save(s)
            results[str(s.id)] = "ok"
        except SessionStoreError as exc:
            results[str(s.id)] = exc
    if scope.cancelled_caught and str(s.id) not in results:
        results[str(s.id)] = "cancelled"


async def join_one_by_one(
    nursery: trio.Nursery, store: SqliteStore, ns: tuple[int, ...], results: dict[str, object]
) -> None:
    """Start a save of each ``session(n)`` in turn, each parked before the next starts.

    With a ``HeldBatch``, the first leads the batch and the others follow it.
    """
    for n in ns:
        nursery.start_soon(save_into, store, session(n), results)
        await trio.testing.wait_all_tasks_blocked()


def outcomes(results: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in results.items() if not k.startswith("scope ")}


async def test_saves_made_together_commit_inline_in_one_transaction(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    async with SqliteStore(path) as store:
        record = HeldWriter(store, hold=False)
        results: dict[str, object] = {}
        async with trio.open_nursery() as nursery:
            for n in range(1, 6):
                nursery.start_soon(save_into, store, session(n), results)
        assert outcomes(results) == {str(sid(n)): "ok" for n in range(1, 6)}
        assert [(sorted(jobs), thread) for jobs, thread in record.batches] == [
            (sorted(f"save session {sid(n)}" for n in range(1, 6)), threading.current_thread().name)
        ]
        # and the next save, alone, leads a batch of its own
        await store.save(session(6))
        assert len(record.batches) == 2 and len(record.batches[1][0]) == 1
    assert set(stored(path)) == {sid(n) for n in range(1, 7)}


async def test_a_save_cancelled_while_its_batch_gathers_is_not_written(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    async with SqliteStore(path) as store:
        held, record = HeldBatch(store), HeldWriter(store, hold=False)
        results: dict[str, object] = {}
        async with trio.open_nursery() as nursery:
            await join_one_by_one(nursery, store, (1, 2, 3), results)  # 1 leads
            assert store._writer._gathering is not None
            assert len(store._writer._gathering) == 3
            cast_scope(results[f"scope {sid(2)}"]).cancel()
            await trio.testing.wait_all_tasks_blocked()
            assert outcomes(results) == {str(sid(2)): "cancelled"}
            held.release()
        assert outcomes(results) == {str(sid(1)): "ok", str(sid(2)): "cancelled",
                                     str(sid(3)): "ok"}
        assert [len(jobs) for jobs, _ in record.batches] == [2]
    assert set(stored(path)) == {sid(1), sid(3)}


async def test_a_leader_cancelled_while_gathering_still_writes_its_batch(tmp_path: Path) -> None:
    """The leader's switch points are shielded: once it leads, its batch is written."""
    path = tmp_path / "s.db"
    async with SqliteStore(path) as store:
        held = HeldBatch(store)
        results: dict[str, object] = {}
        async with trio.open_nursery() as nursery:
            await join_one_by_one(nursery, store, (1, 2), results)
            cast_scope(results[f"scope {sid(1)}"]).cancel()
            await trio.testing.wait_all_tasks_blocked()
            assert outcomes(results) == {}
            held.release()
        assert outcomes(results) == {str(sid(1)): "ok", str(sid(2)): "ok"}
    assert set(stored(path)) == {sid(1), sid(2)}


async def test_close_waits_for_a_gathering_batch_and_refuses_later_saves(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = SqliteStore(path)
    held = HeldBatch(store)
    results: dict[str, object] = {}
    async with trio.open_nursery() as nursery:
        await join_one_by_one(nursery, store, (1, 2), results)
        nursery.start_soon(store.aclose)
        while not store._writer.closed:  # aclose closes the reader and checkpointer first
            await trio.to_thread.run_sync(lambda: None)
            await trio.testing.wait_all_tasks_blocked()
        assert store.closed and outcomes(results) == {}
        assert store._writer._stop is None  # the writer is not told to stop while it waits
        with pytest.raises(SessionStoreError, match="closed"):
            await store.save(session(3))
        held.release()
    assert outcomes(results) == {str(sid(1)): "ok", str(sid(2)): "ok"}
    assert set(stored(path)) == {sid(1), sid(2)}


def cast_scope(value: object) -> trio.CancelScope:
    assert isinstance(value, trio.CancelScope)
    return value


def test_a_store_outlives_a_trio_run(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")  # made outside any run
    trio.run(store.save, session(1))
    assert trio.run(store.load, sid(1)) == session(1)
    trio.run(store.aclose)


# --- a real process, killed mid-batch -------------------------------------------------

# Twenty writers save fresh ids (and delete every third one at once, each writer
# out of step with the next, so that batches mix saves and deletes); each
# acknowledgement is a line written with one ``os.write`` (a pipe takes it whole
# or not at all).  The writer lane's batches run through a cursor that, at the
# thirtieth transaction of more than one statement, writes "mid-batch" and what the
# batch holds, then stops before its COMMIT for good: the parent kills the
# process there, with the batch's statements run and not committed.
_CHILD = textwrap.dedent(
    """
    import os
    import sys
    import threading
    from types import MappingProxyType
    import trio
    from meerkat_ref._types import Session, SessionId, UserMessage
    from meerkat_ref.store import SqliteStore

    def say(line):
        os.write(1, (line + "\\n").encode())

    class StopBeforeCommit:
        commits = 0

        def __init__(self, cursor, jobs):
            self.cursor, self.jobs = cursor, jobs

        def execute(self, sql, *args):
            if sql == "COMMIT":
                StopBeforeCommit.commits += 1
                if StopBeforeCommit.commits == 30:
                    say("mid-batch " + " ".join(
                        ("delete:" if job.row is None else "save:") + job.id_text
                        for job in self.jobs))
                    threading.Event().wait()  # until killed
            return self.cursor.execute(sql, *args)

        def __getattr__(self, name):
            return getattr(self.cursor, name)

    async def main(path, durability):
        store = SqliteStore(path, durability=durability)
        run_batch = store._writer._run_batch
        store._writer._run_batch = lambda cur, jobs: run_batch(StopBeforeCommit(cur, jobs), jobs)
        async def writer(w):
            for i in range(10_000):
                n = w * 1_000_000 + i
                s = SessionId.from_int(n)
                session = Session(id=s, created_at=n, updated_at=n + 1,
                                  messages=(UserMessage("x" * 200),),
                                  metadata=MappingProxyType({}), revision=1)
                await store.save(session)
                say(f"saved {s}")
                if (i + w) % 3 == 0:  # archive every third one at once (batches mix both)
                    await store.delete(s)
                    say(f"deleted {s}")
        async with trio.open_nursery() as nursery:
            for w in range(20):
                nursery.start_soon(writer, w)

    trio.run(main, sys.argv[1], sys.argv[2])
    """
)


@pytest.mark.parametrize("durability", ["normal", "full"])
def test_sigkill_mid_batch_loses_no_acknowledged_write(tmp_path: Path, durability: str) -> None:
    """[STORE-COMMIT] across a crash: what was acknowledged is there, the cut batch is not.

    The kill lands where the child says it stands (inside a transaction, its
    statements run, its COMMIT not), not after some time; only whole lines
    count as acknowledgements (``_Lines``), so the test is about the file,
    never about where the pipe was cut.
    """
    path = tmp_path / "killed.db"
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path), durability],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    saved: set[SessionId] = set()
    deleted: set[SessionId] = set()
    cut: dict[str, set[SessionId]] = {"save": set(), "delete": set()}
    lines = _Lines(child, timeout=120)  # only a guard against a hang: the child never waits
    try:
        for line in lines:
            kind, *rest = line.split()
            if kind == "mid-batch":
                child.send_signal(signal.SIGKILL)
                for job in rest:
                    what, id_text = job.split(":")
                    cut[what].add(SessionId.parse(id_text))
                break
            (saved if kind == "saved" else deleted).add(SessionId.parse(rest[0]))
        child.wait()
        for line in lines:  # acknowledged before the kill, still in the pipe
            kind, id_text = line.split()
            (saved if kind == "saved" else deleted).add(SessionId.parse(id_text))
    finally:
        lines.close()
        if child.poll() is None:
            child.kill()
        _, errors = child.communicate()
    assert child.returncode == -signal.SIGKILL, errors.decode()
    assert len(cut["save"]) + len(cut["delete"]) > 1, "the kill must land inside a batch"
    assert not cut["save"] & saved and not cut["delete"] & deleted, "cut, yet acknowledged"
    assert cut["delete"] <= saved  # a delete follows its save's acknowledgement
    assert saved and deleted

    async def check() -> None:
        async with SqliteStore(path) as store:  # the dead owner's lock is gone
            present = {m.id for m in await store.list()}
            assert await store.check() == []
        # The batch cut by the kill left nothing: none of its saves, none of its deletes.
        for s in cut["save"]:
            assert s not in present, f"save {s} of the uncommitted batch landed"
        for s in cut["delete"]:
            assert s in present, f"delete {s} of the uncommitted batch landed"
        for s in saved - deleted:
            assert s in present, f"acknowledged save {s} lost"
        for s in deleted:
            assert s not in present, f"deleted {s} came back"

    trio.run(check)


# --- cancellation at chosen moments: an outcome says what was written, in every path -----


@dataclass
class _Save:
    """One save of the cancellation test, and what became of it."""

    n: int
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    task: trio.lowlevel.Task | None = None
    where: str | None = None  # where it was when cancelled; None: never cancelled
    outcome: str | None = None  # "returned", or "cancelled" (``Cancelled`` before it returned)


# What the lane does with a save cancelled at each place (``_lane.py``'s docstring, steps
# 1 to 3): ``Cancelled`` while the job can still be taken back, the true outcome once it
# cannot.  Seeing each place is seeing both outcomes.
_AFTER_CANCEL: dict[str | None, str] = {
    "before": "cancelled",  # cancelled before it reached the lane: never queued
    "follower": "cancelled",  # parked in an inline batch being gathered: taken out of it
    "queued": "cancelled",  # queued for the writer thread: withdrawn
    "leader": "returned",  # leading an inline batch: its switch points are shielded
    "alone": "returned",  # at an unthreaded lane's (shielded) switch point
    "thread": "returned",  # the writer thread has it: the call waits for the commit
    None: "returned",  # never cancelled
}
_PLACES = {
    "normal": {"before", "leader", "follower", "queued", "thread"},
    "full": {"before", "queued", "thread"},  # every write goes through the thread
    "unthreaded": {"before", "alone"},  # the explorer's store: every write inline
}


class _CancelAtSwitch(trio.abc.Instrument):
    """Cancels ``save`` once its task has stopped at its switch point in an unthreaded lane."""

    def __init__(self, lane: Lane[None], save: _Save) -> None:
        self.lane, self.save = lane, save

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        if task is self.save.task and self.lane._inline and self.save.where is None:
            self.save.where = "alone"
            self.save.scope.cancel()


class _Canceller:
    """Drives saves into each place of the writer lane and cancels them there.

    Between any two moves the test waits until nothing else can move
    (``settle``): every task blocked, the writer thread holding a batch
    (``HeldWriter``) or idle with nothing it may take, an inline batch's
    leader holding it open (``HeldBatch``).  So where a save is when it is
    cancelled is chosen, never raced; and how fast threads run decides
    nothing.
    """

    def __init__(self, store: SqliteStore, kind: str, nursery: trio.Nursery) -> None:
        self.store, self.kind, self.nursery = store, kind, nursery
        self.lane = store._writer
        self.thread = HeldWriter(store) if self.lane.threaded else None
        self.batch = HeldBatch(store) if kind == "normal" else None
        self.saves: dict[SessionId, _Save] = {}

    async def settle(self) -> None:
        if self.thread is not None:
            await self.thread.settle()
        else:
            await trio.testing.wait_all_tasks_blocked()

    def places(self) -> dict[SessionId, str]:
        """Where each save in flight is: leading or following a batch, queued, in the thread."""
        found: dict[SessionId, str] = {}
        with self.lane._mutex:
            queued = list(self.lane._queue)
        held = self.thread.held if self.thread is not None else []
        for place, jobs in (("queued", queued), ("thread", held)):
            found.update((job.session_id, place) for job in jobs if job.session_id is not None)
        for i, job in enumerate(self.lane._gathering or []):
            assert job.session_id is not None
            found[job.session_id] = "follower" if i else "leader"
        return found

    async def _run(self, save: _Save) -> None:
        save.task = trio.lowlevel.current_task()
        with save.scope:
            await self.store.save(session(save.n))
            save.outcome = "returned"
            await trio.lowlevel.checkpoint()  # a cancellation refused earlier arrives here
        if save.outcome is None and save.scope.cancelled_caught:
            save.outcome = "cancelled"

    async def start(self, cancel: str | None = None, *, to_thread: bool = False) -> SessionId:
        """Start a save and let it go as far as it goes; ``cancel`` it "before" or "alone"."""
        save = _Save(len(self.saves) + 1)
        self.saves[sid(save.n)] = save
        self.nursery.start_soon(self._run, save)
        if cancel == "before":  # before its task first runs: before it reaches the lane
            save.where = "before"
            save.scope.cancel()
        if to_thread:
            # At "normal" the thread gets writes only while it is busy (with a checkpoint
            # of the writer's, say): this one is sent there by turning inline batches off
            # for its submission; the saves after it find the thread busy, and queue.
            assert self.lane._idle() and not self.lane._gathering
            self.lane._inline_batches = False
            await trio.testing.wait_all_tasks_blocked()  # it is queued for the thread
            self.lane._inline_batches = True
        if cancel == "alone":
            instrument = _CancelAtSwitch(self.lane, save)
            trio.lowlevel.add_instrument(instrument)
            await trio.testing.wait_all_tasks_blocked()
            trio.lowlevel.remove_instrument(instrument)
            assert save.where == "alone"
        await self.settle()
        return sid(save.n)

    async def cancel(self, id_: SessionId, place: str | None = None) -> None:
        where = self.places()[id_]
        assert place in (None, where), f"meant to cancel in {place}, found in {where}"
        save = self.saves[id_]
        save.where = where
        save.scope.cancel()
        await self.settle()

    async def step(self) -> bool:
        """Let the inline batch or the thread's batch go on; ``False`` if nothing is held."""
        if self.batch is not None and self.batch.gathering:
            self.batch.let_pass()
        elif self.thread is not None and self.thread.parked:
            self.thread.step()
        else:
            return False
        await self.settle()
        return True

    async def drain(self) -> None:
        while await self.step():
            pass

    async def wander(self, rng: random.Random, saves: int) -> None:
        """Seeded moves until ``saves`` saves were started: start, cancel, let go."""
        while len(self.saves) < saves:
            live = sorted(i for i in self.places() if not self.saves[i].scope.cancel_called)
            moves = ["start"] * 4 + ["before"] + ["cancel"] * 3 * bool(live) + ["step"] * 2
            if self.kind == "normal" and self.lane._idle() and not self.lane._gathering:
                moves.append("thread")
            if self.kind == "unthreaded":
                moves.append("alone")
            match rng.choice(moves):
                case "start":
                    await self.start()
                case "before" | "alone" as cancel:
                    await self.start(cancel)
                case "thread":
                    await self.start(to_thread=True)
                case "cancel":
                    await self.cancel(rng.choice(live))
                case _:
                    await self.step()

    async def cover(self) -> None:
        """Cancel a save in each place of this lane not yet covered, driven there on purpose."""
        for place in sorted(_PLACES[self.kind] - {s.where for s in self.saves.values()}):
            await self.drain()
            if place in ("before", "alone"):
                await self.start(place)
                continue
            if place == "leader":  # the thread is idle: a save leads
                await self.cancel(await self.start(), place)
                continue
            if place == "follower":
                await self.start()
            else:  # "queued", "thread": the first save goes to the thread and is held there
                first = await self.start(to_thread=self.kind == "normal")
                if place == "thread":
                    await self.cancel(first, place)
                    continue
            await self.cancel(await self.start(), place)


@pytest.mark.parametrize("kind", ["normal", "full", "unthreaded"])
@pytest.mark.parametrize("seed", range(3))
async def test_under_cancellation_an_outcome_says_what_was_written(
    tmp_path: Path, kind: str, seed: int
) -> None:
    """[STORE-COMMIT]: returned means written, ``Cancelled`` means not, whatever the path.

    Saves are cancelled before they reach the writer, while leading or
    following an inline batch (durability ``normal``), while queued for the
    writer thread and while the thread has them (both durabilities), and at
    the unthreaded lane's switch point: each place first where a seeded walk
    of moves (start a save, cancel one, let a batch go on) leads, then on
    purpose for each place the walk missed.  Every move waits for the lane
    to settle, so the run is the same on a loaded machine: a cancellation
    never needs to land in time.
    """
    path = tmp_path / "s.db"
    durability: Durability = "full" if kind == "full" else "normal"
    threaded = kind != "unthreaded"
    async with (SqliteStore(path, durability=durability, threaded=threaded) as store,
                trio.open_nursery() as nursery):
        canceller = _Canceller(store, kind, nursery)
        await canceller.settle()
        await canceller.wander(random.Random(seed), saves=40)
        await canceller.cover()
        await canceller.drain()
    saves = canceller.saves.values()
    returned = {sid(s.n) for s in saves if s.outcome == "returned"}
    assert all(s.outcome in ("returned", "cancelled") for s in saves)
    assert set(stored(path)) == returned  # returned: written; Cancelled: not written
    assert {s.where for s in saves} - {None} == _PLACES[kind]
    for s in saves:
        assert s.outcome == _AFTER_CANCEL[s.where], (s.n, s.where, s.outcome)
