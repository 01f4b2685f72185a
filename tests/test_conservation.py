"""Conservation of stolen value, as a hypothesis property over random scenarios.

At every logged instant the six locations (launderer, venue, frozen, seized, cashed_out, fees) hold
exactly the value stolen so far, traced + dark hold the same, and no cell goes negative.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from launderflow import metrics
from launderflow.model.simulate import simulate
from launderflow.model.states import N_CELLS
from launderflow.scenario.schema import Scenario

TRACEABLE = ("transfer", "split", "peel", "consolidate", "cash_out")

durations = st.one_of(
    st.sampled_from(["0h", "90s", "15min", "3h", "1d"]),
    st.floats(min_value=0.0, max_value=72.0, allow_nan=False),
)


@st.composite
def delays(draw: Any) -> Any:
    kind = draw(st.sampled_from(["bare", "fixed", "exponential", "lognormal", "uniform"]))
    if kind == "bare":
        return draw(durations)
    if kind == "fixed":
        return {"dist": "fixed", "value": draw(durations)}
    if kind == "exponential":
        return {"dist": "exponential", "mean": draw(durations)}
    if kind == "lognormal":
        return {"dist": "lognormal", "median": draw(durations), "sigma": draw(st.floats(0.0, 2.0))}
    low = draw(st.floats(0.0, 48.0))
    return {"dist": "uniform", "low": low, "high": low + draw(st.floats(0.0, 48.0))}


@st.composite
def hops(draw: Any) -> dict[str, Any]:
    kind = draw(st.sampled_from(["transfer", "split", "peel", "wait", "consolidate", "cash_out"]))
    if kind == "transfer":
        return {"hop": "transfer", "delay": draw(delays())}
    if kind == "split":
        return {"hop": "split", "wallets": draw(st.integers(1, 5)), "concentration": draw(st.floats(0.05, 50.0)),
                "delay": draw(delays())}
    if kind == "peel":
        return {"hop": "peel", "length": draw(st.integers(1, 4)), "fraction": draw(st.floats(0.01, 0.99)),
                "delay": draw(delays())}
    if kind == "wait":
        return {"hop": "wait", "delay": draw(delays())}
    if kind == "consolidate":
        return {"hop": "consolidate", "wallets": draw(st.integers(1, 3)), "delay": draw(delays())}
    return {"hop": "cash_out", "venue": draw(st.sampled_from(["desk_a", "desk_b"]))}


@st.composite
def scenarios(draw: Any) -> dict[str, Any]:
    fee = st.one_of(st.just(0.0), st.floats(0.0, 50.0), st.floats(1_000.0, 200_000.0))  # large fees eat small lots
    chains = {"eth": {"confirmation": draw(durations), "fee_usd": draw(fee)},
              "tron": {"confirmation": draw(durations), "fee_usd": draw(fee)}}
    assets = {"ETH": {"chain": "eth", "price_usd": draw(st.floats(1.0, 5_000.0))},
              "USDT": {"chain": "tron", "price_usd": 1.0, "freezable": True}}
    venues = {name: {"kind": "otc", "jurisdiction": draw(st.sampled_from(["offshore", "NO", "RU"])),
                     "delay": draw(delays()), "haircut": draw(st.floats(0.0, 0.9))}
              for name in ("desk_a", "desk_b")}
    horizon = draw(st.floats(6.0, 20 * 24.0))
    thefts = []
    for i in range(draw(st.integers(1, 2))):
        stolen = [{"asset": a, "amount": draw(st.floats(0.001, 1e6))}
                  for a in draw(st.lists(st.sampled_from(["ETH", "USDT"]), min_size=1, max_size=2, unique=True))]
        theft: dict[str, Any] = {"name": f"theft{i}", "victim": "v", "time": draw(st.floats(0.0, horizon / 2)),
                                 "stolen": stolen, "discovered_after": draw(durations)}
        if i > 0 and draw(st.booleans()):
            theft["playbook"] = draw(st.lists(hops(), min_size=1, max_size=5))
        thefts.append(theft)
    success = draw(st.dictionaries(st.sampled_from(TRACEABLE), st.sampled_from([0.0, 0.3, 0.9, 1.0]) | st.floats(0, 1)))
    return {
        "name": "random",
        "clock": {"horizon": horizon,
                  "resolution": draw(st.sampled_from(["1min", "10min", "1h", "7s"])),
                  "timeline_step": "6h"},
        "chains": chains,
        "assets": assets,
        "venues": venues,
        "thefts": thefts,
        "playbook": draw(st.lists(hops(), min_size=1, max_size=5)),
        "tracing": {"hop_success": success},
    }


def stolen_by(scenario: Scenario, t: np.ndarray) -> np.ndarray:
    """Value stolen at or before each instant (thefts happen on the clock's tick grid)."""
    out = np.zeros(len(t))
    res = scenario.clock.resolution
    for theft in scenario.thefts:
        value = math.fsum(s.amount * scenario.assets[s.asset].price_usd for s in theft.stolen)
        on_grid = math.ceil(theft.time / res - 1e-9) * res
        out += np.where(t >= on_grid - 1e-9, value, 0.0)
    return out


def check_conservation(scenario: Scenario, seed: int) -> None:
    rep = simulate(scenario, np.random.default_rng(seed))
    total = scenario.stolen_usd
    assert math.isclose(rep.stolen_usd, total, rel_tol=1e-12)
    tol = 1e-9 * total

    # the book at every instant at which anything changed
    # one row per changing instant, in time order (up to float noise between the tick time and simpy's
    # clock; exact duplicates are a known edge case reported separately)
    assert np.all(np.diff(rep.log_time) > -1e-9), "log rows out of time order"
    cells = np.cumsum(rep.log_delta, axis=0)
    expected = stolen_by(scenario, rep.log_time)
    assert cells.shape == (len(rep.log_time), N_CELLS)
    np.testing.assert_allclose(cells.sum(axis=1), expected, rtol=0, atol=tol)
    assert cells.min(initial=0.0) >= -tol, f"a cell went negative: {cells.min()}"

    states = metrics.state_values(cells)
    locations, traced, dark = states[:, :6], states[:, 6], states[:, 7]
    np.testing.assert_allclose(locations.sum(axis=1), expected, rtol=0, atol=tol)
    np.testing.assert_allclose(traced + dark, expected, rtol=0, atol=tol)

    # the final totals are the last row of the log, and also conserve everything stolen
    np.testing.assert_allclose(rep.final_cells, cells[-1], rtol=0, atol=tol)
    assert math.isclose(rep.final_cells.sum(), total, rel_tol=1e-9)

    # the timeline on a grid (including instants between log rows) conserves too
    grid = metrics.timeline_grid(scenario.clock.horizon, scenario.clock.timeline_step)
    tl = metrics.timeline(rep, grid)
    np.testing.assert_allclose(tl[:, :6].sum(axis=1), stolen_by(scenario, grid), rtol=0, atol=tol)
    np.testing.assert_allclose(tl[:, 6] + tl[:, 7], stolen_by(scenario, grid), rtol=0, atol=tol)

    # the ledger: never negative value or fee, nothing after the horizon, value consistent with amount
    led = rep.ledger
    assert np.all(led["value_usd"] >= 0)
    assert np.all(led["fee_usd"] >= 0)
    assert np.all(led["time"] <= scenario.clock.horizon + 1e-9)
    assert np.all(np.isfinite(led["value_usd"])) and np.all(np.isfinite(led["time"]))
    # fees in the book are at least the network fees paid in the ledger (haircuts come on top)
    assert states[-1, 5] >= led["fee_usd"].sum() - tol


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=scenarios(), seed=st.integers(0, 2**32 - 1))
def test_value_is_conserved_at_every_instant(data, seed):
    scenario = Scenario.model_validate(data)
    check_conservation(scenario, seed)


def test_conservation_on_the_baseline_scenario():
    from conftest import BASELINE
    from launderflow.scenario.loader import load_scenario

    scenario = load_scenario(BASELINE, {"clock.horizon": "20d"})
    check_conservation(scenario, 7)
