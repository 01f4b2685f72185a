"""Each venue kind on tiny scenarios whose answers are known in closed form.

Chain fees and confirmations are 0 unless a test says otherwise, so venue fees, haircuts, delays
and queues show up as exact numbers in the ledger, the outcome book and the venue counters.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import PRICE, two_chain_dict
from launderflow import metrics
from launderflow.model.addresses import AddressBook
from launderflow.model.simulate import Replication, simulate
from launderflow.model.world import World
from launderflow.scenario.schema import HOP_KINDS, Scenario

HOP = {name: i for i, name in enumerate(HOP_KINDS)}
STATE = {name: i for i, name in enumerate(metrics.STATES)}
ASSET = {name: i for i, name in enumerate(PRICE)}  # the order the scenarios below declare them in
ALL_VENUES = Path(__file__).resolve().parent / "scenarios" / "all_venues.yaml"
OFF_CHAIN = AddressBook.OFF_CHAIN
REL = 1e-12


# --- helpers ---------------------------------------------------------------------------------


def make(playbook: list[dict], venues: dict[str, dict] | None = None, *, stolen: list[dict] | None = None,
         horizon: str | float = "20d", discovered_after: str | float = 0.0, hop_success: dict | None = None,
         fees: tuple[float, float] = (0.0, 0.0), thefts: list[dict] | None = None) -> Scenario:
    """Two chains (ethereum, bitcoin), three assets (ETH $1000, USDC $1, BTC $40000), one theft."""
    return Scenario.model_validate(two_chain_dict(
        "venue_test", playbook, venues, stolen=stolen, horizon=horizon, discovered_after=discovered_after,
        fees=fees, thefts=thefts, tracing={"hop_success": hop_success or {}}))


def run(scenario: Scenario, seed: int = 0) -> Replication:
    return simulate(scenario, np.random.default_rng(seed))


def addresses(scenario: Scenario) -> dict[str, int]:
    """Each venue's on-chain address (address ids are handed out deterministically)."""
    world = World(scenario, np.random.default_rng(0))
    return {v.name: v.address for v in world.venues}


def rows(led: dict[str, np.ndarray], hop: str) -> np.ndarray:
    return led["hop"] == HOP[hop]


def final(rep: Replication) -> dict[str, float]:
    return metrics.final_states(rep)


def close(a: float, b: float, rel: float = REL, abs_: float = 1e-9) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=abs_)


