"""``python -m benchmarks.mutation``: how many generated mutants the oracle alone kills.

Generates the mutants of ``meerkat_ref/service/``, ``store/`` and ``agent/``
with cosmic-ray's operators, judges each with the oracle only (``conform``
over the reference adapter running the mutant, ``check``, ``sweep --scope
ci``; for the store also the store contract suite, which goes first there),
cheapest first and stopping at the first kill, and prints the table: per module, generated,
killed, killed by an error or a timeout, equivalent (reviewed, in
``benchmarks/mutation-equivalents.toml``), survived, with the survivors listed.

    python -m benchmarks.mutation --module meerkat_ref/service/ --jobs 2
    python -m benchmarks.mutation --module 'meerkat_ref/store/_l*.py' --shard 0/4
    python -m benchmarks.mutation --report-only --out benchmarks/MUTATION.md

Every verdict is appended to the ledger (``--ledger``) as it comes, so a run
that was stopped continues where it ended; ``--report-only`` judges nothing
and writes the table from the ledger.  Exit status: 0 when no mutant
survived unreviewed (every survivor is listed as a known survivor), no
mutant listed as equivalent was killed, and every reviewed id of the chosen
modules names one of their mutants; 1 otherwise, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from ._paths import ROOT

DEFAULT_LEDGER = ROOT / "benchmarks" / ".mutation-ledger.jsonl"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.mutation",
                                description=(__doc__ or "").split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join((__doc__ or "").split("\n")[2:]))
    p.add_argument("--module", action="append", default=None, metavar="PATH",
                   help="a module, a package directory or a glob (repeatable; default: "
                   "meerkat_ref/service/, store/ and agent/)")
    p.add_argument("--shard", default=None, metavar="I/N",
                   help="every N-th mutant from the I-th (0-based), in a fixed order")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="at most N mutants (after --shard)")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="mutants judged at once (default 1; each judge is a process)")
    p.add_argument("--timeout", type=float, default=300.0, metavar="SECONDS",
                   help="time limit of one judge on one mutant (default 300); past it the "
                   "mutant counts as killed by a timeout (a hang)")
    p.add_argument("--judge", action="append", default=None, metavar="NAME",
                   choices=("conform", "check", "sweep", "contract"),
                   help="only these judges (repeatable; default: the package's, see the table)")
    p.add_argument("--ledger", default=str(DEFAULT_LEDGER), metavar="FILE",
                   help="the verdicts so far, JSON lines (default benchmarks/"
                   ".mutation-ledger.jsonl, not committed)")
    p.add_argument("--report-only", action="store_true",
                   help="judge nothing: the table from the ledger's verdicts")
    p.add_argument("--list", action="store_true", help="only list the chosen mutants")
    p.add_argument("--out", default=None, metavar="FILE",
                   help="also write the table to FILE (Markdown; JSON if FILE ends in .json)")
    p.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    return p


BEGIN = "<!-- the table below is written by python -m benchmarks.mutation --out; "
END = "<!-- end of the generated table -->"


def _splice(path: Path, table: str, command: str) -> str:
    """``path``'s text with its generated part replaced by ``table`` (notes around it kept)."""
    part = f"{BEGIN}do not edit it by hand -->\n\n`{command}`:\n\n{table}\n{END}\n"
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    start, end = old.find(BEGIN), old.find(END)
    if start < 0 or end < start:
        return part + old
    return old[:start] + part + old[end + len(END) + 1:]


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # Heavy imports only now, so --help answers at once and without cosmic-ray.
    from ._generate import generate, shard
    from ._run import Ledger, judge_all
    from ._table import Reviewed, build, markdown

    try:
        if args.jobs < 1 or (args.limit is not None and args.limit < 0) or args.timeout <= 0:
            raise ValueError("--jobs must be at least 1, --limit not negative, --timeout "
                             "positive")
        reviewed = Reviewed.load()
        started = time.perf_counter()
        cache = Path(args.ledger).with_suffix(".mutants.json")
        mutants = shard(generate(args.module, cache=cache), args.shard)
    except (ValueError, OSError) as exc:
        print(f"benchmarks.mutation: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:
        print(f"benchmarks.mutation: {exc}; install the extra: pip install -e '.[mutation]'",
              file=sys.stderr)
        return 2
    if args.limit is not None:
        mutants = mutants[:args.limit]
    print(f"{len(mutants)} mutants ({time.perf_counter() - started:.0f} s to generate)",
          file=sys.stderr)
    if args.list:
        for m in mutants:
            print(f"{m.id}\t{m.path}:{m.line}\t{m.before} -> {m.after}")
        return 0
    ledger = Ledger(Path(args.ledger))
    if args.report_only:
        verdicts = {m.id: ledger.verdicts[m.id] for m in mutants if m.id in ledger.verdicts}
    else:
        def progress(done: int, total: int, m: object, v: object, _: bool) -> None:
            from ._run import Verdict

            assert isinstance(v, Verdict)
            how = f"{v.status} by {v.judge} {','.join(v.rules)}" if v.killed else v.status
            print(f"[{done}/{total}] {v.id}: {how} ({v.seconds:.0f} s)", file=sys.stderr,
                  flush=True)

        verdicts = judge_all(mutants, ledger, jobs=args.jobs, timeout=args.timeout,
                             judges=args.judge, progress=progress)
    table = build(mutants, verdicts, reviewed)
    text = json.dumps(table.to_json(), indent=1) if args.json else markdown(table, reviewed)
    print(text)
    if args.out is not None:
        out = Path(args.out)
        if out.suffix == ".json":
            out.write_text(json.dumps(table.to_json(), indent=1) + "\n", encoding="utf-8")
        else:
            out.write_text(_splice(out, markdown(table, reviewed), " ".join(
                ["python -m benchmarks.mutation", *(argv if argv is not None else sys.argv[1:])]
            )), encoding="utf-8")
    unreviewed = [m for m, _ in table.survivors if m.id not in reviewed.survivor]
    return 1 if unreviewed or table.misjudged or table.stale else 0


if __name__ == "__main__":
    sys.exit(main())
