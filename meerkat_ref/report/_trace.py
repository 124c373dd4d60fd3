"""The trace: what a report is drawn from, as plain JSON (``"format": "meerkat-ref/trace@1"``).

Why a format of its own: the same picture must come from the in-process
explorer, from ``replay`` and from ``conform`` over a port, and a port's
trace is written by code we do not control.  So the renderers read only this
plain data, parse it strictly (``parse_trace`` raises ``TraceError`` naming
the bad field), and treat every string in it as hostile text.

A trace is one JSON object::

    {
     "format": "meerkat-ref/trace@1",
     "title": "seed-0.4.0:save-after-turn / turn-save-vs-archive",
     "scenario": "turn-save-vs-archive",
     "about": "a turn's save after the turn races archive of the same session",
     "variant": "seed-0.4.0:save-after-turn", "target": "in-process", "store": "memory",
     "tasks": ["c:turn", "c:archive", "session s1", "process"],
     "setup": [{"client": "setup", "text": "create \\"hello\\"", "result": "ok s1"}],
     "steps": [ STEP, ... ],
     "calls": [ CALL, ... ],
     "violations": [{"rule": "ARCHIVE-FINAL", "step": 15, "message": "..."}],
     "replay": "meerkat-ref replay counterexamples/window-1-save-after-turn.json"
    }

Top level.  Required: ``format`` (exactly ``meerkat-ref/trace@1``), ``title``,
``scenario``, ``variant``, ``target`` (``in-process``, or the adapter command of
a port), ``store`` (``memory``, ``sqlite``, or what the port says), ``tasks``
(the swimlane's columns, in order; every step's task is one of them),
``steps``, ``calls``, ``violations``, ``replay`` (the command that reproduces
the run; ``""`` when there is none).  Optional: ``about`` (one sentence, default
``""``), ``setup`` (calls made before step 0 with the scheduler off, each
``{"client", "text", "result"}``; default ``[]``).

STEP, one row of the swimlane, in increasing ``index`` order::

    {"index": 15, "task": "c:turn", "point": "store.save", "session": "s1",
     "fault": false, "crash": false,
     "invoked":  [{"client": "turn", "call": 1, "text": "start_turn s1 \\"more\\""}],
     "answered": [{"client": "turn", "call": 1, "text": "start_turn s1 \\"more\\"",
                   "result": "ok"}],
     "store": {"s1": {"message_count": 4, "revision": 4, "updated_at": 5}},
     "gates": {"s1": {"armed": true, "archived": false, "saved_revision": 4}},
     "violations": [{"rule": "ARCHIVE-FINAL", "message": "s1 written ... (resurrected)"}],
     "notes": [], "changed": true}

Optional in a step: ``fault_kind`` (with ``fault``: how the store call failed,
one of the target's ``fault_kinds``; default ``""``, the plain fault).

- ``index`` (int, unique, increasing; need not start at 0 nor be contiguous),
  ``task`` and ``point`` (the scheduling point the task passed: ``store.save``,
  ``gate.acquire``, ``client.call``...) are required.
- ``session`` (the id the point concerns, or null), ``fault`` (the step's store
  call was made to fail), ``crash`` (the process crashed here; such a step's
  task is ``process``) default to null, false, false.
- ``invoked`` / ``answered``: the calls this step issued / answered, by ``call``
  id (an ``id`` in ``calls``); default ``[]``.
- ``store``: the store's whole contents AFTER the step, session -> entry, where
  an entry has ``message_count`` (required), ``revision`` and ``updated_at``
  (optional ints).  ``null``: not recorded at this step (an engine that only
  records changes, before its first record).
- ``gates``: each session's checkpointer gate AFTER the step: ``armed``,
  ``archived`` (bools) and ``saved_revision`` (int, or null when nothing was
  saved through it); a session with no gate is absent.  ``null`` when the
  target cannot show its gates (a port over the adapter): rendered "not
  visible".
- ``violations``: those detected at this step, each ``{"rule", "message"}``.
- ``notes``: what happened at this step that no point shows, as short texts
  drawn in the step's task cell (e.g. ``"checkpoint returned without
  store.save"``: a skipped save leaves no step of its own); default ``[]``.
- ``changed``: the store's contents changed at this step (or were read at it,
  after the run), as the engine that wrote the trace saw them; the text
  swimlane and the Mermaid diagram show the store on such rows (and on rows a
  violation cites); default false.

CALL, one client operation::

    {"id": 1, "client": "turn", "op": "start_turn", "session": "s1",
     "text": "start_turn s1 \\"more\\"", "invoked": 0, "responded": 15,
     "result": "ok", "detail": ""}

``id`` (unique int), ``client``, ``text`` and ``invoked`` (a step index) are
required; ``op`` (default: the first word of ``text``), ``session`` (null),
``responded`` (a step index, or null: never answered), ``result`` (the answer
as shown, e.g. ``ok``, ``ok s1``, ``SESSION_NOT_FOUND``; null while
unanswered) and ``detail`` (an error's message; ``""``) are optional.  An
``archive`` call answered ``ok...`` is what the report uses to mark a session
archived from that step on.

``violations`` (top level) repeats every step's violations with their
``step``.  Every step a violation or a call cites must be in ``steps``:
``problems`` lists where a trace breaks that or another cross-reference, and
the HTML report shows those problems instead of failing, so that a port's
broken trace still gets looked at.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

FORMAT = "meerkat-ref/trace@1"


class TraceError(ValueError):
    """The trace is not a ``meerkat-ref/trace@1`` object; the message names the field."""


@dataclass(frozen=True)
class StoreEntry:
    message_count: int
    revision: int | None = None
    updated_at: int | None = None


@dataclass(frozen=True)
class GateEntry:
    armed: bool
    archived: bool
    saved_revision: int | None


@dataclass(frozen=True)
class CallRef:
    """A call as a step mentions it; ``result`` only on ``answered``."""

    client: str
    call: int
    text: str
    result: str | None = None


@dataclass(frozen=True)
class StepViolation:
    rule: str
    message: str


@dataclass(frozen=True)
class TraceStep:
    index: int
    task: str
    point: str
    session: str | None
    fault: bool
    crash: bool
    invoked: tuple[CallRef, ...]
    answered: tuple[CallRef, ...]
    store: Mapping[str, StoreEntry] | None
    gates: Mapping[str, GateEntry] | None
    violations: tuple[StepViolation, ...]
    notes: tuple[str, ...] = ()
    changed: bool = False
    fault_kind: str = ""

    def where(self) -> str:
        """``point session`` as the swimlane names it."""
        return self.point if self.session is None else f"{self.point} {self.session}"


@dataclass(frozen=True)
class TraceCall:
    id: int
    client: str
    op: str
    session: str | None
    text: str
    invoked: int
    responded: int | None
    result: str | None
    detail: str


@dataclass(frozen=True)
class TraceViolation:
    rule: str
    step: int
    message: str


@dataclass(frozen=True)
class SetupCall:
    client: str
    text: str
    result: str | None


@dataclass(frozen=True)
class Trace:
    title: str
    scenario: str
    about: str
    variant: str
    target: str
    store: str
    tasks: tuple[str, ...]
    setup: tuple[SetupCall, ...]
    steps: tuple[TraceStep, ...]
    calls: tuple[TraceCall, ...]
    violations: tuple[TraceViolation, ...]
    replay: str

    def step(self, index: int) -> TraceStep | None:
        return next((s for s in self.steps if s.index == index), None)


# -- reading JSON strictly -----------------------------------------------------------------

_MISSING = object()


class _Obj:
    """A JSON object being read, with the path used in error messages."""

    def __init__(self, value: object, path: str) -> None:
        if not isinstance(value, Mapping):
            raise TraceError(f"{path}: expected an object, got {_kind(value)}")
        self.value: Mapping[object, object] = value
        self.path = path

    def _get(self, key: str, default: object) -> object:
        found = self.value.get(key, _MISSING)
        if found is _MISSING:
            if default is _MISSING:
                raise TraceError(f"{self.path}.{key}: missing")
            return default
        return found

    def text(self, key: str, default: object = _MISSING) -> str:
        value = self._get(key, default)
        if not isinstance(value, str):
            raise TraceError(f"{self.path}.{key}: expected a string, got {_kind(value)}")
        return value

    def opt_text(self, key: str) -> str | None:
        value = self._get(key, None)
        if value is not None and not isinstance(value, str):
            raise TraceError(f"{self.path}.{key}: expected a string or null, got {_kind(value)}")
        return value

    def num(self, key: str) -> int:
        return _int(self._get(key, _MISSING), f"{self.path}.{key}")

    def opt_num(self, key: str) -> int | None:
        value = self._get(key, None)
        return None if value is None else _int(value, f"{self.path}.{key}")

    def flag(self, key: str, default: object = _MISSING) -> bool:
        value = self._get(key, default)
        if not isinstance(value, bool):
            raise TraceError(f"{self.path}.{key}: expected true or false, got {_kind(value)}")
        return value

    def items(self, key: str, default: object = _MISSING) -> list[tuple[object, str]]:
        value = self._get(key, default)
        if not isinstance(value, list):
            raise TraceError(f"{self.path}.{key}: expected a list, got {_kind(value)}")
        return [(item, f"{self.path}.{key}[{n}]") for n, item in enumerate(value)]

    def opt_map(self, key: str) -> list[tuple[str, _Obj]] | None:
        value = self._get(key, None)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise TraceError(f"{self.path}.{key}: expected an object or null, got {_kind(value)}")
        out = []
        for name, entry in value.items():
            if not isinstance(name, str):  # pragma: no cover - JSON keys are strings
                raise TraceError(f"{self.path}.{key}: a key is not a string")
            out.append((name, _Obj(entry, f"{self.path}.{key}[{name!r}]")))
        return out


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _int(value: object, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TraceError(f"{path}: expected an integer, got {_kind(value)}")
    return value


def _call_ref(item: object, path: str, answered: bool) -> CallRef:
    o = _Obj(item, path)
    return CallRef(
        o.text("client"), o.num("call"), o.text("text"), o.opt_text("result") if answered else None
    )


def _step(item: object, path: str) -> TraceStep:
    o = _Obj(item, path)
    store = o.opt_map("store")
    gates = o.opt_map("gates")
    return TraceStep(
        index=o.num("index"),
        task=o.text("task"),
        point=o.text("point"),
        session=o.opt_text("session"),
        fault=o.flag("fault", False),
        fault_kind=o.text("fault_kind", ""),
        crash=o.flag("crash", False),
        invoked=tuple(_call_ref(i, p, False) for i, p in o.items("invoked", [])),
        answered=tuple(_call_ref(i, p, True) for i, p in o.items("answered", [])),
        store=None
        if store is None
        else {
            sid: StoreEntry(e.num("message_count"), e.opt_num("revision"), e.opt_num("updated_at"))
            for sid, e in store
        },
        gates=None
        if gates is None
        else {
            sid: GateEntry(e.flag("armed"), e.flag("archived"), e.opt_num("saved_revision"))
            for sid, e in gates
        },
        violations=tuple(
            StepViolation(v.text("rule"), v.text("message"))
            for v in (_Obj(i, p) for i, p in o.items("violations", []))
        ),
        notes=tuple(_text_item(i, p) for i, p in o.items("notes", [])),
        changed=o.flag("changed", False),
    )


def _text_item(item: object, path: str) -> str:
    if not isinstance(item, str):
        raise TraceError(f"{path}: expected a string, got {_kind(item)}")
    return item


def _call(item: object, path: str) -> TraceCall:
    o = _Obj(item, path)
    text = o.text("text")
    return TraceCall(
        id=o.num("id"),
        client=o.text("client"),
        op=o.text("op", text.split(" ", 1)[0]),
        session=o.opt_text("session"),
        text=text,
        invoked=o.num("invoked"),
        responded=o.opt_num("responded"),
        result=o.opt_text("result"),
        detail=o.text("detail", ""),
    )


def parse_trace(data: object) -> Trace:
    """Read a ``meerkat-ref/trace@1`` object (already JSON-decoded); ``TraceError`` if it is not."""
    o = _Obj(data, "trace")
    fmt = o.text("format")
    if fmt != FORMAT:
        raise TraceError(f"trace.format: expected {FORMAT!r}, got {fmt!r}")
    tasks = [_text_item(i, p) for i, p in o.items("tasks")]
    return Trace(
        title=o.text("title"),
        scenario=o.text("scenario"),
        about=o.text("about", ""),
        variant=o.text("variant"),
        target=o.text("target"),
        store=o.text("store"),
        tasks=tuple(tasks),
        setup=tuple(
            SetupCall(s.text("client"), s.text("text"), s.opt_text("result"))
            for s in (_Obj(i, p) for i, p in o.items("setup", []))
        ),
        steps=tuple(_step(i, p) for i, p in o.items("steps")),
        calls=tuple(_call(i, p) for i, p in o.items("calls")),
        violations=tuple(
            TraceViolation(v.text("rule"), v.num("step"), v.text("message"))
            for v in (_Obj(i, p) for i, p in o.items("violations"))
        ),
        replay=o.text("replay"),
    )


# -- cross-references -----------------------------------------------------------------------


def problems(trace: Trace) -> list[str]:
    """Where the trace contradicts itself: steps cited but absent, unknown tasks or calls.

    The current text swimlane cites steps its table does not have (the
    end-of-run checks, the restart, the read-back); a report must never do
    that silently, so every such citation is listed here.
    """
    found: list[str] = []
    indices = [s.index for s in trace.steps]
    for a, b in itertools.pairwise(indices):
        if b <= a:
            found.append(f"step {b} comes after step {a}: indices must increase")
    known = set(indices)
    tasks = set(trace.tasks)
    for dup in sorted({t for t in trace.tasks if trace.tasks.count(t) > 1}):
        found.append(f"task {dup!r} is listed twice")
    for step in trace.steps:
        if step.task not in tasks:
            found.append(f"step {step.index}: task {step.task!r} is not one of the tasks")
    ids = [c.id for c in trace.calls]
    for twice in sorted({i for i in ids if ids.count(i) > 1}):
        found.append(f"call id {twice} is used twice")
    by_id = {c.id: c for c in trace.calls}
    for call in trace.calls:
        for what, at in (("invoked", call.invoked), ("responded", call.responded)):
            if at is not None and at not in known:
                found.append(f"call {call.id} ({call.text}) is {what} at step {at}, not in steps")
        if call.responded is not None and call.responded < call.invoked:
            found.append(f"call {call.id} is answered before it is invoked")
    for step in trace.steps:
        for ref, attr in [(r, "invoked") for r in step.invoked] + [
            (r, "responded") for r in step.answered
        ]:
            named = by_id.get(ref.call)
            if named is None:
                found.append(f"step {step.index} names call {ref.call}, which is not in calls")
            elif getattr(named, attr) != step.index:
                found.append(
                    f"step {step.index} lists call {ref.call} as {attr} there; "
                    f"calls says step {getattr(named, attr)}"
                )
    listed = {(v.step, v.rule, v.message) for v in trace.violations}
    for v in trace.violations:
        if v.step not in known:
            found.append(f"violation {v.rule} cites step {v.step}, which is not in steps")
    for step in trace.steps:
        for sv in step.violations:
            if (step.index, sv.rule, sv.message) not in listed:
                found.append(f"step {step.index}: violation {sv.rule} is not in the top-level list")
    on_steps = {(s.index, v.rule, v.message) for s in trace.steps for v in s.violations}
    for v in trace.violations:
        if v.step in known and (v.step, v.rule, v.message) not in on_steps:
            found.append(f"violation {v.rule} at step {v.step} is missing from that step")
    return found


def archived_at(calls: Sequence[TraceCall]) -> dict[str, int]:
    """Session -> the first step at which an ``archive`` of it was answered ``ok``."""
    out: dict[str, int] = {}
    for call in calls:
        if (
            call.op == "archive"
            and call.session is not None
            and call.responded is not None
            and (call.result or "").startswith("ok")
        ):
            out[call.session] = min(out.get(call.session, call.responded), call.responded)
    return out
