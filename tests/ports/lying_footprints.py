"""A bad port: the reference, behaving rightly, whose ``hello`` declares footprints that lie.

Over the adapter the oracle owns no seam of the port (no store, clock or
ids it can watch), so a declaration is believed until ``--audit`` runs the
two orders of a pair it makes independent and the wire shows a difference.
Each lie here leaves out what one kind of step really touches:

    python tests/ports/lying_footprints.py LIE

LIE is one of ``LIES``:

turn-step-ticks-only  a step of a turn touches the clock only, not the session's agent
                      or turn slot
send-touches-nothing  handing a turn to the session's task touches nothing
not-a-declaration    the declaration names a resource the contract does not have
"""

from __future__ import annotations

import sys

import trio

from meerkat_ref._seams import Footprints, Touches
from meerkat_ref.oracle.server import CAPABILITIES, serve, stdout_emit
from meerkat_ref.service._placement import FOOTPRINTS
from meerkat_ref.variants import Variant


def _instead(role: str, kind: str, touches: Touches) -> Footprints:
    return Footprints({**FOOTPRINTS.points, (role, kind): touches}, FOOTPRINTS.calls)


LIES: dict[str, Footprints] = {
    "turn-step-ticks-only": _instead("session", "agent.step", Touches.of(writes="clock")),
    "send-touches-nothing": _instead("caller", "cmd.send", Touches()),
    "not-a-declaration": _instead("caller", "store.load", Touches.of("disk:<id>")),
}


def main() -> None:
    lie = LIES[sys.argv[1]]
    variant = Variant.parse("reference")
    trio.run(serve, variant.target(), "reference", stdout_emit, CAPABILITIES, lie)


if __name__ == "__main__":
    main()
