"""The compiled engine gives the reference engine's bytes (issue 23's agreement tests).

``simulate(..., engine="compiled")`` runs the same model with its bookkeeping in numba kernels
(model/compiled.py, model/kernels.py); it keeps the reference's draws in the reference's order, so
every field of the replication must be the same bytes: the golden scenarios, every bundled
scenario (on a shorter horizon), random scenario/seed/clock combinations drawn by hypothesis, the
files ``run --engine compiled`` writes — and each kernel against the numpy code it replaces.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import simpy
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from conftest import REPO
from launderflow.cli import main
from launderflow.model import kernels
from launderflow.model.agenda import Agenda
from launderflow.model.simulate import simulate
from launderflow.runs.replications import replication_rng
from launderflow.scenario.loader import ScenarioError, load_scenario

GOLDEN = sorted((REPO / "tests" / "golden").glob("*.yaml"))
BUNDLED = sorted((REPO / "scenarios").glob("*.yaml")) + sorted((REPO / "tests" / "scenarios").glob("*.yaml"))
SMALL = [*GOLDEN, *sorted((REPO / "tests" / "scenarios").glob("*.yaml"))]


def as_bytes(value: Any, path: str = "") -> dict[str, Any]:
    """Every leaf of a replication as (dtype, shape, bytes) for arrays and repr for the rest."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(as_bytes(item, f"{path}.{key}"))
        return out
    if isinstance(value, (list, tuple)):
        out = {}
        for i, item in enumerate(value):
            out.update(as_bytes(item, f"{path}[{i}]"))
        return out
    if isinstance(value, np.ndarray):
        return {path: (value.dtype.str, value.shape, value.tobytes())}
    return {path: repr(value)}


def differing_fields(scenario: Any, seed: int) -> list[str]:
    """Fields of replication 0 of ``seed`` that are not the same bytes with both engines."""
    reps = {engine: as_bytes(dataclasses.asdict(simulate(scenario, replication_rng(seed, 0), keep_lots=True,
                                                         engine=engine)))
            for engine in ("reference", "compiled")}
    ref, comp = reps["reference"], reps["compiled"]
    return sorted(k for k in ref.keys() | comp.keys() if ref.get(k) != comp.get(k))


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
@pytest.mark.parametrize("seed", [1, 2])
def test_golden_scenarios_are_the_same_bytes(path: Path, seed: int):
    assert differing_fields(load_scenario(path), seed) == []


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.stem)
def test_bundled_scenarios_are_the_same_bytes(path: Path):
    assert differing_fields(load_scenario(path, {"clock.horizon": "6d"}), 5) == []


@settings(max_examples=20, deadline=None)
@given(path=st.sampled_from(SMALL), seed=st.integers(0, 2**32 - 1),
       resolution=st.sampled_from(["1min", "5min", "15min", "1h", "6h"]),
       horizon=st.sampled_from(["2d", "9d", "30d"]))
def test_random_scenarios_are_the_same_bytes(path: Path, seed: int, resolution: str, horizon: str):
    scenario = load_scenario(path, {"clock.resolution": resolution, "clock.horizon": horizon})
    assert differing_fields(scenario, seed) == []


def test_the_comparison_sees_a_difference():
    """The byte comparison is not blind: another seed differs."""
    scenario = load_scenario(GOLDEN[0])
    a = as_bytes(dataclasses.asdict(simulate(scenario, replication_rng(1, 0), engine="compiled")))
    b = as_bytes(dataclasses.asdict(simulate(scenario, replication_rng(2, 0), engine="compiled")))
    assert a.keys() == b.keys() and any(a[k] != b[k] for k in a)


def test_run_engine_compiled_writes_the_same_files(tmp_path: Path):
    path = REPO / "tests" / "golden" / "golden_venues.yaml"
    for engine in ("reference", "compiled"):
        result = CliRunner().invoke(main, ["run", str(path), "--runs", "2", "--out", str(tmp_path / engine),
                                           "--engine", engine])
        assert result.exit_code == 0, result.output
    files = sorted(p.relative_to(tmp_path / "reference") for p in (tmp_path / "reference").rglob("*") if p.is_file())
    assert len(files) > 5
    for name in files:
        assert (tmp_path / "reference" / name).read_bytes() == (tmp_path / "compiled" / name).read_bytes(), name


