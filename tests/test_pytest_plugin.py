"""The pytest plugin: ``pytest --meerkat-adapter 'CMD'`` judges a port with pytest's own machinery.

Each run is a real pytest in a subprocess, in an empty directory, with
plugin autoloading off so that ``-p meerkat_ref.pytest_plugin`` is what
loads it (as a port's CI would write it).  The conform phases are kept to
the vectors (``--meerkat-max-schedules 0`` ...) so the runs stay short; the
phases themselves are ``meerkat-ref conform``'s and are tested there.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ET
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from helpers import ADAPTER_TIMEOUT

from meerkat_ref.oracle.engine._cases import example_cases, random_cases
from meerkat_ref.oracle.engine._clauses import clause_ids

PYTHON = shlex.quote(sys.executable)
REFERENCE = f"{PYTHON} -m meerkat_ref.adapter"
SEED = f"{PYTHON} -m meerkat_ref.adapter --variant seed-0.4.0"
QUICK = ["--meerkat-random-cases", "0", "--meerkat-search-runs", "0", "--meerkat-free-runs", "0",
         "--meerkat-max-schedules", "0", "--meerkat-timeout", str(ADAPTER_TIMEOUT)]
ITEMS = len(example_cases()) + len(random_cases()) + len(clause_ids())


def pytest_run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    env.pop("PYTEST_ADDOPTS", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "meerkat_ref.pytest_plugin", "-p",
         "no:cacheprovider", "-rA", *args],
        cwd=cwd, env=env, text=True, capture_output=True, timeout=600, check=False,
    )


def summary(run: subprocess.CompletedProcess[str]) -> dict[str, int]:
    last = run.stdout.strip().splitlines()[-1]
    return {word: int(n) for n, word in re.findall(r"(\d+) (passed|failed|skipped|deselected)",
                                                   last)}


def test_the_reference_adapter_passes_every_item(tmp_path: Path) -> None:
    run = pytest_run(tmp_path, "--meerkat-adapter", REFERENCE, *QUICK)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr
    counts = summary(run)
    assert counts.get("failed", 0) == 0
    assert counts["passed"] + counts.get("skipped", 0) == ITEMS
    assert f"collected {ITEMS} items" in run.stdout
    assert "PASSED meerkat::vector[create-and-read]" in run.stdout
    assert "PASSED meerkat::clause[ARCHIVE-FINAL]" in run.stdout
    assert "PASSED meerkat::clause[INPUT]" in run.stdout


def test_the_seed_fails_the_clauses_it_breaks_with_k_selection_and_junit(tmp_path: Path) -> None:
    xml = tmp_path / "results.xml"
    run = pytest_run(tmp_path, "--meerkat-adapter", SEED, *QUICK, "-k", "ARCHIVE or archive",
                     f"--junitxml={xml}")
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr
    out = run.stdout
    assert "FAILED meerkat::clause[ARCHIVE-FINAL]" in out
    assert "FAILED meerkat::vector[archive-host-loop]" in out
    assert "PASSED meerkat::vector[archive-live]" in out
    assert "PASSED meerkat::clause[ARCHIVE]" in out
    assert "Traceback" not in out, "a failure is the conformance report, not Python's"
    # The failure says how to replay it: the request lines to send, in order.
    assert '{"id":"1","cmd":"open","capacity":2,"persistent":true}' in out
    selected = [f"clause[{c}]" for c in clause_ids() if "archive" in c.lower()]
    selected += [f"vector[{c.name}]" for c in (*example_cases(), *random_cases())
                 if "archive" in c.name]
    counts = summary(run)
    assert sum(counts.get(k, 0) for k in ("passed", "failed", "skipped")) == len(selected)
    assert counts["deselected"] == ITEMS - len(selected)
    cases = {str(c.get("name")): c for c in ET.parse(xml).getroot().iter("testcase")}
    assert sorted(cases) == sorted(selected)
    assert cases["clause[ARCHIVE-FINAL]"].find("failure") is not None


def test_bad_options_stop_the_run_as_a_usage_error(tmp_path: Path) -> None:
    run = pytest_run(tmp_path, "--meerkat-adapter", REFERENCE, "--meerkat-timeout", "0")
    assert run.returncode == 4  # pytest's exit code for usage errors
    assert "--meerkat-timeout must be positive" in run.stderr
    assert "Traceback" not in run.stderr


def test_the_plugin_is_registered_and_inert_without_an_adapter(
    pytestconfig: pytest.Config,
) -> None:
    found = [ep for ep in entry_points(group="pytest11") if ep.value == "meerkat_ref.pytest_plugin"]
    assert [ep.name for ep in found] == ["meerkat_ref.pytest_plugin"]
    # This very run has the plugin (autoloaded) and no --meerkat-adapter: no items of its own.
    assert pytestconfig.pluginmanager.hasplugin("meerkat_ref.pytest_plugin")
    assert pytestconfig.getoption("meerkat_adapter") is None


DIES = """\
import json, sys
for line in sys.stdin:
    msg = json.loads(line)
    if msg.get("cmd") != "hello":
        sys.exit(3)
    print(json.dumps({"id": msg["id"], "ok": {"protocol": "meerkat-ref/adapter@1",
                      "implementation": "dies", "version": "0", "capabilities": []}}), flush=True)
"""


def test_an_adapter_that_dies_fails_items_and_skips_none(tmp_path: Path) -> None:
    (tmp_path / "dies.py").write_text(DIES)
    adapter = f"{PYTHON} dies.py"
    run = pytest_run(tmp_path, "--meerkat-adapter", adapter,
                     "--meerkat-timeout", str(ADAPTER_TIMEOUT),
                     "-k", "vector[turn] or vector[archive-live] or clause[TURN]")
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr
    assert summary(run) == {"failed": 3, "deselected": ITEMS - 3}
    assert "PROTOCOL ERROR in vector archive-live: the adapter exited (status 3)" in run.stdout
    assert "the conform run stopped before checking TURN: PROTOCOL ERROR" in run.stdout


def test_a_port_without_faults_passes_with_what_it_cannot_check_skipped(tmp_path: Path) -> None:
    """Issue 20: only points offered, nothing fails; what needs faults, and what no conform
    run checks at all, is skipped with the reason."""
    adapter = f"{REFERENCE} --capabilities points"
    run = pytest_run(tmp_path, "--meerkat-adapter", adapter, *QUICK)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr
    counts = summary(run)
    assert counts.get("failed", 0) == 0
    out = run.stdout
    faults = "the adapter does not offer the faults capability"
    skipped = [line for line in out.splitlines() if line.startswith("SKIPPED")]
    assert any("vector failed-save needs store faults" in line and faults in line
               for line in skipped), skipped
    assert any("SAVE-FAILED: needs store faults" in line and faults in line for line in skipped)
    events = "the adapter does not offer the events capability"
    assert any("EVENTS: needs the events settle reports" in line and events in line
               for line in skipped), skipped
    assert "PASSED meerkat::clause[ARCHIVE-FINAL]" in out
    assert "PASSED meerkat::clause[PROTOCOL]" in out
