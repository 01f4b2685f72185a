"""Playbook hops: what the launderer does with every lot that reaches a step.

Each hop is a small class built from its scenario spec with ``apply(world, ids, now)``, acting on
all lots due at that step in the same tick at once (numpy index arrays, no per-lot Python loop).
A hop ends by scheduling its lots' next move (``world.after``) and advancing their ``step``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..distributions import Distribution, from_spec
from ..scenario import schema as s
from .addresses import Role
from .states import IN_PLAY, Location


def _advance(world: Any, ids: np.ndarray, now: float, delay: Distribution | None) -> None:
    world.lots.step[ids] += 1
    world.lots.substep[ids] = 0
    world.after(ids, now, delay)


def _alive(world: Any, ids: np.ndarray) -> np.ndarray:
    return ids[world.lots.alive[ids]]


@dataclass
class Transfer:
    """Each lot moves whole to one fresh wallet."""

    delay: Distribution

    def apply(self, world: Any, ids: np.ndarray, now: float) -> None:
        world.move(ids, now, "transfer")
        _advance(world, _alive(world, ids), now, self.delay)


@dataclass
class Split:
    """Each lot fans out over ``wallets`` fresh wallets with Dirichlet-drawn shares."""

    wallets: int
    concentration: float
    delay: Distribution

    def apply(self, world: Any, ids: np.ndarray, now: float) -> None:
        k = self.wallets
        shares = world.rng.gamma(self.concentration, 1.0, size=(len(ids), k))
        shares /= shares.sum(axis=1, keepdims=True)
        children = world.fork(ids, np.full(len(ids), k), shares.ravel(), now, "split")
        _advance(world, _alive(world, children), now, self.delay)


@dataclass
class Peel:
    """A peel chain: at each of ``length`` hops, ``fraction`` of the remainder is peeled off.

    The peeled piece moves on to the next playbook step; the remainder moves to a fresh wallet and
    peels again after ``delay``, until the last hop, after which it moves on too.
    """

    length: int
    fraction: float
    delay: Distribution

    def apply(self, world: Any, ids: np.ndarray, now: float) -> None:
        lots = world.lots
        n = len(ids)
        shares = np.empty(2 * n)
        shares[0::2] = self.fraction
        shares[1::2] = 1.0 - self.fraction
        children = world.fork(ids, np.full(n, 2), shares, now, "peel")
        peeled, remainder = children[0::2], children[1::2]
        lots.substep[remainder] += 1
        finished = lots.substep[remainder] >= self.length
        moving_on = np.concatenate((peeled, remainder[finished]))
        _advance(world, _alive(world, np.sort(moving_on)), now, self.delay)
        world.after(_alive(world, remainder[~finished]), now, self.delay)


@dataclass
class Wait:
    """Dormancy: the lots stay where they are for a drawn delay."""

    delay: Distribution

    def apply(self, world: Any, ids: np.ndarray, now: float) -> None:
        world.lots.step[ids] += 1
        world.lots.substep[ids] = 0
        world.schedule(ids, now + self.delay.sample(world.rng, len(ids)))


@dataclass
class Consolidate:
    """Gather every moving lot of the theft into ``wallets`` wallets per asset.

    A barrier: lots that arrive are parked until no lot of the theft is still in play at an earlier
    step. A merged wallet is traced if any lot merged into it was — investigators who know one
    input know the wallet, which is how trails resume at consolidation points.
    """

    index: int
    wallets: int
    delay: Distribution

    def apply(self, world: Any, ids: np.ndarray, now: float) -> None:
        lots = world.lots
        world.park(ids)
        lots.substep[ids] = 1  # waiting at the barrier
        self.try_release(world, int(lots.theft[ids[0]]), now)

    def try_release(self, world: Any, theft: int, now: float) -> None:
        lots = world.lots
        mine = (lots.view("theft") == theft) & lots.view("alive")
        if np.any(mine & (lots.view("step") < self.index)):
            return
        waiting = np.flatnonzero(mine & (lots.view("step") == self.index) & (lots.view("substep") == 1)
                                 & (lots.view("location") == int(Location.LAUNDERER)))
        if len(waiting) == 0:
            return
        self._merge(world, waiting, now)

    def _merge(self, world: Any, ids: np.ndarray, now: float) -> None:
        lots = world.lots
        fee = world.network_fee(ids)  # each input pays its own transfer into the merged wallet
        k = min(self.wallets, len(ids))
        group = world.rng.permutation(len(ids)) % k
        key = lots.asset[ids].astype(np.int64) * k + group  # one target per (asset, wallet)
        targets, inverse = np.unique(key, return_inverse=True)
        m = len(targets)
        asset = (targets // k).astype(np.int16)
        wallets = world.addresses.new(m, world.asset_chain[asset], Role.LAUNDERER)
        value = np.bincount(inverse, weights=lots.value[ids], minlength=m)
        trail = np.bincount(inverse, weights=lots.trail[ids], minlength=m) > 0
        traced = np.bincount(inverse, weights=lots.traced[ids], minlength=m) > 0
        merged = lots.add(m, value=value, asset=asset, address=wallets, location=int(Location.LAUNDERER),
                          trail=trail, traced=traced, theft=lots.theft[ids[0]], step=self.index + 1)
        # Value moves from each input's cell to its merged lot's cell (knowledge may resume).
        world.book.move(now, world.cells(ids), world.cells(merged)[inverse], lots.value[ids])
        world.record(now, lots.address[ids], wallets[inverse], ids, lots.value[ids], "consolidate", -1, fee)
        lots.value[ids] = 0.0
        lots.alive[ids] = False
        lots.ready[ids] = np.inf
        lots.alive[merged[value <= 0]] = False
        merged = merged[value > 0]
        world.hop_knowledge(merged, "consolidate")
        world.after(merged, now, self.delay)


@dataclass
class CashOut:
    """Hand lots to an off-ramp venue; the venue decides when and how much leaves the chain."""

    venue: Any

    def apply(self, world: Any, ids: np.ndarray, now: float) -> None:
        lots = world.lots
        phase = lots.substep[ids]
        entering, leaving = ids[phase == 0], ids[phase == 1]
        if len(entering):
            world.move(entering, now, "cash_out", dst=np.full(len(entering), self.venue.address), venue=self.venue.index)
            entering = _alive(world, entering)
            world.relocate(entering, Location.VENUE, self.venue.index)
            lots.substep[entering] = 1
            self.venue.accept(world, entering, now)
        if len(leaving):
            self.venue.settle(world, leaving, now)


def compile_program(world: Any, hops: list[Any]) -> Any:
    """Turn a playbook (scenario hops) into a program of hop objects."""
    from .world import Program

    steps: list[Any] = []
    for index, hop in enumerate(hops):
        delay = from_spec(getattr(hop, "delay", s.ZERO_DELAY))
        if isinstance(hop, s.TransferHop):
            steps.append(Transfer(delay))
        elif isinstance(hop, s.SplitHop):
            steps.append(Split(hop.wallets, hop.concentration, delay))
        elif isinstance(hop, s.PeelHop):
            steps.append(Peel(hop.length, hop.fraction, delay))
        elif isinstance(hop, s.WaitHop):
            steps.append(Wait(delay))
        elif isinstance(hop, s.ConsolidateHop):
            steps.append(Consolidate(index, hop.wallets, delay))
        elif isinstance(hop, s.CashOutHop):
            steps.append(CashOut(world.venues[world.venue_index[hop.venue]]))
        else:  # pragma: no cover - the schema admits no other hop
            raise TypeError(f"unsupported hop {hop!r}")
    return Program(steps)


def release_barriers(world: Any, theft: int, now: float) -> None:
    """Give consolidation barriers of a theft a chance to open (after lots left play)."""
    for step in world.programs[theft].steps:
        if isinstance(step, Consolidate):
            step.try_release(world, theft, now)


__all__ = ["compile_program", "release_barriers", "IN_PLAY"]
