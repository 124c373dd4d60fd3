"""An archive that found nothing cancelled nothing: the linearizability check does not excuse it.

CONTRACT.md [LINEARIZABLE] lets a create or turn end ``AGENT_ERROR`` without
comparing its answer when an archive was in flight: the archive may have
cancelled it.  An archive that answered ``SESSION_NOT_FOUND`` found nothing
and left nothing behind ([ARCHIVE]), so it cannot have: a create refused
beside it, with a free place, is a LINEARIZABLE failure.  That is how a port
that puts archive's tombstone in the map before asking the store (the old
CONCURRENCY.md reading) fails the concurrent phases too, not only the hooks
case that pins the rule.
"""

from __future__ import annotations

from meerkat_ref._model import model
from meerkat_ref.oracle.engine._linearize import check
from meerkat_ref.oracle.engine._monitor import Call


def history(archive_result: str) -> list[Call]:
    """An archive of s1 and a create, overlapping; the create refused (not for capacity)."""
    return [
        Call("archive", model.Archive(1), invoked=0, responded=5, result=archive_result),
        Call("create", model.Create("hello"), invoked=1, responded=3, result="AGENT_ERROR",
             message="session 00000000-0000-0000-0000-000000000001 is being archived"),
    ]


def test_a_refusal_beside_an_archive_that_found_nothing_is_not_linearizable() -> None:
    found = check(history("SESSION_NOT_FOUND"), capacity=2)
    assert found is not None and "no order of the calls matches the model" in found


def test_a_create_beside_an_archive_that_did_something_may_have_been_cancelled() -> None:
    assert check(history("ok"), capacity=2) is None

