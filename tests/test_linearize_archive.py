"""An archive that found nothing cancelled nothing: the linearizability check does not excuse it.

A create may end ``AGENT_ERROR`` beside an archive of its session: the
archive stopped its first turn ([ARCHIVE-STOP]).  An archive that answered
``SESSION_NOT_FOUND`` found nothing and left nothing behind ([ARCHIVE]), so
it cannot have: a create refused beside it, with a free place, is a
LINEARIZABLE failure.  That is how a port that puts archive's tombstone in
the map before asking the store (the old CONCURRENCY.md reading) fails the
concurrent phases too, not only the hooks case that pins the rule.
"""

from __future__ import annotations

from meerkat_ref._model import model
from meerkat_ref.oracle.engine._linearize import Invoke, Respond, check


def history(archive_result: model.Ok | model.Err) -> list[object]:
    """An archive of s1 and a create, overlapping; the create refused (not for capacity)."""
    return [
        Invoke(0, 0, model.Archive(1)),
        Invoke(1, 1, model.Create("hello")),
        Respond(3, 1, model.Err("AGENT_ERROR")),
        Respond(5, 0, archive_result),
    ]


def test_a_refusal_beside_an_archive_that_found_nothing_is_not_linearizable() -> None:
    found = check(history(model.Err("SESSION_NOT_FOUND")), capacity=2)  # type: ignore[arg-type]
    assert found is not None and "no interleaving of the calls explains it" in found[1]


def test_a_create_beside_an_archive_that_did_something_may_have_been_cancelled() -> None:
    assert check(history(model.Ok(None)), capacity=2) is None  # type: ignore[arg-type]
