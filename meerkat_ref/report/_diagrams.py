"""Pictures of a trace in text: a swimlane table and a Mermaid sequence diagram.

Both read the one trace every report reads (``_trace``: a run of the
engine, ``oracle.engine.trace_of``, or a port's), never the engine's run:
plain data in, text out, and the step numbers are the ones violations cite.

Swimlane: one column per task (the trace's ``tasks``), one row per step.
The cell of the task that ran names the point it passed, then the step's
``notes`` (a checkpoint that returned without its save leaves no step of
its own: its note says so on the row where it returned).  A call and its
answer are drawn in the column of the client that made the call, never in
the column of whatever task happened to run when the answer came; a call
whose client has no column (the run's setup, the restart and read-back
after it) is not drawn.  The store column shows the store (session: message
count) on each row where it ``changed`` and on every row a violation cites
(a crash row has no store: the process is gone); the violation column names
the rules found at that step.

Mermaid: each step is an arrow from the task to the part of the system its
point reaches (the store, a gate), or a note over the task; answers are
notes over their caller; the store where it changed is a note over it;
every violation is a note at the step it cites.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping

from ._trace import Trace, TraceStep, TraceViolation, parse_trace

CLIENT_CALL = "client.call"
"""The point a client's task passes as it makes its call (the trace format's ``point``)."""


def _parsed(trace: Trace | Mapping[str, object]) -> Trace:
    return trace if isinstance(trace, Trace) else parse_trace(trace)


def _point(step: TraceStep) -> str:
    how = f" ({step.fault_kind})" if step.fault_kind else ""
    return step.where() + (f" FAIL{how}" if step.fault else "")


def _cells(trace: Trace) -> dict[int, dict[str, list[str]]]:
    """Per step, per column: the point passed, notes, calls made and answers received."""
    cells: dict[int, dict[str, list[str]]] = {}
    for step in trace.steps:
        row = cells.setdefault(step.index, {})
        if not step.crash:
            row.setdefault(step.task, []).append(_point(step))
        row.setdefault(step.task, []).extend(step.notes)
    calls_at = {s.index: s.task for s in trace.steps if s.point == CLIENT_CALL and not s.crash}
    for call in trace.calls:
        column = f"c:{call.client}"
        if column not in trace.tasks:
            continue
        own = calls_at.get(call.invoked) == column  # the client's own client.call step
        answer = f" -> {call.result}" if call.responded is not None else ""
        if own:
            # The call names its session: "client.call: archive s1", not "client.call s1: ...".
            same = call.responded == call.invoked
            cells[call.invoked][column][0] = f"{CLIENT_CALL}: {call.text}{answer if same else ''}"
            if same:
                continue
        if call.responded is not None and call.responded in cells:
            cells[call.responded].setdefault(column, []).append(f"{call.text}{answer}")
    return cells


def _counts(step: TraceStep) -> list[tuple[str, int]]:
    return [(sid, entry.message_count) for sid, entry in (step.store or {}).items()]


def _store_text(trace: Trace) -> dict[int, str]:
    """The store column: where it changed, and where a violation is cited."""
    cited = {v.step for v in trace.violations}
    return {
        step.index: "{" + ", ".join(f"{s}:{n}" for s, n in _counts(step)) + "}"
        for step in trace.steps
        if step.store is not None and not step.crash
        and (step.changed or step.index in cited)
    }


def swimlane(trace: Trace | Mapping[str, object]) -> str:
    """The trace as a text table: a column per task, a row per step, then every violation."""
    parsed = _parsed(trace)
    cols = list(parsed.tasks)
    cells = _cells(parsed)
    stores = _store_text(parsed)
    rows: list[list[str]] = [["step", *cols, "store", "violation"]]
    for step in parsed.steps:
        if step.crash:
            row = ["--crash--" for _ in cols]
        else:
            here = cells.get(step.index, {})
            row = ["; ".join(here.get(c, [])) for c in cols]
        rules = list(dict.fromkeys(v.rule for v in parsed.violations if v.step == step.index))
        rows.append([str(step.index), *row, stores.get(step.index, ""), ", ".join(rules)])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        lines.append(" | ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if n == 0:
            lines.append("-+-".join("-" * w for w in widths))
    for violation in parsed.violations:
        lines.append(f"VIOLATION {violation.rule} at step {violation.step}: {violation.message}")
    return "\n".join(lines)


def _actor(label: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in label)


def _target(point: str) -> str:
    if point.startswith("store."):
        return "Store"
    if point == "gate.acquire":
        return "Gate"
    return ""


def _safe(text: str) -> str:
    """Text for a Mermaid note: ``;`` ends a statement, ``#`` starts an entity; long text wraps."""
    clean = text.replace(";", ",").replace("#", "#35;").replace("<", "#lt;")
    return "<br/>".join(textwrap.wrap(clean, 100, break_on_hyphens=False)) or clean


def mermaid(trace: Trace | Mapping[str, object]) -> str:
    """The trace as a Mermaid sequence diagram (the text inside a ```mermaid block)."""
    parsed = _parsed(trace)
    cols = list(parsed.tasks)
    cells = _cells(parsed)
    lines = ["sequenceDiagram"]
    for label in cols:
        lines.append(f"    participant {_actor(label)} as {label}")
    lines.append("    participant Gate as gate lock")
    lines.append("    participant Store as store")
    for step in parsed.steps:
        here = cells.get(step.index, {})
        if step.crash:
            lines.append(
                f"    Note over {_actor(cols[0])},Store: "
                f"step {step.index}: process crashes, restarts"
            )
        else:
            who = _actor(step.task)
            target = _target(step.point)
            mine = here.get(step.task, [])
            text = _safe(mine[0]) if mine else _point(step)
            if target:
                arrow = "-x" if step.fault else "->>"
                lines.append(f"    {who}{arrow}{target}: {step.index}: {text}")
            else:
                lines.append(f"    Note over {who}: {step.index}: {text}")
        if step.changed and step.store is not None and not step.crash:
            contents = ", ".join(f"{s}:{n} msgs" for s, n in _counts(step)) or "empty"
            lines.append(f"    Note over Store: {contents}")
        if not step.crash:
            lines += [f"    Note over {_actor(step.task)}: {_safe(more)}"
                      for more in here.get(step.task, [])[1:]]
        for column in cols:
            if column == step.task:
                continue
            for answer in here.get(column, []):
                lines.append(f"    Note over {_actor(column)}: {_safe(answer)}")
        lines += [_violation_note(v) for v in parsed.violations if v.step == step.index]
    indices = {s.index for s in parsed.steps}
    lines += [_violation_note(v) for v in parsed.violations if v.step not in indices]
    return "\n".join(lines)


def _violation_note(violation: TraceViolation) -> str:
    return (f"    Note over Store: VIOLATION {violation.rule} at step {violation.step}: "
            f"{_safe(violation.message)}")


__all__ = ["mermaid", "swimlane"]
