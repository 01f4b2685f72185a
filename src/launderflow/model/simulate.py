"""One replication, start to finish: scenario + generator in, plain arrays out.

The result holds only numpy arrays and numbers, so it pickles cheaply across processes and
cluster workers (a simpy environment itself cannot be pickled).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..scenario.schema import Scenario
from .honest import build_honest
from .world import World

ENGINES = ("reference", "compiled")  # the compiled one (model/compiled.py) is imported on first use: numba takes a while


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
    venue_fees: np.ndarray | None = None  # USD collected by each venue (scenario order)
    venue_inflow: np.ndarray | None = None  # USD of stolen value that entered each venue
    venue_frozen: np.ndarray | None = None  # USD frozen by each venue
    venue_seized: np.ndarray | None = None  # USD seized inside each venue
    refusals: np.ndarray | None = None  # offers each venue turned away (every retry of a lot counts)
    network_fees: float = 0.0
    pools: dict[str, np.ndarray] | None = None  # pool mixers' anonymity sets over time
    withdrawals: dict[str, np.ndarray] | None = None  # every launderer withdrawal from a pool mixer
    actions: dict[str, tuple[str, float, float]] | None = None  # intervention name -> (kind, applied at, USD seized)
    hops_followed: int = 0  # work done by the tracing team: follow-ups by software and judgments
    inflows: dict[str, np.ndarray] | None = None  # stolen value entering venues: time, venue, value_usd
    holdings: dict[str, np.ndarray] | None = None  # per asset on the timeline grid: time, asset, wallets, value_usd
    venue_recovered: np.ndarray | None = None  # USD re-identified after its trail was lost at each venue
    auto_recovered: float = 0.0  # USD re-identified after its trail was lost at an automatic hop
    exits: dict[str, np.ndarray] | None = None  # freezes, seizures, cash-outs: time, kind, venue, asset, action, was_frozen, value_usd, day_usd
    prices: dict[str, np.ndarray] | None = None  # the moving prices' points: time, asset, price_usd (None: fixed prices)
    refused_lots: np.ndarray | None = None  # lots each venue turned away at least once
    honest: dict[str, np.ndarray] | None = None  # honest users per step and venue (model/honest.py); None: no honest section


def simulate(scenario: Scenario, rng: np.random.Generator, keep_ledger: bool = True,
             keep_lots: bool = False, engine: str = "reference") -> Replication:
    """Run one replication of ``scenario`` with randomness from ``rng`` only.

    ``engine``: ``reference`` (numpy) or ``compiled`` (its bookkeeping in numba kernels, see
    model/compiled.py); both give the same bytes.
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}: use one of {', '.join(ENGINES)}")
    if engine == "compiled":
        from .compiled import CompiledWorld

        world: World = CompiledWorld(scenario, rng)
    else:
        world = World(scenario, rng)
    honest = build_honest(world)
    world.run()
    log_time, log_delta = world.book.log()
    ledger = world.ledger.arrays(copy=True) if keep_ledger else None
    if ledger is not None:  # amounts in asset units, from the USD value at the scenario's fixed prices
        ledger["amount"] = ledger["value_usd"] / world.asset_price[ledger["asset"]]
    if ledger is not None:  # a trail is only followed if the theft was discovered within the run
        stolen = ledger["lot"] >= 0
        ledger["followed"][stolen] &= world.discovered[world.lots.theft[ledger["lot"][stolen]]]
    lots_table = ({name: world.lots.view(name).copy() for name in ("value", "location", "traced", "trail", "theft", "alive", "lost_at", "judge_at")}
                  if keep_lots else None)
    logs = [v.logs() for v in world.venues]
    pools = _concat([log["pools"].arrays() for log in logs if "pools" in log])
    withdrawals = _concat([log["withdrawals"].arrays() for log in logs if "withdrawals" in log])
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
        venue_fees=world.venue_fees.copy(),
        venue_inflow=world.venue_inflow.copy(),
        venue_frozen=np.array([v.frozen_usd for v in world.venues], dtype=np.float64),
        venue_seized=np.array([v.seized_usd for v in world.venues], dtype=np.float64),
        refusals=world.refusals.copy(),
        network_fees=world.network_fees,
        pools=pools,
        withdrawals=withdrawals,
        actions={a.name: (a.spec.kind, float("nan") if a.applied_at is None else a.applied_at, a.seized_usd)
                 for a in world.interventions},
        hops_followed=world.team.followed,
        inflows=world.inflows.arrays(copy=True),
        holdings=world.holdings.arrays(copy=True),
        venue_recovered=world.recovery.recovered_usd[:-1].copy(),
        auto_recovered=float(world.recovery.recovered_usd[-1]),
        exits=world.exits.rows.arrays(copy=True),
        prices=world.prices.table(),
        refused_lots=world.refused_lots,
        honest=None if honest is None else honest.log.arrays(copy=True),
    )


def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray] | None:
    if not parts:
        return None
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
