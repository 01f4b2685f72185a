"""The command line: schema, validate and run on the bundled baseline."""

from __future__ import annotations

import json
import os

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from conftest import BASE_YAML, BASELINE, write
from launderflow import metrics
from launderflow.cli import main


@pytest.fixture(scope="module")
def baseline_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("baseline") / "out"
    result = CliRunner().invoke(main, ["run", str(BASELINE), "--runs", "2", "--out", str(out), "--set",
                                       "clock.horizon=10d"])
    return result, out


def test_schema_prints_json_schema():
    result = CliRunner().invoke(main, ["schema"])
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert "playbook" in doc["properties"] and "venues" in doc["properties"]
    assert {"clock", "chains", "assets", "thefts", "name"} <= set(doc["required"])
    assert doc["$schema"].startswith("https://json-schema.org/")
    # durations accept strings with units
    assert "pattern" in json.dumps(doc["$defs"]["Clock"]["properties"]["horizon"])


def test_validate_baseline_exits_0():
    result = CliRunner().invoke(main, ["validate", str(BASELINE)])
    assert result.exit_code == 0, result.output
    assert f"{BASELINE}: ok" in result.output
    assert "baseline" in result.output


def test_run_baseline_succeeds(baseline_run):
    result, out = baseline_run
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    for name in ("summary.json", "timeline.parquet"):
        assert (out / name).is_file()
    assert not (out / "ledger.parquet").exists()  # two runs, no --keep-ledgers
    assert "wrote" in result.stdout


def test_run_summary_has_runs_and_horizon(baseline_run):
    _, out = baseline_run
    summary = json.loads((out / "summary.json").read_text())
    assert summary["runs"] == 2
    assert summary["horizon_hours"] == 240
    assert summary["scenario"] == "baseline"
    assert summary["seed"] == 20220323  # the scenario's seed when --seed is not given
    assert len(summary["replications"]) == 2
    assert summary["stolen_usd"] == pytest.approx(173_600 * 3000 + 25_500_000)


def test_summary_states_are_consistent(baseline_run):
    _, out = baseline_run
    summary = json.loads((out / "summary.json").read_text())
    states = summary["states"]
    assert set(states) == set(metrics.STATES)
    for name, s in states.items():
        for unit in ("usd", "share"):
            lo, med, hi = s[f"p5_{unit}"], s[f"median_{unit}"], s[f"p95_{unit}"]
            assert lo is not None and med is not None and hi is not None, name
            assert lo <= med <= hi, (name, unit, lo, med, hi)
        assert s["median_share"] == pytest.approx(s["median_usd"] / summary["stolen_usd"], rel=1e-9, abs=1e-12)
    # each replication's final values are conserved
    for rep in summary["replications"]:
        final = rep["final_usd"]
        locations = sum(final[k] for k in metrics.STATES[:6])
        assert locations == pytest.approx(summary["stolen_usd"], rel=1e-9)
        assert final["traced"] + final["dark"] == pytest.approx(summary["stolen_usd"], rel=1e-9)


def test_timeline_parquet_matches_summary(baseline_run):
    _, out = baseline_run
    summary = json.loads((out / "summary.json").read_text())
    table = pq.read_table(out / "timeline.parquet").to_pydict()
    assert set(table) == {"replication", "time_hours", "state", "value_usd", "share"}
    times = np.array(table["time_hours"])
    assert times.min() == 0.0 and times.max() == 240.0
    grid = np.unique(times)
    np.testing.assert_allclose(np.diff(grid), 6.0)  # the baseline's timeline_step
    assert len(table["state"]) == 2 * len(grid) * len(metrics.STATES)
    # the last grid point is the horizon: it equals the summary's final values
    for rep in summary["replications"]:
        for state in metrics.STATES:
            rows = [v for r, t, s, v in zip(table["replication"], table["time_hours"], table["state"], table["value_usd"])
                    if r == rep["index"] and t == 240.0 and s == state]
            assert len(rows) == 1
            assert rows[0] == pytest.approx(rep["final_usd"][state], rel=1e-9, abs=1e-6)


