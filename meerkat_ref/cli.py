"""``meerkat-ref``: the command line.

    meerkat-ref check [--adapter CMD | --variant V] [--scheduler NAME[:k=v,...]]
                      [--scenario NAME]...
                      [--store KIND[:DIR]] [--json] [--out DIR] [--html DIR]
                      [--junit-xml FILE] [--audit [N|all]]
    meerkat-ref replay FILE [--adapter CMD] [--html DIR]
    meerkat-ref scenarios
    meerkat-ref tour [--store KIND[:DIR]]
    meerkat-ref vectors [--out DIR] [--check]
    meerkat-ref conform --adapter CMD [...]
    meerkat-ref sweep [--scope ci|default|full] [--jobs N] [--shard I/N] [--dask ADDRESS]
                      [--scheduler NAME[:k=v,...]]
                      [--store KIND[:DIR]] [--audit [N|all]]
                      [--ledger FILE | --no-ledger] [--fresh] [--max-scenarios N]

``--store KIND[:DIR]`` means one thing everywhere (``store.parse_store``):
the kind of store the service runs on (``memory``, ``sqlite``, a kind a
package registers, or ``package.module:NAME``), and the directory its
stores are made in.  The old spellings still work, with a line on stderr
saying so: ``check --store DIR`` (now ``--store sqlite:DIR``), ``check
--memory`` (``--store memory``), ``sweep --sqlite`` (``--store sqlite``),
``tour --store FILE`` (a SQLite file, now ``--store sqlite:DIR``).

``check`` runs the engine's exhaustive search over every named scenario, on
the reference in this process or, with ``--adapter``, on a port through its
adapter, and exits 1 on any violation.  ``--scheduler NAME[:k=v,...]`` (the
same option on ``conform`` and ``sweep``; its choices are the engine's
``SCHEDULERS``) picks the search: ``dpor`` by default; the older ``--bound
N`` and ``--search dfs`` still name one (``engine.legacy_scheduler``). With
``--variant seed-0.4.0`` it opens each of the seed's windows alone, finds a
counterexample through each, prints it as a swimlane and a Mermaid diagram
and writes its schedule for ``replay``.  Exit codes: 0 clean, 1 violations,
2 bad usage or input, 3 an error of the oracle itself (a footprint
declaration the audit or the target's seams caught leaving something out:
``--audit``).

Where output goes (issue 13): results on stdout; progress on stderr, in the
form that fits it (``report.make_progress``: a live display on a terminal,
whole lines at a steady cadence on a pipe, JSON lines with ``--json``);
``--html DIR`` writes a report per counterexample, ``--junit-xml FILE`` one
test case per scenario (or seed window) with the replay command in each
failure.  Bad input of any kind is one line on stderr and exit 2, never a
traceback (issue 11): output paths are checked before a run starts.
"""

from __future__ import annotations

import argparse
import functools
import os
import shlex
import sys
import tempfile
from collections.abc import Sequence
from typing import NoReturn

from ._types import InvalidArgument
from .oracle import check
from .oracle.engine import (
    AUDIT_RATE,
    SCENARIOS,
    ScheduleError,
    SchedulerSpec,
    SchedulerSpecError,
    add_scheduler_option,
    audit_rate,
    get_scenario,
    legacy_scheduler,
    load,
    scenario_from_spec,
    with_audit,
)
from .report import OutputError, output_problem
from .specgen.vectors import window_counterexample
from .store import StoreOption, kind_names, parse_store
from .testing import Window
from .variants import Variant

DESCRIPTION = (
    "The reference implementation of Meerkat's session service, and the oracle that judges "
    "other implementations of it."
)
EPILOG = ("Exit codes: 0 clean, 1 violations or failures found, 2 bad usage or input, 3 an "
          "error of the oracle itself (check/sweep: a footprint that does not hold).")


STORE_HELP = ("the store: memory, sqlite, a kind a package registers (entry point group "
              "meerkat_ref.stores) or package.module:NAME, optionally :DIR")