def timeline(rep: Replication, step: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    grid = np.arange(0.0, rep.horizon + 1e-9, step)
    return grid, metrics.timeline(rep, grid)


OTC = {"kind": "otc", "jurisdiction": "RU"}
DEX = {"kind": "dex"}
BRIDGE = {"kind": "bridge", "jurisdiction": "none"}
EXCHANGE = {"kind": "exchange", "jurisdiction": "offshore"}
ISSUER = {"kind": "issuer", "jurisdiction": "US", "asset": "USDC"}
CUSTODIAL = {"kind": "custodial_mixer", "jurisdiction": "offshore"}
POOL = {"kind": "pool_mixer", "asset": "ETH"}
# a pool with no honest users at all: the anonymity set is the launderer's own notes
EMPTY_POOL = {**POOL, "honest_deposits_per_day": 0, "initial_notes": [0, 0, 0, 0]}
NO_HABITS = {"reuses_addresses": False, "unique_amounts": False, "gas_fingerprint": False}
ALL_HABITS = {"reuses_addresses": True, "unique_amounts": True, "gas_fingerprint": True}


# --- OTC ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("haircut", [0.0, 0.05, 0.37])
def test_otc_haircut_is_exact(haircut):
    rep = run(make([{"hop": "cash_out", "venue": "otc"}], {"otc": {**OTC, "haircut": haircut}}))
    v = 100 * PRICE["ETH"]
    led = rep.ledger
    out = rows(led, "cash_out") & (led["dst"] == OFF_CHAIN)
    assert out.sum() == 1
    assert close(led["value_usd"][out][0], v * (1 - haircut))
    states = final(rep)
    assert close(states["cashed_out"], v * (1 - haircut))
    assert close(states["fees"], v * haircut)
    assert close(rep.venue_fees[0], v * haircut)
    assert states["launderer"] == 0 and states["venue"] == 0


@pytest.mark.parametrize("delay,hours", [("0h", 0.0), ("7h", 7.0), ("2d", 48.0)])
def test_otc_delay_keeps_the_value_inside_the_venue(delay, hours):
    rep = run(make([{"hop": "wait", "delay": "5h"}, {"hop": "cash_out", "venue": "otc"}],
                   {"otc": {**OTC, "delay": delay}}))
    led = rep.ledger
    deposit = rows(led, "cash_out") & (led["dst"] != OFF_CHAIN)
    out = rows(led, "cash_out") & (led["dst"] == OFF_CHAIN)
    assert led["time"][deposit].tolist() == [5.0]
    assert led["time"][out][0] == pytest.approx(5.0 + hours, abs=1e-9)
    if hours:
        grid, tl = timeline(rep, 0.5)
        inside = (grid >= 5.0) & (grid < 5.0 + hours)
        np.testing.assert_allclose(tl[inside, STATE["venue"]], 100 * PRICE["ETH"])
        np.testing.assert_allclose(tl[inside, STATE["cashed_out"]], 0.0)


@pytest.mark.parametrize("delay", [0.0, 6.0])
def test_otc_capacity_serves_lots_one_after_another(delay):
    """Two lots of $X at a desk converting $X a day leave the chain one day apart (then the delay)."""
    x = 100 * PRICE["ETH"]
    scenario = make([{"hop": "cash_out", "venue": "otc"}],
                    {"otc": {**OTC, "capacity_usd_per_day": x, "delay": delay, "haircut": 0.05}},
                    stolen=[{"asset": "ETH", "amount": 100}, {"asset": "ETH", "amount": 100}])
    rep = run(scenario)
    led = rep.ledger
    out = rows(led, "cash_out") & (led["dst"] == OFF_CHAIN)
    np.testing.assert_allclose(np.sort(led["time"][out]), [24.0 + delay, 48.0 + delay], atol=1e-9)
    np.testing.assert_allclose(led["value_usd"][out], 0.95 * x, rtol=REL)


def test_otc_capacity_queue_is_first_come_first_served():
    """$200k arrives at 0 h, $100k at 12 h, desk converts $100k a day: done at 48 h, then 72 h."""
    thefts = [{"name": "first", "victim": "a", "stolen": [{"asset": "ETH", "amount": 200}]},
              {"name": "second", "victim": "b", "time": "12h", "stolen": [{"asset": "ETH", "amount": 100}]}]
    rep = run(make([{"hop": "cash_out", "venue": "otc"}], {"otc": {**OTC, "capacity_usd_per_day": 100_000}},
                   thefts=thefts))
    led = rep.ledger
    out = rows(led, "cash_out") & (led["dst"] == OFF_CHAIN)
    done = dict(zip(led["value_usd"][out].tolist(), led["time"][out].tolist()))
    assert done == {200_000.0: pytest.approx(48.0), 100_000.0: pytest.approx(72.0)}


def test_otc_capacity_keeps_a_huge_theft_inside_for_value_over_capacity_days():
    v, capacity = 10_000 * PRICE["ETH"], 1_000_000.0  # $10 M at $1 M a day: 10 days in the queue
    rep = run(make([{"hop": "cash_out", "venue": "otc"}],
                   {"otc": {**OTC, "capacity_usd_per_day": capacity, "haircut": 0.02}},
                   stolen=[{"asset": "ETH", "amount": 10_000}], horizon="15d"))
    grid, tl = timeline(rep)
    days = v / capacity
    queued = (grid > 0) & (grid < days * 24)
    np.testing.assert_allclose(tl[queued, STATE["venue"]], v)
    np.testing.assert_allclose(tl[queued, STATE["cashed_out"]], 0.0)
    after = grid >= days * 24
    np.testing.assert_allclose(tl[after, STATE["venue"]], 0.0, atol=1e-6)
    np.testing.assert_allclose(tl[after, STATE["cashed_out"]], v * 0.98)
    assert metrics.time_to_share(rep, metrics.Location.CASHED_OUT, 0.5) == pytest.approx(days * 24)


# --- DEX ---------------------------------------------------------------------------------------


def dex_output(v: float, fee: float, depth: float) -> float:
    return v * (1 - fee) * (1 - v / (v + depth))


@pytest.mark.parametrize("amount,fee,depth", [(100, 0.003, 50e6), (100, 0.003, 1e5), (5000, 0.01, 2e6), (1, 0.0, 1e3)])
def test_dex_output_and_asset(amount, fee, depth):
    scenario = make([{"hop": "swap", "venue": "uni", "to": "USDC"}],
                    {"uni": {**DEX, "fee": fee, "pool_depth_usd": depth}}, stolen=[{"asset": "ETH", "amount": amount}])
    rep = run(scenario)
    uni = addresses(scenario)["uni"]
    led = rep.ledger
    v = amount * PRICE["ETH"]
    deposit = rows(led, "swap") & (led["dst"] == uni)
    out = rows(led, "swap") & (led["src"] == uni)
    assert deposit.sum() == 1 and out.sum() == 1
    assert led["asset"][deposit][0] == ASSET["ETH"]
    assert led["asset"][out][0] == ASSET["USDC"]
    expected = dex_output(v, fee, depth)
    assert close(led["value_usd"][out][0], expected)
    assert close(led["amount"][out][0], expected / PRICE["USDC"])
    assert close(rep.venue_fees[0], v - expected)
    assert close(final(rep)["launderer"], expected)


def test_dex_splitting_a_trade_cuts_its_cost():
    """Price impact grows with trade size: k equal parts pay far less than one trade."""
    depth, fee = 1e6, 0.003
    costs = []
    for k in (1, 4, 32):
        hops = [{"hop": "split", "wallets": k, "concentration": 1e6}] if k > 1 else []
        scenario = make([*hops, {"hop": "swap", "venue": "uni", "to": "USDC"}],
                        {"uni": {**DEX, "fee": fee, "pool_depth_usd": depth}}, stolen=[{"asset": "ETH", "amount": 1000}])
        rep = run(scenario, seed=k)
        led = rep.ledger
        parts = led["value_usd"][rows(led, "swap") & (led["dst"] == addresses(scenario)["uni"])]
        assert len(parts) == k
        # exactly the formula on each part
        assert close(rep.venue_fees[0], float(np.sum(parts - dex_output(parts, fee, depth))), rel=1e-10)
        costs.append(rep.venue_fees[0])
    assert costs[0] > costs[1] > costs[2]
    assert costs[0] > 4 * costs[2]  # $1 M into a $1 M pool loses half; 32 parts lose ~4.5 %


def test_dex_passes_through_lots_already_in_the_target_asset():
    scenario = make([{"hop": "swap", "venue": "uni", "to": "USDC"}, {"hop": "transfer"}], {"uni": DEX},
                    stolen=[{"asset": "USDC", "amount": 250_000}, {"asset": "ETH", "amount": 10}])
    rep = run(scenario)
    led = rep.ledger
    swaps = rows(led, "swap")
    assert swaps.sum() == 2  # the ETH lot: deposit and output; the USDC lot: nothing
    assert np.all(led["asset"][swaps & (led["dst"] == addresses(scenario)["uni"])] == ASSET["ETH"])
    transfers = rows(led, "transfer")
    assert transfers.sum() == 2 and np.all(led["asset"][transfers] == ASSET["USDC"])
    assert 250_000.0 in led["value_usd"][transfers].tolist()  # untouched: no fee, no impact
    assert close(rep.venue_fees[0], 10 * PRICE["ETH"] - dex_output(10 * PRICE["ETH"], 0.003, 50e6))


# --- bridge ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fee,fee_usd", [(0.0, 0.0), (0.002, 0.0), (0.002, 10.0), (0.0, 25.0)])
def test_bridge_fees_are_exact(fee, fee_usd):
    rep = run(make([{"hop": "bridge", "venue": "thor", "to": "BTC"}],
                   {"thor": {**BRIDGE, "fee": fee, "fee_usd": fee_usd}}))
    v = 100 * PRICE["ETH"]
    expected = v * (1 - fee) - fee_usd
    led = rep.ledger
    out = rows(led, "bridge") & (led["asset"] == ASSET["BTC"])
    assert close(led["value_usd"][out][0], expected)
    assert close(rep.venue_fees[0], v - expected)
    assert close(final(rep)["launderer"], expected)


@pytest.mark.parametrize("delay,hours", [("0h", 0.0), ("45min", 0.75), ("3h", 3.0), ("2d", 48.0)])
def test_bridge_delay_and_destination_chain(delay, hours):
    scenario = make([{"hop": "wait", "delay": "1h"}, {"hop": "bridge", "venue": "thor", "to": "BTC"}],
                    {"thor": {**BRIDGE, "delay": delay, "fee": 0.0}}, fees=(2.0, 7.0))
    rep = run(scenario)
    thor = addresses(scenario)["thor"]
    led = rep.ledger
    entry = rows(led, "bridge") & (led["dst"] == thor)
    exit_ = rows(led, "bridge") & (led["src"] == thor)
    assert led["time"][exit_][0] - led["time"][entry][0] == pytest.approx(hours, abs=1e-9)
    # the value leaves the bridge as BTC, on bitcoin: the exit pays bitcoin's fee, the entry ethereum's
    assert led["asset"][entry][0] == ASSET["ETH"] and led["fee_usd"][entry][0] == 2.0
    assert led["asset"][exit_][0] == ASSET["BTC"] and led["fee_usd"][exit_][0] == 7.0
    assert scenario.assets["BTC"].chain == "bitcoin"
    v_out = 100 * PRICE["ETH"] - 2.0 - 7.0
    assert close(led["value_usd"][exit_][0], v_out)
    assert close(led["amount"][exit_][0], v_out / PRICE["BTC"])
    grid, tl = timeline(rep, 0.25)
    in_flight = (grid >= 1.0) & (grid < 1.0 + hours)
    np.testing.assert_allclose(tl[in_flight, STATE["venue"]], 100 * PRICE["ETH"] - 2.0)


def test_bridge_to_the_asset_already_held_is_a_no_op():
    rep = run(make([{"hop": "bridge", "venue": "thor", "to": "ETH"}], {"thor": {**BRIDGE, "fee": 0.01}}))
    assert rows(rep.ledger, "bridge").sum() == 0
    assert rep.venue_fees[0] == 0.0


BRIDGES = {"thor": {**BRIDGE, "halts": True, "delay": "1h", "fee": 0.002},
           "wormhole": {**BRIDGE, "halts": True, "delay": "2h", "fee": 0.001}}


def halted_world(scenario: Scenario, halted: tuple[str, ...], seed: int = 0) -> World:
    world = World(scenario, np.random.default_rng(seed))
    for venue in world.venues:
        if venue.name in halted:
            assert venue.can_halt
            venue.halted = True
    world.run()
    return world


@pytest.mark.parametrize("halted", [(), ("thor",)])
def test_bridge_halted_refuses_and_the_launderer_uses_the_substitute(halted):
    scenario = make([{"hop": "bridge", "venue": ["thor", "wormhole"], "to": "BTC"}], BRIDGES)
    world = halted_world(scenario, halted)
    led = world.ledger.arrays()
    used = np.unique(led["venue"][rows(led, "bridge")]).tolist()
    v = 100 * PRICE["ETH"]
    if halted:
        assert used == [1]
        assert world.refusals.tolist() == [1, 0]
        assert close(world.venue_fees[1], v * 0.001) and world.venue_fees[0] == 0
    else:
        assert used == [0]
        assert world.refusals.tolist() == [0, 0]
        assert close(world.venue_fees[0], v * 0.002)
    assert np.all(led["asset"][rows(led, "bridge") & (led["src"] == world.venues[used[0]].address)] == ASSET["BTC"])


@pytest.mark.parametrize("retry,attempts", [("6h", 8), ("12h", 4), ("1d", 2)])
def test_when_every_substitute_refuses_the_lots_retry(retry, attempts):
    """Horizon 45 h: tries at 0, retry, 2 retry, ... < 45 h; each try is refused by both bridges."""
    scenario = make([{"hop": "bridge", "venue": ["thor", "wormhole"], "to": "BTC", "retry": retry}], BRIDGES,
                    stolen=[{"asset": "ETH", "amount": 60}, {"asset": "ETH", "amount": 40}], horizon="45h")
    world = halted_world(scenario, ("thor", "wormhole"))
    assert world.refusals.tolist() == [2 * attempts, 2 * attempts]
    led = world.ledger.arrays()
    assert rows(led, "bridge").sum() == 0
    totals = world.book.totals
    assert totals[2] == 0 and totals[3] == 0  # nothing ever entered the venues
    assert close(totals[0] + totals[1], 100 * PRICE["ETH"])
    log_time, log_delta = world.book.log()
    assert np.all(log_delta[:, 2:4] == 0)


def test_lots_refused_everywhere_enter_once_the_halt_ends():
    scenario = make([{"hop": "bridge", "venue": ["thor", "wormhole"], "to": "BTC", "retry": "6h"}], BRIDGES)
    world = World(scenario, np.random.default_rng(0))
    for venue in world.venues:
        venue.halted = True

    def lift():
        yield world.env.timeout(10.0)
        world.venues[1].halted = False

    world.env.process(lift())
    world.run()
    led = world.ledger.arrays()
    entry = rows(led, "bridge") & (led["dst"] == world.venues[1].address)
    assert led["time"][entry].tolist() == [12.0]  # refused at 0 and 6 h, taken at the 12 h retry
    assert world.refusals.tolist() == [3, 2]


# --- exchange ------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec,frozen", [
    ({"freeze_latency": "2h", "delay": "6h"}, True),  # the exchange acts before the withdrawal
    ({"freeze_latency": "12h", "delay": "6h"}, False),  # the launderer withdraws first
    ({"freeze_latency": {"dist": "uniform", "low": "1h", "high": "5h"}, "delay": "6h"}, True),
    ({"freeze_latency": "2h", "delay": "6h", "freezes": False, "kyc": 0}, False),  # eXch-like
    ({"freeze_latency": "2h", "delay": "6h", "compliance": 0}, False),
])
def test_exchange_freeze_race(spec, frozen):
    scenario = make([{"hop": "exchange", "venue": "cex"}], {"cex": {**EXCHANGE, **spec}},
                    stolen=[{"asset": "ETH", "amount": 10}] * 5)
    rep = run(scenario)
    v = 50 * PRICE["ETH"]
    led = rep.ledger
    states = final(rep)
    if frozen:
        assert close(states["frozen"], v) and close(rep.venue_frozen[0], v)
        assert rows(led, "freeze").sum() == 5
        assert np.all(led["time"][rows(led, "freeze")] < 6.0)
        assert not np.any(rows(led, "exchange") & (led["src"] == addresses(scenario)["cex"]))
    else:
        assert states["frozen"] == 0 and rep.venue_frozen[0] == 0
        assert close(states["launderer"], v)
        out = rows(led, "exchange") & (led["src"] == addresses(scenario)["cex"])
        assert out.sum() == 5 and np.all(led["time"][out] == 6.0)


