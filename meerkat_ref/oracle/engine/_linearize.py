"""Linearizability of a recorded history against the pure model (Wing & Gong, memoised).

A history is the plain data the monitor records: each call's client, its
model operation, its invocation and response steps, and its observed result.
It is linearizable if some total order of the calls (1) respects real time:
a call that responded before another was invoked comes first, and calls of
one client keep their program order; and (2) replayed through
``models.sessions.step`` gives every call the result it observed.  Calls that
never responded (cut by a crash) may be placed anywhere after their
invocation, or left out.  A crash is a ``Restart`` at its step.

What is compared (the *observation*), and the one relaxation:

- Results are compared by outcome: the error code, or ``ok`` (``load_persisted``
  also says whether it found the session).  Payloads (timestamps, counts) are
  not: under concurrency a host loop serves injected messages in the
  background, after ``inject`` returned, so the model's step for ``inject``
  (which serves at once) would predict counts the real read need not see.
- A create or turn that ends ``AGENT_ERROR`` while an archive or an
  interrupt of its session was in flight was cancelled by it: like an
  unanswered call, its effect may or may not have happened, and its answer
  is not compared.  An archive that answered ``SESSION_NOT_FOUND`` does not
  count: it changed nothing.  A plain turn takes time too: an ``interrupt``
  answered ``ok`` or ``SESSION_NOT_RUNNING`` while a plain create or turn of
  its session was in flight (a model of atomic turns knows no such moment)
  is accepted as a call with no effect of its own.  (Found by the sweep:
  ``create + interrupt``.)
- A turn takes time: while one runs, a ``start_turn`` of the same session is
  answered ``SESSION_BUSY`` (clause TURN-BUSY), which a model of atomic turns
  cannot produce.  A ``SESSION_BUSY`` answer is accepted, as a call with no
  effect, when another create or turn of that session overlaps it in real
  time.
- Capacity is reserved when a create starts, before its session exists
  (clause CAPACITY), so a create can be refused (``Max sessions reached``)
  while another create is still building.  Such a refusal is accepted, as a
  call with no effect, when another create overlaps it in real time.
- A create makes its session live before it is stored (clause CREATE: the
  session is registered, its first turn runs, then it is saved), so while a
  create runs a ``read`` may already see the session that a
  ``load_persisted`` does not find yet.  A ``load_persisted`` answered
  "none" is accepted, as a call with no effect, when a create of that
  session (or one whose id is not known) overlaps it in real time.  For the
  same reason a create that never answered (cut by a crash, or cancelled by
  an archive) may have taken effect as live only: placed in the order, it
  may leave its session out of the store, so a restart forgets it although
  calls before the crash found it live.  (Found by Hypothesis: ``create +
  inject`` with a crash.)  An acknowledged create is always stored.
- ``inject`` answers once its message is queued, before a host loop serves
  it and checkpoints (clause HOST-MESSAGE); the model serves and
  checkpoints within the step.  So a host message invoked before a crash
  may have left the store as it was: its checkpoint was cut (a restart then
  forgets it, or the whole session if no checkpoint of it had landed yet).
  Without a crash the run ends quiescent, every checkpoint landed, and the
  model's step stands.  (Found by the default sweep scope: ``create-host +
  inject`` with a crash.)
- A host-mode call is linearized where it starts: the model answers
  ``Pending``; its eventual answer must be ``AGENT_ERROR`` (cancelled by an
  interrupt or archive), checked separately.
- ``list`` is two reads, not one atomic snapshot: the live sessions, then a
  page of the store.  It is not placed in the order.  Instead (RELAXATION):
  every session it shows must be visible (live or stored, not archived) at
  some point of its interval in the chosen order -- which the monitor's
  ARCHIVE-FINAL rule checks for archives -- and every session whose create
  responded before the list was invoked, and whose archive was not invoked
  before the list responded, must be in it.  A ``list`` that overlaps no
  other call, in a history with no host loop, *is* placed in the order, as
  one atomic read, and the ids it shows must be the model's page, in order
  (clause LIST-PAGE: merged, then paged).
- Runs with an injected store fault are not checked: the model has no faults.
  (Their invariants still are.)
- Not checked either (a known gap of the atomic model, left for a finer
  one): histories where a host-mode call overlaps ``cancel_all_checkpointers``
  or ``rearm_all_checkpointers``, or a host-mode create overlaps an
  ``interrupt``.  A host-mode create registers its session
  before its first checkpoint, so a sweep can land in between; the model
  makes the create and its first checkpoint one step.  The CHECKPOINT-GATE
  and ARCHIVE rules still check these runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from ..._errors import CANCELLED_TEXT
from ..._model import model
from ..._types import SessionId
from ._monitor import Call


@dataclass(frozen=True)
class _Op:
    index: int
    client: str
    op: model.Op
    observed: str
    invoked: int
    responded: int | None
    host: bool
    before_crash: bool = False  # invoked before the run's crash (not the read-back restart)


def _model_op(call: Call, history: Sequence[Call]) -> model.Op | None:
    """The model operation a call stands for; ``None`` for raw input and a relaxed ``list``."""
    if isinstance(call.op, dict):
        return None
    if isinstance(call.op, model.List) and (
        call.responded is None
        or any(c.host for c in history)
        or any(o is not call and o.client != "process" and _overlaps(o, call) for o in history)
    ):
        return None
    op: model.Op = call.op  # type: ignore[assignment]
    return op


def observe(op: model.Op, result: model.Result) -> str:
    """The part of a model result the history is compared on."""
    if isinstance(result, model.Err):
        return str(result.code)
    if isinstance(result, model.Pending):
        return "pending"
    if isinstance(op, model.LoadPersisted) and isinstance(result, model.Ok):
        return "ok:none" if result.value is None else "ok:found"
    if isinstance(op, model.List) and isinstance(result, model.Ok):
        rows = result.value if isinstance(result.value, tuple) else ()
        return "ok:" + ",".join(SessionId.parse(r.session_id).short() for r in rows)
    if (
        isinstance(op, model.Create)
        and isinstance(result, model.Ok)
        and isinstance(result.value, model.RunResult)
    ):
        # The id too: concurrent creates take ids in the order they were built.
        return "ok:" + SessionId.parse(result.value.session_id).short()
    return "ok"


def _cancelled_by_archive(call: Call, history: Sequence[Call]) -> bool:
    """A create or turn that ended ``AGENT_ERROR`` while an archive or interrupt of it ran.

    Not an archive that answered ``SESSION_NOT_FOUND``: it found nothing and
    changed nothing (clause ARCHIVE), so it cancelled nothing either.
    """
    if call.name not in ("create", "start_turn") or call.result != "AGENT_ERROR":
        return False
    responded = call.responded if call.responded is not None else 1 << 60
    return any(
        c.name in ("archive", "interrupt")
        and not (c.name == "archive" and c.result == "SESSION_NOT_FOUND")
        and c.invoked <= responded
        and (call.name == "create" or c.session == call.session)
        for c in history
    )


def _overlapping_turn(call: Call, history: Sequence[Call]) -> bool:
    """Another create or turn of the same session ran during ``call``'s interval."""
    end = call.responded if call.responded is not None else 1 << 60
    for other in history:
        if other is call or other.name not in ("create", "start_turn"):
            continue
        session = other.created if other.name == "create" else other.session
        if other.name == "create" and session is None:
            session = call.session  # a host-mode or failed create: its id is unknown
        other_end = other.responded if other.responded is not None else 1 << 60
        if session == call.session and other.invoked <= end and other_end >= call.invoked:
            return True
    return False


