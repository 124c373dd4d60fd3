"""docs/windows/ is what ``python -m meerkat_ref.specgen.gallery docs/windows`` makes now.

The pages are checked in so they can be opened without installing anything;
this test is what keeps them from drifting when the explorer, a scenario or
the renderer changes: regenerate with the command above.
"""

from __future__ import annotations

from pathlib import Path

from meerkat_ref.specgen.gallery import generate, main, stale

DOCS = Path(__file__).resolve().parents[1] / "docs" / "windows"


def test_the_checked_in_gallery_is_up_to_date() -> None:
    pages = generate()
    assert stale(DOCS, pages) == [], (
        "docs/windows is out of date: run python -m meerkat_ref.specgen.gallery docs/windows"
    )
    assert generate() == pages, "two runs, same bytes"


def test_check_mode_finds_a_stale_page_and_writes_nothing(tmp_path: Path) -> None:
    assert main([str(tmp_path)]) == 0
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == sorted(generate())
    (tmp_path / "window-1-save-after-turn.html").write_text("old", encoding="utf-8")
    assert main([str(tmp_path), "--check"]) == 1
    assert (tmp_path / "window-1-save-after-turn.html").read_text(encoding="utf-8") == "old"
    (tmp_path / "index.html").unlink()
    assert stale(tmp_path) == ["window-1-save-after-turn.html: out of date", "index.html: missing"]
