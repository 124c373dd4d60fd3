"""A save that failed [SAVE-FAILED]: done, live, not durable; the next save stores it.

Issue 11 found it as "a save that failed is stored later anyway": with the
file locked, ``start_turn`` answers ``SESSION_STORE_ERROR``, the live session
keeps the turn, and the next successful turn stores the "failed" turn too.
The contract now says that is the rule (spec/CONTRACT.md [SAVE-FAILED]), and
model, reference and vectors agree on it:

- the reference over a real store whose write fails (memory and SQLite; an
  I/O error, a locked file, a full disk: ``benchmarks/faults.py``);
- the model's ``FailNextSave`` against the reference, step by step, through
  the engine's sequential cases (curated and random with faults), on both
  stores;
- ``meerkat-ref conform`` runs the fault cases only for a port that announces
  the ``faults`` capability, and says how many it left out otherwise.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import trio
from helpers import AnyStore, create_req, error_of, settle, spawn, turn_req

_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:  # benchmarks/ sits beside tests/ and is not installed
    sys.path.insert(0, _ROOT)

from benchmarks.faults import KINDS, FaultyStore  # noqa: E402
from meerkat_ref import (  # noqa: E402
    CreateSessionRequest,
    InitialTurnPolicy,
    PersistentSessionService,
    SessionNotFound,
    SessionStoreError,
)
from meerkat_ref.agent import ScriptedAgentBuilder  # noqa: E402
from meerkat_ref.oracle.conform import Options, Report, conform_target  # noqa: E402
from meerkat_ref.oracle.engine._cases import (  # noqa: E402
    example_cases,
    expected_steps,
    needs_exit,
    needs_faults,
    random_cases,
)
from meerkat_ref.oracle.engine._sequential import run_case  # noqa: E402
from meerkat_ref.oracle.targets import InProcessTarget  # noqa: E402
from meerkat_ref.store import BUILTIN_KINDS  # noqa: E402
from meerkat_ref.variants import Variant  # noqa: E402

# -- the reference over a store whose writes fail ---------------------------------------
# ``store`` is conftest's fixture: a memory store, then a SQLite file, closed after the test.


@pytest.mark.parametrize("kind", KINDS)
async def test_a_turn_whose_save_fails_happened_but_is_not_stored(
    store: AnyStore, kind: str
) -> None:
    faulty = FaultyStore(store)
    async with PersistentSessionService(ScriptedAgentBuilder(), 4, faulty) as svc:
        s = (await svc.create_session(create_req("a"))).session_id
        faulty.fail_next(kind)
        with pytest.raises(SessionStoreError) as info:
            await svc.start_turn(s, turn_req("b"))
        assert info.value.session_id == s and str(s) in info.value.message
        # Done: the live session has the turn, and the next turn follows it.
        view = await svc.read(s)
        assert (view.state.message_count, view.state.last_assistant_text) == (4, "echo: b")
        assert [x.message_count for x in await svc.list()] == [4]
        # Not durable: the store holds the session as it was.
        stored = await svc.load_persisted(s)
        assert stored is not None and stored.message_count == 2
        # The next save stores the whole session, the "failed" turn included.
        result = await svc.start_turn(s, turn_req("c"))
        assert result.text == "echo: c"
        stored = await svc.load_persisted(s)
        assert stored is not None and stored.message_count == 6
        assert [m.content for m in stored.messages][2:4] == ["b", "echo: b"]
    assert faulty.injected[kind] == 1


async def test_a_crash_before_the_next_save_loses_the_unsaved_change(store: AnyStore) -> None:
    faulty = FaultyStore(store)
    async with PersistentSessionService(ScriptedAgentBuilder(), 4, faulty) as svc:
        s = (await svc.create_session(create_req("a"))).session_id
        faulty.fail_next("disk-full")
        with pytest.raises(SessionStoreError):
            await svc.start_turn(s, turn_req("b"))
        faulty.fail_next("locked")
        deferred = CreateSessionRequest(model="m", prompt="x",
                                        initial_turn=InitialTurnPolicy.DEFER)
        with pytest.raises(SessionStoreError) as info:
            await svc.create_session(deferred)
        unsaved = info.value.session_id
        assert unsaved is not None and (await svc.read(unsaved)).state.message_count == 0
    # A new process over the same store: the unsaved turn and session are gone.
    async with PersistentSessionService(ScriptedAgentBuilder(), 4, store) as svc:
        assert (await svc.read(s)).state.message_count == 2
        with pytest.raises(SessionNotFound):
            await svc.read(unsaved)


async def test_a_failed_checkpoint_is_logged_and_the_next_one_saves(store: AnyStore) -> None:
    faulty = FaultyStore(store)
    async with PersistentSessionService(ScriptedAgentBuilder(), 2, faulty) as svc:
        s = (await svc.create_session(create_req("a"))).session_id
        faulty.fail_next("locked")
        async with trio.open_nursery() as nursery:
            host = spawn(nursery, lambda: svc.start_turn(s, turn_req("serve", host_mode=True)))
            await settle()
            # The prompt's checkpoint failed: logged, and the loop serves on.
            assert not host.done.is_set()
            assert (await svc.read(s)).state.message_count == 4
            stored = await svc.load_persisted(s)
            assert stored is not None and stored.message_count == 2
            injector = await svc.event_injector(s)
            assert injector is not None
            injector.inject("x")
            await settle()
            stored = await svc.load_persisted(s)
            assert stored is not None and stored.message_count == 6
            await svc.interrupt(s)
        assert error_of(host).code == "AGENT_ERROR"
    assert faulty.injected["locked"] == 1


# -- model, reference and vectors agree ---------------------------------------------------

FAULT_CASES = [c for c in example_cases() if needs_faults(c)]


@pytest.mark.parametrize("store", list(BUILTIN_KINDS))
async def test_the_fault_examples_hold_for_the_reference(store: str, tmp_path: Path) -> None:
    assert {c.name for c in FAULT_CASES} >= {"failed-save", "failed-save-and-a-crash",
                                             "failed-checkpoint", "ephemeral"}
    async with Variant.parse("reference").target(store=store, store_dir=str(tmp_path)) as target:
        for case in FAULT_CASES:
            found = await run_case(target, case, expected_steps(case))
            assert found is None, (case.name, found.message if found else "")


@pytest.mark.parametrize("store", list(BUILTIN_KINDS))
async def test_random_sequences_with_faults_hold_for_the_reference(
    store: str, tmp_path: Path
) -> None:
    cases = random_cases(seed=11, count=8, steps=30, prefix="faults", faults=True)
    refused = [step for case in cases for step in expected_steps(case)
               if step.expect == {"error": "SESSION_STORE_ERROR"}]
    assert len(refused) >= 3  # the draw does make saves fail
    async with Variant.parse("reference").target(store=store, store_dir=str(tmp_path)) as target:
        for case in cases:
            found = await run_case(target, case, expected_steps(case))
            assert found is None, (case.name, found.message if found else "")


class _NoFaults(InProcessTarget):
    @property
    def capabilities(self) -> frozenset[str]:
        return frozenset({"points"})


@pytest.mark.parametrize("faults", [True, False])
async def test_conform_runs_fault_cases_only_with_the_capability(faults: bool) -> None:
    reference = Variant.parse("reference")
    target = (reference.target() if faults else
              _NoFaults(reference.factory, description="reference without faults"))
    opts = Options(random_cases=0, search_runs=0, max_schedules=0, free_runs=0)
    report = Report(adapter="in process")
    async with target:
        await conform_target(target, opts, report, [])
    assert report.ok, report.text()
    sequential = report.phases[0]
    total = len(example_cases()) + len(random_cases())
    if faults:
        assert sequential.cases == total and not sequential.note
        assert report.checks["SAVE-FAILED"] > 0
    else:
        # It offers the hooks only: no faults, and no graceful exit ([SHUTDOWN]'s case).
        exits = [c for c in example_cases() if needs_exit(c) and not needs_faults(c)]
        assert sequential.cases == total - len(FAULT_CASES) - len(exits)
        assert f"{len(FAULT_CASES)} case(s) not run" in sequential.note
        assert report.checks["SAVE-FAILED"] == 0
