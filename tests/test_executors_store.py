"""Executors and the results store: the same bytes on a laptop or a cluster, interrupted or not.

* any executor (in process, a local process pool, a dask.distributed cluster) writes the same files;
* every replication is stored as it finishes; ``--resume`` runs only the missing ones and assembles
  the bytes an uninterrupted run writes; other runs and changed scenarios are refused (exit 2);
* failed replications are recorded with their stage, never dropped;
* ``launderflow query`` runs DuckDB SQL over a run.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from conftest import REPO, write
from launderflow import metrics
from launderflow.cli import main
from launderflow.runs.executors import DaskExecutor
from launderflow.runs.experiment import run_experiment
from launderflow.runs.replications import Task, run_replications
from launderflow.model.simulate import Replication
from launderflow.runs.results import summarize, write_run
from launderflow.scenario.loader import load_scenario
from launderflow.scenario.schema import Scenario
from launderflow.runs.store import RunStore, load_replication, save_replication

ALL_VENUES = REPO / "tests" / "scenarios" / "all_venues.yaml"
FINAL = ("summary.json", "timeline.parquet", "ledger.parquet", "anonymity.parquet")

# fast (a few ms a replication) but random everywhere, with an intervention (Replication.actions)
QUICK = """\
name: quick
seed: 5
clock: {horizon: 8d, resolution: 1min, timeline_step: 6h}
chains:
  eth: {confirmation: 3min, fee_usd: 2}
assets:
  ETH: {chain: eth, price_usd: 2000}
venues:
  desk: {kind: otc, jurisdiction: US, delay: {dist: lognormal, median: 1d, sigma: 0.5}, haircut: 0.05}
thefts:
  - name: hack
    victim: somebody
    stolen: [{asset: ETH, amount: 300}]
    discovered_after: 12h
playbook:
  - {hop: split, wallets: 6, delay: {dist: exponential, mean: 6h}}
  - {hop: peel, length: 2, fraction: 0.2, delay: {dist: uniform, low: 1h, high: 5h}}
  - {hop: wait, delay: {dist: exponential, mean: 1d}}
  - {hop: cash_out, venue: desk}
tracing:
  hop_success: {split: 0.8, peel: 0.9}
interventions:
  - {kind: seizure, name: raid, at: 2d, jurisdictions: [US]}
  - {kind: shutdown, name: late, venue: desk, at: 30d}
