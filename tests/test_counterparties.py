"""The launderer's honest counterparties (P2P buyers, merchants), honest wallet transfers, and what the export makes of them."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from conftest import HOP, REPO
from launderflow.cli import main
from launderflow.model.addresses import AddressBook
from launderflow.model.simulate import simulate
from launderflow.scenario.schema import Scenario, honest_problems

SCENARIO = REPO / "tests" / "scenarios" / "honest_everywhere.yaml"


def _data(p2p: float = 0.6, merchants: float = 0.3) -> dict:
    data = yaml.safe_load(SCENARIO.read_text(encoding="utf-8"))
    data["playbook"].insert(1, {"hop": "peel", "length": 3, "fraction": 0.2, "delay": "1h"})
    data["honest"]["venues"]["garantex"]["p2p"] = p2p
    data["honest"]["merchants"] = merchants
    data["honest"]["transfers"] = {"ETH": {"per_day": 500, "median_usd": 300, "large_share": 0.1}}
    return data


def _run(data: dict, seed: int = 7):
    return simulate(Scenario.model_validate(data), np.random.default_rng(np.random.SeedSequence(seed)))


@pytest.fixture(scope="module")
def rep():
    return _run(_data())


def _honest_receivers(led) -> np.ndarray:
    return np.unique(np.concatenate([led["src"][led["lot"] < 0], led["dst"][led["lot"] < 0]]))


def test_p2p_cash_outs_pay_honest_wallets_and_the_rest_leaves_the_chain(rep):
    led = rep.ledger
    cash = (led["hop"] == HOP["cash_out"]) & (led["lot"] >= 0)
    desk = list(_data()["venues"]).index("garantex")
    at_desk = cash & (led["src"] == 2 + desk)  # the desk pays out (its deposits are cash_out rows too)
    paid = at_desk & (led["dst"] != AddressBook.OFF_CHAIN)
    share = paid.sum() / at_desk.sum()
    assert 0.45 < share < 0.75  # p2p 0.6
    assert (led["fee_usd"][paid] > 0).all()  # an on-chain trade pays the network fee
    # the buyers are honest wallets: they take part in honest traffic
    assert np.isin(led["dst"][paid], _honest_receivers(led)).mean() > 0.5
    log = rep.honest
    to_wallets = cash & (led["dst"] >= 2 + len(_data()["venues"])) & (led["time"] <= log["time"].max())
    assert log["tainted"].sum() == to_wallets.sum() > 0  # every payment to an honest wallet, in the log


def test_peeled_pieces_spent_with_merchants_are_cashed_out_and_conserved(rep):
    led = rep.ledger
    shops = (led["hop"] == HOP["cash_out"]) & (led["lot"] >= 0) & (led["venue"] == -1) & (led["time"] <= rep.honest["time"].max())
    assert shops.sum() > 0
    merchants = rep.honest["venue"] == -1
    assert rep.honest["tainted"][merchants].sum() == shops.sum()
    assert rep.honest["tainted_usd"][merchants].sum() == pytest.approx(led["value_usd"][shops].sum(), rel=1e-9)
    assert rep.final_cells.sum() == pytest.approx(rep.stolen_usd, rel=1e-9)  # conservation


def test_without_counterparties_no_cash_out_stays_on_chain():
    r = _run(_data(p2p=0.0, merchants=0.0))
    led = r.ledger
    desk = list(_data()["venues"]).index("garantex")
    cash = (led["hop"] == HOP["cash_out"]) & (led["lot"] >= 0) & (led["src"] == 2 + desk)
    assert cash.sum() > 0 and (led["dst"][cash] == AddressBook.OFF_CHAIN).all()
    assert r.honest["tainted"].sum() == 0


def test_honest_wallet_transfers_are_plain_transfers_between_honest_wallets(rep):
    led = rep.ledger
    plain = (led["lot"] < 0) & (led["venue"] == -1)
    assert 500 * 15 * 0.8 < plain.sum() < 500 * 15 * 1.2  # per_day 500 over 15 days
    fee = led["fee_usd"][plain]
    assert np.allclose(fee, np.minimum(2.0, fee + led["value_usd"][plain]))  # ethereum's fee (all of a tiny amount)
    assert (led["value_usd"][plain] > 10_000).mean() > 0.05  # large holders: 10 %


def test_the_same_seed_gives_the_same_counterparties(rep):
    again = _run(_data())
    assert np.array_equal(again.ledger["dst"], rep.ledger["dst"])
    assert np.array_equal(again.honest["tainted_usd"], rep.honest["tainted_usd"])


def _validate(tmp_path, change) -> Any:
    """``launderflow validate`` on the scenario with ``change(data)`` applied."""
    data = copy.deepcopy(_data())
    change(data)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return CliRunner().invoke(main, ["validate", str(path)])


def test_p2p_outside_an_otc_desk_is_refused(tmp_path):
    result = _validate(tmp_path, lambda data: data["honest"]["venues"]["binance"].update(p2p=0.5))
    assert result.exit_code == 2
    assert "p2p" in result.output and "only an OTC desk" in result.output and "Traceback" not in result.output


def test_null_transfers_are_a_line_numbered_error_not_a_traceback(tmp_path):
    """Found by the fuzz test: ``transfers: null`` crashed the cross-checks with a TypeError."""
    result = _validate(tmp_path, lambda data: data["honest"].update(transfers=None))
    assert result.exit_code == 2
    assert "transfers" in result.output and "s.yaml:" in result.output and "Traceback" not in result.output


def test_export_labels_payments_to_honest_wallets_and_lists_every_attempt(tmp_path):
    import pandas as pd

    path = tmp_path / "s.yaml"
    data = _data()
    data["clock"]["horizon"] = "8d"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    assert CliRunner().invoke(main, ["run", str(path), "--out", str(tmp_path / "run")]).exit_code == 0
    result = CliRunner().invoke(main, ["export", str(tmp_path / "run"), "--out", str(tmp_path / "ds")])
    assert result.exit_code == 0, result.output
    df = pd.read_parquet(tmp_path / "ds" / "transfers.parquet")
    n_venues = len(data["venues"])
    to_honest = df["is_laundering"] & (df["hop"] == "cash_out") & (df["dst"] >= 2 + n_venues)
    assert to_honest.sum() > 0 and (df["to_honest"] == to_honest).all()
    # the buyers' and merchants' later transfers are licit rows from wallets that received stolen value
    receivers = set(df.loc[to_honest, "dst"])
    assert (~df["is_laundering"] & df["src"].isin(receivers)).sum() > 0
    # honest users of the KYC exchange are the known licit transfers; honest wallet transfers stay unknown
    binance = df["venue"] == "binance"
    assert (df.loc[~df["is_laundering"] & binance, "elliptic_class"] == "2").all()
    assert (df.loc[~df["is_laundering"] & ~binance, "elliptic_class"] == "unknown").all()
    assert (df.loc[df["is_laundering"], "elliptic_class"] != "2").all()


def test_several_entries_can_bring_one_venue_users_of_different_assets():
    data = _data()
    data["honest"]["venues"]["garantex_eth"] = {"venue": "garantex", "users_per_day": 300, "median_usd": 1000,
                                                "asset": "ETH", "holding": "1d"}
    r = _run(data)
    desk = list(data["venues"]).index("garantex")
    led = r.ledger
    honest = (led["lot"] < 0) & (led["venue"] == desk)
    assets = set(led["asset"][honest].tolist())
    assert assets == {list(data["assets"]).index("USDC"), list(data["assets"]).index("ETH")}
    rows = r.honest["venue"] == desk
    assert rows.sum() == 2 * len(np.unique(r.honest["time"]))  # one log row per entry and step
    assert r.honest["deposits"][rows].sum() == (honest & (led["dst"] == 2 + desk)).sum()
    data["honest"]["venues"]["garantex_eth"]["venue"] = "nowhere"
    problems = honest_problems(Scenario.model_validate(data))
    assert [where for where, m in problems if "unknown venue 'nowhere'" in m] == [("honest", "venues", "garantex_eth")]


def test_the_registry_reports_what_honest_wallets_received(rep):
    from launderflow.metrics import METRICS

    scenario = Scenario.model_validate(_data())
    got = METRICS["honest_tainted_usd"]().value(rep, scenario)
    assert got == pytest.approx(float(rep.honest["tainted_usd"].sum())) and got > 0
