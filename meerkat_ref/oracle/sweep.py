"""``meerkat-ref sweep``: every small concurrent scenario, generated, each explored in full.

Hand-picked scenarios prove what someone thought of; the sweep proves a
*scope*: every multiset of ``size`` concurrent calls drawn from the
contract's operation alphabet (``ALPHABET``: create, create host-mode,
start_turn, inject, interrupt, read, list, a page of list, archive, the two
checkpointer sweeps, load_persisted; each operation's ``sweep`` declaration
in the registry), on 1 or 2 sessions, from each starting
situation that matters (``SITUATIONS``), with at most 1 store fault and at
most 1 crash.  Each scenario is explored with DPOR (``engine.DporScheduler``), so
every interleaving of it is covered, and every run is checked with every
rule and for linearizability against the model.  Within the scope, "no
violation" is a proof, not a sample.  ``--scheduler`` explores with another
of the engine's schedulers instead (``pct:runs=20``: a sample, then, and
the rows say so by not being exhausted).

Scopes are data (``SCOPES``; ``Scope``): ``ci``, ``ci-faults``, ``ci3`` and
``ci3-sample`` (small, for every CI run, ``CI_SCOPES``; the second puts a
store fault in each group, the third makes groups of three calls, bounded
by ``at_most``, the fourth samples the groups of three that ``ci3`` cannot
afford to explore whole), ``default`` and ``full`` (opt-in: minutes and
hours).  A scope may name its own scheduler (``Scope.scheduler``):
``ci3-sample`` runs seeded random schedules of each group, a sample whose
claim says so, where every other scope proves.  The scenario list of a scope is
generated in a fixed order, so ``--shard i/n`` (every n-th scenario from
the i-th) and any split over workers give the same totals.

A scenario's faults and crashes are a budget, not a must: DPOR takes a
store fault as a step beside the store call it fails and a crash as a step
racing every other, each taken or not, so the runs of a group with one
fault and one crash include every run of the same group with fewer (the
same setup, clients and capacity; no rule reads the budget, only the
faults and crashes a run takes).  So the default and full scopes explore
each group once, with the most (``faults=(1,)``, ``crashes=(1,)``), not
four times (0 or 1 of each): the same runs, so the same verdicts, in about
half the schedules (``benchmarks/README.md``: the reduction measured, and
the verdicts compared with each test mutant planted).

``audit`` (``sweep --audit``) checks DPOR's independence relation as it
goes (``engine/_audit.py``): a pair of steps called independent that does
not commute is an oracle error (``Row.oracle_errors``; exit 3).

Parallel through the one runner ``check --jobs`` uses too (``runner``):
chunks of scenarios go to local worker processes (``jobs``, spawned, not
forked: nothing of the parent, its ledger's lock included, is inherited),
or to a Dask cluster's executor (``distributed``, the ``dask`` extra) when
a scheduler address is given.  Each worker opens one in-process target and
runs its chunk of scenarios one after another.

A ledger (``open_ledger``; ``report.Ledger``) makes a sweep that is stopped
resumable: every scenario's row is appended as its worker hands it back, and
the same command, run again, explores only the scenarios not in it.  Its
header says what the rows are valid for (``ledger_header``); a ledger of
another run is refused, never mixed.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import itertools
import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TextIO, TypeVar

import trio

from .._model import model
from ..registry import sweep_alphabet
from ..report import (
    Case,
    Failure,
    Ledger,
    LedgerError,
    OutputError,
    duration,
    junit_xml,
    output_problem,
    time_left,
    write_text,
)
from .engine import (
    AUDIT_RATE,
    DEFAULT_SCHEDULER,
    ClientOp,
    Scenario,
    SchedulerSpec,
    add_scheduler_option,
    audit_rate,
    explore_with,
    parse_scheduler,
    with_audit,
)
from .runner import DaskCluster, dask_executor, run_parallel
from .targets import InProcessTarget

R = model

# -- the alphabet and the situations -------------------------------------------------------

ALPHABET: tuple[tuple[str, Callable[[int], object] | None, object], ...] = sweep_alphabet()
"""The calls a generated call may be: a label, and the call on session ``n`` (or ``None`` and the
one plain call); each operation's ``sweep`` declaration in the registry, interpreted there."""

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
    ops: tuple[str, ...] = tuple(name for name, _, _ in ALPHABET)
    capacity: int = 2
    # (operations, n): a group holds at most n calls of these operations (every group, if none)
    at_most: tuple[tuple[tuple[str, ...], int], ...] = ()
    # How each scenario is explored unless the command says otherwise (``None``: DPOR, a
    # proof); a sampling scheduler makes the scope a sample, and its claim says so.
    scheduler: str | None = None

    def describe(self, scheduler: SchedulerSpec | None = None) -> str:
        """The scope's claim, as explored by ``scheduler`` (default: its own, or DPOR)."""
        limits = "".join(f", at most {n} of {{{', '.join(ops)}}} in a group"
                         for ops, n in self.at_most)
        faults = _budget(self.faults, "store fault", "store faults")
        crashes = _budget(self.crashes, "crash", "crashes")
        spec = scheduler or self.explorer()
        how = ("every interleaving explored (DPOR)" if spec is None or spec.kind.exhaustive
               else f"a sample, {spec} per scenario, not every interleaving")
        return (
            f"scope {self.name!r}: every multiset of {_or(self.sizes)} concurrent calls from "
            f"{{{', '.join(self.ops)}}}{limits} on {_or(self.sessions)} session(s), from each of "
            f"{{{', '.join(self.situations)}}}, with {faults} and {crashes}, capacity "
            f"{self.capacity}; {how}, every rule and linearizability checked"
        )

    def explorer(self) -> SchedulerSpec | None:
        """The scope's own scheduler (``None``: the default, DPOR)."""
        return None if self.scheduler is None else parse_scheduler(self.scheduler)

    def admits(self, group: Sequence[tuple[str, object]]) -> bool:
        """Whether ``group`` (label, operation) keeps within ``at_most``."""
        names = [_op_name(label) for label, _ in group]
        return all(sum(n in ops for n in names) <= most for ops, most in self.at_most)

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "name": self.name, "sizes": list(self.sizes), "sessions": list(self.sessions),
            "situations": list(self.situations), "faults": list(self.faults),
            "crashes": list(self.crashes), "ops": list(self.ops), "capacity": self.capacity,
        }
        if self.at_most:  # only when set: a ledger of a scope without it keeps its header
            out["at_most"] = [[list(ops), n] for ops, n in self.at_most]
        if self.scheduler is not None:  # likewise
            out["scheduler"] = self.scheduler
        return out


