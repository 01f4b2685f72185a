"""``launderflow backtest``: scores a scenario against facts without fitting; exit code 0 only if all are met."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from launderflow.analysis.backtest import backtest
from launderflow.cli import main
from launderflow.metrics import METRICS
from launderflow.model.simulate import simulate
from launderflow.runs.replications import replication_rng
from launderflow.scenario.loader import load_scenario

REPO = Path(__file__).resolve().parent.parent
GOLDEN = REPO / "tests" / "golden" / "golden_baseline.yaml"
RUNS, SEED = 4, 9


@pytest.fixture(scope="module")
def truth():
    """The medians the model gives for two metrics, computed independently of backtest."""
    scenario = load_scenario(GOLDEN)
    reps = [simulate(scenario, replication_rng(SEED, i), keep_ledger=False) for i in range(RUNS)]
    cashed = METRICS["share_at"](state="cashed_out", at=72.0).values(reps, scenario)
    dark = METRICS["final_share"](state="reported_dark").values(reps, scenario)
    return float(np.median(cashed)), float(np.median(dark))


def targets(tmp_path: Path, cashed: float, dark: float, **extra) -> Path:
    doc = {"parameters": [{"path": "clock.horizon", "low": 1, "high": 2}],  # a calibrate file: ignored here
           "targets": [
               {"name": "cashed_day_3", "metric": "share_at", "state": "cashed_out", "at": "3d", "value": cashed,
                "tolerance": 0.05, "source": "test", "role": "input"},
               {"name": "dark_at_end", "metric": "final_share", "state": "reported_dark", "value": dark,
                "tolerance": 0.02, "source": "test", "role": "check", **extra}]}
    path = tmp_path / "facts.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_a_scenario_that_meets_its_facts_passes(tmp_path, truth):
    result = backtest(GOLDEN, targets(tmp_path, *truth), RUNS, seed=SEED)
    rows = result.rows()
    assert [r["model_median"] for r in rows] == pytest.approx(list(truth))
    assert all(r["z"] == pytest.approx(0.0, abs=1e-9) and r["within_tolerance"] for r in rows)
    assert result.passed and result.report()["counts"] == {"input": {"targets": 1, "within_tolerance": 1},
                                                           "check": {"targets": 1, "within_tolerance": 1}}


def test_the_cli_exits_1_when_a_fact_is_missed_and_reports_z(tmp_path, truth):
    cashed, dark = truth
    path = targets(tmp_path, cashed, dark - 0.05)  # 2.5 tolerances away
    result = CliRunner().invoke(main, ["backtest", str(GOLDEN), "--targets", str(path), "--runs", str(RUNS),
                                       "--seed", str(SEED), "--json"])
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    by_name = {r["name"]: r for r in report["targets"]}
    assert by_name["dark_at_end"]["z"] == pytest.approx(2.5, rel=1e-6)
    assert not by_name["dark_at_end"]["within_tolerance"] and by_name["cashed_day_3"]["within_tolerance"]
    assert report["passed"] is False
    ok = CliRunner().invoke(main, ["backtest", str(GOLDEN), "--targets", str(targets(tmp_path, *truth)),
                                   "--runs", str(RUNS), "--seed", str(SEED)])
    assert ok.exit_code == 0 and "PASSED" in ok.stdout and "input: 1 of 1 within tolerance" in ok.stdout


def test_a_bad_targets_file_is_refused_with_its_line(tmp_path, truth):
    path = targets(tmp_path, *truth, role="maybe")
    result = CliRunner().invoke(main, ["backtest", str(GOLDEN), "--targets", str(path), "--runs", "1"])
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "maybe" in text)
    assert result.exit_code == 2 and f"facts.yaml:{line}: targets.1.role:" in result.stderr
    assert "Traceback" not in result.output
