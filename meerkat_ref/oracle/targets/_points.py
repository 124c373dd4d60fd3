"""The one parking seam: a ``SchedulingPoints`` that holds every task until it is released.

With control on, a task that reaches a point registers what it is about to
do (its label, the kind of point, the session) and waits on its own event;
the oracle sees it in ``parked`` and releases exactly one task at a time.
Between two points a task runs alone (Trio is single-threaded), so the
schedule -- the list of released labels -- decides the whole run.  With
control off a point is a plain Trio checkpoint.

Labels.  A task's label is its Trio task name (the target names a call's task
after the client that made it, ``c:<client>``; a session's own task is
``session s<hex>``).  Two tasks parked at once never share a label: the later
one gets ``#2``, ``#3``, ...  This is the labelling ``spec/ADAPTER.md``
section 6 asks of every port.

Ids and ticks, with control off.  The scripted builder takes an id, passes a
point, then reads the clock; under Trio's own scheduling two creates could
then take ids in one order and ticks in the other, which the model (one
create after another) never does.  ``pair_ids`` skips the point right after
an id is taken (the builder switches before both instead), as the model
assumes.  With control on nothing is skipped: the explorer's schedules decide.

Faults.  A released task whose store call is to fail raises at its point,
before the store is reached, in one of two ways, each explored as a fault
of its own: the plain fault raises an ``OSError``, as a third-party store
fails with its own exception, and ``store-error`` raises the store
contract's ``SessionStoreError``, as the project's stores fail.  Either must
be answered ``SESSION_STORE_ERROR`` [STORE-FAILURE]; both are needed because
a service may handle the two apart (``service/_gate.py`` passes the
contract's error on and wraps any other), and a bug in one branch shows only
under its own kind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import trio

from ..._errors import SessionStoreError
from ..._types import SessionId
from ._protocol import Point


@dataclass(eq=False)
class Parked:
    """A task waiting at a scheduling point."""

    label: str
    kind: str
    session_id: SessionId | None
    event: trio.Event = field(default_factory=trio.Event)
    fault: bool = False
    fault_kind: str = ""  # "" the plain fault, else a key of ``FAULT_KINDS``

    @property
    def point(self) -> Point:
        session = None if self.session_id is None else str(self.session_id)
        return Point(self.label, self.kind, session, listing_faults=True)


def _plain_fault(kind: str) -> Exception:
    return OSError(f"injected store fault at {kind}")


FAULT_KINDS: dict[str, Callable[[str], Exception]] = {
    "store-error": lambda kind: SessionStoreError(f"injected store fault at {kind}"),
}
"""The ways beside the plain fault (an ``OSError``) a store call can fail: see the module doc."""


class NotParked(LookupError):
    """``release`` named a task that is not parked."""


class ControlledPoints:
    """``SchedulingPoints`` under the oracle's control; see the module docstring."""

    def __init__(self, on_park: Callable[[Point], None] | None = None) -> None:
        self.enabled = False
        self.parked: dict[str, Parked] = {}
        self.announced: list[Point] = []  # points parked since the last ``drain``
        self._on_park = on_park
        self._skip_next = False

    def pair_ids(self) -> None:
        """Called by the builder as it takes an id: see the module docstring."""
        if not self.enabled:
            self._skip_next = True

    def _label(self) -> str:
        name = trio.lowlevel.current_task().name
        label, n = name, 1
        while label in self.parked:
            n += 1
            label = f"{name}#{n}"
        return label

    async def point(self, kind: str, session_id: SessionId | None = None) -> None:
        if not self.enabled:
            if self._skip_next:
                self._skip_next = False
                return
            await trio.lowlevel.checkpoint()
            return
        parked = Parked(self._label(), kind, session_id)
        self.parked[parked.label] = parked
        self.announced.append(parked.point)
        if self._on_park is not None:
            self._on_park(parked.point)
        try:
            await parked.event.wait()
        finally:
            if self.parked.get(parked.label) is parked:
                del self.parked[parked.label]
        if parked.fault:
            raise FAULT_KINDS.get(parked.fault_kind, _plain_fault)(kind)

    def ready(self) -> tuple[Point, ...]:
        return tuple(self.parked[k].point for k in sorted(self.parked))

    def drain(self) -> tuple[Point, ...]:
        """The points parked since the last drain, in order."""
        out, self.announced = tuple(self.announced), []
        return out

    def release(self, label: str, fault: bool = False, kind: str = "") -> Parked:
        parked = self.parked.get(label)
        if parked is None:
            ready = ", ".join(sorted(self.parked)) or "none"
            raise NotParked(f"no task {label!r} is parked (parked: {ready})")
        if fault and not parked.point.faultable:
            raise ValueError(f"a fault needs a store read or write, not {parked.kind}")
        if kind and (not fault or kind not in FAULT_KINDS):
            raise ValueError(f"no fault kind {kind!r} (kinds: {', '.join(FAULT_KINDS)})")
        del self.parked[label]
        parked.fault, parked.fault_kind = fault, kind
        parked.event.set()
        return parked

    def release_all(self) -> None:
        for parked in list(self.parked.values()):
            parked.event.set()
        self.parked.clear()


__all__ = ["FAULT_KINDS", "ControlledPoints", "NotParked", "Parked"]
