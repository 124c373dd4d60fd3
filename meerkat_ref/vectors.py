"""Conformance vectors: operation sequences with the results the contract requires.

    meerkat-ref vectors [--out spec/vectors] [--check]

Generated, never written by hand, and checked in (``spec/vectors/``), so a port
in any language can replay them without Python:

``sequential-curated.json``
    A curated set of sequences that together make every operation and every
    error code the model can give (plus ``INVALID_ARGUMENT`` for malformed
    input), each step's expected result computed by ``models.sessions.step``.
``sequential-random.json``
    Pseudo-random sequences drawn from the model's state with
    ``random.Random(SEED + i)``: fixed here, so the file never changes unless
    the model or the generator does.
``concurrent.json``
    For each of the seed's four windows, the explorer's minimal
    counterexample (variant ``seed-0.4.0:<window>``): the scenario, each
    client's operations, the schedule (which task ran at each scheduling
    point), and the expected outcome -- the reference passes (no
    violations), the seed variant violates the listed rules.

The format is ``meerkat-ref/vectors@1``, documented by ``spec/vectors.schema.json``
and ``spec/ADAPTER.md``; commands and results are the adapter protocol's.
``--check`` regenerates everything in memory and exits 1 if any file differs.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ._model import (
    Archive,
    CancelAllCheckpointers,
    Create,
    CreatesAtOnce,
    HostMessage,
    Interrupt,
    List,
    LoadPersisted,
    ObserveStore,
    Op,
    Read,
    RearmAllCheckpointers,
    Restart,
    StartTurn,
    State,
    TurnsAtOnce,
    model,
)
from .conform._wire import (
    VECTORS_FORMAT,
    Json,
    at_once,
    completed_json,
    op_commands,
    result_json,
    step_clauses,
)
from .explore._control import Choice, Parked
from .explore._runner import Budget

SEED = 20250405
"""The random sequences' seed: case ``i`` draws from ``random.Random(SEED + i)``."""

RANDOM_CASES = 16
RANDOM_STEPS = 30

GENERATOR = "meerkat-ref vectors"
CONTRACT = "meerkat-session 0.4.0"


@dataclass(frozen=True)
class Invalid:
    """A command with malformed input: rejected with ``INVALID_ARGUMENT``, nothing touched."""

    cmd: tuple[tuple[str, Json], ...]

    @staticmethod
    def of(**fields: Json) -> Invalid:
        return Invalid(tuple(fields.items()))

    def command(self) -> dict[str, Json]:
        return dict(self.cmd)

    def __repr__(self) -> str:
        return f"Invalid({json.dumps(self.command())})"


Step = Op | Invalid


@dataclass(frozen=True)
class Case:
    name: str
    about: str
    capacity: int
    persistent: bool
    ops: tuple[Step, ...]


# -- the curated set -------------------------------------------------------------------------

BAD_ID = "not-a-uuid"