def test_exchange_trade_to_another_asset_pays_the_fee():
    scenario = make([{"hop": "exchange", "venue": "cex", "to": "USDC"}],
                    {"cex": {**EXCHANGE, "fee": 0.004, "delay": "3h", "freezes": False}})
    rep = run(scenario)
    led = rep.ledger
    cex = addresses(scenario)["cex"]
    v = 100 * PRICE["ETH"]
    deposit = rows(led, "exchange") & (led["dst"] == cex)
    out = rows(led, "exchange") & (led["src"] == cex)
    assert led["asset"][deposit].tolist() == [ASSET["ETH"]]
    assert led["asset"][out].tolist() == [ASSET["USDC"]]
    assert led["time"][out].tolist() == [3.0]
    assert close(led["value_usd"][out][0], v * 0.996)
    assert close(led["amount"][out][0], v * 0.996 / PRICE["USDC"])
    assert close(rep.venue_fees[0], v * 0.004)


def test_exchange_cash_out_leaves_the_chain_minus_haircut_and_fee():
    scenario = make([{"hop": "cash_out", "venue": "cex"}],
                    {"cex": {**EXCHANGE, "fee": 0.001, "haircut": 0.02, "delay": "5h", "freeze_latency": "1d"}})
    rep = run(scenario)
    led = rep.ledger
    v = 100 * PRICE["ETH"]
    out = rows(led, "cash_out") & (led["dst"] == OFF_CHAIN)
    assert led["time"][out].tolist() == [5.0]
    assert close(led["value_usd"][out][0], v * (1 - 0.021))
    states = final(rep)
    assert close(states["cashed_out"], v * 0.979) and close(states["fees"], v * 0.021)
    assert close(rep.venue_fees[0], v * 0.021)


