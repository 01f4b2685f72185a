"""The adapting launderer's reactions to what it sees (issue 21, item 2): it pauses when every open
service looks too risky, fragments deposits before a risky service (each fragment choosing again
with what it has learned meanwhile), and its exposure management reads service steps as the fixed
hops they stand for. Each test fails if the reaction is removed."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from conftest import HOP, run, two_chain_dict
from launderflow import metrics
from launderflow.model.choice import ServiceStep
from launderflow.model.world import World
from launderflow.scenario.schema import Scenario

DAY = 24.0
MIXERS = {
    "mixer_a": {"kind": "custodial_mixer", "jurisdiction": "US", "delay": "1d", "fee": 0.01, "payouts": 1},
    "mixer_b": {"kind": "custodial_mixer", "jurisdiction": "US", "delay": "1d", "fee": 0.01, "payouts": 1},
    "broker": {"kind": "otc", "jurisdiction": "offshore", "delay": "12h", "haircut": 0.04},
}


def mixers(choice: dict, interventions: list[dict] | None = None, services: dict | None = None) -> Scenario:
    """Two custodial mixers and an off-ramp; 400 lots reach the mixing step over 40 days."""
    return Scenario.model_validate(two_chain_dict(
        "reactions", [{"hop": "split", "wallets": 400, "delay": {"dist": "uniform", "low": "0h", "high": "40d"}},
                      {"hop": "service", "function": "mixing"},
                      {"hop": "service", "function": "off_ramp"}],
        copy.deepcopy(MIXERS), stolen=[{"asset": "ETH", "amount": 30_000}], horizon="60d",
        market={"choice": {"memory": "5d", "spillover": 0.0, "inertia": 0.0, "alert": 0.0, **choice},
                "services": services or {"mixer_a": {"function": "mixing"}, "mixer_b": {"function": "mixing"},
                                         "broker": {"function": "off_ramp"}}},
        interventions=interventions or []))


def inflow(rep, scenario: Scenario, venues: list[str], start: float = 0.0, end: float = math.inf) -> float:
    log = rep.inflows
    index = [list(scenario.venues).index(v) for v in venues]
    mine = np.isin(log["venue"], index) & (log["time"] >= start) & (log["time"] < end)
    return float(log["value_usd"][mine].sum())


def rows(rep, hop: str) -> int:
    return int(np.count_nonzero(rep.ledger["hop"] == HOP[hop]))


RAID = [{"kind": "seizure", "name": "raid", "at": "15d", "venues": ["mixer_a", "mixer_b"]}]


# --- pause ---------------------------------------------------------------------------------------


def test_after_a_raid_on_every_mixer_the_launderer_pauses_until_the_risk_has_faded():
    """Seizure weight 0.8 at both mixers, pause above 0.5, memory 5 d: the risk is back at 0.5 after
    5 d x ln(0.8 / 0.5) = 2.35 d; no lot enters a mixer in between, and the waiting lots go then."""
    paused = mixers({"pause_above": 0.5}, RAID)
    going = mixers({}, RAID)
    calm = 15 * DAY + 5 * DAY * math.log(0.8 / 0.5)
    for seed in range(2):
        rep, base = run(paused, seed), run(going, seed)
        assert rep.actions["raid"][2] > 0 and base.actions["raid"][2] > 0
        assert inflow(rep, paused, ["mixer_a", "mixer_b"], 15 * DAY + 1.0, calm - 1.0) == 0.0
        assert inflow(base, going, ["mixer_a", "mixer_b"], 15 * DAY + 1.0, calm - 1.0) > 0.0
        # the raid is seen at the first decision after it; the lots that waited go when the risk
        # has fallen to the level, 2.35 d later: a burst of them at once
        log = rep.inflows
        resumed = float(log["time"][(log["venue"] < 2) & (log["time"] > 15 * DAY)].min())
        assert calm <= resumed < calm + 0.5 * DAY
        burst = inflow(rep, paused, ["mixer_a", "mixer_b"], resumed, resumed + 1.0)
        assert burst > 5 * inflow(base, going, ["mixer_a", "mixer_b"], resumed - 12.0, resumed + 12.0) / 24
        assert metrics.final_states(rep)  # (value conserved: checked inside the book)
        assert math.isclose(sum(rep.final_cells), rep.stolen_usd, rel_tol=1e-9)


def test_no_pause_while_one_open_service_is_calm():
    """Only mixer_a raided: mixer_b stays below the level, so the launderer substitutes, never waits."""
    scenario = mixers({"pause_above": 0.5}, [{"kind": "seizure", "name": "raid", "at": "15d", "venues": ["mixer_a"]}])
    world = World(scenario, np.random.default_rng(1))
    world.run()
    step = next(s for s in world.programs[0].steps if isinstance(s, ServiceStep) and not s.cashes_out)
    assert step.paused == 0
    rep = run(scenario, 1)
    assert inflow(rep, scenario, ["mixer_b"], 15 * DAY + 1.0, 17 * DAY) > 0.0


def test_a_lot_refused_by_the_calm_services_waits_rather_than_falls_back_on_a_too_risky_one():
    """The exchange is seen as too risky (prior 0.6 over pause_above 0.5); the desk books $1 M a
    day of a $10 M theft. Without the level the lots the desk turns away go to the exchange; with
    it they wait for the desk, and nothing enters the exchange."""
    for level, exchange_used in ((None, True), (0.5, False)):
        data = cash_out({"pause_above": level}).model_dump(mode="json", exclude_none=False)
        data["venues"]["desk"]["capacity_usd_per_day"] = 1_000_000
        scenario = Scenario.model_validate(data)
        rep = run(scenario, 0)
        assert (inflow(rep, scenario, ["cex"]) > 0) is exchange_used
        assert inflow(rep, scenario, ["desk"]) > 0
        assert math.isclose(sum(rep.final_cells), rep.stolen_usd, rel_tol=1e-9)


# --- fragment ------------------------------------------------------------------------------------


def test_a_lot_bound_for_a_risky_service_is_split_into_deposits_a_fragment_interval_apart():
    services = {"mixer_a": {"function": "mixing", "perceived_risk": 0.6}, "broker": {"function": "off_ramp"}}
    whole = mixers({}, services=services)
    split = mixers({"fragment_above": 0.5, "fragments": 4, "fragment_every": "2d"}, services=services)
    rep_whole, rep_split = run(whole, 3), run(split, 3)
    # each of the 400 lots is split over 4 fresh wallets (400 more split rows each), and each
    # fragment is a deposit of its own (a mixer's ledger has a row in and a row out per deposit)
    assert rows(rep_whole, "split") == 400 and rows(rep_split, "split") == 400 + 4 * 400
    assert rows(rep_split, "custodial_mixer") == 4 * rows(rep_whole, "custodial_mixer") == 4 * 800
    # deposits 0, 2, 4 and 6 days after the lot got there: the last 6 days after the last whole one
    last = [float(rep.inflows["time"][rep.inflows["venue"] == 0].max()) for rep in (rep_whole, rep_split)]
    assert last[1] - last[0] == pytest.approx(6 * DAY, abs=0.1)
    for rep in (rep_whole, rep_split):
        assert math.isclose(sum(rep.final_cells), rep.stolen_usd, rel_tol=1e-9)
    calm = mixers({"fragment_above": 0.7}, services=services)  # the risk is below the level: no fragments
    assert rows(run(calm, 3), "split") == 400


FREEZER = {
    "cex": {"kind": "exchange", "jurisdiction": "US", "kyc": 1.0, "compliance": 1.0, "freeze_latency": "1h",
            "delay": "1d", "fee": 0.001},
    "desk": {"kind": "otc", "jurisdiction": "offshore", "delay": "1d", "haircut": 0.06},
}


def cash_out(choice: dict) -> Scenario:
    """Every lot reaches the off-ramp within two hours: a cheap exchange that freezes what is
    traced, seen as somewhat risky (prior 0.6), or a dearer OTC desk."""
    return Scenario.model_validate(two_chain_dict(
        "freezer", [{"hop": "split", "wallets": 100, "delay": {"dist": "uniform", "low": "0h", "high": "2h"}},
                    {"hop": "service", "function": "off_ramp"}],
        copy.deepcopy(FREEZER), stolen=[{"asset": "ETH", "amount": 10_000}], horizon="30d",
        tracing={"sharing": {"latency": 0.0, "coverage": "all"}},
        market={"choice": {"memory": "30d", "inertia": 0.0, "alert": 0.0, **choice},
                "services": {"cex": {"function": "off_ramp", "perceived_risk": 0.6},
                             "desk": {"function": "off_ramp"}}}))


def test_fragmenting_lets_the_first_freezes_steer_the_rest_of_each_lot_away():
    """Without fragments every lot commits to the exchange before its first freeze is seen; with
    them only the first quarter does, and the freezes it meets send the rest to the desk."""
    frozen = {}
    for label, choice in (("whole", {}), ("fragments", {"fragment_above": 0.5, "fragments": 4, "fragment_every": "1d"})):
        scenario = cash_out(choice)
        reps = [run(scenario, seed) for seed in range(2)]
        shares = [metrics.final_states(rep)["frozen"] / rep.stolen_usd for rep in reps]
        frozen[label] = float(np.mean(shares))
    # equal utilities (the exchange: -6 for its risk, -0.1 for its fee; the desk: -6 for its
    # haircut): about half goes to the exchange and much of it is frozen (22-30 % of the theft);
    # fragmented, a quarter of each lot meets the first freezes and the rest turns away (~3 %)
    assert frozen["whole"] > 0.15
    assert frozen["fragments"] < 0.3 * frozen["whole"]


# --- exposure management at service steps ------------------------------------------------------

EXPOSURE = {"exposure": {"swap_first": True, "just_in_time": True, "short_dwell": True}}
JIT_VENUES = {"uniswap": {"kind": "dex"},
              "desk": {"kind": "otc", "jurisdiction": "offshore", "delay": "1d", "haircut": 0.05,
                       "capacity_usd_per_day": 500_000}}


def _pair(fixed_playbook: list[dict], service_playbook: list[dict], venues: dict, services: dict,
          launderer: dict, stolen: list[dict]) -> tuple[Scenario, Scenario]:
    common = dict(stolen=stolen, horizon="20d", discovered_after="2h", fees=(2.0, 1.0), launderer=launderer)
    return (Scenario.model_validate(two_chain_dict("pair", fixed_playbook, copy.deepcopy(venues), **common)),
            Scenario.model_validate(two_chain_dict("pair", service_playbook, copy.deepcopy(venues),
                                                   market={"services": services}, **common)))


def _same(a, b) -> None:
    for column in a.ledger:
        np.testing.assert_array_equal(a.ledger[column], b.ledger[column], err_msg=column)
    np.testing.assert_array_equal(a.log_delta, b.log_delta)


def test_swap_first_treats_a_service_that_swaps_out_of_a_freezable_asset_as_the_fixed_swap():
    """USDC lots skip the split's 5-day delay before the swap out of USDC, whether the swap is a
    fixed hop or a swapping service; without exposure management they wait the 5 days."""
    split = {"hop": "split", "wallets": 10, "delay": "5d"}
    fixed_book = [split, {"hop": "swap", "venue": "uniswap", "to": "ETH"}, {"hop": "cash_out", "venue": "desk"}]
    service_book = [split, {"hop": "service", "function": "swapping", "to": "ETH"}, {"hop": "service", "function": "off_ramp"}]
    services = {"uniswap": {"function": "swapping"}, "desk": {"function": "off_ramp"}}
    stolen = [{"asset": "USDC", "amount": 3_000_000}]
    fixed, service = _pair(fixed_book, service_book, JIT_VENUES, services, EXPOSURE, stolen)
    a, b = run(fixed, 1), run(service, 1)
    _same(a, b)
    swaps = b.ledger["hop"] == HOP["swap"]
    assert b.ledger["time"][swaps].max() < 1.0  # hurried: swapped within the hour
    _, plain = _pair(fixed_book, service_book, JIT_VENUES, services, {}, stolen)
    late = run(plain, 1).ledger
    assert late["time"][late["hop"] == HOP["swap"]].min() >= 5 * DAY


def test_just_in_time_holds_a_swapping_service_into_a_freezable_asset_back_for_an_off_ramp_service():
    """ETH swapped into USDC on its way to a desk that books $0.5 M a day: the conversion waits
    until the desk could take the value, at a service step as at the fixed hop."""
    split = {"hop": "split", "wallets": 20, "delay": "1h"}
    fixed_book = [split, {"hop": "swap", "venue": "uniswap", "to": "USDC"}, {"hop": "cash_out", "venue": "desk", "retry": "12h"}]
    service_book = [split, {"hop": "service", "function": "swapping", "to": "USDC"},
                    {"hop": "service", "function": "off_ramp", "retry": "12h"}]
    services = {"uniswap": {"function": "swapping"}, "desk": {"function": "off_ramp"}}
    stolen = [{"asset": "ETH", "amount": 5000}]  # $5 M: ten days of the desk's capacity
    fixed, service = _pair(fixed_book, service_book, JIT_VENUES, services, EXPOSURE, stolen)
    a, b = run(fixed, 2), run(service, 2)
    _same(a, b)
    swaps = b.ledger["time"][b.ledger["hop"] == HOP["swap"]]
    assert swaps.max() - swaps.min() > 5 * DAY  # conversions spread over the desk's booking, not all at once
    _, plain = _pair(fixed_book, service_book, JIT_VENUES, services, {}, stolen)
    eager = run(plain, 2).ledger
    assert np.ptp(eager["time"][eager["hop"] == HOP["swap"]]) < 1 * DAY


# --- "others like it": the spill-over rule ------------------------------------------------------


def _market(choice: dict) -> tuple[World, list[str]]:
    venues = {**copy.deepcopy(MIXERS), "tornado": {"kind": "pool_mixer", "asset": "ETH", "denominations": [1, 10]},
              "late": copy.deepcopy(MIXERS["mixer_b"]),
              "cex": copy.deepcopy(FREEZER["cex"]), "desk": copy.deepcopy(FREEZER["desk"])}
    scenario = Scenario.model_validate(two_chain_dict(
        "like", [{"hop": "service", "function": "mixing"}, {"hop": "service", "function": "off_ramp"}], venues,
        market={"choice": {"spillover": 0.5, **choice},
                "services": {"mixer_a": {"function": "mixing"}, "mixer_b": {"function": "mixing"},
                             "tornado": {"function": "mixing"}, "late": {"function": "mixing", "opens": "10d"},
                             "cex": {"function": "off_ramp"}, "broker": {"function": "off_ramp"},
                             "desk": {"function": "off_ramp"}}}))
    return World(scenario, np.random.default_rng(0)), list(scenario.market.services)


def test_a_loss_spills_over_to_the_open_services_of_the_same_kind_only():
    world, names = _market({})
    market = world.market
    risk = lambda: dict(zip(names, market.risk(np.arange(len(names)), 0.0)))  # noqa: E731
    market._event(0.0, names.index("mixer_a"), "seizure", 0.8)
    r = risk()
    assert r["mixer_a"] == pytest.approx(0.8) and r["mixer_b"] == pytest.approx(0.4)  # custodial, like it
    assert r["tornado"] == 0.0 and r["late"] == 0.0  # a pool contract; a mixer launched later
    market._event(0.0, names.index("cex"), "freeze", 0.5)
    r = risk()
    assert r["cex"] == pytest.approx(0.5) and r["desk"] == 0.0 and r["broker"] == 0.0  # desks do not freeze


def test_actions_against_one_operator_stay_with_it_unless_the_scenario_says_otherwise():
    world, names = _market({})
    world.market._event(0.0, names.index("mixer_a"), "shutdown", 1.0)
    assert world.market.risk(np.array([names.index("mixer_b")]), 0.0)[0] == 0.0
    world, names = _market({"spillover_of": ["shutdown"], "spillover_among": "function"})
    world.market._event(0.0, names.index("mixer_a"), "shutdown", 1.0)
    r = world.market.risk(np.arange(len(names)), 0.0)
    assert r[names.index("mixer_b")] == pytest.approx(0.5) and r[names.index("tornado")] == pytest.approx(0.5)
    assert r[names.index("late")] == 0.0


# --- standing states; losses weighed by their size ---------------------------------------------


def test_a_designation_in_force_does_not_fade_and_a_lifted_halt_does():
    """A designation is a legal fact the launderer sees every day it holds: its weight stands, ten
    memories later as on the first day. A halt weighs as long as it lasts and fades from its end."""
    world, names = _market({"memory": "5d", "alert": 0.0})
    market = world.market
    a, b = names.index("mixer_a"), names.index("mixer_b")
    market.venues[a].designate()
    market.venues[b].halt()
    market.observe(1.0)
    market.observe(50 * DAY)
    assert market.risk(np.array([a, b]), 50 * DAY) == pytest.approx([0.5, 0.3])
    assert market.calm_after(np.array([a]), 50 * DAY, 0.4)[0] == math.inf  # it does not calm down while designated
    market.venues[b].halt(False)
    market.observe(60 * DAY)
    assert market.risk(np.array([a, b]), 65 * DAY) == pytest.approx([0.5, 0.3 * math.exp(-1.0)])


def _without_avoiding(scenario: Scenario) -> Scenario:
    data = scenario.model_dump()
    data["launderer"]["avoids_designated"] = False  # it may keep using a designated mixer (as DPRK did Tornado)
    return Scenario.model_validate(data)


def test_a_launderer_free_to_use_a_designated_mixer_still_shuns_it_while_the_designation_holds():
    """Designation weight 0.5 x risk_weight 10 = 5 utils against mixer_a from day 5: its share is
    ~e^-5 / (1 + e^-5) < 1 % for as long as it is designated. Were the designation an event fading
    with the 5-day memory, mixer_a would be back near half of the flow by days 30-40."""
    scenario = _without_avoiding(mixers({}, [{"kind": "designation", "name": "ofac", "at": "5d", "venue": "mixer_a"}]))
    shares = []
    for seed in range(2):
        rep = run(scenario, seed)
        a, both = inflow(rep, scenario, ["mixer_a"], 30 * DAY, 40 * DAY), inflow(rep, scenario, ["mixer_a", "mixer_b"], 30 * DAY, 40 * DAY)
        shares.append(a / both)
        assert inflow(rep, scenario, ["mixer_a"], 0, 5 * DAY) > 0.3 * inflow(rep, scenario, ["mixer_a", "mixer_b"], 0, 5 * DAY)
    assert max(shares) < 0.05


def _seizure_weights(share: float, seed: int) -> np.ndarray:
    """The weights of the seizures the launderer observed after a raid on both mixers taking about
    ``share`` of what it has inside them."""
    scenario = mixers({}, [{"kind": "seizure", "name": "raid", "at": "15d", "venues": ["mixer_a", "mixer_b"],
                            "jurisdictions": ["US"], "share": share}])
    world = World(scenario, np.random.default_rng(seed))
    world.run()
    obs = world.market.observations.arrays(copy=True)
    return obs["weight"][obs["event"] == 1]


def test_a_loss_weighs_by_the_share_of_the_value_at_stake_there_that_it_took():
    """A raid that takes all the launderer has inside a mixer adds the full seizure weight (0.8); one
    that takes about a quarter of it adds about a quarter of that. Before, both added 0.8."""
    full = np.concatenate([_seizure_weights(1.0, seed) for seed in range(2)])
    quarter = np.concatenate([_seizure_weights(0.25, seed) for seed in range(2)])
    assert len(full) and len(quarter)
    assert full == pytest.approx(0.8)  # everything inside was traced and seized
    assert 0.05 < quarter.mean() < 0.4


# --- README's policy section is the displacement study's -----------------------------------------


def test_readmes_displacement_table_is_the_studys():
    """README's compact table is written by sim/displacement_study.py from the same run as
    docs/displacement_study.md: every effect it shows is a cell of that page."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text(encoding="utf-8")
    start = readme.index("<!-- displacement-study:")
    block = readme[start: readme.index("<!-- /displacement-study -->")]
    page = (root / "docs" / "displacement_study.md").read_text(encoding="utf-8")
    rows = [line for line in block.splitlines() if line.startswith("| ") and not line.startswith("| policy")]
    assert len(rows) == 4  # whack-a-mole, bridge designation, freeze network, combined
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        policy, effects = cells[0], cells[1:5]
        cashed = next(line for line in page.splitlines() if line.startswith(f"| {policy} | cashed out |"))
        frozen = next(line for line in page.splitlines() if line.startswith(f"| {policy} | frozen or seized |"))
        assert cashed.endswith(f"| {effects[0]} | {effects[1]} |")
        assert frozen.endswith(f"| {effects[2]} | {effects[3]} |")