class UsageError(Exception):
    """Bad input on the command line: one line on stderr, exit 2."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line, naming where the help is."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _adapter_argv(text: str) -> list[str]:
    try:
        argv = shlex.split(text)
    except ValueError as exc:
        raise UsageError(f"--adapter: {exc}") from None
    if not argv:
        raise UsageError("--adapter is empty")
    return argv


def _outputs(args: argparse.Namespace) -> None:
    """Refuse, before a run, an output path the results could not be written to."""
    for option, value, directory in (
        ("--out", getattr(args, "out", None), True),
        ("--html", getattr(args, "html", None), True),
        ("--junit-xml", getattr(args, "junit_xml", None), False),
    ):
        if value is None:
            continue
        problem = output_problem(value, directory=directory)
        if problem is not None:
            raise UsageError(f"{option} {value!r}: {problem}")


def cmd_check(args: argparse.Namespace) -> int:
    """The options read and checked into a ``check.Request``; the run is ``oracle.check``'s."""
    try:
        variant = Variant.parse(args.variant)
        for name in args.scenario or []:
            get_scenario(name)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.adapter is not None:
        _adapter_argv(args.adapter)
    if not args.timeout > 0:
        raise UsageError("--timeout must be a positive number of seconds")
    option, deprecated = _check_store(args)
    if option.path is not None:
        _store_dir(option.path)
    _outputs(args)
    seed = variant.name == "seed-0.4.0" and not args.adapter
    audit = _audit_rate(args, seed)
    spec = _check_scheduler(args, seed, audit)
    for line in deprecated:
        print(f"meerkat-ref check: {line}", file=sys.stderr)
    request = check.Request(
        variant=variant.name,
        make_target=functools.partial(variant.target, store=option.kind, store_dir=option.path),
        scheduler=spec, store="adapter" if args.adapter else option.kind,
        scenarios=tuple(args.scenario or ()), adapter=args.adapter, timeout=args.timeout,
        jobs=args.jobs, keep_going=args.keep_going, json=args.json, out=args.out,
        html=args.html, junit_xml=args.junit_xml, audit=audit)
    if seed:
        bound = 2 if args.bound is None else args.bound
        return check.check_windows(request, [
            check.SeedWindow(w.number, w.value, functools.partial(
                window_counterexample, w, store=option.kind, max_bound=bound,
                store_dir=option.path))
            for w in Window])
    _check_jobs(args)
    return check.check(request)


def _check_jobs(args: argparse.Namespace) -> None:
    """``--jobs``: at least 1, and only for the in-process target (a port runs one adapter)."""
    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {args.jobs}")
    if args.adapter is not None and args.jobs not in (None, 1):
        raise UsageError("--jobs applies to the in-process target; a port runs one adapter")


def _check_scheduler(args: argparse.Namespace, seed: bool, audit: int | None) -> SchedulerSpec:
    """``--scheduler``, or what ``--search`` and ``--bound`` name; audited if ``--audit``.

    ``--search`` and ``--bound`` are the older spellings (``--bound N``: the
    DFS with sleep sets under N; ``--search dfs``: the plain DFS): given
    beside ``--scheduler`` they would say two things, so that is refused.
    """
    spec: SchedulerSpec | None = args.scheduler
    if spec is not None and (args.search is not None or args.bound is not None):
        raise UsageError("--scheduler names the search: give it without --search or --bound "
                         f"(e.g. --scheduler dfs:bound={args.bound or 0})")
    if spec is not None and seed:
        raise UsageError("--variant seed-0.4.0 finds each window by iterative bounding "
                         "(--bound N: up to N); to explore with --scheduler, name one window: "
                         "--variant seed-0.4.0:<window>")
    try:
        if spec is None:
            return legacy_scheduler(args.bound, args.search or "dpor", audit)
        return with_audit(spec, audit)
    except SchedulerSpecError as exc:
        raise UsageError(str(exc)) from None


def _store_option(text: str) -> StoreOption:
    """``--store KIND[:DIR]`` (``store.parse_store``); a name nothing knows is bad usage."""
    try:
        return parse_store(text)
    except InvalidArgument as exc:
        raise UsageError(str(exc)) from None


def _check_store(args: argparse.Namespace) -> tuple[StoreOption, list[str]]:
    """``check``'s store, and what to say of a deprecated spelling (said once the run starts).

    Before ``--store KIND[:DIR]``, ``--store DIR`` was a directory for the
    SQLite files and ``--memory`` the memory store: both still work.
    """
    deprecated = []
    text: str | None = args.store
    if args.adapter is not None and (text is not None or args.memory):
        raise UsageError("--store and --memory pick the reference's store; --adapter runs a "
                         "port with its own, so they cannot go together")
    if args.memory:
        if text is not None:
            raise UsageError("--store DIR makes SQLite files; --memory uses no SQLite store "
                             "here, so the two cannot go together (use --store memory)")
        deprecated.append("--memory is deprecated: use --store memory")
        text = "memory"
    if text is None:
        return StoreOption("sqlite"), deprecated
    if text.strip() and ":" not in text and text not in kind_names():
        deprecated.append(f"--store DIR is deprecated: use --store sqlite:{text}")
        return StoreOption("sqlite", text), deprecated
    return _store_option(text), deprecated