@pytest.mark.parametrize("how", ["never_discovered", "trail_lost", "control"])
def test_exchange_does_not_freeze_dark_deposits(how):
    kw: dict[str, Any] = {}
    if how == "never_discovered":
        kw["discovered_after"] = "100d"  # beyond the horizon
    elif how == "trail_lost":
        kw["hop_success"] = {"transfer": 0.0}
    # kyc 0: no KYC records that could put analysts back on a lost trail
    scenario = make([{"hop": "transfer"}, {"hop": "exchange", "venue": "cex"}],
                    {"cex": {**EXCHANGE, "kyc": 0, "freeze_latency": "1h", "delay": "6h"}}, **kw)
    rep = run(scenario)
    states = final(rep)
    v = 100 * PRICE["ETH"]
    if how == "control":
        assert close(states["frozen"], v)
    else:
        assert states["frozen"] == 0 and rep.venue_frozen[0] == 0
        assert close(states["launderer"], v) and close(states["dark"], v)


# --- stablecoin issuer ---------------------------------------------------------------------------


@pytest.mark.parametrize("hold,frozen", [("1d", True), ("3h", True), ("2h", False), ("10min", False)])
def test_issuer_freezes_traced_usdc_held_longer_than_its_latency(hold, frozen):
    """Hold the USDC ``hold`` at the first wallet, then swap it to ETH (the careful launderer swaps fast)."""
    scenario = make([{"hop": "transfer", "delay": hold}, {"hop": "swap", "venue": "uni", "to": "ETH"}],
                    {"circle": {**ISSUER, "freeze_latency": "150min"}, "uni": DEX},
                    stolen=[{"asset": "USDC", "amount": 1_000_000}])
    rep = run(scenario)
    states = final(rep)
    led = rep.ledger
    if frozen:
        assert close(states["frozen"], 1e6) and close(rep.venue_frozen[0], 1e6)
        assert led["time"][rows(led, "freeze")].tolist() == [2.5]
        assert rows(led, "swap").sum() == 0
    else:
        assert states["frozen"] == 0 and rep.venue_frozen[0] == 0
        assert rows(led, "swap").sum() == 2
        assert close(states["launderer"], dex_output(1e6, 0.003, 50e6))


