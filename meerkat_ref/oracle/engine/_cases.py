"""Sequential cases: operation sequences with what each step must answer.

A case is a fresh service (capacity, persistent or not) and a list of steps.
Most steps are model operations, and what they must answer is the model's
(``expected_steps``): in wire form, with the clauses each step checks and the
one a difference is blamed on.  The rest are written in the adapter's own
terms, with the outcome stated by hand where the model cannot say it:

- ``Wire``: a raw command and its result: malformed input (``INVALID_ARGUMENT``
  or ``BAD_REQUEST``, rules IDS, INPUT and WIRE-FIELDS), and the calls of the
  hooks cases;
- ``Hook``: a scheduling-hooks step of a *hooks case* (``control``, ``release``
  one task, ``drive`` every task but some), which steers a race to the one
  interleaving a clarified rule is about (ARCHIVE's first step, the message
  HOST-MESSAGE drops) and checks the outcome the rule requires.

Every step also says what each session publishes during it ([EVENTS]): the
model's ``step_events`` for a model operation; stated by hand for a ``Wire``
or ``Hook`` step (nothing, unless it says otherwise).  A target that offers
``events`` is checked on them after every step.

Sources, all generated, none restated: the model's worked examples
(``models/examples.py``; an example that ``pins`` a clause reports every
difference under it), the malformed inputs and hooks cases below, and random
sequences drawn from the model's own state (``random_case``).
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ..._model import examples, model
from ...registry import (
    Count,
    Domain,
    Flag,
    OneOf,
    Pool,
    Sessions,
    at_once,
    draws,
    expand,
    operation,
    to_wire,
)
from ...registry._domains import undeclared, unknown_domain
from ...registry._values import Json, encode
from ..targets import PROTOCOL_CODES, dumps
from ._clauses import PROTOCOL

Published = tuple[tuple[str, model.News], ...]
"""What sessions publish during a step, by session id in order ([EVENTS]; ``model.step_events``)."""

SEED = 20250405
"""The random sequences' seed: case ``i`` draws from ``random.Random(SEED + i)``."""

RANDOM_CASES = 16
RANDOM_STEPS = 30


@dataclass(frozen=True)
class Wire:
    """A raw command, and its result stated by hand (an object may list only some keys).

    ``task`` labels the call's task (hooks cases hold or release it by name);
    ``completed`` lists the pending calls the step must end, as in the vectors;
    ``events`` what each session publishes meanwhile (by session; none if empty).
    """

    cmd: tuple[tuple[str, Json], ...]
    expect: Json
    clauses: tuple[str, ...]
    task: str | None = None
    completed: tuple[Json, ...] = ()
    events: Published = ()

    @staticmethod
    def of(expect: Json, clauses: tuple[str, ...], task: str | None = None,
           completed: tuple[Json, ...] = (), events: Published = (), **fields: Json) -> Wire:
        return Wire(tuple(fields.items()), expect, clauses, task, completed, events)

    def command(self) -> dict[str, Json]:
        return dict(self.cmd)

    @property
    def changes(self) -> bool:
        """Whether it may change the service (an error answer changes nothing)."""
        return not (isinstance(self.expect, dict) and "error" in self.expect)

    @property
    def waits_on(self) -> str | None:
        """The session a pending call of this step is listed under when it completes."""
        if isinstance(self.expect, dict) and isinstance(self.expect.get("pending"), str):
            return str(self.expect["pending"])
        session = dict(self.cmd).get("session")
        return session if isinstance(session, str) else None

    def __repr__(self) -> str:
        task = f", task={self.task!r}" if self.task else ""
        return f"Wire({json.dumps(self.command())}{task})"


