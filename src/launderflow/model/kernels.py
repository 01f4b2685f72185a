"""Numba kernels of the compiled engine: a tick's bookkeeping over the columnar lot state.

Each kernel does in one compiled call what the reference engine (:mod:`.world`, :mod:`.agenda`,
:mod:`.book`) does in a dozen numpy calls, with the same arithmetic in the same order so that the
two engines give the same bytes: sums the reference takes with ``bincount`` (sequential) are
sequential loops here, and those it takes with ``ndarray.sum`` or ``np.add.reduceat`` (pairwise)
use :func:`pairwise_sum`, numpy's algorithm. No kernel draws random numbers: every draw stays in the
caller, in the reference engine's order.

Compiled on first use and cached on disk (``cache=True``), so later processes and dask workers
load them instead of compiling again.
"""

from __future__ import annotations

import math

import numpy as np
from numba import literal_unroll, njit, types
from numba.extending import overload

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
def schedule_after(ids, now, confirmation, asset, extra, has_extra, horizon, resolution, clock, ready, heap_t, heap_i,
                   size):  # pragma: no cover - numba
    """``World.after``: due at ``now`` plus the confirmation of each lot's asset plus ``extra``
    (the drawn delay, if ``has_extra``), then :func:`schedule` (``clock``: the simulation's time,
    which may differ from the tick's ``now`` in the last bit)."""
    times = np.empty(len(ids))
    for k in range(len(ids)):
        times[k] = now + confirmation[asset[ids[k]]]
        if has_extra:
            times[k] = times[k] + extra[k]
    return schedule(ids, times, horizon, resolution, clock, ready, heap_t, heap_i, size)


@njit(cache=True)
def at_ticks(times, horizon, resolution):  # pragma: no cover - numba
    """``World.at``'s ticks: which ``times`` fall within the horizon, how many, and their ticks
    (rounded up, as ``Agenda.tick_of``)."""
    n = len(times)
    soon = np.empty(n, dtype=np.bool_)
    ticks = np.empty(n, dtype=np.int64)
    m = 0
    for k in range(n):
        soon[k] = times[k] <= horizon
        if soon[k]:
            ticks[m] = np.int64(math.ceil(times[k] / resolution - 1e-9))
            m += 1
    return soon, m, ticks[:m]


@njit(cache=True)
def holdings(alive, value, location, asset, address, n_assets, launderer):  # pragma: no cover - numba
    """``World._held``: per asset, the launderer's wallets worth something (distinct addresses:
    lots gathered at one address count once) and the value held (in its wallets and inside venues),
    summed in lot order as the reference's ``bincount``."""
    held = np.zeros(n_assets)
    pairs = np.empty(len(alive), dtype=np.int64)
    m = 0
    for i in range(len(alive)):
        if alive[i] and value[i] > 0:
            held[asset[i]] += value[i]
            if location[i] == launderer:
                pairs[m] = (np.int64(asset[i]) << 40) | address[i]
                m += 1
    pairs = np.sort(pairs[:m])
    wallets = np.zeros(n_assets, dtype=np.int64)
    for k in range(m):
        if k == 0 or pairs[k] != pairs[k - 1]:
            wallets[pairs[k] >> 40] += 1
    return wallets, held


@njit(cache=True)
def due_groups(ids, theft, step):  # pragma: no cover - numba
    """``World._on_due``'s grouping: the due lots stably sorted by (theft, step), and where each
    group starts (with the end appended)."""
    n = len(ids)
    key = np.empty(n, dtype=np.int64)
    for k in range(n):
        key[k] = np.int64(theft[ids[k]]) * (1 << 32) + step[ids[k]]
    order = np.argsort(key, kind="mergesort")
    out = np.empty(n, dtype=ids.dtype)
    bounds = np.empty(n + 1, dtype=np.int64)
    m = 0
    for k in range(n):
        out[k] = ids[order[k]]
        if k == 0 or key[order[k]] != key[order[k - 1]]:
            bounds[m] = k
            m += 1
    bounds[m] = n
    return out, bounds[: m + 1]


@njit(cache=True)
def split_phases(ids, substep):  # pragma: no cover - numba
    """The lots at phase 0 (arriving at a step) and at phase 1 (due to leave it), in order."""
    n = len(ids)
    first = np.empty(n, dtype=ids.dtype)
    second = np.empty(n, dtype=ids.dtype)
    a = b = 0
    for k in range(n):
        phase = substep[ids[k]]
        if phase == 0:
            first[a] = ids[k]
            a += 1
        elif phase == 1:
            second[b] = ids[k]
            b += 1
    return first[:a], second[:b]