"""


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def run_ok(*args: str):
    result = invoke("run", *args)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return result


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (parts and manifest included) by relative path."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def finals(root: Path) -> dict[str, bytes]:
    return {name: (root / name).read_bytes() for name in FINAL if (root / name).exists()}


@pytest.fixture(scope="module")
def quick(tmp_path_factory) -> Path:
    return write(tmp_path_factory.mktemp("scen"), "quick.yaml", QUICK)


@pytest.fixture(scope="module")
def quick_clean(quick, tmp_path_factory) -> Path:
    """An uninterrupted 6-replication run of QUICK with ledgers: the reference bytes."""
    out = tmp_path_factory.mktemp("clean") / "run"
    run_ok(str(quick), "--runs", "6", "--keep-ledgers", "--out", str(out))
    return out


# --- executors: the same bytes everywhere --------------------------------------------------------


@pytest.fixture(scope="module")
def all_venues_runs(tmp_path_factory) -> dict[str, Path]:
    """all_venues, 4 replications, with --jobs 1, --jobs 2 and on a 2-worker dask cluster (loopback)."""
    from distributed import LocalCluster

    base = tmp_path_factory.mktemp("executors")
    dirs = {name: base / name for name in ("jobs1", "jobs2", "dask")}
    run_ok(str(ALL_VENUES), "--runs", "4", "--out", str(dirs["jobs1"]))
    run_ok(str(ALL_VENUES), "--runs", "4", "--jobs", "2", "--out", str(dirs["jobs2"]))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        result = run_ok(str(ALL_VENUES), "--runs", "4", "--scheduler", cluster.scheduler_address,
                        "--out", str(dirs["dask"]))
    assert "4/4" in result.stderr  # the progress bar, on stderr
    return dirs


def interrupt_after(k: int, scenario, store) -> None:
    """Run into ``store`` and press Ctrl-C (KeyboardInterrupt from the runner's callback) after ``k`` replications."""
    done = []

    def stop(index, rep):
        done.append(index)
        if len(done) == k:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_experiment(scenario, store, on_done=stop)


def test_dask_cluster_and_process_pool_write_the_same_bytes_as_jobs_1(all_venues_runs):
    reference = tree(all_venues_runs["jobs1"])
    assert {"summary.json", "timeline.parquet", "anonymity.parquet", "manifest.json"} <= set(reference)
    assert sum(name.endswith("replication.npz") for name in reference) == 4
    for name in ("jobs2", "dask"):
        assert tree(all_venues_runs[name]) == reference, name


def test_the_store_writes_what_the_in_memory_path_writes(quick, quick_clean, tmp_path):
    """Parts round-trip exactly: assembling from disk gives the bytes of write_run on live results."""
    scenario = load_scenario(quick)
    reps = dict(run_replications(scenario, 6, scenario.seed, keep_ledgers=True))
    write_run(tmp_path, scenario, scenario.seed, reps, summarize(scenario, scenario.seed, reps))
    assert set(finals(tmp_path)) == {"summary.json", "timeline.parquet", "ledger.parquet"}
    assert finals(tmp_path) == finals(quick_clean)


def test_dask_tasks_are_keyed_by_replication():
    submitted = []

    class FakeInner:
        def submit(self, fn, *args, **kwargs):
            submitted.append(kwargs)

        def shutdown(self, wait=True):
            pass

    class FakeClient:
        def get_executor(self, **kwargs):
            assert kwargs == {"pure": False}
            return FakeInner()

    executor = DaskExecutor(FakeClient())
    scenario = load_scenario(ALL_VENUES)
    tasks = [Task(scenario, 3, i, False, f"launderflow-k-r{i}") for i in range(3)]
    for task in tasks:
        executor.submit(len, task)
    assert [s["key"] for s in submitted] == ["launderflow-k-r0", "launderflow-k-r1", "launderflow-k-r2"]


# --- the store ------------------------------------------------------------------------------------


def test_a_replication_round_trips_exactly_and_deterministically(tmp_path):
    data = yaml.safe_load(ALL_VENUES.read_text())
    data["interventions"] = [{"kind": "shutdown", "name": "close_sinbad", "venue": "sinbad", "at": "2d"},
                             {"kind": "seizure", "at": "400d"}]  # after the horizon: applied at nan
    scenario = Scenario.model_validate(data)
    rep = next(run_replications(scenario, 1, 7, keep_ledgers=True))[1]
    assert rep.ledger is not None and rep.pools is not None and rep.withdrawals is not None
    assert len(rep.actions) == 2 and np.isnan(rep.actions["seizure_1"][1])
    save_replication(tmp_path / "a.npz", rep)
    save_replication(tmp_path / "b.npz", rep)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    back = load_replication(tmp_path / "a.npz")
    for f in Replication.__dataclass_fields__:
        a, b = getattr(rep, f), getattr(back, f)
        if isinstance(a, np.ndarray):
            assert a.dtype == b.dtype and a.shape == b.shape, f
            np.testing.assert_array_equal(a, b, err_msg=f)
        elif isinstance(a, dict) and a and isinstance(next(iter(a.values())), np.ndarray):
            assert list(a) == list(b), f
            for k in a:
                assert a[k].dtype == b[k].dtype, (f, k)
                np.testing.assert_array_equal(a[k], b[k], err_msg=f"{f}.{k}")
        elif f == "actions":
            assert list(a) == list(b)
            for k in a:
                assert a[k][0] == b[k][0] and np.array_equal(a[k][1:], b[k][1:], equal_nan=True)
        else:
            assert type(a) is type(b) and a == b, f


def test_interrupted_run_resumes_to_the_same_bytes(quick, quick_clean, tmp_path):
    """The runner's on_done raises KeyboardInterrupt after 2 replications; --resume finishes the run."""
    out = tmp_path / "run"
    scenario = load_scenario(quick)
    store = RunStore.open(out, scenario, scenario.seed, 6, keep_ledgers=True)
    interrupt_after(2, scenario, store)
    assert sorted(p.name for p in (out / "parts").iterdir()) == ["0000000", "0000001"]
    assert not (out / "summary.json").exists()

    refused = invoke("run", str(quick), "--runs", "6", "--keep-ledgers", "--out", str(out))  # forgot --resume
    assert refused.exit_code == 2 and "--resume" in refused.stderr and "2 of 6" in refused.stderr
    result = run_ok(str(quick), "--runs", "6", "--keep-ledgers", "--out", str(out), "--resume")
    assert "2 of 6 replications already stored" in result.stderr
    assert tree(out) == tree(quick_clean)


def test_ctrl_c_in_the_command_stores_what_finished(quick, quick_clean, tmp_path, monkeypatch):
    out = tmp_path / "run"
    real = RunStore.write_part

    def write_then_interrupt(self, index, rep, tables):
        path = real(self, index, rep, tables)
        if index == 2:
            raise KeyboardInterrupt
        return path

    monkeypatch.setattr(RunStore, "write_part", write_then_interrupt)
    result = invoke("run", str(quick), "--runs", "6", "--keep-ledgers", "--out", str(out))
    assert result.exit_code == 130
    assert "interrupted: 3 of 6" in result.stderr and "--resume" in result.stderr
    monkeypatch.setattr(RunStore, "write_part", real)
    run_ok(str(quick), "--runs", "6", "--keep-ledgers", "--out", str(out), "--resume")
    assert tree(out) == tree(quick_clean)


def test_killed_process_loses_no_finished_replication(all_venues_runs, tmp_path):
    """SIGKILL a real `launderflow run` after two replications are stored; --resume completes it."""
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "launderflow.cli", "run", str(ALL_VENUES), "--runs", "4",
                             "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if (out / "parts").is_dir() and len([p for p in (out / "parts").iterdir() if p.name.isdigit()]) >= 2:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the run finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    stored = sorted(p.name for p in (out / "parts").iterdir() if p.name.isdigit())
    assert 2 <= len(stored) < 4
    result = run_ok(str(ALL_VENUES), "--runs", "4", "--out", str(out), "--resume")
    assert f"{len(stored)} of 4 replications already stored" in result.stderr
    assert tree(out) == tree(all_venues_runs["jobs1"])


def test_resume_with_a_changed_scenario_or_seed_is_refused(quick, quick_clean, tmp_path):
    before = tree(quick_clean)
    changed = invoke("run", str(quick), "--runs", "6", "--keep-ledgers", "--out", str(quick_clean), "--resume",
                     "--set", "clock.horizon=9d")
    assert changed.exit_code == 2
    assert "the scenario differs" in changed.stderr and "clock.horizon" in changed.stderr
    assert "Traceback" not in changed.output
    reseeded = invoke("run", str(quick), "--runs", "6", "--keep-ledgers", "--out", str(quick_clean), "--resume",
                      "--seed", "6")
    assert reseeded.exit_code == 2 and "seed: 5 in the stored run, 6 now" in reseeded.stderr
    # another run into the same directory without --resume: refused, nothing overwritten
    other = write(tmp_path, "other.yaml", QUICK.replace("amount: 300", "amount: 301"))
    clobber = invoke("run", str(other), "--runs", "6", "--keep-ledgers", "--out", str(quick_clean))
    assert clobber.exit_code == 2 and "holds results of another run" in clobber.stderr
    assert "thefts.0.stolen.0.amount" in clobber.stderr
    assert tree(quick_clean) == before


def test_results_without_a_manifest_are_not_overwritten(quick, tmp_path):
    out = tmp_path / "old"
    out.mkdir()
    (out / "summary.json").write_text("{}")
    result = invoke("run", str(quick), "--runs", "2", "--out", str(out))
    assert result.exit_code == 2 and "manifest.json" in result.stderr
    assert (out / "summary.json").read_text() == "{}"
    run_ok(str(quick), "--runs", "2", "--out", str(out), "--overwrite")
    assert json.loads((out / "summary.json").read_text())["runs"] == 2


def test_resume_of_a_complete_run_does_nothing(quick, quick_clean):
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in quick_clean.rglob("*") if p.is_file()}
    result = run_ok(str(quick), "--runs", "6", "--keep-ledgers", "--out", str(quick_clean), "--resume")
    assert "nothing to run" in result.stderr
    assert "wrote" not in result.stdout and "cashed out" in result.stdout  # the table, from summary.json
    after = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in quick_clean.rglob("*") if p.is_file()}
    assert after == before


