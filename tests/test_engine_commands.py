"""``--engine`` on the commands that run many replications: compare, sweep, calibrate (and
``--joint``), crossval. Either engine writes the same bytes (tests/test_engines.py checks the
replications themselves), in this process and in worker processes; the joint cells an engine keeps
serve the other, since the engine is not part of a cell's key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import REPO
from launderflow import api
from launderflow.analysis.calibrate import calibrate
from launderflow.analysis.crossval import crossval
from launderflow.analysis.joint import load_joint
from launderflow.cli import main

JOINT = REPO / "tests" / "joint" / "joint.yaml"
GOLDEN = sorted((REPO / "tests" / "golden").glob("*.yaml"))
ENGINES = ("reference", "compiled")


def files_of(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (its lock files aside), by relative path."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.startswith(".")}


def assert_same_files(a: Path, b: Path, least: int) -> None:
    fa, fb = files_of(a), files_of(b)
    assert sorted(fa) == sorted(fb) and len(fa) >= least, (sorted(fa), sorted(fb))
    for name in fa:
        assert fa[name] == fb[name], name


def test_compare_writes_the_same_bytes_with_either_engine_and_in_workers(tmp_path: Path):
    """In this process, in two worker processes and on a 2-worker dask cluster (loopback)."""
    from distributed import LocalCluster

    def compare(out: Path, engine: str, *where: str) -> None:
        result = CliRunner().invoke(main, ["compare", *map(str, GOLDEN), "--runs", "2", "--out", str(out),
                                           "--at", "2d", "--engine", engine, *where])
        assert result.exit_code == 0, result.output

    compare(tmp_path / "reference", "reference")
    compare(tmp_path / "compiled", "compiled")
    compare(tmp_path / "compiled-jobs2", "compiled", "--jobs", "2")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        compare(tmp_path / "compiled-dask", "compiled", "--scheduler", cluster.scheduler_address)
    for other in ("compiled", "compiled-jobs2", "compiled-dask"):
        assert_same_files(tmp_path / "reference", tmp_path / other, least=10)
    assert json.loads((tmp_path / "compiled" / "comparison.json").read_text())  # (something was compared)


def test_api_sweep_gives_the_same_rows_with_either_engine(tmp_path: Path):
    grid = {"tracing.hop_success.split": [0.4, 0.9]}
    rows = {engine: api.sweep(REPO / "tests" / "joint" / "inc_a.yaml", grid, runs=2, seed=5, out=tmp_path / engine,
                              engine=engine).rows for engine in ENGINES}
    assert rows["reference"] == rows["compiled"] and len(rows["reference"]) > 2
    assert_same_files(tmp_path / "reference", tmp_path / "compiled", least=10)


def test_calibrate_gives_the_same_candidates_with_either_engine(tmp_path: Path):
    scenario = REPO / "tests" / "joint" / "inc_a.yaml"
    targets = tmp_path / "targets.yaml"
    targets.write_text("parameters:\n  - {path: tracing.hop_success.split, low: 0.3, high: 1.0}\n"
                       + (REPO / "tests" / "joint" / "inc_a.targets.yaml").read_text(encoding="utf-8"))
    cals = {engine: calibrate(scenario, targets, runs=2, samples=4, engine=engine) for engine in ENGINES}
    ref, comp = cals["reference"], cals["compiled"]
    assert [c.metrics.tobytes() for c in ref.candidates] == [c.metrics.tobytes() for c in comp.candidates]
    assert json.dumps(ref.report()) == json.dumps(comp.report())
    assert any(c.metrics[0, 0] != ref.candidates[0].metrics[0, 0] for c in ref.candidates[1:])  # (not blind)
    result = CliRunner().invoke(main, ["calibrate", str(scenario), "--targets", str(targets), "--runs", "2",
                                       "--samples", "4", "--engine", "compiled", "--out", str(tmp_path / "cli")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "cli" / "calibration.json").read_text()) == json.loads(json.dumps(ref.report()))


def test_crossval_gives_the_same_report_with_either_engine():
    joint = load_joint(JOINT, least=2)
    reports = {engine: crossval(joint, runs=2, samples=3, engine=engine).report() for engine in ENGINES}
    assert json.dumps(reports["reference"]) == json.dumps(reports["compiled"])


def test_joint_calibration_is_the_same_bytes_and_its_cells_serve_either_engine(tmp_path: Path):
    def calibrate_joint(out: Path, engine: str, *extra: str):
        result = CliRunner().invoke(main, ["calibrate", "--joint", str(JOINT), "--samples", "3", "--runs", "2",
                                           "--out", str(out), "--engine", engine, *extra])
        assert result.exit_code in (0, 1), result.output
        return result

    for engine in ENGINES:
        calibrate_joint(tmp_path / engine, engine)
    assert_same_files(tmp_path / "reference", tmp_path / "compiled", least=5 + 9)  # the outputs and 9 kept cells
    # a cell kept by the reference engine is used by the compiled one (the engine is not in the key)
    cells = sorted((tmp_path / "reference" / "cells" / "inc_a").glob("*.json"))
    assert [c.name for c in cells] == sorted(c.name for c in (tmp_path / "compiled" / "cells" / "inc_a").glob("*.json"))
    kept = json.loads(cells[0].read_text())
    kept["values"][0][0] = 0.123456
    cells[0].write_text(json.dumps(kept))
    calibrate_joint(tmp_path / "reference", "compiled", "--resume")
    assert "0.123456" in (tmp_path / "reference" / "cube.csv").read_text()


@pytest.mark.parametrize("command", [["compare", str(GOLDEN[0])], ["sweep", str(GOLDEN[0]), "--set", "seed=1,2"],
                                     ["calibrate", "--joint", str(JOINT)], ["crossval", str(JOINT)]],
                         ids=lambda c: c[0])
def test_an_unknown_engine_is_refused(command: list[str]):
    result = CliRunner().invoke(main, [*command, "--engine", "fast"])
    assert result.exit_code == 2 and "'fast' is not one of" in result.output and "Traceback" not in result.output
