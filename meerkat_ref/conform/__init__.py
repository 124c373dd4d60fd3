"""``meerkat-ref conform --adapter 'COMMAND'``: judge an implementation through its adapter.

The adapter (``spec/ADAPTER.md``) is started from ``shlex.split(COMMAND)``,
never through a shell, and spoken to in JSON lines.  Phases, in order:

1. ``sequential vectors``: the checked-in sequential vectors (regenerated here
   from the model, which ``meerkat-ref vectors --check`` proves identical);
2. ``random sequences``: model-driven random sequences (``--seed``), every
   result compared with the model;
3. ``concurrent vectors (hooks)``: each concurrent vector's schedule replayed
   through the adapter's scheduling hooks (only if it offers ``points``);
4. ``concurrent search (hooks)``: seeded PCT and random schedules of
   overlapping requests (only with ``points``);
5. ``concurrent free-running``: the same programs, interleaved by the adapter.

The report lists, per clause (the model's ``[ID]`` tags), the checks made and
the failures, each failure with its shortest replayable counterexample (the
request lines).  Exit status: 0 all passed, 1 a failure or a protocol error,
2 bad usage.  A protocol error (a malformed line, an unknown command or
field, an adapter that dies or hangs) stops the run; what was found before it
is kept and reported.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import trio

from ._client import AdapterClient, ProtocolError
from ._report import Phase, Report
from ._wire import PROTOCOL, VECTORS_FORMAT, Json

__all__ = [
    "Options", "ProtocolError", "Report", "add_arguments", "conform", "load_concurrent", "run"
]


@dataclass(frozen=True)
class Options:
    timeout: float = 10.0
    seed: int = 1
    random_cases: int = 8
    random_steps: int = 30
    search_runs: int = 8
    free_runs: int = 10
    shrink_budget: int = 40


async def _conform(argv: Sequence[str], opts: Options, report: Report,
                   concurrent: Sequence[dict[str, Json]]) -> None:
    from ..vectors import CURATED, random_cases
    from . import _concurrent, _sequential

    client = AdapterClient(list(argv), opts.timeout)
    hooks = False

    async def sequential() -> None:
        cases = (*CURATED, *random_cases())
        await _sequential.run_phase(client, report, "sequential vectors", cases,
                                    opts.shrink_budget)

    async def random_sequences() -> None:
        cases = random_cases(opts.seed, opts.random_cases, opts.random_steps, "conform-random")
        await _sequential.run_phase(client, report, f"random sequences (seed {opts.seed})",
                                    cases, opts.shrink_budget)

    async def vectors() -> None:
        await _concurrent.run_vectors(client, report, concurrent)

    async def search() -> None:
        await _concurrent.run_search(client, report, opts.search_runs, opts.seed)

    async def free() -> None:
        await _concurrent.run_free(client, report, opts.free_runs)

    plan: list[tuple[str, Callable[[], Awaitable[None]], bool]] = [
        ("sequential vectors", sequential, True),
        (f"random sequences (seed {opts.seed})", random_sequences, opts.random_cases > 0),
        ("concurrent vectors (hooks)", vectors, True),
        ("concurrent search (hooks)", search, opts.search_runs > 0),
        ("concurrent free-running", free, opts.free_runs > 0),
    ]
    async with trio.open_nursery() as nursery:
        phase = "start"
        try:
            await client.start(nursery)
            phase = "hello"
            hello = await client.call_ok({"cmd": "hello"})
            if not isinstance(hello, dict) or hello.get("protocol") != PROTOCOL:
                raise ProtocolError(f"hello must answer {{\"protocol\": {PROTOCOL!r}, ...}}, "
                                    f"got {json.dumps(hello)[:200]}")
            report.hello = hello
            caps = hello.get("capabilities")
            hooks = isinstance(caps, list) and "points" in caps
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
        finally:
            with trio.CancelScope(shield=True):
                await client.stop()
            nursery.cancel_scope.cancel()
    if not hooks and report.hello:
        free_phase = next((p for p in report.phases if p.name == "concurrent free-running"), None)
        if free_phase is not None and free_phase.ran:
            free_phase.note = (
                "no scheduling hooks: concurrent checks ran free-running only, so narrow "
                "windows (like the seed's) may be missed"
            )


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
    need = ("name", "about", "scenario", "capacity", "setup", "background", "clients", "schedule")
    for i, case in enumerate(doc["cases"]):
        if not isinstance(case, dict) or any(k not in case for k in need):
            raise ValueError(f"{path}: case {i} lacks one of {', '.join(need)}")
    cases: list[dict[str, Json]] = doc["cases"]
    return cases


def conform(argv: Sequence[str], opts: Options = Options(),
            concurrent: Sequence[dict[str, Json]] | None = None) -> Report:
    """Run every phase against the adapter ``argv``; never raises for the adapter's faults.

    ``concurrent``: the concurrent vectors (default: derived again with the explorer).
    """
    from ..vectors import concurrent_cases

    report = Report(adapter=shlex.join(argv))
    started = time.perf_counter()
    if concurrent is None:
        concurrent = concurrent_cases()  # runs the explorer: outside the oracle's trio.run
    trio.run(_conform, argv, opts, report, concurrent)
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
    parser.add_argument("--search-runs", type=int, default=8, metavar="N",
                        help="controlled schedules per concurrent program (default 8; 0: skip)")
    parser.add_argument("--free-runs", type=int, default=10, metavar="N",
                        help="free-running runs per concurrent program (default 10; 0: skip)")
    parser.add_argument("--shrink-budget", type=int, default=40, metavar="N",
                        help="adapter runs spent shrinking each failing sequence (default 40)")
    parser.add_argument("--vectors", default=None, metavar="DIR",
                        help="read the concurrent vectors from DIR/concurrent.json instead of "
                        "deriving them again with the explorer (a few seconds)")
    parser.add_argument("--json", action="store_true", help="machine-readable report")


def run(args: argparse.Namespace) -> int:
    try:
        argv = shlex.split(args.adapter)
    except ValueError as exc:
        print(f"meerkat-ref conform: --adapter: {exc}", file=sys.stderr)
        return 2
    if not argv:
        print("meerkat-ref conform: --adapter is empty", file=sys.stderr)
        return 2
    numbers = (args.random_cases, args.random_steps, args.search_runs, args.free_runs,
               args.shrink_budget)
    if args.timeout <= 0 or any(n < 0 for n in numbers):
        print("meerkat-ref conform: --timeout must be positive and counts not negative",
              file=sys.stderr)
        return 2
    opts = Options(
        timeout=args.timeout,
        seed=args.seed,
        random_cases=args.random_cases,
        random_steps=args.random_steps,
        search_runs=args.search_runs,
        free_runs=args.free_runs,
        shrink_budget=args.shrink_budget,
    )
    concurrent = None
    if args.vectors is not None:
        try:
            concurrent = load_concurrent(Path(args.vectors) / "concurrent.json")
        except ValueError as exc:
            print(f"meerkat-ref conform: --vectors: {exc}", file=sys.stderr)
            return 2
    report = conform(argv, opts, concurrent)
    if args.json:
        print(json.dumps(report.to_json(), indent=1))
    else:
        print(report.text())
    return 0 if report.ok else 1