@dataclass(frozen=True)
class Hook:
    """A scheduling-hooks step: ``control`` (on/off), ``release`` (a label), ``drive`` (hold these),
    ``exit`` (leave the service as a program does; capability ``exit``).

    ``drive`` releases, one at a time with a settle after each, the parked task
    with the lowest label that is not held, until only held tasks are parked.
    """

    kind: Literal["control", "release", "drive", "exit"]
    arg: Json
    clauses: tuple[str, ...]
    completed: tuple[Json, ...] = ()
    events: Published = ()  # what each session publishes while the step runs [EVENTS]

    def to_json(self) -> dict[str, Json]:
        if self.kind == "drive":
            return {"drive": {"hold": self.arg}}
        return {self.kind: self.arg}

    def __repr__(self) -> str:
        return f"Hook({json.dumps(self.to_json())})"


def invalid(clauses: tuple[str, ...] = ("INPUT", "WIRE-FIELDS"), **fields: Json) -> Wire:
    """A command with a well-shaped value the contract rejects: ``INVALID_ARGUMENT``."""
    return Wire.of({"error": "INVALID_ARGUMENT"}, clauses, **fields)


def bad_request(**fields: Json) -> Wire:
    """A command whose shape is wrong: ``BAD_REQUEST`` (rule WIRE-FIELDS)."""
    return Wire.of({"error": "BAD_REQUEST"}, ("WIRE-FIELDS",), **fields)


Step = model.Op | Wire | Hook


@dataclass(frozen=True)
class Case:
    name: str
    about: str
    capacity: Json  # an int of at least 1, unless ``refused`` says the open is refused
    persistent: bool
    ops: tuple[Step, ...]
    pins: str = ""  # a clause every difference in this case is reported under first
    hooks: bool = False  # needs the adapter's scheduling hooks (capability ``points``)
    refused: str = ""  # the error ``open`` answers (its capacity is the service's to refuse)


BAD_ID = "not-a-uuid"
S1 = model.sid(1)
S2 = model.sid(2)

NON_CANONICAL_IDS: tuple[str, ...] = (
    S1[:-1] + "A",  # upper case (session 10: counter ids have no letters to raise)
    "{" + S1 + "}",
    "urn:uuid:" + S1,
    S1.replace("-", ""),
    " " + "0" * 30 + "1",  # int(text, 16) skips a leading space...
    "0" * 28 + "_001",  # ...and takes "_" between digits
)
"""Texts Python's ``uuid.UUID`` reads as a UUID (all but the first as session 1); none is
canonical text, so each is ``INVALID_ARGUMENT`` (clause IDS)."""


def _ids(cmd: str, **fields: Json) -> tuple[Wire, ...]:
    return tuple(invalid(("IDS", "INPUT", "WIRE-FIELDS"), cmd=cmd, session=text, **fields)
                 for text in NON_CANONICAL_IDS)


INPUT_CASES: tuple[Case, ...] = (
    Case(
        "invalid-arguments",
        "malformed input is rejected before anything is touched",
        2,
        True,
        (
            model.Create("a"),
            invalid(cmd="read", session=BAD_ID),
            invalid(cmd="start_turn", session="s1", prompt="x"),
            invalid(cmd="archive", session=""),
            invalid(cmd="interrupt", session=BAD_ID),
            invalid(cmd="inject", session=BAD_ID, text="x"),
            invalid(cmd="load_persisted", session=BAD_ID),
            invalid(cmd="list", limit=-1),
            invalid(cmd="list", offset=-2),
            invalid(cmd="create", prompt="x", model=""),
            invalid(cmd="create", prompt="x", model="  "),
            model.Read(1),
            model.List(),
            model.Create("b"),
        ),
    ),
    Case(
        "session-id-text",
        "an id is canonical UUID text, nothing else: other spellings of a live id are refused",
        2,
        True,
        (
            model.Create("a"),
            *_ids("read"),
            *_ids("start_turn", prompt="x"),
            *_ids("archive"),
            model.Read(1),
            model.List(),
        ),
        pins="IDS",
    ),
    Case(
        "bad-request-or-invalid-argument",
        "a command of the wrong shape is BAD_REQUEST (enum values, unknown fields, types); "
        "a well-shaped value the contract rejects is INVALID_ARGUMENT",
        2,
        True,
        (
            model.Create("a"),
            bad_request(cmd="create", prompt="x", initial_turn="later"),
            bad_request(cmd="create", prompt="x", initial_turn=None),
            bad_request(cmd="create", prompt="x", bogus=1),
            bad_request(cmd="create", prompt="x", hostmode=True),
            bad_request(cmd="create"),
            bad_request(cmd="create", prompt=7),
            bad_request(cmd="start_turn", session=S1, prompt="x", host_mode=1),
            bad_request(cmd="read", session=1),
            bad_request(cmd="read", session=S1, extra=None),
            bad_request(cmd="list", limit="2"),
            bad_request(cmd="list", limit=1.5),
            bad_request(cmd="list", limit=True),
            bad_request(cmd="archive"),
            bad_request(cmd="cancel_all_checkpointers", session=S1),
            invalid(("WIRE-FIELDS", "INPUT"), cmd="list", limit=-1),
            invalid(("WIRE-FIELDS", "INPUT"), cmd="create", prompt="x", model=""),
            model.Read(1),
            model.List(),
            model.Create("b"),
            model.Read(2),
        ),
    ),
)
"""Malformed input: wire-level, so not among the model's examples."""

