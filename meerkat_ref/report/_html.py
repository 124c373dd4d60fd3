"""The HTML counterexample report: one self-contained file per trace, and an index of several.

Who reads it: a port author whose port just failed, and someone learning why
the seed resurrects sessions.  Porcupine's linearizability visualiser shows
the history; this page also shows what the history alone hides, the store's
contents and each session's gate after every step, because the seed's bugs
are about a write landing where the history says it cannot.

Layout: a header (title, what the scenario is about, variant / target /
store, the verdict, setup, the replay command); a swimlane (one column per
task, one row per step, the cell naming the scheduling point and session,
calls issued and answered in their client's column, faults and crashes
marked, the store's and gates' changes, violations on their row); a side
panel with the state AFTER the current step (store, gates, calls in flight,
answers so far, the step's violations); the list of violations linking to
their steps.  Keys: right or j next step, left or k previous, Home / End,
v next violation; a click selects a row; ``#step-N`` in the URL selects
step N.  The current step is in ``#current-step`` (``data-testid
="current-step"``, its ``data-step`` the index).

Where things stay (issue 20): the page opens at its top, title, verdict
and "Reproduce" line in view, whatever step is selected; on a window wide
enough for the side panel the header stays put, the swimlane and the panel
scroll each in its own pane, the column headings stay at the top of the
swimlane's, and the table's cells wrap so that it fits the pane's width
(checked in Chromium at 1280x800 and wider: ``tests/test_report_html.py``).
``#step-N`` names the row of step N (the panel's sections are ``state-N``),
so the address never scrolls the page away from its header.

Every string from the trace goes through ``_markup.el``, which escapes it.
The output depends on the trace only (no time, no paths): same trace, same
bytes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from ._assets import CSS, NOSCRIPT_CSS, SCRIPT
from ._markup import Child, Markup, el, join
from ._trace import (
    GateEntry,
    StoreEntry,
    Trace,
    TraceCall,
    TraceStep,
    archived_at,
    parse_trace,
    problems,
)

SYNTHETIC_TASKS = ("process",)
"""Columns that are not tasks of the service but moments of the run (crash, restart, read-back)."""


# -- small pieces ----------------------------------------------------------------------------


def _testid(name: str, **more: str | int | bool | None) -> dict[str, str | int | bool | None]:
    return {"data-testid": name, **more}


def _badge(kind: str, text: str, title: str | None = None) -> Markup:
    return el("span", {"class": f"badge {kind}", "title": title}, text)


def _rules(trace: Trace) -> list[str]:
    seen: list[str] = []
    for v in trace.violations:
        if v.rule not in seen:
            seen.append(v.rule)
    return seen


def verdict_text(trace: Trace) -> str:
    """``FAIL: ARCHIVE-FINAL (5), LINEARIZABLE (1); first at step 15`` or ``PASS: ...``."""
    if not trace.violations:
        return "PASS: no violation"
    counts = ", ".join(
        f"{rule} ({sum(1 for v in trace.violations if v.rule == rule)})" for rule in _rules(trace)
    )
    first = min(v.step for v in trace.violations)
    return f"FAIL: {counts}; first at step {first}"


def _gate_text(gate: GateEntry | None) -> str:
    if gate is None:
        return "no gate"
    words = ["armed" if gate.armed else "disarmed"]
    if gate.archived:
        words.append("archived")
    words.append(
        "nothing saved" if gate.saved_revision is None else f"saved r{gate.saved_revision}"
    )
    return ", ".join(words)


# -- the swimlane ----------------------------------------------------------------------------


def _owns(column: str, client: str) -> bool:
    """Whether ``column`` is the client's own task (``c:turn`` for ``turn``)."""
    return column in (f"c:{client}", client)


def _client_column(trace: Trace, client: str, fallback: str) -> str:
    """Where a client's calls are drawn: its own column, or else the stepping task's."""
    return next((t for t in trace.tasks if _owns(t, client)), fallback)


