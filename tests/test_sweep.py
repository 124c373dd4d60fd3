"""``meerkat-ref sweep``: a generated scope, explored in full, with the same totals however split.

The ``ci`` scope runs whole (about 200 scenarios); splits are compared on a
slice of it, so the suite stays bounded.  The Dask path runs against a local
cluster (the ``dask`` extra, installed by ``.ci/run``).  The ledger (resume,
refusal, torn lines) has its own file, ``test_sweep_ledger.py``.
"""

from __future__ import annotations

import itertools
import json
import logging
from dataclasses import replace
from functools import partial
from pathlib import Path

import pytest

from meerkat_ref.cli import main
from meerkat_ref.oracle.sweep import (
    CI_SCOPES,
    SCOPES,
    Scope,
    every_budget,
    open_ledger,
    scenarios,
    shard,
    sweep,
)
from meerkat_ref.service import PersistentSessionService
from meerkat_ref.variants import Variant

SLICE = Scope("slice", sizes=(2,), sessions=(1,), situations=("idle",), faults=(0,),
              crashes=(0,), ops=("turn", "read", "load"))
MAKE = partial(Variant.parse("reference").target, store="memory")


def test_scopes_are_generated_in_a_fixed_order() -> None:
    first, again = scenarios(SCOPES["ci"]), scenarios(SCOPES["ci"])
    assert [s.name for s in first] == [s.name for s in again]
    assert len({s.name for s in first}) == len(first)
    assert len(scenarios(SLICE)) == 6  # the pairs of 3 calls


def test_readme_counts_the_scenarios_of_each_scope() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    counts = {name: len(scenarios(scope)) for name, scope in SCOPES.items()}
    assert f"# {counts['ci']} scenarios, every CI run" in readme
    assert f"# {counts['ci-faults']} scenarios, every CI run: a store fault in each" in readme
    assert f"# {counts['ci3']} scenarios, every CI run: groups of three calls" in readme
    assert (f"# {counts['ci3-sample']} scenarios, every CI run: the dearer groups of three, "
            "sampled") in readme
    assert f"# the default scope: {counts['default']:,} scenarios of 2 calls" in readme
    assert f"# {counts['full']:,} scenarios, groups of 3 too (" in readme


def _swept_whole_as_readme_says(name: str) -> None:
    """Sweep the scope ``name`` whole: every interleaving (or the scope's own sample), no
    violation, and README's sentence of its figures (scenarios, schedules, end states)
    matches what the sweep found."""
    result = sweep(MAKE, SCOPES[name])
    assert not result.violating
    assert result.sampled if SCOPES[name].scheduler else result.exhausted
    readme = " ".join((Path(__file__).resolve().parent.parent / "README.md")
                      .read_text(encoding="utf-8").split())
    figures = (f"`meerkat-ref sweep --scope {name}` explores {len(result.rows)} scenarios, "
               f"{result.schedules:,} schedules, {result.states} end states, 0 violations")
    assert figures in readme


def test_the_ci_scope_is_explored_in_full_with_readme_s_totals() -> None:
    """The ci scope, whole, every CI run: every interleaving, no violation; README's figures."""
    _swept_whole_as_readme_says("ci")


def test_the_ci_faults_scope_is_explored_in_full_with_readme_s_totals() -> None:
    """The ci alphabet with a store fault in every group, whole, every CI run."""
    _swept_whole_as_readme_says("ci-faults")


def test_the_ci3_scope_of_three_calls_is_explored_in_full_with_readme_s_totals() -> None:
    """Groups of three calls, whole, every CI run; ``at_most`` is a real bound of the scope."""
    scope = SCOPES["ci3"]
    every = scenarios(scope)
    assert all(len(s.clients) == 3 for s in every)
    unbounded = scenarios(replace(scope, at_most=()))
    assert {s.name for s in every} < {s.name for s in unbounded}
    left_out = {s.name.split("/")[2] for s in unbounded} - {s.name.split("/")[2] for s in every}
    changers = ("turn", "archive", "cancel", "rearm")  # in the alphabet's order, as names are
    assert left_out == {"+".join(g) for g in itertools.combinations_with_replacement(changers, 3)}
    assert "at most 2 of {turn, archive, cancel, rearm} in a group" in scope.describe()
    _swept_whole_as_readme_says("ci3")


