"""Pictures of a run: a text swimlane and a Mermaid sequence diagram.

Swimlane: one column per task, one row per step; the cell of the task that
ran names the point it passed; a last column shows the store (session:
message count) on the rows where it changed.  Mermaid: each step is an
arrow from the task to the part of the system its point reaches (the
store, a gate, a session task), with notes for store contents, answers and
violations.  Both are produced from ``RunOutcome`` alone: plain data in,
text out.
"""

from __future__ import annotations

from ._run import RunOutcome


def _columns(outcome: RunOutcome) -> list[str]:
    seen: list[str] = []
    for step in outcome.steps:
        if step.label not in seen:
            seen.append(step.label)
    clients = [c for c in seen if c.startswith("c:")]
    others = [c for c in seen if not c.startswith("c:")]
    return clients + others


def _cell(kind: str, session: str | None, fault: bool) -> str:
    text = kind if session is None else f"{kind} {session}"
    return text + (" FAIL" if fault else "")


def _answers(outcome: RunOutcome) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for call in outcome.history:
        if call.responded is None or call.client in ("setup", "post"):
            continue
        out.setdefault(call.responded, []).append(
            f"{call.client}: {call.text()} -> {call.result}"
        )
    return out


def swimlane(outcome: RunOutcome) -> str:
    columns = _columns(outcome)
    answers = _answers(outcome)
    rows: list[list[str]] = [["step", *columns, "store", "answers"]]
    for step in outcome.steps:
        row = ["" for _ in columns]
        if step.crash:
            row = ["--crash--" for _ in columns]
        else:
            row[columns.index(step.label)] = _cell(step.kind, step.session, step.fault)
        store = ""
        if step.store is not None:
            store = "{" + ", ".join(f"{s}:{n}" for s, n in step.store) + "}"
        rows.append([str(step.index), *row, store, "; ".join(answers.get(step.index, []))])
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


def mermaid(outcome: RunOutcome) -> str:
    columns = _columns(outcome)
    answers = _answers(outcome)
    lines = ["sequenceDiagram"]
    for label in columns:
        lines.append(f"    participant {_actor(label)} as {label}")
    lines.append("    participant Gate as gate lock")
    lines.append("    participant Store as store")
    for step in outcome.steps:
        if step.crash:
            lines.append(
                f"    Note over {_actor(columns[0])},Store: "
                f"step {step.index}: process crashes, restarts"
            )
            continue
        who = _actor(step.label)
        target = _target(step.kind)
        text = _cell(step.kind, step.session, step.fault).replace(";", ",")
        if target:
            arrow = "-x" if step.fault else "->>"
            lines.append(f"    {who}{arrow}{target}: {step.index}: {text}")
        else:
            lines.append(f"    Note over {who}: {step.index}: {text}")
        if step.store is not None:
            contents = ", ".join(f"{s}:{n} msgs" for s, n in step.store) or "empty"
            lines.append(f"    Note over Store: {contents}")
        for answer in answers.get(step.index, []):
            lines.append(f"    Note over {who}: {answer.replace(';', ',')}")
    for violation in outcome.violations[:3]:
        lines.append(
            f"    Note over Store: VIOLATION {violation.rule}: "
            f"{violation.message.replace(';', ',')}"
        )
    return "\n".join(lines)
