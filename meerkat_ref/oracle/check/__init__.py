"""``meerkat-ref check``: explore scenarios exhaustively on a target, and say what was found.

Two halves, one product: ``_explore`` is the search over a target
(``explore_all``, ``explore_in_processes`` and the synchronous helpers the
tests use), ``_command`` the command's pipeline over it (``check``,
``check_windows``: which scenarios, where, what is printed and written, the
exit code), ``_replay`` ``replay``'s, over the schedule files ``check``
writes.  ``cli.py`` only reads the options (and the schedule file).
"""

from ._command import (
    Found,
    Request,
    SeedWindow,
    check,
    check_windows,
    cores,
    replay_command,
    with_target,
)
from ._explore import (
    DEFAULT,
    NO_POINTS,
    ExplorationCut,
    explore,
    explore_all,
    explore_in_processes,
    find_counterexample,
    in_process,
    run_once,
    scheduler_for,
)
from ._replay import departure, replay

__all__ = ["DEFAULT", "NO_POINTS", "ExplorationCut", "Found", "Request", "SeedWindow", "check",
           "check_windows", "cores", "departure", "explore", "explore_all",
           "explore_in_processes", "find_counterexample", "in_process", "replay",
           "replay_command", "run_once", "scheduler_for", "with_target"]
