"""The soak with SIGKILLs: a real process on a SQLite file, killed at random moments.

    python -m benchmarks.soak_kill [--kills N] [--seed S] [--fault-rate R] [--workers W]

The parent starts a child process (this module with ``--child``) running the
reference ``PersistentSessionService`` over a ``SqliteStore`` file, wrapped in
``benchmarks.faults.FaultyStore`` (a share of writes fail: an I/O error, a
locked file, a full disk).  The child's workers create sessions, run turns
and archive some of them; at its start each child also archives a few
sessions an earlier (killed) process left in the file.  The child prints a
line as each call is answered, flushed at once:

- ``ack <id> <revision>``: a create or turn returned; the store must hold that
  revision of the session or a newer one from now on [DURABILITY];
- ``unsaved <id>``: its save failed (``SESSION_STORE_ERROR``, [SAVE-FAILED]):
  no promise;
- ``archiving <id>`` then ``archived <id>``: archive began, then returned; the
  session must never be in the file again [ARCHIVE-FINAL];
- ``fault <kind> <write>``: the store failed a write.

After a random number of lines the parent sends SIGKILL, reads what the
child printed before it died, reopens the file with the public store API and
checks every acknowledged write: **lost** if the file lacks the session or
holds an older revision, **resurrected** if an archived session is there.
An archive cut by the kill (``archiving`` without ``archived``) may have
happened or not: the file decides, and from then on that answer must hold.
Then the next child starts on the same file.  A child that dies on its own,
prints a traceback, or stays silent for ``--timeout`` seconds is counted
(crash, hang).  ``tests/test_soak.py`` runs it scaled down; ``python -m
benchmarks`` (section soak) at full size.
"""

from __future__ import annotations

import argparse
import os
import random
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import trio

from meerkat_ref import (
    CreateSessionRequest,
    InitialTurnPolicy,
    PersistentSessionService,
    SessionError,
    SessionId,
    SessionQuery,
    SessionStoreError,
    SqliteStore,
    StartTurnRequest,
)
from meerkat_ref.agent import ScriptedAgentBuilder

from .faults import FaultyStore

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "kill-soak.db"

# -- the child ----------------------------------------------------------------------------


def say(*words: object) -> None:
    print(*words, flush=True)


async def _archive(svc: PersistentSessionService, session_id: SessionId) -> None:
    say("archiving", session_id)
    for _ in range(100):
        try:
            await svc.archive(session_id)
        except SessionStoreError:
            continue  # nothing changed [ARCHIVE-ATOMIC]: again
        say("archived", session_id)
        return
    say("gave-up", session_id)


async def _worker(svc: PersistentSessionService, rng: random.Random) -> None:
    prompts = [f"kill soak {i}" for i in range(8)]
    while True:
        policy = rng.choice([InitialTurnPolicy.DEFER, InitialTurnPolicy.RUN_IMMEDIATELY])
        try:
            created = await svc.create_session(
                CreateSessionRequest(model="scripted", prompt=rng.choice(prompts),
                                     initial_turn=policy))
        except SessionStoreError as exc:
            say("unsaved", exc.session_id)
            if exc.session_id is None:
                continue
            session_id = exc.session_id
        else:
            session_id = created.session_id
            say("ack", session_id, (await svc.export_session(session_id)).revision)
        for _ in range(rng.randint(0, 4)):
            try:
                await svc.start_turn(session_id, StartTurnRequest(rng.choice(prompts)))
            except SessionStoreError:
                say("unsaved", session_id)
                continue
            say("ack", session_id, (await svc.export_session(session_id)).revision)
        if rng.random() < 0.5:
            await _archive(svc, session_id)


async def child(db: Path, seed: int, fault_rate: float, workers: int) -> None:
    """Work on ``db`` until killed (see the module docstring)."""
    rng = random.Random(seed)
    store = await SqliteStore.open(db)
    faulty = FaultyStore(store, rate=fault_rate, seed=seed,
                         on_fault=lambda kind, write: say("fault", kind, write))
    try:
        async with PersistentSessionService(ScriptedAgentBuilder(), 1_000_000, faulty) as svc:
            earlier = await svc.list(SessionQuery(limit=4 * workers))
            async with trio.open_nursery() as nursery:
                for summary in earlier:
                    if rng.random() < 0.5:
                        nursery.start_soon(_archive, svc, summary.session_id)
                for i in range(workers):
                    nursery.start_soon(_worker, svc, random.Random(seed * 1000 + i))
    except SessionError as exc:  # pragma: no cover - reported by the parent as a crash
        say("error", repr(exc))
        raise
    finally:
        await store.aclose()