def _store_changes(
    step: TraceStep, before: Mapping[str, StoreEntry] | None, archived: Mapping[str, int]
) -> list[Markup]:
    """What the step did to the store, as short marks; a write after archive is called out."""
    now = step.store
    if now is None:
        return []
    out: list[Markup] = []
    for sid, entry in now.items():
        old = None if before is None else before.get(sid)
        if before is not None and old == entry:
            continue
        returned = archived.get(sid)
        back = returned is not None and returned < step.index and old != entry
        if before is None:
            text = f"{sid} ({entry.message_count} msgs)"
        elif old is None:
            text = f"+{sid} ({entry.message_count} msgs)"
        else:
            text = f"{sid} {old.message_count}\u2192{entry.message_count} msgs"
        out.append(el("span", {"class": "change back" if back else "change"}, text))
        if back:
            out.append(el("span", {"class": "change back"}, f"archived at {returned}!"))
    for sid in before or {}:
        if sid not in now:
            out.append(el("span", {"class": "change"}, f"\u2212{sid} (deleted)"))
    if before is None and not out:
        out.append(el("span", {"class": "change"}, "empty"))
    return out


def _gate_changes(step: TraceStep, before: Mapping[str, GateEntry] | None) -> list[Markup]:
    now = step.gates
    if now is None:
        return []
    out = [
        el("span", {"class": "change"}, f"{sid}: {_gate_text(gate)}")
        for sid, gate in now.items()
        if before is None or before.get(sid) != gate
    ]
    out += [
        el("span", {"class": "change"}, f"{sid}: no gate") for sid in before or {} if sid not in now
    ]
    return out


def _call_lines(trace: Trace, step: TraceStep) -> list[tuple[str, Markup]]:
    """The calls a step issued and answered, each with the column it is drawn in."""
    out: list[tuple[str, Markup]] = []
    answered_here = {ref.call for ref in step.answered}
    for ref in step.invoked:
        if ref.call in answered_here:
            continue  # shown once, as "call -> answer", below
        column = _client_column(trace, ref.client, step.task)
        who = "" if _owns(column, ref.client) else f"{ref.client}: "
        out.append((column, el("div", {"class": "call-in"}, f"{who}\u2192 {ref.text}")))
    invoked_here = {ref.call for ref in step.invoked}
    for ref in step.answered:
        column = _client_column(trace, ref.client, step.task)
        result = ref.result if ref.result is not None else "?"
        if ref.call in invoked_here:
            line = f"{ref.text} \u2192 {result}"
        elif _owns(column, ref.client):
            # A client runs one call at a time: its column's last "->" is the one answered.
            line = f"\u2190 {result}"
        else:
            line = f"{ref.client}: \u2190 {ref.text}: {result}"
        out.append((column, el("div", {"class": "call-out", "title": ref.text}, line)))
    return out


def _row(
    trace: Trace,
    step: TraceStep,
    previous: TraceStep | None,
    archived: Mapping[str, int],
    show_gates: bool,
) -> Markup:
    cells: dict[str, list[Child]] = {task: [] for task in trace.tasks}
    if not step.crash and step.task in cells:
        mark: list[Child] = [el("span", {"class": "point"}, step.where())]
        if step.fault:
            mark += [" ", _badge("fault", "FAULT", _fault_title(step))]
        mark += [el("div", {"class": "note"}, note) for note in step.notes]
        cells[step.task].extend(mark)
    for column, line in _call_lines(trace, step):
        if column in cells:
            cells[column].append(line)
    if step.crash:
        task_cells = el(
            "td",
            {"class": "crash-cell", "colspan": len(trace.tasks)},
            _badge("crash", "CRASH"),
            " the process dies: only the store survives",
        )
    else:
        task_cells = join(el("td", None, *cells[task]) for task in trace.tasks)
    store_before = None if previous is None else previous.store
    gates_before = None if previous is None else previous.gates
    extra = [el("td", None, *_store_changes(step, store_before, archived))]
    if show_gates:
        extra.append(el("td", None, *_gate_changes(step, gates_before)))
    extra.append(el("td", None, *(_badge("rule", v.rule, v.message) for v in step.violations)))
    classes = [
        name
        for name, on in (
            ("violation", bool(step.violations)),
            ("crash", step.crash),
            ("fault", step.fault),
            ("synthetic", step.task in SYNTHETIC_TASKS and not step.crash),
        )
        if on
    ]
    return el(
        "tr",
        {"id": f"step-{step.index}", "data-step": step.index, "class": " ".join(classes) or None},
        el("th", {"scope": "row"}, step.index),
        task_cells,
        *extra,
    )


