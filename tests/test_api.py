"""The Python API: the same run directories and numbers as the command line, for notebooks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import launderflow as lf
from launderflow.cli import main

REPO = Path(__file__).resolve().parent.parent
GOLDEN = REPO / "tests" / "golden" / "golden_baseline.yaml"


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.suffix in (".json", ".parquet", ".npz") and p.name != "manifest.json"}


@pytest.fixture(scope="module")
def api_run(tmp_path_factory):
    return lf.run(GOLDEN, runs=2, seed=11, out=tmp_path_factory.mktemp("api") / "run")


def test_run_writes_the_same_bytes_as_the_cli(api_run, tmp_path):
    cli_out = tmp_path / "cli"
    result = CliRunner().invoke(main, ["run", str(GOLDEN), "--runs", "2", "--seed", "11", "--out", str(cli_out)])
    assert result.exit_code == 0, result.output
    assert _files(api_run.path) == _files(cli_out)


def test_a_run_exposes_its_summary_and_tables(api_run):
    assert api_run.indices == [0, 1] and api_run.report.ok
    summary = api_run.summary
    assert summary["runs"] == 2 and summary["scenario"] == api_run.name == "golden_baseline"
    timeline = api_run.timeline
    assert set(timeline.column_names) == {"replication", "time_hours", "state", "value_usd", "share"}
    assert api_run.ledger is None  # two replications: no ledgers unless asked
    frame = api_run.to_pandas("timeline")
    assert len(frame) == timeline.num_rows
    # the registry's numbers per replication agree with the summary's records
    cashed = api_run.values("cashed_out_usd")
    assert cashed.tolist() == [r["final_usd"]["cashed_out"] for r in summary["replications"]]
    dark_day2 = api_run.values("share_at", state="dark", at=48.0)
    assert dark_day2.shape == (2,) and np.all((0 <= dark_day2) & (dark_day2 <= 1))


def test_open_run_reads_a_cli_run_and_refuses_what_is_not_one(api_run, tmp_path):
    again = lf.open_run(api_run.path)
    assert again.summary == api_run.summary and again.scenario == api_run.scenario
    with pytest.raises(lf.StoreError, match="not a run directory"):
        lf.open_run(tmp_path)


def test_compare_returns_the_rows_compare_writes(tmp_path):
    other = tmp_path / "other.yaml"
    other.write_text(GOLDEN.read_text().replace("name: golden_baseline", "name: slower_sharing"), encoding="utf-8")
    cmp = lf.compare([GOLDEN, other], runs=2, seed=5, out=tmp_path / "cmp", at=["2d"])
    assert list(cmp.runs) == ["golden_baseline", "slower_sharing"]
    keys = {r["metric"] for r in cmp.rows}
    assert {"traced_share", "reported_dark_share", "days_to_50pct_cash_out", "reported_dark_share_at_2d"} <= keys
    same = [r for r in cmp.rows if r["scenario"] == "slower_sharing"]
    assert all(r["diff_median"] == 0 for r in same if r["diff_median"] is not None)  # identical scenarios, same seeds
    assert cmp.table.num_rows == len(cmp.rows) and len(cmp.to_pandas()) == len(cmp.rows)
    assert (tmp_path / "cmp" / "comparison.csv") in cmp.written


def test_plot_functions_draw_on_a_given_axes(api_run):
    from launderflow.views.plots import new_figure

    ax = new_figure(4, 3).add_subplot()
    assert lf.plot_traceability(api_run, state="traced", ax=ax) is ax
    assert len(ax.lines) >= 1


def test_sweep_runs_every_grid_point(tmp_path):
    cmp = lf.sweep(GOLDEN, {"tracing.sharing.latency": [1, 24]}, runs=1, seed=3, out=tmp_path / "sweep")
    assert list(cmp.runs) == ["latency=1", "latency=24"]
    assert (tmp_path / "sweep" / "figures" / "sensitivity.png").is_file()


def test_importing_launderflow_loads_no_heavy_modules():
    code = "import sys, launderflow; print(sorted(m for m in ('matplotlib', 'pyarrow', 'duckdb', 'simpy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_run_where_every_replication_failed_raises_with_the_first_error(tmp_path, monkeypatch):
    import launderflow.runs.replications as replications

    def broken(scenario, rng, **kwargs):
        raise ValueError("the model broke")

    monkeypatch.setattr(replications, "simulate", broken)
    with pytest.raises(RuntimeError, match="every replication of golden_baseline failed; replication 0 "
                                           r"\(simulate\): ValueError: the model broke"):
        lf.run(GOLDEN, runs=2, out=tmp_path / "run")