def _audit_rate(args: argparse.Namespace, seed: bool) -> int | None:
    """``--audit [N|all]``: 1 pair in N run both ways (``engine/_audit.py``); DPOR only."""
    try:
        rate = audit_rate(args.audit)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    named = args.scheduler.name if args.scheduler is not None else "dpor"
    if rate is not None and (args.bound is not None or args.search not in (None, "dpor")
                             or named != "dpor" or seed):
        raise UsageError("--audit checks DPOR's footprints: use it with the dpor scheduler, "
                         "without --bound, --search dfs or --variant seed-0.4.0")
    return rate


def _store_dir(path: str) -> None:
    """``--store KIND:DIR``: a directory a run's store can be made in (tried, not guessed)."""
    if not os.path.isdir(path):
        raise UsageError(f"--store {path!r} is not a directory")
    try:
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise UsageError(f"--store {path!r}: cannot make a file there ({exc.strerror})") from None


def cmd_replay(args: argparse.Namespace) -> int:
    """The schedule file read, its scenario and variant resolved; the run is ``oracle.check``'s."""
    if args.adapter is not None:
        _adapter_argv(args.adapter)
    _outputs(args)
    try:
        with open(args.file, encoding="utf-8") as fh:
            schedule = load(fh.read())
        if schedule.spec is not None:
            scenario = scenario_from_spec(schedule.spec, schedule.scenario)
        else:
            scenario = get_scenario(schedule.scenario)
        variant = Variant.parse(schedule.variant) if not args.adapter else Variant("reference")
    except OSError as exc:
        raise UsageError(f"cannot read {args.file!r}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{args.file!r} is not a schedule file (not UTF-8 text)") from None
    except (ScheduleError, ValueError) as exc:
        raise UsageError(f"{args.file!r}: {exc}") from None
    return check.replay(args.file, schedule, scenario,
                        functools.partial(variant.target, store=schedule.store),
                        adapter=args.adapter, timeout=args.timeout, html=args.html)


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
    from .tour import run_tour, run_tour_file

    text: str | None = args.store
    if text is not None and text.strip() and ":" not in text and text not in kind_names():
        # The old spelling: the SQLite file itself.
        code = run_tour_file(text)
        if code == 0:
            print("meerkat-ref tour: --store FILE is deprecated: use --store sqlite:DIR (the "
                  "store is DIR/sessions.sqlite)", file=sys.stderr)
        return code
    option = _store_option("sqlite" if text is None else text)
    if option.path is not None:
        return run_tour(option.resolve(), option.path)
    with tempfile.TemporaryDirectory() as tmp:
        return run_tour(option.resolve(), tmp)


def cmd_vectors(args: argparse.Namespace) -> int:
    from .specgen import vectors

    if args.out is None:  # not given: see vectors.default_out
        args.out = str(vectors.default_out(args.check))
    elif args.check and not os.path.isdir(args.out):
        raise UsageError(f"--out {args.out!r} is not a directory of vector files")
    if not args.check:
        _outputs(args)
    return vectors.run(args)


def cmd_conform(args: argparse.Namespace) -> int:
    from .oracle import conform

    return conform.run(args)


