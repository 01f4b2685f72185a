"""``launderflow export``: the three dataset layouts load, and their labels are the ledger's ground truth."""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from conftest import REPO
from launderflow.cli import main
from launderflow.model.world import World
from launderflow.runs.store import StoredRun
from launderflow.scenario.loader import load_scenario
from launderflow.scenario.schema import HOP_KINDS
from launderflow.views.export import AML_HEADER, ELLIPTIC_FEATURES, FIRST_VENUE_ADDRESS, flow_edges, Rows

SCENARIO = REPO / "tests" / "golden" / "golden_venues.yaml"  # pool mixer (honest users), exchange, OTC, DEX
EVENTS = [HOP_KINDS.index(h) for h in ("freeze", "seizure", "recover")]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    result = CliRunner().invoke(main, ["run", str(SCENARIO), "--out", str(root / "run")])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["export", str(root / "run"), "--out", str(root / "ds"), "--step", "12h"])
    assert result.exit_code == 0, result.output
    ledger = StoredRun(root / "run").replication(0).ledger
    transfers = ~np.isin(ledger["hop"], EVENTS)
    order = np.flatnonzero(transfers)[np.argsort(ledger["time"][transfers], kind="stable")]
    truth = {k: v[order] for k, v in ledger.items()}
    return root, truth


def test_aml_layout_has_the_exact_header_names_and_types(exported):
    root, truth = exported
    path = root / "ds" / "aml_trans.csv"
    assert path.read_text(encoding="utf-8").splitlines()[0] == ",".join(AML_HEADER)
    df = pd.read_csv(path)
    assert list(df.columns) == ["Timestamp", "From Bank", "Account", "To Bank", "Account.1", "Amount Received",
                                "Receiving Currency", "Amount Paid", "Payment Currency", "Payment Format", "Is Laundering"]
    assert df["From Bank"].dtype == np.int64 and df["To Bank"].dtype == np.int64
    assert df["Amount Received"].dtype == np.float64 and df["Amount Paid"].dtype == np.float64
    assert df["Is Laundering"].dtype == np.int64
    assert pd.api.types.is_string_dtype(df["Account"]) and pd.api.types.is_string_dtype(df["Account.1"])
    stamps = pd.to_datetime(df["Timestamp"], format="%Y/%m/%d %H:%M")
    assert stamps.min() == pd.Timestamp("2022-09-01 00:00")
    expected = pd.Timestamp("2022-09-01") + pd.to_timedelta(np.round(truth["time"] * 3600), unit="s")
    assert (stamps == expected.floor("min")).all()
    assert (df["Is Laundering"].to_numpy() == (truth["lot"] >= 0)).all()
    assert np.allclose(df["Amount Received"], truth["amount"])
    assert (df["Amount Paid"] >= df["Amount Received"]).all()
    # accounts are the address ids in hex, one account per address
    assert (df["Account"].map(lambda a: int(a, 16) - 0xA000000000).to_numpy() == truth["src"]).all()
    assert set(df["Payment Format"]) <= {"Transfer", "Deposit", "Withdrawal", "Cash Out"}
    assert "honest" not in set(df["Payment Format"])  # the format never gives the label away


def test_both_labels_occur_and_the_share_is_recorded(exported):
    root, truth = exported
    meta = json.loads((root / "ds" / "export.json").read_text())
    assert meta["rows"] == len(truth["lot"]) > 0
    assert meta["illicit_rows"] == int((truth["lot"] >= 0).sum()) > 0
    assert meta["licit_rows"] == int((truth["lot"] < 0).sum()) > 0
    assert meta["illicit_share"] == pytest.approx(meta["illicit_rows"] / meta["rows"])


