"""Monte Carlo replications: independent random streams, any executor, results as they finish.

Replication ``i`` of a run with seed ``S`` always uses ``SeedSequence(S).spawn(N)[i]`` — which is
the same stream as ``SeedSequence(S, spawn_key=(i,))`` — so its result does not depend on which
worker ran it, how many workers there were, or whether it ran in a later, resumed invocation.
Workers receive ``(scenario, seed, index)`` — never a simpy environment, which cannot be pickled —
and return plain arrays.

One code path serves a laptop and a cluster: :func:`run_replications` takes any
:class:`concurrent.futures.Executor` (see :mod:`launderflow.runs.executors`) or runs in process.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..model.simulate import Replication, simulate
from ..scenario.schema import Scenario
from .executors import open_executor


@dataclass(frozen=True)
class Task:
    """One replication to run: everything a worker needs, and nothing that cannot be pickled."""

    scenario: Scenario
    seed: int
    index: int
    keep_ledger: bool
    key: str = ""  # names the task on a dask cluster: scenario content + seed + index
    engine: str = "reference"  # or "compiled": the same bytes, faster (model/compiled.py)


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
        rep = simulate(task.scenario, replication_rng(task.seed, task.index), keep_ledger=task.keep_ledger,
                       engine=task.engine)
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
    engine: str = "reference",
) -> Iterator[tuple[int, Replication]]:
    """Yield ``(index, replication)`` as replications finish (any order); ``on_done`` sees each one.

    ``executor`` may be any :class:`concurrent.futures.Executor` (a dask.distributed client's
    included, see :func:`open_executor`); without one, ``jobs > 1`` starts a local process pool and
    ``jobs == 1`` runs in this process. A replication that fails goes to ``on_error`` as a
    :class:`Failure` and the others go on; without ``on_error`` it is raised. ``key`` prefixes the
    task names a dask cluster sees (default: scenario name and seed). ``engine``: which engine
    simulates (``reference`` or ``compiled``; the same results).
    """
    todo = list(range(runs)) if indices is None else list(indices)
    prefix = key or f"{scenario.name}-s{seed}"
    tasks = [Task(scenario, seed, i, keep_ledgers, f"launderflow-{prefix}-r{i}", engine) for i in todo]

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
                                        on_done=on_done, on_error=on_error, key=key, engine=engine)
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
