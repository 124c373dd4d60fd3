"""WAL checkpoints of the SQLite store: when one is due, and who pays for it.

Why not SQLite's own: its automatic checkpoint runs inside the commit that
grows the WAL past 1000 pages, and it copies those pages back into the
database file and syncs both files.  Whatever commit crosses the line waits
for that: a raw ``sqlite3`` loop of inserts spends about half its time there
(``benchmarks/RESULTS.md``).  So the writer connection has
``wal_autocheckpoint=0`` and this module decides instead.

``wrote`` counts the rows each commit wrote; the pages they added are
estimated from the rows (corrected at every checkpoint by the size of the
log SQLite reports).  ``poke``, asked after every commit, starts a
checkpoint once about ``PAGES`` pages were added since the last one began:

- A threaded store at durability ``normal`` has a *checkpointer*: a thread
  with a connection of its own that runs ``PRAGMA wal_checkpoint(PASSIVE)``.  A passive checkpoint
  never waits for the writer and the writer never waits for it, so commits
  go on while it copies and syncs: a save shares the disk with the
  checkpoint but never waits behind it.  (Durability is unchanged: a commit
  is durable at the store's level when it returns, checkpoint or not.)
- But a checkpoint that runs beside commits cannot *restart* the log: SQLite
  starts writing the WAL from its beginning again only when, as a
  transaction begins, every frame in it has been copied back, and commits
  that came in during the checkpoint have not been.  Under a steady stream
  of writes the file would grow without bound.  So once the log reported by
  a background checkpoint holds ``RESET_PAGES`` pages or more, the next
  checkpoint is the writer's: ``poke`` answers ``True`` and the writer's lane
  runs ``run`` on its own connection, on its own thread, while writes wait
  (queued); nothing is appended meanwhile, and the next commit restarts the
  log.  That is one checkpoint in ``RESET_PAGES / PAGES`` on the write path
  instead of all of them.
- An unthreaded store (the explorer's: no threads at all) has no
  checkpointer: every checkpoint is the writer's, run inline.  Nor has a
  store at durability ``full``: there every commit syncs the WAL, and a
  checkpoint's syncs beside them made commits slower, not faster (measured:
  one saver 417 us against 325 us a save, 10 savers 78 against 63), so the
  writer's thread runs each checkpoint between its batches.

A checkpoint that fails is logged and skipped (a later one copies the same
pages; nothing is lost).  If the checkpointer thread ever dies of a bug,
checkpoints fall back to the writer.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Sequence
from typing import Protocol

from ._salvage import describe

__all__ = ["PAGES", "RESET_PAGES", "Checkpoints"]

_log = logging.getLogger(__name__)

PAGES = 1000  # SQLite's own wal_autocheckpoint default
RESET_PAGES = 8 * PAGES  # the log's size at which the writer restarts it (about 32 MB)


class _Outcome(Protocol):
    @property
    def error(self) -> BaseException | None: ...


class Checkpoints:
    """The writer lane's upkeep (``_lane.Upkeep``): checkpoints, in the background if possible.

    ``wrote``, ``poke`` and ``run`` are called by whoever holds the writer
    connection at that moment (the event loop's thread or the writer's), one
    at a time; the checkpointer thread shares only what ``_mutex`` guards.
    """

    def __init__(self, path: str, background: sqlite3.Connection | None) -> None:
        self._path = path
        self._rows = 0  # writer side: rows committed since the last checkpoint was started
        self._owed = False  # writer side: poke told the writer to run one, not yet run
        self._mutex = threading.Lock()
        self._wake = threading.Condition(self._mutex)
        self._per_row = 5.0  # under _mutex: about what a single-row commit adds
        self._log = 0  # under _mutex: frames in the log at the last checkpoint
        self._asked: int | None = None  # under _mutex: rows the checkpointer is to cover
        self._running = False  # under _mutex: the checkpointer is checkpointing
        self._reset = False  # under _mutex: the log is big; the writer's turn
        self._stopping = False  # under _mutex
        self._alive = background is not None  # under _mutex
        self._thread: threading.Thread | None = None
        if background is not None:
            self._thread = threading.Thread(
                target=self._serve, args=(background,), name="checkpointer", daemon=True
            )
            self._thread.start()

    # --- the writer's side --------------------------------------------------

    def wrote(self, jobs: Sequence[_Outcome]) -> None:
        self._rows += sum(1 for job in jobs if job.error is None)

    def poke(self) -> bool:
        """Start a checkpoint if one is due; ``True``: the writer must ``run`` it."""
        if self._owed:
            return False
        with self._mutex:
            if self._rows * self._per_row < PAGES:
                return False
            if self._asked is not None or self._running:
                return False  # one at a time (SQLite's rule too); the next poke looks again
            if self._alive and not self._stopping and not self._reset:
                self._asked, self._rows = self._rows, 0
                self._wake.notify_all()
                return False
            self._reset = False
        self._owed = True
        return True

    def run(self, cursor: sqlite3.Cursor) -> None:
        """The writer's checkpoint, on the writer's connection (nothing is committed meanwhile)."""
        rows, self._rows, self._owed = self._rows, 0, False
        self._checkpoint(cursor, rows, by_writer=True)

    # --- both ---------------------------------------------------------------

    def _checkpoint(self, cursor: sqlite3.Cursor, rows: int, *, by_writer: bool) -> None:
        try:
            _busy, log, done = cursor.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:  # a later one copies the same pages; nothing is lost
            _log.warning("session store %s: WAL checkpoint failed: %s", self._path, describe(exc))
            return
        if not (isinstance(log, int) and isinstance(done, int) and log >= 0):
            return
        with self._mutex:
            added = log - self._log if log >= self._log else log
            if rows and added > 0:
                self._per_row = min(max(added / rows, 0.5), 50.0)
            # After the writer's checkpoint everything is copied back: the next
            # commit restarts the log (unless a reader still uses it).
            self._log = 0 if by_writer and done == log else log
            if not by_writer and log >= RESET_PAGES:
                self._reset = True

    # --- the checkpointer thread --------------------------------------------

    def _serve(self, conn: sqlite3.Connection) -> None:
        cursor = conn.cursor()
        try:
            while True:
                with self._mutex:
                    while self._asked is None and not self._stopping:
                        self._wake.wait()
                    rows, self._asked = self._asked, None
                    if self._stopping or rows is None:
                        return
                    self._running = True
                try:
                    self._checkpoint(cursor, rows, by_writer=False)
                finally:
                    with self._mutex:
                        self._running = False
                        self._wake.notify_all()  # wait_idle
        except BaseException as exc:  # a bug: say so; the writer takes over
            _log.error("session store %s: the checkpointer died: %r", self._path, exc)
            raise
        finally:
            with self._mutex:
                self._alive, self._asked = False, None  # from now on the writer's
                self._wake.notify_all()
            cursor.close()
            conn.close()

    def wait_idle(self) -> None:
        """Block until no background checkpoint is asked for or running (benchmarks, tests)."""
        with self._mutex:
            while self._alive and (self._asked is not None or self._running):
                self._wake.wait()

    def stop(self) -> None:
        """Ask the checkpointer to finish its checkpoint and close its connection; no wait."""
        with self._mutex:
            self._stopping = True
            self._wake.notify_all()

    def close(self) -> None:
        """``stop``, then wait for the thread (at most one checkpoint's time); blocking."""
        self.stop()
        if self._thread is not None:
            self._thread.join()

    @property
    def threaded(self) -> bool:
        return self._thread is not None