def _op_name(label: str) -> str:
    """The alphabet's name of a call's label (``turn2`` -> ``turn``)."""
    return label.rstrip("0123456789")


def _or(values: Sequence[int]) -> str:
    return " or ".join(str(v) for v in values)


def _budget(values: Sequence[int], one: str, many: str) -> str:
    """A budget of faults or crashes as the claim says it: a budget is at most (module doc)."""
    most = max(values)
    if most == 0:
        return f"no {one}"
    fewer = sorted(set(values) - {most})
    return (f"at most {most} {one if most == 1 else many}"
            + (f" (each group also explored with {_or(fewer)})" if fewer else ""))


_CI_OPS = tuple(name for name, _, _ in ALPHABET if name != "create-host")
"""The pairs' alphabet of every CI run: every call but a host-mode create.  A host-mode create
beside a create is two creates again with a loop (2,836 schedules, as many as the other groups
of the ci scope together); the ``host`` situation already puts a running loop beside each pair."""

SCOPES: dict[str, Scope] = {
    s.name: s for s in (
        Scope("ci", sizes=(2,), sessions=(1,), situations=("empty", "idle", "host"),
              faults=(0,), crashes=(0,), ops=_CI_OPS),
        # A store fault in every group of the ci alphabet.  Capacity 1: of the ci
        # alphabet's fault groups at capacity 2, two creates that both succeed took
        # 11,472 of 18,661 schedules; the default scope keeps capacity 2.
        Scope("ci-faults", sizes=(2,), sessions=(1,), situations=("empty", "idle", "host"),
              faults=(1,), crashes=(0,), ops=_CI_OPS, capacity=1),
        # Groups of three, in every CI run: the calls of one idle session (or one beside a
        # serving host loop) with at most two that change it or its gates (a turn, an
        # archive, a disarm or re-arm of the checkpointers).  The groups of three such calls
        # are the dearest: three turns or archives alone take 26,724 schedules in the two
        # situations, a turn, an archive and a re-arm 5,391 (the named scenario
        # turn-archive-rearm, in every CI run too); every pair of them is the ci scope's.
        Scope("ci3", sizes=(3,), sessions=(1,), situations=("idle", "host"),
              faults=(0,), crashes=(0,),
              ops=("turn", "interrupt", "read", "archive", "cancel", "rearm"),
              at_most=((("turn", "archive", "cancel", "rearm"), 2),)),
        # The groups of three ci3 cannot afford, sampled: every group of three calls of one
        # idle or serving session from ci3's alphabet and inject, three that change it
        # included, with a store fault and a crash -- 40 seeded random runs each, where
        # DPOR would take thousands (a turn, an archive and a disarm: 5,391 schedules, no
        # fault).  A sample, not a proof (the claim says so); the full scope proves them.
        Scope("ci3-sample", sizes=(3,), sessions=(1,), situations=("idle", "host"),
              faults=(1,), crashes=(1,),
              ops=("turn", "inject", "interrupt", "read", "archive", "cancel", "rearm"),
              scheduler="random:runs=40"),
        # At most one fault and one crash: a group explored with both covers it with fewer
        # (the module doc), so each group is explored once, not four times.
        Scope("default", sizes=(2,), sessions=(1, 2),
              situations=("empty", "idle", "host", "stored", "archived", "mixed"),
              faults=(1,), crashes=(1,)),
        Scope("full", sizes=(2, 3), sessions=(1, 2),
              situations=("empty", "idle", "host", "stored", "archived", "mixed"),
              faults=(1,), crashes=(1,)),
    )
}
"""Named scopes: ``CI_SCOPES`` for every CI run, ``default``, and ``full`` (opt-in: minutes
and hours)."""

