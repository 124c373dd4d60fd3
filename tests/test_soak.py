"""The soak, scaled down: 50 live sessions, 300 turns, host loops and archives mixed.

The engine and its checks live in ``benchmarks/soak.py`` and run at full size
(1,000 live sessions, 10,000 turns) under ``python -m benchmarks``; this test
runs the same engine small enough for CI (a few seconds), on a threaded
``SqliteStore`` as in production, with no wall-clock sleeps: every wait is on
an event, a turn or a store call, and the only clock is the deadlock budget.

What a pass means: within the budget (no deadlock) every archived session was
gone at once and stayed gone (store, ``list``, ``read``, ``load_persisted``,
its gate), no session task outlived its archive, every created session was
archived exactly once, and traced memory came back to its starting level
within the tolerance explained in ``benchmarks/soak.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:  # benchmarks/ sits beside tests/ and is not installed
    sys.path.insert(0, _ROOT)

from benchmarks.soak import SoakConfig, run_soak  # noqa: E402
from meerkat_ref import SqliteStore  # noqa: E402
from meerkat_ref.agent import ScriptedAgentBuilder  # noqa: E402
from meerkat_ref.testing import SeedPersistentSessionService, Window  # noqa: E402

SMALL = SoakConfig(live=50, turns=300, cycles=2, budget_s=30.0)


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

    def seed_window_3(store: SqliteStore, max_sessions: int) -> SeedPersistentSessionService:
        return SeedPersistentSessionService(
            ScriptedAgentBuilder(), max_sessions, store, windows={Window.ARCHIVED_HOST_LOOP}
        )

    config = SoakConfig(live=10, turns=100, cycles=1, host_share=0.5, budget_s=30.0)
    report = await run_soak(config, tmp_path, seed_window_3)

    assert not report.ok
    assert any("still running after archive returned" in v for v in report.violations), (
        report.violations
    )
