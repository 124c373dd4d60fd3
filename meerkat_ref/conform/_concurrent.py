"""Concurrent conformance: overlapping requests, their history, and the rules it must obey.

A *program* is a scenario in data form: setup commands (run one by one), then
clients, each a list of commands run in order, all clients at once.  Every
call is recorded as the explorer records it (``explore._monitor.Call``: who,
what, invoked and responded steps, outcome), and after each run the history
is checked:

- ARCHIVE-FINAL: after an archive answered ``ok``, no later ``read``,
  ``list`` or ``load_persisted`` shows the id (the monitor's
  ``check_visible``), not even after a restart, and the store does not hold it;
- LINEARIZABLE: some order of the calls that respects real time gives each
  call its observed outcome under the model (``explore._linearize``);
- LIVENESS: every call that is not a serving host loop gets an answer.

Two ways to run a program:

*Controlled* (the adapter announced the ``points`` capability): the oracle
holds every scheduling point, and at each step picks one parked task to
release -- or one idle client to send its next command (its ``client.call``
point, as in the explorer) -- following a strategy: a recorded schedule
(the concurrent vectors, replayed leniently), PCT, or uniform random, each
seeded.  The run is deterministic, so its request lines replay it exactly.

*Free-running*: clients send as soon as their previous call is answered, and
the adapter interleaves as it will.  Steps are the oracle's own send/receive
order, which only ever loosens real-time constraints, so the checks stay
sound; but narrow windows are hit by chance, if at all.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from .._types import SessionId
from ..explore._linearize import check as check_history
from ..explore._linearize import check_lists
from ..explore._monitor import Call, Monitor, Violation
from ..vectors import LenientReplay
from ._client import AdapterClient, Answer, ProtocolError
from ._report import Failure, Phase, Report
from ._wire import Json, session_text

S1 = session_text(1)


@dataclass(frozen=True)
class ClientOp:
    cmd: dict[str, Json]
    attempts: int = 1  # tried again while it answers SESSION_NOT_FOUND


@dataclass(frozen=True)
class Program:
    name: str
    about: str
    capacity: int
    setup: tuple[dict[str, Json], ...]
    clients: tuple[tuple[str, tuple[ClientOp, ...]], ...]
    background: tuple[tuple[str, dict[str, Json]], ...] = ()  # started, never awaited
    clauses: tuple[str, ...] = ()  # what the race is about (for readers; checks are RUN_CLAUSES)


def _op(cmd: str, **fields: Json) -> ClientOp:
    attempts = fields.pop("attempts", 1)
    assert isinstance(attempts, int)
    return ClientOp({"cmd": cmd, **fields}, attempts)


PROGRAMS: tuple[Program, ...] = (
    Program(
        "turn-vs-archive", "start_turn and archive of the same session at once", 2,
        setup=({"cmd": "create", "prompt": "hello"},),
        clients=(
            ("turn", (_op("start_turn", session=S1, prompt="more"),)),
            ("archive", (_op("archive", session=S1, attempts=2), _op("read", session=S1),
                         _op("list"))),
        ),
        clauses=("ARCHIVE-FINAL", "DURABILITY"),
    ),
    Program(
        "create-vs-archive", "create and archive of the id it will get, at once", 2,
        setup=(),
        clients=(
            ("create", (_op("create", prompt="hello"), _op("load_persisted", session=S1))),
            ("archive", (_op("archive", session=S1, attempts=2), _op("read", session=S1),
                         _op("list"))),
        ),
        clauses=("ARCHIVE-FINAL",),
    ),
    Program(
        "host-create-vs-archive", "a host-mode create, fed and archived while it starts", 2,
        setup=(),
        clients=(
            ("create", (_op("create", prompt="serve", host_mode=True),)),
            ("archive", (_op("inject", session=S1, text="ping"),
                         _op("archive", session=S1, attempts=2),
                         _op("load_persisted", session=S1))),
        ),
        clauses=("ARCHIVE-FINAL", "ARCHIVE-STOP", "HOST"),
    ),
    Program(
        "host-checkpoint-vs-archive", "a serving host loop checkpoints messages while archived",
        2,
        setup=(),
        background=(("host", {"cmd": "create", "prompt": "serve", "host_mode": True}),),
        clients=(
            ("inject", (_op("inject", session=S1, text="ping"),
                        _op("inject", session=S1, text="/compact"))),
            ("archive", (_op("archive", session=S1), _op("load_persisted", session=S1))),
        ),
        clauses=("ARCHIVE-FINAL", "CHECKPOINT"),
    ),
    Program(
        "turns-at-once", "two turns of one session and an archive, at once", 2,
        setup=({"cmd": "create", "prompt": "a"},),
        clients=(
            ("t1", (_op("start_turn", session=S1, prompt="x"),)),
            ("t2", (_op("start_turn", session=S1, prompt="y"),)),
            ("archive", (_op("read", session=S1), _op("archive", session=S1), _op("list"))),
        ),
        clauses=("TURN-BUSY",),
    ),
    Program(
        "creates-at-capacity", "two creates at capacity 1, and an archive", 1,
        setup=(),
        clients=(
            ("c1", (_op("create", prompt="a"),)),
            ("c2", (_op("create", prompt="b"), _op("list"))),
            ("archive", (_op("archive", session=S1, attempts=2), _op("read", session=S1))),
        ),
        clauses=("CAPACITY",),
    ),
)

RUN_CLAUSES = ("ARCHIVE-FINAL", "LINEARIZABLE", "LIVENESS")


def vector_program(case: dict[str, Json]) -> tuple[Program, list[str]]:
    """A concurrent vector as a program (its recorded calls) and its schedule's task labels."""
    clients = tuple(
        (name, tuple(ClientOp(dict(c)) for c in cmds)) for name, cmds in case["clients"].items()
    )
    background = tuple((name, dict(cmds[0])) for name, cmds in case["background"].items())
    labels = [c if isinstance(c, str) else c.get("run", "") for c in case["schedule"]]
    program = Program(
        case["name"], case["about"], case["capacity"], tuple(dict(c) for c in case["setup"]),
        clients, background, ("ARCHIVE-FINAL",),
    )
    return program, [label for label in labels if label]


