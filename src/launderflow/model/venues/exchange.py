"""Centralised exchange: deposit, optionally trade, then withdraw — or cash out to fiat.

Freezing is a race: a deposit that investigators trace is flagged, and if the exchange freezes at
all and complies this time, the funds are frozen ``freeze_latency`` later — unless the launderer
has already withdrawn them (after ``delay``). No-KYC swap services (eXch-like) never freeze.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...distributions import from_spec
from ..states import Location
from .base import VenueModel


class Exchange(VenueModel):
    kind = "exchange"

    def __init__(self, world: Any, index: int, name: str, spec: Any):
        super().__init__(world, index, name, spec)
        self.kyc = spec.kyc
        self.freezes = spec.freezes
        self.compliance = spec.compliance
        self.freeze_latency = from_spec(spec.freeze_latency)
        self.fee = spec.fee
        self.haircut = spec.haircut
        self.frozen_usd = 0.0

    def on_enter(self, world: Any, ids: np.ndarray, now: float, hop: Any) -> None:
        if hop.kind == "exchange" and hop.to_asset is not None:
            self.charge(world, ids, self.fee)
            ids = ids[world.lots.alive[ids]]
            world.lots.asset[ids] = hop.to_asset
        self.hold(world, ids, now, self.delay)
        self.flag(world, ids[world.lots.traced[ids]], now)

    def flag(self, world: Any, ids: np.ndarray, now: float) -> None:
        """Traced deposits are flagged: a complying exchange freezes them after its latency."""
        if not self.freezes or len(ids) == 0:
            return
        acts = world.rng.random(len(ids)) < self.compliance
        ids = ids[acts]
        world.at(now + self.freeze_latency.sample(world.rng, len(ids)), ids, self.freeze)

    def freeze(self, ids: np.ndarray, now: float) -> None:
        world = self.world
        ids = self.inside(world, ids)
        if len(ids):
            self.frozen_usd += float(world.lots.value[ids].sum())
            world.relocate(ids, Location.FROZEN, self.index)
            world.record(now, np.full(len(ids), self.address), np.full(len(ids), self.address), ids,
                         world.lots.value[ids], "freeze", self.index)

    def release(self, world: Any, ids: np.ndarray, now: float, hop: Any) -> np.ndarray:
        if hop.kind == "cash_out":
            return self.cash_out(world, ids, now, self.haircut + self.fee)
        return self.pay_out(world, ids, now, "exchange")
