"""The metric registry: one entry per metric, read by every consumer, with one semantics each."""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml

from launderflow import metrics
from launderflow.analysis import targets as targets_module
from launderflow.analysis.compare import compare
from launderflow.metrics import METRICS, Metric, register
from launderflow.model.simulate import simulate
from launderflow.runs.replications import replication_rng
from launderflow.scenario.loader import load_scenario

SLOW_OTC = """\
name: slow_otc
seed: 2
clock: {horizon: 4d, resolution: 10min, timeline_step: 6h}
chains:
  eth: {confirmation: 3min, fee_usd: 1}
assets:
  ETH: {chain: eth, price_usd: 1000}
venues:
  otc: {kind: otc, jurisdiction: offshore, delay: {dist: lognormal, median: 1d, sigma: 0.3}}
thefts:
  - {name: hack, victim: test, stolen: [{asset: ETH, amount: 100}]}
playbook:
  - {hop: split, wallets: 20, delay: {dist: exponential, mean: 5h}}
  - {hop: cash_out, venue: otc}
"""


@pytest.fixture(scope="module")
def slow(tmp_path_factory):
    path = tmp_path_factory.mktemp("slow") / "slow.yaml"
    path.write_text(SLOW_OTC)
    scenario = load_scenario(path)
    return path, scenario, simulate(scenario, replication_rng(7, 0), keep_ledger=False)


def test_every_metric_computes_a_number_from_a_replication(slow):
    _, scenario, rep = slow
    examples = {"state": "cashed_out", "at": 30.0, "venue": "otc", "intervention": None, "share": 0.5, "asset": "ETH",
                "function": "mixing", "start": 10.0}
    for name, metric in METRICS.items():
        if "intervention" in metric.params:
            continue  # (this scenario has none; covered by the calibrate tests)
        m = metric(**{p: examples[p] for p in metric.params})
        value = m.value(rep, scenario)
        assert isinstance(value, float), name
        assert m.key and m.label and m.unit in (metrics.SHARE, metrics.USD, metrics.DAYS, metrics.COUNT, metrics.RATIO)


def test_keys_and_labels_are_filled_from_the_parameters():
    m = METRICS["share_at"](state="cashed_out", at=11 * 24.0)
    assert (m.key, m.label) == ("cashed_out_share_at_11d", "cashed out at 11 d")
    assert METRICS["days_to_cash_out_share"](share=0.5).key == "days_to_50pct_cash_out"
    assert METRICS["final_share"](state="traced").better == "higher"
    assert METRICS["final_share"](state="cashed_out").better == "lower"
    with pytest.raises(TypeError, match="takes state"):
        METRICS["final_share"]()


def test_a_share_at_a_time_is_exact_not_snapped_to_the_timeline_grid(slow):
    _, scenario, rep = slow
    at = 31.0  # between two 6-hour grid points, while the desk is paying out
    exact = METRICS["share_at"](state="cashed_out", at=at).value(rep, scenario)
    on_grid = METRICS["share_at"](state="cashed_out", at=36.0).value(rep, scenario)
    cum = metrics.timeline(rep, np.array([at]))[0][metrics.STATES.index("cashed_out")] / rep.stolen_usd
    assert exact == pytest.approx(cum)
    assert exact < on_grid  # value kept leaving between 31 h and 36 h


def test_a_time_never_reached_is_nan_and_scores_as_never(slow):
    _, scenario, rep = slow
    never = METRICS["days_to_cash_out_share"](share=0.999999).value(rep, scenario)  # fees: never all cashed out
    assert math.isnan(never)
    assert targets_module.score(np.array([1.0, never, never]))[0] == math.inf  # the median run never got there
    assert targets_module.score(np.array([1.0, 2.0, never]))[0] == 2.0
    target = targets_module.FACTS["days_to_cash_out_share"](name="x", metric="days_to_cash_out_share", share=0.9,
                                                          value=1.0, tolerance=1.0, source="s")
    z, lower_bound = targets_module.z_score(target, math.inf, scenario)
    assert lower_bound and z == pytest.approx(scenario.clock.horizon / 24 - 1.0)  # the horizon, a lower bound


def test_compare_reads_the_same_numbers_as_the_registry(tmp_path, slow):
    from click.testing import CliRunner

    from launderflow.cli import main

    path, scenario, _ = slow
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["run", str(path), "--runs", "2", "--seed", "7", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = {r["metric"]: r for r in compare([("slow", out)], [31.0])}
    reps = [simulate(scenario, replication_rng(7, i), keep_ledger=False) for i in range(2)]
    want = METRICS["share_at"](state="cashed_out", at=31.0).values(reps, scenario)
    assert rows["cashed_out_share_at_31h"]["median"] == pytest.approx(float(np.median(want)))


def test_a_new_metric_is_one_entry_and_becomes_a_target(slow, tmp_path):
    path, scenario, rep = slow
    name = "test_wallet_fees_usd"
    register(Metric(name, metrics.USD, "wallet_fees_usd", "network fees (USD)", "higher",
                    lambda r, sc: r.network_fees, (), "network fees paid"))
    try:
        assert METRICS[name]().value(rep, scenario) == rep.network_fees
        # the targets file schema is generated from the registry: rebuild it and load a target in it
        facts = {n: targets_module._fact_model(n) for n, m in METRICS.items() if m.target}
        fact = facts[name](name="fees", metric=name, value=1.0, tolerance=1.0, source="test")
        assert targets_module.metric_value(fact, rep, scenario) == rep.network_fees
    finally:
        del METRICS[name]
    with pytest.raises(ValueError, match="already registered"):
        register(METRICS["final_share"])


def test_targets_files_take_every_target_metric_of_the_registry(tmp_path, slow):
    path, scenario, _ = slow
    examples = {"state": "cashed_out", "at": "1d", "venue": "otc", "share": 0.5, "asset": "ETH",
                "function": "mixing", "start": 10.0}
    targets = []
    for name, metric in METRICS.items():
        if not metric.target or "intervention" in metric.params:
            continue
        targets.append({"name": name, "metric": name, **{p: examples[p] for p in metric.params},
                        "value": 0.5, "tolerance": 0.1, "source": "test"})
    file = tmp_path / "targets.yaml"
    file.write_text(yaml.safe_dump({"targets": targets}))
    spec, _ = targets_module.load_targets(file, path, need_parameters=False)
    assert [t.metric for t in spec.targets] == [t["metric"] for t in targets]


def test_route_metrics_follow_the_value_over_time(slow):
    _, scenario, rep = slow
    inflow = [METRICS["venue_inflow_share_at"](venue="otc", at=t).value(rep, scenario) for t in (0.0, 6.0, 24.0, 96.0)]
    assert inflow == sorted(inflow) and inflow[0] == 0.0
    assert inflow[-1] == pytest.approx(METRICS["venue_inflow_share"](venue="otc").value(rep, scenario), rel=1e-12)
    # the 20 wallets of the split, before any reached the desk; none left at the horizon
    at_6h = METRICS["wallets_at"](asset="ETH", at=6.0).value(rep, scenario)
    assert 1 <= at_6h <= 20
    assert METRICS["wallets_at"](asset="ETH", at=96.0).value(rep, scenario) == 0
    held = METRICS["asset_share_at"](asset="ETH", at=6.0).value(rep, scenario)
    launderer_or_venue = METRICS["share_at"](state="launderer", at=6.0).value(rep, scenario) + \
        METRICS["share_at"](state="venue", at=6.0).value(rep, scenario)
    assert held == pytest.approx(launderer_or_venue, rel=1e-9)  # sampled at 6 h, before that instant's moves