def _swimlane(trace: Trace, archived: Mapping[str, int], show_gates: bool) -> Markup:
    head = [el("th", {"scope": "col"}, "step")]
    head += [el("th", {"scope": "col"}, task) for task in trace.tasks]
    head += [el("th", {"scope": "col"}, "store")]
    if show_gates:
        head += [el("th", {"scope": "col"}, "gates")]
    head += [el("th", {"scope": "col"}, "violation")]
    rows = [
        _row(trace, step, trace.steps[n - 1] if n else None, archived, show_gates)
        for n, step in enumerate(trace.steps)
    ]
    return el(
        "div",
        {"class": "lane-wrap"},
        el(
            "table",
            _testid("swimlane", id="lane"),
            el("thead", None, el("tr", None, *head)),
            el("tbody", None, *rows),
        ),
    )


# -- the side panel: the state after one step ---------------------------------------------------


def _store_panel(step: TraceStep, archived: Mapping[str, int]) -> Markup:
    title = el("h3", None, "store")
    if step.store is None:
        return el("div", _testid("store"), title, el("p", {"class": "none"}, "not recorded here"))
    if not step.store:
        return el("div", _testid("store"), title, el("p", {"class": "none"}, "empty"))
    entries = step.store.items()
    columns = ["session", "messages"]
    if any(e.revision is not None for _, e in entries):
        columns.append("revision")
    if any(e.updated_at is not None for _, e in entries):
        columns.append("updated")
    rows = []
    notes = []
    for sid, entry in entries:
        returned = archived.get(sid)
        back = returned is not None and returned <= step.index
        if back:
            notes.append(
                el("p", {"class": "back"}, f"{sid} was archived at step {returned}: it is back")
            )
        values: dict[str, Child] = {
            "session": sid,
            "messages": entry.message_count,
            "revision": entry.revision,
            "updated": entry.updated_at,
        }
        rows.append(
            el(
                "tr",
                {"class": "back" if back else None, "data-session": sid},
                *(el("td", None, values[c]) for c in columns),
            )
        )
    head = el("tr", None, *(el("th", None, c) for c in columns))
    table = el("table", None, el("thead", None, head), el("tbody", None, *rows))
    return el("div", _testid("store"), title, table, *notes)


def _gates_panel(step: TraceStep) -> Markup:
    title = el("h3", None, "gates")
    if step.gates is None:
        note = "not visible for this target"
        return el("div", _testid("gates"), title, el("p", {"class": "none"}, note))
    if not step.gates:
        return el("div", _testid("gates"), title, el("p", {"class": "none"}, "no gates"))
    head = el(
        "tr", None, *(el("th", None, h) for h in ("session", "armed", "archived", "saved revision"))
    )
    rows = [
        el(
            "tr",
            {"data-session": sid},
            el("td", None, sid),
            el("td", None, "yes" if g.armed else "no"),
            el("td", None, "yes" if g.archived else "no"),
            el("td", None, "none" if g.saved_revision is None else g.saved_revision),
        )
        for sid, g in step.gates.items()
    ]
    return el("div", _testid("gates"), title, el("table", None, el("thead", None, head), *rows))


def _calls_panel(step: TraceStep, calls: Sequence[TraceCall]) -> Markup:
    in_flight = [
        el("li", None, f"{c.client}: {c.text} (since step {c.invoked})")
        for c in calls
        if c.invoked <= step.index and (c.responded is None or c.responded > step.index)
    ]
    answered = sorted(
        (c for c in calls if c.responded is not None and c.responded <= step.index),
        key=lambda c: (c.responded or 0, c.id),
    )
    answers = [
        el(
            "li",
            {"class": "now" if c.responded == step.index else None, "title": c.detail or None},
            f"step {c.responded} \u00b7 {c.client}: {c.text} \u2192 {c.result or '?'}",
        )
        for c in answered
    ]
    return join(
        [
            el("h3", None, "calls in flight"),
            el("ul", _testid("in-flight"), *in_flight)
            if in_flight
            else el("p", {"class": "none", "data-testid": "in-flight"}, "none"),
            el("h3", None, "answers so far"),
            el("ol", _testid("answers"), *answers)
            if answers
            else el("p", {"class": "none", "data-testid": "answers"}, "none yet"),
        ]
    )


