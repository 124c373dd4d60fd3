"""The store contract's checks, judged: each fails a store with the bug it is about.

``tests/toy_stores.py`` is a small JSON-file store written from the contract
alone; it passes every check (so the checks ask only what ``spec/CONTRACT.md``
section 6 says, not what ``SqliteStore`` happens to do), with and without
group commit.  Given one bug, the check named for it must fail, saying what
the store did.  Every check has such a bug here, so none of them can pass
whatever a store does; a new check needs one too (the last test).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import trio
from toy_stores import BUGS, CORRECT, GROUP, kind_with

from meerkat_ref.store import StoreKind
from meerkat_ref.testing import (
    STORE_CHECKS,
    StoreContractError,
    _store_checks,
    check_session_store,
)

CAUGHT_BY: dict[str, tuple[str, ...]] = {
    "drops-usage": ("round-trip",),
    "merge-on-save": ("save-replaces",),
    "alias-metadata": ("saved-metadata-is-a-copy",),
    "load-missing-raises": ("load-missing-is-none",),
    "ties-by-insertion": ("list-order",),
    "inclusive-filters": ("list-filters",),
    "page-then-filter": ("list-filters", "random-histories"),
    "limit-zero-means-all": ("list-pages",),
    "delete-missing-raises": ("delete-is-idempotent",),
    "exists-remembers": ("exists", "random-histories"),
    "half-applied-failure": ("failed-save-changes-nothing",),
    "lost-update": ("concurrent-writes-all-land",),
    "torn-save": ("reads-see-whole-rows",),
    "apply-then-checkpoint": ("cancelled-call-changes-nothing",),
    "cancel-leaves-write": ("cancellation-tells-the-truth",),
    "reverse-batches": ("writes-apply-in-order",),
    "refusal-fails-batch": ("a-refused-write-fails-alone",),
    "delete-skips-queue": ("delete-is-the-last-word",),
    "forgets-last-write": ("reopen-keeps-acknowledged-writes",),
    "close-does-not-refuse": ("close-applies-what-was-submitted",),
    "flush-on-close-only": ("crash-loses-no-acknowledged-write",),
    "no-lock": ("owner-one-opener", "owner-across-processes"),
    "unreadable-is-empty": ("damaged-files-are-refused-or-named",),
    "upkeep-fails": ("long-history-keeps-every-write",),
    "driver-error-is-damage": ("driver-errors-are-not-damage",),
    "driver-error-fails-batch": ("a-driver-refusal-fails-alone",),
    "dropped-keeps-lock": ("a-dropped-store-frees-what-it-held",),
    "long-path-os-error": ("a-long-path-opens-or-is-refused",),
}

CASES = [(bug, check) for bug, checks in CAUGHT_BY.items() for check in checks]


@pytest.mark.parametrize("kind", [CORRECT, GROUP], ids=lambda k: k.name)
async def test_a_correct_third_party_store_passes_every_check(
        kind: StoreKind, monkeypatch: pytest.MonkeyPatch) -> None:
    # The toy rewrites its whole file on every write (some 4 ms here): the long history
    # of 8,000 writes would take half a minute; the toy has no upkeep for it to reach.
    monkeypatch.setattr(_store_checks, "LONG_WRITES", 100)
    report = await check_session_store(kind)
    assert report.ok
    # A group toy cannot be dropped unclosed (its committer's nursery): it says so.
    assert [r.check.name for r in report.skipped] == (
        [] if "drop" in kind.supports else ["a-dropped-store-frees-what-it-held"])
    assert [r.check for r in report.results] == list(STORE_CHECKS)


@pytest.mark.parametrize(("bug", "check"), CASES, ids=[f"{b}-{c}" for b, c in CASES])
async def test_each_bug_fails_its_check(bug: str, check: str,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # The dropped toy that keeps its lock never lets it go, so any patience gives the same
    # verdict; the check's own (30 s, for a real store under load) would only be waited out.
    monkeypatch.setattr(_store_checks, "DROP_PATIENCE", 1.0)
    report = await check_session_store(kind_with(bug), checks=[check], raise_on_failure=False)
    [result] = report.results
    assert result.outcome == "failed", (bug, BUGS[bug], result)
    assert (result.detail and "the store raised" not in result.detail) or bug.endswith("raises")


async def test_a_failure_raises_the_report_naming_the_check_and_its_clause() -> None:
    with pytest.raises(StoreContractError) as info:
        await check_session_store(kind_with("ties-by-insertion"),
                                  checks=["round-trip", "list-order"])
    text = str(info.value)
    assert "FAILED   list-order" in text and "[STORE-LIST]" in text
    assert "expected newest first then id" in text
    assert "PASSED   round-trip" in text
    assert text.endswith("store contract, toy:ties-by-insertion: 1 passed, 1 failed, 0 skipped")
    assert info.value.report.failed[0].check.name == "list-order"
    assert isinstance(info.value.__cause__, Exception)  # the check's own failure, for tracebacks


def test_every_bug_and_every_check_is_judged() -> None:
    assert set(CAUGHT_BY) == set(BUGS)
    assert {c for checks in CAUGHT_BY.values() for c in checks} == {c.name for c in STORE_CHECKS}


def test_a_store_without_a_capability_is_skipped_saying_why() -> None:
    report = trio.run(lambda: check_session_store(CORRECT, supports=["reopen"],
                                                  checks=["owner-one-opener", "exists"]))
    owner, exists = report.results
    assert owner.outcome == "skipped" and "'owner'" in owner.detail
    assert exists.outcome == "passed"


async def test_the_child_processes_start_through_the_launcher(tmp_path: Path) -> None:
    """A mutation tool serving its mutant through a wrapper makes the children run it too."""
    wrapper = tmp_path / "wrap.py"
    marker = tmp_path / "ran"
    wrapper.write_text(
        "import runpy, sys\n"
        f"open({str(marker)!r}, 'a').write(sys.argv[1] + '\\n')\n"
        "sys.argv = sys.argv[1:]\n"
        "runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)\n")
    report = await check_session_store(
        "sqlite", checks=["crash-loses-no-acknowledged-write", "owner-across-processes"],
        launcher=[sys.executable, str(wrapper)])
    assert report.ok and len(report.passed) == 2
    assert marker.read_text().splitlines() == ["meerkat_ref.testing._store_child"] * 2
