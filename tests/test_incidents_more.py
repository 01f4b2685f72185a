"""The further DPRK incident scenarios (issue 20, item 5): atomic_2023, poloniex_2023, htx_2023,
orbit_2024 and wazirx_2024, and phemex_2025 and stake_2023.

As for harmony_2022 and dmm_2024 (tests/test_incidents.py), what is checked is structure, not the
backtest's verdict (that is reported, pass or fail, and is information about the shared behaviour):

* each scenario and its targets file load, and the scenario validates with no problem or warning;
* each steals the fact sheet's amounts, and the parties that could freeze are the ones named;
* each extends the shared behaviour and overrides none of it: in the raw YAML no ``tracing``,
  ``launderer`` or ``profiles``, of ``capacity_pools`` only each pool's ``share`` (this theft's part
  of the network's work: an input of the incident, not behaviour), and no venue ``response``; a venue with a
  ``profile`` sets only what identifies it (its asset, jurisdiction, a pool's denominations and
  honest traffic); so every loaded scenario has the same tracing, launderer, pools and freezers;
* every target cites an attribution of the fact sheet and outcome facts are checks;
* every number in the scenario files carries a comment (its source, or ASSUMPTION);
* a full replication of each conserves value at every instant (book, timeline, ledger), keeps the
  dated route facts it was built from, and only the parties named freeze.
"""

from __future__ import annotations

import pytest
import yaml
from click.testing import CliRunner

from launderflow.analysis.targets import describe_target, load_targets
from launderflow.cli import main
from launderflow.metrics import METRICS, final_states
from launderflow.model.simulate import simulate
from launderflow.runs.replications import replication_rng
from launderflow.scenario.loader import load_scenario
from launderflow.scenario.plausibility import warnings
from launderflow.scenario.schema import ExchangeVenue, IssuerVenue, Scenario
from test_conservation import check_conservation
from test_incidents import ATTRIBUTIONS, OUTCOME_METRICS, bare_numbers, paths, stolen_usd

INCIDENTS = ("atomic_2023", "poloniex_2023", "htx_2023", "orbit_2024", "wazirx_2024", "phemex_2025", "stake_2023")
SHARED = "behaviour/dprk.yaml"
DAY = 24.0
# What a scenario may say about a venue that takes a shared profile: what identifies the venue in
# this incident, never how it behaves (that is the shared file's, jointly calibrated).
IDENTITY_KEYS = {"profile", "asset", "jurisdiction", "denominations", "honest_deposits_per_day", "pool_depth_usd", "halts",
                 "honest_pool_weights", "background_step"}
SHARED_KEYS = ("tracing", "launderer", "profiles")
# The parties that could freeze in each incident (incidents.md), and nobody else.
FREEZERS = {
    "atomic_2023": {"freezing_exchanges", "tether"},
    "poloniex_2023": {"tether"},
    "htx_2023": {"tether"},
    "orbit_2024": {"tether", "circle"},
    "wazirx_2024": {"tether"},
    "phemex_2025": {"tether", "circle"},
    "stake_2023": set(),  # the sheet names no party that could freeze, and no stablecoin
}


@pytest.fixture(scope="module")
def loaded() -> dict[str, tuple[Scenario, object]]:
    """Each scenario and its targets file (whose ``parameters`` lists are empty, so none are required)."""
    return {name: load_targets(paths(name)[1], paths(name)[0], need_parameters=False)[::-1] for name in INCIDENTS}


@pytest.fixture(scope="module")
def runs(loaded) -> dict[str, object]:
    """One full replication of each incident (a few seconds each)."""
    return {name: simulate(scenario, replication_rng(scenario.seed, 0), keep_ledger=False)
            for name, (scenario, _) in loaded.items()}


def inflow_at(rep, scenario: Scenario, venue: str, days: float) -> float:
    return METRICS["venue_inflow_share_at"](venue=venue, at=days * DAY).value(rep, scenario)


def frozen_at(rep, scenario: Scenario, days: float) -> float:
    return METRICS["share_at"](state="frozen", at=days * DAY).value(rep, scenario)


# --- files --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", INCIDENTS)
def test_validates_without_problems_or_warnings(name):
    result = CliRunner().invoke(main, ["validate", str(paths(name)[0])])
    assert result.exit_code == 0 and "warning" not in result.output.lower(), result.output
    assert warnings(load_scenario(paths(name)[0])) == []


