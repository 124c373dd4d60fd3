"""A group explored with the most faults and crashes covers it with fewer: measured, and checked.

``python -m benchmarks.bench_subsume [--scope default] [--shard I/N] [--group NAME]...
[--mutant NAME|all|none]...``

The default and full scopes explore each group of calls once, with at most
one store fault and one crash, instead of four times (0 or 1 of each); the
argument is in ``meerkat_ref/oracle/sweep.py``'s module doc.  This command
checks it where it can be run: for every group chosen (``--shard`` over the
scope's groups, every N-th from the I-th, and ``--group`` by name, e.g.
``idle/1s/turn+turn``) it explores every budget apart (``every_budget``)
and the one the scope keeps, on the reference and on each test mutant of
``tests/stateful/mutants.py`` (``--mutant``; default: all), and checks that
the kept variant reached every end state and broke every rule that any
variant did.  It prints, per target: groups, the schedules of every budget
and of the kept one, and the groups each found violating, with their rules.
Exit 1 on a difference (a variant's end state or rule the kept one lacks).
"""

from __future__ import annotations

import argparse
import functools
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from meerkat_ref.oracle.engine import Scenario, explore
from meerkat_ref.oracle.sweep import SCOPES, Scope, every_budget, scenarios
from meerkat_ref.oracle.targets import InProcessTarget
from meerkat_ref.variants import Variant

from ._common import markdown_table

TESTS = Path(__file__).resolve().parent.parent / "tests"

MakeTarget = Callable[[], Any]


def groups(scope: Scope) -> dict[str, list[Scenario]]:
    """Every group of ``every_budget(scope)``, by name (its scenarios' name without the
    budget), each with its variants; the last is the one ``scope`` keeps."""
    out: dict[str, list[Scenario]] = {}
    for scenario in scenarios(every_budget(scope)):
        base = scenario.name.removesuffix("/crash").removesuffix("/fault")
        out.setdefault(base, []).append(scenario)
    kept = {s.name for s in scenarios(scope)}
    for base, variants in out.items():
        assert variants[-1].name in kept, base  # the most of both, generated last
    return out


def mutant_targets(names: Sequence[str]) -> dict[str, MakeTarget]:
    """The test mutants by class name (``all``: every one), as in-process targets."""
    if str(TESTS) not in sys.path:  # the test mutants live beside the tests
        sys.path.insert(0, str(TESTS))
    from stateful.mutants import service_mutants

    known = service_mutants()
    chosen = sorted(known) if "all" in names else list(names)
    out: dict[str, MakeTarget] = {}
    for name in chosen:
        if name not in known:
            raise SystemExit(f"unknown mutant {name!r}; known: {', '.join(sorted(known))}")
        out[name] = functools.partial(_mutant_target, known[name], name)
    return out


def _mutant_target(cls: type[Any], name: str) -> InProcessTarget:
    return InProcessTarget(lambda b, c, s, p: cls(b, c, s, points=p), description=name)


@dataclass
class Measured:
    """One target over the chosen groups."""

    target: str
    groups: int = 0
    every_schedules: int = 0  # every budget apart
    kept_schedules: int = 0  # the variant the scope keeps
    violating_every: dict[str, tuple[str, ...]] = field(default_factory=dict)
    violating_kept: dict[str, tuple[str, ...]] = field(default_factory=dict)
    differences: list[str] = field(default_factory=list)
    seconds: float = 0.0


async def measure(name: str, make: MakeTarget, chosen: dict[str, list[Scenario]]) -> Measured:
    m = Measured(name)
    started = time.perf_counter()
    async with make() as target:
        for base, variants in chosen.items():
            m.groups += 1
            found = []
            for scenario in variants:
                report = await explore(target, scenario, bound=None, store="memory")
                rules = {v.rule for run in report.violating for v in run.violations}
                found.append((report, rules))
                m.every_schedules += report.schedules
            kept, kept_rules = found[-1]
            m.kept_schedules += report.schedules
            every_rules = set().union(*(rules for _, rules in found))
            if every_rules:
                m.violating_every[base] = tuple(sorted(every_rules))
            if kept_rules:
                m.violating_kept[base] = tuple(sorted(kept_rules))
            for scenario, (other, rules) in zip(variants, found, strict=True):
                lacking = kept.uncovered(other)  # neither reached nor covered (``covers``)
                if lacking:
                    m.differences.append(f"{scenario.name}: {len(lacking)} end "
                                         f"state(s) the kept {variants[-1].name} lacks")
                if not rules <= kept_rules:
                    m.differences.append(f"{scenario.name}: breaks {sorted(rules - kept_rules)}"
                                         f", the kept {variants[-1].name} does not")
    m.seconds = time.perf_counter() - started
    return m


def table(rows: Sequence[Measured]) -> str:
    def shown(violating: dict[str, tuple[str, ...]]) -> str:
        return "; ".join(f"{g} ({', '.join(r)})" for g, r in violating.items()) or "none"

    return markdown_table(
        ["target", "groups", "schedules, every budget apart", "schedules, the kept budget",
         "ratio", "groups violating, every budget", "groups violating, kept", "same", "s"],
        [[m.target, str(m.groups), f"{m.every_schedules:,}", f"{m.kept_schedules:,}",
          f"{m.every_schedules / max(m.kept_schedules, 1):.2f}x", shown(m.violating_every),
          shown(m.violating_kept), "yes" if not m.differences else "NO",
          f"{m.seconds:.0f}"] for m in rows])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_subsume",
                                     description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--scope", default="default", choices=("default", "full"))
    parser.add_argument("--shard", default=None, metavar="I/N",
                        help="every N-th group from the I-th (default: none but --group's)")
    parser.add_argument("--group", action="append", default=[], metavar="NAME",
                        help="a group by name, e.g. idle/1s/turn+turn (repeatable)")
    parser.add_argument("--mutant", action="append", default=None, metavar="NAME",
                        help="a test mutant (repeatable; all: every one, the default; none: "
                        "the reference only)")
    args = parser.parse_args(argv)
    every = groups(SCOPES[args.scope])
    names = list(every)
    sharded: list[str] = []
    if args.shard is not None:
        try:
            i, n = (int(part) for part in args.shard.split("/"))
        except ValueError:
            parser.error(f"--shard must be I/N, got {args.shard!r}")
        if not 0 <= i < n:
            parser.error(f"--shard {args.shard}: need 0 <= I < N")
        sharded = names[i::n]
    chosen_names = list(dict.fromkeys([*args.group, *sharded]))
    unknown = [n for n in chosen_names if n not in every]
    if unknown or not chosen_names:
        parser.error(f"no such group: {', '.join(unknown)}" if unknown
                     else "choose groups: --shard I/N or --group NAME")
    chosen = {n: every[n] for n in chosen_names}
    wanted = args.mutant or ["all"]
    targets: dict[str, MakeTarget] = {
        "reference": lambda: Variant("reference").target(store="memory")}
    if wanted != ["none"]:
        targets.update(mutant_targets(wanted))
    # An injected fault makes a host loop log its failed checkpoint: expected here.
    logging.getLogger("meerkat_ref.checkpoint").setLevel(logging.ERROR)
    rows = [trio.run(measure, name, make, chosen) for name, make in targets.items()]
    print(f"{len(chosen)} groups of scope {args.scope}: {', '.join(chosen)}\n")
    print(table(rows))
    problems = [f"{m.target}: {d}" for m in rows for d in m.differences]
    for problem in problems:
        print(f"DIFFERENCE {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
