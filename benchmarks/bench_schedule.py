"""Where one schedule's time goes (issue 18, item 3): ``python -m benchmarks.bench_schedule``.

Explores scenarios with DPOR in process (memory store, the reference) and
charges each moment of the oracle's task to the innermost of a few named
parts it is in, by wrapping their functions for the run (nothing of the
engine is changed; the wrappers are taken off afterwards):

- *service start*: ``open``, a fresh service and store for the schedule;
- *setup calls*: the scenario's setup, points off, less what is charged below;
- *service work and Trio scheduling*: ``settle``, waiting for quiescence,
  while the released task and every task it wakes run (the service's own
  code, the agent, the memory store, and Trio's scheduler between them);
- *event streams*: reading what each session published, at quiescence;
- *observing*: the store view and the service's introspection after a step;
- *monitor*: the rules, step by step (``Monitor.observe``, ``invoked``,
  ``answered``);
- *sending*: a release or a call handed to the target;
- *restart and shutdown*: the process boundary after the run;
- *read-back*: the calls after the restart, less what is charged elsewhere;
- *linearizability and end rules*: ``Monitor.read_back``;
- *DPOR*: choosing, recording footprints, races and backtracking;
- *the run loop*: what is left of the schedule (``_run``'s loop, event
  streams, snapshots, the explorer).

A part's time is wall time of the oracle's task inside it, less the time of
parts nested in it; they add up to the whole.  The service's tasks run only
while the oracle's task waits in ``settle`` (Trio runs one task at a time),
so their time is that part's.  Exit 0; the figures are written down in
``benchmarks/README.md``.

    python -m benchmarks.bench_schedule [--scenario NAME]... [--scope NAME --shard I/N]
"""

from __future__ import annotations

import argparse
import functools
import inspect
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import trio

from meerkat_ref.oracle.engine import Scenario, _dpor, _monitor, _run, explore, get_scenario
from meerkat_ref.oracle.sweep import SCOPES, scenarios, shard
from meerkat_ref.oracle.targets import _inprocess, _streams
from meerkat_ref.variants import Variant

from ._common import markdown_table

PARTS: tuple[tuple[str, object, tuple[str, ...]], ...] = (
    ("service start", _inprocess.InProcessTarget, ("open",)),
    ("setup calls", _run._Runner, ("setup",)),
    ("service work and Trio scheduling", _inprocess.InProcessTarget, ("settle", "wait_any")),
    ("event streams", _streams.Subscriptions, ("collect",)),
    ("observing", _inprocess.InProcessTarget, ("observe_store", "introspect")),
    ("monitor", _monitor.Monitor, ("observe", "invoked", "answered", "started_together")),
    ("sending", _inprocess.InProcessTarget, ("release", "call", "control")),
    ("restart and shutdown", _inprocess.InProcessTarget, ("restart", "shutdown")),
    ("read-back", _run._Runner, ("post",)),
    ("linearizability and end rules", _monitor.Monitor, ("read_back",)),
    ("DPOR", _dpor.DporRun, ("choose", "observe")),
    ("DPOR", _dpor.DporScheduler, ("next_run", "finish")),
)
"""Each part: the functions charged to it, by class and name."""

DEFAULT_SCENARIOS = ("turn-save-vs-archive", "create-vs-archive", "turn-archive-rearm")


class Clock:
    """Exclusive wall time per part: a stack of the parts the oracle's task is in."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = defaultdict(float)
        self._nested: list[float] = []  # per open part: the time of parts nested in it

    @contextmanager
    def inside(self, part: str) -> Iterator[None]:
        started = time.perf_counter()
        self._nested.append(0.0)
        try:
            yield
        finally:
            nested = self._nested.pop()
            whole = time.perf_counter() - started
            self.spent[part] += whole - nested
            if self._nested:
                self._nested[-1] += whole


def _wrapped(clock: Clock, part: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def timed_async(*args: Any, **kwargs: Any) -> Any:
            with clock.inside(part):
                return await fn(*args, **kwargs)
        return timed_async

    @functools.wraps(fn)
    def timed(*args: Any, **kwargs: Any) -> Any:
        with clock.inside(part):
            return fn(*args, **kwargs)
    return timed


@contextmanager
def charged(clock: Clock) -> Iterator[None]:
    """Every function of ``PARTS`` wrapped for the duration, then put back."""
    saved: list[tuple[object, str, object]] = []
    try:
        for part, owner, names in PARTS:
            for name in names:
                fn = owner.__dict__[name]
                saved.append((owner, name, fn))
                setattr(owner, name, _wrapped(clock, part, fn))
        yield
    finally:
        for owner, name, fn in reversed(saved):
            setattr(owner, name, fn)


async def measure(chosen: Sequence[Scenario]) -> tuple[Clock, int, float]:
    """Explore ``chosen`` with the parts charged: the clock, the schedules, the seconds."""
    clock = Clock()
    schedules = 0
    async with Variant("reference").target(store="memory") as target:
        started = time.perf_counter()
        with charged(clock), clock.inside("the run loop"):
            for scenario in chosen:
                report = await explore(target, scenario, bound=None, store="memory")
                schedules += report.schedules
        seconds = time.perf_counter() - started
    return clock, schedules, seconds


def table(clock: Clock, schedules: int, seconds: float) -> str:
    rows = sorted(clock.spent.items(), key=lambda kv: -kv[1])
    body = [[part, f"{1000 * spent / schedules:.3f}", f"{100 * spent / seconds:.1f}%"]
            for part, spent in rows]
    body.append(["whole schedule", f"{1000 * seconds / schedules:.3f}", "100%"])
    return markdown_table(["part", "ms per schedule", "share"], body)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_schedule",
                                     description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--scenario", action="append", default=None, metavar="NAME",
                        help="a named scenario (repeatable; default: "
                        f"{', '.join(DEFAULT_SCENARIOS)})")
    parser.add_argument("--scope", default=None, choices=sorted(SCOPES),
                        help="a sweep scope's scenarios instead (with --shard)")
    parser.add_argument("--shard", default=None, metavar="I/N",
                        help="with --scope: every N-th scenario from the I-th (default: all)")
    args = parser.parse_args(argv)
    if args.scope is not None:
        chosen = [s for _, s in shard(scenarios(SCOPES[args.scope]), args.shard)]
        what = f"scope {args.scope}, shard {args.shard or 'all'} ({len(chosen)} scenarios)"
    else:
        chosen = [get_scenario(n) for n in args.scenario or DEFAULT_SCENARIOS]
        what = ", ".join(s.name for s in chosen)
    clock, schedules, seconds = trio.run(measure, chosen)
    print(f"{what}: {schedules:,} schedules in {seconds:.1f} s "
          f"({schedules / seconds:.0f} schedules/s, one core)\n")
    print(table(clock, schedules, seconds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
