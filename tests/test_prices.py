"""Prices that move: price paths, the exit log and the day's-dollar metrics.

The outcome book stays in theft-day dollars (units x ``price_usd``), so a price path must change no
simulated quantity: these tests check that, that a series is interpolated as documented (linear in
log-price, flat outside), that a drawn path depends only on the seed and the asset, that every
freeze, seizure and cash-out is valued at its day's price, and that a bad series file is a located
scenario error. Scenarios are tiny dicts (ETH at $1000, USDC $1, BTC $40,000, no fees).
"""

from __future__ import annotations

import datetime
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from conftest import two_chain_dict
from launderflow import metrics
from launderflow.analysis.targets import FACTS
from launderflow.cli import main
from launderflow.model.prices import EXIT_KINDS, PricePaths, day_price
from launderflow.model.simulate import Replication, simulate
from launderflow.runs.store import replication_arrays, replication_from_arrays
from launderflow.scenario import series
from launderflow.scenario.loader import ScenarioError, load_scenario
from launderflow.scenario.schema import Scenario

REPO = Path(__file__).resolve().parent.parent
PRICE_FILES = REPO / "scenarios" / "prices"
SCENARIOS = Path(__file__).resolve().parent / "scenarios"
DAY = 24.0

EXCHANGE = {"kind": "exchange", "jurisdiction": "US", "compliance": 1.0, "freeze_latency": "1h", "delay": "10d"}
OTC = {"kind": "otc", "jurisdiction": "offshore", "delay": "1h"}


def freeze_and_seize(prices: dict[str, Any] | None = None, seizure_at: str = "2.5d", **clock: Any) -> Scenario:
    """Half the split wallets lose their trail; everything sits 10 days at a US exchange that
    freezes what it is told about within an hour, and a seizure takes the traced and frozen value
    there at ``seizure_at``; the other half of the theft is cashed out through an OTC desk."""
    playbook = [{"hop": "split", "wallets": 40, "delay": {"dist": "uniform", "low": 0, "high": "3d"}},
                {"hop": "branch", "branches": [
                    {"share": 0.5, "playbook": [{"hop": "exchange", "venue": "coinbase"}]},
                    {"share": 0.5, "playbook": [{"hop": "cash_out", "venue": "otc"}]}]}]
    data = two_chain_dict("prices_test", playbook, {"coinbase": EXCHANGE, "otc": OTC},
                          stolen=[{"asset": "ETH", "amount": 1000}], horizon="15d",
                          tracing={"hop_success": {"split": 0.5}},
                          interventions=[{"kind": "seizure", "name": "raid", "at": seizure_at, "jurisdictions": ["US"]}])
    data["clock"].update(clock)
    if prices is not None:
        data["prices"] = prices
    return Scenario.model_validate(data)


def run(scenario: Scenario, seed: int = 0) -> Replication:
    return simulate(scenario, np.random.default_rng(seed))


def points(*pairs: tuple[Any, float], key: str = "time") -> dict[str, Any]:
    return {"points": [{key: t, "price_usd": p} for t, p in pairs]}


def value(name: str, rep: Replication, scenario: Scenario, **params: Any) -> float:
    return metrics.METRICS[name](**params).value(rep, scenario)


# --- the path: interpolation, drawn paths ------------------------------------------------------------


def test_a_series_is_linear_in_log_price_between_points_and_flat_outside():
    scenario = freeze_and_seize({"ETH": points((1 * DAY, 1000.0), (11 * DAY, 4000.0), (13 * DAY, 2000.0))})
    paths = PricePaths(scenario, lambda name: np.random.default_rng(0))
    eth = np.array([0], dtype=np.int16)
    at = {0.0: 1.0, 1 * DAY: 1.0, 6 * DAY: 2.0, 8.5 * DAY: 2.0 ** 1.5, 11 * DAY: 4.0, 12 * DAY: 2.0 ** 1.5,
          13 * DAY: 2.0, 15 * DAY: 2.0}  # geometric, not arithmetic, means between points (6 d: 2000, not 2500)
    for t, ratio in at.items():
        assert paths.ratio(eth, t)[0] == pytest.approx(ratio, rel=1e-12), t
    assert paths.ratio(np.array([1, 2], dtype=np.int16), 6 * DAY).tolist() == [1.0, 1.0]  # no path: fixed
    assert not PricePaths(freeze_and_seize(), lambda name: np.random.default_rng(0)).moving


