"""Services by function and the launderer's choice rule (issue 21): the rule's properties, its
equivalence with the fixed playbook for one service, validation with file:line errors."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest

from conftest import line_of, run, two_chain_dict, write
from launderflow import metrics
from launderflow.model.world import World
from launderflow.scenario.loader import ScenarioError, load_scenario
from launderflow.scenario.schema import Scenario

REPO = Path(__file__).resolve().parent.parent

MIXERS = {
    "mixer_a": {"kind": "custodial_mixer", "jurisdiction": "US", "delay": "1d", "fee": 0.01, "payouts": 1},
    "mixer_b": {"kind": "custodial_mixer", "jurisdiction": "US", "delay": "1d", "fee": 0.01, "payouts": 1},
    "broker": {"kind": "otc", "jurisdiction": "offshore", "delay": "12h", "haircut": 0.04},
}


def market_dict(fees: tuple[float, float] = (0.01, 0.01), choice: dict | None = None,
                interventions: list[dict] | None = None, horizon: str = "60d") -> dict:
    """Two custodial mixers and an off-ramp as services; 400 lots reach the mixing step over 40 days."""
    venues = copy.deepcopy(MIXERS)
    venues["mixer_a"]["fee"], venues["mixer_b"]["fee"] = fees
    return two_chain_dict(
        "market", [{"hop": "split", "wallets": 400, "delay": {"dist": "uniform", "low": "0h", "high": "40d"}},
                   {"hop": "service", "function": "mixing"},
                   {"hop": "service", "function": "off_ramp"}],
        venues, stolen=[{"asset": "ETH", "amount": 30_000}], horizon=horizon,
        market={"choice": {"memory": "5d", "spillover": 0.0, **(choice or {})},
                "services": {"mixer_a": {"function": "mixing"}, "mixer_b": {"function": "mixing"},
                             "broker": {"function": "off_ramp"}}},
        interventions=interventions or [])


def inflow(rep, scenario: Scenario, venue: str, start: float = 0.0, end: float = math.inf) -> float:
    log = rep.inflows
    mine = (log["venue"] == list(scenario.venues).index(venue)) & (log["time"] >= start) & (log["time"] < end)
    return float(log["value_usd"][mine].sum())


# --- the choice rule's properties ---------------------------------------------------------------


def test_a_cheaper_service_of_equal_risk_gets_more_flow_as_the_logit_says():
    scenario = Scenario.model_validate(market_dict(fees=(0.01, 0.03), choice={"inertia": 0.0, "alert": 0.0}))
    share = []
    for seed in range(3):
        rep = run(scenario, seed)
        a, b = inflow(rep, scenario, "mixer_a"), inflow(rep, scenario, "mixer_b")
        share.append(a / (a + b))
    # U_a - U_b = cost_weight * (0.03 - 0.01) = 2 (delays and risks equal): P(a) = e^2 / (1 + e^2) = 0.881
    expected = math.exp(2.0) / (1.0 + math.exp(2.0))
    assert np.mean(share) == pytest.approx(expected, abs=0.05)
    assert min(share) > 0.75


def test_equal_services_share_the_flow_and_a_fee_rise_moves_it():
    equal = Scenario.model_validate(market_dict(choice={"inertia": 0.0, "alert": 0.0}))
    rep = run(equal, 4)
    a, b = inflow(rep, equal, "mixer_a"), inflow(rep, equal, "mixer_b")
    assert 0.4 < a / (a + b) < 0.6
    raised = Scenario.model_validate(market_dict(choice={"inertia": 0.0, "alert": 0.0}, interventions=[
        {"kind": "operators", "name": "fees_up", "at": "0h", "venue": "mixer_a", "relayer_fee_factor": 3.0,
         "honest_rate_factor": 1.0}]))
    rep = run(raised, 4)  # the operators' action triples a's fee to 3 %: the launderer reads the venue's fee
    a, b = inflow(rep, raised, "mixer_a"), inflow(rep, raised, "mixer_b")
    assert a / (a + b) < 0.2


def test_a_seizure_moves_flow_to_the_other_service_within_the_memory_time_then_it_returns():
    day = 24.0
    scenario = Scenario.model_validate(market_dict(choice={"inertia": 0.0, "alert": 0.0}, interventions=[
        {"kind": "seizure", "name": "raid", "at": "15d", "venues": ["mixer_a"]}]))
    before, within, later = [], [], []
    for seed in range(3):
        rep = run(scenario, seed)
        assert rep.actions["raid"][2] > 0  # value was seized inside mixer_a
        for out, (lo, hi) in ((before, (5, 15)), (within, (15, 20)), (later, (30, 40))):
            a = inflow(rep, scenario, "mixer_a", lo * day, hi * day)
            b = inflow(rep, scenario, "mixer_b", lo * day, hi * day)
            out.append(a / (a + b))
    # risk 0.8 x risk_weight 10 = 8 utils at the seizure: a's share ~ e^-8 / (1 + e^-8); it fades
    # as exp(-age / 5 d), so within the memory time (5 d) a gets little, and 3-5 memories later it
    # is back near half.
    assert np.mean(before) == pytest.approx(0.5, abs=0.12)
    assert np.mean(within) < 0.15
    assert np.mean(later) > 0.35


def test_without_learning_a_seizure_moves_nothing():
    scenario = Scenario.model_validate(market_dict(choice={"inertia": 0.0, "alert": 0.0, "seizure": 0.0}, interventions=[
        {"kind": "seizure", "name": "raid", "at": "15d", "venues": ["mixer_a"]}]))
    shares = []
    for seed in range(3):
        rep = run(scenario, seed)
        a = inflow(rep, scenario, "mixer_a", 15 * 24.0, 20 * 24.0)
        b = inflow(rep, scenario, "mixer_b", 15 * 24.0, 20 * 24.0)
        shares.append(a / (a + b))
    assert np.mean(shares) > 0.35


def test_a_takedown_sends_every_later_lot_to_the_substitute_and_closing_dates_are_kept():
    scenario = Scenario.model_validate(market_dict(interventions=[
        {"kind": "shutdown", "name": "takedown", "at": "10d", "venue": "mixer_a"}]))
    rep = run(scenario, 2)
    assert inflow(rep, scenario, "mixer_a", 10 * 24.0) == 0.0
    assert inflow(rep, scenario, "mixer_b", 10 * 24.0) > 0.5 * 30_000 * 1000 * 0.5  # most of the rest
    data = market_dict()
    data["market"]["services"]["mixer_b"]["opens"] = "20d"
    data["market"]["services"]["mixer_a"]["closes"] = "20d"
    timed = Scenario.model_validate(data)
    rep = run(timed, 2)
    assert inflow(rep, timed, "mixer_b", 0, 20 * 24.0) == 0.0  # not launched yet
    assert inflow(rep, timed, "mixer_a", 20 * 24.0) == 0.0  # closed
    assert inflow(rep, timed, "mixer_a") > 0 and inflow(rep, timed, "mixer_b") > 0


def test_inertia_keeps_the_flow_with_the_service_used_last():
    loose = Scenario.model_validate(market_dict(choice={"inertia": 0.0, "alert": 0.0}))
    sticky = Scenario.model_validate(market_dict(choice={"inertia": 5.0, "alert": 0.0}))

    def stays(scenario):
        """Share of consecutive mixer deposits that went to the same mixer as the one before."""
        rep = run(scenario, 7)
        log = rep.inflows
        mixers = log["venue"][np.isin(log["venue"], [0, 1])]
        return float(np.mean(mixers[1:] == mixers[:-1]))

    # the same service is chosen again with e^5 / (1 + e^5) = 0.993 against 0.5 without inertia
    assert stays(sticky) > 0.95
    assert 0.4 < stays(loose) < 0.6


def test_the_choice_draws_only_from_the_launderer_stream():
    """Two services of identical cost and risk: the draws that pick one must not move the
    replication's other randomness (the split shares and delays are the same)."""
    scenario = Scenario.model_validate(market_dict())
    one = run(scenario, 11).ledger
    split = one["hop"] == 2  # HOP_KINDS: theft, transfer, split
    data = market_dict()
    data["market"]["choice"]["cost_weight"] = 50.0  # other choice probabilities: other choices
    other = run(Scenario.model_validate(data), 11).ledger
    np.testing.assert_array_equal(one["value_usd"][split], other["value_usd"][split])


