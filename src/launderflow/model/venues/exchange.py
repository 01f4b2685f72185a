"""Centralised exchange: deposit, optionally trade, then withdraw — or cash out to fiat.

Freezing is a race: a deposit that investigators trace is flagged, and if the exchange freezes at
all and complies this time, the funds are frozen ``freeze_latency`` later — unless the launderer
has already withdrawn them (after ``delay``). No-KYC swap services (eXch-like) never freeze.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..distributions import from_spec
from ..ops import World
from .base import VENUES, VenueModel


@VENUES.register("exchange")
class Exchange(VenueModel):
    kind = "exchange"
    acts_on_alerts = True
    judgment_point = True  # a withdrawal comes from the exchange's hot wallet: whose is it?

    def __init__(self, world: World, index: int, name: str, spec: Any):
        super().__init__(world, index, name, spec)
        self.kyc = spec.kyc
        self.freezes = spec.freezes
        self.compliance = spec.compliance
        self.freeze_latency = from_spec(spec.freeze_latency)
        self.fee = spec.fee
        self.haircut = spec.haircut

    def on_enter(self, world: World, ids: np.ndarray, now: float, hop: Any) -> None:
        lots = world.lots
        if hop.kind == "exchange" and hop.to_asset is not None:
            self.charge(world, ids, self.fee)
            ids = ids[lots.alive[ids]]
            lots.asset[ids] = hop.to_asset
        self.hold(world, ids, now, self.delay)
        flagged = ids[lots.flagged[ids]]  # deposits from addresses already shared as stolen
        dark = ids[~lots.trail[ids]]
        if len(dark) and self.kyc > 0:  # a KYC'd deposit can put analysts back on a lost trail
            resume = self.policy_rng.random(len(dark)) < self.kyc * world.scenario.tracing.resume_at_kyc
            world.resume_trail(dark[resume], now)
        if world.shares_with(self):
            self.alert(world, flagged, now)

    def alert(self, world: World, ids: np.ndarray, now: float) -> None:
        """Flagged lots: a complying exchange freezes those it holds after its latency."""
        ids = self.inside(world, ids)
        if not self.freezes or len(ids) == 0:
            return
        if self.compliance < 1.0:
            ids = ids[self.policy_rng.random(len(ids)) < self.compliance]
        world.at(now + self.freeze_latency.sample(self.policy_rng, len(ids)), ids, self.freeze)

    def harden(self, defences: Any) -> None:
        """Hardened defences: the KYC level, compliance, freeze latency and freezing it is given."""
        if defences.kyc is not None:
            self.kyc = defences.kyc
        if defences.compliance is not None:
            self.compliance = defences.compliance
        if defences.freeze_latency is not None:
            self.freeze_latency = from_spec(defences.freeze_latency)
        if defences.freezes is not None:
            self.freezes = defences.freezes

    def freeze(self, ids: np.ndarray, now: float) -> None:
        world = self.world
        ids = self.inside(world, ids)
        self.freeze_lots(world, ids, now, np.full(len(ids), self.address))

    def release(self, world: World, ids: np.ndarray, now: float, hop: Any) -> np.ndarray:
        if hop.kind == "cash_out":
            return self.cash_out(world, ids, now, self.haircut + self.fee)
        return self.pay_out(world, ids, now, "exchange")
