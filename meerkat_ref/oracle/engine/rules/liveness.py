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


class Shutdown(Rule):
    """(inside only, so not in ``RULES``: a port shows it through ``conform``'s hooks
    case for the capability ``exit``) at a run's end the service's ``shutdown()``,
    called as a program calls it, returns, and when it does no session task is left
    and no session live."""

    # No hook: the engine's loop (``_run``) raises it after the run, before the restart
    # that reads back, through the target's ``shutdown``.
    clause = "SHUTDOWN"
    evidence = ("inside",)
    order = 101
    listed = False
