"""A call answers in the step of its last effect: what the linearizability check assumes.

``spec/ADAPTER.md`` ("No hook between a call's last effect and its answer"):
at every store observation the check keeps only configurations in which no
call in flight has its answer decided and unsent (``_linearize._apply``).
The reference has no point there, so it is never reported for it; a target
that parks at a hook after deciding an answer is, whenever what it decided
went stale while it waited.  Both sides are run here on the engine itself.
"""

from __future__ import annotations

from typing import Any

import trio

from meerkat_ref import PersistentSessionService, SessionId, SessionStore, SessionView
from meerkat_ref.oracle.check import explore
from meerkat_ref.oracle.engine import get_scenario
from meerkat_ref.oracle.targets import InProcessTarget


class _HookAfterLookup(PersistentSessionService):
    """A read that looks the live session up, then parks at a hook of its own, then replies."""

    async def read(self, session_id: SessionId | str) -> SessionView:
        view = self.inner._live_view(SessionId.parse(session_id))
        if view is None:
            return await super().read(session_id)
        await self._points.point("read.reply", None)  # the hook the table does not have
        return view


class _PlainSwitchAfterLookup(PersistentSessionService):
    """The same read with a plain Trio checkpoint where the hook was: no point, no report."""

    async def read(self, session_id: SessionId | str) -> SessionView:
        view = self.inner._live_view(SessionId.parse(session_id))
        if view is None:
            return await super().read(session_id)
        await trio.lowlevel.checkpoint()
        return view


def _explore(cls: type[PersistentSessionService]) -> Any:
    def make(b: Any, c: int, s: SessionStore | None, p: Any) -> PersistentSessionService:
        assert s is not None
        return cls(b, c, s, points=p)

    target = InProcessTarget(make, description=cls.__name__)
    return explore(target, get_scenario("create-vs-archive"), bound=None)


def test_a_hook_between_a_reads_lookup_and_its_reply_is_reported() -> None:
    report = _explore(_HookAfterLookup)
    first = report.first()
    assert first is not None
    [stale] = [v for v in first.violations if v.rule == "LINEARIZABLE"]
    assert "read s1 answered ok" in stale.message, stale.message


def test_without_the_hook_the_same_read_passes() -> None:
    report = _explore(_PlainSwitchAfterLookup)
    assert report.first() is None and report.exhausted
