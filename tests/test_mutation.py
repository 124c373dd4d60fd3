"""The oracle's power over generated mutants: the CI slice, and the tool's own promises.

Issue 17, item 3: ``python -m benchmarks.mutation`` generates mutants of the
service, the store and the agent (cosmic-ray's operators) and judges each by
the oracle alone.  Here a bounded slice of it runs in CI: the mutants of the
gate (``service/_gate.py``) and of the persistent service
(``service/_persistent.py``): a fixed sample of them (``in_slice``), each
judged exactly as the command judges it.  Each must be killed, unless
``benchmarks/mutation-equivalents.toml`` lists it: then an ``[equivalent]``
or a known ``[survivor]`` must survive.
A known survivor that the oracle now kills fails here until its line is
removed, so the list only shrinks (a ratchet); a new survivor fails until it
is closed (a rule, a finer model, a wider alphabet) or reviewed into the list.

Verdicts are deterministic: every judge is exhaustive or seeded (``conform``
runs no free-running schedules), and the time limit is far above a judge's
time on a loaded machine.  Without cosmic-ray (the ``mutation`` extra) the
module is skipped on a developer's machine and fails in CI.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import skip_outside_ci

try:
    import cosmic_ray  # noqa: F401
except ImportError:
    skip_outside_ci("cosmic-ray is not installed: pip install -e '.[mutation]'")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks/ sits beside tests/ and is not installed
    sys.path.insert(0, str(ROOT))

from benchmarks.mutation._generate import Mutant, generate, mutants_of, shard  # noqa: E402
from benchmarks.mutation._run import Ledger, Verdict, judge, source_hash  # noqa: E402
from benchmarks.mutation._table import Reviewed, build, markdown  # noqa: E402

SLICE = ("meerkat_ref/service/_gate.py", "meerkat_ref/service/_persistent.py")
SAMPLE_UNREVIEWED = 6
SAMPLE_REVIEWED = 32
"""One in SAMPLE_UNREVIEWED of the mutants not reviewed (each expected to die, mostly
in seconds, by ``conform``) is judged in every CI run, and one in SAMPLE_REVIEWED of the
reviewed ones (equivalent or known survivors) under ``MEERKAT_PROFILE=deep``, chosen by
a hash of the id, so the sample does not move when other mutants come or go: 14 and 1
(an equivalent) of the slice's 135.  A reviewed one runs every judge, since none may kill
it: with the fault kinds that is over three minutes of a core, so it left the CI run.
``python -m benchmarks.mutation --module`` over the two files judges them all."""
DEEP = os.environ.get("MEERKAT_PROFILE") == "deep"

TIMEOUT = 900.0  # per judge: a judge takes seconds to a minute or two under load
REVIEWED = Reviewed.load()


def in_slice(mutant: Mutant) -> bool:
    listed = mutant.id in REVIEWED.equivalent or mutant.id in REVIEWED.survivor
    if listed and not DEEP:
        return False
    sample = SAMPLE_REVIEWED if listed else SAMPLE_UNREVIEWED
    return int(hashlib.sha256(mutant.id.encode()).hexdigest(), 16) % sample == 0


MUTANTS = [m for m in generate(list(SLICE)) if in_slice(m)]


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.id for m in MUTANTS])
def test_the_oracle_kills_every_mutant_not_reviewed(mutant: Mutant, tmp_path: Path) -> None:
    verdict = judge(mutant, timeout=TIMEOUT, workdir=tmp_path)
    where = f"{mutant.path}:{mutant.line}: {mutant.before!r} -> {mutant.after!r}"
    if mutant.id in REVIEWED.survivor:
        assert not verdict.killed, (
            f"{mutant.id} is killed now ({verdict.judge}: {verdict.rules}, {verdict.where}): "
            f"remove it from [survivor] in benchmarks/mutation-equivalents.toml ({where})"
        )
    elif mutant.id in REVIEWED.equivalent:
        assert not verdict.killed, (
            f"{mutant.id} is listed as equivalent, yet {verdict.judge} kills it "
            f"({verdict.rules}, {verdict.where}): the reason given is wrong ({where})"
        )
    else:
        assert verdict.killed, (
            f"{mutant.id} survives the oracle ({where}): close it with a rule, a finer model "
            "or a wider scenario alphabet, or review it into benchmarks/"
            "mutation-equivalents.toml"
        )


def test_every_reviewed_id_of_the_slice_names_a_mutant_that_exists() -> None:
    """A line of the reviewed list whose mutant is gone is stale: the list must match.

    (For the slice's modules; ``python -m benchmarks.mutation`` says the same of
    every module it generates.)
    """
    every = {m.id for m in generate(list(SLICE))}
    prefixes = tuple(path.removeprefix("meerkat_ref/") + ":" for path in SLICE)
    listed = {i for i in (*REVIEWED.equivalent, *REVIEWED.survivor) if i.startswith(prefixes)}
    stale = sorted(listed - every)
    assert not stale, f"not mutants of the current code (remove them): {stale}"


def test_ids_survive_an_unrelated_edit(tmp_path: Path) -> None:
    path = "meerkat_ref/service/_gate.py"
    copy = tmp_path / path
    copy.parent.mkdir(parents=True)
    text = (ROOT / path).read_text(encoding="utf-8")
    anchor = 'log = logging.getLogger("meerkat_ref.checkpoint")\n'
    assert anchor in text
    # An unrelated edit above the first class: a new function with a comparison in it.
    copy.write_text(text.replace(anchor, anchor + "\n\ndef _unrelated(a: int) -> bool:\n"
                                 "    return a < 3\n"), encoding="utf-8")
    before = {m.id for m in mutants_of(path)}
    after = {m.id for m in mutants_of(path, tmp_path)}
    assert before < after
    assert all(":_unrelated" not in i for i in before)
    new = after - before
    assert new and all(i.split(":")[1] in {
        "ReplaceComparisonOperator_Lt_Eq", "ReplaceComparisonOperator_Lt_NotEq",
        "ReplaceComparisonOperator_Lt_LtE", "ReplaceComparisonOperator_Lt_Gt",
        "ReplaceComparisonOperator_Lt_GtE", "ReplaceComparisonOperator_Lt_Is",
        "ReplaceComparisonOperator_Lt_IsNot", "NumberReplacer"} for i in new), new


def test_signature_annotations_are_not_mutated_but_evaluated_unions_are(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "from __future__ import annotations\n\n"
        "Alias = int | None\n\n"
        "def f(a: int | None) -> int | None:\n    return a\n",
        encoding="utf-8")
    lines = {m.line for m in mutants_of("m.py", tmp_path)}
    assert lines == {3}, lines  # the alias is evaluated at import; the signature never is


def test_shards_split_the_mutants_whole() -> None:
    mutants = generate(["meerkat_ref/service/_gate.py"])
    parts = [shard(mutants, f"{i}/3") for i in range(3)]
    assert sorted(m.id for p in parts for m in p) == sorted(m.id for m in mutants)
    assert parts[1] == [m for k, m in enumerate(mutants) if k % 3 == 1]
    with pytest.raises(ValueError, match="I/N"):
        shard(mutants, "three")


def test_the_ledger_resumes_and_judges_a_changed_mutant_again(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.add(Verdict("a", "killed", "conform", ["CREATE"], "x", 1.0, "h1"))
    ledger.add(Verdict("b", "survived", source_hash="h2"))
    again = Ledger(tmp_path / "ledger.jsonl")
    known = again.known("a", "h1")
    assert known is not None and known.judge == "conform" and known.rules == ["CREATE"]
    assert again.known("b", "other text") is None
    # A verdict of only some judges is not one of all of them.
    assert source_hash("text", ["check"]) != source_hash("text")


def test_the_table_counts_and_lists_survivors() -> None:
    mutants = generate(["meerkat_ref/service/_gate.py"])[:4]
    a, b, c, d = mutants
    verdicts = {a.id: Verdict(a.id, "killed", "check", ["ARCHIVE-FINAL"]),
                b.id: Verdict(b.id, "killed-timeout", "sweep"),
                c.id: Verdict(c.id, "survived")}
    reviewed = Reviewed(equivalent={c.id: "why"})
    table = build(mutants, verdicts, reviewed)
    (row,) = table.rows
    assert (row.generated, row.killed, row.errors, row.equivalent, row.survived,
            row.unjudged) == (4, 1, 1, 1, 0, 1)
    table = build(mutants, {**verdicts, d.id: Verdict(d.id, "survived")}, reviewed)
    assert [m.id for m, _ in table.survivors] == [d.id]
    assert d.id in markdown(table, reviewed) and "(not yet reviewed)" in markdown(table, reviewed)
    gone = "service/_gate.py:AddNot:0000000000"
    table = build(mutants, verdicts, Reviewed(equivalent={c.id: "why", gone: "stale"}))
    assert table.stale == [gone] and gone in markdown(table, reviewed)


def test_the_store_contract_judge_runs_the_mutant(tmp_path: Path) -> None:
    """The store contract suite judges the mutant, not the original module.

    pytest's assertion rewriter, first on ``sys.meta_path``, once imported the
    original store ahead of the mutant's hook, and every store mutant passed.
    This one narrows ``updated_after`` by one tick, which the contract's filter
    test sees (``check`` does not: the service never filters by time).
    """
    (mutant,) = [m for m in mutants_of("meerkat_ref/store/_memory.py")
                 if m.after == "end = self._index.bisect_left((~filter.updated_after,))"]
    verdict = judge(mutant, timeout=TIMEOUT, judges=["contract"], workdir=tmp_path)
    assert (verdict.status, verdict.judge, verdict.rules) == (
        "killed", "contract", ["STORE-LIST"]), verdict


def test_help_answers_without_running_anything() -> None:
    out = subprocess.run([sys.executable, "-m", "benchmarks.mutation", "--help"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60, check=True)
    assert "--shard" in out.stdout and "--module" in out.stdout


_TRACE = """
import functools, json, sys, threading
from pathlib import Path
import trio
from meerkat_ref.testing import check_session_store

