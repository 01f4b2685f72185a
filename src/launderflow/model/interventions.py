"""Interventions: the policy side — designations, operator actions, seizures, shutdowns, halts, defences.

Each intervention is a simpy process that waits until its time (after the first theft, or after
the discovery with ``after_discovery``) and then changes venues or moves value to ``seized``. What
each one did is kept (``seized_usd``) for the summary. At the same instant, interventions act before
the lots due then, because their processes are started before the theft processes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .distributions import from_spec
from ..scenario import schema as s
from .states import Location


class Action:
    """A scheduled intervention; subclasses implement :meth:`apply`."""

    def __init__(self, world: Any, index: int, spec: Any):
        self.world = world
        self.spec = spec
        self.name = spec.name or f"{spec.kind}_{index}"
        self.seized_usd = 0.0
        self.applied_at: float | None = None
        self.rng = world.stream(f"intervention:{self.name}")  # acting never shifts anyone else's draws
        world.env.process(self._run())

    def _run(self):
        world = self.world
        if self.spec.after_discovery:
            first = min(range(len(world.scenario.thefts)), key=lambda i: world.scenario.thefts[i].time)
            theft = world.scenario.thefts[first]
            yield world.env.timeout(theft.time + theft.discovered_after + self.spec.at)
        else:
            yield world.env.timeout(self.spec.at)
        self.applied_at = world.env.now
        yield from self.apply(world.env.now) or ()

    def apply(self, now: float) -> Any:
        raise NotImplementedError

    def venue(self, name: str) -> Any:
        return self.world.venues[self.world.venue_index[name]]


class DesignationAction(Action):
    """Sanction a venue: complying venues refuse linked funds; honest users leave, then creep back."""

    def apply(self, now: float):
        spec = self.spec
        target = self.venue(spec.venue)
        target.designated = True
        for venue in self.world.venues:
            if venue is not target and venue.jurisdiction in spec.complying:
                venue.sanctioned_links |= np.uint64(1 << target.index)
        if not hasattr(target, "rate_factors"):
            return None
        low = 1.0 - spec.volume_drop
        target.rate_factors[self.name] = low
        target.exodus += spec.exodus_per_day / 24.0
        return self._creep_back(target, low)

    def _creep_back(self, mixer: Any, low: float):
        """Honest volume recovers linearly to ``recovery_level`` over ``recovery_time`` (daily steps)."""
        spec = self.spec
        start = self.world.env.now
        target = spec.recovery_level
        exodus = spec.exodus_per_day / 24.0
        if spec.recovery_time <= 0:
            mixer.rate_factors[self.name] = target
            mixer.exodus = max(0.0, mixer.exodus - exodus)
            return
        while self.world.env.now < start + spec.recovery_time:
            yield self.world.env.timeout(24.0)
            progress = min(1.0, (self.world.env.now - start) / spec.recovery_time)
            mixer.rate_factors[self.name] = low + (target - low) * progress
            step = exodus * min(1.0, 24.0 / spec.recovery_time)
            mixer.exodus = max(0.0, mixer.exodus - step)  # honest users stop leaving as volume returns


class OperatorsAction(Action):
    """Operators designated or indicted: front-end and relayers in complying places stop."""

    def apply(self, now: float) -> None:
        target = self.venue(self.spec.venue)
        if hasattr(target, "rate_factors"):
            target.rate_factors[self.name] = self.spec.honest_rate_factor
        if hasattr(target, "fee"):
            target.fee = min(0.5, target.fee * self.spec.relayer_fee_factor)
        return None


class SeizureAction(Action):
    """Seize traced value held in venues within reach, and value frozen there."""

    def apply(self, now: float) -> None:
        world = self.world
        lots = world.lots
        spec = self.spec
        names = set(spec.venues) if spec.venues is not None else None
        rng = self.rng
        for venue in world.venues:
            if venue.jurisdiction not in spec.jurisdictions or (names is not None and venue.name not in names):
                continue
            held = np.flatnonzero((lots.view("venue") == venue.index) & (lots.view("value") > 0)
                                  & (((lots.view("location") == int(Location.VENUE)) & lots.view("traced"))
                                     | (lots.view("location") == int(Location.FROZEN))))
            if spec.share < 1.0:
                held = held[rng.random(len(held)) < spec.share]
            self.seized_usd += venue.seize(world, held, now)
        return None


class ShutdownAction(Action):
    def apply(self, now: float) -> None:
        self.seized_usd += self.venue(self.spec.venue).shut_down(now)
        return None


class HaltAction(Action):
    def apply(self, now: float):
        venue = self.venue(self.spec.venue)
        venue.halted = True
        if self.spec.duration is None:
            return None
        return self._resume(venue)

    def _resume(self, venue: Any):
        yield self.world.env.timeout(self.spec.duration)
        venue.halted = False


class DefencesAction(Action):
    def apply(self, now: float) -> None:
        spec = self.spec
        for venue in self.world.venues:
            if venue.kind != "exchange" or (spec.venues is not None and venue.name not in spec.venues):
                continue
            if spec.kyc is not None:
                venue.kyc = spec.kyc
            if spec.compliance is not None:
                venue.compliance = spec.compliance
            if spec.freeze_latency is not None:
                venue.freeze_latency = from_spec(spec.freeze_latency)
            if spec.freezes is not None:
                venue.freezes = spec.freezes
        return None


ACTIONS: dict[type, type[Action]] = {
    s.Designation: DesignationAction,
    s.Operators: OperatorsAction,
    s.Seizure: SeizureAction,
    s.Shutdown: ShutdownAction,
    s.Halt: HaltAction,
    s.Defences: DefencesAction,
}


def build_interventions(world: Any) -> list[Action]:
    return [ACTIONS[type(spec)](world, i, spec) for i, spec in enumerate(world.scenario.interventions)]
