"""Sequential conformance: each step sent, quiescence awaited, every answer compared with the model.

A case is a list of model operations (``meerkat_ref.vectors.Case``); its
expected results are the model's (``expected_steps``), exactly what the
checked-in vectors hold.  Each step's commands are sent (several at once for
``TurnsAtOnce``/``CreatesAtOnce``), then ``settle``; a call still unanswered
is pending, and a pending call answered during a later step is that step's
``completed``.  The first difference ends the case; its operations are then
shrunk (greedily, against the adapter) to a shorter sequence that still fails
under the same clause, and the request lines of that run are the
counterexample.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from ..vectors import Case, ExpectedStep, Invalid, expected_steps, pending_session
from ._client import AdapterClient
from ._report import Failure, Phase, Report
from ._wire import PROTOCOL_CODES, Json, blame, dumps, matches, matches_multiset

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


def _describe(step: ExpectedStep, got: Json, completed: list[Json]) -> str:
    sent = "; ".join(dumps(c) for c in step.commands)
    parts = [f"step {step.op!r}: sent {sent}"]
    parts.append(f"  expected {dumps(step.expect)}")
    parts.append(f"  got      {dumps(got)}")
    if not matches(list(step.completed), completed):
        parts.append(f"  expected completed {dumps(list(step.completed))}")
        parts.append(f"  got completed      {dumps(completed)}")
    return "\n".join(parts)


async def run_case(client: AdapterClient, case: Case, steps: Sequence[ExpectedStep],
                   report: Report | None = None) -> Mismatch | None:
    """Run one case on a freshly opened service; the first difference, or ``None``."""
    client.mark()
    await client.call_ok({"cmd": "open", "capacity": case.capacity,
                          "persistent": case.persistent})
    pending: dict[str, str | None] = {}  # request id -> session of a call still pending
    for index, step in enumerate(steps):
        batch: str | None = None
        if step.at_once:
            batch, rids = await client.send_at_once(step.commands)
        else:
            rids = [await client.send(cmd) for cmd in step.commands]
        await client.settle()
        if batch is not None:
            client.check_batch(batch)
        results: list[Json] = []
        protocol: str | None = None
        waits_on = None if isinstance(step.op, Invalid) else pending_session(step.op, step.before)
        for rid, cmd in zip(rids, step.commands, strict=True):
            answer = client.answer(rid)
            if answer is None:
                session = waits_on if waits_on is not None else cmd.get("session")
                pending[rid] = session
                results.append({"pending": session})
                continue
            if answer.code in PROTOCOL_CODES:
                protocol = f"{client.line(rid)} answered {answer.code}: {answer.message}"
            results.append(answer.as_result())
        completed: list[Json] = []
        for rid in list(pending):
            if rid in rids:
                continue
            answer = client.answer(rid)
            if answer is not None:
                completed.append({"session": pending.pop(rid), "result": answer.as_result()})
        completed.sort(key=lambda c: str(c["session"]))
        got: Json = results if step.at_once else results[0]
        same = (
            matches_multiset(step.expect, results) if step.at_once
            else matches(step.expect, results[0])
        )
        same_completed = matches(list(step.completed), completed)
        if report is not None:
            report.check(step.checks)
        if same and same_completed:
            continue
        if protocol is not None:
            clause = "PROTOCOL"
        elif isinstance(step.op, Invalid):
            clause = step.checks[0]
        else:
            clause = blame(step.op, step.before, step.checks, step.expect, got,
                           completed_differs=same and not same_completed)
        message = _describe(step, got, completed)
        if protocol is not None:
            message = f"protocol: {protocol}\n{message}"
        return Mismatch(index, clause, message, list(client.transcript))
    return None


async def shrink(client: AdapterClient, case: Case, found: Mismatch,
                 budget: int) -> tuple[Case, Mismatch]:
    """A shorter sequence failing under the same clause (greedy chunk removal, bounded runs)."""
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
        got = await run_case(client, candidate, steps)
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


async def run_phase(client: AdapterClient, report: Report, name: str, cases: Sequence[Case],
                    shrink_budget: int) -> None:
    phase = Phase(name)
    report.phases.append(phase)
    started, sent = time.perf_counter(), client.sent_count
    try:
        for case in cases:
            phase.cases += 1
            found = await run_case(client, case, expected_steps(case), report)
            if found is None:
                continue
            phase.failures += 1
            small_case, small = await shrink(client, case, found, shrink_budget)
            if len(small.lines) > len(found.lines):
                small_case, small = case, found
            note = ""
            if len(small_case.ops) < found.index + 1:
                note = f"\n  (shrunk from {found.index + 1} operations to {len(small_case.ops)})"
            report.fail(Failure(
                clause=small.clause,
                phase=name,
                case=case.name,
                message=small.message + note,
                lines=small.lines,
                how=REPLAY_HOW,
            ))
    finally:
        phase.seconds = time.perf_counter() - started
        phase.requests = client.sent_count - sent
