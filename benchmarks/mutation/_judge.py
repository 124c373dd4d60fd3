"""``python -m benchmarks.mutation._serve benchmarks.mutation._judge JUDGE STORE``: one judge.

Run inside ``_serve`` (so the mutant is what ``meerkat_ref`` imports), it
judges with the oracle's own Python API, stopping at the first violation, and
prints one JSON line: ``{"killed": bool, "rules": [...], "where": "..."}``.
A crash of this process (the mutant fails to import, or makes the oracle
raise) prints no such line; the runner records it as killed by an error.

Judges (``_run.JUDGES`` tries them cheapest first: for the store the contract suite first):

``conform``  ``conform`` over the reference adapter, started through
             ``_serve`` so the adapter process runs the mutant too; default
             options but no free-running runs (their verdict is luck) and the
             bounded DFS for its exhaustive search (``--search dfs``), stopped
             at the first failing clause.  Why not DPOR, conform's default over
             an adapter that declares its footprints, as this one does: it is
             ``check``'s search again (the same engine, scenarios and rules over
             the same service, with the reference's own declaration), two
             minutes a mutant that conform's other phases let through, for no
             verdict ``check`` does not give.
``check``    every named scenario explored in full (DPOR), as ``meerkat-ref
             check`` does, stopped at the first violating run.
``sweep``    every scenario of the scopes every CI run sweeps
             (``sweep.CI_SCOPES``), each explored as its scope says (in full,
             or ``ci3-sample``'s seeded sample), stopped at the first
             violating scenario.
``contract`` the store contract suite (``meerkat_ref.testing.STORE_CHECKS``,
             what any store must pass, the checks third-party stores run
             with ``check_session_store``) on each store kind that runs the
             mutated module (``_run.STORE_KINDS``: memory, SQLite or both), in
             this process (its crash and owner checks' children through
             ``_serve``), stopped at the first failing check; its rules are
             that check's clauses.  No pytest: its assertion rewriter once
             imported the original store ahead of the mutant.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Sequence


def _verdict(killed: bool, rules: Sequence[str] = (), where: str = "") -> None:
    print(json.dumps({"killed": killed, "rules": sorted(set(rules)), "where": where}),
          flush=True)


def _conform(store: str) -> None:
    import trio

    from meerkat_ref.oracle.conform import Options, Report, conform_target, load_concurrent
    from meerkat_ref.oracle.conform._report import Failure
    from meerkat_ref.oracle.targets import ProtocolError, adapter_target

    class Stop(Exception):
        pass

    class FirstFailure(Report):
        def fail(self, failure: Failure) -> None:
            super().fail(failure)
            raise Stop

    from meerkat_ref._spec import spec_dir

    argv = [sys.executable, "-m", "benchmarks.mutation._serve", "meerkat_ref.adapter",
            "--store", store]
    report = FirstFailure(adapter=" ".join(argv))
    concurrent = load_concurrent(spec_dir() / "vectors" / "concurrent.json")
    # No free-running runs: whether one of them hits a window is the machine's luck,
    # and a verdict must not be (everything else conform does is seeded or exhaustive).
    opts = Options(free_runs=0, search="dfs")  # DPOR here would be ``check`` again (above)

    async def main() -> None:
        try:
            async with adapter_target(argv, opts.timeout) as target:
                await conform_target(target, opts, report, concurrent)
        except ProtocolError as exc:
            report.protocol_error("hello", str(exc))

    with contextlib.suppress(Stop):
        trio.run(main)
    if report.protocol:
        _verdict(True, ["PROTOCOL"], report.protocol[0][:300])
        return
    failures = list(report.minimal.values())
    _verdict(bool(failures), [f.clause for f in failures],
             "; ".join(f"{f.phase}: {f.case}" for f in failures)[:300])


def _explore(store: str, which: str) -> None:
    import trio

    from meerkat_ref.oracle.engine import SCENARIOS, explore, explore_with
    from meerkat_ref.oracle.sweep import CI_SCOPES, SCOPES, _quiet_checkpoints, scenarios
    from meerkat_ref.variants import Variant

    chosen = [(s, None) for s in SCENARIOS] if which == "check" else [
        (s, SCOPES[name].explorer()) for name in CI_SCOPES for s in scenarios(SCOPES[name])]

    async def main() -> tuple[list[str], str]:
        async with Variant("reference").target(store=store) as target:
            for scenario, spec in chosen:
                report = await (
                    explore(target, scenario, bound=scenario.bound, store=store,
                            stop_on_violation=True) if spec is None else
                    explore_with(target, scenario, spec.make(), store=store,
                                 stop_on_violation=True))
                first = report.first()
                if first is not None:
                    v = first.violations[0]
                    return ([x.rule for x in first.violations],
                            f"{scenario.name}: {v.rule}: {v.message}"[:300])
        return [], ""

    with _quiet_checkpoints():
        rules, where = trio.run(main)
    _verdict(bool(rules), rules, where)


def _contract(kinds: Sequence[str]) -> None:
    import functools

    import trio

    from meerkat_ref.testing import STORE_CHECKS, check_session_store

    # The checks that start a child process start it through _serve too, so the
    # child imports the mutant (the variable naming it is inherited).
    launcher = (sys.executable, "-m", "benchmarks.mutation._serve")
    for kind in kinds:
        for check in STORE_CHECKS:
            report = trio.run(functools.partial(
                check_session_store, kind, checks=[check], raise_on_failure=False,
                launcher=launcher))
            for failed in report.failed:
                _verdict(True, failed.check.clauses,
                         f"{kind}: {failed.check.name}: {failed.detail}"[:300])
                return
    _verdict(False)


def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.mutation._serve benchmarks.mutation._judge",
        description="One judge of one mutant; prints one JSON line with the verdict.")
    parser.add_argument("judge", choices=("conform", "check", "sweep", "contract"))
    parser.add_argument("store", help="the store kind the judge runs over (contract: the "
                        "kinds, comma-separated)")
    args = parser.parse_args(argv)
    judge, store = args.judge, args.store
    if judge == "conform":
        _conform(store)
    elif judge in ("check", "sweep"):
        _explore(store, judge)
    else:  # "contract": argparse admits no other
        _contract(store.split(","))


if __name__ == "__main__":
    main(sys.argv[1:])