BAD_CAPACITIES: tuple[Json, ...] = (0, -3, True, 1.5, "2", None, [2])
"""Capacities the service refuses when it is built ([INPUT]: not an integer of at least 1;
``true`` is not an integer); ``open`` passes them on and answers the service's refusal."""

OPEN_CASES: tuple[Case, ...] = tuple(
    Case(f"open-refused-{i + 1}",
         f"a service with capacity {json.dumps(capacity)} is refused when it is built",
         capacity, i % 2 == 0, (), refused="INVALID_ARGUMENT")
    for i, capacity in enumerate(BAD_CAPACITIES)
)
"""One case per refused capacity, both kinds of service: the open alone, nothing after it."""

def _ev(kind: str, text: str = "", usage: tuple[int, int] = (0, 0)) -> model.Event:
    return model.Event(kind, text, *usage)


def _turn(prompt: str) -> tuple[model.Event, ...]:
    """A scripted turn's events, stated by hand ([EVENTS]; one-word prompts: usage 2, 3)."""
    reply = f"echo: {prompt}"
    return (_ev(model.RUN_STARTED, prompt), _ev(model.TEXT_COMPLETE, reply, (2, 3)),
            _ev(model.RUN_COMPLETED, reply, (2, 3)))


def _of_s1(*events: model.Event, ended: bool = False) -> Published:
    return ((S1, model.News(events, ended=ended)),)


ARCHIVE_CREATED: Json = {"ok": {"session_id": S1, "text": "echo: hello", "input_tokens": 2,
                                "output_tokens": 3, "turns": 1}}

