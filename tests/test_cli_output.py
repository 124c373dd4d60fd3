"""What ``check``, ``replay`` and ``conform`` leave for a person and for CI (issue 13).

- progress on a pipe is whole lines, never ``\\r``, ending in the true totals;
  with ``--json`` it is JSON lines events, and stdout stays one JSON document;
- tables line up whatever is in them (the seed summary's long rule names);
- ``--junit-xml`` validates against junit-10.xsd (``test_report_junit``'s
  rules) with one case per scenario, window or clause, and each failure
  carries the command that replays it;
- ``--html`` writes a report per counterexample; ``conform --html`` redraws a
  port's failure from a fresh adapter and writes a schedule that
  ``replay --adapter`` follows exactly.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from helpers import ADAPTER_TIMEOUT
from test_report_junit import junit10_problems

from meerkat_ref.cli import main
from meerkat_ref.testing import Window

PYTHON = shlex.quote(sys.executable)
SEED = f"{PYTHON} -m meerkat_ref.adapter --variant seed-0.4.0"
ROOT = Path(__file__).resolve().parent.parent
STEMS = [f"window-{w.number}-{w.value}" for w in Window]


def cells(table: str) -> list[list[str]]:
    """The table's cells, cut where the rule of dashes under the header puts its columns."""
    lines = table.splitlines()
    spans = [(m.start(), m.end()) for m in re.finditer(r"-+", lines[1])]
    return [[line[a:b].strip() for a, b in spans] for line in lines if line != lines[1]]


@pytest.fixture(scope="module")
def seed_check(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """``check --variant seed-0.4.0`` with every output, run once for the tests below."""
    root = tmp_path_factory.mktemp("seed-check")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["check", "--store", "memory", "--variant", "seed-0.4.0", "--out",
                     str(root / "ce"), "--html", str(root / "html"), "--junit-xml",
                     str(root / "ci" / "seed.xml")])
    return {"code": code, "out": out.getvalue(), "err": err.getvalue(), "root": root}


def test_seed_summary_lines_up_and_names_every_window(seed_check: dict[str, object]) -> None:
    assert seed_check["code"] == 1
    out = str(seed_check["out"])
    table = out[out.rindex("\n#  window"):].strip("\n")
    rows = cells(table)
    assert rows[0] == ["#", "window", "scenario", "rule(s)", "schedules", "seconds"]
    assert [r[1] for r in rows[1:]] == [w.value for w in Window]
    assert rows[1][3] == "ARCHIVE-FINAL,LINEARIZABLE"  # wider than its column used to be
    widths = {len(line) for line in table.splitlines()}
    assert len(widths) == 1, "right-aligned numbers end every row at the same column"


def test_progress_on_a_pipe_is_whole_lines_ending_in_the_totals(
    seed_check: dict[str, object],
) -> None:
    err = str(seed_check["err"])
    assert "\r" not in err and "\x1b" not in err
    progress = [line for line in err.splitlines() if line.startswith("window-")]
    assert progress[0] == "window-1-save-after-turn: started"
    done = [line for line in progress if ": done, " in line]
    assert [line.split(":")[0] for line in done] == STEMS
    assert all(re.search(r"done, \d+ schedules?, 1 violation, ", line) for line in done)


def test_seed_junit_and_html(seed_check: dict[str, object]) -> None:
    root = Path(str(seed_check["root"]))
    document = (root / "ci" / "seed.xml").read_text()
    assert junit10_problems(document) == []
    cases = ET.fromstring(document).findall(".//testcase")
    assert [c.get("name") for c in cases] == STEMS
    for case, stem in zip(cases, STEMS, strict=True):
        failure = case.find("failure")
        assert failure is not None and failure.text is not None
        assert f"replay: meerkat-ref replay {root / 'ce' / stem}.json" in failure.text
        assert (root / "ce" / f"{stem}.json").is_file()
        page = (root / "html" / f"{stem}.html").read_text()
        assert "<script" in page and "http://" not in page.replace("http://www.w3.org", "")
    index = (root / "html" / "index.html").read_text()
    assert all(f'href="{stem}.html"' in index for stem in STEMS)