def test_one_point_holds_the_price_everywhere():
    assert day_price(np.array([5.0]), np.array([20161.0]), np.array([0.0, 5.0, 1e6])).tolist() == [20161.0] * 3


def test_a_gbm_path_is_the_seeds_and_the_assets_own():
    gbm = {"model": "gbm", "drift_per_year": 0.1, "volatility_per_year": 0.8, "step": "6h"}
    one = run(freeze_and_seize({"ETH": gbm}), seed=3)
    again = run(freeze_and_seize({"ETH": gbm}), seed=3)
    other = run(freeze_and_seize({"ETH": gbm}), seed=4)
    both = run(freeze_and_seize({"ETH": gbm, "BTC": gbm}), seed=3)
    for key in ("time", "asset", "price_usd"):
        np.testing.assert_array_equal(one.prices[key], again.prices[key])
    assert one.prices["time"].tolist() == [6.0 * k for k in range(61)]  # every 6 h from 0 to the 15 d horizon
    assert one.prices["price_usd"][0] == 1000.0  # starts at the asset's price_usd
    assert not np.array_equal(one.prices["price_usd"], other.prices["price_usd"])
    eth = both.prices["asset"] == 0
    np.testing.assert_array_equal(both.prices["price_usd"][eth], one.prices["price_usd"])  # BTC's path draws from its own stream
    assert not np.array_equal(both.prices["price_usd"][~eth], one.prices["price_usd"])


def test_gbm_log_returns_have_the_drift_and_volatility_asked_for():
    gbm = {"model": "gbm", "drift_per_year": 0.3, "volatility_per_year": 0.6, "step": "1d"}
    scenario = freeze_and_seize({"ETH": gbm}, horizon="3650d", timeline_step="10d")
    paths = PricePaths(scenario, lambda name: np.random.default_rng(11))
    returns = np.diff(np.log(paths.points[0][1]))
    dt = 24.0 / (365.25 * 24.0)
    assert len(returns) == 3650
    # 3650 draws: the sample sd is within ~3 % of sigma*sqrt(dt), the mean within 3 standard errors
    assert returns.std() / math.sqrt(dt) == pytest.approx(0.6, rel=0.05)
    assert returns.mean() == pytest.approx((0.3 - 0.18) * dt, abs=3 * 0.6 * math.sqrt(dt) / math.sqrt(3650))


def test_a_price_path_changes_no_simulated_quantity():
    """The book, the ledger and every other component's draws are the same with or without a path."""
    plain = run(freeze_and_seize(), seed=5)
    for path in ({"model": "gbm", "volatility_per_year": 1.5}, points((0.0, 1000.0), (5 * DAY, 300.0))):
        moving = run(freeze_and_seize({"ETH": path}), seed=5)
        np.testing.assert_array_equal(moving.log_time, plain.log_time)
        np.testing.assert_array_equal(moving.log_delta, plain.log_delta)
        for key in plain.ledger:
            np.testing.assert_array_equal(moving.ledger[key], plain.ledger[key])
        for key in plain.exits:
            if key != "day_usd":
                np.testing.assert_array_equal(moving.exits[key], plain.exits[key])
        assert moving.actions == plain.actions


# --- valuation: conservation in units, the exit log, the metrics --------------------------------------


def test_value_is_conserved_in_units_while_the_price_moves():
    scenario = freeze_and_seize({"ETH": points((0.0, 1000.0), (4 * DAY, 250.0), (9 * DAY, 3000.0))})
    rep = run(scenario, seed=2)
    cum = np.cumsum(rep.log_delta, axis=0)
    assert np.allclose(cum.sum(axis=1), rep.stolen_usd, rtol=1e-12)  # every instant, theft-day USD = units x $1000
    units = rep.stolen_usd / 1000.0
    assert units == pytest.approx(1000.0)
    exits = rep.exits
    left = exits["value_usd"][~exits["was_frozen"]].sum() / 1000.0  # frozen, seized or cashed out (each unit once)
    final = metrics.final_states(rep)
    in_play = (final["launderer"] + final["venue"] + final["fees"]) / 1000.0
    assert left + in_play == pytest.approx(units, rel=1e-12)
    assert (final["frozen"] + final["seized"] + final["cashed_out"]) / 1000.0 == pytest.approx(left, rel=1e-12)


