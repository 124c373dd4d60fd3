"""The store contract as checks anyone can run against a ``SessionStore`` (``spec/CONTRACT.md`` 6).

``check_session_store(factory)`` runs every check of ``STORE_CHECKS`` against
a store kind (ours, by name, or a third party's factory), each on a fresh
directory, and returns a ``StoreReport``; on any failure it raises
``StoreContractError`` (an ``AssertionError``) whose message is the report:
which check failed, the clauses it checks, and what the store did instead.
A check that needs a capability the kind does not declare (``reopen``,
``close``, ``crash``, ``owner``, ``files``: ``store.CAPABILITIES``) is
skipped, with that reason, never failed.  ``run_store_check`` runs one check
synchronously for a test framework's item (``skip=pytest.skip`` turns a
missing capability into that framework's skip), so a store's own test suite
gets one test per check:

    @pytest.mark.parametrize("check", STORE_CHECKS, ids=str)
    def test_my_store(check, tmp_path):
        run_store_check(my_factory, check, directory=tmp_path, skip=pytest.skip)

In the spirit of ``trio.testing.check_two_way_stream``: the clauses are
promises a store makes to the service above it, so the checks a store must
pass ship with the package, not only in our ``tests/`` (which runs them for
``memory`` and ``sqlite`` through this same entry point).  The mutation
benchmark judges mutants of ``store/`` with them too: they are part of the
oracle.

No pytest and no Hypothesis at run time: a store author may run the checks
from a script, another framework or CI (``python -m meerkat_ref.testing
--store KIND``).  Failures are raised explicitly (``_expect``), never by a
bare ``assert``, so they hold under ``python -O`` and without pytest's
assertion rewriting.  Random histories are drawn from a seeded
``random.Random`` and printed whole when they fail, instead of shrunk.

Deterministic where it matters: each check asserts what must hold in
*every* interleaving (an acknowledged write is there, a cancelled one is
not, a reader sees the old row or the new one), never that some race was
hit; orders are forced with ``wait_all_tasks_blocked``, never with sleeps.
``timeout`` (per check, real time) only turns a hang into a failure.
"""

from __future__ import annotations

import functools
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import trio

from .._groups import single
from ..store._kinds import CAPABILITIES, StoreFactory, StoreKind, store_kind
from ._store_checks import (
    STORE_CHECKS,
    StoreCheck,
    StoreCheckSkipped,
    _CheckFailed,
    _Context,
    importable,
)

__all__ = [
    "CheckResult",
    "StoreContractError",
    "StoreReport",
    "check_session_store",
    "run_store_check",
]


Outcome = Literal["passed", "failed", "skipped"]


@dataclass(frozen=True)
class CheckResult:
    check: StoreCheck
    outcome: Outcome
    detail: str = ""  # why it failed, or why it was skipped
    seconds: float = 0.0
    error: BaseException | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class StoreReport:
    """What ``check_session_store`` found, check by check."""

    store: str
    results: tuple[CheckResult, ...]

    def _of(self, outcome: Outcome) -> list[CheckResult]:
        return [r for r in self.results if r.outcome == outcome]

    @property
    def passed(self) -> list[CheckResult]:
        return self._of("passed")

    @property
    def failed(self) -> list[CheckResult]:
        return self._of("failed")

    @property
    def skipped(self) -> list[CheckResult]:
        return self._of("skipped")

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        return (f"store contract, {self.store}: {len(self.passed)} passed, "
                f"{len(self.failed)} failed, {len(self.skipped)} skipped")

    def text(self) -> str:
        """One line per check (failures and skips with their reason), then the totals."""
        width = max((len(r.check.name) for r in self.results), default=0)
        lines = []
        for r in self.results:
            clauses = ", ".join(r.check.clauses)
            line = f"{r.outcome.upper():<7}  {r.check.name:<{width}}  [{clauses}]"
            if r.detail:
                line += f"\n         {r.detail}"
            lines.append(line)
        lines.append(self.summary())
        return "\n".join(lines)

    def to_json(self) -> dict[str, object]:
        return {
            "store": self.store,
            "ok": self.ok,
            "results": [
                {"check": r.check.name, "clauses": list(r.check.clauses), "outcome": r.outcome,
                 "detail": r.detail, "seconds": round(r.seconds, 3)}
                for r in self.results
            ],
        }

    def __str__(self) -> str:
        return self.text()


class StoreContractError(AssertionError):
    """The store broke the contract: the message is the report; ``report`` holds it whole."""

    def __init__(self, report: StoreReport) -> None:
        super().__init__(report.text())
        self.report = report


# -- running them -----------------------------------------------------------------------------


def _as_kind(factory: StoreKind | StoreFactory | str,
             supports: Iterable[str] | None) -> StoreKind:
    if isinstance(factory, str | StoreKind):
        kind = store_kind(factory)
    elif callable(factory):
        declared = supports if supports is not None else getattr(factory, "supports", ())
        name = getattr(factory, "__qualname__", None) or type(factory).__name__
        kind = StoreKind(name, factory, frozenset(declared), spec=importable(factory))
    else:
        raise TypeError(f"check_session_store needs a store kind, a kind's name or a factory, "
                        f"got {type(factory).__name__}")
    if supports is not None:
        kind = replace(kind, supports=frozenset(supports))
    return kind


