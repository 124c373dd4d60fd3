"""The audit: DPOR's independence relation, checked while it explores (``--audit``).

DPOR runs one order of two steps it calls *independent* (different
processes, footprints that do not conflict) and never the other: if the
footprints are wrong, the other order's behaviour is lost without a word.
The audit runs both.  For a sample of such pairs met in the runs DPOR makes
-- two steps adjacent in the run, or made adjacent by moving the later one
back over steps it is independent of (an order DPOR calls equivalent); and
the claims of its sleep sets, a step explored elsewhere kept asleep over a
step taken here as independent of it (``Auditor.asleep``: such a step never
runs after the other in this branch, so no run shows the pair, and a wrong
claim loses every behaviour that needed it first) -- it replays the run's
prefix on a fresh run, takes the two steps in the run's order and, on
another fresh run, in the swapped order, stops right
after them, and compares the *whole* observable state the two reach:

- the store's rows, with their payloads (revision, message count, tokens,
  timestamps, the last reply);
- every client's calls so far, in its own order, with each answer (result,
  value, message);
- the tasks parked and at which kinds (and the clients ready to call);
- from a target in this process (``InProcessTarget.state``): the live
  sessions and the running session tasks, capacity held, every gate (armed,
  archived, last saved revision, its lock), the turns admitted and running,
  each agent's whole session, the clock's next tick, the ids taken and the
  store's pending refusals.

Equal states are what "commute" means (the runs go on identically from
them).  And the two steps' footprints, recorded in the swapped order, must
not conflict either: independence is symmetric, and a footprint is recorded
as the step ran, so a step that wakes another task only when that task
already waits (a send before or after the task starts) conflicts in one
order only; DPOR, reading the other, would never try the first.

A crash has a footprint too (``_dpor.CRASH_FOOTPRINT``: what outlives the
process and the history the verdicts read), and DPOR crashes a run right
before a step it does not conflict with, never right after: it claims both
end alike.  ``Auditor.crashes`` runs both for a sample of such steps, each
to the end of the restart and read-back, and compares what a crash leaves:
the store, every client's calls with their answers (the read-back's too),
and the rules broken from the crash on.

Twins (``_scenarios.twins``: two clients with the same calls) call in
order in DPOR's runs, and their end states are judged up to a swap of the
two: DPOR claims a run's *mirror*, the same steps with the twins' labels
swapped, ends as the run does.  ``Auditor.mirrors`` runs the mirror of
each sampled run, free of that order, to its end (restart and read-back)
and compares the end state (``RunOutcome.end_state``, which names twins
alike) and the rules broken.  A service that told its callers apart (by a
task's label, say) differs there.

A pair whose states differ, whose footprints conflict in the swapped
order, or whose second step could not run first (it was not enabled:
something made it ready that no footprint says), is an *oracle* error:
the declaration of one of the two steps is wrong.  It is reported with
the two steps, their footprints and the difference (``OracleError``),
and ``check``/``sweep`` exit 3.

Sampling is deterministic: a pair, named by the run's choices up to and
including it, is audited when the CRC-32 of that name is divisible by the
rate (``--audit``: 1 pair in ``AUDIT_RATE``; ``--audit all``: every one;
``--audit N``: 1 in N).  Each distinct pair is audited once per scenario,
whichever runs meet it, so the same command audits the same pairs.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from ..targets import Footprint, Point, Target
from ._run import RunOutcome, covers, run_schedule
from ._scenarios import Scenario
from ._strategies import Aborted, Budget, Choice

AUDIT_RATE = 8
"""``--audit`` with no number: one independent pair in this many is run both ways."""


@dataclass(frozen=True)
class OracleError:
    """The oracle caught itself: a footprint declaration that is wrong.

    ``kind``: ``not-commuting`` (two steps called independent reach different
    states in their two orders), ``order-dependent`` (their footprints, as
    recorded in the other order, conflict: what one touches depends on which
    ran first), ``not-enabled`` (the second of them could not run first),
    ``undeclared`` (a step touched, at a seam the target owns, something its
    declaration does not name), ``not-covered`` (a crash right after a step
    that only answers does not cover one right before it), ``twins-differ`` (a run with two twins
    swapped cannot follow the run's steps, or ends elsewhere: the service
    tells the callers apart, and twins in order lose what the other order
    shows), ``model-failed`` (the concurrent model raised on a run's history:
    a path the model does not describe, ``_linearize.ModelFailure``; the
    schedule is the run's whole).
    """

    kind: str
    scenario: str
    message: str
    schedule: tuple[Choice, ...] = ()  # the prefix, then the two steps in their first order

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"kind": self.kind, "scenario": self.scenario,
                                  "message": self.message}
        if self.schedule:
            out["schedule"] = [c.to_json() for c in self.schedule]
        return out


def audit_rate(text: str | None) -> int | None:
    """``--audit``'s value: ``None`` (off), ``all`` (1), a positive number, or default."""
    if text is None:
        return None
    if text in ("", "default"):
        return AUDIT_RATE
    if text == "all":
        return 1
    try:
        rate = int(text)
    except ValueError:
        raise ValueError(f"--audit takes 'all' or a positive number, got {text!r}") from None
    if rate < 1:
        raise ValueError(f"--audit takes 'all' or a positive number, got {text!r}")
    return rate


def sampled(name: str, rate: int) -> bool:
    """Whether the pair named ``name`` is in the sample (deterministic: a CRC, not a draw)."""
    return rate <= 1 or zlib.crc32(name.encode()) % rate == 0


class _NotEnabled(Exception):
    pass


class _Probe:
    """Follow ``choices`` exactly, then stop the run right there, keeping what was ready."""

    def __init__(self, choices: Sequence[Choice]) -> None:
        self.choices = list(choices)
        self.ready: tuple[tuple[str, str, str | None], ...] | None = None

    def choose(self, step: int, ready: Sequence[Point], budget: Budget) -> Choice:
        if step < len(self.choices):
            choice = self.choices[step]
            if not choice.crash and not any(p.task == choice.label for p in ready):
                shown = ", ".join(p.task for p in ready) or "nothing"
                raise _NotEnabled(f"{choice.label!r} was not ready at step {step} "
                                  f"(ready: {shown})")
            return choice
        self.ready = tuple((p.task, p.kind, p.session) for p in ready)
        raise Aborted("the audit's probe reached its point")


def _answers(outcome: RunOutcome) -> list[tuple[str, list[tuple[object, ...]]]]:
    by_client: dict[str, list[tuple[object, ...]]] = {}
    for call in outcome.history:
        by_client.setdefault(call.client, []).append(
            (call.text(), call.result, call.message, repr(call.value)))
    return sorted(by_client.items())


async def state_after(target: Target, scenario: Scenario,
                      choices: Sequence[Choice]) -> dict[str, object] | str:
    """The whole observable state after ``choices`` (a text: why it could not be reached)."""
    probe = _Probe(choices)
    try:
        outcome = await run_schedule(target, scenario, probe, read_back=False)
    except _NotEnabled as exc:
        return str(exc)
    if probe.ready is None:
        if len(outcome.choices) < len(choices):
            return f"the run ended after {len(outcome.choices)} of {len(choices)} steps"
        probe.ready = ()  # the pair was the run's last two steps: nothing is left to run
    store = await target.observe_store()
    last = outcome.footprints[len(choices) - 2:len(choices)]
    state: dict[str, object] = {
        _FOOTPRINTS: tuple(last) if len(last) == 2 else None,
        "store": sorted((k, repr(v)) for k, v in store.items()),
        "answers": _answers(outcome),
        "parked": sorted(probe.ready),
    }
    inside = getattr(target, "state", None)
    if callable(inside):
        state.update(inside())
    return state


CRASHING = Choice(crash=True)
"""The crash, as a choice."""


async def crashed_after(target: Target, scenario: Scenario, choices: Sequence[Choice], *,
                        or_end: bool = False) -> dict[str, object] | str:
    """What a crash right after ``choices`` leaves: the store and every answer after the
    restart and read-back, and the rules broken from the crash on (a text: why the run
    could not get there).  ``or_end``: a run that ends by itself right after ``choices``
    counts as crashing at its very end, as DPOR counts it (``_dpor``); so a claim about
    a run's last step compares with the run's own end."""
    try:
        outcome = await run_schedule(target, scenario, _Probe([*choices, CRASHING]))
    except _NotEnabled as exc:
        return str(exc)
    crashed_at = outcome.crashed_at
    if crashed_at is None and or_end and not outcome.aborted \
            and len(outcome.choices) == len(choices):
        crashed_at = len(choices)
    if crashed_at is None:
        return f"the run ended after {len(outcome.choices)} of {len(choices)} steps"
    store = await target.observe_store()
    return {
        "store": sorted((k, repr(v)) for k, v in store.items()),
        "answers": _answers(outcome),
        "broken": sorted({v.rule for v in outcome.violations if v.step >= crashed_at}),
        _VIEW: outcome.end_view,
    }


_VIEW = "end view"
"""The key of a crashed run's ``_run.end_view`` (what ``covers`` reads; not shown as state)."""

_FOOTPRINTS = "footprints"
"""The state's key for the footprints of the probe's last two steps (not compared as state)."""


def _difference(a: dict[str, object], b: dict[str, object]) -> str:
    lines = []
    for key in sorted((set(a) | set(b)) - {_FOOTPRINTS, _VIEW}):
        if a.get(key) != b.get(key):
            lines.append(f"{key}: {str(a.get(key))[:400]} | swapped: {str(b.get(key))[:400]}")
    return "; ".join(lines)


def _shown(fp: Footprint | None) -> str:
    if fp is None:
        return "everything"

    def names(rs: frozenset[tuple[str, str]]) -> str:
        return " ".join(sorted(f"{g}:{i}" if i else g for g, i in rs)) or "-"

    return f"reads {names(fp.reads)}; writes {names(fp.writes)}"


@dataclass
class Auditor:
    """Audits the independent adjacent pairs of each run DPOR makes (see the module doc)."""

    target: Target
    scenario: Scenario
    rate: int
    seen: set[str] = field(default_factory=set)
    pairs: int = 0  # pairs run both ways
    seconds: float = 0.0

    async def after(self, outcome: RunOutcome, steps: Sequence[tuple[str, Footprint | None]],
                    ) -> list[OracleError]:
        """Audit the sampled pairs of one run; ``steps``: (label, footprint) per step.

        The pairs are adjacent in the run, or in an order DPOR calls
        equivalent to it: step ``j`` moved back over the steps before it that
        it is independent of, up to the first it is not.  So every two steps
        whose order DPOR never tries are candidates, not only neighbours.
        """
        errors: list[OracleError] = []
        choices = outcome.choices
        names = [repr(c.to_json()) for c in choices]
        n = min(len(choices), len(steps))
        for j in range(1, n):
            lb, fb = steps[j]
            if choices[j].crash or fb is None:
                continue
            for i in range(j - 1, -1, -1):
                la, fa = steps[i]
                if la == lb or choices[i].crash or fa is None or fa.conflicts(fb):
                    break  # step j cannot move before this one, nor further back
                name = f"{self.scenario.name}|" + ",".join(names[:i + 1]) + "|" + names[j]
                if name in self.seen or not sampled(name, self.rate):
                    continue
                self.seen.add(name)
                where = (f"steps {i} and {j}: {_step(outcome, i)} ({_shown(fa)}) and "
                         f"{_step(outcome, j)} ({_shown(fb)})")
                error = await self._pair(list(choices[:i]), choices[i], choices[j], where)
                if error is not None:
                    errors.append(error)
        return errors

    async def asleep(self, outcome: RunOutcome, kept: Sequence[tuple[int, Choice]],
                     ) -> list[OracleError]:
        """Audit the sampled sleep-set claims of one run: (step, a step kept asleep over it).

        A search with sleep sets keeps a step it has explored elsewhere asleep
        while the steps taken are independent of it, and never runs it here:
        such a claim is never a pair of one run, so ``after`` cannot see it, and
        a wrong one loses every behaviour that needed the asleep step first.
        Each sampled claim is run both ways from the run's prefix, as a pair.
        """
        errors: list[OracleError] = []
        choices = outcome.choices
        names = [repr(c.to_json()) for c in choices]
        for i, b in kept:
            if i >= len(choices) or choices[i].crash:
                continue
            if b.fault and sum(c.fault for c in choices[:i + 1]) >= self.scenario.faults:
                continue  # the run's faults are spent: the failing variant is enabled no more
            name = (f"{self.scenario.name}|" + ",".join(names[:i + 1]) + "|asleep "
                    + repr(b.to_json()))
            if name in self.seen or not sampled(name, self.rate):
                continue
            self.seen.add(name)
            where = (f"step {i}: {_step(outcome, i)} and {b.label}"
                     f"{_failed(b)}, kept asleep over it "
                     "(explored elsewhere, called independent)")
            error = await self._pair(list(choices[:i]), choices[i], b, where)
            if error is not None:
                errors.append(error)
        return errors

    async def crashes(self, outcome: RunOutcome, steps: Sequence[tuple[str, Footprint | None]],
                      crash: Footprint, answers: Sequence[int] = ()) -> list[OracleError]:
        """Audit the sampled claims of a crash's footprint in one run: each step of it
        that ``crash`` does not conflict with is one a crash right before and a crash
        right after end alike, so DPOR tries only one of the two (``_dpor``); each step
        in ``answers`` (it only answered calls, ``_dpor._answers_only``) is one a crash
        right after covers: the same store, the calls cut before answered after, and
        every rule broken before broken after too."""
        errors: list[OracleError] = []
        choices = outcome.choices
        names = [repr(c.to_json()) for c in choices]
        end = outcome.crashed_at if outcome.crashed_at is not None else len(choices)
        for i in range(min(end, len(steps))):
            fp = steps[i][1]
            if choices[i].crash or fp is None:
                continue
            if i in answers:
                error = await self._crash_claim(outcome, names, i, covered=True)
            elif fp.conflicts(crash):
                continue
            else:
                error = await self._crash_claim(outcome, names, i)
            if error is not None:
                errors.append(error)
        return errors

    async def mirrors(self, outcome: RunOutcome, twins: dict[str, str]) -> list[OracleError]:
        """Audit the twins' claim on one run: its mirror (each pair of twins that called in
        it swapped, one pair at a time) must end in the same end state, breaking the same
        rules (the module doc)."""
        errors: list[OracleError] = []
        if outcome.aborted or not twins:
            return errors
        names = ",".join(repr(c.to_json()) for c in outcome.choices)
        tasks = {c.label.split("#")[0] for c in outcome.choices if not c.crash}
        for later, earlier in twins.items():
            if later not in tasks or earlier not in tasks:
                continue
            name = f"{self.scenario.name}|{names}|mirror {earlier} {later}"
            if name in self.seen or not sampled(name, self.rate):
                continue
            self.seen.add(name)
            schedule = tuple(_swapped(c, {earlier: later, later: earlier})
                             for c in outcome.choices)
            where = f"the run with {earlier} and {later} (twins) swapped"
            started = time.perf_counter()
            try:
                mirror = await run_schedule(self.target, self.scenario, _Probe(schedule))
            except _NotEnabled as exc:
                errors.append(OracleError("twins-differ", self.scenario.name,
                                          f"{where} cannot follow the run: {exc}", schedule))
                continue
            finally:
                self.pairs += 1
                self.seconds += time.perf_counter() - started
            rules = sorted({v.rule for v in outcome.violations})
            theirs = sorted({v.rule for v in mirror.violations})
            if mirror.aborted or len(mirror.choices) != len(schedule):
                errors.append(OracleError("twins-differ", self.scenario.name,
                                          f"{where} does not end where the run did", schedule))
            elif mirror.end_state != outcome.end_state or rules != theirs:
                errors.append(OracleError(
                    "twins-differ", self.scenario.name,
                    f"{where} ends differently: end state {outcome.end_state} against "
                    f"{mirror.end_state}, rules broken {rules or 'none'} against "
                    f"{theirs or 'none'}", schedule))
        return errors

    async def _crash_claim(self, outcome: RunOutcome, names: Sequence[str],
                           i: int, *, covered: bool = False) -> OracleError | None:
        """Crashing right before step ``i`` and right after it must end alike (``covered``:
        the crash after must cover the one before, ``_covered``)."""
        name = f"{self.scenario.name}|" + ",".join(names[:i + 1]) + "|crash"
        if name in self.seen or not sampled(name, self.rate):
            return None
        self.seen.add(name)
        prefix, a = list(outcome.choices[:i]), outcome.choices[i]
        started = time.perf_counter()
        try:
            before = await crashed_after(self.target, self.scenario, prefix)
            after = await crashed_after(self.target, self.scenario, [*prefix, a],
                                        or_end=True)
        finally:
            self.pairs += 1
            self.seconds += time.perf_counter() - started
        where = (f"step {i}: {_step(outcome, i)}, and a crash right before it or right after "
                 f"it (called {'covered by the later' if covered else 'alike'})")
        schedule = (*prefix, a, CRASHING)
        for state in (before, after):
            if isinstance(state, str):
                return OracleError("not-enabled", self.scenario.name, f"{where}: {state}",
                                   schedule)
        assert not isinstance(before, str) and not isinstance(after, str)
        if covered:
            problem = _covered(before, after)
            if problem:
                return OracleError("not-covered", self.scenario.name,
                                   f"step {i}: {_step(outcome, i)}, which only answers, and a "
                                   f"crash right before it or right after it (the later "
                                   f"called at least as strict): {problem}", schedule)
            return None
        if before != after:
            return OracleError("not-commuting", self.scenario.name,
                               f"{where}: the crash ends differently before and after the "
                               f"step: {_difference(before, after)}", schedule)
        return None

    async def _pair(self, prefix: list[Choice], a: Choice, b: Choice,
                    where: str) -> OracleError | None:
        started = time.perf_counter()
        try:
            first = await state_after(self.target, self.scenario, [*prefix, a, b])
            second = await state_after(self.target, self.scenario, [*prefix, b, a])
        finally:
            self.pairs += 1
            self.seconds += time.perf_counter() - started
        schedule = (*prefix, a, b)
        if isinstance(first, str):  # the later step moved back over steps it is independent of
            return OracleError("not-enabled", self.scenario.name,
                               f"{where}: the later step, called independent of every step "
                               f"between them, cannot run right after the first: {first}",
                               schedule)
        if isinstance(second, str):
            return OracleError("not-enabled", self.scenario.name,
                               f"{where}: called independent, but the second cannot run first: "
                               f"{second}", schedule)
        swapped = second.pop(_FOOTPRINTS, None)
        first.pop(_FOOTPRINTS, None)
        if first != second:
            return OracleError("not-commuting", self.scenario.name,
                               f"{where}: called independent, but the two orders differ: "
                               f"{_difference(first, second)}", schedule)
        if isinstance(swapped, tuple):
            fb, fa = swapped
            if fa is None or fb is None or fa.conflicts(fb):
                # Independence is a relation on steps, so symmetric: a pair that conflicts
                # in one order (say, a send that wakes the task only once it waits) is
                # dependent, and DPOR, told otherwise, never tries the other order first.
                return OracleError("order-dependent", self.scenario.name,
                                   f"{where}: called independent in this order, but in the "
                                   f"other they conflict: {_shown(fb)} then {_shown(fa)}",
                                   schedule)
        return None


def _covered(before: dict[str, object], after: dict[str, object]) -> str:
    """Why the crash ``after`` an answering step does not cover the one ``before`` it ("":
    it does): the same store; the same calls, each answered alike or cut before; every rule
    broken before broken after."""
    if before["store"] != after["store"]:
        return f"the store differs: {_difference(before, after)}"
    view, earlier = after[_VIEW], before[_VIEW]
    if view is None or earlier is None or not covers(view, earlier):  # type: ignore[arg-type]
        return f"the calls differ beyond answers cut: {_difference(before, after)}"
    lost = sorted(set(before["broken"]) - set(after["broken"]))  # type: ignore[call-overload]
    if lost:
        return f"broken before only: {', '.join(lost)}"
    return ""


def _swapped(choice: Choice, swap: dict[str, str]) -> Choice:
    """``choice`` with its task's label swapped (a client's task keeps its ``#n`` suffix)."""
    task, sep, rest = choice.label.partition("#")
    return replace(choice, label=swap[task] + sep + rest) if task in swap else choice


def _step(outcome: RunOutcome, index: int) -> str:
    """``c:archive at store.exists s1``: who ran, released from where."""
    choice = outcome.choices[index]
    step = outcome.steps[index] if index < len(outcome.steps) else None
    at = "" if step is None else f" at {step.kind}" + (f" {step.session}" if step.session else "")
    return f"{choice.label}{at}{_failed(choice)}"


def _failed(choice: Choice) -> str:
    if not choice.fault:
        return ""
    return f" (its store call failed{f': {choice.kind}' if choice.kind else ''})"


__all__ = ["AUDIT_RATE", "Auditor", "OracleError", "audit_rate", "crashed_after", "sampled",
           "state_after"]
