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
    fragment_of: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))  # by lot id: a fragment made here
    offramp: Any = None  # just_in_time (exposure): (capacity, booking window) of the off-ramp this conversion feeds
    held_back: int = 0  # conversions held back until that off-ramp had room (lot-attempts)
    paused: int = 0  # lot-attempts that waited because every open service looked too risky
    fragmented: int = 0  # lots split into smaller deposits before a risky service
    mergeable: ClassVar[bool] = False  # keeps state of its own (the service used last)

    @property
    def cashes_out(self) -> bool:
        """Every service it may choose is an off-ramp (the launderer's exposure management reads it)."""
        return all(hop.kind == "cash_out" for hop in self.hops) and len(self.hops) > 0

    @property
    def venues(self) -> list[Any]:
        """The venues of its services, in market order."""
        return [hop.venues[0] for hop in self.hops]

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
        if self.offramp is not None and len(entering):  # a conversion into a freezable asset, just in time
            entering = VenueHop._just_in_time(self, world, entering, now)  # type: ignore[arg-type]
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
        if market.choice.pause_above is not None and len(entering):
            entering, allowed = self._pause(world, entering, allowed, now)
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
                if len(taken) and market.choice.fragment_above is not None:
                    taken = self._fragment(world, taken, int(self.members[k]), now)
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

    # --- reactions to what the launderer has seen (market.choice: pause_above, fragment_above) -----

    def _pause(self, world: World, entering: np.ndarray, allowed: np.ndarray, now: float) -> tuple[np.ndarray, np.ndarray]:
        """The launderer does not use a service it perceives riskier than ``pause_above``: lots
        whose every open service is that risky wait — until the first of them has calmed down
        (its events fading) or another service opens; the rest choose among the calmer ones (and
        if those refuse, try again after ``retry`` rather than fall back on a risky one)."""
        market = world.market
        level = market.choice.pause_above
        risky = market.risk(self.members, now) > level
        usable = allowed.any(axis=1)
        waits = usable & ~(allowed & ~risky).any(axis=1)
        allowed = allowed & ~risky
        if not np.count_nonzero(waits):
            return entering, allowed
        calm = market.calm_after(self.members, now, level)
        later = market.opens[self.members] > now
        opening = np.min(market.opens[self.members][later]) - now if later.any() else np.inf
        soonest = np.where(allowed[waits], calm, np.inf).min(axis=1)
        wake = np.minimum(soonest, opening)
        forever = ~np.isfinite(wake)
        if forever.any():  # no event to fade (priors alone are above the level): look again after retry
            wake[forever] = self.retry.sample(world.rng, int(np.count_nonzero(forever)))
        self.paused += int(np.count_nonzero(waits))
        world.schedule(entering[waits], np.maximum(now + wake, now + world.resolution))
        return entering[~waits], allowed[~waits]

    def _cover(self, n: int) -> None:
        """Grow ``fragment_of`` (by lot id) to cover ``n`` lots, doubling so growth stays rare."""
        if len(self.fragment_of) < n:
            grown = np.zeros(max(n, 2 * len(self.fragment_of)), dtype=bool)
            grown[: len(self.fragment_of)] = self.fragment_of
            self.fragment_of = grown

    def _fragment(self, world: World, ids: np.ndarray, service: int, now: float) -> np.ndarray:
        """Before a service perceived riskier than ``fragment_above``, a lot (not already a fragment
        made here) is split over ``fragments`` fresh wallets whose deposits come ``fragment_every``
        apart, each choosing again then — so a freeze seen after the first deposit steers the rest.
        Returns the lots that enter now (the fragments made earlier, and lots at calmer services)."""
        market = world.market
        c = market.choice
        if market.risk(np.array([service]), now)[0] <= c.fragment_above:
            return ids
        self._cover(len(world.lots))
        whole = ids[~self.fragment_of[ids]]
        if len(whole) == 0:
            return ids
        n = c.fragments
        children = world.fork(whole, np.full(len(whole), n), np.full(len(whole) * n, 1.0 / n), now, "split")
        self._cover(len(world.lots))
        self.fragment_of[children] = True
        self.fragmented += len(whole)
        order = np.tile(np.arange(n), len(whole))  # children come parent by parent
        confirmation = world.asset_confirmation[world.lots.asset[children]]
        world.schedule(children, np.maximum(now + confirmation + order * c.fragment_every, now + world.resolution))
        return ids[self.fragment_of[ids]]
