"""Data safety, second pass (issue 25): every command writes only its own files, never through a link.

Each test failed on the code before its fix: report / taint / plot writing through links, compare and
sweep replacing a user's files, ``--overwrite`` deleting a user's folder in ``parts/``, DuckDB's temp
folder reachable from SQL, ``backtest --out`` without a lock, empty paths, non-dask schedulers,
schedulers without workers, unbounded targets, and ``extends`` to a FIFO. The property test at the
end keeps "no command writes outside its own files" true for every command that writes.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import REPO, write
from launderflow.cli import main
from launderflow.runs.lock import file_lock_name
from launderflow.runs.outputs import LEDGER

GOLDEN = REPO / "tests" / "golden" / "golden_baseline.yaml"
VENUES = REPO / "tests" / "golden" / "golden_venues.yaml"
RONIN = REPO / "scenarios" / "ronin_2022.yaml"
RONIN_TARGETS = REPO / "scenarios" / "targets" / "ronin_2022.yaml"


def invoke(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


def tree(root: Path) -> dict[str, object]:
    """Every entry under ``root`` without following links: file bytes, or ('link', target)."""
    out: dict[str, object] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            key = str(path.relative_to(root))
            if path.is_symlink():
                out[key] = ("link", os.readlink(path))
            elif path.is_file():
                out[key] = path.read_bytes()
    return out


@pytest.fixture(scope="module")
def one_run(tmp_path_factory) -> Path:
    """A run of one replication (so with a ledger: taint works on it)."""
    out = tmp_path_factory.mktemp("one") / "run"
    result = invoke("run", GOLDEN, "--runs", "1", "--out", out)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def victim(tmp_path) -> Path:
    path = tmp_path / "victim.txt"
    path.write_text("the user's own file\n")
    return path


@pytest.fixture
def no_work(monkeypatch) -> list[int]:
    """No replication is simulated and no calibration made: a list that grows if one is tried."""
    import launderflow.analysis.calibrate as calibration
    import launderflow.runs.replications as replications

    ran: list[int] = []
    monkeypatch.setattr(replications, "simulate", lambda *a, **k: ran.append(1))
    monkeypatch.setattr(calibration, "calibrate", lambda *a, **k: ran.append(1))
    return ran


def refused(result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in result.stderr, (needle, result.stderr)


# --- 1. no command writes through a link ----------------------------------------------------------


@pytest.mark.parametrize("command, name", [
    ("report", "report.html"), ("taint", "taint.json"), ("plot", "figures"), ("plot", "figures/traceability.png"),
])
def test_report_taint_and_plot_refuse_links_in_the_run_directory(one_run, tmp_path, victim, command, name):
    run = tmp_path / "run"
    shutil.copytree(one_run, run)
    link = run / name
    link.parent.mkdir(exist_ok=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    link.symlink_to(elsewhere if name == "figures" else victim)
    before = tree(tmp_path)
    for extra in ((), ("--overwrite",)):
        refused(invoke(command, run, *extra), "is a symbolic link")
    assert tree(tmp_path) == before  # the victim, the folder elsewhere and the run: all as they were


def test_compare_sweep_calibrate_and_backtest_refuse_links_before_any_work(tmp_path, victim, no_work):
    ran = no_work
    cases = {
        "compare": (("compare", GOLDEN, VENUES, "--runs", "1"), "comparison.md"),
        "compare-run": (("compare", GOLDEN, VENUES, "--runs", "1"), "golden_venues"),
        "sweep": (("sweep", GOLDEN, "--set", "seed=1,2", "--runs", "1"), "figures"),
        "calibrate": (("calibrate", RONIN, "--targets", RONIN_TARGETS, "--samples", "2", "--runs", "1"),
                      "calibrated.yaml"),
    }
    for label, (args, name) in cases.items():
        out = tmp_path / label
        out.mkdir()
        target = tmp_path / f"{label}-target"
        target.mkdir()
        (out / name).symlink_to(target if name in ("figures", "golden_venues") else victim)
        before = tree(tmp_path)
        refused(invoke(*args, "--out", out), "is a symbolic link")
        assert tree(tmp_path) == before, label
    link = tmp_path / "bt.json"
    link.symlink_to(victim)
    before = tree(tmp_path)
    refused(invoke("backtest", RONIN, "--targets", RONIN_TARGETS, "--runs", "1", "--out", link, "--overwrite"),
            "bt.json is a symbolic link")
    assert tree(tmp_path) == before
    assert ran == []


def test_query_and_open_run_refuse_a_linked_timeline(one_run, tmp_path):
    import launderflow as lf

    run = tmp_path / "run"
    shutil.copytree(one_run, run)
    outside = tmp_path / "outside.parquet"
    shutil.copy(run / "timeline.parquet", outside)
    (run / "timeline.parquet").unlink()
    (run / "timeline.parquet").symlink_to(outside)
    refused(invoke("query", run, "SELECT count(*) FROM timeline"), "timeline.parquet is a symbolic link")
    with pytest.raises(lf.StoreError, match="timeline.parquet is a symbolic link"):
        lf.open_run(run)
    refused(invoke("report", run), "timeline.parquet is a symbolic link")


def test_the_report_never_embeds_a_linked_scenario_file(one_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(one_run, run)
    (run / "scenario.yaml").unlink()
    secret = tmp_path / "secret.txt"
    secret.write_text("s3cr3t-token")
    (run / "scenario.yml").symlink_to(secret)
    result = invoke("report", run)
    assert result.exit_code == 0, result.output
    assert "s3cr3t" not in (run / "report.html").read_text()


# --- 2. a file the command did not write is refused unless --overwrite; then only its own ---------------


def test_compare_and_sweep_keep_the_users_files_unless_overwrite(tmp_path):
    for label, args, own in (
        ("compare", ("compare", GOLDEN, VENUES, "--runs", "1"), "comparison.md"),
        ("sweep", ("sweep", GOLDEN, "--set", "seed=1,2", "--runs", "1"), "comparison.csv"),
    ):
        out = tmp_path / label
        out.mkdir()
        (out / own).write_text("my table")
        (out / "notes.txt").write_text("mine")
        result = invoke(*args, "--out", out)
        refused(result, f"{own} exists and launderflow did not write it", "--overwrite")
        assert sorted(p.name for p in out.iterdir()) == sorted([own, "notes.txt"])  # refused before any work
        assert (out / own).read_text() == "my table"
        result = invoke(*args, "--out", out, "--overwrite")
        assert result.exit_code == 0, result.output
        assert (out / own).read_text() != "my table" and (out / "notes.txt").read_text() == "mine"
        ledger = json.loads((out / LEDGER).read_text())["files"]
        assert own in ledger and "notes.txt" not in ledger
        result = invoke(*args, "--out", out)  # its own files: the same command again needs no --overwrite
        assert result.exit_code == 0, result.output
        (out / own).write_text("edited by hand")  # changed since: not launderflow's any more
        refused(invoke(*args, "--out", out), f"{own} exists and launderflow did not write it")


@pytest.mark.parametrize("command, name", [("report", "report.html"), ("taint", "taint.json"),
                                           ("plot", "figures/final_outcomes.png")])
def test_report_taint_and_plot_keep_the_users_file_unless_overwrite(one_run, tmp_path, command, name):
    run = tmp_path / "run"
    shutil.copytree(one_run, run)
    (run / name).parent.mkdir(exist_ok=True)
    (run / name).write_bytes(b"mine")
    (run / "figures" / "my.png").parent.mkdir(exist_ok=True)
    (run / "figures" / "my.png").write_bytes(b"png")
    refused(invoke(command, run), "launderflow did not write it")
    assert (run / name).read_bytes() == b"mine"
    assert invoke(command, run, "--overwrite").exit_code == 0
    assert (run / name).read_bytes() != b"mine" and (run / "figures" / "my.png").read_bytes() == b"png"
    assert invoke(command, run).exit_code == 0  # now launderflow's own


def test_backtest_and_calibrate_keep_the_users_file_unless_overwrite(tmp_path, no_work):
    ran = no_work
    mine = tmp_path / "bt.json"
    mine.write_text("my verdicts")
    refused(invoke("backtest", RONIN, "--targets", RONIN_TARGETS, "--runs", "1", "--out", mine),
            "bt.json exists and launderflow did not write it")
    cal = tmp_path / "cal"
    cal.mkdir()
    (cal / "candidates.csv").write_text("my candidates")
    refused(invoke("calibrate", RONIN, "--targets", RONIN_TARGETS, "--samples", "2", "--out", cal),
            "candidates.csv exists and launderflow did not write it")
    assert mine.read_text() == "my verdicts" and (cal / "candidates.csv").read_text() == "my candidates"
    assert ran == []  # refused before any work


def test_backtest_writes_its_own_file_and_replaces_it_when_run_again(tmp_path, stream_targets):
    scenario, targets = stream_targets
    out = tmp_path / "bt" / "verdicts.json"
    for _ in range(2):
        result = invoke("backtest", scenario, "--targets", targets, "--runs", "1", "--out", out)
        assert result.exit_code in (0, 1) and "Traceback" not in result.output, result.output
        assert json.loads(out.read_text())["targets"]
    assert sorted(p.name for p in out.parent.iterdir()) == [LEDGER, "verdicts.json"]  # the lock file is gone


@pytest.fixture
def stream_targets(tmp_path) -> tuple[Path, Path]:
    """golden_baseline and one fact about it: a backtest of a few seconds."""
    targets = write(tmp_path, "targets.yaml", "targets:\n  - {name: cash, metric: final_share, state: cashed_out,"
                                              " value: 0.5, tolerance: 0.5, source: a test}\n")
    return GOLDEN, targets


def test_crossval_and_joint_calibration_keep_the_users_files_and_refuse_links(tmp_path, victim, monkeypatch):
    from test_crossval import _write_case

    import launderflow.analysis.joint as joint

    ran = []
    monkeypatch.setattr(joint, "simulate_cube", lambda *a, **k: ran.append(1))
    (tmp_path / "case").mkdir()
    case = _write_case(tmp_path / "case")
    for label, args, name in (("crossval", ("crossval", case), "crossval.json"),
                              ("joint", ("calibrate", "--joint", case), "joint.json")):
        out = tmp_path / label
        out.mkdir()
        (out / name).write_text("mine")
        refused(invoke(*args, "--samples", "2", "--runs", "1", "--out", out), f"{name} exists and launderflow did not write it")
        (out / name).unlink()
        (out / name).symlink_to(victim)
        refused(invoke(*args, "--samples", "2", "--runs", "1", "--out", out, "--overwrite"), f"{name} is a symbolic link")
        (out / name).unlink()
        (out / "cells").symlink_to(tmp_path, target_is_directory=True)
        refused(invoke(*args, "--samples", "2", "--runs", "1", "--out", out), "cells is a symbolic link")
    assert victim.read_text() == "the user's own file\n" and ran == []


# --- 3. --overwrite removes only the parts a run wrote ---------------------------------------------------


def test_overwrite_keeps_a_users_folder_in_parts_and_the_refusal_names_it(tmp_path):
    out = tmp_path / "run"
    (out / "parts" / "mine").mkdir(parents=True)
    (out / "parts" / "mine" / "data.txt").write_text("mine")
    result = invoke("run", GOLDEN, "--runs", "2", "--out", out)
    refused(result, "parts/mine", "holds what no run writes")
    assert "older launderflow" not in result.stderr
    for _ in range(2):
        assert invoke("run", GOLDEN, "--runs", "2", "--out", out, "--overwrite").exit_code == 0
        assert (out / "parts" / "mine" / "data.txt").read_text() == "mine"
        assert (out / "parts" / "0000001" / "part.json").is_file()


# --- 4. the query sandbox: no temp folder, a memory limit --------------------------------------------------


def test_query_cannot_reach_duckdbs_temp_folder_and_has_a_memory_limit(one_run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".tmp").mkdir()
    (tmp_path / ".tmp" / "secret.txt").write_text("s3cr3t")
    for sql in ("COPY (SELECT 1) TO '.tmp/x.csv'", "SELECT * FROM read_text('.tmp/secret.txt')",
                "SELECT * FROM glob('.tmp/*')"):
        result = invoke("query", one_run, sql)
        refused(result, "query failed")
        assert "s3cr3t" not in result.output
    assert sorted(p.name for p in (tmp_path / ".tmp").iterdir()) == ["secret.txt"]
    result = invoke("query", one_run, "SELECT current_setting('memory_limit') AS m, "
                                      "current_setting('temp_directory') AS t", "--memory-limit", "500MB", "--json")
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)[0]
    assert row["t"] == "" and row["m"].startswith("476") and "MiB" in row["m"]  # 500 MB = 476.8 MiB
    refused(invoke("query", one_run, "SELECT 1", "--memory-limit", "lots"), "--memory-limit 'lots'")


# --- 5. backtest --out has a writer ----------------------------------------------------------------------


def test_a_second_backtest_writing_the_same_file_is_refused(holder, tmp_path, monkeypatch):
    import subprocess
    import sys

    out = tmp_path / "bt.json"
    proc = subprocess.Popen([sys.executable, "-c", "import sys\nfrom launderflow.runs.lock import acquire\n"
                             f"acquire(sys.argv[1], 'launderflow backtest other', name={file_lock_name(out.name)!r})\n"
                             "print('ready', flush=True)\nsys.stdin.read()", str(tmp_path)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        refused(invoke("backtest", RONIN, "--targets", RONIN_TARGETS, "--runs", "1", "--out", out),
                f"{out} is being written by another launderflow (pid {proc.pid}", "launderflow backtest other")
        assert not out.exists()
    finally:
        proc.kill()
        proc.wait()


def test_report_plot_and_taint_wait_for_no_writer(one_run, holder, tmp_path):
    """One writer per directory: not while a run (here another process) holds the run directory."""
    run = tmp_path / "run"
    shutil.copytree(one_run, run)
    proc = holder(run)
    before = tree(run)
    for command in ("report", "plot", "taint"):
        refused(invoke(command, run), f"pid {proc.pid}", "launderflow run other.yaml")
    assert tree(run) == before


# --- 6. an empty path ------------------------------------------------------------------------------------


@pytest.mark.parametrize("args", [("run", ""), ("validate", ""), ("compare", ""), ("compare", GOLDEN, ""),
                                  ("sweep", "", "--set", "seed=1,2"),
                                  ("backtest", "", "--targets", RONIN_TARGETS),
                                  ("backtest", RONIN, "--targets", ""),
                                  ("calibrate", RONIN, "--targets", ""), ("calibrate", "", "--targets", RONIN_TARGETS),
                                  ("calibrate", "")])
def test_an_empty_path_is_a_one_line_error(tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    result = invoke(*args)
    refused(result, "'': empty path")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args", [("run", GOLDEN, "--out", ""), ("compare", GOLDEN, "--out", ""),
                                  ("sweep", GOLDEN, "--set", "seed=1,2", "--out", ""),
                                  ("calibrate", RONIN, "--targets", RONIN_TARGETS, "--out", ""),
                                  ("backtest", RONIN, "--targets", RONIN_TARGETS, "--out", ""),
                                  ("plot", ""), ("plot", ".", "--out", ""), ("report", ""), ("taint", ""),
                                  ("query", "", "SELECT 1")])
def test_an_empty_output_or_run_directory_is_refused_not_read_as_the_current_one(tmp_path, monkeypatch, args):
    import launderflow as lf

    monkeypatch.chdir(tmp_path)
    refused(invoke(*args), "empty path (give a path; '.' for the current directory)")
    with pytest.raises(ValueError, match="empty path"):
        lf.compare([GOLDEN], runs=1, out="")
    assert list(tmp_path.iterdir()) == []


# --- 7, 8. a service that is no dask scheduler; a scheduler without workers ----------------------------


def test_a_service_that_is_not_a_dask_scheduler_is_refused_before_dask_reads_it(tmp_path):
    """An HTTP server's answer read as a dask handshake asked for 3 EiB; now: exit 2 and one line."""
    import socket
    import subprocess
    import sys
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)

    def answer():
        while True:
            try:
                conn = server.accept()[0]
            except OSError:
                return
            conn.sendall(b"HTTP/1.1 426 Upgrade Required\r\nContent-Length: 0\r\n\r\n")
            conn.close()

    threading.Thread(target=answer, daemon=True).start()
    address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
    try:
        proc = subprocess.run([sys.executable, "-m", "launderflow.cli", "run", str(GOLDEN), "--scheduler", address,
                               "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    finally:
        server.close()
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == (f"error: {address} is not a dask scheduler (it sent b'HTTP/1.1'; a scheduler starts "
                                   f"with the length of its handshake): check the address and port of --scheduler")


def test_a_scheduler_without_workers_is_waited_for_then_given_up(tmp_path):
    import subprocess
    import sys

    from distributed import LocalCluster

    with LocalCluster(n_workers=0, processes=False, protocol="tcp", host="127.0.0.1", scheduler_port=0,
                      dashboard_address=":0") as cluster:
        proc = subprocess.run([sys.executable, "-m", "launderflow.cli", "run", str(GOLDEN), "--scheduler",
                               cluster.scheduler_address, "--scheduler-timeout", "2", "--out", str(tmp_path / "out")],
                              capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert f"waiting for workers: the dask scheduler at {cluster.scheduler_address} has none yet (up to 2 s" in proc.stderr
    assert f"error: the dask scheduler at {cluster.scheduler_address} has no workers: none joined within 2 s" in proc.stderr
    assert "Traceback" not in proc.stderr


# --- 9, 10. bounded targets; extends to a FIFO -----------------------------------------------------------


@pytest.mark.parametrize("fact, message", [
    ("value: 0.5, tolerance: 1e-300", "tolerance: input should be greater than or equal to 0.000001"),
    ("value: 1e308, tolerance: 1", "value: input should be less than or equal to 1000000000000000"),
    ("value: 3, tolerance: 0.1", "a share's value must be between 0 and 1 (got 3)"),
])
def test_targets_refuse_values_that_make_no_verdict(tmp_path, fact, message):
    targets = write(tmp_path, "t.yaml", "targets:\n  - {name: cash, metric: final_share, state: cashed_out, "
                                        f"{fact}, source: a test}}\n")
    result = invoke("backtest", GOLDEN, "--targets", targets, "--runs", "1")
    refused(result, f"{targets}:2: targets.0", message)


def test_extends_of_a_fifo_names_it_and_the_allowed_folder_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.mkfifo(tmp_path / "parent.yaml")
    child = write(tmp_path, "child.yaml", "extends: parent.yaml\nname: x\n")
    refused(invoke("validate", child), f"{child}:1: extends: parent.yaml is not a regular file (a FIFO)")
    far = write(tmp_path, "far.yaml", "extends: ../../elsewhere.yaml\nname: x\n")
    result = invoke("validate", far)
    refused(result, f"(allowed: files under {tmp_path.resolve()}; --allow-extends-outside")


# --- the property: no command writes outside its own files ------------------------------------------------

#: what each command may write in its directory (relative names)
OWN = {
    "report": {"report.html"},
    "taint": {"taint.json"},
    "plot": {f"figures/{n}.{f}" for n in ("traceability", "traceability_difference", "outcome_areas",
                                          "final_outcomes", "anonymity", "flow", "tradeoff") for f in ("png", "svg")},
}
NAMES = sorted({*OWN["report"], *OWN["taint"], "figures/traceability.png", "figures/final_outcomes.svg",
                "figures", "notes.txt", "timeline.parquet", "summary.json"})
KINDS = ("file", "link-to-victim", "link-to-folder")


def plant(directory: Path, planted: dict[str, str], root: Path) -> None:
    """Put the user's files and links (to ``root/victim.txt``, to ``root/folder``) under the names given."""
    victim = root / "victim.txt"
    victim.write_text("victim")
    folder = root / "folder"
    folder.mkdir()
    (folder / "inside.txt").write_text("inside")
    for name, kind in planted.items():
        path = directory / name
        folders = [directory / Path(*Path(name).parts[:k]) for k in range(1, len(Path(name).parts))]
        if any(f.is_symlink() or (f.exists() and not f.is_dir()) for f in folders) \
                or (path.is_dir() and not path.is_symlink()):
            continue  # (a folder on the way planted earlier as a link or file: nothing can go inside it)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() or path.is_symlink():
            path.unlink()
        if kind == "file":
            path.write_bytes(b"the user's " + name.encode())
        else:
            path.symlink_to(victim if kind == "link-to-victim" else folder)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=st.sampled_from(sorted(OWN)), overwrite=st.booleans(),
       planted=st.dictionaries(st.sampled_from(NAMES), st.sampled_from(KINDS), max_size=4))
def test_no_command_writes_outside_its_own_files(one_run, tmp_path_factory, command, overwrite, planted):
    """Whatever the run directory holds (the user's files, links to files and folders elsewhere, under
    the names the command writes or others), the command changes nothing but its own files in it."""
    root = tmp_path_factory.mktemp("prop")
    run = root / "run"
    shutil.copytree(one_run, run)
    plant(run, planted, root)
    before = tree(root)
    result = invoke(command, run, *(["--overwrite"] if overwrite else []))
    assert result.exit_code in (0, 2), result.output
    assert "Traceback" not in result.output
    after = tree(root)
    outside = {k for k in before | after if not k.startswith("run/")}
    assert {k: before.get(k) for k in outside} == {k: after.get(k) for k in outside}  # nothing outside the run
    own = OWN[command] | {LEDGER}
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    for key in changed:
        name = key.removeprefix("run/")
        assert name in own or name == "figures", (command, key)  # only its own files (and their folder)
        assert not isinstance(before.get(key), tuple), (command, key)  # never a link replaced or followed
        was_users = key in before and name != LEDGER
        assert not was_users or overwrite, (command, key)  # a user's file only with --overwrite
    if result.exit_code == 2:
        assert changed == set()  # a refusal writes nothing


#: the commands that make a directory (or a file) of their own: args (OUT is replaced), whether a
#: name (relative to OUT's folder) is theirs, and names to plant there
def _runs_own(name: str) -> bool:
    """A file a run writes in its directory (the store's files and its numbered parts)."""
    return name in ("manifest.json", "failures.json", "summary.json", "timeline.parquet", "ledger.parquet",
                    "anonymity.parquet", "scenario.yaml") or (name.startswith("parts/") and name.split("/")[1].isdigit())


MAKERS = {
    "run": (("run", GOLDEN, "--runs", "1", "--out", "OUT"), _runs_own,
            ("summary.json", "report.html", "notes.txt", "parts/mine/data.txt", "parts", "timeline.parquet")),
    "compare": (("compare", GOLDEN, "--runs", "1", "--out", "OUT"),
                lambda n: n.startswith("comparison.") or (n.startswith("golden_baseline/")
                                                          and _runs_own(n.removeprefix("golden_baseline/"))),
                ("comparison.md", "comparison.csv", "notes.txt", "golden_baseline", "golden_baseline/notes.txt")),
    "backtest": (("backtest", GOLDEN, "--targets", "TARGETS", "--runs", "1", "--out", "OUT/bt.json"),
                 lambda n: n == "bt.json",
                 ("bt.json", "notes.txt")),
}


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=st.sampled_from(sorted(MAKERS)), overwrite=st.booleans(), data=st.data())
def test_no_command_that_makes_a_directory_writes_outside_its_own_files(tmp_path_factory, command, overwrite, data):
    """run, compare and backtest --out into a directory holding the user's files and links: only their own
    files change (a user's file of the same name only with --overwrite), nothing outside it ever does."""
    args, own, names = MAKERS[command]
    planted = data.draw(st.dictionaries(st.sampled_from(names), st.sampled_from(KINDS), max_size=3), label="planted")
    root = tmp_path_factory.mktemp("make")
    out = root / "out"
    out.mkdir()
    targets = write(root, "targets.yaml", "targets:\n  - {name: cash, metric: final_share, state: cashed_out,"
                                          " value: 0.5, tolerance: 0.5, source: a test}\n")
    plant(out, planted, root)
    before = tree(root)
    argv = [str(a).replace("OUT", str(out)).replace("TARGETS", str(targets)) for a in args]
    result = invoke(*argv, *(["--overwrite"] if overwrite else []))
    assert result.exit_code in (0, 1, 2), result.output  # (1: backtest's verdict)
    assert "Traceback" not in result.output
    after = tree(root)
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    for key in changed:
        assert key.startswith("out/"), (command, key)  # nothing outside the directory
        name = key.removeprefix("out/")
        assert own(name) or name == LEDGER, (command, key)  # only its own files
        assert not isinstance(before.get(key), tuple), (command, key)  # never a link replaced or followed
        assert key not in before or name == LEDGER or overwrite or not key.endswith(tuple(planted)), (command, key)
    if result.exit_code == 2:
        assert changed == set()  # a refusal writes nothing
