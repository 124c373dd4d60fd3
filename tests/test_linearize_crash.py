"""A crash cuts what was in flight: the linearizability check allows exactly that.

``inject`` answers once its message is queued ([HOST-MESSAGE]); the host loop
serves it and checkpoints afterwards.  A crash in between loses the message
(and the whole session, if none of its checkpoints had landed), and the check
accepts it, but only when the run crashed: the restart the explorer makes
for its read-back comes after a quiescent run (``Quiet``), when every
checkpoint had landed.
"""

from __future__ import annotations

from meerkat_ref._model import model
from meerkat_ref.oracle.engine._linearize import Event, Invoke, Quiet, Respond, Restart, check


def cut_inject(quiet_first: bool) -> tuple[int, str] | None:
    """A host-mode create never answered, an inject answered ok, then a restart: s1 is gone."""
    events: list[Event] = [
        Invoke(0, 0, model.Create("serve", host_mode=True)),
        Invoke(1, 1, model.HostMessage(1, "ping")),
        Respond(2, 1, model.Ok(None)),
    ]
    if quiet_first:
        events.append(Quiet(3))
    events += [Restart(4), Invoke(5, 2, model.Read(1)),
               Respond(5, 2, model.Err("SESSION_NOT_FOUND"))]
    return check(events, capacity=2)


def test_a_crash_may_cut_an_injected_message_s_checkpoint() -> None:
    """[HOST-MESSAGE]: inject answers when queued; a crash before the checkpoint loses it."""
    assert cut_inject(quiet_first=False) is None


def test_without_a_crash_the_injected_message_s_checkpoint_must_have_landed() -> None:
    """The read-back's restart comes after a quiescent run: every checkpoint landed."""
    found = cut_inject(quiet_first=True)
    assert found is not None and "no interleaving of the calls explains it" in found[1]
