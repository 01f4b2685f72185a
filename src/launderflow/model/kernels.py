"""Compiled kernels for the model's hottest primitives: moving lots, copying them when divided.

A batch of a few hundred lots costs numpy little per element but a few microseconds per call
(dispatch, allocation, dtype resolution), and :meth:`World.move` used to make ~40 calls per batch:
the fee, the new address, the knowledge update, the outcome-book moves. :func:`move_lots` does all
of that in one loop over the lots and returns the arrays the book, the tracing team and the ledger
need, in the same order and with the same values as the numpy version would (so results are
identical to the last bit: sums that feed the book are left to numpy).

Sequential semantics equal the vectorised ones because a batch never names a lot twice.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .states import Location

FEES_CELL = int(Location.FEES) * 2


@njit(cache=True)
def move_lots(ids, dst, asset_fee, value, address, asset, location, traced, alive, ready,
              hops, flagged, trail, theft, discovered, trace, draws, p, instant):  # pragma: no cover - numba
    """Charge each lot its network fee, send it to ``dst`` and update what the analysts know.

    Returns ``(src, fee, left, fee_from, fee_to, follow, dark_from, dark_to, dark_value, any_fee)``:
    the old addresses, the fees, the values after them; the fee moves of the outcome book (cells);
    which lots the team follows; the moves of the lots that went dark; whether any fee was charged
    (the fee moves apply only then, as a zero-fee batch changes nothing).

    ``draws``/``p``: the trail survives a hop where ``draws[k] < p`` (no draws when ``p >= 1``).
    ``instant``: the team follows at once, so only lots it cannot follow go dark.
    """
    n = ids.shape[0]
    src = np.empty(n, dtype=np.int64)
    fee = np.empty(n, dtype=np.float64)
    left = np.empty(n, dtype=np.float64)
    any_fee = False
    for k in range(n):
        i = ids[k]
        v = value[i]
        f = asset_fee[asset[i]]
        if v < f:
            f = v  # a lot worth less than the fee is all fee
        fee[k] = f
        left[k] = v
        src[k] = address[i]
        if f > 0:
            any_fee = True
    fee_from = np.empty(n if any_fee else 0, dtype=np.int8)
    fee_to = np.empty(n if any_fee else 0, dtype=np.int8)
    if any_fee:
        for k in range(n):
            i = ids[k]
            t = np.int8(1) if traced[i] else np.int8(0)
            fee_from[k] = location[i] * 2 + t
            fee_to[k] = FEES_CELL + t
            rest = left[k] - fee[k]
            if rest <= 0:
                rest = 0.0
                alive[i] = False
                ready[i] = np.inf
            value[i] = rest
            left[k] = rest
    follow = np.zeros(n, dtype=np.bool_)
    dark = np.zeros(n, dtype=np.bool_)
    for k in range(n):
        i = ids[k]
        address[i] = dst[k]
        if trace:
            hops[i] += 1
            flagged[i] = False
            if draws.shape[0] > 0 and not draws[k] < p:
                trail[i] = False
            follow[k] = trail[i] and discovered[theft[i]]
            if traced[i] and not (instant and follow[k]):
                dark[k] = True
                traced[i] = False
    m = int(dark.sum())
    dark_from = np.empty(m, dtype=np.int8)
    dark_to = np.empty(m, dtype=np.int8)
    dark_value = np.empty(m, dtype=np.float64)
    j = 0
    for k in range(n):
        if dark[k]:
            i = ids[k]
            dark_from[j] = location[i] * 2 + 1
            dark_to[j] = location[i] * 2
            dark_value[j] = left[k]
            j += 1
    return src, fee, left, fee_from, fee_to, follow, dark_from, dark_to, dark_value, any_fee


@njit(cache=True)
def _repeat_into(column, parents, counts, start):  # pragma: no cover - numba
    j = start
    for k in range(parents.shape[0]):
        v = column[parents[k]]
        for _ in range(counts[k]):
            column[j] = v
            j += 1


@njit(cache=True)
def copy_rows(parents, counts, start, asset, address, location, venue, traced, trail, theft, step,
              substep, touched, entered, tag, hops, flagged):  # pragma: no cover - numba
    """Write ``counts[k]`` copies of row ``parents[k]`` of each column from row ``start`` on (the
    rows of a divided lot's pieces: ``np.repeat(column[parents], counts)``, in one call)."""
    _repeat_into(asset, parents, counts, start)
    _repeat_into(address, parents, counts, start)
    _repeat_into(location, parents, counts, start)
    _repeat_into(venue, parents, counts, start)
    _repeat_into(traced, parents, counts, start)
    _repeat_into(trail, parents, counts, start)
    _repeat_into(theft, parents, counts, start)
    _repeat_into(step, parents, counts, start)
    _repeat_into(substep, parents, counts, start)
    _repeat_into(touched, parents, counts, start)
    _repeat_into(entered, parents, counts, start)
    _repeat_into(tag, parents, counts, start)
    _repeat_into(hops, parents, counts, start)
    _repeat_into(flagged, parents, counts, start)
