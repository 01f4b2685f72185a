"""Stablecoin issuer (Tether/Circle-like): freezes flagged addresses that hold its token.

Not a hop venue: it acts on alerts from the sharing channel. When a flagged lot of its token sits
at a launderer address, the issuer (if it complies) freezes it ``freeze_latency`` later — if the
lot has not moved by then. This is why careful launderers swap stablecoins within minutes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..distributions import from_spec
from ..states import Location
from ..ops import World
from .base import VENUES, VenueModel
from .response import FreezeResponse


@VENUES.register("issuer")
class Issuer(VenueModel):
    kind = "issuer"
    acts_on_alerts = True

    def __init__(self, world: World, index: int, name: str, spec: Any):
        super().__init__(world, index, name, spec)
        self.asset = world.asset_index[spec.asset]
        self.response = FreezeResponse(world, spec.compliance, from_spec(spec.freeze_latency), spec.response)

    @property
    def compliance(self) -> float:  # type: ignore[override]
        return self.response.compliance

    def refuses(self, world: World, ids: np.ndarray, now: float) -> np.ndarray:
        return np.ones(len(ids), dtype=bool)  # nobody routes funds *through* an issuer

    def alert(self, world: World, ids: np.ndarray, now: float) -> None:
        self._ask(world, ids, now, self.response.times)

    @property
    def asked_directly(self) -> bool:
        return self.response.asked_directly

    def direct_request(self, world: World, ids: np.ndarray, now: float) -> None:
        """A robbed exchange or token project asks at the trace (the victim channel, from now)."""
        self._ask(world, ids, now, self.response.direct_times)

    def _ask(self, world: World, ids: np.ndarray, now: float, when: Any) -> None:
        """Schedule freezes of the lots of its token still in the launderer's wallets, at the times
        ``when`` (a :class:`FreezeResponse` rule) gives; nothing while halted or closed."""
        if self.halted or self.closed:
            return
        lots = world.lots
        mine = ids[(lots.asset[ids] == self.asset) & lots.alive[ids] & (lots.location[ids] == int(Location.LAUNDERER))]
        if len(mine):
            mine, times = when(world, mine, now, self.policy_rng)
            world.at(times, mine, self.freeze, lots.hops[mine].copy())

    def freeze(self, ids: np.ndarray, now: float, hops: np.ndarray) -> None:
        world = self.world
        lots = world.lots
        still = ids[(lots.hops[ids] == hops) & lots.alive[ids] & (lots.location[ids] == int(Location.LAUNDERER))
                    & (lots.asset[ids] == self.asset)]
        self.freeze_lots(world, still, now, lots.address[still])
