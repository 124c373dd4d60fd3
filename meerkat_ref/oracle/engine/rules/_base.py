"""What a rule is: a clause of ``spec/CONTRACT.md``, its evidence, its hooks, what it excuses.

A rule is one class (``Rule``), declared once: the clause it checks
(``clause``), the evidence it reads (``evidence``: ``wire``, what any target
shows; ``inside``, what only a target in this process shows), the calls in
flight under which it lets something pass (``excuses``), and its hooks, the
methods the monitor calls at each moment of a run.  The monitor calls a hook
only on the rules that define it, in ``order``; everything else -- ``RULES``,
the table in ``_monitor``'s docstring, the traceability table of
``spec/CONTRACT.md``, the table of rules in ``spec/ADAPTER.md`` -- is read
from these classes, so a new rule is one new class in one module of this
package (``discover`` finds it).

Why ``order`` is declared: several rules may fire at one step, and the first
violation of a run is what a sweep and the mutation judge report, so the
order the checks run in is part of the monitor's behaviour and is kept.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

from ...._model import model
from ...targets import Answer, Introspection, Point
from .._calls import Call

if TYPE_CHECKING:
    from .._monitor import Monitor

Evidence = Literal["wire", "inside"]
"""``wire``: answers, points, store observations, which a port shows as the reference does;
``inside``: a target in this process (``Introspection``): tasks, turns, gates, writes."""

HOOKS: tuple[str, ...] = (
    "invoke", "answer", "together", "cancel", "fault", "restart",
    "observe", "write", "inside", "end", "finish", "read_back",
)
"""Every hook a rule may define (``Rule``'s methods of these names)."""


FAULT = "store fault"
"""The ``ops`` entry of an excuse that lasts from a failed store call of the session on."""


@dataclass(frozen=True)
class Excuse:
    """While a call of one of ``ops`` is in flight (or since), ``what`` may pass.

    Data, not code, so that what reorders steps (DPOR's footprints) can read
    which calls the rules judge by: a step whose effect a rule excuses only
    under such a call must keep its order with that call's invocation and
    answer.  ``ops``: operation names, or ``FAULT`` for a failed store call.
    ``session``: the call is about the session the excused effect is about
    (``same``) or about any session (``any``: a create, whose id is not known
    yet, or a sweep over every session).  ``mode``: only a plain (non-host)
    call, only a host-mode one, or any.  ``span``: how long the excuse lasts.
    """

    ops: tuple[str, ...]
    what: str
    session: Literal["same", "any"] = "same"
    mode: Literal["any", "plain", "host"] = "any"
    span: Literal["in flight", "from invocation on", "until a rearm answers"] = "in flight"

    def covers(self, call: Call) -> bool:
        """Whether ``call``, in flight, is one this excuse names (its operation and mode)."""
        return call.name in self.ops and (
            self.mode == "any" or call.host == (self.mode == "host"))

    def sessions(self, in_flight: Iterable[Call], known: Iterable[str]) -> set[str]:
        """The sessions excused while ``in_flight`` are: the session each call names, or
        every session ``known`` for a call that names none (a create: its id is not known
        yet)."""
        out: set[str] = set()
        for call in in_flight:
            if self.covers(call):
                sid = call.session_id
                if sid is not None:
                    out.add(sid)
                else:
                    out.update(known)
        return out

    def text(self) -> str:
        mode = "" if self.mode == "any" else f"{self.mode} "
        ops = " or ".join("failed store call" if op == FAULT else op for op in self.ops)
        call = f"{mode}{ops} {'of that session' if self.session == 'same' else 'of any session'}"
        call = f"{'an' if call[0] in 'aeiou' else 'a'} {call}"
        if self.span == "in flight":
            return f"{self.what}, while {call} is in flight"
        if self.span == "from invocation on":
            return f"{self.what}, once {call} was {'made' if FAULT in self.ops else 'invoked'}"
        return f"{self.what}, from {call} invoked {self.span}"


class Rule:
    """One rule: one clause, checked from the hooks it defines, with its own state.

    A subclass sets ``clause`` and ``evidence``, may declare ``excuses``, and
    defines only the hooks it needs (``HOOKS``); its docstring is the rule in
    words (the monitor's docstring table shows it).  ``order`` places its
    checks among the others' in one hook (so the order of violations found at
    one step) and its row in ``RULES``.  ``listed`` False keeps it out of
    ``RULES`` (the rules ``conform`` claims for a port's concurrent runs).
    ``orders`` names the operations whose invocation or answer, by *when* it
    happens beside the other steps, the rule's verdict reads (a create's
    answer counted against the capacity, an archive's answer against every
    later store observation); with every operation some excuse names, they
    are the calls whose moments DPOR keeps in order (``JUDGED_IN_FLIGHT``).
    A call the rule reads only through what it touches, or only through its
    invocation after others' answers (real time), needs no entry.
    ``wire`` says what it checks from the wire alone, for a port's authors
    (``spec/ADAPTER.md``'s table of rules is generated from it); a rule
    whose evidence is ``inside`` only leaves it empty.

    The monitor (``self.monitor``) holds what every rule may read: the step,
    the history, the last store observed, the sessions archived, known live,
    disarmed.
    """

    clause: ClassVar[str]
    evidence: ClassVar[tuple[Evidence, ...]]
    order: ClassVar[int]
    excuses: ClassVar[tuple[Excuse, ...]] = ()
    orders: ClassVar[tuple[str, ...]] = ()
    listed: ClassVar[bool] = True
    wire: ClassVar[str] = ""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor

    def violate(self, message: str, step: int | None = None) -> None:
        self.monitor.violate(self.clause, message, step)

    @classmethod
    def hooks(cls) -> tuple[str, ...]:
        """The hooks this rule defines (the monitor calls it at those moments only)."""
        return tuple(h for h in HOOKS if getattr(cls, h) is not getattr(Rule, h))

    @classmethod
    def statement(cls) -> str:
        """The rule in words: its docstring."""
        return inspect.cleandoc(cls.__doc__ or "")

    # -- hooks (the default does nothing; the monitor skips a rule that keeps it) ----------

    def invoke(self, call: Call) -> None:
        """``call`` was sent (the monitor's history already holds it)."""

    def answer(self, call: Call, answer: Answer) -> None:
        """``call`` was answered (not cut by a crash); ``call``'s result is recorded."""

    def together(self, call: Call, others: Iterable[Call]) -> None:
        """``call`` was started while none of ``others`` had run past its first point."""

    def cancel(self, call: Call) -> None:
        """[CALLER-CANCEL] ``call``'s caller was cancelled: no answer will come."""

    def fault(self, kind: str, call: Call | None, session: str | None) -> None:
        """A store call was made to fail: ``call``'s, or ``session``'s host loop's."""

    def restart(self) -> None:
        """The process restarted: every call in flight is cut."""

    def observe(self, before: Mapping[str, model.Session], parked: Sequence[Point],
                announced: Sequence[Point], in_flight: Sequence[Call]) -> None:
        """After a step (wire): the store now (``monitor.store``) and ``before``, the points.

        ``in_flight``: the calls invoked and not answered before this step
        (what an excuse is judged by: ``Excuse.sessions``).
        """

    def write(self, session: str, revision: int, by_session_task: bool) -> None:
        """After a step (inside): one store write that landed, in order."""

    def inside(self, intro: Introspection) -> None:
        """After a step (inside): what the target shows of itself.

        The step's writes go to the ``write`` hooks at the place, in
        ``order``, of the first rule that has one.
        """

    def end(self, intro: Introspection | None) -> None:
        """Nothing can move: the schedule is over (``intro`` from a target in this process)."""

    def finish(self) -> None:
        """The run's schedule ended without a crash (host loops still serving count)."""

    def read_back(self) -> None:
        """After the restart and the read-back: the whole history is known."""


def discover(package: str, path: Iterable[str]) -> tuple[type[Rule], ...]:
    """Every rule class defined in a module of ``package``, by ``order``.

    Importing each module is all it takes: a rule is found because it is
    defined there, not because a list names it.
    """
    found: list[type[Rule]] = []
    for info in sorted(pkgutil.iter_modules(list(path)), key=lambda m: m.name):
        module = importlib.import_module(f"{package}.{info.name}")
        for value in vars(module).values():
            if (isinstance(value, type) and issubclass(value, Rule) and value is not Rule
                    and value.__module__ == module.__name__ and "clause" in vars(value)):
                found.append(value)
    orders = [r.order for r in found]
    if len(set(orders)) != len(orders):
        raise ValueError(f"two rules share an order: {sorted(orders)}")
    return tuple(sorted(found, key=lambda r: r.order))


def table(rules: Iterable[type[Rule]], width: int = 16) -> str:
    """The rules as a fixed-width table: each clause id, its statement and excuses, wrapped."""
    out: list[str] = []
    for rule in rules:
        body = textwrap.wrap(" ".join(rule.statement().split()), 78 - width)
        for excuse in rule.excuses:
            body += textwrap.wrap(f"Excused: {excuse.text()}.", 78 - width)
        out.append(f"{rule.clause:<{width}}{body[0] if body else ''}")
        out.extend(" " * width + line for line in body[1:])
    return "\n".join(out)


__all__ = ["FAULT", "HOOKS", "Evidence", "Excuse", "Rule", "discover", "table"]