def test_issuer_freezes_the_usdc_only_where_it_stayed_for_the_latency():
    """Moves every 2 h (at 0, 2 and 4 h), then stays: with a 3 h latency only the last stop is frozen, at 7 h."""
    scenario = make([{"hop": "transfer", "delay": "2h"}] * 3, {"circle": {**ISSUER, "freeze_latency": "3h"}},
                    stolen=[{"asset": "USDC", "amount": 1_000_000}])
    rep = run(scenario)
    led = rep.ledger
    freeze = rows(led, "freeze")
    assert led["time"][freeze].tolist() == [7.0]
    last_stop = led["dst"][rows(led, "transfer")][-1]
    assert led["src"][freeze].tolist() == [last_stop] and led["dst"][freeze].tolist() == [last_stop]
    assert close(final(rep)["frozen"], 1e6)


def test_issuer_with_compliance_zero_never_freezes():
    scenario = make([{"hop": "wait", "delay": "5d"}], {"circle": {**ISSUER, "compliance": 0, "freeze_latency": "1h"}},
                    stolen=[{"asset": "USDC", "amount": 1_000_000}])
    rep = run(scenario)
    assert final(rep)["frozen"] == 0 and close(final(rep)["launderer"], 1e6)


def test_issuer_freezes_only_its_own_token_and_only_traced_value():
    stolen = [{"asset": "USDC", "amount": 1_000_000}, {"asset": "ETH", "amount": 100}]
    venues = {"circle": {**ISSUER, "freeze_latency": "1h"}}
    rep = run(make([{"hop": "transfer", "delay": "2d"}], venues, stolen=stolen))
    assert close(final(rep)["frozen"], 1e6) and close(final(rep)["launderer"], 100 * PRICE["ETH"])
    dark = run(make([{"hop": "transfer", "delay": "2d"}], venues, stolen=stolen, discovered_after="100d"))
    assert final(dark)["frozen"] == 0


# --- custodial mixer -------------------------------------------------------------------------------


@pytest.mark.parametrize("payouts", [1, 3, 7])
def test_custodial_mixer_fee_delay_and_payouts(payouts):
    scenario = make([{"hop": "split", "wallets": 2}, {"hop": "mix", "venue": "sinbad"}],
                    {"sinbad": {**CUSTODIAL, "fee": 0.03, "delay": "2d", "payouts": payouts}})
    rep = run(scenario)
    sinbad = addresses(scenario)["sinbad"]
    led = rep.ledger
    v = 100 * PRICE["ETH"]
    deposits = rows(led, "custodial_mixer") & (led["dst"] == sinbad)
    paid = rows(led, "custodial_mixer") & (led["src"] == sinbad)
    assert deposits.sum() == 2 and paid.sum() == 2 * payouts
    assert np.all(led["time"][paid] == 48.0)
    # fresh wallets: each payout goes to an address never seen before
    dst = led["dst"][paid]
    earlier = np.concatenate([led["src"][~paid], led["dst"][~paid]])
    assert len(np.unique(dst)) == len(dst) and not np.isin(dst, earlier).any()
    # each deposit comes back, minus the fee, as one block of ``payouts`` payouts
    order = np.argsort(led["lot"][paid], kind="stable")
    blocks = np.sort(led["value_usd"][paid][order].reshape(2, payouts).sum(axis=1))
    np.testing.assert_allclose(blocks, np.sort(led["value_usd"][deposits]) * 0.97, rtol=REL)
    assert close(rep.venue_fees[0], v * 0.03)
    assert close(final(rep)["launderer"], v * 0.97)


@pytest.mark.parametrize("success", [0.0, 1.0])
def test_custodial_mixer_breaks_the_trail(success):
    rep = run(make([{"hop": "mix", "venue": "sinbad"}], {"sinbad": {**CUSTODIAL, "fee": 0.02, "payouts": 5}},
                   hop_success={"custodial_mixer": success}))
    launderer_traced, launderer_dark = rep.final_cells[1], rep.final_cells[0]
    v = 100 * PRICE["ETH"] * 0.98
    if success == 0.0:
        assert launderer_traced == 0 and close(launderer_dark, v)
    else:
        assert launderer_dark == 0 and close(launderer_traced, v)


def test_custodial_mixer_shut_down_seizes_what_it_holds():
    theft2 = {"name": "later", "victim": "test", "time": "30h", "stolen": [{"asset": "ETH", "amount": 10}]}
    scenario = make([{"hop": "mix", "venue": "sinbad", "retry": "1d"}],
                    {"sinbad": {**CUSTODIAL, "fee": 0.02, "delay": "2d"}},
                    thefts=[{"name": "hack", "victim": "test", "stolen": [{"asset": "ETH", "amount": 100}]}, theft2],
                    horizon="5d")
    world = World(scenario, np.random.default_rng(0))
    venue = world.venues[0]
    seized: list[float] = []

    def raid():
        yield world.env.timeout(24.0)
        seized.append(venue.shut_down(world.env.now))

    world.env.process(raid())
    world.run()
    v = 100 * PRICE["ETH"]
    assert seized == [pytest.approx(v * 0.98)]
    totals = world.book.totals
    assert close(totals[6] + totals[7], v * 0.98)  # seized
    assert close(totals[10] + totals[11], v * 0.02)  # the fee it took before
    led = world.ledger.arrays()
    assert led["time"][rows(led, "seizure")].tolist() == [24.0]
    assert not np.any(rows(led, "custodial_mixer") & (led["src"] == venue.address))  # nothing paid out
    # the closed mixer turns the later theft away (30 h, then daily retries until 5 d)
    assert world.refusals[0] == 4
    assert close(totals[0] + totals[1], 10 * PRICE["ETH"])


# --- pool mixer --------------------------------------------------------------------------------