# -- recording ---------------------------------------------------------------------------------


def _short(text: Json) -> str | None:
    if not isinstance(text, str):
        return None
    try:
        return SessionId.parse(text).short()
    except ValueError:
        return None


def _call(client: str, cmd: dict[str, Json], invoked: int) -> Call:
    name = str(cmd["cmd"])
    args: dict[str, object] = {}
    if name == "create":
        args["prompt"] = cmd.get("prompt", "")
        args["defer"] = cmd.get("initial_turn") == "defer"
    if name == "start_turn":
        args["prompt"] = cmd.get("prompt", "")
    if name in ("create", "start_turn") and cmd.get("host_mode") is True:
        args["host"] = True
    if name == "inject":
        args["text"] = cmd.get("text", "")
        name = f"inject {cmd.get('text', '')!r}"
    return Call(client, name, _short(cmd.get("session")), invoked, args=tuple(args.items()))


def _record(call: Call, answer: Answer, step: int, monitor: Monitor) -> None:
    if answer.crashed:
        return  # the process died under it: never answered
    call.responded = step
    if answer.code is not None:
        call.result = answer.code
        call.message = answer.message  # AGENT_ERROR: cancelled, or refused at capacity
        return
    call.result = "ok"
    value = answer.value
    sid = None if call.session is None else SessionId.from_int(int(call.session[1:], 16))
    if call.op == "load_persisted":
        call.result = "ok:none" if value is None else "ok:found"
        if value is not None and sid is not None:
            monitor.check_visible(call, [sid])
    elif call.op == "read" and sid is not None:
        monitor.check_visible(call, [sid])
    elif call.op == "list" and isinstance(value, list):
        shown = [r.get("session_id") for r in value if isinstance(r, dict)]
        ids = [SessionId.parse(s) for s in shown if isinstance(s, str) and _short(s)]
        call.shown = tuple(i.short() for i in ids)
        monitor.check_visible(call, ids)
    elif call.op == "create" and isinstance(value, dict):
        call.created = _short(value.get("session_id"))
    elif call.op == "archive" and sid is not None:
        monitor.archived.setdefault(sid, step)


