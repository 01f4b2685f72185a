"""Post-hoc taint analysis of a transfer ledger under the three classic policies.

The ledger is four equal-length arrays (``time``, ``src``, ``dst``, ``amount``),
already sorted by time; ties are processed in the given order because the order
in which an address receives and spends is exactly what the policies disagree
about. The taint *sources* are address ids whose holdings are stolen.

Semantics (shared by all policies)
----------------------------------
* **Sources are fully tainted forever**: every transfer out of a source address
  carries ``tainted == amount``, whatever it received. This models the thief's
  wallet as holding only stolen funds without needing its opening balance. To
  start from a theft *transfer* instead, pass its receiving address
  (``dst[i]``) as a source; that is equivalent when that address held nothing
  before the theft (the usual fresh thief wallet).
* **Shortfalls are clean**: the ledger is a window on a larger history, so an
  address that spends more than it has received here must have held money of
  its own. That missing value is treated as clean, i.e. before a spend of
  ``amount`` from a balance ``b < amount`` the balance is topped up with
  ``amount - b`` of clean value. Taint is thus never invented, only diluted.
* Zero-amount transfers carry nothing and taint nobody.
* A self-transfer (``src == dst``) is a spend followed by a receipt.

Policies
--------
``poison``
    An address becomes fully tainted as soon as it receives a transfer with
    ``tainted > 0``; every later transfer out of it is fully tainted, earlier
    ones are clean. Maximal recall, worst precision: an upper bound.
``haircut``
    Each address holds a balance and a tainted balance; a spend carries the
    address's current tainted *share* (``amount * tainted_balance / balance``),
    and that share is removed from it. Taint spreads but is diluted.
``fifo``
    Each address keeps a queue of incoming chunks (amount, tainted amount); a
    spend consumes the oldest chunks first, splitting a partial chunk
    proportionally. Models "coins keep their identity" accounting.

Per transfer, ``0 <= fifo, haircut <= poison <= amount`` holds: haircut and
FIFO can only taint a spend from an address that has already received taint,
and by then poison has made that address fully tainted.

Implementation
--------------
None of the policies can be vectorised: each transfer's taint depends on the
state left by all earlier transfers along chains of arbitrary length (even
poison is temporal reachability, which a numpy fixpoint would need one pass per
hop to compute). So each is a single ``numba`` loop over the transfers with
per-address state arrays, O(n + addresses) time. FIFO keeps each address's
oldest chunk in its per-address record and the rest of all queues in one pool
of chunks linked by index, with a free list and doubling growth, so memory is
bounded by the peak number of *live* chunks (at most one per transfer, in
practice far fewer), and an address with millions of queued chunks costs
nothing special: each chunk is consumed once. Adjacent chunks that are both
clean or both fully tainted are merged on arrival, which is exact and keeps
typical queues to the one chunk in the record. On large ledgers the loops are
bound by cache misses on the per-address state, so haircut and FIFO prefetch
the state of the addresses a few transfers ahead. Validation is one fused pass,
id remapping and scoring are vectorised. Floating-point values are clamped so
that ``0 <= tainted <= amount`` always.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = [
    "POLICIES",
    "AddressHistory",
    "TaintResult",
    "address_taint_history",
    "score",
    "taint",
    "tainted_share",
]

Policy = Literal["poison", "haircut", "fifo"]
POLICIES: tuple[str, ...] = ("poison", "haircut", "fifo")
_POLICY_CODE = {"poison": 0, "haircut": 1, "fifo": 2}


def tainted_share(tainted: np.ndarray, amount: np.ndarray) -> np.ndarray:
    """Stolen fraction of each transfer: ``tainted / amount``, 0 where ``amount == 0``."""
    tainted = np.asarray(tainted, dtype=np.float64)
    amount = np.asarray(amount, dtype=np.float64)
    out = np.zeros(np.broadcast(tainted, amount).shape, dtype=np.float64)
    np.divide(tainted, amount, out=out, where=amount != 0)
    return out


@dataclass(frozen=True, eq=False)
class TaintResult:
    """Outcome of :func:`taint`.

    ``tainted[i]`` is the stolen value (amount units) transfer ``i`` carries under
    ``policy``. ``amount`` is the ledger's amount array (kept for :attr:`share`)
    and ``sources`` the original source address ids (kept for
    :func:`address_taint_history`).
    """

    policy: str
    tainted: np.ndarray
    amount: np.ndarray
    sources: np.ndarray

    @property
    def share(self) -> np.ndarray:
        """Tainted share per transfer, ``tainted / amount`` (0 where amount is 0)."""
        return tainted_share(self.tainted, self.amount)

    @property
    def total_tainted(self) -> float:
        """Sum of stolen value carried by all transfers."""
        return float(self.tainted.sum())

    @property
    def n_tainted(self) -> int:
        """Number of transfers carrying any stolen value."""
        return int(np.count_nonzero(self.tainted > 0))


class AddressHistory(NamedTuple):
    """Per-(transfer, touched address) state after the transfer; unpacks as 4 arrays."""

    time: np.ndarray
    address: np.ndarray
    tainted_balance: np.ndarray
    balance: np.ndarray


# --------------------------------------------------------------------------- #
# input handling
# --------------------------------------------------------------------------- #


def _as_1d(x: np.ndarray, dtype: type, name: str) -> np.ndarray:
    arr = np.ascontiguousarray(x, dtype=dtype)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-dimensional, got shape {arr.shape}")
    return arr


def _remap(all_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(all_ids, return_inverse=True)``, fast when ids are not too sparse.

    With ids below ~2x their count a presence table + cumsum does it in O(n)
    (20M ids: ~0.2 s instead of ~5 s for the sort); sparser ids use np.unique.
    """
    if all_ids.size == 0:
        return all_ids.copy(), all_ids.copy()
    hi = int(all_ids.max())
    if hi < 2 * all_ids.size + (1 << 20):
        present = np.zeros(hi + 1, dtype=np.bool_)
        present[all_ids] = True
        ids = np.flatnonzero(present).astype(np.int64)
        index_dtype = np.int32 if ids.size < 2**31 else np.int64
        lookup = np.cumsum(present, dtype=index_dtype)
        lookup -= 1
        return ids, lookup[all_ids].astype(np.int64)
    ids, inv = np.unique(all_ids, return_inverse=True)
    return ids, inv.reshape(-1).astype(np.int64, copy=False)