def test_the_ci3_sample_scope_is_swept_with_readme_s_totals() -> None:
    """The dearer groups of three, sampled, every CI run: seeded, so README's figures hold."""
    _swept_whole_as_readme_says("ci3-sample")


class _DisarmClearsArchived(PersistentSessionService):
    """A flag reset by the wrong call: the disarm clears a gate's ``archived`` too.  A
    disarm that waited for the gate's lock behind an archive reopens the gate the archive
    closed, and a turn's save waiting behind the disarm writes the archived session back.
    It takes a turn, an archive and a disarm (three calls that change the session or its
    gates): no pair shows it, and ``ci3`` explores no such group."""

    async def cancel_all_checkpointers(self) -> None:
        for gate in list(self._gates.values()):
            async with gate.held():
                gate.armed = False
                gate.archived = False  # the mutation


def test_the_ci3_sample_scope_samples_the_groups_ci3_leaves_out() -> None:
    """``ci3-sample``: every group of three on one idle or serving session from ci3's
    alphabet and inject, the groups ci3 bounds out included, with a fault and a crash; its
    own scheduler, seeded (the same rows twice), and a claim that says it is a sample.
    A bug only such a group shows is found in it by the scope's scheduler alone."""
    import trio

    from meerkat_ref.oracle.engine import explore_with
    from meerkat_ref.oracle.targets import InProcessTarget

    sample, ci3 = SCOPES["ci3-sample"], SCOPES["ci3"]
    assert set(CI_SCOPES) == {"ci", "ci-faults", "ci3", "ci3-sample"} <= set(SCOPES)
    groups = {s.name.split("/")[0] + "/" + s.name.split("/")[2] for s in scenarios(sample)}
    bounded_out = {s.name for s in scenarios(replace(ci3, at_most=()))} - {
        s.name for s in scenarios(ci3)}
    assert bounded_out and bounded_out <= {f"{g.split('/')[0]}/1s/{g.split('/')[1]}"
                                           for g in groups}
    assert all((s.faults, s.crashes) == (1, 1) for s in scenarios(sample))
    assert "a sample, random:runs=40 per scenario, not every interleaving" in sample.describe()
    assert "every interleaving explored (DPOR)" in ci3.describe()
    some = Scope("some", sizes=(3,), sessions=(1,), situations=("idle",), faults=(1,),
                 crashes=(1,), ops=("turn", "archive", "cancel"), scheduler=sample.scheduler)
    once, again = sweep(MAKE, some, shard_spec="0/4"), sweep(MAKE, some, shard_spec="0/4")
    assert once.sampled and not once.exhausted and not once.violating
    assert [(r.name, r.schedules, r.states) for r in once.rows] == [
        (r.name, r.schedules, r.states) for r in again.rows]

    (scenario,) = [s for s in scenarios(sample)
                   if s.name == "idle/1s/turn+archive+cancel/fault/crash"]
    assert scenario.name not in {s.name for s in scenarios(ci3)}
    spec = sample.explorer()
    assert spec is not None

    async def explore(cls: type) -> list[str]:
        async with InProcessTarget(lambda b, c, s, p: cls(b, c, s, points=p),
                                   description=cls.__name__) as target:
            report = await explore_with(target, scenario, spec.make())
        return sorted({v.rule for run in report.violating for v in run.violations})

    assert trio.run(explore, PersistentSessionService) == []
    assert "ARCHIVE-FINAL" in trio.run(explore, _DisarmClearsArchived)


# -- fewer scenarios, soundly: a group with the most faults and crashes covers it with fewer ---


def test_the_default_and_full_scopes_explore_each_group_once_with_the_most() -> None:
    """Each group of calls once, with at most one fault and one crash (``sweep``'s module
    doc); ``every_budget`` gives back the four variants each group stands for."""
    for name in ("default", "full"):
        scope = SCOPES[name]
        kept, every = scenarios(scope), scenarios(every_budget(scope))
        assert all(s.name.endswith("/fault/crash") and (s.faults, s.crashes) == (1, 1)
                   for s in kept)
        assert len(every) == 4 * len(kept)
        assert {s.name for s in kept} == {s.name for s in every
                                         if (s.faults, s.crashes) == (1, 1)}
        assert "at most 1 store fault and at most 1 crash" in scope.describe()
    assert "no store fault and no crash" in SCOPES["ci"].describe()
    assert "(each group also explored with 0)" in every_budget(SCOPES["default"]).describe()