def _history_text(history: Sequence[Call]) -> str:
    lines = []
    for c in history:
        where = f" {c.session}" if c.session else ""
        result = c.result if c.responded is not None else "(no answer)"
        lines.append(f"    {c.client}: {c.op}{where} -> {result} @[{c.invoked},{c.responded}]")
    return "\n".join(lines)


@dataclass
class _Client:
    name: str
    ops: tuple[ClientOp, ...]
    index: int = 0
    tries: int = 0
    rid: str | None = None
    call: Call | None = None

    @property
    def label(self) -> str:
        return f"c:{self.name}"

    def current(self) -> ClientOp | None:
        return self.ops[self.index] if self.index < len(self.ops) else None

    def host(self) -> bool:
        op = self.current()
        return op is not None and op.cmd.get("host_mode") is True

    def answered(self, answer: Answer) -> None:
        op = self.current()
        assert op is not None
        self.tries += 1
        self.rid = self.call = None
        if answer.code == "SESSION_NOT_FOUND" and self.tries < op.attempts:
            return  # the same command again
        self.index += 1
        self.tries = 0


@dataclass
class RunOutcome:
    program: str
    violations: list[Violation]
    history: list[Call]
    lines: list[str]
    schedule: list[str] = field(default_factory=list)


class Strategy(Protocol):
    def pick(self, ready: Sequence[str]) -> str: ...


class PCT:
    """Probabilistic concurrency testing over task labels (as ``explore.PCTStrategy``)."""

    def __init__(self, seed: int, depth: int = 3, expected_steps: int = 40) -> None:
        self._rng = random.Random(seed)
        self._priority: dict[str, float] = {}
        self._changes = {self._rng.randint(1, expected_steps): i for i in range(1, depth)}
        self._last: str | None = None
        self._step = 0

    def pick(self, ready: Sequence[str]) -> str:
        for label in ready:
            if label not in self._priority:
                self._priority[label] = 1_000 + self._rng.random()
        if self._step in self._changes and self._last is not None:
            self._priority[self._last] = -self._changes[self._step]
        self._step += 1
        best = max(ready, key=lambda label: self._priority[label])
        self._last = best
        return best


class Uniform:
    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)

    def pick(self, ready: Sequence[str]) -> str:
        return self._rng.choice(sorted(ready))


# -- one run -------------------------------------------------------------------------------------


