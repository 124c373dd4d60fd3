"""``meerkat-ref sweep``: every small concurrent scenario, generated, each explored in full.

Hand-picked scenarios prove what someone thought of; the sweep proves a
*scope*: every multiset of ``size`` concurrent calls drawn from the
contract's operation alphabet (``ALPHABET``: create, create host-mode,
start_turn, inject, interrupt, read, list, a page of list, archive, the two
checkpointer sweeps, load_persisted), on 1 or 2 sessions, from each starting
situation that matters (``SITUATIONS``), with 0 or 1 store fault and 0 or 1
crash.  Each scenario is explored with DPOR (``engine.explore_dpor``), so
every interleaving of it is covered, and every run is checked with every
rule and for linearizability against the model.  Within the scope, "no
violation" is a proof, not a sample.

Scopes are data (``SCOPES``; ``Scope``): ``ci`` (small, for every CI run),
``default`` and ``full`` (opt-in: hours).  The scenario list of a scope is
generated in a fixed order, so ``--shard i/n`` (every n-th scenario from
the i-th) and any split over workers give the same totals.

``audit`` (``sweep --audit``) checks DPOR's independence relation as it
goes (``engine/_audit.py``): a pair of steps called independent that does
not commute is an oracle error (``Row.oracle_errors``; exit 3).

Parallel, with no distribution layer of our own: scenarios go to a
``concurrent.futures`` executor, local processes by default (``jobs``), or
a Dask cluster's executor (``distributed``, the ``dask`` extra) when a
scheduler address is given.  Each worker opens one in-process target and
runs its scenarios one after another.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import TextIO

import trio

from .._model import model
from ..report import (
    Case,
    Failure,
    OutputError,
    duration,
    junit_xml,
    output_problem,
    time_left,
    write_text,
)
from .engine import AUDIT_RATE, ClientOp, Scenario, audit_rate, explore_dpor
from .targets import InProcessTarget

R = model

# -- the alphabet and the situations -------------------------------------------------------

ALPHABET: tuple[tuple[str, Callable[[int], object] | None], ...] = (
    ("create", None),
    ("create-host", None),
    ("turn", lambda n: R.StartTurn(n, "more")),
    ("inject", lambda n: R.HostMessage(n, "ping")),
    ("interrupt", lambda n: R.Interrupt(n)),
    ("read", lambda n: R.Read(n)),
    ("list", None),
    ("page", None),
    ("archive", lambda n: R.Archive(n)),
    ("cancel", None),
    ("rearm", None),
    ("load", lambda n: R.LoadPersisted(n)),
)
"""The operations a generated call may be: a name, and the call on session ``n`` (or none)."""

_PLAIN: dict[str, object] = {
    "create": R.Create("hello"),
    "create-host": R.Create("serve", host_mode=True),
    "list": R.List(),
    "page": R.List(1, 1),  # the second row: merging live and stored before paging shows
    "cancel": R.CancelAllCheckpointers(),
    "rearm": R.RearmAllCheckpointers(),
}

SITUATIONS: dict[str, str] = {
    "empty": "no session yet (a create in the group makes s1, s2)",
    "idle": "every session live and idle",
    "host": "s1 a running host loop (s2, if any, live and idle)",
    "stored": "every session stored only (created, then a restart)",
    "archived": "s1 archived (s2, if any, live and idle)",
    "mixed": "s1 stored only, s2 live and idle (two sessions only)",
}
"""Starting situations, set up before the calls run (scheduling points off)."""


Setup = tuple[tuple[object, ...], tuple[tuple[str, object], ...]]


def _setup(situation: str, sessions: int) -> Setup:
    """(setup calls, background calls) that put ``sessions`` sessions in ``situation``."""
    create = R.Create("a")
    if situation == "empty":
        return (), ()
    if situation == "idle":
        return (create,) * sessions, ()
    if situation == "host":
        # The loop is created first (s1) and never answers; s2 is created in the setup.
        return (), (("host", R.Create("serve", host_mode=True)),)
    if situation == "stored":
        return (*(create,) * sessions, R.Restart()), ()
    if situation == "archived":
        return (create, R.Archive(1), *(create,) * (sessions - 1)), ()
    if situation == "mixed":
        return (create, R.Restart(), create), ()
    raise ValueError(f"unknown situation {situation!r}; known: {', '.join(SITUATIONS)}")


@dataclass(frozen=True)
class Scope:
    """What a sweep covers; every combination of these is one scenario."""

    name: str
    sizes: tuple[int, ...] = (2,)  # calls at once
    sessions: tuple[int, ...] = (1,)
    situations: tuple[str, ...] = tuple(s for s in SITUATIONS if s != "mixed")
    faults: tuple[int, ...] = (0, 1)
    crashes: tuple[int, ...] = (0, 1)
    ops: tuple[str, ...] = tuple(name for name, _ in ALPHABET)
    capacity: int = 2

    def describe(self) -> str:
        return (
            f"scope {self.name!r}: every multiset of {_or(self.sizes)} concurrent calls from "
            f"{{{', '.join(self.ops)}}} on {_or(self.sessions)} session(s), from each of "
            f"{{{', '.join(self.situations)}}}, with {_or(self.faults)} store fault(s) and "
            f"{_or(self.crashes)} crash(es), capacity {self.capacity}; every interleaving "
            f"explored (DPOR), every rule and linearizability checked"
        )

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name, "sizes": list(self.sizes), "sessions": list(self.sessions),
            "situations": list(self.situations), "faults": list(self.faults),
            "crashes": list(self.crashes), "ops": list(self.ops), "capacity": self.capacity,
        }


def _or(values: Sequence[int]) -> str:
    return " or ".join(str(v) for v in values)


SCOPES: dict[str, Scope] = {
    s.name: s for s in (
        Scope("ci", sizes=(2,), sessions=(1,), situations=("empty", "idle", "host"),
              faults=(0,), crashes=(0,),
              ops=("create", "turn", "inject", "read", "page", "archive", "cancel", "load")),
        Scope("default", sizes=(2,), sessions=(1, 2),
              situations=("empty", "idle", "host", "stored", "archived", "mixed")),
        Scope("full", sizes=(2, 3), sessions=(1, 2),
              situations=("empty", "idle", "host", "stored", "archived", "mixed")),
    )
}
"""Named scopes: ``ci`` for every CI run, ``default``, and ``full`` (opt-in: hours)."""


def _calls(scope: Scope, sessions: int) -> list[tuple[str, object]]:
    """Every call of the alphabet on these sessions, as (label, model operation)."""
    out: list[tuple[str, object]] = []
    for name, make in ALPHABET:
        if name not in scope.ops:
            continue
        if make is None:
            out.append((name, _PLAIN[name]))
        else:
            out.extend((f"{name}{n}" if sessions > 1 else name, make(n))
                       for n in range(1, sessions + 1))
    return out


def group(situation: str, sessions: int, calls: Sequence[tuple[str, object]], *,
          faults: int = 0, crashes: int = 0, capacity: int = 2) -> Scenario:
    """One generated scenario: ``calls`` (label, model operation) at once from ``situation``."""
    setup, background = _setup(situation, sessions)
    scope = Scope("group", capacity=capacity)
    return _scenario(scope, sessions, situation, setup, background, calls, faults, crashes)


def calls(sessions: int, ops: Sequence[str] | None = None) -> list[tuple[str, object]]:
    """Every call of the alphabet (or of ``ops``) on 1..``sessions``, as (label, operation)."""
    scope = Scope("calls") if ops is None else Scope("calls", ops=tuple(ops))
    return _calls(scope, sessions)


def scenarios(scope: Scope) -> list[Scenario]:
    """The scope's scenarios, in a fixed order (shards and workers rely on it)."""
    out = []
    for sessions in scope.sessions:
        calls = _calls(scope, sessions)
        for situation in scope.situations:
            if situation == "mixed" and sessions < 2:
                continue
            setup, background = _setup(situation, sessions)
            for size in scope.sizes:
                for group in itertools.combinations_with_replacement(calls, size):
                    for faults in scope.faults:
                        for crashes in scope.crashes:
                            out.append(_scenario(scope, sessions, situation, setup, background,
                                                 group, faults, crashes))
    return out


