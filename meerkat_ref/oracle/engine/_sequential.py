"""Sequential cases on a target: each step sent, quiescence awaited, every answer compared.

A case's expected results are the model's (``_cases.expected_steps``),
exactly what the checked-in vectors hold.  Each step's calls are started
(several at once for ``TurnsAtOnce``/``CreatesAtOnce``), then the target
settles; a call still unanswered is pending, and a pending call answered
during a later step is that step's ``completed``.  The first difference ends
the case; ``shrink`` then looks (greedily, against the target) for a shorter
sequence failing under the same clause.  The same code replays the vectors
against the reference in process and judges a port over the adapter.

Events [EVENTS]: a target that offers ``events`` reports, at each settle,
what each session published since the last one; a step's reports (a hooks
step settles several times) are put together and compared with what the
step says each session publishes.  A difference there, the answers agreeing,
is reported under EVENTS, or under the clause the case pins, as every
difference in such a case is (a port that reads that rule another way shows
it in what the step publishes as well: a ``/compact`` prompt compacting
instead of running a turn publishes ``COMPACTED``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from ..._model import model
from ...registry import expand
from ...registry._values import Json, encode
from ..targets import PROTOCOL_CODES, Answer, Malformed, OpenRefused, Target, dumps
from ._cases import (
    Case,
    ExpectedStep,
    Hook,
    Published,
    Wire,
    blame,
    expected_steps,
    matches,
    matches_multiset,
    wire_blame,
)
from ._cases import pending_session as _pending_session

DRIVE_LIMIT = 200
"""A ``drive`` step releases at most this many tasks (a port whose tasks never rest fails)."""

REPLAY_HOW = (
    "send the lines in order to a fresh adapter, waiting for the answer to each "
    "open, settle, restart, at_once and observe_store line before sending the next; "
    "service calls are answered when they finish (a pending one later, or never)"
)


@dataclass
class Mismatch:
    index: int  # the failing step
    clause: str
    message: str
    lines: list[str]


def answer_json(answer: Answer) -> Json:
    """An answer in the vectors' form: ``{"ok": v}``, ``{"error": c}``, ``{"crashed": true}``."""
    result = answer.result
    if isinstance(result, model.Crashed):
        return {"crashed": True}
    if isinstance(result, model.Err):
        return {"error": result.code}
    value = result.value
    return {"ok": value.value if isinstance(value, Malformed) else encode(value)}


def _gather(into: dict[str, model.News], news: Mapping[str, model.News] | None) -> None:
    """Add one settle's events to the step's so far (per session, in order).

    A session reported with nothing (no event, none lost, not ended) is as
    one left out: the adapter may do either (``spec/ADAPTER.md`` section 13).
    """
    for sid, n in (news or {}).items():
        if n == model.News():
            continue
        old = into.get(sid, model.News())
        into[sid] = model.News(old.events + n.events, old.lagged + n.lagged,
                               old.ended or n.ended)


def events_json(events: Mapping[str, model.News] | Published) -> Json:
    """Events by session in the vectors' form (``{}``: none)."""
    pairs = events.items() if isinstance(events, Mapping) else events
    return {sid: encode(news) for sid, news in sorted(pairs)}


def _describe(step: ExpectedStep, got: Json, completed: list[Json], note: str = "",
              events: Mapping[str, model.News] | None = None) -> str:
    if isinstance(step.op, Hook):
        parts = [f"step {step.op!r}{note}"]
    else:
        sent = "; ".join(dumps(c) for c in step.commands)
        parts = [f"step {step.op!r}: sent {sent}"]
        parts.append(f"  expected {dumps(step.expect)}")
        parts.append(f"  got      {dumps(got)}")
    if not matches(list(step.completed), completed):
        parts.append(f"  expected completed {dumps(list(step.completed))}")
        parts.append(f"  got completed      {dumps(completed)}")
    if events is not None and events != dict(step.events):
        parts += _events_differ(dict(step.events), events)
    return "\n".join(parts)


_SHOWN = 600
"""Up to this many characters, a session's expected and read events are shown whole."""