HOOKS_CASES: tuple[Case, ...] = (
    Case(
        "archive-before-the-store-answers",
        "an archive of an id not yet created, held at its first point (before the store has "
        "answered), must not refuse the create that takes the id: the create runs and is "
        "saved, then the archive finds and archives it",
        2,
        True,
        (
            Hook("control", True, ("ARCHIVE",)),
            Wire.of({"pending": S1}, ("ARCHIVE",), task="a", cmd="archive", session=S1),
            Wire.of({"pending": S1}, ("ARCHIVE",), task="c", cmd="create", prompt="hello"),
            Hook("drive", ["a"], ("ARCHIVE", "CREATE"),
                 completed=({"session": S1, "result": ARCHIVE_CREATED},),
                 events=_of_s1(*_turn("hello"))),
            Hook("control", False, ("ARCHIVE",),
                 completed=({"session": S1, "result": {"ok": None}},),
                 events=_of_s1(ended=True)),
            Wire.of({"error": "SESSION_NOT_FOUND"}, ("ARCHIVE-FINAL", "ARCHIVE"),
                    cmd="read", session=S1),
            Wire.of({"ok": None}, ("ARCHIVE-FINAL", "ARCHIVE"), cmd="load_persisted",
                    session=S1),
        ),
        pins="ARCHIVE",
        hooks=True,
    ),
    Case(
        "host-message-interrupted-mid-serve",
        "an interrupt lands while the host loop serves x (its user message pushed, no reply "
        "yet): x is dropped, its user message stays, y (still queued) waits for the next "
        "host loop, which serves its prompt and then y only",
        1,
        True,
        (
            model.Create("serve", host_mode=True),
            Hook("control", True, ("HOST-MESSAGE",)),
            Wire.of({"ok": None}, ("HOST-MESSAGE",), task="i", cmd="inject", session=S1,
                    text="x"),
            Hook("release", "session s1", ("HOST-MESSAGE",),
                 events=_of_s1(_ev(model.HOST_MESSAGE, "x"))),
            Wire.of({"ok": None}, ("HOST-MESSAGE",), cmd="inject", session=S1, text="y"),
            Wire.of({"ok": {"message_count": 3, "is_active": True,
                            "last_assistant_text": "echo: serve"}},
                    ("HOST-MESSAGE", "READ"), cmd="read", session=S1),
            Wire.of({"ok": None}, ("INTERRUPT", "HOST-MESSAGE"), cmd="interrupt", session=S1,
                    completed=({"session": S1, "result": {"error": "AGENT_ERROR"}},),
                    events=_of_s1(_ev(model.RUN_CANCELLED))),
            Hook("control", False, ("HOST-MESSAGE",)),
            Wire.of({"ok": {"message_count": 3, "is_active": False,
                            "last_assistant_text": "echo: serve"}},
                    ("HOST-MESSAGE", "INTERRUPT"), cmd="read", session=S1),
            Wire.of({"pending": S1}, ("HOST", "HOST-MESSAGE"), cmd="start_turn", session=S1,
                    prompt="again", host_mode=True,
                    events=_of_s1(*_turn("again"), _ev(model.HOST_MESSAGE, "y"),
                                  _ev(model.TEXT_COMPLETE, "echo: y", (2, 3)))),
            Wire.of({"ok": {"message_count": 7, "is_active": True,
                            "last_assistant_text": "echo: y"}},
                    ("HOST-MESSAGE",), cmd="read", session=S1),
            Wire.of({"ok": None}, ("INTERRUPT",), cmd="interrupt", session=S1,
                    completed=({"session": S1, "result": {"error": "AGENT_ERROR"}},),
                    events=_of_s1(_ev(model.RUN_CANCELLED))),
            Wire.of({"ok": {"message_count": 7, "is_active": False}}, ("HOST-MESSAGE",),
                    cmd="read", session=S1),
        ),
        pins="HOST-MESSAGE",
        hooks=True,
    ),
    Case(
        "exit-while-a-create-builds",
        "the program leaves the service while a create is building its agent: the live "
        "session's task is stopped (its stream ends), and the create, once its build "
        "returns, is refused (AGENT_ERROR: the service is shutting down) and leaves "
        "nothing behind",
        2,
        True,
        (
            model.Create("kept"),
            Hook("control", True, ("SHUTDOWN",)),
            Wire.of({"pending": S2}, ("SHUTDOWN",), task="c", cmd="create", prompt="late"),
            Hook("exit", True, ("SHUTDOWN",), events=_of_s1(ended=True)),
            Hook("release", "c", ("SHUTDOWN", "CREATE"),
                 completed=({"session": S2, "result": {"error": "AGENT_ERROR"}},)),
            Hook("control", False, ("SHUTDOWN",)),
        ),
        pins="SHUTDOWN",
        hooks=True,
    ),
)
"""Races steered through the hooks to the interleaving a clarified rule is about."""


def needs_exit(case: Case) -> bool:
    """Whether ``case`` leaves the service (capability ``exit``)."""
    return any(isinstance(op, Hook) and op.kind == "exit" for op in case.ops)


def example_cases() -> tuple[Case, ...]:
    """The model's worked examples (``models/examples.py``), malformed inputs, hooks cases."""
    worked = tuple(
        Case(e.name, e.about, e.capacity, e.persistent, e.ops, pins=e.pins)
        for e in examples.EXAMPLES
    )
    return worked + INPUT_CASES + OPEN_CASES + HOOKS_CASES