def test_every_exit_is_valued_at_its_days_price():
    scenario = freeze_and_seize({"ETH": points((0.0, 1000.0), (4 * DAY, 250.0), (9 * DAY, 3000.0))})
    rep = run(scenario, seed=1)
    exits = rep.exits
    kinds = set(exits["kind"].tolist())
    assert kinds == {EXIT_KINDS.index(k) for k in EXIT_KINDS}  # freezes, seizures and cash-outs all happened
    ratio = day_price(np.array([0.0, 4 * DAY, 9 * DAY]), np.array([1000.0, 250.0, 3000.0]), exits["time"]) / 1000.0
    np.testing.assert_allclose(exits["day_usd"], exits["value_usd"] * ratio, rtol=1e-12)
    assert len(set(np.round(ratio, 9).tolist())) > 3  # (exits on many days, at different prices)


@pytest.mark.parametrize("x", [0.5, 2.0])
def test_a_freeze_at_x_times_the_theft_price_is_logged_at_x_times_its_value(x):
    scenario = freeze_and_seize({"ETH": points((0.0, 1000.0 * x))})  # the day's price is x p0 all along
    rep = run(scenario, seed=0)
    rows = rep.exits
    assert len(rows["time"]) > 0
    np.testing.assert_allclose(rows["day_usd"], x * rows["value_usd"], rtol=1e-12)
    frozen_all = rows["value_usd"][rows["kind"] == 0].sum()
    assert value("frozen_day_usd", rep, scenario) == pytest.approx(x * frozen_all, rel=1e-12)
    assert value("venue_frozen_day_usd", rep, scenario, venue="coinbase") == pytest.approx(x * rep.venue_frozen[0], rel=1e-12)
    assert value("action_seized_day_usd", rep, scenario, intervention="raid") == pytest.approx(x * rep.actions["raid"][2], rel=1e-12)
    assert value("cashed_out_day_usd", rep, scenario) == pytest.approx(x * metrics.final_states(rep)["cashed_out"], rel=1e-12)


@pytest.mark.parametrize("path", [None, {"model": "gbm"}, {"points": [{"time": 0, "price_usd": 1000.0}]}],
                         ids=["no path", "flat gbm", "constant series"])
def test_with_a_constant_price_the_days_dollars_are_the_theft_days(path):
    scenario = freeze_and_seize(None if path is None else {"ETH": path})
    rep = run(scenario, seed=4)
    np.testing.assert_array_equal(rep.exits["day_usd"], rep.exits["value_usd"])
    final = metrics.final_states(rep)
    seized = rep.actions["raid"][2]
    assert value("seized_day_usd", rep, scenario) == pytest.approx(final["seized"], rel=1e-12)
    assert value("action_seized_day_usd", rep, scenario, intervention="raid") == pytest.approx(seized, rel=1e-12)
    # frozen at the horizon = all freezes minus the frozen value seized later
    from_frozen = rep.exits["value_usd"][(rep.exits["kind"] == 1) & rep.exits["was_frozen"]].sum()
    assert value("frozen_day_usd", rep, scenario) - from_frozen == pytest.approx(final["frozen"], rel=1e-9)
    assert value("cashed_out_day_usd", rep, scenario) == pytest.approx(final["cashed_out"], rel=1e-12)
    at = 5 * DAY
    assert value("asset_day_usd_at", rep, scenario, asset="ETH", at=at) == pytest.approx(
        value("asset_share_at", rep, scenario, asset="ETH", at=at) * rep.stolen_usd, rel=1e-12)


def test_frozen_by_a_time_counts_the_freezes_until_then_at_their_days_prices():
    scenario = freeze_and_seize({"ETH": points((0.0, 1000.0), (10 * DAY, 3000.0))}, seizure_at="14d")
    rep = run(scenario, seed=6)
    freezes = rep.exits["kind"] == 0
    times = rep.exits["time"][freezes]
    assert times.min() < 2 * DAY < times.max()
    by_two = value("frozen_day_usd_at", rep, scenario, at=2 * DAY)
    expected = (rep.exits["value_usd"][freezes] * 3.0 ** (np.minimum(times, 240.0) / 240.0))[times <= 2 * DAY].sum()
    assert by_two == pytest.approx(expected, rel=1e-12)
    assert 0 < by_two < value("frozen_day_usd_at", rep, scenario, at=15 * DAY)