def _fault_title(step: TraceStep) -> str:
    how = f" ({step.fault_kind})" if step.fault_kind else ""
    return f"this store call was made to fail{how}"


def _state(step: TraceStep, trace: Trace, archived: Mapping[str, int]) -> Markup:
    flags: list[Child] = []
    if step.fault:
        flags += [" ", _badge("fault", "FAULT", _fault_title(step))]
    if step.crash:
        flags += [" ", _badge("crash", "CRASH")]
    violations: list[Child] = []
    if step.violations:
        violations = [
            el("h3", None, "violations at this step"),
            el(
                "ul",
                _testid("step-violations"),
                *(
                    el("li", {"class": "vio"}, _badge("rule", v.rule), " ", v.message)
                    for v in step.violations
                ),
            ),
        ]
    return el(
        "section",
        {"class": "state", "id": f"state-{step.index}", "data-step": step.index, "hidden": True},
        el("h2", None, f"After step {step.index}"),
        el("p", {"class": "mono"}, f"{step.task}: {step.where()}", *flags),
        *violations,
        _store_panel(step, archived),
        _gates_panel(step),
        _calls_panel(step, trace.calls),
    )


def _panel(trace: Trace, archived: Mapping[str, int]) -> Markup:
    buttons = [
        el("button", {"type": "button", "data-go": go, "title": title}, label)
        for go, label, title in (
            ("first", "\u00ab first", "first step (Home)"),
            ("prev", "\u25c0 prev", "previous step (\u2190 or k)"),
            ("next", "next \u25b6", "next step (\u2192 or j)"),
            ("last", "last \u00bb", "last step (End)"),
            ("violation", "next violation", "next violation (v)"),
        )
    ]
    first = trace.steps[0].index if trace.steps else ""
    return el(
        "aside",
        _testid("panel"),
        el("nav", {"class": "steps", "aria-label": "steps"}, *buttons),
        el(
            "output",
            _testid(
                "current-step", id="current-step", **{"data-step": first, "aria-live": "polite"}
            ),
            f"Step {first}",
        ),
        *(_state(step, trace, archived) for step in trace.steps),
    )


# -- header and violations -----------------------------------------------------------------------


def _header(trace: Trace, issues: Sequence[str]) -> Markup:
    meta = [
        el("span", None, el("b", None, label), " ", value)
        for label, value in (
            ("scenario", trace.scenario),
            ("variant", trace.variant),
            ("target", trace.target),
            ("store", trace.store),
            ("steps", str(len(trace.steps))),
        )
    ]
    parts: list[Child] = [
        el("h1", _testid("title"), trace.title),
        el("p", {"class": "about"}, trace.about) if trace.about else None,
        el("p", {"class": "meta"}, *meta),
        el(
            "p",
            _testid("verdict", **{"class": "verdict " + ("fail" if trace.violations else "pass")}),
            verdict_text(trace),
        ),
    ]
    if trace.setup:
        done = [f"{c.client}: {c.text} \u2192 {c.result or '?'}" for c in trace.setup]
        parts.append(
            el(
                "p",
                None,
                "Before step 0, with the scheduler off: ",
                el("code", None, "; ".join(done)),
            )
        )
    if trace.replay:
        parts.append(el("p", None, "Reproduce: ", el("code", _testid("replay"), trace.replay)))
    if issues:
        parts.append(
            el(
                "div",
                _testid("trace-problems", **{"class": "problems", "role": "alert"}),
                el("b", None, "This trace contradicts itself:"),
                el("ul", None, *(el("li", None, issue) for issue in issues)),
            )
        )
    return el("header", None, *parts)


def _violations(trace: Trace) -> Markup:
    known = {s.index for s in trace.steps}
    items = []
    for v in trace.violations:
        if v.step in known:
            where: Markup = el("a", {"href": f"#step-{v.step}"}, f"step {v.step}")
            items.append(el("li", None, where, " ", _badge("rule", v.rule), " ", v.message))
        else:
            where = el("span", None, f"step {v.step} (not in the trace)")
            items.append(
                el("li", {"class": "missing"}, where, " ", _badge("rule", v.rule), " ", v.message)
            )
    body: Markup = el("ol", None, *items) if items else el("p", {"class": "none"}, "none")
    return el("section", _testid("violations", id="violations"), el("h2", None, "Violations"), body)


