"""``meerkat-ref conform --adapter 'COMMAND'``: the engine over a port, and a report per clause.

The adapter (``spec/ADAPTER.md``) is started from ``shlex.split(COMMAND)``,
never through a shell, and driven as an ``AdapterTarget``: the same target
protocol, engine, rules and scenarios ``meerkat-ref check`` uses in process.
Phases, in order:

1. ``sequential vectors``: the model's worked examples, malformed inputs, the
   hooks cases (only if the adapter offers scheduling hooks) and the seeded
   random sequences of ``spec/vectors`` (generated here from the model, which
   ``meerkat-ref vectors --check`` proves identical to the files);
2. ``random sequences``: model-driven random sequences (``--seed``);
3. ``concurrent vectors (hooks)``: each concurrent vector's schedule replayed
   through the adapter's scheduling hooks, reported as followed exactly or
   only where the port's points allowed;
4. ``concurrent search (hooks)``: every named scenario explored by each
   scheduler of a portfolio, in order (``portfolio``): by default an
   exhaustive search, then ``--search-runs`` seeded PCT and random
   schedules each.  The exhaustive search is DPOR, every behaviour once,
   when the adapter declares its footprints (capability ``footprints``,
   [WIRE-FOOTPRINTS]); else the DFS within the preemption bound
   ``--bound`` (``--search`` picks either; at most ``--max-schedules``
   schedules a scenario);
   ``--scheduler NAME[:k=v,...]``, repeated, names the portfolio instead
   (the engine's ``SCHEDULERS``: ``--scheduler dpor --scheduler pct:runs=50``);
5. ``concurrent free-running``: each scenario ``--free-runs`` times, the
   adapter interleaving as it will.

Every concurrent run is checked with every rule of the monitor, step by step
(``meerkat_ref.oracle.engine._monitor``), and for linearizability after a
restart.  The report lists, per clause, the checks made and the failures, and
for each failing clause its rule, quoted from ``spec/`` (``rule_quote``), and
its best counterexample with the request lines that replay it (``--json``:
the same as JSON; ``--junit-xml FILE``: one test case per clause; ``--html
DIR``: each failure controlled through the hooks redrawn as a page, see
``_outputs``).  Exit status: 0 all passed, 1 a failure or a protocol error,
2 bad usage.  A protocol error (a malformed line, an adapter that dies, a
control command not answered in time) stops the run; what was found before
it is kept.  A service call never answered is not a protocol error: it is
pending, a LIVENESS failure where the model answers it.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import trio

from ..._spec import spec_dir
from ...registry._values import Json
from ...report import junit_xml, output_problem, write_text
from ..engine import (
    RULES,
    SCENARIOS,
    Choice,
    ReplayStrategy,
    RunOutcome,
    Scenario,
    Scheduler,
    SchedulerSpec,
    SeededScheduler,
    add_scheduler_option,
    explore_with,
    get_scenario,
    parse_scheduler,
    run_schedule,
    scenario_from_spec,
)
from ..engine._cases import (
    Case,
    example_cases,
    expected_steps,
    needs_exit,
    needs_faults,
    random_cases,
)
from ..engine._sequential import REPLAY_HOW, run_case, shrink
from ..targets import VECTORS_FORMAT, ProtocolError, Target, adapter_target
from ._outputs import Drawn, draw_failures, junit_cases
from ._report import Failure, Phase, Report, renumber

__all__ = [
    "NEEDS_EVENTS",
    "NEEDS_EXIT",
    "NEEDS_FAULTS",
    "NEEDS_POINTS",
    "SEARCHES",
    "Options",
    "ProtocolError",
    "Report",
    "Request",
    "add_arguments",
    "capability_gaps",
    "conform",
    "conform_target",
    "load_concurrent",
    "parse_request",
    "portfolio",
    "renumber",
    "run",
    "schedule_cap",
    "unmet_need",
]


@dataclass(frozen=True)
class Options:
    timeout: float = 10.0
    seed: int = 1
    random_cases: int = 8
    random_steps: int = 30
    bound: int | None = 0  # the bounded DFS's preemption bound per scenario
    max_schedules: int | None = None  # per scenario, for the exhaustive search; None: its own
    search: str = "auto"  # the exhaustive search: dpor, dfs, or auto (``exhaustive``)
    search_runs: int = 8
    free_runs: int = 10
    shrink_budget: int = 40
    scenarios: tuple[str, ...] = ()  # default: every named scenario
    schedulers: tuple[SchedulerSpec, ...] = ()  # the search's portfolio; () : from the above


SEARCHES = ("auto", "dpor", "dfs")
"""``--search``: ``auto`` is DPOR over an adapter that declares its footprints, else ``dfs``."""

MAX_SCHEDULES = {"dpor": 10_000, "dfs": 400}
"""The exhaustive search's default cap per scenario.  DPOR explores each behaviour once, and
every named scenario has fewer than 6,000 over the reference's declaration, so its cap only
stops a port whose declaration is so coarse that the search would run for hours; the bounded
DFS re-runs behaviours, and its cap keeps conform's default run to minutes."""