@pytest.mark.parametrize(("mutant", "group"), [
    (None, "stored/1s/read+archive"),
    ("ArchiveKeepsRow", "stored/1s/read+archive"),
    ("ReadLiveOnly", "stored/1s/read+archive"),
    ("PageBeforeMerge", "stored/1s/create+list"),
    ("ShutdownWaitsForNone", "stored/1s/create+list"),
])
def test_the_kept_budget_reaches_every_end_state_and_verdict_of_the_others(
        mutant: str | None, group: str) -> None:
    """Explored apart, a group's four budgets reach no end state and break no rule that the
    kept one (a fault and a crash) does not: on the reference and with mutants planted that
    the group catches (``benchmarks.bench_subsume`` runs more groups and every mutant)."""
    import sys

    import trio

    root = str(Path(__file__).resolve().parent.parent)
    if root not in sys.path:  # benchmarks/ sits beside tests/ and is not installed
        sys.path.insert(0, root)
    from benchmarks.bench_subsume import groups, measure, mutant_targets

    chosen = {group: groups(SCOPES["default"])[group]}
    make = MAKE if mutant is None else mutant_targets([mutant])[mutant]
    measured = trio.run(measure, mutant or "reference", make, chosen)
    assert not measured.differences, measured.differences
    assert measured.violating_every == measured.violating_kept
    assert bool(measured.violating_kept) == (mutant is not None)
    assert measured.kept_schedules < measured.every_schedules


def test_shards_partition_the_scope() -> None:
    every = scenarios(SCOPES["default"])
    parts = [shard(every, f"{i}/3") for i in range(3)]
    indices = sorted(i for part in parts for i, _ in part)
    assert indices == list(range(len(every)))
    for bad in ("3/3", "x", "1/0", "-1/2"):
        with pytest.raises(ValueError):
            shard(every, bad)


def test_same_totals_whatever_the_split() -> None:
    whole = sweep(MAKE, SLICE)
    halves = [sweep(MAKE, SLICE, shard_spec=f"{i}/2") for i in range(2)]
    pooled = sweep(MAKE, SLICE, jobs=2)
    assert whole.exhausted and not whole.violating
    assert whole.schedules == sum(h.schedules for h in halves) == pooled.schedules
    assert whole.states == sum(h.states for h in halves) == pooled.states
    assert [r.name for r in pooled.rows] == [r.name for r in whole.rows]


def test_a_sweep_leaves_the_checkpoint_log_as_it_found_it() -> None:
    """The sweep hushes expected checkpoint warnings for its own run only: a process
    that goes on (a soak counting those warnings, say) must still see them."""
    log = logging.getLogger("meerkat_ref.checkpoint")
    before = log.level
    sweep(MAKE, Scope("one", sizes=(2,), sessions=(1,), situations=("idle",), faults=(1,),
                      crashes=(0,), ops=("turn", "read")))
    assert log.level == before and log.isEnabledFor(logging.WARNING)


def _ledger_rows(path: Path) -> list[tuple[object, ...]]:
    """A ledger's rows without their times, in a fixed order: what a split must not change."""
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()[1:]]
    return sorted(tuple(sorted((k, json.dumps(v)) for k, v in line.items() if k != "seconds"))
                  for line in lines)


