"""The soak, scaled down: 50 live sessions, 300 turns, host loops and archives mixed.

The engine and its checks live in ``benchmarks/soak.py`` and run at full size
(1,000 live sessions, 10,000 turns) under ``python -m benchmarks``; this test
runs the same engine small enough for CI (a few seconds), on a threaded
``SqliteStore`` as in production, with no wall-clock sleeps: every wait is on
an event, a turn or a store call, and the only clock is the deadlock budget:
a guard of ten minutes (``GUARD_S``), far beyond what a run takes on a loaded
machine (the scaled-down soak took 34 s at load 12 against 30 s of budget).

What a pass means: within the budget (no deadlock) every archived session was
gone at once and stayed gone (store, ``list``, ``read``, ``load_persisted``,
its gate), no session task outlived its archive, every created session was
archived exactly once, and traced memory came back to its starting level
within the tolerance explained in ``benchmarks/soak.py``.

With faults (issue 11): the same run over a store that fails some writes (an
I/O error, a locked file, a full disk: ``benchmarks/faults.py``), where every
acknowledged create and turn is checked against the store at once; and a
real process SIGKILLed at random moments on a SQLite file, the file reopened
after each kill and held to everything acknowledged
(``benchmarks/soak_kill.py``).  No acknowledged write lost, no archived
session back, no task left behind.  Each check is shown to have teeth.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import trio

_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:  # benchmarks/ sits beside tests/ and is not installed
    sys.path.insert(0, _ROOT)

from dataclasses import replace  # noqa: E402

from benchmarks.soak import SoakConfig, _portable, run_soak  # noqa: E402
from benchmarks.soak_kill import KillReport, _Ledger, run_kill_soak  # noqa: E402
from meerkat_ref import (  # noqa: E402
    PersistentSessionService,
    Session,
    SessionId,
    SessionStoreError,
    SqliteStore,
)
from meerkat_ref.agent import ScriptedAgentBuilder  # noqa: E402
from meerkat_ref.service._gate import CheckpointerGate  # noqa: E402
from meerkat_ref.store import SessionStore  # noqa: E402
from meerkat_ref.testing import SeedPersistentSessionService, Window  # noqa: E402

GUARD_S = 600.0  # a deadlock budget that only a deadlock exhausts, never a busy machine
SMALL = SoakConfig(live=50, turns=300, cycles=2, budget_s=GUARD_S)


async def test_soak_scaled_down(tmp_path: Path) -> None:
    report = await run_soak(SMALL, tmp_path)

    assert not report.deadlocked, f"deadlock: not done within {SMALL.budget_s} s"
    assert report.violation_count == 0, report.violations
    assert report.memory_ok, report.problems()
    assert report.ok
    # The mix really happened (the seed is fixed, so these are not left to luck).
    assert report.turns >= SMALL.turns
    assert report.host_loops > 0 and report.interrupts > 0
    assert report.host_messages_served > 0
    assert report.archives_mid_run > 0
    assert report.archives == report.creates > SMALL.live * SMALL.cycles
    assert report.tasks_after == [report.tasks_start] * SMALL.cycles


async def test_soak_catches_a_host_loop_that_outlives_its_archive(tmp_path: Path) -> None:
    """The checks have teeth: the seed's window 3 (archive queues a shutdown behind
    the host loop, which keeps running) is reported, and the run still ends."""

    def seed_window_3(store: SessionStore, max_sessions: int) -> SeedPersistentSessionService:
        return SeedPersistentSessionService(
            ScriptedAgentBuilder(), max_sessions, store, windows={Window.ARCHIVED_HOST_LOOP}
        )

    config = SoakConfig(live=10, turns=100, cycles=1, host_share=0.5, budget_s=GUARD_S)
    report = await run_soak(config, tmp_path, seed_window_3)

    assert not report.ok
    assert any("still running after archive returned" in v for v in report.violations), (
        report.violations
    )


# -- with faults ----------------------------------------------------------------------------

FAULTY = replace(SMALL, fault_rate=0.05)


async def test_soak_with_store_faults_scaled_down(tmp_path: Path) -> None:
    report = await run_soak(FAULTY, tmp_path)

    assert report.ok, report.problems()
    assert (report.lost, report.resurrected, report.leaked_tasks) == (0, 0, 0)
    # The faults really happened, of every kind, and the service met them.
    assert set(report.faults) == {"save-fails", "locked", "disk-full"}
    assert report.faults_injected > 20
    assert report.turns_unsaved > 0 and report.creates_unsaved > 0
    assert report.archive_retries > 0 and report.checkpoints_failed > 0
    assert report.acks_checked > SMALL.turns
    assert report.archives == report.creates


class _LiesAboutFailedSaves(PersistentSessionService):
    """A mutant: a create or turn whose save failed answers success anyway."""

    async def _persist(self, gate: CheckpointerGate | None, snapshot: Session) -> None:
        with contextlib.suppress(SessionStoreError):
            await super()._persist(gate, snapshot)


async def test_the_fault_soak_catches_an_acknowledged_write_that_was_not_saved(
    tmp_path: Path,
) -> None:
    def liar(store: SessionStore, max_sessions: int) -> PersistentSessionService:
        return _LiesAboutFailedSaves(ScriptedAgentBuilder(), max_sessions, store)

    report = await run_soak(replace(FAULTY, cycles=1), tmp_path, liar)
    assert not report.ok and report.lost > 0, report.violations


async def test_kill_soak_scaled_down(tmp_path: Path) -> None:
    report = await trio.to_thread.run_sync(
        lambda: run_kill_soak(tmp_path, kills=3, lines=(40, 300), fault_rate=0.05))
    assert report.ok, report.problems
    assert report.kills == 3 and (report.lost, report.resurrected) == (0, 0)
    assert report.acks > 0 and report.acked_checked > 0 and report.archived_checked > 0
    assert report.acked_checked + report.superseded == report.acks
    assert report.faults_injected > 0


async def test_the_kill_check_catches_a_lost_write_and_a_resurrection(tmp_path: Path) -> None:
    kept, archived, never = (SessionId.from_int(n) for n in (1, 2, 3))
    store = await SqliteStore.open(tmp_path / "f.db")
    await store.save(Session(kept, 1, 2, revision=2))
    await store.save(Session(archived, 1, 2))
    await store.aclose()
    report = KillReport()
    ledger = _Ledger(report)
    for line in (f"ack {kept} 4", f"ack {never} 0", f"archiving {archived}",
                 f"archived {archived}", "ack cut-sh"):
        ledger.take(line)
    await ledger.check(tmp_path / "f.db")
    assert (report.lost, report.resurrected) == (2, 1), report.problems
    assert not report.ok


def test_residual_allocation_lines_name_no_path_of_this_machine() -> None:
    """The soak's tracemalloc lines go into RESULTS.md, which is checked in."""
    import sysconfig

    site = "/any/where/lib/python3.11/site-packages/trio/_core/_run.py:405: size=64.0 KiB"
    stdlib = sysconfig.get_paths()["stdlib"] + "/_weakrefset.py:88: size=64.2 KiB"
    assert _portable(site) == "trio/_core/_run.py:405: size=64.0 KiB"
    assert _portable(stdlib) == "<stdlib>/_weakrefset.py:88: size=64.2 KiB"
