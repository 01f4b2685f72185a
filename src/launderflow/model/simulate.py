"""One replication, start to finish: scenario + generator in, plain arrays out.

The result holds only numpy arrays and numbers, so it pickles cheaply across processes and
cluster workers (a simpy environment itself cannot be pickled).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..scenario.schema import Scenario
from .world import World


@dataclass
class Replication:
    """What one run produced: the outcome log, the final totals and (optionally) the ledger."""

    stolen_usd: float
    horizon: float
    log_time: np.ndarray  # outcome-book change log: instants (k,)
    log_delta: np.ndarray  # and the net change of each of the 12 cells then (k, 12)
    final_cells: np.ndarray  # (12,) totals at the horizon
    ledger: dict[str, np.ndarray] | None
    transfers: int
    lots: int
    batches: int
    lots_table: dict[str, np.ndarray] | None = None


def simulate(scenario: Scenario, rng: np.random.Generator, keep_ledger: bool = True,
             keep_lots: bool = False) -> Replication:
    """Run one replication of ``scenario`` with randomness from ``rng`` only."""
    world = World(scenario, rng)
    world.run()
    log_time, log_delta = world.book.log()
    ledger = {k: v.copy() for k, v in world.ledger.arrays().items()} if keep_ledger else None
    lots_table = {name: world.lots.view(name).copy() for name in ("value", "location", "traced", "theft", "alive")} if keep_lots else None
    return Replication(
        stolen_usd=world.book.stolen,
        horizon=scenario.clock.horizon,
        log_time=log_time,
        log_delta=log_delta,
        final_cells=world.book.totals.copy(),
        ledger=ledger,
        transfers=len(world.ledger),
        lots=len(world.lots),
        batches=world.agenda.batches,
        lots_table=lots_table,
    )
