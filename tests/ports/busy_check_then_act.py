"""A bad port: its busy check and its act are two steps, and a second turn queues [TURN-BUSY].

The reference's admission with one change, the test mutant ``CheckThenAct``
(``tests/stateful/mutants.py``): ``start_turn`` checks that no turn is
running, reaches a scheduling point, and only then marks the session busy
and hands the turn to the session's task.  Two calls can both pass the check;
the session task then runs the second turn after the first, so both answer
ok: a turn that had to be refused (``SESSION_BUSY``, calls do not queue) was
queued instead.  No two turns ever run at once, so the wire never shows two
tasks at agent points of the session; the engine sees it as the model's
``TurnsAtOnce`` does, by two turns started at once both being admitted.

    python tests/ports/busy_check_then_act.py     (speaks the adapter protocol on stdio)
"""

from __future__ import annotations

import sys
from pathlib import Path

from _port import serve_persistent

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/: the mutants

from stateful.mutants import CheckThenAct

if __name__ == "__main__":
    serve_persistent(CheckThenAct, "busy-check-then-act")