# -- random sequences -----------------------------------------------------------------------

PROMPTS = ("a", "b c", "d e f", "", "/compact", "/fail", "/fail-build")  # a turn never compacts
TEXTS = ("x", "/compact", "y z", "")
PAGES = (None, 0, 1, 2)
POOLS: dict[str, tuple[Json, ...]] = {"prompt": PROMPTS, "text": TEXTS, "page": PAGES}
"""The random draw's values for each named pool of the registry's domains."""


def random_op(rng: random.Random, state: model.State, faults: bool = False) -> model.Op:
    """One operation drawn from what the model's state makes interesting.

    The kinds, their weights and their arguments' domains are the registry's
    declarations (``registry.draws``), interpreted here; ``faults`` adds the
    kinds drawn only with faults (``FailNextSave``; without it, the draws are
    exactly those the checked-in random vectors were made with).
    """
    kinds = [d for d in draws() for _ in range(d.draw.weight)
             if (state.persistent or not d.draw.persistent) and (faults or not d.draw.faults)]
    kind = rng.choice(kinds)
    known = Sessions.known(state)

    def value(attr: str, domain: Domain) -> object:
        match domain:
            case Sessions():
                if known and rng.random() < 0.8:
                    return rng.choice(known)
                return rng.randint(1, state.next_id)
            case Pool(name=name) if name in POOLS:
                return rng.choice(POOLS[name])
            case OneOf(values=values):
                return rng.choice(values)
            case Flag(p=p):
                return rng.random() < p
            case Count(low=low, high=high):
                return rng.randint(low, high)
        raise unknown_domain(kind.name, attr, domain, "the vectors' random draw")

    op: model.Op = kind.build({attr: value(attr, domain) for attr, domain in kind.args})
    return op


def random_case(seed: int, steps: int, name: str, faults: bool = False) -> Case:
    """A sequence drawn from ``random.Random(seed)``, each op from the model's state so far."""
    rng = random.Random(seed)
    capacity = rng.randint(1, 3)
    persistent = rng.random() < 0.8
    state = model.init(capacity, persistent)
    ops: list[Step] = []
    for _ in range(steps):
        op = random_op(rng, state, faults)
        ops.append(op)
        _, state = model.step(state, op)
    about = f"random.Random({seed}): {steps} operations drawn from the model's state"
    return Case(name, about, capacity, persistent, tuple(ops))


def random_cases(
    seed: int = SEED, count: int = RANDOM_CASES, steps: int = RANDOM_STEPS, prefix: str = "random",
    faults: bool = False,
) -> tuple[Case, ...]:
    return tuple(random_case(seed + i, steps, f"{prefix}-{seed + i}", faults)
                 for i in range(count))


def needs_faults(case: Case) -> bool:
    """Whether ``case`` asks the store for faults (a target needs the ``faults`` capability)."""
    return any(isinstance(op, model.FailNextSave) for op in case.ops)


# -- from a case to its expected results ---------------------------------------------------


@dataclass(frozen=True)
class ExpectedStep:
    """One step in wire form, with what the model says and what it checks."""

    commands: tuple[dict[str, Json], ...]
    at_once: bool
    expect: Json
    completed: tuple[Json, ...]
    checks: tuple[str, ...]
    op: Step
    before: model.State
    events: Published = ()

    def to_json(self) -> dict[str, Json]:
        out: dict[str, Json] = {}
        if isinstance(self.op, Hook):
            out.update(self.op.to_json())
        elif self.at_once:
            out["at_once"] = list(self.commands)
        else:
            out["op"] = self.commands[0]
            if isinstance(self.op, Wire) and self.op.task is not None:
                out["task"] = self.op.task
        if not isinstance(self.op, Hook):
            out["expect"] = self.expect
        if self.completed:
            out["completed"] = list(self.completed)
        if self.events:
            out["events"] = {sid: encode(news) for sid, news in self.events}
        out["checks"] = list(self.checks)
        out["model"] = repr(self.op)
        return out