@njit(cache=True)
def dormant(arriving, due, wave, spread, theft_time, theft, first, every, hurry, freezable, asset, quiet,
            last_stopped, now, next_step, step, substep, horizon, resolution, clock, ready, heap_t, heap_i,
            size):  # pragma: no cover - numba
    """The ``dormant`` hop after its draws (``Dormant.apply``): arriving lots are due at their
    wave's time (``wave``, ``spread``: one draw each), or now if they hurry; due lots leave unless
    attention has not faded (``quiet`` after the theft's last freeze): then they wait until it has.
    The heap has room for every lot (``clock``: the simulation's time, as :func:`schedule_after`).
    Return the heap's size and the first tick pushed."""
    n = len(arriving)
    times = np.empty(n)
    for k in range(n):
        i = arriving[k]
        leave = theft_time[theft[i]] + first + wave[k] * every + spread[k]
        if hurry and freezable[asset[i]]:
            times[k] = now
        else:
            times[k] = leave if leave >= now or leave != leave else now  # np.maximum(leave, now)
        substep[i] = 1
    size, earliest = schedule(arriving, times, horizon, resolution, clock, ready, heap_t, heap_i, size)
    m = len(due)
    noisy = np.zeros(m, dtype=np.bool_)
    n_noisy = 0
    if quiet > 0:
        for k in range(m):
            if now - last_stopped[theft[due[k]]] < quiet:
                noisy[k] = True
                n_noisy += 1
    if n_noisy:
        wait = np.empty(n_noisy, dtype=due.dtype)
        until = np.empty(n_noisy)
        j = 0
        for k in range(m):
            if noisy[k]:
                wait[j] = due[k]
                until[j] = last_stopped[theft[due[k]]] + quiet
                j += 1
        size, t = schedule(wait, until, horizon, resolution, clock, ready, heap_t, heap_i, size)
        earliest = min(earliest, t)
    leaving = np.empty(m - n_noisy, dtype=due.dtype)
    j = 0
    for k in range(m):
        if not noisy[k]:
            leaving[j] = due[k]
            j += 1
    for k in range(len(leaving)):  # Step.wake_at: on to the next step, now
        step[leaving[k]] = next_step
        substep[leaving[k]] = 0
    if next_step == -1:
        for k in range(len(leaving)):
            ready[leaving[k]] = np.inf
    elif len(leaving):
        size, t = schedule(leaving, np.full(len(leaving), now), horizon, resolution, clock, ready, heap_t, heap_i,
                           size)
        earliest = min(earliest, t)
    return size, earliest


@njit(cache=True)
def peel_tail(peeled, remainder, substep, length, alive):  # pragma: no cover - numba
    """``Peel.apply`` after the fork: each remainder counts one more hop; the peeled pieces and the
    remainders that made their last hop move on (sorted, in play), the others peel again (in play)."""
    moving = np.empty(len(peeled) + len(remainder), dtype=np.int64)
    again = np.empty(len(remainder), dtype=np.int64)
    m = a = 0
    for k in range(len(peeled)):
        moving[m] = peeled[k]
        m += 1
    for k in range(len(remainder)):
        i = remainder[k]
        substep[i] += 1
        if substep[i] >= length:
            moving[m] = i
            m += 1
        elif alive[i]:
            again[a] = i
            a += 1
    moving = np.sort(moving[:m])
    n = 0
    for k in range(m):
        if alive[moving[k]]:
            moving[n] = moving[k]
            n += 1
    return moving[:n], again[:a]


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
def network_fee(ids, asset, value, address, asset_fee):  # pragma: no cover - numba
    """A transfer's fee for each lot (a lot worth less than the fee is all fee) and their sum (as
    ``ndarray.sum`` takes it), with each lot's asset, value and address."""
    n = len(ids)
    fee = np.empty(n)
    assets = np.empty(n, dtype=asset.dtype)
    values = np.empty(n)
    src = np.empty(n, dtype=address.dtype)
    for k in range(n):
        i = ids[k]
        a = asset[i]
        assets[k] = a
        values[k] = value[i]
        src[k] = address[i]
        f = asset_fee[a]
        fee[k] = f if f <= value[i] or f != f else value[i]  # np.minimum(fee, value)
    return fee, array_sum(fee), assets, values, src