def _scenario(scope: Scope, sessions: int, situation: str, setup: tuple[object, ...],
              background: tuple[tuple[str, object], ...], group: Sequence[tuple[str, object]],
              faults: int, crashes: int) -> Scenario:
    labels = [label for label, _ in group]
    name = f"{situation}/{sessions}s/{'+'.join(labels)}" + ("/fault" if faults else "") + (
        "/crash" if crashes else "")
    clients = tuple(
        (f"{label}-{i}" if labels.count(label) > 1 else label, (ClientOp(op),))
        for i, (label, op) in enumerate(group)
    )
    return Scenario(
        name, f"{' and '.join(labels)} at once, {SITUATIONS[situation]}", setup=setup,
        clients=clients, background=background, capacity=scope.capacity, faults=faults,
        crashes=crashes, bound=None,
    )


def shard(items: Sequence[Scenario], spec: str | None) -> list[tuple[int, Scenario]]:
    """``i/n``: every n-th scenario from the i-th (0-based), with its index; ``None``: all."""
    indexed = list(enumerate(items))
    if spec is None:
        return indexed
    try:
        i_text, n_text = spec.split("/")
        i, n = int(i_text), int(n_text)
    except ValueError:
        raise ValueError(f"--shard must be i/n (like 0/4), got {spec!r}") from None
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"--shard {spec}: need 0 <= i < n")
    return [(k, s) for k, s in indexed if k % n == i]


