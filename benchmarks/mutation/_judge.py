"""``python -m benchmarks.mutation._serve benchmarks.mutation._judge JUDGE STORE``: one judge.

Run inside ``_serve`` (so the mutant is what ``meerkat_ref`` imports), it
judges with the oracle's own Python API, stopping at the first violation, and
prints one JSON line: ``{"killed": bool, "rules": [...], "where": "..."}``.
A crash of this process (the mutant fails to import, or makes the oracle
raise) prints no such line; the runner records it as killed by an error.

Judges (cheapest first, the order ``_run.JUDGES`` tries them):

``conform``  ``conform`` over the reference adapter, started through
             ``_serve`` so the adapter process runs the mutant too; default
             options but no free-running runs (their verdict is luck), stopped
             at the first failing clause.
``check``    every named scenario explored in full (DPOR), as ``meerkat-ref
             check`` does, stopped at the first violating run.
``sweep``    every scenario of ``sweep --scope ci``, each explored in full,
             stopped at the first violating scenario.
``contract`` the store contract suite (``STORE_CONTRACT``): the tests of
             ``tests/test_store_contract.py`` that any store must pass, run
             by pytest in this process, stopped at the first failure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Sequence

from ._paths import ROOT

STORE_CONTRACT = (
    # tests/test_store_contract.py, "the contract, on every store" and the random
    # histories against a dict model: what a third-party store must pass.  The
    # codec, damaged-file and schema tests that follow are of our SQLite store's
    # internals, not the contract, and are not part of the oracle.
    "test_round_trip_every_message_type",
    "test_save_replaces",
    "test_saved_metadata_is_not_aliased",
    "test_load_missing_is_none",
    "test_list_order_newest_updated_first_then_id",
    "test_list_order_follows_updates",
    "test_list_filters_are_strictly_after",
    "test_list_pagination",
    "test_list_empty_store",
    "test_filter_rejects_negative_page",
    "test_delete_is_idempotent",
    "test_exists",
    "test_pointed_store_passes_through",
    "test_every_call_is_a_checkpoint",
    "test_random_histories_match_model",
    "test_sqlite_restart_keeps_everything",
)
"""The store contract suite: each a test of ``tests/test_store_contract.py``."""


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
    opts = Options(free_runs=0)

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

    from meerkat_ref.oracle.engine import SCENARIOS, explore
    from meerkat_ref.oracle.sweep import SCOPES, _quiet_checkpoints, scenarios
    from meerkat_ref.variants import Variant

    chosen = SCENARIOS if which == "check" else scenarios(SCOPES["ci"])

    async def main() -> tuple[list[str], str]:
        async with Variant("reference").target(store=store) as target:
            for scenario in chosen:
                report = await explore(target, scenario, bound=scenario.bound, store=store,
                                       stop_on_violation=True)
                first = report.first()
                if first is not None:
                    v = first.violations[0]
                    return ([x.rule for x in first.violations],
                            f"{scenario.name}: {v.rule}: {v.message}"[:300])
        return [], ""

    with _quiet_checkpoints():
        rules, where = trio.run(main)
    _verdict(bool(rules), rules, where)


def _contract() -> None:
    import pytest

    # --assert=plain: pytest's assertion rewriter sits first on sys.meta_path and
    # rewrites every module of a distribution with a pytest plugin (ours has one),
    # so it would import the original module ahead of the mutant's hook.
    code = pytest.main([
        str(ROOT / "tests" / "test_store_contract.py"), "-x", "-q", "-p", "no:cacheprovider",
        "-p", "no:randomly", "--assert=plain", "--rootdir", str(ROOT),
        "-k", " or ".join(STORE_CONTRACT),
    ])
    if code == 0:
        _verdict(False)
    elif code == 1:
        _verdict(True, ["STORE-CONTRACT"], "tests/test_store_contract.py failed")
    else:
        raise SystemExit(f"pytest could not run the store contract suite (exit {int(code)})")


def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.mutation._serve benchmarks.mutation._judge",
        description="One judge of one mutant; prints one JSON line with the verdict.")
    parser.add_argument("judge", choices=("conform", "check", "sweep", "contract"))
    parser.add_argument("store", help="the store kind the judge runs over")
    args = parser.parse_args(argv)
    judge, store = args.judge, args.store
    if judge == "conform":
        _conform(store)
    elif judge in ("check", "sweep"):
        _explore(store, judge)
    elif judge == "contract":
        _contract()
    else:
        raise SystemExit(f"unknown judge {judge!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
