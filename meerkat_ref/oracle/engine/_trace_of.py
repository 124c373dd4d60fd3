"""A run of the engine (``RunOutcome``) as a trace (``meerkat-ref/trace@1``), for the reports.

The engine writes its runs in the format ``report`` reads (``report._trace``),
so every drawing reads plain trace data and ``report`` needs nothing of the
engine (issue "Say it once": no import runs back up).

Everything comes from the outcome's plain data: the steps (each with the
whole store and, from an in-process target, every gate after it), the calls
with the steps that invoked and answered them, and the violations, each at a
step of the run -- the post-run restart and read-back are steps too, so a
violation always points at a row.  Calls the setup made (before step 0, the
scheduler off) become the trace's ``setup``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...report import FORMAT
from ._draw import columns, notes, result_text
from ._monitor import Call
from ._run import RunOutcome, Snapshot

Json = dict[str, Any]


def call_text(call: Call) -> str:
    """How the call reads in the report: ``start_turn s1 'more'``, ``create 'hi' host``."""
    return call.text()


def _store(snapshot: Snapshot | None) -> Json | None:
    if snapshot is None:
        return None
    return {
        label: {"message_count": count, "revision": revision, "updated_at": updated}
        for label, revision, count, updated in snapshot.store
    }


def _gates(snapshot: Snapshot | None) -> Json | None:
    if snapshot is None or snapshot.gates is None:
        return None
    return {
        label: {"armed": g.armed, "archived": g.archived,
                "saved_revision": None if g.saved_revision < 0 else g.saved_revision}
        for label, g in snapshot.gates
    }


def trace_of(
    outcome: RunOutcome,
    *,
    store: str = "memory",
    about: str = "",
    replay: str = "",
    title: str | None = None,
    target: str = "in-process",
) -> Json:
    """The ``meerkat-ref/trace@1`` object of ``outcome``."""
    indexed = list(enumerate(outcome.history))
    setup = [(n, c) for n, c in indexed if c.client == "setup"]
    calls = [(n, c) for n, c in indexed if c.client != "setup"]
    steps: list[Json] = []
    extra = notes(outcome)
    last: Snapshot | None = outcome.snapshots[0] if outcome.snapshots else None
    for s in outcome.steps:
        if s.after is not None:
            last = s.after
        steps.append({
            "index": s.index,
            "task": s.label,
            "point": s.kind,
            "session": s.session,
            "fault": s.fault,
            "crash": s.crash,
            "invoked": [{"client": c.client, "call": n, "text": call_text(c)}
                        for n, c in calls if c.invoked == s.index],
            "answered": [{"client": c.client, "call": n, "text": call_text(c),
                          "result": result_text(c)}
                         for n, c in calls if c.responded == s.index],
            "store": _store(last),
            "gates": _gates(last),
            "violations": [{"rule": v.rule, "message": v.message}
                           for v in outcome.violations if v.step == s.index],
            "notes": extra.get(s.index, []),
        })
    return {
        "format": FORMAT,
        "title": title if title is not None else f"{outcome.variant} / {outcome.scenario}",
        "scenario": outcome.scenario,
        "about": about,
        "variant": outcome.variant,
        "target": target,
        "store": store,
        "tasks": columns(outcome),
        "setup": [{"client": c.client, "text": call_text(c), "result": result_text(c)}
                  for _, c in setup],
        "steps": steps,
        "calls": [
            {"id": n, "client": c.client, "op": c.name, "session": c.session,
             "text": call_text(c), "invoked": c.invoked, "responded": c.responded,
             "result": result_text(c), "detail": c.message}
            for n, c in calls
        ],
        "violations": [v.to_json() for v in outcome.violations],
        "replay": replay,
    }


def cited_steps(trace: Json) -> Sequence[int]:
    """Every step index a violation or a call cites (for tests)."""
    out = {v["step"] for v in trace["violations"]}
    for c in trace["calls"]:
        out.add(c["invoked"])
        if c["responded"] is not None:
            out.add(c["responded"])
    return sorted(out)


__all__ = ["call_text", "cited_steps", "result_text", "trace_of"]
