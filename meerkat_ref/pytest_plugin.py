"""``pytest --meerkat-adapter 'CMD'``: a port's conformance as pytest items.

Why: a port written in Python already has a pytest run in its CI; there,
``meerkat-ref conform`` is one opaque step.  With this plugin each clause of
``spec/CONTRACT.md`` and each sequential vector is a pytest item, so the port
gets pytest's own reporting (``-v``, ``-x``, ``--junitxml``, ``--lf``), ``-k``
selection (``-k ARCHIVE``, ``-k "vector and turn"``), and its parallelism.

Items (added to whatever else the run collects, under ``meerkat``):

- ``meerkat::vector[NAME]``, one per sequential vector (the model's worked
  examples and seeded random sequences, as in ``spec/vectors``): the vector
  run on a freshly opened service; a failure shows the step, what was
  expected and got, and the request lines that replay it.
- ``meerkat::clause[ID]``, one per clause id: passes when every check of
  that clause in a whole ``conform`` run (the same phases and options as
  ``meerkat-ref conform``) passed; fails with the shortest counterexample
  and how to replay it.

What cannot be checked is skipped, with the reason, never failed: a vector
that needs a capability the adapter's ``hello`` did not offer (store faults,
scheduling hooks); a clause that no conform run checks
(``spec/traceability.json``'s ``not_by_conform``) or that only a capability
the adapter lacks would reach; a clause the run did not reach because its
phases were turned off.  A clause the run did not reach because the adapter
broke the protocol fails, naming the error: a complete run would have
checked it.

Independence (for ``-k`` and ``pytest-xdist``): every item opens a fresh
service, so no item depends on another having run or on their order.  A
process keeps one adapter running for its items, and the conform run the
clause items read is made once per process, when the first of them runs;
clause items carry ``xdist_group("meerkat-conform")`` so that
``--dist loadgroup`` keeps them on one worker and that run is made once.

Registered through the ``pytest11`` entry point, the plugin is loaded in
every pytest run of an environment that installs meerkat-ref, and does
nothing unless ``--meerkat-adapter`` is given.  The other options are
``meerkat-ref conform``'s, prefixed (``--meerkat-bound``, ...), taken from
its own argument list.  Bad options end the run before collection, as pytest
usage errors.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import trio

from .oracle.conform import (
    Report,
    Request,
    add_arguments,
    conform_target,
    parse_request,
    unmet_need,
)
from .oracle.conform._outputs import junit_cases
from .oracle.engine._cases import (
    Case,
    example_cases,
    expected_steps,
    random_cases,
)
from .oracle.engine._clauses import PROTOCOL, clause_ids
from .oracle.engine._sequential import REPLAY_HOW, run_case
from .oracle.targets import AdapterTarget, ProtocolError, adapter_target

T = TypeVar("T")

PREFIX = "meerkat"
OUTPUT_OPTIONS = ("json", "html", "junit_xml")  # conform's, for its own files: pytest has its own
GROUP = "meerkat-conform"


# -- options ----------------------------------------------------------------------------------


def _conform_actions() -> list[argparse.Action]:
    parser = argparse.ArgumentParser(add_help=False)
    add_arguments(parser)
    return [a for a in parser._actions if a.option_strings and a.dest not in OUTPUT_OPTIONS]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup(PREFIX, "meerkat-ref conformance of a port (spec/ADAPTER.md)")
    for action in _conform_actions():
        long = action.option_strings[-1].removeprefix("--")
        kwargs: dict[str, Any] = {
            "dest": f"{PREFIX}_{action.dest}",
            "default": action.default,
            "help": f"(meerkat-ref conform --{long}) {action.help}",
        }
        if isinstance(action, argparse._AppendAction):
            kwargs["action"] = "append"
        if action.type is not None:
            kwargs["type"] = action.type
        if action.metavar is not None:
            kwargs["metavar"] = action.metavar
        group.addoption(f"--{PREFIX}-{long}", **kwargs)


def _request(config: pytest.Config) -> Request | None:
    values = {a.dest: config.getoption(f"{PREFIX}_{a.dest}") for a in _conform_actions()}
    if values["adapter"] is None:
        return None
    try:
        return parse_request(argparse.Namespace(**values))
    except ValueError as exc:  # conform's message names conform's options: name ours
        raise pytest.UsageError(re.sub(r"--(?=[a-z])", f"--{PREFIX}-", str(exc))) from None


_STATE = pytest.StashKey["_State"]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "xdist_group(name): pytest-xdist's --dist loadgroup runs a group on one worker"
    )
    request = _request(config)
    if request is not None:
        config.stash[_STATE] = _State(request)


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(_STATE, None)
    if state is not None:
        state.close()


# -- one adapter per process, driven from pytest's thread ----------------------------------------


class _Adapter:
    """An adapter target living in a Trio run on a thread of its own.

    Why a thread: pytest calls items synchronously, one after another, while
    an ``AdapterTarget`` belongs to the Trio run that started its process.
    Keeping that run alive between items spares every item an adapter start.
    """

    def __init__(self, request: Request) -> None:
        self.request = request
        self.error: BaseException | None = None
        self._target: AdapterTarget | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="meerkat-adapter", daemon=True)
        self._thread.start()
        self._ready.wait()

    def _main(self) -> None:
        try:
            trio.run(self._serve)
        except BaseException as exc:  # kept, and raised in pytest's thread by ``run``
            self.error = exc
        finally:
            self._target = None
            self._ready.set()

    async def _serve(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        async with adapter_target(self.request.argv, self.request.opts.timeout) as target:
            self._target = target
            self._ready.set()
            await self._stop.wait()

    @property
    def alive(self) -> bool:
        return self._target is not None and self._thread.is_alive()

    def run(self, fn: Callable[[AdapterTarget], Awaitable[T]]) -> T:
        target, token = self._target, self._token
        if target is None or token is None:
            raise ProtocolError(f"the adapter is not running: {self.error}")

        async def call() -> T:
            return await fn(target)

        return trio.from_thread.run(call, trio_token=token)

    def close(self) -> None:
        if self._thread.is_alive() and self._token is not None and self._stop is not None:
            with contextlib.suppress(trio.RunFinishedError):  # it ended on its own meanwhile
                trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        self._thread.join(timeout=self.request.opts.timeout + 5)


class _State:
    """What a pytest process shares between items: the adapter, and one conform run."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self._adapter: _Adapter | None = None
        self._report: Report | None = None

    def run(self, fn: Callable[[AdapterTarget], Awaitable[T]]) -> T:
        if self._adapter is None or not self._adapter.alive:
            if self._adapter is not None:
                self._adapter.close()
            self._adapter = _Adapter(self.request)
        try:
            return self._adapter.run(fn)
        except ProtocolError:
            self._adapter.close()  # the next item starts a fresh adapter
            self._adapter = None
            raise

    def report(self) -> Report:
        if self._report is None:
            request = self.request
            report = Report(adapter=" ".join(request.argv))

            async def whole(target: AdapterTarget) -> None:
                report.hello = target.hello
                await conform_target(target, request.opts, report, request.concurrent or
                                     _installed_concurrent())

            try:
                self.run(whole)
            except ProtocolError as exc:
                report.protocol_error("start", str(exc))
            report.finish()
            self._report = report
        return self._report

    def capabilities(self) -> frozenset[str]:
        """What the adapter's ``hello`` offered."""

        async def offered(target: AdapterTarget) -> frozenset[str]:
            return target.capabilities

        return self.run(offered)

    def close(self) -> None:
        if self._adapter is not None:
            self._adapter.close()
            self._adapter = None


