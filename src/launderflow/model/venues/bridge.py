"""Bridge: value moves to an asset on another chain after a delay, for a fee.

A THORChain-like swap (ETH -> BTC) or a wrapped-asset bridge. While in flight the value is inside
the venue; a bridge that ``halts`` can be halted (it then refuses new funds).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..ops import World
from .base import VENUES, VenueModel


@VENUES.register("bridge")
class Bridge(VenueModel):
    kind = "bridge"

    def __init__(self, world: World, index: int, name: str, spec: Any):
        super().__init__(world, index, name, spec)
        self.judgment_point = not spec.links_legs  # THORChain-like: the outbound names the inbound
        self.fee = spec.fee
        self.fee_usd = spec.fee_usd

    def on_enter(self, world: World, ids: np.ndarray, now: float, hop: Any) -> None:
        self.charge(world, ids, self.fee, self.fee_usd)
        ids = ids[world.lots.alive[ids]]
        self.hold(world, ids, now, self.delay)

    def release(self, world: World, ids: np.ndarray, now: float, hop: Any) -> np.ndarray:
        world.lots.asset[ids] = hop.to_asset  # arrives as the destination chain's asset
        return self.pay_out(world, ids, now, "bridge")