def test_elliptic_graph_loads_and_labels_match_the_truth(exported):
    root, truth = exported
    feats = pd.read_csv(root / "ds" / "elliptic_txs_features.csv", header=None)
    classes = pd.read_csv(root / "ds" / "elliptic_txs_classes.csv")
    edges = pd.read_csv(root / "ds" / "elliptic_txs_edgelist.csv")
    assert feats.shape == (len(truth["lot"]), 2 + len(ELLIPTIC_FEATURES))
    assert list(classes.columns) == ["txId", "class"] and list(edges.columns) == ["txId1", "txId2"]
    assert (classes["txId"] == feats[0]).all()
    # Elliptic's classes: 1 illicit, 2 licit, unknown — known only where an analyst would know (the rule in export.py)
    label = classes["class"].astype(str).to_numpy()
    assert {"1", "unknown"} <= set(label) <= {"1", "2", "unknown"}  # (honest users only in the pool mixer here)
    illicit = truth["lot"] >= 0
    assert (label[illicit & truth["followed"]] == "1").all() and (label[illicit & ~truth["followed"]] == "unknown").all()
    assert not (label[~illicit] == "1").any() and not (label[illicit] == "2").any()
    names = list(load_scenario(SCENARIO).venues)
    kyc = [i for i, n in enumerate(names) if n in ("binance",)]  # golden_venues' KYC exchange
    assert (label[~illicit & np.isin(truth["venue"], kyc)] == "2").all()
    assert (label[~illicit & ~np.isin(truth["venue"], kyc)] == "unknown").all()
    assert (feats[1].to_numpy() == np.floor(truth["time"] / 12.0) + 1).all()  # --step 12h, steps from 1
    assert feats[1].min() == 1
    ids = set(feats[0])
    assert set(edges["txId1"]) <= ids and set(edges["txId2"]) <= ids
    assert (edges["txId1"] < edges["txId2"]).all()  # value flows forward in time order
    # the edge into a transfer comes from one that delivered value to its sender (or the same lot's last move)
    a, b = edges["txId1"].to_numpy(), edges["txId2"].to_numpy()
    same_lot = (truth["lot"][a] == truth["lot"][b]) & (truth["lot"][b] >= 0)
    assert ((truth["dst"][a] == truth["src"][b]) | same_lot).all()


def test_parquet_has_the_project_columns_and_the_label(exported):
    root, truth = exported
    table = pq.read_table(root / "ds" / "transfers.parquet")
    for col in ("time_hours", "src", "dst", "asset", "amount", "value_usd", "fee_usd", "hop", "venue", "lot",
                "followed", "is_laundering", "time_step", "payment_format"):
        assert col in table.column_names
    df = table.to_pandas()
    assert (df["is_laundering"].to_numpy() == (truth["lot"] >= 0)).all()
    assert (df["lot"].to_numpy() == truth["lot"]).all()
    assert np.allclose(df["value_usd"], truth["value_usd"])
    assert (df.loc[df["hop"] == "honest", "is_laundering"] == False).all()  # noqa: E712
    assert not set(df["hop"]) & {"freeze", "seizure", "recover"}


def test_flow_edges_follow_a_lot_and_fund_fresh_wallets():
    # row 0: theft to wallet 10 (lot 0); row 1: lot 0 moves 10 -> 11; row 2: lot 1 (a child, new id) 11 -> 12;
    # row 3: honest 20 -> venue 2; row 4: honest venue 2 -> 21 (funded by the latest deposit into 2)
    ledger = {"time": np.array([0.0, 1, 2, 3, 4]), "src": np.array([5, 10, 11, 20, 2]),
              "dst": np.array([10, 11, 12, 2, 21]), "asset": np.zeros(5, np.int16), "amount": np.ones(5),
              "value_usd": np.ones(5), "fee_usd": np.zeros(5), "hop": np.zeros(5, np.int8),
              "lot": np.array([0, 0, 1, -1, -1]), "venue": np.array([-1, -1, -1, 0, 0], np.int16),
              "followed": np.zeros(5, bool)}
    scenario = load_scenario(SCENARIO)
    a, b = flow_edges(Rows(scenario, ledger))
    assert list(zip(a.tolist(), b.tolist())) == [(0, 1), (1, 2), (3, 4)]


def test_venue_addresses_follow_the_two_sinks():
    """The export tells venue addresses by their ids: the world gives venue i address 2 + i."""
    world = World(load_scenario(SCENARIO), np.random.default_rng(0))
    assert [v.address for v in world.venues] == [FIRST_VENUE_ADDRESS + i for i in range(len(world.venues))]


