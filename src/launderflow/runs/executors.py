"""Executors for replications: in process, a local process pool, or a dask.distributed cluster.

:func:`open_executor` turns ``--jobs``/``--scheduler`` into a :class:`concurrent.futures.Executor`
(or None: in process). A local pool's workers ignore Ctrl-C and are stopped at once when the run
is interrupted; :class:`DaskExecutor` names every task after its replication so that dask never
merges two of them.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any


def _ignore_sigint() -> None:
    """Worker initializer: Ctrl-C is the parent's business (it stops the pool)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class DaskExecutor(Executor):
    """A dask.distributed client's ``get_executor()`` that names each replication's task.

    ``Client.submit`` is ``pure=True`` by default and merges calls it deems identical; here every
    :class:`Task` is submitted under its own key (scenario content + seed + index), so no two
    replications are merged and the same replication submitted twice is computed once.
    """

    def __init__(self, client: Any):
        self.client = client
        self._inner = client.get_executor(pure=False)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        if kwargs:
            raise TypeError("DaskExecutor.submit takes positional arguments only")
        key = getattr(args[0], "key", "") if args else ""
        return self._inner.submit(fn, *args, **({"key": key} if key else {}))  # these kwargs go to Client.submit

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._inner.shutdown(wait=wait and not cancel_futures)


@contextmanager
def open_executor(jobs: int = 1, scheduler: str | None = None) -> Iterator[Executor | None]:
    """The executor for ``--jobs``/``--scheduler``: None (in process), a process pool, or a dask cluster.

    A local pool's workers ignore Ctrl-C; when the block is left by an exception (Ctrl-C included)
    the pool is stopped at once, without waiting for the replications in flight.
    """
    if scheduler:
        from distributed import Client

        try:
            client = Client(scheduler, timeout="20s", set_as_default=False)
        except (OSError, ValueError) as exc:
            raise OSError(f"cannot connect to the dask scheduler at {scheduler}: {exc}") from exc
        executor = DaskExecutor(client)
        try:
            yield executor
        finally:
            executor.shutdown(wait=False)
            client.close()
        return
    if jobs <= 1:
        yield None
        return
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_ignore_sigint)
    finished = False
    try:
        yield pool
        finished = True
    finally:
        if finished:
            pool.shutdown()
        else:
            _stop(pool)


def _stop(pool: ProcessPoolExecutor) -> None:
    procs = list((getattr(pool, "_processes", None) or {}).values())  # private, but stable since 3.8
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.join(timeout=5)