def cmd_sweep(args: argparse.Namespace) -> int:
    from functools import partial

    from .oracle import sweep
    from .testing import Window

    if args.sqlite and args.store is not None:
        raise UsageError("--sqlite is the old --store sqlite: give one of them")
    option = _store_option("sqlite" if args.sqlite else args.store or "memory")
    if option.path is not None:
        _store_dir(option.path)
    try:
        variant = Variant.parse(args.variant)
    except ValueError as exc:
        print(f"meerkat-ref: {exc}", file=sys.stderr)
        return 2
    if args.sqlite:
        print("meerkat-ref sweep: --sqlite is deprecated: use --store sqlite", file=sys.stderr)
    if variant.name == "seed-0.4.0":  # each window alone: which scenarios expose it
        variants = [Variant.parse(f"seed-0.4.0:{w.value}") for w in Window]
    else:
        variants = [variant]
    return sweep.run(args, [(v.name, partial(v.target, store=option.kind, store_dir=option.path))
                            for v in variants], store=option.kind)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="meerkat-ref", description=DESCRIPTION, epilog=EPILOG)
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
    add_scheduler_option(check, "how each scenario is explored (default: dpor, every "
                         "behaviour once)")
    check.add_argument(
        "--bound",
        type=int,
        default=None,
        help="the older --scheduler dfs:bound=N: a preemption bound, explored by depth-first "
        "search with sleep sets",
    )
    check.add_argument("--search", default=None, choices=("dpor", "dfs"),
                       help="the older --scheduler: dpor (default) or dfs (--scheduler "
                       "dfs:reduce=false: plain depth-first, every schedule)")
    check.add_argument("--scenario", action="append", help="only this scenario (repeatable)")
    check.add_argument("--audit", nargs="?", const="default", default=None, metavar="N|all",
                       help="check DPOR's independence relation as it runs: run 1 in N (default "
                       f"{AUDIT_RATE}; all: every one) of the pairs of steps it calls "
                       "independent both ways and compare the whole state; exit 3 on a "
                       "difference")
    check.add_argument("--jobs", type=int, default=None, metavar="N",
                       help="explore scenarios in N processes at once, each scenario whole in "
                       "one (default: one per core; the results do not depend on it)")
    check.add_argument(
        "--store",
        default=None,
        metavar="KIND[:DIR]",
        help=STORE_HELP + " (default: sqlite; each run's store is made in DIR, removed after "
        "the run; default: the system's temporary directory)",
    )
    check.add_argument("--memory", action="store_true",
                       help="deprecated: --store memory")
    check.add_argument("--json", action="store_true", help="machine-readable output")
    check.add_argument(
        "--out", default="counterexamples", help="where schedules of counterexamples go"
    )
    check.add_argument(
        "--keep-going", action="store_true",
        help="after a scenario's first counterexample (printed and written at once), explore "
        "the rest of it: every violation counted, the shortest kept (default: stop there)")
    check.add_argument("--html", default=None, metavar="DIR",
                       help="also write an HTML report of each counterexample into DIR "
                       "(self-contained files, and index.html when there are several)")
    check.add_argument("--junit-xml", default=None, metavar="FILE",
                       help="write the results as JUnit XML for CI: one test case per scenario "
                       "(per window with --variant seed-0.4.0), the replay command in each failure")
    check.set_defaults(func=cmd_check)
    replay = sub.add_parser("replay", help="re-run a schedule file step for step")
    replay.add_argument("file", metavar="FILE",
                        help="a schedule file (meerkat-ref/schedule@1) that check wrote, "
                        "e.g. counterexamples/window-1-save-after-turn.json")
    replay.add_argument("--adapter", default=None, metavar="COMMAND",
                        help="replay on a port through its adapter instead of in process")
    replay.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                        help="with --adapter: how long to wait for any one answer (default 10)")
    replay.add_argument("--html", default=None, metavar="DIR",
                        help="also write the replayed run as an HTML report into DIR")
    replay.set_defaults(func=cmd_replay)
    scen = sub.add_parser("scenarios", help="list the named scenarios")
    scen.set_defaults(func=cmd_scenarios)
    tour = sub.add_parser("tour", help="a short narrated tour of the service on SQLite")
    tour.add_argument("--store", default=None, metavar="KIND[:DIR]",
                      help=STORE_HELP + " (default: sqlite); DIR: the directory the tour's "
                      "store is kept in, new or empty: the tour's session ids are fixed, so it "
                      "refuses a store that already holds sessions (default: a temporary "
                      "directory, removed afterwards; the old --store FILE, a SQLite file, "
                      "still works)")
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
    where = f"meerkat-ref {args.command}"
    if (getattr(args, "bound", 0) or 0) < 0:
        print(f"{where}: --bound must not be negative", file=sys.stderr)
        return 2
    try:
        code: int = args.func(args)
    except UsageError as exc:
        print(f"{where}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{where}: interrupted", file=sys.stderr)
        return 130
    except BaseException as exc:
        problem = _environment_problem(exc)
        if problem is None:
            raise
        print(f"{where}: {problem}", file=sys.stderr)
        return 2
    return code


def _environment_problem(exc: BaseException) -> str | None:
    """One line for an error of the machine (a file, a store), not of ours; None for a bug.

    Trio may deliver it inside exception groups; every leaf must be such an error.
    """
    from ._errors import SessionStoreError

    if isinstance(exc, BaseExceptionGroup):
        found = [_environment_problem(e) for e in exc.exceptions]
        return found[0] if found and all(found) else None
    if isinstance(exc, OutputError):
        return str(exc)
    if isinstance(exc, SessionStoreError):
        return f"{exc.code}: {exc.message}"
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror or exc}"
    return None


if __name__ == "__main__":
    sys.exit(main())
