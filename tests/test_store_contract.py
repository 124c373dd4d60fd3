"""The store contract (``spec/CONTRACT.md`` 6), for both our stores, through its public entry point.

Every check of ``meerkat_ref.testing.STORE_CHECKS`` is one test item per
store kind of the registry (``memory``, ``sqlite``), run by
``run_store_check``, exactly as a third party runs them against its own
store; a check needing what a kind does not declare (``memory``: no reopen,
close, crash, owner or files) is skipped, saying so.  The checks' bodies live
in ``meerkat_ref/testing/_store_contract.py``; ``test_store_contract_checks.py``
shows each can fail.  SQLite's own promises beyond the contract are in
``test_store_sqlite.py``, the body codec's in ``test_store_codec.py``.
"""

from __future__ import annotations

import pytest
import trio

from meerkat_ref._types import InvalidArgument, SessionFilter, SessionId
from meerkat_ref.store import BUILTIN_KINDS, MemoryStore, PointedStore, SessionStore
from meerkat_ref.testing import STORE_CHECKS, StoreCheck, check_session_store, run_store_check
from meerkat_ref.testing._store_checks import sample_session as session


def sid(n: int) -> SessionId:
    return SessionId.from_int(n)


@pytest.mark.parametrize("check", STORE_CHECKS, ids=str)
@pytest.mark.parametrize("kind", list(BUILTIN_KINDS))
def test_store_contract(kind: str, check: StoreCheck) -> None:
    """[STORE-SAVE] [STORE-LOAD] [STORE-LIST] [STORE-DELETE] [STORE-EXISTS] [STORE-FAILURE]
    [STORE-COMMIT] [STORE-OWNER] [STORE-DAMAGE]: each check, on each of our stores."""
    run_store_check(kind, check, skip=pytest.skip)


async def test_check_session_store_reports_every_check_of_the_memory_store() -> None:
    """The whole suite without pytest's help: a report, the skips with their reasons."""
    report = await check_session_store("memory")
    assert report.ok
    assert [r.check for r in report.results] == list(STORE_CHECKS)
    assert {r.check.name for r in report.skipped} == {
        c.name for c in STORE_CHECKS if c.needs}
    assert all("does not declare" in r.detail for r in report.skipped)
    assert report.text().endswith(f"store contract, memory: {len(report.passed)} passed, "
                                  f"0 failed, {len(report.skipped)} skipped")


def test_the_checks_cover_every_store_clause() -> None:
    from meerkat_ref.oracle.engine._clauses import clause_ids

    store_clauses = {c for c in clause_ids() if c.startswith("STORE-")}
    assert {c for check in STORE_CHECKS for c in check.clauses} == store_clauses


def test_filter_rejects_negative_page() -> None:
    with pytest.raises(InvalidArgument):
        SessionFilter(limit=-1)
    with pytest.raises(InvalidArgument):
        SessionFilter(offset=-1)


async def test_pointed_store_passes_through(store: SessionStore) -> None:
    pointed: SessionStore = PointedStore(store)
    await pointed.save(session(1, updated=4))
    assert await pointed.exists(sid(1))
    assert await pointed.load(sid(1)) == session(1, updated=4)
    assert [m.id for m in await pointed.list()] == [sid(1)]
    await pointed.delete(sid(1))
    assert not await pointed.exists(sid(1))


def test_memory_snapshot_and_len() -> None:
    async def main() -> None:
        store = MemoryStore()
        await store.save(session(1))
        await store.save(session(2))
        snap = store.snapshot()
        assert len(store) == 2
        assert set(snap) == {sid(1), sid(2)}
        snap.clear()  # a copy
        assert len(store) == 2

    trio.run(main)
