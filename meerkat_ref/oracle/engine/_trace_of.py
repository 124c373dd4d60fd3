"""A run of the engine (``RunOutcome``) as a trace (``meerkat-ref/trace@1``), for the reports.

The engine writes its runs in the format ``report`` reads (``report._trace``),
and draws nothing: every drawing (the text swimlane and the Mermaid diagram,
``report._diagrams``; the HTML page; the JUnit failure) reads plain trace
data, and ``report`` needs nothing of the engine (issue 19: no import runs
back up).  ``swimlane`` and ``mermaid`` here are only that composition, for
callers that hold a ``RunOutcome``.

What the trace needs that the steps do not say is worked out here: the
columns (``columns``: clients first), the notes of a row (``notes``: a
checkpoint that returned without its save), an answer as shown
(``result_text``), and on which rows the store changed.

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
from ...report import mermaid as draw_mermaid
from ...report import swimlane as draw_swimlane
from ._monitor import Call
from ._run import RunOutcome, Snapshot

Json = dict[str, Any]

HIDDEN_CLIENTS = ("setup", "post", "process")
"""Callers with no column: setup runs before step 0; restart and read-back are rows of their own."""


def columns(outcome: RunOutcome) -> list[str]:
    """The swimlane's columns: clients (``c:NAME``) first, then the other tasks, in order met."""
    seen: list[str] = []
    for step in outcome.steps:
        if step.label not in seen:
            seen.append(step.label)
    for call in outcome.history:
        column = f"c:{call.client}"
        if call.client not in HIDDEN_CLIENTS and column not in seen:
            seen.append(column)
    return [c for c in seen if c.startswith("c:")] + [c for c in seen if not c.startswith("c:")]


def result_text(call: Call) -> str | None:
    """The answer as shown: ``ok``, ``ok s1`` (create), ``ok [s2, s1]`` (list), an error code."""
    if call.result is None:
        return None
    if call.created is not None:
        return f"{call.result} {call.created}"
    if call.name == "list" and call.result.startswith("ok"):
        return f"{call.result} [{', '.join(call.shown)}]"
    return call.result


def notes(outcome: RunOutcome) -> dict[int, list[str]]:
    """What a row must say that no point shows: a checkpoint that returned without saving.

    A CHECKPOINT violation is found when the checkpoint returns, which is in
    the step that let its session task run last.  If that task passed no
    ``store.save`` since its ``checkpoint`` point, the save was skipped.
    """
    out: dict[int, list[str]] = {}
    by_index = {s.index: n for n, s in enumerate(outcome.steps)}
    for violation in outcome.violations:
        n = by_index.get(violation.step)
        if violation.rule != "CHECKPOINT" or n is None:
            continue
        step = outcome.steps[n]
        task = [s for s in outcome.steps[: n + 1] if s.label == step.label]
        began = next((k for k in range(len(task) - 1, -1, -1) if task[k].kind == "checkpoint"),
                     None)
        if began is None:
            continue
        saved = any(s.kind == "store.save" for s in task[began + 1:])
        text = ("checkpoint returned; its save wrote an older revision" if saved
                else "checkpoint returned without store.save")
        if text not in out.get(step.index, []):
            out.setdefault(step.index, []).append(text)
    return out


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
            **({"fault_kind": s.fault_kind} if s.fault_kind else {}),
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
            "changed": s.store is not None,  # the engine records the store where it changed
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


def swimlane(outcome: RunOutcome) -> str:
    """``outcome``'s trace as the text swimlane (``report.swimlane``)."""
    return draw_swimlane(trace_of(outcome))


def mermaid(outcome: RunOutcome) -> str:
    """``outcome``'s trace as a Mermaid sequence diagram (``report.mermaid``)."""
    return draw_mermaid(trace_of(outcome))


__all__ = ["HIDDEN_CLIENTS", "call_text", "cited_steps", "columns", "mermaid", "notes",
           "result_text", "swimlane", "trace_of"]