CURATED: tuple[Case, ...] = (
    Case(
        "create-and-read",
        "a create runs its first turn, is saved before it returns, reads back",
        2,
        True,
        (Create("hello world"), Read(1), LoadPersisted(1), List(), ObserveStore()),
    ),
    Case(
        "create-system-prompt",
        "a system prompt is message 1",
        2,
        True,
        (Create("a", system_prompt="be brief"), Read(1), LoadPersisted(1)),
    ),
    Case(
        "create-deferred",
        "a deferred create runs no turn and (persistent) is stored at once",
        2,
        True,
        (Create("later", defer=True), Read(1), LoadPersisted(1), StartTurn(1, "now"), Read(1)),
    ),
    Case(
        "capacity",
        "capacity is checked first (no id, no tick); archive frees a slot",
        1,
        True,
        (Create("a"), Create("b"), Archive(1), Create("c"), Read(2), List()),
    ),
    Case(
        "creates-at-once",
        "of creates made at once exactly min(count, free) succeed",
        2,
        True,
        (CreatesAtOnce(3), List(), CreatesAtOnce(2), Archive(2), CreatesAtOnce(2, "z")),
    ),
    Case(
        "turn",
        "turns on unknown and live sessions; usage and times follow the prompt",
        2,
        True,
        (
            StartTurn(1, "a"),
            Create("a"),
            StartTurn(2, "b"),
            StartTurn(1, "c d"),
            StartTurn(1, ""),
            Read(1),
            LoadPersisted(1),
        ),
    ),
    Case(
        "turns-at-once",
        "turn admission is atomic: one of the turns made at once wins",
        2,
        True,
        (Create("a"), TurnsAtOnce(1, "b", count=3), Read(1), LoadPersisted(1)),
    ),
    Case(
        "turn-busy-host",
        "a serving host loop keeps its session busy until interrupted",
        2,
        True,
        (
            Create("serve", host_mode=True),
            StartTurn(1, "b"),
            TurnsAtOnce(1, "c", count=2),
            Read(1),
            Interrupt(1),
            StartTurn(1, "d"),
            TurnsAtOnce(1, "e", host_mode=True, count=2),
            Interrupt(1),
        ),
    ),
    Case(
        "host-messages",
        "a serving host loop takes each message at once and checkpoints it",
        2,
        True,
        (
            Create("serve", host_mode=True),
            HostMessage(1, "x y"),
            Read(1),
            ObserveStore(),
            HostMessage(1, "/compact"),
            ObserveStore(),
            Interrupt(1),
            Read(1),
            LoadPersisted(1),
        ),
    ),
    Case(
        "host-inbox",
        "messages to an idle session wait for its next host loop, in order",
        2,
        True,
        (
            Create("a"),
            HostMessage(1, "x"),
            HostMessage(1, "y"),
            Read(1),
            StartTurn(1, "serve", host_mode=True),
            Read(1),
            ObserveStore(),
            Interrupt(1),
            HostMessage(1, ""),
            Read(1),
        ),
    ),
    Case(
        "host-message-not-found",
        "there is no injector for an unknown or archived session",
        2,
        True,
        (HostMessage(1, "x"), Create("a"), Archive(1), HostMessage(1, "x")),
    ),
    Case(
        "interrupt",
        "interrupt: not found, not running, then it cancels a host loop",
        2,
        True,
        (
            Interrupt(1),
            Create("a"),
            Interrupt(1),
            StartTurn(1, "serve", host_mode=True),
            Interrupt(1),
            Interrupt(1),
            Read(1),
        ),
    ),
    Case(
        "read-fallback",
        "after a restart a stored session reads back inactive; no turn on it",
        2,
        True,
        (
            Create("a"),
            StartTurn(1, "b c"),
            Restart(),
            Read(1),
            List(),
            StartTurn(1, "x"),
            LoadPersisted(1),
            Interrupt(1),
        ),
    ),
    Case(
        "archive-live",
        "archive is final: no read, list, load, turn or store shows the session",
        2,
        True,
        (
            Create("a"),
            Create("b"),
            Archive(1),
            Read(1),
            List(),
            LoadPersisted(1),
            StartTurn(1, "x"),
            Archive(1),
            ObserveStore(),
            Restart(),
            Read(1),
        ),
    ),
    Case(
        "archive-stored-only",
        "archive of a session that is only in the store",
        2,
        True,
        (
            Create("a"),
            Restart(),
            Archive(1),
            Read(1),
            List(),
            Restart(),
            Read(1),
            LoadPersisted(1),
            Archive(1),
        ),
    ),
    Case(
        "archive-host-loop",
        "archive ends a serving host loop; its call answers AGENT_ERROR",
        2,
        True,
        (
            Create("serve", host_mode=True),
            HostMessage(1, "x"),
            Archive(1),
            HostMessage(1, "y"),
            Interrupt(1),
            Read(1),
            ObserveStore(),
            Create("b"),
        ),
    ),
    Case(
        "archive-not-found",
        "archive of a session neither live nor stored",
        2,
        True,
        (Archive(1), Create("a"), Archive(2), Read(1)),
    ),
    Case(
        "list-order-and-pages",
        "newest updated_at first, ties by id; merged, then paged",
        3,
        True,
        (
            Create("a"),
            Create("b", defer=True),
            Create("c"),
            StartTurn(1, "d"),
            Restart(),
            Create("e", defer=True),
            List(),
            List(0, 1),
            List(1, 1),
            List(1, None),
            List(None, 2),
            List(2, 2),
            List(9, 1),
            List(0, 0),
        ),
    ),
    Case(
        "list-live-over-stored",
        "a live session shows its live state, not its stored copy",
        2,
        True,
        (
            Create("serve", host_mode=True),
            CancelAllCheckpointers(),
            HostMessage(1, "x"),
            List(),
            Read(1),
            ObserveStore(),
            LoadPersisted(1),
        ),
    ),
    Case(
        "stop-resume",
        "disarmed checkpointers write nothing; turn saves still do; rearm resumes",
        2,
        True,
        (
            Create("serve", host_mode=True),
            CancelAllCheckpointers(),
            HostMessage(1, "x"),
            ObserveStore(),
            RearmAllCheckpointers(),
            HostMessage(1, "y"),
            ObserveStore(),
            Create("later", defer=True),
            CancelAllCheckpointers(),
            StartTurn(2, "plain"),
            ObserveStore(),
            RearmAllCheckpointers(),
        ),
    ),
    Case(
        "compaction-saved",
        "a same-length rewrite is a new revision, and it is checkpointed",
        2,
        True,
        (
            Create("serve", host_mode=True),
            HostMessage(1, "/compact"),
            ObserveStore(),
            HostMessage(1, "/compact"),
            LoadPersisted(1),
            Read(1),
        ),
    ),
    Case(
        "restart-crashes-pending",
        "a restart drops pending calls; store, clock and ids go on",
        2,
        True,
        (
            Create("serve", host_mode=True),
            Create("b"),
            Restart(),
            Read(1),
            Read(2),
            List(),
            Create("c"),
            Read(3),
        ),
    ),
    Case(
        "ephemeral",
        "the ephemeral service: live sessions only; persistence calls disabled",
        2,
        False,
        (
            Create("a"),
            StartTurn(1, "b"),
            List(),
            LoadPersisted(1),
            CancelAllCheckpointers(),
            RearmAllCheckpointers(),
            ObserveStore(),
            Archive(1),
            Archive(1),
            Create("c"),
            Restart(),
            Read(2),
            List(),
        ),
    ),
    Case(
        "ephemeral-host",
        "an ephemeral host loop serves messages; a restart loses it",
        2,
        False,
        (Create("serve", host_mode=True), HostMessage(1, "x"), Read(1), Restart(), Read(1)),
    ),
    Case(
        "invalid-arguments",
        "malformed input is rejected before anything is touched",
        2,
        True,
        (
            Create("a"),
            Invalid.of(cmd="read", session=BAD_ID),
            Invalid.of(cmd="start_turn", session="s1", prompt="x"),
            Invalid.of(cmd="archive", session=""),
            Invalid.of(cmd="interrupt", session=BAD_ID),
            Invalid.of(cmd="inject", session=BAD_ID, text="x"),
            Invalid.of(cmd="load_persisted", session=BAD_ID),
            Invalid.of(cmd="list", limit=-1),
            Invalid.of(cmd="list", offset=-2),
            Invalid.of(cmd="create", prompt="x", model=""),
            Invalid.of(cmd="create", prompt="x", model="  "),
            Read(1),
            List(),
            Create("b"),
        ),
    ),
)


