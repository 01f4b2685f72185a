"""DEX swap: one asset for another on the same chain, at the scenario's price, minus fee and impact.

Price impact follows a constant-product pool: a trade of value v against depth D loses
v / (v + D) of its value, so a careful launderer splits large swaps first.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..ops import World
from .base import VENUES, VenueModel


@VENUES.register("dex")
class Dex(VenueModel):
    kind = "dex"

    def __init__(self, world: World, index: int, name: str, spec: Any):
        super().__init__(world, index, name, spec)
        self.fee = spec.fee
        self.depth = spec.pool_depth_usd

    def on_enter(self, world: World, ids: np.ndarray, now: float, hop: Any) -> None:
        value = world.lots.value[ids]
        impact = value / (value + self.depth)
        lost = value * (1.0 - (1.0 - self.fee) * (1.0 - impact))
        world.spend(ids, lost, venue=self.index)
        world.lots.asset[ids] = hop.to_asset
        world.schedule(ids, np.full(len(ids), now))
