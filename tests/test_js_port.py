"""The JavaScript port in spec/porting/ passes `meerkat-ref conform` (spec/ADAPTER.md section 8).

The port was written from spec/ alone (spec/porting/NOTES.md lists what that took) and is
the worked example of spec/PORTING.md; this test keeps it passing as the spec and the
oracle change, the hooks cases of the vectors included. It needs Node.js 20 on PATH and is
skipped, saying why, without it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ADAPTER_TIMEOUT

ROOT = Path(__file__).resolve().parent.parent
PORT = ROOT / "spec" / "porting" / "memory-port.mjs"

OLDEST_NODE = 18  # the port uses Array.prototype.findLast


def node_missing() -> str:
    """Why the port cannot run here ("" if it can): no ``node`` on PATH, or one too old."""
    node = shutil.which("node")
    if node is None:
        return "node (Node.js 18 or later) is not on PATH: the JS port cannot run"
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=False)
    major = version.stdout.strip().lstrip("v").split(".")[0]
    if not major.isdigit() or int(major) < OLDEST_NODE:
        shown = version.stdout.strip() or "?"
        return f"node {shown} is older than {OLDEST_NODE}: the JS port cannot run"
    return ""


MISSING = node_missing()
needs_node = pytest.mark.skipif(bool(MISSING), reason=MISSING or "node is here")


def conform(*options: str) -> subprocess.CompletedProcess[str]:
    """Run the oracle's CLI against the port (a fixed seed: the run is deterministic)."""
    node = shutil.which("node")
    assert node is not None
    argv = [sys.executable, "-m", "meerkat_ref", "conform", "--adapter", f"{node} {PORT}"]
    argv += ["--seed", "1", "--vectors", str(ROOT / "spec" / "vectors"),
             "--timeout", str(ADAPTER_TIMEOUT), *options]
    # A guard against a hang only (the run takes about 10 s idle, 35 s at load 12).
    return subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=ROOT, check=False)


@needs_node
def test_js_port_passes_conform() -> None:
    run = conform("--random-cases", "4", "--search-runs", "4", "--free-runs", "5",
                  "--max-schedules", "30")
    report = run.stdout.strip().splitlines()
    assert run.returncode == 0, run.stdout + run.stderr
    assert report and report[-1].startswith("PASS"), run.stdout
    # the port announces the scheduling hooks, so the hooks cases and the concurrent
    # vectors were run too
    assert "capabilities: points, faults" in run.stdout
    assert "hooks case" not in run.stdout
    # it offers no events: never asked for them, [EVENTS] is listed as not checked, with why
    assert "the adapter offers no events" in run.stdout
    assert "the adapter does not offer the events capability" in run.stdout


@needs_node
def test_js_port_declares_footprints_that_the_audit_finds_true() -> None:
    """The port declares the reference's table (``spec/ADAPTER.md`` section 6) for its own
    points: DPOR reduces with it, and every pair it makes independent, run both ways over the
    wire, ends alike (``--audit all``: exit 3 on any difference)."""
    node = shutil.which("node")
    assert node is not None
    scenarios = ["turn-save-vs-archive", "turns-at-once", "interrupt-then-turn", "crash-restart"]
    argv = [sys.executable, "-m", "meerkat_ref", "check", "--adapter", f"{node} {PORT}",
            "--audit", "all", "--timeout", str(ADAPTER_TIMEOUT), "--json"]
    for name in scenarios:
        argv += ["--scenario", name]
    run = subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=ROOT,
                         check=False)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    rows = {r["scenario"]: r for r in json.loads(run.stdout)["results"]}
    assert sorted(rows) == sorted(scenarios)
    assert all(r["exhausted"] and r["violations"] == 0 for r in rows.values())
    assert sum(r["audited"] for r in rows.values()) > 0
    assert all(r["oracle_errors"] == [] for r in rows.values())
