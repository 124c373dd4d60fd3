"""The sweep's ledger: a stopped sweep resumes, exploring only what is missing, to the same totals.

Issue 18 item 4.  Stops are deterministic: ``max_scenarios`` (``--max-scenarios``),
or an interrupt raised by the N-th exploration, never a timer.  A ledger
of another run (code, scope, variant, store, shard, options) is refused,
never mixed; a torn last line (a kill mid-write) is dropped.  All on a
six-scenario slice of the ci scope, so each test takes a second or two.
The suite runs with ``MEERKAT_SWEEP_LEDGERS`` empty (``conftest.py``): a
test names its ledger, or writes none.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from meerkat_ref.cli import main
from meerkat_ref.oracle import sweep as sweep_module
from meerkat_ref.oracle.sweep import (
    EXIT_STOPPED,
    LEDGERS_ENV,
    SCOPES,
    Row,
    Scope,
    SweepResult,
    WorkerCodeDiffers,
    open_ledger,
    run_chunk,
    scenarios,
    sweep,
)
from meerkat_ref.report import Ledger, LedgerError
from meerkat_ref.variants import Variant

SLICE = Scope("slice", sizes=(2,), sessions=(1,), situations=("idle",), faults=(0,),
              crashes=(0,), ops=("turn", "read", "load"))
MAKE = partial(Variant.parse("reference").target, store="memory")


def _open(path: Path, scope: Scope = SLICE, variants: Iterable[str] = ("reference",),
          **options: Any) -> Ledger:
    return open_ledger(path, scope, list(variants), store="memory", **options)


def _content(rows: Iterable[Row]) -> set[Row]:
    """What a row proves, without its time: the same whichever run (or worker) explored it."""
    return {replace(r, seconds=0.0) for r in rows}


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def whole() -> SweepResult:
    """The slice swept in one go, without a ledger: what every resumed sweep must total."""
    result = sweep(MAKE, SLICE)
    assert result.complete and result.exhausted and not result.violating
    return result


def _recording(monkeypatch: pytest.MonkeyPatch, fail_on: int | None = None) -> list[int]:
    """Record each scenario the sweep explores in this process; interrupt the ``fail_on``-th."""
    explored: list[int] = []
    real = sweep_module.explore_scenarios

    def explore(make: object, chosen: Iterable[tuple[int, object]], *args: object) -> list[Row]:
        chosen = list(chosen)
        if fail_on is not None and len(explored) + 1 == fail_on:
            raise KeyboardInterrupt  # as ^C would, while this scenario is explored
        explored.extend(i for i, _ in chosen)
        return real(make, chosen, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(sweep_module, "explore_scenarios", explore)
    return explored


def test_a_stopped_sweep_resumes_exploring_only_what_is_missing(
    tmp_path: Path, whole: SweepResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "slice.jsonl"
    explored = _recording(monkeypatch)
    with _open(path) as ledger:
        first = sweep(MAKE, SLICE, ledger=ledger, max_scenarios=2)
    assert not first.complete and len(first.rows) == 2 and explored == [0, 1]
    assert [line.get("index") for line in _lines(path)[1:]] == [0, 1]
    kept = path.read_bytes()

    explored.clear()
    with _open(path) as ledger:
        assert not ledger.created and len(ledger.rows) == 2
        again = sweep(MAKE, SLICE, ledger=ledger)
    assert explored == [2, 3, 4, 5], "only what the ledger lacked"
    assert again.complete and again.resumed == 2
    assert (again.schedules, again.states) == (whole.schedules, whole.states)
    assert _content(again.rows) == _content(whole.rows)
    assert [r.index for r in again.rows] == list(range(6))
    assert path.read_bytes().startswith(kept), "appended to, never rewritten"

    explored.clear()
    with _open(path) as ledger:  # complete: the totals at once, nothing explored
        done = sweep(MAKE, SLICE, ledger=ledger)
    assert explored == [] and done.resumed == 6 and done.schedules == whole.schedules


def test_the_same_command_goes_on_after_an_interrupt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``meerkat-ref sweep``, stopped by ^C in its third scenario, then run again unchanged."""
    path = tmp_path / "ci.jsonl"
    argv = ["sweep", "--scope", "ci", "--shard", "3/50", "--ledger", str(path)]
    explored = _recording(monkeypatch, fail_on=3)
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert f"the ledger {path} keeps every scenario that finished" in err
    assert "Traceback" not in err
    assert len(_lines(path)) == 1 + 2 and len(explored) == 2

    monkeypatch.undo()
    explored = _recording(monkeypatch)
    assert main([*argv, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["resumed"] == 2 and data["complete"] and data["scenarios"] == 4
    assert len(explored) == 2
    assert main(["sweep", "--scope", "ci", "--shard", "3/50", "--no-ledger", "--json"]) == 0
    fresh = json.loads(capsys.readouterr().out)
    assert (data["schedules"], data["end_states"]) == (fresh["schedules"], fresh["end_states"])
    assert fresh["resumed"] == 0 and fresh["ledger"] is None


def test_max_scenarios_stops_with_its_own_exit_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["sweep", "--scope", "ci", "--shard", "5/50", "--ledger", str(tmp_path / "l.jsonl")]
    assert main([*argv, "--max-scenarios", "3"]) == EXIT_STOPPED
    assert "STOPPED before the end: 1 of 4 scenarios left" in capsys.readouterr().out
    assert main([*argv, "--max-scenarios", "3"]) == 0  # the last one: done
    assert "3 of them resumed from the ledger" in capsys.readouterr().out
    assert main([*argv, "--max-scenarios", "0"]) == 2


@pytest.mark.parametrize("other", ["scope", "variant", "store", "shard", "max_schedules",
                                   "audit", "code"])
def test_a_ledger_of_another_run_is_refused_never_mixed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, other: str
) -> None:
    path = tmp_path / "slice.jsonl"
    with _open(path) as ledger:
        sweep(MAKE, SLICE, ledger=ledger, max_scenarios=1)
    kept = path.read_bytes()
    options: dict[str, Any] = {}
    scope, variants, store = SLICE, ["reference"], "memory"
    if other == "scope":
        scope = Scope("slice", sizes=(2,), sessions=(1,), situations=("idle",), faults=(0,),
                      crashes=(0,), ops=("turn", "read"))
    elif other == "variant":
        variants = ["seed-0.4.0:save-after-turn"]
    elif other == "store":
        store = "sqlite"
    elif other == "shard":
        options["shard_spec"] = "0/2"
    elif other == "max_schedules":
        options["max_schedules"] = 100
    elif other == "audit":
        options["audit"] = 1
    else:
        monkeypatch.setattr(sweep_module, "code_fingerprint", lambda: "sha256:other-code")
    with pytest.raises(LedgerError, match="belongs to another run") as refused:
        open_ledger(path, scope, variants, store=store, **options)
    assert other.split("_")[0] in str(refused.value) and "--fresh" in str(refused.value)
    assert path.read_bytes() == kept, "refused, and left as it was"
    with open_ledger(path, scope, variants, store=store, fresh=True,
                     **options) as started_over:
        assert started_over.created and started_over.rows == []
    assert len(_lines(path)) == 1


def test_the_command_refuses_another_run_s_ledger_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "l.jsonl"
    argv = ["sweep", "--scope", "ci", "--shard", "5/54", "--ledger", str(path)]
    assert main([*argv, "--max-scenarios", "1"]) == EXIT_STOPPED
    capsys.readouterr()
    assert main([*argv, "--max-schedules", "5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "belongs to another run" in err
    assert 'max_schedules: the ledger\'s null, this run\'s 5' in err
    assert main(["sweep", "--scope", "ci", "--fresh", "--no-ledger"]) == 2
    (tmp_path / "notes.txt").write_text("my notes\n", encoding="utf-8")
    for fresh in ([], ["--fresh"]):
        assert main(["sweep", "--scope", "ci", "--ledger", str(tmp_path / "notes.txt"),
                     *fresh]) == 2
        assert "is not a ledger" in capsys.readouterr().err
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "my notes\n"


def test_a_torn_last_line_is_dropped(tmp_path: Path, whole: SweepResult) -> None:
    path = tmp_path / "slice.jsonl"
    with _open(path) as ledger:
        sweep(MAKE, SLICE, ledger=ledger, max_scenarios=3)
    whole_lines = path.read_bytes()
    path.write_bytes(whole_lines + b'{"variant": "reference", "index": 3, "scen')  # a kill
    with _open(path) as ledger:
        assert ledger.torn and len(ledger.rows) == 3
        assert path.read_bytes() == whole_lines, "cut back to its last whole line"
        again = sweep(MAKE, SLICE, ledger=ledger)
    assert again.resumed == 3 and _content(again.rows) == _content(whole.rows)
    assert [line.get("index") for line in _lines(path)[1:]] == [0, 1, 2, 3, 4, 5]


def test_a_header_cut_short_is_an_empty_ledger_and_a_whole_bad_line_is_refused(
    tmp_path: Path
) -> None:
    path = tmp_path / "slice.jsonl"
    path.write_bytes(b'{"format": "meerkat-ref/sweep-le')  # killed while starting it
    with _open(path) as ledger:
        assert ledger.created and ledger.rows == []
    header = path.read_bytes()
    for bad, why in ((b"[1, 2]\n", "not a JSON object"),
                     (b'{"variant": "reference", "index": 0}\n', "not a row of a sweep"),
                     (b'{"variant": "reference", "index": 0, "scenario": "idle/1s/read+read", '
                      b'"schedules": 1, "pruned": 0, "states": 1, "rules": [], "seconds": 0, '
                      b'"exhausted": true}\n', "not one of this sweep's"),
                     (b'{"variant": "other", "index": 0, "scenario": "idle/1s/turn+turn", '
                      b'"schedules": 1, "pruned": 0, "states": 1, "rules": [], "seconds": 0, '
                      b'"exhausted": true}\n', "not one of this sweep's")):
        path.write_bytes(header + bad)
        with pytest.raises(LedgerError, match=why):
            _open(path)
    row = (b'{"variant": "reference", "index": 0, "scenario": "idle/1s/turn+turn", '
           b'"schedules": 1, "pruned": 0, "states": 1, "rules": [], "seconds": 0, '
           b'"exhausted": true}\n')
    path.write_bytes(header + row + row)
    with pytest.raises(LedgerError, match="there twice"):
        _open(path)


def test_one_run_at_a_time_on_a_ledger(tmp_path: Path) -> None:
    path = tmp_path / "slice.jsonl"
    with _open(path), pytest.raises(LedgerError, match="in use by another run"):
        _open(path)
    with _open(path) as again:  # released when the first closed
        assert not again.created


def test_the_default_ledger_is_named_by_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(LEDGERS_ENV, raising=False)
    argv = ["sweep", "--scope", "ci", "--shard", "7/100", "--max-schedules", "50"]
    assert main(argv) == 0
    made = tmp_path / "sweep-ledgers" / "ci-shard-7-of-100-reference-memory-max-50.jsonl"
    assert [p.name for p in (tmp_path / "sweep-ledgers").iterdir()] == [made.name]
    assert f"ledger {Path('sweep-ledgers') / made.name} (new)" in capsys.readouterr().err
    assert main(argv) == 0
    assert "2 already in it, not explored again" in capsys.readouterr().err
    monkeypatch.setenv(LEDGERS_ENV, str(tmp_path / "elsewhere"))
    assert main(["sweep", "--scope", "ci", "--shard", "7/100", "--variant",
                 "seed-0.4.0:save-after-turn"]) == 1  # empty/1s/create+archive exposes it
    capsys.readouterr()
    assert os.listdir(tmp_path / "elsewhere") == [
        "ci-shard-7-of-100-seed-0.4.0_save-after-turn-memory.jsonl"]
    monkeypatch.setenv(LEDGERS_ENV, "")
    assert main([*argv, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ledger"] is None


def test_one_ledger_for_the_seed_s_windows(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                           ) -> None:
    """``--variant seed-0.4.0`` sweeps each window: one ledger, each row says its variant."""
    path = tmp_path / "seed.jsonl"
    argv = ["sweep", "--scope", "ci", "--shard", "83/198", "--variant", "seed-0.4.0",
            "--ledger", str(path)]
    assert main(argv) == 1  # idle/1s/turn+archive exposes window 1
    first = capsys.readouterr().out
    lines = _lines(path)
    windows = lines[0]["variants"]
    assert isinstance(windows, list) and len(windows) == 4
    assert sorted(str(line["variant"]) for line in lines[1:]) == sorted(windows)
    assert main(argv) == 1
    assert capsys.readouterr().out.count("1 of them resumed from the ledger") == 4
    assert "ARCHIVE-FINAL" in first


def test_the_suite_writes_no_default_ledger() -> None:
    assert os.environ[LEDGERS_ENV] == "", "conftest.py names the variable the sweep reads"


def test_a_worker_with_other_code_refuses_the_work() -> None:
    with pytest.raises(WorkerCodeDiffers, match="other code"):
        run_chunk(MAKE, SLICE, [0], code="sha256:someone-else-s")
    assert len(run_chunk(MAKE, SLICE, [3], code=sweep_module.code_fingerprint())) == 1


def test_jobs_2_writes_the_ledger_a_single_worker_does(tmp_path: Path, whole: SweepResult
                                                        ) -> None:
    with _open(tmp_path / "pooled.jsonl") as ledger:
        pooled = sweep(MAKE, SLICE, ledger=ledger, jobs=2)
    rows = [Row.from_json(line) for line in _lines(tmp_path / "pooled.jsonl")[1:]]
    assert _content(rows) == _content(whole.rows) == _content(pooled.rows)
    assert len(rows) == len(scenarios(SLICE))


# A child that runs the command and prints each row's index as it lands (after its append):
# the test kills it on an event it has seen, never after a delay.
_CHILD = """
import sys
from meerkat_ref.oracle import sweep

def one_line_a_row():
    def show(done, total, row):
        print(row.index, flush=True)
    return show

sweep._progress = one_line_a_row
from meerkat_ref.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _children(pid: int) -> list[int]:
    """The pids of ``pid``'s children (Linux's /proc; empty where it does not say)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(p) for p in (task / "children").read_text().split()]
    return found


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie has ended; only its parent's reaping is left


def test_a_worker_started_after_its_sweep_died_ends_at_once() -> None:
    """The pool starts workers as work arrives: one still starting when its sweep was
    killed is already an orphan when its initializer runs, and must end all the same
    (it watches the sweep's pid, passed in, not whatever parent it has by then)."""
    ended = subprocess.Popen([sys.executable, "-c", "pass"])  # its pid: a sweep that is gone
    ended.wait()
    probe = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\n"
        "from meerkat_ref.oracle.runner import end_with_parent\n"
        "end_with_parent(int(sys.argv[1]))\n"
        "time.sleep(120)\n"), str(ended.pid)], stderr=subprocess.PIPE, text=True)
    try:
        _, err = probe.communicate(timeout=60)  # its first look ends it; 60 s bounds a hang
    finally:
        probe.kill()
    assert err == "", err  # ended by its watchdog (os._exit(1)), not by an error
    assert probe.returncode == 1, "a worker whose sweep is gone kept running"


