"""``python -m meerkat_ref.testing --store KIND[:DIR]``: the store contract, from a shell or CI.

Runs ``check_session_store`` against a store kind (``memory``, ``sqlite``, an
entry point's name, or ``package.module:NAME``), prints the report (or JSON
with ``--json``), and exits 0 when every check passed or was skipped, 1 when
one failed, 2 on bad usage (one line on stderr).  ``DIR``, if given, is where
each check makes its directories.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

import trio

from .._types import InvalidArgument
from ..store._kinds import CAPABILITIES, parse_store
from ._store_checks import STORE_CHECKS
from ._store_contract import check_session_store


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m meerkat_ref.testing",
        description="Check a session store against the store contract (spec/CONTRACT.md "
        "section 6).")
    parser.add_argument("--store", default=None, metavar="KIND[:DIR]",
                        help="memory, sqlite, an entry point's name, or package.module:NAME; "
                        "DIR: where each check makes its directories")
    parser.add_argument("--check", action="append", metavar="NAME",
                        help="only this check (repeatable); see --list")
    parser.add_argument("--supports", default=None, metavar="LIST",
                        help="the capabilities to check, comma-separated, instead of what the "
                        "kind declares: " + ", ".join(CAPABILITIES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--examples", type=int, default=30, metavar="N",
                        help="random histories to run (default 30)")
    parser.add_argument("--timeout", type=float, default=120.0, metavar="SECONDS",
                        help="per check: a check running longer fails (default 120)")
    parser.add_argument("--json", action="store_true", help="the report as JSON")
    parser.add_argument("--list", action="store_true", help="list the checks and exit")
    args = parser.parse_args(argv)
    where = "python -m meerkat_ref.testing"
    if args.list:
        for c in STORE_CHECKS:
            needs = f" (needs {', '.join(sorted(c.needs))})" if c.needs else ""
            print(f"{c.name:<36} [{', '.join(c.clauses)}]{needs}\n{'':<36} {c.about}")
        return 0
    try:
        if args.store is None:
            raise InvalidArgument("--store KIND[:DIR] is required (or --list)")
        option = parse_store(args.store)
        kind = option.resolve()
        if option.path is not None and not os.path.isdir(option.path):
            raise InvalidArgument(f"--store {args.store!r}: {option.path!r} is not a directory")
        supports = None if args.supports is None else [
            s.strip() for s in args.supports.split(",") if s.strip()]
        unknown = sorted(set(supports or ()) - set(CAPABILITIES))
        if unknown:
            raise InvalidArgument(f"--supports: unknown {', '.join(unknown)}")
        if args.examples < 0 or not args.timeout > 0:
            raise InvalidArgument("--examples must be >= 0 and --timeout positive")
        report = trio.run(lambda: check_session_store(
            kind, supports=supports, checks=args.check, directory=option.path, seed=args.seed,
            examples=args.examples, timeout=args.timeout, raise_on_failure=False))
    except (InvalidArgument, ValueError) as exc:
        print(f"{where}: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report.to_json(), indent=1) if args.json else report.text())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
