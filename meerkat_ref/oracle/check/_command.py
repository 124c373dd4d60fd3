"""``meerkat-ref check``'s pipeline: which scenarios, run where, what is shown, the exit code.

The command line (``cli.py``) reads and checks the options and hands this
module a ``Request``; everything after that is here, so the pipeline runs
(and is tested) without argparse: it explores the scenarios
(``explore_all``, or ``explore_in_processes`` with ``jobs`` above one),
shows each scenario's first counterexample the moment it is found (a
swimlane and a Mermaid diagram, drawn from the run's trace by ``report``)
and writes its schedule for ``replay``, then prints the table (or
``--json``), writes ``--junit-xml`` and ``--html``, and decides the exit
code: 0 clean, 1 violations (or a protocol error), 3 an oracle error.
``check_windows`` is the same for the seed's windows, each opened alone
(``--variant seed-0.4.0``); the finder of each window is the caller's
(``specgen.vectors.window_counterexample``), since the seed variant is not
the oracle's to reach (import-linter).

Results go to ``out`` (default: stdout) and progress and notes to ``err``
(default: stderr), in the form that fits it (``report.make_progress``).
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TextIO, TypeVar

import trio

from ...report import (
    Case,
    Failure,
    aligned_table,
    junit_xml,
    make_progress,
    mermaid,
    swimlane,
    write_text,
)
from ...store import BUILTIN_KINDS
from ..counterexamples import Counterexample, write_html
from ..engine import (
    SCENARIOS,
    RunOutcome,
    Scenario,
    ScheduleDiverged,
    SchedulerSpec,
    SearchReport,
    dump,
    get_scenario,
)
from ..targets import InProcessTarget, ProtocolError, Target, adapter_target
from ._explore import NO_POINTS, ExplorationCut, explore_all, explore_in_processes

T = TypeVar("T")

Found = tuple[RunOutcome | None, int, float]
"""What a window's finder returns: the counterexample (or None), schedules run, seconds."""


@dataclass(frozen=True)
class Request:
    """One ``check`` run, its options already checked (``cli.cmd_check``)."""

    variant: str  # its name, for the summary when no scenario ran
    make_target: Callable[[], InProcessTarget]  # the variant in process; must pickle (--jobs)
    scheduler: SchedulerSpec
    store: str = "memory"  # the store's kind ("adapter" over a port)
    scenarios: tuple[str, ...] = ()  # none: every named scenario
    adapter: str | None = None  # the adapter's command line, as given
    timeout: float = 10.0
    jobs: int | None = None  # None: one per core
    keep_going: bool = False
    json: bool = False
    out: str = "counterexamples"
    html: str | None = None
    junit_xml: str | None = None
    audit: int | None = None


@dataclass(frozen=True)
class SeedWindow:
    """One window of the seed, opened alone, and how to find a counterexample through it."""

    number: int
    name: str
    find: Callable[[], Found]

    @property
    def stem(self) -> str:
        return f"window-{self.number}-{self.name}"


def replay_command(path: str, adapter: str | None) -> str:
    """The command that replays the schedule file ``path`` (on the port, with ``adapter``)."""
    command = f"meerkat-ref replay {shlex.quote(path)}"
    return command + (f" --adapter {shlex.quote(adapter)}" if adapter else "")


async def with_target(adapter: str | None, timeout: float,
                      make_local: Callable[[], InProcessTarget],
                      fn: Callable[[Target], Awaitable[T]]) -> T:
    """``fn`` on the port through ``adapter`` if given, else on ``make_local()``."""
    if adapter is not None:
        async with adapter_target(shlex.split(adapter), timeout) as port:
            return await fn(port)
    async with make_local() as local:
        return await fn(local)


