"""Introspection as plain records, in the manner of Trio's ``Lock.statistics()``.

For tests, the oracle and operators: a snapshot, taken between awaits (so it
is consistent), that nothing can change after it is returned.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .._types import SessionId


@dataclass(frozen=True)
class GateStatistics:
    """One checkpointer gate (clauses ARCHIVE-FINAL, STOP-RESUME)."""

    armed: bool
    archived: bool
    saved_revision: int
    locked: bool


@dataclass(frozen=True)
class ServiceStatistics:
    """A service at one moment.

    ``live``: registered, not archived sessions.  ``running_tasks``: sessions
    whose task has not ended (archived ones included, until they stop).
    ``reserved``: capacity held (sessions being built plus live tasks), of
    ``max_sessions``.  ``gates``: the persistent service's checkpointer gates
    (empty for the ephemeral one).  ``admitted``: per live session with any,
    the turns its task has taken up or has queued (more than one at once
    breaks clause TURN-BUSY).
    """

    live: frozenset[SessionId]
    running_tasks: frozenset[SessionId]
    reserved: int
    max_sessions: int
    gates: Mapping[SessionId, GateStatistics] = field(default_factory=dict)
    admitted: Mapping[SessionId, int] = field(default_factory=dict)


__all__ = ["GateStatistics", "ServiceStatistics"]