# --- one service is the fixed playbook ----------------------------------------------------------


FIXED_VENUES = {
    "tornado": {"kind": "pool_mixer", "asset": "ETH", "denominations": [1, 10, 100], "honest_deposits_per_day": 50,
                "delay": {"dist": "exponential", "mean": "1d"}},
    "thorchain": {"kind": "bridge", "jurisdiction": "none", "delay": "1h", "fee": 0.002, "halts": True},
    "uniswap": {"kind": "dex"},
    "exch": {"kind": "exchange", "jurisdiction": "offshore", "kyc": 0.2, "compliance": 0.5, "delay": "6h"},
    "desk": {"kind": "otc", "jurisdiction": "offshore", "delay": "1d", "haircut": 0.05, "capacity_usd_per_day": 2_000_000},
}
FIXED = [{"hop": "split", "wallets": 30, "delay": {"dist": "exponential", "mean": "6h"}},
         {"hop": "swap", "venue": "uniswap", "to": "ETH"},
         {"hop": "mix", "venue": "tornado"},
         {"hop": "bridge", "venue": "thorchain", "to": "BTC"},
         {"hop": "exchange", "venue": "exch", "to": "BTC"},
         {"hop": "cash_out", "venue": "desk", "retry": "12h"}]
AS_SERVICES = [FIXED[0],
               {"hop": "service", "function": "swapping", "to": "ETH"},
               {"hop": "service", "function": "mixing"},
               {"hop": "service", "function": "cross_chain", "to": "BTC"},
               {"hop": "service", "function": "swapping", "to": "BTC"},
               {"hop": "service", "function": "off_ramp", "retry": "12h"}]


