"""The JavaScript port in spec/porting/ passes `meerkat-ref conform` (spec/ADAPTER.md section 8).

The port was written from spec/ alone (spec/porting/NOTES.md lists what that took);
this test keeps it passing as the spec and the oracle change. It needs Node.js 20 on
PATH and is skipped without it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PORT = ROOT / "spec" / "porting" / "memory-port.mjs"

needs_node = pytest.mark.skipif(
    shutil.which("node") is None, reason="node (Node.js 20) is not on PATH: the JS port cannot run"
)


def conform(*options: str) -> subprocess.CompletedProcess[str]:
    """Run the oracle's CLI against the port (a fixed seed: the run is deterministic)."""
    node = shutil.which("node")
    assert node is not None
    argv = [sys.executable, "-m", "meerkat_ref", "conform", "--adapter", f"{node} {PORT}"]
    argv += ["--seed", "1", "--vectors", str(ROOT / "spec" / "vectors"), *options]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=ROOT, check=False)


@needs_node
def test_js_port_passes_conform() -> None:
    run = conform("--random-cases", "4", "--search-runs", "4", "--free-runs", "5",
                  "--max-schedules", "30")
    report = run.stdout.strip().splitlines()
    assert run.returncode == 0, run.stdout + run.stderr
    assert report and report[-1].startswith("PASS"), run.stdout
    # the port announces the scheduling hooks, so the concurrent vectors were replayed
    assert "capabilities: points, faults" in run.stdout
