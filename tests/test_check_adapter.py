"""``meerkat-ref check --adapter``: a port's first day (issue 20).

What a port author meets when ``check`` explores a port: the oracle asks
only for what the port's ``hello`` offered (a check it cannot make is
reported, with the reason, never failed); each scenario's first
counterexample is printed and written the moment it is found; a protocol
error in a later scenario keeps what the earlier ones found.  The ports here
are the reference's own adapter, offering fewer capabilities
(``--capabilities``), a window of the seed, or a wrapper that breaks the
protocol at a chosen line.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from helpers import ADAPTER_TIMEOUT, adapter_with

from meerkat_ref.oracle.check import NO_POINTS
from meerkat_ref.oracle.engine import NO_FAULTS

PYTHON = shlex.quote(sys.executable)
POINTS_ONLY = f"{PYTHON} -m meerkat_ref.adapter --capabilities points"
WINDOW_1 = f"{PYTHON} -m meerkat_ref.adapter --variant seed-0.4.0:save-after-turn"


def _guarded(args: tuple[str, ...]) -> list[str]:
    """A generous answer timeout over an adapter: a guard on a busy machine, not a measure."""
    return [*args, "--timeout", str(int(ADAPTER_TIMEOUT))] if "--adapter" in args else [*args]


def check(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``meerkat-ref check`` in a child process, stderr merged into stdout in order."""
    return subprocess.run(
        [sys.executable, "-m", "meerkat_ref", "check", *_guarded(args)],
        cwd=cwd, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600,
        check=False,
    )


def check_json(*args: str, cwd: Path) -> tuple[int, dict[str, Any], str]:
    run = subprocess.run(
        [sys.executable, "-m", "meerkat_ref", "check", "--json", *_guarded(args)],
        cwd=cwd, text=True, capture_output=True, timeout=600, check=False,
    )
    return run.returncode, json.loads(run.stdout), run.stderr


def test_a_port_without_faults_passes_with_the_faults_left_out(tmp_path: Path) -> None:
    code, doc, err = check_json("--adapter", POINTS_ONLY, "--scenario", "store-faults",
                                "--scenario", "turns-at-once", "--bound", "0", cwd=tmp_path)
    assert code == 0, err
    results = {r["scenario"]: r for r in doc["results"]}
    assert results["store-faults"]["unchecked"] == NO_FAULTS
    assert "faults capability" in NO_FAULTS
    assert results["turns-at-once"]["unchecked"] is None
    assert all(r["violations"] == 0 and r["schedules"] > 0 for r in results.values())
    assert "PROTOCOL" not in err and "protocol" not in err


def test_a_port_without_points_is_reported_skipped_not_failed(tmp_path: Path) -> None:
    junit = tmp_path / "check.xml"
    run = check("--adapter", f"{PYTHON} -m meerkat_ref.adapter --capabilities faults",
                "--scenario", "turns-at-once", "--junit-xml", str(junit), cwd=tmp_path)
    assert run.returncode == 0, run.stdout
    assert "turns-at-once  dpor skipped" in run.stdout
    assert f"turns-at-once: {NO_POINTS}" in run.stdout
    (case,) = ET.parse(junit).getroot().iter("testcase")
    skipped = case.find("skipped")
    assert skipped is not None and skipped.get("message") == NO_POINTS


def test_each_first_counterexample_is_shown_as_soon_as_it_is_found(tmp_path: Path) -> None:
    run = check("--adapter", WINDOW_1, "--scenario", "turn-save-vs-archive",
                "--scenario", "creates-at-capacity", "--out", "ce", cwd=tmp_path)
    out = run.stdout
    assert run.returncode == 1, out
    found = out.index("turn-save-vs-archive: counterexample (")
    drawn = out.index("=== meerkat-ref")
    written = out.index("schedule written to ce/turn-save-vs-archive.json; replay with")
    next_started = out.index("creates-at-capacity: started")
    table = out.index("scenario              search")
    # Found, said, drawn and written before the next scenario starts, not at the end.
    assert found < drawn < written < next_started < table
    assert (tmp_path / "ce" / "turn-save-vs-archive.json").is_file()
    assert "turn-save-vs-archive  dpor stopped" in out
    assert "stopped: a scenario's search ends at its first counterexample" in out
    assert "creates-at-capacity   dpor exhausted" in out


def test_keep_going_explores_on_after_the_first_counterexample(tmp_path: Path) -> None:
    code, doc, err = check_json("--adapter", WINDOW_1, "--scenario", "turn-save-vs-archive",
                                "--bound", "1", "--keep-going", "--out", "ce", cwd=tmp_path)
    assert code == 1, err
    (result,) = doc["results"]
    assert result["exhausted"] is True and result["violations"] >= 1
    events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    said = [e for e in events if e["event"] == "counterexample"]
    assert len(said) == 1 and said[0]["schedule"] == "ce/turn-save-vs-archive.json"
    assert events.index(said[0]) < next(i for i, e in enumerate(events)
                                        if e["event"] == "finish")


def test_a_protocol_error_keeps_what_was_found_before_it(tmp_path: Path) -> None:
    # Window 1's adapter, dying at the first call of create-vs-archive's client "create".
    adapter = adapter_with(tmp_path, "dies_in_scenario_2.py", """
if msg.get('task') == 'c:create':
    print('dying', file=sys.stderr, flush=True)
    os._exit(7)
""", variant="seed-0.4.0:save-after-turn")
    junit = tmp_path / "check.xml"
    run = subprocess.run(
        [sys.executable, "-m", "meerkat_ref", "check", "--adapter", adapter, "--json",
         "--junit-xml", str(junit), "--out", "ce", "--scenario", "turn-save-vs-archive",
         "--scenario", "create-vs-archive", "--scenario", "turns-at-once"],
        cwd=tmp_path, text=True, capture_output=True, timeout=600, check=False,
    )
    assert run.returncode == 1, run.stderr
    doc = json.loads(run.stdout)
    first, cut = doc["results"]
    assert first["scenario"] == "turn-save-vs-archive" and first["violations"] == 1
    assert (tmp_path / first["schedule"]).is_file()
    assert cut["scenario"] == "create-vs-archive" and cut["exhausted"] is False
    assert "the adapter exited (status 7)" in doc["protocol_error"]
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("meerkat-ref check: the adapter broke the protocol in scenario "
                           "create-vs-archive: the adapter exited (status 7)"), last
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    assert cases["turn-save-vs-archive"].find("failure") is not None
    failure = cases["create-vs-archive"].find("failure")
    assert failure is not None and failure.get("type") == "protocol"
    skipped = cases["turns-at-once"].find("skipped")
    assert skipped is not None and "create-vs-archive" in str(skipped.get("message"))


def test_the_same_in_text_form(tmp_path: Path) -> None:
    adapter = adapter_with(tmp_path, "dies_in_scenario_2.py", """
if msg.get('task') == 'c:create':
    os._exit(7)
""", variant="seed-0.4.0:save-after-turn")
    run = check("--adapter", adapter, "--out", "ce", "--scenario", "turn-save-vs-archive",
                "--scenario", "create-vs-archive", cwd=tmp_path)
    out = run.stdout
    assert run.returncode == 1
    assert "=== meerkat-ref" in out  # the counterexample found before the error
    assert "turn-save-vs-archive  dpor stopped" in out
    assert "create-vs-archive     dpor (cut: protocol error)" in out
    assert out.rstrip().splitlines()[-1].startswith(
        "meerkat-ref check: the adapter broke the protocol in scenario create-vs-archive: "
        "the adapter exited (status 7)")
