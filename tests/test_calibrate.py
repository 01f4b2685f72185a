"""``launderflow calibrate``: recovers a known parameter, reports targets-file errors by line, is deterministic."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from launderflow.analysis.calibrate import calibrate, design, latin_hypercube
from launderflow.analysis.targets import load_targets, metric_value
from launderflow.cli import main
from launderflow.runs.replications import run_replications
from launderflow.scenario.loader import ScenarioError, extends_outside_allowed, load_scenario

# An exchange that freezes every traced deposit it complies on: the frozen amount is ~compliance x
# the value deposited, and an OTC desk whose lognormal delay decides how much is cashed out by day 3.
TINY = """\
name: tiny_freeze
seed: 3
clock: {horizon: 5d, resolution: 10min, timeline_step: 6h}
chains:
  eth: {confirmation: 3min, fee_usd: 1}
assets:
  ETH: {chain: eth, price_usd: 1000}
venues:
  ex: {kind: exchange, jurisdiction: US, compliance: 0.9, freeze_latency: 1h, delay: 2d, fee: 0.0}
  otc:
    kind: otc
    jurisdiction: offshore
    delay: {dist: lognormal, median: 12h, sigma: 0.8}
thefts:
  - {name: hack, victim: test, stolen: [{asset: ETH, amount: 100}]}
playbook:
  - {hop: split, wallets: 200, concentration: 50}
  - {hop: exchange, venue: ex}
  - {hop: cash_out, venue: otc}
"""
TRUE_COMPLIANCE = 0.6
TRUE_OTC_MEDIAN = 20.0  # hours

TARGETS = """\
parameters:
  - path: venues.ex.compliance
    low: 0.05
    high: 1.0
  - path: venues.otc.delay.median
    low: 1h
    high: 3d
    scale: log
targets:
  - name: frozen
    metric: venue_frozen_usd
    venue: ex
    value: {frozen}
    tolerance: {frozen_tol}
    source: synthetic truth (compliance 0.6)
  - name: cashed_by_day_3
    metric: share_at
    state: cashed_out
    at: 3d
    value: {cashed}
    tolerance: 0.02
    source: synthetic truth (OTC median 20h)
