"""One replication measured, in this process or a fresh one: the building blocks of sim/bench.py and
sim/bench_engine.py (a module of its own, so neither imports the other's main)."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def bare_simpy_events_per_second(n: int) -> float:
    """One process doing ``n`` timeouts: the cost of one simpy event per transfer."""
    import simpy

    env = simpy.Environment()

    def loop(env: simpy.Environment, n: int):
        for _ in range(n):
            yield env.timeout(1.0)

    env.process(loop(env, n))
    start = time.perf_counter()
    env.run()
    return n / (time.perf_counter() - start)


def one_replication(scenario_path: Path, seed: int = 1, horizon: str | None = None,
                    resolution: str | None = None, engine: str = "reference") -> dict[str, float]:
    """Simulate one replication in this process; return transfers, wallets, seconds, final shares
    (and a digest of every array and number of the replication: the same bytes, the same digest)."""
    from launderflow.runs.replications import replication_rng
    from launderflow.metrics import final_states
    from launderflow.model.simulate import simulate
    from launderflow.scenario.loader import load_scenario

    overrides = {**({"clock.horizon": horizon} if horizon else {}), **({"clock.resolution": resolution} if resolution else {})}
    scenario = load_scenario(scenario_path, overrides or None)
    start = time.perf_counter()
    rep = simulate(scenario, replication_rng(seed, 0), keep_ledger=True, engine=engine)
    seconds = time.perf_counter() - start
    shares = {f"final_share_{k}": v / rep.stolen_usd for k, v in final_states(rep).items()}
    ledger = rep.ledger or {}
    stolen = int(np.sum(ledger["lot"] >= 0)) if ledger else rep.transfers
    wallets = int(len(np.unique(ledger["dst"][ledger["lot"] >= 0]))) if ledger else 0
    return {"seconds": seconds, "transfers": rep.transfers, "stolen_transfers": stolen,
            "honest_transfers": rep.transfers - stolen, "launderer_wallets": wallets, "lots": rep.lots,
            "batches": rep.batches, "digest": digest(rep), **shares}


def digest(rep: object) -> str:
    """SHA-256 of every array (dtype, shape, bytes) and every other value of a replication."""
    import dataclasses
    import hashlib

    h = hashlib.sha256()

    def feed(value: object) -> None:
        if isinstance(value, dict):
            for key in value:
                h.update(repr(key).encode())
                feed(value[key])
        elif isinstance(value, (list, tuple)):
            for item in value:
                feed(item)
        elif isinstance(value, np.ndarray):
            h.update(f"{value.dtype.str}{value.shape}".encode())
            h.update(np.ascontiguousarray(value).tobytes())
        else:
            h.update(repr(value).encode())

    feed(dataclasses.asdict(rep))  # type: ignore[call-overload]
    return h.hexdigest()


def warm_up(engine: str) -> None:
    """A small replication with ``engine`` (the compiled one loads its kernels' cache on first use)."""
    one_replication(ROOT / "tests" / "scenarios" / "all_venues.yaml", horizon="3d", engine=engine)


def peak_rss_mib() -> float:
    """This process's peak resident memory in MiB.

    Linux's ``ru_maxrss`` survives ``exec``: a child started by a big parent reports the parent's
    peak. ``VmHWM`` belongs to the process image itself, so it is read when there is one.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 if sys.platform != "darwin" else 1024**2)


def fresh_replication(scenario_path: Path, horizon: str | None, engine: str = "reference",
                       warm_up: bool = False) -> dict[str, float]:
    """Run one replication in a fresh interpreter and read its peak resident memory (``warm_up``:
    first a small scenario with the same engine, so that the kernels' cache is loaded outside the timing)."""
    code = (
        "import json, sys; sys.path.insert(0, %r); from bench_replication import one_replication, peak_rss_mib, warm_up; "
        "warm_up(%r) if %r else None; "
        "r = one_replication(__import__('pathlib').Path(%r), horizon=%r, engine=%r); "
        "r['peak_rss_mib'] = peak_rss_mib(); print(json.dumps(r))"
    ) % (str(Path(__file__).resolve().parent), engine, warm_up, str(scenario_path), horizon, engine)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])