def exhaustive(opts: Options, offered: frozenset[str]) -> str:
    """The exhaustive search conform runs over an adapter that offered ``offered``.

    ``auto``: DPOR if the adapter declares its footprints.  Without a
    declaration DPOR must take every step as touching everything, which
    over a real scenario runs thousands of schedules where the bounded DFS
    runs tens, so a port that declares nothing keeps the bounded DFS.
    Why DPOR when it can: the bounded DFS leaves out every schedule with
    more preemptions than the bound, and bugs of three calls need them
    (an interrupt that frees a turn's slot, a gate dropped before the
    archive's stop); DPOR leaves out none.
    """
    if opts.search != "auto":
        return opts.search
    return "dpor" if "footprints" in offered else "dfs"


def schedule_cap(opts: Options, spec: SchedulerSpec) -> int:
    """Schedules the exhaustive scheduler ``spec`` runs per scenario at most (0: skipped)."""
    if opts.max_schedules is not None:
        return opts.max_schedules
    return MAX_SCHEDULES["dpor" if spec.name == "dpor" else "dfs"]


def portfolio(opts: Options, offered: frozenset[str] = frozenset()) -> list[SchedulerSpec]:
    """The schedulers of the concurrent search, in the order they run over every scenario.

    ``opts.schedulers`` if given; else the exhaustive search (``exhaustive``:
    DPOR, or the DFS under ``bound``; skipped if its cap is 0), then
    ``search_runs`` seeded runs, PCT (depth 3) on seeds ``seed``,
    ``seed + 2``, ... and random on ``seed + 1``, ``seed + 3``, ...: the
    seeds conform has always used.  An exhaustive scheduler stops at its
    cap (``schedule_cap``).
    """
    if opts.schedulers:
        return [s for s in opts.schedulers if not s.kind.exhaustive or schedule_cap(opts, s)]
    if exhaustive(opts, offered) == "dpor":
        first = parse_scheduler("dpor")
    else:
        first = parse_scheduler("dfs" if opts.bound is None else f"dfs:bound={opts.bound}")
    out = [first] if schedule_cap(opts, first) > 0 else []
    pct, rand = (opts.search_runs + 1) // 2, opts.search_runs // 2
    if pct:
        out.append(parse_scheduler(f"pct:runs={pct},seed={opts.seed},step=2,depth=3"))
    if rand:
        out.append(parse_scheduler(f"random:runs={rand},seed={opts.seed + 1},step=2"))
    return out


CONTROLLED_HOW = (
    "controlled through the hooks: send the lines in order to a fresh adapter, waiting "
    "for the answer to each open, settle, control, release, restart, at_once and "
    "observe_store line; the adapter is deterministic under control, so the same "
    "lines give the same run"
)
FOLLOWED_HOW = (
    "controlled through the hooks, following the recorded schedule only where this "
    "adapter's scheduling points allowed (they differ from the reference's): the lines "
    "replay this run exactly all the same"
)
FREE_HOW = (
    "free-running: the lines that were sent, in order; the interleaving was the "
    "adapter's, so a replay may not hit it again"
)


def _history_text(outcome: RunOutcome) -> str:
    lines = []
    for c in outcome.history:
        result = c.result if c.responded is not None else "(no answer)"
        lines.append(f"    {c.client}: {c.text()} -> {result} @[{c.invoked},{c.responded}]")
    return "\n".join(lines)


