"""The ``service`` hop: the launderer chooses a service for each lot (issue 21).

At a service step every arriving lot picks one of the open services that serve the step's
functions by a multinomial logit (the utilities are :meth:`Market.utilities`: cost, delay,
learned perceived risk, a switching cost). The chosen venue may refuse (halted, shut down,
designated and avoided, complying with a designation, an off-ramp without room); a refused lot
chooses again among the services left, and a lot every service refuses tries again after
``retry`` — the refusals of a fixed playbook, with the order decided by the choice instead of the
list. Each service is entered through the fixed hop it stands for (a :class:`VenueHop` of one
venue), so deposits, releases and ledger rows are the venue machinery's: with a single service
the step behaves exactly as ``{hop: <kind>, venue: <it>}``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from .distributions import Distribution, from_spec
from .hops import DONE, STEPS, Step, VenueHop, _delay
from .ops import World


@STEPS.register("service")
@dataclass
class ServiceStep(Step):
    """Choose a service per lot, then pass the lot through the chosen venue (see the module)."""

    members: np.ndarray  # market indices of the services this step may use
    hops: list[VenueHop]  # the fixed hop each member stands for
    to_asset: int | None
    converts: bool  # every function changes the asset (cross_chain, swapping): a lot holding ``to`` skips
    delay: Distribution
    retry: Distribution
    next: int = DONE
    last: int = -1  # the market index of the service this step used last (inertia)
    position: dict[int, int] = field(default_factory=dict)  # venue index -> member position
    mergeable: ClassVar[bool] = False  # keeps state of its own (the service used last)

    @classmethod
    def from_spec(cls, hop: Any, world: World, index: int) -> ServiceStep:
        market = world.market
        to_asset = world.asset_index[hop.to] if hop.to is not None else None
        delay, retry = _delay(hop), from_spec(hop.retry)
        serving = market.serving(list(hop.function))
        members = np.array([j for j, _ in serving], dtype=np.int64)
        hops = [VenueHop(kind, [market.venues[j]], to_asset, delay, retry) for j, kind in serving]
        position = {market.venues[j].index: k for k, (j, _) in enumerate(serving)}
        converts = all(f in ("cross_chain", "swapping") for f in hop.function)
        return cls(members, hops, to_asset, converts, delay, retry, position=position)

    def apply(self, world: World, ids: np.ndarray, now: float) -> None:
        for hop in self.hops:  # (compile_program sets ``next`` after building: pass it on)
            hop.next = self.next
        lots = world.lots
        phase = lots.substep[ids]
        entering, leaving = ids[phase == 0], ids[phase == 1]
        if self.to_asset is not None and self.converts:
            there = lots.asset[entering] == self.to_asset  # already holds the target asset: nothing to do
            self.advance(world, entering[there], now, None)
            entering = entering[~there]
        if len(entering):
            self._enter(world, entering, now)
        if len(leaving):
            where = lots.venue[leaving]
            for v in np.unique(where):
                hop = self.hops[self.position[int(v)]]
                out = hop.venues[0].release(world, leaving[where == v], now, hop)
                self.advance(world, out, now, self.delay)

    def _enter(self, world: World, entering: np.ndarray, now: float) -> None:
        market = world.market
        lots = world.lots
        market.observe(now)
        allowed = np.tile(market.is_open(self.members, now), (len(entering), 1))
        open_before = allowed.any(axis=1)
        for k, hop in enumerate(self.hops):
            if hop.kind == "swap" and self.to_asset is not None:  # a DEX swaps within one chain
                elsewhere = world.asset_chain[lots.asset[entering]] != world.asset_chain[self.to_asset]
                if np.count_nonzero(elsewhere & allowed[:, k]):
                    world.note_refusal(hop.venues[0], entering[elsewhere & allowed[:, k]])
                allowed[elsewhere, k] = False
        skip = open_before & ~allowed.any(axis=1)  # only DEXes on another chain: skip the swap, as a fixed hop does
        if np.count_nonzero(skip):
            self.advance(world, entering[skip], now, None)
            entering, allowed = entering[~skip], allowed[~skip]
        u = market.utilities(self.members, now, self.last)
        weights = np.maximum(np.exp(u - u.max()), np.finfo(np.float64).tiny)  # (an allowed service never weighs 0)
        taken_value = np.zeros(len(self.members))
        pending = np.arange(len(entering))
        while len(pending):
            p = allowed[pending] * weights
            total = p.sum(axis=1)
            open_ = total > 0
            pending = pending[open_]
            if len(pending) == 0:
                break
            chosen = market.choose(p[open_] / total[open_, None])
            refused_rows = []
            for k in np.unique(chosen):
                rows = pending[chosen == k]
                group = entering[rows]
                venue = self.hops[k].venues[0]
                refused = venue.refuses(world, group, now)
                taken = group[~refused]
                if len(taken):
                    taken_value[k] += float(lots.value[taken].sum())
                    venue.enter(world, taken, now, self.hops[k])
                if np.count_nonzero(refused):
                    world.note_refusal(venue, group[refused])
                    allowed[rows[refused], k] = False
                    refused_rows.append(rows[refused])
            pending = np.sort(np.concatenate(refused_rows)) if refused_rows else pending[:0]
        if taken_value.any():
            self.last = int(self.members[int(np.argmax(taken_value))])
        rest = entering[~allowed.any(axis=1)]
        if len(rest):  # every service refused or none is open: try again later (at least a tick later)
            world.schedule(rest, np.maximum(now + self.retry.sample(world.rng, len(rest)), now + world.resolution))
