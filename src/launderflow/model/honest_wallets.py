"""The honest wallets that pay honest deposits: the most recent honest recipients on each chain.

Its own module because both the honest flows (``honest.py``) and the launderer's honest
counterparties (``counterparties.py``) add to and draw from the same rings.
"""

from __future__ import annotations

import numpy as np

from .addresses import Role
from .ops import World

WALLETS = 1 << 16  # honest recipients remembered per chain (the wallets honest deposits come from)


class Wallets:
    """The most recent honest recipients on each chain (a ring of ``WALLETS`` addresses per chain):
    an honest deposit comes from one of them, drawn at random, so honest wallets have a history
    (they received before they pay) and some pay more than once, like real users'."""

    def __init__(self) -> None:
        self.rings: dict[int, np.ndarray] = {}
        self.filled: dict[int, int] = {}
        self.head: dict[int, int] = {}

    def add(self, chain: int, addresses: np.ndarray) -> None:
        ring = self.rings.setdefault(chain, np.empty(WALLETS, dtype=np.int64))
        addresses = addresses[-WALLETS:]
        head = self.head.get(chain, 0)
        slots = (head + np.arange(len(addresses))) % WALLETS
        ring[slots] = addresses
        self.head[chain] = int((head + len(addresses)) % WALLETS)
        self.filled[chain] = min(WALLETS, self.filled.get(chain, 0) + len(addresses))

    def draw(self, world: World, rng: np.random.Generator, chain: int, n: int) -> np.ndarray:
        """``n`` paying wallets: recent recipients on ``chain``, or fresh ones while there are none."""
        filled = self.filled.get(chain, 0)
        if filled == 0:
            return world.addresses.new(n, chain, Role.HONEST)
        return self.rings[chain][rng.integers(0, filled, n)]
