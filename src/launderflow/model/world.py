"""The world: one replication's simpy environment, its lots, ledger, book, venues and programs.

``World`` owns the shared primitives every hop and venue uses — moving lots, forking them into
new wallets, charging fees, updating knowledge — so that conservation is enforced in one place:
every change of value goes through the :class:`OutcomeBook` here.

Order of simultaneous events: lots due in the same tick are processed together, grouped by
theft and then by playbook step in ascending order; scheduled processes (discovery, later
interventions) that fall on the same instant run before the lots due then, because they are
started first and simpy keeps insertion order among equal times.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import simpy

from ..distributions import Distribution
from ..scenario.schema import HOP_KINDS, Scenario
from .addresses import AddressBook, Role
from .agenda import Agenda
from .book import OutcomeBook
from .ledger import Ledger
from .lots import LotTable
from .states import Location

HOP_CODE = {name: i for i, name in enumerate(HOP_KINDS)}


@dataclass
class Program:
    """A theft's compiled playbook: a list of steps, each with ``apply(world, ids, now)``."""

    steps: list[Any] = field(default_factory=list)


class World:
    def __init__(self, scenario: Scenario, rng: np.random.Generator):
        from .hops import compile_program
        from .venues import build_venues

        self.scenario = scenario
        self.rng = rng
        self.env = simpy.Environment()
        self.lots = LotTable()
        self.ledger = Ledger()
        self.book = OutcomeBook()
        self.addresses = AddressBook()
        self.resolution = scenario.clock.resolution
        self.horizon = scenario.clock.horizon

        self.chain_names = list(scenario.chains)
        self.chain_confirmation = np.array([c.confirmation for c in scenario.chains.values()])
        self.chain_fee = np.array([c.fee_usd for c in scenario.chains.values()])
        self.asset_names = list(scenario.assets)
        self.asset_index = {name: i for i, name in enumerate(self.asset_names)}
        self.asset_price = np.array([a.price_usd for a in scenario.assets.values()])
        self.asset_chain = np.array([self.chain_names.index(a.chain) for a in scenario.assets.values()], dtype=np.int16)

        self.venues = build_venues(self)
        self.venue_index = {v.name: v.index for v in self.venues}
        self.discovered = np.zeros(len(scenario.thefts), dtype=bool)
        self.programs = [compile_program(self, scenario.playbook_for(t)) for t in scenario.thefts]
        self.agenda = Agenda(self.env, self.resolution, lambda: self.lots.ready, self._on_due)
        self.env.process(self.agenda.run())
        for i, theft in enumerate(scenario.thefts):
            self.env.process(self._theft(i))

    # --- running -------------------------------------------------------------------------------

    def run(self) -> None:
        self.env.run(until=self.horizon)

    def _theft(self, index: int):
        theft = self.scenario.thefts[index]
        yield self.env.timeout(theft.time)
        now = self.env.now
        assets = np.array([self.asset_index[s.asset] for s in theft.stolen], dtype=np.int16)
        values = np.array([s.amount for s in theft.stolen]) * self.asset_price[assets]
        n = len(assets)
        victims = self.addresses.new(n, self.asset_chain[assets], Role.VICTIM)
        wallets = self.addresses.new(n, self.asset_chain[assets], Role.LAUNDERER)
        ids = self.lots.add(n, value=values, asset=assets, address=wallets, theft=index, trail=True,
                            traced=self.discovered[index], step=0, location=int(Location.LAUNDERER))
        self.book.add(now, self.cells(ids), values)
        self.record(now, victims, wallets, ids, values, "theft")
        self.schedule(ids, np.full(n, now))
        if theft.discovered_after > 0:
            yield self.env.timeout(theft.discovered_after)
        self.discover(index)

    def discover(self, theft: int) -> None:
        """The theft is known: every lot of it whose trail is intact becomes traced."""
        self.discovered[theft] = True
        lots = self.lots
        ids = np.flatnonzero((lots.view("theft") == theft) & lots.view("trail") & ~lots.view("traced")
                             & (lots.view("value") > 0))
        self.set_traced(ids, np.ones(len(ids), dtype=bool))

    def _on_due(self, ids: np.ndarray, now: float) -> None:
        lots = self.lots
        key = lots.theft[ids].astype(np.int64) * (1 << 32) + lots.step[ids]
        order = np.argsort(key, kind="stable")
        ids, key = ids[order], key[order]
        cuts = np.flatnonzero(np.diff(key)) + 1
        for group in np.split(ids, cuts):
            theft, step = int(lots.theft[group[0]]), int(lots.step[group[0]])
            program = self.programs[theft]
            if step < len(program.steps):
                program.steps[step].apply(self, group, now)

    # --- primitives used by hops and venues ----------------------------------------------------

    def cells(self, ids: np.ndarray) -> np.ndarray:
        return self.lots.location[ids].astype(np.int64) * 2 + self.lots.traced[ids]

    def schedule(self, ids: np.ndarray, times: np.ndarray) -> None:
        """Make lots due at ``times`` (rounded up to the clock tick) and put them on the agenda."""
        ticks = self.agenda.tick_of(times)
        self.lots.ready[ids] = ticks * self.resolution
        self.agenda.schedule(ids, ticks)

    def after(self, ids: np.ndarray, now: float, delay: Distribution | None) -> None:
        """Schedule lots for their next move: confirmation of their chain plus a drawn delay."""
        t = now + self.chain_confirmation[self.asset_chain[self.lots.asset[ids]]]
        if delay is not None:
            t = t + delay.sample(self.rng, len(ids))
        self.schedule(ids, t)

    def park(self, ids: np.ndarray) -> None:
        self.lots.ready[ids] = np.inf

    def record(self, now: float, src: np.ndarray, dst: np.ndarray | int, lots: np.ndarray,
               values: np.ndarray, hop: str, venue: int | np.ndarray = -1, fee: np.ndarray | float = 0.0) -> None:
        asset = self.lots.asset[lots]
        self.ledger.append(len(lots), time=now, src=src, dst=dst, asset=asset, amount=values / self.asset_price[asset],
                           value_usd=values, fee_usd=fee, hop=HOP_CODE[hop], lot=lots, venue=venue)

    def hop_knowledge(self, ids: np.ndarray, hop: str) -> None:
        """Each followed hop keeps the trail with the scenario's per-hop success probability."""
        p = self.scenario.tracing.success(hop)
        if p >= 1.0 or len(ids) == 0:
            return
        keep = self.rng.random(len(ids)) < p
        lots = self.lots
        lots.trail[ids] &= keep
        self.set_traced(ids, lots.trail[ids] & self.discovered[lots.theft[ids]])

    def set_traced(self, ids: np.ndarray, traced: np.ndarray) -> None:
        lots = self.lots
        changed = lots.traced[ids] != traced
        if not changed.any():
            return
        ids, traced = ids[changed], traced[changed]
        before = self.cells(ids)
        lots.traced[ids] = traced
        self.book.move(self.env.now, before, self.cells(ids), lots.value[ids])

    def network_fee(self, ids: np.ndarray) -> np.ndarray:
        """Charge each lot one transfer fee of its chain; a lot worth less than the fee is all fee."""
        lots = self.lots
        fee = np.minimum(self.chain_fee[self.asset_chain[lots.asset[ids]]], lots.value[ids])
        self.spend(ids, fee)
        return fee

    def spend(self, ids: np.ndarray, amounts: np.ndarray) -> None:
        """Move part of each lot's value to fees (network fees, venue fees, haircuts, slippage)."""
        if not np.any(amounts):
            return
        lots = self.lots
        from_cells = self.cells(ids)
        to_cells = int(Location.FEES) * 2 + lots.traced[ids]
        lots.value[ids] -= amounts
        self.book.move(self.env.now, from_cells, to_cells, amounts)
        emptied = ids[lots.value[ids] <= 0]
        if len(emptied):
            lots.value[emptied] = 0.0
            lots.alive[emptied] = False
            lots.ready[emptied] = np.inf

    def relocate(self, ids: np.ndarray, location: Location, venue: int = -1) -> None:
        """Change the location of whole lots (e.g. into a venue, or cashed out)."""
        lots = self.lots
        before = self.cells(ids)
        lots.location[ids] = int(location)
        lots.venue[ids] = venue
        if location not in (Location.LAUNDERER, Location.VENUE):
            lots.alive[ids] = False
            lots.ready[ids] = np.inf
        self.book.move(self.env.now, before, self.cells(ids), lots.value[ids])

    def move(self, ids: np.ndarray, now: float, hop: str, dst: np.ndarray | None = None, venue: int = -1) -> None:
        """Send each lot whole to a new address (fresh launderer wallets unless ``dst`` is given)."""
        lots = self.lots
        if dst is None:
            dst = self.addresses.new(len(ids), self.asset_chain[lots.asset[ids]], Role.LAUNDERER)
        src = lots.address[ids].copy()
        fee = self.network_fee(ids)
        lots.address[ids] = dst
        self.record(now, src, dst, ids, lots.value[ids], hop, venue, fee)
        self.hop_knowledge(ids, hop)

    def fork(self, parents: np.ndarray, counts: np.ndarray, shares: np.ndarray, now: float, hop: str) -> np.ndarray:
        """Split each parent lot into ``counts[i]`` children in fresh wallets, by ``shares``.

        ``shares`` has ``counts.sum()`` entries, each parent's block summing to 1. Parents end with
        no value; children inherit asset, theft, step and trail, then pay one network fee each.
        """
        lots = self.lots
        owner = np.repeat(parents, counts)
        values = lots.value[owner] * shares
        n = len(owner)
        wallets = self.addresses.new(n, self.asset_chain[lots.asset[owner]], Role.LAUNDERER)
        children = lots.add(n, value=values, asset=lots.asset[owner], address=wallets, location=int(Location.LAUNDERER),
                            traced=lots.traced[owner], trail=lots.trail[owner], theft=lots.theft[owner],
                            step=lots.step[owner], substep=lots.substep[owner])
        # Parents hand their value to the children: same cells, so the book does not change.
        lots.value[parents] = 0.0
        lots.alive[parents] = False
        lots.ready[parents] = np.inf
        fee = self.network_fee(children)
        self.record(now, lots.address[owner], wallets, children, lots.value[children], hop, -1, fee)
        self.hop_knowledge(children, hop)
        return children

    def new_wallets(self, ids: np.ndarray) -> np.ndarray:
        return self.addresses.new(len(ids), self.asset_chain[self.lots.asset[ids]], Role.LAUNDERER)
