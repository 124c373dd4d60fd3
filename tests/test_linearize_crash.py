"""A crash cuts what was in flight: the linearizability check allows exactly that.

``inject`` answers once its message is queued ([HOST-MESSAGE]); the host loop
serves it and checkpoints afterwards.  A crash in between loses the message
(and the whole session, if none of its checkpoints had landed), and the check
accepts it, but only when the run crashed: the restart the explorer makes
for its read-back comes after a quiescent run, when every checkpoint landed.
"""

from __future__ import annotations

from meerkat_ref._model import model
from meerkat_ref.oracle.engine._linearize import check
from meerkat_ref.oracle.engine._monitor import Call


def cut_inject(crashed_at: int | None) -> str | None:
    """A host-mode create never answered, an inject answered ok, then a restart: s1 is gone."""
    history = [
        Call("create", model.Create("serve", host_mode=True), invoked=0),
        Call("inject", model.HostMessage(1, "ping"), invoked=1, responded=2, result="ok"),
        Call("process", model.Restart(), invoked=4, responded=4, result="ok"),
        Call("post", model.Read(1), invoked=5, responded=5, result="SESSION_NOT_FOUND"),
    ]
    return check(history, capacity=2, crashed_at=crashed_at)


def test_a_crash_may_cut_an_injected_message_s_checkpoint() -> None:
    """[HOST-MESSAGE]: inject answers when queued; a crash before the checkpoint loses it."""
    assert cut_inject(crashed_at=3) is None


def test_without_a_crash_the_injected_message_s_checkpoint_must_have_landed() -> None:
    """The read-back's restart comes after a quiescent run: every checkpoint landed."""
    found = cut_inject(crashed_at=None)
    assert found is not None and "no order of the calls matches the model" in found