def cores() -> int:
    """The cores this process may run on (its affinity, where the system says; else all)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def _jobs(request: Request, scenarios: int) -> int:
    """Processes: ``--jobs``, or one per core, never more than scenarios; one for a port."""
    if request.adapter is not None:
        return 1
    wanted = request.jobs if request.jobs is not None else cores()
    return max(1, min(wanted, scenarios))


def check(request: Request, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """``check`` over the named scenarios; its exit code.  A protocol error, or a replayed
    schedule the code no longer follows, is one line on ``err`` and exit 1."""
    err = err or sys.stderr
    try:
        return _check_scenarios(request, out or sys.stdout, err)
    except ProtocolError as exc:
        print(f"meerkat-ref check: the adapter broke the protocol: {exc}", file=err)
        return 1
    except ScheduleDiverged as exc:  # --scheduler replay:file=F, on code that changed since
        print(f"meerkat-ref check: SCHEDULE_DIVERGED: the run no longer follows the recording "
              f"{exc}", file=err)
        return 1


def _check_scenarios(request: Request, out: TextIO, err: TextIO) -> int:
    """Explore each scenario; show each one's first counterexample as soon as it is found.

    By default a scenario's search stops at its first counterexample
    (``--keep-going`` explores on, counting every violation and keeping the
    shortest).  Each counterexample is printed and its schedule written the
    moment it is found, not when every scenario is done.  A protocol error
    (over ``--adapter``) keeps what was found before it: the table, the
    counterexamples and the ``--json``/``--junit-xml``/``--html`` outputs, then
    the error on stderr, and exit 1.
    """
    names = request.scenarios or tuple(s.name for s in SCENARIOS)
    scenarios = [get_scenario(n) for n in names]
    store_kind = request.store
    progress = make_progress(err, request.json)
    stop = not request.keep_going
    shown: dict[str, Counterexample] = {}  # scenario -> the counterexample shown for it

    def written(name: str, outcome: RunOutcome) -> Counterexample:
        path = _save_schedule(outcome, store_kind, request.out, name)
        return Counterexample(name, outcome, replay_command(path, request.adapter),
                              about=get_scenario(name).about, store=store_kind,
                              target=request.adapter or "in-process", schedule=path)

    def first_found(report: SearchReport, outcome: RunOutcome) -> None:
        if report.scenario in shown:
            return
        ce = shown[report.scenario] = written(report.scenario, outcome)
        progress.counterexample(sorted({v.rule for v in outcome.violations}), ce.schedule)
        if not request.json:
            _show_counterexample(ce, out)

    async def run(target: Target) -> list[SearchReport]:
        return await explore_all(
            target, scenarios, scheduler=request.scheduler,
            store=store_kind, stop_on_violation=stop,
            started=lambda s: progress.start(s.name),
            progress=lambda r: progress.update(r.schedules, r.states, r.violations),
            finished=lambda r: progress.finish(r.schedules, r.states, r.violations),
            found=first_found,
            audit=request.audit,
        )

    jobs = _jobs(request, len(scenarios))
    error: ProtocolError | None = None
    with progress:
        if jobs > 1:
            def finished(r: SearchReport) -> None:
                progress.ended(r.scenario, r.schedules, r.states, r.violations, r.seconds)
                first = r.first()
                if first is not None:
                    first_found(r, first)

            reports = explore_in_processes(request.make_target, scenarios, jobs=jobs,
                                           scheduler=request.scheduler,
                                           stop_on_violation=stop, finished=finished)
        else:
            try:
                reports = trio.run(with_target, request.adapter, request.timeout,
                                   request.make_target, run)
            except ExplorationCut as cut:
                reports, error = cut.reports, cut.error
    what = reports[0].variant if reports else request.variant
    cut_at = reports[-1].scenario if error is not None and reports else None
    found: list[Counterexample] = []
    for r in reports:
        first = r.first()
        if first is None:
            continue
        ce = shown.get(r.scenario)
        if ce is None or ce.outcome is not first:  # --keep-going met a shorter one: keep that
            ce = written(r.scenario, first)
            if not request.json:
                print(f"\n(the shortest of {r.violations} counterexamples of {r.scenario}:)",
                      file=out)
                _show_counterexample(ce, out)
        found.append(ce)
    schedules = {ce.name: ce.schedule for ce in found}
    if request.json:
        results = [{**r.to_json(), "schedule": schedules.get(r.scenario)} for r in reports]
        print(json.dumps({"variant": what, "results": results,
                          "protocol_error": None if error is None else str(error)}, indent=1),
              file=out)
    else:
        if found:
            print(file=out)  # below the counterexamples printed as they were found
        print(_table(reports, cut_at), file=out)
        total = sum(r.schedules for r in reports)
        bad = sum(r.violations for r in reports)
        print(f"\n{what}: {total} schedules, {bad} violations ({store_kind} store)", file=out)
        for line in _notes(reports, stop, len(scenarios)):
            print(line, file=out)
    _write_results(request, f"meerkat-ref check {what}",
                   _cases(reports, scenarios, found, what, cut_at, error), found, err)
    if error is not None:
        print(f"meerkat-ref check: the adapter broke the protocol in scenario {cut_at}: "
              f"{error}", file=err)
        return 1
    return (_show_oracle_errors(reports, request.audit, err)
            or (1 if any(r.violations for r in reports) else 0))


def check_windows(request: Request, windows: Sequence[SeedWindow], out: TextIO | None = None,
                  err: TextIO | None = None) -> int:
    """Open each window alone and find a counterexample through it; exit 1 if any is found
    (the seed is expected to fail, as for any violation)."""
    out, err = out or sys.stdout, err or sys.stderr
    store_kind = request.store
    summary: list[tuple[SeedWindow, RunOutcome | None, int, float]] = []
    found: list[Counterexample] = []
    with make_progress(err, request.json) as progress:
        for window in windows:
            progress.start(window.stem)
            outcome, tried, seconds = window.find()
            progress.finish(tried, None, 0 if outcome is None else 1)
            summary.append((window, outcome, tried, seconds))
            if outcome is None:
                continue
            path = _save_schedule(outcome, store_kind, request.out, window.stem)
            ce = Counterexample(window.stem, outcome, replay_command(path, None),
                                about=get_scenario(outcome.scenario).about, store=store_kind,
                                schedule=path)
            found.append(ce)
            if not request.json:
                _show_counterexample(ce, out)
    if request.json:
        print(json.dumps([
            {
                "window": w.name,
                "found": o is not None,
                "scenario": o.scenario if o else None,
                "rules": sorted({v.rule for v in o.violations}) if o else [],
                "schedules": n,
                "seconds": round(t, 3),
            }
            for w, o, n, t in summary
        ], indent=1), file=out)
    else:
        rows: list[tuple[object, ...]] = [("#", "window", "scenario", "rule(s)", "schedules",
                                           "seconds")]
        rows += [
            (w.number, w.name, o.scenario if o else "-",
             ",".join(sorted({v.rule for v in o.violations})) if o else "NOT FOUND", n,
             f"{t:.2f}")
            for w, o, n, t in summary
        ]
        print(file=out)
        print(aligned_table(rows, numeric_columns=(0, 4, 5)), file=out)
    by_name = {ce.name: ce for ce in found}
    cases = [Case(w.stem, "meerkat-ref.check.seed-0.4.0", t,
                  by_name[w.stem].failure() if w.stem in by_name else None)
             for w, _o, _n, t in summary]
    _write_results(request, "meerkat-ref check seed-0.4.0", cases, found, err)
    return 1 if found else 0


def _searched(r: SearchReport, cut: str | None) -> str:
    """The search column: how far a scenario's search went."""
    how = r.strategy.split("(")[0]
    if r.unchecked == NO_POINTS:
        return f"{how} skipped"
    if r.sampled:
        return f"{how} sampled"  # the runs asked for: no claim of coverage
    if r.exhausted:
        return f"{how} exhausted"
    if r.scenario == cut:
        return f"{how} (cut: protocol error)"
    if r.violating and r.violations == 1:
        return f"{how} stopped"  # at its first counterexample (check's default)
    return f"{how} (cut)"