def _fixed_and_services(interventions: list[dict]) -> tuple[Scenario, Scenario]:
    common = dict(stolen=[{"asset": "ETH", "amount": 3000}, {"asset": "USDC", "amount": 2_000_000}],
                  horizon="30d", discovered_after="2h", fees=(2.0, 1.0), interventions=interventions,
                  tracing={"hop_success": {"split": 0.95, "exchange": 0.8}})
    fixed = two_chain_dict("fixed", FIXED, FIXED_VENUES, **common)
    services = two_chain_dict("fixed", AS_SERVICES, FIXED_VENUES, market={"services": {
        "uniswap": {"function": "swapping"}, "tornado": {"function": "mixing"},
        "thorchain": {"function": "cross_chain"}, "desk": {"function": "off_ramp"}}}, **common)
    # exch swaps (ETH -> BTC after the bridge: it holds BTC already) — a second swapping service
    # would make it a choice, so the exchange step uses its own: swapping on exch only
    services["playbook"][4] = {"hop": "exchange", "venue": "exch", "to": "BTC"}
    return Scenario.model_validate(fixed), Scenario.model_validate(services)


@pytest.mark.parametrize("interventions", [
    [],
    [{"kind": "halt", "at": "1d", "venue": "thorchain", "duration": "2d"},
     {"kind": "designation", "at": "12h", "venue": "tornado"},
     {"kind": "seizure", "at": "5d", "jurisdictions": ["offshore"]}],
], ids=["plain", "with_interventions"])
def test_one_service_per_function_is_exactly_the_fixed_playbook(interventions):
    fixed, services = _fixed_and_services(interventions)
    for seed in (0, 3):
        a, b = run(fixed, seed), run(services, seed)
        for column in a.ledger:
            np.testing.assert_array_equal(a.ledger[column], b.ledger[column], err_msg=column)
        np.testing.assert_array_equal(a.log_delta, b.log_delta)
        np.testing.assert_array_equal(a.refusals, b.refusals)
        assert metrics.final_states(a) == metrics.final_states(b)
        assert len(a.ledger["hop"]) > 100


def test_a_scenario_without_services_builds_no_market():
    fixed, services = _fixed_and_services([])
    assert World(fixed, np.random.default_rng(0)).market is None
    assert len(World(services, np.random.default_rng(0)).market) == 4


# --- validation ---------------------------------------------------------------------------------

YAML = """\
name: services
clock: {horizon: 10d}
chains:
  eth: {fee_usd: 1}
assets:
  ETH: {chain: eth, price_usd: 1000}
venues:
  mixer: {kind: custodial_mixer, jurisdiction: offshore}
  desk: {kind: otc, jurisdiction: offshore}
market:
  services:
    mixer: {function: mixing}
    desk: {function: off_ramp}
thefts:
  - {name: hack, victim: v, stolen: [{asset: ETH, amount: 10}]}
playbook:
  - {hop: service, function: mixing}
  - {hop: service, function: off_ramp}
"""


def _problems(tmp_path, text):
    with pytest.raises(ScenarioError) as info:
        load_scenario(write(tmp_path, "s.yaml", text))
    return info.value.problems


