"""OTC broker or bank off-ramp: value that reaches it leaves the chain, minus a haircut.

With a daily capacity the desk serves deposits first come, first served: a deposit of value v
takes v / capacity days of the desk's time, so a huge theft queues at the off-ramp — and stays
inside it, exposed to a shutdown or seizure — for weeks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..ops import World
from .base import VENUES, VenueModel


@VENUES.register("otc")
class OtcDesk(VenueModel):
    kind = "otc"

    def __init__(self, world: World, index: int, name: str, spec: Any):
        super().__init__(world, index, name, spec)
        self.haircut = spec.haircut
        self.rate_per_hour = None if spec.capacity_usd_per_day is None else spec.capacity_usd_per_day / 24.0
        self.free_at = 0.0  # when the desk has worked through its queue

    def on_enter(self, world: World, ids: np.ndarray, now: float, hop: Any) -> None:
        done = np.full(len(ids), now)
        if self.rate_per_hour is not None:
            service = world.lots.value[ids] / self.rate_per_hour
            finish = max(now, self.free_at) + np.cumsum(service)
            self.free_at = float(finish[-1])
            done = finish
        world.schedule(ids, done + (self.delay.sample(self.rng, len(ids)) if self.delay else 0.0))

    def release(self, world: World, ids: np.ndarray, now: float, hop: Any) -> np.ndarray:
        return self.cash_out(world, ids, now, self.haircut)