def test_an_unknown_engine_is_refused():
    scenario = load_scenario(GOLDEN[0])
    with pytest.raises(ValueError, match="unknown engine 'fast'"):
        simulate(scenario, replication_rng(1, 0), engine="fast")
    result = CliRunner().invoke(main, ["run", str(GOLDEN[0]), "--engine", "fast"])
    assert result.exit_code == 2 and "'fast' is not one of" in result.output and "Traceback" not in result.output


# --- each kernel against the numpy code it replaces --------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_schedule_and_pop_due_serve_what_the_reference_agenda_serves(data):
    """Rounding to the tick, parking after the horizon, never before now, stale entries dropped:
    the heap's due lots at each tick are the reference's (sorted, once each)."""
    resolution = data.draw(st.sampled_from([1 / 60, 5 / 60, 0.25, 1.0]))
    now, horizon = 3.0, 40.0
    n_lots = data.draw(st.integers(1, 40))
    ready = np.full(n_lots, np.inf)
    heap_t, heap_i, size = np.empty(4096, np.int64), np.empty(4096, np.int64), 0
    reference = Agenda(simpy.Environment(), resolution, lambda: ready, lambda ids, when: None)
    expected: dict[int, int] = {}  # lot -> its last scheduled tick (the reference's ready / resolution)
    for _ in range(data.draw(st.integers(1, 6))):
        ids = np.array(data.draw(st.lists(st.integers(0, n_lots - 1), min_size=1, max_size=30, unique=True)), dtype=np.int64)
        times = np.array(data.draw(st.lists(st.floats(0.0, 60.0), min_size=len(ids), max_size=len(ids))))
        size, first = kernels.schedule(ids, times, horizon, resolution, now, ready, heap_t, heap_i, size)
        ticks = reference.tick_of(times)
        early = ticks * resolution < now
        ticks[early] += 1
        soon = times <= horizon
        for lot, tick, keep in zip(ids.tolist(), ticks.tolist(), soon.tolist()):
            if keep:
                expected[lot] = tick
            else:
                expected.pop(lot, None)
        assert first == (int(ticks[soon].min()) if soon.any() else kernels.NO_TICK)
    assert all(ready[lot] == tick * resolution for lot, tick in expected.items())
    served: dict[int, int] = {}
    while size:
        tick = int(heap_t[0])
        size, due = kernels.pop_due(heap_t, heap_i, size, tick, ready, tick * resolution)
        assert np.all(np.diff(due) > 0)  # sorted, once each
        for lot in due.tolist():
            served[lot] = tick
    assert served == expected


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_book_move_adds_what_bincount_adds(data):
    n = data.draw(st.integers(0, 50))
    src = np.array(data.draw(st.lists(st.integers(0, 11), min_size=n, max_size=n)), dtype=np.int8)
    dst = np.array(data.draw(st.lists(st.integers(0, 11), min_size=n, max_size=n)), dtype=np.int8)
    values = np.array(data.draw(st.lists(st.floats(0, 1e9), min_size=n, max_size=n)), dtype=np.float64)
    plus, minus = np.zeros(12), np.zeros(12)
    kernels.book_move(plus, minus, src, dst, values)
    assert plus.tobytes() == np.bincount(dst, weights=values, minlength=12).tobytes()
    assert minus.tobytes() == np.bincount(src, weights=values, minlength=12).tobytes()


