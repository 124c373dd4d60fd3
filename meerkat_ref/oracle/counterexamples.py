"""Counterexamples found by a command, as the files a person or a CI system reads.

``check``, ``replay`` and ``conform`` each end with a few violating runs;
this module turns them into HTML reports (one per run, and an index when
there are several) and into JUnit failures whose text carries the command
that replays the run.  One place, so the three commands name, draw and
explain a counterexample the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..report import (
    Failure,
    make_dir,
    render_gallery,
    render_html,
    report_name,
    trace_failure,
    write_text,
)
from .engine import RunOutcome, trace_of


@dataclass(frozen=True)
class Counterexample:
    """A violating run and what a reader needs around it."""

    name: str  # the file stem: a scenario's name, or window-1-save-after-turn
    outcome: RunOutcome
    replay: str  # the command that reproduces it ("" when none does)
    about: str = ""
    store: str = "memory"
    target: str = "in-process"  # or the adapter's command line
    schedule: str = ""  # the schedule file written for it, if one was

    def trace(self) -> dict[str, Any]:
        return trace_of(self.outcome, store=self.store, about=self.about, replay=self.replay,
                        title=f"{self.outcome.variant} / {self.name}", target=self.target)

    def failure(self) -> Failure:
        """The JUnit failure: the first violation, then all of them and the replay command."""
        return trace_failure(self.trace())


def write_html(found: Sequence[Counterexample], directory: str | Path,
               title: str = "Counterexamples") -> list[Path]:
    """One report per counterexample (``NAME.html``), and ``index.html`` when there are several.

    Raises ``OutputError`` when the directory or a file cannot be written.
    """
    folder = make_dir(directory)
    written: list[tuple[str, dict[str, Any]]] = []
    paths = []
    for ce in found:
        trace = ce.trace()
        name = report_name({"title": ce.name})
        paths.append(write_text(folder / name, render_html(trace)))
        written.append((name, trace))
    if len(written) > 1:
        paths.append(write_text(folder / "index.html", render_gallery(written, title)))
    return paths


__all__ = ["Counterexample", "write_html"]
