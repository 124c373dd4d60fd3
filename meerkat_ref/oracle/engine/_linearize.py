"""Linearizability of a run against the concurrent model: every observation explained.

A run is recorded as a log of *events*, in the order the oracle saw them
(``Monitor.events``): a call invoked, a call answered (with its whole
answer: the error code, or the value with its payload), the store observed
after a step, a store call made to fail, a restart (a crash, or the
read-back's), and "nothing can move" (the run ended quiescent).  The oracle
is one sequential observer, so an event it saw before another happened
before it.

The run is *linearizable* [LINEARIZABLE] if some interleaving of the calls'
atomic actions (``models/concurrent.py``, clause ATOMIC) -- each call's
actions after its invocation, before its answer -- produces every event:
each answer with its payload, each observed store exactly (rows, revisions,
counts, tokens, timestamps), quiescence where the run was quiescent.  The
check keeps the *frontier*: every configuration (shared world, each call's
progress) consistent with the events so far; before each event that
observes, it closes the frontier under any actions, then keeps what agrees.
An empty frontier is a violation, reported at the event that emptied it.
Runs with store faults and crashes are checked like any other: a fault is
the failure of one call's next store call; a crash drops every call in
flight (each may have done any prefix of its actions).

Nothing is excused: the model says what may happen between two events.
What the check does not compare, each permitted by a clause in words:

- Error *texts* (codes are compared): [ERRORS] makes the code the contract;
  the texts name things for people.
- Raw wire commands a port was sent to test its input checks (``conform``'s
  malformed lines): they are answered at once with an input error and have
  no effect [INPUT]; ``conform`` judges those answers itself.

Speed: a search from the start for every schedule would repeat the work of
the previous one, which shares a prefix of events with it (DPOR backtracks
from the deepest branch first).  The frontiers of the last checked log are
kept, and the next check resumes after the longest common prefix.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from ..._model import concurrent as fine
from ..._model import model
from ...registry import describe
from ._labels import short
from ._strategies import Choice

Config = tuple[fine.World, tuple[tuple[int, fine.Run], ...]]
"""The shared world, and every call in flight with its progress (sorted by call)."""


# -- events --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Invoke:
    step: int
    call: int  # the call's index in the run's history
    op: model.Op


@dataclass(frozen=True)
class Respond:
    step: int
    call: int
    result: model.Ok | model.Err


@dataclass(frozen=True)
class Observe:
    """The store after a step; with ``parked``, where each task waited (see ``_PLACED``)."""

    step: int
    store: tuple[tuple[str, model.Session], ...]
    parked: tuple[tuple[int | None, str | None, str], ...] | None = None  # (call, session, kind)


@dataclass(frozen=True)
class Fault:
    """The next store call (of ``kind``) of a call, or of a session's host loop, fails."""

    step: int
    kind: str
    call: int | None = None
    session: str | None = None


@dataclass(frozen=True)
class Restart:
    step: int


@dataclass(frozen=True)
class Cancel:
    """A call's caller was cancelled where it waited [CALLER-CANCEL]; it will not answer."""

    step: int
    call: int


@dataclass(frozen=True)
class Quiet:
    """Nothing could move: every task blocked, no client with a call to make."""

    step: int


Event = Invoke | Respond | Observe | Fault | Restart | Quiet | Cancel


# -- the search ----------------------------------------------------------------------------


_MOVES: dict[Config, tuple[Config, ...]] = {}
"""What each configuration may become in one action: computed once, across events and runs."""

_MOVES_KEPT = 200_000


def _successors(config: Config) -> tuple[Config, ...]:
    found = _MOVES.get(config)
    if found is None:
        world, runs = config
        found = tuple(
            # a detached run (its caller cancelled) that ends answers no one: it leaves
            (w2, (*runs[:k], *(() if r2.detached and r2.result is not None else ((rid, r2),)),
                  *runs[k + 1:]))
            for k, (rid, run) in enumerate(runs)
            for w2, r2 in fine.advance(world, rid, run)
        )
        if len(_MOVES) >= _MOVES_KEPT:
            _MOVES.clear()
        _MOVES[config] = found
    return found