# -- random sequences -----------------------------------------------------------------------

PROMPTS = ("a", "b c", "d e f", "", "/compact")  # a turn never compacts
TEXTS = ("x", "/compact", "y z", "")
PAGES = (None, 0, 1, 2)
_KINDS = (
    ["create"] * 6
    + ["turn"] * 5
    + ["message"] * 5
    + ["read"] * 2
    + ["list"] * 3
    + ["archive"] * 3
    + ["interrupt"] * 3
    + ["restart"] * 2
    + ["turns_at_once"] * 2
    + ["creates_at_once"] * 2
    + ["load", "cancel", "rearm", "observe"]
)
_PERSISTENT_ONLY = {"load", "cancel", "rearm"}


def random_op(rng: random.Random, state: State) -> Op:
    """One operation drawn from what the model's state makes interesting."""
    kinds = [k for k in _KINDS if state.persistent or k not in _PERSISTENT_ONLY]
    kind = rng.choice(kinds)
    known = sorted(
        {uuid.UUID(i).int for i, _ in (*state.live, *state.store)}
        | {uuid.UUID(i).int for i in state.archived}
    )

    def n() -> int:
        if known and rng.random() < 0.8:
            return rng.choice(known)
        return rng.randint(1, state.next_id)

    if kind == "create":
        return Create(
            rng.choice(PROMPTS), rng.choice((None, "s")), rng.random() < 0.3, rng.random() < 0.4
        )
    if kind == "turn":
        return StartTurn(n(), rng.choice(PROMPTS), rng.random() < 0.4)
    if kind == "message":
        return HostMessage(n(), rng.choice(TEXTS))
    if kind == "read":
        return Read(n())
    if kind == "list":
        return List(rng.choice(PAGES), rng.choice(PAGES))
    if kind == "archive":
        return Archive(n())
    if kind == "interrupt":
        return Interrupt(n())
    if kind == "restart":
        return Restart()
    if kind == "turns_at_once":
        return TurnsAtOnce(n(), rng.choice(PROMPTS), rng.random() < 0.4, rng.randint(2, 3))
    if kind == "creates_at_once":
        return CreatesAtOnce(rng.randint(2, 4), rng.choice(PROMPTS))
    if kind == "load":
        return LoadPersisted(n())
    if kind == "cancel":
        return CancelAllCheckpointers()
    if kind == "rearm":
        return RearmAllCheckpointers()
    return ObserveStore()


