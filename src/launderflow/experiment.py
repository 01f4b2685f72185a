"""Monte Carlo replications: independent random streams, any executor, results in replication order.

Replication ``i`` of a run with seed ``S`` always uses ``SeedSequence(S).spawn(N)[i]`` — which is
the same stream as ``SeedSequence(S, spawn_key=(i,))`` — so its result does not depend on which
worker ran it, how many workers there were, or whether it ran in a later, resumed invocation.
Workers receive ``(scenario, seed, index)`` — never a simpy environment, which cannot be pickled —
and return plain arrays.

One code path serves a laptop and a cluster: :func:`run_replications` takes any
:class:`concurrent.futures.Executor` — a local process pool (:func:`open_executor` with ``jobs``)
or a dask.distributed cluster (:func:`open_executor` with a scheduler address) — or runs in
process. :func:`run_experiment` puts every finished replication into a
:class:`~launderflow.store.RunStore` at once, records failures with their stage, and assembles the
run's files.
"""

from __future__ import annotations

import multiprocessing
import signal
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .model.simulate import Replication, simulate
from .scenario.schema import Scenario

if TYPE_CHECKING:
    from .store import RunStore


@dataclass(frozen=True)
class Task:
    """One replication to run: everything a worker needs, and nothing that cannot be pickled."""

    scenario: Scenario
    seed: int
    index: int
    keep_ledger: bool
    key: str = ""  # names the task on a dask cluster: scenario content + seed + index


@dataclass(frozen=True)
class Failure:
    """A replication that did not make it, and where it broke.

    ``stage`` is ``simulate`` (the model raised), ``worker`` (the worker died, or the task or its
    result could not be sent) or ``store`` (its part could not be written).
    """

    index: int
    seed: int
    stage: str
    error: str
    traceback: str = ""

    def record(self) -> dict[str, Any]:
        return {"index": self.index, "seed": self.seed, "spawn_key": [self.index], "stage": self.stage,
                "error": self.error, "traceback": self.traceback}


class ReplicationError(RuntimeError):
    """Raised in a worker when a replication fails; carries the :class:`Failure` (it pickles)."""

    def __init__(self, failure: Failure):
        super().__init__(failure)
        self.failure = failure

    def __str__(self) -> str:
        return f"replication {self.failure.index} failed ({self.failure.stage}): {self.failure.error}"


def replication_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of replication ``index``: child ``index`` of ``SeedSequence(seed)``."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))


def run_task(task: Task) -> tuple[int, Replication]:
    """Run one replication (in a worker). A model error comes back as :class:`ReplicationError`."""
    try:
        rep = simulate(task.scenario, replication_rng(task.seed, task.index), keep_ledger=task.keep_ledger)
    except Exception as exc:
        raise ReplicationError(Failure(task.index, task.seed, "simulate", _describe(exc), traceback.format_exc())) from None
    return task.index, rep


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _failure_of(exc: Exception, index: int, seed: int) -> Failure:
    if isinstance(exc, ReplicationError):
        return exc.failure
    return Failure(index, seed, "worker", _describe(exc), "".join(traceback.format_exception(exc)))


def run_replications(
    scenario: Scenario,
    runs: int,
    seed: int,
    keep_ledgers: bool = False,
    jobs: int = 1,
    executor: Executor | None = None,
    indices: list[int] | None = None,
    on_done: Callable[[int, Replication], None] | None = None,
    on_error: Callable[[Failure], None] | None = None,
    key: str = "",
) -> Iterator[tuple[int, Replication]]:
    """Yield ``(index, replication)`` as replications finish (any order); ``on_done`` sees each one.

    ``executor`` may be any :class:`concurrent.futures.Executor` (a dask.distributed client's
    included, see :func:`open_executor`); without one, ``jobs > 1`` starts a local process pool and
    ``jobs == 1`` runs in this process. A replication that fails goes to ``on_error`` as a
    :class:`Failure` and the others go on; without ``on_error`` it is raised. ``key`` prefixes the
    task names a dask cluster sees (default: scenario name and seed).
    """
    todo = list(range(runs)) if indices is None else list(indices)
    prefix = key or f"{scenario.name}-s{seed}"
    tasks = [Task(scenario, seed, i, keep_ledgers, f"launderflow-{prefix}-r{i}") for i in todo]

    def failed(failure: Failure) -> None:
        if on_error is None:
            raise ReplicationError(failure)
        on_error(failure)

    if executor is None and jobs <= 1:
        for task in tasks:
            try:
                index, rep = run_task(task)
            except Exception as exc:
                failed(_failure_of(exc, task.index, seed))
                continue
            if on_done:
                on_done(index, rep)
            yield index, rep
        return
    if executor is None:
        with open_executor(jobs) as pool:
            yield from run_replications(scenario, runs, seed, keep_ledgers, executor=pool, indices=todo,
                                        on_done=on_done, on_error=on_error, key=key)
        return
    pending: dict[Future, int] = {}
    try:
        for task in tasks:
            pending[executor.submit(run_task, task)] = task.index
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in sorted(done, key=pending.__getitem__):
                index = pending.pop(fut)
                try:
                    _, rep = fut.result()
                except Exception as exc:  # the model raised, the worker died, the result did not arrive
                    failed(_failure_of(exc, index, seed))
                    continue
                del fut  # let the result go once it is handed on
                if on_done:
                    on_done(index, rep)
                yield index, rep
    finally:
        for fut in pending:
            fut.cancel()


# --- executors -----------------------------------------------------------------------------------


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


# --- a run into a store --------------------------------------------------------------------------


@dataclass
class RunReport:
    """What :func:`run_experiment` did: which replications ran, which failed, and the files it wrote."""

    runs: int
    ran: list[int] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    summary: dict[str, Any] | None = None
    written: list[Path] = field(default_factory=list)
    assembled: bool = False

    @property
    def ok(self) -> bool:
        return not self.failures


def run_experiment(
    scenario: Scenario,
    store: RunStore,
    jobs: int = 1,
    executor: Executor | None = None,
    on_done: Callable[[int, Replication], None] | None = None,
    on_error: Callable[[Failure], None] | None = None,
) -> RunReport:
    """Run the replications ``store`` is missing, store each as it finishes, then assemble the files.

    A failed replication is recorded in the store (failures.json) and reported in the result; the
    others go on, and the files are assembled from those that succeeded. ``on_done``/``on_error``
    are called after the store has the replication (for progress bars). An exception from them
    (KeyboardInterrupt, say) stops the run; what is stored stays stored.
    """
    report = RunReport(runs=store.runs)
    store.prepare()
    todo = store.missing()

    def failed(failure: Failure) -> None:
        store.record_failure(failure.record())
        report.failures.append(failure)
        if on_error:
            on_error(failure)

    def done(index: int, rep: Replication) -> None:
        try:
            store.write_part(index, rep)
        except Exception as exc:
            failed(Failure(index, store.seed, "store", _describe(exc), "".join(traceback.format_exception(exc))))
            return
        store.clear_failure(index)
        report.ran.append(index)
        if on_done:
            on_done(index, rep)

    if todo:
        for _ in run_replications(scenario, store.runs, store.seed, keep_ledgers=store.keep_ledgers, jobs=jobs,
                                  executor=executor, indices=todo, on_done=done, on_error=failed,
                                  key=f"{scenario.name}-{store.key}"):
            pass
    if todo or not store.assembled():
        report.summary, report.written = store.assemble()
        report.assembled = True
    else:
        report.summary = store.summary()
    return report