def test_the_example_is_valid(tmp_path):
    scenario = load_scenario(write(tmp_path, "s.yaml", YAML))
    assert list(scenario.market.services) == ["mixer", "desk"]
    rep = run(scenario, 0)
    assert metrics.final_states(rep)["cashed_out"] > 0


@pytest.mark.parametrize("old,new,path,needle", [
    ("    desk: {function: off_ramp}\n", "    desk: {function: mixing}\n", "market.services.desk.function",
     "venue 'desk' is a otc; a mixing service needs a pool_mixer or custodial_mixer"),
    ("    desk: {function: off_ramp}\n", "    desks: {function: off_ramp}\n", "market.services.desks",
     "unknown venue 'desks'"),
    ("    desk: {function: off_ramp}\n", "    desk: {function: laundering}\n", "market.services.desk.function.0",
     "'mixing', 'cross_chain', 'swapping' or 'off_ramp'"),
    ("  - {hop: service, function: off_ramp}\n", "  - {hop: service, function: cross_chain}\n", "playbook.1.function",
     "no service in market.services serves 'cross_chain' (served: mixing, off_ramp)"),
    ("    mixer: {function: mixing}\n", "    mixer: {function: mixing, opens: 5d, closes: 2d}\n", "market.services.mixer",
     "closes must be after opens"),
    ("market:\n", "market:\n  choice: {memory: 0h}\n", "market.choice.memory", "greater than 0"),
    ("market:\n", "market:\n  choice: {inertia: -1}\n", "market.choice.inertia", "greater than or equal to 0"),
    ("market:\n", "market:\n  choice: {fragment_above: 0.5, fragments: 1}\n", "market.choice.fragments",
     "greater than or equal to 2"),
    ("market:\n", "market:\n  choice: {pause_above: -1}\n", "market.choice.pause_above", "greater than 0"),
    ("market:\n", "market:\n  choice: {spillover_of: [takedown]}\n", "market.choice.spillover_of.0", "'shutdown'"),
])
def test_bad_services_are_reported_at_their_line(tmp_path, old, new, path, needle):
    assert YAML.count(old) == 1
    text = YAML.replace(old, new)
    problems = _problems(tmp_path, text)
    assert path in [p.path for p in problems], [str(p) for p in problems]
    p = next(p for p in problems if p.path == path)
    assert needle in p.message
    assert p.line == line_of(text, new.strip().splitlines()[-1].strip())


def test_a_cross_chain_service_hop_needs_to(tmp_path):
    text = YAML.replace("    mixer: {function: mixing}\n", "    mixer: {function: mixing}\n    bridge: {function: cross_chain}\n")
    text = text.replace("  desk: {kind: otc, jurisdiction: offshore}\n",
                        "  desk: {kind: otc, jurisdiction: offshore}\n  bridge: {kind: bridge, jurisdiction: none}\n")
    text = text.replace("  - {hop: service, function: mixing}\n", "  - {hop: service, function: [mixing, cross_chain]}\n")
    problems = _problems(tmp_path, text)
    assert [p.path for p in problems] == ["playbook.0.to"]
    assert "needs 'to'" in problems[0].message
    assert problems[0].line == line_of(text, "function: [mixing, cross_chain]")


# --- displacement metrics, compare, the figure ----------------------------------------------------


def test_displaced_share_is_the_substitutes_flow_beyond_their_share_before():
    scenario = Scenario.model_validate(market_dict(choice={"inertia": 0.0, "alert": 0.0}, interventions=[
        {"kind": "seizure", "name": "raid", "at": "15d", "venues": ["mixer_a"]}]))
    rep = run(scenario, 1)
    t = rep.actions["raid"][1]
    a0, b0 = inflow(rep, scenario, "mixer_a", 0, t), inflow(rep, scenario, "mixer_b", 0, t)
    a1, b1 = inflow(rep, scenario, "mixer_a", t), inflow(rep, scenario, "mixer_b", t)
    want = (b1 - b0 / (a0 + b0) * (a1 + b1)) / rep.stolen_usd
    got = metrics.METRICS["displaced_share"](intervention="raid").value(rep, scenario)
    assert got == pytest.approx(want, rel=1e-12)
    assert got > 0.03  # the seizure moved flow to mixer_b
    assert math.isnan(metrics.METRICS["displaced_share"](intervention="nothing").value(rep, scenario))
    ramp = metrics.METRICS["offramp_share"]().value(rep, scenario)
    assert ramp == pytest.approx(inflow(rep, scenario, "broker") / rep.stolen_usd, rel=1e-12)
    mixing = metrics.METRICS["function_flow_share"](function="mixing").value(rep, scenario)
    assert mixing == pytest.approx((a0 + a1 + b0 + b1) / rep.stolen_usd, rel=1e-12)
    assert math.isnan(metrics.METRICS["function_flow_share"](function="swapping").value(rep, scenario))