CI_SCOPES: tuple[str, ...] = ("ci", "ci-faults", "ci3", "ci3-sample")
"""The scopes every CI run sweeps whole (``tests/test_sweep.py``; the mutation judges'
``sweep``, ``benchmarks.mutation``): the one list."""


def every_budget(scope: Scope) -> Scope:
    """``scope`` with each group explored under every smaller budget of faults and crashes too
    (0 or 1 of each, where ``scope`` says at most 1): the same runs again, and more scenarios.
    What the reduction leaves out, for comparing with it (``benchmarks.bench_subsume``)."""
    return replace(scope, faults=tuple(range(max(scope.faults) + 1)),
                   crashes=tuple(range(max(scope.crashes) + 1)))


def _calls(scope: Scope, sessions: int) -> list[tuple[str, object]]:
    """Every call of the alphabet on these sessions, as (label, model operation)."""
    out: list[tuple[str, object]] = []
    for name, make, plain in ALPHABET:
        if name not in scope.ops:
            continue
        if make is None:
            out.append((name, plain))
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
                    if not scope.admits(group):
                        continue
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


def _shard_parts(spec: str) -> tuple[int, int]:
    """``i/n`` as (i, n); ``ValueError`` with the option's name if it is not one."""
    try:
        i_text, n_text = spec.split("/")
        i, n = int(i_text), int(n_text)
    except ValueError:
        raise ValueError(f"--shard must be i/n (like 0/4), got {spec!r}") from None
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"--shard {spec}: need 0 <= i < n")
    return i, n


def shard(items: Sequence[Scenario], spec: str | None) -> list[tuple[int, Scenario]]:
    """``i/n``: every n-th scenario from the i-th (0-based), with its index; ``None``: all."""
    indexed = list(enumerate(items))
    if spec is None:
        return indexed
    i, n = _shard_parts(spec)
    return [(k, s) for k, s in indexed if k % n == i]


# -- running ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """What exploring one generated scenario found (one line of the ledger)."""

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

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Row:
        """A row as ``to_json`` wrote it; ``ValueError`` naming the first field that is not."""
        return cls(
            _field(data, "index", int), _field(data, "scenario", str),
            _field(data, "schedules", int), _field(data, "pruned", int),
            _field(data, "states", int), _texts(data, "rules"),
            float(_field(data, "seconds", (int, float))), _field(data, "exhausted", bool),
            _field(data, "first", str, ""), _field(data, "audited", int, 0),
            _texts(data, "oracle_errors"),
        )


T = TypeVar("T")


def _field(data: Mapping[str, object], key: str, kind: type[T] | tuple[type[T], ...],
           default: T | None = None) -> T:
    value = data.get(key, default)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ValueError(f"its {key!r} is {json.dumps(value)}")
    return value


def _texts(data: Mapping[str, object], key: str) -> tuple[str, ...]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"its {key!r} is {json.dumps(value)}")
    return tuple(str(v) for v in value)


MakeTarget = Callable[[], InProcessTarget]
"""Builds the target a worker explores on (picklable, for process and Dask workers)."""


class WorkerCodeDiffers(RuntimeError):
    """A worker (a Dask one, say) runs other code than the sweep that sent it work."""