def pending_session(op: Step, state: model.State) -> str | None:
    """The session a call of ``op`` would wait on, if it stayed pending."""
    if isinstance(op, Wire):
        return op.waits_on
    if isinstance(op, model.Create):
        return model.sid(state.next_id)
    if isinstance(op, model.StartTurn | model.TurnsAtOnce):
        return model.sid(op.id)
    return None


def expected_steps(case: Case) -> list[ExpectedStep]:
    """Step the model through ``case``; raise if one of its invariants breaks.

    ``Wire`` and ``Hook`` steps carry their outcome themselves; once one of
    them may have changed the service, the model no longer knows its state,
    so no model operation may follow (an ``AssertionError`` says so).
    """
    if case.refused:
        return []  # the open is refused: nothing runs after it
    assert isinstance(case.capacity, int), case
    state = model.init(case.capacity, case.persistent)
    out: list[ExpectedStep] = []
    scripted = False
    for op in case.ops:
        if isinstance(op, Wire | Hook):
            commands = (op.command(),) if isinstance(op, Wire) else ()
            expect = op.expect if isinstance(op, Wire) else None
            checks = _pinned(case, [*op.clauses, *(["EVENTS"] if op.events else [])])
            out.append(ExpectedStep(commands, False, expect, op.completed, checks, op, state,
                                    op.events))
            scripted = scripted or isinstance(op, Hook) or op.changes
            continue
        if scripted:
            raise AssertionError(f"{case.name}: {op!r} follows a scripted step that changed "
                                 "the service: the model cannot say what it answers")
        result, after, events = model.step_events(state, op)
        broken = model.violations(after)
        if broken:
            raise AssertionError(f"{case.name}: {op!r} breaks the model's invariants {broken}")
        clauses = step_clauses(op, state, result)
        if _has_error(result):
            clauses.append("ERRORS")
        if events:
            clauses.append("EVENTS")
        out.append(
            ExpectedStep(
                tuple(op_commands(op)),
                at_once(op),
                result_json(result, pending_session(op, state)),
                tuple(completed_json(after.completed)),
                _pinned(case, clauses),
                op,
                state,
                events,
            )
        )
        state = after
    return out


def _pinned(case: Case, clauses: list[str]) -> tuple[str, ...]:
    """The step's clauses, the case's pinned clause first (a difference is reported under it)."""
    ordered = [case.pins, *clauses] if case.pins else clauses
    return tuple(dict.fromkeys(ordered))


def _has_error(result: model.Result) -> bool:
    if isinstance(result, model.Many):
        return any(_has_error(r) for r in result.results)
    return isinstance(result, model.Err)


def op_commands(op: model.Op) -> list[dict[str, Json]]:
    """The commands a model operation stands for (several, sent at once, for ``*AtOnce``)."""
    return [to_wire(o) for o in expand(op)]


def result_json(result: model.Result, session: str | None = None) -> Json:
    """A model result as a wire result; ``session`` names the session of a pending call."""
    match result:
        case model.Ok(value=value):
            return {"ok": encode(value)}
        case model.Err(code=code):
            return {"error": code}
        case model.Pending():
            return {"pending": session}
        case model.Crashed():
            return {"crashed": True}
        case model.Many(results=results):
            return [result_json(r, session) for r in results]
    raise TypeError(f"not a model result: {result!r}")


def completed_json(completed: Sequence[tuple[str, model.Result]]) -> list[Json]:
    return [{"session": s, "result": result_json(r)} for s, r in completed]


