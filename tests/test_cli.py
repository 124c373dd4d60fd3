"""The doors: `meerkat-ref tour` and `scenarios` run and say what they claim."""

from __future__ import annotations

from pathlib import Path

import pytest

from meerkat_ref.cli import main
from meerkat_ref.oracle.engine import SCENARIOS


def test_tour_walks_the_service_and_restarts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tour", "--store", str(tmp_path / "tour.sqlite")]) == 0
    out = capsys.readouterr().out
    assert "injected 'pong': checkpoint saved 6 messages" in out
    assert "archive s2: read -> SESSION_NOT_FOUND" in out
    assert "archived s2 after restart: read -> SESSION_NOT_FOUND" in out
    assert "s1 after restart: last reply 'echo: and again'" in out


def test_scenarios_lists_every_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scenarios"]) == 0
    out = capsys.readouterr().out
    for scenario in SCENARIOS:
        assert scenario.name in out
