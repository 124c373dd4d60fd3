"""When the concurrent model itself raises: the oracle's own error, reported, never a traceback.

The linearizability check walks the model over every order of the calls in
flight; a path the model does not describe raises inside it.  That says
nothing of the target, so it is neither a violation nor a crash of the
command: ``_linearize.ModelFailure``, kept as an oracle error of kind
``model-failed`` with the run's schedule, the scenario's search ended there
(not exhausted), and the commands exit 3, as for any oracle error.  (Found by
a sample of the full scope: ``stored/1s/archive+archive+archive/fault/crash``,
README, "The full scope, sampled".)
"""

from __future__ import annotations

from typing import Any

import pytest

from meerkat_ref.cli import main
from meerkat_ref.oracle.check import in_process
from meerkat_ref.oracle.engine import _linearize, explore_with, get_scenario, parse_scheduler
from meerkat_ref.oracle.engine._linearize import Invoke, ModelFailure, check
from meerkat_ref.variants import Variant


def _broken(monkeypatch: pytest.MonkeyPatch, after: int) -> None:
    """The model's step raises from its ``after``-th use on, as a model bug would."""
    real = _linearize._apply
    calls = [0]

    def apply(frontier: Any, event: Any) -> Any:
        calls[0] += 1
        if calls[0] > after:
            raise KeyError("a row the model never wrote")
        return real(frontier, event)

    monkeypatch.setattr(_linearize, "_apply", apply)
    monkeypatch.setattr(_linearize, "_last", _linearize._Last())  # no cached frontiers


def test_the_check_names_the_model_s_error_and_where(monkeypatch: pytest.MonkeyPatch) -> None:
    from meerkat_ref._model import model

    _broken(monkeypatch, after=0)
    with pytest.raises(ModelFailure, match=r"KeyError: .* at event 0 \(step 3\) of a history of 1"):
        check([Invoke(3, 0, model.Create("a"))], 2)


def test_a_model_failure_is_an_oracle_error_with_the_run_s_schedule(
        monkeypatch: pytest.MonkeyPatch) -> None:
    scenario = get_scenario("turns-at-once")
    spec = parse_scheduler("random:runs=5")
    clean = in_process(Variant.parse("reference").target(),
                       lambda target: explore_with(target, scenario, spec.make()))
    assert clean.schedules == 5 and not clean.oracle_errors

    _broken(monkeypatch, after=3)
    report = in_process(Variant.parse("reference").target(),
                        lambda target: explore_with(target, scenario, spec.make()))
    (error,) = report.oracle_errors
    assert error.kind == "model-failed" and "the concurrent model raised KeyError" in error.message
    assert error.schedule and all(c.label or c.crash for c in error.schedule)
    assert not report.exhausted and report.schedules == 0 and not report.violating


def test_the_sweep_exits_3_on_a_model_failure_and_prints_no_traceback(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _broken(monkeypatch, after=3)
    code = main(["sweep", "--scope", "ci", "--shard", "7/198", "--no-ledger"])
    out, err = capsys.readouterr()
    assert code == 3
    assert "ORACLE ERROR" in out and "model-failed" in out
    assert "Traceback" not in out + err
