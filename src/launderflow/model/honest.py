"""Honest users at exchanges, DEXes, bridges, OTC desks and custodial mixers — and what policy costs them.

Driven by the scenario's optional ``honest:`` section (absent: nothing here runs, and no other
component's draws change: every draw comes from the named stream ``honest:<venue>``). Like a pool
mixer's background traffic, every ``step`` each listed venue receives a Poisson number of honest
deposits with lognormal USD amounts, and each honest user's value inside leaves with probability
``1 - exp(-step / holding)`` (all of it in the same step when ``holding`` is 0: a swap, a
crossing), minus the venue's fee, to a fresh honest wallet — drawn as whole arrays and written to
the ledger in bulk (``lot == -1``). A deposit is paid from a recent honest recipient's wallet on its
chain (:class:`Wallets`), fresh ones only until there are some. Honest value is not stolen value: it never enters the outcome
book, so conservation of the stolen value is untouched.

How policy reaches the innocent (the rule, also in docs/model.md):

* **displaced** — a designation of the venue (or an ``operators`` action on it) scales its honest
  arrivals by the same factor as a pool mixer's (``1 - volume_drop``, creeping back to
  ``recovery_level`` over ``recovery_time``); the users thinned out are displaced. Pool mixers draw
  their own honest traffic: their rows in the log are expectations read from the mixer (deposits
  kept away by its ``honest_rate``, withdrawals, the honest notes' value inside);
* **refused by a halt** — while the venue is halted or shut down, every honest arrival is refused
  (and nobody's value comes out);
* **refused by screening** — each honest deposit is funded by one honest withdrawal of the last
  ``memory``, drawn at random in proportion to the venues' honest withdrawals (pool mixers' own
  honest users included). A venue complying with a designation refuses deposits funded from the
  designated venue (with its ``compliance``);
* **exposed** — an honest withdrawal from a commingled venue (a custodial or pool mixer: payouts
  come from the wallets that hold everyone's funds) while that venue holds traced stolen value
  reaches a wallet that address-based screening flags;
* **frozen** — an exchange that freezes flagged funds and receives the sharing channel's alerts
  freezes honest deposits funded by an exposed withdrawal (with its ``compliance``);
* **seized** — shutting a commingled venue down seizes the honest value inside with the stolen
  value; a seizure that takes part of the stolen value inside it takes the same part of the honest
  value (a custodian's wallets are seized, not one user's). A shut-down venue that is not
  commingled keeps its users' value locked: counted as frozen.

Every step leaves one row per venue in :attr:`HonestTraffic.log`, the source of the collateral
metrics (``metrics.py``).
"""

from __future__ import annotations

import math
from collections.abc import Generator
from typing import Any

import numpy as np
import simpy

from ..scenario.schema import HOP_KINDS
from .addresses import AddressBook, Role
from .columns import ColumnBuffer
from .counterparties import MERCHANTS, Counterparties, p2p_shares
from .honest_wallets import Wallets
from .ops import Venue, World
from .states import Location

COMMINGLED_KINDS = ("custodial_mixer", "pool_mixer")
LOG_COLUMNS: dict[str, type] = {
    "time": np.float64, "venue": np.int16,
    "arrivals": np.float64,  # honest users who would have come, undisturbed
    "displaced": np.float64, "displaced_usd": np.float64,  # thinned out by a designation or operators action
    "refused_halt": np.float64, "refused_halt_usd": np.float64,
    "refused_screen": np.float64, "refused_screen_usd": np.float64,
    "frozen": np.float64, "frozen_usd": np.float64,
    "seized_usd": np.float64,
    "deposits": np.float64, "deposits_usd": np.float64,
    "withdrawals": np.float64, "withdrawals_usd": np.float64,
    "exposed": np.float64, "exposed_usd": np.float64,
    "held_usd": np.float64,  # honest value inside the venue after the step
    "tainted": np.float64, "tainted_usd": np.float64,  # stolen value paid to honest wallets (P2P buyers; venue -1: merchants)
}


