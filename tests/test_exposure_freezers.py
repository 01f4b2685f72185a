"""Issue 20's mechanisms on tiny scenarios with known answers: freezers that respond by channel
(with thresholds and strong victims), the team's success with shared methods, the exposure-aware
launderer (swap first, just-in-time conversion with backpressure, short dwell), DEX liquidity and
venue profiles."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from conftest import rows, run, two_chain_dict, write
from launderflow.model.tracing import team_success
from launderflow.model.world import World
from launderflow.scenario.loader import ScenarioError, load_scenario
from launderflow.scenario.schema import Scenario

CHANNELS_OFF = {"screening": {"probability": 0.0}, "victim": {"probability": 0.0}, "law_enforcement": {"probability": 0.0}}


def circle(**channels: Any) -> dict[str, Any]:
    """An issuer of USDC that acts only by the given channels."""
    response = copy.deepcopy(CHANNELS_OFF)
    response.update({k: v for k, v in channels.items() if k != "min_usd"})
    if "min_usd" in channels:
        response["min_usd"] = channels["min_usd"]
    return {"kind": "issuer", "jurisdiction": "US", "asset": "USDC", "response": response}


def usdc_scenario(venues: dict, playbook: list[dict], *, victim_kind: str = "other", exposure: dict | None = None,
                  amount: float = 1_000_000.0, wallets: int = 10, horizon: str = "20d") -> Scenario:
    data = two_chain_dict("freezers", playbook, {"circle": None, **venues}, horizon=horizon,
                          thefts=[{"name": "hack", "victim": "v", "victim_kind": victim_kind,
                                   "stolen": [{"asset": "USDC", "amount": amount}]}],
                          tracing={"auto_latency": 0, "sharing": {"latency": 0}})
    data["venues"] = {k: v for k, v in data["venues"].items() if v is not None}
    data["playbook"] = [{"hop": "split", "wallets": wallets}, *playbook]
    if exposure is not None:
        data["launderer"] = {"exposure": exposure}
    return Scenario.model_validate(data)


SWAP_LATER = [{"hop": "wait", "delay": "5d"},
              {"hop": "swap", "venue": "uni", "to": "ETH"}]
UNI = {"uni": {"kind": "dex", "fee": 0.0, "pool_depth_usd": 1e15}}


# --- freezers by channel ---------------------------------------------------------------------------


def test_strong_victim_channel_freezes_only_for_exchange_victims():
    issuer = circle(victim={"probability": 0.0, "strong": 1.0, "latency": "1h"})
    strong = run(usdc_scenario({"circle": issuer, **UNI}, SWAP_LATER, victim_kind="exchange"))
    weak = run(usdc_scenario({"circle": issuer, **UNI}, SWAP_LATER, victim_kind="wallet"))
    assert strong.venue_frozen[0] == pytest.approx(strong.stolen_usd, rel=1e-9)  # all of it, an hour after the flag
    assert weak.venue_frozen[0] == 0.0


def _sharing_latency(scenario: Scenario, latency: str) -> Scenario:
    data = scenario.model_dump(mode="json", exclude_unset=True)
    data["tracing"]["sharing"]["latency"] = latency
    return Scenario.model_validate(data)


@pytest.mark.parametrize("direct", [False, True])
def test_a_direct_victim_asks_at_the_trace_not_after_the_sharing_latency(direct: bool):
    # Sharing takes 10 days, the swap comes on day 5: only a victim that asks the issuer itself,
    # at the trace, beats it; a weak victim's request still waits for the flag.
    issuer = circle(victim={"probability": 0.0, "strong": 1.0, "latency": "1h", "direct": direct})
    for kind in ("exchange", "wallet"):
        scenario = _sharing_latency(usdc_scenario({"circle": issuer, **UNI}, SWAP_LATER, victim_kind=kind), "10d")
        rep = run(scenario)
        caught = direct and kind == "exchange"
        assert rep.venue_frozen[0] == (pytest.approx(rep.stolen_usd, rel=1e-9) if caught else 0.0), (direct, kind)


def _after_a_mixer(issuer: dict, sharing: str) -> Scenario:
    """An exchange's stolen USDC goes through a custodial mixer (a judgment point the analysts
    always get through), waits five days and is swapped; sharing takes ``sharing``."""
    mixer = {"kind": "custodial_mixer", "jurisdiction": "offshore", "delay": "1h", "fee": 0.0, "payouts": 1}
    playbook = [{"hop": "mix", "venue": "cm"}, *SWAP_LATER]
    scenario = usdc_scenario({"circle": issuer, "cm": mixer, **UNI}, playbook, victim_kind="exchange")
    data = scenario.model_dump(mode="json", exclude_unset=True)
    data["tracing"]["hop_success"] = {"custodial_mixer": 1.0}
    data["tracing"]["sharing"]["latency"] = sharing
    return Scenario.model_validate(data)


def test_a_direct_victim_asks_only_about_lots_still_in_its_own_view():
    # Past a judgment point (the mixer payout) the victim no longer asks at the trace: with the flag
    # 10 days away nothing is frozen before the swap on day 5, where before the mixer all of it is.
    strong_only = circle(victim={"probability": 0.0, "strong": 1.0, "latency": "1h", "direct": True})
    rep = run(_after_a_mixer(strong_only, "10d"))
    assert rep.venue_frozen[0] == 0.0
    # With the flag in time its request travels with the flag at the ordinary chance, not the strong one.
    assert run(_after_a_mixer(strong_only, "1h")).venue_frozen[0] == 0.0
    ordinary = circle(victim={"probability": 1.0, "strong": 0.0, "latency": "1h", "direct": True})
    rep = run(_after_a_mixer(ordinary, "1h"))
    assert rep.venue_frozen[0] == pytest.approx(rep.stolen_usd, rel=1e-9)


def test_a_consolidation_stays_in_the_victims_view_while_any_input_is():
    # Half the wallets pass the mixer, half do not; merged, the wallet holds value the victim still
    # sees, so it is asked about at the trace and everything merged is frozen before the swap (the
    # issuer takes two days: the inputs have been merged by then).
    strong_only = circle(victim={"probability": 0.0, "strong": 1.0, "latency": "2d", "direct": True})
    data = _after_a_mixer(strong_only, "10d").model_dump(mode="json", exclude_unset=True)
    data["playbook"] = [{"hop": "split", "wallets": 10},
                        {"hop": "branch", "branches": [{"share": 0.5, "playbook": [{"hop": "mix", "venue": "cm"}]},
                                                       {"share": 0.5, "playbook": [{"hop": "wait", "delay": "1h"}]}]},
                        {"hop": "consolidate", "wallets": 1}, *SWAP_LATER]
    rep = run(Scenario.model_validate(data))
    assert rep.venue_frozen[0] == pytest.approx(rep.stolen_usd, rel=1e-9)


def test_a_direct_victim_is_asked_once_not_again_at_the_flag():
    # Strong chance 0.5 asked directly (no flag delay): about half frozen, not 1 - 0.5^2 = 75 %.
    issuer = circle(victim={"probability": 0.0, "strong": 0.5, "latency": "1h", "direct": True})
    scenario = usdc_scenario({"circle": issuer, **UNI}, SWAP_LATER, victim_kind="exchange", wallets=400)
    rep = run(scenario)
    share = rep.venue_frozen[0] / rep.stolen_usd
    assert 0.40 < share < 0.60, share


def test_earliest_channel_wins_and_a_late_one_loses_the_race():
    # law enforcement acts with certainty but after 10 days: the swap on day 5 wins
    late = circle(law_enforcement={"probability": 1.0, "latency": "10d"})
    rep = run(usdc_scenario({"circle": late, **UNI}, SWAP_LATER))
    assert rep.venue_frozen[0] == 0.0
    soon = circle(law_enforcement={"probability": 1.0, "latency": "10d"}, screening={"probability": 1.0, "latency": "2h"})
    rep = run(usdc_scenario({"circle": soon, **UNI}, SWAP_LATER))
    assert rep.venue_frozen[0] == pytest.approx(rep.stolen_usd, rel=1e-9)


def test_lots_below_the_threshold_are_not_acted_on():
    # 10 wallets of ~$100 k each: a $150 k threshold leaves most of them alone, a $1 threshold none
    def frozen(min_usd: float) -> float:
        issuer = circle(screening={"probability": 1.0, "latency": "1h"}, min_usd=min_usd)
        rep = run(usdc_scenario({"circle": issuer, **UNI}, SWAP_LATER))
        return float(rep.venue_frozen[0] / rep.stolen_usd)
    assert frozen(1.0) == pytest.approx(1.0)
    assert frozen(10_000_000.0) == 0.0
    partly = frozen(100_000.0)  # Dirichlet shares around $100 k: some above, some below
    assert 0.0 < partly < 1.0


def test_channel_probability_is_a_share_of_lots():
    issuer = circle(victim={"probability": 0.3, "latency": "1h"})
    shares = [run(usdc_scenario({"circle": issuer, **UNI}, SWAP_LATER, wallets=400), seed=s).venue_frozen[0] / 1e6
              for s in range(3)]
    assert 0.2 < float(np.mean(shares)) < 0.4


def test_exchange_screening_catches_traced_deposits_on_arrival():
    exchange = {"kind": "exchange", "jurisdiction": "offshore", "freezes": True, "delay": "1d",
                "response": {**CHANNELS_OFF, "screening": {"probability": 1.0, "latency": "10min"}}}
    data = two_chain_dict("screen", [{"hop": "exchange", "venue": "cex", "to": "BTC"}], {"cex": exchange},
                          tracing={"auto_latency": 0, "sharing": {"latency": "30d"}})  # no flag in time: screening alone
    rep = run(Scenario.model_validate(data))
    assert rep.venue_frozen[0] == pytest.approx(rep.stolen_usd * (1 - 0.001), rel=1e-9)  # after the exchange's fee
    data["venues"]["cex"]["response"]["screening"]["probability"] = 0.0
    assert run(Scenario.model_validate(data)).venue_frozen[0] == 0.0


@pytest.mark.parametrize("direct, indirect", [(1.0, 0.0), (0.0, 1.0)])
def test_screening_acts_on_direct_and_indirect_exposure_at_their_own_chances(direct: float, indirect: float):
    # Half the deposits come straight from the theft (direct exposure), half through a custodial
    # mixer whose payouts the analysts always link (traced, but past a judgment point: indirect).
    # Screening freezes each half at its own chance: all of one half and none of the other.
    exchange = {"kind": "exchange", "jurisdiction": "offshore", "freezes": True, "delay": "1d", "fee": 0.0,
                "response": {**CHANNELS_OFF, "screening": {"probability": indirect, "direct_exposure": direct, "latency": "10min"}}}
    mixer = {"kind": "custodial_mixer", "jurisdiction": "offshore", "delay": "1h", "fee": 0.0, "payouts": 1}
    playbook = [{"hop": "split", "wallets": 20},
                {"hop": "branch", "branches": [{"share": 0.5, "playbook": [{"hop": "mix", "venue": "cm"}]},
                                               {"share": 0.5, "playbook": [{"hop": "wait", "delay": "1h"}]}]},
                {"hop": "exchange", "venue": "cex", "to": "BTC"}]
    data = two_chain_dict("exposure", playbook, {"cex": exchange, "cm": mixer},
                          tracing={"auto_latency": 0, "sharing": {"latency": "30d"}, "hop_success": {"custodial_mixer": 1.0}})
    rep = run(Scenario.model_validate(data))
    frozen = rep.venue_frozen[0] / rep.stolen_usd
    assert frozen == pytest.approx(0.5, abs=1e-9), frozen  # the branch divides every lot in exact shares
    # Hardened defences raise both chances to at least their compliance: all of it is frozen.
    hardened = copy.deepcopy(data)
    hardened["interventions"] = [{"kind": "defences", "at": 0, "compliance": 1.0}]
    rep = run(Scenario.model_validate(hardened))
    assert rep.venue_frozen[0] / rep.stolen_usd == pytest.approx(1.0, abs=1e-9)
    # Without ``direct_exposure`` both halves take ``probability``: all of it or none.
    data["venues"]["cex"]["response"]["screening"] = {"probability": indirect, "latency": "10min"}
    rep = run(Scenario.model_validate(data))
    assert rep.venue_frozen[0] / rep.stolen_usd == pytest.approx(indirect, abs=1e-9)


def test_a_held_deposit_stays_in_the_account_and_a_late_request_still_freezes_it():
    # The launderer withdraws after an hour; law enforcement asks two days after the deposit. Only
    # deposits the exchange holds (for five days) are still there: all of them with holds at 1,
    # about half at 0.5, none without holds.
    def frozen(holds: dict | None) -> float:
        exchange = {"kind": "exchange", "jurisdiction": "offshore", "freezes": True, "delay": "1h",
                    "response": {**CHANNELS_OFF, "law_enforcement": {"probability": 1.0, "latency": "2d"}}}
        if holds is not None:
            exchange["holds"] = holds
        data = two_chain_dict("holds", [{"hop": "split", "wallets": 200}, {"hop": "exchange", "venue": "cex", "to": "BTC"}],
                              {"cex": exchange}, tracing={"auto_latency": 0, "sharing": {"latency": 0}})
        rep = run(Scenario.model_validate(data))
        return float(rep.venue_frozen[0] / rep.stolen_usd)
    assert frozen(None) == 0.0
    assert frozen({"probability": 0.0}) == 0.0
    assert frozen({"probability": 1.0, "duration": "5d"}) == pytest.approx(1 - 0.001, rel=1e-9)  # after the fee
    assert 0.35 < frozen({"probability": 0.5, "duration": "5d"}) < 0.65
    assert frozen({"probability": 1.0, "duration": "1d"}) == 0.0  # released before the request


# --- team success --------------------------------------------------------------------------------


def test_team_success_at_both_ends_of_dependence():
    own = [0.2, 0.2, 0.2]
    assert team_success(own, 0.0) == pytest.approx(1 - 0.8 ** 3)  # independent: 0.488
    assert team_success(own, 1.0) == pytest.approx(0.2)  # as good as the best tracer
    assert team_success([0.1, 0.6], 1.0) == pytest.approx(0.6)
    middle = team_success(own, 0.5)
    assert 0.2 < middle < 1 - 0.8 ** 3
    assert team_success([], 0.5) == 0.0


@given(st.lists(st.floats(0, 1), min_size=1, max_size=5), st.floats(0, 1), st.floats(0, 1))
def test_more_dependence_never_helps_the_team(own, a, b):
    lo, hi = sorted((a, b))
    assert team_success(own, hi) <= team_success(own, lo) + 1e-12
    assert max(own) - 1e-12 <= team_success(own, hi) <= 1.0


def test_dependence_reaches_the_judgment_points_of_a_run():
    tracers = [{"name": f"t{i}", "kind": "analytics", "hop_success": {"exchange": 0.2}} for i in range(3)]
    def kept(dependence: float) -> float:
        data = two_chain_dict("team", [{"hop": "split", "wallets": 300},
                                       {"hop": "exchange", "venue": "cex"}],
                              {"cex": {"kind": "exchange", "jurisdiction": "offshore", "freezes": False, "kyc": 0}},
                              tracing={"tracers": tracers, "dependence": dependence, "auto_latency": 0})
        world = World(Scenario.model_validate(data), np.random.default_rng(1))
        world.run()
        return float(world.lots.view("trail")[world.lots.view("alive")].mean())
    assert kept(0.0) == pytest.approx(0.488, abs=0.07)
    assert kept(1.0) == pytest.approx(0.2, abs=0.07)


# --- the exposure-aware launderer ------------------------------------------------------------------


def test_swap_first_skips_the_wait_of_freezable_lots():
    issuer = circle(law_enforcement={"probability": 1.0, "latency": "1d"})
    plain = run(usdc_scenario({"circle": issuer, **UNI}, SWAP_LATER))
    careful = run(usdc_scenario({"circle": issuer, **UNI}, SWAP_LATER, exposure={}))
    assert plain.venue_frozen[0] == pytest.approx(plain.stolen_usd, rel=1e-9)  # waited 5 days in USDC
    assert careful.venue_frozen[0] == 0.0  # swapped at once
    swaps = careful.ledger["hop"] == 8  # HOP_KINDS.index("swap")
    assert careful.ledger["time"][swaps].max() < 1.0


def desk_scenario(just_in_time: bool, capacity: float, waves: int, every: float, amount: float) -> Scenario:
    """BTC waits in waves, is bridged into (freezable) USDC and cashed out at a desk of scarce capacity."""
    data = two_chain_dict(
        "desk", [{"hop": "split", "wallets": 20},
                 {"hop": "dormant", "waves": waves, "first": "1d", "every": every},
                 {"hop": "bridge", "venue": "swapper", "to": "USDC", "delay": {"dist": "exponential", "mean": "12h"}},
                 {"hop": "cash_out", "venue": "desk"}],
        {"swapper": {"kind": "bridge", "jurisdiction": "none", "fee": 0.0},
         "desk": {"kind": "otc", "jurisdiction": "offshore", "capacity_usd_per_day": capacity}},
        stolen=[{"asset": "BTC", "amount": amount}], horizon="60d",
        launderer={"exposure": {"just_in_time": just_in_time, "swap_first": False, "short_dwell": False}})
    return Scenario.model_validate(data)


@settings(max_examples=15, deadline=None)
@given(capacity=st.sampled_from([2e5, 1e6, 5e6]), waves=st.integers(1, 5), every=st.sampled_from([12.0, 48.0, 120.0]),
       amount=st.sampled_from([10.0, 100.0]), seed=st.integers(0, 3))
def test_with_backpressure_no_value_waits_in_a_freezable_asset_at_the_desk(capacity, waves, every, amount, seed):
    """Just in time: USDC is bought only when the desk could book it, so the desk never turns
    converted value away (it would wait in USDC, within the issuer's reach, while BTC was available)."""
    world = World(desk_scenario(True, capacity, waves, every * 1.0, amount), np.random.default_rng(seed))
    world.run()
    desk = world.venue_index["desk"]
    assert world.refusals[desk] == 0
    lots = world.lots
    waiting = lots.view("alive") & (lots.view("location") == 0) & (lots.view("asset") == 1) \
        & (lots.view("step") == 4) & (lots.view("value") > 0)  # USDC in wallets at the cash-out step
    assert not waiting.any()


def test_without_backpressure_converted_value_queues_at_the_desk_in_usdc():
    world = World(desk_scenario(False, 2e5, 1, 24.0, 100.0), np.random.default_rng(0))
    world.run()
    assert world.refusals[world.venue_index["desk"]] > 0


def test_short_dwell_leaves_a_freezing_exchange_after_its_min_dwell():
    exchange = {"kind": "exchange", "jurisdiction": "offshore", "freezes": True, "compliance": 0.0, "delay": "5d", "min_dwell": "2h"}
    pb = [{"hop": "exchange", "venue": "cex", "to": "BTC"}]
    slow = run(Scenario.model_validate(two_chain_dict("dwell", pb, {"cex": exchange})))
    fast = run(Scenario.model_validate(two_chain_dict("dwell", pb, {"cex": exchange},
                                                      launderer={"exposure": {}})))
    out = lambda rep: rep.ledger["time"][(rep.ledger["hop"] == 10) & (rep.ledger["src"] != rep.ledger["dst"])].max()
    assert out(slow) == pytest.approx(120.0, abs=0.05)
    assert out(fast) == pytest.approx(2.0, abs=0.05)


def test_dex_liquidity_keeps_value_waiting_in_its_asset_within_the_issuers_reach():
    issuer = circle(screening={"probability": 1.0, "latency": "6h"})
    thin = {"uni": {"kind": "dex", "fee": 0.0, "pool_depth_usd": 1e15, "capacity_usd_per_day": 500_000}}
    pb = [{"hop": "swap", "venue": "uni", "to": "ETH", "retry": "1h"}]
    deep = run(usdc_scenario({"circle": issuer, **UNI}, pb, exposure={}))
    shallow = run(usdc_scenario({"circle": issuer, **thin}, pb, exposure={}))
    assert deep.venue_frozen[0] == 0.0  # swapped at once
    # $1 M in ~$100 k wallets at ~$21 k an hour: a few wallets are swapped before the issuer acts
    # (6 h after the flag), the rest is caught waiting in USDC
    assert 0.5 < shallow.venue_frozen[0] / shallow.stolen_usd < 0.95


def test_swaps_turned_away_for_liquidity_come_back_when_the_line_has_room_not_a_day_later():
    # $1 M in ten ~$100 k wallets through $1 M a day lined up 1 h ahead: at that pace the last swap
    # is done within about a day, although the hop's own retry is a week.
    thin = {"uni": {"kind": "dex", "fee": 0.0, "pool_depth_usd": 1e15, "capacity_usd_per_day": 1_000_000, "queue": "1h"}}
    pb = [{"hop": "swap", "venue": "uni", "to": "ETH", "retry": "7d"}]
    scenario = usdc_scenario(thin, pb, exposure={})
    rep = run(scenario)
    from launderflow.metrics import METRICS
    at = lambda days: METRICS["venue_inflow_share_at"](venue="uni", at=days * 24.0).value(rep, scenario)
    assert at(0.5) < 0.7  # paced: not all at once
    assert at(1.2) == pytest.approx(1.0, abs=1e-6)  # but done within about a day, not in weekly retries


# --- profiles ------------------------------------------------------------------------------------


def test_a_venue_takes_its_profiles_settings_and_keeps_its_own(tmp_path):
    data = two_chain_dict("prof", [{"hop": "exchange", "venue": "cex"}],
                          {"cex": {"profile": "strict", "kyc": 0.2}},
                          profiles={"strict": {"kind": "exchange", "jurisdiction": "US", "kyc": 0.9,
                                               "delay": {"dist": "exponential", "mean": "1d"}}})
    path = write(tmp_path, "prof.yaml", data)
    scenario = load_scenario(path)
    cex = scenario.venues["cex"]
    assert (cex.kind, cex.jurisdiction, cex.kyc) == ("exchange", "US", 0.2)
    # an override of the profile reaches the venue; a delay of the venue replaces the profile's whole
    assert load_scenario(path, {"profiles.strict.jurisdiction": "JP"}).venues["cex"].jurisdiction == "JP"
    data["venues"]["cex"]["delay"] = {"dist": "fixed", "value": "2h"}
    assert load_scenario(write(tmp_path, "prof2.yaml", data)).venues["cex"].delay.value == 2.0


def test_an_unknown_profile_is_named_with_its_line(tmp_path):
    data = two_chain_dict("prof", [{"hop": "exchange", "venue": "cex"}], {"cex": {"profile": "nope"}})
    path = write(tmp_path, "bad.yaml", data)
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    text = str(err.value)
    assert "venues.cex.profile" in text and "unknown profile 'nope'" in text and "bad.yaml:" in text


def test_a_consolidation_does_not_wait_for_held_deposits_and_late_ones_join_its_wallets():
    # 200 deposits leave after an hour; the exchange holds about half of them for five days. The
    # launderer gathers what it has into 3 wallets at once, and the held ones, when released, go
    # to the same 3 addresses: never more than 3 BTC wallets, value conserved.
    exchange = {"kind": "exchange", "jurisdiction": "offshore", "freezes": False, "delay": "1h",
                "holds": {"probability": 0.5, "duration": "5d"}}
    playbook = [{"hop": "split", "wallets": 200}, {"hop": "exchange", "venue": "cex", "to": "BTC"},
                {"hop": "consolidate", "wallets": 3}]
    rep = run(Scenario.model_validate(two_chain_dict("gather", playbook, {"cex": exchange})))
    merged = rows(rep, "consolidate")
    times = rep.ledger["time"][merged]
    assert times.min() < 2.0  # the barrier opened without the held half (hours)
    assert times.max() >= 5 * 24.0  # the held half joined after its hold
    assert 0.3 < np.mean(times >= 5 * 24.0) < 0.7
    assert len(np.unique(rep.ledger["dst"][merged])) == 3  # the same three addresses
    btc = rep.holdings["asset"] == 2
    assert rep.holdings["wallets"][btc].max() == 3  # a wallet is an address, however many lots it gathered
    assert rep.holdings["wallets"][btc][-1] == 3
    # Without holds the barrier opens once, after the last withdrawal.
    del exchange["holds"]
    plain = run(Scenario.model_validate(two_chain_dict("gather", playbook, {"cex": exchange})))
    assert plain.ledger["time"][rows(plain, "consolidate")].max() < 2.0