# -- running ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """What exploring one generated scenario found."""

    index: int
    name: str
    schedules: int
    pruned: int
    states: int
    rules: tuple[str, ...]  # the rules its violations broke (empty: none)
    seconds: float
    exhausted: bool
    first: str = ""  # the first violation's message, if any
    audited: int = 0  # pairs of steps called independent, run both ways (``audit``)
    oracle_errors: tuple[str, ...] = ()  # what the audit (or the target's seams) caught

    def to_json(self) -> dict[str, object]:
        return {
            "index": self.index, "scenario": self.name, "schedules": self.schedules,
            "pruned": self.pruned, "states": self.states, "rules": list(self.rules),
            "seconds": round(self.seconds, 3), "exhausted": self.exhausted,
            **({"first": self.first} if self.first else {}),
            **({"audited": self.audited} if self.audited else {}),
            **({"oracle_errors": list(self.oracle_errors)} if self.oracle_errors else {}),
        }


MakeTarget = Callable[[], InProcessTarget]
"""Builds the target a worker explores on (picklable, for process and Dask workers)."""


def run_chunk(make_target: MakeTarget, scope: Scope, indices: Sequence[int],
              max_schedules: int | None = None, audit: int | None = None) -> list[Row]:
    """Explore the scope's scenarios at ``indices`` on one target (the unit of parallel work)."""
    every = scenarios(scope)
    chosen = [(i, every[i]) for i in indices]
    return explore_scenarios(make_target, chosen, max_schedules=max_schedules, audit=audit)


def explore_scenarios(make_target: MakeTarget, chosen: Iterable[tuple[int, Scenario]],
                      max_schedules: int | None = None, audit: int | None = None) -> list[Row]:
    """Explore each (index, scenario) with DPOR on one fresh in-process target."""

    async def main() -> list[Row]:
        rows = []
        async with make_target() as target:
            for index, scenario in chosen:
                report = await explore_dpor(target, scenario, store=target.store_kind,
                                            max_schedules=max_schedules, audit=audit)
                first = report.first()
                rows.append(Row(
                    index, scenario.name, report.schedules, report.pruned, report.states,
                    tuple(sorted({v.rule for o in report.violating for v in o.violations})),
                    report.seconds, report.exhausted,
                    "" if first is None else f"{first.violations[0].rule}: "
                    f"{first.violations[0].message}",
                    report.audited,
                    tuple(f"{e.kind}: {e.message}" for e in report.oracle_errors),
                ))
        return rows

    # An injected fault makes a host loop log its failed checkpoint: expected here,
    # so hushed for the run only (a process that goes on after the sweep keeps its logs).
    with _quiet_checkpoints():
        return trio.run(main)