def test_resume_extends_a_run_to_more_replications(quick, quick_clean, tmp_path):
    out = tmp_path / "run"
    run_ok(str(quick), "--runs", "3", "--keep-ledgers", "--out", str(out))
    run_ok(str(quick), "--runs", "6", "--keep-ledgers", "--out", str(out), "--resume")
    assert finals(out) == finals(quick_clean)


def test_a_failed_replication_is_recorded_and_retried_on_resume(quick, quick_clean, tmp_path, monkeypatch):
    import launderflow.runs.replications as experiment

    real, calls = experiment.simulate, []

    def flaky(scenario, rng, **kwargs):  # in process (--jobs 1), replications run in index order
        calls.append(1)
        if len(calls) == 2:
            raise ValueError("boom")
        return real(scenario, rng, **kwargs)

    out = tmp_path / "run"
    monkeypatch.setattr(experiment, "simulate", flaky)
    result = invoke("run", str(quick), "--runs", "6", "--keep-ledgers", "--out", str(out))
    assert result.exit_code == 1
    assert "replication 1 failed (simulate): ValueError: boom" in result.stderr
    failures = json.loads((out / "failures.json").read_text())
    assert [(f["index"], f["seed"], f["stage"], f["error"]) for f in failures] == [(1, 5, "simulate", "ValueError: boom")]
    assert "boom" in failures[0]["traceback"]
    summary = json.loads((out / "summary.json").read_text())  # what succeeded is written, and says what is missing
    assert summary["runs"] == 5 and summary["failed_replications"] == [1]
    assert [r["index"] for r in summary["replications"]] == [0, 2, 3, 4, 5]

    monkeypatch.setattr(experiment, "simulate", real)
    run_ok(str(quick), "--runs", "6", "--keep-ledgers", "--out", str(out), "--resume")
    assert not (out / "failures.json").exists()
    assert tree(out) == tree(quick_clean)