def test_existing_files_are_kept_without_overwrite(exported, tmp_path):
    root, _ = exported
    out = tmp_path / "ds"
    out.mkdir()
    (out / "aml_trans.csv").write_text("mine\n")
    (out / "notes.txt").write_text("mine too\n")
    result = CliRunner().invoke(main, ["export", str(root / "run"), "--out", str(out), "--format", "aml"])
    assert result.exit_code == 2
    assert "aml_trans.csv" in result.output and "--overwrite" in result.output
    assert (out / "aml_trans.csv").read_text() == "mine\n"
    result = CliRunner().invoke(main, ["export", str(root / "run"), "--out", str(out), "--format", "aml", "--overwrite"])
    assert result.exit_code == 0, result.output
    assert (out / "aml_trans.csv").read_text().startswith("Timestamp,")
    assert (out / "notes.txt").read_text() == "mine too\n"  # never touched
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    assert not (out / "transfers.parquet").exists()  # only the format asked for


def test_symbolic_links_are_never_written_through(exported, tmp_path):
    root, _ = exported
    victim = tmp_path / "victim.csv"
    victim.write_text("precious\n")
    out = tmp_path / "ds"
    out.mkdir()
    os.symlink(victim, out / "aml_trans.csv")
    result = CliRunner().invoke(main, ["export", str(root / "run"), "--out", str(out), "--format", "aml", "--overwrite"])
    assert result.exit_code == 2 and "symbolic link" in result.output
    assert victim.read_text() == "precious\n"
    real = tmp_path / "real"
    real.mkdir()
    os.symlink(real, tmp_path / "linked")
    result = CliRunner().invoke(main, ["export", str(root / "run"), "--out", str(tmp_path / "linked")])
    assert result.exit_code == 2 and "symbolic link" in result.output
    assert list(real.iterdir()) == []


def test_a_run_without_ledgers_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(main, ["run", str(SCENARIO), "--runs", "2", "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["export", str(tmp_path / "run"), "--out", str(tmp_path / "ds")])
    assert result.exit_code == 2
    assert "kept no ledger" in result.output and "--keep-ledgers" in result.output
    assert "Traceback" not in result.output
    result = CliRunner().invoke(main, ["export", str(tmp_path / "run"), "--out", str(tmp_path / "ds"), "--replication", "7"])
    assert result.exit_code == 2 and "replication 7 is not stored" in result.output
    result = CliRunner().invoke(main, ["export", str(tmp_path / "run"), "--out", str(tmp_path / "ds"), "--start", "Sept 1"])
    assert result.exit_code == 2 and "YYYY-MM-DD" in result.output


def test_patterns_file_lists_every_laundering_transfer_once_in_typed_blocks(exported):
    root, truth = exported
    trans = (root / "ds" / "aml_trans.csv").read_text(encoding="utf-8").splitlines()[1:]
    laundering = sorted(line for line in trans if line.endswith(",1"))
    listed, types, inside, current = [], [], False, None
    for line in (root / "ds" / "aml_patterns.txt").read_text(encoding="utf-8").splitlines():
        if line.startswith("BEGIN LAUNDERING ATTEMPT - "):
            assert not inside
            inside, current = True, line[len("BEGIN LAUNDERING ATTEMPT - "):].split(":")[0]
            types.append(current)
        elif line.startswith("END LAUNDERING ATTEMPT - "):
            assert inside and line == f"END LAUNDERING ATTEMPT - {current}"
            inside = False
        elif line:
            assert inside
            listed.append(line)
    assert not inside and listed and sorted(listed) == laundering  # each laundering row once, none licit
    assert set(types) <= {"FAN-OUT", "FAN-IN", "GATHER-SCATTER", "RANDOM"} and "FAN-OUT" in types
    meta = json.loads((root / "ds" / "export.json").read_text())
    assert meta["laundering_attempts"] == len(types)
    # the rows load with pandas in the transaction layout
    block = pd.read_csv(io.StringIO("\n".join([",".join(AML_HEADER), *listed])))
    assert (block["Is Laundering"] == 1).all() and block["Amount Paid"].dtype == np.float64
