"""The pure model of the session contract, one call at a time (``models/sessions.py``).

Each test is a worked example of one clause: start from ``init``, take a few
``step``s, and read off what the service must answer.  The last tests run the
explicit-state check (``models/explore.py``) and pin its state count, so any
change to the model's behaviour shows up here.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # mypy reads models/ as the top-level package it is in the tree
    from models import explore
    from models import sessions as m
else:  # installed as meerkat_ref.models (a setuptools package-dir mapping)
    from meerkat_ref.models import explore
    from meerkat_ref.models import sessions as m

S1, S2, S3 = m.sid(1), m.sid(2), m.sid(3)


def run(state: m.State, *ops: m.Op) -> tuple[list[m.Result], m.State]:
    results = []
    for op in ops:
        result, state = m.step(state, op)
        results.append(result)
    return results, state


def persistent(capacity: int = 2) -> m.State:
    return m.init(capacity, persistent=True)


def ephemeral(capacity: int = 2) -> m.State:
    return m.init(capacity, persistent=False)


# -- CREATE, TURN, DEFER, CAPACITY, TIME, IDS ----------------------------------------------


def test_create_runs_the_first_turn_and_saves_it() -> None:
    result, state = m.step(persistent(), m.Create("hello world"))
    # two words: input 3, output 4; ids count from 1; ticks: build 1, user 2, reply 3
    assert result == m.Ok(m.RunResult(S1, "echo: hello world", 3, 4, turns=1))
    assert state.clock == 4 and state.next_id == 2
    stored = m.Session(created_at=1, updated_at=3, message_count=2, input_tokens=3,
                       output_tokens=4, last_assistant_text="echo: hello world", revision=2)
    assert dict(state.store) == {S1: stored}


def test_a_system_prompt_is_message_one_without_a_tick() -> None:
    _, state = m.step(persistent(), m.Create("a", system_prompt="be brief"))
    view, _ = m.step(state, m.Read(1))
    assert view == m.Ok(m.View(S1, 1, 3, 3, False, "echo: a", 5, 2, 3))


def test_a_deferred_create_runs_no_turn_but_is_stored() -> None:
    result, state = m.step(persistent(), m.Create("a", defer=True))
    assert result == m.Ok(m.RunResult(S1, "", 0, 0, turns=0))
    assert dict(state.store) == {S1: m.Session(created_at=1, updated_at=1)}
    assert state.clock == 2


def test_at_capacity_create_fails_and_consumes_nothing() -> None:
    (_, refused), state = run(persistent(capacity=1), m.Create("a"), m.Create("b"))
    assert refused == m.Err(m.AGENT_ERROR)
    assert state.next_id == 2 and state.clock == 4  # no id taken, no tick


def test_creates_at_once_exactly_the_free_ones_succeed() -> None:
    (_, many), _ = run(persistent(capacity=3), m.Create("a"), m.CreatesAtOnce(3))
    assert isinstance(many, m.Many)
    assert [type(r).__name__ for r in many.results] == ["Ok", "Ok", "Err"]


def test_an_ephemeral_service_stores_nothing() -> None:
    _, state = m.step(ephemeral(), m.Create("a"))
    assert state.store == () and m.step(state, m.ObserveStore())[0] == m.Ok({})


# -- TURN-BUSY, HOST, HOST-MESSAGE, COMPACT -------------------------------------------------


def test_start_turn_unknown_and_busy() -> None:
    results, _ = run(persistent(), m.StartTurn(1, "a"), m.Create("a", host_mode=True),
                     m.StartTurn(1, "b"))
    assert results == [m.Err(m.NOT_FOUND), m.Pending(), m.Err(m.BUSY)]


def test_turns_at_once_one_wins() -> None:
    (_, many), _ = run(persistent(), m.Create("a", defer=True), m.TurnsAtOnce(1, "b", count=3))
    assert many == m.Many((m.Ok(m.RunResult(S1, "echo: b", 2, 3, 1)),
                           m.Err(m.BUSY), m.Err(m.BUSY)))


def test_a_host_loop_serves_messages_and_checkpoints_each() -> None:
    results, state = run(persistent(), m.Create("a", host_mode=True), m.HostMessage(1, "x"))
    assert results == [m.Pending(), m.Ok(None)]
    live = dict(state.live)[S1]
    assert live.running and live.session.message_count == 4
    assert dict(state.store)[S1] == live.session  # checkpointed after the message


def test_messages_wait_for_a_host_loop_then_are_served_in_order() -> None:
    _, state = run(persistent(), m.Create("a"), m.HostMessage(1, "x"), m.HostMessage(1, "y"))
    assert dict(state.live)[S1].inbox == ("x", "y")
    assert dict(state.live)[S1].session.message_count == 2  # nothing served yet
    result, state = m.step(state, m.StartTurn(1, "z", host_mode=True))
    assert result == m.Pending()
    live = dict(state.live)[S1]
    assert live.inbox == () and live.session.last_assistant_text == "echo: y"
    assert live.session.message_count == 8


def test_a_message_to_an_unknown_session_is_not_found() -> None:
    assert m.step(persistent(), m.HostMessage(1, "x"))[0] == m.Err(m.NOT_FOUND)


def test_compact_keeps_count_usage_and_reply_but_is_saved() -> None:
    _, state = run(persistent(), m.Create("a", host_mode=True), m.HostMessage(1, "/compact"))
    live = dict(state.live)[S1].session
    assert (live.message_count, live.input_tokens, live.last_assistant_text) == (2, 2, "echo: a")
    assert live.updated_at == 4 and live.revision == 3  # one tick, one revision
    assert dict(state.store)[S1].revision == 3  # the seed (by length) would not save it


# -- INTERRUPT -----------------------------------------------------------------------------


def test_interrupt() -> None:
    results, state = run(persistent(), m.Interrupt(1), m.Create("a"), m.Interrupt(1),
                         m.StartTurn(1, "b", host_mode=True), m.Interrupt(1))
    assert results[0] == m.Err(m.NOT_FOUND)
    assert results[2] == m.Err(m.NOT_RUNNING)
    assert results[4] == m.Ok(None)
    assert state.completed == ((S1, m.Err(m.AGENT_ERROR)),)  # the pending start_turn
    assert not dict(state.live)[S1].running
    assert dict(state.store)[S1].message_count == 4  # its checkpoint stays


# -- READ, LIST ----------------------------------------------------------------------------


def test_read_falls_back_to_the_store_after_a_restart() -> None:
    results, _ = run(persistent(), m.Create("a"), m.Restart(), m.Read(1))
    assert results[2] == m.Ok(m.View(S1, 1, 3, 2, False, "echo: a", 5, 2, 3))
    results, _ = run(ephemeral(), m.Create("a"), m.Restart(), m.Read(1))
    assert results[2] == m.Err(m.NOT_FOUND)


def test_list_merges_live_and_stored_newest_first_then_pages() -> None:
    _, state = run(persistent(capacity=3), m.Create("a"), m.Restart(), m.Create("b"),
                   m.Create("c", defer=True))
    everything, _ = m.step(state, m.List())
    assert isinstance(everything, m.Ok) and isinstance(everything.value, tuple)
    assert [s.session_id for s in everything.value] == [S3, S2, S1]
    assert [s.is_active for s in everything.value] == [False, False, False]
    page, _ = m.step(state, m.List(offset=1, limit=1))
    assert page == m.Ok(everything.value[1:2])


# -- ARCHIVE -------------------------------------------------------------------------------


def test_archive_stops_a_host_loop_and_deletes_for_good() -> None:
    results, state = run(persistent(), m.Create("a", host_mode=True), m.Archive(1))
    assert results[1] == m.Ok(None)
    assert state.completed == ((S1, m.Err(m.AGENT_ERROR)),)
    assert state.live == () and state.store == () and state.archived == {S1}
    results, _ = run(state, m.Archive(1), m.Read(1), m.LoadPersisted(1), m.List())
    assert results == [m.Err(m.NOT_FOUND), m.Err(m.NOT_FOUND), m.Ok(None), m.Ok(())]


def test_archive_of_a_stored_only_session() -> None:
    results, state = run(persistent(), m.Create("a"), m.Restart(), m.Archive(1))
    assert results[2] == m.Ok(None) and state.store == ()
    results, _ = run(ephemeral(), m.Create("a"), m.Restart(), m.Archive(1))
    assert results[2] == m.Err(m.NOT_FOUND)  # ephemeral: live sessions only


# -- CHECKPOINT-GATE, STOP-RESUME, LOAD-PERSISTED --------------------------------------------


def test_disarmed_checkpointers_skip_checkpoints_but_not_turn_saves() -> None:
    _, state = run(persistent(capacity=3), m.Create("a", host_mode=True), m.Create("b"),
                   m.CancelAllCheckpointers(), m.HostMessage(1, "x"), m.StartTurn(2, "c"))
    store, live = dict(state.store), dict(state.live)
    assert store[S1].message_count == 2  # the checkpoint after "x" was skipped
    assert store[S2] == live[S2].session  # the plain turn was saved anyway
    _, state = run(state, m.Create("d", host_mode=True))
    assert dict(state.live)[S3].armed  # created later: armed
    _, state = run(state, m.RearmAllCheckpointers(), m.HostMessage(1, "/compact"))
    assert dict(state.store)[S1] == dict(state.live)[S1].session


def test_load_persisted() -> None:
    results, _ = run(persistent(), m.LoadPersisted(1), m.Create("a", defer=True),
                     m.LoadPersisted(1))
    assert results[0] == m.Ok(None) and results[2] == m.Ok(m.Session(created_at=1, updated_at=1))
    assert m.step(ephemeral(), m.LoadPersisted(1))[0] == m.Err(m.PERSISTENCE_DISABLED)


# -- RESTART, DURABILITY ----------------------------------------------------------------------


def test_restart_drops_pending_calls_and_keeps_store_clock_and_ids() -> None:
    _, state = run(persistent(), m.Create("a", host_mode=True), m.Restart())
    assert state.completed == ((S1, m.Crashed()),)
    assert state.live == () and dict(state.store)[S1].message_count == 2
    result, state = m.step(state, m.Create("b", defer=True))
    assert result == m.Ok(m.RunResult(S2, "", 0, 0, 0))
    assert dict(state.store)[S2].created_at == 4


# -- the model's own pieces ----------------------------------------------------------------


def test_operations_print_as_python_to_paste() -> None:
    ops = [m.Create("a", host_mode=True), m.List(offset=1), m.Archive(2), m.Restart()]
    assert repr(ops) == (
        "[Create(prompt='a', host_mode=True), List(offset=1), Archive(id=2), Restart()]")


def test_invariants_catch_broken_states() -> None:
    _, good = m.step(persistent(capacity=1), m.Create("a"))
    assert m.violations(good) == []
    assert m.violations(replace(good, capacity=0)) == ["capacity_respected"]
    assert "archived_gone" in m.violations(replace(good, archived=frozenset({S1})))
    assert m.violations(replace(good, store=())) == ["store_not_behind_acks"]
    assert m.violations(replace(good, clock=3)) == ["time_and_ids_ordered"]


# -- the explicit-state check ----------------------------------------------------------------


def test_bfs_persistent() -> None:
    report = explore.explore(depth=5, slots=2)
    assert report.violation is None
    assert (report.depth, report.states, report.transitions) == (5, 14918, 79560)


def test_bfs_ephemeral() -> None:
    report = explore.explore(depth=5, slots=2, persistent=False)
    assert report.violation is None
    assert (report.depth, report.states, report.transitions) == (5, 7448, 48570)


def test_bfs_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert explore.main(["--depth", "2", "--slots", "2"]) == 0
    out = capsys.readouterr().out
    assert "depth 2, 56 distinct states" in out and "invariants: all hold" in out
