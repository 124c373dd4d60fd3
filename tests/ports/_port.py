"""What every bad port here shares: the reference's persistent service with one override, served.

    serve_persistent(SomeService, "its-name")

serves ``SomeService`` (a ``PersistentSessionService`` subclass) over the
adapter protocol on stdio; an ephemeral ``open`` gets the plain reference
(the ports break persistent behaviour only).  ``points`` wraps the
scheduling points the oracle controls, for a port that must see them.
``footprints``: the declaration its ``hello`` offers (none: every step of
the port counts as touching everything).
"""

from __future__ import annotations

from collections.abc import Callable

import trio

from meerkat_ref import EphemeralSessionService, PersistentSessionService, SchedulingPoints
from meerkat_ref._seams import Footprints
from meerkat_ref.agent import SessionAgentBuilder
from meerkat_ref.oracle.server import CAPABILITIES, serve, stdout_emit
from meerkat_ref.oracle.targets import InProcessTarget
from meerkat_ref.store import SessionStore


def serve_persistent(
    service: type[PersistentSessionService],
    name: str,
    points: Callable[[SchedulingPoints], SchedulingPoints] = lambda p: p,
    footprints: Footprints | None = None,
) -> None:
    def make(builder: SessionAgentBuilder, capacity: int, store: SessionStore | None,
             controlled: SchedulingPoints) -> EphemeralSessionService | PersistentSessionService:
        if store is None:
            return EphemeralSessionService(builder, capacity, points=controlled)
        return service(builder, capacity, store, points=points(controlled))

    trio.run(serve, InProcessTarget(make, description=name), name, stdout_emit, CAPABILITIES,
             footprints)
