"""Joint calibration and leave-one-incident-out cross-validation on synthetic incidents whose true
shared parameters are known: recovered, validated, held-out facts set nothing, bad files refused."""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from launderflow.analysis.crossval import CrossValidation, Fold, JointCalibration, write_joint_outputs
from launderflow.analysis.joint import Cube, load_joint, simulate_cube
from launderflow.cli import main
from launderflow.metrics import METRICS
from launderflow.runs.replications import run_replications
from launderflow.scenario.loader import ScenarioError, extends_outside_allowed, load_data, load_scenario

HERE = Path(__file__).resolve().parent / "joint"
TRUTH = {"tracing.hop_success.split": 0.7, "venues.ex.compliance": 0.6}
BOX = [{"path": "tracing.hop_success.split", "low": 0.3, "high": 1.0},
       {"path": "venues.ex.compliance", "low": 0.05, "high": 1.0}]
# per incident: (fact name, metric and its fields, role, relative tolerance or absolute for shares)
FACTS = {
    "inc_a": [("traced", {"metric": "final_share", "state": "traced"}, "input", 0.04),
              ("frozen", {"metric": "venue_frozen_usd", "venue": "ex"}, "check", "20%")],
    "inc_b": [("traced", {"metric": "final_share", "state": "traced"}, "check", 0.04),
              ("cashed", {"metric": "final_share", "state": "cashed_out"}, "input", 0.05)],
    "inc_c": [("traced", {"metric": "final_share", "state": "traced"}, "input", 0.04),
              ("frozen", {"metric": "venue_frozen_usd", "venue": "ex"}, "check", "20%")],
}
K, N = 24, 3


@functools.cache
def _truth(scenario_path: Path) -> dict[str, float]:
    """Each fact as the model gives it at the true parameters (9 runs of another seed than the fit's)."""
    scenario = load_scenario(scenario_path, TRUTH)
    reps = [rep for _, rep in run_replications(scenario, 9, seed=99)]
    name = scenario.name
    return {fact: float(np.median(METRICS[m["metric"]](**{k: v for k, v in m.items() if k != "metric"})
                                  .values(reps, scenario)))
            for fact, m, _, _ in FACTS[name]}


