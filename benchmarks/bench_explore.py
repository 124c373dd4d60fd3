"""Exploration: how fast each strategy finds each seed window, against Trio's own scheduling.

For each window of the seed (opened alone) and the scenario that exposes it:
schedules and seconds to the first counterexample, median over seeds, for
every strategy here (DFS with iterative preemption bounds, PCT, uniform
random, Hypothesis-driven) and for two baselines run in the same process on
the same scenario and checks: Trio's default scheduler (each batch of
runnable tasks reversed with probability 1/2) and the mode Trio switches to
under Hypothesis (each batch shuffled from a seeded random).  A strategy that
does not find a window within its budget counts as not found.

Also: schedules per second for each named scenario under DFS (reference);
DPOR against the plain DFS (every schedule, no reduction) per named scenario:
schedules, CPU seconds, end states; and the sweep's ``ci`` scope with 1 and 2
worker processes.  ``python -m benchmarks.bench_explore --dpor [--quick]``
prints only those two tables.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import trio
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from meerkat_ref.oracle.check import explore, find_counterexample, run_once
from meerkat_ref.oracle.engine import (
    SCENARIOS,
    HypothesisStrategy,
    PCTStrategy,
    RandomStrategy,
    RunOutcome,
    Scenario,
    get_scenario,
)
from meerkat_ref.testing import Window
from meerkat_ref.variants import Variant

from ._common import Row, Section, Table, render_section


def run_free(scenario: Scenario, variant: Variant, seed: int, *,
             deterministic_hook: bool = False) -> RunOutcome:
    """A baseline: the same scenario and checks, but Trio schedules (no points parked).

    ``seed`` seeds Trio's scheduler randomness.  By default Trio reverses each
    batch of runnable tasks with probability 1/2; ``deterministic_hook`` uses
    the mode Trio enables under Hypothesis instead (each batch shuffled).
    """
    import trio._core._run as trio_run

    saved = trio_run._ALLOW_DETERMINISTIC_SCHEDULING
    trio_run._ALLOW_DETERMINISTIC_SCHEDULING = deterministic_hook  # type: ignore[misc]
    trio_run._r.seed(seed)
    try:
        return run_once(variant.target(), scenario, None)
    finally:
        trio_run._ALLOW_DETERMINISTIC_SCHEDULING = saved  # type: ignore[misc]


WINDOW_SCENARIO = {
    Window.SAVE_AFTER_TURN: "turn-save-vs-archive",
    Window.CREATE_RACING_ARCHIVE: "create-vs-archive",
    Window.ARCHIVED_HOST_LOOP: "host-checkpoint-vs-archive",
    Window.SKIP_BY_LENGTH: "host-checkpoint-vs-archive",
}


@dataclass
class Found:
    schedules: int | None  # None: not found within the budget
    seconds: float


def _sweep(run: Callable[[int], RunOutcome], start: int, budget: int) -> Found:
    began = time.perf_counter()
    for n in range(budget):
        if not run(start + n).ok:
            return Found(n + 1, time.perf_counter() - began)
    return Found(None, time.perf_counter() - began)


def _hypothesis(scenario_name: str, variant: Variant, which: int, budget: int) -> Found:
    scenario = get_scenario(scenario_name)
    count = [0]
    began = time.perf_counter()

    @seed(which)
    @settings(
        max_examples=budget,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def run(data: st.DataObject) -> None:
        count[0] += 1
        outcome = run_once(variant.target(), scenario, HypothesisStrategy(data))
        assert outcome.ok

    try:
        run()
    except AssertionError:
        return Found(count[0], time.perf_counter() - began)
    return Found(None, time.perf_counter() - began)


def _median(found: list[Found]) -> tuple[str, str]:
    hits = [f for f in found if f.schedules is not None]
    if len(hits) * 2 <= len(found):  # the median run did not find it
        return (
            f"not found ({len(hits)}/{len(found)})",
            f"{statistics.median(f.seconds for f in found):.2f}",
        )
    schedules = statistics.median(f.schedules for f in found if f.schedules is not None)
    ordered = sorted(found, key=lambda f: (f.schedules is None, f.schedules or 0))
    return (f"{schedules:g}", f"{ordered[len(ordered) // 2].seconds:.3f}")


@dataclass
class WindowResult:
    window: Window
    scenario: str
    results: dict[str, list[Found]]


def measure_windows(seeds: int, budget: int, trio_budget: int) -> list[WindowResult]:
    out = []
    for window, scenario_name in WINDOW_SCENARIO.items():
        variant = Variant.parse(f"seed-0.4.0:{window.value}")
        scenario = get_scenario(scenario_name)
        results: dict[str, list[Found]] = {}
        dfs: list[Found] = []
        for _ in range(seeds):
            began = time.perf_counter()
            outcome, n, _ = find_counterexample(
                variant.target(), scenario, max_bound=2, max_schedules=budget
            )
            dfs.append(Found(n if outcome else None, time.perf_counter() - began))
        results["dfs (bounds 0,1,2)"] = dfs

        def pct(n: int, sc: Scenario = scenario, v: Variant = variant) -> RunOutcome:
            return run_once(v.target(), sc, PCTStrategy(n, depth=3, expected_steps=30))

        def uniform(n: int, sc: Scenario = scenario, v: Variant = variant) -> RunOutcome:
            return run_once(v.target(), sc, RandomStrategy(n))

        def trio_default(n: int, sc: Scenario = scenario, v: Variant = variant) -> RunOutcome:
            return run_free(sc, v, n)

        def trio_hook(n: int, sc: Scenario = scenario, v: Variant = variant) -> RunOutcome:
            return run_free(sc, v, n, deterministic_hook=True)

        results["pct (d=3)"] = [_sweep(pct, k * budget, budget) for k in range(seeds)]
        results["random"] = [_sweep(uniform, k * budget, budget) for k in range(seeds)]
        results["hypothesis"] = [
            _hypothesis(scenario_name, variant, k, budget) for k in range(seeds)
        ]
        results["trio default"] = [_sweep(trio_default, 0, trio_budget)]
        results["trio hypothesis hook"] = [_sweep(trio_hook, 0, trio_budget)]
        out.append(WindowResult(window, scenario_name, results))
    return out


def window_rows(measured: list[WindowResult]) -> list[list[str]]:
    rows = [["window", "scenario", "strategy", "schedules to 1st (median)", "seconds (median)"]]
    for m in measured:
        for name, found in m.results.items():
            schedules, seconds = _median(found)
            rows.append(
                [f"{m.window.number} {m.window.value}", m.scenario, name, schedules, seconds]
            )
    return rows


def best_seconds(m: WindowResult) -> tuple[str, float]:
    """Our fastest strategy on this window (median seconds; not-found counts as infinite)."""
    best = ("none", float("inf"))
    for name, found in m.results.items():
        if name.startswith("trio"):
            continue
        hits = [f for f in found if f.schedules is not None]
        if len(hits) * 2 > len(found):
            median = statistics.median(f.seconds if f.schedules else float("inf") for f in found)
            if median < best[1]:
                best = (name, median)
    return best


def throughput_table(bound_cap: int | None) -> list[list[str]]:
    rows = [["scenario", "bound", "schedules", "pruned", "seconds", "schedules/s"]]
    reference = Variant.parse("reference")
    for scenario in SCENARIOS:
        own = scenario.bound if scenario.bound is not None else bound_cap
        bound = own if bound_cap is None or own is None else min(own, bound_cap)
        report = explore(reference.target(), scenario, bound=bound)
        rate = report.schedules / report.seconds if report.seconds else 0.0
        rows.append(
            [
                scenario.name,
                str(bound),
                str(report.schedules),
                str(report.pruned),
                f"{report.seconds:.1f}",
                f"{rate:.0f}",
            ]
        )
    return rows


def dpor_table(dfs_cap: int) -> list[list[str]]:
    """DPOR against the plain DFS on each named scenario (reference, memory store).

    The plain DFS is cut at ``dfs_cap`` schedules (then shown as ">= N, cut"):
    the largest take hours.  Seconds are CPU seconds of this process, so a
    loaded machine does not inflate them.
    """
    from meerkat_ref.oracle.check import in_process
    from meerkat_ref.oracle.engine import SearchReport, explore_dfs, explore_dpor
    from meerkat_ref.oracle.targets import InProcessTarget

    rows = [["scenario", "DPOR schedules", "DPOR s", "plain DFS schedules", "plain DFS s",
             "ratio", "end states", "same end states"]]
    reference = Variant.parse("reference")
    for scenario in SCENARIOS:
        async def both(target: InProcessTarget, sc: Scenario = scenario
                       ) -> tuple[SearchReport, float, SearchReport, float]:
            t0 = time.process_time()
            d = await explore_dpor(target, sc)
            t1 = time.process_time()
            p = await explore_dfs(target, sc, bound=None, reduce=False, max_schedules=dfs_cap)
            return d, t1 - t0, p, time.process_time() - t1

        d, ds, p, ps = in_process(reference.target(), both)
        plain = f"{p.schedules}" if p.exhausted else f">= {p.schedules}, cut"
        # DPOR reaches each end state of the plain DFS, or one covering it (``covers``).
        same = (("yes" if d.end_states <= p.end_states and not d.uncovered(p) else "NO")
                if p.exhausted else "-")
        ratio = p.schedules / max(d.schedules, 1)
        rows.append([scenario.name, str(d.schedules), f"{ds:.1f}", plain, f"{ps:.1f}",
                     f"{'>= ' if not p.exhausted else ''}{ratio:.1f}x", str(d.states), same])
    return rows


def sweep_table(scope_name: str) -> list[list[str]]:
    """The sweep of one scope with 1 and 2 worker processes: totals must agree."""
    from functools import partial

    from meerkat_ref.oracle.sweep import SCOPES, sweep

    rows = [["scope", "workers", "scenarios", "schedules", "end states", "seconds",
             "schedules/s"]]
    make = partial(Variant.parse("reference").target, store="memory")
    for jobs in (1, 2):
        result = sweep(make, SCOPES[scope_name], jobs=jobs)
        rows.append([scope_name, str(jobs), str(len(result.rows)), str(result.schedules),
                     str(result.states), f"{result.seconds:.1f}",
                     f"{result.schedules / result.seconds:.0f}"])
    return rows


def markdown(rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    out += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(out)


def section(quick: bool) -> Section:
    """The exploration section of ``python -m benchmarks`` (synchronous: each run is a trio.run)."""
    began = time.perf_counter()
    seeds, budget, trio_budget = (3, 300, 100) if quick else (5, 2000, 1000)
    measured = measure_windows(seeds, budget, trio_budget)
    result = Section("exploration", "4. Exploration")
    for m in measured:
        name, seconds = best_seconds(m)
        trio_found = [f for k, v in m.results.items() if k.startswith("trio") for f in v]
        trio_hits = sum(1 for f in trio_found if f.schedules is not None)
        trio_text = "found" if trio_hits else f"not found in {trio_budget} runs"
        trio_seconds = max(f.seconds for f in trio_found)
        result.rows.append(
            Row(
                figure=f"window {m.window.number} ({m.window.value}): first counterexample in "
                f"{seconds:.3f} s ({name}, median of {seeds})",
                baseline=f"Trio's own scheduling: {trio_text} ({trio_seconds:.1f} s)",
                ratio=seconds / trio_seconds if trio_hits else None,
                goal="< 2 s median",
                passed=seconds < 2.0,
                ratio_text=None if trio_hits else "Trio: never (counts as not found)",
            )
        )
    result.tables.append(
        Table(
            f"Schedules and seconds to the first counterexample (median over {seeds} seeds; "
            f"budget {budget} schedules per seed, {trio_budget} runs per Trio baseline)",
            *_split(window_rows(measured)),
        )
    )
    result.tables.append(
        Table(
            "Exploration throughput (reference, memory store, DFS)",
            *_split(throughput_table(1 if quick else None)),
        )
    )
    result.tables.append(
        Table(
            "DPOR against the plain DFS (reference, memory store, no bound; CPU seconds)",
            *_split(dpor_table(300 if quick else 40_000)),
        )
    )
    result.tables.append(
        Table("The sweep's ci scope, 1 and 2 worker processes (wall seconds)",
              *_split(sweep_table("ci")))
    )
    result.notes.append(
        "'not found (k/n)': found in k of n seeds, so the median run did not find it. "
        "Trio default: each batch of runnable tasks reversed with probability 1/2; "
        "Trio hypothesis hook: the mode Trio uses under Hypothesis (each batch shuffled)."
    )
    result.seconds = time.perf_counter() - began
    return result


def _split(rows: list[list[str]]) -> tuple[list[str], list[list[str]]]:
    return rows[0], rows[1:]


async def run(quick: bool, workdir: object) -> Section:
    # Each exploration run is its own trio.run, which cannot nest: use a thread.
    return await trio.to_thread.run_sync(section, quick)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_explore",
        description="The exploration section of python -m benchmarks, printed as Markdown: "
        "how fast each strategy finds each seed window against Trio's own scheduling, "
        "throughput, DPOR against the plain DFS, and the sweep's ci scope.",
    )
    parser.add_argument("--quick", action="store_true", help="small budgets (a smoke run)")
    parser.add_argument("--dpor", action="store_true",
                        help="only the DPOR-against-plain-DFS table and the sweep's ci scope")
    args = parser.parse_args(argv)
    if args.dpor:
        print(markdown(dpor_table(300 if args.quick else 40_000)))
        print()
        print(markdown(sweep_table("ci")))
    else:
        print(render_section(section(args.quick)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
