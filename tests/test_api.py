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


# --- the writer lock belongs to the library: the API is as safe as the CLI ------------------------------


TRY_LOCK = """\
import sys
from launderflow.runs.lock import LockedError, acquire
try:
    acquire(sys.argv[1])
except LockedError as exc:
    print(exc)
else:
    print("acquired")
"""




def _try_lock(directory: Path) -> str:
    """What another process gets when it asks for the directory's writer lock."""
    return subprocess.run([sys.executable, "-c", TRY_LOCK, str(directory)], capture_output=True, text=True,
                          check=True).stdout.strip()


class Recorder:
    """A Progress that records what the run reports, and can act on the first replication stored."""

    def __init__(self, on_first=None):
        self.events: list[tuple] = []
        self.on_first = on_first

    def note(self, text):
        self.events.append(("note", text))

    def start(self, label, total, done):
        self.events.append(("start", label, total, done))

    def advance(self):
        self.events.append(("advance",))
        if self.on_first is not None and self.events.count(("advance",)) == 1:
            self.on_first()

    def failed(self, failure):
        self.events.append(("failed", failure.index))

    def finish(self, report):
        self.events.append(("finish", report.out, report.stored, report.recorded_failures))


def test_a_run_holds_its_directory_locked_while_it_works(tmp_path):
    import json
    import os

    out = tmp_path / "run"
    seen = {}

    def look():  # in the middle of the run: the lock file names this Python process; others are refused
        seen["lock"] = json.loads((out / ".launderflow.lock").read_text())
        seen["other"] = _try_lock(out)

    lf.run(GOLDEN, runs=2, out=out, progress=Recorder(on_first=look))
    assert seen["lock"]["pid"] == os.getpid() and seen["lock"]["command"].startswith("python ")
    assert f"is being written by another launderflow (pid {os.getpid()} " in seen["other"]
    assert not (out / ".launderflow.lock").exists()  # released when the run ended
    assert _try_lock(out) == "acquired"


def test_the_api_refuses_a_directory_another_process_writes_before_any_work(holder, tmp_path):
    other = tmp_path / "other.yaml"
    other.write_text(GOLDEN.read_text().replace("name: golden_baseline", "name: slower_sharing"), encoding="utf-8")
    run_dir, cmp_dir, sweep_dir = tmp_path / "run", tmp_path / "cmp", tmp_path / "sweep"
    proc = holder(run_dir, cmp_dir / "slower_sharing", sweep_dir / "point_001")
    calls = [
        lambda: lf.run(GOLDEN, runs=2, out=run_dir),
        lambda: lf.compare([GOLDEN, other], runs=2, out=cmp_dir),               # its second run directory is held
        lambda: lf.sweep(GOLDEN, {"seed": [1, 2]}, runs=2, out=sweep_dir),      # its second point is held
    ]
    for call in calls:
        with pytest.raises(lf.LockedError, match=f"pid {proc.pid} .*launderflow run other.yaml"):
            call()
    assert sorted(p.name for p in run_dir.iterdir()) == [".launderflow.lock"]  # nothing written
    for root, held in ((cmp_dir, cmp_dir / "slower_sharing"), (sweep_dir, sweep_dir / "point_001")):
        files = [p for p in root.rglob("*") if p.is_file()]
        assert files == [held / ".launderflow.lock"], files  # refused before any work; the locks it took let go


def test_the_lock_is_reentrant_within_a_process(tmp_path):
    from launderflow.runs.lock import locked

    out = tmp_path / "run"
    with locked(out):
        run = lf.run(GOLDEN, runs=1, out=out)
        assert run.indices == [0] and (out / ".launderflow.lock").exists()  # still held by the outer block
    assert not (out / ".launderflow.lock").exists()


