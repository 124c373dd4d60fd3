"""The DPOR literature's benchmark programs, run by our DPOR: a table no one here wrote.

Issue 18 asks for the engine to be checked against counts from outside the
project.  The classic programs of the DPOR papers are written here as small
programs over shared variables, and searched by the *same* DPOR tree as every
scenario (``_dpor.DporTree``: the same races, reversals, sleep sets and
disabled-process rule); only the thing a run drives differs: not a service
behind a ``Target`` but a list of threads, each a generator that yields its
next shared access as data and is sent the result.  A step is one access;
its footprint is declared by the access itself (``("var", name)`` read or
written; a compare-and-swap writes; a lock's acquire and release write
``("lock", name)``), so the reduction has nothing to trust but the program.
A thread that meets a held lock waits for its release (``Program.waits``).

The programs (each as its paper describes it; the code here is our own):

- ``readers(N)``: one writer writes ``x``; ``N`` readers read it.  Each reader
  reads before or after the write: ``2^N`` traces (Abdulla, Aronis, Jonsson,
  Sagonas: "Optimal dynamic partial order reduction", POPL 2014).
- ``lastzero(N)``: ``a[0..N]`` all 0; thread 0 scans ``i = N, N-1, ...``
  while ``a[i] != 0``; thread ``j`` (1..N) sets ``a[j] = a[j-1] + 1``
  (Abdulla et al., POPL 2014: where source-DPOR explores sleep-set-blocked runs).
- ``indexer(N)``: ``N`` threads each insert 4 messages ``w = 11 m + tid``
  into a 128-slot hash table at ``7 w mod 128`` by compare-and-swap, probing
  on a collision (Flanagan and Godefroid: "Dynamic partial-order reduction
  for model checking software", POPL 2005).  No two threads meet below 12.
- ``filesystem(N)``: ``N`` threads each take an inode's lock and, if the
  inode is free, search 26 blocks from ``2 i mod 26`` for a free one under
  the block's lock (Flanagan and Godefroid, POPL 2005).  Threads meet from 14.

``explore_program`` runs one by DPOR; ``every_schedule`` runs every schedule
(the plain DFS) and counts the Mazurkiewicz traces among them (``_traces``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ..targets import Footprint, Point
from ._dpor import DporTree
from ._strategies import Aborted, Budget, Choice
from ._traces import FoataForm, TraceStep, foata


@dataclass(frozen=True)
class Read:
    var: str


@dataclass(frozen=True)
class Write:
    var: str
    value: int


@dataclass(frozen=True)
class Cas:
    """Compare-and-swap: ``var`` becomes ``new`` if it is ``expected``; answers whether it did."""

    var: str
    expected: int
    new: int


@dataclass(frozen=True)
class Acquire:
    lock: str


@dataclass(frozen=True)
class Release:
    lock: str


Access = Read | Write | Cas | Acquire | Release
Thread = Callable[[], Generator[Access, object, None]]
"""A thread: a fresh generator per run, yielding each access and sent its result."""


def footprint(access: Access) -> Footprint:
    """What one access touches: the footprint DPOR and the trace count both go by."""
    if isinstance(access, Read):
        return Footprint(reads=frozenset({("var", access.var)}))
    if isinstance(access, Write | Cas):
        return Footprint(writes=frozenset({("var", access.var)}))
    return Footprint(writes=frozenset({("lock", access.lock)}))


@dataclass(frozen=True)
class Program:
    """Threads over shared variables.

    ``waits``: how a thread meets a held lock.  ``True`` (the default): as a
    Trio task meets one in the service, inside a step of its own -- the
    attempt is a step that reads the lock, and the thread is ready again
    once the lock is released.  ``False``: as the papers model it -- an
    acquire of a held lock is not enabled at all.  Our DPOR is not complete
    for the latter (see ``tests/test_dpor_classics.py``): it learns that a
    process was disabled only when the process was ready and another step
    took that away (``_dpor._disabled``), not when the process reaches a
    lock taken long before.
    """

    name: str
    n: int
    threads: tuple[tuple[str, Thread], ...]
    waits: bool = True

    @property
    def title(self) -> str:
        return f"{self.name}({self.n})"


class _Machine:
    """One run of a program: shared memory, held locks, each thread's next access."""

    def __init__(self, program: Program) -> None:
        self.waits = program.waits
        self.memory: dict[str, int] = {}
        self.held: dict[str, str] = {}
        self.waiting: dict[str, str] = {}  # thread -> the held lock it tried (``waits``)
        self.next: dict[str, Access] = {}
        self.gens: dict[str, Generator[Access, object, None]] = {}
        self.observed: dict[str, list[object]] = {}
        for name, body in program.threads:
            self.gens[name] = gen = body()
            self.observed[name] = []
            with contextlib.suppress(StopIteration):  # a thread with no access at all
                self.next[name] = next(gen)

    def ready(self) -> list[Point]:
        return [Point(name, type(access).__name__.lower())
                for name, access in sorted(self.next.items())
                if name not in self.waiting
                and (self.waits or not (isinstance(access, Acquire) and access.lock in self.held))]

    def step(self, name: str) -> Footprint:
        access = self.next[name]
        if isinstance(access, Acquire) and access.lock in self.held:
            assert self.waits
            self.waiting[name] = access.lock  # tried, found held: waits for the release
            return Footprint(reads=frozenset({("lock", access.lock)}))
        del self.next[name]
        result: object = None
        if isinstance(access, Read):
            result = self.memory.get(access.var, 0)
        elif isinstance(access, Write):
            self.memory[access.var] = access.value
        elif isinstance(access, Cas):
            result = self.memory.get(access.var, 0) == access.expected
            if result:
                self.memory[access.var] = access.new
        elif isinstance(access, Acquire):
            self.held[access.lock] = name
        else:
            assert self.held.pop(access.lock) == name, f"{name} releases a lock it does not hold"
            for waiter in [t for t, lock in self.waiting.items() if lock == access.lock]:
                del self.waiting[waiter]  # ready to try again
        if result is not None:
            self.observed[name].append(result)
        with contextlib.suppress(StopIteration):  # the thread is done
            self.next[name] = self.gens[name].send(result)
        return footprint(access)

    def end_state(self) -> str:
        """Memory and what each thread read: two runs with the same are the same behaviour."""
        return repr((sorted((k, v) for k, v in self.memory.items() if v),
                     sorted(self.observed.items())))