def step_clauses(op: model.Op, before: model.State, result: model.Result) -> list[str]:
    """The clauses a step checks, the one a difference is reported under first.

    An operation's own ``clauses`` (its declaration in the registry), refined
    here where the state before the step or its answer says more (an archived
    session, a refused save, a busy turn...); the calls made at once are the
    model's alone.  An operation that declares none is a ``DomainError``.
    """
    live = dict(before.live)
    store = dict(before.store)
    persisted = ["DURABILITY"] if before.persistent else []

    def target(n: int) -> str:
        return model.sid(n)

    if result == model.Err(model.STORE_ERROR):
        return ["SAVE-FAILED", "DURABILITY"]  # a refused save: done, live, not stored
    match op:
        case model.Create(defer=defer, host_mode=host):
            if isinstance(result, model.Err):
                return ["CAPACITY"]
            if defer or host:
                return ["DEFER" if defer else "HOST", "IDS", "TIME", *persisted]
        case model.CreatesAtOnce():
            return ["CAPACITY", "IDS", "ATOMIC"]
        case model.StartTurn(id=n):
            if target(n) in before.archived and isinstance(result, model.Err):
                return ["ARCHIVE-FINAL", "TURN"]
            if result == model.Err(model.BUSY):
                return ["TURN-BUSY"]
            if isinstance(result, model.Pending):
                return ["HOST", "TURN"]
        case model.TurnsAtOnce():
            return ["TURN-BUSY", "ATOMIC"]
        case model.HostMessage(id=n, text=text):
            if target(n) in before.archived and isinstance(result, model.Err):
                return ["ARCHIVE-FINAL", "HOST-MESSAGE"]
            running = target(n) in live and live[target(n)].running
            if running and text == model.COMPACT:
                return ["COMPACT", "HOST-MESSAGE", "CHECKPOINT"]
            return ["HOST-MESSAGE"] + (["CHECKPOINT"] if running and before.persistent else [])
        case model.Interrupt() if result == model.Err(model.NOT_RUNNING):
            return ["INTERRUPT-RUNNING"]
        case model.Read(id=n):
            if target(n) in before.archived:
                return ["ARCHIVE-FINAL", "READ"]
            if target(n) not in live and target(n) in store:
                return ["READ-FALLBACK", "READ"]
        case model.List(offset=offset, limit=limit):
            extra = ["ARCHIVE-FINAL"] if before.archived else []
            if offset is not None or limit is not None:
                return ["LIST-PAGE", "LIST-ORDER", "LIST", *extra]
            return ["LIST", "LIST-ORDER", *extra]
        case model.Archive(id=n) if target(n) in live and live[target(n)].running:
            return ["ARCHIVE-STOP", "ARCHIVE", "ARCHIVE-FINAL", "LIVE-TASK"]
        case model.LoadPersisted(id=n) if target(n) in before.archived and before.persistent:
            return ["ARCHIVE-FINAL", "LOAD-PERSISTED"]
        case model.ObserveStore() if before.archived:
            return ["DURABILITY", "CHECKPOINT", "ARCHIVE-FINAL"]
    entry = operation(op)
    if not entry.clauses:
        raise undeclared(entry.name, "clauses", "give its Operation clauses=(...): the clauses "
                         "of spec/CONTRACT.md a step of it checks, the first blamed")
    # a create or a plain turn saves before it answers, on a persistent service
    saves = persisted if isinstance(op, model.Create | model.StartTurn) else []
    return [*entry.clauses, *saves]


def _shown_ids(value: Json) -> set[str]:
    """Session ids an answer shows (a view, a list, a stored session map)."""
    if isinstance(value, dict):
        if isinstance(value.get("session_id"), str):
            return {value["session_id"]}
        return {k for k in value if _is_uuid(k)}
    if isinstance(value, list):
        return {r["session_id"] for r in value if isinstance(r, dict) and "session_id" in r}
    return set()


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _only_differ_in(expected: Json, actual: Json, keys: set[str]) -> bool:
    """Whether two answers are the same except, somewhere inside, for ``keys``."""

    def strip(value: Json) -> Json:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in keys}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return matches(strip(expected), strip(actual))


