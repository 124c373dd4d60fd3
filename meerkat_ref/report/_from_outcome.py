"""ADAPTER from TODAY's explorer: a ``RunOutcome`` (``explore/_runner.py``) -> a trace.

Why it exists: the reports must be built and tested on real counterexamples
now, while the engine that will emit ``meerkat-ref/trace@1`` itself is being
written.  When that engine lands, this module goes (or shrinks to what the
engine does not yet say).  It reads only the outcome's plain data.

What today's outcome gives, and what this adapter does about the rest:

- ``steps`` record the store only when a step changed it, and only as
  (session, message count).  The adapter carries the last record forward, so
  every step has the full map; entries have ``message_count`` only.  Before
  the first record the store is unknown (``null``) unless the caller passes
  ``store_before``, the store as setup left it (``store_after_setup`` finds
  it by running the scenario's setup again).
- Gates are not in the outcome: every step's ``gates`` is ``null``.
- The monitor numbers three moments that are not steps: the end-of-run
  checks (the index after the last step, when the run did not crash), the
  restart over the same store, and the read-back after it.  Violations and
  calls cite them, so the adapter adds them as steps of the task
  ``process`` (``run.end``, ``process.restart``, ``post.read-back``): a
  violation then always points at a row.
- Calls of the client ``setup`` ran before step 0, with the scheduler off:
  they become the trace's ``setup`` list, not calls.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import trio

from ..explore import Call, RunOutcome, Scenario, Variant
from ..explore._control import Aborted, Choice, Parked
from ..explore._runner import Budget, _drive
from ..store._memory import MemoryStore
from ._trace import FORMAT

END_POINT = "run.end"
RESTART_POINT = "process.restart"
READ_BACK_POINT = "post.read-back"

Json = dict[str, object]


def call_text(call: Call) -> str:
    """How the call reads in the report: ``start_turn s1 "more"``, ``create "hi" host``."""
    words = [call.op]
    if call.session is not None:
        words.append(call.session)
    for key, value in call.args:
        if key in ("prompt", "text"):
            quoted = json.dumps(value, ensure_ascii=False)
            if str(value) not in call.op:  # inject's op already names its text
                words.append(quoted)
        elif value is True:
            words.append(key)
        elif value not in (False, None):
            words.append(f"{key}={value}")
    return " ".join(words)


def result_text(call: Call) -> str | None:
    """The answer as shown: ``ok``, ``ok s1`` (create), ``ok [s2, s1]`` (list), an error code."""
    if call.result is None:
        return None
    if call.created is not None:
        return f"{call.result} {call.created}"
    if call.op == "list" and call.result.startswith("ok"):
        return f"{call.result} [{', '.join(call.shown)}]"
    return call.result


def _columns(outcome: RunOutcome, extra: Sequence[str]) -> list[str]:
    """Clients first (as the text swimlane orders them), then the rest, then ``extra``.

    A client whose task never passed a point (a host-mode create started in
    setup, blocked for the whole run) still gets its column: its calls are
    drawn there.
    """
    seen: list[str] = []
    for step in outcome.steps:
        if step.label not in seen:
            seen.append(step.label)
    for call in outcome.history:
        column = f"c:{call.client}"
        if call.client not in ("setup", "process", "post") and column not in seen:
            seen.append(column)
    ordered = [c for c in seen if c.startswith("c:")] + [c for c in seen if not c.startswith("c:")]
    return ordered + [t for t in extra if t not in ordered]


def _store_map(view: Sequence[tuple[str, int]] | Mapping[str, int]) -> Json:
    items = view.items() if isinstance(view, Mapping) else view
    return {sid: {"message_count": count} for sid, count in sorted(items)}


def trace_from_outcome(
    outcome: RunOutcome,
    *,
    store: str = "memory",
    about: str = "",
    replay: str = "",
    title: str | None = None,
    target: str = "in-process",
    store_before: Mapping[str, int] | None = None,
) -> Json:
    """The ``meerkat-ref/trace@1`` object for ``outcome`` (see the module doc for the gaps)."""
    indexed = list(enumerate(outcome.history))
    setup = [(n, c) for n, c in indexed if c.client == "setup"]
    calls = [(n, c) for n, c in indexed if c.client != "setup"]
    rows: dict[int, Json] = {}
    for s in outcome.steps:
        rows[s.index] = {
            "index": s.index,
            "task": s.label,
            "point": s.kind,
            "session": s.session,
            "fault": s.fault,
            "crash": s.crash,
            "_store": None if s.store is None else _store_map(s.store),
        }
    extra: list[str] = []
    last = max(rows, default=-1)
    cited = {v.step for v in outcome.violations}
    if outcome.crashed_at is None and any(c.client == "process" for c in outcome.history):
        cited.add(last + 1)  # the end-of-run checks, cited or not: a moment of the run
    cited |= {c.invoked for _, c in calls} | {
        c.responded for _, c in calls if c.responded is not None
    }
    for index in sorted(i for i in cited if i not in rows):
        clients = {c.client for _, c in calls if index in (c.invoked, c.responded)}
        if "post" in clients:
            task, point = "process", READ_BACK_POINT
        elif "process" in clients:
            task, point = "process", RESTART_POINT
        elif index > last:
            task, point = "process", END_POINT
        else:  # pragma: no cover - today's monitor cites no step inside the run it did not record
            task, point = "process", "unrecorded"
        if task not in extra:
            extra.append(task)
        rows[index] = {
            "index": index,
            "task": task,
            "point": point,
            "session": None,
            "fault": False,
            "crash": False,
            "_store": None,
        }
    current: Json | None = None if store_before is None else _store_map(store_before)
    steps: list[Json] = []
    for index in sorted(rows):
        row = rows[index]
        recorded = row.pop("_store")
        if isinstance(recorded, dict):
            current = recorded
        row["invoked"] = [
            {"client": c.client, "call": n, "text": call_text(c)}
            for n, c in calls
            if c.invoked == index
        ]
        row["answered"] = [
            {"client": c.client, "call": n, "text": call_text(c), "result": result_text(c)}
            for n, c in calls
            if c.responded == index
        ]
        row["store"] = None if current is None else dict(current)
        row["gates"] = None
        row["violations"] = [
            {"rule": v.rule, "message": v.message} for v in outcome.violations if v.step == index
        ]
        steps.append(row)
    return {
        "format": FORMAT,
        "title": title if title is not None else f"{outcome.variant} / {outcome.scenario}",
        "scenario": outcome.scenario,
        "about": about,
        "variant": outcome.variant,
        "target": target,
        "store": store,
        "tasks": _columns(outcome, extra),
        "setup": [
            {"client": c.client, "text": call_text(c), "result": result_text(c)} for _, c in setup
        ],
        "steps": steps,
        "calls": [
            {
                "id": n,
                "client": c.client,
                "op": c.op,
                "session": c.session,
                "text": call_text(c),
                "invoked": c.invoked,
                "responded": c.responded,
                "result": result_text(c),
                "detail": c.message,
            }
            for n, c in calls
        ],
        "violations": [v.to_json() for v in outcome.violations],
        "replay": replay,
    }


class _StopBeforeFirstStep:
    """A strategy that gives up at step 0: the run ends as setup left it."""

    def choose(self, step: int, ready: Sequence[Parked], budget: Budget) -> Choice:
        raise Aborted


def store_after_setup(scenario: Scenario, variant: Variant) -> dict[str, int]:
    """Session -> message count in the store when step 0 is about to run.

    Today's outcome does not say (its first store record is the first
    change), so this runs the scenario's setup again, uncontrolled and
    deterministic as every explorer run is, and stops before the first step.
    It uses the runner's private ``_drive``: part of this adapter, going with it.
    """

    async def main() -> dict[str, int]:
        raw = MemoryStore()
        await _drive(scenario, variant, _StopBeforeFirstStep(), raw, 1)
        return {meta.id.short(): meta.message_count for meta in await raw.list()}

    return trio.run(main)