def test_replay_draws_the_run_it_replays(
    seed_check: dict[str, object], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    schedule = Path(str(seed_check["root"])) / "ce" / "window-4-skip-by-length.json"
    assert main(["replay", str(schedule), "--html", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert "same schedule as recorded" in out
    page = tmp_path / "window-4-skip-by-length.html"
    assert f"HTML report written to {page}" in err
    text = page.read_text()
    assert "checkpoint returned without store.save" in text and "CHECKPOINT" in text


def test_check_json_keeps_stdout_one_document_and_progress_as_events(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    xml = tmp_path / "check.xml"
    argv = ["check", "--store", "memory", "--bound", "0", "--json", "--scenario",
            "turn-save-vs-archive", "--scenario", "create-vs-archive", "--junit-xml", str(xml)]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    results = json.loads(out)["results"]
    events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert [e["event"] for e in events if e["event"] != "progress"] == [
        "start", "finish", "start", "finish"]
    finishes = [e for e in events if e["event"] == "finish"]
    assert [e["schedules"] for e in finishes] == [r["schedules"] for r in results]
    document = xml.read_text()
    assert junit10_problems(document) == []
    root = ET.fromstring(document)
    assert root.get("failures") == "0"
    assert [c.get("name") for c in root.iter("testcase")] == [
        "turn-save-vs-archive", "create-vs-archive"]


def test_check_table_has_seconds_and_lines_up(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--store", "memory", "--bound", "0", "--scenario",
                 "turn-save-vs-archive"]) == 0
    out = capsys.readouterr().out
    table = out.split("\n\n")[0]
    rows = cells(table)
    assert rows[0] == ["scenario", "search", "bound", "schedules", "pruned", "states", "violations",
                       "seconds"]
    assert re.fullmatch(r"\d+\.\d", rows[1][-1])
    assert len({len(line) for line in table.splitlines()}) == 1


def test_conform_draws_a_ports_failure_and_its_schedule_replays_on_the_port(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    html, xml = tmp_path / "html", tmp_path / "conform.xml"
    argv = ["conform", "--adapter", SEED, "--random-cases", "0", "--search-runs", "0",
            "--free-runs", "0", "--max-schedules", "0", "--vectors", str(ROOT / "spec" / "vectors"),
            "--html", str(html), "--junit-xml", str(xml), "--timeout", str(ADAPTER_TIMEOUT)]
    assert main(argv) == 1
    capsys.readouterr()
    document = xml.read_text()
    assert junit10_problems(document) == []
    cases = {c.get("name"): c for c in ET.fromstring(document).iter("testcase")}
    assert cases["INPUT"].find("failure") is None  # a clause the seed keeps passes
    failure = cases["ARCHIVE-FINAL"].find("failure")
    assert failure is not None and failure.text is not None
    replay = next(line for line in failure.text.splitlines() if line.startswith("replay: "))
    command = shlex.split(replay.removeprefix("replay: "))
    assert command[:2] == ["meerkat-ref", "replay"] and command[3] == "--adapter"
    schedule = Path(command[2])
    assert schedule.parent == html and schedule.is_file()
    page = schedule.with_suffix(".html").read_text()
    assert "not visible for this target" in page and "ARCHIVE-FINAL" in page
    assert main([*command[1:], "--timeout", str(ADAPTER_TIMEOUT)]) == 1
    out = capsys.readouterr().out
    assert "same schedule as recorded" in out and "VIOLATION ARCHIVE-FINAL" in out


def _check_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, object]:
    code = main(["check", "--json", *argv])
    return code, json.loads(capsys.readouterr().out)


def test_check_jobs_do_not_change_the_results(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """Each scenario is explored whole by one process: the counts are the same for any
    --jobs, in the scenarios' order; a violation found in a worker comes back whole."""
    chosen = ["--scenario", "turns-at-once", "--scenario", "crash-restart",
              "--scenario", "creates-at-capacity"]
    code_1, one = _check_json(["--store", "memory", "--jobs", "1", *chosen], capsys)
    code_2, two = _check_json(["--store", "memory", "--jobs", "2", *chosen], capsys)
    assert code_1 == code_2 == 0
    keep = ("scenario", "schedules", "states", "violations", "exhausted", "bound")
    assert isinstance(one, dict) and isinstance(two, dict)
    assert [{k: r[k] for k in keep} for r in one["results"]] == [
        {k: r[k] for k in keep} for r in two["results"]]
    assert [r["scenario"] for r in two["results"]] == chosen[1::2]

    code, seed = _check_json(["--store", "memory", "--jobs", "2", "--out", str(tmp_path),
                              "--variant", "seed-0.4.0:save-after-turn", "--scenario",
                              "turn-save-vs-archive", "--scenario", "creates-at-capacity"], capsys)
    assert code == 1 and isinstance(seed, dict)
    first, second = seed["results"]
    assert first["violations"] > 0 and first["schedule"] and second["violations"] == 0


@pytest.mark.parametrize("argv", [["--jobs", "0"], ["--jobs", "2", "--adapter", SEED]])
def test_check_refuses_jobs_it_cannot_use(argv: list[str],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", *argv]) == 2
    assert "--jobs" in capsys.readouterr().err
