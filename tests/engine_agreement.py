"""The statistical agreement of two engines (issue 23): outcome shares over many seeds, a permutation test.

Where an engine cannot keep the reference's order of events within an instant (the tracers'
follow-ups on the compiled agenda, say), its replications are no longer the same bytes; they must
then be *statistically indistinguishable*. For each scenario, each engine runs ``n`` replications
on its own seeds (disjoint sets: a two-sample comparison, not a paired one) and each replication
gives the shares of the stolen value that are frozen, seized, cashed out, traced and dark at the
horizon. The test statistic is the largest standardized difference in mean over the outcomes
(``max_j |mean_a - mean_b| / sd_j``, ``sd_j`` pooled); its null distribution comes from permuting the
engine labels, so it needs no normality and accounts for the outcomes' correlation (one test per
scenario, no correction over the outcomes).

The power is measured, not assumed: :func:`detection_rate` draws two samples of ``n`` from one
engine's replications (the null holds), adds a known shift to one outcome of one of them and counts
how often the test rejects. :func:`smallest_detected_shift` is the smallest such shift (in share
points) detected in at least 80 % of the trials.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from launderflow.metrics import final_states
from launderflow.model.simulate import simulate
from launderflow.runs.replications import replication_rng
from launderflow.scenario.loader import load_scenario

OUTCOMES = ("frozen", "seized", "cashed_out", "traced", "dark")


def outcome_shares(path: Path, horizon: str, engine: str, seeds: Sequence[int]) -> np.ndarray:
    """(len(seeds), len(OUTCOMES)): each replication's outcome shares of the stolen value at the horizon."""
    scenario = load_scenario(path, {"clock.horizon": horizon})
    rows = []
    for seed in seeds:
        rep = simulate(scenario, replication_rng(seed, 0), engine=engine)
        states = final_states(rep)
        rows.append([states[name] / rep.stolen_usd for name in OUTCOMES])
    return np.array(rows)


def _statistic(a: np.ndarray, b: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Largest standardized |difference in mean| over the outcomes; ``a``, ``b``: (..., n, k)."""
    return (np.abs(a.mean(axis=-2) - b.mean(axis=-2)) / scale).max(axis=-1)


def permutation_p(a: np.ndarray, b: np.ndarray, rounds: int = 2000, seed: int = 0) -> float:
    """Two-sided permutation p-value of the max-standardized difference in mean between samples
    ``a`` and ``b`` ((n, k) each). Outcomes that never vary in either sample carry no information
    and are left out (all constant and equal: p = 1)."""
    pooled = np.vstack([a, b])
    scale = pooled.std(axis=0, ddof=1)
    varies = scale > 1e-12
    if not varies.any():
        return 1.0
    pooled, scale = pooled[:, varies], scale[varies]
    n = len(a)
    observed = _statistic(pooled[:n], pooled[n:], scale)
    rng = np.random.default_rng(seed)
    order = rng.permuted(np.tile(np.arange(len(pooled)), (rounds, 1)), axis=1)
    shuffled = pooled[order]  # (rounds, 2n, k)
    null = _statistic(shuffled[:, :n], shuffled[:, n:], scale)
    return float((1 + np.count_nonzero(null >= observed - 1e-12)) / (rounds + 1))


def detection_rate(sample: np.ndarray, outcome: int, shift: float, alpha: float, n: int, trials: int = 100,
                   rounds: int = 500, seed: int = 0) -> float:
    """Share of ``trials`` in which the test rejects at ``alpha`` two samples of ``n`` drawn (with
    replacement) from ``sample``, ``shift`` added to outcome ``outcome`` of the second."""
    rng = np.random.default_rng(seed)
    hits = 0
    for trial in range(trials):
        a = sample[rng.integers(0, len(sample), n)]
        b = sample[rng.integers(0, len(sample), n)].copy()
        b[:, outcome] += shift
        hits += permutation_p(a, b, rounds, seed=trial) <= alpha
    return hits / trials


def smallest_detected_shift(sample: np.ndarray, outcome: int, alpha: float, n: int, power: float = 0.8,
                            trials: int = 100, rounds: int = 500) -> float:
    """The smallest shift (share points) of outcome ``outcome`` detected in at least ``power`` of the
    trials, by bisection on a log scale between 1e-4 and 1 (inf: not even a shift of 1)."""
    lo, hi = 1e-4, 1.0
    if detection_rate(sample, outcome, hi, alpha, n, trials, rounds) < power:
        return float("inf")
    for _ in range(12):
        mid = float(np.sqrt(lo * hi))
        if detection_rate(sample, outcome, mid, alpha, n, trials, rounds) >= power:
            hi = mid
        else:
            lo = mid
    return hi