called = set()

def profile(frame, event, arg):
    if event == "call":
        called.add(frame.f_code.co_filename)

threading.setprofile(profile)
sys.setprofile(profile)
report = trio.run(functools.partial(check_session_store, sys.argv[1], raise_on_failure=False))
sys.setprofile(None)
threading.setprofile(None)
root = Path(sys.argv[2]).resolve()
print(json.dumps({"ok": report.ok, "files": sorted(
    Path(f).resolve().relative_to(root).as_posix() for f in called
    if Path(f).resolve().is_relative_to(root / "meerkat_ref" / "store"))}))
"""


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_the_contract_judge_runs_each_store_kind_that_runs_the_module(kind: str) -> None:
    """``STORE_KINDS`` is what it says: a kind's contract suite calls functions of no store
    module not listed for it (so judging a mutant of such a module on that kind is wasted),
    and does call every one listed for it (so the list is not stale).

    Traced in a process of its own, so every thread that runs store code (SQLite's lane,
    Trio's worker threads) starts after the profiler is set.
    """
    from benchmarks.mutation._run import STORE_KINDS

    out = subprocess.run([sys.executable, "-c", _TRACE, kind, str(ROOT)], cwd=ROOT,
                         capture_output=True, text=True, timeout=300, check=True)
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["ok"], "the store contract fails on the original store"
    modules = {str(p.relative_to(ROOT).as_posix())
               for p in (ROOT / "meerkat_ref" / "store").glob("*.py")}
    runs = {m for m in modules if kind in STORE_KINDS.get(m, ("sqlite",))}
    called = set(found["files"])
    assert called <= runs, f"{kind}'s contract suite runs {sorted(called - runs)} too"
    # Modules of Protocols and re-exports only have no function to call.
    assert runs - called <= {"meerkat_ref/store/__init__.py", "meerkat_ref/store/_base.py"}, (
        sorted(runs - called))
