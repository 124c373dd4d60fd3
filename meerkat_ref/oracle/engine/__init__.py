"""The engine: one loop that runs scenarios on any target, the rules, and the searches.

It reaches what it drives only through the ``Target`` protocol
(``meerkat_ref.oracle.targets``); ``check`` and ``conform`` are this engine
over two targets.
"""

from ._audit import AUDIT_RATE, OracleError, audit_rate
from ._dpor import DporScheduler, explore_dpor
from ._hypothesis import HypothesisScheduler, HypothesisStrategy
from ._linearize import check as check_linearizable
from ._monitor import RULES, Call, Monitor, Violation, short
from ._pct import PctScheduler, PCTStrategy
from ._random import RandomScheduler, RandomStrategy
from ._replay import ReplayScheduler, ReplayStrategy
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
from ._scheduler import Param, Scheduler, SearchReport, SeededScheduler, explore_with
from ._schedulers import (
    DEFAULT_SCHEDULER,
    SCHEDULERS,
    SchedulerSpec,
    SchedulerSpecError,
    add_scheduler_option,
    explore,
    legacy_scheduler,
    parse_scheduler,
    scheduler_names,
    schedulers_help,
    with_audit,
)
from ._search import DfsScheduler, dependent, explore_dfs, find_counterexample, preemptions
from ._strategies import Aborted, Budget, Choice, ScheduleDiverged, Strategy
from ._trace_of import mermaid, swimlane, trace_of
from ._traces import FoataForm, count_traces, foata, outcome_steps, scenario_traces

__all__ = [
    "AUDIT_RATE",
    "DEFAULT_SCHEDULER",
    "NO_FAULTS",
    "RULES",
    "SCENARIOS",
    "SCHEDULERS",
    "Aborted",
    "Budget",
    "Call",
    "Choice",
    "ClientOp",
    "DfsScheduler",
    "DporScheduler",
    "FoataForm",
    "HypothesisScheduler",
    "HypothesisStrategy",
    "Monitor",
    "Node",
    "OracleError",
    "PCTStrategy",
    "Param",
    "PctScheduler",
    "RandomScheduler",
    "RandomStrategy",
    "ReplayScheduler",
    "ReplayStrategy",
    "RunOutcome",
    "Scenario",
    "ScheduleDiverged",
    "ScheduleError",
    "ScheduleFile",
    "Scheduler",
    "SchedulerSpec",
    "SchedulerSpecError",
    "SearchReport",
    "SeededScheduler",
    "Snapshot",
    "SpecError",
    "Step",
    "Strategy",
    "Violation",
    "add_scheduler_option",
    "audit_rate",
    "check_linearizable",
    "count_traces",
    "dependent",
    "draw_spec",
    "dump",
    "explore",
    "explore_dfs",
    "explore_dpor",
    "explore_with",
    "find_counterexample",
    "foata",
    "get_scenario",
    "legacy_scheduler",
    "load",
    "mermaid",
    "outcome_steps",
    "parse_scheduler",
    "preemptions",
    "run_schedule",
    "scenario_from_spec",
    "scenario_traces",
    "scheduler_names",
    "schedulers_help",
    "short",
    "swimlane",
    "trace_of",
    "with_audit",
]
