"""Pictures of a run: a text swimlane and a Mermaid sequence diagram.

Swimlane: one column per task (every client that made a call has one, a
background client such as a host loop too), one row per step.  The cell of
the task that ran names the point it passed; a call and its answer are
drawn in the column of the client that made the call, never in the column
of whatever task happened to run when the answer came.  The store column
shows the store (session: message count) where it changed and on every row
a violation cites; the violation column names the rules found at that step.
Mermaid: each step is an arrow from the task to the part of the system its
point reaches (the store, a gate), or a note over the task; answers are
notes over their caller; every violation is a note at the step it cites.

A checkpoint that returns without its save (the seed's window 4 skips it)
leaves no step of its own: ``notes`` says so on the row where it returned,
so the save that did not happen is visible.  Both pictures, and the HTML
report (``trace_of``), are produced from ``RunOutcome`` alone: plain
data in, text out, and the step numbers are the ones violations cite.
"""

from __future__ import annotations

import textwrap

from ..targets import CLIENT_CALL
from ._monitor import Call, Violation
from ._run import RunOutcome

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


def _point(kind: str, session: str | None, fault: bool) -> str:
    text = kind if session is None else f"{kind} {session}"
    return text + (" FAIL" if fault else "")


def _cells(outcome: RunOutcome, cols: list[str]) -> dict[int, dict[str, list[str]]]:
    """Per step, per column: the point passed, notes, calls made and answers received."""
    cells: dict[int, dict[str, list[str]]] = {}
    extra = notes(outcome)
    for step in outcome.steps:
        row = cells.setdefault(step.index, {})
        if not step.crash:
            row.setdefault(step.label, []).append(_point(step.kind, step.session, step.fault))
        row.setdefault(step.label, []).extend(extra.get(step.index, []))
    calls_at = {s.index: s.label for s in outcome.steps if s.kind == CLIENT_CALL and not s.crash}
    for call in outcome.history:
        column = f"c:{call.client}"
        if call.client in HIDDEN_CLIENTS or column not in cols:
            continue
        own = calls_at.get(call.invoked) == column  # the client's own client.call step
        answer = f" -> {result_text(call)}" if call.responded is not None else ""
        if own:
            # The call names its session: "client.call: archive s1", not "client.call s1: ...".
            same = call.responded == call.invoked
            cells[call.invoked][column][0] = f"{CLIENT_CALL}: {call.text()}{answer if same else ''}"
            if same:
                continue
        if call.responded is not None and call.responded in cells:
            cells[call.responded].setdefault(column, []).append(f"{call.text()}{answer}")
    return cells


def _store_text(outcome: RunOutcome, cited: set[int]) -> dict[int, str]:
    out = {}
    for step in outcome.steps:
        view = step.store
        if view is None and step.index in cited and step.after is not None:
            view = tuple((label, count) for label, _rev, count, _t in step.after.store)
        if view is not None:
            out[step.index] = "{" + ", ".join(f"{s}:{n}" for s, n in view) + "}"
    return out


def swimlane(outcome: RunOutcome) -> str:
    cols = columns(outcome)
    cells = _cells(outcome, cols)
    cited = {v.step for v in outcome.violations}
    stores = _store_text(outcome, cited)
    rows: list[list[str]] = [["step", *cols, "store", "violation"]]
    for step in outcome.steps:
        if step.crash:
            row = ["--crash--" for _ in cols]
        else:
            here = cells.get(step.index, {})
            row = ["; ".join(here.get(c, [])) for c in cols]
        rules = list(dict.fromkeys(v.rule for v in outcome.violations if v.step == step.index))
        rows.append([str(step.index), *row, stores.get(step.index, ""), ", ".join(rules)])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        lines.append(" | ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if n == 0:
            lines.append("-+-".join("-" * w for w in widths))
    for violation in outcome.violations:
        lines.append(f"VIOLATION {violation.rule} at step {violation.step}: {violation.message}")
    return "\n".join(lines)


def _actor(label: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in label)


def _target(kind: str) -> str:
    if kind.startswith("store."):
        return "Store"
    if kind == "gate.acquire":
        return "Gate"
    return ""


def _safe(text: str) -> str:
    """Text for a Mermaid note: ``;`` ends a statement, ``#`` starts an entity; long text wraps."""
    clean = text.replace(";", ",").replace("#", "#35;").replace("<", "#lt;")
    return "<br/>".join(textwrap.wrap(clean, 100, break_on_hyphens=False)) or clean


def mermaid(outcome: RunOutcome) -> str:
    cols = columns(outcome)
    cells = _cells(outcome, cols)
    lines = ["sequenceDiagram"]
    for label in cols:
        lines.append(f"    participant {_actor(label)} as {label}")
    lines.append("    participant Gate as gate lock")
    lines.append("    participant Store as store")
    for step in outcome.steps:
        here = cells.get(step.index, {})
        if step.crash:
            lines.append(
                f"    Note over {_actor(cols[0])},Store: "
                f"step {step.index}: process crashes, restarts"
            )
        else:
            who = _actor(step.label)
            target = _target(step.kind)
            mine = here.get(step.label, [])
            text = _safe(mine[0]) if mine else _point(step.kind, step.session, step.fault)
            if target:
                arrow = "-x" if step.fault else "->>"
                lines.append(f"    {who}{arrow}{target}: {step.index}: {text}")
            else:
                lines.append(f"    Note over {who}: {step.index}: {text}")
        if step.store is not None:
            contents = ", ".join(f"{s}:{n} msgs" for s, n in step.store) or "empty"
            lines.append(f"    Note over Store: {contents}")
        if not step.crash:
            lines += [f"    Note over {_actor(step.label)}: {_safe(more)}"
                      for more in here.get(step.label, [])[1:]]
        for column in cols:
            if column == step.label:
                continue
            for answer in here.get(column, []):
                lines.append(f"    Note over {_actor(column)}: {_safe(answer)}")
        lines += [_violation_note(v) for v in outcome.violations if v.step == step.index]
    indices = {s.index for s in outcome.steps}
    lines += [_violation_note(v) for v in outcome.violations if v.step not in indices]
    return "\n".join(lines)


def _violation_note(violation: Violation) -> str:
    return (f"    Note over Store: VIOLATION {violation.rule} at step {violation.step}: "
            f"{_safe(violation.message)}")
