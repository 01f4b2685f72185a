"""Same command, same bytes: seeds, worker counts and the per-replication random streams."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from conftest import write
from launderflow.cli import main
from launderflow.runs.replications import replication_rng, run_replications

# small but with every foundation hop and random delays, so that a stream mix-up would show
SMALL = """\
name: small
seed: 5
clock: {horizon: 8d, resolution: 1min, timeline_step: 6h}
chains:
  eth: {confirmation: 3min, fee_usd: 2}
assets:
  ETH: {chain: eth, price_usd: 2000}
  USDC: {chain: eth, price_usd: 1}
venues:
  desk: {kind: otc, jurisdiction: NO, delay: {dist: lognormal, median: 1d, sigma: 0.5}, haircut: 0.05}
thefts:
  - name: hack
    victim: somebody
    stolen: [{asset: ETH, amount: 300}, {asset: USDC, amount: 400000}]
    discovered_after: 12h
playbook:
  - {hop: split, wallets: 6, delay: {dist: exponential, mean: 6h}}
  - {hop: peel, length: 2, fraction: 0.2, delay: {dist: uniform, low: 1h, high: 5h}}
  - {hop: transfer, delay: 30min}
  - {hop: wait, delay: {dist: exponential, mean: 1d}}
  - {hop: cash_out, venue: desk}
tracing:
  hop_success: {split: 0.8, peel: 0.9, transfer: 0.95}
"""

FILES = ("summary.json", "timeline.parquet", "ledger.parquet")


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    return write(tmp_path_factory.mktemp("scen"), "small.yaml", SMALL)


def run_cli(*args: str) -> None:
    result = CliRunner().invoke(main, ["run", *args])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output


@pytest.fixture(scope="module")
def three_runs(small, tmp_path_factory) -> dict[str, Path]:
    """The same 3-replication run, kept ledgers, into several directories."""
    base = tmp_path_factory.mktemp("runs")
    dirs = {"a": base / "a", "b": base / "b", "jobs2": base / "jobs2", "seed9": base / "seed9"}
    run_cli(str(small), "--runs", "3", "--seed", "11", "--keep-ledgers", "--out", str(dirs["a"]))
    run_cli(str(small), "--runs", "3", "--seed", "11", "--keep-ledgers", "--out", str(dirs["b"]))
    run_cli(str(small), "--runs", "3", "--seed", "11", "--keep-ledgers", "--jobs", "2", "--out", str(dirs["jobs2"]))
    run_cli(str(small), "--runs", "3", "--seed", "9", "--keep-ledgers", "--out", str(dirs["seed9"]))
    return dirs


@pytest.mark.parametrize("name", FILES)
def test_same_seed_gives_byte_identical_files(three_runs, name):
    a, b = (three_runs["a"] / name).read_bytes(), (three_runs["b"] / name).read_bytes()
    assert len(a) > 0
    assert a == b


@pytest.mark.parametrize("name", FILES)
def test_jobs_2_gives_the_same_bytes_as_jobs_1(three_runs, name):
    assert (three_runs["jobs2"] / name).read_bytes() == (three_runs["a"] / name).read_bytes()


def test_a_different_seed_gives_a_different_summary(three_runs):
    a = json.loads((three_runs["a"] / "summary.json").read_text())
    c = json.loads((three_runs["seed9"] / "summary.json").read_text())
    assert a["seed"] == 11 and c["seed"] == 9
    assert a["replications"] != c["replications"]
    assert (three_runs["a"] / "ledger.parquet").read_bytes() != (three_runs["seed9"] / "ledger.parquet").read_bytes()


def test_replications_differ_from_each_other(three_runs):
    summary = json.loads((three_runs["a"] / "summary.json").read_text())
    assert [r["index"] for r in summary["replications"]] == [0, 1, 2]
    finals = [json.dumps(r["final_usd"], sort_keys=True) for r in summary["replications"]]
    assert len(set(finals)) == 3
    ledger = pq.read_table(three_runs["a"] / "ledger.parquet").to_pydict()
    assert sorted(set(ledger["replication"])) == [0, 1, 2]
    timeline = pq.read_table(three_runs["a"] / "timeline.parquet").to_pydict()
    assert sorted(set(timeline["replication"])) == [0, 1, 2]


def test_scenario_seed_is_the_default(small, tmp_path):
    run_cli(str(small), "--runs", "1", "--out", str(tmp_path / "default"))
    run_cli(str(small), "--runs", "1", "--seed", "5", "--out", str(tmp_path / "five"))
    summary = json.loads((tmp_path / "default" / "summary.json").read_text())
    assert summary["seed"] == 5
    for name in FILES:
        assert (tmp_path / "default" / name).read_bytes() == (tmp_path / "five" / name).read_bytes()


@pytest.mark.parametrize("seed", [0, 7, 20220323, 2**63 - 1])
@pytest.mark.parametrize("runs", [1, 4, 9])
def test_replication_rng_is_the_spawned_child(seed, runs):
    children = np.random.SeedSequence(seed).spawn(runs)
    for i in range(runs):
        expected = np.random.default_rng(children[i])
        got = replication_rng(seed, i)
        np.testing.assert_array_equal(got.random(8), expected.random(8))
        np.testing.assert_array_equal(got.integers(0, 2**62, 4), expected.integers(0, 2**62, 4))
        np.testing.assert_array_equal(got.exponential(2.0, 3), expected.exponential(2.0, 3))


def test_replication_rngs_are_independent_of_each_other():
    first = [replication_rng(3, i).random(4) for i in range(5)]
    assert len({tuple(x) for x in first}) == 5
    np.testing.assert_array_equal(replication_rng(3, 2).random(4), first[2])  # and recreated on demand


def test_replication_result_does_not_depend_on_which_others_ran(small):
    from launderflow.scenario.loader import load_scenario

    scenario = load_scenario(small)
    full = dict(run_replications(scenario, 4, seed=11, keep_ledgers=True))
    only = dict(run_replications(scenario, 4, seed=11, keep_ledgers=True, indices=[2]))
    assert set(only) == {2}
    for key in full[2].ledger:
        np.testing.assert_array_equal(full[2].ledger[key], only[2].ledger[key])
    np.testing.assert_array_equal(full[2].log_delta, only[2].log_delta)


def test_runs_1_writes_the_ledger(small, tmp_path):
    run_cli(str(small), "--runs", "1", "--out", str(tmp_path / "one"))
    assert (tmp_path / "one" / "ledger.parquet").is_file()
    table = pq.read_table(tmp_path / "one" / "ledger.parquet")
    assert table.num_rows > 0
    assert {"replication", "time_hours", "src", "dst", "asset", "amount", "value_usd", "fee_usd", "hop", "venue",
            "lot"} <= set(table.column_names)


def test_runs_3_writes_no_ledger_unless_asked(small, tmp_path, three_runs):
    run_cli(str(small), "--runs", "3", "--seed", "11", "--out", str(tmp_path / "three"))
    assert (tmp_path / "three" / "summary.json").is_file()
    assert (tmp_path / "three" / "timeline.parquet").is_file()
    assert not (tmp_path / "three" / "ledger.parquet").exists()
    assert (three_runs["a"] / "ledger.parquet").is_file()  # the same run with --keep-ledgers
    # keeping the ledgers changes nothing else
    for name in ("summary.json", "timeline.parquet"):
        assert (tmp_path / "three" / name).read_bytes() == (three_runs["a"] / name).read_bytes()