# -- the parent ---------------------------------------------------------------------------


@dataclass
class KillReport:
    kills: int = 0
    rounds: int = 0
    operations: int = 0  # answers the children printed: acks, unsaved, archived
    acks: int = 0
    unsaved: int = 0
    archives: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    acked_checked: int = 0  # acknowledged writes checked against the file after a kill
    superseded: int = 0  # acknowledged writes of sessions archived before the next check
    file_checks: int = 0  # (session, revision) lookups in the reopened files, all kills
    sessions_checked: int = 0  # distinct sessions with an acknowledged write
    archived_checked: int = 0  # archived sessions checked absent
    in_doubt: int = 0  # archives cut by a kill (either outcome is allowed, then fixed)
    lost: int = 0
    resurrected: int = 0
    crashes: int = 0
    hangs: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def faults_injected(self) -> int:
        return sum(self.faults.values())

    @property
    def ok(self) -> bool:
        return not (self.lost or self.resurrected or self.crashes or self.hangs)

    def text(self) -> str:
        return (f"{self.kills} kills in {self.rounds} rounds, {self.operations:,} operations "
                f"({self.acks:,} acknowledged, {self.unsaved:,} unsaved, {self.archives:,} "
                f"archives), {self.faults_injected:,} store faults "
                f"({', '.join(f'{k} {v}' for k, v in sorted(self.faults.items()))}); "
                f"checked {self.acked_checked:,} acknowledged writes ({self.superseded:,} more "
                f"superseded by an archive) and {self.archived_checked:,} archived sessions, in "
                f"{self.file_checks:,} lookups ({self.in_doubt} archives cut by a kill): "
                f"{self.lost} lost, "
                f"{self.resurrected} resurrected; {self.crashes} crashes, {self.hangs} hangs; "
                f"{self.seconds:.1f} s")


class _Lines:
    """Lines from a child's stdout, each waited for at most ``timeout`` seconds."""

    def __init__(self, proc: subprocess.Popen[bytes], timeout: float) -> None:
        assert proc.stdout is not None
        self.fd = proc.stdout.fileno()
        self.timeout = timeout
        self.buffer = b""
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.fd, selectors.EVENT_READ)
        self.eof = False

    def __iter__(self) -> Iterator[str]:
        """Whole lines only: a last line without its newline (cut by the kill) is dropped."""
        while True:
            while b"\n" not in self.buffer:
                if self.eof:
                    return
                if not self.selector.select(self.timeout):
                    raise TimeoutError
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    self.eof = True
                self.buffer += chunk
            line, self.buffer = self.buffer.split(b"\n", 1)
            yield line.decode("utf-8", "replace")

    def close(self) -> None:
        self.selector.close()


