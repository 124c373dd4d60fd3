"""``python -m meerkat_ref.specgen.gallery DIR``: the seed's four windows as HTML reports.

Why: someone learning why the seed resurrects sessions should be able to
open a page and step through each window, without installing anything.  The
pages in ``docs/windows/`` are made by this command and checked in;
``--check`` writes nothing and exits 1 if any page differs from what the
explorer finds now (``tests/test_report_gallery.py`` runs it).

Each window's counterexample is the one ``spec/CONCURRENCY.md`` draws
(``specgen.docs.find_window``: the first scenario through that window alone,
smallest preemption bound, memory store), turned into a trace by today's
``oracle.engine.trace_of``.  Deterministic: the search is, and the pages
hold no time and no path.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ..oracle.engine import get_scenario, trace_of
from ..report import render_gallery, render_html
from ..testing import Window
from .docs import find_window

TITLE = "The seed's four windows"
INTRO = (
    "Each page steps through one counterexample of the seed-faithful variant with one window "
    "opened alone, as `meerkat-ref check --variant seed-0.4.0 --memory` finds it (the same "
    "runs spec/CONCURRENCY.md draws). Open one, then press the right arrow key to walk the "
    "interleaving, or v to jump to the violation. Made by "
    "`python -m meerkat_ref.specgen.gallery docs/windows`."
)


def window_name(window: Window) -> str:
    """``window-1-save-after-turn``: the stem ``meerkat-ref check --variant seed-0.4.0`` uses."""
    return f"window-{window.number}-{window.value}"


def window_trace(window: Window) -> dict[str, object]:
    """The trace of the counterexample through ``window`` alone, as the explorer finds it now."""
    drawing = find_window(window)
    scenario = get_scenario(drawing.scenario)
    return trace_of(
        drawing.outcome,
        store="memory",
        about=scenario.about,
        title=f"Window {window.number} ({window.value}): {drawing.scenario}",
        replay=f"meerkat-ref replay counterexamples/{window_name(window)}.json",
    )


def generate() -> dict[str, str]:
    """File name -> text for every page of the gallery (the four reports and ``index.html``)."""
    pages: dict[str, str] = {}
    listed: list[tuple[str, dict[str, object]]] = []
    for window in Window:
        trace = window_trace(window)
        name = f"{window_name(window)}.html"
        pages[name] = render_html(trace)
        listed.append((name, trace))
    pages["index.html"] = render_gallery(listed, TITLE, INTRO)
    return pages


def stale(directory: Path, pages: dict[str, str] | None = None) -> list[str]:
    """Pages in ``directory`` that are missing or differ from ``generate()``."""
    wanted = generate() if pages is None else pages
    out = []
    for name, text in wanted.items():
        path = directory / name
        if not path.is_file():
            out.append(f"{name}: missing")
        elif path.read_text(encoding="utf-8") != text:
            out.append(f"{name}: out of date")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m meerkat_ref.specgen.gallery",
        description="Write the seed's four windows as HTML counterexample reports.",
    )
    parser.add_argument("directory", type=Path, help="where the pages go (docs/windows)")
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if a page is out of date"
    )
    args = parser.parse_args(argv)
    directory: Path = args.directory
    pages = generate()
    if args.check:
        problems = stale(directory, pages)
        for line in problems:
            print(line, file=sys.stderr)
        if not problems:
            print(f"{directory} is up to date")
        return 1 if problems else 0
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in pages.items():
        path = directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.as_posix()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
