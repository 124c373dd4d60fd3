"""One scheduler protocol (issue 19, item 3): the registry, its text, and each scheduler at work.

Every scheduler of ``engine.SCHEDULERS`` is named by text
(``pct:depth=3,runs=200,seed=7``), runs in the one loop
(``engine.explore_with``), and must find the bug the seed's create window
plants (``seed-0.4.0:create-racing-archive``, scenario
``create-vs-archive``) where it claims to; the samplers find nothing in the
reference.  The older ``--bound``/``--search`` name the same schedulers
(the counts they pin are in ``tests/test_dpor.py``, ``tests/test_explore.py``
and README's check table, measured through this loop); ``check``,
``conform`` and ``sweep`` share ``--scheduler``, whose help is the registry.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import threading
from pathlib import Path

import pytest
from helpers import ADAPTER_TIMEOUT

from meerkat_ref.cli import main
from meerkat_ref.oracle.check import explore, in_process
from meerkat_ref.oracle.conform import (
    Options,
    add_arguments,
    parse_request,
    portfolio,
    schedule_cap,
)
from meerkat_ref.oracle.engine import (
    SCHEDULERS,
    DfsScheduler,
    DporScheduler,
    HypothesisScheduler,
    PctScheduler,
    RandomScheduler,
    ReplayScheduler,
    SchedulerSpec,
    SchedulerSpecError,
    SearchReport,
    dump,
    explore_with,
    get_scenario,
    legacy_scheduler,
    parse_scheduler,
    scheduler_names,
)
from meerkat_ref.oracle.sweep import LEDGERS_ENV, default_ledger
from meerkat_ref.variants import Variant

WINDOW = Variant.parse("seed-0.4.0:create-racing-archive")
REFERENCE = Variant.parse("reference")
SCENARIO = "create-vs-archive"


def _explore(variant: Variant, text: str, *, stop: bool = True,
             scenario: str = SCENARIO) -> SearchReport:
    spec = parse_scheduler(text)
    return in_process(variant.target(store="memory"), lambda t: explore_with(
        t, get_scenario(scenario), spec.make(), stop_on_violation=stop))


# -- the registry and its text ---------------------------------------------------------------


@pytest.mark.parametrize(("text", "kind", "params"), [
    ("dpor", DporScheduler, {}),
    ("dfs:bound=2", DfsScheduler, {"bound": 2}),
    ("dfs:bound=none,reduce=false", DfsScheduler, {"bound": None, "reduce": False}),
    ("pct:depth=3,runs=200,seed=7", PctScheduler, {"depth": 3, "runs": 200, "seed": 7}),
    ("random:runs=100,seed=1", RandomScheduler, {"runs": 100, "seed": 1}),
    (" hypothesis : runs=5 ", HypothesisScheduler, {"runs": 5}),
])
def test_a_spec_names_a_scheduler_and_its_parameters(text: str, kind: type,
                                                     params: dict[str, object]) -> None:
    spec = parse_scheduler(text)
    assert spec.kind is kind and dict(spec.params) == params
    assert isinstance(spec.make(), kind)
    assert parse_scheduler(spec.text) == spec  # the text it shows parses back to it


def test_parameters_not_given_take_their_defaults_and_reach_the_scheduler() -> None:
    spec = parse_scheduler("pct:runs=3,seed=10,step=2")
    assert spec.get("depth") == 3 and spec.get("steps") == 60
    pct = spec.make()
    assert isinstance(pct, PctScheduler) and list(pct.seeds) == [10, 12, 14]
    assert pct.depth == 3 and pct.label == "pct(depth=3)"
    dfs = parse_scheduler("dfs:bound=2,reduce=no").make()
    assert dfs.bound == 2 and dfs.label == "plain-dfs(p<=2)" and dfs.exhaustive


@pytest.mark.parametrize(("text", "said"), [
    ("bogus", "unknown scheduler 'bogus'; known: dpor, dfs, pct, random, replay, hypothesis"),
    ("", "no scheduler named"),
    (":runs=1", "no scheduler named"),
    ("pct:width=3", "pct: unknown parameter 'width'; it takes runs, seed, step, depth, steps"),
    ("dpor:bound=1", "dpor: unknown parameter 'bound'; it takes audit"),
    ("pct:depth=deep", "pct: depth must be an integer, got 'deep'"),
    ("pct:depth=0", "pct: depth must be at least 1, got 0"),
    ("dfs:bound=-1", "dfs: bound must be at least 0, got -1"),
    ("dfs:bound=x", "dfs: bound must be an integer or none, got 'x'"),
    ("dfs:reduce=maybe", "dfs: reduce must be true or false, got 'maybe'"),
    ("dfs:bound", "dfs: 'bound' is not k=v"),
    ("dfs:bound=1,bound=2", "dfs: bound given twice"),
    ("random:runs=1,,seed=2", "random: '' is not k=v"),
    ("replay", "replay needs file=PATH"),
])
def test_a_bad_spec_says_what_is_wrong(text: str, said: str) -> None:
    with pytest.raises(SchedulerSpecError) as caught:
        parse_scheduler(text)
    assert said in str(caught.value)


def test_the_older_options_name_the_same_schedulers() -> None:
    assert legacy_scheduler(None, "dpor") == parse_scheduler("dpor")
    assert legacy_scheduler(None, "dpor", 8) == parse_scheduler("dpor:audit=8")
    assert legacy_scheduler(1, "dpor") == parse_scheduler("dfs:bound=1")
    assert legacy_scheduler(None, "dfs") == parse_scheduler("dfs:reduce=false")
    assert legacy_scheduler(2, "dfs") == parse_scheduler("dfs:bound=2,reduce=false")
    with pytest.raises(SchedulerSpecError, match="needs DPOR"):
        legacy_scheduler(1, "dpor", 8)
    with pytest.raises(SchedulerSpecError, match="unknown search"):
        legacy_scheduler(None, "bfs")


@pytest.mark.parametrize("command", ["check", "conform", "sweep"])
def test_every_command_offers_the_registry_and_its_help_lists_it(
        command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    shown = "".join(capsys.readouterr().out.split())  # as argparse wrapped it, unwrapped
    assert "--schedulerNAME[:k=v,...]" in shown
    for cls in SCHEDULERS:
        params = ",".join(f"{p.name}=" for p in cls.params if p.kind != "str")
        assert cls.name in shown and "".join(cls.about.split()) in shown
        assert all(p in shown for p in params.split(",") if p)
    assert scheduler_names() == ("dpor", "dfs", "pct", "random", "replay", "hypothesis")


# -- each scheduler at work ------------------------------------------------------------------


@pytest.mark.parametrize("text", ["dpor", "dfs:bound=1", "dfs:reduce=false,bound=0",
                                  "pct:runs=60", "random:runs=60", "hypothesis:runs=30"])
def test_each_scheduler_finds_the_planted_window(text: str) -> None:
    report = _explore(WINDOW, text)
    first = report.first()
    assert first is not None, f"{text} ran {report.schedules} schedules and found nothing"
    assert first.violations and not report.exhausted  # stopped at it
    assert report.sampled is not parse_scheduler(text).kind.exhaustive


@pytest.mark.parametrize("text", ["pct:runs=15,seed=3", "random:runs=15,seed=3",
                                  "hypothesis:runs=10"])
def test_samplers_find_nothing_in_the_reference_and_claim_no_coverage(text: str) -> None:
    report = _explore(REFERENCE, text, stop=False)
    assert report.violations == 0 and report.schedules >= 10
    assert report.sampled and not report.exhausted


def test_the_samplers_are_seeded_the_same_text_the_same_runs() -> None:
    runs = [[tuple(o.choices) for o in _explore(WINDOW, "random:runs=8,seed=4",
                                                stop=False).violating] for _ in range(2)]
    assert runs[0] == runs[1]


def test_hypothesis_shrinks_what_it_finds_and_ends_its_thread() -> None:
    kept = _explore(WINDOW, "hypothesis:runs=30", stop=False)
    assert kept.violations > 1  # the first find, then the shrink attempts that still fail
    first = kept.violating[0]
    smallest = kept.first()
    assert smallest is not None and len(smallest.steps) <= len(first.steps)
    assert not any(t.name == "hypothesis-scheduler" and t.is_alive()
                   for t in threading.enumerate())


def test_replay_runs_the_recorded_schedule_on_its_scenario_only(tmp_path: Path) -> None:
    found = _explore(WINDOW, "dpor").first()
    assert found is not None
    path = tmp_path / "found.json"
    path.write_text(dump(found, "memory"))
    again = _explore(WINDOW, f"replay:file={path}", stop=False)
    assert again.schedules == 1 and again.violations == 1
    assert again.violating[0].choices == found.choices
    other = _explore(WINDOW, f"replay:file={path}", scenario="turns-at-once")
    assert other.schedules == 0 and "scenario create-vs-archive" in other.unchecked
    assert isinstance(parse_scheduler(f"replay:file={path}").make(), ReplayScheduler)


def test_check_scheduler_is_the_older_option_counted_the_same(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def counts(*argv: str) -> list[tuple[object, ...]]:
        assert main(["check", "--store", "memory", "--json", "--jobs", "1", "--scenario",
                     "turns-at-once", "--scenario", "creates-at-capacity", "--out",
                     str(tmp_path), *argv]) == 0
        results = json.loads(capsys.readouterr().out)["results"]
        return [(r["strategy"], r["bound"], r["schedules"], r["pruned"], r["states"],
                 r["exhausted"]) for r in results]

    assert counts("--bound", "1") == counts("--scheduler", "dfs:bound=1")
    assert counts("--search", "dfs") == counts("--scheduler", "dfs:reduce=false")
    assert counts() == counts("--scheduler", "dpor")
    assert [c[0] for c in counts("--scheduler", "pct:runs=7")] == ["pct(depth=3)"] * 2


def test_check_table_says_a_sampler_sampled(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--store", "memory", "--jobs", "1", "--scenario", "turns-at-once",
                 "--scheduler", "random:runs=5"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines()
               if line.startswith("turns-at-once"))
    assert row.split()[1:4] == ["random", "sampled", "none"] and row.split()[4] == "5"


def test_check_explores_in_processes_with_the_scheduler() -> None:
    spec = parse_scheduler("pct:runs=6")
    report = explore(REFERENCE.target(store="memory"), get_scenario("turns-at-once"),
                     scheduler=spec)
    assert report.strategy == "pct(depth=3)" and report.schedules == 6


# -- conform's portfolio and sweep ------------------------------------------------------------


def test_conform_default_portfolio_is_the_search_it_always_ran() -> None:
    texts = [s.text for s in portfolio(Options())]
    assert texts == ["dfs:bound=0", "pct:runs=4,seed=1,step=2,depth=3",
                     "random:runs=4,seed=2,step=2"]
    seeds = [list(s.make().seeds) for s in portfolio(Options())[1:]]  # type: ignore[attr-defined]
    assert seeds == [[1, 3, 5, 7], [2, 4, 6, 8]]  # PCT on the even runs, random on the odd
    assert [s.text for s in portfolio(Options(search_runs=3, max_schedules=0))] == [
        "pct:runs=2,seed=1,step=2,depth=3", "random:runs=1,seed=2,step=2"]
    given = (parse_scheduler("dpor"), parse_scheduler("pct:runs=2"))
    assert portfolio(Options(schedulers=given)) == list(given)
    assert portfolio(Options(schedulers=given, max_schedules=0)) == [given[1]]


DECLARES = frozenset({"points", "footprints"})


def test_conform_explores_a_port_that_declares_footprints_by_dpor() -> None:
    """``--search auto``: DPOR over an adapter that declares its footprints, else the
    bounded DFS; each exhaustive search with its own default cap, ``--max-schedules`` for
    either."""
    assert portfolio(Options(), DECLARES)[0].text == "dpor"
    assert portfolio(Options(), frozenset({"points"}))[0].text == "dfs:bound=0"
    assert portfolio(Options(search="dfs"), DECLARES)[0].text == "dfs:bound=0"
    assert portfolio(Options(search="dpor"), frozenset({"points"}))[0].text == "dpor"
    dpor, dfs = portfolio(Options(), DECLARES)[0], portfolio(Options())[0]
    assert (schedule_cap(Options(), dpor), schedule_cap(Options(), dfs)) == (10_000, 400)
    assert schedule_cap(Options(max_schedules=7), dpor) == 7
    assert "dpor" not in [s.text for s in portfolio(Options(max_schedules=0), DECLARES)]


def _request(*argv: str) -> Options:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parse_request(parser.parse_args(["--adapter", "port", *argv])).opts


def test_conform_options_pick_the_exhaustive_search() -> None:
    assert _request().search == "auto"
    assert _request("--bound", "2").search == "dfs"  # a bound asks for the bounded DFS
    assert _request("--search", "dpor").search == "dpor"
    for bad in (["--search", "bfs"], ["--search", "dpor", "--bound", "1"],
                ["--search", "dfs", "--scheduler", "dpor"]):
        with pytest.raises(ValueError, match=r"--search|--bound"):
            _request(*bad)


def test_conform_runs_the_portfolio_it_is_given(capsys: pytest.CaptureFixture[str]) -> None:
    seed = f"{shlex.quote(sys.executable)} -m meerkat_ref.adapter --variant seed-0.4.0"
    code = main(["conform", "--adapter", seed, "--random-cases", "0", "--free-runs", "0",
                 "--scenario", SCENARIO, "--max-schedules", "40", "--scheduler", "dfs:bound=1",
                 "--scheduler", "random:runs=3,seed=5", "--json",
                 "--timeout", str(ADAPTER_TIMEOUT)])
    report = json.loads(capsys.readouterr().out)
    assert code == 1
    name = "concurrent search (hooks)"
    phase = next(p for p in report["phases"] if p["name"] == name)
    assert "each of: dfs:bound=1, random:runs=3,seed=5" in phase["note"]
    assert [s["strategy"] for s in report["searches"]] == ["dfs(p<=1)"]
    assert phase["cases"] == report["searches"][0]["schedules"] + 3  # the random runs, one each
    named = {f"{SCENARIO} (dfs)", *(f"{SCENARIO} (random, seed {n})" for n in (5, 6, 7))}
    found = report["by_phase"][name]
    assert found and all(f["best"]["case"] in named for f in found.values())


def test_sweep_explores_with_the_scheduler_and_names_its_ledger(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    assert main(["sweep", "--scope", "ci", "--no-ledger", "--json", "--max-scenarios", "2",
                 "--store", "memory", "--scheduler", "random:runs=3"]) == 4
    result = json.loads(capsys.readouterr().out)
    assert result["scenarios"] == 2 and result["schedules"] == 6 and not result["exhausted"]
    monkeypatch.setenv(LEDGERS_ENV, str(tmp_path))
    spec = parse_scheduler("pct:runs=9")
    path = default_ledger("ci", "reference", "memory", scheduler=spec)
    assert path is not None and path.name == "ci-reference-memory-pct_runs_9.jsonl"
    assert default_ledger("ci", "reference", "memory", scheduler=SchedulerSpec("dpor")) == \
        default_ledger("ci", "reference", "memory")
