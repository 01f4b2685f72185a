"""Issue 23's figures: the compiled engine (numba kernels) against the reference (numpy), in one run.

Called by ``python sim/bench.py`` (figure (f), the ``engine`` key of ``--json``):

* ``replication_seconds`` / ``reference_replication_seconds``: ``bybit_2025`` at 5-minute ticks,
  seed 1, both engines in this process, interleaved ``repeat`` times (medians); ``same_bytes``: the
  two replications' digests are equal;
* ``per_batch_us``: least-squares slope of seconds over batches across the 5-min, 15-min and 1-h runs;
* ``large_transfers_per_second`` and ``peak_rss_mib``: the scale scenario (``bybit_2025_honest``,
  >= 10 M transfers) with the compiled engine in a fresh process, next to
  ``simpy_ceiling_events_per_second`` (one timeout per transfer, measured before and after);
* ``compile_seconds``: what the first use costs with an empty kernel cache, and
  ``cache_load_seconds``: what a later process (or a dask worker) pays to load the cache instead.

Figures the bench does not measure are ``null``, with the reason under ``not_measured``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench_replication import ROOT, bare_simpy_events_per_second, fresh_replication, one_replication, warm_up

NOT_MEASURED = {
    "policy_study_seconds": "not timed by the bench (both engines give the same numbers; time "
                            "`python sim/policy_study.py --engine compiled|reference` by hand: minutes each)",
    "crossval_seconds": "not timed by the bench (time `launderflow crossval FILE --engine compiled|reference` by hand)",
}


def slope_us(runs: list[dict[str, float]]) -> float:
    """Microseconds per batch: the least-squares slope of seconds over batches."""
    batches = np.array([r["batches"] for r in runs], dtype=float)
    seconds = np.array([r["seconds"] for r in runs], dtype=float)
    return float(np.polyfit(batches, seconds, 1)[0] * 1e6)


def first_use_seconds() -> tuple[float, float]:
    """Seconds the compiled engine adds to a small run in a fresh process: with an empty kernel
    cache (compilation) and again with the cache that run left (loading it)."""
    code = (
        "import json, sys, time; sys.path.insert(0, %r); from bench_replication import one_replication; "
        "from pathlib import Path; p = Path(%r); one_replication(p, horizon='3d'); "
        "c = one_replication(p, horizon='3d', engine='compiled')['seconds']; "
        "r = one_replication(p, horizon='3d')['seconds']; print(json.dumps([c, r]))"
    ) % (str(Path(__file__).resolve().parent), str(ROOT / "tests" / "scenarios" / "all_venues.yaml"))
    extra = []
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        for _ in range(2):
            out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env)
            compiled, reference = json.loads(out.stdout.strip().splitlines()[-1])
            extra.append(compiled - reference)
    return extra[0], extra[1]


def engine_figures(quick: bool = False, repeat: int = 1) -> dict[str, object]:

    bybit = ROOT / "scenarios" / "bybit_2025.yaml"
    horizon = "10d" if quick else None
    compile_s, load_s = first_use_seconds()
    warm_up("compiled")
    ceilings = [bare_simpy_events_per_second(2_000_000)]
    pairs = [(one_replication(bybit, horizon=horizon), one_replication(bybit, horizon=horizon, engine="compiled"))
             for _ in range(repeat)]
    reference, compiled = pairs[0]
    coarser = {res: (one_replication(bybit, horizon=horizon, resolution=res),
                     one_replication(bybit, horizon=horizon, resolution=res, engine="compiled"))
               for res in ("15min", "1h")}
    same = all(r["digest"] == c["digest"] for r, c in [*pairs, *coarser.values()])
    large_path = ROOT / "scenarios" / "bybit_2025_honest.yaml"
    large = fresh_replication(large_path, horizon, engine="compiled", warm_up=True)
    ceilings.append(bare_simpy_events_per_second(2_000_000))
    ceiling = max(ceilings)  # the faster one: the conservative ratio
    seconds = float(np.median([c["seconds"] for _, c in pairs]))
    ref_seconds = float(np.median([r["seconds"] for r, _ in pairs]))
    large_rate = large["transfers"] / large["seconds"]
    return {
        "scenario": bybit.name, "horizon": horizon or "scenario's", "repeat": repeat,
        "replication_seconds": seconds,
        "reference_replication_seconds": ref_seconds,
        "speedup": ref_seconds / seconds,
        "same_bytes": same,
        "batches": {"5min": compiled["batches"], **{res: c["batches"] for res, (_, c) in coarser.items()}},
        "transfers": compiled["transfers"],
        "per_batch_us": slope_us([compiled, *(c for _, c in coarser.values())]),
        "reference_per_batch_us": slope_us([reference, *(r for r, _ in coarser.values())]),
        "coarser_seconds": {res: {"compiled": c["seconds"], "reference": r["seconds"]} for res, (r, c) in coarser.items()},
        "large_scenario": large_path.name,
        "large_transfers": large["transfers"],
        "large_seconds": large["seconds"],
        "large_transfers_per_second": large_rate,
        "large_ratio_to_ceiling": large_rate / ceiling,
        "simpy_ceiling_events_per_second": ceiling,
        "peak_rss_mib": large["peak_rss_mib"],
        "compile_seconds": compile_s,
        "cache_load_seconds": load_s,
        **{name: None for name in NOT_MEASURED},
        "not_measured": NOT_MEASURED,
    }


def describe(fig: dict[str, object]) -> str:
    """The figures as a few lines of text (what ``--json`` keeps, readable)."""
    lines = [
        f"(f) engines on {fig['scenario']} (horizon: {fig['horizon']}, 5-min ticks, seed 1, median of {fig['repeat']}):",
        f"    compiled {fig['replication_seconds']:.2f} s, reference {fig['reference_replication_seconds']:.2f} s: "
        f"{fig['speedup']:.2f}x; same bytes: {fig['same_bytes']}",
        f"    per batch: compiled {fig['per_batch_us']:.0f} us, reference {fig['reference_per_batch_us']:.0f} us "
        f"(batches {fig['batches']})",
        f"    {fig['large_scenario']}: {fig['large_transfers']:,} transfers in {fig['large_seconds']:.1f} s = "
        f"{fig['large_transfers_per_second']:,.0f}/s, {fig['large_ratio_to_ceiling']:.2f}x the simpy ceiling "
        f"({fig['simpy_ceiling_events_per_second']:,.0f} events/s); peak {fig['peak_rss_mib']:.0f} MiB",
        f"    first use: {fig['compile_seconds']:.1f} s to compile the kernels; a later process loads them in "
        f"{fig['cache_load_seconds']:.2f} s",
    ]
    lines += [f"    {name}: not measured ({why})" for name, why in fig["not_measured"].items()]  # type: ignore[union-attr]
    return "\n".join(lines)