def blame(
    op: model.Op,
    before: model.State,
    clauses: Sequence[str],
    want: Json,
    got: Json,
    completed_differs: bool = False,
) -> str:
    """The clause a difference between ``want`` and ``got`` is reported under.

    ``clauses`` are the step's (``step_clauses``); the first is the default.
    A call the model answers that is still pending at quiescence is a
    LIVENESS failure (spec/ADAPTER.md section 8), whatever the step.
    """
    if _pendings(got) > _pendings(want):
        return "LIVENESS"
    if completed_differs and not isinstance(op, model.Restart):
        if isinstance(op, model.Archive):
            return "ARCHIVE-STOP"
        if isinstance(op, model.Interrupt):
            return "INTERRUPT"
        return clauses[0]
    if isinstance(got, dict) and "ok" in got and before.archived:
        shown = _shown_ids(got["ok"])
        if isinstance(op, model.LoadPersisted) and got["ok"] is not None:
            shown.add(model.sid(op.id))
        if shown & before.archived:
            return "ARCHIVE-FINAL"
    if isinstance(want, dict) and isinstance(got, dict) and "ok" in want and "ok" in got:
        w, g = want["ok"], got["ok"]
        if (
            isinstance(op, model.List)
            and isinstance(w, list)
            and isinstance(g, list)
            and sorted(map(dumps, w)) == sorted(map(dumps, g))
        ):
            return "LIST-ORDER"
        if isinstance(op, model.ObserveStore) and isinstance(w, dict) and isinstance(g, dict):
            return _store_blame(before, w, g)
        if _only_differ_in(w, g, {"created_at", "updated_at"}):
            return "TIME"
        if _only_differ_in(w, g, {"session_id"}):
            return "IDS"
    return clauses[0]


def _pendings(result: Json) -> int:
    """How many calls of a step's result are pending."""
    if isinstance(result, list):
        return sum(_pendings(r) for r in result)
    return int(isinstance(result, dict) and "pending" in result)


def wire_blame(step: Wire | Hook, clauses: Sequence[str], want: Json, got: Json) -> str:
    """The clause a difference in a ``Wire`` or ``Hook`` step is reported under.

    LIVENESS for a call left pending that must answer; WIRE-FIELDS when the
    two codes are ``BAD_REQUEST`` and ``INVALID_ARGUMENT`` swapped (the rule
    that tells them apart); else the step's first clause.
    """
    if isinstance(step, Wire) and _pendings(got) > _pendings(want):
        return "LIVENESS"
    codes = {"BAD_REQUEST", "INVALID_ARGUMENT"}
    want_code = want.get("error") if isinstance(want, dict) else None
    got_code = got.get("error") if isinstance(got, dict) else None
    if want_code in codes and got_code in codes and want_code != got_code:
        return "WIRE-FIELDS"
    if got_code in PROTOCOL_CODES and got_code != want_code:
        return PROTOCOL  # not an answer the contract has: the protocol broke
    return clauses[0]


def _store_blame(before: model.State, want: dict[str, Json], got: dict[str, Json]) -> str:
    live = dict(before.live)
    for sid in sorted(set(want) | set(got)):
        w, g = want.get(sid), got.get(sid)
        if matches(w, g):
            continue
        if g is not None and sid in before.archived:
            return "ARCHIVE-FINAL"
        session = live.get(sid)
        if session is not None and not session.armed and g is not None and w is not None:
            return "CHECKPOINT-GATE"
        if session is not None and session.running:
            return "CHECKPOINT"
        return "DURABILITY"
    return "DURABILITY"
# -- comparison ----------------------------------------------------------------------------


def matches(expected: Json, actual: Json) -> bool:
    """Whether ``actual`` is ``expected``: objects may carry extra keys; bools are not ints."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and matches(v, actual[k]) for k, v in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(matches(e, a) for e, a in zip(expected, actual, strict=True))
        )
    if isinstance(expected, bool) or isinstance(actual, bool):
        return isinstance(expected, bool) and isinstance(actual, bool) and expected == actual
    return bool(type(expected) is type(actual) and expected == actual)


def matches_multiset(expected: Sequence[Json], actual: Sequence[Json]) -> bool:
    """Results of calls made at once: some pairing matches each expected to one actual."""
    if len(expected) != len(actual):
        return False

    def pair(i: int, used: frozenset[int]) -> bool:
        if i == len(expected):
            return True
        return any(
            j not in used and matches(expected[i], a) and pair(i + 1, used | {j})
            for j, a in enumerate(actual)
        )

    return pair(0, frozenset())