class _Run:
    def __init__(self, client: AdapterClient, program: Program) -> None:
        self.client = client
        self.program = program
        self.monitor = Monitor(max_sessions=program.capacity)
        self.history = self.monitor.history
        self.clients = [_Client(name, ops) for name, ops in program.clients]
        self.background: list[tuple[str, Call]] = []
        self.schedule: list[str] = []

    async def _send(self, who: str, cmd: dict[str, Json], step: int) -> tuple[str, Call]:
        call = _call(who, cmd, step)
        self.history.append(call)
        rid = await self.client.send({**cmd, "task": f"c:{who}"})
        return rid, call

    async def _setup(self, step: int) -> int:
        await self.client.call_ok(
            {"cmd": "open", "capacity": self.program.capacity, "persistent": True}
        )
        for cmd in self.program.setup:
            rid, call = await self._send("setup", cmd, step)
            await self.client.settle()
            _record(call, await self.client.wait(rid), step, self.monitor)
        for name, cmd in self.program.background:
            rid, call = await self._send(name, cmd, step)
            self.background.append((rid, call))
        await self.client.settle()
        return step

    def _collect(self, step: int) -> None:
        """Record every answer that has arrived, in arrival order."""
        waiting: list[tuple[int, str, Call, _Client | None]] = []
        for c in self.clients:
            if c.rid is not None and c.call is not None and self.client.answer(c.rid):
                waiting.append((self.client.arrived(c.rid), c.rid, c.call, c))
        for rid, call in self.background:
            if call.responded is None and call.result is None and self.client.answer(rid):
                waiting.append((self.client.arrived(rid), rid, call, None))
        for _, rid, call, owner in sorted(waiting, key=lambda w: w[0]):
            answer = self.client.answer(rid)
            assert answer is not None
            _record(call, answer, step, self.monitor)
            if owner is not None:
                owner.answered(answer)

    async def _post(self, step: int) -> None:
        """Restart, read everything back, look at the store, and check the history."""
        self.monitor.step = step
        self.history.append(Call("process", "restart", None, step, step, "ok"))
        await self.client.call_ok({"cmd": "restart"})
        for c in self.clients:
            c.rid = c.call = None
        step += 1
        self.monitor.step = step
        cmds: list[dict[str, Json]] = []
        for n in range(1, 6):
            cmds += [{"cmd": "read", "session": session_text(n)},
                     {"cmd": "load_persisted", "session": session_text(n)}]
        cmds.append({"cmd": "list"})
        for cmd in cmds:
            rid, call = await self._send("post", cmd, step)
            _record(call, await self.client.wait(rid), step, self.monitor)
        store = await self.client.call_ok({"cmd": "observe_store"})
        if isinstance(store, dict):
            for sid in sorted(self.monitor.archived):
                if str(sid) in store:
                    self.monitor.violate(
                        "ARCHIVE-FINAL", f"archived {sid.short()} is in the store after a restart"
                    )
        problem = check_lists(self.history) or check_history(self.history, self.program.capacity)
        if problem is not None:
            self.monitor.violate("LINEARIZABLE", problem)

    def outcome(self) -> RunOutcome:
        return RunOutcome(self.program.name, list(self.monitor.violations), list(self.history),
                          list(self.client.transcript), list(self.schedule))

    async def controlled(self, strategy: Strategy, max_steps: int = 400) -> RunOutcome:
        client = self.client
        client.mark()
        await self._setup(0)
        await client.call_ok({"cmd": "control", "points": True})
        step = 0
        while True:
            parked = await client.settle()
            self._collect(max(step - 1, 0))
            ready = {str(p["task"]) for p in parked}
            idle = {c.label: c for c in self.clients if c.rid is None and c.current()}
            labels = sorted(ready | set(idle))
            if not labels:
                break
            if step >= max_steps:
                self.monitor.violate("LIVENESS", f"no end after {max_steps} steps")
                break
            label = strategy.pick(labels)
            self.schedule.append(label)
            self.monitor.step = step
            chosen = idle.get(label) if label not in ready else None
            if chosen is not None:
                op = chosen.current()
                assert op is not None
                chosen.rid, chosen.call = await self._send(chosen.name, op.cmd, step)
            else:
                await client.call_ok({"cmd": "release", "task": label})
            step += 1
        stuck = [c.label for c in self.clients if c.rid is not None and not c.host()]
        if stuck:
            self.monitor.violate(
                "LIVENESS", f"deadlock: {', '.join(stuck)} blocked, no task can run"
            )
        await client.call_ok({"cmd": "control", "points": False})
        await self._post(step + 1)
        return self.outcome()

    async def free(self) -> RunOutcome:
        client = self.client
        client.mark()
        clock = 0

        def tick() -> int:
            nonlocal clock
            clock += 1
            return clock

        await self._setup(tick())

        async def send_next(c: _Client) -> None:
            op = c.current()
            if op is not None:
                c.rid, c.call = await self._send(c.name, op.cmd, tick())

        # Every client's first call in one batch: in flight together, for real.
        first = [c for c in self.clients if c.current() is not None]
        invoked = tick()
        calls = [_call(c.name, c.current().cmd, invoked) for c in first]  # type: ignore[union-attr]
        self.history.extend(calls)
        batch, rids = await client.send_at_once(
            [{**c.current().cmd, "task": c.label} for c in first]  # type: ignore[union-attr]
        )
        await client.wait(batch)
        client.check_batch(batch)
        for c, call, rid in zip(first, calls, rids, strict=True):
            c.rid, c.call = rid, call
        while True:
            waiting = [c for c in self.clients if c.rid is not None]
            plain = [c.rid for c in waiting if c.rid is not None and not c.host()]
            if plain:
                await client.wait_any(plain)
            else:
                await client.settle()
                fresh = [c.rid for c in waiting if c.rid is not None] + [
                    rid for rid, call in self.background
                    if call.responded is None and call.result is None
                ]
                if not any(client.answer(rid) for rid in fresh):
                    break
            answered = sorted(
                (c for c in waiting if c.rid is not None and client.answer(c.rid)),
                key=lambda c: client.arrived(c.rid or ""),
            )
            for c in answered:
                assert c.rid is not None and c.call is not None
                answer = client.answer(c.rid)
                assert answer is not None
                _record(c.call, answer, tick(), self.monitor)
                c.answered(answer)
                await send_next(c)
            for rid, call in self.background:
                answer = client.answer(rid)
                if answer is not None and call.responded is None and call.result is None:
                    _record(call, answer, tick(), self.monitor)
        await self._post(tick())
        return self.outcome()