def test_venue_share_growth_is_its_share_of_the_laundering_flow_over_its_share_just_before():
    """Unlike venue_inflow_growth, it does not move with how much was stolen in each window: the
    raid on mixer_a moves mixer_b's share of the mixing flow up, whatever the amounts."""
    scenario = Scenario.model_validate(market_dict(choice={"inertia": 0.0, "alert": 0.0}, interventions=[
        {"kind": "seizure", "name": "raid", "at": "15d", "venues": ["mixer_a"]}]))
    rep = run(scenario, 1)
    day = 24.0
    share = {w: inflow(rep, scenario, "mixer_b", *w) / (inflow(rep, scenario, "mixer_a", *w) + inflow(rep, scenario, "mixer_b", *w))
             for w in ((5 * day, 15 * day), (15 * day, 25 * day))}
    got = metrics.METRICS["venue_share_growth"](venue="mixer_b", start=15 * day, at=25 * day).value(rep, scenario)
    assert got == pytest.approx(share[(15 * day, 25 * day)] / share[(5 * day, 15 * day)], rel=1e-12)
    assert got > 1.3  # the launderer moved to mixer_b
    assert math.isnan(metrics.METRICS["venue_share_growth"](venue="mixer_b", start=55 * day, at=58 * day).value(rep, scenario))


def test_function_share_growth_is_a_functions_share_of_the_flow_over_its_share_just_before():
    """mixer_b also serves cross_chain: the cross-chain function's share growth is mixer_b's (the raid
    on mixer_a moved the flow there); mixing, which both serve, keeps all of the flow (growth 1)."""
    data = market_dict(choice={"inertia": 0.0, "alert": 0.0}, interventions=[
        {"kind": "seizure", "name": "raid", "at": "15d", "venues": ["mixer_a"]}])
    data["market"]["services"]["mixer_b"]["function"] = ["mixing", "cross_chain"]
    scenario = Scenario.model_validate(data)
    rep = run(scenario, 1)
    day = 24.0
    growth = metrics.METRICS["function_share_growth"]
    got = growth(function="cross_chain", start=15 * day, at=25 * day).value(rep, scenario)
    assert got == pytest.approx(metrics.METRICS["venue_share_growth"](venue="mixer_b", start=15 * day, at=25 * day)
                                .value(rep, scenario), rel=1e-12)
    assert got > 1.3
    assert growth(function="mixing", start=15 * day, at=25 * day).value(rep, scenario) == pytest.approx(1.0, rel=1e-12)
    assert math.isnan(growth(function="cross_chain", start=55 * day, at=58 * day).value(rep, scenario))  # no flow


def test_a_fixed_playbooks_substitutes_count_as_displacement_too():
    """Without services, the venues listed with a target in a hop are its substitutes: a takedown of
    the first mixer of ``venue: [mixer_a, mixer_b]`` displaces everything after it to mixer_b."""
    data = market_dict(interventions=[{"kind": "shutdown", "name": "takedown", "at": "10d", "venue": "mixer_a"}])
    del data["market"]
    data["playbook"][1:] = [{"hop": "mix", "venue": ["mixer_a", "mixer_b"]}, {"hop": "cash_out", "venue": "broker"}]
    scenario = Scenario.model_validate(data)
    rep = run(scenario, 1)
    assert inflow(rep, scenario, "mixer_b", 0, 10 * 24.0) == 0.0  # the first of the list while it works
    got = metrics.METRICS["displaced_share"](intervention="takedown").value(rep, scenario)
    assert got == pytest.approx(inflow(rep, scenario, "mixer_b") / rep.stolen_usd, rel=1e-12)
    assert got > 0.5
    assert metrics.displacement_measures([scenario]) == []  # no services: the tables stay as they were
    with_services = Scenario.model_validate(market_dict())
    keys = [m.key for m in metrics.displacement_measures([scenario, with_services])]
    assert keys == ["mixing_flow_share", "off_ramp_flow_share", "displaced_share_takedown", "offramp_share",
                    "launderer_cost_share", "mean_cash_out_days"]