def random_case(seed: int, steps: int, name: str) -> Case:
    """A sequence drawn from ``random.Random(seed)``, each op from the model's state so far."""
    rng = random.Random(seed)
    capacity = rng.randint(1, 3)
    persistent = rng.random() < 0.8
    state = model.init(capacity, persistent)
    ops: list[Step] = []
    for _ in range(steps):
        op = random_op(rng, state)
        ops.append(op)
        _, state = model.step(state, op)
    about = f"random.Random({seed}): {steps} operations drawn from the model's state"
    return Case(name, about, capacity, persistent, tuple(ops))


def random_cases(
    seed: int = SEED, count: int = RANDOM_CASES, steps: int = RANDOM_STEPS, prefix: str = "random"
) -> tuple[Case, ...]:
    return tuple(random_case(seed + i, steps, f"{prefix}-{seed + i}") for i in range(count))


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
    before: State

    def to_json(self) -> dict[str, Json]:
        out: dict[str, Json] = {}
        if self.at_once:
            out["at_once"] = list(self.commands)
        else:
            out["op"] = self.commands[0]
        out["expect"] = self.expect
        if self.completed:
            out["completed"] = list(self.completed)
        out["checks"] = list(self.checks)
        out["model"] = repr(self.op)
        return out


def pending_session(op: Step, state: State) -> str | None:
    """The session a call of ``op`` would wait on, if it stayed pending."""
    if isinstance(op, Create):
        return model.sid(state.next_id)
    if isinstance(op, StartTurn | TurnsAtOnce):
        return model.sid(op.id)
    return None


def expected_steps(case: Case) -> list[ExpectedStep]:
    """Step the model through ``case``; raise if one of its invariants breaks."""
    state = model.init(case.capacity, case.persistent)
    out: list[ExpectedStep] = []
    for op in case.ops:
        if isinstance(op, Invalid):
            out.append(
                ExpectedStep(
                    (op.command(),), False, {"error": "INVALID_ARGUMENT"}, (), ("INPUT",), op, state
                )
            )
            continue
        result, after = model.step(state, op)
        broken = model.violations(after)
        if broken:
            raise AssertionError(f"{case.name}: {op!r} breaks the model's invariants {broken}")
        out.append(
            ExpectedStep(
                tuple(op_commands(op)),
                at_once(op),
                result_json(result, pending_session(op, state)),
                tuple(completed_json(after.completed)),
                tuple(step_clauses(op, state, result)),
                op,
                state,
            )
        )
        state = after
    return out