def test_run_json_prints_the_summary(tmp_path):
    path = write(tmp_path, "s.yaml", BASE_YAML)
    result = CliRunner().invoke(main, ["run", str(path), "--runs", "2", "--json", "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed == json.loads((tmp_path / "o" / "summary.json").read_text())


def test_run_default_out_dir_is_out_scenario_name(tmp_path, monkeypatch):
    path = write(tmp_path, "s.yaml", BASE_YAML)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["run", str(path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "tiny" / "summary.json").is_file()
    assert (tmp_path / "out" / "tiny" / "ledger.parquet").is_file()  # --runs 1


def test_run_bad_scenario_exits_2_without_traceback(tmp_path):
    path = write(tmp_path, "bad.yaml", BASE_YAML.replace("amount: 100", "amount: -1"))
    result = CliRunner().invoke(main, ["run", str(path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert f"{path}:" in result.output and "thefts.0.stolen.0.amount" in result.output
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("args", [["--runs", "0"], ["--jobs", "0"], ["--seed", "-1"]])
def test_run_rejects_bad_options(tmp_path, args):
    path = write(tmp_path, "s.yaml", BASE_YAML)
    result = CliRunner().invoke(main, ["run", str(path), *args])
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_version_option():
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and "launderflow" in result.output


def _summary(runs: int, never: int, median: float | None) -> dict:
    states = {state: {"median_share": 0.5, "p5_share": 0.4, "p95_share": 0.6, "median_usd": 5e5} for state in metrics.STATES}
    t50 = {"median": median, "p5": None if median is None else median - 24, "p95": None if median is None else median + 24,
           "never": never}
    return {"scenario": "some_case", "stolen_usd": 1e6, "runs": runs, "seed": 3, "horizon_hours": 240.0,
            "states": states, "time_to_50pct_cash_out_hours": t50}


def test_summary_table_counts_the_runs_that_reached_half_cashed_out_on_one_line():
    from rich.console import Console

    from launderflow.views.tables import summary_table

    console = Console(width=80, record=True, file=open(os.devnull, "w"))
    console.print(summary_table(_summary(runs=8, never=3, median=72.0)))
    console.print(summary_table(_summary(runs=8, never=8, median=None)))
    lines = console.export_text().splitlines()
    assert "half cashed out after 3.0 d (median; 5-95 %: 2.0-4.0 d) in 5 of 8 runs" in lines  # one line, not wrapped
    assert "50 % was never cashed out within the horizon (0 of 8 runs reached it)" in lines
    assert "some_case: $1,000,000 stolen, 8 run(s), seed 3, horizon 10 days" in lines


# --- options declared once; exclusive options checked in one place, for every command -----------------

REPO_SCENARIOS = BASELINE.parent
# the arguments each command needs besides the options under test (a command missing here fails the test)
REQUIRED = {
    "run": [str(BASELINE)],
    "compare": [str(BASELINE)],
    "sweep": [str(BASELINE), "--set", "seed=1,2"],
    "calibrate": [str(REPO_SCENARIOS / "ronin_2022.yaml"), "--targets", str(REPO_SCENARIOS / "targets" / "ronin_2022.yaml")],
    "backtest": [str(REPO_SCENARIOS / "ronin_2022.yaml"), "--targets", str(REPO_SCENARIOS / "targets" / "ronin_2022.yaml")],
    "crossval": [str(REPO_SCENARIOS.parent / "tests" / "joint" / "joint.yaml")],
}


def _commands_with(*names: str) -> list[str]:
    import click

    ctx = click.Context(main)
    return [name for name, command in main.commands.items()
            if {p.name for p in command.get_params(ctx)} >= set(names)]


@pytest.fixture
def nothing_runs(monkeypatch):
    """Record any replication, calibration or backtest that starts."""
    import launderflow.analysis.backtest as backtest
    import launderflow.analysis.calibrate as calibrate
    import launderflow.runs.replications as replications

    ran = []
    monkeypatch.setattr(replications, "simulate", lambda *a, **k: ran.append("simulate"))
    monkeypatch.setattr(calibrate, "calibrate", lambda *a, **k: ran.append("calibrate"))
    monkeypatch.setattr(backtest, "backtest", lambda *a, **k: ran.append("backtest"))
    return ran


def test_jobs_and_scheduler_exclude_each_other_in_every_command_that_has_both(tmp_path, nothing_runs):
    commands = _commands_with("jobs", "scheduler")
    assert set(commands) >= {"run", "compare", "sweep", "calibrate", "backtest"}
    for name in commands:
        out = tmp_path / name
        result = CliRunner().invoke(main, [name, *REQUIRED[name], "--jobs", "2", "--scheduler", "tcp://127.0.0.1:8786",
                                           "--out", str(out / "x.json" if name == "backtest" else out)])
        assert result.exit_code == 2, (name, result.output)
        assert "Error: --jobs and --scheduler exclude each other (the cluster's workers do the work)" in result.stderr, name
        assert f"Usage: main {name} [OPTIONS]" in result.stderr, name
        assert not out.exists(), name
        # --jobs 1 is the default, not a choice of workers: with a scheduler it is fine (the address is checked)
        result = CliRunner().invoke(main, [name, *REQUIRED[name], "--jobs", "1", "--scheduler", "tcp://nohost",
                                           "--out", str(out)])
        assert result.exit_code == 2 and "Invalid value for '--scheduler'" in result.stderr, (name, result.output)
    assert nothing_runs == []


def test_resume_and_overwrite_exclude_each_other_in_every_command_that_has_both(tmp_path, nothing_runs):
    commands = _commands_with("resume", "overwrite")
    assert set(commands) >= {"run", "compare", "sweep"}
    for name in commands:
        result = CliRunner().invoke(main, [name, *REQUIRED[name], "--resume", "--overwrite", "--out", str(tmp_path / name)])
        assert result.exit_code == 2 and "--resume and --overwrite exclude each other" in result.stderr, name
        assert not (tmp_path / name).exists(), name
    assert nothing_runs == []


def test_every_command_with_a_scheduler_checks_its_address_and_has_a_timeout(tmp_path, nothing_runs):
    import click

    commands = _commands_with("scheduler")
    assert set(commands) == set(_commands_with("jobs", "scheduler"))
    ctx = click.Context(main)
    for name in commands:
        options = {opt for p in main.commands[name].get_params(ctx) for opt in p.opts}
        assert {"--scheduler-timeout", "--allow-extends-outside"} <= options, name
        result = CliRunner().invoke(main, [name, *REQUIRED[name], "--scheduler", "foo://10.0.0.5:8786"])
        assert result.exit_code == 2 and "Invalid value for '--scheduler'" in result.stderr, (name, result.output)
    assert nothing_runs == []


def test_a_sweep_parameter_given_twice_is_refused(tmp_path, nothing_runs):
    result = CliRunner().invoke(main, ["sweep", str(BASELINE), "--set", "seed=1,2", "--set", "seed=3",
                                       "--out", str(tmp_path / "sw")])
    assert result.exit_code == 2 and "seed is given twice" in result.stderr
    assert nothing_runs == [] and not (tmp_path / "sw").exists()


def test_the_lock_file_names_the_cli_command(tmp_path, monkeypatch):
    import json as json_

    from launderflow.runs.store import RunStore

    out = tmp_path / "run"
    real, seen = RunStore.write_part, []

    def write_and_look(self, index, rep, tables):
        seen.append(json_.loads((out / ".launderflow.lock").read_text())["command"])
        return real(self, index, rep, tables)

    monkeypatch.setattr(RunStore, "write_part", write_and_look)
    path = write(tmp_path, "s.yaml", BASE_YAML)
    result = CliRunner().invoke(main, ["run", str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert seen and seen[0].startswith("launderflow ")  # the CLI names itself in the lock file
