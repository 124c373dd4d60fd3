"""``conform --html DIR`` and ``--junit-xml FILE``: a port's failures as pictures and CI results.

Why redraw: a conformance failure records the request lines that replay it,
and, for a run controlled through the hooks, its scenario (spec) and the
schedule's choices.  That is enough to run it again on a fresh adapter with
an exact ``ReplayStrategy`` and draw that run: the same engine, the same
report as ``check --html``, except that a port's gates are not visible
(the trace says ``null``).  Next to each report goes its schedule file, so
``meerkat-ref replay FILE --adapter CMD`` reproduces it step for step.
Sequential and free-running failures have no schedule to follow; they are
listed with their request lines in the text report and the JUnit XML only.

JUnit: one test case per clause that was checked or failed, plus
``PROTOCOL`` when the adapter broke the protocol; a failing case's text is
the shortest counterexample's message, how to replay it, its request lines,
and the ``replay`` command when a schedule file was written.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import trio

from ...report import Case, write_text
from ...report import Failure as CaseFailure
from ..counterexamples import Counterexample, write_html
from ..engine import (
    SCENARIOS,
    Choice,
    ReplayStrategy,
    RunOutcome,
    ScheduleDiverged,
    SpecError,
    dump,
    run_schedule,
    scenario_from_spec,
)
from ..targets import ProtocolError, adapter_target
from ._report import Failure, Report, _order


@dataclass(frozen=True)
class Drawn:
    """What ``--html`` made of one failure: its report and schedule, or why it could not."""

    failure: Failure
    name: str
    replay: str = ""  # the command that replays it
    problem: str = ""  # why it was not drawn


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "failure"


def _about(case: str) -> str:
    """The named scenario a case ran (``x (dfs)``, ``v1 (scenario x)``), described."""
    named = re.search(r"\(scenario ([^)]+)\)", case)
    name = named.group(1) if named else case.split(" (", 1)[0]
    return next((s.about for s in SCENARIOS if s.name == name), "")


def drawable(report: Report) -> list[Failure]:
    """The failures to draw: each clause's best, and each phase's best, once per schedule."""
    seen: set[str] = set()
    out = []
    candidates = [report.minimal[c] for c in _order(report.minimal)]
    candidates += [f for best in report.by_phase.values() for f in best.values()]
    for f in candidates:
        if f.scenario is None or not f.choices:
            continue
        key = json.dumps([f.scenario, f.choices], sort_keys=True)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


def draw_failures(argv: Sequence[str], timeout: float, report: Report,
                  directory: str) -> list[Drawn]:
    """Re-run each drawable failure on a fresh adapter; write its report and schedule file."""
    command = shlex.join(argv)
    failures = drawable(report)
    if not failures:
        return []
    runs: list[tuple[Failure, str, RunOutcome | None, str]] = []

    async def main() -> None:
        async with adapter_target(argv, timeout) as target:
            for f in failures:
                name = _slug(f"{f.clause} {f.case}")
                try:
                    scenario = scenario_from_spec(f.scenario, name)
                    choices = [Choice.from_json(c) for c in f.choices]
                    outcome = await run_schedule(target, scenario, ReplayStrategy(choices))
                except (SpecError, ValueError, ScheduleDiverged) as exc:
                    runs.append((f, name, None, f"could not be replayed: {exc}"))
                    continue
                runs.append((f, name, outcome, ""))

    try:
        trio.run(main)
    except ProtocolError as exc:
        done = {id(f) for f, *_ in runs}
        runs += [(f, _slug(f"{f.clause} {f.case}"), None, f"adapter failed: {exc}")
                 for f in failures if id(f) not in done]
    drawn: list[Drawn] = []
    found: list[Counterexample] = []
    for f, name, outcome, problem in runs:
        if outcome is None:
            drawn.append(Drawn(f, name, problem=problem))
            continue
        schedule = Path(directory) / f"{name}.json"
        write_text(schedule, dump(outcome, "memory", f.scenario))
        replay = f"meerkat-ref replay {shlex.quote(str(schedule))} --adapter {shlex.quote(command)}"
        found.append(Counterexample(name, outcome, replay, about=_about(f.case), store="adapter",
                                    target=command))
        drawn.append(Drawn(f, name, replay=replay))
    if found:
        write_html(found, directory, title=f"meerkat-ref conform {command}")
    return drawn


def junit_cases(report: Report, drawn: Sequence[Drawn] = ()) -> list[Case]:
    """One case per clause checked or failed (and ``PROTOCOL``), in the contract's order."""
    replays = {(d.failure.clause, d.failure.phase, d.failure.case): d.replay
               for d in drawn if d.replay}
    cases = []
    for clause in _order(report.checks.keys() | report.failed.keys()):
        if clause == "PROTOCOL":
            continue
        best = report.minimal.get(clause)
        failure = None
        if report.failed[clause] and best is not None:
            failure = _case_failure(report, best, replays.get((best.clause, best.phase, best.case)))
        cases.append(Case(clause, "meerkat-ref.conform", 0.0, failure))
    if report.protocol:
        text = "\n".join(f"PROTOCOL ERROR {m}" for m in report.protocol)
        cases.append(Case("PROTOCOL", "meerkat-ref.conform", 0.0,
                          CaseFailure(report.protocol[0], text, "PROTOCOL")))
    return cases


def _case_failure(report: Report, f: Failure, replay: str | None) -> CaseFailure:
    n = report.failed[f.clause]
    lines = [
        f"{f.clause}: {n} failure{'s' if n != 1 else ''}; the shortest:",
        f"phase: {f.phase}; case: {f.case}",
        f.message,
        "",
    ]
    if replay:
        lines += [f"replay: {replay}", ""]
    lines += [f"request lines ({f.how}):", *f.lines]
    first = f.message.splitlines()[0] if f.message else f.clause
    return CaseFailure(first, "\n".join(lines), f.clause)


__all__ = ["Drawn", "draw_failures", "drawable", "junit_cases"]