@pytest.mark.parametrize("name", INCIDENTS)
def test_extends_the_shared_behaviour_and_overrides_none_of_it(name):
    raw = yaml.safe_load(paths(name)[0].read_text(encoding="utf-8"))
    assert raw["extends"] == SHARED
    assert not [key for key in SHARED_KEYS if key in raw], f"{name} sets shared behaviour"
    # of a capacity pool, only the incident's share of it (its part of DPRK's thefts that year)
    assert all(set(pool) == {"share"} for pool in raw.get("capacity_pools", {}).values()), f"{name} sets a pool's capacity"
    for venue, spec in raw["venues"].items():
        assert "response" not in spec, f"{name}: {venue} sets its own freeze response"
        if "profile" in spec:
            assert set(spec) <= IDENTITY_KEYS, f"{name}: {venue} overrides its profile's {set(spec) - IDENTITY_KEYS}"
        else:  # a venue of its own: not a freezer and no off-ramp capacity (those are the shared profiles')
            assert spec["kind"] not in ("issuer", "otc") and not (spec["kind"] == "exchange" and spec.get("freezes", True)), \
                f"{name}: {venue} is a freezer or an off-ramp without a shared profile"


def test_every_incident_behaves_as_the_shared_file_says(loaded):
    scenarios = [scenario for scenario, _ in loaded.values()]
    first = scenarios[0]
    for scenario in scenarios[1:]:
        assert scenario.tracing == first.tracing
        assert scenario.launderer == first.launderer and scenario.launderer.exposure is not None
        assert ({n: p.model_copy(update={"share": 1.0}) for n, p in scenario.capacity_pools.items()}
                == {n: p.model_copy(update={"share": 1.0}) for n, p in first.capacity_pools.items()})
    responses = {(v.kind, v.response) for sc in scenarios for v in sc.venues.values()
                 if isinstance(v, (ExchangeVenue, IssuerVenue)) and v.response is not None}
    # one response per kind of freezer: the freezing exchange, Tether, Circle (behaviour/dprk.yaml)
    assert len(responses) == len({(kind, r.law_enforcement.latency) for kind, r in responses}) == 3


def test_the_stolen_amounts_are_the_fact_sheets(loaded):
    def amounts(name: str) -> dict[str, float]:
        return {s.asset: s.amount for theft in loaded[name][0].thefts for s in theft.stolen}

    atomic = loaded["atomic_2023"][0]
    assert stolen_usd(atomic) == pytest.approx(100e6)  # > $100 M (Elliptic)
    poloniex = loaded["poloniex_2023"][0]
    assert 114e6 <= stolen_usd(poloniex) <= 126e6  # ≈ $114-126 M (Wu Blockchain)
    assert 443 <= amounts("poloniex_2023")["BTC"] <= 875 and amounts("poloniex_2023")["TRX"] == 288e6
    assert amounts("poloniex_2023")["USDT"] == 20e6  # the tokens on Tron that bought $20 M of TRX
    htx = loaded["htx_2023"][0]
    heco, hot = htx.thefts
    assert {s.asset: s.amount for s in heco.stolen} == {"ETH": 10145, "USDT": 42.1e6, "TOKENS": pytest.approx(24.61e6)}
    assert sum(s.amount * htx.assets[s.asset].price_usd for s in heco.stolen) == pytest.approx(87e6)  # bridge ≈ $87 M
    assert sum(s.amount * htx.assets[s.asset].price_usd for s in hot.stolen) == pytest.approx(26e6)  # hot wallets ≈ $26 M
    assert (heco.victim_kind, hot.victim_kind) == ("bridge", "exchange")
    orbit = loaded["orbit_2024"][0]
    assert amounts("orbit_2024") == {"USDT": 30e6, "USDC": 10e6, "DAI": 10e6, "ETH": 9500, "WBTC": 230}
    assert stolen_usd(orbit) == pytest.approx(81.5e6, rel=0.001)  # $81.5 M
    assert [a for a, asset in orbit.assets.items() if asset.freezable] == ["USDT", "USDC"]
    wazirx = loaded["wazirx_2024"][0]
    assert 230e6 <= stolen_usd(wazirx) <= 235e6  # $230-235 M
    phemex = loaded["phemex_2025"][0]
    taken = [(t.time / DAY, sum(s.amount * phemex.assets[s.asset].price_usd for s in t.stolen)) for t in phemex.thefts]
    assert [day for day, _ in taken] == [0, 1, 3]
    assert [sum(usd for _, usd in taken[:k + 1]) for k in range(3)] == pytest.approx([29e6, 69e6, 85e6], rel=1e-4)
    stake = loaded["stake_2023"][0]
    by_chain = {stake.assets[a].chain: usd for a, usd in
                ((s.asset, s.amount * stake.assets[s.asset].price_usd) for s in stake.thefts[0].stolen)}
    assert by_chain == pytest.approx({"ethereum": 15.7e6, "bsc": 17.8e6, "polygon": 7.8e6}, rel=1e-6)