def _report_run(report: Report, phase: Phase, case: str, outcome: RunOutcome, how: str,
                scenario_spec: Json = None) -> None:
    report.check(RULES)
    rules: dict[str, str] = {}
    for v in outcome.violations:
        rules.setdefault(v.rule, v.message)
    if rules:
        phase.failures += 1
    for rule, message in rules.items():
        report.fail(Failure(
            clause=rule,
            phase=phase.name,
            case=case,
            message=f"{message}\n  history:\n{_history_text(outcome)}",
            lines=outcome.lines,
            how=how,
            schedule=[
                "crash" if c.crash else c.label + (" (fault)" if c.fault else "")
                for c in outcome.choices
            ],
            choices=[c.to_json() for c in outcome.choices],
            scenario=scenario_spec,
        ))


@dataclass
class _Conform:
    target: Target
    opts: Options
    report: Report
    concurrent: Sequence[dict[str, Json]]
    _sent_before: int = 0

    def phase(self, name: str, note: str = "") -> Phase:
        phase = Phase(name, note=note)
        self.report.phases.append(phase)
        self._sent_before = self.target.requests
        return phase

    def done(self, phase: Phase, started: float) -> None:
        phase.seconds = time.perf_counter() - started
        phase.requests = self.target.requests - self._sent_before

    async def sequential(self, name: str, cases: Sequence[Case]) -> None:
        phase = self.phase(name)
        started = time.perf_counter()
        notes = []
        if "faults" not in self.target.capabilities:
            runnable = [c for c in cases if not needs_faults(c)]
            if len(runnable) < len(cases):
                notes.append(f"{len(cases) - len(runnable)} case(s) not run: they need store "
                             "faults (fail_next_save, capability faults) [SAVE-FAILED]")
            cases = runnable
        if "points" not in self.target.capabilities:
            skipped = [c for c in cases if c.hooks]
            cases = [c for c in cases if not c.hooks]
            if skipped:
                notes.append(f"the adapter offers no scheduling hooks: {len(skipped)} hooks "
                             f"case{'s' if len(skipped) > 1 else ''} not run "
                             f"({', '.join(c.name for c in skipped)})")
        if "exit" not in self.target.capabilities:
            skipped = [c for c in cases if needs_exit(c)]
            cases = [c for c in cases if not needs_exit(c)]
            if skipped:
                notes.append(f"{len(skipped)} case(s) not run: they leave the service "
                             "(exit, capability exit) [SHUTDOWN]")
        if "events" not in self.target.capabilities:
            notes.append("the adapter offers no events: what each step publishes is not "
                         "compared [EVENTS]")
        phase.note = "; ".join(notes)
        try:
            for case in cases:
                phase.cases += 1
                found = await run_case(self.target, case, expected_steps(case), self.report.check)
                if found is None:
                    continue
                phase.failures += 1
                small_case, small = await shrink(self.target, case, found,
                                                 self.opts.shrink_budget)
                if len(small.lines) > len(found.lines):
                    small_case, small = case, found
                note = ""
                if case.ops and len(small_case.ops) < found.index + 1:
                    note = (f"\n  (shrunk from {found.index + 1} operations to "
                            f"{len(small_case.ops)})")
                self.report.fail(Failure(small.clause, name, case.name, small.message + note,
                                         small.lines, REPLAY_HOW))
        finally:
            self.done(phase, started)

    async def vectors(self) -> None:
        phase = self.phase("concurrent vectors (hooks)")
        started = time.perf_counter()
        followed = 0
        try:
            for case in self.concurrent:
                scenario = vector_scenario(case)
                choices = [Choice.from_json(c) for c in case["schedule"]]
                strategy = ReplayStrategy(choices, lenient=True)
                phase.cases += 1
                outcome = await run_schedule(self.target, scenario, strategy)
                exact = strategy.exact
                followed += not exact
                _report_run(self.report, phase, f"{case['name']} (scenario {case['scenario']})",
                            outcome, CONTROLLED_HOW if exact else FOLLOWED_HOW, case["spec"])
        finally:
            self.done(phase, started)
        total = len(self.concurrent)
        phase.note = (f"{total - followed} of {total} schedules followed exactly"
                      + (f"; {followed} only where the adapter's points allowed"
                         if followed else ""))

    async def search(self, scenarios: Sequence[Scenario]) -> None:
        opts = self.opts
        offered = self.target.capabilities
        schedulers = portfolio(opts, offered)
        if opts.schedulers:
            caps = sorted({schedule_cap(opts, s) for s in schedulers if s.kind.exhaustive})
            about = (f"every scenario with each of: {', '.join(s.text for s in schedulers)}"
                     + (f" (an exhaustive one at most {' or '.join(map(str, caps))} schedules "
                        "each)" if caps else ""))
        else:
            last = opts.seed + opts.search_runs - 1
            first = schedulers[0] if schedulers and schedulers[0].kind.exhaustive else None
            if first is None:
                about = ""
            elif first.name == "dpor":
                why = ("the adapter declares its footprints" if "footprints" in offered
                       else "--search dpor, with no footprints declared: every step "
                       "touches everything")
                about = (f"every scenario by DPOR, every behaviour once ({why}; at most "
                         f"{schedule_cap(opts, first)} schedules each)")
            else:
                shown = "none" if opts.bound is None else str(opts.bound)
                about = (f"every scenario exhaustively within preemption bound {shown} (at "
                         f"most {schedule_cap(opts, first)} schedules each)")
            if opts.search_runs:
                runs = (f"{opts.search_runs} PCT and random schedules each (seeds "
                        f"{opts.seed}..{last})")
                about = f"{about}, then {runs}" if about else runs
        phase = self.phase("concurrent search (hooks)", about)
        started = time.perf_counter()
        try:
            for spec in schedulers:
                for scenario in scenarios:
                    await self._explore(phase, spec, scenario)
        finally:
            self.done(phase, started)

    async def _explore(self, phase: Phase, spec: SchedulerSpec, scenario: Scenario) -> None:
        """One scheduler over one scenario: an exhaustive one reported as one search (its
        shortest counterexample), a sampler's runs each as a case of its own."""
        scheduler = spec.make()
        runs = 0

        def seen(outcome: RunOutcome) -> None:
            nonlocal runs
            runs += 1
            phase.cases += 1
            _report_run(self.report, phase, f"{scenario.name} ({_run_name(scheduler, runs)})",
                        outcome, CONTROLLED_HOW, scenario.to_spec())

        if not scheduler.exhaustive:
            await explore_with(self.target, scenario, scheduler, seen=seen)
            return
        search = await explore_with(self.target, scenario, scheduler,
                                    max_schedules=schedule_cap(self.opts, spec))
        self.report.searches.append(search.to_json())
        self.report.check(RULES, search.schedules)
        phase.cases += search.schedules
        if search.unchecked and search.unchecked not in phase.note:
            phase.note += f"; {scenario.name}: {search.unchecked}"
        first = search.first()  # the shortest counterexample the search met
        if first is not None:
            _report_run(self.report, phase, f"{scenario.name} ({spec.name})", first,
                        CONTROLLED_HOW, scenario.to_spec())

    async def free(self, scenarios: Sequence[Scenario]) -> None:
        phase = self.phase("concurrent free-running")
        started = time.perf_counter()
        try:
            for scenario in scenarios:
                for i in range(self.opts.free_runs):
                    phase.cases += 1
                    outcome = await run_schedule(self.target, scenario, None)
                    _report_run(self.report, phase, f"{scenario.name} (run {i + 1})", outcome,
                                FREE_HOW)
        finally:
            self.done(phase, started)