def test_a_sweep_killed_outright_resumes_and_leaves_no_worker(tmp_path: Path) -> None:
    """``SIGKILL`` while two workers run: the same command goes on, to an uninterrupted
    run's totals; the orphaned workers end on their own (``runner.end_with_parent``)."""
    path = tmp_path / "ci.jsonl"
    argv = ["sweep", "--scope", "ci", "--shard", "11/12", "--jobs", "2", "--ledger", str(path)]
    child = subprocess.Popen([sys.executable, "-c", _CHILD, *argv], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
    try:
        assert child.stdout is not None
        first = child.stdout.readline()  # a row is in the ledger
        assert first.strip().isdigit(), "the child ended before its first row"
        workers = _children(child.pid)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert workers or not Path("/proc/self/task").is_dir(), "Linux names the pool's workers"
    whole_lines = path.read_bytes().split(b"\n")[1:-1]  # a torn last one (the kill) aside
    kept = [Row.from_json(json.loads(line)).index for line in whole_lines]
    assert int(first) in kept, "the row the child announced is in the ledger"

    with _open(path, SCOPES["ci"], shard_spec="11/12") as ledger:
        resumed = sweep(MAKE, SCOPES["ci"], shard_spec="11/12", ledger=ledger)
    whole = sweep(MAKE, SCOPES["ci"], shard_spec="11/12")
    assert resumed.complete and resumed.resumed == len(kept)
    assert _content(resumed.rows) == _content(whole.rows)
    assert sorted(Row.from_json(line).index for line in _lines(path)[1:]) == [
        r.index for r in whole.rows]

    deadline = time.monotonic() + 60  # the watchdog looks once a second; generous for CI
    while any(_running(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [w for w in workers if _running(w)], "orphaned workers still running"
