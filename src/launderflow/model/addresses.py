"""Address ids: every wallet, venue and sink gets an integer, with its chain and role.

Millions of addresses are just a counter and one (count, chain, role) block per request — a hop
asks for all its fresh wallets at once — so nothing is written per wallet while the model runs;
:meth:`AddressBook.arrays` spreads the blocks into per-address columns when they are wanted.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class Role(IntEnum):
    VICTIM = 0
    LAUNDERER = 1
    VENUE = 2
    OFF_CHAIN = 3
    FEE_SINK = 4
    HONEST = 5  # users of venues who have nothing to do with the theft


class AddressBook:
    """Hands out address ids in blocks and remembers each one's chain and role."""

    OFF_CHAIN = 0  # value that left the chain
    FEE_SINK = 1  # miners, relayers, venue fee wallets

    def __init__(self) -> None:
        self._blocks: list[tuple[int, int | np.ndarray, int]] = []  # (count, chain(s), role) per call
        self._next = 0
        self.new(1, chain=-1, role=Role.OFF_CHAIN)
        self.new(1, chain=-1, role=Role.FEE_SINK)

    def __len__(self) -> int:
        return self._next

    def new(self, n: int, chain: int | np.ndarray, role: Role) -> np.ndarray:
        """``n`` fresh address ids on ``chain`` (one per address, or one for all)."""
        ids = np.arange(self._next, self._next + n, dtype=np.int64)
        self._blocks.append((n, chain, int(role)))  # a reference, not a copy: new() runs once per hop
        self._next += n
        return ids

    def arrays(self) -> dict[str, np.ndarray]:
        """Every address with its chain and role, as columns."""
        counts = np.array([b[0] for b in self._blocks], dtype=np.int64)
        chain = np.concatenate([np.broadcast_to(np.asarray(b[1], dtype=np.int16), (b[0],)) for b in self._blocks])
        role = np.repeat(np.array([b[2] for b in self._blocks], dtype=np.int8), counts)
        return {"address": np.arange(self._next, dtype=np.int64), "chain": chain, "role": role}