def _run_name(scheduler: Scheduler, n: int) -> str:
    """A sampler's run as conform names it: ``pct, seed 3``; ``hypothesis, run 2``."""
    if isinstance(scheduler, SeededScheduler):
        return f"{scheduler.name}, seed {scheduler.seed}"
    return f"{scheduler.name}, run {n}"


def _clauses_of(cases: Iterable[Case]) -> set[str]:
    """Every clause the steps of ``cases`` check."""
    return {clause for case in cases for step in expected_steps(case) for clause in step.checks}


NEEDS_FAULTS = "needs store faults (fail_next_save), and the adapter does not offer the faults " \
    "capability"
NEEDS_POINTS = "needs the scheduling hooks, and the adapter does not offer the points capability"
NEEDS_EXIT = "needs a graceful exit of the service (exit), and the adapter does not offer the " \
    "exit capability"
NEEDS_EVENTS = "needs the events settle reports, and the adapter does not offer the events " \
    "capability"


def unmet_need(case: Case, offered: frozenset[str]) -> str | None:
    """Why ``case`` cannot run on an adapter that offers ``offered`` (``None``: it can)."""
    if needs_faults(case) and "faults" not in offered:
        return NEEDS_FAULTS
    if case.hooks and "points" not in offered:
        return NEEDS_POINTS
    if needs_exit(case) and "exit" not in offered:
        return NEEDS_EXIT
    return None