def test_any_executor_will_do_and_a_lost_worker_is_recorded(quick, quick_clean, tmp_path):
    """A home-made Executor; the task of replication 3 is 'lost' (stage worker), --resume redoes it."""
    from concurrent.futures import Executor, Future

    class Inline(Executor):
        def submit(self, fn, /, *args, **kwargs):
            fut = Future()
            if args[0].index == 3:
                fut.set_exception(ConnectionError("worker lost"))
            else:
                fut.set_result(fn(*args, **kwargs))
            return fut

    out = tmp_path / "run"
    scenario = load_scenario(quick)
    store = RunStore.open(out, scenario, scenario.seed, 6, keep_ledgers=True)
    report = run_experiment(scenario, store, executor=Inline())
    assert sorted(report.ran) == [0, 1, 2, 4, 5]
    assert [(f.index, f.stage, f.error) for f in report.failures] == [(3, "worker", "ConnectionError: worker lost")]
    assert [r["index"] for r in json.loads((out / "failures.json").read_text())] == [3]
    run_ok(str(quick), "--runs", "6", "--keep-ledgers", "--out", str(out), "--resume")
    assert tree(out) == tree(quick_clean)


def test_the_same_command_twice_runs_again_with_the_same_bytes(quick, quick_clean, tmp_path):
    out = tmp_path / "run"
    run_ok(str(quick), "--runs", "6", "--keep-ledgers", "--out", str(out))
    result = run_ok(str(quick), "--runs", "6", "--keep-ledgers", "--out", str(out))
    assert "wrote" in result.stdout
    assert tree(out) == tree(quick_clean)


# --- query ----------------------------------------------------------------------------------------


def test_query_views_over_a_run(quick_clean):
    summary = json.loads((quick_clean / "summary.json").read_text())
    result = invoke("query", str(quick_clean), "SELECT count(*) AS n, median(cashed_out_usd) AS m FROM summary", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert rows[0]["n"] == 6
    assert rows[0]["m"] == pytest.approx(summary["states"]["cashed_out"]["median_usd"], rel=1e-12)

    horizon = summary["horizon_hours"]
    sql = (f"SELECT replication, state, value_usd FROM timeline WHERE time_hours = {horizon} "
           "AND state = 'cashed_out' ORDER BY replication")
    result = invoke("query", str(quick_clean), sql, "--csv")
    assert result.exit_code == 0, result.output
    table = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [int(r["replication"]) for r in table] == list(range(6))
    for row, rep in zip(table, summary["replications"]):
        assert float(row["value_usd"]) == pytest.approx(rep["final_usd"]["cashed_out"], rel=1e-9)

    result = invoke("query", str(quick_clean), "SELECT hop, count(*) AS transfers FROM ledger GROUP BY hop ORDER BY hop")
    assert result.exit_code == 0, result.output
    assert "split" in result.stdout and "cash_out" in result.stdout  # a rich table
    assert "anonymity" not in invoke("query", str(quick_clean), "SHOW TABLES", "--csv").stdout  # no pool mixer here

    bad = invoke("query", str(quick_clean), "SELECT nope FROM timeline")
    assert bad.exit_code == 2 and "query failed" in bad.stderr and "Traceback" not in bad.output


def test_query_reads_the_parts_of_an_unfinished_run(quick, tmp_path):
    out = tmp_path / "run"
    scenario = load_scenario(quick)
    store = RunStore.open(out, scenario, scenario.seed, 4)
    interrupt_after(3, scenario, store)
    result = invoke("query", str(out), "SELECT count(DISTINCT replication) AS n FROM timeline", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [{"n": 3}]
    assert "not assembled" in result.stderr
    result = invoke("query", str(out), "SELECT count(*) AS n FROM summary", "--json")
    assert json.loads(result.stdout) == [{"n": 3}]
    row = json.loads(invoke("query", str(out), "SELECT * FROM summary LIMIT 1", "--json").stdout)[0]
    assert {f"{state}_usd" for state in metrics.STATES} <= set(row)