def run_chunk(make_target: MakeTarget, scope: Scope, indices: Sequence[int],
              max_schedules: int | None = None, audit: int | None = None,
              code: str | None = None, scheduler: SchedulerSpec | None = None) -> list[Row]:
    """Explore the scope's scenarios at ``indices`` on one target (the unit of parallel work).

    ``code``: the sender's ``code_fingerprint()``; a worker whose own differs
    refuses the work (``WorkerCodeDiffers``), so the totals, and the ledger,
    never mix the rows of two versions of the oracle or the service.
    """
    if code is not None and code != code_fingerprint():
        raise WorkerCodeDiffers(
            f"a worker runs other code than this sweep (its fingerprint {code_fingerprint()}, "
            f"the sweep's {code}): install the same meerkat-ref on every worker"
        )
    every = scenarios(scope)
    chosen = [(i, every[i]) for i in indices]
    return explore_scenarios(make_target, chosen, max_schedules, audit, scheduler)


def explore_scenarios(make_target: MakeTarget, chosen: Iterable[tuple[int, Scenario]],
                      max_schedules: int | None = None, audit: int | None = None,
                      scheduler: SchedulerSpec | None = None) -> list[Row]:
    """Explore each (index, scenario) with ``scheduler`` (default: DPOR) on one fresh
    in-process target; ``audit``: DPOR's audit rate (``engine.with_audit``)."""
    spec = with_audit(scheduler or parse_scheduler(DEFAULT_SCHEDULER), audit)

    async def main() -> list[Row]:
        rows = []
        async with make_target() as target:
            for index, scenario in chosen:
                report = await explore_with(target, scenario, spec.make(),
                                            store=target.store_kind, max_schedules=max_schedules)
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


# -- the ledger ----------------------------------------------------------------------------------

LEDGER_FORMAT = "meerkat-ref/sweep-ledger@1"
LEDGERS = "sweep-ledgers"
"""Where a sweep's ledger goes unless told (``--ledger``), relative to the current directory."""
LEDGERS_ENV = "MEERKAT_SWEEP_LEDGERS"
"""Names another directory for the default ledgers; set but empty: no default ledger at all."""


def _digest(parts: Iterable[bytes]) -> str:
    hashed = hashlib.sha256()
    for part in parts:
        hashed.update(len(part).to_bytes(8, "big"))
        hashed.update(part)
    return "sha256:" + hashed.hexdigest()[:32]


@functools.cache
def code_fingerprint() -> str:
    """A digest of the code a row depends on: every Python file of the package and of the
    model (``models/``), and the versions of Python and Trio that run them.

    Coarse on purpose: any change to that code (a comment included) makes
    the ledgers of the old code another run's, which is never wrong, only
    slower; a finer one would have to know which files a row depends on.
    """
    files = []
    for root in (Path(__file__).resolve().parents[1], Path(model.__file__).resolve().parent):
        files += sorted((str(p.relative_to(root.parent)), p) for p in root.rglob("*.py"))
    return _digest([
        f"python {sys.version_info[0]}.{sys.version_info[1]}, trio {trio.__version__}".encode(),
        *(part for name, path in files for part in (name.encode(), path.read_bytes())),
    ])


def ledger_header(scope: Scope, variants: Sequence[str], *, store: str,
                  shard_spec: str | None = None, max_schedules: int | None = None,
                  audit: int | None = None,
                  scheduler: SchedulerSpec | None = None) -> dict[str, object]:
    """What makes a ledger's rows valid for a run: a ledger whose header differs is refused.

    Everything that changes what a row holds: the scope (and the digest of
    its scenario list, in order: an index names a scenario only within it),
    the variants swept, the store, the shard, the per-scenario cut, the
    audit rate, the scheduler, and ``code_fingerprint()``.
    """
    every = scenarios(scope)
    return {
        "format": LEDGER_FORMAT,
        "scope": scope.to_json(),
        "variants": list(variants),
        "store": store,
        "shard": None if shard_spec is None else "{}/{}".format(*_shard_parts(shard_spec)),
        "max_schedules": max_schedules,
        "audit": audit,
        "scheduler": DEFAULT_SCHEDULER if scheduler is None else scheduler.text,
        "scenarios_in_scope": len(every),
        "scenario_list": _digest(s.name.encode() for s in every),
        "code": code_fingerprint(),
    }