def _events_differ(expected: Mapping[str, model.News], got: Mapping[str, model.News]) -> list[str]:
    """How a step's events differ, session by session [EVENTS].

    Whole when short; else the counts and the first event that differs (one
    step may publish hundreds: a host loop serving its queued messages).
    """
    out: list[str] = []
    for sid in sorted(set(expected) | set(got)):
        want, seen = expected.get(sid, model.News()), got.get(sid, model.News())
        if want == seen:
            continue
        shown = dumps(encode(want)), dumps(encode(seen))
        if sum(map(len, shown)) <= _SHOWN:
            out += [f"  expected events of {sid} {shown[0]}",
                    f"  got events of {sid}      {shown[1]}"]
            continue

        def counts(n: model.News) -> str:
            return f"{len(n.events)} events, lagged {n.lagged}, ended {str(n.ended).lower()}"

        out.append(f"  events of {sid}: expected {counts(want)}; got {counts(seen)}")
        first = next((i for i, (a, b) in enumerate(zip(want.events, seen.events, strict=False))
                      if a != b), None)
        if first is not None:
            out.append(f"    first difference, event {first + 1}: expected "
                       f"{dumps(encode(want.events[first]))}, got "
                       f"{dumps(encode(seen.events[first]))}")
    return out


async def _hook(target: Target, hook: Hook, parked: Sequence[str],
                answers: dict[str, Answer],
                news: dict[str, model.News]) -> tuple[list[str], str]:
    """Carry out one hooks step; the parked labels after it, and what went wrong ("" if not)."""
    if hook.kind == "control":
        await target.control(bool(hook.arg))
    elif hook.kind == "exit":
        await target.exit()
    elif hook.kind == "release":
        if hook.arg not in parked:
            return list(parked), f": {hook.arg!r} is not parked (parked: {list(parked)})"
        await target.release(str(hook.arg))
    else:
        held = set(hook.arg) if isinstance(hook.arg, list) else set()
        for _ in range(DRIVE_LIMIT):
            free = [label for label in parked if label not in held]
            if not free:
                return list(parked), ""
            await target.release(free[0])
            settled = await target.settle()
            answers.update(settled.answers)
            _gather(news, settled.events)
            parked = [p.task for p in settled.parked]
        return list(parked), f": tasks still parked after {DRIVE_LIMIT} releases"
    settled = await target.settle()
    answers.update(settled.answers)
    _gather(news, settled.events)
    return [p.task for p in settled.parked], ""


async def _refused_open(target: Target, case: Case,
                        checked: Callable[[Sequence[str]], None] | None) -> Mismatch | None:
    """A case whose ``open`` the service must refuse ([INPUT]): the code it answers, or why not."""
    if checked is not None:
        checked(("INPUT",))
    try:
        await target.open(case.capacity, case.persistent)
    except OpenRefused as exc:
        if exc.code == case.refused:
            return None
        got = exc.code
    else:
        got = "ok: the service was built"
    return Mismatch(0, "INPUT", f"open with capacity {dumps(case.capacity)} answered {got}; "
                    f"the contract refuses it {case.refused}", target.transcript())


