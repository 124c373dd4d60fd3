"""Two gates of one session at once: the concurrent model keeps each archive's own.

An archive of a stored-only session puts a tombstone gate in the map
([ARCHIVE] step 1); when its store call fails it takes the tombstone out
again ([ARCHIVE-ATOMIC]: nothing changed), though a second archive may
still wait on that gate's lock.  A third archive then finds no gate and
puts in a fresh tombstone: two gates of one session, two locks, and the
archives on them may both find the row and both delete it.  The contract's
steps allow it, and the reference does it; the model kept one gate per
session, so its second delete found no row and the model raised (found by
the full scope, sampled: ``stored/1s/archive+archive+archive/fault/crash``).
Now the dropped gate stays its archives' (``Gate.gen``, ``users``).
"""

from __future__ import annotations

from meerkat_ref._model import model
from meerkat_ref.oracle.engine._linearize import (
    Event,
    Fault,
    Invoke,
    Observe,
    Respond,
    Restart,
    check,
)

OK, NOT_FOUND, STORE_ERROR = (model.Ok(None), model.Err("SESSION_NOT_FOUND"),
                              model.Err("SESSION_STORE_ERROR"))
S1 = "00000000-0000-0000-0000-000000000001"
STORED = ((S1, model.Session(created_at=1, updated_at=3, message_count=2, input_tokens=2,
                              output_tokens=3, last_assistant_text="echo: a", revision=2)),)


def history(third: model.Ok | model.Err, *, fault: bool = True) -> list[Event]:
    """s1 stored; three archives of it at once, the second's store call failing (if
    ``fault``; the store seen unchanged first, so the calls may have gone some way), the
    first answering ok, then the third answering ``third``."""
    return [
        Invoke(0, 0, model.Create("a")),
        Respond(0, 0, model.Ok(model.RunResult(S1, "echo: a", 2, 3, 1))),
        Restart(0),
        Invoke(1, 1, model.Archive(1)),
        Invoke(1, 2, model.Archive(1)),
        Observe(1, STORED),
        *([Fault(2, "store.exists", call=2), Respond(2, 2, STORE_ERROR)] if fault else
          [Respond(2, 2, NOT_FOUND)]),
        Invoke(3, 3, model.Archive(1)),
        Respond(4, 1, OK),
        Respond(5, 3, third),
    ]


def test_an_archive_after_the_first_is_not_found_whatever_the_gates() -> None:
    assert check(history(NOT_FOUND), capacity=2) is None


def test_two_archives_on_two_gates_may_both_find_the_row() -> None:
    assert check(history(OK), capacity=2) is None


def test_without_the_failed_tombstone_two_archives_cannot_both_find_it() -> None:
    found = check(history(OK, fault=False), capacity=2)
    assert found is not None and "no interleaving of the calls explains it" in found[1]
