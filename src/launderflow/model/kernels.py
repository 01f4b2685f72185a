"""Numba kernels of the compiled engine: a tick's bookkeeping over the columnar lot state.

Each kernel does in one compiled call what the reference engine (:mod:`.world`, :mod:`.agenda`,
:mod:`.book`) does in a dozen numpy calls, with the same arithmetic in the same order so that the
two engines give the same bytes: sums the reference takes with ``bincount`` (sequential) are
sequential loops here; sums it takes with ``ndarray.sum`` (pairwise) stay in numpy, in the caller.
No kernel draws random numbers: every draw stays in the caller, in the reference engine's order.

Compiled on first use and cached on disk (``cache=True``), so later processes and dask workers
load them instead of compiling again.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

NO_TICK = np.iinfo(np.int64).max  # "nothing was scheduled" (the first tick of an empty batch)


# --- the agenda: a binary min-heap of (tick, lot) entries ------------------------------------------


@njit(cache=True)
def _push(heap_t, heap_i, size, tick, lot):  # pragma: no cover - numba
    k = size
    while k > 0:
        parent = (k - 1) >> 1
        if heap_t[parent] <= tick:
            break
        heap_t[k] = heap_t[parent]
        heap_i[k] = heap_i[parent]
        k = parent
    heap_t[k] = tick
    heap_i[k] = lot
    return size + 1


@njit(cache=True)
def _pop(heap_t, heap_i, size):  # pragma: no cover - numba
    """Remove the root (the caller has read it); return the new size."""
    size -= 1
    tick, lot = heap_t[size], heap_i[size]
    k = 0
    while True:
        child = 2 * k + 1
        if child >= size:
            break
        if child + 1 < size and heap_t[child + 1] < heap_t[child]:
            child += 1
        if heap_t[child] >= tick:
            break
        heap_t[k] = heap_t[child]
        heap_i[k] = heap_i[child]
        k = child
    if size > 0:
        heap_t[k] = tick
        heap_i[k] = lot
    return size


@njit(cache=True)
def schedule(ids, times, horizon, resolution, now, ready, heap_t, heap_i, size):  # pragma: no cover - numba
    """``World.schedule``: round ``times`` up to the tick (never before ``now``), park what falls
    after the horizon, write ``ready`` and push the entries. The heap has room for ``len(ids)``
    more. Return the new size and the first tick pushed (``NO_TICK``: none)."""
    n = len(ids)
    for k in range(n):  # parked first, then the scheduled: the reference's order of writes
        if not times[k] <= horizon:
            ready[ids[k]] = np.inf
    first = NO_TICK
    for k in range(n):
        t = times[k]
        if not t <= horizon:
            continue
        tick = np.int64(math.ceil(t / resolution - 1e-9))
        when = tick * resolution
        if when < now:
            tick += 1
            when = tick * resolution
        ready[ids[k]] = when
        size = _push(heap_t, heap_i, size, tick, ids[k])
        if tick < first:
            first = tick
    return size, first


@njit(cache=True)
def pop_due(heap_t, heap_i, size, tick, ready, when):  # pragma: no cover - numba
    """Take every entry at ``tick`` off the heap; return the new size and the lots still due then
    (``ready == when``: entries of lots rescheduled, frozen or merged since are stale), sorted, once each."""
    due = np.empty(0, dtype=np.int64)
    n = 0
    while size > 0 and heap_t[0] == tick:
        lot = heap_i[0]
        size = _pop(heap_t, heap_i, size)
        if ready[lot] == when:
            if n == len(due):
                grown = np.empty(max(16, 2 * n), dtype=np.int64)
                grown[:n] = due[:n]
                due = grown
            due[n] = lot
            n += 1
    due = np.sort(due[:n])
    m = 0
    for k in range(n):
        if k == 0 or due[k] != due[k - 1]:
            due[m] = due[k]
            m += 1
    return size, due[:m]


# --- the outcome book and the lots' value ------------------------------------------------------------


@njit(cache=True)
def book_move(plus, minus, from_cells, to_cells, values):  # pragma: no cover - numba
    """``OutcomeBook.move``: the two ``bincount`` of the reference, accumulated as they come."""
    for k in range(len(values)):
        plus[to_cells[k]] += values[k]
        minus[from_cells[k]] += values[k]


@njit(cache=True)
def to_fees(ids, current, amounts, value, location, traced, alive, ready, plus, minus, fee_cell):  # pragma: no cover - numba
    """``World._to_fees``: move ``amounts`` (at most ``current``, the lots' values) of each lot to
    the fee cells; a lot left with nothing is spent. Return the values left."""
    n = len(ids)
    left = np.empty(n)
    for k in range(n):
        i = ids[k]
        t = np.int64(traced[i])
        left[k] = current[k] - amounts[k]
        value[i] = left[k]
        minus[np.int64(location[i]) * 2 + t] += amounts[k]
        plus[t + fee_cell] += amounts[k]
    for k in range(n):
        if left[k] <= 0.0:
            i = ids[k]
            value[i] = 0.0
            alive[i] = False
            ready[i] = np.inf
            left[k] = 0.0
    return left


@njit(cache=True)
def network_fee(ids, asset, value, asset_fee):  # pragma: no cover - numba
    """Each lot's transfer fee (a lot worth less than the fee is all fee), its asset, its value,
    and whether any fee is above zero."""
    n = len(ids)
    fee = np.empty(n)
    assets = np.empty(n, dtype=asset.dtype)
    values = np.empty(n)
    positive = False
    for k in range(n):
        i = ids[k]
        a = asset[i]
        assets[k] = a
        values[k] = value[i]
        fee[k] = min(asset_fee[a], value[i])
        if fee[k] > 0:
            positive = True
    return fee, assets, values, positive