def capability_gaps(opts: Options, offered: frozenset[str]) -> dict[str, str]:
    """Clauses that only checks needing a capability not ``offered`` reach, each with why.

    Worked out from the plan, before anything runs: every sequential case
    conform would run (the vectors, and the random sequences the options
    ask for), those the adapter's capabilities leave out, and the rules
    every concurrent run checks.  A clause here is never checked against
    this adapter, however the run goes.  Without ``events`` every case runs,
    but what its steps publish is not compared: EVENTS is never checked.
    """
    def needs(case: Case) -> str | None:
        return unmet_need(case, offered)

    planned = [*example_cases(), *random_cases()]
    if opts.random_cases > 0:
        planned += random_cases(opts.seed, opts.random_cases, opts.random_steps,
                                "conform-random", faults="faults" in offered)
    runnable = _clauses_of(c for c in planned if needs(c) is None)
    concurrent = opts.free_runs > 0 or ("points" in offered and bool(portfolio(opts, offered)))
    reached = runnable | (set(RULES) if concurrent else set())
    gaps: dict[str, str] = {}
    if "events" not in offered and "EVENTS" in reached:  # its steps run, unchecked on events
        reached.discard("EVENTS")
        gaps["EVENTS"] = NEEDS_EVENTS
    for case in planned:
        why = needs(case)
        if why is not None:
            for clause in sorted(_clauses_of([case]) - reached):
                gaps.setdefault(clause, why)
    return gaps


def vector_scenario(case: dict[str, Json]) -> Scenario:
    """A concurrent vector's scenario, rebuilt from its spec."""
    return scenario_from_spec(case["spec"], str(case["scenario"]))


async def conform_target(target: Target, opts: Options, report: Report,
                         concurrent: Sequence[dict[str, Json]]) -> None:
    """Every phase against ``target``; a ``ProtocolError`` stops it, keeping what was found."""
    run = _Conform(target, opts, report, concurrent)
    for clause, why in capability_gaps(opts, target.capabilities).items():
        report.cannot_check([clause], why)
    names = opts.scenarios or tuple(s.name for s in SCENARIOS)
    scenarios = [get_scenario(n) for n in names]
    hooks = "points" in target.capabilities
    plan: list[tuple[str, Callable[[], Awaitable[None]], bool]] = [
        ("sequential vectors",
         lambda: run.sequential("sequential vectors", (*example_cases(), *random_cases())), True),
        (f"random sequences (seed {opts.seed})",
         lambda: run.sequential(
             f"random sequences (seed {opts.seed})",
             random_cases(opts.seed, opts.random_cases, opts.random_steps, "conform-random",
                          faults="faults" in target.capabilities)),
         opts.random_cases > 0),
        ("concurrent vectors (hooks)", run.vectors, True),
        ("concurrent search (hooks)", lambda: run.search(scenarios),
         bool(portfolio(opts, target.capabilities))),
        ("concurrent free-running", lambda: run.free(scenarios), opts.free_runs > 0),
    ]
    phase = "start"
    try:
        for name, run_phase, enabled in plan:
            phase = name
            if "(hooks)" in name and not hooks:
                report.phases.append(Phase(name, ran=False,
                                           note="the adapter offers no scheduling hooks"))
                continue
            if not enabled:
                report.phases.append(Phase(name, ran=False, note="disabled"))
                continue
            await run_phase()
    except ProtocolError as exc:
        report.protocol_error(phase, str(exc))
        done = {p.name for p in report.phases}
        for name, _, _ in plan:
            if name not in done:
                report.phases.append(Phase(name, ran=False, note="not run: protocol error"))
    if not hooks:
        free_phase = next((p for p in report.phases if p.name == "concurrent free-running"), None)
        if free_phase is not None and free_phase.ran:
            free_phase.note = (
                "no scheduling hooks: concurrent checks ran free-running only, so narrow "
                "windows (like the seed's) may be missed"
            )
    report.finish()