@njit(cache=True)
def _scan_ledger(time, src, dst, amount):  # pragma: no cover - numba
    """One pass: (time and amount valid, src min, src max, dst min, dst max).

    Time is valid if it has no NaN and is non-decreasing, amount if all values
    are finite and >= 0. Empty ranges are (0, -1).
    """
    n = time.shape[0]
    ok = True
    prev = -np.inf
    src_lo = src_hi = dst_lo = dst_hi = 0
    if n:
        src_lo = src_hi = src[0]
        dst_lo = dst_hi = dst[0]
    else:
        src_hi = dst_hi = -1
    for i in range(n):
        t = time[i]
        x = amount[i]
        # NaN fails every comparison, so this also catches NaN times and amounts
        if not (t >= prev and x >= 0.0 and x < np.inf):
            ok = False
        prev = t
        v = src[i]
        src_lo = min(src_lo, v)
        src_hi = max(src_hi, v)
        v = dst[i]
        dst_lo = min(dst_lo, v)
        dst_hi = max(dst_hi, v)
    return ok, src_lo, src_hi, dst_lo, dst_hi


def _raise_bad_time_or_amount(time: np.ndarray, amount: np.ndarray) -> None:
    """Raise the ValueError describing what :func:`_scan_ledger` rejected."""
    if np.isnan(time).any():
        raise ValueError("time contains NaN")
    if time.shape[0] > 1:
        bad = np.flatnonzero(time[1:] < time[:-1])
        if bad.size:
            i = int(bad[0])
            raise ValueError(
                f"ledger is not sorted by time: time[{i + 1}]={time[i + 1]!r} < "
                f"time[{i}]={time[i]!r} ({bad.size} inversions); sort it first "
                "(a stable sort keeps the order of ties)"
            )
    if not np.isfinite(amount).all() or (amount < 0).any():
        raise ValueError("amount must be finite and >= 0")
    raise AssertionError("_scan_ledger rejected a valid ledger")  # pragma: no cover


