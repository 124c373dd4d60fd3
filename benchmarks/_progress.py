"""Progress of ``python -m benchmarks``: how long the sections left will take.

Why: a quick run took eight minutes on a loaded machine and said nothing for
seven (issue 20).  The estimate is each section's time in the last results
file of the same kind (``RESULTS.md``, ``RESULTS-quick.md``), which records
it (``timings_comment``); a section never timed is said to be.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from meerkat_ref.report import duration

from ._common import Section, say

HEARTBEAT = 20.0
"""Seconds between two progress lines while a section runs."""

_TIMINGS = re.compile(r"<!-- section-seconds: (\{.*?\}) -->")
_NUMBERED = re.compile(r"^## (\d+)\. ")
_SECTION_TIME = re.compile(r"^_Section time: ([0-9.]+) s\._$")


def recorded(path: Path, keys: Sequence[str]) -> dict[str, float]:
    """Each section's seconds in a results file written before (``{}`` if there is none).

    Read from the file's ``section-seconds`` comment (``timings_comment``), or,
    in a file written before there was one, from each numbered section's
    "Section time" line (section N is the N-th of ``keys``).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return {}
    found = _TIMINGS.search(text)
    if found is not None:
        try:
            data = json.loads(found.group(1))
        except json.JSONDecodeError:
            data = None
        if isinstance(data, dict):
            return {str(k): float(v) for k, v in data.items()
                    if k in keys and isinstance(v, int | float)}
    out: dict[str, float] = {}
    number: int | None = None
    for line in text.splitlines():
        heading = _NUMBERED.match(line)
        if heading is not None:
            number = int(heading.group(1))
        timed = _SECTION_TIME.match(line)
        if timed is not None and number is not None and 1 <= number <= len(keys):
            out[keys[number - 1]] = float(timed.group(1))
    return out


class Estimate:
    """How long the sections left will take, from their times in the last run of this kind.

    ``clock`` is injectable so the lines can be tested without waiting.
    """

    def __init__(self, keys: list[str], last: dict[str, float],
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.keys = keys
        self.last = last
        self.clock = clock
        self.done: dict[str, float] = {}
        self.current: str | None = None
        self.started = clock()

    def total(self) -> str:
        known = [self.last[k] for k in self.keys if k in self.last]
        if not known:
            return "no earlier run of this kind to estimate the time from"
        untimed = [k for k in self.keys if k not in self.last]
        return (f"about {duration(sum(known))} by the last run"
                + (f", plus {', '.join(untimed)}, never timed" if untimed else ""))

    def left(self) -> str:
        """The time left in all: the current section's rest, then every section to come."""
        rest, untimed = 0.0, []
        for key in self.keys:
            if key in self.done:
                continue
            if key not in self.last:
                untimed.append(key)
                continue
            spent = self.clock() - self.started if key == self.current else 0.0
            rest += max(self.last[key] - spent, 0.0)
        never = ", ".join(untimed)
        if untimed and not rest:
            return f"time left unknown ({never} never timed)"
        return f"about {duration(rest)} left" + (f", plus {never} (never timed)" if never else "")

    def start(self, key: str) -> str:
        self.current, self.started = key, self.clock()
        was = (f" (last time {duration(self.last[key])})" if key in self.last
               else " (never timed before)")
        return f"{key}: started{was}; {self.left()}"

    def beat(self) -> str:
        assert self.current is not None
        key = self.current
        spent = self.clock() - self.started
        was = ""
        if key in self.last:
            last = duration(self.last[key])
            was = (f" (longer than the {last} of last time)" if spent > self.last[key]
                   else f" (of {last} last time)")
        return f"{key}: {duration(spent)} so far{was}; {self.left()}"

    def finish(self, key: str, seconds: float) -> str:
        self.done[key] = seconds
        self.current = None
        count = f"{len(self.done)} of {len(self.keys)} sections done"
        left = "" if len(self.done) == len(self.keys) else f", {self.left()}"
        return f"{key}: {duration(seconds)}; {count}{left}"




def timings_comment(sections: Sequence[Section]) -> str:
    """The line a results file ends with, that ``recorded`` reads back (invisible in Markdown)."""
    timings = {s.key: round(s.seconds, 1) for s in sections}
    return f"<!-- section-seconds: {json.dumps(timings)} -->\n"


def heartbeat(estimate: Estimate, stop: threading.Event, every: float) -> None:
    """A line every ``every`` seconds until ``stop``: run in a thread, so a section that
    keeps the event loop busy cannot silence it."""
    while not stop.wait(every):
        say(estimate.beat())


__all__ = ["HEARTBEAT", "Estimate", "heartbeat", "recorded", "timings_comment"]
