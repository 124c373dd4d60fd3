"""Judging mutants: each in its own processes, judges cheapest first, a ledger to resume from.

A mutant is judged by the oracle alone, never by ``tests/`` (the unit suite
already knows its examples): ``JUDGES`` for its package, in order, each a
subprocess (``_serve`` + ``_judge``) with a time limit; the first that kills
it ends its judging.  Verdicts:

``killed``          a judge found a violation (which judge, which rules);
``killed-error``    a judge's process died (the mutant does not import, or it
                    made the oracle raise), or
``killed-timeout``  a judge ran out of time (a hang): both count as killed, but
                    are kept apart, since neither names a broken rule;
``survived``        every judge passed it.

Each verdict is appended to the ledger (JSON lines) as soon as it is known,
with a hash of the mutated source: a run that was stopped takes up where it
ended, and a verdict whose mutant's text has changed since is judged again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ._generate import Mutant
from ._paths import ROOT
from ._serve import VARIABLE

JUDGES: dict[str, tuple[str, ...]] = {
    "meerkat_ref/service": ("conform", "check", "sweep"),
    "meerkat_ref/agent": ("conform", "check", "sweep"),
    "meerkat_ref/store": ("contract", "conform", "sweep", "check"),
}
"""Which judges count for which package, cheapest first.  The order changes no verdict (a
mutant is killed when any judge kills it, and survives only when every one passes it), only
what a kill costs: for the service and the agent ``conform`` about 15 s on the reference
(its exhaustive search the bounded DFS: ``_judge``), ``check`` 20 s on memory, ``sweep``
85 s (the ci, ci-faults and ci3 scopes, widened since the 25 s first measured here; about
45 s more since ``ci3-sample``); for
the store (on SQLite, measured on
two busy cores) the contract suite 1 to 4 s, most of it starting Python, ``conform`` 8 s,
``sweep`` 30 s and ``check`` 150 s, and the contract suite kills most store mutants."""

JUDGE_TIMEOUTS: dict[str, float] = {"contract": 120.0}
"""A judge's own time limit, below ``--timeout`` (which is sized for ``check`` on SQLite under
load, minutes): the contract suite takes 1 to 6 s on a busy machine, so one still running
after 120 s hangs (a mutant of the SQLite lane's thread handling can hang it past the
suite's own per-check limit, in a thread join Trio cannot cancel)."""

STORE_KINDS: dict[str, tuple[str, ...]] = {
    "meerkat_ref/store/_memory.py": ("memory",),
    "meerkat_ref/store/_kinds.py": ("memory", "sqlite"),
    "meerkat_ref/store/_base.py": ("memory", "sqlite"),
    "meerkat_ref/store/__init__.py": ("memory", "sqlite"),
}
"""The store kinds whose code runs a module of ``store/`` (every other one: SQLite's alone).

The memory store is ``_memory.py`` alone (it keeps the objects, no codec, no lane, no
lock); ``_kinds.py`` makes both.  A kind that never runs a module's functions cannot tell
its mutant from the original (its import, which both kinds share, is judged by the kind
that runs it), so the contract judge runs only these kinds; ``tests/test_mutation.py``
traces each kind's contract suite and checks that it calls no function of a module not
listed for it here."""


def store_kinds(mutant: Mutant) -> tuple[str, ...]:
    """The store kinds the contract judge runs a mutant of ``store/`` on (see ``STORE_KINDS``).
    """
    return STORE_KINDS.get(mutant.path, ("sqlite",))


def store_for(mutant: Mutant) -> str:
    """The store the oracle's judges run on: SQLite for every store module but the memory
    store's; memory for the service and the agent (the cheaper; the store is not what they
    mutate)."""
    if mutant.package == "meerkat_ref/store":
        return store_kinds(mutant)[-1]
    return "memory"


def judge_store(mutant: Mutant, judge: str) -> str:
    """The store argument of one judge's process: the contract judge's kinds, comma-separated,
    or the one store the others run on."""
    if judge == "contract":
        return ",".join(store_kinds(mutant))
    return store_for(mutant)


@dataclass
class Verdict:
    id: str
    status: str  # killed | killed-error | killed-timeout | survived
    judge: str = ""  # the judge that killed it
    rules: list[str] = field(default_factory=list)
    where: str = ""
    seconds: float = 0.0
    source_hash: str = ""
    times: dict[str, float] = field(default_factory=dict)  # each judge run: its seconds

    @property
    def killed(self) -> bool:
        return self.status.startswith("killed")

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "status": self.status, "judge": self.judge, "rules": self.rules,
                "where": self.where, "seconds": round(self.seconds, 1),
                "source_hash": self.source_hash,
                "times": {k: round(v, 1) for k, v in self.times.items()}}

    @staticmethod
    def from_json(data: dict[str, object]) -> Verdict:
        rules = data.get("rules", [])
        times = data.get("times", {})
        return Verdict(str(data["id"]), str(data["status"]), str(data.get("judge", "")),
                       [str(r) for r in rules] if isinstance(rules, list) else [],
                       str(data.get("where", "")), float(str(data.get("seconds", 0.0))),
                       str(data.get("source_hash", "")),
                       {str(k): float(str(v)) for k, v in times.items()}
                       if isinstance(times, dict) else {})


