"""The world: one replication's simpy environment, its lots, ledger, book, venues and programs.

``World`` owns the shared primitives every hop and venue uses — moving lots, forking them into
new wallets, merging them, charging fees, updating knowledge — so that conservation is enforced in
one place: every change of value goes through the :class:`OutcomeBook` here. It implements the
typed boundary :class:`launderflow.model.ops.World`, the only thing hops, venues, tracing and
interventions know of it; it builds them, and they never import this module.

Order of simultaneous events: lots due in the same tick are processed together, grouped by
theft and then by playbook step in ascending order. Other events at the same instant (a freeze,
a follow-up, an intervention) are ordered by simpy, by when they were scheduled: an intervention
scheduled from the start runs before lots that became due at its instant later in the run, but a
freeze scheduled during the run may fall after them. Every event is on the clock's tick grid.
"""

from __future__ import annotations

import zlib
from collections.abc import Generator
from typing import Any

import numpy as np
import simpy

from ..scenario.schema import HOP_KINDS, Scenario
from .addresses import AddressBook, Role
from .agenda import Agenda
from .book import OutcomeBook
from .capacity import Capacity
from .columns import ColumnBuffer
from .distributions import Distribution, from_spec
from . import choice  # noqa: F401  (registers the service step)
from .hops import compile_program
from .interventions import build_interventions
from .ledger import Ledger
from .lots import LotTable
from .ops import Venue
from .prices import ExitLog, PricePaths
from .states import Location
from .tracing import Recovery, Sharing, TracingTeam
from .services import build_market
from .venues import build_venues

HOP_CODE = {name: i for i, name in enumerate(HOP_KINDS)}
_TWO = np.int8(2)  # cells are location * 2 + traced, kept in int8
_FEE_CELL = np.int8(2 * int(Location.FEES))
_OUT_OF_PLAY = frozenset({Location.FROZEN, Location.SEIZED, Location.CASHED_OUT, Location.FEES})