def _table(reports: Sequence[SearchReport], cut: str | None = None) -> str:
    head = ("scenario", "search", "bound", "schedules", "pruned", "states", "violations",
            "seconds")
    rows = [head] + [
        (
            r.scenario,
            _searched(r, cut),
            "none" if r.bound is None else str(r.bound),
            str(r.schedules),
            str(r.pruned),
            str(r.states),
            str(r.violations),
            f"{r.seconds:.1f}",
        )
        for r in reports
    ]
    return aligned_table(rows, numeric_columns=range(2, len(head)))


def _notes(reports: Sequence[SearchReport], stop: bool, wanted: int) -> list[str]:
    """What the table does not say: searches stopped early, checks a target could not make."""
    notes = []
    if stop and any(r.violations and not r.exhausted for r in reports):
        notes.append("stopped: a scenario's search ends at its first counterexample "
                     "(--keep-going explores it all)")
    for r in reports:
        if r.unchecked:
            notes.append(f"{r.scenario}: {r.unchecked}")
    if len(reports) < wanted:
        notes.append(f"{wanted - len(reports)} scenario(s) not run: the adapter broke the "
                     "protocol first")
    return notes


def _cases(reports: Sequence[SearchReport], scenarios: Sequence[Scenario],
           found: Sequence[Counterexample], what: str, cut_at: str | None,
           error: ProtocolError | None) -> list[Case]:
    """JUnit: a case per scenario; one a protocol error cut or kept from running says so."""
    by_name = {ce.name: ce for ce in found}
    classname = f"meerkat-ref.check.{what}"
    cases = []
    for r in reports:
        failure = by_name[r.scenario].failure() if r.scenario in by_name else None
        if failure is None and r.scenario == cut_at and error is not None:
            failure = Failure(f"protocol error: {error}", f"the adapter broke the protocol "
                              f"while this scenario was explored: {error}", "protocol")
        skipped = r.unchecked if r.unchecked == NO_POINTS else None
        cases.append(Case(r.scenario, classname, r.seconds, failure, skipped))
    ran = {r.scenario for r in reports}
    cases += [Case(s.name, classname, 0.0, None,
                   f"not run: the adapter broke the protocol in scenario {cut_at}")
              for s in scenarios if s.name not in ran]
    return cases


