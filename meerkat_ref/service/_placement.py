"""Where the reference puts its scheduling points: the table ports follow (normative).

A port that places its hooks as listed here, with the same task labels
(``spec/ADAPTER.md`` section 6), replays the oracle's recorded schedules
step for step; one that places them elsewhere is still judged by every rule,
but a recorded schedule is then "followed where it could".  The table in
``spec/ADAPTER.md`` is generated from ``SEQUENCES`` (``python -m
meerkat_ref.specgen.docs``), and ``tests/test_placement.py`` runs every row
against the reference and fails if the points it passes differ.

Each row: a call in a situation, and the points it passes in order, one call
alone, each point released as soon as it is reached.  ``caller`` is the task
that runs the call (``c:<client>`` or ``req <id>``), ``session`` the
session's own task (``session s<hex>``).  The text after a point says what
happened since the previous one.

Footprints (``FOOTPRINTS``, declared by both services as ``footprints``):
what the code after each point may touch, in the contract's resources
(``RESOURCES``), never the service's private names.  The explorer's
partial-order reduction (DPOR) lets two steps commute only when neither
writes what the other touches, so a declaration that leaves something out
makes it skip real interleavings: it is checked (``meerkat-ref check
--audit`` runs both orders of steps it calls independent and compares the
whole state; in process, every store call, clock tick and id taken is seen
at the target's own seams and compared with the declaration as it
happens, and for those three the footprint is what was seen).
A point kind, a role or a call declared nowhere makes its step conflict
with every other.  Adding a point means declaring what follows it here.

Why a table beside the points, keyed by (role, kind), rather than an
argument of ``points.point(kind, session_id, ...)`` at each call site: the
table is one list, normative for ports and generated into
``spec/ADAPTER.md`` like the points themselves (a port declares with the
same names); the points are passed by parts below the service (the
agent's steps, the store's ``PointedStore``) that know nothing of the
service's resources, while what follows a point is mostly the service's
own code; and the seam keeps the signature production code and ports
already implement.  The price: a declaration covers every path that can
follow its kind (a ``store.exists`` may be archive's last store call, so it
declares releasing the gate), coarser than one per call site.

Why a declaration covers a whole *step* (the released task and every task
it wakes or cancels) rather than each task its own code after its own last
point: a task woken out of a wait -- a session's task taking a turn from
its inbox, a host loop taking an injected message, a gate's next waiter,
a task cancelled where it was parked -- runs what the waker caused, which
its own last point cannot know (a host loop's last point was a store save;
charging it with that save whenever an ``inject`` wakes it would make every
inject conflict with the store).  The waker's point is where that is known.
"""

from __future__ import annotations

from dataclasses import dataclass

from .._seams import Footprints, Touches

KINDS: tuple[tuple[str, str], ...] = (
    ("agent.step", "an agent works on the session: building it (in the caller's task), or a "
     "step of a turn, host message or compaction (in the session's task)"),
    ("checkpoint", "a host loop is about to save through its checkpointer"),
    ("gate.acquire", "about to take a session's checkpointer gate (every store write, archive, "
     "the checkpointer sweeps)"),
    ("task.start", "a session's task has started and is about to take its first command"),
    ("cmd.send", "about to hand a turn to the session's task"),
    ("store.save", "about to write a session to the store"),
    ("store.load", "about to read one session from the store"),
    ("store.list", "about to read a page of the store's listing"),
    ("store.delete", "about to delete a session's row"),
    ("store.exists", "about to ask whether the store has a session"),
    ("archive.stop", "archive is about to stop the live session's task (and wait for it)"),
    ("map.acquire", "the seed variant only: about to take its gate map's lock"),
)
"""Every point kind the reference (or its seed variant) uses, and what it precedes."""


@dataclass(frozen=True)
class Row:
    call: str  # what is sent, in model terms
    situation: str
    points: tuple[tuple[str, str, str], ...]  # (task, kind, what happened just before it)


