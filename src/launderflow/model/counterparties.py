"""Honest wallets that receive the launderer's value: P2P buyers and merchants.

Stolen value does not only reach venues and the launderer's own wallets. An OTC desk that is a P2P
market settles on chain: the launderer's coins go to the honest buyer who paid cash for them; a
peel chain's peeled pieces often pay for goods and services. Those honest people then hold stolen
value and spend it on like any honest user. The rule (docs/model.md, "Honest counterparties"):

* **P2P buyers** — at an OTC desk whose honest flow sets ``p2p``, each lot the launderer cashes out
  there is, with that chance, a P2P trade: its ledger row goes from the desk to an honest buyer's
  wallet (a recent honest recipient on the lot's chain, a fresh one while there are none) instead
  of off the chain. For the stolen value nothing changes: the launderer has the cash, the lot is
  cashed out as before.
* **merchants** — each piece a peel chain peels off is, with chance ``honest.merchants``, spent at
  once with an honest merchant: one more transfer (with its network fee) from the piece's wallet
  to the merchant's, and the rest of the piece counts as *cashed out* (the launderer got goods or
  services for it) instead of moving on in the playbook.

Either way the receiving wallet joins the honest recipients honest deposits are paid from, so the
stolen value it received flows on in honest hands — the rows a detection model finds hardest (the
export labels the payment illicit and the receiver's later transfers licit). A receipt of *traced*
value flags the wallet: its honest deposits count as exposed (frozen by an exchange that acts on
alerts, like deposits funded from a commingled venue holding traced stolen value). Every draw
comes from the stream ``honest:counterparties``; without an ``honest`` section nothing here exists.
"""

from __future__ import annotations

import numpy as np

from .addresses import AddressBook
from .honest_wallets import Wallets
from .ops import Venue, World
from .states import Location

MERCHANTS = -1  # the tally's key for payments to merchants (no venue)


class Counterparties:
    """Pays honest wallets out of the launderer's cash-outs (P2P) and peeled pieces (merchants)."""

    def __init__(self, world: World, wallets: Wallets, p2p: dict[int, float], merchants: float):
        self.world = world
        self.wallets = wallets
        self.p2p = p2p  # venue index -> share of its cash-outs paid to honest buyers
        self.merchants = merchants
        self.rng = world.stream("honest:counterparties")
        self.tally: dict[int, np.ndarray] = {}  # venue (or MERCHANTS) -> [receipts, USD, traced receipts] since last read

    def _receivers(self, ids: np.ndarray) -> np.ndarray:
        """One honest wallet per lot, on the lot's chain."""
        world = self.world
        chain = world.asset_chain[world.lots.asset[ids]]
        out = np.empty(len(ids), dtype=np.int64)
        for c in np.unique(chain):
            mine = chain == c
            out[mine] = self.wallets.draw(world, self.rng, int(c), int(np.count_nonzero(mine)))
            self.wallets.add(int(c), out[mine])
        return out

    def _note(self, key: int, ids: np.ndarray) -> None:
        lots = self.world.lots
        row = self.tally.setdefault(key, np.zeros(3))
        row += (len(ids), float(lots.value[ids].sum()), float(np.count_nonzero(lots.traced[ids])))

    def buyers(self, venue: Venue, ids: np.ndarray) -> tuple[np.ndarray | int, np.ndarray | float]:
        """Where the lots ``venue`` cashes out go — an honest buyer's wallet for the P2P trades (which
        pay the chain's network fee), else off the chain — and the fee each paid."""
        share = self.p2p.get(venue.index, 0.0)
        if share <= 0 or len(ids) == 0:
            return AddressBook.OFF_CHAIN, 0.0
        paid = self.rng.random(len(ids)) < share
        dst = np.full(len(ids), AddressBook.OFF_CHAIN, dtype=np.int64)
        fee = np.zeros(len(ids))
        if np.count_nonzero(paid):
            dst[paid] = self._receivers(ids[paid])
            fee[paid] = self.world.network_fee(ids[paid])
            self._note(venue.index, ids[paid])
        return dst, fee

    def spend_peeled(self, ids: np.ndarray, now: float) -> np.ndarray:
        """Peeled pieces spent with merchants leave play (cashed out); return the pieces that move on."""
        if self.merchants <= 0 or len(ids) == 0:
            return ids
        world, lots = self.world, self.world.lots
        paid = self.rng.random(len(ids)) < self.merchants
        spent = ids[paid]
        src = lots.address[spent]
        fee = world.network_fee(spent)
        alive = lots.alive[spent]
        spent, src, fee = spent[alive], src[alive], fee[alive]
        if len(spent):
            shops = self._receivers(spent)
            world.record(now, src, shops, spent, lots.value[spent], "cash_out", -1, fee)
            self._note(MERCHANTS, spent)
            world.relocate(spent, Location.CASHED_OUT)
        return ids[~paid]

    def take(self) -> dict[int, np.ndarray]:
        """The receipts since the last call (and start afresh)."""
        out, self.tally = self.tally, {}
        return out


def p2p_shares(world: World, spec: object) -> dict[int, float]:
    """Venue index -> P2P share, from the honest section's flows."""
    shares: dict[int, float] = {}
    for key, flow in (getattr(spec, "venues", {}) or {}).items():
        if flow.p2p > 0:
            index = world.venue(flow.venue or key).index
            shares[index] = max(shares.get(index, 0.0), float(flow.p2p))
    return shares