@contextlib.contextmanager
def _quiet_checkpoints() -> Iterator[None]:
    log = logging.getLogger("meerkat_ref.checkpoint")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


@dataclass
class SweepResult:
    scope: Scope
    variant: str
    total: int  # scenarios in the scope
    rows: list[Row] = field(default_factory=list)
    seconds: float = 0.0
    shard: str | None = None
    workers: int = 1

    @property
    def schedules(self) -> int:
        return sum(r.schedules for r in self.rows)

    @property
    def states(self) -> int:
        return sum(r.states for r in self.rows)

    @property
    def violating(self) -> list[Row]:
        return [r for r in self.rows if r.rules]

    @property
    def exhausted(self) -> bool:
        return all(r.exhausted for r in self.rows)

    @property
    def oracle_errors(self) -> list[Row]:
        """Scenarios where the oracle caught itself (a footprint that does not hold)."""
        return [r for r in self.rows if r.oracle_errors]

    def to_json(self) -> dict[str, object]:
        return {
            "format": "meerkat-ref/sweep@1",
            "variant": self.variant,
            "scope": self.scope.to_json(),
            "claim": self.scope.describe(),
            "shard": self.shard,
            "scenarios": len(self.rows),
            "scenarios_in_scope": self.total,
            "schedules": self.schedules,
            "end_states": self.states,
            "violations": len(self.violating),
            "exhausted": self.exhausted,
            "workers": self.workers,
            "seconds": round(self.seconds, 3),
            "schedules_per_second": (
                round(self.schedules / self.seconds, 1) if self.seconds else None
            ),
            "violating": [r.to_json() for r in self.violating],
            "audited": sum(r.audited for r in self.rows),
            "oracle_errors": [r.to_json() for r in self.oracle_errors],
        }


