"""Stablecoin issuer (Tether/Circle-like): freezes traced addresses that hold its token.

Not a hop venue but a watcher: whenever a traced lot of its token lands at a launderer address,
the issuer (if it complies) freezes it ``freeze_latency`` later — if the lot is still there.
This is why careful launderers swap stablecoins to unfreezable assets within minutes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...distributions import from_spec
from ..states import Location
from .base import VenueModel


class Issuer(VenueModel):
    kind = "issuer"

    def __init__(self, world: Any, index: int, name: str, spec: Any):
        super().__init__(world, index, name, spec)
        self.asset = world.asset_index[spec.asset]
        self.freeze_latency = from_spec(spec.freeze_latency)
        self.compliance = spec.compliance
        self.frozen_usd = 0.0

    def refuses(self, world: Any, ids: np.ndarray, now: float) -> np.ndarray:
        return np.ones(len(ids), dtype=bool)  # nobody routes funds *through* an issuer

    def watch(self, world: Any, ids: np.ndarray, now: float) -> None:
        lots = world.lots
        mine = ids[(lots.asset[ids] == self.asset) & lots.traced[ids] & lots.alive[ids]
                   & (lots.location[ids] == int(Location.LAUNDERER))]
        if len(mine) == 0 or self.halted or self.closed:
            return
        mine = mine[world.rng.random(len(mine)) < self.compliance]
        addresses = lots.address[mine].copy()
        times = now + self.freeze_latency.sample(world.rng, len(mine))
        lookup = dict(zip(mine.tolist(), addresses.tolist())) if len(mine) < 64 else None
        expected = np.full(len(lots), -1, dtype=np.int64) if lookup is None else None
        if expected is not None:
            expected[mine] = addresses
        world.at(times, mine, lambda due, t: self.freeze(due, t, addresses_of=(lookup, expected)))

    def freeze(self, ids: np.ndarray, now: float, addresses_of: Any) -> None:
        world = self.world
        lots = world.lots
        lookup, expected = addresses_of
        was = np.array([lookup[i] for i in ids.tolist()]) if lookup is not None else expected[ids]
        still = ids[(lots.address[ids] == was) & lots.alive[ids] & (lots.location[ids] == int(Location.LAUNDERER))
                    & (lots.asset[ids] == self.asset)]
        if len(still):
            self.frozen_usd += float(lots.value[still].sum())
            world.record(now, lots.address[still], lots.address[still], still, lots.value[still], "freeze", self.index)
            world.relocate(still, Location.FROZEN, self.index)
