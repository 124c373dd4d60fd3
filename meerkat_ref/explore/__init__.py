"""The explorer: a controlled scheduler, strategies, invariants, scenarios, pictures.

It drives the services only through their seams (``SchedulingPoints``, the
store, the agent builder) and never the other way round: nothing in
``meerkat_ref.service`` imports from here.
"""

from ._control import Choice, ControlledPoints, ScheduleDiverged
from ._dfs import SearchReport, explore_dfs, find_counterexample
from ._draw import mermaid, swimlane
from ._generated import SpecError, draw_spec, scenario_from_spec
from ._monitor import Call, Monitor, Violation
from ._runner import RunOutcome, Step, Variant, run_once
from ._scenarios import SCENARIOS, Scenario, get_scenario
from ._schedule import ScheduleError, dump, load
from ._strategies import HypothesisStrategy, PCTStrategy, RandomStrategy, ReplayStrategy

__all__ = [
    "SCENARIOS",
    "Call",
    "Choice",
    "ControlledPoints",
    "HypothesisStrategy",
    "Monitor",
    "PCTStrategy",
    "RandomStrategy",
    "ReplayStrategy",
    "RunOutcome",
    "Scenario",
    "ScheduleDiverged",
    "ScheduleError",
    "SearchReport",
    "SpecError",
    "Step",
    "Variant",
    "Violation",
    "draw_spec",
    "dump",
    "explore_dfs",
    "find_counterexample",
    "get_scenario",
    "load",
    "mermaid",
    "run_once",
    "scenario_from_spec",
    "swimlane",
]