def default_ledger(scope: str, variant: str, store: str, *, shard_spec: str | None = None,
                   max_schedules: int | None = None, audit: int | None = None,
                   scheduler: SchedulerSpec | None = None) -> Path | None:
    """``sweep-ledgers/<scope>[-shard-I-of-N]-<variant>-<store>[-max-N][-audit-N]
    [-<scheduler>].jsonl`` (the scheduler unless it is the default, DPOR).

    Named by every option that changes a row, so two different commands
    never meet in one file and the same command always finds its own; a
    change of code is what the header catches.  ``LEDGERS_ENV`` moves the
    directory (or, empty, turns the default ledger off: ``None``).
    """
    directory = os.environ.get(LEDGERS_ENV, LEDGERS)
    if not directory:
        return None
    parts = [scope]
    if shard_spec is not None:
        parts.append("shard-{}-of-{}".format(*_shard_parts(shard_spec)))
    parts += [variant, store]
    if max_schedules is not None:
        parts.append(f"max-{max_schedules}")
    if audit is not None:
        parts.append(f"audit-{audit}")
    if scheduler is not None and scheduler.text != DEFAULT_SCHEDULER:
        parts.append(scheduler.text)
    return Path(directory) / (re.sub(r"[^A-Za-z0-9._-]+", "_", "-".join(parts)) + ".jsonl")


def open_ledger(path: str | Path, scope: Scope, variants: Sequence[str], *, store: str,
                shard_spec: str | None = None, max_schedules: int | None = None,
                audit: int | None = None, fresh: bool = False,
                scheduler: SchedulerSpec | None = None) -> Ledger:
    """The sweep's ledger at ``path``: resumed if its header is this run's, else refused.

    ``LedgerError`` (exit 2) for another run's ledger, a file that is not
    one, or a row that is not one of this run's scenarios (checked here, all
    of them, before anything runs); ``fresh`` starts it over.
    """
    header = ledger_header(scope, variants, store=store, shard_spec=shard_spec,
                           max_schedules=max_schedules, audit=audit, scheduler=scheduler)
    ledger = Ledger.open(path, header, fresh=fresh)
    try:
        names = {i: s.name for i, s in shard(scenarios(scope), shard_spec)}
        seen: set[tuple[str, int]] = set()
        for number, data in enumerate(ledger.rows, start=2):
            where = f"ledger {ledger.path}, line {number}"
            try:
                row = Row.from_json(data)
            except ValueError as exc:
                raise LedgerError(f"{where}: not a row of a sweep ({exc})") from None
            variant = data.get("variant")
            if variant not in variants or names.get(row.index) != row.name:
                raise LedgerError(f"{where}: {variant}'s scenario {row.index} {row.name!r} is "
                                  "not one of this sweep's (the file was changed by hand?)")
            if (str(variant), row.index) in seen:
                raise LedgerError(f"{where}: {variant}'s scenario {row.index} is there twice")
            seen.add((str(variant), row.index))
    except BaseException:
        ledger.close()
        raise
    return ledger


def ledger_rows(ledger: Ledger, variant: str) -> dict[int, Row]:
    """The rows of ``variant`` already in the ledger, by scenario index."""
    rows = (Row.from_json(data) for data in ledger.rows if data.get("variant") == variant)
    return {row.index: row for row in rows}


# -- a sweep ---------------------------------------------------------------------------------------