def rate_factor(world: World, venue: Venue, now: float) -> float:
    """Multiplier on the venue's honest arrivals from designations and operators actions applied to it."""
    factor = 1.0
    for action in getattr(world, "interventions", ()):
        spec = action.spec
        if getattr(spec, "venue", None) != venue.name or action.applied_at is None:
            continue
        if spec.kind == "designation":
            low = 1.0 - spec.volume_drop
            progress = 1.0 if spec.recovery_time <= 0 else min(1.0, (now - action.applied_at) / spec.recovery_time)
            factor *= low + (spec.recovery_level - low) * progress
        elif spec.kind == "operators":
            factor *= spec.honest_rate_factor
    return factor


HONEST_HOP = HOP_KINDS.index("honest")


def record(world: World, now: float, src: np.ndarray | int, dst: np.ndarray | int, asset: int, usd: np.ndarray,
           venue: int, on_chain: bool = True) -> np.ndarray:
    """Ledger rows of honest transfers of ``usd`` each in ``asset``: each pays its chain's network fee
    (like every launderer transfer; deducted from what arrives; none off the chain). Return what arrived, in USD."""
    fee = np.minimum(float(world.asset_fee[asset]) if on_chain else 0.0, usd)
    value = usd - fee
    world.ledger.append(len(usd), time=now, src=src, dst=dst, asset=asset, amount=0.0, value_usd=value,
                        fee_usd=fee, hop=HONEST_HOP, lot=-1, venue=venue, followed=False)
    return value


def amounts(rng: np.random.Generator, n: int, spec: Any) -> np.ndarray:
    """``n`` lognormal USD amounts (median ``spec.median_usd``, spread ``spec.sigma``); a share
    ``spec.large_share`` of them from large holders (median ``spec.large_median_usd``), drawn only
    when that share is set."""
    if n == 0:
        return np.empty(0)
    usd = rng.lognormal(math.log(spec.median_usd), spec.sigma, n)
    if spec.large_share > 0:
        large = rng.random(n) < spec.large_share
        usd[large] = rng.lognormal(math.log(spec.large_median_usd), spec.sigma, int(np.count_nonzero(large)))
    return usd


class VenueFlow:
    """One venue's honest users: arrivals, the value they hold inside, their withdrawals."""

    def __init__(self, world: World, venue: Venue, spec: Any, wallets: Wallets, key: str):
        self.world = world
        self.venue = venue
        self.spec = spec
        self.rng = world.stream(f"honest:{key}")  # (the entry's name: the venue's, unless it sets venue:)
        self.asset = world.asset_index[spec.asset]
        self.to = world.asset_index[spec.to or spec.asset]
        self.price_in = float(world.asset_price[self.asset])
        self.price_out = float(world.asset_price[self.to])
        self.chain_in = int(world.asset_chain[self.asset])
        self.chain_out = int(world.asset_chain[self.to])
        self.rate = spec.users_per_day / 24.0
        self.commingled = venue.kind in COMMINGLED_KINDS if spec.commingled is None else spec.commingled
        self.cash_out = (0.5 if venue.kind == "otc" else 0.0) if spec.cash_out is None else spec.cash_out  # share sold for cash
        self.inside = np.empty(0)  # USD of each honest user's value inside
        self.stolen_inside = 0.0  # stolen value inside at the last step (a seizure takes the same part of honest value)
        self.seized_seen = 0.0
        self.closed_seen = False
        self.wallets = wallets

    def amounts(self, n: int) -> np.ndarray:
        return amounts(self.rng, n, self.spec)

    def withdraw(self, now: float, usd: np.ndarray, exposed: bool) -> dict[str, float]:
        """Honest value leaves to fresh honest wallets (or off the chain, at a desk that pays cash),
        minus the venue's fee (an OTC desk's haircut)."""
        world, venue = self.world, self.venue
        out = usd * (1.0 - float(getattr(venue, "haircut", getattr(venue, "fee", 0.0))))
        cash = np.zeros(len(out), dtype=bool)
        if len(out) and self.cash_out >= 1.0:
            cash[:] = True
        elif len(out) and self.cash_out > 0.0:
            cash = self.rng.random(len(out)) < self.cash_out
        if np.count_nonzero(cash):  # sellers paid cash: off the chain, no network fee
            out[cash] = record(world, now, venue.address, AddressBook.OFF_CHAIN, self.to, out[cash], venue.index,
                               on_chain=False)
        if np.count_nonzero(~cash):
            users = world.addresses.new(int(np.count_nonzero(~cash)), self.chain_out, Role.HONEST)
            out[~cash] = record(world, now, venue.address, users, self.to, out[~cash], venue.index)
            self.wallets.add(self.chain_out, users)
        n, total = float(len(out)), float(out.sum())
        return {"withdrawals": n, "withdrawals_usd": total,
                "exposed": n if exposed else 0.0, "exposed_usd": total if exposed else 0.0}