def case_json(case: Case) -> dict[str, Json]:
    return {
        "name": case.name,
        "about": case.about,
        "capacity": case.capacity,
        "persistent": case.persistent,
        "steps": [s.to_json() for s in expected_steps(case)],
    }


def _header(kind: str) -> dict[str, Json]:
    return {
        "format": VECTORS_FORMAT,
        "kind": kind,
        "generator": GENERATOR,
        "contract": CONTRACT,
        "model": "models/sessions.py",
    }


def sequential_doc(
    cases: Sequence[Case], kind: str = "sequential", seed: int | None = None
) -> dict[str, Json]:
    doc = _header(kind)
    if seed is not None:
        doc["seed"] = seed
    doc["cases"] = [case_json(c) for c in cases]
    return doc


# -- concurrent vectors (the explorer's counterexamples) -------------------------------------


def _session_of(label: str | None) -> str | None:
    """The explorer's short label ``s1`` as a full id."""
    if label is None:
        return None
    return str(uuid.UUID(int=int(label[1:], 16)))


def call_command(op: str, session: str | None, args: dict[str, object]) -> dict[str, Json]:
    """An explorer history entry (op name, short session, args) as an adapter command."""
    sid = _session_of(session)
    if op == "create":
        cmd: dict[str, Json] = {"cmd": "create", "prompt": str(args.get("prompt", ""))}
        if args.get("defer"):
            cmd["initial_turn"] = "defer"
        if args.get("host"):
            cmd["host_mode"] = True
        return cmd
    if op == "start_turn":
        cmd = {"cmd": "start_turn", "session": sid, "prompt": str(args.get("prompt", ""))}
        if args.get("host"):
            cmd["host_mode"] = True
        return cmd
    if op.startswith("inject"):
        return {"cmd": "inject", "session": sid, "text": str(args.get("text", ""))}
    if op == "list":
        return {"cmd": "list"}
    if op in ("archive", "read", "load_persisted", "interrupt"):
        return {"cmd": op, "session": sid}
    if op in ("cancel_all_checkpointers", "rearm_all_checkpointers"):
        return {"cmd": op}
    raise ValueError(f"no command for explorer operation {op!r}")


class LenientReplay:
    """Follow a recorded schedule where the implementation lets us; else the next ready task.

    The explorer's ``ReplayStrategy`` insists that each recorded task is ready;
    replaying the seed's schedule on the reference (whose scheduling points
    differ) needs this: take the recorded task if ready, else the first later
    recorded task that is, else the first ready task (by label).
    """

    def __init__(self, labels: Sequence[str]) -> None:
        self.labels = list(labels)
        self.at = 0

    def pick(self, ready: Sequence[str]) -> str:
        for i in range(self.at, len(self.labels)):
            if self.labels[i] in ready:
                self.at = i + 1
                return self.labels[i]
        self.at = len(self.labels)
        return sorted(ready)[0]

    def choose(self, step: int, ready: Sequence[Parked], budget: Budget) -> Choice:
        return Choice(self.pick([p.label for p in ready]))


