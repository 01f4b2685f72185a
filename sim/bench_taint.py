"""Benchmark launderflow.analysis.taint's numba kernels against the plain-Python reference.

Run: ``python sim/bench_taint.py [n_transfers] [n_addresses] [sample]``.

The ledger is random (seeded): sorted uniform times, uniformly random sender
and receiver ids, log-normal amounts, and 10 source addresses. Each policy is
timed on the full ledger with dense ids (``n_addresses`` given, i.e. no
remapping), after a warm-up call on a tiny ledger so that numba compilation (or
loading its on-disk cache) is not timed; the ``np.unique`` remapping used when
ids are sparse is timed once separately. The reference is timed on the first
``sample`` transfers and its output is checked against the kernel's on the
same prefix.

The reference implementation lives in ``tests/taint_reference.py`` (it is test
code, not part of the package), so this script adds the repository's
``tests`` directory to ``sys.path`` to import it.
"""

from __future__ import annotations

import sys
import time as _time
from pathlib import Path

import numpy as np

from launderflow.analysis.taint import POLICIES, taint

_TESTS_DIR = Path(__file__).resolve().parent.parent / "tests"
if str(_TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(_TESTS_DIR))
from taint_reference import reference_taint  # noqa: E402


def make_ledger(
    n_transfers: int, n_addresses: int, seed: int = 0, n_sources: int = 10
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Random time-sorted ledger: (time, src, dst, amount, sources)."""
    rng = np.random.default_rng(seed)
    time = np.sort(rng.uniform(0.0, 1e6, n_transfers))
    src = rng.integers(0, n_addresses, n_transfers, dtype=np.int64)
    dst = rng.integers(0, n_addresses, n_transfers, dtype=np.int64)
    amount = rng.lognormal(0.0, 1.5, n_transfers)
    sources = rng.choice(n_addresses, size=min(n_sources, n_addresses), replace=False)
    return time, src, dst, amount, sources.astype(np.int64)


def bench_taint(
    n_transfers: int = 10_000_000,
    n_addresses: int = 1_000_000,
    sample: int = 200_000,
    seed: int = 0,
) -> dict:
    """Time each policy (numba, full ledger) and the reference (first ``sample``).

    Returns ``{"n_transfers", "n_addresses", "sample", "remap_seconds",
    "policies": {policy: {...}}}``, where each policy entry has numba/reference
    seconds and transfers/second, ``speedup`` (ratio of transfers/second),
    ``tainted_fraction`` (share of value tainted on the full ledger) and
    ``max_abs_diff`` between the kernel and the reference on the sample.
    """
    time, src, dst, amount, sources = make_ledger(n_transfers, n_addresses, seed)
    sample = min(sample, n_transfers)

    tiny = make_ledger(50, 10, seed)
    for policy in POLICIES:  # compile / load the numba cache outside the timings
        taint(*tiny, policy, n_addresses=10)
        taint(*tiny, policy)

    t0 = _time.perf_counter()
    taint(time, src, dst, amount, sources, "poison")  # sparse-id path: np.unique remap
    t_sparse = _time.perf_counter() - t0

    s_src, s_dst, s_amt = src[:sample].tolist(), dst[:sample].tolist(), amount[:sample].tolist()
    s_sources = sources.tolist()
    total = float(amount.sum())
    out: dict = {
        "n_transfers": n_transfers,
        "n_addresses": n_addresses,
        "sample": sample,
        "policies": {},
    }
    for policy in POLICIES:
        t0 = _time.perf_counter()
        res = taint(time, src, dst, amount, sources, policy, n_addresses=n_addresses)
        t_fast = _time.perf_counter() - t0
        if policy == "poison":
            out["remap_seconds"] = max(t_sparse - t_fast, 0.0)

        t0 = _time.perf_counter()
        ref = reference_taint(s_src, s_dst, s_amt, s_sources, policy)
        t_ref = _time.perf_counter() - t0

        prefix = taint(
            time[:sample], src[:sample], dst[:sample], amount[:sample], sources, policy,
            n_addresses=n_addresses,
        )
        fast_tps = n_transfers / t_fast
        ref_tps = sample / t_ref
        out["policies"][policy] = {
            "numba_seconds": t_fast,
            "numba_tps": fast_tps,
            "reference_seconds": t_ref,
            "reference_tps": ref_tps,
            "speedup": fast_tps / ref_tps,
            "tainted_fraction": res.total_tainted / total if total else 0.0,
            "max_abs_diff": float(np.max(np.abs(prefix.tainted - np.asarray(ref))))
            if sample
            else 0.0,
        }
    return out


def _print_table(r: dict) -> None:
    print(
        f"ledger: {r['n_transfers']:,} transfers, {r['n_addresses']:,} addresses; "
        f"reference on first {r['sample']:,}; sparse-id remap {r['remap_seconds']:.2f} s"
    )
    head = (
        f"{'policy':<8} {'numba s':>8} {'numba tr/s':>12} {'ref s':>7} {'ref tr/s':>10} "
        f"{'speedup':>8} {'tainted':>8} {'max|diff|':>10}"
    )
    print(head)
    print("-" * len(head))
    for p, v in r["policies"].items():
        print(
            f"{p:<8} {v['numba_seconds']:>8.2f} {v['numba_tps']:>12,.0f} "
            f"{v['reference_seconds']:>7.2f} {v['reference_tps']:>10,.0f} "
            f"{v['speedup']:>7.0f}x {v['tainted_fraction']:>8.3%} {v['max_abs_diff']:>10.1e}"
        )


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:4]]
    _print_table(bench_taint(*args))