def _write_case(root: Path, shift: dict[tuple[str, str], float] | None = None) -> Path:
    """The synthetic case in ``root``: the scenarios, a targets file per incident and the joint file."""
    for path in HERE.glob("*.yaml"):
        shutil.copy(path, root / path.name)
    for name in FACTS:
        values = _truth(HERE / f"{name}.yaml")
        targets = []
        for fact, metric, role, tol in FACTS[name]:
            value = values[fact] * (shift or {}).get((name, fact), 1.0)
            tolerance = tol if not isinstance(tol, str) else float(tol.rstrip("%")) / 100 * values[fact]
            targets.append({"name": fact, **metric, "value": value, "tolerance": tolerance, "role": role,
                            "source": "synthetic: the model at the true parameters"})
        (root / f"{name}.targets.yaml").write_text(yaml.safe_dump({"targets": targets}, sort_keys=False))
    joint = {"description": "synthetic incidents sharing a split's tracing and an exchange's compliance",
             "behaviour": "behaviour.yaml", "seed": 7, "parameters": BOX,
             "incidents": [{"name": n, "scenario": f"{n}.yaml", "targets": f"{n}.targets.yaml"} for n in FACTS]}
    path = root / "joint.yaml"
    path.write_text(yaml.safe_dump(joint, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    return _write_case(tmp_path_factory.mktemp("joint"))


@pytest.fixture(scope="module")
def cube(case):
    return simulate_cube(load_joint(case), K, N)


def test_joint_calibration_recovers_the_true_parameters(cube):
    cal = JointCalibration(cube, 0.2)
    rows = {r["path"]: r for r in cal.parameter_rows()}
    for path, true in TRUTH.items():
        row = rows[path]
        assert row["accepted_p5"] <= true <= row["accepted_p95"], row
        assert row["width_of_box"] < 0.6, row  # the facts constrain it: narrower than the box
    assert len(cal.accepted) >= 5 and cal.distances[cal.best] < 2.0  # 24 candidates: a coarse grid
    report = cal.report()
    assert [i["name"] for i in report["incidents_at_best"]] == list(FACTS)
    assert all(abs(f["z"]) < 3 for i in report["incidents_at_best"] for f in i["facts"])


def test_the_distance_weighs_every_incident_the_same(cube):
    """RMS over incidents of each incident's RMS over its facts, whatever the number of facts."""
    names = list(FACTS)
    per = np.array([cube.incident_distances(n) for n in names])
    assert np.allclose(cube.distances(names), np.sqrt(np.mean(per ** 2, axis=0)))
    k = 0
    z = cube.z("inc_a", k)
    assert per[0, k] == pytest.approx(float(np.sqrt(np.mean(z ** 2))))


def test_crossval_passes_on_the_synthetic_incidents(cube):
    cv = CrossValidation(cube, 0.2)
    report = cv.report()
    assert report["passed"], [(f["held_out"], [(r["name"], r["z"]) for r in f["facts"]]) for f in report["folds"]]
    for fold in report["folds"]:
        assert fold["held_out"] not in fold["fitted_on"] and len(fold["fitted_on"]) == 2
        assert fold["checks_total"] == 1 == fold["checks_within"]
        assert [r["in_sample"] for r in fold["facts"]] == [r["role"] == "input" for r in fold["facts"]]


def test_a_held_out_fact_sets_no_parameter(case, cube, tmp_path):
    """Tripling inc_a's frozen fact leaves the inc_a fold's accepted set as it was (and fails its check),
    while the folds that fit on inc_a move."""
    moved = load_joint(_write_case(tmp_path, {("inc_a", "frozen"): 3.0}))
    other = Cube(moved, cube.seed, cube.runs, cube.candidates, cube.values, cube.failures)
    assert Fold(other, 0.2, "inc_a").accepted == Fold(cube, 0.2, "inc_a").accepted
    assert not Fold(other, 0.2, "inc_a").report()["passed"]
    assert Fold(other, 0.2, "inc_b").accepted != Fold(cube, 0.2, "inc_b").accepted


def test_calibrate_joint_writes_its_files(case, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["calibrate", "--joint", str(case), "--samples", "8", "--runs", "2",
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "joint.json").read_text())
    assert report["samples"] == 8 and [i["name"] for i in report["incidents"]] == list(FACTS)
    accepted = (out / "accepted.csv").read_text().splitlines()
    assert accepted[0] == "candidate,tracing.hop_success.split,venues.ex.compliance,distance"
    assert [int(line.split(",")[0]) for line in accepted[1:]] == report["accepted"]
    assert len((out / "candidates.csv").read_text().splitlines()) == 9
    assert len((out / "cube.csv").read_text().splitlines()) == 1 + 8 * 2 * 2 * 3  # candidates x facts x runs x incidents
    with extends_outside_allowed():
        data, _ = load_data(out / "behaviour.calibrated.yaml")
    best = report["best"]["parameters"]
    assert data["tracing"]["hop_success"]["split"] == best["tracing.hop_success.split"]
    assert data["venues"]["ex"]["compliance"] == best["venues.ex.compliance"]
    assert "inc_b" in result.stdout and "tracing.hop_success.split" in result.stdout


def test_crossval_is_byte_identical_whatever_the_jobs_and_resumes(case, tmp_path):
    def run(out: Path, *extra: str):
        return CliRunner().invoke(main, ["crossval", str(case), "--samples", "4", "--runs", "2", "--out", str(out),
                                         *extra])

    one, two = run(tmp_path / "one"), run(tmp_path / "two", "--jobs", "2")
    assert one.exit_code in (0, 1) and one.exit_code == two.exit_code, one.output
    for name in ("crossval.json", "cube.csv"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
    assert "leave-one-incident-out" in one.stdout and "fold inc_b" in one.stdout
    # --resume reuses the kept cells: a changed cell shows in the cube
    cells = sorted((tmp_path / "one" / "cells" / "inc_b").glob("*.json"))
    assert len(cells) == 4
    kept = json.loads(cells[0].read_text())
    kept["values"][0][0] = 0.123456
    cells[0].write_text(json.dumps(kept))
    again = run(tmp_path / "one", "--resume", "--json")
    assert again.exit_code in (0, 1), again.output
    assert "0.123456" in (tmp_path / "one" / "cube.csv").read_text()
    assert json.loads(again.stdout)["launderflow_crossval"] == 1


def test_crossval_exits_1_when_a_check_misses(case, tmp_path):
    shifted = _write_case(tmp_path, {("inc_c", "frozen"): 3.0})
    result = CliRunner().invoke(main, ["crossval", str(shifted), "--samples", "6", "--runs", "2", "--json"])
    assert result.exit_code == 1, result.output
    folds = {f["held_out"]: f for f in json.loads(result.stdout)["folds"]}
    assert not folds["inc_c"]["passed"] and folds["inc_c"]["checks_within"] == 0


# --- bad joint files -----------------------------------------------------------------------------------


def _bad(case: Path, tmp_path: Path, text: str, command: str = "crossval") -> tuple[object, str]:
    for path in case.parent.glob("*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    args = ["crossval", str(path)] if command == "crossval" else ["calibrate", "--joint", str(path)]
    return CliRunner().invoke(main, [*args, "--samples", "2", "--runs", "1"]), str(path)


INCIDENTS = ("incidents:\n  - {name: inc_a, scenario: inc_a.yaml, targets: inc_a.targets.yaml}\n"
             "  - {name: inc_b, scenario: inc_b.yaml, targets: inc_b.targets.yaml}\n")


def test_schema_errors_name_file_and_line(case, tmp_path):
    text = ("behaviour: behaviour.yaml\nparameters:\n  - {path: venues.ex.compliance, low: 0.9, high: 0.1}\n"
            + INCIDENTS + "  - {name: inc_a, scenario: inc_c.yaml, targets: inc_c.targets.yaml, extra: 1}\nbogus: 2\n")
    result, f = _bad(case, tmp_path, text)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"{f}:3: parameters.0: high must be greater than low (got low 0.9, high 0.1)" in result.stderr
    assert f"{f}:7: incidents.2.extra: unknown field (allowed: name, scenario, targets)" in result.stderr
    assert f"{f}:8: bogus: unknown field (allowed: description, behaviour, seed, parameters, incidents)" in result.stderr


def test_reference_errors_name_file_and_line(case, tmp_path):
    text = ("behaviour: behaviour.yaml\nparameters:\n  - {path: venues.nope.compliance, low: 0.1, high: 0.9}\n"
            "incidents:\n  - {name: inc_a, scenario: inc_a.yaml, targets: inc_a.targets.yaml}\n"
            "  - {name: inc_x, scenario: missing.yaml, targets: inc_b.targets.yaml}\n")
    result, f = _bad(case, tmp_path, text, command="calibrate")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"{f}:6: incidents.1.scenario: no such file: missing.yaml" in result.stderr
    assert f"{f}:3: parameters.0.path: incident inc_a: no such field in the scenario: venues.nope.compliance" \
        in result.stderr


def test_incidents_must_share_the_behaviour_file(case, tmp_path):
    (tmp_path / "lone.yaml").write_text((HERE / "inc_c.yaml").read_text().replace("extends: behaviour.yaml\n", "")
                                        .replace("fee: 0.0}", "fee: 0.0, compliance: 0.5}"))
    text = ("behaviour: behaviour.yaml\nparameters:\n  - {path: tracing.hop_success.split, low: 0.3, high: 1}\n"
            "incidents:\n  - {name: lone, scenario: lone.yaml, targets: inc_c.targets.yaml}\n"
            "  - {name: inc_a, scenario: inc_a.yaml, targets: inc_a.targets.yaml}\n")
    result, f = _bad(case, tmp_path, text)
    assert result.exit_code == 2, result.output
    assert f"{f}:5: incidents.0.scenario: incident lone: {tmp_path / 'lone.yaml'} does not extend behaviour.yaml" \
        in result.stderr
    # an incident that sets a shared parameter itself is warned about (the fit overrides it), not refused
    (tmp_path / "w").mkdir()
    joint = load_joint(_write_case(tmp_path / "w"))
    own = Path(joint.incident("inc_a").scenario_path)
    own.write_text(own.read_text() + "tracing:\n  hop_success: {split: 0.5}\n")
    warned = load_joint(joint.path)
    assert [str(w) for w in warned.warnings] == [
        f"{joint.path}:5: parameters.0.path: warning: incident inc_a: {own.resolve()}:12 sets "
        f"tracing.hop_success.split itself: the fit overrides it with the shared value, but behaviour.yaml "
        f"(and a calibrated copy) would not reach it"]
    assert load_scenario(own, TRUTH).tracing.hop_success["split"] == 0.7  # the override reaches it


def test_duplicate_keys_and_a_single_incident(case, tmp_path):
    result, f = _bad(case, tmp_path, "behaviour: behaviour.yaml\nbehaviour: common.yaml\n")
    assert result.exit_code == 2 and f"{f}:2: behaviour: duplicate key" in result.stderr
    text = ("behaviour: behaviour.yaml\nparameters:\n  - {path: venues.ex.compliance, low: 0.1, high: 0.9}\n"
            "incidents:\n  - {name: inc_a, scenario: inc_a.yaml, targets: inc_a.targets.yaml}\n")
    result, f = _bad(case, tmp_path, text)
    assert result.exit_code == 2 and f"{f}:4: incidents: needs at least 2 incidents" in result.stderr
    with pytest.raises(ScenarioError, match="file not found"):
        load_joint(tmp_path / "nothing.yaml")


def test_usage_errors(case):
    result = CliRunner().invoke(main, ["calibrate", "--joint", str(case), str(case)])
    assert result.exit_code == 2 and "--joint takes no SCENARIO_FILE" in result.output
    result = CliRunner().invoke(main, ["calibrate", str(case)])
    assert result.exit_code == 2 and "needs SCENARIO_FILE and --targets" in result.output


def test_outputs_hold_the_lock_and_check_the_behaviour_file(cube, tmp_path):
    cal = JointCalibration(cube, 0.2)
    written = write_joint_outputs(cal, tmp_path)
    assert [p.name for p in written] == ["joint.json", "candidates.csv", "accepted.csv", "cube.csv",
                                         "behaviour.calibrated.yaml"]
    text = (tmp_path / "behaviour.calibrated.yaml").read_text()
    assert text.startswith("# behaviour.yaml with the best candidate") and "extends: " in text


def test_ctrl_c_exits_130_and_keeps_the_cells(case, tmp_path, monkeypatch):
    import launderflow.analysis.crossval as module

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(module, "simulate_cube", interrupted)
    result = CliRunner().invoke(main, ["crossval", str(case), "--out", str(tmp_path / "o")])
    assert result.exit_code == 130
    assert "interrupted: nothing was scored; the finished cells are kept in" in result.stderr
    assert "--resume runs the rest" in result.stderr and not (tmp_path / "o" / "crossval.json").exists()


def test_a_draw_of_the_behaviour_replaces_the_shared_file_not_a_policy(tmp_path):
    # The policy study carries the accepted sets into policy scenarios: a field the policy file (or
    # any file between it and the shared one) sets itself keeps the policy's value.
    from launderflow.analysis.joint import behaviour_overrides

    (tmp_path / "shared.yaml").write_text("tracing: {dependence: 0.5, sharing: {latency: 6h}}\n", encoding="utf-8")
    (tmp_path / "base.yaml").write_text("extends: shared.yaml\nname: base\n", encoding="utf-8")
    (tmp_path / "policy.yaml").write_text("extends: base.yaml\ntracing: {sharing: {latency: 15min}}\n", encoding="utf-8")
    draw = {"tracing.sharing.latency": 2.0, "tracing.dependence": 0.9}
    assert behaviour_overrides(tmp_path / "base.yaml", tmp_path / "shared.yaml", draw) == draw
    assert behaviour_overrides(tmp_path / "policy.yaml", tmp_path / "shared.yaml", draw) == {"tracing.dependence": 0.9}
    (tmp_path / "alone.yaml").write_text("name: alone\n", encoding="utf-8")
    with pytest.raises(ValueError, match="does not extend"):
        behaviour_overrides(tmp_path / "alone.yaml", tmp_path / "shared.yaml", draw)
    # the bundled study: the information-sharing and combined policies keep their 15-minute sharing
    root = Path(__file__).resolve().parents[1] / "scenarios"
    for name, kept in (("information_sharing", False), ("combined", False), ("seizures", True)):
        out = behaviour_overrides(root / f"{name}.yaml", root / "behaviour" / "dprk.yaml", draw)
        assert ("tracing.sharing.latency" in out) is kept, name
