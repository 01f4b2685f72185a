"""Centralised exchange: deposit, optionally trade, then withdraw — or cash out to fiat.

Freezing is a race: a deposit that investigators trace is flagged, and if the exchange freezes at
all and complies this time, the funds are frozen ``freeze_latency`` later — unless the launderer
has already withdrawn them (after ``delay``). An exchange with ``holds`` keeps a share of deposits
in the account for a while whatever the launderer wants (reviews, withdrawal limits), so late
requests still find them. No-KYC swap services (eXch-like) never freeze.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..distributions import from_spec
from ..ops import World
from .base import VENUES, VenueModel
from .response import FreezeResponse


@VENUES.register("exchange")
class Exchange(VenueModel):
    kind = "exchange"
    acts_on_alerts = True
    judgment_point = True  # a withdrawal comes from the exchange's hot wallet: whose is it?

    def __init__(self, world: World, index: int, name: str, spec: Any):
        super().__init__(world, index, name, spec)
        self.kyc = spec.kyc
        self.freezes = spec.freezes
        self.fee = spec.fee
        self.haircut = spec.haircut
        self.response = FreezeResponse(world, spec.compliance, from_spec(spec.freeze_latency), spec.response)
        self.min_dwell = from_spec(spec.min_dwell)
        exposure = world.scenario.launderer.exposure
        self.short_dwell = exposure is not None and exposure.short_dwell
        self.holds = spec.holds if spec.holds is not None and spec.holds.probability > 0 else None
        self.hold_duration = from_spec(spec.holds.duration) if self.holds is not None else None

    @property
    def compliance(self) -> float:  # type: ignore[override]
        """Chance it acts on a sanction (designation refusals) — and, without a response by channel, on a freeze request."""
        return self.response.compliance

    def on_enter(self, world: World, ids: np.ndarray, now: float, hop: Any) -> None:
        lots = world.lots
        if hop.kind == "exchange" and hop.to_asset is not None:
            self.charge(world, ids, self.fee)
            ids = ids[lots.alive[ids]]
            lots.asset[ids] = hop.to_asset
        # An exposure-aware launderer leaves a freezing exchange as soon as it allows.
        dwell = self.min_dwell if self.short_dwell and self.freezes else self.delay
        leave = self.leave_times(len(ids), now, dwell)
        if self.holds is not None and len(ids):  # held deposits stay at least the hold's duration
            held = self.policy_rng.random(len(ids)) < self.holds.probability
            until = now + self.hold_duration.sample(self.policy_rng, int(np.count_nonzero(held)))  # type: ignore[union-attr]
            kept = np.flatnonzero(held)[until > leave[held]]  # the hold outlasts the launderer's own stay
            leave[held] = np.maximum(leave[held], until)
            lots.held[ids[kept]] = True  # the launderer cannot move them: consolidations do not wait for them
        world.schedule(ids, leave)
        flagged = ids[lots.flagged[ids]]  # deposits from addresses already shared as stolen
        dark = ids[~lots.trail[ids]]
        if len(dark) and self.kyc > 0:  # a KYC'd deposit can put analysts back on a lost trail
            resume = self.policy_rng.random(len(dark)) < self.kyc * world.scenario.tracing.resume_at_kyc
            world.resume_trail(dark[resume], now)
        if world.shares_with(self):
            self.alert(world, flagged, now)
            if self.freezes and self.response.spec is not None:  # screening: the vendor knows traced addresses
                screened = ids[lots.traced[ids] & ~lots.flagged[ids] & lots.alive[ids]]
                screened, times = self.response.times(world, screened, now, self.policy_rng, only="screening")
                world.at(times, screened, self.freeze)

    def alert(self, world: World, ids: np.ndarray, now: float) -> None:
        """Flagged lots: a complying exchange freezes those it holds after its latency."""
        self._ask(world, ids, now, self.response.times)

    @property
    def asked_directly(self) -> bool:
        return self.response.asked_directly

    def direct_request(self, world: World, ids: np.ndarray, now: float) -> None:
        """A robbed exchange or token project asks at the trace about what this exchange holds."""
        self._ask(world, ids, now, self.response.direct_times)

    def _ask(self, world: World, ids: np.ndarray, now: float, when: Any) -> None:
        """Schedule freezes of the lots it holds, at the times ``when`` (a :class:`FreezeResponse`
        rule) gives — if it freezes at all now (``defences`` may change that during a run)."""
        ids = self.inside(world, ids)
        if not self.freezes or len(ids) == 0:
            return
        ids, times = when(world, ids, now, self.policy_rng)
        world.at(times, ids, self.freeze)

    def harden(self, defences: Any) -> None:
        """Hardened defences: the KYC level, compliance, freeze latency and freezing it is given."""
        if defences.kyc is not None:
            self.kyc = defences.kyc
        self.response.harden(defences.compliance,
                             None if defences.freeze_latency is None else from_spec(defences.freeze_latency))
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