def test_pool_mixer_deposits_whole_denominations_and_the_remainder_moves_on():
    scenario = make([{"hop": "mix", "venue": "tornado"}, {"hop": "transfer"}],
                    {"tornado": {**EMPTY_POOL, "delay": "2d", "relayer_fee": 0.005}},
                    stolen=[{"asset": "ETH", "amount": 123.45}])
    rep = run(scenario)
    tornado = addresses(scenario)["tornado"]
    led = rep.ledger
    notes = rows(led, "pool_mixer") & (led["dst"] == tornado)
    amounts = np.round(led["amount"][notes], 9)
    values, counts = np.unique(amounts, return_counts=True)
    assert dict(zip(values.tolist(), counts.tolist())) == {0.1: 4, 1.0: 3, 10.0: 2, 100.0: 1}
    assert np.all(led["time"][notes] == 0.0)
    # the 0.05 ETH below the smallest note is not mixed: it goes straight on to the next hop
    early = rows(led, "transfer") & (led["time"] == 0.0)
    assert early.sum() == 1 and led["amount"][early][0] == pytest.approx(0.05, abs=1e-9)
    # the withdrawals: one per note, after the delay, minus the relayer fee
    out = rows(led, "pool_mixer") & (led["src"] == tornado)
    assert out.sum() == 10 and np.all(led["time"][out] == 48.0)
    np.testing.assert_allclose(np.sort(led["amount"][out]), np.sort(amounts) * 0.995, rtol=REL)
    assert close(rep.venue_fees[0], 123.4 * PRICE["ETH"] * 0.005, rel=1e-9)
    assert np.bincount(rep.withdrawals["pool"], minlength=4).tolist() == [4, 3, 2, 1]


def test_pool_mixer_honest_traffic_is_in_the_ledger_and_makes_the_anonymity_set():
    spec = {**POOL, "honest_deposits_per_day": 240, "honest_holding": "5d", "denominations": [1, 10]}
    scenario = make([{"hop": "wait", "delay": "1d"}], {"tornado": spec}, horizon="3d")
    rep = run(scenario, seed=4)
    tornado = addresses(scenario)["tornado"]
    led = rep.ledger
    honest = led["lot"] == -1
    assert honest.sum() > 500
    assert np.all(rows(led, "honest") == honest)
    assert np.all(led["venue"][honest] == 0) and np.all(led["asset"][honest] == ASSET["ETH"])
    assert set(np.unique(led["amount"][honest]).tolist()) == {1.0, 10.0}
    assert np.all((led["src"][honest] == tornado) ^ (led["dst"][honest] == tornado))
    np.testing.assert_allclose(led["value_usd"][honest], led["amount"][honest] * PRICE["ETH"])
    # the pools' note counts move exactly by the honest deposits minus withdrawals
    pools = rep.pools
    assert pools["notes"][pools["time"] == 0].tolist() == [600, 600]  # steady state: 120/day x 5 days
    for k, denom in enumerate((1.0, 10.0)):
        mine = pools["pool"] == k
        times, notes = pools["time"][mine], pools["notes"][mine]
        sel = honest & (led["amount"] == denom)
        ins = np.array([np.sum(sel & (led["dst"] == tornado) & (led["time"] == t)) for t in times[1:]])
        outs = np.array([np.sum(sel & (led["src"] == tornado) & (led["time"] == t)) for t in times[1:]])
        np.testing.assert_array_equal(np.diff(notes), ins - outs)


def test_pool_mixer_anonymity_set_at_withdrawal_is_the_pool_size_then():
    spec = {**POOL, "honest_deposits_per_day": 300, "delay": "10h"}
    scenario = make([{"hop": "wait", "delay": "30min"}, {"hop": "mix", "venue": "tornado"}], {"tornado": spec},
                    stolen=[{"asset": "ETH", "amount": 123.45}], horizon="2d")
    rep = run(scenario, seed=2)
    w, pools = rep.withdrawals, rep.pools
    assert len(w["time"]) == 10 and np.all(w["time"] == 10.5)
    for t, pool, a in zip(w["time"], w["pool"], w["anonymity_set"]):
        # honest notes change only at whole hours; the launderer's notes were in since 0.5 h
        logged = pools["notes"][(pools["time"] == math.floor(t)) & (pools["pool"] == pool)]
        assert a == logged[0] and a >= 1
    d = scenario.venues["tornado"].demixing
    h = 1 - (1 - d.unique_amounts) * (1 - d.quick_round_trip)  # the default habit, and a 10 h round trip
    np.testing.assert_allclose(w["p_link"], h + (1 - h) / w["anonymity_set"], rtol=REL)


@pytest.mark.parametrize("habits,h", [
    (NO_HABITS, 0.0),
    ({**NO_HABITS, "reuses_addresses": True}, 0.09),
    ({**NO_HABITS, "unique_amounts": True, "gas_fingerprint": True}, 1 - 0.95 * 0.95),
])
def test_pool_mixer_link_probability_with_only_the_launderers_notes(habits, h):
    scenario = make([{"hop": "mix", "venue": "tornado"}],
                    {"tornado": {**EMPTY_POOL, "delay": "3d", "habits": habits}},
                    stolen=[{"asset": "ETH", "amount": 123.45}])
    rep = run(scenario)
    w = rep.withdrawals
    a = w["anonymity_set"]
    # the pool holds only the launderer's notes: 4 x 0.1, 3 x 1, 2 x 10, 1 x 100
    assert dict(zip(w["pool"].tolist(), a.tolist())) == {0: 4, 1: 3, 2: 2, 3: 1}
    np.testing.assert_allclose(w["p_link"], h + (1 - h) / a, rtol=REL)
    assert w["linked"][w["pool"] == 3].all()  # alone in its pool: always linked


def test_pool_mixer_huge_anonymity_set_and_no_habits_links_almost_nothing():
    notes = 2000
    spec = {**POOL, "honest_deposits_per_day": 0, "denominations": [10], "initial_notes": [100_000],
            "honest_holding": "100w", "delay": "2d", "habits": NO_HABITS}
    rep = run(make([{"hop": "mix", "venue": "tornado"}], {"tornado": spec},
                   stolen=[{"asset": "ETH", "amount": 10 * notes}], horizon="3d"))
    w = rep.withdrawals
    assert len(w["time"]) == notes
    assert np.all(w["anonymity_set"] > 100_000)
    assert np.all(w["p_link"] < 1e-5)
    # expected linked notes: 2000 x 1e-5 = 0.02; P(3 or more) ~ 1e-6
    assert w["linked"].sum() <= 2


