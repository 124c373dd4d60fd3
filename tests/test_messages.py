"""Messages that name their cause (issue 20, item 6): one test per message.

A port author reads these lines to find out what went wrong; each must say
what happened, not a symptom of it: a read parked at a hook after a restart
(not a bare timeout), the very sentence of the contract a CHECKPOINT or
CHECKPOINT-GATE failure broke, a replay that left its recording (exit 1,
at which step), options that cannot go together, an output directory that
cannot be written (before the search, not after it), and ``vectors --check``
outside a clone (no complaint about an ``--out`` nobody passed).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import trio
from helpers import adapter_with

from meerkat_ref.cli import main
from meerkat_ref.oracle.conform import Options, Report, conform_target
from meerkat_ref.oracle.targets import InProcessTarget
from meerkat_ref.variants import Variant


def test_a_read_parked_after_restart_is_named_not_timed_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The reference, turning its hooks back on after each restart (which turns them off).
    adapter = adapter_with(tmp_path, "hooks_stay_on.py", """
if msg.get('cmd') == 'read' and any(m.get('cmd') == 'restart' for m in seen):
    await t.control(True)
""")
    code = main(["check", "--adapter", adapter, "--scenario", "turn-save-vs-archive",
                 "--timeout", "30", "--out", str(tmp_path / "ce")])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 1
    assert "the adapter keeps its hooks on after restart" in err, err
    assert "'c:post' parked at store.load" in err and '"cmd":"read"' in err, err
    assert "no answer within" not in err


def _conform_in_process(target: InProcessTarget, scenario: str) -> Report:
    report = Report(adapter=target.description)
    options = Options(random_cases=0, search_runs=0, free_runs=0, max_schedules=200, bound=1,
                      scenarios=(scenario,), shrink_budget=0)

    async def run() -> None:
        async with target:
            await conform_target(target, options, report, concurrent=[])

    trio.run(run)
    return report


def test_a_checkpoint_failure_quotes_the_sentence_it_broke() -> None:
    target = Variant.parse("seed-0.4.0:skip-by-length").target(store="memory")
    report = _conform_in_process(target, "host-checkpoint-vs-archive")
    failure = report.minimal["CHECKPOINT"]
    assert "the store must hold that revision or a newer one" in failure.rule, failure.rule
    assert "gives every agent it builds" not in failure.rule  # the clause's first sentence


def test_a_checkpoint_gate_failure_quotes_the_sentence_it_broke() -> None:
    from stateful.mutants import IgnoresArming

    from meerkat_ref import EphemeralSessionService

    target = InProcessTarget(
        lambda b, c, s, p: EphemeralSessionService(b, c, points=p) if s is None
        else IgnoresArming(b, c, s, points=p), description="ignores-arming")
    report = _conform_in_process(target, "stop-resume-vs-inject")
    failure = report.minimal["CHECKPOINT-GATE"]
    assert "While a session's gate is disarmed its checkpoints must write nothing" in (
        failure.rule), failure.rule
    assert "Each live session has one gate" not in failure.rule


def _recorded(tmp_path: Path) -> dict[str, object]:
    """A recorded counterexample of window 1, as ``check`` writes it."""
    code = main(["check", "--store", "memory", "--variant", "seed-0.4.0:save-after-turn",
                 "--scenario", "turn-save-vs-archive", "--out", str(tmp_path), "--json"])
    assert code == 1
    doc: dict[str, object] = json.loads((tmp_path / "turn-save-vs-archive.json").read_text())
    return doc


def test_a_replay_that_leaves_its_recording_fails_saying_where(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    schedule = _recorded(tmp_path)
    choices = schedule["choices"]
    assert isinstance(choices, list) and len(choices) > 4
    path = tmp_path / "cut.json"
    cut = {k: v for k, v in schedule.items() if k != "steps"}
    path.write_text(json.dumps({**cut, "choices": choices[:4]}))  # the recording stops early
    capsys.readouterr()
    assert main(["replay", str(path)]) == 1
    out, err = capsys.readouterr()
    assert "DIFFERENT from the recording" in out
    assert ("SCHEDULE_DIVERGED: the replay departed from its recording at step 4: recorded "
            "the end of the run, ran") in err, err
    # The same file, whole, replays as recorded (and breaks its rules again: exit 1).
    whole = tmp_path / "whole.json"
    whole.write_text(json.dumps(schedule))
    assert main(["replay", str(whole)]) == 1
    out, err = capsys.readouterr()
    assert "same schedule as recorded" in out and "SCHEDULE_DIVERGED" not in err


def test_store_and_memory_together_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", "--memory", "--store", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--store DIR makes SQLite files; --memory uses no SQLite store" in err
    assert "started" not in err


def test_an_out_that_cannot_be_written_is_refused_before_the_search(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # os.access says yes (as it does to root everywhere); only writing tells.
    monkeypatch.setattr(os, "access", lambda *a, **k: True)
    code = main(["check", "--store", "memory", "--variant", "seed-0.4.0:save-after-turn",
                 "--scenario", "turn-save-vs-archive", "--out", "/proc/meerkat-ref-out"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("meerkat-ref check: --out '/proc/meerkat-ref-out': cannot be made: ")
    assert "started" not in err  # refused before exploring


def test_a_probe_leaves_nothing_behind(tmp_path: Path) -> None:
    from meerkat_ref.report import output_problem

    assert output_problem(str(tmp_path / "a" / "b"), directory=True) is None
    assert output_problem(str(tmp_path / "c" / "report.xml"), directory=False) is None
    assert list(tmp_path.iterdir()) == []


def test_vectors_check_outside_a_clone_checks_the_installed_vectors(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "meerkat_ref", "vectors", "--check"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    assert "--out" not in run.stderr + run.stdout
    assert "vector files in " in run.stdout and "are up to date" in run.stdout
    assert not (tmp_path / "spec").exists()

