"""One runner for parallel work: local worker processes or a Dask cluster (``check --jobs``,
``sweep --jobs``, ``sweep --dask``).

No distribution layer of our own: work goes to a ``concurrent.futures``
executor, a local process pool by default (``local_pool``), or a Dask
cluster's executor (``dask_executor``; ``distributed``, the ``dask`` extra).
``run_parallel`` is the one loop over it: each call submitted, each result
handed on as it ends, the results kept in the order of the calls (so the
totals never depend on how the work was split), and on the way out, however
it is left (an error, ^C), nothing more is started.

Local workers are spawned, not forked: the caller may hold threads (a
SQLite store's, a ledger's lock) that a fork would copy mid-lock.  Each
watches the pid of the process that started it and ends when it is gone
(``end_with_parent``).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


def end_with_parent(parent: int) -> None:
    """In a pool's worker: exit when the process that started it (pid ``parent``) is gone.

    Why: a sweep (or check) killed outright (``SIGKILL``, the machine's OOM
    killer) cannot stop its pool, and a worker waiting for its next task
    waits forever (the queue's other end is held by its siblings), spending a
    core on work no one will read.  A daemon thread notices the parent
    change (the orphan is adopted) within a second.  The pid is passed in,
    not read here: the pool starts workers as work arrives, and one still
    starting when its parent was killed is already an orphan when this runs
    (reading ``getppid()`` then would watch its new parent).
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="end-with-parent", daemon=True).start()


def local_pool(jobs: int) -> ProcessPoolExecutor:
    """``jobs`` spawned worker processes, each ending with this one (``end_with_parent``)."""
    if jobs < 1:
        raise ValueError("jobs must be at least 1")
    return ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                               initializer=end_with_parent, initargs=(os.getpid(),))


@dataclass(frozen=True)
class DaskCluster:
    """A Dask cluster's ``concurrent.futures`` executor, its worker threads, and its closing."""

    executor: Executor
    workers: int
    close: Callable[[], None]


def dask_executor(address: str) -> DaskCluster:
    """Connect to the Dask scheduler at ``address``; needs the ``dask`` extra
    (``pip install meerkat-ref[dask]``)."""
    try:
        from distributed import Client  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        raise RuntimeError(
            "--dask needs the 'distributed' package: pip install 'meerkat-ref[dask]'"
        ) from None
    client = Client(address)  # type: ignore[no-untyped-call,unused-ignore]
    executor: Executor = client.get_executor()  # type: ignore[no-untyped-call,unused-ignore]
    threads = client.nthreads()  # type: ignore[no-untyped-call,unused-ignore]
    return DaskCluster(executor, max(1, sum(threads.values())), client.close)


def run_parallel(fn: Callable[..., T], calls: Sequence[tuple[Any, ...]], *, jobs: int = 1,
                 executor: Executor | None = None,
                 finished: Callable[[int, T], None] | None = None) -> list[T]:
    """``fn(*args)`` for each of ``calls``, on ``executor`` (which the caller owns) or on a
    ``local_pool(jobs)`` made and shut down here; ``finished(i, result)`` as each ends.

    ``fn`` and the arguments must pickle.  The results come back in the
    order of ``calls``.  Left early (an error raised by a call or by
    ``finished``, ^C), the calls not started are cancelled.
    """
    own = executor is None
    pool = local_pool(jobs) if executor is None else executor
    results: dict[int, T] = {}
    futures: dict[Future[T], int] = {}
    try:
        futures = {pool.submit(fn, *args): i for i, args in enumerate(calls)}
        for future in as_completed(futures):
            i = futures[future]
            results[i] = future.result()
            if finished is not None:
                finished(i, results[i])
    finally:
        for future in futures:  # stopped early: nothing more is started
            future.cancel()
        if own:
            pool.shutdown(cancel_futures=True)
    return [results[i] for i in range(len(calls))]


__all__ = ["DaskCluster", "dask_executor", "end_with_parent", "local_pool", "run_parallel"]