def _write_results(request: Request, suite: str, cases: Sequence[Case],
                   found: Sequence[Counterexample], err: TextIO) -> None:
    """``--junit-xml`` and ``--html``, each said in one line on ``err``."""
    if request.junit_xml:
        path = write_text(request.junit_xml, junit_xml(suite, cases))
        print(f"JUnit XML written to {path}", file=err)
    if request.html and found:
        paths = write_html(found, request.html, title=suite)
        print(f"HTML report{'s' if len(found) > 1 else ''} written to "
              f"{paths[-1] if len(paths) > 1 else paths[0]}", file=err)
    elif request.html:
        print(f"no counterexample: no HTML report written to {request.html}", file=err)


def _save_schedule(outcome: RunOutcome, store: str, out: str, stem: str) -> str:
    """Write the schedule file ``replay`` reads; its path."""
    scenario = get_scenario(outcome.scenario) if outcome.scenario in {
        s.name for s in SCENARIOS} else None
    spec = scenario.to_spec() if scenario is not None else None
    path = os.path.join(out, f"{stem}.json")
    # A schedule file names a built-in store (the engine's format); a run on a port or on a
    # plug-in store replays on memory.
    write_text(path, dump(outcome, store if store in BUILTIN_KINDS else "memory", spec))
    return path


def _show_counterexample(ce: Counterexample, out: TextIO) -> None:
    outcome, trace = ce.outcome, ce.trace()  # the trace the HTML and JUnit reports read too
    print(f"\n=== {outcome.variant} / {outcome.scenario}: {len(outcome.steps)} steps ===",
          file=out)
    print(swimlane(trace), file=out)
    print("\n```mermaid", file=out)
    print(mermaid(trace), file=out)
    print("```", file=out)
    print(f"schedule written to {ce.schedule}; replay with: {ce.replay}", file=out, flush=True)


def _show_oracle_errors(reports: Sequence[SearchReport], audit: int | None,
                        err: TextIO) -> int:
    """Print each oracle error (``err``); exit code 3 if there is one."""
    errors = [e for r in reports for e in r.oracle_errors]
    for e in errors:
        print(f"ORACLE ERROR ({e.kind}) in {e.scenario}: {e.message}", file=err)
    audited = sum(r.audited for r in reports)
    if audit is not None or errors:
        print(f"audit: {audited} pairs of steps called independent run both ways; "
              f"{len(errors)} oracle error(s)", file=err)
    return 3 if errors else 0


__all__ = ["Found", "Request", "SeedWindow", "check", "check_windows", "cores",
           "replay_command", "with_target"]
