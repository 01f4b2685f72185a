"""DEX swap: one asset for another on the same chain, at the scenario's price, minus fee and impact.

Price impact follows a constant-product pool: a trade of value v against depth D loses
v / (v + D) of its value, so a careful launderer splits large swaps first. With a capacity (USD a
day the launderer can swap without moving the price: thin liquidity, an aggregator's limits) swaps
are served first come, first served and lined up only ``queue`` ahead; the rest waits in the
launderer's wallets — in the asset it holds, within reach of its issuer — and comes back when the
line has room again (:meth:`Dex.reopens`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..capacity import Capacity
from ..ops import World
from .base import VENUES, VenueModel


@VENUES.register("dex")
class Dex(VenueModel):
    kind = "dex"

    def __init__(self, world: World, index: int, name: str, spec: Any):
        super().__init__(world, index, name, spec)
        self.fee = spec.fee
        self.depth = spec.pool_depth_usd
        self.queue = spec.queue
        self.capacity = None if spec.capacity_usd_per_day is None else Capacity(spec.capacity_usd_per_day)

    def refuses(self, world: World, ids: np.ndarray, now: float) -> np.ndarray:
        """Besides the usual refusals: no liquidity left within the queue (the lot waits and retries)."""
        refused = super().refuses(world, ids, now)
        if self.capacity is None or np.count_nonzero(refused) == len(ids):
            return refused
        open_ = ~refused
        fits = self.capacity.room(now, world.lots.value[ids[open_]], self.queue)
        refused[np.flatnonzero(open_)[~fits]] = True
        return refused

    def reopens(self, now: float) -> float | None:
        """Swaps turned away for liquidity come back as soon as the line is within ``queue`` again
        (a thief waits its turn, not a day); a halted or closed DEX leaves it to the hop's retry."""
        if self.capacity is None or self.halted or self.closed or self.designated:
            return None
        return now + max(self.capacity.booked_hours(now, claims=False) - self.queue, 0.0)

    def on_enter(self, world: World, ids: np.ndarray, now: float, hop: Any) -> None:
        value = world.lots.value[ids]
        done = np.full(len(ids), now) if self.capacity is None else self.capacity.serve(now, value)
        impact = value / (value + self.depth)
        lost = value * (1.0 - (1.0 - self.fee) * (1.0 - impact))
        world.spend(ids, lost, venue=self.index)
        world.lots.asset[ids] = hop.to_asset
        world.schedule(ids, done)
