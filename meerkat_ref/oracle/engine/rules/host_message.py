"""HOST-MESSAGE (``spec/CONTRACT.md`` 2.7): an injector refuses once its session task has ended."""

from __future__ import annotations

from ._base import Rule


class HeldInjector(Rule):
    """(inside only, so not in ``RULES``: the wire has no injector to hold) an injector
    taken while its session was live raises ``SESSION_NOT_FOUND`` once the session's
    task has ended: at a run's end, the injector of every live session is taken
    before the service's ``shutdown()`` and used after it."""

    # No hook: the engine's loop (``_run``) raises it after the run, from the target's
    # ``shutdown``, which holds the injectors across the end (``inject`` in the alphabet
    # takes and uses one in a single step, so nothing else holds one that long).
    clause = "HOST-MESSAGE"
    evidence = ("inside",)
    order = 102
    listed = False
