"""``meerkat-ref replay``'s pipeline: a schedule file ``check`` wrote, run again step for step.

The command line reads the file and resolves its scenario and variant (bad
input is its to refuse); from there this runs the recorded choices
(``ReplayStrategy``) on the same target, or on a port with ``adapter``,
prints the run's swimlane (drawn from its trace, as ``check`` does), says
whether it followed the recording (``departure``: where it left it, in
words) and whether the violations are the recorded ones, writes ``--html``,
and decides the exit code: 1 if the run violates a rule or departs from
the recording (``SCHEDULE_DIVERGED``), or the adapter breaks the protocol.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

import trio

from ...report import swimlane
from ..counterexamples import Counterexample, write_html
from ..engine import (
    Choice,
    ReplayStrategy,
    RunOutcome,
    Scenario,
    ScheduleDiverged,
    ScheduleFile,
    run_schedule,
)
from ..targets import InProcessTarget, ProtocolError, Target
from ._command import replay_command, with_target


def replay(path: str, schedule: ScheduleFile, scenario: Scenario,
           make_target: Callable[[], InProcessTarget], *, adapter: str | None = None,
           timeout: float = 10.0, html: str | None = None, out: TextIO | None = None,
           err: TextIO | None = None) -> int:
    """Replay ``schedule`` (read from ``path``) of ``scenario``; the exit code."""
    out, err = out or sys.stdout, err or sys.stderr

    async def run(target: Target) -> RunOutcome:
        return await run_schedule(target, scenario, ReplayStrategy(schedule.choices))

    try:
        outcome = trio.run(with_target, adapter, timeout, make_target, run)
    except ScheduleDiverged as exc:
        print(f"meerkat-ref replay: SCHEDULE_DIVERGED: the run no longer follows the recording "
              f"{exc}", file=err)
        return 1
    except ProtocolError as exc:
        print(f"meerkat-ref replay: the adapter broke the protocol: {exc}", file=err)
        return 1
    store = "adapter" if adapter else schedule.store
    ce = Counterexample(os.path.splitext(os.path.basename(path))[0], outcome,
                        replay_command(path, adapter), about=scenario.about, store=store,
                        target=adapter or "in-process")
    print(swimlane(ce.trace()), file=out)
    rules = tuple(v.rule for v in outcome.violations)
    departed = departure(list(schedule.choices), outcome.choices, schedule.steps,
                         len(outcome.steps))
    print(
        f"\nreplayed {len(outcome.steps)} steps: "
        + ("same schedule as recorded" if departed is None else "DIFFERENT from the recording"),
        file=out,
    )
    if set(rules) != set(schedule.violations):
        print(f"recorded violations {sorted(set(schedule.violations))}, now {sorted(set(rules))}",
              file=out)
    if html:
        written = write_html([ce], html)[0]
        print(f"HTML report written to {written}", file=err)
    if departed is not None:
        print(f"meerkat-ref replay: SCHEDULE_DIVERGED: the replay departed from its recording "
              f"{departed}", file=err)
        return 1
    return 1 if outcome.violations else 0


def departure(recorded: Sequence[Choice], ran: Sequence[Choice], recorded_steps: int | None,
              steps: int) -> str | None:
    """Where a replay left its recording, in words (None: it followed it to the end)."""
    def shown(choices: Sequence[Choice], i: int) -> str:
        if i >= len(choices):
            return "the end of the run"
        c = choices[i]
        return "a crash" if c.crash else repr(c.label) + (" (its store call failed)"
                                                          if c.fault else "")

    for i in range(max(len(recorded), len(ran))):
        if i >= len(recorded) or i >= len(ran) or recorded[i] != ran[i]:
            return f"at step {i}: recorded {shown(recorded, i)}, ran {shown(ran, i)}"
    if recorded_steps is not None and recorded_steps != steps:
        return (f"after its last choice: the recording has {recorded_steps} steps in all, "
                f"the replay {steps}")
    return None


__all__ = ["departure", "replay"]
