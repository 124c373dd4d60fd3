"""``meerkat-ref``: the command line.

    meerkat-ref check [--adapter CMD | --variant V] [--bound N] [--scenario NAME]...
                      [--store DIR | --memory] [--json] [--out DIR]
    meerkat-ref replay FILE [--adapter CMD]
    meerkat-ref scenarios
    meerkat-ref tour [--store FILE]
    meerkat-ref vectors [--out DIR] [--check]
    meerkat-ref conform --adapter CMD [...]
    meerkat-ref sweep [--scope ci|default|full] [--jobs N] [--shard I/N] [--dask ADDRESS]

``check`` runs the engine's exhaustive search over every named scenario, on
the reference in this process or, with ``--adapter``, on a port through its
adapter, and exits 1 on any violation.  With ``--variant seed-0.4.0`` it
opens each of the seed's windows alone, finds a counterexample through each,
prints it as a swimlane and a Mermaid diagram and writes its schedule for
``replay``.  Exit codes: 0 clean, 1 violations, 2 bad usage or input.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import trio

from .oracle.check import explore_all
from .oracle.engine import (
    SCENARIOS,
    ReplayStrategy,
    RunOutcome,
    Scenario,
    ScheduleDiverged,
    ScheduleError,
    SearchReport,
    dump,
    get_scenario,
    load,
    mermaid,
    run_schedule,
    scenario_from_spec,
    swimlane,
)
from .oracle.targets import ProtocolError, Target, adapter_target
from .testing import Window
from .variants import Variant

T = TypeVar("T")


def _table(reports: Sequence[SearchReport]) -> str:
    head = ("scenario", "search", "bound", "schedules", "pruned", "states", "violations",
            "seconds")
    rows = [head] + [
        (
            r.scenario,
            r.strategy.split("(")[0] + (" exhausted" if r.exhausted else " (cut)"),
            "none" if r.bound is None else str(r.bound),
            str(r.schedules),
            str(r.pruned),
            str(r.states),
            str(r.violations),
            f"{r.seconds:.1f}",
        )
        for r in reports
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = [
        "  ".join(c.ljust(widths[i]) if i < 3 else c.rjust(widths[i]) for i, c in enumerate(row))
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _progress(quiet: bool) -> Callable[[SearchReport], None]:
    def show(report: SearchReport) -> None:
        if not quiet:
            print(
                f"  {report.scenario}: {report.schedules} schedules, {report.pruned} pruned, "
                f"{report.violations} violations, {report.seconds:.0f}s",
                file=sys.stderr,
                flush=True,
            )

    return show


async def _with_target(args: argparse.Namespace, variant: Variant,
                       fn: Callable[[Target], Awaitable[T]]) -> T:
    if args.adapter:
        async with adapter_target(shlex.split(args.adapter), args.timeout) as port:
            return await fn(port)
    store_kind = "memory" if args.memory else "sqlite"
    async with variant.target(store=store_kind, store_dir=args.store) as local:
        return await fn(local)


def _check_scenarios(args: argparse.Namespace, variant: Variant) -> int:
    names = args.scenario or [s.name for s in SCENARIOS]
    scenarios = [get_scenario(n) for n in names]
    store_kind = "adapter" if args.adapter else ("memory" if args.memory else "sqlite")

    def started(scenario: Scenario) -> None:
        if not args.json:
            print(f"exploring {scenario.name} ({scenario.about})...", file=sys.stderr, flush=True)

    async def run(target: Target) -> list[SearchReport]:
        return await explore_all(
            target, scenarios, bound=args.bound, search=args.search,
            store=store_kind, started=started, progress=_progress(args.json),
        )

    reports = trio.run(_with_target, args, variant, run)
    what = reports[0].variant if reports else variant.name
    if args.json:
        print(json.dumps({"variant": what, "results": [r.to_json() for r in reports]}, indent=1))
    else:
        print(_table(reports))
        total = sum(r.schedules for r in reports)
        bad = sum(r.violations for r in reports)
        print(f"\n{what}: {total} schedules, {bad} violations ({store_kind} store)")
        for r in reports:
            first = r.first()
            if first is not None:
                _show_counterexample(first, store_kind, args.out, r.scenario)
    return 1 if any(r.violations for r in reports) else 0


def _show_counterexample(outcome: RunOutcome, store: str, out: str, stem: str) -> str:
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, f"{stem}.json")
    scenario = get_scenario(outcome.scenario) if outcome.scenario in {
        s.name for s in SCENARIOS} else None
    spec = scenario.to_spec() if scenario is not None else None
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(dump(outcome, store if store != "adapter" else "memory", spec))
    print(f"\n=== {outcome.variant} / {outcome.scenario}: {len(outcome.steps)} steps ===")
    print(swimlane(outcome))
    print("\n```mermaid")
    print(mermaid(outcome))
    print("```")
    print(f"schedule written to {path}; replay with: meerkat-ref replay {path}")
    return path


def _check_seed(args: argparse.Namespace) -> int:
    """Open each window alone and find a counterexample through it."""
    from .specgen.vectors import window_counterexample

    store_kind = "memory" if args.memory else "sqlite"
    found_all = True
    summary: list[tuple[Window, RunOutcome | None, int, float]] = []
    for window in Window:
        found, tried, seconds = window_counterexample(
            window, store=store_kind, max_bound=2 if args.bound is None else args.bound,
            store_dir=args.store,
        )
        summary.append((window, found, tried, seconds))
        if found is None:
            found_all = False
            continue
        if not args.json:
            _show_counterexample(
                found, store_kind, args.out, f"window-{window.number}-{window.value}"
            )
    if args.json:
        print(json.dumps([
            {
                "window": w.value,
                "found": o is not None,
                "scenario": o.scenario if o else None,
                "rules": sorted({v.rule for v in o.violations}) if o else [],
                "schedules": n,
                "seconds": round(t, 3),
            }
            for w, o, n, t in summary
        ], indent=1))
    else:
        print(f"\n{'window':<23} {'scenario':<27} {'rule(s)':<24} {'schedules':>9}  seconds")
        for w, o, n, t in summary:
            rules = ",".join(sorted({v.rule for v in o.violations})) if o else "NOT FOUND"
            print(
                f"{w.number} {w.value:<21} {(o.scenario if o else '-'):<27} {rules:<24} "
                f"{n:>9}  {t:7.2f}"
            )
    # The seed is expected to fail: exit 1 when the windows are found, as for any violation.
    return 1 if found_all or any(o for _, o, _, _ in summary) else 0


def cmd_check(args: argparse.Namespace) -> int:
    try:
        variant = Variant.parse(args.variant)
        for name in args.scenario or []:
            get_scenario(name)
        if args.adapter is not None and not shlex.split(args.adapter):
            raise ValueError("--adapter is empty")
    except ValueError as exc:
        print(f"meerkat-ref: {exc}", file=sys.stderr)
        return 2
    if args.store is not None and not os.path.isdir(args.store):
        print(f"meerkat-ref: --store {args.store!r} is not a directory", file=sys.stderr)
        return 2
    if variant.name == "seed-0.4.0" and not args.adapter:
        return _check_seed(args)
    try:
        return _check_scenarios(args, variant)
    except ProtocolError as exc:
        print(f"meerkat-ref: the adapter broke the protocol: {exc}", file=sys.stderr)
        return 1


def cmd_replay(args: argparse.Namespace) -> int:
    try:
        with open(args.file, encoding="utf-8") as fh:
            schedule = load(fh.read())
        if schedule.spec is not None:
            scenario = scenario_from_spec(schedule.spec, schedule.scenario)
        else:
            scenario = get_scenario(schedule.scenario)
        variant = Variant.parse(schedule.variant) if not args.adapter else Variant("reference")
    except OSError as exc:
        print(f"meerkat-ref: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    except (ScheduleError, ValueError) as exc:
        print(f"meerkat-ref: {exc}", file=sys.stderr)
        return 2
    args.memory = schedule.store == "memory"
    args.store = None
    args.timeout = 10.0

    async def run(target: Target) -> RunOutcome:
        return await run_schedule(target, scenario, ReplayStrategy(schedule.choices))

    try:
        outcome = trio.run(_with_target, args, variant, run)
    except ScheduleDiverged as exc:
        print(f"meerkat-ref: SCHEDULE_DIVERGED: {exc}", file=sys.stderr)
        return 2
    except ProtocolError as exc:
        print(f"meerkat-ref: the adapter broke the protocol: {exc}", file=sys.stderr)
        return 1
    print(swimlane(outcome))
    rules = tuple(v.rule for v in outcome.violations)
    same = outcome.choices[: len(schedule.choices)] == list(schedule.choices) and (
        schedule.steps is None or schedule.steps == len(outcome.steps)
    )
    print(
        f"\nreplayed {len(outcome.steps)} steps: "
        + ("same schedule as recorded" if same else "DIFFERENT from the recording")
    )
    if set(rules) != set(schedule.violations):
        print(f"recorded violations {sorted(set(schedule.violations))}, now {sorted(set(rules))}")
    return 1 if outcome.violations else 0


def cmd_scenarios(args: argparse.Namespace) -> int:
    for s in SCENARIOS:
        extra = []
        if s.faults:
            extra.append(f"{s.faults} store fault")
        if s.crashes:
            extra.append(f"{s.crashes} crash")
        clients = ", ".join(name for name, _ in (*s.background, *s.clients))
        print(
            f"{s.name:<28} {s.about}\n{'':<28} tasks: {clients}"
            + (f"; may inject: {', '.join(extra)}" if extra else "")
        )
    return 0


def cmd_tour(args: argparse.Namespace) -> int:
    from .tour import run_tour

    if args.store:
        return run_tour(args.store)
    with tempfile.TemporaryDirectory() as tmp:
        return run_tour(os.path.join(tmp, "tour.sqlite"))


def cmd_vectors(args: argparse.Namespace) -> int:
    from .specgen import vectors

    return vectors.run(args)


def cmd_conform(args: argparse.Namespace) -> int:
    from .oracle import conform

    return conform.run(args)


def cmd_sweep(args: argparse.Namespace) -> int:
    from functools import partial

    from .oracle import sweep
    from .testing import Window

    store = "sqlite" if args.sqlite else "memory"
    try:
        variant = Variant.parse(args.variant)
    except ValueError as exc:
        print(f"meerkat-ref: {exc}", file=sys.stderr)
        return 2
    if variant.name == "seed-0.4.0":  # each window alone: which scenarios expose it
        variants = [Variant.parse(f"seed-0.4.0:{w.value}") for w in Window]
    else:
        variants = [variant]
    return sweep.run(args, [(v.name, partial(v.target, store=store)) for v in variants])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="meerkat-ref", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="explore every named scenario; exit 1 on any violation")
    check.add_argument(
        "--variant",
        default="reference",
        help="reference (default), seed-0.4.0, or seed-0.4.0:<window>[,<window>]",
    )
    check.add_argument(
        "--adapter", default=None, metavar="COMMAND",
        help="explore a port through its adapter instead (split like a shell would; no shell)",
    )
    check.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                       help="with --adapter: how long to wait for any one answer (default 10)")
    check.add_argument(
        "--bound",
        type=int,
        default=None,
        help="a preemption bound, explored by depth-first search (default: none; every "
        "schedule, by DPOR)",
    )
    check.add_argument("--search", default="dpor", choices=("dpor", "dfs"),
                       help="dpor (default) or dfs: plain depth-first, every schedule")
    check.add_argument("--scenario", action="append", help="only this scenario (repeatable)")
    check.add_argument(
        "--store",
        default=None,
        metavar="DIR",
        help="directory to make each run's SQLite file in (removed after the run; "
        "default: the system's temporary directory)",
    )
    check.add_argument(
        "--memory", action="store_true", help="use the memory store instead of SQLite"
    )
    check.add_argument("--json", action="store_true", help="machine-readable output")
    check.add_argument(
        "--out", default="counterexamples", help="where schedules of counterexamples go"
    )
    check.set_defaults(func=cmd_check)
    replay = sub.add_parser("replay", help="re-run a schedule file step for step")
    replay.add_argument("file", help="a schedule file written by check")
    replay.add_argument("--adapter", default=None, metavar="COMMAND",
                        help="replay on a port through its adapter instead of in process")
    replay.set_defaults(func=cmd_replay)
    scen = sub.add_parser("scenarios", help="list the named scenarios")
    scen.set_defaults(func=cmd_scenarios)
    tour = sub.add_parser("tour", help="a short narrated tour of the service on SQLite")
    tour.add_argument("--store", default=None, metavar="FILE",
                      help="the SQLite file to use (default: a temporary one)")
    tour.set_defaults(func=cmd_tour)
    vectors = sub.add_parser(
        "vectors", help="generate the conformance vectors from the model (or --check them)"
    )
    from .specgen.vectors import add_arguments as vectors_arguments

    vectors_arguments(vectors)
    vectors.set_defaults(func=cmd_vectors)
    conform = sub.add_parser(
        "conform", help="judge an implementation through its adapter; exit 1 on any failure"
    )
    from .oracle.conform import add_arguments as conform_arguments

    conform_arguments(conform)
    conform.set_defaults(func=cmd_conform)
    sweep = sub.add_parser(
        "sweep", help="explore every generated small concurrent scenario of a scope in full"
    )
    from .oracle.sweep import add_arguments as sweep_arguments

    sweep_arguments(sweep)
    sweep.set_defaults(func=cmd_sweep)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if (getattr(args, "bound", 0) or 0) < 0:
        print("meerkat-ref: --bound must not be negative", file=sys.stderr)
        return 2
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