def source_hash(text: str, judges: Sequence[str] | None = None) -> str:
    """What a verdict was reached on: the mutant's text, and the judges if not the usual."""
    key = text if judges is None else f"{text}\0judges: {','.join(judges)}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]


class Ledger:
    """The verdicts judged so far (JSON lines, appended as they come; the last one wins)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.verdicts: dict[str, Verdict] = {}
        self._lock = threading.Lock()
        if path is not None and path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                with contextlib.suppress(ValueError, KeyError):
                    v = Verdict.from_json(json.loads(line))
                    self.verdicts[v.id] = v

    def known(self, mutant_id: str, digest: str) -> Verdict | None:
        v = self.verdicts.get(mutant_id)
        return v if v is not None and v.source_hash == digest else None

    def add(self, verdict: Verdict) -> None:
        with self._lock:
            self.verdicts[verdict.id] = verdict
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(verdict.to_json()) + "\n")


def _run_judge(judge: str, store: str, env: dict[str, str], timeout: float
               ) -> tuple[str, dict[str, object] | None, str]:
    """(outcome, verdict JSON, stderr tail): outcome ``ok``, ``error`` or ``timeout``."""
    argv = [sys.executable, "-m", "benchmarks.mutation._serve", "benchmarks.mutation._judge",
            judge, store]
    # A session of its own, so a timeout kills the adapter it started as well.
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return "timeout", None, f"{judge} did not finish in {timeout:.0f} s"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # anything it left behind
    for line in reversed(out.splitlines() if proc.returncode == 0 else []):
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                data = json.loads(line)
                if isinstance(data, dict) and "killed" in data:
                    return "ok", data, ""
    tail = " | ".join(err.strip().splitlines()[-3:])[:300]
    return "error", None, f"{judge} exit {proc.returncode}: {tail}"


def judge(mutant: Mutant, *, timeout: float, judges: Sequence[str] | None = None,
          workdir: Path) -> Verdict:
    """Judge one mutant: its package's judges in order, stopping at the first kill."""
    text = mutant.source()
    digest = source_hash(text, judges)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        file = Path(tmp) / Path(mutant.path).name
        file.write_text(text, encoding="utf-8")
        env = dict(os.environ)
        env[VARIABLE] = f"{mutant.module}={file}"
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.setdefault("MEERKAT_PROFILE", "ci")
        times: dict[str, float] = {}
        for name in judges if judges is not None else JUDGES[mutant.package]:
            began = time.perf_counter()
            outcome, data, problem = _run_judge(name, judge_store(mutant, name), env,
                                                min(timeout, JUDGE_TIMEOUTS.get(name, timeout)))
            times[name] = time.perf_counter() - began
            seconds = time.perf_counter() - started
            if outcome == "timeout":
                return Verdict(mutant.id, "killed-timeout", name, [], problem, seconds, digest,
                               times)
            if outcome == "error":
                return Verdict(mutant.id, "killed-error", name, [], problem, seconds, digest,
                               times)
            assert data is not None
            if data["killed"]:
                rules = data.get("rules", [])
                return Verdict(mutant.id, "killed", name,
                               [str(r) for r in rules] if isinstance(rules, list) else [],
                               str(data.get("where", "")), seconds, digest, times)
    return Verdict(mutant.id, "survived", "", [], "", time.perf_counter() - started, digest,
                   times)


def judge_all(mutants: Sequence[Mutant], ledger: Ledger, *, jobs: int, timeout: float,
              judges: Sequence[str] | None = None,
              progress: Callable[[int, int, Mutant, Verdict, bool], None] | None = None,
              ) -> dict[str, Verdict]:
    """A verdict for every mutant: from the ledger where it still holds, else judged now."""
    out: dict[str, Verdict] = {}
    todo: list[Mutant] = []
    for m in mutants:
        known = ledger.known(m.id, source_hash(m.source(), judges))
        if known is not None:
            out[m.id] = known
        else:
            todo.append(m)
    done = [len(out)]
    lock = threading.Lock()
    with _workdir() as workdir:

        def one(m: Mutant) -> None:
            v = judge(m, timeout=timeout, judges=judges, workdir=workdir)
            ledger.add(v)
            with lock:
                out[m.id] = v
                done[0] += 1
                if progress is not None:
                    progress(done[0], len(mutants), m, v, False)

        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            for future in [pool.submit(one, m) for m in todo]:
                future.result()
    return out


@contextlib.contextmanager
def _workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="meerkat-mutants-") as tmp:
        yield Path(tmp)