class WalletTransfers:
    """Honest wallet-to-wallet payments in one asset: every step a Poisson number of them, each a
    lognormal amount from a recent honest recipient (a venue's withdrawal, a P2P buyer, an earlier
    payee) to a fresh honest wallet, which joins the recipients. Not at a venue: no policy reaches
    them, so they leave no log row; they are what makes a plain transfer as common among the
    innocent as among the launderer's hops."""

    def __init__(self, world: World, asset: str, spec: Any, wallets: Wallets):
        self.world = world
        self.spec = spec
        self.wallets = wallets
        self.rng = world.stream(f"honest:transfers:{asset}")
        self.asset = world.asset_index[asset]
        self.chain = int(world.asset_chain[self.asset])

    def step(self, now: float, hours: float) -> None:
        n = int(self.rng.poisson(self.spec.per_day / 24.0 * hours))
        if n == 0:
            return
        usd = amounts(self.rng, n, self.spec)
        src = self.wallets.draw(self.world, self.rng, self.chain, n)
        dst = self.world.addresses.new(n, self.chain, Role.HONEST)
        record(self.world, now, src, dst, self.asset, usd, -1)
        self.wallets.add(self.chain, dst)


class HonestTraffic:
    """Every listed venue's honest users, stepped together (one simpy process)."""

    def __init__(self, world: World, spec: Any):
        self.world = world
        self.spec = spec
        self.step = spec.step
        self.wallets = Wallets()
        self.flows = [VenueFlow(world, world.venue(flow.venue or key), flow, self.wallets, key)
                      for key, flow in spec.venues.items()]
        self.transfers = [WalletTransfers(world, asset, flow, self.wallets) for asset, flow in spec.transfers.items()]
        p2p = p2p_shares(world, spec)
        self.counterparties = Counterparties(world, self.wallets, p2p, spec.merchants) if p2p or spec.merchants > 0 else None
        world.counterparties = self.counterparties
        n = len(world.venues)
        k = max(1, int(math.ceil(spec.memory / spec.step - 1e-9)))
        # honest withdrawals per venue, the last k steps; the last column: honest wallets the launderer paid
        self.window = np.zeros((k, n + 1))
        self.window_exposed = np.zeros((k, n + 1))
        self.log = ColumnBuffer(LOG_COLUMNS)
        self.steps = 0
        world.process(self._run())

    # --- the funding pool (screening and exposure) ----------------------------------------------

    def _linked_share(self, venue: Venue, per_venue: np.ndarray, total: float, exposed: float) -> tuple[float, float]:
        """Shares of recent honest withdrawals (``per_venue``, summed over the window) that came from
        venues ``venue`` refuses links to, and that were exposed."""
        if total <= 0:
            return 0.0, 0.0
        links = int(getattr(venue, "sanctioned_links", 0))
        linked = sum(float(per_venue[i]) for i in range(len(per_venue)) if links >> i & 1) if links else 0.0
        return linked / total, exposed / total

    def _stolen_inside(self) -> tuple[np.ndarray, np.ndarray]:
        """Per venue: stolen value inside now, and whether some of it is traced (the address is flagged)."""
        lots = self.world.lots
        n = len(self.world.venues)
        inside = lots.view("alive") & (lots.view("location") == int(Location.VENUE)) & (lots.view("value") > 0)
        venue = lots.view("venue")[inside].astype(np.int64)
        value = np.bincount(venue, weights=lots.view("value")[inside], minlength=n)[:n]
        traced = np.bincount(venue, weights=lots.view("traced")[inside], minlength=n)[:n] > 0
        return value, traced

    def _pool_mixers(self, now: float, row: np.ndarray, exposed_row: np.ndarray, traced: np.ndarray) -> None:
        """Pool mixers' own honest users this step, in expectation: their withdrawals fund deposits
        elsewhere, and the users a designation or operators action kept away are displaced (one log
        row per pool mixer; the mixer draws its own traffic, this reads it)."""
        for venue in self.world.venues:
            notes = getattr(venue, "honest", None)
            if venue.kind != "pool_mixer" or notes is None:
                continue
            leave = 1.0 - math.exp(-self.step * (1.0 / venue.holding + venue.exodus))
            out = float(np.sum(notes)) * leave
            row[venue.index] += out
            exposed = out if traced[venue.index] else 0.0
            exposed_row[venue.index] += exposed
            rates = venue.pool_rate * self.step  # expected deposits per pool, undisturbed
            usd = venue.denominations * venue.price
            kept = 1.0 - min(1.0, venue.honest_rate)
            rec = {name: 0.0 for name in LOG_COLUMNS if name not in ("time", "venue")}
            rec.update(arrivals=float(rates.sum()), displaced=float(rates.sum()) * kept,
                       displaced_usd=float(rates @ usd) * kept, withdrawals=out, exposed=exposed,
                       held_usd=float(notes @ usd))
            self.pool_rows.append((venue.index, rec))

    # --- one step ------------------------------------------------------------------------------

    def _run(self) -> Generator[simpy.Event, Any, None]:
        world = self.world
        while True:
            yield world.timeout(self.step)
            now = world.now
            stolen, traced = self._stolen_inside()
            row = np.zeros(self.window.shape[1])
            exposed_row = np.zeros_like(row)
            records = [self._withdrawals(flow, now, stolen, traced) for flow in self.flows]
            for flow, rec in zip(self.flows, records):
                row[flow.venue.index] += rec["withdrawals"]
                exposed_row[flow.venue.index] += rec["exposed"]
            self.pool_rows: list[tuple[int, dict[str, float]]] = []
            self._pool_mixers(now, row, exposed_row, traced)
            self._receipts(records, row, exposed_row)
            for transfers in self.transfers:
                transfers.step(now, self.step)
            slot = self.steps % len(self.window)
            self.window[slot], self.window_exposed[slot] = row, exposed_row
            self.steps += 1
            per_venue, exposed = self.window.sum(axis=0), float(self.window_exposed.sum())
            total = float(per_venue.sum())
            mine = np.array([flow.venue.index for flow in self.flows], dtype=np.int64)
            out, out_exposed = np.zeros_like(row), np.zeros_like(row)
            for flow, rec in zip(self.flows, records):
                for key, value in self._arrivals(flow, now, traced, per_venue, total, exposed).items():
                    rec[key] += value
                out[flow.venue.index] += rec["withdrawals"]  # same-step withdrawals (swaps) fund too
                out_exposed[flow.venue.index] += rec["exposed"]
                rec["held_usd"] = float(flow.inside.sum())
            self.window[slot, mine], self.window_exposed[slot, mine] = out[mine], out_exposed[mine]
            rows = [(flow.venue.index, rec) for flow, rec in zip(self.flows, records)] + self.pool_rows
            columns = {name: np.array([rec[name] for _, rec in rows]) for name in LOG_COLUMNS if name not in ("time", "venue")}
            self.log.append(len(rows), time=now, venue=np.array([i for i, _ in rows]), **columns)

    def _receipts(self, records: list[dict[str, float]], row: np.ndarray, exposed_row: np.ndarray) -> None:
        """Stolen value the launderer paid to honest wallets since the last step: in the log (the P2P
        desk's row; merchants: a row of venue -1) and in the funding window's last column (traced
        receipts flag the wallets, so deposits they fund are exposed)."""
        if self.counterparties is None:
            return
        tally = self.counterparties.take()
        total = sum(tally.values(), np.zeros(3))
        row[-1] += total[0]
        exposed_row[-1] += total[2]
        for flow, rec in zip(self.flows, records):
            got = tally.pop(flow.venue.index, None)  # (one row per venue takes them: its first entry)
            if got is not None:
                rec["tainted"], rec["tainted_usd"] = float(got[0]), float(got[1])
        if self.spec.merchants > 0:
            got = tally.get(MERCHANTS, np.zeros(3))
            rec = {name: 0.0 for name in LOG_COLUMNS if name not in ("time", "venue")}
            rec["tainted"], rec["tainted_usd"] = float(got[0]), float(got[1])
            self.pool_rows.append((MERCHANTS, rec))

    def _withdrawals(self, flow: VenueFlow, now: float, stolen: np.ndarray, traced: np.ndarray) -> dict[str, float]:
        venue = flow.venue
        i = venue.index
        rec = {name: 0.0 for name in LOG_COLUMNS if name not in ("time", "venue")}
        exposed = flow.commingled and bool(traced[i])
        seized = float(venue.seized_usd) - flow.seized_seen
        flow.seized_seen = float(venue.seized_usd)
        if venue.closed and not flow.closed_seen:  # shut down: the honest value inside goes with it
            flow.closed_seen = True
            rec["seized_usd" if flow.commingled else "frozen_usd"] = float(flow.inside.sum())
            flow.inside = np.empty(0)
        elif seized > 0 and flow.commingled and flow.stolen_inside > 0 and len(flow.inside):
            share = min(1.0, seized / flow.stolen_inside)
            taken = flow.rng.random(len(flow.inside)) < share
            rec["seized_usd"] = float(flow.inside[taken].sum())
            flow.inside = flow.inside[~taken]
        flow.stolen_inside = float(stolen[i])
        if venue.halted or venue.closed or flow.spec.holding <= 0 or not len(flow.inside):
            return rec
        leave = flow.rng.random(len(flow.inside)) < 1.0 - math.exp(-self.step / flow.spec.holding)
        rec.update(flow.withdraw(now, flow.inside[leave], exposed))
        flow.inside = flow.inside[~leave]
        return rec

    def _arrivals(self, flow: VenueFlow, now: float, traced: np.ndarray, per_venue: np.ndarray, total: float,
                  exposed_total: float) -> dict[str, float]:
        world, venue, rng = self.world, flow.venue, flow.rng
        factor = rate_factor(world, venue, now)
        would = int(rng.poisson(flow.rate * self.step * max(factor, 1.0)))
        come = would if factor >= 1.0 else int(rng.binomial(would, factor))
        halted = venue.halted or venue.closed
        linked, exposed = self._linked_share(venue, per_venue, total, exposed_total)
        compliance = float(getattr(venue, "compliance", 1.0))
        screened = 0 if halted or linked <= 0 else int(rng.binomial(come, min(1.0, linked * compliance)))
        freezes = venue.acts_on_alerts and bool(getattr(venue, "freezes", False)) and world.shares_with(venue)
        left = 0 if halted else come - screened
        frozen = int(rng.binomial(left, min(1.0, exposed * compliance))) if freezes and exposed > 0 and left else 0
        usd = flow.amounts(would)
        a = would - come
        b = a + (come if halted else 0)
        c = b + screened
        d = c + frozen
        displaced, refused_halt, refused_screen, frozen_usd, deposited = usd[:a], usd[a:b], usd[b:c], usd[c:d], usd[d:]
        arrived = usd[c:]  # frozen and deposited users both made their deposits
        rec = {"arrivals": float(would), "displaced": float(len(displaced)), "displaced_usd": float(displaced.sum()),
               "refused_halt": float(len(refused_halt)), "refused_halt_usd": float(refused_halt.sum()),
               "refused_screen": float(len(refused_screen)), "refused_screen_usd": float(refused_screen.sum()),
               "deposits": float(len(arrived)), "deposits_usd": float(arrived.sum())}
        if len(arrived):
            users = flow.wallets.draw(world, rng, flow.chain_in, len(arrived))
            arrived = record(world, now, users, venue.address, flow.asset, arrived, venue.index)
            if frozen:
                frozen_usd = arrived[:frozen]
            deposited = arrived[frozen:]
        rec["deposits_usd"] = float(arrived.sum())  # (what arrived: after the network fees)
        rec["frozen"] = float(frozen)
        rec["frozen_usd"] = float(frozen_usd.sum())
        if flow.spec.holding <= 0:
            rec.update(flow.withdraw(now, deposited, flow.commingled and bool(traced[venue.index])))
        else:
            flow.inside = np.concatenate([flow.inside, deposited])
        return rec


def build_honest(world: World) -> HonestTraffic | None:
    """The scenario's honest traffic, or None when it has no ``honest`` section."""
    spec = getattr(world.scenario, "honest", None)
    return None if spec is None else HonestTraffic(world, spec)