# --- numpy's float sums, bit for bit ------------------------------------------------------------------


@njit(cache=True)
def _block_sum(a, lo, n):  # pragma: no cover - numba
    """numpy's pairwise summation of a block of at most 128 items: 8 accumulators, then the rest."""
    if n < 8:
        res = -0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    while i < n - (n % 8):
        j = lo + i
        r0 += a[j]
        r1 += a[j + 1]
        r2 += a[j + 2]
        r3 += a[j + 3]
        r4 += a[j + 4]
        r5 += a[j + 5]
        r6 += a[j + 6]
        r7 += a[j + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@njit(cache=True)
def pairwise_sum(a, lo, n):  # pragma: no cover - numba
    """numpy's pairwise summation of ``a[lo:lo + n]`` (``pairwise_sum_DOUBLE``: blocks of up to
    128 items, halves above that — halves cut at a multiple of 8), so that a kernel's sums are
    numpy's to the bit. The halving runs on an explicit stack: numba's cache cannot reload a
    recursive function (the reloaded call segfaults)."""
    if n <= 128:
        return _block_sum(a, lo, n)
    frame_lo = np.empty(128, dtype=np.int64)  # the pending halves, depth-first
    frame_n = np.empty(128, dtype=np.int64)
    frame_phase = np.empty(128, dtype=np.int64)  # 0: left half next, 1: right half next, 2: add them
    sums = np.empty(128)
    depth, done = 1, 0
    frame_lo[0], frame_n[0], frame_phase[0] = lo, n, 0
    while depth:
        top = depth - 1
        size = frame_n[top]
        if size <= 128:
            sums[done] = _block_sum(a, frame_lo[top], size)
            done += 1
            depth -= 1
            continue
        half = size // 2
        half -= half % 8
        phase = frame_phase[top]
        frame_phase[top] = phase + 1
        if phase == 0:
            frame_lo[depth], frame_n[depth], frame_phase[depth] = frame_lo[top], half, 0
            depth += 1
        elif phase == 1:
            frame_lo[depth], frame_n[depth], frame_phase[depth] = frame_lo[top] + half, size - half, 0
            depth += 1
        else:
            done -= 1
            sums[done - 1] = sums[done - 1] + sums[done]
            depth -= 1
    return sums[0]


@njit(cache=True)
def array_sum(a):  # pragma: no cover - numba
    """``a.sum()`` of a contiguous float64 array: the identity plus the pairwise sum of all."""
    return 0.0 + pairwise_sum(a, 0, len(a))


@njit(cache=True)
def segment_sum(a, lo, hi):  # pragma: no cover - numba
    """``np.add.reduceat``'s sum of ``a[lo:hi]`` (``hi > lo``): the first item plus the pairwise sum of the rest."""
    return a[lo] + pairwise_sum(a, lo + 1, hi - lo - 1)


# --- dividing lots -------------------------------------------------------------------------------------


@njit(cache=True)
def divide(parents, counts, values, owner, start, value, alive, ready, copied, trail, traced, theft, discovered,
           all_discovered):  # pragma: no cover - numba
    """``World.divide`` into rows ``start:start + len(owner)`` (the table has them): each parent's
    last piece takes what the others leave (never below 0); the children copy every column of
    ``copied`` from their parent; the parents are spent. Return the children whose follow-up is
    pending (trail intact, not traced, theft discovered), for the caller to queue."""
    n = len(owner)
    pieces = np.empty(n)
    for j in range(n):
        pieces[j] = values[j]
    first = 0
    for p in range(len(parents)):
        last = first + counts[p] - 1
        others = segment_sum(pieces, first, last + 1) - pieces[last]
        left = value[parents[p]] - others
        pieces[last] = left if left >= 0.0 or left != left else 0.0  # np.maximum(left, 0.0)
        first = last + 1
    for j in range(n):
        value[start + j] = pieces[j]
    for column in literal_unroll(copied):
        for j in range(n):
            column[start + j] = column[owner[j]]
    for p in range(len(parents)):
        i = parents[p]
        value[i] = 0.0
        alive[i] = False
        ready[i] = np.inf
    pending = np.empty(n, dtype=np.int64)
    m = 0
    for j in range(n):
        i = start + j
        if trail[i] and not traced[i] and (all_discovered or discovered[theft[i]]):
            pending[m] = i
            m += 1
    return pending[:m]


# --- knowledge after a hop -----------------------------------------------------------------------------


@njit(cache=True)
def hop_knowledge(ids, judged, keep, has_keep, instant, hops, flagged, judged_col, trail, traced, theft, location,
                  value, judge_at, discovered, all_discovered):  # pragma: no cover - numba
    """``World.hop_knowledge`` up to the calls into tracing: count the hop, clear the flag, apply
    the surviving trails (``keep``, if ``has_keep``), turn dark what the investigators no longer
    see. Return the lots whose trail was lost, those to follow (software, or the analysts when
    ``judged``) and the dark ones' old cells and values, for the caller's book move (``ids`` are
    distinct, as every caller's are)."""
    n = len(ids)
    lost = np.empty(n, dtype=np.int64)
    follow = np.empty(n, dtype=np.int64)
    dark_from = np.empty(n, dtype=np.int64)
    dark_value = np.empty(n)
    n_lost = n_follow = n_dark = 0
    for k in range(n):
        i = ids[k]
        hops[i] += 1
        flagged[i] = False
        if judged:
            judged_col[i] = True
        was = trail[i]
        if has_keep:
            trail[i] = was and keep[k]
            if was and not keep[k]:
                lost[n_lost] = i
                n_lost += 1
        known = all_discovered or discovered[theft[i]]
        if instant:
            go_dark = not (trail[i] and known)
            if not go_dark:
                follow[n_follow] = i
                n_follow += 1
        else:
            go_dark = True
            if judged:
                if was and known:
                    follow[n_follow] = i
                    n_follow += 1
                elif was:
                    judge_at[i] = np.inf  # to be judged once the theft is discovered
            elif trail[i] and known:
                follow[n_follow] = i
                n_follow += 1
        if go_dark and traced[i]:
            traced[i] = False
            dark_from[n_dark] = np.int64(location[i]) * 2
            dark_value[n_dark] = value[i]
            n_dark += 1
    return lost[:n_lost], follow[:n_follow], dark_from[:n_dark], dark_value[:n_dark]


# --- a whole transfer, and a whole fork ------------------------------------------------------------------


@njit(cache=True)
def move(ids, trace, judged, keep, has_keep, instant, asset_fee, asset, value, address, location, traced, alive, ready,
         plus, minus, fee_cell, hops, flagged, judged_col, trail, theft, judge_at, discovered,
         all_discovered):  # pragma: no cover - numba
    """``World.move`` up to the new addresses and the calls into tracing, in one call: the
    network fee (:func:`network_fee`, then :func:`to_fees` when there is one), and with ``trace``
    the knowledge after the hop (:func:`hop_knowledge`, its dark value booked at once). Return the
    fees, their sum, the lots' assets, addresses before the move and values left, and the lots
    whose trail was lost and those to follow (empty without ``trace``)."""
    fee, total, assets, values, src = network_fee(ids, asset, value, address, asset_fee)
    if total > 0:
        values = to_fees(ids, values, fee, value, location, traced, alive, ready, plus, minus, fee_cell)
    if trace:
        lost, follow, dark_from, dark_value = hop_knowledge(ids, judged, keep, has_keep, instant, hops, flagged,
                                                            judged_col, trail, traced, theft, location, value,
                                                            judge_at, discovered, all_discovered)
        book_move(plus, minus, dark_from + 1, dark_from, dark_value)  # (the reference's book.move of the dark)
    else:
        lost = np.empty(0, dtype=np.int64)
        follow = np.empty(0, dtype=np.int64)
    return fee, total, assets, values, src, lost, follow


@njit(cache=True)
def fork(parents, counts, shares, owner, start, copied, source, keep, has_keep, judged, instant, asset_fee, asset,
         value, address, location, traced, alive, ready, plus, minus, fee_cell, hops, flagged, judged_col, trail, theft,
         judge_at, discovered, all_discovered):  # pragma: no cover - numba
    """``World.fork`` in one call: :func:`divide` each parent into rows ``start:start + len(owner)``
    by ``shares`` (the parent's value times each share, as the reference multiplies), put the
    children at address ``source`` if it is not negative, then :func:`move` them (traced). Return
    the children and what :func:`move` returns."""
    n = len(owner)
    pieces = np.empty(n)
    for j in range(n):
        pieces[j] = value[owner[j]] * shares[j]
    divide(parents, counts, pieces, owner, start, value, alive, ready, copied, trail, traced, theft, discovered,
           all_discovered)  # (no follow-up to queue: the pieces move on at once)
    children = np.arange(start, start + n)
    if source >= 0:
        for j in range(n):
            address[start + j] = source
    fee, total, assets, values, src, lost, follow = move(
        children, True, judged, keep, has_keep, instant, asset_fee, asset, value, address, location, traced, alive,
        ready, plus, minus, fee_cell, hops, flagged, judged_col, trail, theft, judge_at, discovered, all_discovered)
    return children, fee, total, assets, values, src, lost, follow


@njit(cache=True)
def exit_groups(assets, values, was, frozen):  # pragma: no cover - numba
    """``ExitLog.groups``: the sorted distinct keys ``2 * asset + (was == frozen)`` and each key's
    value, added in lot order (as ``bincount`` adds)."""
    n = len(values)
    key = np.empty(n, dtype=np.int64)
    top = 0
    for k in range(n):
        key[k] = np.int64(assets[k]) * 2 + (1 if was[k] == frozen else 0)
        top = max(top, key[k])
    sums = np.zeros(top + 1)
    seen = np.zeros(top + 1, dtype=np.bool_)
    for k in range(n):
        sums[key[k]] += values[k]
        seen[key[k]] = True
    m = 0
    for j in range(top + 1):
        if seen[j]:
            m += 1
    keys = np.empty(m, dtype=np.int64)
    value = np.empty(m)
    m = 0
    for j in range(top + 1):
        if seen[j]:
            keys[m] = j
            value[m] = sums[j]
            m += 1
    return keys, value


# --- venues' building blocks ------------------------------------------------------------------------------


@njit(cache=True)
def taken_in(ids, snapshot, flagged, alive, to, venue, location, venue_col, traced, value, asset, plus, minus,
             substep, entered, now, held, touched, bit):  # pragma: no cover - numba
    """``VenueModel.take_in`` after its move: the flags screened at the deposit restored, the
    living lots relocated into the venue (booked), marked inside it. Return the living lots."""
    n = len(ids)
    live = np.empty(n, dtype=np.int64)
    m = 0
    for k in range(n):
        i = ids[k]
        flagged[i] = flagged[i] or snapshot[k]
    for k in range(n):
        if alive[ids[k]]:
            live[m] = ids[k]
            m += 1
    live = live[:m]
    before, after, assets, values = relocate(live, to, venue, location, venue_col, traced, value, asset)
    book_move(plus, minus, before, after, values)
    for k in range(m):
        i = live[k]
        substep[i] = 1
        entered[i] = now
        held[i] = False
        touched[i] |= bit
    return live


@njit(cache=True)
def cash_out(ids, rate, fixed, charge, value, alive, ready, location, traced, plus, minus, fee_cell, to, venue,
             venue_col, asset, start, time_c, src_c, dst_c, asset_c, amount_c, value_c, fee_c, hop_c, lot_c,
             venue_cv, followed_c, now, src, dst, hop, trail):  # pragma: no cover - numba
    """``VenueModel.cash_out`` without counterparties: the living lots pay the haircut (``charge``:
    ``World.spend`` of ``value * rate + fixed``), those still worth something are ledger rows from
    row ``start`` (the chunk has room) and leave play, cashed out (booked). Return the venue's fee
    total, the lots cashed out, and their assets, values and locations before (for the exit log)."""
    n = len(ids)
    live = np.empty(n, dtype=np.int64)
    m = 0
    for k in range(n):
        if alive[ids[k]]:
            live[m] = ids[k]
            m += 1
    live = live[:m]
    total = 0.0
    if charge:
        current = np.empty(m)
        amounts = np.empty(m)
        for k in range(m):
            v = value[live[k]]
            a = v * rate + fixed
            current[k] = v
            amounts[k] = a if a <= v or a != a else v  # np.minimum(amounts, value)
        total = array_sum(amounts)
        if total > 0:
            to_fees(live, current, amounts, value, location, traced, alive, ready, plus, minus, fee_cell)
        else:
            total = 0.0
    out = np.empty(m, dtype=np.int64)
    k_out = 0
    for k in range(m):
        if value[live[k]] > 0:
            out[k_out] = live[k]
            k_out += 1
    out = out[:k_out]
    values = np.empty(k_out)
    assets = np.empty(k_out, dtype=asset.dtype)
    for k in range(k_out):
        values[k] = value[out[k]]
        assets[k] = asset[out[k]]
    ledger_rows(start, time_c, src_c, dst_c, asset_c, amount_c, value_c, fee_c, hop_c, lot_c, venue_cv, followed_c,
                now, src, dst, assets, values, 0.0, hop, out, venue, trail)
    before, after, assets, values = relocate(out, to, venue, location, venue_col, traced, value, asset)
    for k in range(k_out):
        alive[out[k]] = False
        ready[out[k]] = np.inf
    book_move(plus, minus, before, after, values)
    return total, out, assets, values, before >> 1


@njit(cache=True)
def pay_out(ids, source, to, keep, has_keep, judged, instant, asset_fee, asset, value, address, location, venue_col,
            traced, alive, ready, plus, minus, fee_cell, hops, flagged, judged_col, trail, theft, judge_at, discovered,
            all_discovered):  # pragma: no cover - numba
    """``World.pay_out`` up to the new addresses and the calls into tracing, for the living lots
    ``ids``: put them at the venue's address ``source``, :func:`relocate` them to the launderer
    (``to``, booked), then :func:`move` them (traced). Return what :func:`move` returns."""
    for k in range(len(ids)):
        address[ids[k]] = source
    before, after, assets, values = relocate(ids, to, -1, location, venue_col, traced, value, asset)
    book_move(plus, minus, before, after, values)
    return move(ids, True, judged, keep, has_keep, instant, asset_fee, asset, value, address, location, traced, alive,
                ready, plus, minus, fee_cell, hops, flagged, judged_col, trail, theft, judge_at, discovered,
                all_discovered)


@njit(cache=True)
def link_chances(ids, tag, honest, launderer, entered, now, miss_habits, quick_threshold, quick_miss):  # pragma: no cover - numba
    """``PoolMixer.release`` before its draw: each note's pool, the pool's anonymity set ``A`` and
    the chance an analyst links the note, ``h + (1 - h) / A`` (``miss_habits``: the product of
    ``1 - h_i`` over the habits shown, times ``quick_miss`` for a round trip shorter than
    ``quick_threshold``), computed as the reference's array expressions are."""
    n = len(ids)
    pools = np.empty(n, dtype=tag.dtype)
    anonymity = np.empty(n, dtype=np.int64)
    p_link = np.empty(n)
    for k in range(n):
        i = ids[k]
        pool = tag[i]
        pools[k] = pool
        a = honest[pool] + launderer[pool]
        anonymity[k] = a
        miss = miss_habits
        if (now - entered[i]) < quick_threshold:
            miss = miss * quick_miss
        h = 1.0 - miss
        p_link[k] = h + (1.0 - h) / max(a, 1)
    return pools, anonymity, p_link


# --- cells of the outcome book ---------------------------------------------------------------------------


@njit(cache=True)
def set_traced(ids, traced_to, traced, location, value):  # pragma: no cover - numba
    """``World.set_traced``: the lots whose knowledge changes, their cells before and after, their
    values (for the caller's book move)."""
    n = len(ids)
    src = np.empty(n, dtype=np.int64)
    dst = np.empty(n, dtype=np.int64)
    values = np.empty(n)
    changed = np.zeros(n, dtype=np.bool_)
    m = 0
    for k in range(n):
        i = ids[k]
        if traced[i] != traced_to[k]:
            changed[k] = True
            base = np.int64(location[i]) * 2
            src[m] = base + np.int64(traced[i])
            dst[m] = base + np.int64(traced_to[k])
            values[m] = value[i]
            m += 1
    for k in range(n):  # (written after reading all, as the reference does)
        if changed[k]:
            traced[ids[k]] = traced_to[k]
    return src[:m], dst[:m], values[:m]


@njit(cache=True)
def relocate(ids, to, venue, location, venue_col, traced, value, asset):  # pragma: no cover - numba
    """``World.relocate``'s bookkeeping: each lot's cell before and after the move to location
    ``to``, its asset and value; writes the location and the venue."""
    n = len(ids)
    before = np.empty(n, dtype=np.int64)
    after = np.empty(n, dtype=np.int64)
    assets = np.empty(n, dtype=asset.dtype)
    values = np.empty(n)
    for k in range(n):
        i = ids[k]
        t = np.int64(traced[i])
        before[k] = np.int64(location[i]) * 2 + t
        after[k] = 2 * to + t
        assets[k] = asset[i]
        values[k] = value[i]
    for k in range(n):
        location[ids[k]] = to
        venue_col[ids[k]] = venue
    return before, after, assets, values


# --- the ledger ----------------------------------------------------------------------------------------------


def _item(x, k):  # pragma: no cover - replaced by the overload below inside kernels
    return x[k] if np.ndim(x) else x


@overload(_item)
def _item_overload(x, k):  # pragma: no cover - numba
    """Item ``k`` of an array, or the scalar itself (a column given once for every row)."""
    if isinstance(x, types.Array):
        return lambda x, k: x[k]
    return lambda x, k: x


@njit(cache=True)
def ledger_rows(start, time_c, src_c, dst_c, asset_c, amount_c, value_c, fee_c, hop_c, lot_c, venue_c, followed_c,
                now, src, dst, asset, values, fee, hop, lots, venue, trail):  # pragma: no cover - numba
    """``World.record``: one ledger row per lot moved, written into the columns from row ``start``
    (the chunk has room); ``src``, ``dst``, ``fee`` and ``venue`` are arrays or one value for all."""
    for k in range(len(lots)):
        j = start + k
        time_c[j] = now
        src_c[j] = _item(src, k)
        dst_c[j] = _item(dst, k)
        asset_c[j] = asset[k]
        amount_c[j] = 0.0
        value_c[j] = values[k]
        fee_c[j] = _item(fee, k)
        hop_c[j] = hop
        lot_c[j] = lots[k]
        venue_c[j] = _item(venue, k)
        followed_c[j] = trail[lots[k]]


# --- tracing follow-ups ----------------------------------------------------------------------------------


@njit(cache=True)
def follow_ups(ids, ready_at, judge_at, hops, horizon, resolution):  # pragma: no cover - numba
    """``TracingTeam.auto``'s follow-ups through ``World.at``: each lot is followed at ``ready_at``
    or once its pending judgment is done, if later; which of those fall within the horizon, how
    many, their ticks, and the lots' hop counts now (a later hop makes a follow-up stale)."""
    n = len(ids)
    times = np.empty(n)
    snapshot = np.empty(n, dtype=hops.dtype)
    for k in range(n):
        j = judge_at[ids[k]]
        times[k] = ready_at if ready_at >= j or ready_at != ready_at else j  # np.maximum
        snapshot[k] = hops[ids[k]]
    soon, m, ticks = at_ticks(times, horizon, resolution)
    return soon, m, ticks, snapshot


@njit(cache=True)
def caught_up(ids, snapshot, hops, trail, value, traced, location):  # pragma: no cover - numba
    """``TracingTeam._caught_up``: the lots still where they were followed to (no hop since), with
    an intact trail and worth something, are traced; return them, and the cells and values of those
    that were dark (for the caller's book move)."""
    n = len(ids)
    ok = np.empty(n, dtype=np.int64)
    src = np.empty(n, dtype=np.int64)
    dst = np.empty(n, dtype=np.int64)
    values = np.empty(n)
    m = d = 0
    for k in range(n):
        i = ids[k]
        if hops[i] == snapshot[k] and trail[i] and value[i] > 0:
            ok[m] = i
            m += 1
    for k in range(m):
        i = ok[k]
        if not traced[i]:
            src[d] = np.int64(location[i]) * 2
            dst[d] = src[d] + 1
            values[d] = value[i]
            d += 1
    for k in range(m):
        traced[ok[k]] = True
    return ok[:m], src[:d], dst[:d], values[:d]


@njit(cache=True)
def flag(ids, snapshot, hops, traced, alive, flagged):  # pragma: no cover - numba
    """``Sharing._flag``: the lots still at the shared address (no hop since), traced and in play,
    are flagged; return them."""
    out = np.empty(len(ids), dtype=np.int64)
    m = 0
    for k in range(len(ids)):
        i = ids[k]
        if hops[i] == snapshot[k] and traced[i] and alive[i]:
            out[m] = i
            m += 1
    for k in range(m):
        flagged[out[k]] = True
    return out[:m]
