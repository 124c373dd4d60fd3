"""A bad port that declares its footprints: an interrupt frees the turn's slot [TURN-BUSY].

The test mutant ``InterruptFreesTurn`` (``tests/stateful/mutants.py``): a
flag reset by the wrong call.  ``interrupt`` clears the session's busy flag,
so a turn started while the interrupted one is still running is admitted
instead of answered ``SESSION_BUSY``.  It takes three calls (a turn, an
interrupt, a second turn) and a schedule with a preemption: conform's
bounded DFS (bound 0) runs none such; DPOR runs every behaviour.  The
port's points are the reference's, so it declares the reference's table,
truthfully, and conform's exhaustive search is DPOR.

    python tests/ports/interrupt_frees_turn.py     (speaks the adapter protocol on stdio)
"""

from __future__ import annotations

import sys
from pathlib import Path

from _port import serve_persistent

from meerkat_ref.service._placement import FOOTPRINTS

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/: the mutants

from stateful.mutants import InterruptFreesTurn

if __name__ == "__main__":
    serve_persistent(InterruptFreesTurn, "interrupt-frees-turn", footprints=FOOTPRINTS)