def _interrupted_plain_turn(call: Call, history: Sequence[Call]) -> bool:
    """An ``interrupt`` answered ok or not running while a plain create or turn of it ran."""
    if call.name != "interrupt" or call.result not in ("ok", "SESSION_NOT_RUNNING"):
        return False
    return any(
        o.name in ("create", "start_turn") and not o.host and _overlaps(o, call)
        and (o.session == call.session or (o.name == "create" and o.session is None))
        for o in history
    )


def _overlaps(a: Call, b: Call) -> bool:
    a_end = a.responded if a.responded is not None else 1 << 60
    b_end = b.responded if b.responded is not None else 1 << 60
    return a.invoked <= b_end and b.invoked <= a_end


def _refused_for_a_reservation(call: Call, history: Sequence[Call]) -> bool:
    if call.name != "create" or not call.message.startswith("Max sessions reached"):
        return False
    return any(o is not call and o.name == "create" and _overlaps(o, call) for o in history)


def _not_stored_yet(call: Call, history: Sequence[Call]) -> bool:
    """A ``load_persisted`` that found nothing while a create of its session ran."""
    if call.name != "load_persisted" or call.result != "ok:none":
        return False
    return any(
        o.name == "create" and o.created in (None, call.session) and _overlaps(o, call)
        for o in history
    )


