"""LIVENESS (``spec/CONTRACT.md``): every call but a serving host loop is answered; a run ends."""

from __future__ import annotations

from ._base import Excuse, Rule


class Liveness(Rule):
    """When nothing can run, no client waits on a call other than a host-mode turn;
    a run ends within ``max_steps``."""

    # No hook: the engine's loop (``_run``) raises it, since only the loop knows its
    # clients and its step budget; the traceability table names the places.
    clause = "LIVENESS"
    wire = (
        "every call but a serving host loop is answered; a run ends"
    )
    evidence = ("wire",)
    order = 100
    excuses = (Excuse(("create", "start_turn"), "a client waiting when nothing can run",
                      session="any", mode="host"),)
