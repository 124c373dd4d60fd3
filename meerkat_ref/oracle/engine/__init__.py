"""The engine: one loop that runs scenarios on any target, the rules, and the searches.

It reaches what it drives only through the ``Target`` protocol
(``meerkat_ref.oracle.targets``); ``check`` and ``conform`` are this engine
over two targets.
"""

from ._audit import AUDIT_RATE, OracleError, audit_rate
from ._dpor import SEARCHES, explore, explore_dpor
from ._draw import mermaid, swimlane
from ._linearize import check as check_linearizable
from ._monitor import RULES, Call, Monitor, Violation, short
from ._run import Node, RunOutcome, Snapshot, Step, run_schedule
from ._scenarios import (
    NO_FAULTS,
    SCENARIOS,
    ClientOp,
    Scenario,
    SpecError,
    draw_spec,
    get_scenario,
    scenario_from_spec,
)
from ._schedule import ScheduleError, ScheduleFile, dump, load
from ._search import SearchReport, dependent, explore_dfs, find_counterexample, preemptions
from ._strategies import (
    Aborted,
    Budget,
    Choice,
    HypothesisStrategy,
    PCTStrategy,
    RandomStrategy,
    ReplayStrategy,
    ScheduleDiverged,
    Strategy,
)
from ._trace_of import trace_of

__all__ = [
    "AUDIT_RATE",
    "NO_FAULTS",
    "RULES",
    "SCENARIOS",
    "SEARCHES",
    "Aborted",
    "Budget",
    "Call",
    "Choice",
    "ClientOp",
    "HypothesisStrategy",
    "Monitor",
    "Node",
    "OracleError",
    "PCTStrategy",
    "RandomStrategy",
    "ReplayStrategy",
    "RunOutcome",
    "Scenario",
    "ScheduleDiverged",
    "ScheduleError",
    "ScheduleFile",
    "SearchReport",
    "Snapshot",
    "SpecError",
    "Step",
    "Strategy",
    "Violation",
    "audit_rate",
    "check_linearizable",
    "dependent",
    "draw_spec",
    "dump",
    "explore",
    "explore_dfs",
    "explore_dpor",
    "find_counterexample",
    "get_scenario",
    "load",
    "mermaid",
    "preemptions",
    "run_schedule",
    "scenario_from_spec",
    "short",
    "swimlane",
    "trace_of",
]
