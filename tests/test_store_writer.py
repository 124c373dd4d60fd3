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
- a process killed with SIGKILL mid-batch loses no acknowledged write and
  brings back nothing deleted.

No sleeps: the writer thread is held inside a batch by a ``threading.Event``
(``HeldWriter``) and the test waits for it with ``trio.to_thread`` or
``wait_all_tasks_blocked``.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType

import pytest
import trio
import trio.testing

from meerkat_ref._errors import SessionStoreError
from meerkat_ref._types import Session, SessionId, UserMessage
from meerkat_ref.store import SqliteStore
from meerkat_ref.store._lane import Job

ROOT = Path(__file__).resolve().parents[1]


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
    """Holds the writer thread at the start of each batch until ``release``.

    ``batches`` records each batch's jobs (by ``what``) and the thread it ran
    on.  ``entered`` is set once a batch is being held.
    """

    def __init__(self, store: SqliteStore, *, hold: bool = True) -> None:
        self.batches: list[tuple[list[str], str]] = []
        self.entered = threading.Event()
        self.go = threading.Event()
        if not hold:
            self.go.set()
        lane = store._writer
        inner = lane._run_batch

        def run(cursor: sqlite3.Cursor, jobs: list[Job[None]]) -> None:
            self.batches.append(([job.what for job in jobs], threading.current_thread().name))
            self.entered.set()
            self.go.wait(timeout=60)  # a broken test fails instead of hanging
            inner(cursor, jobs)

        lane._run_batch = run

    async def wait_entered(self) -> None:
        await trio.to_thread.run_sync(self.entered.wait, 60)
        assert self.entered.is_set()

    def release(self) -> None:
        self.go.set()


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
    """Holds a writer's inline batch open (its leader waits) until ``release``.

    The wait is shielded, as the leader's switch points are, and gives up
    after 60 s of real time (as ``HeldWriter`` does): a broken test fails
    instead of hanging.
    """

    def __init__(self, store: SqliteStore) -> None:
        self.go = trio.Event()

        async def held() -> None:
            with trio.CancelScope(shield=True), trio.move_on_after(60):
                await self.go.wait()
            await trio.lowlevel.cancel_shielded_checkpoint()

        store._writer._gather_pass = held

    def release(self) -> None:
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

_CHILD = textwrap.dedent(
    """
    import sys
    from types import MappingProxyType
    import trio
    from meerkat_ref._types import Session, SessionId, UserMessage
    from meerkat_ref.store import SqliteStore

    async def main(path, durability):
        store = SqliteStore(path, durability=durability)
        async def writer(w):
            for i in range(10_000):
                n = w * 1_000_000 + i
                s = SessionId.from_int(n)
                session = Session(id=s, created_at=n, updated_at=n + 1,
                                  messages=(UserMessage("x" * 200),),
                                  metadata=MappingProxyType({}), revision=1)
                await store.save(session)
                print("saved", n, flush=True)
                if i % 3 == 0:  # archive every third one right away
                    await store.delete(s)
                    print("deleted", n, flush=True)
        async with trio.open_nursery() as nursery:
            for w in range(20):
                nursery.start_soon(writer, w)

    trio.run(main, sys.argv[1], sys.argv[2])
    """
)


@pytest.mark.parametrize("durability", ["normal", "full"])
def test_sigkill_mid_batch_loses_no_acknowledged_write(tmp_path: Path, durability: str) -> None:
    path = tmp_path / "killed.db"
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path), durability],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert child.stdout is not None
    saved: set[int] = set()
    deleted: set[int] = set()
    try:
        for line in child.stdout:
            kind, number = line.split()
            (saved if kind == "saved" else deleted).add(int(number))
            if len(saved) >= 600:  # well into concurrent batches
                child.send_signal(signal.SIGKILL)
                break
    finally:
        if child.poll() is None:
            child.kill()
        rest, errors = child.communicate()
    for line in rest.splitlines():  # acknowledged before the kill, still in the pipe
        kind, number = line.split()
        (saved if kind == "saved" else deleted).add(int(number))
    assert child.returncode == -signal.SIGKILL, errors
    assert len(saved) >= 600

    async def check() -> None:
        async with SqliteStore(path) as store:  # the dead owner's lock is gone
            present = {m.id for m in await store.list()}
            assert await store.check() == []
            for n in saved - deleted:
                assert SessionId.from_int(n) in present, f"acknowledged save {n} lost"
            for n in deleted:
                assert SessionId.from_int(n) not in present, f"deleted {n} came back"
                assert await store.load(SessionId.from_int(n)) is None

    trio.run(check)


# --- random cancellation: the meaning of an outcome holds in every path ------------------


@pytest.mark.parametrize("durability", ["normal", "full"])
@pytest.mark.parametrize("seed", range(3))
async def test_under_random_cancellation_an_outcome_says_what_was_written(
    tmp_path: Path, durability: str, seed: int
) -> None:
    """[STORE-COMMIT]: returned means written, ``Cancelled`` means not, whatever the path.

    Savers write fresh ids while a canceller cancels random saves at random
    moments (after a random number of scheduler passes), so saves are
    cancelled alone, while leading or following an inline batch, while
    queued for the thread and while the thread has them.
    """
    import random

    rng = random.Random(seed)
    path = tmp_path / "s.db"
    written: set[SessionId] = set()
    refused: set[SessionId] = set()
    scopes: list[trio.CancelScope] = []
    async with SqliteStore(path, durability=durability) as store:  # type: ignore[arg-type]

        async def saver(first: int) -> None:
            for n in range(first, first + 60):
                with trio.CancelScope() as scope:
                    scopes.append(scope)
                    try:
                        await store.save(session(n))
                    except trio.Cancelled:
                        refused.add(sid(n))
                        raise
                    written.add(sid(n))
                # a save that returned and was cancelled after: still written

        async def canceller() -> None:
            for _ in range(400):
                for _ in range(rng.randrange(3)):
                    await trio.lowlevel.cancel_shielded_checkpoint()
                live = [scope for scope in scopes if not scope.cancel_called]
                if live:
                    rng.choice(live[-8:]).cancel()
                await trio.lowlevel.checkpoint()

        async with trio.open_nursery() as nursery:
            for w in range(8):
                nursery.start_soon(saver, 1_000 * (w + 1))
            nursery.start_soon(canceller)
    assert written and refused, "the test must see both outcomes"
    assert written.isdisjoint(refused)
    assert set(stored(path)) == written