class _Chooser(Protocol):
    """What a run asks of its search: the ``Strategy`` protocol, and ``observe`` (DPOR's)."""

    def choose(self, step: int, ready: Sequence[Point], budget: Budget) -> Choice: ...

    def observe(self, footprint: Footprint | None) -> None: ...


@dataclass
class _Run:
    steps: list[TraceStep]
    ready: list[list[str]]  # the ready threads at each step
    end_state: str = ""
    aborted: bool = False


def _run(program: Program, chooser: _Chooser) -> _Run:
    """One run of ``program``: ``chooser`` picks each step (as ``run_schedule`` asks a strategy)."""
    machine = _Machine(program)
    run = _Run([], [])
    budget = Budget()
    while ready := machine.ready():
        run.ready.append([p.task for p in ready])
        try:
            choice = chooser.choose(len(run.steps), ready, budget)
        except Aborted:
            run.aborted = True
            return run
        touched = machine.step(choice.label)
        chooser.observe(touched)
        run.steps.append((choice.label, "", touched))
    if machine.next:
        raise ValueError(f"{program.title} deadlocks: {', '.join(sorted(machine.next))} blocked")
    run.end_state = machine.end_state()
    return run


@dataclass
class ClassicReport:
    """One search of one program: complete schedules, runs cut short, end states, traces."""

    program: str
    search: str  # "dpor" or "plain-dfs"
    schedules: int = 0  # complete runs
    pruned: int = 0  # runs abandoned as covered (DPOR: every ready thread asleep)
    end_states: set[str] = field(default_factory=set, repr=False)
    traces: set[FoataForm] = field(default_factory=set, repr=False)  # of the complete runs
    exhausted: bool = True
    seconds: float = 0.0


def explore_program(program: Program, *, max_schedules: int | None = None) -> ClassicReport:
    """Our DPOR on ``program``: ``_dpor.DporTree`` driven over the program instead of a target."""
    report = ClassicReport(program.title, "dpor")
    started = time.perf_counter()
    tree = DporTree()
    while (strategy := tree.next_run()) is not None:
        if max_schedules is not None and report.schedules >= max_schedules:
            report.exhausted = False
            break
        run = _run(program, strategy)
        if run.aborted:
            report.pruned += 1
        else:
            report.schedules += 1
            report.end_states.add(run.end_state)
            report.traces.add(foata(run.steps))
        tree.finish(strategy)
    report.seconds = time.perf_counter() - started
    return report


class _Prefix:
    """Follow a prefix of thread names, then always the first ready thread."""

    def __init__(self, prefix: Sequence[str]) -> None:
        self.prefix = prefix

    def choose(self, step: int, ready: Sequence[Point], budget: Budget) -> Choice:
        return Choice(self.prefix[step] if step < len(self.prefix) else ready[0].task)

    def observe(self, footprint: Footprint | None) -> None:
        pass


