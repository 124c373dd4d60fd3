"""``meerkat-ref tour`` says what happened in words a newcomer reads right (issues 11, 13)."""

from __future__ import annotations

from pathlib import Path

import pytest

from meerkat_ref.cli import main


def test_the_interrupt_is_narrated_before_the_host_loop_ends(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tour", "--store", str(tmp_path / "tour.sqlite")]) == 0
    out = capsys.readouterr().out.splitlines()
    said = next(n for n, line in enumerate(out) if line.startswith("interrupt s3: "))
    assert out[said] == (
        "interrupt s3: the host loop ended cancelled (AGENT_ERROR), as an interrupt should"
    )
    assert out[said - 1].startswith("  injected 'pong'")
    assert not any(line.startswith("host loop ended") for line in out)


def test_a_second_tour_on_the_same_file_keeps_the_first_ones_sessions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "tour.sqlite"
    assert main(["tour", "--store", str(store)]) == 0
    before = store.read_bytes()
    capsys.readouterr()
    assert main(["tour", "--store", str(store)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        f"meerkat-ref tour: --store {str(store)!r} already holds 2 session(s); the tour's ids "
        "are fixed and would overwrite them: give a new file\n"
    )
    assert store.read_bytes() == before