_KEYS = Markup(
    "Keys: <kbd>\u2192</kbd> or <kbd>j</kbd> next step, <kbd>\u2190</kbd> or <kbd>k</kbd> "
    "previous, <kbd>Home</kbd> / <kbd>End</kbd> first / last, <kbd>v</kbd> next violation; "
    "click a row to select it; <code>#step-N</code> in the address opens step N. "
    "The panel shows the state <em>after</em> the selected step."
)


def _page(title: str, body: Markup) -> str:
    head = join(
        [
            Markup('<meta charset="utf-8">'),
            Markup('<meta name="viewport" content="width=device-width, initial-scale=1">'),
            Markup(
                '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
                "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">"
            ),
            el("title", None, title),
            el("style", None, CSS),
        ]
    )
    return f'<!DOCTYPE html>\n<html lang="en">\n<head>\n{head}\n</head>\n{body}\n</html>\n'


def render_html(trace: Mapping[str, object]) -> str:
    """The report for one ``meerkat-ref/trace@1`` trace, as one self-contained HTML document.

    Raises ``TraceError`` if ``trace`` is not a trace at all; a trace that
    contradicts itself (a violation citing a step it does not have, ...) is
    rendered, with its problems listed at the top.
    """
    parsed = parse_trace(trace)
    issues = problems(parsed)
    archived = archived_at(parsed.calls)
    show_gates = any(s.gates is not None for s in parsed.steps)
    body = el(
        "body",
        None,
        _header(parsed, issues),
        el(
            "main",
            None,
            el("div", {"class": "lane-pane"}, _swimlane(parsed, archived, show_gates),
               _violations(parsed)),
            _panel(parsed, archived),
        ),
        el("footer", None, el("p", None, _KEYS)),
        el("noscript", None, el("style", None, NOSCRIPT_CSS)),
        el("script", None, SCRIPT),
    )
    return _page(parsed.title, body)


# -- several reports ---------------------------------------------------------------------------


def report_name(trace: Mapping[str, object]) -> str:
    """A file name for the trace's report: its title reduced to ``a-z0-9-`` (never a path)."""
    title = trace.get("title")
    slug = re.sub(r"[^a-z0-9]+", "-", str(title).lower()).strip("-")
    return (slug or "report") + ".html"


def render_gallery(
    reports: Sequence[tuple[str, Mapping[str, object]]],
    title: str = "Counterexamples",
    intro: str = "",
) -> str:
    """An index page: one row per (file name, trace), linking to the file, with its verdict."""
    rows = []
    for name, raw in reports:
        trace = parse_trace(raw)
        rows.append(
            el(
                "tr",
                None,
                el("td", None, el("a", {"href": name}, trace.title)),
                el("td", None, trace.about),
                el("td", None, ", ".join(_rules(trace)) or "none"),
                el("td", None, len(trace.steps)),
            )
        )
    head = el("tr", None, *(el("th", None, h) for h in ("report", "what races", "breaks", "steps")))
    table = el(
        "table", _testid("gallery", id="lane"), el("thead", None, head), el("tbody", None, *rows)
    )
    body = el(
        "body",
        None,
        el(
            "header",
            None,
            el("h1", None, title),
            el("p", {"class": "about"}, intro) if intro else None,
        ),
        el("div", {"class": "lane-wrap"}, table),
    )
    return _page(title, body)


def write_report(
    trace: Mapping[str, object], directory: Path | str, name: str | None = None
) -> Path:
    """Write ``render_html(trace)`` into ``directory`` (made if missing); return the file's path."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (report_name({"title": name}) if name is not None else report_name(trace))
    path.write_text(render_html(trace), encoding="utf-8")
    return path


def write_gallery(
    traces: Sequence[tuple[str, Mapping[str, object]]],
    directory: Path | str,
    title: str = "Counterexamples",
    intro: str = "",
) -> Path:
    """Write each (name, trace) as ``name.html`` and an ``index.html`` linking them."""
    written = [(write_report(trace, directory, name).name, trace) for name, trace in traces]
    index = Path(directory) / "index.html"
    index.write_text(render_gallery(written, title, intro), encoding="utf-8")
    return index
