"""Worked examples of the contract: short stories, step by step, with what each call answers.

Each example is a sequence of operations on a fresh service, and beside each
operation the outcome the contract requires, stated as a reader would check
it: ``Made(1)`` (a create that made session 1), ``Ran('echo: x')`` (a turn's
reply), ``Seen(2, active=True)`` (a read: message count, a turn running),
``Listed(2, 1)`` (a list: these sessions, in this order), ``Stored(2)`` /
``NONE`` (load_persisted), ``Store({1: 2})`` (the store: message count per
session), ``PENDING`` (a host loop serves), an error code, or for calls made at
once a tuple of outcomes (compared as a multiset).  A dict after the outcome
lists the pending calls the step completed, by session.

They are written once, here, and used twice: ``tests/test_model.py`` checks
that the model gives every stated outcome (the model's worked examples), and
the conformance vectors (``spec/vectors/sequential-curated.json``) are these
examples with the model's full answers filled in.  Pure data: nothing here
runs anything.
"""

from __future__ import annotations

from dataclasses import dataclass

from .sessions import (
    AGENT_ERROR,
    BUSY,
    NOT_FOUND,
    NOT_RUNNING,
    PERSISTENCE_DISABLED,
    STORE_ERROR,
    Archive,
    CancelAllCheckpointers,
    Crashed,
    Create,
    CreatesAtOnce,
    Err,
    FailNextSave,
    HostMessage,
    Interrupt,
    List,
    LoadPersisted,
    Many,
    ObserveStore,
    Ok,
    Op,
    Pending,
    Read,
    RearmAllCheckpointers,
    Restart,
    Result,
    RunResult,
    Session,
    StartTurn,
    TurnsAtOnce,
    View,
    sid,
)

# -- what a step expects ----------------------------------------------------------

@dataclass(frozen=True)
class Made:  # a create's run result: the session it made
    id: int

@dataclass(frozen=True)
class Ran:  # a turn's run result: its reply
    text: str

@dataclass(frozen=True)
class Seen:  # a read: message count, and whether a turn runs
    message_count: int
    active: bool = False

@dataclass(frozen=True)
class Listed:  # a list: the sessions shown, in order
    ids: tuple[int, ...]

    def __init__(self, *ids: int) -> None:
        object.__setattr__(self, "ids", ids)

@dataclass(frozen=True)
class Stored:  # load_persisted found the session: its message count
    message_count: int

@dataclass(frozen=True)
class Store:  # observe_store: message count per stored session
    counts: dict[int, int]

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.counts.items())))

OK, NONE, PENDING, CRASHED = "ok", "none", "pending", "crashed"
Expect = (Made | Ran | Seen | Listed | Stored | Store | str | tuple["Expect", ...])


def holds(expect: Expect, result: Result) -> bool:
    """Whether the model's ``result`` is what ``expect`` states."""
    if isinstance(expect, tuple):
        if not isinstance(result, Many) or len(result.results) != len(expect):
            return False
        left = list(result.results)  # a multiset: pair each expectation with one result
        for e in expect:
            hit = next((r for r in left if holds(e, r)), None)
            if hit is None:
                return False
            left.remove(hit)
        return True
    if isinstance(expect, str) and expect not in (OK, NONE, PENDING, CRASHED):
        return result == Err(expect)
    if expect == PENDING:
        return isinstance(result, Pending)
    if not isinstance(result, Ok):
        return False
    value = result.value
    match expect:
        case "ok":
            return value is None
        case "none":
            return value is None
        case Made(id=n):
            return isinstance(value, RunResult) and value.session_id == sid(n)
        case Ran(text=text):
            return isinstance(value, RunResult) and value.text == text
        case Seen(message_count=count, active=active):
            return isinstance(value, View) and (value.message_count, value.is_active) == (
                count, active)
        case Listed(ids=ids):
            return isinstance(value, tuple) and [s.session_id for s in value] == [
                sid(n) for n in ids]
        case Stored(message_count=count):
            return isinstance(value, Session) and value.message_count == count
        case Store(counts=counts):
            return isinstance(value, dict) and {k: s.message_count for k, s in value.items()} == {
                sid(n): c for n, c in counts.items()}
    return False