class _Ledger:
    """What the children acknowledged, and what the file must therefore hold."""

    def __init__(self, report: KillReport) -> None:
        self.report = report
        self.acked: dict[str, int] = {}  # id -> highest acknowledged revision
        self.unchecked: dict[str, int] = {}  # id -> acknowledged writes not yet checked
        self.archived: set[str] = set()
        self.archiving: set[str] = set()  # began, not answered

    def take(self, line: str) -> None:
        words = line.split()
        if not words:
            return
        r = self.report
        match words:
            case ["ack", sid, revision]:
                r.operations += 1
                r.acks += 1
                if sid not in self.archived:
                    self.acked[sid] = max(self.acked.get(sid, -1), int(revision))
                    self.unchecked[sid] = self.unchecked.get(sid, 0) + 1
            case ["unsaved", _]:
                r.operations += 1
                r.unsaved += 1
            case ["archiving", sid]:
                self.archiving.add(sid)
            case ["archived", sid]:
                r.operations += 1
                r.archives += 1
                self.archiving.discard(sid)
                self.archived.add(sid)
                self.acked.pop(sid, None)
                r.superseded += self.unchecked.pop(sid, 0)
            case ["fault", kind, _]:
                r.faults[kind] = r.faults.get(kind, 0) + 1
            case _:
                pass  # a line cut short by the kill, or a log line

    async def check(self, db: Path) -> None:
        """Reopen the file (public store API) and hold it to every acknowledged write."""
        r = self.report
        store = await SqliteStore.open(db)
        try:
            for sid in sorted(self.archiving):  # cut by the kill: the file decides, for good
                r.in_doubt += 1
                if await store.exists(SessionId.parse(sid)):
                    continue  # not archived: its acknowledged writes must stay
                self.archived.add(sid)
                self.acked.pop(sid, None)
                r.superseded += self.unchecked.pop(sid, 0)
            self.archiving.clear()
            for sid, revision in sorted(self.acked.items()):
                stored = await store.load(SessionId.parse(sid))
                r.file_checks += 1
                r.acked_checked += self.unchecked.pop(sid, 0)  # the latest covers the earlier
                if stored is None or stored.revision < revision:
                    r.lost += 1
                    shown = "nothing" if stored is None else f"revision {stored.revision}"
                    r.problems.append(f"lost: {sid} acknowledged at revision {revision}, "
                                      f"the file holds {shown}")
            for sid in sorted(self.archived):
                r.file_checks += 1
                if await store.exists(SessionId.parse(sid)):
                    r.resurrected += 1
                    r.problems.append(f"resurrected: archived {sid} is in the file")
        finally:
            await store.aclose()


def run_kill_soak(directory: Path, *, kills: int = 20, seed: int = 11,
                  fault_rate: float = 0.03, workers: int = 8, lines: tuple[int, int] = (40, 400),
                  timeout: float = 120.0) -> KillReport:
    """``kills`` children on one file in ``directory``, each SIGKILLed after a random number
    of ``lines`` (``lo``..``hi``); the file checked after each.  Never raises for a finding."""
    report = KillReport()
    ledger = _Ledger(report)
    db = directory / DB_NAME
    rng = random.Random(seed)
    started = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    for round_ in range(kills):
        report.rounds += 1
        argv = [sys.executable, "-m", "benchmarks.soak_kill", "--child", str(db),
                "--seed", str(seed * 10_000 + round_), "--fault-rate", str(fault_rate),
                "--workers", str(workers)]
        with tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, cwd=ROOT, env=env)
            reader = _Lines(proc, timeout)
            want = rng.randint(*lines)
            seen = 0
            try:
                for line in reader:
                    ledger.take(line)
                    seen += 1
                    if seen >= want:
                        proc.send_signal(signal.SIGKILL)
                        report.kills += 1
                        break
                proc.wait()
                for line in reader:  # what it printed before it died: acknowledged too
                    ledger.take(line)
            except TimeoutError:
                report.hangs += 1
                report.problems.append(f"round {round_ + 1}: silent for {timeout} s")
                proc.kill()
                proc.wait()
            finally:
                reader.close()
                assert proc.stdout is not None
                proc.stdout.close()
            err.seek(0)
            stderr = err.read().decode("utf-8", "replace")
        killed = proc.returncode == -signal.SIGKILL
        if not killed or "Traceback" in stderr:
            report.crashes += 1
            report.problems.append(f"round {round_ + 1}: exit status {proc.returncode}; "
                                   f"stderr: {stderr[-800:]}")
        trio.run(ledger.check, db)
    report.sessions_checked = len(ledger.acked) + len(ledger.archived)
    report.archived_checked = len(ledger.archived)
    report.seconds = time.perf_counter() - started
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak_kill",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--fault-rate", type=float, default=0.03)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args(argv)
    if args.child is not None:
        try:
            trio.run(child, args.child, args.seed, args.fault_rate, args.workers)
        except BrokenPipeError:
            return 0
        return 0
    with tempfile.TemporaryDirectory(prefix="meerkat-kill-soak-") as tmp:
        report = run_kill_soak(Path(tmp), kills=args.kills, seed=args.seed,
                               fault_rate=args.fault_rate, workers=args.workers)
    print(report.text())
    for problem in report.problems[:20]:
        print(f"  {problem}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
