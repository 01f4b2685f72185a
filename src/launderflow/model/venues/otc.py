"""OTC broker or bank off-ramp: value that reaches it leaves the chain, minus a haircut."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...distributions import from_spec
from ..addresses import AddressBook
from ..states import Location
from .base import VenueModel


class OtcDesk(VenueModel):
    kind = "otc"

    def __init__(self, world: Any, index: int, name: str, spec: Any):
        super().__init__(world, index, name, spec)
        self.delay = from_spec(spec.delay)
        self.haircut = spec.haircut

    def accept(self, world: Any, ids: np.ndarray, now: float) -> None:
        world.schedule(ids, now + self.delay.sample(world.rng, len(ids)))

    def settle(self, world: Any, ids: np.ndarray, now: float) -> None:
        lots = world.lots
        world.spend(ids, lots.value[ids] * self.haircut)
        ids = ids[lots.value[ids] > 0]
        world.record(now, np.full(len(ids), self.address), AddressBook.OFF_CHAIN, ids, lots.value[ids],
                     "cash_out", self.index)
        world.relocate(ids, Location.CASHED_OUT, self.index)
