"""Lots: parcels of stolen value, stored as parallel numpy arrays (one row per lot).

A lot is value of one asset sitting at one address. Hops act on many lots at once by index
arrays; a split turns one row into many new rows, a consolidation many rows into few. Rows are
never deleted — a spent lot keeps its row with ``value == 0`` and ``alive == False`` — so a lot id
in the ledger always means the same row.
"""

from __future__ import annotations

import numpy as np

from .states import Location

_FIELDS: dict[str, tuple[type, object]] = {
    "value": (np.float64, 0.0),  # USD at the scenario's prices: the conserved quantity
    "asset": (np.int16, -1),
    "address": (np.int64, -1),
    "location": (np.int8, int(Location.LAUNDERER)),
    "venue": (np.int16, -1),  # venue holding the lot when location == VENUE
    "traced": (np.bool_, False),  # investigators know its current address now
    "trail": (np.bool_, True),  # every hop so far was followable (tracing can start late)
    "theft": (np.int16, -1),
    "step": (np.int32, 0),  # index of the lot's next playbook step in its theft's program
    "substep": (np.int32, 0),  # progress inside a multi-stage step (peel hop number, venue phase)
    "ready": (np.float64, np.inf),  # time of the lot's next move; inf = parked or finished
    "alive": (np.bool_, True),  # False once the value is merged away, cashed out, frozen, ...
    "touched": (np.uint64, 0),  # bit v set: the lot's history passed through venue v (sanction links)
    "entered": (np.float64, np.nan),  # when it entered its current venue
    "tag": (np.int32, -1),  # venue-specific detail (e.g. the mixer pool a note sits in)
    "hops": (np.int32, 0),  # moves made so far (a follow-up or alert about an older address is stale)
    "flagged": (np.bool_, False),  # its current address has been shared with venues as stolen
    "judge_at": (np.float64, -np.inf),  # when analysts will have judged its last judgment point (inf: not yet queued)
    "recover_at": (np.float64, np.inf),  # when its lost trail will be re-identified (inf: never)
    "lost_at": (np.int16, -2),  # where its trail was last lost: a venue, -1 an automatic hop, -2 never
    "judged": (np.bool_, False),  # it has passed a judgment point (mixer payout, exchange withdrawal, unlinked bridge, cash-out): beyond its victim's own view
    "claimed": (np.bool_, False),  # converted just in time: booked at the off-ramp ahead (exposure)
    "held": (np.bool_, False),  # kept in an exchange account by the exchange (a hold), not by the launderer's choice
}


_COPIED = tuple(name for name in _FIELDS if name not in ("value", "ready", "alive"))


class LotTable:
    """Parallel arrays of lots with amortised O(1) growth."""

    def __init__(self, capacity: int = 1024):
        self._n = 0
        self._cap = max(16, capacity)
        for name, (dtype, fill) in _FIELDS.items():
            setattr(self, name, np.full(self._cap, fill, dtype=dtype))

    def __len__(self) -> int:
        return self._n

    def add(self, n: int, **fields: np.ndarray | float | int | bool) -> np.ndarray:
        """Append ``n`` lots, fields given as arrays or scalars; return their ids."""
        if self._n + n > self._cap:
            new_cap = max(self._cap * 2, self._n + n)
            for name, (dtype, fill) in _FIELDS.items():
                old = getattr(self, name)
                grown = np.empty(new_cap, dtype=dtype)  # (np.full would write every row twice)
                grown[: self._n] = old[: self._n]
                grown[self._n :] = fill
                setattr(self, name, grown)
            self._cap = new_cap
        ids = np.arange(self._n, self._n + n, dtype=np.int64)
        for name, value in fields.items():
            getattr(self, name)[self._n : self._n + n] = value
        self._n += n
        return ids

    def add_copies(self, owner: np.ndarray, value: np.ndarray) -> np.ndarray:
        """Append one copy of lot ``owner[i]`` per entry (all but ``value``, ``ready`` and ``alive``,
        which take ``value`` and the defaults); return their ids. Used to divide lots."""
        n = len(owner)
        ids = self.add(n, value=value)  # grows the table if needed; the new rows hold the defaults
        start = int(ids[0]) if n else self._n
        for name in _COPIED:
            column = getattr(self, name)
            column[start : start + n] = column[owner]
        return ids

    def retire(self, ids: np.ndarray, spent: bool = True) -> None:
        """Lots leave play for good: never due again, not alive; ``spent``: their value is gone
        (merged, divided, paid as fees), else it stays where it left play (frozen, cashed out)."""
        if spent:
            self.value[ids] = 0.0
        self.alive[ids] = False
        self.ready[ids] = np.inf

    def view(self, name: str) -> np.ndarray:
        """The live part of a column (no copy)."""
        return getattr(self, name)[: self._n]