"""


def _truth(scenario_path) -> tuple[float, float]:
    """The facts, as the model gives them at the true parameters (another seed than the calibration's)."""
    scenario = load_scenario(scenario_path, {"venues.ex.compliance": TRUE_COMPLIANCE,
                                             "venues.otc.delay.median": TRUE_OTC_MEDIAN})
    spec_frozen = type("T", (), {"metric": "venue_frozen_usd", "venue": "ex"})
    spec_cashed = type("T", (), {"metric": "share_at", "state": "cashed_out", "at": 72.0})
    frozen, cashed = [], []
    for _, rep in run_replications(scenario, 9, seed=99):
        frozen.append(metric_value(spec_frozen, rep, scenario))
        cashed.append(metric_value(spec_cashed, rep, scenario))
    return float(np.median(frozen)), float(np.median(cashed))


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    root = tmp_path_factory.mktemp("calibrate")
    scenario = root / "tiny.yaml"
    scenario.write_text(TINY)
    frozen, cashed = _truth(scenario)
    targets = root / "targets.yaml"
    targets.write_text(TARGETS.format(frozen=frozen, frozen_tol=0.03 * frozen, cashed=cashed))
    return root, scenario, targets


@pytest.fixture(scope="module")
def cli_run(case):
    root, scenario, targets = case
    out = root / "out1"
    result = CliRunner().invoke(main, ["calibrate", str(scenario), "--targets", str(targets), "--samples", "60",
                                       "--runs", "5", "--seed", "1", "--out", str(out)])
    return result, out


def test_latin_hypercube_has_one_point_per_stratum():
    u = latin_hypercube(10, 3, np.random.default_rng(0))
    for j in range(3):
        assert sorted(np.floor(u[:, j] * 10).astype(int)) == list(range(10))


def test_recovers_the_true_parameters(cli_run):
    """60 candidates x 5 runs over two parameters: the best candidate is within 0.05 of the true compliance
    and within a factor 1.5 of the true OTC median delay; the accepted 5-95 % ranges contain both."""
    result, out = cli_run
    assert result.exit_code == 0, result.output
    report = json.loads((out / "calibration.json").read_text())
    compliance, otc = report["parameters"]
    best = report["best"]["parameters"]
    assert abs(best["venues.ex.compliance"] - TRUE_COMPLIANCE) <= 0.05
    assert TRUE_OTC_MEDIAN / 1.5 <= best["venues.otc.delay.median"] <= TRUE_OTC_MEDIAN * 1.5
    assert compliance["accepted_p5"] <= TRUE_COMPLIANCE <= compliance["accepted_p95"]
    assert abs(compliance["accepted_median"] - TRUE_COMPLIANCE) <= 0.1
    assert otc["accepted_p5"] <= TRUE_OTC_MEDIAN <= otc["accepted_p95"]
    assert report["best"]["distance"] < 1.0
    for row in report["targets"]:
        assert abs(row["z"]) < 1.5
    # the table on stdout
    assert "venues.ex.compliance" in result.stdout and "cashed_by_day_3" in result.stdout


def test_candidates_csv_lists_every_candidate(cli_run):
    _, out = cli_run
    lines = (out / "candidates.csv").read_text().splitlines()
    assert lines[0].split(",") == ["candidate", "venues.ex.compliance", "venues.otc.delay.median", "frozen_median",
                                   "cashed_by_day_3_median", "distance", "accepted", "failed_replications"]
    assert len(lines) == 61
    report = json.loads((out / "calibration.json").read_text())
    accepted = [int(line.split(",")[0]) for line in lines[1:] if line.split(",")[-2] == "true"]
    assert accepted == sorted(report["accepted"]) and len(accepted) >= 12  # at least 20 % of 60


def test_same_inputs_give_identical_files(cli_run, case):
    root, scenario, targets = case
    result, out = cli_run
    again = root / "out2"
    result2 = CliRunner().invoke(main, ["calibrate", str(scenario), "--targets", str(targets), "--samples", "60",
                                        "--runs", "5", "--seed", "1", "--out", str(again), "--jobs", "2"])
    assert result2.exit_code == 0, result2.output
    for name in ("calibration.json", "candidates.csv", "calibrated.yaml"):
        assert (out / name).read_bytes() == (again / name).read_bytes(), name


def test_calibrated_yaml_loads_and_runs(cli_run, tmp_path):
    _, out = cli_run
    report = json.loads((out / "calibration.json").read_text())
    with extends_outside_allowed():  # the original is beside, not under, the output directory
        calibrated = load_scenario(out / "calibrated.yaml")
    assert calibrated.name == "tiny_freeze_calibrated"
    best = report["best"]["parameters"]
    assert calibrated.venues["ex"].compliance == best["venues.ex.compliance"]
    assert calibrated.venues["otc"].delay.median == best["venues.otc.delay.median"]
    assert calibrated.venues["otc"].delay.sigma == 0.8  # the rest of the mapping comes from the original
    result = CliRunner().invoke(main, ["run", str(out / "calibrated.yaml"), "--runs", "2", "--out", str(tmp_path / "run"),
                                       "--allow-extends-outside"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run" / "summary.json").is_file()


def test_list_paths_and_integers(case, tmp_path):
    """A parameter inside a list (the playbook) is written by copying the list: extends replaces lists whole."""
    _, scenario, _ = case
    targets = tmp_path / "t.yaml"
    targets.write_text("parameters:\n  - {path: playbook.0.wallets, low: 5, high: 50, integer: true}\n"
                       "targets:\n  - {name: seized, metric: seized_usd, value: 0, tolerance: 1, source: none}\n")
    cal = calibrate(scenario, targets, runs=1, samples=3, seed=5)
    assert all(isinstance(c.values[0], int) and 5 <= c.values[0] <= 50 for c in cal.candidates)
    from launderflow.analysis.calibrate import write_outputs

    write_outputs(cal, tmp_path / "out")
    with extends_outside_allowed():
        loaded = load_scenario(tmp_path / "out" / "calibrated.yaml")
    assert loaded.playbook[0].wallets == cal.best.values[0]
    assert [h.hop for h in loaded.playbook] == ["split", "exchange", "cash_out"]


def test_design_is_deterministic_and_inside_the_box(case):
    _, scenario, targets = case
    spec, _ = load_targets(targets, scenario)
    a, b = design(spec.parameters, 7, seed=11), design(spec.parameters, 7, seed=11)
    assert a == b and a != design(spec.parameters, 7, seed=12)
    for values in a:
        assert 0.05 <= values[0] <= 1.0 and 1.0 <= values[1] <= 72.0


BAD = """\
parameters:
  - path: venues.ex.compliance
    low: 0.1
    high: 1.5
  - path: venues.nope.compliance
    low: 0.1
    high: 0.2
targets:
  - name: frozen
    metric: venue_frozen_usd
    venue: exx
    value: 1
    tolerance: 1
    source: s
  - name: seized
    metric: action_seized_usd
    intervention: sep
    value: 1
    tolerance: 1
    source: s
"""

BAD_SCHEMA = """\
parameters:
  - path: venues.ex.compliance
    low: 0.9
    high: 0.2
targets:
  - name: frozen
    metric: venue_frozen_usd
    venu: ex
    value: 1
    tolerance: 0
    source: s
  - name: other
    metric: share_of
    value: 1
    tolerance: 1
    source: s
bogus: 1
"""


def _invoke_bad(tmp_path, case, text):
    _, scenario, _ = case
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    result = CliRunner().invoke(main, ["calibrate", str(scenario), "--targets", str(path), "--out", str(tmp_path / "o")])
    return result, str(path)


def test_reference_errors_give_file_line_and_exit_2(tmp_path, case):
    result, f = _invoke_bad(tmp_path, case, BAD)
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert lines == [
        f"{f}:4: parameters.0.high: the scenario refuses venues.ex.compliance = 1.5 "
        f"(venues.ex.compliance: input should be less than or equal to 1 (got 1.5))",
        f"{f}:5: parameters.1.path: no such field in the scenario: venues.nope.compliance "
        f"(venues.nope is not in {case[1]})",
        f"{f}:11: targets.0.venue: unknown venue 'exx' (defined: ex, otc)",
        f"{f}:17: targets.1.intervention: unknown intervention 'sep' (defined: none)",
    ]
    assert "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_schema_errors_give_file_line_and_exit_2(tmp_path, case):
    result, f = _invoke_bad(tmp_path, case, BAD_SCHEMA)
    assert result.exit_code == 2
    err = result.stderr
    assert f"{f}:2: parameters.0: high must be greater than low (got low 0.9, high 0.2)" in err
    assert f"{f}:8: targets.0.venu: unknown field (allowed: name, value, tolerance, source, role, metric, venue)" in err
    assert f"{f}:10: targets.0.tolerance: input should be greater than or equal to 0.000001 (got 0)" in err
    assert f"{f}:13: targets.1.metric: unknown metric 'share_of'" in err
    assert f"{f}:17: bogus: unknown field (allowed: description, parameters, targets)" in err
    assert "Traceback" not in result.output


def test_duplicate_key_and_missing_file(tmp_path, case):
    result, f = _invoke_bad(tmp_path, case, "parameters: []\nparameters: []\ntargets: []\n")
    assert result.exit_code == 2
    assert f"{f}:2: parameters: duplicate key" in result.stderr
    _, scenario, _ = case
    with pytest.raises(ScenarioError, match="file not found"):
        load_targets(tmp_path / "missing.yaml", scenario)


def test_check_targets_are_reported_but_never_fitted(tmp_path):
    """A check (out-of-sample) target does not move the distance; a file of checks only is refused."""
    from launderflow.analysis.calibrate import Candidate
    from launderflow.analysis.targets import FACTS

    (tmp_path / "tiny.yaml").write_text(TINY)
    scenario = load_scenario(tmp_path / "tiny.yaml")
    fact = FACTS["final_share"]
    fitted = fact(name="a", metric="final_share", state="frozen", value=0.5, tolerance=0.1, source="s", role="input")
    check = fact(name="b", metric="final_share", state="frozen", value=0.0, tolerance=0.01, source="s", role="check")
    cand = Candidate(0, [1.0], np.array([[0.6, 0.6], [0.6, 0.6]]))
    assert cand.distance([fitted, check], scenario) == pytest.approx(1.0)  # only the input target: z = +1
    assert cand.distance([fitted], scenario) == pytest.approx(1.0)
    targets = tmp_path / "checks.yaml"
    targets.write_text("parameters: [{path: venues.ex.compliance, low: 0.1, high: 0.9}]\n"
                       "targets:\n  - {name: b, metric: final_share, state: frozen, value: 0.1, tolerance: 0.1, "
                       "source: s, role: check}\n")
    with pytest.raises(ScenarioError, match="every target is a check"):
        load_targets(targets, scenario_path=tmp_path / "tiny.yaml")


def test_finished_candidates_are_kept_and_reused(case, tmp_path):
    """Ctrl-C loses only the candidates in flight: each finished one is kept under DIR/candidates-done/
    the moment it finishes, and the same calibration uses it instead of running it again."""
    from launderflow.analysis.calibrate import FinishedCandidates

    _, scenario, targets = case
    keep = tmp_path / "cal"
    first = calibrate(scenario, targets, runs=2, samples=4, seed=3, keep=keep)
    files = sorted((keep / "candidates-done").glob("*.json"))
    assert len(files) == 4
    ticks: list[int] = []
    again = calibrate(scenario, targets, runs=2, samples=4, seed=3, keep=keep, resume=True,
                      on_replication=lambda: ticks.append(1))
    assert again.report() == first.report() and len(ticks) == 8  # the same numbers; the bar counts them as done
    # a kept candidate is used as it is, not run again: altered, it changes the result
    doc = json.loads(files[0].read_text())
    doc["metrics"] = [[v * 2 for v in row] for row in doc["metrics"]]
    files[0].write_text(json.dumps(doc))
    altered = calibrate(scenario, targets, runs=2, samples=4, seed=3, keep=keep, resume=True)
    assert altered.candidates[0].metrics.tolist() == doc["metrics"] != first.candidates[0].metrics.tolist()
    # without resume nothing kept is used: the candidate runs again (and is kept afresh)
    fresh = calibrate(scenario, targets, runs=2, samples=4, seed=3, keep=keep)
    assert fresh.report() == first.report()
    assert json.loads(files[0].read_text())["metrics"] == first.candidates[0].metrics.tolist()
    # another seed is another calibration: nothing of this one is used
    other = FinishedCandidates(keep, *_spec_and_scenario(scenario, targets), seed=4, runs=2, samples=4)
    assert other.count() == 0
    other.clear()
    assert not (keep / "candidates-done").exists()


def _spec_and_scenario(scenario, targets):
    from launderflow.analysis.calibrate import load_targets

    spec, base = load_targets(targets, scenario)
    return base, spec


def test_ctrl_c_in_calibrate_keeps_the_finished_candidates_and_resume_uses_them(case, tmp_path, monkeypatch):
    """Ctrl-C after two candidates: exit 130, those two kept; the same command again is refused (exit 2)
    as `run` refuses an unfinished run; with --resume it runs the other two only and writes the bytes
    of an uninterrupted calibration."""
    from launderflow.analysis.calibrate import FinishedCandidates

    _, scenario, targets = case
    args = ["calibrate", str(scenario), "--targets", str(targets), "--samples", "4", "--runs", "2", "--seed", "3"]
    whole = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "whole")])
    assert whole.exit_code == 0, whole.output
    out = tmp_path / "cal"
    add = FinishedCandidates.add

    def add_then_interrupt(self, cand):
        add(self, cand)
        if len(list(self.dir.glob("*.json"))) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(FinishedCandidates, "add", add_then_interrupt)
    cut = CliRunner().invoke(main, [*args, "--out", str(out)])
    assert cut.exit_code == 130
    assert "interrupted: 2 of 4 candidates finished and are kept in" in cut.stderr and "with --resume" in cut.stderr
    assert not (out / "calibration.json").exists()
    monkeypatch.setattr(FinishedCandidates, "add", add)
    again = CliRunner().invoke(main, [*args, "--out", str(out)])
    assert again.exit_code == 2 and "holds an unfinished calibration" in again.stderr and "--resume" in again.stderr
    assert "Traceback" not in again.output
    ran = []
    monkeypatch.setattr(FinishedCandidates, "add", lambda self, cand: (ran.append(cand.index), add(self, cand)))
    resumed = CliRunner().invoke(main, [*args, "--out", str(out), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert len(ran) == 2 and "2 of 4 candidates finished earlier are used" in resumed.stderr
    for name in ("calibration.json", "candidates.csv"):
        assert (out / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()
    assert not (out / "candidates-done").exists()  # gone once the outputs are written
