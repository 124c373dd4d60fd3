"""Every entry point answers ``--help`` without running, and long runs say how long is left.

Issue 20: ``python -m benchmarks.bench_explore --help`` started the benchmark;
``python -m benchmarks --quick`` printed nothing for seven minutes; ``sweep
--shard`` ran an hour with no estimate of the time left.  The entry points
are found, not listed: every module of ``benchmarks/``, ``meerkat_ref/`` and
``models/`` with a ``__main__`` block or a ``__main__.py``, and every
``meerkat-ref`` subcommand.  Each is run with ``--help`` in an empty
directory: it must print its usage, exit 0, and leave the directory empty.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # benchmarks/ sits beside tests/ and is not installed
    sys.path.insert(0, str(ROOT))

from benchmarks._common import Section  # noqa: E402
from benchmarks._progress import Estimate, recorded, timings_comment  # noqa: E402
from meerkat_ref.cli import build_parser  # noqa: E402
from meerkat_ref.report import duration, time_left  # noqa: E402

MAIN_BLOCK = 'if __name__ == "__main__":'


def entry_modules() -> list[str]:
    """``python -m`` names of every module here that runs as a program."""
    found = []
    for folder, package in (("benchmarks", "benchmarks"), ("meerkat_ref", "meerkat_ref"),
                            ("models", "meerkat_ref.models")):
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__main__":
                found.append(".".join([package, *parts[:-1]]))
            elif MAIN_BLOCK in path.read_text(encoding="utf-8"):
                found.append(".".join([package, *parts]))
    return found


ENTRY_MODULES = entry_modules()


def test_the_entry_points_are_found() -> None:
    for module in ("benchmarks", "benchmarks.bench_explore", "benchmarks.bench_port",
                   "meerkat_ref", "meerkat_ref.adapter", "meerkat_ref.specgen.gallery",
                   "meerkat_ref.models.explore"):
        assert module in ENTRY_MODULES


def test_every_entry_module_answers_help_without_running(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # benchmarks/ is a folder of the clone
    running = {
        module: subprocess.Popen(
            [sys.executable, "-m", module, "--help"], cwd=tmp_path, env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for module in ENTRY_MODULES
    }
    wrong = []
    for module, proc in running.items():
        try:
            out, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            wrong.append(f"{module}: still running after 120 s (--help ran it?)")
            continue
        if proc.returncode != 0 or "usage:" not in out:
            wrong.append(f"{module}: exit {proc.returncode}, {(out + err)[:200]!r}")
    assert wrong == []
    assert list(tmp_path.iterdir()) == [], "--help wrote something"


def _subcommands() -> list[str]:
    parser = build_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sorted(subs.choices)


@pytest.mark.parametrize("command", _subcommands())
def test_every_subcommand_answers_help(command: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    from meerkat_ref.cli import main

    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: meerkat-ref {command}")


# -- the time left ------------------------------------------------------------------------------


def test_durations_and_time_left_read_as_a_person_says_them() -> None:
    assert [duration(s) for s in (0, 45.4, 200, 3725)] == ["0 s", "45 s", "3 min 20 s",
                                                           "1 h 02 min"]
    assert time_left(30, 1, 4) == "about 1 min 30 s left"
    assert time_left(30, 0, 4) == "" and time_left(30, 4, 4) == ""


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_benchmark_progress_estimates_from_the_last_run() -> None:
    clock = Clock()
    estimate = Estimate(["list", "store", "port"], {"list": 60.0, "store": 120.0}, clock)
    assert estimate.total() == "about 3 min 00 s by the last run, plus port, never timed"
    assert estimate.start("list") == (
        "list: started (last time 1 min 00 s); about 3 min 00 s left, plus port (never timed)")
    clock.now += 20
    assert estimate.beat() == (
        "list: 20 s so far (of 1 min 00 s last time); about 2 min 40 s left, plus port "
        "(never timed)")
    clock.now += 70
    assert estimate.beat().startswith("list: 1 min 30 s so far (longer than the 1 min 00 s "
                                      "of last time); about 2 min 00 s left")
    assert estimate.finish("list", 90) == (
        "list: 1 min 30 s; 1 of 3 sections done, about 2 min 00 s left, plus port (never timed)")
    nothing = Estimate(["list"], {}, clock)
    assert nothing.total() == "no earlier run of this kind to estimate the time from"
    assert nothing.start("list") == "list: started (never timed before); time left unknown " \
        "(list never timed)"


def test_a_results_file_says_how_long_each_section_took(tmp_path: Path) -> None:
    # The recorded run, from its "Section time" lines; a new file, from its own comment.
    keys = ["list", "store", "turns", "exploration", "soak", "soak-faults", "port"]
    assert f"--only {','.join(keys)}" in (ROOT / "benchmarks" / "__main__.py").read_text(), (
        "the keys in their order, as python -m benchmarks numbers its sections")
    found = recorded(ROOT / "benchmarks" / "RESULTS.md", keys)
    assert {"list", "store", "exploration"} <= set(found)
    assert all(value > 0 for value in found.values())
    sections = [Section("list", "1. List"), Section("port", "7. Port")]
    sections[0].seconds, sections[1].seconds = 12.34, 56.7
    path = tmp_path / "RESULTS.md"
    path.write_text("# Benchmark results\n\n## 1. List\n\n_Section time: 99.0 s._\n\n"
                    + timings_comment(sections))
    assert recorded(path, keys) == {"list": 12.3, "port": 56.7}, "the comment comes first"
    assert recorded(tmp_path / "missing.md", keys) == {}


def test_the_sweep_says_how_long_is_left() -> None:
    from meerkat_ref.oracle.sweep import Row, _progress

    clock = Clock()
    out = io.StringIO()
    show = _progress(clock, out)
    row = Row(index=0, name="idle/1s/turn+turn", schedules=10, pruned=0, states=2, rules=(),
              seconds=1.0, exhausted=True)
    clock.now += 6
    show(3, 12, row)
    clock.now += 1
    show(4, 12, row)  # within 5 s of the last line: not said
    assert out.getvalue() == ("  [3/12] idle/1s/turn+turn: 10 schedules; 6 s so far, about "
                              "18 s left\n")