def test_the_seizure_is_its_interventions_and_valued_on_its_day():
    scenario = freeze_and_seize({"ETH": points((0.0, 1000.0), (5 * DAY, 4000.0))})  # 2.5 d: sqrt(4) = 2x
    rep = run(scenario, seed=0)
    seizures = rep.exits["kind"] == 1
    assert set(rep.exits["action"][seizures].tolist()) == {0} and rep.exits["time"][seizures].tolist()[0] == 60.0
    assert set(rep.exits["action"][~seizures].tolist()) == {-1}  # the exchange's own freezes are nobody's action
    assert value("action_seized_day_usd", rep, scenario, intervention="raid") == pytest.approx(2.0 * rep.actions["raid"][2], rel=1e-12)


def test_holdings_in_the_days_dollars():
    scenario = freeze_and_seize({"ETH": points((0.0, 1000.0), (10 * DAY, 100.0))})
    rep = run(scenario, seed=0)
    at = 5 * DAY + 0.5  # sampled at 5 d, when ETH was at $316.23
    theft_day = value("asset_share_at", rep, scenario, asset="ETH", at=at) * rep.stolen_usd
    assert theft_day > 0
    assert value("asset_day_usd_at", rep, scenario, asset="ETH", at=at) == pytest.approx(theft_day * 10 ** -0.5, rel=1e-12)


def test_the_new_metrics_are_targets_and_a_stored_replication_keeps_its_log_and_path():
    for name in ("frozen_day_usd_at", "venue_frozen_day_usd", "action_seized_day_usd", "cashed_out_day_usd",
                 "asset_day_usd_at", "seized_day_usd"):
        assert name in FACTS
    scenario = freeze_and_seize({"ETH": {"model": "gbm", "volatility_per_year": 0.9}})
    rep = run(scenario, seed=8)
    back = replication_from_arrays(replication_arrays(rep))
    for field in ("exits", "prices"):
        for key, column in getattr(rep, field).items():
            np.testing.assert_array_equal(getattr(back, field)[key], column)
    assert value("frozen_day_usd", back, scenario) == value("frozen_day_usd", rep, scenario)
    old = replication_from_arrays(replication_arrays(rep), skip=())
    old.exits = None  # a replication stored before the log existed: NaN, not a wrong zero
    assert math.isnan(value("frozen_day_usd", old, scenario))


def test_a_scenario_without_prices_dumps_as_before():
    scenario = freeze_and_seize()
    text = scenario.model_dump_json()
    assert '"prices"' not in text and '"start"' not in text
    assert Scenario.model_validate_json(text) == scenario


# --- series files --------------------------------------------------------------------------------------


SCENARIO_YAML = """\
name: priced
clock:
  horizon: 20d
  start: 2022-03-23
chains: {ethereum: {}}
assets: {ETH: {chain: ethereum, price_usd: 1000}}
thefts: [{name: hack, victim: test, stolen: [{asset: ETH, amount: 10}]}]
playbook: [{hop: wait, delay: 1d}]
prices:
  ETH: {series: SERIES}
"""
SERIES_LINE = 10


def write_scenario(folder: Path, series_name: str, text: str = SCENARIO_YAML) -> Path:
    path = folder / "scenario.yaml"
    path.write_text(text.replace("SERIES", series_name), encoding="utf-8")
    return path


def test_the_bundled_test_scenario_reads_its_series(monkeypatch):
    monkeypatch.chdir(REPO)
    scenario = load_scenario(SCENARIOS / "prices_freeze.yaml")
    assert scenario.clock.start.isoformat() == "2022-06-24"
    eth = scenario.prices["ETH"]
    assert eth.series == "prices/eth_test.csv" and [p.price_usd for p in eth.points] == [1000.0, 1400.0, 700.0]
    rep = run(scenario, seed=0)
    np.testing.assert_array_equal(rep.prices["time"], [0.0, 10 * DAY, 20 * DAY])