def _effects(o: _Op, before: model.State, after: model.State) -> tuple[model.State, ...]:
    """The states ``o`` may leave: the model's, and two that a crash can leave.

    An unanswered create: live only.  A host message invoked before a crash:
    served (or not) but its checkpoint cut, the store as before the step.
    """
    if isinstance(o.op, model.HostMessage) and o.before_crash and after.store != before.store:
        return after, replace(after, store=before.store)
    if o.responded is not None or not isinstance(o.op, model.Create):
        return (after,)
    kept = dict(before.store)
    unsaved = tuple((sid, row) for sid, row in after.store if sid in kept)
    if len(unsaved) == len(after.store):
        return (after,)
    return after, replace(after, store=unsaved)


def check(history: Sequence[Call], capacity: int, crashed_at: int | None = None) -> str | None:
    """``None`` if the history is linearizable, else a sentence saying what is not.

    ``crashed_at``: the step at which the run crashed, if it did (the restart
    the read-back makes after a run is not a crash: the run was quiescent).
    """
    sweeps = [c for c in history if c.name.endswith("_all_checkpointers")]
    hosts = [c for c in history if c.host]
    if any(_overlaps(h, s) for h in hosts for s in sweeps):
        return None  # the known gap in the module docstring
    interrupts = [c for c in history if c.name == "interrupt"]
    if any(h.name == "create" and _overlaps(h, i) for h in hosts for i in interrupts):
        return None  # the same gap: the create and its first checkpoint are one model step
    ops: list[_Op] = []
    for index, call in enumerate(history):
        op = _model_op(call, history)
        if op is None:
            continue
        host = call.host
        observed = call.result or ""
        if call.name == "create" and observed == "ok":
            observed = f"ok:{call.created}"
        if call.name == "list" and observed == "ok":
            observed = "ok:" + ",".join(call.shown)
        if host and call.responded is not None:
            if observed not in ("AGENT_ERROR", "SESSION_NOT_FOUND", "SESSION_BUSY"):
                return (
                    f"{call.client}: host-mode {call.name} ended with {observed}, not AGENT_ERROR"
                )
            if observed == "AGENT_ERROR" and call.message == CANCELLED_TEXT:
                observed = "pending"  # its loop ran until an interrupt or archive ended it
        responded = call.responded
        if observed == "SESSION_BUSY" and _overlapping_turn(call, history):
            continue  # a turn of this session was running: busy, no effect
        if _interrupted_plain_turn(call, history):
            continue  # a plain turn was running: it is cancelled; no effect of its own
        if _refused_for_a_reservation(call, history):
            continue  # another create held the last place: refused, no effect
        if _not_stored_yet(call, history):
            continue  # its create had made it live, not yet stored: no effect
        if _cancelled_by_archive(call, history):
            responded = None  # its effect may or may not have happened: archive overtook it
        cut = crashed_at is not None and call.invoked < crashed_at
        ops.append(_Op(index, call.client, op, observed, call.invoked, responded, host, cut))
    required = frozenset(o.index for o in ops if o.responded is not None)
    before: dict[int, set[int]] = {o.index: set() for o in ops}
    for a in ops:
        for b in ops:
            if a.index == b.index or a.responded is None:
                continue
            if a.responded < b.invoked or (a.client == b.client and a.index < b.index):
                before[b.index].add(a.index)
    seen: set[tuple[frozenset[int], model.State]] = set()

    def search(done: frozenset[int], state: model.State) -> bool:
        if required <= done:
            return True
        key = (done, state)
        if key in seen:
            return False
        seen.add(key)
        for o in ops:
            if o.index in done or not before[o.index] <= done:
                continue
            result, after = model.step(state, o.op)
            if observe(o.op, result) != o.observed and o.responded is not None:
                continue
            if any(search(done | {o.index}, s) for s in _effects(o, state, after)):
                return True
        return False

    if search(frozenset(), model.init(capacity, persistent=True)):
        return None
    shown = ", ".join(f"{o.client}:{o.op!r}->{o.observed}@[{o.invoked},{o.responded}]" for o in ops)
    return f"no order of the calls matches the model: {shown}"


def check_lists(history: Sequence[Call]) -> str | None:
    """The relaxation for ``list``: every settled session must be shown."""
    for index, call in enumerate(history):
        if call.name != "list" or call.responded is None or call.result != "ok":
            continue
        if not isinstance(call.op, model.List) or call.op.offset or call.op.limit is not None:
            continue  # a page need not show everything
        shown = set(call.shown)
        for earlier in history[:index]:
            if earlier.name != "create" or earlier.result != "ok" or earlier.created is None:
                continue
            if earlier.responded is None or earlier.responded >= call.invoked:
                continue
            sid = earlier.created
            archived = any(
                c.name == "archive" and c.session == sid and c.invoked <= call.responded
                for c in history
            )
            if not archived and sid not in shown:
                return f"{call.client}: list at step {call.invoked} misses {sid}, created earlier"
    return None
