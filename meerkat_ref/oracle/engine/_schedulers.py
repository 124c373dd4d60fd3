"""The schedulers by name, and the text that names one with its parameters.

``SCHEDULERS`` is the one list: ``check``, ``conform`` and ``sweep`` read
their ``--scheduler`` choices (and the help that lists them) from it.  A
scheduler is named as ``NAME[:k=v,...]``: ``dpor``, ``dfs:bound=2``,
``pct:depth=3,runs=200,seed=7``, ``random:runs=100,seed=1``.  Each
parameter is declared by its scheduler (``Scheduler.params``: kind,
default, least value), so parsing, the help and the errors are the same for
all; a bad spec is a ``SchedulerSpecError`` (a ``ValueError``) that says
what is wrong and what would be right, never a traceback.

``parse_scheduler`` gives a ``SchedulerSpec``: plain, frozen, picklable (it
crosses to worker processes), and its ``make()`` builds a fresh scheduler
for each scenario explored.  ``explore`` is the engine's one entry for the
older options (``bound``, ``search``): they name schedulers too.

A new scheduler is a file of its own (a ``Scheduler`` subclass, and the
strategy it hands out) and its class in ``SCHEDULERS``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..targets import Target
from ._dpor import DporScheduler
from ._hypothesis import HypothesisScheduler
from ._pct import PctScheduler
from ._random import RandomScheduler
from ._replay import ReplayScheduler
from ._run import RunOutcome
from ._scenarios import Scenario
from ._scheduler import Param, Scheduler, SearchReport, explore_with
from ._search import DfsScheduler

SCHEDULERS: tuple[type[Scheduler], ...] = (
    DporScheduler,
    DfsScheduler,
    PctScheduler,
    RandomScheduler,
    ReplayScheduler,
    HypothesisScheduler,
)
"""Every scheduler, the default (DPOR) first."""

DEFAULT_SCHEDULER = "dpor"


class SchedulerSpecError(ValueError):
    """A scheduler spec that names no scheduler, or a parameter it does not take or allow."""


def scheduler_names() -> tuple[str, ...]:
    return tuple(s.name for s in SCHEDULERS)


def _by_name(name: str) -> type[Scheduler]:
    for cls in SCHEDULERS:
        if cls.name == name:
            return cls
    raise SchedulerSpecError(f"unknown scheduler {name!r}; known: {', '.join(scheduler_names())}")


_TRUE = ("true", "yes", "1", "on")
_FALSE = ("false", "no", "0", "off")


def _value(scheduler: str, param: Param, text: str) -> object:
    where = f"{scheduler}: {param.name}"
    if param.kind == "str":
        return text
    if param.kind == "bool":
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise SchedulerSpecError(f"{where} must be true or false, got {text!r}")
    if param.kind == "int?" and text.lower() == "none":
        return None
    try:
        number = int(text)
    except ValueError:
        wanted = "an integer or none" if param.kind == "int?" else "an integer"
        raise SchedulerSpecError(f"{where} must be {wanted}, got {text!r}") from None
    if param.least is not None and number < param.least:
        raise SchedulerSpecError(f"{where} must be at least {param.least}, got {number}")
    return number


@dataclass(frozen=True)
class SchedulerSpec:
    """A scheduler by name with its parameters (those given; the rest take their defaults)."""

    name: str
    params: tuple[tuple[str, object], ...] = ()

    @property
    def text(self) -> str:
        """The spec as it is written on the command line."""
        if not self.params:
            return self.name
        return f"{self.name}:{','.join(f'{k}={_shown(v)}' for k, v in self.params)}"

    @property
    def kind(self) -> type[Scheduler]:
        return _by_name(self.name)

    def get(self, name: str) -> object:
        """A parameter's value: given, or its scheduler's default."""
        given = dict(self.params)
        if name in given:
            return given[name]
        return next(p.default for p in self.kind.params if p.name == name)

    def with_params(self, **params: object) -> SchedulerSpec:
        """The same scheduler with ``params`` set (checked as text would be)."""
        merged = {**dict(self.params), **params}
        return _checked(self.name, merged)

    def make(self) -> Scheduler:
        """A fresh scheduler (one per scenario: a scheduler keeps its search's state)."""
        return self.kind(**dict(self.params))

    def __str__(self) -> str:
        return self.text


def _checked(name: str, params: Mapping[str, object]) -> SchedulerSpec:
    cls = _by_name(name)
    known = {p.name for p in cls.params}
    for key in params:
        if key not in known:
            takes = ", ".join(sorted(known)) if known else "no parameters"
            raise SchedulerSpecError(f"{name}: unknown parameter {key!r}; it takes {takes}")
    spec = SchedulerSpec(name, tuple((p.name, params[p.name]) for p in cls.params
                                     if p.name in params))
    try:
        spec.make()  # what only the scheduler can check (a replay's file)
    except ValueError as exc:
        raise SchedulerSpecError(str(exc)) from None
    return spec


def parse_scheduler(text: str) -> SchedulerSpec:
    """``NAME[:k=v,...]`` as a ``SchedulerSpec``; ``SchedulerSpecError`` says what is wrong."""
    name, _, rest = text.strip().partition(":")
    name = name.strip()
    if not name:
        raise SchedulerSpecError(f"no scheduler named in {text!r}; known: "
                                 f"{', '.join(scheduler_names())}")
    cls = _by_name(name)
    by_name = {p.name: p for p in cls.params}
    params: dict[str, object] = {}
    for item in rest.split(",") if rest.strip() else ():
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise SchedulerSpecError(f"{name}: {item.strip()!r} is not k=v (in {text!r})")
        if key in params:
            raise SchedulerSpecError(f"{name}: {key} given twice")
        if key not in by_name:
            takes = ", ".join(by_name) if by_name else "no parameters"
            raise SchedulerSpecError(f"{name}: unknown parameter {key!r}; it takes {takes}")
        params[key] = _value(name, by_name[key], value.strip())
    return _checked(name, params)


def _shown(value: object) -> str:
    if value is None:
        return "none"
    return str(value).lower() if isinstance(value, bool) else str(value)


def schedulers_help() -> str:
    """Every scheduler with its parameters and defaults, for ``--help``."""
    parts = []
    for cls in SCHEDULERS:
        shown = ",".join(f"{p.name}={_shown(p.default)}" for p in cls.params if p.kind != "str")
        parts.append(f"{cls.name}{f' ({shown})' if shown else ''}: {cls.about}")
    return "; ".join(parts)


def legacy_scheduler(bound: int | None, search: str, audit: int | None = None) -> SchedulerSpec:
    """The scheduler the older options name: ``search`` (``dpor``/``dfs``) and ``bound``.

    DPOR with no bound; a bound: the DFS with sleep sets under it; ``dfs``:
    the plain DFS (under the bound, if one).  ``audit`` needs DPOR.
    """
    if search not in ("dpor", "dfs"):
        raise SchedulerSpecError(f"unknown search {search!r}; known: dpor, dfs")
    if bound is None and search == "dpor":
        return _checked("dpor", {} if audit is None else {"audit": audit})
    if audit is not None:
        raise SchedulerSpecError("the audit checks DPOR's footprints: it needs DPOR (no "
                                 "--bound, no --search dfs)")
    params: dict[str, object] = {} if bound is None else {"bound": bound}
    if search == "dfs":
        params["reduce"] = False
    return _checked("dfs", params)


def with_audit(spec: SchedulerSpec, audit: int | None) -> SchedulerSpec:
    """``spec`` auditing 1 pair in ``audit`` (``--audit``): only DPOR has footprints to audit."""
    if audit is None:
        return spec
    if spec.name != DporScheduler.name:
        raise SchedulerSpecError(f"the audit checks DPOR's footprints: it needs DPOR, not "
                                 f"{spec.name}")
    return spec.with_params(audit=audit)


async def explore(
    target: Target,
    scenario: Scenario,
    *,
    bound: int | None = None,
    search: str = "dpor",
    scheduler: SchedulerSpec | None = None,
    store: str = "memory",
    max_schedules: int | None = None,
    stop_on_violation: bool = False,
    progress: Callable[[SearchReport], None] | None = None,
    found: Callable[[SearchReport, RunOutcome], None] | None = None,
    audit: int | None = None,
) -> SearchReport:
    """Explore ``scenario`` with ``scheduler`` (default: what ``bound`` and ``search`` name,
    ``legacy_scheduler``; DPOR with neither) in the one loop, ``explore_with``."""
    if scheduler is None:
        scheduler = legacy_scheduler(bound, search, audit)
    elif audit is not None:
        scheduler = with_audit(scheduler, audit)
    return await explore_with(target, scenario, scheduler.make(), store=store,
                              max_schedules=max_schedules, stop_on_violation=stop_on_violation,
                              progress=progress, found=found)




def scheduler_argument(text: str) -> SchedulerSpec:
    """``--scheduler``'s argparse ``type``: a bad spec is a usage error naming what is wrong."""
    try:
        return parse_scheduler(text)
    except SchedulerSpecError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_scheduler_option(parser: argparse.ArgumentParser, what: str, *,
                         repeatable: bool = False) -> None:
    """The one ``--scheduler NAME[:k=v,...]`` option (``check``, ``conform``, ``sweep``).

    ``what``: what it explores there, said first in its help; the help then
    lists every scheduler of ``SCHEDULERS`` with its parameters and defaults.
    """
    parser.add_argument(
        "--scheduler", type=scheduler_argument, default=None, metavar="NAME[:k=v,...]",
        action="append" if repeatable else "store",
        help=f"{what}. Schedulers: {schedulers_help()}")


__all__ = [
    "DEFAULT_SCHEDULER",
    "SCHEDULERS",
    "SchedulerSpec",
    "SchedulerSpecError",
    "add_scheduler_option",
    "explore",
    "legacy_scheduler",
    "parse_scheduler",
    "scheduler_argument",
    "scheduler_names",
    "schedulers_help",
    "with_audit",
]
