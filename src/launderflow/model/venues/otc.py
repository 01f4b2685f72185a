"""OTC broker or bank off-ramp: value that reaches it leaves the chain, minus a haircut.

With a daily capacity — its own, or a pool it shares with other desks and every theft — the desk
serves deposits first come, first served: a deposit of value v takes v / capacity days, so a huge
theft queues at the off-ramp — and stays inside it, exposed to a shutdown or seizure — for weeks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..capacity import Capacity
from ..ops import World
from .base import VENUES, VenueModel


@VENUES.register("otc")
class OtcDesk(VenueModel):
    kind = "otc"

    def __init__(self, world: World, index: int, name: str, spec: Any):
        super().__init__(world, index, name, spec)
        self.haircut = spec.haircut
        self.queue = spec.queue
        self.capacity: Capacity | None = (world.capacity_pools[spec.capacity_pool] if spec.capacity_pool is not None
                                          else None if spec.capacity_usd_per_day is None
                                          else Capacity(spec.capacity_usd_per_day))

    def refuses(self, world: World, ids: np.ndarray, now: float) -> np.ndarray:
        """Besides the usual refusals: no room in the desk's booking window (the value stays with the
        launderer and the hop tries again after its ``retry``)."""
        refused = super().refuses(world, ids, now)
        if self.capacity is None or np.count_nonzero(refused) == len(ids):
            return refused
        open_ = ~refused & ~world.lots.claimed[ids]  # value converted just in time for this desk was booked then
        fits = self.capacity.room(now, world.lots.value[ids[open_]], self.queue)
        refused[np.flatnonzero(open_)[~fits]] = True
        return refused

    def on_enter(self, world: World, ids: np.ndarray, now: float, hop: Any) -> None:
        if self.capacity is not None:
            claimed = world.lots.claimed[ids]
            if np.count_nonzero(claimed):
                self.capacity.use_claims(float(world.lots.value[ids[claimed]].sum()))
                world.lots.claimed[ids[claimed]] = False
        done = np.full(len(ids), now) if self.capacity is None else self.capacity.serve(now, world.lots.value[ids])
        world.schedule(ids, done + (self.delay.sample(self.rng, len(ids)) if self.delay else 0.0))

    def release(self, world: World, ids: np.ndarray, now: float, hop: Any) -> np.ndarray:
        return self.cash_out(world, ids, now, self.haircut)
