"""The oracle observes event streams ([EVENTS]): planted stream bugs are caught, by rule EVENTS.

Before, no judge subscribed to a session, and 23 mutants of
``meerkat_ref/agent/_events.py`` survived the mutation run.  Each bug of
``tests/ports/event_bugs.py`` stands for one class of them (a copy of the
method with the bug in it):

- ``conform`` over the adapter (its sequential vectors, which compare what
  each step publishes with the model's ``step_events`` for an adapter that
  offers ``events``) fails each, under EVENTS (and, in a case that pins a
  clause, under that clause, as every difference there) and nothing else;
- ``check`` (the monitor's white-box rule, every interleaving of a named
  scenario, in process) fails each it can see in a few calls: all but the
  two that need one step to publish more than a stream holds;
- a port whose ``hello`` does not offer ``events`` is never asked for them:
  the same bug passes, and conform reports EVENTS as not checked, with the
  reason, not as failed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from helpers import ADAPTER_TIMEOUT

from meerkat_ref import PersistentSessionService, SchedulingPoints
from meerkat_ref.agent import SessionAgentBuilder
from meerkat_ref.oracle.check import explore
from meerkat_ref.oracle.conform import NEEDS_EVENTS, Options, conform
from meerkat_ref.oracle.engine import get_scenario
from meerkat_ref.oracle.engine._cases import example_cases
from meerkat_ref.oracle.targets import InProcessTarget
from meerkat_ref.store import SessionStore

sys.path.insert(0, str(Path(__file__).resolve().parent / "ports"))
from event_bugs import BUGS, plant

EVENT_BUGS = Path(__file__).resolve().parent / "ports" / "event_bugs.py"
SEQUENTIAL = "sequential vectors"
ONLY_SEQUENTIAL = Options(random_cases=0, search_runs=0, free_runs=0, max_schedules=0,
                          shrink_budget=0, timeout=ADAPTER_TIMEOUT)

BY_CHECK = {
    "starts-closed": "interrupt-then-turn",
    "lagged-from-one": "interrupt-then-turn",
    "never-closed": "turn-save-vs-archive",
    "reader-waits": "interrupt-then-turn",
    "publish-to-none": "interrupt-then-turn",
    "close-ends-none": "host-checkpoint-vs-archive",
}
"""The bugs ``check`` sees, each with a named scenario it is found in.  Not here:
``lagged-twice`` and ``drops-late``, which only a step publishing more than 256
events shows (the vectors' ``events-a-slow-reader-lags``; no scenario is that long)."""


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_conform_fails_each_event_bug_under_events(bug: str) -> None:
    report = conform([sys.executable, str(EVENT_BUGS), bug], ONLY_SEQUENTIAL, concurrent=[])
    assert not report.protocol, report.protocol
    assert not report.ok
    assert report.failed_in[SEQUENTIAL]["EVENTS"] > 0, report.text()
    pinned = {c.pins for c in example_cases() if c.pins}
    assert set(report.minimal) <= {"EVENTS", *pinned}, report.text()


@pytest.mark.parametrize("bug", sorted(BY_CHECK))
def test_check_fails_each_event_bug_it_can_see_under_events(
    bug: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    plant(bug, monkeypatch.setattr)

    def make(b: SessionAgentBuilder, c: int, s: SessionStore | None,
             p: SchedulingPoints) -> PersistentSessionService:
        assert s is not None
        return PersistentSessionService(b, c, s, points=p)

    target = InProcessTarget(make, description=bug)
    report = explore(target, get_scenario(BY_CHECK[bug]), bound=None, stop_on_violation=True)
    first = report.first()
    assert first is not None, f"check let {bug} through"
    assert {v.rule for v in first.violations} == {"EVENTS"}, first.violations


def test_the_reference_passes_the_event_bug_scenarios() -> None:
    """The scenarios above find nothing in the reference: what they find is the bug."""
    for name in sorted(set(BY_CHECK.values())):
        report = explore(InProcessTarget(_reference), get_scenario(name), bound=None)
        assert report.exhausted and not report.violations, name


def _reference(b: SessionAgentBuilder, c: int, s: SessionStore | None,
               p: SchedulingPoints) -> PersistentSessionService:
    assert s is not None
    return PersistentSessionService(b, c, s, points=p)


def test_a_port_without_events_is_reported_skipped_not_failed() -> None:
    """A bug only events show passes a port that does not offer them, and says so."""
    adapter = [sys.executable, str(EVENT_BUGS), "publish-to-none",
               "--capabilities", "points,faults,placement"]
    report = conform(adapter, ONLY_SEQUENTIAL, concurrent=[])
    assert report.ok and not report.protocol, report.text()
    assert report.skipped["EVENTS"] == NEEDS_EVENTS
    assert not report.checks["EVENTS"] and not report.failed["EVENTS"]
    assert NEEDS_EVENTS in report.text()


async def test_settle_reports_each_session_s_events_as_the_schema_says() -> None:
    """``settle`` with ``"events": true`` (spec/ADAPTER.md section 13): what each session
    published since the previous settle, in the schema's shape; only with the capability."""
    import json

    from meerkat_ref.oracle.server import Server
    from meerkat_ref.oracle.targets import dumps
    from meerkat_ref.specgen._schema import errors
    from meerkat_ref.variants import Variant

    root = Path(__file__).resolve().parent.parent
    schema = json.loads((root / "spec" / "adapter.schema.json").read_text(encoding="utf-8"))
    s1 = "00000000-0000-0000-0000-000000000001"
    for offered in (("points", "events"), ("points",)):
        out: list[dict[str, object]] = []
        async with Variant.parse("reference").target() as target:
            server = Server(target, out.append, "reference", offered)
            lines: list[dict[str, object]] = [
                {"id": "1", "cmd": "open", "capacity": 1},
                {"id": "2", "cmd": "create", "prompt": "hi"},
                {"id": "3", "cmd": "settle", "events": True},
                {"id": "4", "cmd": "settle", "events": True},
                {"id": "5", "cmd": "archive", "session": s1},
                {"id": "6", "cmd": "settle", "events": True},
            ]
            for line in lines:
                assert errors({"$ref": "#/$defs/oracleLine", "$defs": schema["$defs"]}, line,
                              schema) == [], line
                await server.handle(dumps(line))
        for line in out:
            assert errors({"$ref": "#/$defs/adapterLine", "$defs": schema["$defs"]}, line,
                          schema) == [], line
        answers = {m["id"]: m for m in out if "id" in m}
        if "events" not in offered:
            assert {answers[r]["error"]["code"] for r in "346"} == {"UNSUPPORTED"}  # type: ignore[index]
            continue
        assert answers["3"]["ok"]["events"] == {s1: {"events": [  # type: ignore[index]
            {"kind": "run_started", "text": "hi"},
            {"kind": "text_complete", "text": "echo: hi", "input_tokens": 2, "output_tokens": 3},
            {"kind": "run_completed", "text": "echo: hi", "input_tokens": 2, "output_tokens": 3},
        ]}}
        assert answers["4"]["ok"]["events"] == {}  # type: ignore[index]
        assert answers["6"]["ok"]["events"] == {s1: {"events": [], "ended": True}}  # type: ignore[index]
