"""Interventions: the policy side — designations, operator actions, seizures, shutdowns, halts, defences.

Each intervention is a simpy process that waits until its time (after the first theft, or after
the discovery with ``after_discovery``) and then changes venues or moves value to ``seized``. What
each one did is kept (``seized_usd``) for the summary. At the same instant, interventions act before
the lots due then, because their processes are started before the theft processes.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import numpy as np
import simpy

from .ops import Venue, World
from .registry import Registry
from .states import Location

ACTIONS: Registry[Action] = Registry("intervention kind", "kind")


class Action:
    """A scheduled intervention. A kind registers with ``@ACTIONS.register(kind)`` and implements
    ``apply(now)``, which acts at once and may return a generator to keep acting (a simpy process:
    a designation's creep-back, the end of a halt)."""

    def __init__(self, world: World, index: int, spec: Any):
        self.world = world
        self.spec = spec
        self.name = spec.name or f"{spec.kind}_{index}"
        self.index = index
        self.seized_usd = 0.0
        self.applied_at: float | None = None
        self.rng = world.stream(f"intervention:{self.name}")  # acting never shifts anyone else's draws
        world.process(self._run())

    @classmethod
    def from_spec(cls, spec: Any, world: World, index: int) -> Action:
        return cls(world, index, spec)

    def _run(self) -> Generator[simpy.Event, Any, None]:
        world = self.world
        if self.spec.after_discovery:
            first = min(range(len(world.scenario.thefts)), key=lambda i: world.scenario.thefts[i].time)
            theft = world.scenario.thefts[first]
            yield world.timeout(theft.time + theft.discovered_after + self.spec.at)
        else:
            yield world.timeout(self.spec.at)
        self.applied_at = world.now
        world.exits.cause = self.index  # what it freezes or seizes now is logged as its doing
        follow = self.apply(world.now)
        world.exits.cause = -1
        yield from follow or ()

    def apply(self, now: float) -> Generator[simpy.Event, Any, None] | None:
        raise NotImplementedError

    def venue(self, name: str) -> Venue:
        return self.world.venue(name)


@ACTIONS.register("designation")
class DesignationAction(Action):
    """Sanction a venue: complying venues refuse linked funds; honest users leave, then creep back."""

    def apply(self, now: float) -> Generator[simpy.Event, Any, None] | None:
        spec = self.spec
        target = self.venue(spec.venue)
        target.designate()
        for venue in self.world.venues:
            if venue is not target and venue.jurisdiction in spec.complying:
                venue.refuse_links_to(target)
        if not target.has_honest_users:
            return None
        low = 1.0 - spec.volume_drop
        target.set_honest_rate(self.name, low)
        target.add_exodus(spec.exodus_per_day / 24.0)
        return self._creep_back(target, low)

    def _creep_back(self, mixer: Venue, low: float) -> Generator[simpy.Event, Any, None]:
        """Honest volume recovers linearly to ``recovery_level`` over ``recovery_time`` (daily steps)."""
        spec = self.spec
        world = self.world
        start = world.now
        target = spec.recovery_level
        exodus = spec.exodus_per_day / 24.0
        if spec.recovery_time <= 0:
            mixer.set_honest_rate(self.name, target)
            mixer.add_exodus(-exodus)
            return
        while world.now < start + spec.recovery_time:
            yield world.timeout(24.0)
            progress = min(1.0, (world.now - start) / spec.recovery_time)
            mixer.set_honest_rate(self.name, low + (target - low) * progress)
            mixer.add_exodus(-exodus * min(1.0, 24.0 / spec.recovery_time))  # honest users stop leaving as volume returns


@ACTIONS.register("operators")
class OperatorsAction(Action):
    """Operators designated or indicted: front-end and relayers in complying places stop."""

    def apply(self, now: float) -> None:
        target = self.venue(self.spec.venue)
        target.set_honest_rate(self.name, self.spec.honest_rate_factor)
        target.scale_fee(self.spec.relayer_fee_factor)
        return None


@ACTIONS.register("seizure")
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


@ACTIONS.register("shutdown")
class ShutdownAction(Action):
    def apply(self, now: float) -> None:
        self.seized_usd += self.venue(self.spec.venue).shut_down(now)
        return None


@ACTIONS.register("halt")
class HaltAction(Action):
    def apply(self, now: float) -> Generator[simpy.Event, Any, None] | None:
        venue = self.venue(self.spec.venue)
        venue.halt()
        if self.spec.duration is None:
            return None
        return self._resume(venue)

    def _resume(self, venue: Venue) -> Generator[simpy.Event, Any, None]:
        yield self.world.timeout(self.spec.duration)
        venue.halt(False)


@ACTIONS.register("defences")
class DefencesAction(Action):
    """Hardened defences at the listed venues (default: all); venues without defences to harden ignore it."""

    def apply(self, now: float) -> None:
        for venue in self.world.venues:
            if self.spec.venues is None or venue.name in self.spec.venues:
                venue.harden(self.spec)
        return None


def build_interventions(world: World) -> list[Action]:
    return [ACTIONS.build(spec, world, i) for i, spec in enumerate(world.scenario.interventions)]