_MAGNITUDES = st.floats(-1e12, 1e12, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(values=st.lists(_MAGNITUDES, max_size=700), cuts=st.lists(st.integers(1, 699), max_size=6))
def test_kernel_sums_are_numpys_to_the_bit(values, cuts):
    """``ndarray.sum`` and ``np.add.reduceat`` sum pairwise (in blocks of 128, halves above): the
    kernels' sums must be the same bits, or the engines' books would drift apart."""
    a = np.array(values, dtype=np.float64)
    assert kernels.array_sum(a) == a.sum()
    if len(a):
        firsts = np.array(sorted({0, *(c for c in cuts if c < len(a))}), dtype=np.int64)
        ends = np.append(firsts[1:], len(a))
        sums = [kernels.segment_sum(a, lo, hi) for lo, hi in zip(firsts.tolist(), ends.tolist())]
        assert np.array(sums).tobytes() == np.add.reduceat(a, firsts).tobytes()


def test_long_sums_take_numpys_halves():
    rng = np.random.default_rng(7)
    for n in (129, 1000, 8193, 100_003):
        a = rng.standard_normal(n) * 10.0 ** rng.integers(-6, 12, n)
        assert kernels.array_sum(a) == a.sum(), n


def test_kernels_reloaded_from_the_cache_give_the_same_bytes(tmp_path: Path):
    """A later process loads the kernels from numba's cache instead of compiling them (as dask
    workers do): the reloaded kernels must run, and give the reference's bytes."""
    code = (
        "import sys; sys.path.insert(0, %r); from bench_replication import one_replication; from pathlib import Path; "
        "p = Path(%r); print(one_replication(p, engine='compiled')['digest'], one_replication(p)['digest'])"
    ) % (str(REPO / "sim"), str(REPO / "tests" / "golden" / "golden_interventions.yaml"))
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    for _ in range(2):  # compiles, then loads
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        compiled, reference = done.stdout.split()
        assert compiled == reference
    assert any((tmp_path / "cache").rglob("*.nbc"))


# --- random playbooks over every venue kind --------------------------------------------------------------

_DELAYS = st.sampled_from(["0h", "10min", "2h", "1d", {"dist": "exponential", "mean": "6h"},
                           {"dist": "lognormal", "median": "3h", "sigma": 1.0}])
_HOPS = st.one_of(
    st.builds(lambda w, d: {"hop": "split", "wallets": w, "delay": d}, st.integers(1, 12), _DELAYS),
    st.builds(lambda n, f, d: {"hop": "peel", "length": n, "fraction": f, "delay": d},
              st.integers(1, 5), st.floats(0.05, 0.6), _DELAYS),
    st.builds(lambda d: {"hop": "transfer", "delay": d}, _DELAYS),
    st.builds(lambda d: {"hop": "wait", "delay": d}, _DELAYS),
    st.builds(lambda w, q: {"hop": "dormant", "waves": w, "first": "2d", "every": "1d",
                            "spread": {"dist": "exponential", "mean": "4h"}, "quiet": q},
              st.integers(1, 3), st.sampled_from(["0h", "12h"])),
    st.builds(lambda w: {"hop": "consolidate", "wallets": w}, st.integers(1, 4)),
    st.sampled_from([{"hop": "swap", "venue": "uniswap", "to": "ETH"}, {"hop": "mix", "venue": "tornado"},
                     {"hop": "mix", "venue": "sinbad"}, {"hop": "bridge", "venue": "thorchain", "to": "BTC"},
                     {"hop": "exchange", "venue": ["binance", "exch"]}]),
)


MAX_FAN_OUT = 500


def _fan_out(hops: list[dict]) -> int:
    """An upper bound on the lots a playbook makes of one: splits multiply by their wallets, peels
    by their pieces, dormant hops by their waves (a consolidation gathers, but its groups keep the
    bound simple)."""
    n = 1
    for hop in hops:
        n *= {"split": hop.get("wallets", 1), "peel": hop.get("length", 0) + 1, "dormant": hop.get("waves", 1)}.get(hop["hop"], 1)
    return n


def test_the_fan_out_bound_counts_splits_peels_and_waves():
    hops = [{"hop": "split", "wallets": 12}, {"hop": "peel", "length": 4}, {"hop": "dormant", "waves": 3},
            {"hop": "consolidate", "wallets": 2}, {"hop": "wait"}]
    assert _fan_out(hops) == 12 * 5 * 3


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(hops=st.lists(_HOPS, min_size=1, max_size=6), seed=st.integers(0, 2**32 - 1),
       resolution=st.sampled_from(["1min", "10min", "1h"]), discovered=st.sampled_from(["0h", "1h", "3d"]),
       tracing=st.sampled_from(["base", "instant", "team"]))
def test_random_playbooks_are_the_same_bytes(tmp_path_factory, hops, seed, resolution, discovered, tracing):
    """Playbooks drawn from every hop kind over all_venues' venues (each kind at a random place,
    with random parameters), ending in a cash-out: both engines give the same bytes."""
    if _fan_out(hops) > MAX_FAN_OUT:
        reject()  # (tens of thousands of lots at one-minute ticks: minutes per example, no new code path)
    data = yaml.safe_load((REPO / "tests" / "scenarios" / "all_venues.yaml").read_text(encoding="utf-8"))
    data["playbook"] = [*hops, {"hop": "cash_out", "venue": "garantex"}]
    data["clock"] = {"horizon": "12d", "resolution": resolution, "timeline_step": "6h"}
    data["thefts"][0]["discovered_after"] = discovered
    if tracing == "instant":
        data["tracing"] = {}
    elif tracing == "team":
        data["tracing"] = {**data.get("tracing", {}),
                           "tracers": [{"name": "firm", "kind": "analytics", "latency": "2h",
                                        "capacity_per_hour": 40}]}
    path = tmp_path_factory.mktemp("playbook") / "random.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    try:
        scenario = load_scenario(path)
    except ScenarioError:
        reject()  # (a combination the schema refuses)
    assert differing_fields(scenario, seed) == []


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_exit_groups_are_the_exit_logs(data):
    """The exit log's groups (asset, was frozen) and their sums, kernel against numpy."""
    from launderflow.model.prices import ExitLog
    from launderflow.model.states import Location

    n = data.draw(st.integers(1, 60))
    assets = np.array(data.draw(st.lists(st.integers(0, 7), min_size=n, max_size=n)), dtype=np.int16)
    was = np.array(data.draw(st.lists(st.sampled_from([int(Location.FROZEN), int(Location.VENUE), 0]),
                                      min_size=n, max_size=n)), dtype=np.int64)
    values = np.array(data.draw(st.lists(st.floats(0, 1e9), min_size=n, max_size=n)), dtype=np.float64)
    keys, sums = kernels.exit_groups(assets, values, was, int(Location.FROZEN))
    ref_keys, ref_sums = ExitLog.groups(assets, values, was)
    assert keys.tobytes() == ref_keys.astype(np.int64).tobytes() and sums.tobytes() == ref_sums.tobytes()


def test_venue_kinds_without_a_kernel_run_their_own_code(monkeypatch):
    """A venue kind without a kernel (here: none has one) runs its reference methods inside the
    compiled engine, with the same bytes; and the kinds' kernels do run on the golden venues."""
    from launderflow.model import compiled

    scenario = load_scenario(REPO / "tests" / "golden" / "golden_venues.yaml")
    calls: list[str] = []
    for key, kernel in list(compiled.VENUE_KERNELS.items()):
        monkeypatch.setitem(compiled.VENUE_KERNELS, key,
                            lambda *a, _k=kernel, _n=f"{key[0].__name__}.{key[1]}": calls.append(_n) or _k(*a))
    with_kernels = as_bytes(dataclasses.asdict(simulate(scenario, replication_rng(3, 0), engine="compiled")))
    assert {"OtcDesk.enter", "OtcDesk.release", "PoolMixer.release"} <= set(calls)
    monkeypatch.setattr(compiled, "VENUE_KERNELS", {})
    without = as_bytes(dataclasses.asdict(simulate(scenario, replication_rng(3, 0), engine="compiled")))
    assert with_kernels == without
    with pytest.raises(ValueError, match="enter or release"):
        compiled.venue_kernel(compiled.OtcDesk, "refuses")


def test_the_payout_kernel_is_world_pay_out(monkeypatch):
    """Every venue kind's payout (exchanges, bridges, DEXes and the pool mixer's notes on the golden
    venues) runs the compiled ``pay_out``, with the bytes of the reference's ``World.pay_out`` run on
    the compiled primitives."""
    from launderflow.model import compiled
    from launderflow.model.world import World

    scenario = load_scenario(REPO / "tests" / "golden" / "golden_venues.yaml")
    kinds: set[str] = set()
    kernel = compiled.CompiledWorld.pay_out
    monkeypatch.setattr(compiled.CompiledWorld, "pay_out",
                        lambda self, venue, *a, **k: kinds.add(venue.kind) or kernel(self, venue, *a, **k))
    with_kernel = as_bytes(dataclasses.asdict(simulate(scenario, replication_rng(4, 0), engine="compiled")))
    assert {"exchange", "bridge", "pool_mixer"} <= kinds
    monkeypatch.setattr(compiled.CompiledWorld, "pay_out", World.pay_out)
    without = as_bytes(dataclasses.asdict(simulate(scenario, replication_rng(4, 0), engine="compiled")))
    reference = as_bytes(dataclasses.asdict(simulate(scenario, replication_rng(4, 0), engine="reference")))
    assert with_kernel == without == reference