def test_dates_count_from_clock_start_and_csv_comments_and_notes_are_skipped(tmp_path):
    (tmp_path / "eth.csv").write_text("# a comment\n\ndate,price_usd,note\n2022-03-23,3000,\"theft, derived\"\n"
                                      "# another\n2022-09-08,1500,seizure\n", encoding="utf-8")
    scenario = load_scenario(write_scenario(tmp_path, "eth.csv"))
    paths = PricePaths(scenario, lambda name: np.random.default_rng(0))
    assert paths.points[0][0].tolist() == [0.0, 169 * DAY]
    assert paths.points[0][1].tolist() == [3000.0, 1500.0]


def test_a_time_column_takes_hours_and_durations_and_parquet_reads_like_csv(tmp_path):
    (tmp_path / "eth.csv").write_text("time,price_usd\n0,1000\n36h,1200\n10d,900\n", encoding="utf-8")
    pq.write_table(pa.table({"time": [0.0, 36.0, 240.0], "price_usd": [1000.0, 1200.0, 900.0]}), tmp_path / "eth.parquet")
    pq.write_table(pa.table({"date": pa.array([datetime.date(2022, 3, 23), datetime.date(2022, 3, 24)], pa.date32()),
                             "price_usd": [1000.0, 1100.0]}), tmp_path / "dated.parquet")
    from_csv = load_scenario(write_scenario(tmp_path, "eth.csv")).prices["ETH"].points
    from_parquet = load_scenario(write_scenario(tmp_path, "eth.parquet")).prices["ETH"].points
    assert from_csv == from_parquet and [p.time for p in from_csv] == [0.0, 36.0, 240.0]
    dated = load_scenario(write_scenario(tmp_path, "dated.parquet")).prices["ETH"].points
    assert [p.date.isoformat() for p in dated] == ["2022-03-23", "2022-03-24"]


BAD_SERIES = [
    ("date,price_usd\n2022-03-23,1000\n2022-04-01,-5\n", 3, "price_usd: not a price"),
    ("date,price_usd\n2022-03-23,1000\n2022-13-01,900\n", 3, "date: not an ISO date"),
    ("date,price_usd\n2022-03-23,1000\n2022-03-23,900\n", 3, "date: not after the row before it"),
    ("time,price_usd\n0,1000\nsoon,900\n", 3, "time: not a time since time zero"),
    ("# header next\ndate,usd\n", 2, "usd: unknown column (allowed: date, time, price_usd, note)"),
    ("date,time,price_usd\n", 1, "needs one time column"),
    ("date,price_usd\n2022-03-23,1000,extra\n", 2, "3 cells, the header has 2"),
    ("date,price_usd\n", 1, "the series has no rows"),
    ("", 1, "the file is empty"),
]


@pytest.mark.parametrize("text,line,message", BAD_SERIES, ids=[m for _, _, m in BAD_SERIES])
def test_a_malformed_series_is_a_located_error(tmp_path, text, line, message):
    (tmp_path / "eth.csv").write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError) as err:
        load_scenario(write_scenario(tmp_path, "eth.csv"))
    where = f"{tmp_path / 'eth.csv'}:{line}: " if line else f"{tmp_path / 'eth.csv'}: "
    assert str(err.value).startswith(where) and message in str(err.value), str(err.value)