def _chunks(indices: Sequence[int], parts: int) -> Iterator[list[int]]:
    """Small interleaved chunks, so costly scenarios spread over the workers."""
    size = max(1, min(16, len(indices) // max(1, parts * 4)))
    for start in range(0, len(indices), size):
        yield list(indices[start:start + size])


def sweep(
    make_target: MakeTarget,
    scope: Scope,
    *,
    variant: str = "reference",
    shard_spec: str | None = None,
    jobs: int = 1,
    executor: Executor | None = None,
    max_schedules: int | None = None,
    progress: Callable[[int, int, Row], None] | None = None,
    audit: int | None = None,
) -> SweepResult:
    """Explore every scenario of ``scope`` (or a shard of it); see the module docstring.

    ``jobs`` > 1: a local process pool; ``executor``: any ``concurrent.futures``
    executor (a Dask client's, say), which the caller owns.  The totals do not
    depend on how the work is split.
    """
    every = scenarios(scope)
    chosen = shard(every, shard_spec)
    result = SweepResult(scope, variant, len(every), shard=shard_spec, workers=jobs)
    started = time.perf_counter()
    if executor is None and jobs <= 1:
        for index, scenario in chosen:
            (row,) = explore_scenarios(make_target, [(index, scenario)], max_schedules, audit)
            result.rows.append(row)
            if progress is not None:
                progress(len(result.rows), len(chosen), row)
    else:
        own = executor is None
        pool = executor if executor is not None else ProcessPoolExecutor(max_workers=jobs)
        try:
            futures = [pool.submit(run_chunk, make_target, scope, chunk, max_schedules, audit)
                       for chunk in _chunks([i for i, _ in chosen], jobs)]
            for future in futures:
                for row in future.result():
                    result.rows.append(row)
                    if progress is not None:
                        progress(len(result.rows), len(chosen), row)
        finally:
            if own:
                pool.shutdown(cancel_futures=True)
    result.rows.sort(key=lambda r: r.index)
    result.seconds = time.perf_counter() - started
    return result


def dask_executor(address: str) -> tuple[Executor, Callable[[], None]]:
    """A Dask cluster's ``concurrent.futures`` executor, and how to close the client.

    Needs the ``dask`` extra (``pip install meerkat-ref[dask]``).
    """
    try:
        from distributed import Client  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        raise RuntimeError(
            "--dask needs the 'distributed' package: pip install 'meerkat-ref[dask]'"
        ) from None
    client = Client(address)  # type: ignore[no-untyped-call,unused-ignore]
    executor: Executor = client.get_executor()  # type: ignore[no-untyped-call,unused-ignore]
    return executor, client.close


__all__ = [
    "ALPHABET",
    "SCOPES",
    "SITUATIONS",
    "Row",
    "Scope",
    "SweepResult",
    "calls",
    "dask_executor",
    "explore_scenarios",
    "group",
    "run_chunk",
    "scenarios",
    "shard",
    "sweep",
]


# -- the command line ---------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scope", default="default", choices=sorted(SCOPES),
                        help="which scope to sweep (default: default; ci is small, full is hours)")
    parser.add_argument("--variant", default="reference",
                        help="reference (default), or seed-0.4.0: each window opened alone, and "
                        "which generated scenarios expose it")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="local worker processes (default 1)")
    parser.add_argument("--dask", default=None, metavar="ADDRESS",
                        help="run on a Dask cluster (tcp://host:8786); needs the dask extra")
    parser.add_argument("--shard", default=None, metavar="I/N",
                        help="only every N-th scenario from the I-th (0-based), for CI matrices")
    parser.add_argument("--store", default=None, metavar="KIND[:DIR]",
                        help="the store the reference runs on: memory (default), sqlite, a "
                        "kind a package registers, or package.module:NAME; DIR: where each "
                        "run's store is made")
    parser.add_argument("--sqlite", action="store_true", help="deprecated: --store sqlite")
    parser.add_argument("--max-schedules", type=int, default=None, metavar="N",
                        help="cut each scenario after N schedules (then not exhausted)")
    parser.add_argument("--audit", nargs="?", const="default", default=None, metavar="N|all",
                        help="check DPOR's independence relation as it runs: run 1 in N "
                        f"(default {AUDIT_RATE}; all: every one) of the pairs of steps it calls "
                        "independent both ways and compare the whole state; exit 3 on a "
                        "difference")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--junit-xml", default=None, metavar="FILE",
                        help="write the results as JUnit XML for CI: one test case per generated "
                        "scenario (per window with --variant seed-0.4.0), a command that "
                        "re-explores it in each failure")
    parser.add_argument("--list", action="store_true",
                        help="only list the scope's scenarios (after --shard)")


Targets = Sequence[tuple[str, MakeTarget]]
"""(variant label, target maker) pairs to sweep: one, or one per seed window."""


def run(args: argparse.Namespace, targets: Targets) -> int:
    """``meerkat-ref sweep``: exit 0 clean, 1 on a violation (or a window exposed), 2 usage,
    3 an oracle error (``--audit``)."""
    scope = SCOPES[args.scope]
    try:
        audit = audit_rate(args.audit)
        chosen = shard(scenarios(scope), args.shard)
        if args.jobs < 1:
            raise ValueError("--jobs must be at least 1")
        problem = None if args.junit_xml is None else output_problem(args.junit_xml,
                                                                      directory=False)
        if problem is not None:
            raise ValueError(f"--junit-xml {args.junit_xml!r}: {problem}")
    except ValueError as exc:
        print(f"meerkat-ref: {exc}", file=sys.stderr)
        return 2
    if args.list:
        for index, scenario in chosen:
            print(f"{index:>6}  {scenario.name}")
        print(f"{len(chosen)} scenarios; {scope.describe()}")
        return 0
    executor: Executor | None = None
    close: Callable[[], None] | None = None
    if args.dask:
        try:
            executor, close = dask_executor(args.dask)
        except (RuntimeError, OSError) as exc:
            print(f"meerkat-ref: {exc}", file=sys.stderr)
            return 2
    results = []
    try:
        for label, make_target in targets:
            if not args.json:
                print(f"sweeping {label}: {len(chosen)} scenarios ...", file=sys.stderr,
                      flush=True)
            results.append(sweep(
                make_target, scope, variant=label, shard_spec=args.shard, jobs=args.jobs,
                executor=executor, max_schedules=args.max_schedules,
                progress=None if args.json else _progress(), audit=audit,
            ))
    finally:
        if close is not None:
            close()
    if args.json:
        out = [r.to_json() for r in results]
        print(json.dumps(out[0] if len(out) == 1 else out, indent=1))
    else:
        for result in results:
            _summary(result)
    if args.junit_xml is not None:
        try:
            path = write_text(args.junit_xml, junit_xml(
                f"meerkat-ref sweep {scope.name}", junit_cases(results, scope)))
        except OutputError as exc:
            print(f"meerkat-ref: {exc}", file=sys.stderr)
            return 2
        print(f"JUnit XML written to {path}", file=sys.stderr)
    if any(r.oracle_errors for r in results):
        return 3
    return 1 if any(r.violating for r in results) else 0