@dataclass
class SweepResult:
    scope: Scope
    variant: str
    total: int  # scenarios in the scope
    rows: list[Row] = field(default_factory=list)  # resumed from the ledger and explored now
    seconds: float = 0.0  # this run's wall time
    shard: str | None = None
    workers: int = 1
    chosen: int = 0  # scenarios this sweep covers: the scope, or its shard
    resumed: int = 0  # rows taken from the ledger, not explored again
    explored_schedules: int = 0  # the schedules this run explored (not the resumed ones)
    ledger: str | None = None
    sampled: bool = False  # a sampling scheduler's runs: no row is exhausted, by design
    scheduler: SchedulerSpec | None = None  # what explored each scenario (None: DPOR)

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
    def complete(self) -> bool:
        """Every scenario of the scope (or shard) is in; false after ``max_scenarios``."""
        return len(self.rows) == self.chosen

    @property
    def rate(self) -> float:
        """Schedules per second of this run's own exploration (resumed rows cost nothing)."""
        return self.explored_schedules / self.seconds if self.seconds else 0.0

    @property
    def oracle_errors(self) -> list[Row]:
        """Scenarios where the oracle caught itself (a footprint that does not hold)."""
        return [r for r in self.rows if r.oracle_errors]

    def to_json(self) -> dict[str, object]:
        return {
            "format": "meerkat-ref/sweep@1",
            "variant": self.variant,
            "scope": self.scope.to_json(),
            "claim": self.scope.describe(self.scheduler),
            "shard": self.shard,
            "scenarios": len(self.rows),
            "scenarios_in_scope": self.total,
            "complete": self.complete,
            "resumed": self.resumed,
            "ledger": self.ledger,
            "schedules": self.schedules,
            "end_states": self.states,
            "violations": len(self.violating),
            "exhausted": self.exhausted,
            "sampled": self.sampled,
            "workers": self.workers,
            "seconds": round(self.seconds, 3),
            "schedules_per_second": round(self.rate, 1) if self.seconds else None,
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
    ledger: Ledger | None = None,
    max_scenarios: int | None = None,
    scheduler: SchedulerSpec | None = None,
) -> SweepResult:
    """Explore every scenario of ``scope`` (or a shard of it); see the module docstring.

    ``jobs`` > 1: a local process pool; ``executor``: any ``concurrent.futures``
    executor (a Dask client's, say), which the caller owns.  The totals do not
    depend on how the work is split.

    ``ledger`` (``open_ledger``): the scenarios of ``variant`` already in it
    are not explored again, only counted (``resumed``); each scenario
    explored now is appended to it as soon as its worker hands it back (a
    chunk at a time from a pool), whichever worker that is.
    ``max_scenarios``: explore at most that many of the others (the first in
    the scope's order), then stop (``complete`` false).  ``progress`` gets
    (explored so far, to explore in this run, row).  ``scheduler``: what
    explores each scenario (default: the scope's own, ``Scope.scheduler``, or DPOR).
    """
    scheduler = scheduler or scope.explorer()
    every = scenarios(scope)
    chosen = shard(every, shard_spec)
    result = SweepResult(scope, variant, len(every), shard=shard_spec, workers=jobs,
                         chosen=len(chosen), ledger=None if ledger is None else str(ledger.path),
                         sampled=scheduler is not None and not scheduler.kind.exhaustive,
                         scheduler=scheduler)
    done = {} if ledger is None else ledger_rows(ledger, variant)
    result.rows.extend(done.values())
    result.resumed = len(done)
    pending = [(i, s) for i, s in chosen if i not in done]
    if max_scenarios is not None:
        pending = pending[:max(0, max_scenarios)]
    started = time.perf_counter()

    def finished(rows: Sequence[Row]) -> None:
        if ledger is not None:  # first on disk, then counted: a row counted is a row kept
            ledger.append([{"variant": variant, **row.to_json()} for row in rows])
        for row in rows:
            result.rows.append(row)
            result.explored_schedules += row.schedules
            if progress is not None:
                progress(len(result.rows) - result.resumed, len(pending), row)

    if executor is None and jobs <= 1:
        for index, scenario in pending:
            finished(explore_scenarios(make_target, [(index, scenario)], max_schedules, audit,
                                       scheduler))
    elif pending:
        code = code_fingerprint()
        run_parallel(run_chunk, [(make_target, scope, chunk, max_schedules, audit, code,
                                  scheduler)
                                 for chunk in _chunks([i for i, _ in pending], jobs)],
                     jobs=jobs, executor=executor, finished=lambda _, rows: finished(rows))
    result.rows.sort(key=lambda r: r.index)
    result.seconds = time.perf_counter() - started
    return result


__all__ = [
    "ALPHABET",
    "CI_SCOPES",
    "LEDGERS",
    "LEDGERS_ENV",
    "LEDGER_FORMAT",
    "SCOPES",
    "SITUATIONS",
    "DaskCluster",
    "Row",
    "Scope",
    "SweepResult",
    "WorkerCodeDiffers",
    "calls",
    "code_fingerprint",
    "dask_executor",
    "default_ledger",
    "every_budget",
    "explore_scenarios",
    "group",
    "ledger_header",
    "ledger_rows",
    "open_ledger",
    "run_chunk",
    "scenarios",
    "shard",
    "sweep",
]


# -- the command line ---------------------------------------------------------------------------

