"""``python -m benchmarks``: run every benchmark, write the results as Markdown.

Options: ``--quick`` (a smoke run at small sizes, for the harness, not for
figures; written to ``RESULTS-quick.md`` so it never overwrites a full run's record),
``--only list,store,turns,exploration,soak,soak-faults,port``, ``--out PATH``, ``--workdir DIR``
(where the SQLite files go; the file system matters for fsync).

Progress goes to stderr: when each section starts and ends, and a line at
least every ``HEARTBEAT`` seconds while one runs, each with an estimate of
the time left, from each section's time in the last results file of the same
kind (``Estimate``; a section never timed is said to be).

Exit status: 0 when every check held (goals missed are reported, not fatal);
1 when a hard check failed (a soak invariant, or the list cross-check).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio

from . import bench_explore, bench_list, bench_port, bench_soak, bench_store, bench_turns
from ._common import Goal, Section, machine_line, markdown_table, render_section, say
from ._common import git_revision as _git_revision
from ._progress import HEARTBEAT, Estimate, heartbeat, recorded, timings_comment

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

Runner = Callable[[bool, Path], Awaitable[Section]]


async def _list(quick: bool, workdir: Path) -> Section:
    return await bench_list.run(bench_list.QUICK if quick else bench_list.FULL, workdir)


async def _store(quick: bool, workdir: Path) -> Section:
    return await bench_store.run(bench_store.QUICK if quick else bench_store.FULL, workdir)


async def _turns(quick: bool, workdir: Path) -> Section:
    return await bench_turns.run(bench_turns.QUICK if quick else bench_turns.FULL, workdir)


# --- 4. Exploration ------------------------------------------------------------
async def _exploration(quick: bool, workdir: Path) -> Section:
    return await bench_explore.run(quick, workdir)


async def _soak(quick: bool, workdir: Path) -> Section:
    return await bench_soak.run(bench_soak.QUICK if quick else bench_soak.FULL, workdir)


async def _soak_faults(quick: bool, workdir: Path) -> Section:
    config = bench_soak.FAULTS_QUICK if quick else bench_soak.FAULTS_FULL
    return await bench_soak.run_faults(config, workdir)


async def _port(quick: bool, workdir: Path) -> Section:
    return await bench_port.run(quick, workdir)


RUNNERS: dict[str, Runner] = {
    "list": _list,
    "store": _store,
    "turns": _turns,
    "exploration": _exploration,
    "soak": _soak,
    "soak-faults": _soak_faults,
    "port": _port,
}


def filesystem_of(path: Path) -> str:
    """The mount (device and type) a path lives on, from /proc/mounts."""
    best = ("", "unknown", "unknown")
    target = str(path.resolve())
    try:
        with open("/proc/mounts", encoding="utf-8") as fh:
            for line in fh:
                device, mount, kind, *_ = line.split()
                inside = target == mount or target.startswith(mount.rstrip("/") + "/")
                if inside and len(mount) > len(best[0]):
                    best = (mount, kind, device)
    except OSError:
        return "unknown"
    return f"{best[1]} on {best[2]}"


def recorded_seconds(path: Path) -> dict[str, float]:
    """Each section's seconds in a results file written before (see ``_progress``)."""
    return recorded(path, list(RUNNERS))


async def run_sections(keys: list[str], quick: bool, workdir: Path,
                       last: dict[str, float] | None = None) -> list[Section]:
    estimate = Estimate(keys, last or {})
    say(f"{len(keys)} section{'s' if len(keys) != 1 else ''} ({', '.join(keys)}): "
        f"{estimate.total()}")
    sections: list[Section] = []
    for key in keys:
        say(estimate.start(key))
        stop = threading.Event()
        beats = threading.Thread(target=heartbeat, args=(estimate, stop, HEARTBEAT),
                                 daemon=True)
        beats.start()
        start = time.perf_counter()
        try:
            section = await RUNNERS[key](quick, workdir)
        finally:
            stop.set()
            beats.join()
        section.seconds = time.perf_counter() - start
        say(estimate.finish(key, section.seconds))
        sections.append(section)
    return sections


def render(
    sections: list[Section], *, quick: bool, seconds: float, workdir: Path, argv: str
) -> str:
    kind = (
        "quick (smoke) run: small sizes, for checking the harness, not for figures"
        if quick
        else "full run"
    )
    lines = [
        "# Benchmark results",
        "",
        f"- Run: `{argv}`, {kind}; {seconds:.0f} s in all.",
        f"- Machine: {machine_line()}.",
        f"- Code: commit {_git_revision(ROOT)}.",
        f"- SQLite files in a temporary directory on {filesystem_of(workdir)}.",
        "- Every ratio is against a baseline measured in the same run (a shared, noisy "
        "machine moves both together).  What each figure means: `benchmarks/README.md`.",
        "",
    ]
    summary = []
    for section in sections:
        judged = [r for r in section.rows if r.met is not None]
        met = sum(1 for r in judged if r.met)
        status = f"{met} of {len(judged)} met" if judged else "no goal set"
        if section.failures:
            status += f"; **{len(section.failures)} hard failure(s)**"
        summary.append([section.title, status])
    lines += [markdown_table(["Section", "Goals and checks"], summary), ""]
    missed = [(s, r) for s in sections for r in s.missed]
    if missed:
        lines += [
            "**Goals missed** (by how much, and what limits them, in each section's notes):",
            "",
        ]
        for section, row in missed:
            short = ""
            if isinstance(row.goal, Goal) and row.ratio is not None:
                short = f": {row.goal.shortfall(row.ratio)}"
            lines.append(f"- {section.title}: {row.figure} vs {row.baseline}{short}")
        lines.append("")
    for section in sections:
        lines.append(render_section(section))
    lines.append(timings_comment(sections))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: small sizes, for the harness, not for figures "
                        "(minutes on a loaded machine; progress says how many)")
    parser.add_argument(
        "--only",
        default=",".join(RUNNERS),
        help=f"comma-separated sections to run (default: all of {', '.join(RUNNERS)})",
    )
    parser.add_argument("--out", type=Path, default=None, help="results file (default: see above)")
    parser.add_argument("--workdir", type=Path, default=None, help="directory for SQLite files")
    args = parser.parse_args(argv)
    keys = [k.strip() for k in args.only.split(",") if k.strip()]
    unknown = [k for k in keys if k not in RUNNERS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; known: {', '.join(RUNNERS)}")
    out: Path = args.out or HERE / ("RESULTS-quick.md" if args.quick else "RESULTS.md")
    command = "python -m benchmarks" + (" " + " ".join(sys.argv[1:]) if sys.argv[1:] else "")

    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="meerkat-bench-", dir=args.workdir) as tmp:
        workdir = Path(tmp)
        sections = trio.run(run_sections, keys, args.quick, workdir, recorded_seconds(out))
        text = render(
            sections,
            quick=args.quick,
            seconds=time.perf_counter() - start,
            workdir=workdir,
            argv=command,
        )
    out.write_text(text, encoding="utf-8")
    say(f"results written to {out}")
    failures = [f for s in sections for f in s.failures]
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