def every_schedule(program: Program, *, max_schedules: int | None = None) -> ClassicReport:
    """The plain DFS: every schedule of ``program``, each run from the start, no reduction.

    ``report.traces`` holds the Foata normal form of each (``_traces``): its
    size is the number of Mazurkiewicz traces when ``report.exhausted``.
    """
    report = ClassicReport(program.title, "plain-dfs")
    started = time.perf_counter()
    stack: list[list[str]] = [[]]
    while stack:
        if max_schedules is not None and report.schedules >= max_schedules:
            report.exhausted = False
            break
        prefix = stack.pop()
        run = _run(program, _Prefix(prefix))
        report.schedules += 1
        report.end_states.add(run.end_state)
        report.traces.add(foata(run.steps))
        for i in range(len(run.steps) - 1, len(prefix) - 1, -1):
            taken = run.steps[i][0]
            names = [step[0] for step in run.steps[:i]]
            stack.extend([*names, other] for other in reversed(run.ready[i]) if other != taken)
    report.seconds = time.perf_counter() - started
    return report


# -- the programs -----------------------------------------------------------------------------


def _name(prefix: str, i: int) -> str:
    return f"{prefix}{i:02d}"  # zero-padded: the search's order is the threads' order


def readers(n: int) -> Program:
    """One writer of ``x``, ``n`` readers of it (Abdulla et al., POPL 2014)."""

    def writer() -> Generator[Access, object, None]:
        yield Write("x", 1)

    def reader() -> Generator[Access, object, None]:
        yield Read("x")

    readers_ = tuple((_name("r", i), reader) for i in range(1, n + 1))
    return Program("readers", n, (("w", writer), *readers_))


def lastzero(n: int) -> Program:
    """Thread 0 looks for the last zero of ``a[0..n]``; thread j sets a[j] = a[j-1] + 1."""

    def scanner() -> Generator[Access, object, None]:
        i = n
        while (yield Read(f"a[{i}]")) != 0:
            i -= 1

    def setter(j: int) -> Thread:
        def body() -> Generator[Access, object, None]:
            value = yield Read(f"a[{j - 1}]")
            assert isinstance(value, int)
            yield Write(f"a[{j}]", value + 1)
        return body

    setters = tuple((_name("t", j), setter(j)) for j in range(1, n + 1))
    return Program("lastzero", n, (("t00", scanner), *setters))


INDEXER_SIZE = 128
INDEXER_MESSAGES = 4


def indexer(n: int, size: int = INDEXER_SIZE) -> Program:
    """``n`` threads insert 4 messages each into a hash table by CAS (Flanagan-Godefroid 2005).

    ``size``: the table's slots (128 in the paper; fewer make threads meet at small ``n``).
    """

    def inserter(tid: int) -> Thread:
        def body() -> Generator[Access, object, None]:
            for m in range(1, INDEXER_MESSAGES + 1):
                w = m * 11 + tid
                h = (w * 7) % size
                while not (yield Cas(f"table[{h}]", 0, w)):
                    h = (h + 1) % size
        return body

    name = "indexer" if size == INDEXER_SIZE else f"indexer[size={size}]"
    return Program(name, n, tuple((_name("t", tid), inserter(tid)) for tid in range(n)))


FS_BLOCKS = 26
FS_INODES = 32


def filesystem(n: int, blocks: int = FS_BLOCKS, *, waits: bool = True) -> Program:
    """``n`` threads allocate a block to an inode under locks (Flanagan-Godefroid 2005).

    ``blocks``: how many (26 in the paper; fewer make threads meet at small ``n``);
    ``waits``: see ``Program``.
    """
    if n > blocks:
        raise ValueError(f"filesystem({n}) with {blocks} blocks: a thread would search forever")

    def allocator(tid: int) -> Thread:
        def body() -> Generator[Access, object, None]:
            i = tid % FS_INODES
            yield Acquire(f"locki[{i}]")
            if (yield Read(f"inode[{i}]")) == 0:
                b = (i * 2) % blocks
                while True:
                    yield Acquire(f"lockb[{b}]")
                    if (yield Read(f"busy[{b}]")) == 0:
                        yield Write(f"busy[{b}]", 1)
                        yield Write(f"inode[{i}]", b + 1)
                        yield Release(f"lockb[{b}]")
                        break
                    yield Release(f"lockb[{b}]")
                    b = (b + 1) % blocks
            yield Release(f"locki[{i}]")
        return body

    name = "filesystem" if blocks == FS_BLOCKS else f"filesystem[blocks={blocks}]"
    threads = tuple((_name("t", tid), allocator(tid)) for tid in range(n))
    return Program(name if waits else f"{name}[disabled]", n, threads, waits)


PROGRAMS: dict[str, Callable[[int], Program]] = {
    "readers": readers,
    "lastzero": lastzero,
    "indexer": indexer,
    "filesystem": filesystem,
}
"""The classic programs by name: ``PROGRAMS[name](n)``."""


__all__ = [
    "PROGRAMS",
    "Acquire",
    "Cas",
    "ClassicReport",
    "Program",
    "Read",
    "Release",
    "Thread",
    "Write",
    "every_schedule",
    "explore_program",
    "filesystem",
    "footprint",
    "indexer",
    "lastzero",
    "readers",
]