def concurrent_cases() -> list[dict[str, Json]]:
    """The minimal counterexample through each window of the seed, as the explorer finds it."""
    from .explore import SCENARIOS, Variant, find_counterexample, get_scenario
    from .service._seed import Window

    cases: list[dict[str, Json]] = []
    for window in Window:
        variant = Variant.parse(f"seed-0.4.0:{window.value}")
        found = None
        for scenario in sorted(SCENARIOS, key=lambda s: window.value not in s.windows):
            if scenario.crashes:
                continue
            found, _, _ = find_counterexample(scenario, variant, max_bound=2)
            if found is not None:
                break
        if found is None:
            raise AssertionError(f"the explorer found no counterexample through {window.value}")
        scenario = get_scenario(found.scenario)
        background = {name for name, _ in scenario.background}
        setup: list[Json] = []
        bg: dict[str, list[Json]] = {}
        clients: dict[str, list[Json]] = {name: [] for name, _ in scenario.clients}
        operations: list[Json] = []
        for call in found.history:
            if call.client in ("post", "process"):
                continue
            cmd = call_command(call.op, call.session, dict(call.args))
            if call.client == "setup":
                setup.append(cmd)
            elif call.client in background:
                bg.setdefault(call.client, []).append(cmd)
            else:
                clients.setdefault(call.client, []).append(cmd)
            operations.append(
                {
                    "client": call.client,
                    **cmd,
                    "invoked": call.invoked,
                    "responded": call.responded,
                    "result": call.result,
                }
            )
        cases.append(
            {
                "name": f"window-{window.number}-{window.value}",
                "window": window.value,
                "scenario": scenario.name,
                "about": scenario.about,
                "capacity": scenario.max_sessions,
                "store": "memory",
                "setup": setup,
                "background": bg,
                "clients": clients,
                "operations": operations,
                "schedule": [c.to_json() for c in found.choices],
                "steps": [
                    {"task": s.label, "kind": s.kind, "session": _session_of(s.session)}
                    for s in found.steps
                ],
                "expected": {
                    "reference": {"violations": []},
                    "seed": {
                        "variant": variant.name,
                        "violations": sorted({v.rule for v in found.violations}),
                    },
                },
            }
        )
    return cases


def concurrent_doc() -> dict[str, Json]:
    doc = _header("concurrent")
    doc["cases"] = concurrent_cases()
    return doc


# -- files -----------------------------------------------------------------------------------


def render(value: Json, depth: int = 0, collapse: int = 4) -> str:
    """JSON, indented down to ``collapse`` levels, each deeper value on one line."""
    pad = " " * depth
    flat = isinstance(value, list) and not any(isinstance(v, dict | list) for v in value)
    if depth >= collapse or not isinstance(value, dict | list) or not value or flat:
        return json.dumps(value, ensure_ascii=True, separators=(", ", ": "))
    inner = " " * (depth + 1)
    if isinstance(value, dict):
        items = [
            f"{inner}{json.dumps(k)}: {render(v, depth + 1, collapse)}" for k, v in value.items()
        ]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    items = [inner + render(v, depth + 1, collapse) for v in value]
    return "[\n" + ",\n".join(items) + "\n" + pad + "]"


def generate() -> dict[str, str]:
    """Every vector file: name -> text."""
    docs = {
        "sequential-curated.json": sequential_doc(CURATED),
        "sequential-random.json": sequential_doc(random_cases(), seed=SEED),
        "concurrent.json": concurrent_doc(),
    }
    return {name: render(doc) + "\n" for name, doc in docs.items()}


def differences(out: Path, files: dict[str, str]) -> list[str]:
    problems = []
    for name, text in files.items():
        path = out / name
        if not path.is_file():
            problems.append(f"{path}: missing")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{path}: differs from what the model generates")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="meerkat-ref vectors")
    add_arguments(parser)
    return run(parser.parse_args(argv))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        default="spec/vectors",
        metavar="DIR",
        help="where the vector files go (default: spec/vectors)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if a file differs from what is generated",
    )


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    files = generate()
    if args.check:
        problems = differences(out, files)
        for problem in problems:
            print(f"meerkat-ref vectors: {problem}", file=sys.stderr)
        if problems:
            print("regenerate with: meerkat-ref vectors --out " + str(out), file=sys.stderr)
            return 1
        print(f"{len(files)} vector files in {out} are up to date")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
    cases = sum(len(json.loads(t)["cases"]) for t in files.values())
    print(f"wrote {len(files)} vector files ({cases} cases) to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
