"""Data safety (issue 16): a run never silently mixes, loses or mis-scales results.

Each test here failed on the code before its fix: per-replication scaling, the store refusing to
delete what is not its own, the exclusive writer lock, verified parts, symlinks, bounded scenario
values, unwritable outputs, bounded reading of scenario files, confined ``extends``, bounded dask
connections, workers that die with their parent, no Rich markup in user text, and a safe ``query``.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from conftest import REPO, write
from launderflow import metrics
from launderflow.cli import main

# a stream of 200 takings about an hour apart, cut by a 5-day horizon: each replication steals a
# different amount (as it_worker_income does)
STREAM = """\
name: stream
seed: 3
clock: {horizon: 5d, resolution: 10min, timeline_step: 6h}
chains:
  eth: {confirmation: 1min, fee_usd: 1}
assets:
  USDT: {chain: eth, price_usd: 1.0}
venues:
  desk: {kind: otc, jurisdiction: RU, delay: {dist: exponential, mean: 12h}, haircut: 0.05}
thefts:
  - name: salaries
    victim: employers
    stolen: [{asset: USDT, amount: 5000}]
    repeat: {count: 200, every: {dist: exponential, mean: 40min}}
    discovered_after: 1d
playbook:
  - {hop: transfer, delay: {dist: exponential, mean: 6h}}
  - {hop: cash_out, venue: desk}
tracing:
  hop_success: {transfer: 0.9, cash_out: 0.8}
"""

LOCATIONS = metrics.STATES[:6]


def invoke(*args: str, **kwargs):
    return CliRunner().invoke(main, list(args), **kwargs)


def run_ok(*args: str):
    result = invoke("run", *args)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return result


@pytest.fixture(scope="module")
def stream(tmp_path_factory) -> Path:
    return write(tmp_path_factory.mktemp("scen"), "stream.yaml", STREAM)


# --- 1. every replication scaled by its own stolen value ---------------------------------------


@pytest.mark.parametrize("scenario, sets", [
    ("stream", ()),
    (str(REPO / "scenarios" / "it_worker_income.yaml"), ("--set", "clock.horizon=20d")),
], ids=["stream", "it_worker_income"])
def test_shares_are_scaled_by_each_replications_own_stolen_value(scenario, sets, stream, tmp_path):
    """Summary shares, per-part files and assembled files agree, and each replication's locations sum to 1."""
    path = str(stream) if scenario == "stream" else scenario
    out = tmp_path / "run"
    run_ok(path, "--runs", "4", "--jobs", "2", "--out", str(out), *sets)
    summary = json.loads((out / "summary.json").read_text())
    parts = {int(p.name): p for p in (out / "parts").iterdir()}
    stolen = {i: pq.read_table(p / "summary.parquet")["stolen_usd"][0].as_py() for i, p in parts.items()}
    assert len(set(stolen.values())) > 1, "the scenario must steal a different amount in each replication"

    # summary.json: each record carries its own stolen value; the median shares use it
    for record in summary["replications"]:
        assert record["stolen_usd"] == stolen[record["index"]]
        assert sum(record["final_usd"][s] for s in LOCATIONS) == pytest.approx(record["stolen_usd"], rel=1e-9)
    for state in ("cashed_out", "traced", "dark"):
        own = [r["final_usd"][state] / r["stolen_usd"] for r in summary["replications"]]
        assert summary["states"][state]["median_share"] == pytest.approx(float(np.median(own)), rel=1e-12)

    # the query view of the assembled run == the parts' own rows; locations sum to 1 per replication
    con = duckdb.connect()
    assembled = con.execute(
        f"SELECT * FROM read_parquet('{out}/parts/*/summary.parquet') ORDER BY replication").fetchall()
    result = invoke("query", str(out), "SELECT * FROM summary ORDER BY replication", "--json")
    assert result.exit_code == 0, result.output
    view = json.loads(result.stdout)
    assert [tuple(row.values()) for row in view] == [tuple(row) for row in assembled]
    for row in view:
        assert sum(row[f"{s}_share"] for s in LOCATIONS) == pytest.approx(1.0, rel=1e-9)

    # timeline.parquet: each replication's rows equal its part's rows; locations sum to 1 at the horizon
    timeline = pq.read_table(out / "timeline.parquet")
    rep, time = timeline["replication"].to_numpy(), timeline["time_hours"].to_numpy()
    state = np.array(timeline["state"].to_pylist())
    share = timeline["share"].to_numpy()
    for i, part in parts.items():
        own = pq.read_table(part / "timeline.parquet")["share"].to_numpy()
        assert share[rep == i].tolist() == own.tolist()
        last = (rep == i) & (time == time.max()) & np.isin(state, LOCATIONS)
        assert share[last].sum() == pytest.approx(1.0, rel=1e-9)