def test_only_the_named_parties_can_freeze(loaded):
    for name, (scenario, _) in loaded.items():
        freezers = {venue for venue, v in scenario.venues.items()
                    if isinstance(v, IssuerVenue) or (isinstance(v, ExchangeVenue) and v.freezes)}
        assert freezers == FREEZERS[name], name
        for venue in freezers:
            issuer = scenario.venues[venue]
            if isinstance(issuer, IssuerVenue):
                assert scenario.assets[issuer.asset].freezable


def test_every_target_cites_the_fact_sheet_and_has_a_role(loaded):
    for name, (_, spec) in loaded.items():
        for target in spec.targets:
            assert any(a in target.source for a in ATTRIBUTIONS + ("incidents.md",)), f"{name}: {target.name}"
            if target.metric in OUTCOME_METRICS or getattr(target, "state", None) in ("frozen", "seized",
                                                                                      "reported_frozen"):
                assert target.role == "check", f"{name}: {target.name} ({describe_target(target)}) is an outcome"
        assert {t.role for t in spec.targets} == {"input", "check"}, name
        assert any(getattr(t, "state", None) == "frozen" for t in spec.targets if t.role == "check"), \
            f"{name}: the frozen share (or 'no freeze reported') is the check"


@pytest.mark.parametrize("name", INCIDENTS)
def test_every_number_in_the_scenario_cites_a_source(name):
    assert bare_numbers(paths(name)[0]) == [], "numbers without a source or ASSUMPTION comment"


# --- runs -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", INCIDENTS)
def test_value_is_conserved_at_every_instant(loaded, name):
    scenario, _ = loaded[name]
    check_conservation(scenario, scenario.seed)  # the book, the timeline and the ledger (tests/test_conservation.py)


def test_only_the_named_parties_freeze(loaded, runs):
    for name, rep in runs.items():
        scenario, _ = loaded[name]
        frozen = dict(zip(scenario.venues, rep.venue_frozen))
        assert sum(frozen[v] for v in FREEZERS[name]) == pytest.approx(final_states(rep)["frozen"], abs=1e-6), name
        assert frozen_at(rep, scenario, scenario.clock.horizon / DAY) < 0.2, name  # a few percent at most, never most of it


def test_the_dated_route_facts_hold(loaded, runs):
    atomic, _ = loaded["atomic_2023"]
    assert inflow_at(runs["atomic_2023"], atomic, "sinbad", 9) > 0.9  # at Sinbad by d9
    htx, _ = loaded["htx_2023"]
    assert inflow_at(runs["htx_2023"], htx, "tornado", 111.9) == 0.0  # dormant ≈ 112 days
    assert inflow_at(runs["htx_2023"], htx, "tornado", 120.1) == pytest.approx(0.715, abs=0.02)  # 40,392 ETH in 8 days
    orbit, _ = loaded["orbit_2024"]
    assert inflow_at(runs["orbit_2024"], orbit, "tornado", 159.9) == 0.0  # dormant ≈ 160 days
    assert inflow_at(runs["orbit_2024"], orbit, "tornado", 161) == pytest.approx(0.365, abs=0.02)  # 12,932 ETH on 8 Jun
    wazirx, _ = loaded["wazirx_2024"]
    assert inflow_at(runs["wazirx_2024"], wazirx, "tornado", 45.9) == 0.0  # ~6.5 weeks dormant
    assert 0.0 < inflow_at(runs["wazirx_2024"], wazirx, "tornado", 47) < 0.1  # 2,600 ETH on d46
    poloniex, _ = loaded["poloniex_2023"]
    inflow = dict(zip(poloniex.venues, runs["poloniex_2023"].venue_inflow / runs["poloniex_2023"].stolen_usd))
    # the tokens on Tron ($20 M) buy TRX, except what Tether froze before the thief's turn at the aggregator
    frozen_usdt = dict(zip(poloniex.venues, runs["poloniex_2023"].venue_frozen))["tether"] / runs["poloniex_2023"].stolen_usd
    assert inflow["tron_aggregator"] + frozen_usdt == pytest.approx(20e6 / stolen_usd(poloniex), abs=0.005)


def test_freezable_stablecoins_do_not_wait(loaded, runs):
    """The shared exposure management swaps freezable stablecoins first (Orbit's and Phemex's fact,
    incidents.md): a day after the theft none of Orbit's $40 M of USDT and USDC is left."""
    orbit, _ = loaded["orbit_2024"]
    for asset in ("USDT", "USDC"):
        held = METRICS["asset_share_at"](asset=asset, at=DAY).value(runs["orbit_2024"], orbit)
        assert held == 0.0, asset