EXIT_STOPPED = 4
"""``--max-scenarios`` stopped the sweep before the end with nothing violated so far."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "Exit codes: 0 every scenario explored, clean; 1 a violation (or a window exposed); "
        "2 bad usage or input (a ledger of another run included); 3 an error of the oracle "
        f"itself (--audit); {EXIT_STOPPED} stopped by --max-scenarios before the end, nothing "
        "violated so far (the same command goes on); 130 interrupted (^C): the ledger keeps "
        "every scenario that finished."
    )
    parser.add_argument("--scope", default="default", choices=sorted(SCOPES),
                        help="which scope to sweep (default: default, about 8 minutes on two "
                        "cores; the ci scopes are small; full is more than 10 hours)")
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
    add_scheduler_option(parser, "how each generated scenario is explored (default: dpor, "
                         "every behaviour once; another makes the ledger another run's)")
    parser.add_argument("--audit", nargs="?", const="default", default=None, metavar="N|all",
                        help="check DPOR's independence relation as it runs: run 1 in N "
                        f"(default {AUDIT_RATE}; all: every one) of the pairs of steps it calls "
                        "independent both ways and compare the whole state; exit 3 on a "
                        "difference")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--ledger", default=None, metavar="FILE",
                       help="the ledger: each scenario's result is appended to it as it "
                       "finishes, and a run that was stopped goes on from it (the scenarios "
                       f"in it are not explored again). Default: {LEDGERS}/<scope>"
                       "[-shard-I-of-N]-<variant>-<store>[-max-N][-audit-N][-<scheduler>].jsonl "
                       "in the "
                       f"current directory (${LEDGERS_ENV}: another directory; empty: none). "
                       "A ledger of another run (other code, scope, variant, store, shard or "
                       "options) is refused (exit 2), never mixed")
    where.add_argument("--no-ledger", action="store_true",
                       help="write no ledger and resume from none")
    parser.add_argument("--fresh", action="store_true",
                        help="start the ledger over (it is replaced) instead of going on from it")
    parser.add_argument("--max-scenarios", type=int, default=None, metavar="N",
                        help="explore at most N scenarios (of those not in the ledger yet), "
                        f"then stop: the ledger keeps them and the same command goes on (exit "
                        f"{EXIT_STOPPED} if scenarios are left and none violated)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--junit-xml", default=None, metavar="FILE",
                        help="write the results as JUnit XML for CI: one test case per generated "
                        "scenario (per window with --variant seed-0.4.0), a command that "
                        "re-explores it in each failure")
    parser.add_argument("--list", action="store_true",
                        help="only list the scope's scenarios (after --shard)")


Targets = Sequence[tuple[str, MakeTarget]]
"""(variant label, target maker) pairs to sweep: one, or one per seed window."""


def _ledger_path(args: argparse.Namespace, store: str, audit: int | None) -> Path | None:
    if args.no_ledger:
        return None
    if args.ledger is not None:
        return Path(args.ledger)
    return default_ledger(args.scope, args.variant, store, shard_spec=args.shard,
                          max_schedules=args.max_schedules, audit=audit,
                          scheduler=args.scheduler)


def run(args: argparse.Namespace, targets: Targets, *, store: str = "memory") -> int:
    """``meerkat-ref sweep``: exit 0 clean, 1 on a violation (or a window exposed), 2 usage
    (a ledger of another run included), 3 an oracle error (``--audit``), 4 stopped by
    ``--max-scenarios`` with scenarios left, 130 interrupted."""
    scope = SCOPES[args.scope]
    # (a namespace made by hand may lack it); unless given, the scope's own (``None``: DPOR)
    args.scheduler = getattr(args, "scheduler", None) or scope.explorer()
    try:
        audit = audit_rate(args.audit)
        if args.scheduler is not None:
            with_audit(args.scheduler, audit)  # the audit is DPOR's: refused for another
        chosen = shard(scenarios(scope), args.shard)
        if args.jobs < 1:
            raise ValueError("--jobs must be at least 1")
        if args.max_scenarios is not None and args.max_scenarios < 1:
            raise ValueError("--max-scenarios must be at least 1")
        if args.fresh and args.no_ledger:
            raise ValueError("--fresh starts a ledger over: it makes no sense with --no-ledger")
        problem = None if args.junit_xml is None else output_problem(args.junit_xml,
                                                                      directory=False)
        if problem is not None:
            raise ValueError(f"--junit-xml {args.junit_xml!r}: {problem}")
        path = _ledger_path(args, store, audit)
        problem = None if path is None else output_problem(str(path), directory=False)
        if problem is not None:
            raise ValueError(f"ledger {str(path)!r}: {problem}")
    except ValueError as exc:
        print(f"meerkat-ref: {exc}", file=sys.stderr)
        return 2
    if args.list:
        for index, scenario in chosen:
            print(f"{index:>6}  {scenario.name}")
        print(f"{len(chosen)} scenarios; {scope.describe(args.scheduler)}")
        return 0
    ledger = None
    if path is not None:
        try:
            ledger = open_ledger(path, scope, [label for label, _ in targets], store=store,
                                 shard_spec=args.shard, max_schedules=args.max_schedules,
                                 audit=audit, fresh=args.fresh, scheduler=args.scheduler)
        except LedgerError as exc:
            print(f"meerkat-ref: {exc}", file=sys.stderr)
            return 2
    try:
        return _run(args, targets, scope, chosen, audit, ledger)
    finally:
        if ledger is not None:
            ledger.close()


def _run(args: argparse.Namespace, targets: Targets, scope: Scope,
         chosen: Sequence[tuple[int, Scenario]], audit: int | None,
         ledger: Ledger | None) -> int:
    cluster = None
    if args.dask:
        try:
            cluster = dask_executor(args.dask)
        except (RuntimeError, OSError) as exc:
            print(f"meerkat-ref: {exc}", file=sys.stderr)
            return 2
    results = []
    try:
        for label, make_target in targets:
            if not args.json:
                print(f"sweeping {label}: {len(chosen)} scenarios{_kept(ledger, label)} ...",
                      file=sys.stderr, flush=True)
            results.append(sweep(
                make_target, scope, variant=label, shard_spec=args.shard,
                jobs=args.jobs if cluster is None else cluster.workers,
                executor=None if cluster is None else cluster.executor,
                max_schedules=args.max_schedules, progress=None if args.json else _progress(),
                audit=audit, ledger=ledger, max_scenarios=args.max_scenarios,
                scheduler=args.scheduler,
            ))
    except KeyboardInterrupt:
        kept = ("nothing is kept (no ledger)" if ledger is None else
                f"the ledger {ledger.path} keeps every scenario that finished; the same "
                "command goes on from there")
        print(f"\nmeerkat-ref: interrupted: {kept}", file=sys.stderr)
        return 130
    except WorkerCodeDiffers as exc:
        print(f"meerkat-ref: {exc}", file=sys.stderr)
        return 2
    finally:
        if cluster is not None:
            cluster.close()
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
    if any(r.violating for r in results):
        return 1
    return 0 if all(r.complete for r in results) else EXIT_STOPPED


def _kept(ledger: Ledger | None, variant: str) -> str:
    """What the ledger brings to this variant's sweep, for the opening line."""
    if ledger is None:
        return " (no ledger)"
    if ledger.created:
        return f"; ledger {ledger.path} (new)"
    torn = "; a last line cut short by a kill was dropped" if ledger.torn else ""
    return (f"; ledger {ledger.path}: {len(ledger_rows(ledger, variant))} already in it, "
            f"not explored again{torn}")