def test_ctrl_c_in_a_run_says_what_is_stored_and_lets_the_lock_go(tmp_path):
    from launderflow.runs.experiment import RunInterrupted

    out = tmp_path / "run"

    def stop():
        raise KeyboardInterrupt

    with pytest.raises(RunInterrupted) as caught:
        lf.run(GOLDEN, runs=3, out=out, progress=Recorder(on_first=stop))
    assert isinstance(caught.value, KeyboardInterrupt)  # Ctrl-C stays Ctrl-C
    assert (caught.value.stored, caught.value.runs, caught.value.out) == (1, 3, out)
    assert str(caught.value) == f"1 of 3 replications are stored in {out / 'parts'}"
    assert _try_lock(out) == "acquired"
    resumed = Recorder()
    lf.run(GOLDEN, runs=3, out=out, resume=True, progress=resumed)
    assert resumed.events == [("note", f"{out}: 1 of 3 replications already stored"),
                              ("start", "golden_baseline", 3, 1), ("advance",), ("advance",),
                              ("finish", out, 3, 0)]
    again = Recorder()
    lf.run(GOLDEN, runs=3, out=out, resume=True, progress=again)
    assert again.events == [("note", f"{out}: 3 of 3 replications already stored"),
                            ("note", f"{out}: all 3 replications were already stored; nothing to run"),
                            ("finish", out, 3, 0)]


def test_compare_and_sweep_carry_on_past_a_scenario_that_stored_nothing_unless_strict(tmp_path, monkeypatch):
    import launderflow.runs.replications as replications

    real = replications.simulate

    def broken(scenario, rng, **kwargs):
        if scenario.name == "broken":
            raise ValueError("the model broke")
        return real(scenario, rng, **kwargs)

    monkeypatch.setattr(replications, "simulate", broken)
    other = tmp_path / "broken.yaml"
    other.write_text(GOLDEN.read_text().replace("name: golden_baseline", "name: broken"), encoding="utf-8")
    with pytest.raises(RuntimeError, match="every replication of broken failed"):
        lf.compare([GOLDEN, other], runs=2, out=tmp_path / "strict")
    progress = Recorder()
    cmp = lf.compare([other, GOLDEN], runs=2, out=tmp_path / "lenient", strict=False, progress=progress)
    assert list(cmp.runs) == ["broken", "golden_baseline"] and cmp.runs["golden_baseline"].indices == [0, 1]
    assert cmp.seed == lf.load_scenario(other).seed and (tmp_path / "lenient" / "comparison.csv") in cmp.written
    assert ("finish", tmp_path / "lenient" / "broken", 0, 2) in progress.events


def test_sweep_takes_points_made_beforehand_and_refuses_another_grids(tmp_path):
    grid = {"tracing.sharing.latency": [1, 24]}
    from launderflow.api import sweep_points

    points = sweep_points(GOLDEN, grid)
    with pytest.raises(ValueError, match="not this grid's"):
        lf.sweep(GOLDEN, {"tracing.sharing.latency": [1, 6]}, runs=1, out=tmp_path / "other", points=points)
    assert not (tmp_path / "other").exists()
    cmp = lf.sweep(GOLDEN, grid, runs=1, seed=3, out=tmp_path / "sweep", points=points)
    assert list(cmp.runs) == ["latency=1", "latency=24"]


def test_calibration_outputs_are_written_under_the_lock(holder, tmp_path):
    from launderflow.analysis.calibrate import calibrate, write_outputs

    targets = tmp_path / "targets.yaml"
    targets.write_text("parameters:\n  - {path: tracing.sharing.latency, low: 1h, high: 2d}\n"
                       "targets:\n  - {name: dark, metric: share_at, state: dark, at: 2d, value: 0.5, tolerance: 0.5, source: a test}\n",
                       encoding="utf-8")
    cal = calibrate(GOLDEN, targets, runs=1, samples=1)
    out = tmp_path / "cal"
    proc = holder(out)
    with pytest.raises(lf.LockedError, match=f"pid {proc.pid} "):
        write_outputs(cal, out)
    assert sorted(p.name for p in out.iterdir()) == [".launderflow.lock"]
    proc.kill()
    proc.wait()
    written = write_outputs(cal, out)
    assert {p.name for p in written} == {"calibration.json", "candidates.csv", "calibrated.yaml"}
    assert not (out / ".launderflow.lock").exists()