def _chosen(checks: Iterable[str | StoreCheck] | None) -> list[StoreCheck]:
    if checks is None:
        return list(STORE_CHECKS)
    by_name = {c.name: c for c in STORE_CHECKS}
    out = []
    for c in checks:
        name = c.name if isinstance(c, StoreCheck) else c
        if name not in by_name:
            raise ValueError(f"unknown store check {name!r}; known: {', '.join(by_name)}")
        out.append(by_name[name])
    return out


def _explain(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        leaf = single(exc)
        if leaf is not None:
            return _explain(leaf)
        return "; ".join(_explain(e) for e in exc.exceptions[:3])
    if isinstance(exc, _CheckFailed):
        return str(exc)
    return f"the store raised {type(exc).__name__}: {str(exc)[:300]}"


def _failure_of(exc: BaseException) -> _CheckFailed | StoreCheckSkipped | None:
    leaf = single(exc) if isinstance(exc, BaseExceptionGroup) else exc
    return leaf if isinstance(leaf, _CheckFailed | StoreCheckSkipped) else None


async def _run_one(check: StoreCheck, kind: StoreKind, base: Path, seed: int, examples: int,
                   timeout: float, launcher: tuple[str, ...]) -> CheckResult:
    missing = sorted(check.needs - kind.supports)
    if missing:
        return CheckResult(check, "skipped", "the store does not declare " + "; ".join(
            f"{m!r} ({CAPABILITIES[m]})" for m in missing))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"{check.name}-", dir=base) as directory:
        ctx = _Context(kind, Path(directory), seed, examples, launcher)
        try:
            with trio.fail_after(timeout):
                await check.run(ctx)
        except trio.TooSlowError as exc:
            return CheckResult(check, "failed", f"did not finish within {timeout:g} s (a hang?)",
                               time.perf_counter() - started, exc)
        except Exception as exc:
            found = _failure_of(exc)
            if isinstance(found, StoreCheckSkipped):
                return CheckResult(check, "skipped", found.reason, time.perf_counter() - started)
            return CheckResult(check, "failed", _explain(exc), time.perf_counter() - started,
                               exc)
    return CheckResult(check, "passed", "", time.perf_counter() - started)


async def check_session_store(
    factory: StoreKind | StoreFactory | str,
    *,
    supports: Iterable[str] | None = None,
    checks: Iterable[str | StoreCheck] | None = None,
    directory: str | os.PathLike[str] | None = None,
    seed: int = 0,
    examples: int = 30,
    timeout: float = 120.0,
    raise_on_failure: bool = True,
    launcher: Sequence[str] = (),
) -> StoreReport:
    """Run the store contract's checks (``spec/CONTRACT.md`` 6, [STORE-*]) against a store.

    ``factory``: a ``StoreKind``, a kind's name or module path (``"sqlite"``,
    ``"mypkg.stores:KIND"``), or a factory: ``factory(directory)`` returns an
    async context manager yielding a ``SessionStore`` that keeps its data in
    ``directory`` (empty at first; calling it again with the same directory
    reopens the same data).  ``supports``: the capabilities it declares
    (``store.CAPABILITIES``; default: the kind's own, or a ``supports``
    attribute on the factory); a check needing one not declared is skipped
    with the reason.  The crash and cross-process owner checks start a child
    process that makes the store by the kind's name or module path (a
    module-level factory is found by its own).

    ``checks`` picks checks by name (default: all of ``STORE_CHECKS``);
    ``directory`` is where each check's fresh directory is made (default: the
    system's temporary directory); ``seed`` and ``examples`` drive the random
    histories and cancellations; ``timeout`` (seconds, per check) turns a
    hang into a failure; ``launcher`` is the command that runs a module in
    the child processes (default ``python -m`` of this interpreter; a
    mutation tool that serves its mutant through a wrapper module passes
    that wrapper, so the child runs the mutant too).

    Returns the ``StoreReport``; raises ``StoreContractError`` (an
    ``AssertionError``, the report as its message, the first failure's
    exception as its cause) when a check failed, unless ``raise_on_failure``
    is false.
    """
    kind = _as_kind(factory, supports)
    chosen = _chosen(checks)
    base = Path(directory) if directory is not None else Path(tempfile.gettempdir())
    results = [await _run_one(c, kind, base, seed, examples, timeout, tuple(launcher))
               for c in chosen]
    report = StoreReport(kind.name, tuple(results))
    if raise_on_failure and not report.ok:
        error = StoreContractError(report)
        raise error from report.failed[0].error
    return report


def run_store_check(
    factory: StoreKind | StoreFactory | str,
    check: str | StoreCheck,
    *,
    skip: Callable[[str], Any] | None = None,
    **options: Any,
) -> CheckResult:
    """One check in its own ``trio.run``: one test of a framework (pytest, unittest, ...).

    Raises ``StoreContractError`` if the store fails it.  A check the store
    does not declare what it needs for calls ``skip(reason)`` (pass
    ``pytest.skip`` or ``self.skipTest``), or raises ``StoreCheckSkipped``
    without one.  ``options`` are ``check_session_store``'s.
    """
    report = trio.run(functools.partial(check_session_store, factory, checks=[check],
                                        **options))
    [result] = report.results
    if result.outcome == "skipped":
        if skip is not None:
            skip(f"{result.check.name}: {result.detail}")
        raise StoreCheckSkipped(result.check.name, result.detail)
    return result