def test_mean_cash_out_day_is_the_value_weighted_time_of_the_cash_outs():
    scenario = Scenario.model_validate(two_chain_dict(
        "ramp", [{"hop": "cash_out", "venue": "desk"}],
        {"desk": {"kind": "otc", "jurisdiction": "offshore", "delay": "3d"}}, horizon="10d"))
    rep = run(scenario, 0)
    assert metrics.METRICS["mean_cash_out_days"]().value(rep, scenario) == pytest.approx(3.0, abs=1e-9)
    assert metrics.METRICS["launderer_cost_share"]().value(rep, scenario) == 0.0


def test_compare_and_the_report_show_displacement_and_flows_by_service(tmp_path):
    from launderflow import api
    from launderflow.views.plots import load_runs, service_flows_figure

    plain = market_dict(choice={"inertia": 0.0})
    plain["name"] = "calm"
    raided = market_dict(choice={"inertia": 0.0}, interventions=[
        {"kind": "seizure", "name": "raid", "at": "15d", "venues": ["mixer_a"]}])
    raided["name"] = "raided"
    result = api.compare([Scenario.model_validate(plain), Scenario.model_validate(raided)], runs=2, seed=3,
                         out=tmp_path / "cmp")
    rows = {(r["scenario"], r["metric"]): r for r in result.rows}
    assert rows[("raided", "displaced_share_raid")]["median"] > 0
    assert rows[("calm", "displaced_share_raid")]["median"] is None  # no such intervention: NaN
    assert rows[("raided", "offramp_share")]["diff_median"] is not None
    assert "displaced by raid" in (tmp_path / "cmp" / "comparison.md").read_text()
    runs = load_runs(tmp_path / "cmp")
    fig = service_flows_figure(runs)
    assert fig is not None
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == ["calm", "raided"]
    assert [t.get_text() for t in panels[0].get_legend().get_texts()] == ["mixer_a", "mixer_b", "broker"]
    page = write_report_text(tmp_path / "cmp")
    assert "Displacement: where the flow went" in page and "fig-service_flows" in page


def write_report_text(directory: Path) -> str:
    from launderflow.views.report import write_report

    return write_report(directory).read_text(encoding="utf-8")


def test_launderflow_schema_covers_the_market_and_the_service_hop():
    import json

    from click.testing import CliRunner

    from launderflow.cli import main

    result = CliRunner().invoke(main, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    defs = schema["$defs"]
    assert "market" in schema["properties"]
    assert set(defs["Market"]["properties"]) == {"services", "choice"}
    assert {"cost_weight", "delay_weight", "risk_weight", "inertia", "memory"} <= set(defs["Choice"]["properties"])
    assert {"spillover_of", "spillover_among", "fragment_above", "fragments", "fragment_every",
            "pause_above"} <= set(defs["Choice"]["properties"])
    assert defs["ServiceHop"]["properties"]["hop"]["const"] == "service"
    assert {"function", "opens", "closes", "cost", "delay", "perceived_risk"} <= set(defs["Service"]["properties"])


def test_the_ecosystem_scenario_moves_dprk_flow_from_mixers_to_bridges_after_the_designation():
    """scenarios/ecosystem_2022_2024.yaml over its first 300 days: before the Tornado designation
    (day 219) most of the flow goes to mixers (its input), after it most goes to bridges: the
    mixer-vs-bridge split flipped in Jul-Sep 2022 (Elliptic, ecosystem.md)."""
    scenario = load_scenario(REPO / "scenarios" / "ecosystem_2022_2024.yaml", {"clock.horizon": "300d"})
    rep = run(scenario, 0)
    share = metrics.METRICS["function_share_between"]
    before = share(function="mixing", start=0.0, at=219 * 24.0).value(rep, scenario)
    after = share(function="mixing", start=219 * 24.0, at=300 * 24.0).value(rep, scenario)
    assert 0.6 < before < 0.8
    assert after < 0.5 and after < before - 0.2
    displaced = metrics.METRICS["displaced_share"](intervention="tornado_ofac").value(rep, scenario)
    assert displaced > 0.005  # of everything stolen by day 300: flow to the bridges beyond their share before


def test_the_ecosystem_targets_file_loads_with_one_input_and_checks():
    from launderflow.analysis.targets import load_targets

    targets, _ = load_targets(REPO / "scenarios" / "targets" / "ecosystem_2022_2024.yaml",
                              REPO / "scenarios" / "ecosystem_2022_2024.yaml", need_parameters=False)
    roles = [t.role for t in targets.targets]
    assert roles.count("input") == 1 and roles.count("check") == 7