SEQUENCES: tuple[Row, ...] = (
    Row("create", "capacity free; first turn runs", (
        ("caller", "agent.step", "the session's id is taken (its creation tick comes after)"),
        ("caller", "cmd.send", "built and registered, gate recorded, the session task started"),
        ("session", "task.start", "the turn waits in the new task's inbox"),
        ("session", "agent.step", "the turn is taken up"),
        ("session", "agent.step", "the user message is pushed"),
        ("session", "agent.step", "the reply is pushed"),
        ("caller", "gate.acquire", "the turn ended; the session is idle again"),
        ("caller", "store.save", "the gate is held, not archived, the snapshot is newer"),
    )),
    Row("create defer", "capacity free", (
        ("caller", "agent.step", "the session's id is taken (its creation tick comes after)"),
        ("caller", "gate.acquire", "built and registered, gate recorded, the task started"),
        ("caller", "store.save", "the gate is held"),
        ("session", "task.start", "the task waits for its first command"),
    )),
    Row("create host_mode", "capacity free", (
        ("caller", "agent.step", "the session's id is taken (its creation tick comes after)"),
        ("caller", "cmd.send", "built and registered, gate recorded, the session task started"),
        ("session", "task.start", "the turn waits in the new task's inbox"),
        ("session", "agent.step", "the turn is taken up"),
        ("session", "agent.step", "the user message is pushed"),
        ("session", "agent.step", "the reply is pushed"),
        ("session", "checkpoint", "the host loop's first checkpoint"),
        ("session", "gate.acquire", ""),
        ("session", "store.save", "armed, not archived, newer: it saves; the loop then waits"),
    )),
    Row("start_turn", "a live, idle session", (
        ("caller", "cmd.send", "admitted (busy is decided before any point)"),
        ("session", "agent.step", "the turn is taken up"),
        ("session", "agent.step", "the user message is pushed"),
        ("session", "agent.step", "the reply is pushed"),
        ("caller", "gate.acquire", "the turn ended; the session is idle again"),
        ("caller", "store.save", "the gate is held, not archived, the snapshot is newer"),
    )),
    Row("start_turn", "an unknown or archived session", ()),
    Row("inject", "a serving host loop", (
        ("session", "agent.step", "the loop took the message"),
        ("session", "agent.step", "the user message is pushed"),
        ("session", "agent.step", "the reply is pushed"),
        ("session", "checkpoint", ""),
        ("session", "gate.acquire", ""),
        ("session", "store.save", "armed, not archived, newer"),
    )),
    Row("inject /compact", "a serving host loop", (
        ("session", "agent.step", "the loop took the message"),
        ("session", "checkpoint", "the history was rewritten to the same length"),
        ("session", "gate.acquire", ""),
        ("session", "store.save", "armed, not archived, newer"),
    )),
    Row("inject", "a serving host loop, checkpointers disarmed", (
        ("session", "agent.step", "the loop took the message"),
        ("session", "agent.step", "the user message is pushed"),
        ("session", "agent.step", "the reply is pushed"),
        ("session", "checkpoint", ""),
        ("session", "gate.acquire", "disarmed: nothing is saved"),
    )),
    Row("inject", "a live session with no host loop (queued)", ()),
    Row("read", "a live session", ()),
    Row("read", "a stored-only session", (("caller", "store.load", ""),)),
    Row("list", "", (("caller", "store.list", "the live summaries were taken"),)),
    Row("load_persisted", "", (("caller", "store.load", ""),)),
    Row("cancel_all_checkpointers", "three live sessions", (
        ("caller", "gate.acquire", "the gates there are now are listed; one point per gate"),
        ("caller", "gate.acquire", "the previous gate was disarmed"),
        ("caller", "gate.acquire", "the previous gate was disarmed"),
    )),
    Row("interrupt", "a serving host loop", ()),
    Row("archive", "a live, idle session", (
        ("caller", "gate.acquire", "its gate was found"),
        ("caller", "store.exists", "the gate is held and marked archived"),
        ("caller", "store.delete", ""),
        ("caller", "archive.stop", "the row is gone (the commit point)"),
    )),
    Row("archive", "a stored-only session", (
        ("caller", "store.exists", "no gate: is it stored?"),
        ("caller", "gate.acquire", "stored: a tombstone gate was recorded"),
        ("caller", "store.exists", "the gate is held and marked archived"),
        ("caller", "store.delete", ""),
    )),
    Row("archive", "an unknown id", (("caller", "store.exists", "no gate: is it stored?"),)),
)
"""One call at a time, on the reference (persistent, memory store)."""


RESOURCES: tuple[tuple[str, str], ...] = (
    ("row:<id>", "the session's row in the store (a listing reads `row:*`)"),
    ("live:<id>", "whether the session is live: its entry in the map of live sessions and "
     "running session tasks (a listing reads `live:*`)"),
    ("turn:<id>", "the live session's turn slot: its busy flag, the turn its task runs or has "
     "queued, an interrupt asked for"),
    ("agent:<id>", "the session's agent: its history, revision, usage and timestamps"),
    ("inbox:<id>", "messages injected for its host loop and not yet taken"),
    ("gate:<id>", "its checkpointer gate: the lock, armed, archived, the revision last saved, "
     "and its entry in the map of gates (the checkpointer sweeps read `gate:*`)"),
    ("capacity", "the places of capacity held (sessions being built, live session tasks)"),
    ("clock", "the shared logical clock: every tick (timestamps are part of the state)"),
    ("ids", "the counter new session ids are taken from"),
)
"""The resources a footprint names; ``<id>`` is the session the point names (``*``: every one)."""