# -- phases ------------------------------------------------------------------------------------


def _report_run(report: Report, phase: Phase, case: str, outcome: RunOutcome,
                how: str) -> None:
    report.check(RUN_CLAUSES)
    rules: dict[str, Violation] = {}
    for v in outcome.violations:
        rules.setdefault(v.rule, v)
    if rules:
        phase.failures += 1
    for rule, v in rules.items():
        report.fail(Failure(
            clause=rule,
            phase=phase.name,
            case=case,
            message=f"{v.message}\n  history:\n{_history_text(outcome.history)}",
            lines=outcome.lines,
            how=how,
            schedule=outcome.schedule,
        ))


CONTROLLED_HOW = (
    "controlled through the hooks: send the lines in order to a fresh adapter, waiting "
    "for the answer to each open, settle, control, release, restart, at_once and "
    "observe_store line; the adapter is deterministic under control, so the same "
    "lines give the same run"
)
FREE_HOW = (
    "free-running: the lines that were sent, in order; the interleaving was the "
    "adapter's, so a replay may not hit it again"
)


async def run_vectors(client: AdapterClient, report: Report,
                      cases: Sequence[dict[str, Json]]) -> None:
    phase = Phase("concurrent vectors (hooks)")
    report.phases.append(phase)
    started, sent = time.perf_counter(), client.sent_count
    try:
        for case in cases:
            program, labels = vector_program(case)
            phase.cases += 1
            outcome = await _Run(client, program).controlled(LenientReplay(labels))
            _report_run(report, phase, f"{program.name} (scenario {case['scenario']})", outcome,
                        CONTROLLED_HOW)
    finally:
        phase.seconds = time.perf_counter() - started
        phase.requests = client.sent_count - sent


async def run_search(client: AdapterClient, report: Report, runs: int, seed: int) -> None:
    last = seed + runs - 1
    note = f"{runs} schedules per program: PCT and uniform random, seeds {seed}..{last}"
    phase = Phase("concurrent search (hooks)", note=note)
    report.phases.append(phase)
    started, sent = time.perf_counter(), client.sent_count
    try:
        for program in PROGRAMS:
            for i in range(runs):
                strategy: Strategy = PCT(seed + i) if i % 2 == 0 else Uniform(seed + i)
                kind = "pct" if i % 2 == 0 else "random"
                phase.cases += 1
                outcome = await _Run(client, program).controlled(strategy)
                _report_run(report, phase, f"{program.name} ({kind}, seed {seed + i})", outcome,
                            CONTROLLED_HOW)
    finally:
        phase.seconds = time.perf_counter() - started
        phase.requests = client.sent_count - sent


async def run_free(client: AdapterClient, report: Report, runs: int) -> None:
    phase = Phase("concurrent free-running")
    report.phases.append(phase)
    started, sent = time.perf_counter(), client.sent_count
    try:
        for program in PROGRAMS:
            for i in range(runs):
                phase.cases += 1
                outcome = await _Run(client, program).free()
                _report_run(report, phase, f"{program.name} (run {i + 1})", outcome, FREE_HOW)
    finally:
        phase.seconds = time.perf_counter() - started
        phase.requests = client.sent_count - sent


__all__ = ["PROGRAMS", "ProtocolError", "run_free", "run_search", "run_vectors"]
