"""``DriverFaults``: errors a check asks of the driver under a store, none of them damage.

A store sits on a driver (SQLite's library, a database client, a file
system).  The driver can fail without anything being damaged: a statement
interrupted, a connection that drops for a while, a disk that is full.
[STORE-FAILURE] says such an error fails the calls that met it, with
``SessionStoreError``, and nothing else: no row is named damaged, nothing is
lost, and the store serves again once the error has passed; [STORE-COMMIT]
says a write the driver refuses does not fail the writes that shared its
transaction.  A store kind that declares ``faults`` opens, through its
``faulty`` factory, a store whose driver consults one of these before each
step of work, so the store contract can make those errors happen where a
store cannot tell them from real ones.

Why a plan object and not a wrapper around the store: the errors must come
from *under* the store, where its own handling of them (retry, wrap, walk
around damage) is what is judged.  The check changes the plan between
calls, from the event loop's thread, while the store's own threads read it;
a lock keeps the count of failed steps exact.
"""

from __future__ import annotations

import threading

__all__ = ["DriverFaults"]


class DriverFaults:
    """What the driver under a store is told to fail (see the module docstring).

    - ``fail_next(n)``: the next ``n`` steps of driver work fail, each with a
      transient error (SQLite: ``SQLITE_INTERRUPT``), then work goes on.
    - ``outage(True)``: every step fails until ``outage(False)``.
    - ``room`` (fixed at open): how many bytes the stored data may grow by
      beyond what it held when the store opened; a write that needs more
      fails as a full disk would (SQLite: ``SQLITE_FULL``).  ``None``: no limit.

    A *step* is whatever unit of work the kind's driver counts (for SQLite,
    one call of its progress handler), so ``fail_next(n)`` reaches deeper
    into a call as ``n`` grows, never past it.
    """

    def __init__(self, *, room: int | None = None) -> None:
        if room is not None and (isinstance(room, bool) or not isinstance(room, int)
                                 or room < 0):
            raise ValueError(f"room must be a non-negative int or None, got {room!r}")
        self.room = room
        self._lock = threading.Lock()
        self._pending = 0
        self._outage = False
        self._failed = 0

    def fail_next(self, n: int) -> None:
        """The next ``n`` steps fail (replacing what was pending)."""
        if n < 0:
            raise ValueError(f"n must be non-negative, got {n}")
        with self._lock:
            self._pending = n

    def outage(self, on: bool) -> None:
        """Every step fails while on."""
        with self._lock:
            self._outage = on

    def clear(self) -> None:
        """No step fails any more (``room`` stays: a full disk stays full)."""
        with self._lock:
            self._pending = 0
            self._outage = False

    @property
    def failed(self) -> int:
        """How many steps have failed so far: whether a fault was met at all."""
        with self._lock:
            return self._failed

    def step(self) -> bool:
        """Called by the driver before each step of work: whether this step fails."""
        with self._lock:
            if self._outage:
                self._failed += 1
                return True
            if self._pending:
                self._pending -= 1
                self._failed += 1
                return True
            return False