def completes(expect: dict[int, Expect], completed: tuple[tuple[str, Result], ...]) -> bool:
    """Whether a step completed exactly the stated pending calls, with the stated outcomes."""
    if sorted(sid(n) for n in expect) != [s for s, _ in completed]:
        return False
    by_id = dict(completed)
    return all(
        isinstance(by_id[sid(n)], Crashed) if e == CRASHED else holds(e, by_id[sid(n)])
        for n, e in expect.items()
    )


@dataclass(frozen=True)
class Example:
    """A worked example.  ``pins``: the clause whose rule it was written to pin down.

    A conformance failure anywhere in a pinning example is reported under that
    clause (with its rule quoted), so a port that read the rule another way
    is told which rule it read wrong.
    """

    name: str
    about: str
    capacity: int = 2
    persistent: bool = True
    steps: tuple[tuple[Op, Expect] | tuple[Op, Expect, dict[int, Expect]], ...] = ()
    pins: str = ""

    @property
    def ops(self) -> tuple[Op, ...]:
        return tuple(step[0] for step in self.steps)


QUEUED_128: tuple[tuple[Op, Expect], ...] = ((HostMessage(id=1, text='x'), OK),) * 128
"""128 messages queued for session 1's next host loop, each ``OK``."""

EXAMPLES: tuple[Example, ...] = (
    Example(
        'create-and-read',
        'a create runs its first turn, is saved before it returns, reads back',
        steps=(
        (Create(prompt='hello world'), Made(1)),
        (Read(id=1), Seen(2)),
        (LoadPersisted(id=1), Stored(2)),
        (List(), Listed(1)),
        (ObserveStore(), Store({1: 2})),
    )),
    Example('create-system-prompt', 'a system prompt is message 1, the empty one too', steps=(
        (Create(prompt='a', system_prompt='be brief'), Made(1)),
        (Read(id=1), Seen(3)),
        (LoadPersisted(id=1), Stored(3)),
        (Create(prompt='b', system_prompt=''), Made(2)),
        (Read(id=2), Seen(3)),
    )),
    Example(
        'create-deferred',
        'a deferred create runs no turn and (persistent) is stored at once',
        steps=(
        (Create(prompt='later', defer=True), Made(1)),
        (Read(id=1), Seen(0)),
        (LoadPersisted(id=1), Stored(0)),
        (StartTurn(id=1, prompt='now'), Ran('echo: now')),
        (Read(id=1), Seen(2)),
    )),
    Example(
        'capacity',
        'capacity is checked first (no id, no tick); archive frees a slot', capacity=1,
        steps=(
        (Create(prompt='a'), Made(1)),
        (Create(prompt='b'), AGENT_ERROR),
        (Archive(id=1), OK),
        (Create(prompt='c'), Made(2)),
        (Read(id=2), Seen(2)),
        (List(), Listed(2)),
    )),
    Example('creates-at-once', 'of creates made at once exactly min(count, free) succeed', steps=(
        (CreatesAtOnce(count=3), (Made(1), Made(2), AGENT_ERROR)),
        (List(), Listed(2, 1)),
        (CreatesAtOnce(count=2), (AGENT_ERROR, AGENT_ERROR)),
        (Archive(id=2), OK),
        (CreatesAtOnce(count=2, prompt='z'), (Made(3), AGENT_ERROR)),
    )),
    Example(
        'turn',
        'turns on unknown and live sessions; usage and times follow the prompt',
        steps=(
        (StartTurn(id=1, prompt='a'), NOT_FOUND),
        (Create(prompt='a'), Made(1)),
        (StartTurn(id=2, prompt='b'), NOT_FOUND),
        (StartTurn(id=1, prompt='c d'), Ran('echo: c d')),
        (StartTurn(id=1, prompt=''), Ran('echo: ')),
        (StartTurn(id=1, prompt='e\x1cf\u3000g\ufeffh'), Ran('echo: e\x1cf\u3000g\ufeffh')),
        (Read(id=1), Seen(8)),
        (LoadPersisted(id=1), Stored(8)),
    )),
    Example(
        'turns-at-once',
        'turn admission is atomic: one of the turns made at once wins',
        steps=(
        (Create(prompt='a'), Made(1)),
        (TurnsAtOnce(id=1, prompt='b', count=3), (Ran('echo: b'), BUSY, BUSY)),
        (Read(id=1), Seen(4)),
        (LoadPersisted(id=1), Stored(4)),
    )),
    Example(
        'turn-busy-host',
        'a serving host loop keeps its session busy until interrupted',
        steps=(
        (Create(prompt='serve', host_mode=True), PENDING),
        (StartTurn(id=1, prompt='b'), BUSY),
        (TurnsAtOnce(id=1, prompt='c'), (BUSY, BUSY)),
        (Read(id=1), Seen(2, active=True)),
        (Interrupt(id=1), OK, {1: AGENT_ERROR}),
        (StartTurn(id=1, prompt='d'), Ran('echo: d')),
        (TurnsAtOnce(id=1, prompt='e', host_mode=True), (PENDING, BUSY)),
        (Interrupt(id=1), OK, {1: AGENT_ERROR}),
    )),
    Example(
        'host-messages',
        'a serving host loop takes each message at once and checkpoints it',
        steps=(
        (Create(prompt='serve', host_mode=True), PENDING),
        (HostMessage(id=1, text='x y'), OK),
        (Read(id=1), Seen(4, active=True)),
        (ObserveStore(), Store({1: 4})),
        (HostMessage(id=1, text='/compact'), OK),
        (ObserveStore(), Store({1: 4})),
        (Interrupt(id=1), OK, {1: AGENT_ERROR}),
        (Read(id=1), Seen(4)),
        (LoadPersisted(id=1), Stored(4)),
    )),
    Example(
        'host-inbox',
        'messages to an idle session wait for its next host loop, in order',
        steps=(
        (Create(prompt='a'), Made(1)),
        (HostMessage(id=1, text='x'), OK),
        (HostMessage(id=1, text='y'), OK),
        (Read(id=1), Seen(2)),
        (StartTurn(id=1, prompt='serve', host_mode=True), PENDING),
        (Read(id=1), Seen(8, active=True)),
        (ObserveStore(), Store({1: 8})),
        (Interrupt(id=1), OK, {1: AGENT_ERROR}),
        (HostMessage(id=1, text=''), OK),
        (Read(id=1), Seen(8)),
    )),
    Example(
        'host-message-not-found',
        'there is no injector for an unknown or archived session',
        steps=(
        (HostMessage(id=1, text='x'), NOT_FOUND),
        (Create(prompt='a'), Made(1)),
        (Archive(id=1), OK),
        (HostMessage(id=1, text='x'), NOT_FOUND),
    )),
    Example('interrupt', 'interrupt: not found, not running, then it cancels a host loop', steps=(
        (Interrupt(id=1), NOT_FOUND),
        (Create(prompt='a'), Made(1)),
        (Interrupt(id=1), NOT_RUNNING),
        (StartTurn(id=1, prompt='serve', host_mode=True), PENDING),
        (Interrupt(id=1), OK, {1: AGENT_ERROR}),
        (Interrupt(id=1), NOT_RUNNING),
        (Read(id=1), Seen(4)),
    )),
    Example(
        'read-fallback',
        'after a restart a stored session reads back inactive; no turn on it',
        steps=(
        (Create(prompt='a'), Made(1)),
        (StartTurn(id=1, prompt='b c'), Ran('echo: b c')),
        (Restart(), OK),
        (Read(id=1), Seen(4)),
        (List(), Listed(1)),
        (StartTurn(id=1, prompt='x'), NOT_FOUND),
        (LoadPersisted(id=1), Stored(4)),
        (Interrupt(id=1), NOT_FOUND),
    )),
    Example(
        'archive-live',
        'archive is final: no read, list, load, turn or store shows the session',
        steps=(
        (Create(prompt='a'), Made(1)),
        (Create(prompt='b'), Made(2)),
        (Archive(id=1), OK),
        (Read(id=1), NOT_FOUND),
        (List(), Listed(2)),
        (LoadPersisted(id=1), NONE),
        (StartTurn(id=1, prompt='x'), NOT_FOUND),
        (Archive(id=1), NOT_FOUND),
        (ObserveStore(), Store({2: 2})),
        (Restart(), OK),
        (Read(id=1), NOT_FOUND),
    )),
    Example('archive-stored-only', 'archive of a session that is only in the store', steps=(
        (Create(prompt='a'), Made(1)),
        (Restart(), OK),
        (Archive(id=1), OK),
        (Read(id=1), NOT_FOUND),
        (List(), Listed()),
        (Restart(), OK),
        (Read(id=1), NOT_FOUND),
        (LoadPersisted(id=1), NONE),
        (Archive(id=1), NOT_FOUND),
    )),
    Example(
        'archive-host-loop',
        'archive ends a serving host loop; its call answers AGENT_ERROR',
        steps=(
        (Create(prompt='serve', host_mode=True), PENDING),
        (HostMessage(id=1, text='x'), OK),
        (Archive(id=1), OK, {1: AGENT_ERROR}),
        (HostMessage(id=1, text='y'), NOT_FOUND),
        (Interrupt(id=1), NOT_FOUND),
        (Read(id=1), NOT_FOUND),
        (ObserveStore(), Store({})),
        (Create(prompt='b'), Made(2)),
    )),
    Example(
        'archive-not-found',
        'archive of a session neither live nor stored leaves nothing behind: the create '
        'that then takes the id works',
        pins='ARCHIVE',
        steps=(
        (Archive(id=1), NOT_FOUND),
        (Create(prompt='a'), Made(1)),
        (Archive(id=2), NOT_FOUND),
        (Read(id=1), Seen(2)),
        (StartTurn(id=1, prompt='b'), Ran('echo: b')),
        (Create(prompt='c'), Made(2)),
    )),
    Example(
        'list-order-and-pages',
        'newest updated_at first, ties by id; merged, then paged', capacity=3,
        steps=(
        (Create(prompt='a'), Made(1)),
        (Create(prompt='b', defer=True), Made(2)),
        (Create(prompt='c'), Made(3)),
        (StartTurn(id=1, prompt='d'), Ran('echo: d')),
        (Restart(), OK),
        (Create(prompt='e', defer=True), Made(4)),
        (List(), Listed(4, 1, 3, 2)),
        (List(offset=0, limit=1), Listed(4)),
        (List(offset=1, limit=1), Listed(1)),
        (List(offset=1), Listed(1, 3, 2)),
        (List(limit=2), Listed(4, 1)),
        (List(offset=2, limit=2), Listed(3, 2)),
        (List(offset=9, limit=1), Listed()),
        (List(offset=0, limit=0), Listed()),
    )),
    Example(
        'scripted-failures',
        'a build that fails gives its place back; a turn that fails appends and saves nothing',
        steps=(
        (Create(prompt='/fail-build'), AGENT_ERROR),
        (Create(prompt='a'), Made(1)),
        (Create(prompt='/fail'), AGENT_ERROR),
        (Read(id=2), Seen(0)),
        (LoadPersisted(id=2), NONE),
        (Create(prompt='b'), AGENT_ERROR),
        (StartTurn(id=1, prompt='/fail'), AGENT_ERROR),
        (Read(id=1), Seen(2)),
        (StartTurn(id=1, prompt='/fail', host_mode=True), AGENT_ERROR),
        (Read(id=1), Seen(2)),
        (StartTurn(id=2, prompt='c'), Ran('echo: c')),
        (Archive(id=2), OK),
        (Create(prompt='/fail-build', defer=True), AGENT_ERROR),
        (Create(prompt='/fail', host_mode=True), AGENT_ERROR),
        (Read(id=3), Seen(0)),
        (ObserveStore(), Store({1: 2})),
    )),
    Example(
        'pages-over-stored-and-live',
        'pages of stored-only sessions alone, then beside live ones: every row a page needs',
        capacity=3,
        steps=(
        (Create(prompt='a'), Made(1)),
        (Create(prompt='b'), Made(2)),
        (Create(prompt='c'), Made(3)),
        (Restart(), OK),
        (List(offset=1, limit=1), Listed(2)),
        (List(offset=0, limit=2), Listed(3, 2)),
        (List(offset=2, limit=1), Listed(1)),
        (List(offset=1, limit=2), Listed(2, 1)),
        (Create(prompt='d', defer=True), Made(4)),
        (Create(prompt='e', defer=True), Made(5)),
        (List(offset=2, limit=1), Listed(3)),
        (List(offset=0, limit=3), Listed(5, 4, 3)),
        (List(offset=3, limit=2), Listed(2, 1)),
        (List(offset=1, limit=3), Listed(4, 3, 2)),
        (StartTurn(id=4, prompt='f'), Ran('echo: f')),
        (List(offset=2, limit=2), Listed(3, 2)),
        (List(offset=0, limit=1), Listed(4)),
    )),
    Example(
        'list-live-over-stored',
        'a live session shows its live state, not its stored copy',
        steps=(
        (Create(prompt='serve', host_mode=True), PENDING),
        (CancelAllCheckpointers(), OK),
        (HostMessage(id=1, text='x'), OK),
        (List(), Listed(1)),
        (Read(id=1), Seen(4, active=True)),
        (ObserveStore(), Store({1: 2})),
        (LoadPersisted(id=1), Stored(2)),
    )),
    Example(
        'stop-resume',
        'disarmed checkpointers write nothing; turn saves still do; rearm resumes',
        steps=(
        (Create(prompt='serve', host_mode=True), PENDING),
        (CancelAllCheckpointers(), OK),
        (HostMessage(id=1, text='x'), OK),
        (ObserveStore(), Store({1: 2})),
        (RearmAllCheckpointers(), OK),
        (HostMessage(id=1, text='y'), OK),
        (ObserveStore(), Store({1: 6})),
        (Create(prompt='later', defer=True), Made(2)),
        (CancelAllCheckpointers(), OK),
        (StartTurn(id=2, prompt='plain'), Ran('echo: plain')),
        (ObserveStore(), Store({1: 6, 2: 2})),
        (RearmAllCheckpointers(), OK),
    )),
    Example(
        'compaction-saved',
        'a same-length rewrite is a new revision, and it is checkpointed',
        steps=(
        (Create(prompt='serve', host_mode=True), PENDING),
        (HostMessage(id=1, text='/compact'), OK),
        (ObserveStore(), Store({1: 2})),
        (HostMessage(id=1, text='/compact'), OK),
        (LoadPersisted(id=1), Stored(2)),
        (Read(id=1), Seen(2, active=True)),
    )),
    Example(
        'compact-prompt-is-a-turn',
        'a prompt is a turn, /compact included, in host mode or not; only a message a host '
        'loop serves compacts',
        pins='COMPACT',
        steps=(
        (Create(prompt='/compact', host_mode=True), PENDING),
        (Read(id=1), Seen(2, active=True)),
        (ObserveStore(), Store({1: 2})),
        (HostMessage(id=1, text='/compact'), OK),
        (Read(id=1), Seen(2, active=True)),
        (Interrupt(id=1), OK, {1: AGENT_ERROR}),
        (StartTurn(id=1, prompt='/compact'), Ran('echo: /compact')),
        (StartTurn(id=1, prompt='/compact', host_mode=True), PENDING),
        (Read(id=1), Seen(6, active=True)),
        (Interrupt(id=1), OK, {1: AGENT_ERROR}),
        (LoadPersisted(id=1), Stored(6)),
    )),
    Example(
        'restart-crashes-pending',
        'a restart drops pending calls; store, clock and ids go on',
        steps=(
        (Create(prompt='serve', host_mode=True), PENDING),
        (Create(prompt='b'), Made(2)),
        (Restart(), OK, {1: CRASHED}),
        (Read(id=1), Seen(2)),
        (Read(id=2), Seen(2)),
        (List(), Listed(2, 1)),
        (Create(prompt='c'), Made(3)),
        (Read(id=3), Seen(2)),
    )),
    Example(
        'failed-save',
        'a turn whose save fails answers SESSION_STORE_ERROR but happened: live, not stored, '
        'until the next save stores it',
        steps=(
        (Create(prompt='a'), Made(1)),
        (FailNextSave(), OK),
        (Read(id=1), Seen(2)),
        (StartTurn(id=1, prompt='b'), STORE_ERROR),
        (Read(id=1), Seen(4)),
        (LoadPersisted(id=1), Stored(2)),
        (List(), Listed(1)),
        (StartTurn(id=1, prompt='c'), Ran('echo: c')),
        (LoadPersisted(id=1), Stored(6)),
    )),
    Example(
        'failed-save-and-a-crash',
        'what a failed save left unsaved is lost by a crash; a refusal outlives a restart',
        steps=(
        (Create(prompt='a'), Made(1)),
        (FailNextSave(), OK),
        (StartTurn(id=1, prompt='b'), STORE_ERROR),
        (FailNextSave(), OK),
        (Create(prompt='c', defer=True), STORE_ERROR),
        (Read(id=2), Seen(0)),
        (ObserveStore(), Store({1: 2})),
        (Restart(), OK),
        (Read(id=1), Seen(2)),
        (Read(id=2), NOT_FOUND),
        (FailNextSave(), OK),
        (Restart(), OK),
        (Create(prompt='d'), STORE_ERROR),
        (Archive(id=3), OK),
        (Create(prompt='e'), Made(4)),
        (ObserveStore(), Store({1: 2, 4: 2})),
    )),
    Example(
        'failed-checkpoint',
        'a refused checkpoint is logged, the host loop serves on, and its next checkpoint saves',
        steps=(
        (FailNextSave(), OK),
        (Create(prompt='serve', host_mode=True), PENDING),
        (ObserveStore(), Store({})),
        (HostMessage(id=1, text='x'), OK),
        (ObserveStore(), Store({1: 4})),
        (FailNextSave(), OK),
        (HostMessage(id=1, text='y'), OK),
        (Read(id=1), Seen(6, active=True)),
        (ObserveStore(), Store({1: 4})),
        (Interrupt(id=1), OK, {1: AGENT_ERROR}),
        (LoadPersisted(id=1), Stored(4)),
    )),
    Example(
        'events-a-slow-reader-lags',
        'a subscriber reading only after each step loses the oldest of the 259 events one step '
        'publishes (3 for the turn, 2 per queued message): it keeps 256, lagged counts 3; and '
        'past 256 messages a compaction still keeps the latest reply',
        capacity=1, persistent=False,
        steps=(
        (Create(prompt='a', defer=True), Made(1)),
        *QUEUED_128,
        (StartTurn(id=1, prompt='serve', host_mode=True), PENDING),
        (HostMessage(id=1, text='/compact'), OK),
        (Read(id=1), Seen(258, active=True)),
        (Interrupt(id=1), OK, {1: AGENT_ERROR}),
        (Archive(id=1), OK),
    )),
    Example(
        'ephemeral',
        'the ephemeral service: live sessions only; persistence calls disabled', persistent=False,
        steps=(
        (Create(prompt='a'), Made(1)),
        (StartTurn(id=1, prompt='b'), Ran('echo: b')),
        (List(), Listed(1)),
        (LoadPersisted(id=1), PERSISTENCE_DISABLED),
        (CancelAllCheckpointers(), PERSISTENCE_DISABLED),
        (RearmAllCheckpointers(), PERSISTENCE_DISABLED),
        (FailNextSave(), OK),
        (StartTurn(id=1, prompt='c'), Ran('echo: c')),
        (ObserveStore(), Store({})),
        (Archive(id=1), OK),
        (Archive(id=1), NOT_FOUND),
        (Create(prompt='c'), Made(2)),
        (Restart(), OK),
        (Read(id=2), NOT_FOUND),
        (List(), Listed()),
    )),
    Example(
        'ephemeral-host',
        'an ephemeral host loop serves messages; a restart loses it', persistent=False,
        steps=(
        (Create(prompt='serve', host_mode=True), PENDING),
        (HostMessage(id=1, text='x'), OK),
        (Read(id=1), Seen(4, active=True)),
        (Restart(), OK, {1: CRASHED}),
        (Read(id=1), NOT_FOUND),
    )),
)

__all__ = ["EXAMPLES", "Example", "completes", "holds"]