def test_pool_mixer_all_habits_and_a_quick_round_trip_link_most_notes():
    notes = 10_000
    spec = {**POOL, "honest_deposits_per_day": 0, "denominations": [10], "initial_notes": [100_000],
            "honest_holding": "100w", "delay": "1h", "habits": ALL_HABITS}
    rep = run(make([{"hop": "mix", "venue": "tornado"}], {"tornado": spec},
                   stolen=[{"asset": "ETH", "amount": 10 * notes}], horizon="1d"), seed=11)
    w = rep.withdrawals
    h = 1 - (1 - 0.09) * (1 - 0.18) * (1 - 0.05) * (1 - 0.05)  # = 0.3266
    np.testing.assert_allclose(w["p_link"], h + (1 - h) / w["anonymity_set"], rtol=REL)
    # binomial sd over 10,000 notes: sqrt(h (1-h) / 1e4) = 0.0047; 0.02 is > 4 sd
    assert abs(w["linked"].mean() - h) < 0.02
    # linked notes keep the trail, the others go dark: what came out is traced in the linked share
    assert rep.final_cells[1] / (rep.final_cells[0] + rep.final_cells[1]) == pytest.approx(w["linked"].mean(), abs=1e-9)


def test_pool_mixer_refuses_other_assets_and_the_launderer_falls_back():
    venues = {"tornado": {**EMPTY_POOL, "delay": "1h"}, "sinbad": {**CUSTODIAL, "delay": "1h"}}
    pb = [{"hop": "split", "wallets": 3}, {"hop": "mix", "venue": ["tornado", "sinbad"]}]
    usdc = run(make(pb, venues, stolen=[{"asset": "USDC", "amount": 500_000}]))
    assert usdc.refusals.tolist() == [3, 0]
    assert rows(usdc.ledger, "pool_mixer").sum() == 0
    assert rows(usdc.ledger, "custodial_mixer").sum() == 3 + 3 * 4
    eth = run(make(pb, venues, stolen=[{"asset": "ETH", "amount": 30}]))
    assert eth.refusals.tolist() == [0, 0]
    assert rows(eth.ledger, "custodial_mixer").sum() == 0 and rows(eth.ledger, "pool_mixer").sum() > 0


# --- branches ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fee", [0.0, 3.0])
def test_branch_shares_split_exactly(fee):
    shares = [0.2, 0.3, 0.5]
    branches = [{"share": s, "playbook": [{"hop": "wait", "delay": "1h"}]} for s in shares]
    rep = run(make([{"hop": "branch", "branches": branches}], fees=(fee, 0.0),
                   stolen=[{"asset": "ETH", "amount": 100}, {"asset": "USDC", "amount": 40_000}]))
    led = rep.ledger
    b = rows(led, "branch")
    assert b.sum() == 6
    for asset, v in (("ETH", 100_000.0), ("USDC", 40_000.0)):
        got = np.sort(led["value_usd"][b & (led["asset"] == ASSET[asset])])
        np.testing.assert_allclose(got, np.array(shares) * v - fee, rtol=REL)
    np.testing.assert_allclose(led["fee_usd"][b], fee)


def test_branches_run_their_own_playbooks_and_rejoin():
    scenario = make([
        {"hop": "branch", "branches": [
            {"share": 0.25, "playbook": [{"hop": "swap", "venue": "uni", "to": "USDC"}]},
            {"share": 0.75, "playbook": [{"hop": "bridge", "venue": "thor", "to": "BTC"}, {"hop": "wait", "delay": "1d"}]},
        ]},
        {"hop": "transfer"},
    ], {"uni": DEX, "thor": {**BRIDGE, "delay": "2h", "fee": 0.0}})
    rep = run(scenario)
    led = rep.ledger
    swapped = led["value_usd"][rows(led, "swap") & (led["dst"] == addresses(scenario)["uni"])]
    bridged = led["value_usd"][rows(led, "bridge") & (led["dst"] == addresses(scenario)["thor"])]
    assert swapped.tolist() == [25_000.0] and bridged.tolist() == [75_000.0]
    t = rows(led, "transfer")
    assert t.sum() == 2  # both branches come back to the hop after the branch
    by_asset = dict(zip(led["asset"][t].tolist(), led["time"][t].tolist()))
    assert by_asset == {ASSET["USDC"]: 0.0, ASSET["BTC"]: 26.0}
    assert close(led["value_usd"][t & (led["asset"] == ASSET["USDC"])][0], dex_output(25_000.0, 0.003, 50e6))


def branch_then_consolidate(split_delay: Any) -> Scenario:
    return make([
        {"hop": "branch", "branches": [
            {"share": 0.4, "playbook": [
                {"hop": "split", "wallets": 4, "delay": split_delay},
                {"hop": "consolidate", "wallets": 1}]},
            {"share": 0.6, "playbook": [{"hop": "wait", "delay": "10d"}]},
        ]},
        {"hop": "transfer"},
    ])


def test_consolidate_inside_a_branch_does_not_wait_for_the_other_branch():
    rep = run(branch_then_consolidate("5h"))
    led = rep.ledger
    cons = rows(led, "consolidate")
    assert cons.sum() == 4, "the branch's 4 wallets are merged, the other branch's lot is not"
    assert led["time"][cons].tolist() == [5.0] * 4  # not after the other branch's 10 days
    assert sorted(led["time"][rows(led, "transfer")].tolist()) == [5.0, 240.0]
    assert close(float(led["value_usd"][cons].sum()), 40_000.0)


