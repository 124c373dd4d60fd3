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
"""

from __future__ import annotations

from dataclasses import dataclass

KINDS: tuple[tuple[str, str], ...] = (
    ("agent.step", "an agent works on the session: building it (in the caller's task), or a "
     "step of a turn, host message or compaction (in the session's task)"),
    ("checkpoint", "a host loop is about to save through its checkpointer"),
    ("gate.acquire", "about to take a session's checkpointer gate (every store write, archive, "
     "the checkpointer sweeps)"),
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
    )),
    Row("create host_mode", "capacity free", (
        ("caller", "agent.step", "the session's id is taken (its creation tick comes after)"),
        ("caller", "cmd.send", "built and registered, gate recorded, the session task started"),
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


__all__ = ["KINDS", "SEQUENCES", "Row"]