def load_concurrent(path: Path) -> list[dict[str, Json]]:
    """The concurrent vectors of a ``concurrent.json``; ``ValueError`` says what is wrong."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != VECTORS_FORMAT:
        raise ValueError(f"{path}: not a {VECTORS_FORMAT} file")
    if doc.get("kind") != "concurrent" or not isinstance(doc.get("cases"), list):
        raise ValueError(f"{path}: not concurrent vectors")
    need = ("name", "scenario", "spec", "schedule")
    for i, case in enumerate(doc["cases"]):
        if not isinstance(case, dict) or any(k not in case for k in need):
            raise ValueError(f"{path}: case {i} lacks one of {', '.join(need)}")
    cases: list[dict[str, Json]] = doc["cases"]
    return cases


def conform(argv: Sequence[str], opts: Options = Options(),
            concurrent: Sequence[dict[str, Json]] | None = None) -> Report:
    """Run every phase against the adapter ``argv``; never raises for the adapter's faults.

    ``concurrent``: the concurrent vectors (default: the installed ``spec/vectors``).
    """
    if concurrent is None:
        concurrent = load_concurrent(spec_dir() / "vectors" / "concurrent.json")
    report = Report(adapter=shlex.join(argv))
    started = time.perf_counter()

    async def main() -> None:
        try:
            async with adapter_target(argv, opts.timeout) as target:
                report.hello = target.hello
                await conform_target(target, opts, report, concurrent)
        except ProtocolError as exc:
            report.protocol_error(report.phases[-1].name if report.phases else "hello", str(exc))

    trio.run(main)
    report.finish()
    report.seconds = time.perf_counter() - started
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--adapter", required=True, metavar="COMMAND",
                        help="the adapter's command line (split like a shell would; no shell)")
    parser.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                        help="how long to wait for any one answer (default 10)")
    parser.add_argument("--seed", type=int, default=1,
                        help="seed of the random sequences and schedules (default 1)")
    parser.add_argument("--random-cases", type=int, default=8, metavar="N",
                        help="model-driven random sequences (default 8; 0: skip)")
    parser.add_argument("--random-steps", type=int, default=30, metavar="N",
                        help="operations per random sequence (default 30)")
    add_scheduler_option(parser, "a scheduler of the concurrent search's portfolio "
                         "(repeatable; each explores every scenario, in the order given; "
                         "default: the exhaustive search of --search, then --search-runs PCT "
                         "and random runs)", repeatable=True)
    parser.add_argument("--search", default=None, metavar="|".join(SEARCHES),
                        help="the exhaustive search per scenario: dpor (every behaviour once), "
                        "dfs (within --bound), or auto (default): dpor if the adapter declares "
                        "its footprints, else dfs (not with --scheduler)")
    parser.add_argument("--bound", type=int, default=None, metavar="N",
                        help="preemption bound of the dfs search per scenario (default 0; "
                        "given, the search is dfs; not with --scheduler)")
    parser.add_argument("--max-schedules", type=int, default=None, metavar="N",
                        help="schedules the exhaustive search runs per scenario at most "
                        f"(default {MAX_SCHEDULES['dpor']:,} for dpor, {MAX_SCHEDULES['dfs']} "
                        "for dfs; 0: skip it)")
    parser.add_argument("--search-runs", type=int, default=None, metavar="N",
                        help="PCT and random schedules per scenario (default 8; 0: skip; not "
                        "with --scheduler)")
    parser.add_argument("--free-runs", type=int, default=10, metavar="N",
                        help="free-running runs per scenario (default 10; 0: skip)")
    parser.add_argument("--shrink-budget", type=int, default=40, metavar="N",
                        help="adapter runs spent shrinking each failing sequence (default 40)")
    parser.add_argument("--scenario", action="append", default=None, metavar="NAME",
                        help="only this scenario in the concurrent phases (repeatable)")
    parser.add_argument("--vectors", default=None, metavar="DIR",
                        help="read the concurrent vectors from DIR/concurrent.json instead of "
                        "the installed spec/vectors")
    parser.add_argument("--json", action="store_true", help="machine-readable report")
    parser.add_argument("--html", default=None, metavar="DIR",
                        help="re-run each failure that was controlled through the hooks on a "
                        "fresh adapter and write it as an HTML report into DIR, with its "
                        "schedule file for meerkat-ref replay --adapter")
    parser.add_argument("--junit-xml", default=None, metavar="FILE",
                        help="write the results as JUnit XML for CI: one test case per clause, "
                        "the counterexample and how to replay it in each failure")


@dataclass(frozen=True)
class Request:
    """What to run, read from the command line's options (or the pytest plugin's)."""

    argv: list[str]
    opts: Options
    concurrent: list[dict[str, Json]] | None  # None: the installed spec/vectors


def parse_request(args: argparse.Namespace) -> Request:
    """The adapter, options and vectors ``args`` ask for; ``ValueError`` says what is wrong."""
    try:
        argv = shlex.split(args.adapter)
    except ValueError as exc:
        raise ValueError(f"--adapter: {exc}") from None
    if not argv:
        raise ValueError("--adapter is empty")
    schedulers: tuple[SchedulerSpec, ...] = tuple(getattr(args, "scheduler", None) or ())
    search = getattr(args, "search", None)
    if schedulers and (args.bound is not None or args.search_runs is not None
                       or search is not None):
        raise ValueError("--scheduler names the concurrent search's portfolio: give it "
                         "without --search, --bound or --search-runs (e.g. --scheduler "
                         "dfs:bound=0 --scheduler pct:runs=4)")
    if search is not None and search not in SEARCHES:
        raise ValueError(f"--search {search!r}: one of {', '.join(SEARCHES)}")
    if search == "dpor" and args.bound is not None:
        raise ValueError("--bound bounds the dfs search: not with --search dpor")
    if search is None:  # a bound asks for the bounded DFS
        search = "auto" if args.bound is None else "dfs"
    bound = 0 if args.bound is None else args.bound
    search_runs = Options.search_runs if args.search_runs is None else args.search_runs
    numbers = (args.random_cases, args.random_steps, search_runs, args.free_runs,
               args.shrink_budget, bound, args.max_schedules or 0)
    if not args.timeout > 0 or any(n < 0 for n in numbers):
        raise ValueError("--timeout must be positive and counts not negative")
    for name in args.scenario or ():
        get_scenario(name)
    opts = Options(
        timeout=args.timeout, seed=args.seed, random_cases=args.random_cases,
        random_steps=args.random_steps, bound=bound, max_schedules=args.max_schedules,
        search=search,
        search_runs=search_runs, free_runs=args.free_runs,
        shrink_budget=args.shrink_budget, scenarios=tuple(args.scenario or ()),
        schedulers=schedulers,
    )
    concurrent = None
    if args.vectors is not None:
        try:
            concurrent = load_concurrent(Path(args.vectors) / "concurrent.json")
        except ValueError as exc:
            raise ValueError(f"--vectors: {exc}") from None
    return Request(argv, opts, concurrent)


def run(args: argparse.Namespace) -> int:
    for option, value, directory in (("--html", args.html, True),
                                     ("--junit-xml", args.junit_xml, False)):
        problem = None if value is None else output_problem(value, directory=directory)
        if problem is not None:
            print(f"meerkat-ref conform: {option} {value!r}: {problem}", file=sys.stderr)
            return 2
    try:
        request = parse_request(args)
    except ValueError as exc:
        print(f"meerkat-ref conform: {exc}", file=sys.stderr)
        return 2
    argv, opts, concurrent = request.argv, request.opts, request.concurrent
    report = conform(argv, opts, concurrent)
    if args.json:
        print(json.dumps(report.to_json(), indent=1))
    else:
        print(report.text())
    if report.protocol:
        print(f"meerkat-ref conform: PROTOCOL ERROR {report.protocol[0]}", file=sys.stderr)
    drawn: list[Drawn] = []
    if args.html is not None:
        drawn = draw_failures(argv, opts.timeout, report, args.html)
        for d in drawn:
            print(f"{d.name}: " + (d.replay or d.problem), file=sys.stderr)
        if not drawn:
            print("no failure controlled through the hooks: no HTML report written",
                  file=sys.stderr)
    if args.junit_xml is not None:
        path = write_text(args.junit_xml,
                          junit_xml(f"meerkat-ref conform {report.adapter}",
                                    junit_cases(report, drawn)))
        print(f"JUnit XML written to {path}", file=sys.stderr)
    return 0 if report.ok else 1



