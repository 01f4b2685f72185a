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
        self._no_room: tuple[float | None, np.ndarray | None] = (None, None)

    def refuses(self, world: World, ids: np.ndarray, now: float) -> np.ndarray:
        """Besides the usual refusals: no liquidity left within the queue (the lot waits and retries)."""
        refused = super().refuses(world, ids, now)
        if self.capacity is None or np.count_nonzero(refused) == len(ids):
            return refused
        open_ = ~refused
        fits = self.capacity.room(now, world.lots.value[ids[open_]], self.queue)
        short = np.flatnonzero(open_)[~fits]
        refused[short] = True
        self._no_room = (now, ids[short])  # (who was turned away for lack of room, and when: reopens)
        return refused

    def reopens(self, now: float, ids: np.ndarray) -> np.ndarray | None:
        """Swaps it just turned away for liquidity come back as soon as the line is within ``queue``
        again (a thief waits its turn, not a day); lots refused for any other reason, and every lot
        while it is halted or closed, are left to the hop's retry (NaN)."""
        if self.capacity is None or self.halted or self.closed or self.designated:
            return None
        when, short = self._no_room
        if when != now or short is None or len(short) == 0:
            return None
        turn = now + max(self.capacity.booked_hours(now, claims=False) - self.queue, 0.0)
        return np.where(np.isin(ids, short), turn, np.nan)

    def on_enter(self, world: World, ids: np.ndarray, now: float, hop: Any) -> None:
        value = world.lots.value[ids]
        done = np.full(len(ids), now) if self.capacity is None else self.capacity.serve(now, value)
        impact = value / (value + self.depth)
        lost = value * (1.0 - (1.0 - self.fee) * (1.0 - impact))
        world.spend(ids, lost, venue=self.index)
        world.lots.asset[ids] = hop.to_asset
        world.schedule(ids, done)
