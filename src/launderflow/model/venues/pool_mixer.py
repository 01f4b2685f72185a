"""Pool mixer (Tornado-Cash-like): fixed-denomination pools whose honest users make the anonymity set.

Honest traffic runs as a background process: every ``background_step`` each pool receives a
Poisson number of honest deposits and each honest note leaves with probability
``1 - exp(-step / honest_holding)`` — drawn as whole arrays and written to the ledger in bulk. The
anonymity set of a pool is the number of notes in it.

The launderer deposits whole denominations (largest first; the remainder below the smallest
denomination stays in the wallet and moves on), waits the hop's ``delay``, then withdraws every
note to a fresh address through a relayer. At withdrawal an analyst links the note to its
deposit with probability ``h + (1 - h) / A``: ``h = 1 - prod(1 - h_i)`` over the demixing habits the
launderer shows (address reuse, a round trip shorter than ``quick_threshold``, unique amounts, a
gas fingerprint) and ``A`` the anonymity set then. A designation scales honest deposits down
(``honest_rate``) and can make honest users leave (``exodus``), which shrinks ``A``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..addresses import Role
from ..columns import ColumnBuffer
from ..ops import World
from .base import VENUES, VenueModel


@VENUES.register("pool_mixer")
class PoolMixer(VenueModel):
    kind = "pool_mixer"
    has_honest_users = True
    judgment_point = True

    def __init__(self, world: World, index: int, name: str, spec: Any):
        super().__init__(world, index, name, spec)
        self.asset = world.asset_index[spec.asset]
        self.price = float(world.asset_price[self.asset])
        self.chain = int(world.asset_chain[self.asset])
        self.denominations = np.array(spec.denominations, dtype=np.float64)
        k = len(self.denominations)
        weights = np.ones(k) if spec.honest_pool_weights is None else np.array(spec.honest_pool_weights, dtype=np.float64)
        self.pool_rate = spec.honest_deposits_per_day / 24.0 * weights / max(weights.sum(), 1e-300)  # per hour
        self.holding = spec.honest_holding
        initial = self.pool_rate * self.holding if spec.initial_notes is None else np.array(spec.initial_notes, dtype=np.float64)
        self.honest = np.round(initial).astype(np.int64)  # honest notes in each pool
        self.launderer = np.zeros(k, dtype=np.int64)  # launderer notes in each pool
        self.fee = spec.relayer_fee
        self.demixing = spec.demixing
        self.habits = spec.habits
        self.rate_factors: dict[str, float] = {}  # multipliers on honest deposits by cause (designation, operators)
        self.exodus = 0.0  # extra hourly rate at which honest notes leave (a designation raises it)
        self.step = spec.background_step
        self.pools_log = ColumnBuffer({"time": np.float64, "venue": np.int16, "pool": np.int16, "notes": np.int64})
        self.withdrawals = ColumnBuffer({"time": np.float64, "venue": np.int16, "pool": np.int16,
                                         "anonymity_set": np.int64, "p_link": np.float64, "linked": np.bool_})
        self._log_pools(0.0)
        world.process(self._background())

    # --- the anonymity set ---------------------------------------------------------------------

    @property
    def honest_rate(self) -> float:
        """Multiplier on honest deposits: the product of every cause's factor (1 = undisturbed)."""
        return float(np.prod(list(self.rate_factors.values()))) if self.rate_factors else 1.0

    def set_honest_rate(self, cause: str, factor: float) -> None:
        self.rate_factors[cause] = factor

    def add_exodus(self, per_hour: float) -> None:
        self.exodus = max(0.0, self.exodus + per_hour)

    def logs(self) -> dict[str, ColumnBuffer]:
        return {"pools": self.pools_log, "withdrawals": self.withdrawals}

    @property
    def anonymity_set(self) -> np.ndarray:
        return self.honest + self.launderer

    def _log_pools(self, now: float) -> None:
        k = len(self.denominations)
        self.pools_log.append(k, time=now, venue=self.index, pool=np.arange(k), notes=self.anonymity_set)

    def _background(self):
        world = self.world
        rng = self.rng
        while True:
            yield world.timeout(self.step)
            now = world.now
            arrivals = rng.poisson(self.pool_rate * self.honest_rate * self.step)
            leave_p = 1.0 - np.exp(-self.step * (1.0 / self.holding + self.exodus))
            departures = rng.binomial(self.honest, leave_p)
            self.honest += arrivals - departures
            for pool in np.flatnonzero(arrivals + departures):
                amount = float(self.denominations[pool])
                if arrivals[pool]:
                    users = world.addresses.new(int(arrivals[pool]), self.chain, Role.HONEST)
                    world.record_honest(now, users, self.address, self.asset, amount, self.index)
                if departures[pool]:
                    users = world.addresses.new(int(departures[pool]), self.chain, Role.HONEST)
                    world.record_honest(now, self.address, users, self.asset, amount, self.index)
            self._log_pools(now)

    # --- the launderer's notes -----------------------------------------------------------------

    def refuses(self, world: World, ids: np.ndarray, now: float) -> np.ndarray:
        return (world.lots.asset[ids] != self.asset) | super().refuses(world, ids, now)

    def enter(self, world: World, ids: np.ndarray, now: float, hop: Any) -> None:
        lots = world.lots
        gas = float(world.chain_fee[self.chain])  # each deposit pays its own transfer fee on top
        counts = self._notes(lots.value[ids] / self.price)
        if gas > 0:  # leave room for the deposits' fees: recount from what is left after them
            counts = self._notes((lots.value[ids] - counts.sum(axis=1) * gas) / self.price)
        notes = counts.sum(axis=1)
        has_rest = (lots.value[ids] - (counts @ self.denominations) * self.price - notes * gas) > 1e-6
        pieces = notes + has_rest
        skip = pieces == 0
        hop.advance(world, ids[skip], now, hop.delay)  # worth no note at all: moves on unmixed
        ids, counts, has_rest, pieces = ids[~skip], counts[~skip], has_rest[~skip], pieces[~skip]
        if len(ids) == 0:
            return
        k = len(self.denominations)
        per_lot = np.hstack([counts, has_rest[:, None].astype(np.int64)])  # pool k = the remainder
        pool_of_piece = np.repeat(np.tile(np.arange(k + 1, dtype=np.int32), len(ids)), per_lot.ravel())
        pool_of_piece[pool_of_piece == k] = -1
        values = np.where(pool_of_piece >= 0, self.denominations[np.maximum(pool_of_piece, 0)] * self.price + gas, 0.0)
        pieces_ids = world.divide(ids, pieces, values)
        is_note = pool_of_piece >= 0
        remainder = pieces_ids[~is_note]
        hop.advance(world, remainder, now, hop.delay)  # below the smallest note: moves on unmixed
        notes_ids = pieces_ids[is_note]
        lots.tag[notes_ids] = pool_of_piece[is_note]
        notes_ids = self.take_in(world, notes_ids, now, "pool_mixer")
        np.add.at(self.launderer, lots.tag[notes_ids], 1)
        self.hold(world, notes_ids, now, self.delay)  # the launderer's waiting time in the pool

    def removed(self, world: World, ids: np.ndarray) -> None:
        """Seized notes leave the pool (and its anonymity set)."""
        np.subtract.at(self.launderer, world.lots.tag[ids], 1)

    def _notes(self, amount: np.ndarray) -> np.ndarray:
        """Whole notes per lot, largest denomination first: (lots, denominations) counts."""
        counts = np.zeros((len(amount), len(self.denominations)), dtype=np.int64)
        rest = np.maximum(amount, 0.0)
        for k in range(len(self.denominations) - 1, -1, -1):
            counts[:, k] = np.floor(rest / self.denominations[k] + 1e-9)
            rest = np.maximum(rest - counts[:, k] * self.denominations[k], 0.0)
        return counts

    def habits_miss(self) -> float:
        """The chance the launderer's habits give no link: the product of ``1 - h_i`` over those shown."""
        d = self.demixing
        miss = 1.0
        if self.habits.reuses_addresses:
            miss *= 1.0 - d.address_reuse
        if self.habits.unique_amounts:
            miss *= 1.0 - d.unique_amounts
        if self.habits.gas_fingerprint:
            miss *= 1.0 - d.gas_fingerprint
        return miss

    def release(self, world: World, ids: np.ndarray, now: float, hop: Any) -> np.ndarray:
        lots = world.lots
        ids = ids[lots.alive[ids]]
        pools = lots.tag[ids]
        anonymity = self.anonymity_set[pools]
        d = self.demixing
        miss = np.full(len(ids), self.habits_miss())
        quick = (now - lots.entered[ids]) < d.quick_threshold
        miss = np.where(quick, miss * (1.0 - d.quick_round_trip), miss)
        h = 1.0 - miss
        p_link = h + (1.0 - h) / np.maximum(anonymity, 1)
        return self.withdraw(world, ids, now, pools, anonymity, p_link)

    def withdraw(self, world: World, ids: np.ndarray, now: float, pools: np.ndarray, anonymity: np.ndarray,
                 p_link: np.ndarray) -> np.ndarray:
        """The notes ``ids`` leave their pools, each linked to its deposit with chance ``p_link``
        (the relayer's fee paid); return those back with the launderer (``release``'s second half,
        which the compiled engine's kernel for the first half calls too)."""
        lots = world.lots
        linked = self.rng.random(len(ids)) < p_link
        self.withdrawals.append(len(ids), time=now, venue=self.index, pool=pools, anonymity_set=anonymity,
                                p_link=p_link, linked=linked)
        np.subtract.at(self.launderer, pools, 1)
        self.charge(world, ids, self.fee)
        lots.tag[ids] = -1
        return self.pay_out(world, ids, now, "pool_mixer", keep=linked)  # analysts judge every payout

