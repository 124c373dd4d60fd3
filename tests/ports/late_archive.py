"""A bad port: ``archive`` answers before the session's task has stopped [ARCHIVE-STOP].

Its archive asks the session task to stop "soon" and returns at once; the
task then works on (two more scheduling points: it finishes what it was
doing, a checkpoint included) before it is cancelled.  The points it passes
after archive answered are on the wire, so conform's concurrent phase must
name ARCHIVE-STOP.

    python tests/ports/late_archive.py     (speaks the adapter protocol on stdio)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import trio
from _port import serve_persistent

from meerkat_ref import EphemeralSessionService, PersistentSessionService, SchedulingPoints
from meerkat_ref.agent import SessionAgentBuilder
from meerkat_ref.service._ephemeral import _Handle

GRACE = 2  # service points (gate, store) a session task still passes after archive returned


@dataclass
class _Doom:
    left: int
    scope: trio.CancelScope


class LatePoints:
    """The service's points, counting down the doomed session tasks' last steps."""

    def __init__(self, inner: SchedulingPoints) -> None:
        self.inner = inner
        self.doomed: dict[str, _Doom] = {}

    async def point(self, kind: str, session_id: Any = None) -> None:
        doom = self.doomed.get(trio.lowlevel.current_task().name)
        if doom is not None:
            if doom.left == 0:
                doom.scope.cancel()
            doom.left -= 1
        await self.inner.point(kind, session_id)


class LateStop(EphemeralSessionService):
    def _stop_task(self, handle: _Handle) -> None:
        points = self._points
        assert isinstance(points, LatePoints)
        points.doomed[f"session {handle.session_id.short()}"] = _Doom(GRACE, handle.task_scope)

    async def _await_stopped(self, handle: _Handle) -> None:
        return None  # the mistake: archive returns while the task still runs


class LateArchive(PersistentSessionService):
    def _make_inner(self, builder: SessionAgentBuilder, max_sessions: int,
                    points: SchedulingPoints) -> EphemeralSessionService:
        return LateStop(builder, max_sessions, points=points)


if __name__ == "__main__":
    serve_persistent(LateArchive, "late-archive", LatePoints)