def test_sweep_on_a_local_dask_cluster(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A ``LocalCluster`` of worker processes, started as users start one: the local totals,
    and the ledger rows two local workers write (order aside); the command's ``--dask``."""
    distributed = pytest.importorskip("distributed", reason="the dask extra is not installed")
    local = sweep(MAKE, SLICE)
    with open_ledger(tmp_path / "jobs2.jsonl", SLICE, ["reference"], store="memory") as ledger:
        sweep(MAKE, SLICE, jobs=2, ledger=ledger)
    argv = ["sweep", "--scope", "ci", "--shard", "5/100", "--json"]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        with open_ledger(tmp_path / "dask.jsonl", SLICE, ["reference"],
                         store="memory") as ledger:
            on_dask = sweep(MAKE, SLICE, executor=client.get_executor(), jobs=2, ledger=ledger)
        assert main([*argv, "--dask", cluster.scheduler_address, "--ledger",
                     str(tmp_path / "cli.jsonl")]) == 0
        via_cli = json.loads(capsys.readouterr().out)
    assert (on_dask.schedules, on_dask.states) == (local.schedules, local.states)
    assert on_dask.complete and not on_dask.violating
    assert [(r.name, r.schedules, r.states) for r in on_dask.rows] == [
        (r.name, r.schedules, r.states) for r in local.rows]
    assert _ledger_rows(tmp_path / "dask.jsonl") == _ledger_rows(tmp_path / "jobs2.jsonl")
    assert len(_ledger_rows(tmp_path / "dask.jsonl")) == len(scenarios(SLICE))
    assert main([*argv, "--no-ledger"]) == 0
    here = json.loads(capsys.readouterr().out)
    assert via_cli["workers"] == 2 and via_cli["complete"]
    assert (via_cli["schedules"], via_cli["end_states"]) == (here["schedules"],
                                                             here["end_states"])


def test_cli_sweep_prints_its_scope_and_totals(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sweep", "--scope", "ci", "--shard", "5/50", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["format"] == "meerkat-ref/sweep@1"
    in_scope = len(scenarios(SCOPES["ci"]))
    assert data["scenarios"] == len(range(5, in_scope, 50))
    assert data["scenarios_in_scope"] == in_scope
    assert data["violations"] == 0 and data["exhausted"] is True
    assert "every interleaving explored" in data["claim"]
    assert main(["sweep", "--scope", "ci", "--shard", "5/2"]) == 2
    assert main(["sweep", "--scope", "ci", "--list", "--shard", "0/54"]) == 0
    assert str(in_scope) not in capsys.readouterr().err


def test_cli_check_explores_in_full_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--store", "memory", "--json", "--scenario", "turn-save-vs-archive"]) == 0
    (result,) = json.loads(capsys.readouterr().out)["results"]
    assert result["strategy"] == "dpor" and result["bound"] is None and result["exhausted"]
    assert main(["check", "--store", "memory", "--json", "--bound", "0", "--scenario",
                 "turn-save-vs-archive"]) == 0
    (bounded,) = json.loads(capsys.readouterr().out)["results"]
    assert bounded["bound"] == 0 and bounded["schedules"] < 985


def test_cli_sweep_junit_names_each_scenario_and_how_to_explore_it_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One case per scenario; a failure carries a command that explores that one again."""
    import xml.etree.ElementTree as ET

    from test_report_junit import junit10_problems

    window = "seed-0.4.0:save-after-turn"
    xml = tmp_path / "sweep.xml"
    # a shard of the ci scope that holds idle/1s/turn+archive, which exposes window 1, and
    # host/1s/archive+archive, which does not (the one step between them)
    names = [s.name for s in scenarios(SCOPES["ci"])]
    first, second = names.index("idle/1s/turn+archive"), names.index("host/1s/archive+archive")
    assert names[first::second - first] == ["idle/1s/turn+archive", "host/1s/archive+archive"]
    assert main(["sweep", "--scope", "ci", "--shard", f"{first}/{second - first}",
                 "--variant", window, "--junit-xml", str(xml)]) == 1
    capsys.readouterr()
    document = xml.read_text(encoding="utf-8")
    assert junit10_problems(document) == []
    cases = list(ET.fromstring(document).iter("testcase"))
    assert [c.get("name") for c in cases] == ["idle/1s/turn+archive", "host/1s/archive+archive"]
    failure = cases[0].find("failure")
    assert failure is not None and "ARCHIVE-FINAL" in (failure.get("message") or "")
    assert cases[1].find("failure") is None
    again = (failure.text or "").rsplit("explore it again: ", 1)[1].strip()
    argv = again.split()
    assert argv[:2] == ["meerkat-ref", "sweep"]
    assert main([*argv[1:], "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["scenarios"] == 1 and data["violations"] > 0


def test_cli_sweep_refuses_a_junit_path_it_cannot_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sweep", "--scope", "ci", "--junit-xml", str(tmp_path)]) == 2
    assert "--junit-xml" in capsys.readouterr().err