def test_consolidate_inside_a_branch_waits_for_every_lot_of_that_branch():
    rep = run(branch_then_consolidate({"dist": "uniform", "low": "1d", "high": "3d"}), seed=5)
    led = rep.ledger
    cons = rows(led, "consolidate")
    assert cons.sum() == 4
    times = np.unique(led["time"][cons])
    assert len(times) == 1, f"the branch consolidated at {times} instead of once, when its last lot arrived"
    assert 24.0 <= times[0] <= 72.0  # when the branch's last lot arrived, not when the other branch is done
    assert sorted(led["time"][rows(led, "transfer")].tolist()) == [times[0], 240.0]


# --- conservation through every venue ----------------------------------------------------------------


FALLBACKS = ALL_VENUES.with_name("venue_fallbacks.yaml")


@pytest.mark.parametrize("path,seed", [(ALL_VENUES, 0), (ALL_VENUES, 1), (ALL_VENUES, 2), (FALLBACKS, 0), (FALLBACKS, 1)],
                         ids=lambda x: x.stem if isinstance(x, Path) else str(x))
def test_conservation_through_every_venue(path, seed):
    """At every logged instant the six locations (and traced + dark) sum to the value stolen so far."""
    from launderflow.scenario.loader import load_scenario

    scenario = load_scenario(path)
    rep = simulate(scenario, np.random.default_rng(seed))
    led = rep.ledger
    cum = np.cumsum(rep.log_delta, axis=0)
    theft = rows(led, "theft")
    stolen_so_far = np.array([led["value_usd"][theft & (led["time"] <= t)].sum() for t in rep.log_time])
    by_location = cum[:, 0::2] + cum[:, 1::2]
    assert by_location.shape[1] == 6
    np.testing.assert_allclose(by_location.sum(axis=1), stolen_so_far, rtol=1e-9, atol=0)
    np.testing.assert_allclose(cum[:, 1::2].sum(axis=1) + cum[:, 0::2].sum(axis=1), stolen_so_far, rtol=1e-9, atol=0)
    assert cum.min() >= -1e-9 * rep.stolen_usd
    np.testing.assert_allclose(cum[-1], rep.final_cells, rtol=0, atol=1e-9 * rep.stolen_usd)
    assert close(float(rep.venue_fees.sum()) + rep.network_fees, final(rep)["fees"], rel=1e-9)
    kinds = [v.kind for v in scenario.venues.values()]
    used = {kinds[i] for i in np.unique(led["venue"][led["venue"] >= 0])}
    if path == ALL_VENUES:
        # the run really goes through every kind of venue a lot can pass through (exch is only a fallback)
        assert used >= {"otc", "dex", "bridge", "exchange", "custodial_mixer", "pool_mixer"}
    else:
        # the USDT lots are refused by the ETH pool mixer and go through the custodial mixer
        assert rep.refusals[0] > 0 and "custodial_mixer" in used and "pool_mixer" in used
        usdt = list(scenario.assets).index("USDT")
        assert np.all(led["asset"][rows(led, "custodial_mixer")] == usdt)


# --- the run summary -----------------------------------------------------------------------------


def test_summary_reports_venues_and_the_launderers_cost(tmp_path):
    import pyarrow.parquet as pq
    from click.testing import CliRunner

    from launderflow.cli import main
    from launderflow.runs.replications import run_replications
    from launderflow.scenario.loader import load_scenario

    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", str(ALL_VENUES), "--runs", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    scenario = load_scenario(ALL_VENUES)
    reps = dict(run_replications(scenario, 2, scenario.seed))
    assert list(summary["venues"]) == list(scenario.venues)
    for v, name in enumerate(scenario.venues):
        entry = summary["venues"][name]
        assert entry["fees_usd"]["median"] == pytest.approx(np.median([reps[i].venue_fees[v] for i in reps]), rel=1e-12)
        assert entry["frozen_usd"]["median"] == pytest.approx(np.median([reps[i].venue_frozen[v] for i in reps]), rel=1e-12)
    cost = [reps[i].network_fees + reps[i].venue_fees.sum() for i in sorted(reps)]
    assert summary["launderer_cost_usd"]["median"] == pytest.approx(np.median(cost), rel=1e-12)
    assert [r["launderer_cost_usd"] for r in summary["replications"]] == pytest.approx(cost, rel=1e-12)
    assert summary["launderer_cost_usd"]["median"] > 0
    assert sum(summary["venues"][n]["fees_usd"]["median"] for n in scenario.venues) > 0
    anonymity = pq.read_table(out / "anonymity.parquet").to_pydict()
    assert len(anonymity["notes"]) > 0 and set(anonymity["venue"]) == {"tornado"}
    assert set(anonymity["denomination"]) == {0.1, 1.0, 10.0, 100.0}


def test_address_book_knows_the_role_of_every_address_in_the_ledger():
    """Victims send the theft, venues' addresses are labelled, honest users only meet the pool."""
    from launderflow.model.addresses import Role
    from launderflow.model.world import World

    from launderflow.scenario.loader import load_scenario

    scenario = load_scenario(ALL_VENUES)
    world = World(scenario, np.random.default_rng(5))
    world.run()
    book = world.addresses.arrays()
    led = world.ledger.arrays()
    n = len(world.addresses)
    assert len(book["address"]) == len(book["chain"]) == len(book["role"]) == n
    assert led["src"].max() < n and led["dst"].max() < n
    role = book["role"]
    theft = led["hop"] == HOP["theft"]
    assert np.all(role[led["src"][theft]] == Role.VICTIM) and np.all(role[led["dst"][theft]] == Role.LAUNDERER)
    honest = led["hop"] == HOP["honest"]
    assert honest.any()
    pair = np.sort(np.stack([role[led["src"][honest]], role[led["dst"][honest]]]), axis=0)
    assert np.all(pair == np.array([[Role.VENUE], [Role.HONEST]]))
    for venue in world.venues:
        assert role[venue.address] == Role.VENUE
    # a wallet's chain is its asset's chain
    moved = ~theft & (led["lot"] >= 0) & (role[led["dst"]] == Role.LAUNDERER)
    assert np.array_equal(book["chain"][led["dst"][moved]], world.asset_chain[led["asset"][moved]])