async def run_case(
    target: Target,
    case: Case,
    steps: Sequence[ExpectedStep],
    checked: Callable[[Sequence[str]], None] | None = None,
) -> Mismatch | None:
    """Run one case on a freshly opened service; the first difference, or ``None``.

    A target without the capability ``events`` is not asked for them, and its
    steps count no check of EVENTS.
    """
    with_events = "events" in target.capabilities
    if case.refused:
        return await _refused_open(target, case, checked)
    await target.open(case.capacity, case.persistent)
    pending: dict[str, str | None] = {}  # call id -> session of a call still pending
    answers: dict[str, Answer] = {}
    parked: list[str] = []  # labels parked at the last settle
    for index, step in enumerate(steps):
        cids: list[str] = []
        problem = ""
        news: dict[str, model.News] = {}
        if isinstance(step.op, Hook):
            parked, problem = await _hook(target, step.op, parked, answers, news)
        else:
            if isinstance(step.op, Wire):
                cids = [await target.call(step.op.command(), step.op.task or "req")]
            elif isinstance(step.op, model.Restart):
                cids = [f"restart#{index}"]
                await target.restart()
                answers[cids[0]] = Answer(model.Ok(None))
            elif step.at_once:
                cids = await target.at_once(list(expand(step.op)))
            else:
                cids = [await target.call(op, "req") for op in expand(step.op)]
            settled = await target.settle()
            answers.update(settled.answers)
            _gather(news, settled.events)
            parked = [p.task for p in settled.parked]
        results: list[Json] = []
        protocol: str | None = None
        waits_on = _pending_session(step.op, step.before)
        for cid, cmd in zip(cids, step.commands, strict=True):
            answer = answers.pop(cid, None)
            if answer is None:
                session = waits_on if waits_on is not None else cmd.get("session")
                pending[cid] = session
                results.append({"pending": session})
                continue
            if answer.code in PROTOCOL_CODES:
                protocol = f"{dumps(cmd)} answered {answer.code}: {answer.message}"
            results.append(answer_json(answer))
        completed: list[Json] = []
        for cid in list(pending):
            if cid in cids:
                continue
            answer = answers.pop(cid, None)
            if answer is not None:
                completed.append({"session": pending.pop(cid), "result": answer_json(answer)})
        completed.sort(key=lambda c: str(c["session"]))
        got: Json = results if step.at_once else (results[0] if results else None)
        if isinstance(step.op, Hook):
            same = not problem
        elif step.at_once:
            same = matches_multiset(step.expect, results)
        else:
            same = matches(step.expect, results[0])
        same_completed = matches(list(step.completed), completed)
        same_events = not with_events or news == dict(step.events)
        if checked is not None:
            checked(step.checks if with_events else
                    tuple(c for c in step.checks if c != "EVENTS"))
        if same and same_completed and same_events:
            continue
        if same and same_completed:  # only the events differ
            clause = case.pins if case.pins and case.pins in step.checks else "EVENTS"
        elif isinstance(step.op, Wire | Hook):
            clause = wire_blame(step.op, step.checks, step.expect, got)
        elif protocol is not None:
            clause = "PROTOCOL"
        else:
            clause = blame(step.op, step.before, step.checks, step.expect, got,
                           completed_differs=same and not same_completed)
        message = _describe(step, got, completed, problem, news if with_events else None)
        if protocol is not None:
            message = f"protocol: {protocol}\n{message}"
        return Mismatch(index, clause, message, target.transcript())
    return None


async def shrink(target: Target, case: Case, found: Mismatch,
                 budget: int) -> tuple[Case, Mismatch]:
    """A shorter sequence failing under the same clause (greedy chunk removal, bounded runs).

    A hooks case is not shrunk: its steps steer one interleaving together,
    and a shorter list would fail for another reason under the same clause.
    """
    if case.hooks:
        return case, found
    best_case = replace(case, ops=case.ops[: found.index + 1])
    best = found
    runs = 0

    async def still_fails(ops: tuple[object, ...]) -> Mismatch | None:
        nonlocal runs
        runs += 1
        candidate = replace(case, ops=ops)  # type: ignore[arg-type]
        try:
            steps = expected_steps(candidate)
        except AssertionError:
            return None
        got = await run_case(target, candidate, steps)
        return got if got is not None and got.clause == found.clause else None

    size = max(1, len(best_case.ops) // 2)
    while size >= 1 and runs < budget:
        i = len(best_case.ops) - size - 1  # never drop the failing (last) step itself
        progressed = False
        while i >= 0 and runs < budget:
            ops = best_case.ops[:i] + best_case.ops[i + size:]
            got = await still_fails(ops)
            if got is not None:
                best_case = replace(case, ops=ops[: got.index + 1])
                best = got
                progressed = True
            i -= size
        if not progressed:
            size //= 2
    return best_case, best


__all__ = ["REPLAY_HOW", "Mismatch", "answer_json", "events_json", "run_case", "shrink"]