def _closure(frontier: frozenset[Config]) -> set[Config]:
    """Every configuration reachable from the frontier by any actions, in any order."""
    seen = set(frontier)
    todo = deque(frontier)
    while todo:
        for nxt in _successors(todo.popleft()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _quiet(config: Config) -> bool:
    """Nothing can move, and no call has an answer the oracle has not received."""
    return not any(run.result is not None for _, run in config[1]) and not _successors(config)


_CALLER = {
    "agent.step": {"build"}, "cmd.send": {"send"}, "gate.acquire": {"save", "lock", "sweep"},
    "store.save": {"save"}, "store.load": {"load", "load-row"}, "store.list": {"list-store"},
    "store.exists": {"exists0", "exists"}, "store.delete": {"delete"}, "archive.stop": {"stop"},
}
_SESSION = {
    "agent.step": {"user", "reply", "end", "serve", "checkpoint"},
    "checkpoint": {"checkpoint"}, "gate.acquire": {"checkpoint"}, "store.save": {"checkpoint"},
}


def _placed(world: fine.World, runs: tuple[tuple[int, fine.Run], ...],
            parked: tuple[tuple[int | None, str | None, str], ...]) -> bool:
    """Whether each parked task's call is where its point says it is [ATOMIC].

    Evidence from a target that parks where ``service/_placement.py`` says
    (the reference does; a port may say so in its ``hello``): a call's task
    parked at ``store.delete`` is an archive whose next action is the delete,
    so everything before it has happened -- which keeps the model from
    putting a call's actions off until an observation can no longer tell.
    A kind the table does not name is no evidence.
    """
    mine = dict(runs)
    tasks = dict(world.tasks)
    for call, session, kind in parked:
        if call is not None:
            allowed = _CALLER.get(kind)
            run = mine.get(call)
        else:
            allowed = _SESSION.get(kind)
            task = tasks.get(session) if session is not None else None
            run = mine.get(task.inside) if task is not None and task.inside is not None else None
        if allowed is None:
            continue
        if run is None or run.result is not None or run.pc not in allowed:
            return False
    return True


def _answered(result: model.Result | None, observed: model.Ok | model.Err) -> bool:
    if isinstance(observed, model.Err):
        return isinstance(result, model.Err) and result.code == observed.code
    return isinstance(result, model.Ok) and result.value == observed.value


def _host_run(runs: tuple[tuple[int, fine.Run], ...], session: str | None) -> int | None:
    for rid, run in runs:
        if run.sid == session and run.result is None and getattr(run.op, "host_mode", False):
            return rid
    return None


def _apply(frontier: frozenset[Config], event: Event) -> frozenset[Config]:
    """The configurations consistent with everything up to and including ``event``."""
    if isinstance(event, Invoke):
        if isinstance(event.op, model.FailNextSave):
            return frozenset((fine.fail_next_save(w), runs) for w, runs in frontier)
        run = fine.begin(event.op)
        return frozenset((w, (*runs, (event.call, run))) for w, runs in frontier)
    out: set[Config] = set()
    # A fault or a cancel is the oracle's own move, made where every task waits: nothing
    # happens between the store it last observed and it, so no action is added first.
    moved = frontier if isinstance(event, Fault | Cancel) else _closure(frontier)
    for world, runs in moved:
        if isinstance(event, Respond):
            mine = dict(runs).get(event.call)
            if mine is not None and _answered(mine.result, event.result):
                out.add((world, tuple(r for r in runs if r[0] != event.call)))
        elif isinstance(event, Observe):
            # [settle] quiescent: a finished call's answer came before this store did
            if (world.store == event.store and not any(r.result is not None for _, r in runs)
                    and (event.parked is None or _placed(world, runs, event.parked))):
                out.add((world, runs))
        elif isinstance(event, Quiet):
            if _quiet((world, runs)):
                out.add((world, runs))
        elif isinstance(event, Restart):
            out.add((fine.restart(world), ()))
        elif isinstance(event, Cancel):
            mine = dict(runs).get(event.call)
            if mine is not None and mine.result is None and not mine.detached:
                w2, r2 = fine.cancel(world, event.call, mine)
                rest = tuple(r for r in runs if r[0] != event.call)
                if r2.result is None:
                    rest = tuple(sorted((*rest, (event.call, r2)), key=lambda r: r[0]))
                out.add((w2, rest))
        else:
            rid = event.call if event.call is not None else _host_run(runs, event.session)
            target = dict(runs).get(rid) if rid is not None else None
            if (rid is not None and target is not None and target.result is None
                    and target.fault is None):
                marked = replace(target, fault=event.kind)
                if not fine.doomed(world, rid, marked):
                    out.add((world, tuple((i, marked if i == rid else r) for i, r in runs)))
    return frozenset(out)


# -- the cache of the last log -------------------------------------------------------------


@dataclass
class _Last:
    capacity: int = -1
    events: list[Event] | None = None
    frontiers: list[frozenset[Config]] | None = None  # [k]: after events[:k]


_last = _Last()


class ModelFailure(Exception):
    """The concurrent model itself failed on a history: an error of the oracle, not a verdict.

    The model is the contract's, explored over every order of the calls in
    flight; an exception from it means a path the model does not describe,
    which says nothing about the target.  So it is reported as the oracle's
    own error (``SearchReport.oracle_errors``, kind ``model-failed``; the
    commands exit 3) with the run's schedule, never as a violation, and
    never as a traceback."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.schedule: tuple[Choice, ...] = ()  # the run's choices (``_run.run_schedule``)


def check(events: Sequence[Event], capacity: int) -> tuple[int, str] | None:
    """``None`` if the run is linearizable, else the step where it stopped being, and why.

    ``ModelFailure`` if the model raises on the way (its class doc)."""
    start: frozenset[Config] = frozenset({(fine.init(capacity, True), ())})
    frontiers = [start]
    shared = 0
    if _last.capacity == capacity and _last.events is not None and _last.frontiers is not None:
        previous = _last.events
        while (shared < len(events) and shared < len(previous)
               and events[shared] == previous[shared]):
            shared += 1
        frontiers = _last.frontiers[:shared + 1]
    for k in range(shared, len(events)):
        try:
            nxt = _apply(frontiers[-1], events[k])
        except Exception as exc:  # the model's own error: see ``ModelFailure``
            _last.events = None  # nothing half-made is kept for the next history
            raise ModelFailure(
                f"the concurrent model raised {type(exc).__name__}: {exc} at event {k} "
                f"(step {events[k].step}) of a history of {len(events)}") from exc
        frontiers.append(nxt)
        if not nxt:
            _remember(capacity, events[:k + 1], frontiers)
            return events[k].step, _explain(events, k, frontiers[-2])
    _remember(capacity, events, frontiers)
    return None


def _remember(capacity: int, events: Sequence[Event], frontiers: list[frozenset[Config]]) -> None:
    _last.capacity, _last.events, _last.frontiers = capacity, list(events), frontiers


def reset_cache() -> None:
    """Forget the last log (tests of the cache itself)."""
    _last.capacity, _last.events, _last.frontiers = -1, None, None


# -- saying why ------------------------------------------------------------------------------


def _store_text(store: Iterable[tuple[str, model.Session]]) -> str:
    rows = [f"{short(k)}@rev{v.revision}/{v.message_count}msg/t{v.updated_at}" for k, v in store]
    return "{" + ", ".join(rows) + "}"


def _result_text(result: model.Result | None) -> str:
    """A result in a few words: ``ok s1 'echo: more' (2+3 tokens)``, ``SESSION_NOT_FOUND``."""
    if isinstance(result, model.Err):
        return result.code
    if not isinstance(result, model.Ok):
        return "no answer"
    value = result.value
    if isinstance(value, model.RunResult):
        return (f"ok {short(value.session_id)} {value.text!r} "
                f"({value.input_tokens}+{value.output_tokens} tokens)")
    if isinstance(value, model.View):
        return (f"ok {short(value.session_id)} {value.message_count} msgs t{value.updated_at}"
                f"{' active' if value.is_active else ''}")
    if isinstance(value, model.Session):
        return f"ok rev{value.revision}/{value.message_count}msg/t{value.updated_at}"
    if isinstance(value, tuple):
        return "ok [" + ", ".join(
            f"{short(r.session_id)}:{r.message_count}" for r in value
        ) + "]"
    return "ok" if value is None else f"ok {value!r:.60}"


def _explain(events: Sequence[Event], k: int, before: frozenset[Config]) -> str:
    event = events[k]
    ops = {e.call: e.op for e in events[:k] if isinstance(e, Invoke)}
    flight = sorted({rid for _, runs in before for rid, _ in runs})
    shown = ", ".join(f"{model_text(ops.get(i))}" for i in flight) or "none"
    reachable = _closure(before)
    if isinstance(event, Respond):
        got = sorted({_result_text(r.result) for _, runs in reachable for i, r in runs
                      if i == event.call and r.result is not None})
        what = (f"{model_text(ops.get(event.call))} answered {_result_text(event.result)} at "
                f"step {event.step}; the model allows {', '.join(got[:4]) or 'no answer yet'}")
    elif isinstance(event, Observe):
        same = [runs for w, runs in reachable if w.store == event.store]
        if same:
            owed = sorted({f"{model_text(ops.get(i))} -> {_result_text(r.result)}"
                           for runs in same for i, r in runs if r.result is not None})
            what = (f"by step {event.step} the model has answered {' or '.join(owed[:3])}, "
                    "and no such answer came")
        else:
            stores = sorted({_store_text(w.store) for w, _ in reachable})
            what = (f"the store after step {event.step} is {_store_text(event.store)}; "
                    f"the model allows {' or '.join(stores[:3])}")
    elif isinstance(event, Quiet):
        what = f"nothing could move after step {event.step}, but the model has work left"
    elif isinstance(event, Fault):
        what = f"a {event.kind} failed at step {event.step} where the model makes none"
    else:
        what = f"at step {event.step}"
    return f"no interleaving of the calls explains it: {what} (calls in flight: {shown})"


def model_text(op: model.Op | None) -> str:
    return "?" if op is None else describe(op)


__all__ = [
    "Cancel",
    "Event",
    "Fault",
    "Invoke",
    "Observe",
    "Quiet",
    "Respond",
    "Restart",
    "check",
    "reset_cache",
]
