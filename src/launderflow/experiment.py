"""Monte Carlo replications: independent random streams, any executor, results in replication order.

Replication ``i`` of a run with seed ``S`` always uses ``SeedSequence(S).spawn(N)[i]`` — which is
the same stream as ``SeedSequence(S, spawn_key=(i,))`` — so its result does not depend on which
worker ran it, how many workers there were, or whether it ran in a later, resumed invocation.
Workers receive ``(scenario, seed, index)`` — never a simpy environment, which cannot be pickled —
and return plain arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from .model.simulate import Replication, simulate
from .scenario.schema import Scenario


@dataclass(frozen=True)
class Task:
    """One replication to run: everything a worker needs, and nothing that cannot be pickled."""

    scenario: Scenario
    seed: int
    index: int
    keep_ledger: bool


def replication_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of replication ``index``: child ``index`` of ``SeedSequence(seed)``."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))


def run_task(task: Task) -> tuple[int, Replication]:
    return task.index, simulate(task.scenario, replication_rng(task.seed, task.index), keep_ledger=task.keep_ledger)


def run_replications(
    scenario: Scenario,
    runs: int,
    seed: int,
    keep_ledgers: bool = False,
    jobs: int = 1,
    executor: Executor | None = None,
    indices: list[int] | None = None,
    on_done: Callable[[int, Replication], None] | None = None,
) -> Iterator[tuple[int, Replication]]:
    """Yield ``(index, replication)`` as replications finish (any order); ``on_done`` sees each one.

    ``executor`` may be any :class:`concurrent.futures.Executor` (a dask.distributed client's
    ``get_executor()`` included); without one, ``jobs > 1`` starts a local process pool.
    """
    todo = list(range(runs)) if indices is None else list(indices)
    tasks = [Task(scenario, seed, i, keep_ledgers) for i in todo]
    if executor is None and jobs <= 1:
        for task in tasks:
            index, rep = run_task(task)
            if on_done:
                on_done(index, rep)
            yield index, rep
        return
    own = executor is None
    pool = executor or ProcessPoolExecutor(max_workers=jobs)
    try:
        futures: list[Future] = [pool.submit(run_task, task) for task in tasks]
        from concurrent.futures import as_completed

        for fut in as_completed(futures):
            index, rep = fut.result()
            if on_done:
                on_done(index, rep)
            yield index, rep
    finally:
        if own:
            pool.shutdown(cancel_futures=True)