def _installed_concurrent() -> list[dict[str, Any]]:
    from ._spec import spec_dir
    from .oracle.conform import load_concurrent

    return load_concurrent(spec_dir() / "vectors" / "concurrent.json")


# -- items -------------------------------------------------------------------------------------


class MeerkatFailure(Exception):
    """A conformance failure: its text is the whole report, shown instead of a traceback."""


class _Collector(pytest.Collector):
    def collect(self) -> Iterator[pytest.Item]:
        for case in (*example_cases(), *random_cases()):
            yield VectorItem.from_parent(self, name=f"vector[{case.name}]", case=case)
        for clause in clause_ids():
            item = ClauseItem.from_parent(self, name=f"clause[{clause}]", clause=clause)
            item.add_marker(pytest.mark.xdist_group(GROUP))
            yield item


class _Item(pytest.Item):
    def state(self) -> _State:
        return self.config.stash[_STATE]

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> str:
        if isinstance(excinfo.value, MeerkatFailure | ProtocolError):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo, style))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"meerkat {self.name}"


class VectorItem(_Item):
    """One sequential vector, run on a freshly opened service of the adapter."""

    def __init__(self, *, case: Case, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case

    def runtest(self) -> None:
        case = self.case
        try:
            offered = self.state().capabilities()
            why = unmet_need(case, offered)
            if why is not None:
                pytest.skip(f"vector {case.name} {why}")
            found = self.state().run(lambda t: run_case(t, case, expected_steps(case)))
        except ProtocolError as exc:
            raise MeerkatFailure(f"PROTOCOL ERROR in vector {case.name}: {exc}") from None
        if found is not None:
            raise MeerkatFailure("\n".join([
                f"{found.clause}: vector {case.name} ({case.about}), step {found.index + 1}",
                found.message,
                "",
                f"request lines ({REPLAY_HOW}):",
                *found.lines,
            ]))


class ClauseItem(_Item):
    """One clause of the contract: every check of it in the process's conform run."""

    def __init__(self, *, clause: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.clause = clause

    def runtest(self) -> None:
        report = self.state().report()
        if report.failed[self.clause]:
            case = next(c for c in junit_cases(report) if c.name == self.clause)
            assert case.failure is not None
            raise MeerkatFailure(case.failure.text)
        if report.checks[self.clause] or self.clause == PROTOCOL:
            return  # PROTOCOL: the whole run kept to the protocol
        never = report.never.get(self.clause)
        if never is not None:  # not even a complete run checks it here: nothing failed
            pytest.skip(f"{self.clause}: {never}")
        if report.protocol:
            raise MeerkatFailure(f"the conform run stopped before checking {self.clause}: "
                                 f"PROTOCOL ERROR {report.protocol[0]}")
        pytest.skip(f"{self.clause}: " + (report.skipped.get(self.clause)
                                         or "no run of meerkat-ref conform checked it"))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Add the items before ``-k`` and ``-m`` deselect (their hooks run after this one)."""
    if config.stash.get(_STATE, None) is None:
        return
    collector = _Collector.from_parent(session, name=PREFIX, nodeid=PREFIX)
    ours = list(collector.collect())
    items.extend(ours)
    # Counted like any collected items ("collected 86 items"), though no file held them.
    config.hook.pytest_collectreport(
        report=pytest.CollectReport(collector.nodeid, "passed", None, list(ours))
    )


__all__ = ["ClauseItem", "MeerkatFailure", "VectorItem"]
