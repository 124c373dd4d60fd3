"""A disarm and a re-arm in flight together: the rules judge only what is certain [STOP-RESUME].

``cancel_all_checkpointers`` and ``rearm_all_checkpointers`` each take one gate at a
time, so two that overlap may take effect in either order, gate by gate.  The monitor
once read "disarmed" from the disarm's answer alone, and the reference broke
CHECKPOINT-GATE in ``host/1s/inject+cancel+rearm`` (a re-arm invoked before the
disarm answered, then the loop's checkpoint): an oracle's false alarm, met when a
planted bug widened the three-call scope in this stop.  Reading it the other way
(armed) broke CHECKPOINT in the same group, the run where the re-arm went first.
Now the gates are ``unsettled`` until a sweep no other overlapped answers: neither
rule judges them, and a disarm nothing overlapped is judged as before.
"""

from __future__ import annotations

from meerkat_ref._model import model
from meerkat_ref.oracle.check import in_process
from meerkat_ref.oracle.engine import Monitor
from meerkat_ref.oracle.engine._calls import Call
from meerkat_ref.oracle.engine._dpor import explore_dpor
from meerkat_ref.oracle.sweep import calls, group
from meerkat_ref.oracle.targets import InProcessTarget
from meerkat_ref.oracle.targets._protocol import Answer
from meerkat_ref.variants import Variant

OK = Answer(model.Ok(None))


def _sweep(monitor: Monitor, client: str, op: object) -> Call:
    call = Call(client, op, monitor.step)
    monitor.invoked(call)
    return call


def _answer(monitor: Monitor, call: Call) -> None:
    monitor.step += 1
    monitor.answered(call, OK)


def test_a_disarm_nothing_overlapped_is_certain() -> None:
    monitor = Monitor(capacity=1)
    cancel = _sweep(monitor, "cancel", model.CancelAllCheckpointers())
    assert monitor.sweeping and not monitor.disarmed
    _answer(monitor, cancel)
    assert monitor.disarmed and monitor.sweeping and not monitor.unsettled
    rearm = _sweep(monitor, "rearm", model.RearmAllCheckpointers())
    assert not monitor.disarmed and monitor.sweeping
    _answer(monitor, rearm)
    assert not (monitor.disarmed or monitor.sweeping or monitor.unsettled)


def test_a_disarm_and_a_rearm_that_overlap_leave_the_gates_unsettled_until_a_sweep_alone() -> None:
    for first_answered in ("cancel", "rearm"):
        monitor = Monitor(capacity=1)
        cancel = _sweep(monitor, "cancel", model.CancelAllCheckpointers())
        rearm = _sweep(monitor, "rearm", model.RearmAllCheckpointers())
        one, other = (cancel, rearm) if first_answered == "cancel" else (rearm, cancel)
        _answer(monitor, one)
        _answer(monitor, other)
        assert monitor.unsettled and monitor.sweeping and not monitor.disarmed, first_answered
        again = _sweep(monitor, "cancel", model.CancelAllCheckpointers())
        _answer(monitor, again)  # a disarm alone settles it: certain again
        assert monitor.disarmed and not monitor.unsettled


def test_the_reference_passes_a_disarm_and_a_rearm_beside_a_loop() -> None:
    every = dict(calls(1))
    scenario = group("host", 1, [(n, every[n]) for n in ("inject", "cancel", "rearm")])

    async def run(target: InProcessTarget) -> object:
        return await explore_dpor(target, scenario)

    report = in_process(Variant.parse("reference").target(), run)
    assert report.exhausted and report.violations == 0, report  # type: ignore[attr-defined]
