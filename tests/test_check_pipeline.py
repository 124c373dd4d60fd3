"""``check``'s pipeline runs without the command line (issue 19: products own their pipelines).

``cli.py`` only reads options into a ``check.Request``; these drive
``oracle.check`` directly, with the output streams given, and read what a
person would: the counterexample drawn from its trace, the schedule file it
wrote, the table, the exit code.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import json
from pathlib import Path
from typing import Any

from meerkat_ref.oracle import check
from meerkat_ref.oracle.engine import RunOutcome, legacy_scheduler
from meerkat_ref.variants import Variant


def _request(tmp_path: Path, variant: str, **options: Any) -> check.Request:
    base = check.Request(variant, functools.partial(Variant.parse(variant).target, store="memory"),
                         legacy_scheduler(None, "dpor", None), out=str(tmp_path / "ce"), jobs=1)
    return dataclasses.replace(base, **options)


def test_a_counterexample_is_shown_written_and_exits_1(tmp_path: Path) -> None:
    request = _request(tmp_path, "seed-0.4.0:save-after-turn",
                       scenarios=("turn-save-vs-archive",), junit_xml=str(tmp_path / "j.xml"))
    out, err = io.StringIO(), io.StringIO()
    assert check.check(request, out, err) == 1
    text = out.getvalue()
    assert "=== seed-0.4.0:save-after-turn / turn-save-vs-archive:" in text
    assert "VIOLATION ARCHIVE-FINAL" in text and "```mermaid\nsequenceDiagram" in text
    schedule = tmp_path / "ce" / "turn-save-vs-archive.json"
    assert f"replay with: meerkat-ref replay {schedule}" in text
    assert json.loads(schedule.read_text(encoding="utf-8"))["scenario"] == "turn-save-vs-archive"
    assert "seed-0.4.0:save-after-turn: " in text and "(memory store)" in text
    assert f"JUnit XML written to {tmp_path / 'j.xml'}" in err.getvalue()
    # replay, from the same product, runs the file again and finds the same violation
    from meerkat_ref.oracle.engine import get_scenario, load

    recorded = load(schedule.read_text(encoding="utf-8"))
    again = io.StringIO()
    assert check.replay(str(schedule), recorded, get_scenario(recorded.scenario),
                        request.make_target, out=again, err=io.StringIO()) == 1
    assert "same schedule as recorded" in again.getvalue()


def test_the_reference_is_clean_and_says_so_in_json(tmp_path: Path) -> None:
    request = _request(tmp_path, "reference", scenarios=("turns-at-once",), json=True)
    out = io.StringIO()
    assert check.check(request, out, io.StringIO()) == 0
    data = json.loads(out.getvalue())
    assert data["variant"] == "reference" and data["protocol_error"] is None
    assert [r["scenario"] for r in data["results"]] == ["turns-at-once"]
    assert not (tmp_path / "ce").exists()  # nothing found: no schedule written


def test_windows_come_with_their_finders(tmp_path: Path) -> None:
    """The seed's windows are the caller's (the oracle never reaches the seed variant)."""
    asked: list[str] = []

    def nothing(name: str) -> tuple[RunOutcome | None, int, float]:
        asked.append(name)
        return None, 7, 0.25

    windows = [check.SeedWindow(n, name, functools.partial(nothing, name))
               for n, name in ((1, "one"), (2, "two"))]
    out = io.StringIO()
    assert check.check_windows(_request(tmp_path, "reference"), windows, out,
                               io.StringIO()) == 0
    assert asked == ["one", "two"]
    rows = [line.split() for line in out.getvalue().splitlines() if "NOT FOUND" in line]
    assert rows == [["1", "one", "-", "NOT", "FOUND", "7", "0.25"],
                    ["2", "two", "-", "NOT", "FOUND", "7", "0.25"]]
