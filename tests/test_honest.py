"""Honest users at every venue kind (the ``honest:`` section) and how policy reaches them."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from conftest import HOP, REPO
from launderflow.cli import main
from launderflow.model.simulate import simulate
from launderflow.runs.store import replication_arrays
from launderflow.scenario.loader import load_scenario
from launderflow.scenario.schema import Scenario

SCENARIO = REPO / "tests" / "scenarios" / "honest_everywhere.yaml"
DAY = 24.0


def _data() -> dict:
    return yaml.safe_load(SCENARIO.read_text(encoding="utf-8"))


def _run(data: dict, seed: int = 7):
    return simulate(Scenario.model_validate(data), np.random.default_rng(np.random.SeedSequence(seed)))


@pytest.fixture(scope="module")
def rep():
    return _run(_data())


def _venue(name: str) -> int:
    return list(_data()["venues"]).index(name)


def _log(rep, name: str) -> dict[str, np.ndarray]:
    h = rep.honest
    mine = h["venue"] == _venue(name)
    return {k: v[mine] for k, v in h.items()}


def test_without_the_section_nothing_changes_and_nothing_is_stored():
    data = _data()
    del data["honest"]
    plain = _run(data)
    assert plain.honest is None
    assert not any(k.startswith("honest") for k in replication_arrays(plain))


def test_honest_users_leave_the_stolen_value_exactly_as_it_was(rep):
    data = _data()
    del data["honest"]
    plain = _run(data)
    assert np.array_equal(plain.final_cells, rep.final_cells)
    assert np.array_equal(plain.log_time, rep.log_time) and np.array_equal(plain.log_delta, rep.log_delta)
    stolen = rep.ledger["lot"] >= 0
    assert np.array_equal(plain.ledger["value_usd"][plain.ledger["lot"] >= 0], rep.ledger["value_usd"][stolen])


def test_every_logged_deposit_and_withdrawal_is_a_ledger_row(rep):
    led = rep.ledger
    for name in ("uniswap", "sinbad", "thorchain", "binance", "exch", "garantex"):
        log = _log(rep, name)
        v = _venue(name)
        rows = (led["lot"] == -1) & (led["venue"] == v) & (led["hop"] == HOP["honest"])
        assert rows.sum() == log["deposits"].sum() + log["withdrawals"].sum() > 0, name
        address = led["dst"][rows & (led["src"] != led["dst"])]
        deposits = rows & np.isin(led["dst"], [2 + v])
        assert led["value_usd"][deposits].sum() == pytest.approx(log["deposits_usd"].sum(), rel=1e-9), name
        assert len(address)


def test_a_swap_returns_the_value_minus_the_fee_in_the_same_step(rep):
    log = _log(rep, "uniswap")
    assert np.array_equal(log["deposits"], log["withdrawals"])
    fee = 2.0  # each transfer pays the chain's network fee (ethereum: $2)
    assert log["withdrawals_usd"].sum() == pytest.approx(log["deposits_usd"].sum() * (1 - 0.003) - fee * log["withdrawals"].sum(), rel=1e-9)
    assert np.all(log["held_usd"] == 0)


def test_a_halt_refuses_every_honest_user_while_it_lasts(rep):
    log = _log(rep, "thorchain")
    during = (log["time"] > 5 * DAY) & (log["time"] < 7 * DAY)
    assert log["refused_halt"][during].sum() > 0
    assert log["deposits"][during].sum() == 0
    edges = (log["time"] == 5 * DAY) | (log["time"] == 7 * DAY)  # a step at the halt's instant sees it applied (or lifted)
    assert log["refused_halt"][~during & ~edges].sum() == 0
    assert np.array_equal(log["refused_halt"][during], log["arrivals"][during])


def test_screening_refuses_only_after_the_designation_and_only_where_it_complies(rep):
    binance, exch = _log(rep, "binance"), _log(rep, "exch")
    before = binance["time"] < 3 * DAY
    assert binance["refused_screen"][before].sum() == 0
    assert binance["refused_screen"][~before].sum() > 0
    assert exch["refused_screen"].sum() == 0  # offshore: does not comply with the US designation


def test_an_exchange_that_freezes_freezes_honest_deposits_funded_by_exposed_withdrawals(rep):
    binance, exch, sinbad = _log(rep, "binance"), _log(rep, "exch"), _log(rep, "sinbad")
    assert sinbad["exposed"].sum() > 0  # a commingled venue holding traced stolen value
    for name in ("uniswap", "thorchain", "binance", "exch", "garantex"):
        assert _log(rep, name)["exposed"].sum() == 0, name  # not commingled: never exposes
    assert binance["frozen"].sum() > 0 and binance["frozen_usd"].sum() > 0
    assert exch["frozen"].sum() == 0  # freezes: false


def test_shutting_a_commingled_venue_down_seizes_the_honest_value_inside(rep):
    log = _log(rep, "sinbad")
    after = log["time"] >= 8 * DAY  # (the step at 8 d runs after the shutdown scheduled from the start)
    first = np.flatnonzero(after)[0]
    assert log["seized_usd"][first] == pytest.approx(log["held_usd"][first - 1], rel=1e-12)
    assert log["seized_usd"][first] > 0
    assert log["deposits"][after].sum() == 0 and np.all(log["held_usd"][after] == 0)


def test_a_designation_displaces_its_share_of_honest_users():
    data = _data()
    data["interventions"] = [{"kind": "designation", "venue": "uniswap", "at": "3d", "volume_drop": 0.7,
                              "recovery_level": 0.3, "recovery_time": 0}]
    log = _log(_run(data), "uniswap")
    before = log["time"] < 3 * DAY
    assert log["displaced"][before].sum() == 0
    share = log["displaced"][~before].sum() / log["arrivals"][~before].sum()
    assert share == pytest.approx(0.7, abs=0.02)  # recovery_time 0: at recovery_level 0.3 at once


def test_the_same_seed_gives_the_same_honest_traffic(rep):
    again = _run(_data())
    for k in rep.honest:
        assert np.array_equal(rep.honest[k], again.honest[k]), k
    assert np.array_equal(rep.ledger["value_usd"], again.ledger["value_usd"])
    other = _run(_data(), seed=8)
    assert not np.array_equal(rep.honest["deposits_usd"], other.honest["deposits_usd"])


@pytest.mark.parametrize("venue, patch, message", [
    ("tornado", {"users_per_day": 10, "asset": "ETH"}, "pool mixers model their own honest users"),
    ("circle", {"users_per_day": 10, "asset": "USDC"}, "an issuer is not a venue users pass through"),
    ("nowhere", {"users_per_day": 10, "asset": "ETH"}, "unknown venue 'nowhere'"),
    ("binance", {"users_per_day": 10, "asset": "DOGE"}, "unknown asset 'DOGE'"),
    ("binance", {"users_per_day": 10, "asset": "ETH", "holdng": "1d"}, "holdng"),
])
def test_bad_honest_sections_name_the_field(tmp_path, venue, patch, message):
    data = copy.deepcopy(_data())
    data["honest"]["venues"][venue] = patch
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2
    assert message in result.output and "honest" in result.output
    assert "Traceback" not in result.output


def test_the_budget_counts_honest_rows():
    from launderflow.scenario.budget import estimate

    data = _data()
    with_rows = estimate(Scenario.model_validate(data)).honest_rows
    del data["honest"]
    without = estimate(Scenario.model_validate(data)).honest_rows
    expected = 2 * (2000 + 100 + 400 + 3000 + 200 + 50) / 24.0 * 15 * DAY
    assert with_rows - without == pytest.approx(expected)


def test_the_scenario_file_loads():
    assert load_scenario(SCENARIO).honest is not None


def test_taint_policies_flag_honest_addresses_and_the_live_tracer_does_not(rep):
    from launderflow.analysis.taint_score import score_ledger

    scores = score_ledger(rep.ledger)
    honest = scores["poison"]["honest_addresses"]
    assert honest > 1000
    for policy in ("poison", "haircut", "fifo", "live_tracer"):
        s = scores[policy]
        assert s["honest_addresses"] == honest
        assert 0 <= s["honest_addresses_flagged"] <= honest
        assert s["honest_false_positive_rate"] == pytest.approx(s["honest_addresses_flagged"] / honest)
    assert scores["live_tracer"]["honest_addresses_flagged"] == 0  # it follows the stolen lots only
    assert scores["poison"]["honest_addresses_flagged"] > 0  # honest users paid by the mixers are tainted
    assert scores["poison"]["honest_addresses_flagged"] >= scores["fifo"]["honest_addresses_flagged"]


def test_the_scale_scenario_asks_for_ten_million_transfers():
    """scenarios/bybit_2025_honest.yaml is sim/bench.py's (e): >= 10 M transfers in one replication
    (10.55 M measured); its honest rows alone, counted as the budget does, pass 10 M."""
    from launderflow.scenario.budget import estimate

    scenario = load_scenario(REPO / "scenarios" / "bybit_2025_honest.yaml")
    assert estimate(scenario).honest_rows >= 10_000_000
    assert sum(f.users_per_day for f in scenario.honest.venues.values()) * 2 * 60 >= 10_000_000
