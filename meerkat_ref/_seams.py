"""The seams the service is reached through: clock, scheduling points, declared footprints.

The service never imports the explorer.  Instead every place where an
interleaving matters calls ``await points.point(kind, session_id)`` on an
injected ``SchedulingPoints``.  In production that is ``TrioPoints``: one Trio
checkpoint, nothing more.  The explorer (issue 4) passes its own object,
which parks the calling task until it chooses to release it.

The point kinds the reference uses, what each precedes, and the exact
sequence each call passes are listed once, in ``service/_placement.py``
(normative for ports: ``spec/ADAPTER.md`` section 6 is generated from it,
and a test runs every row against the reference).

What the code after each point may touch is *declared* there too, in the
contract's resources (``Touches``, ``Footprints``): the explorer's
partial-order reduction reorders two steps only if their declarations say
they commute, so the declaration lives beside the points, in the service's
vocabulary, never inferred from its private names.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

import trio

from ._types import SessionId, Timestamp


class Clock(Protocol):
    """Where timestamps come from.  Read once per session change, never more."""

    def now(self) -> Timestamp: ...


class SystemClock:
    """Wall-clock microseconds, forced strictly increasing within a process.

    Strictly increasing keeps ``updated_at`` a total order on changes, so list
    order never depends on ties.
    """

    def __init__(self) -> None:
        self._last = 0

    def now(self) -> Timestamp:
        value = max(time.time_ns() // 1000, self._last + 1)
        self._last = value
        return value


class LogicalClock:
    """A counter: each read returns the next tick.  Used by tests and the model."""

    def __init__(self, start: int = 0) -> None:
        self._next = start + 1

    def now(self) -> Timestamp:
        value = self._next
        self._next += 1
        return value

    def peek(self) -> Timestamp:
        """The tick the next ``now()`` will return (does not advance)."""
        return self._next


class SchedulingPoints(Protocol):
    """Called before every step whose order relative to other tasks matters."""

    async def point(self, kind: str, session_id: SessionId | None = None) -> None: ...


class TrioPoints:
    """Production seam: a plain Trio checkpoint (a cancel point and a yield)."""

    async def point(self, kind: str, session_id: SessionId | None = None) -> None:
        await trio.lowlevel.checkpoint()


DEFAULT_POINTS: SchedulingPoints = TrioPoints()


# -- declared footprints ------------------------------------------------------------------

SESSION = "<id>"
"""In a declared resource, the session the point (or the call) names."""


@dataclass(frozen=True)
class Touches:
    """What a step may read and write, as resource names (``row:<id>``, ``clock``, ...).

    A resource is ``group`` or ``group:item``; the item ``<id>`` stands for
    the session the point names (every session, ``*``, when it names none),
    and ``*`` for every item of the group.  Writing includes reading.  The
    groups are listed, with what each stands for, in ``service/_placement.py``
    (``RESOURCES``).
    """

    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()

    @staticmethod
    def of(reads: str = "", writes: str = "") -> Touches:
        """``Touches.of("row:<id>", "gate:<id> clock")``: space-separated names."""
        return Touches(tuple(reads.split()), tuple(writes.split()))

    def text(self) -> str:
        """``reads row:<id>; writes gate:<id>`` (``nothing`` if neither)."""
        parts = []
        if self.reads:
            parts.append("reads " + " ".join(self.reads))
        if self.writes:
            parts.append("writes " + " ".join(self.writes))
        return "; ".join(parts) or "nothing"


@dataclass(frozen=True)
class Footprints:
    """A service's declaration of what each step of it may touch.

    A step is everything that runs after the oracle releases one task: that
    task until it reaches its next point, blocks or ends, and every task it
    wakes or cancels, each until it does the same.  ``points``: for a task
    released at a point, keyed by (role, kind), role ``caller`` (a call's own
    task) or ``session`` (a session's own task).  ``calls``: for a call just
    started, keyed by the operation's name: what it runs before its first
    point.  A step nothing here declares touches everything.
    """

    points: Mapping[tuple[str, str], Touches] = field(default_factory=dict)
    calls: Mapping[str, Touches] = field(default_factory=dict)

    # -- on the wire (``spec/ADAPTER.md`` section 6, capability ``footprints``) ---------------

    ROLES: ClassVar[tuple[str, ...]] = ("caller", "session")

    def to_json(self) -> dict[str, dict[str, dict[str, list[str]]]]:
        """``{"caller": {kind: touches}, "session": {kind: touches}, "call": {op: touches}}``,
        each touches ``{"reads": [...], "writes": [...]}``: what a port's ``hello`` declares."""
        out: dict[str, dict[str, dict[str, list[str]]]] = {r: {} for r in (*self.ROLES, "call")}
        for (role, kind), t in sorted(self.points.items()):
            out[role][kind] = {"reads": list(t.reads), "writes": list(t.writes)}
        for op, t in sorted(self.calls.items()):
            out["call"][op] = {"reads": list(t.reads), "writes": list(t.writes)}
        return out

    @classmethod
    def from_json(cls, value: object, groups: frozenset[str]) -> Footprints:
        """The declaration ``to_json`` writes; ``ValueError`` naming the first thing wrong.

        ``groups``: the resource groups a name may use (``service/_placement.py``'s
        ``RESOURCES``); an item is ``<id>``, ``*`` or absent.  A name the oracle
        does not know is refused rather than ignored: ignoring it would make the
        step look smaller than its author meant.
        """
        if not isinstance(value, dict):
            raise ValueError(f"footprints must be an object, got {type(value).__name__}")
        unknown = sorted(set(value) - {*cls.ROLES, "call"})
        if unknown:
            raise ValueError(f"footprints: unknown key {unknown[0]!r} (known: caller, session, "
                             "call)")
        points: dict[tuple[str, str], Touches] = {}
        calls: dict[str, Touches] = {}
        for key, table in value.items():
            if not isinstance(table, dict):
                raise ValueError(f"footprints.{key} must be an object of kind -> touches")
            for name, touches in table.items():
                parsed = _touches_of(touches, groups, f"footprints.{key}.{name}")
                if key == "call":
                    calls[name] = parsed
                else:
                    points[(key, name)] = parsed
        return cls(points, calls)


def _touches_of(value: object, groups: frozenset[str], where: str) -> Touches:
    if not isinstance(value, dict) or set(value) - {"reads", "writes"}:
        raise ValueError(f"{where} must be {{\"reads\": [...], \"writes\": [...]}}")
    names: dict[str, tuple[str, ...]] = {}
    for part in ("reads", "writes"):
        items = value.get(part, [])
        if not isinstance(items, list) or not all(isinstance(n, str) for n in items):
            raise ValueError(f"{where}.{part} must be a list of resource names")
        for n in items:
            group, colon, item = n.partition(":")
            if group not in groups or (colon and item not in (SESSION, "*")):
                raise ValueError(
                    f"{where}.{part}: {n!r} is not a resource (a group of "
                    f"{', '.join(sorted(groups))}, optionally ':<id>' or ':*')")
        names[part] = tuple(items)
    return Touches(names["reads"], names["writes"])