def junit_cases(results: Sequence[SweepResult], scope: Scope) -> list[Case]:
    """One case per explored scenario and variant; a violation is its failure.

    The failure names the rules, the first violation, and the command that
    explores that one scenario again (``--shard INDEX/TOTAL`` picks exactly it).
    """
    total = len(scenarios(scope))
    cases = []
    for result in results:
        for row in result.rows:
            failure = None
            if row.rules:
                again = (f"meerkat-ref sweep --scope {scope.name} --shard {row.index}/{total}"
                         + (f" --variant {result.variant}" if result.variant != "reference"
                            else ""))
                failure = Failure(
                    message=f"{', '.join(row.rules)}: {row.first}",
                    text=f"scenario {row.name} ({row.schedules} schedules)\n"
                         f"broke: {', '.join(row.rules)}\nfirst: {row.first}\n"
                         f"explore it again: {again}",
                )
            cases.append(Case(row.name, f"meerkat-ref.sweep.{result.variant}", row.seconds,
                              failure))
    return cases


def _progress(clock: Callable[[], float] = time.monotonic,
              out: TextIO | None = None) -> Callable[[int, int, Row], None]:
    """A line at most every 5 s (and at each violation, and at the end), with the time left."""
    began = clock()
    last = [began]

    def show(done: int, total: int, row: Row) -> None:
        now = clock()
        if row.rules or done == total or now - last[0] > 5:
            last[0] = now
            mark = f"  VIOLATION {','.join(row.rules)}" if row.rules else ""
            left = time_left(now - began, done, total)
            print(f"  [{done}/{total}] {row.name}: {row.schedules} schedules{mark}"
                  + (f"; {duration(now - began)} so far, {left}" if left else ""),
                  file=out or sys.stderr, flush=True)

    return show


def _summary(result: SweepResult) -> None:
    where = f" (shard {result.shard} of {result.total})" if result.shard else ""
    rate = result.schedules / result.seconds if result.seconds else 0.0
    print(f"\n{result.variant}: {len(result.rows)} scenarios{where}, {result.schedules} "
          f"schedules, {result.states} end states, {len(result.violating)} violating, "
          f"{'all exhausted' if result.exhausted else 'SOME CUT SHORT'}; "
          f"{result.seconds:.1f} s ({rate:.0f} schedules/s, {result.workers} worker(s))")
    print(f"claim: {result.scope.describe()}.")
    for row in result.violating:
        print(f"  {row.name}: {','.join(row.rules)} -- {row.first[:160]}")
    audited = sum(r.audited for r in result.rows)
    if audited or result.oracle_errors:
        print(f"audit: {audited} pairs of steps called independent run both ways; "
              f"{len(result.oracle_errors)} scenario(s) with an oracle error")
    for row in result.oracle_errors:
        for text in row.oracle_errors:
            print(f"  ORACLE ERROR in {row.name}: {text}")


__all__ += ["add_arguments", "run"]
