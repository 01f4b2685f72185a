"""Custodial mixer (Sinbad / Blender / ChipMixer-like): holds deposits, pays out from its own reserves.

The payout comes from the mixer's wallets, not from the deposit, so an analyst keeps the trail only
with ``tracing.hop_success.custodial_mixer``. Whatever it holds when it is shut down is seized.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..states import Location
from ..ops import World
from .base import VENUES, VenueModel


@VENUES.register("custodial_mixer")
class CustodialMixer(VenueModel):
    kind = "custodial_mixer"
    judgment_point = True

    def __init__(self, world: World, index: int, name: str, spec: Any):
        super().__init__(world, index, name, spec)
        self.fee = spec.fee
        self.payouts = spec.payouts

    def on_enter(self, world: World, ids: np.ndarray, now: float, hop: Any) -> None:
        self.charge(world, ids, self.fee)
        self.hold(world, ids[world.lots.alive[ids]], now, self.delay)

    def release(self, world: World, ids: np.ndarray, now: float, hop: Any) -> np.ndarray:
        """Pay each deposit out to ``payouts`` fresh wallets (shares from a Dirichlet(5, ..., 5): uneven but not extreme)."""
        lots = world.lots
        ids = ids[lots.alive[ids]]
        world.relocate(ids, Location.LAUNDERER)
        k = self.payouts
        shares = self.rng.dirichlet(np.full(k, 5.0), size=len(ids)).ravel() if k > 1 else np.ones(len(ids))
        return world.fork(ids, np.full(len(ids), k), shares, now, "custodial_mixer",
                          src=self.address, venue=self.index, judged=True)
