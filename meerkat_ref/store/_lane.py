"""Lanes: a long-lived thread that owns one SQLite connection, and how Trio tasks wait for it.

Why not ``trio.to_thread.run_sync`` per call: each such call starts or wakes
a worker thread and comes back through Trio's ``run_sync_soon`` queue; the
store's benchmark measured that hop at 35-50% of a save (and inline, step 2
below, avoids even the cheaper hand-off to a lane's thread when it can).  A lane's thread
lives as long as the store, takes *every* job waiting when it looks (the
writer lane commits them in one transaction: group commit), and wakes the
event loop once per batch through a doorbell file descriptor (an ``eventfd``
on Linux, a pipe elsewhere) that one small Trio system task of the lane, the
*collector*, waits on.

A job's life, and where a Trio task may switch:

1. ``submit`` checks for cancellation *without* yielding.  A cancelled
   caller never queues anything.
2. Inline, in a batch (``inline_batches``: the writer at durability
   ``normal``, where a commit is a WAL append and never an fsync): while the
   thread is idle, a hand-off would only add two thread wake-ups (each one
   costs more than a typical commit on a busy virtual machine), so the
   batch is formed and run on the event loop's thread.  The first job to
   come leads (``_lead``): it yields, cancel-shielded (its switch point),
   until every call of the lane in progress has joined it or a pass of the
   scheduler brought no one new; each job that comes meanwhile follows
   (``_follow``) and parks (its switch point; cancelled there, it is taken
   out of the batch and never runs).  Then the leader runs the whole batch
   (one transaction) and wakes each follower with its outcome.  A close
   begun meanwhile waits for the batch: submitted before, done.
   Alone (``inline_when_alone``, the reader): if this is the lane's only
   call in progress and the thread is idle, the task yields once,
   cancel-shielded, checks again, and runs the job on the event loop's
   thread; other tasks wait for that one job.  ``threaded=False`` lanes do
   this for every job.
3. Otherwise the job is appended to the queue under the lane's mutex (no
   await: atomic for Trio), and the submitting task parks in
   ``wait_task_rescheduled``: the switch point.  If it is cancelled there
   while the job is still queued, the job is taken out of the queue and the
   task gets ``Cancelled``: the job never ran.  If the thread has already
   taken it, the cancellation is refused for now (``Abort.FAILED``): the task
   waits for the job's real outcome, returns it, and its next checkpoint
   raises ``Cancelled``.  So a caller is never told something the database
   disagrees with: ``Cancelled`` means "not done", a result means "done", an
   error means "not done" (the error says why).  ``trio.to_thread.run_sync``
   gave the store the same meaning before.
4. The thread is started on the queue by the collector, in the event loop's
   *next* batch (the first job rings the doorbell), so that every task woken
   together queues its job first: the batch is whole, and the thread works
   while the loop is idle instead of fighting it for the GIL, which costs
   more than it saves with two threads running Python.  (A job that is the
   lane's only call starts the thread at once.)
5. The thread runs the batch (``run_batch`` sets each job's outcome), marks
   the jobs done and rings the doorbell; the collector reschedules every
   task whose job is done, and if jobs were queued meanwhile, starts the
   thread on them once those tasks have had their turn.

While a lane has work in flight it holds one token of Trio's default
thread limiter, on behalf of the lane (taken when its first job is queued,
given back when its last outcome is handed back or withdrawn).  That limiter
is Trio's count of threads working for the run, and code that waits for all
such work to finish does so by draining it (the tests' ``settle`` does): the
lane's thread is counted like a ``trio.to_thread`` worker, no more.

Closing is deterministic: ``close`` queues a stop job behind everything
already queued; the thread runs what is queued, closes its connection,
completes the stop job and exits.  A job submitted after ``close`` began is
refused with ``SessionStoreError`` ("closed").  If the thread ever dies of a
bug, every job it holds or that is queued fails with ``SessionStoreError``
rather than hanging.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Awaitable, Callable
from typing import Generic, Protocol, TypeVar, cast

import trio

from .._errors import SessionStoreError
from .._types import SessionId

__all__ = ["Job", "Lane"]

T = TypeVar("T")

_QUEUED, _TAKEN, _DONE, _WITHDRAWN = range(4)


class _Unset:
    pass


_UNSET = _Unset()


class Job(Generic[T]):
    """One unit of work for a lane, and its outcome once done.

    ``what`` and ``session_id`` name it in errors.  Set by the thread (before
    the job is marked done): ``value`` or ``error``.
    """

    __slots__ = ("error", "run", "session_id", "state", "task", "value", "what")

    def __init__(self, what: str, session_id: SessionId | None) -> None:
        self.what = what
        self.session_id = session_id
        self.value: T | _Unset = _UNSET
        self.error: BaseException | None = None
        self.task: trio.lowlevel.Task | None = None  # to wake when done
        self.run: object = None  # the Trio run ``task`` belongs to
        self.state = _QUEUED

    def fail(self, error: BaseException) -> None:
        if self.error is None and isinstance(self.value, _Unset):
            self.error = error

    def outcome(self) -> T:
        if self.error is not None:
            raise self.error
        if isinstance(self.value, _Unset):
            raise SessionStoreError(f"{self.what}: no outcome (a bug in the store)")
        return self.value


class _Doorbell:
    """Thread-to-Trio wake-up: a non-blocking ``eventfd`` or pipe, read by the collector."""

    def __init__(self) -> None:
        self._read: int
        self._write: int
        if hasattr(os, "eventfd"):
            fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            self._read, self._write = fd, fd
        else:  # pragma: no cover - not Linux
            self._read, self._write = os.pipe()
            os.set_blocking(self._read, False)
            os.set_blocking(self._write, False)

    def fileno(self) -> int:
        return self._read

    def ring(self) -> None:
        """Wake the collector (from the lane's thread, or from Trio); never blocks."""
        with contextlib.suppress(BlockingIOError):  # a full pipe is already ringing
            os.write(self._write, (1).to_bytes(8, "little"))

    def clear(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self._read, 4096):
                pass

    def close(self) -> None:
        with contextlib.suppress(OSError):
            trio.lowlevel.notify_closing(self._read)
        os.close(self._read)
        if self._write != self._read:
            os.close(self._write)


class Upkeep(Protocol):
    """Work a lane does now and then on its own connection (the writer: WAL checkpoints).

    ``poke`` is asked after every batch, and may start the work elsewhere
    (the writer's checkpoints usually run on a thread of their own); when it
    answers ``True`` the lane itself must ``run`` it: on the lane's thread
    (queued like a job, with no one waiting for it, if the batch ran inline;
    jobs submitted meanwhile queue behind it) or, for an unthreaded lane, at
    once.  ``run`` must not raise.
    """

    def poke(self) -> bool: ...

    def run(self, cursor: sqlite3.Cursor) -> None: ...


class _UpkeepJob(Job[None]):
    """Queued after an inline batch when upkeep is due: the thread does it."""

    __slots__ = ()


class Lane(Generic[T]):
    """A connection, the thread that owns it (unless ``threaded=False``), and its queue.

    ``run_batch(cursor, jobs)`` runs the jobs in order and sets each one's
    outcome; it runs on the lane's thread, or inline.  It gets the lane's one
    cursor, made once: ``conn.execute`` would make a cursor per call, and the
    connection keeps a weak reference to each until its next sweep.  ``closed_error``
    words the refusal of jobs submitted after ``close`` began.
    """

    def __init__(
        self,
        name: str,
        conn: sqlite3.Connection,
        run_batch: Callable[[sqlite3.Cursor, list[Job[T]]], None],
        closed_error: Callable[[Job[T]], SessionStoreError],
        *,
        threaded: bool,
        inline_when_alone: bool = False,
        inline_batches: bool = False,
        upkeep: Upkeep | None = None,
    ) -> None:
        self.name = name
        self._conn: sqlite3.Connection | None = conn
        self._cursor = conn.cursor()
        self._run_batch = run_batch
        self._closed_error = closed_error
        self.threaded = threaded
        self._inline_when_alone = inline_when_alone and threaded
        self._inline_batches = inline_batches and threaded
        self._gathering: list[Job[T]] | None = None  # Trio side: a leader's batch, growing
        self._joined = 0  # Trio side: how many jobs have joined the batch being gathered
        self._inline = 0  # Trio side: inline jobs between their switch point and their run
        self._inline_done: trio.Event | None = None  # set when _inline drops to 0 (close)
        self._upkeep = upkeep
        self._running = False  # under _mutex: the thread is using the connection
        self._calls = 0  # Trio side: submit() calls in progress
        self._mutex = threading.Lock()
        self._wake = threading.Condition(self._mutex)  # the thread sleeps on it while idle
        self._queue: list[Job[T]] = []  # under _mutex
        self._finished: list[Job[T]] = []  # under _mutex: done, not yet handed back
        self._closing = False  # under _mutex: no job may join the queue
        self._kicked = False  # under _mutex: the thread may take the queue
        self._stop: Job[T] | None = None
        self._closed = trio.Event()  # set once a threaded lane's close has finished
        self._stopped = False  # under _mutex: the thread has exited
        self._collector_run: object = None  # the Trio run whose collector is alive
        self._in_flight = 0  # Trio side: jobs queued or running, not yet handed back
        self._limiter: trio.CapacityLimiter | None = None  # whose token we hold, if any
        self._bell: _Doorbell | None = None
        self._thread: threading.Thread | None = None
        if threaded:
            self._bell = _Doorbell()
            self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
            self._thread.start()

    # What a batch's leader awaits between looks at who has joined: a seam,
    # so that a test can hold a batch open while calls join or leave it.
    _gather_pass: Callable[[], Awaitable[None]] = staticmethod(
        trio.lowlevel.cancel_shielded_checkpoint
    )

    @property
    def closed(self) -> bool:
        return self._closing

    # --- the Trio side -----------------------------------------------------

    async def submit(self, job: Job[T]) -> T:
        """Run ``job`` on the lane and return its outcome (see the module docstring)."""
        await trio.lowlevel.checkpoint_if_cancelled()  # a cancelled caller never queues
        self._calls += 1
        try:
            return await self._submit(job)
        finally:
            self._calls -= 1

    async def _submit(self, job: Job[T]) -> T:
        if self._inline_batches:
            if self._gathering is not None:
                return await self._follow(job)
            if self._idle():
                return await self._lead(job)
        elif not self.threaded or (self._inline_when_alone and self._alone()):
            # One switch point, cancel-shielded like an uncontended lock: once past
            # the check above the job runs, and nothing else runs in the middle.
            # (A close begun meanwhile waits for it: submitted before, done.)
            self._inline += 1
            try:
                await trio.lowlevel.cancel_shielded_checkpoint()
                if self._conn is None:
                    raise self._closed_error(job)
                if not self.threaded or self._alone():
                    self._run(self._cursor, [job])
                    self._after_inline()
                    return job.outcome()
            finally:
                self._inline_ended()
        task = trio.lowlevel.current_task()
        with self._mutex:
            if self._closing:
                raise self._closed_error(job)
            job.task, job.run = task, trio.lowlevel.current_root_task()
            self._queue.append(job)
            first = len(self._queue) == 1
            if self._kicked:
                # The thread may take the queue already: if it is waiting (its
                # kick found the queue emptied by a withdrawal), this job is what
                # it waits for, and only a notify tells it so.  Running, it
                # ignores this, and the collector starts it again afterwards.
                self._wake.notify()
                first = False
            elif len(self._queue) == self._calls:
                # Every call in progress is queued (this one alone, or the last
                # of a group woken together): no more can join, start at once.
                self._kicked = True
                self._wake.notify()
                first = False
        if first:
            # Otherwise the thread is started by the collector, in the event
            # loop's next batch, not now: every task made runnable with this
            # one queues its job first, so the batch is whole, and the thread
            # works while the loop is idle rather than fighting it for the GIL.
            assert self._bell is not None
            self._bell.ring()
        self._ensure_collector()
        self._busy(+1)

        def abort(_: object) -> trio.lowlevel.Abort:
            with self._mutex:
                withdrawn = job.state == _QUEUED
                if withdrawn:
                    self._queue.remove(job)
                    job.state = _WITHDRAWN
                    if not self._queue and not self._running:
                        self._kicked = False  # the kick was for jobs no longer there
            if not withdrawn:
                return trio.lowlevel.Abort.FAILED  # running or done: wait for its outcome
            self._busy(-1)
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)
        return job.outcome()

    def _idle(self) -> bool:
        """Whether the thread is neither using the connection nor has anything queued."""
        with self._mutex:
            return not self._queue and not self._running and not self._closing

    async def _lead(self, job: Job[T]) -> T:
        """Gather the jobs of every call in progress, then run them inline as one batch.

        ``inline_batches`` (the writer at durability ``normal``, where a
        commit never syncs): the first job to come while the thread is idle
        leads.  It yields, cancel-shielded (its switch point), as many times
        as it takes for the calls in progress to join it (each ``_follow``
        parks), or until a pass of the scheduler brought no one new; then it
        runs the batch on the event loop's thread, in order, and wakes each
        follower with its outcome.  Nothing else runs while the batch does,
        so no job can join it late, and the thread, idle throughout, cannot
        touch the connection meanwhile (jobs go to the thread only when no
        batch is being gathered).
        """
        batch = self._gathering = [job]
        self._joined = 1
        self._inline += 1
        yields, ran = 0, False
        try:
            while True:
                # The calls still to join were woken with the last batch and
                # are runnable; one pass of the scheduler lets each of them
                # run up to its next call here.  A pass with no one new is
                # the end unless it was the very first (the leader may have
                # run before the others in that pass).
                seen = self._joined
                await self._gather_pass()
                yields += 1
                if len(batch) >= self._calls or (self._joined == seen and yields > 1):
                    break
            self._gathering = None  # from here on nothing awaits: no one can join
            for member in batch:
                member.state = _TAKEN  # no follower may withdraw now
            if self._conn is None:
                for member in batch:
                    member.error = self._closed_error(member)
            else:
                self._run(self._cursor, batch)
                self._after_inline()
            ran = True
        finally:
            self._gathering = None
            for member in batch:
                if not ran and member.state == _QUEUED:
                    member.fail(SessionStoreError(f"{member.what}: not run (the batch's "
                                                  "leader was interrupted)"))
                member.state = _DONE
                if member is not job and member.task is not None:
                    trio.lowlevel.reschedule(member.task)
                    member.task = None
            self._inline_ended()
        return job.outcome()

    def _inline_ended(self) -> None:
        self._inline -= 1
        if self._inline == 0 and self._inline_done is not None:
            self._inline_done.set()

    async def _wait_inline(self) -> None:
        """Refuse new jobs, then wait for the inline ones already past their switch point.

        Part of ``close``: a call submitted before the close began is done
        (or fails for its own reason), never refused for the close.
        """
        with self._mutex:
            self._closing = True
        if self._inline:
            if self._inline_done is None:
                self._inline_done = trio.Event()
            with trio.CancelScope(shield=True):
                await self._inline_done.wait()

    async def _follow(self, job: Job[T]) -> T:
        """Join the batch a leader is gathering and wait for its outcome (see ``_lead``)."""
        batch = self._gathering
        assert batch is not None
        if self._closing:
            raise self._closed_error(job)
        job.task = trio.lowlevel.current_task()
        batch.append(job)
        self._joined += 1

        def abort(_: object) -> trio.lowlevel.Abort:
            if job.state != _QUEUED:
                return trio.lowlevel.Abort.FAILED  # taken: wait for its outcome
            batch.remove(job)
            job.state, job.task = _WITHDRAWN, None
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)
        return job.outcome()

    def _alone(self) -> bool:
        """Whether a job may run inline (``inline_when_alone``): it is the lane's only call.

        That is: no other call of the lane is in progress (queued, running,
        or handed back but not yet returned to its caller) and the thread is
        not using the connection.  Then no batch could form around this job,
        and handing it to the thread would only add two thread wake-ups to
        its latency; so it runs on the event loop's thread, which other tasks
        may wait for during one job.  The count of calls in progress is what
        keeps batching alive: the tasks woken by one batch all still count
        when the first of them queues its next job.
        """
        if self._calls != 1:
            return False
        with self._mutex:
            return not self._queue and not self._running

    def _after_inline(self) -> None:
        upkeep = self._upkeep
        if upkeep is None or not upkeep.poke():
            return
        if not self.threaded:
            upkeep.run(self._cursor)
            return
        with self._mutex:  # the thread does it; nobody waits for it
            if not self._closing:
                self._queue.append(cast(Job[T], _UpkeepJob("upkeep", None)))
                self._kicked = True
                self._wake.notify()

    def _busy(self, change: int) -> None:
        """Count jobs in flight; hold a default-limiter token while there are any."""
        self._in_flight += change
        if self._in_flight == 1 and change > 0:
            limiter = trio.to_thread.current_default_thread_limiter()
            with contextlib.suppress(trio.WouldBlock):  # exhausted: go uncounted
                limiter.acquire_on_behalf_of_nowait(self)
                self._limiter = limiter
        elif self._in_flight == 0 and self._limiter is not None:
            limiter, self._limiter = self._limiter, None
            limiter.release_on_behalf_of(self)

    def start_collector(self) -> None:
        """Start the collector now if called inside a Trio run (else: at the first job).

        Starting it with the store, rather than at its first job, keeps the
        run's task tree the same size from before the first call to after
        the last (the soak checks that nothing is left behind).
        """
        if self.threaded:
            with contextlib.suppress(RuntimeError):  # not in a Trio run, or not its thread
                trio.lowlevel.current_trio_token()
                self._ensure_collector()

    def _ensure_collector(self) -> None:
        """Start this run's collector if it has none (a store may outlive a ``trio.run``)."""
        run = trio.lowlevel.current_root_task()
        if self._collector_run is not run:
            self._collector_run = run
            trio.lowlevel.spawn_system_task(self._collect, name=f"{self.name} collector")

    async def _collect(self) -> None:
        """Wake every task whose job is done; end once the thread has stopped.

        Switch point: ``wait_readable`` on the doorbell.  Everything after it
        is synchronous, so a batch's tasks are all rescheduled in one step.
        """
        bell = self._bell
        assert bell is not None
        run = trio.lowlevel.current_root_task()
        while True:
            await trio.lowlevel.wait_readable(bell.fileno())
            bell.clear()
            with self._mutex:
                done, self._finished = self._finished, []
                stopped = self._stopped
                waiting = bool(self._queue) and not self._kicked
                if waiting and not done:
                    self._kicked = True
                    self._wake.notify()
            for job in done:
                if job.task is not None and job.run is run:
                    trio.lowlevel.reschedule(job.task)
                    self._busy(-1)
                job.task = job.run = None
            delivered = bool(done)
            del done  # hold nothing while waiting: jobs keep their tasks alive
            if stopped:
                return
            if waiting and delivered:
                # The tasks just woken will likely queue a job each: let them run
                # first (they do, in the loop's next batch), then start the thread
                # on everything at once.
                bell.ring()

    async def close(self) -> None:
        """Run what is queued, then close the connection; idempotent.

        Switch point: waiting for the stop job (shielded: a close that was
        asked for completes).  Inline lanes close at once.
        """
        await self._wait_inline()
        if not self.threaded:
            self._close_unthreaded()
            return
        with self._mutex:
            first = self._stop is None
            if first:
                self._stop = stop = Job[T]("close", None)
                stop.task = trio.lowlevel.current_task()  # before the thread can see it
                stop.run = trio.lowlevel.current_root_task()
                self._closing = True
                dead = self._stopped  # the thread died of a bug: nothing will answer
                if not dead:
                    self._queue.append(stop)
                    self._kicked = True
                    self._wake.notify()
        if not first:
            with trio.CancelScope(shield=True):
                await self._closed.wait()  # another task is closing: wait for it
            return
        if not dead:
            with trio.CancelScope(shield=True):
                self._ensure_collector()
                self._busy(+1)
                await trio.lowlevel.wait_task_rescheduled(
                    lambda _: trio.lowlevel.Abort.FAILED  # shielded: never asked
                )
        assert self._thread is not None and self._bell is not None
        self._thread.join()  # it has exited or is returning: immediate
        self._bell.close()
        conn, self._conn = self._conn, None  # still set only if the thread died
        if conn is not None:
            conn.close()
        self._closed.set()

    def _close_unthreaded(self) -> None:
        """An inline lane has no thread to stop: refuse new jobs, close the connection."""
        with self._mutex:
            self._closing = True
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def abandon(self) -> None:
        """Stop without waiting: for a store dropped without ``aclose`` (no caller is waiting).

        Called from a finalizer, on whatever thread the garbage collector runs;
        no Trio.  The thread finishes what is queued, closes its connection
        and exits.
        """
        if not self.threaded:
            self._close_unthreaded()
            return
        with self._mutex:
            if self._stop is not None or self._stopped:
                return
            self._stop = Job[T]("abandon", None)
            self._closing = True
            self._queue.append(self._stop)
            self._kicked = True
            self._wake.notify()

    # --- the thread --------------------------------------------------------

    def _run(self, cursor: sqlite3.Cursor, jobs: list[Job[T]]) -> None:
        """``run_batch``, made total: a job left without an outcome fails, never hangs."""
        try:
            self._run_batch(cursor, jobs)
        except BaseException as exc:
            for job in jobs:
                job.fail(
                    SessionStoreError(
                        f"{job.what} failed: {type(exc).__name__} in the store's {self.name}",
                        session_id=job.session_id,
                    )
                )
            if not isinstance(exc, Exception):
                raise
        for job in jobs:
            if job.error is None and isinstance(job.value, _Unset):
                job.fail(SessionStoreError(f"{job.what}: no outcome", session_id=job.session_id))

    def _serve(self) -> None:
        """The thread: take every queued job, run them as one batch, hand them back."""
        conn = self._conn
        assert conn is not None and self._bell is not None
        batch: list[Job[T]] = []
        try:
            while True:
                with self._mutex:
                    while not (self._queue and self._kicked):
                        self._wake.wait()
                    batch, self._queue = self._queue, []
                    for job in batch:
                        job.state = _TAKEN
                    self._running = True
                stopping = batch[-1] is self._stop
                work = [j for j in batch if j is not self._stop and not isinstance(j, _UpkeepJob)]
                if work:
                    self._run(self._cursor, work)
                owed = any(isinstance(job, _UpkeepJob) for job in batch)
                if self._upkeep is not None and (owed or self._upkeep.poke()):
                    self._upkeep.run(self._cursor)
                for job in batch:
                    if job is self._stop or isinstance(job, _UpkeepJob):
                        job.value = cast(T, None)
                if stopping:
                    self._conn = None
                    conn.close()
                with self._mutex:
                    for job in batch:
                        job.state = _DONE
                    self._finished.extend(batch)
                    self._stopped = stopping
                    self._running = False
                    self._kicked = False  # what was queued meanwhile waits for the collector
                self._bell.ring()
                if stopping:
                    return
                batch = work = []  # hold nothing while idle: jobs keep their tasks alive
        except BaseException as exc:  # pragma: no cover - a bug; fail loudly, never hang
            with self._mutex:
                self._closing = True
                pending = [job for job in batch if job.state != _DONE] + self._queue
                self._queue = []
                for job in pending:
                    job.state = _TAKEN  # no abort may withdraw it now
            for job in pending:
                job.fail(SessionStoreError(f"{job.what}: the store's {self.name} died: {exc!r}"))
            with self._mutex:
                for job in pending:
                    job.state = _DONE
                self._finished.extend(pending)
                self._stopped = True
            self._bell.ring()
            raise