_t = Touches.of
_LOCK = "gate:<id> inbox:<id>"
"""Releasing a gate's lock: its next waiter runs on (a host loop then takes a queued message)."""

POINT_FOOTPRINTS: dict[tuple[str, str], Touches] = {
    # Building (create): the tick, registration, the gate recorded, the session task
    # started; a refused registration gives the place of capacity back.
    ("caller", "agent.step"): _t(writes="clock capacity live:<id> turn:<id> agent:<id> "
                                        "inbox:<id> gate:<id>"),
    # A turn's step: a message pushed (a tick); at its end the busy flag cleared and
    # the caller woken; a host loop goes on to its checkpoint.
    ("session", "agent.step"): _t(writes="clock agent:<id> turn:<id>"),
    ("session", "checkpoint"): _t(reads="agent:<id>"),
    # The task's first command taken up, if one is queued (a create's first turn).
    # (Declared as reading live:<id> only -- it commutes with the send in every state the
    # audit compared -- DPOR ran fewer schedules than the Mazurkiewicz traces counted
    # under the same declarations on creates-at-capacity: not kept until that is
    # understood.)
    ("session", "task.start"): _t(writes="turn:<id>"),
    # The turn handed over; the session's task takes it up.
    ("caller", "cmd.send"): _t(writes="turn:<id>"),
    ("caller", "gate.acquire"): _t(writes=_LOCK),
    ("session", "gate.acquire"): _t(writes=_LOCK),
    ("caller", "store.save"): _t(writes="row:<id> " + _LOCK),
    ("session", "store.save"): _t(writes="row:<id> " + _LOCK),
    ("caller", "store.load"): _t(reads="row:<id>"),
    ("caller", "store.list"): _t(reads="row:*"),
    # Archive's own steps: the tombstone, the live session taken out of the map,
    # the gate forgotten and its lock released.
    ("caller", "store.exists"): _t(reads="row:<id>", writes="live:<id> " + _LOCK),
    ("caller", "store.delete"): _t(writes="row:<id> live:<id> " + _LOCK),
    # The session's task cancelled and ended: every waiter answered, capacity freed.
    ("caller", "archive.stop"): _t(writes="live:<id> turn:<id> capacity " + _LOCK),
    ("caller", "map.acquire"): _t(writes="gate:<id>"),
}
"""What a step released at each (role, kind) may touch (every task it wakes included)."""

CALL_FOOTPRINTS: dict[str, Touches] = {
    "create": _t(reads="live:*", writes="ids capacity"),
    "start_turn": _t(reads="gate:<id> live:<id>", writes="turn:<id>"),
    "inject": _t(reads="live:<id>", writes="inbox:<id>"),
    # Cancels the running turn: its task unwinds (a held gate is released).
    "interrupt": _t(reads="live:<id>", writes="turn:<id> " + _LOCK),
    "read": _t(reads="live:<id> turn:<id> agent:<id>"),
    "list": _t(reads="live:* turn:* agent:*"),
    "archive": _t(reads="gate:<id> live:<id>"),
    "load_persisted": _t(),
    "cancel_all_checkpointers": _t(reads="gate:*"),
    "rearm_all_checkpointers": _t(reads="gate:*"),
}
"""What a call runs from its start to its first point (``<id>``: the session it names)."""

FOOTPRINTS = Footprints(POINT_FOOTPRINTS, CALL_FOOTPRINTS)
"""The persistent reference's declaration (``PersistentSessionService.footprints``)."""

EPHEMERAL_FOOTPRINTS = Footprints(
    {**POINT_FOOTPRINTS,
     ("session", "agent.step"): _t(writes="clock agent:<id> turn:<id> inbox:<id>")},
    {**CALL_FOOTPRINTS, "archive": _t(writes="live:<id>")},
)
"""The ephemeral service's: its archive takes the session out of the map before its point,
and a host loop with no checkpointer goes from a step straight on to its inbox."""

SEED_FOOTPRINTS = Footprints(
    {**POINT_FOOTPRINTS,
     ("caller", "cmd.send"): _t(reads="live:<id> agent:<id>", writes="turn:<id>")},
    CALL_FOOTPRINTS,
)
"""The seed variant's (``testing``): its save after a turn reads the live session at a
``cmd.send`` (window 1)."""


__all__ = ["CALL_FOOTPRINTS", "EPHEMERAL_FOOTPRINTS", "FOOTPRINTS", "KINDS", "POINT_FOOTPRINTS",
           "RESOURCES", "SEED_FOOTPRINTS", "SEQUENCES", "Row"]
