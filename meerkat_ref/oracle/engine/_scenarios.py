"""Scenarios as data: a setup, background calls, and clients whose calls run concurrently.

A scenario names model operations (``models/sessions.py``), nothing else, so
the same scenario runs on any target: the reference in process or a port over
the adapter.  The setup runs with scheduling points off, one call after
another; background calls (a host loop, say) are started then and never
awaited; then each client makes its calls in order, one at a time, and every
scheduling point from there on is the engine's to order.  Session ids are
predictable: the n-th session created is ``sid(n)`` (shown ``s1``, ``s2``...).

A *spec* is a scenario in JSON form, drawn by Hypothesis (``draw_spec``) or
written in a schedule file, rebuilt with ``scenario_from_spec``::

    {"setup": [{"cmd": "create", "prompt": "hello"}],
     "clients": [["a", [{"cmd": "start_turn", "session": "...-000000000001", "prompt": "more"}]],
                 ["b", [{"cmd": "archive", "session": "...-000000000001"}, {"cmd": "list"}]]]}

Operations are the adapter protocol's commands (the registry decodes them
and checks every field); nothing in a spec is executed or used as a path.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from ..._model import model
from ...registry import WireError, from_wire, operation, to_wire
from ...registry._values import Json

Op = Any  # a plain model operation (``model.Create``, ``model.Archive``, ...)


@dataclass(frozen=True)
class ClientOp:
    """One call of a client; retried while it answers ``SESSION_NOT_FOUND``, up to ``attempts``."""

    op: Op
    attempts: int = 1


@dataclass(frozen=True)
class Scenario:
    name: str
    about: str
    setup: tuple[Op, ...] = ()
    clients: tuple[tuple[str, tuple[ClientOp, ...]], ...] = ()
    background: tuple[tuple[str, Op], ...] = ()  # started after the setup, never awaited
    capacity: int = 2
    faults: int = 0  # store faults the engine may inject per schedule
    crashes: int = 0  # crashes (and restarts) the engine may inject per schedule
    cancels: int = 0  # callers the engine may cancel where they wait, per schedule
    windows: tuple[str, ...] = ()  # the seed windows this scenario is built to expose
    bound: int | None = None  # a preemption bound for `check` (None: none, every schedule)
    spec: Json = field(default=None, compare=False, hash=False)  # generated: its data form

    @property
    def max_sessions(self) -> int:
        return self.capacity

    def within(self, capabilities: frozenset[str]) -> tuple[Scenario, str]:
        """The scenario as a target offering ``capabilities`` can run it, and what it leaves out.

        A target that does not offer ``faults`` (``spec/ADAPTER.md`` section
        11) is never asked to fail a store call: the scenario runs without
        injected faults, and the reason says what was not checked.  The
        oracle asks a port only for what its ``hello`` offered.
        """
        if self.cancels and "cancel" not in capabilities:
            without, why = replace(self, cancels=0).within(capabilities)
            return without, "; ".join(r for r in (NO_CANCELS, why) if r)
        if self.faults and "faults" not in capabilities:
            return replace(self, faults=0), NO_FAULTS
        return self, ""

    def to_spec(self) -> dict[str, Json]:
        """The scenario as JSON data (``scenario_from_spec`` rebuilds it)."""
        out: dict[str, Json] = {
            "setup": [to_wire(op) for op in self.setup],
            "background": [[name, to_wire(op)] for name, op in self.background],
            "clients": [
                [name, [{**to_wire(c.op), **({"attempts": c.attempts} if c.attempts > 1 else {})}
                        for c in ops]]
                for name, ops in self.clients
            ],
            "capacity": self.capacity,
        }
        if self.faults:
            out["faults"] = self.faults
        if self.crashes:
            out["crashes"] = self.crashes
        if self.cancels:
            out["cancels"] = self.cancels
        return out


def twins(scenario: Scenario) -> dict[str, str]:
    """Each client that has an identical twin before it (the same calls, in the same order),
    mapped to the nearest such twin: ``{"c:<name>": "c:<twin's name>"}``.

    Two such clients are interchangeable: the service is handed calls, not
    callers (a call's task label only names the task, ``spec/ADAPTER.md``
    section 6), so every run in which a client calls before its twin has a
    *mirror* -- the same steps with the two clients' labels swapped -- that
    reaches the same state up to the swap, and breaks the same rules.  So a
    reducing search may have twins start in order (``_run``: a client is
    not ready to call until its twin has), and judge end states up to the
    swap (``_run.end_view``); ``_audit`` runs sampled mirrors to check
    the claim.  A scenario that may cancel callers has none: a cancel plan
    names one task, which tells the twins apart.
    """
    if scenario.cancels:
        return {}
    out: dict[str, str] = {}
    for i, (name, ops) in enumerate(scenario.clients):
        twin = next((other for other, same in reversed(scenario.clients[:i]) if same == ops),
                    None)
        if twin is not None:
            out[f"c:{name}"] = f"c:{twin}"
    return out


NO_FAULTS = (
    "no store faults injected: the target does not offer the faults capability, so what a "
    "failed store call leaves behind ([SAVE-FAILED], [ARCHIVE-ATOMIC]) was not checked here"
)
"""Why a scenario with faults ran without them (``Scenario.within``)."""

NO_CANCELS = (
    "no caller cancelled: only a target in this process can cancel a caller where it waits "
    "(the adapter protocol has no such command), so [CALLER-CANCEL] was not checked here"
)
"""Why a scenario with cancels ran without them (``Scenario.within``)."""


def _c(op: Op, attempts: int = 1) -> ClientOp:
    return ClientOp(op, attempts)


S1, S2 = 1, 2
R = model

SCENARIOS: tuple[Scenario, ...] = (
    # Each is small enough to explore in full by default (`meerkat-ref check`): a
    # scenario names the race it is about and nothing more.  What every run then
    # checks anyway (the store read back after a restart, every id issued) needs
    # no trailing read; pairs of calls beyond these are the sweep's job.
    Scenario(
        "turn-save-vs-archive",
        "a turn's save after the turn races archive of the same session",
        setup=(R.Create("hello"),),
        clients=(
            ("turn", (_c(R.StartTurn(S1, "more")),)),
            ("archive", (_c(R.Archive(S1), 2), _c(R.Read(S1)), _c(R.List()))),
        ),
        windows=("save-after-turn",),
    ),
    Scenario(
        "create-vs-archive",
        "archive of a session while create is still registering and saving it",
        clients=(
            ("create", (_c(R.Create("hello")),)),
            ("archive", (_c(R.Archive(S1), 2), _c(R.Read(S1)))),
        ),
        windows=("create-racing-archive",),
    ),
    Scenario(
        "host-create-vs-archive",
        "a create whose first turn is a host loop, fed and archived while it starts",
        clients=(
            ("create", (_c(R.Create("serve", host_mode=True)),)),
            ("archive", (_c(R.HostMessage(S1, "ping")), _c(R.Archive(S1), 2))),
        ),
        windows=("create-racing-archive",),
    ),
    Scenario(
        "host-checkpoint-vs-archive",
        "a running host loop checkpoints injected messages while it is archived",
        background=(("host", R.Create("serve", host_mode=True)),),
        clients=(
            ("inject", (_c(R.HostMessage(S1, "ping")), _c(R.HostMessage(S1, "/compact")))),
            ("archive", (_c(R.Archive(S1)),)),
        ),
        windows=("archived-host-loop", "skip-by-length"),
    ),
    Scenario(
        "stop-resume-vs-inject",
        "cancel_all then rearm_all checkpointers while a host loop is fed a message",
        background=(("host", R.Create("serve", host_mode=True)),),
        clients=(
            ("stop-resume", (_c(R.CancelAllCheckpointers()), _c(R.RearmAllCheckpointers()))),
            ("inject", (_c(R.HostMessage(S1, "ping")),)),
        ),
    ),
    Scenario(
        "turns-at-once",
        "two turns of one session at once: one runs, the other is refused as busy",
        setup=(R.Create("a"),),
        clients=(
            ("t1", (_c(R.StartTurn(S1, "x")),)),
            ("t2", (_c(R.StartTurn(S1, "y")),)),
        ),
    ),
    Scenario(
        "creates-at-capacity",
        "two creates at capacity 1: never two sessions live",
        capacity=1,
        clients=(
            ("c1", (_c(R.Create("a")),)),
            ("c2", (_c(R.Create("b")),)),
        ),
    ),
    Scenario(
        "crash-restart",
        "two sessions; an archive of the second races a turn of it, with a crash at any point",
        setup=(R.Create("one"), R.Create("two")),
        clients=(
            ("archive-2", (_c(R.Archive(S2)),)),
            ("turn-2", (_c(R.StartTurn(S2, "beta")),)),
        ),
        crashes=1,
    ),
    Scenario(
        "list-page-vs-create",
        "a page of list (the second row) while a create registers and saves, over stored rows",
        setup=(R.Create("a"), R.Create("b"), R.Restart()),
        clients=(
            ("create", (_c(R.Create("c")),)),
            ("list", (_c(R.List(1, 1)), _c(R.List()))),
        ),
    ),
    Scenario(
        "store-faults",
        "create and archive with any one store call failing",
        clients=(
            ("create", (_c(R.Create("hello")),)),
            ("archive", (_c(R.Archive(S1), 2),)),
        ),
        faults=1,
    ),
    Scenario(
        "interrupt-then-turn",
        "a turn, and an interrupt of it followed by another turn: one admission at a time",
        setup=(R.Create("a"),),
        clients=(
            ("turn", (_c(R.StartTurn(S1, "x")),)),
            ("interrupt", (_c(R.Interrupt(S1)), _c(R.StartTurn(S1, "y")))),
        ),
    ),
    Scenario(
        "turn-archive-rearm",
        "three calls on the gates: a turn's save, an archive and a rearm of every checkpointer",
        setup=(R.Create("a"),),
        clients=(
            ("turn", (_c(R.StartTurn(S1, "more")),)),
            ("archive", (_c(R.Archive(S1)),)),
            ("rearm", (_c(R.RearmAllCheckpointers()),)),
        ),
    ),
    Scenario(
        "cancelled-turn",
        "two turns of a session, a caller cancelled wherever it waits, and a read",
        setup=(R.Create("a"),),
        clients=(
            ("turn", (_c(R.StartTurn(S1, "x")), _c(R.StartTurn(S1, "y")))),
            ("read", (_c(R.Read(S1)),)),
        ),
        cancels=1,
    ),
    Scenario(
        "cancelled-archive",
        "an archive of a live session, its caller cancelled wherever it waits, and a turn",
        setup=(R.Create("a"),),
        clients=(
            ("archive", (_c(R.Archive(S1)),)),
            ("turn", (_c(R.StartTurn(S1, "x")),)),
        ),
        cancels=1,
    ),
    Scenario(
        "cancelled-archive-of-stored",
        "an archive of a stored-only session, its caller cancelled wherever it waits, and a read",
        setup=(R.Create("a"), R.Restart()),
        clients=(
            ("archive", (_c(R.Archive(S1)),)),
            ("read", (_c(R.Read(S1)),)),
        ),
        cancels=1,
    ),
    Scenario(
        "reads-under-faults",
        "a read, a page of list and an archive of stored-only sessions, any one store call failing",
        setup=(R.Create("a"), R.Create("b"), R.Restart()),
        clients=(
            ("read", (_c(R.Read(S1)),)),
            ("list", (_c(R.List(1, 1)),)),
            ("archive", (_c(R.Archive(S2)),)),
        ),
        faults=1,
    ),
    Scenario(
        "load-under-faults",
        "load_persisted of a stored-only session beside a read of it, any one store call failing",
        setup=(R.Create("a"), R.Restart()),
        clients=(
            ("load", (_c(R.LoadPersisted(S1)),)),
            ("read", (_c(R.Read(S1)),)),
        ),
        faults=1,
    ),
    Scenario(
        "saves-beside-a-disarm",
        "a disarm of every checkpointer while a client runs a turn, then creates a session: "
        "neither save is gated by arming [STOP-RESUME]",
        setup=(R.Create("a"),),
        clients=(
            ("stop", (_c(R.CancelAllCheckpointers()),)),
            ("user", (_c(R.StartTurn(S1, "x")), _c(R.Create("b")))),
        ),
    ),
)

BY_NAME = {s.name: s for s in SCENARIOS}


def get_scenario(name: str) -> Scenario:
    try:
        return BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown scenario {name!r}; known: {', '.join(BY_NAME)}") from None


# -- specs ---------------------------------------------------------------------------------


class SpecError(ValueError):
    """A scenario spec that cannot be used."""


def _op(value: Json, where: str, restart: bool = False) -> Op:
    if not isinstance(value, dict):
        raise SpecError(f"{where}: an operation is a command object, got {value!r:.80}")
    cmd = {k: v for k, v in value.items() if k != "attempts"}
    try:
        op = from_wire(cmd)
    except (WireError, ValueError) as exc:
        raise SpecError(f"{where}: {exc}") from None
    if restart and isinstance(op, model.Restart):
        return op  # a setup may restart (sessions then stored only)
    if operation(op).call is None:
        raise SpecError(f"{where}: {cmd.get('cmd')!r} is not a call a client can make")
    n = operation(op).session(op)
    if n is not None and not 1 <= n <= 16:
        raise SpecError(f"{where}: session number out of range (1..16)")
    return op


def _count(spec: dict[str, Json], key: str, high: int) -> int:
    value = spec.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
        raise SpecError(f"{key!r} must be an integer from 0 to {high}")
    return value


def scenario_from_spec(spec: Json, name: str = "generated") -> Scenario:
    """Build a scenario from its JSON form (see the module docstring); ``SpecError`` if bad."""
    if not isinstance(spec, dict):
        raise SpecError("a scenario spec is an object with 'setup' and 'clients'")
    setup = spec.get("setup", [])
    if not isinstance(setup, list) or len(setup) > 6:
        raise SpecError("'setup' must list at most 6 operations")
    clients = spec.get("clients")
    if not isinstance(clients, list) or not 1 <= len(clients) <= 4:
        raise SpecError("'clients' must list 1 to 4 [name, operations] pairs")
    built: list[tuple[str, tuple[ClientOp, ...]]] = []
    for entry in clients:
        if not (isinstance(entry, list | tuple) and len(entry) == 2 and isinstance(entry[0], str)):
            raise SpecError(f"a client is [name, operations], got {entry!r:.80}")
        cname, ops = entry
        if not cname.replace("-", "_").isidentifier() or not isinstance(ops, list) or len(ops) > 6:
            raise SpecError(f"client {cname!r:.40}: a plain name and at most 6 operations")
        calls = []
        for i, raw in enumerate(ops):
            attempts = raw.get("attempts", 1) if isinstance(raw, dict) else 1
            if isinstance(attempts, bool) or not isinstance(attempts, int) or not (
                1 <= attempts <= 3
            ):
                raise SpecError(f"client {cname}: 'attempts' must be 1 to 3")
            calls.append(ClientOp(_op(raw, f"client {cname} call {i + 1}"), attempts))
        built.append((cname, tuple(calls)))
    background = spec.get("background", [])
    if not isinstance(background, list) or len(background) > 2:
        raise SpecError("'background' must list at most 2 [name, operation] pairs")
    bg = []
    for entry in background:
        if not (isinstance(entry, list | tuple) and len(entry) == 2 and isinstance(entry[0], str)
                and entry[0].isidentifier()):
            raise SpecError(f"a background call is [name, operation], got {entry!r:.80}")
        bg.append((entry[0], _op(entry[1], f"background {entry[0]}")))
    capacity = spec.get("capacity", 2)
    if isinstance(capacity, bool) or not isinstance(capacity, int) or not 1 <= capacity <= 8:
        raise SpecError("'capacity' must be an integer from 1 to 8")
    return Scenario(
        name=name,
        about="generated: " + str(spec)[:200],
        setup=tuple(_op(op, f"setup {i + 1}", restart=True) for i, op in enumerate(setup)),
        clients=tuple(built),
        background=tuple(bg),
        capacity=capacity,
        faults=_count(spec, "faults", 1),
        crashes=_count(spec, "crashes", 1),
        cancels=_count(spec, "cancels", 1),
        bound=None,
        spec=spec,
    )


def draw_spec(data: Any) -> dict[str, Json]:
    """Draw a small spec from Hypothesis (``st.data()``): it shrinks with the schedule."""
    from hypothesis import strategies as st

    n = st.integers(1, 2)
    words = st.sampled_from(["a", "b c", "/fail"])
    op = st.one_of(
        st.builds(model.Create, words),
        st.builds(lambda p: model.Create(p, host_mode=True), words),
        st.builds(model.StartTurn, n, words),
        st.builds(model.Archive, n),
        st.builds(model.Read, n),
        st.builds(model.LoadPersisted, n),
        st.just(model.List()),
        st.builds(model.HostMessage, n, st.sampled_from(["x", "/compact"])),
        st.just(model.CancelAllCheckpointers()),
        st.just(model.RearmAllCheckpointers()),
    )
    setup = data.draw(st.lists(st.builds(model.Create, words), max_size=2), label="setup")
    clients = data.draw(
        st.lists(st.lists(op, min_size=1, max_size=3), min_size=2, max_size=3), label="clients"
    )
    return {
        "setup": [to_wire(o) for o in setup],
        "clients": [[f"c{i}", [to_wire(o) for o in ops]] for i, ops in enumerate(clients)],
    }


__all__ = [
    "NO_FAULTS",
    "SCENARIOS",
    "ClientOp",
    "Scenario",
    "SpecError",
    "draw_spec",
    "get_scenario",
    "scenario_from_spec",
    "twins",
]