class World:
    book_class = OutcomeBook  # the compiled engine (model/compiled.py) puts its own here
    agenda_class = Agenda
    team_class = TracingTeam
    sharing_class = Sharing
    exits_class = ExitLog

    def __init__(self, scenario: Scenario, rng: np.random.Generator):
        self.scenario = scenario
        self.rng = rng
        self._root_seed = rng.bit_generator.seed_seq
        self.env = simpy.Environment()
        self.lots = LotTable()
        self.ledger = Ledger()
        self.book = self.book_class()
        self.addresses = AddressBook()
        self.resolution = scenario.clock.resolution
        self.horizon = scenario.clock.horizon

        self.chain_names = list(scenario.chains)
        self.chain_confirmation = np.array([c.confirmation for c in scenario.chains.values()])
        self.chain_fee = np.array([c.fee_usd for c in scenario.chains.values()])
        self.asset_names = list(scenario.assets)
        self.asset_index = {name: i for i, name in enumerate(self.asset_names)}
        self.asset_price = np.array([a.price_usd for a in scenario.assets.values()])
        self.asset_freezable = np.array([a.freezable for a in scenario.assets.values()], dtype=bool)
        self.asset_chain = np.array([self.chain_names.index(a.chain) for a in scenario.assets.values()], dtype=np.int16)
        self.asset_confirmation = self.chain_confirmation[self.asset_chain]  # per asset: one lookup per lot, not two
        self.asset_fee = self.chain_fee[self.asset_chain]
        self.prices = PricePaths(scenario, self.stream)  # the day's prices (the book keeps the theft's)
        self.exits = self.exits_class(self.prices)  # every freeze, seizure and cash-out, in both valuations

        self.capacity_pools = {name: Capacity(pool.usd_per_day * pool.share) for name, pool in scenario.capacity_pools.items()}
        self.venues: list[Venue] = build_venues(self)
        self.venue_index = {v.name: v.index for v in self.venues}
        self.venue_fees = np.zeros(len(self.venues))  # USD of fees each venue collected
        self.venue_inflow = np.zeros(len(self.venues))  # USD of stolen value that entered each venue
        self.refusals = np.zeros(len(self.venues), dtype=np.int64)  # offers each venue turned away (retries included)
        self._refused: list[set[int]] = [set() for _ in self.venues]  # the lots each venue turned away at least once
        # Route facts over time (what entered each venue when; what the launderer holds, per asset):
        self.inflows = ColumnBuffer({"time": np.float64, "venue": np.int16, "value_usd": np.float64})
        self.holdings = ColumnBuffer({"time": np.float64, "asset": np.int16, "wallets": np.int64, "value_usd": np.float64})
        self.network_fees = 0.0
        self.barriers_waiting: set[tuple[int, int]] = set()
        self.team = self.team_class(self, scenario.tracing)
        self.sharing = self.sharing_class(self, scenario.tracing)
        self.recovery = Recovery(self, scenario.tracing)
        self.interventions = build_interventions(self)
        self.discovered = np.zeros(len(scenario.thefts), dtype=bool)
        self.theft_time = np.array([t.time for t in scenario.thefts], dtype=np.float64)  # (a stream: its first instalment)
        self.last_stopped = np.full(len(scenario.thefts), -np.inf)  # last freeze or seizure of each theft's value
        self.all_discovered = False  # every theft is known: no need to look each lot's theft up
        self.market = build_market(self)  # services and the launderer's choice rule (None: a fixed playbook)
        self.counterparties: Any = None  # honest wallets the launderer pays (model/counterparties.py; None: none)
        self.programs = [compile_program(self, scenario.playbook_for(t)) for t in scenario.thefts]
        self.agenda = self.agenda_class(self.env, self.resolution, lambda: self.lots.ready, self._on_due)
        self.env.process(self.agenda.run())
        self.env.process(self._sample_holdings(scenario.clock.timeline_step))
        for i, theft in enumerate(scenario.thefts):
            self.env.process(self._theft(i))

    def stream(self, name: str) -> np.random.Generator:
        """An independent generator for one component, keyed by its name.

        Derived from the replication's seed sequence with the name's CRC32 as an extra spawn key, so a
        component's draws depend on nothing but the seed and its name: adding a venue, a tracer or
        an intervention leaves every other component's random numbers as they were.
        """
        root = self._root_seed
        if not isinstance(root, np.random.SeedSequence):  # a generator built without a seed sequence
            return self.rng.spawn(1)[0]
        key = zlib.crc32(name.encode("utf-8"))
        return np.random.default_rng(np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, 1 << 32, key)))

    # --- running -------------------------------------------------------------------------------

    def run(self) -> None:
        self.env.run(until=self.horizon)

    @property
    def now(self) -> float:
        return self.env.now

    def process(self, generator: Generator[simpy.Event, Any, Any]) -> None:
        """Run ``generator`` as a simpy process (a venue's background traffic, an intervention)."""
        self.env.process(generator)

    def timeout(self, delay: float) -> simpy.Event:
        return self.env.timeout(delay)

    def venue(self, name: str) -> Venue:
        return self.venues[self.venue_index[name]]

    def _theft(self, index: int):
        """Create the stolen lots at the theft time (and at every instalment of a stream)."""
        theft = self.scenario.thefts[index]
        if theft.time > self.horizon:
            return  # after the end of the run
        yield self.env.timeout(float(self.agenda.tick_of(theft.time)) * self.resolution)  # on the clock's tick grid
        self.env.process(self._discovery(index, theft.discovered_after))
        assets = np.array([self.asset_index[s.asset] for s in theft.stolen], dtype=np.int16)
        values = np.array([s.amount for s in theft.stolen]) * self.asset_price[assets]
        gaps = None if theft.repeat is None else from_spec(theft.repeat.every)
        for k in range(theft.instalments):
            if k > 0:
                yield self.env.timeout(float(gaps.sample(self.rng, 1)[0]))  # type: ignore[union-attr]
            self._take(index, assets, values)

    def _take(self, index: int, assets: np.ndarray, values: np.ndarray) -> None:
        now = self.env.now
        n = len(assets)
        victims = self.addresses.new(n, self.asset_chain[assets], Role.VICTIM)
        wallets = self.addresses.new(n, self.asset_chain[assets], Role.LAUNDERER)
        ids = self.lots.add(n, value=values, asset=assets, address=wallets, theft=index, trail=True,
                            traced=False, step=0, location=int(Location.LAUNDERER))
        self.book.add(now, self.cells(ids), values)
        self.record(now, victims, wallets, ids, values, "theft")
        self.schedule(ids, np.full(n, now))
        if self.discovered[index]:
            self.team.auto(ids, now)

    def _discovery(self, index: int, after: float):
        if after > 0:
            yield self.env.timeout(after)
        self.discover(index)

    def discover(self, theft: int) -> None:
        """The theft is known: software follows every lot of it whose trail is intact, and analysts
        judge those that passed a judgment point on the way (their ``judge_at`` is pending).

        Value already out of play (cashed out, spent) with an intact trail is traced at once: the
        analysts reconstruct where it went, but there is nothing left to freeze.
        """
        self.discovered[theft] = True
        self.all_discovered = bool(self.discovered.all())
        lots = self.lots
        now = self.env.now
        ids = np.flatnonzero((lots.view("theft") == theft) & lots.view("trail") & ~lots.view("traced")
                             & (lots.view("value") > 0))
        live = lots.alive[ids]
        self.set_traced(ids[~live], np.ones(int((~live).sum()), dtype=bool))
        ids = ids[live]
        pending = lots.judge_at[ids] > now  # passed a judgment point nobody has judged yet
        self.team.judge(ids[pending], now)
        self.team.auto(ids[~pending], now)

    def _on_due(self, ids: np.ndarray, now: float) -> None:
        lots = self.lots
        ids, bounds = self._due_groups(ids)
        for a, b in zip(bounds[:-1], bounds[1:]):
            group = ids[a:b]
            theft, step = int(lots.theft[group[0]]), int(lots.step[group[0]])
            program = self.programs[theft]
            if 0 <= step < len(program.steps):
                self._apply(program.steps[step], group, now)
        self.open_barriers(now)

    def _due_groups(self, ids: np.ndarray) -> tuple[np.ndarray, list[int]]:
        """The due lots stably sorted by (theft, step), and where each group starts (and the end)."""
        lots = self.lots
        key = lots.theft[ids].astype(np.int64) * (1 << 32) + lots.step[ids]
        order = key.argsort(kind="stable")
        ids, key = ids[order], key[order]
        return ids, [0, *(np.flatnonzero(key[1:] != key[:-1]) + 1).tolist(), len(ids)]

    def _apply(self, step: Any, ids: np.ndarray, now: float) -> None:
        """Run one playbook step on its due lots (the compiled engine may run a kernel instead)."""
        step.apply(self, ids, now)

    def open_barriers(self, now: float) -> None:
        """Consolidation barriers whose feeders are all done may open (lots left play elsewhere)."""
        for theft, index in sorted(self.barriers_waiting):
            self.programs[theft].steps[index].try_release(self, theft, now)

    def wait_at_barrier(self, theft: int, step: int) -> None:
        """Lots of ``theft`` wait at the consolidation ``step``: try to open it after every batch."""
        self.barriers_waiting.add((theft, step))

    def barrier_opened(self, theft: int, step: int) -> None:
        self.barriers_waiting.discard((theft, step))

    # --- primitives used by hops and venues ----------------------------------------------------

    def cells(self, ids: np.ndarray) -> np.ndarray:
        """Outcome-book cell of each lot: ``location * 2 + traced`` (small ints; bincount takes them)."""
        return self.lots.location[ids] * _TWO + self.lots.traced[ids]

    def schedule(self, ids: np.ndarray, times: np.ndarray) -> None:
        """Make lots due at ``times`` (rounded up to the clock tick) and put them on the agenda.

        Lots due after the horizon never move within the run: they are parked, not scheduled.
        """
        times = np.asarray(times, dtype=np.float64)
        soon = times <= self.horizon
        if np.count_nonzero(soon) < len(soon):  # (count_nonzero: a fraction of the cost of .all())
            self.lots.ready[ids[~soon]] = np.inf
            ids, times = ids[soon], times[soon]
        ticks = self.agenda.tick_of(times)
        ready = ticks * self.resolution
        early = ready < self.env.now  # never before the present instant
        if np.count_nonzero(early):
            ticks[early] += 1
            ready = ticks * self.resolution
        self.lots.ready[ids] = ready
        self.agenda.schedule(ids, ticks)

    def after(self, ids: np.ndarray, now: float, delay: Distribution | None) -> None:
        """Schedule lots for their next move: confirmation of their chain plus a drawn delay."""
        t = now + self.asset_confirmation[self.lots.asset[ids]]
        if delay is not None:
            t = t + delay.sample(self.rng, len(ids))
        self.schedule(ids, t)

    def note_refusal(self, venue: Venue, ids: np.ndarray) -> None:
        """``venue`` turned these lots away (counted per venue: every offer, and every lot once)."""
        self.refusals[venue.index] += len(ids)
        self._refused[venue.index].update(ids.tolist())

    @property
    def refused_lots(self) -> np.ndarray:
        """Lots each venue turned away at least once (a lot retried daily for months counts once)."""
        return np.array([len(ids) for ids in self._refused], dtype=np.int64)

    def enter_venue(self, venue: Venue, ids: np.ndarray, now: float, hop: Any) -> None:
        """A venue hop hands lots to ``venue`` (the compiled engine may run the kind's kernel instead)."""
        venue.enter(self, ids, now, hop)

    def release_venue(self, venue: Venue, ids: np.ndarray, now: float, hop: Any) -> np.ndarray:
        """Lots are due out of ``venue``; those back with the launderer (the compiled engine may run
        the kind's kernel instead)."""
        return venue.release(self, ids, now, hop)

    def note_inflow(self, venue: Venue, ids: np.ndarray) -> None:
        """Stolen value entered ``venue`` (counted per venue, before its fees, and logged with the time)."""
        value = float(self.lots.value[ids].sum())
        self.venue_inflow[venue.index] += value
        self.inflows.append(1, time=self.env.now, venue=venue.index, value_usd=value)

    def _sample_holdings(self, step: float) -> Generator[simpy.Event, Any, None]:
        """What the launderer holds, per asset, on the timeline grid (and at the horizon): the
        wallets (lots in wallets it controls, worth something) and the value there and inside venues."""
        n_assets = len(self.asset_names)
        assets = np.arange(n_assets, dtype=np.int16)
        k = 0
        while True:
            wallets, value = self._held(n_assets)
            self.holdings.append(n_assets, time=self.env.now, asset=assets, wallets=wallets, value_usd=value)
            k += 1
            following = min(k * step, self.horizon)
            if following <= self.env.now:
                return
            yield self.env.timeout(following - self.env.now)

    def _held(self, n_assets: int) -> tuple[np.ndarray, np.ndarray]:
        """Per asset: the launderer's wallets worth something, and the value it holds (there and in venues)."""
        lots = self.lots
        held = lots.view("alive") & (lots.view("value") > 0)
        asset = lots.view("asset")
        mine = held & (lots.view("location") == int(Location.LAUNDERER))
        # A wallet is an address: lots gathered at one address (a consolidation's late arrivals) count once.
        pairs = np.unique(asset[mine].astype(np.int64) << 40 | lots.view("address")[mine])
        wallets = np.bincount((pairs >> 40).astype(np.int64), minlength=n_assets)
        return wallets, np.bincount(asset[held], weights=lots.view("value")[held], minlength=n_assets)

    def shares_with(self, venue: Venue) -> bool:
        """Traced addresses reach ``venue`` through the information-sharing channel."""
        return venue in self.sharing.venues

    def at(self, times: np.ndarray, ids: np.ndarray, action: Any, *payload: np.ndarray) -> None:
        """Call ``action(ids_due, now, *payload_due)`` at each time (rounded up to the tick).

        One simpy event per distinct tick, whatever the number of lots. ``payload`` arrays are
        aligned with ``ids`` and split the same way (e.g. the address a freeze expects).
        """
        if len(ids) == 0:
            return
        if np.ndim(times) == 0:  # one time for all (a latency after now): one event, no per-lot work
            if not times <= self.horizon:  # what would happen after the run never happens in it
                return
            tick = int(self.agenda.tick_of(times))
            self._call_at(tick, action, ids, payload)
            return
        times = np.asarray(times, dtype=np.float64)
        soon = times <= self.horizon
        if np.count_nonzero(soon) < len(soon):
            ids, times, payload = ids[soon], times[soon], tuple(p[soon] for p in payload)
            if len(ids) == 0:
                return
        self._call_groups(self.agenda.tick_of(times), action, ids, payload)

    def _call_groups(self, ticks: np.ndarray, action: Any, ids: np.ndarray, payload: tuple[np.ndarray, ...]) -> None:
        """One ``_call_at`` per distinct tick, in tick order (lots keep their order within a tick)."""
        if ticks[0] == ticks[-1] and (len(ticks) < 3 or np.count_nonzero(ticks != ticks[0]) == 0):
            self._call_at(int(ticks[0]), action, ids, payload)
        elif np.count_nonzero(ticks[1:] < ticks[:-1]) == 0:  # already in time order (a work queue): cut at the changes
            cuts = np.flatnonzero(ticks[1:] != ticks[:-1]) + 1
            bounds = np.concatenate(([0], cuts, [len(ticks)]))
            for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
                self._call_at(int(ticks[a]), action, ids[a:b], tuple(p[a:b] for p in payload))
        else:
            for tick in np.unique(ticks):
                sel = ticks == tick
                self._call_at(int(tick), action, ids[sel], tuple(p[sel] for p in payload))

    def _call_at(self, tick: int, action: Any, ids: np.ndarray, payload: tuple[np.ndarray, ...]) -> None:
        event = self.env.timeout(max(0.0, tick * self.resolution - self.env.now))
        event.callbacks.append(lambda _e: action(ids, self.env.now, *payload))

    def park(self, ids: np.ndarray) -> None:
        """Lots stay where they are, with no move due (the playbook is done, or a barrier holds them)."""
        self.lots.ready[ids] = np.inf

    def record(self, now: float, src: np.ndarray | int, dst: np.ndarray | int, lots: np.ndarray,
               values: np.ndarray, hop: str, venue: int | np.ndarray = -1, fee: np.ndarray | float = 0.0,
               asset: np.ndarray | None = None) -> None:
        """Ledger rows for lots that moved (``asset``: their assets, if the caller has read them)."""
        self.ledger.append(len(lots), time=now, src=src, dst=dst,
                           asset=self.lots.asset[lots] if asset is None else asset, amount=0.0,
                           value_usd=values, fee_usd=fee, hop=HOP_CODE[hop], lot=lots, venue=venue,
                           followed=self.lots.trail[lots])  # ANDed with "discovered by the end" in simulate()

    def hop_knowledge(self, ids: np.ndarray, hop: str, judged: bool = False, keep: np.ndarray | None = None,
                      venue: int = -1) -> None:
        """A hop was made: the lot is dark at its new address until the investigators follow it.

        At an automatic hop software follows every lot with an intact trail (the trail is lost only
        with ``1 - hop_success``); at a judgment point (``judged``) the analysts judge every lot they
        were following, and its trail survives with ``keep`` (the venue's own draw, e.g. demixing)
        or the team's success for the hop. A trail lost here may be re-identified later (``venue``:
        where it was lost, -1 for an automatic hop).
        """
        if len(ids) == 0:
            return
        lots = self.lots
        now = self.env.now
        lots.hops[ids] += 1
        lots.flagged[ids] = False
        if judged:
            lots.judged[ids] = True
        was = lots.trail[ids]
        if keep is None:
            p = self.team.success(hop, now)
            if p < 1.0:
                keep = self.team.rng.random(len(ids)) < p
        if keep is not None:
            lots.trail[ids] = was & keep
            lost = ids[was & ~keep]
            if len(lost):
                self.recovery.lost(lost, venue if judged else -1, now)
        discovered = self.discovered[lots.theft[ids]] if not self.all_discovered else np.ones(len(ids), dtype=bool)
        if self.team.instant:  # followed at once: only the lost trails go dark
            follow = lots.trail[ids] & discovered
            self.set_dark(ids[~follow])
            self.team.auto(ids[follow], now)
            return
        self.set_dark(ids)  # dark at the new address until followed
        if judged:
            lots.judge_at[ids[was & ~discovered]] = np.inf  # to be judged once the theft is discovered
            self.team.judge(ids[was & discovered], now)
        else:
            self.team.auto(ids[lots.trail[ids] & discovered], now)

    def set_traced(self, ids: np.ndarray, traced: np.ndarray) -> None:
        lots = self.lots
        changed = lots.traced[ids] != traced
        if not np.count_nonzero(changed):
            return
        ids, traced = ids[changed], traced[changed]
        base = lots.location[ids] * _TWO
        lots.traced[ids] = traced
        self.book.move(self.env.now, base + ~traced, base + traced, lots.value[ids])

    def set_dark(self, ids: np.ndarray) -> None:
        """``set_traced(ids, False)`` without building the all-False array."""
        lots = self.lots
        was = lots.traced[ids]
        if not np.count_nonzero(was):
            return
        ids = ids[was]
        lots.traced[ids] = False
        base = lots.location[ids] * _TWO
        self.book.move(self.env.now, base + np.int8(1), base, lots.value[ids])

    def network_fee(self, ids: np.ndarray) -> np.ndarray:
        """Charge each lot one transfer fee of its chain; a lot worth less than the fee is all fee."""
        lots = self.lots
        fee = np.minimum(self.asset_fee[lots.asset[ids]], lots.value[ids])
        self.spend(ids, fee)
        return fee

    def spend(self, ids: np.ndarray, amounts: np.ndarray, venue: int = -1) -> None:
        """Move part of each lot's value to fees (network fees, venue fees, haircuts, slippage).

        ``venue`` names who collected it (-1: the network's miners/validators).
        """
        lots = self.lots
        value = lots.value[ids]
        amounts = np.minimum(amounts, value)
        total = float(amounts.sum())
        if total <= 0:
            return
        if venue >= 0:
            self.venue_fees[venue] += total
        else:
            self.network_fees += total
        self._to_fees(ids, value, amounts)

    def _to_fees(self, ids: np.ndarray, value: np.ndarray, amounts: np.ndarray) -> np.ndarray:
        """Move ``amounts`` (at most ``value``, the lots' current values) to the fee cells; a lot
        left with nothing is spent. Return the values left."""
        lots = self.lots
        traced = lots.traced[ids].view(np.int8)
        left = value - amounts
        lots.value[ids] = left
        self.book.move(self.env.now, lots.location[ids] * _TWO + traced, traced + _FEE_CELL, amounts)
        emptied = left <= 0.0
        if np.count_nonzero(emptied):
            lots.retire(ids[emptied])
            left[emptied] = 0.0
        return left

    def relocate(self, ids: np.ndarray, location: Location, venue: int = -1) -> None:
        """Change the location of whole lots (e.g. into a venue, or cashed out)."""
        lots = self.lots
        traced = lots.traced[ids].view(np.int8)
        before = lots.location[ids] * _TWO + traced
        lots.location[ids] = location
        lots.venue[ids] = venue
        if location in _OUT_OF_PLAY:
            self.exits.note(self.env.now, location, venue, lots.asset[ids], lots.value[ids], before >> 1)
            lots.retire(ids, spent=False)
            if location in (Location.FROZEN, Location.SEIZED) and len(ids):
                np.maximum.at(self.last_stopped, lots.theft[ids], self.env.now)
        self.book.move(self.env.now, before, traced + np.int8(2 * location), lots.value[ids])

    def move(self, ids: np.ndarray, now: float, hop: str, dst: np.ndarray | int | None = None, venue: int = -1,
             trace: bool = True, judged: bool = False, keep: np.ndarray | None = None) -> None:
        """Send each lot whole to a new address (fresh launderer wallets unless ``dst`` is given).

        ``trace=False`` for deposits to a venue's labelled address, which analysts always see;
        ``judged`` for a judgment point (``keep``: the venue's own draw of the surviving trails).
        The hottest path of the model, so it reads each column once and does in one pass what
        :meth:`network_fee` and :meth:`hop_knowledge` would do one after the other.
        """
        if len(ids) == 0:
            return
        lots = self.lots
        fee, total, asset, value, src = self._transfer_fees(ids)
        if dst is None:
            dst = self.addresses.new(len(ids), self.asset_chain[asset], Role.LAUNDERER)
        if total > 0:
            self.network_fees += total
            value = self._to_fees(ids, value, fee)
        lots.address[ids] = dst
        if trace:
            self.hop_knowledge(ids, hop, judged, keep, venue)
        self.record(now, src, dst, ids, value, hop, venue, fee, asset)

    def _transfer_fees(self, ids: np.ndarray) -> tuple[np.ndarray, float, np.ndarray, np.ndarray, np.ndarray]:
        """One transfer's network fee per lot (a lot worth less than the fee is all fee) and their
        sum, with the lots' assets, values and addresses."""
        lots = self.lots
        asset = lots.asset[ids]
        value = lots.value[ids]
        fee = np.minimum(self.asset_fee[asset], value)
        return fee, float(fee.sum()), asset, value, lots.address[ids]

    def divide(self, parents: np.ndarray, counts: np.ndarray, values: np.ndarray, requeue: bool = True,
               owner: np.ndarray | None = None) -> np.ndarray:
        """Cut each parent lot into ``counts[i]`` lots at the same address, worth ``values`` (no transfer).

        ``values`` has ``counts.sum()`` entries; the last piece of each parent takes whatever is left
        so that the pieces add up to the parent exactly. Children inherit everything but the value.
        """
        lots = self.lots
        values = np.array(values, dtype=np.float64)
        last = counts.cumsum() - 1
        firsts = np.concatenate(([0], last[:-1] + 1))
        others = np.add.reduceat(values, firsts) - values[last]
        values[last] = np.maximum(lots.value[parents] - others, 0.0)  # (round-off of uneven shares: never below 0)
        children = lots.add_copies(parents.repeat(counts) if owner is None else owner, values)
        # Parents hand their value to the children: same cells, so the book does not change.
        lots.retire(parents)
        # A follow-up still pending on a parent would be lost with it: queue the pieces instead
        # (not when the pieces move on at once, which queues them anyway).
        if not requeue:
            return children
        pending = lots.trail[children] & ~lots.traced[children]
        if not self.all_discovered:
            pending &= self.discovered[lots.theft[children]]
        if np.count_nonzero(pending):
            self.team.auto(children[pending], self.env.now)  # (a pending judgment is kept: judge_at is inherited)
        return children

    def fork(self, parents: np.ndarray, counts: np.ndarray, shares: np.ndarray, now: float, hop: str,
             src: np.ndarray | int | None = None, venue: int = -1, judged: bool = False) -> np.ndarray:
        """Split each parent lot into ``counts[i]`` children sent to fresh wallets, by ``shares``.

        ``shares`` has ``counts.sum()`` entries, each parent's block summing to 1. Each child pays
        one network fee and is one ledger row (from ``src`` if given, else the parent's address).
        """
        owner = parents.repeat(counts)
        children = self.divide(parents, counts, self.lots.value[owner] * shares, requeue=False, owner=owner)
        if src is not None:
            self.lots.address[children] = src
        self.move(children, now, hop, venue=venue, judged=judged)
        return children

    def pay_out(self, venue: Venue, ids: np.ndarray, now: float, hop_kind: str,
                keep: np.ndarray | None = None) -> np.ndarray:
        """``venue`` withdraws the living lots among ``ids`` to fresh launderer wallets: one transfer
        each from its address, a judgment point if the venue is one (``keep``: the venue's own
        draw of the surviving trails, one per lot of ``ids``). Return those still alive."""
        lots = self.lots
        alive = lots.alive[ids]
        ids = ids[alive]
        lots.address[ids] = venue.address
        self.relocate(ids, Location.LAUNDERER)
        self.move(ids, now, hop_kind, venue=venue.index, judged=venue.judgment_point,
                  keep=None if keep is None else keep[alive])
        return ids[lots.alive[ids]]

    def merge(self, ids: np.ndarray, group: np.ndarray, n_groups: int, asset: np.ndarray, step: int,
              now: float, fee: np.ndarray, wallets: np.ndarray) -> np.ndarray:
        """Consolidate lots into ``n_groups`` wallets at the addresses ``wallets``: lot ``ids[i]``
        goes to wallet ``group[i]``, which holds ``asset[group]``; return the merged lots that are
        worth something (at playbook ``step``).

        A merged lot is traced (and keeps a trail) if any lot merged into it was — analysts who
        know one input know the wallet — and its venue history is the OR of its inputs'. Each
        input's transfer is a ``consolidate`` ledger row (``fee``: the network fee it paid); the
        inputs leave play.
        """
        lots = self.lots
        value = np.bincount(group, weights=lots.value[ids], minlength=n_groups)
        trail = np.bincount(group, weights=lots.trail[ids], minlength=n_groups) > 0
        traced = np.bincount(group, weights=lots.traced[ids], minlength=n_groups) > 0
        order = np.argsort(group, kind="stable")
        starts = np.searchsorted(group[order], np.arange(n_groups))
        touched = np.bitwise_or.reduceat(lots.touched[ids][order], starts)
        # Knowledge still to come: the latest pending judgment, the earliest re-identification.
        judge_at = np.maximum.reduceat(np.where(lots.trail[ids], lots.judge_at[ids], -np.inf)[order], starts)
        recover_at = np.minimum.reduceat(lots.recover_at[ids][order], starts)
        lost_at = np.maximum.reduceat(lots.lost_at[ids][order], starts)  # a venue before an automatic hop
        judged = np.logical_and.reduceat(lots.judged[ids][order], starts)  # in view while any input is
        merged = lots.add(n_groups, value=value, asset=asset, address=wallets, location=int(Location.LAUNDERER),
                          trail=trail, traced=traced, theft=lots.theft[ids[0]], step=step, touched=touched,
                          judge_at=judge_at, recover_at=recover_at, lost_at=lost_at, judged=judged)
        # Value moves from each input's cell to its merged lot's cell (knowledge may resume).
        self.book.move(now, self.cells(ids), self.cells(merged)[group], lots.value[ids])
        self.record(now, lots.address[ids], wallets[group], ids, lots.value[ids], "consolidate", -1, fee)
        lots.retire(ids)
        empty = value <= 0
        lots.alive[merged[empty]] = False
        return merged[~empty]

    def resume_trail(self, ids: np.ndarray, now: float) -> None:
        """Analysts pick a lost trail up again (e.g. from a KYC'd venue's records): software
        follows the lot from there."""
        if len(ids) == 0:
            return
        lots = self.lots
        lots.trail[ids] = True
        lots.judge_at[ids] = -np.inf
        lots.recover_at[ids] = np.inf
        discovered = ids[self.discovered[lots.theft[ids]]]
        self.team.auto(discovered, now)

    def record_honest(self, now: float, src: np.ndarray | int, dst: np.ndarray | int, asset: int, amount: float,
                      venue: int) -> None:
        """Transfers of honest users (no stolen value): ledger rows with ``lot == -1`` (one of ``src``, ``dst`` an array).
        Each pays its chain's network fee, like a launderer's transfer (on top: a pool takes exact denominations)."""
        n = len(src) if np.ndim(src) else len(dst)  # type: ignore[arg-type]
        self.ledger.append(n, time=now, src=src, dst=dst, asset=asset, amount=0.0,
                           value_usd=amount * self.asset_price[asset], fee_usd=float(self.asset_fee[asset]), hop=HOP_CODE["honest"],
                           lot=-1, venue=venue, followed=False)