def junit_cases(results: Sequence[SweepResult], scope: Scope) -> list[Case]:
    """One case per explored scenario and variant; a violation is its failure.

    The failure names the rules, the first violation, and the command that
    explores that one scenario again (``--shard INDEX/TOTAL`` picks exactly it;
    ``--no-ledger``, so it is explored, not read back from a ledger).
    """
    total = len(scenarios(scope))
    cases = []
    for result in results:
        for row in result.rows:
            failure = None
            if row.rules:
                again = (f"meerkat-ref sweep --scope {scope.name} --shard {row.index}/{total}"
                         + (f" --variant {result.variant}" if result.variant != "reference"
                            else "") + " --no-ledger")
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


def _coverage(result: SweepResult) -> str:
    if result.sampled:
        return "sampled (the runs asked for, not every interleaving)"
    return "all exhausted" if result.exhausted else "SOME CUT SHORT"


def _summary(result: SweepResult) -> None:
    where = f" (shard {result.shard} of {result.total})" if result.shard else ""
    resumed = (f"; {result.resumed} of them resumed from the ledger, not explored again"
               if result.resumed else "")
    print(f"\n{result.variant}: {len(result.rows)} scenarios{where}, {result.schedules} "
          f"schedules, {result.states} end states, {len(result.violating)} violating, "
          f"{_coverage(result)}{resumed}; "
          f"{result.seconds:.1f} s ({result.rate:.0f} schedules/s, {result.workers} worker(s))")
    if not result.complete:
        print(f"STOPPED before the end: {result.chosen - len(result.rows)} of {result.chosen} "
              "scenarios left, not explored; "
              + ("the same command goes on from the ledger." if result.ledger else
                 "with a ledger, the same command would go on."))
    print(f"claim: {result.scope.describe(result.scheduler)}.")
    for row in result.violating:
        print(f"  {row.name}: {','.join(row.rules)} -- {row.first[:160]}")
    audited = sum(r.audited for r in result.rows)
    if audited or result.oracle_errors:
        print(f"audit: {audited} pairs of steps called independent run both ways; "
              f"{len(result.oracle_errors)} scenario(s) with an oracle error")
    for row in result.oracle_errors:
        for text in row.oracle_errors:
            print(f"  ORACLE ERROR in {row.name}: {text}")


__all__ += ["EXIT_STOPPED", "add_arguments", "run"]