def test_an_unreadable_parquet_file_is_an_error_not_a_crash(tmp_path):
    (tmp_path / "eth.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(ScenarioError, match="unreadable Parquet"):
        load_scenario(write_scenario(tmp_path, "eth.parquet"))


def scenario_error(path: Path) -> str:
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    return str(err.value)


def test_series_paths_are_read_safely(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "scenarios"
    folder.mkdir()
    (folder / "eth.csv").write_text("time,price_usd\n0,1000\n", encoding="utf-8")
    at = f"{folder / 'scenario.yaml'}:{SERIES_LINE}: prices.ETH.series: "
    assert scenario_error(write_scenario(folder, "missing.csv")).startswith(at)
    assert "no such price file" in scenario_error(write_scenario(folder, "missing.csv"))
    assert "not a price file (allowed: a .csv or .parquet file)" in scenario_error(write_scenario(folder, "eth.txt"))
    os.symlink(folder / "eth.csv", folder / "link.csv")
    assert "a symbolic link" in scenario_error(write_scenario(folder, "link.csv"))
    outside = tmp_path.parent / f"{tmp_path.name}_outside.csv"
    outside.write_text("time,price_usd\n0,1000\n", encoding="utf-8")
    try:
        monkeypatch.chdir(folder)
        message = scenario_error(write_scenario(folder, f"../../{outside.name}"))
        assert message.startswith(at) and "is outside the scenario's directory" in message
    finally:
        outside.unlink()


def test_dated_prices_need_clock_start_and_gbm_takes_no_series(tmp_path):
    (tmp_path / "eth.csv").write_text("date,price_usd\n2022-03-23,1000\n", encoding="utf-8")
    undated = SCENARIO_YAML.replace("  start: 2022-03-23\n", "")
    message = scenario_error(write_scenario(tmp_path, "eth.csv", undated))
    assert message == (f"{tmp_path / 'scenario.yaml'}:{SERIES_LINE - 1}: prices.ETH.series: dated prices need "
                       f"clock.start (the calendar date of time zero)")
    both = SCENARIO_YAML.replace("{series: SERIES}", "{series: eth.csv, model: gbm}")
    assert "model: gbm draws its own path" in scenario_error(write_scenario(tmp_path, "x", both))
    stray = SCENARIO_YAML.replace("{series: SERIES}", "{series: eth.csv, volatility_per_year: 0.5}")
    assert "volatility_per_year: only for model: gbm" in scenario_error(write_scenario(tmp_path, "x", stray))
    unknown = SCENARIO_YAML.replace("  ETH: {series: SERIES}", "  DOGE: {model: gbm}")
    assert "prices.DOGE: unknown asset 'DOGE' (defined: ETH)" in scenario_error(write_scenario(tmp_path, "x", unknown))


def test_the_cli_exits_2_with_the_located_problem_and_no_traceback(tmp_path):
    (tmp_path / "eth.csv").write_text("date,price_usd\n2022-03-23,cheap\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["validate", str(write_scenario(tmp_path, "eth.csv"))])
    assert result.exit_code == 2
    assert f"{tmp_path / 'eth.csv'}:2: price_usd: not a price" in result.output
    assert "Traceback" not in result.output


# --- the bundled series ------------------------------------------------------------------------------


def test_the_bundled_series_hold_the_incident_sheets_points():
    ronin = series.read_points(PRICE_FILES / "eth_ronin_2022.csv")
    assert [(p["date"].isoformat(), p["price_usd"]) for p in ronin] == [("2022-03-23", 3000.0), ("2022-09-08", 1500.0)]
    btc = series.read_points(PRICE_FILES / "btc_ronin_2022.csv")  # ASSUMPTION: moves with ETH
    assert [p["price_usd"] / q["price_usd"] for p, q in zip(btc, ronin)] == [14.0, 14.0]
    eth = series.read_points(PRICE_FILES / "eth_harmony_2022.csv")
    assert [p["price_usd"] for p in eth] == [1167.0, 1549.0]
    assert eth[0]["price_usd"] == pytest.approx(100e6 / 85_700, abs=0.5) and eth[1]["price_usd"] == pytest.approx(63.5e6 / 41_000, abs=0.5)
    btc = series.read_points(PRICE_FILES / "btc_harmony_2023.csv")
    assert [(p["date"].isoformat(), p["price_usd"]) for p in btc] == [("2023-01-16", 20161.0)]
    assert btc[0]["price_usd"] == pytest.approx(2.5e6 / 124, abs=0.5)


def test_the_summary_reports_the_days_dollars_only_when_prices_move():
    from launderflow.runs.results import summarize

    moving = freeze_and_seize({"ETH": points((0.0, 2000.0))})  # twice the theft-day price all along
    reps = {i: run(moving, seed=i) for i in range(2)}
    day = summarize(moving, 0, reps)["day_usd"]
    assert day["seized_usd"]["median"] == pytest.approx(
        2.0 * float(np.median([metrics.final_states(r)["seized"] for r in reps.values()])), rel=1e-12)
    assert set(day) == {"frozen_usd", "seized_usd", "cashed_out_usd"}
    fixed = freeze_and_seize()
    assert "day_usd" not in summarize(fixed, 0, {i: run(fixed, seed=i) for i in range(2)})