def _prepare(
    time: np.ndarray,
    src: np.ndarray,
    dst: np.ndarray,
    amount: np.ndarray,
    sources: np.ndarray,
    n_addresses: int | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Validate the ledger; return dense (src, dst, amount, is_source, ids).

    ``ids`` maps dense index -> original id, or is None when ids are used as-is.
    """
    time = _as_1d(time, np.float64, "time")
    src = _as_1d(src, np.int64, "src")
    dst = _as_1d(dst, np.int64, "dst")
    amount = _as_1d(amount, np.float64, "amount")
    sources = _as_1d(np.asarray(sources).ravel(), np.int64, "sources")
    n = time.shape[0]
    for name, arr in (("src", src), ("dst", dst), ("amount", amount)):
        if arr.shape[0] != n:
            raise ValueError(f"{name} has length {arr.shape[0]}, time has length {n}")
    # one fused pass checks time and amount and finds the id ranges; the
    # (slower, several-pass) numpy checks only run to word the error
    ok, src_lo, src_hi, dst_lo, dst_hi = _scan_ledger(time, src, dst, amount)
    if not ok:
        _raise_bad_time_or_amount(time, amount)
    id_range = {
        "src": (src_lo, src_hi),
        "dst": (dst_lo, dst_hi),
        "sources": (int(sources.min()), int(sources.max())) if sources.size else (0, -1),
    }
    for name, (lo, _) in id_range.items():
        if lo < 0:
            raise ValueError(f"{name} contains negative address ids")

    if n_addresses is None:
        ids, inv = _remap(np.concatenate([src, dst, sources]))
        src_i, dst_i = inv[:n], inv[n : 2 * n]
        is_source = np.zeros(ids.shape[0], dtype=np.bool_)
        is_source[inv[2 * n :]] = True
        return src_i, dst_i, amount, is_source, ids

    n_addresses = int(n_addresses)
    for name, (_, hi) in id_range.items():
        if hi >= n_addresses:
            raise ValueError(f"{name} contains ids >= n_addresses={n_addresses}")
    is_source = np.zeros(n_addresses, dtype=np.bool_)
    is_source[sources] = True
    return src, dst, amount, is_source, None


# --------------------------------------------------------------------------- #
# kernels
# --------------------------------------------------------------------------- #

# The haircut and FIFO kernels are memory-bound: each transfer touches the state
# of two random addresses, which on a large ledger is two cache (and TLB)
# misses. A branch mispredicted while such a load is pending stalls the loop
# until it arrives, so by themselves the misses of successive transfers barely
# overlap. These kernels therefore prefetch the state of the addresses of
# transfer ``i + _PREFETCH_DISTANCE`` while processing transfer ``i`` (haircut
# ~2.5x, FIFO ~3x faster on a random 10M-transfer ledger over 1M addresses;
# distances 16-128 all do about as well); it changes no result. Poison's state
# is one byte per address and mostly stays in cache: prefetching gains nothing.
_PREFETCH_DISTANCE = 32


@intrinsic
def _prefetch(typingctx, arr, idx):  # pragma: no cover - numba
    """Hint the CPU to fetch ``arr[idx]`` (for writing) into cache; never faults."""
    if not isinstance(arr, types.Array) or not isinstance(idx, types.Integer):
        return None
    sig = types.void(arr, idx)

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]], wraparound=False)
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [cgutils.voidptr_t, i32, i32, i32])
        # unmangled name: LLVM upgrades it to the pointer type's mangled variant
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch")
        # (address, rw=1 write, locality=3 keep in all levels, cache type=1 data)
        builder.call(fn, [builder.bitcast(ptr, cgutils.voidptr_t), i32(1), i32(3), i32(1)])
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True)
def _poison_kernel(src, dst, amount, is_source):  # pragma: no cover - numba
    n = src.shape[0]
    out = np.zeros(n, dtype=np.float64)
    poisoned = is_source.copy()
    for i in range(n):
        a = amount[i]
        if poisoned[src[i]]:
            out[i] = a
            if a > 0.0:
                poisoned[dst[i]] = True
    return out


@njit(cache=True)
def _haircut_kernel(src, dst, amount, is_source):  # pragma: no cover - numba
    n = src.shape[0]
    m = is_source.shape[0]
    out = np.empty(n, dtype=np.float64)
    # state[a, 0] = balance, state[a, 1] = tainted balance: side by side, one cache
    # line per address. A source's balance is -inf instead (balances are never
    # negative), so the loop needs no separate is_source lookup; receipts leave it
    # -inf and its tainted balance is never read.
    state = np.zeros((m, 2), dtype=np.float64)
    for x in range(m):
        if is_source[x]:
            state[x, 0] = -np.inf
    flat = state.reshape(2 * m)
    for i in range(n):
        j = i + _PREFETCH_DISTANCE
        if j < n:
            _prefetch(flat, 2 * src[j])
            _prefetch(flat, 2 * dst[j])
        s = src[i]
        d = dst[i]
        a = amount[i]
        b = state[s, 0]
        if b < 0.0:  # source
            t = a
        else:
            tbs = state[s, 1]
            if b < a:  # shortfall: the address had clean money of its own
                b = a
            t = a * (tbs / b) if b > 0.0 else 0.0
            if t > a:
                t = a
            elif t < 0.0:
                t = 0.0
            b -= a
            r = tbs - t
            if r < 0.0:
                r = 0.0
            elif r > b:
                r = b
            state[s, 0] = b
            state[s, 1] = r
        out[i] = t
        state[d, 0] += a
        state[d, 1] += t
    return out


# FIFO state. Each address has a queue record holding its *oldest* chunk inline
# (amount, tainted) plus the links to the rest of its queue, which lives in a
# shared pool of chunks: ``next`` = second chunk, ``tail`` = newest chunk (both
# -1 when the queue has at most one chunk). Because adjacent chunks with equal
# taint status are merged, most queues have a single chunk, so a transfer
# usually touches just the two 32-byte address records (one cache line each).
# The record's amount doubles as a state tag: chunk amounts are never negative.
_QUEUE = np.dtype(
    [("amount", np.float64), ("tainted", np.float64), ("next", np.int64), ("tail", np.int64)]
)
_CHUNK = np.dtype([("amount", np.float64), ("tainted", np.float64), ("next", np.int64)])
_EMPTY = -1.0  # queue record amount of an address with no chunks
_SOURCE = -2.0  # queue record amount of a source address (its queue is never used)


@njit(cache=True)
def _grow_pool(pool, used):  # pragma: no cover - numba
    new = np.empty(pool.shape[0] * 2, dtype=pool.dtype)
    new[:used] = pool[:used]
    return new


@njit(cache=True)
def _fifo_kernel(src, dst, amount, is_source, pool):  # pragma: no cover - numba
    """FIFO taint; returns (tainted, peak number of live chunks).

    ``pool`` is the initial (empty) pool for the chunks behind each queue's
    first one; it is doubled when full. Each address's queue is its record's
    inline chunk followed by the singly linked list ``next`` .. ``tail``
    through ``pool.next``; freed pool chunks go on a free list and are reused
    first.
    """
    n = src.shape[0]
    m = is_source.shape[0]
    out = np.empty(n, dtype=np.float64)
    q = np.empty(m, dtype=_QUEUE)
    for x in range(m):
        q[x].amount = _SOURCE if is_source[x] else _EMPTY
        q[x].tainted = 0.0
        q[x].next = -1
        q[x].tail = -1
    used = 0  # pool slots ever handed out (high-water mark of the pool)
    free = -1  # head of the pool's free list, linked through .next
    live = 0
    peak = 0
    for i in range(n):
        j = i + _PREFETCH_DISTANCE
        if j < n:
            _prefetch(q, src[j])
            _prefetch(q, dst[j])
        a = amount[i]
        qs = q[src[i]]
        ca = qs.amount
        if ca == _SOURCE:
            t = a
        else:
            need = a
            t = 0.0
            if need > 0.0 and ca != _EMPTY:
                while True:  # consume the oldest chunks, held in the record
                    ct = qs.tainted
                    if ca <= need:  # consume the whole chunk
                        t += ct
                        need -= ca
                        live -= 1
                        h = qs.next
                        if h == -1:
                            qs.amount = _EMPTY
                            break
                        # the second chunk becomes the oldest: move it into the record
                        c = pool[h]
                        ca = c.amount
                        qs.amount = ca
                        qs.tainted = c.tainted
                        nxt = c.next
                        c.next = free
                        free = h
                        qs.next = nxt
                        if nxt == -1:
                            qs.tail = -1
                        if need <= 0.0:
                            break
                    else:  # split the chunk proportionally
                        take = ct * (need / ca)
                        if take > ct:
                            take = ct
                        t += take
                        rest_a = ca - need
                        rest_t = ct - take
                        if rest_t < 0.0:
                            rest_t = 0.0
                        elif rest_t > rest_a:
                            rest_t = rest_a
                        qs.amount = rest_a
                        qs.tainted = rest_t
                        break
            # whatever is still needed is the address's own clean money
            if t > a:
                t = a
            elif t < 0.0:
                t = 0.0
        out[i] = t
        if a > 0.0:
            qd = q[dst[i]]
            da = qd.amount
            if da == _SOURCE:
                continue
            if da == _EMPTY:
                qd.amount = a
                qd.tainted = t
            else:
                tl = qd.tail
                if tl == -1:  # the newest chunk is the one in the record
                    ta = da
                    tt = qd.tainted
                else:
                    ta = pool[tl].amount
                    tt = pool[tl].tainted
                if (t == 0.0 and tt == 0.0) or (t == a and tt == ta):
                    # same taint ratio as the newest chunk: merging is exact
                    if tl == -1:
                        qd.amount = da + a
                        qd.tainted = tt + t
                    else:
                        pool[tl].amount = ta + a
                        pool[tl].tainted = tt + t
                    continue
                if free != -1:
                    k = free
                    free = pool[k].next
                else:
                    if used == pool.shape[0]:
                        pool = _grow_pool(pool, used)
                    k = used
                    used += 1
                pool[k].amount = a
                pool[k].tainted = t
                pool[k].next = -1
                if tl == -1:
                    qd.next = k
                else:
                    pool[tl].next = k
                qd.tail = k
            live += 1
            if live > peak:
                peak = live
    return out, peak


def _fifo(src, dst, amount, is_source) -> tuple[np.ndarray, int]:
    pool = np.empty(max(min(src.shape[0], 1024), 1), dtype=_CHUNK)
    tainted, peak = _fifo_kernel(src, dst, amount, is_source, pool)
    return tainted, int(peak)


@njit(cache=True)
def _history_kernel(src, dst, amount, tainted, is_source, policy):  # pragma: no cover
    """Replay balances and tainted balances; one row per touched address."""
    n = src.shape[0]
    m = is_source.shape[0]
    bal = np.zeros(m, dtype=np.float64)
    tb = np.zeros(m, dtype=np.float64)
    poisoned = is_source.copy()
    rows = 0
    for i in range(n):
        rows += 1 if src[i] == dst[i] else 2
    r_idx = np.empty(rows, dtype=np.int64)
    r_addr = np.empty(rows, dtype=np.int64)
    r_tb = np.empty(rows, dtype=np.float64)
    r_bal = np.empty(rows, dtype=np.float64)
    r = 0
    for i in range(n):
        s = src[i]
        d = dst[i]
        a = amount[i]
        t = tainted[i]
        # spend (shortfall topped up with clean value)
        b = bal[s]
        if b < a:
            b = a
        b -= a
        bal[s] = b
        x = tb[s] - t
        if x < 0.0:
            x = 0.0
        elif x > b:
            x = b
        tb[s] = x
        # receive
        bal[d] += a
        if policy == 0:
            if t > 0.0:
                poisoned[d] = True
        else:
            y = tb[d] + t
            if y > bal[d]:
                y = bal[d]
            tb[d] = y
        for k in range(2):
            w = s if k == 0 else d
            if k == 1 and d == s:
                break
            if policy == 0:
                v = bal[w] if poisoned[w] else 0.0
            elif is_source[w]:
                v = bal[w]
            else:
                v = tb[w]
            r_idx[r] = i
            r_addr[r] = w
            r_tb[r] = v
            r_bal[r] = bal[w]
            r += 1
    return r_idx, r_addr, r_tb, r_bal


# --------------------------------------------------------------------------- #
# public API
# --------------------------------------------------------------------------- #


def taint(
    time: np.ndarray,
    src: np.ndarray,
    dst: np.ndarray,
    amount: np.ndarray,
    sources: np.ndarray,
    policy: Policy,
    n_addresses: int | None = None,
) -> TaintResult:
    """Stolen value carried by each transfer under ``policy``.

    ``time`` must be non-decreasing (ValueError otherwise). Address ids are used
    directly as indices when ``n_addresses`` is given (all ids must be below
    it); otherwise they are remapped with ``np.unique``, so they may be large
    and sparse. See the module docstring for the semantics.
    """
    if policy not in _POLICY_CODE:
        raise ValueError(f"unknown policy {policy!r}; expected one of {POLICIES}")
    src_i, dst_i, amt, is_source, _ = _prepare(time, src, dst, amount, sources, n_addresses)
    if policy == "poison":
        tainted = _poison_kernel(src_i, dst_i, amt, is_source)
    elif policy == "haircut":
        tainted = _haircut_kernel(src_i, dst_i, amt, is_source)
    else:
        tainted, _peak = _fifo(src_i, dst_i, amt, is_source)
    srcs = np.unique(np.asarray(sources, dtype=np.int64).ravel())
    return TaintResult(policy=policy, tainted=tainted, amount=amt, sources=srcs)


def address_taint_history(
    time: np.ndarray,
    src: np.ndarray,
    dst: np.ndarray,
    amount: np.ndarray,
    result: TaintResult,
    n_addresses: int | None = None,
) -> AddressHistory:
    """Tainted and total balance of each touched address after each transfer.

    One row per (transfer, touched address) in ledger order: the sender's row,
    then the receiver's (a single row for a self-transfer). Balances follow the
    shared shortfall rule. The tainted balance is replayed from
    ``result.tainted``: received minus sent taint for haircut/FIFO (equal to the
    sum of the FIFO queue's chunk taints), the whole balance once an address is
    poisoned, and the whole balance of a source address under every policy.
    The tainted share is ``tainted_balance / balance``.
    """
    src_i, dst_i, amt, is_source, ids = _prepare(
        time, src, dst, amount, result.sources, n_addresses
    )
    tainted = np.ascontiguousarray(result.tainted, dtype=np.float64)
    if tainted.shape != amt.shape:
        raise ValueError("result does not match the ledger length")
    r_idx, r_addr, r_tb, r_bal = _history_kernel(
        src_i, dst_i, amt, tainted, is_source, _POLICY_CODE[result.policy]
    )
    t = np.ascontiguousarray(time, dtype=np.float64)[r_idx]
    addr = ids[r_addr] if ids is not None else r_addr
    return AddressHistory(t, addr, r_tb, r_bal)


def score(tainted: np.ndarray, truth: np.ndarray, amount: np.ndarray) -> dict[str, float]:
    """Compare taint estimates with ground truth (stolen value per transfer).

    Value-weighted: ``precision = sum(min(tainted, truth)) / sum(tainted)``,
    ``recall = sum(min(tainted, truth)) / sum(truth)``,
    ``innocent_value_tainted = sum(max(tainted - truth, 0))`` (over-taint) and
    ``missed_value = sum(max(truth - tainted, 0))``. Count-based over transfers
    (flagged = ``tainted > 0``, true = ``truth > 0``): ``precision_count``,
    ``recall_count``. F1 scores for both, and totals, are included.

    Zero-denominator convention (like sklearn's ``zero_division=1``): precision
    is 1.0 when nothing is flagged (no claim was wrong), recall is 1.0 when
    nothing is truly stolen (nothing could be missed); F1 is 0.0 when both
    precision and recall are 0. No value is ever NaN.
    """
    tainted = np.asarray(tainted, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    amount = np.asarray(amount, dtype=np.float64)
    if not (tainted.shape == truth.shape == amount.shape):
        raise ValueError(
            f"shapes differ: tainted {tainted.shape}, truth {truth.shape}, amount {amount.shape}"
        )
    if np.isnan(tainted).any() or np.isnan(truth).any():
        raise ValueError("tainted and truth must not contain NaN")

    def ratio(num: float, den: float) -> float:
        return float(num / den) if den > 0 else 1.0

    def f1(p: float, r: float) -> float:
        return 2 * p * r / (p + r) if p + r > 0 else 0.0

    overlap = float(np.minimum(tainted, truth).sum())
    tainted_value = float(tainted.sum())
    true_value = float(truth.sum())
    flagged = tainted > 0
    true = truth > 0
    hits = int(np.count_nonzero(flagged & true))
    n_flagged = int(np.count_nonzero(flagged))
    n_true = int(np.count_nonzero(true))
    precision = ratio(overlap, tainted_value)
    recall = ratio(overlap, true_value)
    precision_count = ratio(hits, n_flagged)
    recall_count = ratio(hits, n_true)
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1(precision, recall),
        "innocent_value_tainted": float(np.maximum(tainted - truth, 0.0).sum()),
        "missed_value": float(np.maximum(truth - tainted, 0.0).sum()),
        "precision_count": precision_count,
        "recall_count": recall_count,
        "f1_count": f1(precision_count, recall_count),
        "tainted_value": tainted_value,
        "true_value": true_value,
        "total_value": float(amount.sum()),
        "n_flagged": n_flagged,
        "n_true": n_true,
    }
