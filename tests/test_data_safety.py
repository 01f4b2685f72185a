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


# --- 2. a run never deletes the user's own files -------------------------------------------------

GOLDEN = REPO / "tests" / "golden" / "golden_baseline.yaml"


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def users_files(out: Path) -> dict[str, bytes]:
    out.mkdir(parents=True, exist_ok=True)
    files = {"report.html": b"<p>my own report</p>", "taint.json": b'{"mine": 1}', "notes.txt": b"do not lose"}
    for name, data in files.items():
        (out / name).write_bytes(data)
    return files


def test_a_plain_run_refuses_a_directory_that_holds_the_users_files(tmp_path):
    out = tmp_path / "mine"
    files = users_files(out)
    result = invoke("run", str(GOLDEN), "--runs", "2", "--out", str(out))
    assert result.exit_code == 2, result.output
    assert "not empty" in result.stderr and "notes.txt" in result.stderr and "Traceback" not in result.output
    assert tree(out) == files  # nothing written, nothing removed


def test_overwrite_removes_only_what_a_run_writes(tmp_path):
    out = tmp_path / "mine"
    files = users_files(out)
    run_ok(str(GOLDEN), "--runs", "2", "--out", str(out), "--overwrite")  # beside the user's files
    assert (out / "summary.json").is_file() and (out / "parts" / "0000001").is_dir()
    for again in (("--overwrite", "--seed", "9"), ("--seed", "9"), ("--seed", "9", "--resume")):
        run_ok(str(GOLDEN), "--runs", "2", "--out", str(out), *again)
        assert {name: (out / name).read_bytes() for name in files} == files, again
    (out / "figures").mkdir()
    (out / "figures" / "mine.png").write_bytes(b"png")
    run_ok(str(GOLDEN), "--runs", "3", "--out", str(out), "--overwrite")
    assert {name: (out / name).read_bytes() for name in files} == files
    assert (out / "figures" / "mine.png").read_bytes() == b"png"
    assert json.loads((out / "manifest.json").read_text())["runs"] == 3


def test_derived_files_of_a_run_are_still_dropped_when_the_run_changes(tmp_path):
    """report.html made from a run goes stale when the run is redone: launderflow wrote it (its ledger
    says so), so it goes; a taint.json the user put there after the run is theirs, and stays (issue 25)."""
    out = tmp_path / "run"
    run_ok(str(GOLDEN), "--runs", "2", "--out", str(out))
    assert invoke("report", str(out)).exit_code == 0
    (out / "taint.json").write_text('{"mine": 1}')
    run_ok(str(GOLDEN), "--runs", "2", "--out", str(out), "--seed", "4", "--overwrite")
    assert not (out / "report.html").exists()
    assert (out / "taint.json").read_text() == '{"mine": 1}'
    assert invoke("report", str(out)).exit_code == 0  # made again from the new run
    (out / "report.html").write_text("edited by hand")  # changed since: the user's now
    run_ok(str(GOLDEN), "--runs", "2", "--out", str(out), "--seed", "5", "--overwrite")
    assert (out / "report.html").read_text() == "edited by hand"


# --- 3. one writer per output directory -----------------------------------------------------------





def test_a_second_writer_is_refused_naming_the_holder(holder, tmp_path):
    out = tmp_path / "run"
    proc = holder(out)
    commands = {
        "run": ("run", str(GOLDEN), "--runs", "2", "--out", str(out)),
        "resume": ("run", str(GOLDEN), "--runs", "2", "--out", str(out), "--resume"),
        "overwrite": ("run", str(GOLDEN), "--runs", "2", "--out", str(out), "--overwrite"),
        "compare": ("compare", str(GOLDEN), str(REPO / "tests" / "golden" / "golden_venues.yaml"), "--runs", "2",
                    "--out", str(out)),
        "sweep": ("sweep", str(GOLDEN), "--set", "seed=1,2", "--runs", "2", "--out", str(out)),
        "calibrate": ("calibrate", str(REPO / "scenarios" / "ronin_2022.yaml"), "--targets",
                      str(REPO / "scenarios" / "targets" / "ronin_2022.yaml"), "--samples", "2", "--runs", "1",
                      "--out", str(out)),
    }
    for name, args in commands.items():
        result = invoke(*args)
        assert result.exit_code == 2, (name, result.output)
        assert f"pid {proc.pid}" in result.stderr and "launderflow run other.yaml" in result.stderr, name
        assert "Traceback" not in result.output
        assert sorted(p.name for p in out.iterdir()) == [".launderflow.lock"], name  # nothing written

    proc.kill()  # a dead holder's lock is no lock
    proc.wait()
    run_ok(str(GOLDEN), "--runs", "2", "--out", str(out))
    assert not (out / ".launderflow.lock").exists()  # released when the command ended


def test_compare_holds_every_run_directory_it_writes(holder, tmp_path):
    out = tmp_path / "cmp"
    holder(out / "golden_venues")
    result = invoke("compare", str(GOLDEN), str(REPO / "tests" / "golden" / "golden_venues.yaml"),
                    "--runs", "2", "--out", str(out))
    assert result.exit_code == 2 and "golden_venues" in result.stderr
    assert not (out / "golden_baseline" / "manifest.json").exists()  # refused before any work


# --- 4. verified parts ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "run"
    run_ok(str(GOLDEN), "--runs", "5", "--keep-ledgers", "--out", str(out))
    return out


def test_resume_verifies_every_part_and_reruns_the_damaged_ones(reference, tmp_path):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(reference, out)
    parts = out / "parts"
    npz = parts / "0000001" / "replication.npz"
    npz.write_bytes(npz.read_bytes()[: len(npz.read_bytes()) // 2])           # truncated
    (parts / "0000002" / "summary.parquet").write_bytes(b"")                    # emptied
    timeline = parts / "0000003" / "timeline.parquet"
    data = bytearray(timeline.read_bytes())
    data[len(data) // 2] ^= 0x01                                                 # one bit flipped
    timeline.write_bytes(bytes(data))
    shutil.rmtree(parts / "0000004")
    shutil.copytree(parts / "0000000", parts / "0000004")                       # another replication's part
    final = out / "timeline.parquet"
    final.write_bytes(final.read_bytes()[:100])                                  # truncated assembled file

    result = run_ok(str(GOLDEN), "--runs", "5", "--keep-ledgers", "--out", str(out), "--resume")
    for index, why in ((1, "replication.npz does not match"), (2, "summary.parquet does not match"),
                       (3, "timeline.parquet does not match"), (4, "it holds replication 0, not 4")):
        assert f"parts/{index:07d}: {why}" in result.stderr, index
        assert f"replication {index} will be run again" in result.stderr
    assert "replication 0 " not in result.stderr
    assert tree(out) == tree(reference)


def test_resume_rebuilds_damaged_assembled_files(reference, tmp_path):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(reference, out)
    (out / "summary.json").write_text('{"runs": 5, "states": {}}')
    result = run_ok(str(GOLDEN), "--runs", "5", "--keep-ledgers", "--out", str(out), "--resume")
    assert "summary.json does not match its checksum" in result.stderr
    assert tree(out) == tree(reference)


@pytest.mark.parametrize("name, content", [
    ("manifest.json", ""), ("manifest.json", "{not json"), ("manifest.json", "[]"),
    ("manifest.json", '{"launderflow_store": 1}'), ("manifest.json", '{"launderflow_store": "1"}'),
    ("failures.json", "[1, 2]"), ("failures.json", '{"index": 1}'), ("failures.json", "\x00\x01"),
])
def test_a_damaged_manifest_or_failures_file_is_a_clear_error(reference, tmp_path, name, content):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(reference, out)
    (out / name).write_text(content)
    for extra in (("--resume",), ()):
        result = invoke("run", str(GOLDEN), "--runs", "5", "--keep-ledgers", "--out", str(out), *extra)
        assert result.exit_code == 2, result.output
        assert f"{name}: damaged" in result.stderr or "store format" in result.stderr
        assert "Traceback" not in result.output and "Aborted" not in result.output
    assert (out / name).read_text() == content  # nothing of the stored run was touched


def test_a_damaged_part_found_while_assembling_is_a_clear_error(reference, tmp_path, monkeypatch):
    from launderflow.runs.experiment import assemble
    from launderflow.runs.store import RunStore, StoreError
    from launderflow.scenario.loader import load_scenario

    import shutil

    out = tmp_path / "run"
    shutil.copytree(reference, out)
    scenario = load_scenario(GOLDEN)
    store = RunStore.open(out, scenario, scenario.seed, 5, keep_ledgers=True, resume=True)
    (out / "parts" / "0000002" / "replication.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(StoreError, match="0000002/replication.npz: damaged"):
        assemble(scenario, store)


# --- 5. no symbolic links in a run directory ---------------------------------------------------------


def test_symlinks_inside_a_run_directory_are_refused(reference, tmp_path):
    import shutil

    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(reference / "parts", elsewhere)
    before = tree(elsewhere)
    out = tmp_path / "run"
    shutil.copytree(reference, out, ignore=shutil.ignore_patterns("parts"))
    (out / "parts").symlink_to(elsewhere, target_is_directory=True)
    for extra in (("--overwrite", "--seed", "9"), ("--resume",), ()):
        result = invoke("run", str(GOLDEN), "--runs", "5", "--keep-ledgers", "--out", str(out), *extra)
        assert result.exit_code == 2, (extra, result.output)
        assert "parts is a symbolic link" in result.stderr
    assert tree(elsewhere) == before  # nothing read into this run, nothing written or removed there
    assert (out / "parts").is_symlink()

    out2 = tmp_path / "run2"
    shutil.copytree(reference, out2)
    (out2 / "parts" / "0000001" / "timeline.parquet").unlink()
    (out2 / "parts" / "0000001" / "timeline.parquet").symlink_to(elsewhere / "0000001" / "timeline.parquet")
    result = invoke("run", str(GOLDEN), "--runs", "5", "--keep-ledgers", "--out", str(out2), "--resume")
    assert result.exit_code == 2 and "timeline.parquet is a symbolic link" in result.stderr


# --- 7. an output directory that cannot be written -------------------------------------------------


def test_an_unwritable_out_is_a_clear_error_before_any_work(tmp_path, monkeypatch):
    import launderflow.analysis.calibrate as calibration
    import launderflow.runs.replications as replications

    ran = []
    monkeypatch.setattr(replications, "simulate", lambda *a, **k: ran.append(1))
    monkeypatch.setattr(calibration, "calibrate", lambda *a, **k: ran.append(1))
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    for out, why in (("/proc/launderflow-test", "cannot write to /proc/launderflow-test"),
                     ("/dev/null", "it exists and is not a directory"),
                     (str(a_file / "sub"), "a part of the path is a file")):
        for args in (("run", str(GOLDEN), "--runs", "2"),
                     ("compare", str(GOLDEN), "--runs", "2"),
                     ("sweep", str(GOLDEN), "--set", "seed=1,2", "--runs", "2"),
                     ("calibrate", str(REPO / "scenarios" / "ronin_2022.yaml"), "--targets",
                      str(REPO / "scenarios" / "targets" / "ronin_2022.yaml"))):
            result = invoke(*args, "--out", out)
            assert result.exit_code == 2, (args[0], out, result.output)
            assert why in result.stderr and "Traceback" not in result.output, (args[0], out, result.stderr)
    assert ran == []
    assert a_file.read_text() == "x"


# --- 6. validate refuses what the model cannot compute -----------------------------------------------

BOUNDED = """\
name: bounded
seed: 1
clock: {horizon: 2d, resolution: 10min, timeline_step: 6h}
chains:
  eth: {confirmation: 1min, fee_usd: 1}
assets:
  ETH: {chain: eth, price_usd: PRICE}
thefts:
  - name: hack
    victim: v
    stolen: [{asset: ETH, amount: AMOUNT}]
    repeat: {count: COUNT, every: 1h}
playbook:
  - {hop: split, wallets: 1, concentration: CONCENTRATION}
  - {hop: transfer, delay: 1h}
"""


def bounded(tmp_path: Path, price="1000", amount="10", count="1", concentration="5") -> Path:
    text = (BOUNDED.replace("PRICE", price).replace("AMOUNT", amount).replace("COUNT", count)
            .replace("CONCENTRATION", concentration))
    return write(tmp_path, "bounded.yaml", text)


@pytest.mark.parametrize("values, line, message", [
    ({"amount": "1.0e308"}, 11, "thefts.0.stolen.0.amount: input should be less than or equal to 1000000000000000"),
    ({"price": "1.0e308"}, 7, "assets.ETH.price_usd: input should be less than or equal to 1000000000"),
    ({"concentration": "1.0e-300"}, 14, "playbook.0.concentration: input should be greater than or equal to 0.05"),
    ({"price": "1.0e9", "amount": "1.0e6", "count": "2"}, 11, "thefts.0.stolen: the thefts steal $2e+15 in total"),
    ({"price": "1.0e-9", "amount": "1.0e-9"}, 11, "thefts.0.stolen: the thefts steal $1e-18 in total"),
])
def test_validate_refuses_values_the_model_cannot_compute(tmp_path, values, line, message):
    path = bounded(tmp_path, **values)
    result = invoke("validate", str(path))
    assert result.exit_code == 2, result.output
    assert f"{path}:{line}: {message}" in result.stderr
    result = invoke("run", str(path), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2 and not (tmp_path / "out").exists()  # refused before anything ran


def test_values_at_the_bounds_run_to_finite_results(tmp_path):
    for values in ({"price": "1.0e9", "amount": "1.0e6"}, {"concentration": "0.05"}, {"price": "1.0e-6", "amount": "1"},
                   {"concentration": "1.0e12"}):
        path = bounded(tmp_path, **values)
        result = invoke("run", str(path), "--runs", "2", "--json", "--out", str(tmp_path / "out"), "--overwrite")
        assert result.exit_code == 0, (values, result.output)
        summary = json.loads(result.stdout)
        assert all(v["median_share"] is not None for v in summary["states"].values()), values
        for record in summary["replications"]:
            assert sum(record["final_usd"][s] for s in LOCATIONS) == pytest.approx(record["stolen_usd"], rel=1e-9)


# --- 8. scenario files: size and kind checked before reading; bounded work under the cap ----------


def test_a_scenario_over_the_size_cap_is_refused_by_its_size(tmp_path):
    from launderflow.scenario.loader import MAX_FILE_BYTES

    path = tmp_path / "huge.yaml"
    with open(path, "wb") as fh:  # sparse: the size is known without anything being written or read
        fh.truncate(MAX_FILE_BYTES + 1)
    result = invoke("validate", str(path))
    assert result.exit_code == 2
    assert f"{path}: file is larger than {MAX_FILE_BYTES} bytes ({MAX_FILE_BYTES + 1:,} bytes)" in result.stderr


def test_devices_and_fifos_are_refused_without_reading_them(tmp_path):
    import os
    import threading

    fifo = tmp_path / "scenario.yaml"
    os.mkfifo(fifo)

    def feed():  # a valid scenario through the pipe: a loader that reads FIFOs would accept it
        try:
            with open(fifo, "w") as fh:
                fh.write(GOLDEN.read_text())
        except BrokenPipeError:
            pass

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    result = invoke("validate", str(fifo))
    assert result.exit_code == 2 and f"{fifo}: is not a regular file (a FIFO)" in result.stderr
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # let the writer go, whatever happened
    writer.join(5)
    os.close(reader)
    assert not writer.is_alive()

    result = invoke("validate", "/dev/zero", "/dev/null")
    assert result.exit_code == 2
    assert "/dev/zero: is not a regular file (a character device)" in result.stderr
    assert "/dev/null: is not a regular file (a character device)" in result.stderr


def test_a_huge_list_under_the_cap_stops_at_the_node_limit(tmp_path, monkeypatch):
    import yaml

    import launderflow.scenario.loader as loader

    monkeypatch.setattr(loader, "MAX_NODES", 1000)
    composed = []
    real = yaml.composer.Composer.compose_node

    def counting(self, parent, index):
        composed.append(1)
        return real(self, parent, index)

    monkeypatch.setattr(yaml.composer.Composer, "compose_node", counting)
    text = GOLDEN.read_text() + "sources: [" + ", ".join(["a"] * 5000) + "]\n"
    path = write(tmp_path, "long.yaml", text)
    result = invoke("validate", str(path))
    assert result.exit_code == 2
    assert f"{path}:{text.count(chr(10))}: the file has more than 1,000 YAML values" in result.stderr
    assert len(composed) <= 1001  # the parse stopped at the limit instead of building 5,000 more nodes


# --- 9. extends stays in the scenario's tree and never echoes other files ---------------------------

SECRET = "root:$6$saltsalt$hash:19000:0:99999:7:::\n"


def test_extends_outside_the_scenarios_tree_is_refused_without_reading_it(tmp_path):
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "shadow").write_text(SECRET)
    (secrets / "base.yaml").write_text(GOLDEN.read_text())
    cases = tmp_path / "cases"
    cases.mkdir()
    for target in (secrets / "shadow", "../secrets/shadow", "../secrets/base.yaml"):
        child = write(cases, "child.yaml", f"name: child\nextends: {target}\n")
        result = invoke("validate", str(child))
        assert result.exit_code == 2, result.output
        assert f"{child}:2: extends:" in result.stderr and "is outside the scenario's directory" in result.stderr
        assert "19000" not in result.output and "saltsalt" not in result.output

    # with --allow-extends-outside a scenario file elsewhere is fine; any other file is still refused unread
    child = write(cases, "child.yaml", "name: child\nextends: ../secrets/base.yaml\n")
    assert invoke("validate", str(child), "--allow-extends-outside").exit_code == 0
    child = write(cases, "child.yaml", "name: child\nextends: ../secrets/shadow\n")
    result = invoke("validate", str(child), "--allow-extends-outside")
    assert result.exit_code == 2 and "is not a scenario file (allowed: a .yaml or .yml file)" in result.stderr
    assert "19000" not in result.output and "saltsalt" not in result.output


def test_extends_of_a_yaml_file_that_is_no_scenario_says_nothing_of_its_content(tmp_path):
    (tmp_path / "compose.yaml").write_text("services:\n  db:\n    password: hunter2\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "base.yaml").write_text(GOLDEN.read_text())
    child = write(tmp_path, "child.yaml", "name: child\nextends: compose.yaml\n")
    result = invoke("validate", str(child))
    assert result.exit_code == 2
    assert f"{child}:2: extends: compose.yaml is not a scenario file" in result.stderr
    assert "hunter2" not in result.output and "services" not in result.output and "password" not in result.output
    child = write(tmp_path, "child.yaml", f"name: child\nextends: {tmp_path / 'sub' / 'base.yaml'}\n")
    assert invoke("validate", str(child)).exit_code == 0  # under the scenario's directory: fine


def test_symlink_loops_are_reported_cleanly(tmp_path):
    loop = tmp_path / "loop.yaml"
    loop.symlink_to(loop)
    child = write(tmp_path, "child.yaml", "name: child\nextends: loop.yaml\n")
    result = invoke("validate", str(child), str(loop))
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert f"{child}:2: extends: loop.yaml: a loop of symbolic links" in result.stderr
    assert f"{loop}: cannot read: symbolic links loop" in result.stderr
    assert "Traceback" not in result.output


# --- 10. --scheduler: malformed addresses at once, a bounded wait for a silent one ---------------------


@pytest.mark.parametrize("address", ["foo://10.0.0.5:8786", "tcp://nohost", "tcp://127.0.0.1:notaport",
                                     "tcp://127.0.0.1:8786/path", "tcp://:8786", "tcp://h:99999"])
def test_a_malformed_scheduler_address_is_refused_at_once(tmp_path, address):
    for args in (("run", str(GOLDEN)), ("compare", str(GOLDEN)), ("sweep", str(GOLDEN), "--set", "seed=1,2"),
                 ("calibrate", str(REPO / "scenarios" / "ronin_2022.yaml"), "--targets",
                  str(REPO / "scenarios" / "targets" / "ronin_2022.yaml"))):
        result = invoke(*args, "--scheduler", address, "--out", str(tmp_path / "out"))
        assert result.exit_code == 2, (args[0], result.output)
        assert "Invalid value for '--scheduler'" in result.stderr and "allowed: SCHEME://HOST:PORT" in result.stderr
        assert not (tmp_path / "out").exists()  # refused before anything was read or written


def test_a_scheduler_that_never_answers_is_given_up_cleanly(tmp_path):
    """A port that accepts and never answers: a bounded wait, one line, exit 1, no stray exception output."""
    import socket
    import subprocess
    import sys
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted = []

    def accept():
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
    try:
        proc = subprocess.run([sys.executable, "-m", "launderflow.cli", "run", str(GOLDEN), "--scheduler", address,
                               "--scheduler-timeout", "0.5", "--out", str(tmp_path / "out")],
                              capture_output=True, text=True, timeout=120)
    finally:
        server.close()
        for conn in accepted:
            conn.close()
    assert accepted, "the command never connected"
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip() == f"error: the dask scheduler at {address} did not answer within 0.5 s " \
                                  f"(is it a dask scheduler? --scheduler-timeout to wait longer)"
    assert not list((tmp_path / "out").glob("parts/*"))


# --- 11. workers die with their parent ---------------------------------------------------------------


def _children(pid: int) -> set[int]:
    """Live (not zombie) processes whose parent is ``pid``, from /proc."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_killing_a_jobs_2_parent_takes_its_workers_and_resource_tracker_with_it(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-m", "launderflow.cli", "run", str(GOLDEN), "--runs", "5000",
                             "--jobs", "2", "--out", str(tmp_path / "out")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until both workers have stored a replication
            kids = _children(proc.pid)
            if len(kids) >= 3 and len(list((tmp_path / "out" / "parts").glob("0*"))) >= 4:
                break
            time.sleep(0.1)
        kids = _children(proc.pid)
        cmdlines = {pid: Path(f"/proc/{pid}/cmdline").read_bytes() for pid in kids}
        workers = [pid for pid, cmd in cmdlines.items() if b"spawn_main" in cmd]
        trackers = [pid for pid, cmd in cmdlines.items() if b"resource_tracker" in cmd]
        assert len(workers) == 2 and len(trackers) == 1, cmdlines
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(_alive(pid) for pid in kids):
            time.sleep(0.1)
        assert not [pid for pid in kids if _alive(pid)], "orphans still running"
    finally:
        proc.kill()
        for pid in _children(proc.pid) | set(locals().get("kids", ())):
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


# --- 12. user text is printed as it is: no emoji codes, no markup ------------------------------------


def test_user_text_is_printed_without_emoji_or_markup(tmp_path):
    text = GOLDEN.read_text().replace("haircut: 0.04", "haircut: ':fire:'")
    lines = text.splitlines()
    bad = next(i for i, line in enumerate(lines) if "haircut" in line)
    lines[bad:bad] = ["# padding"] * (99 - bad)  # the bad value now sits on line 100
    path = write(tmp_path, "line100.yaml", "\n".join(lines) + "\n")
    result = invoke("validate", str(path))
    assert result.exit_code == 2
    assert f"{path}:100: venues.otc_desk.haircut:" in result.stderr and "(got ':fire:')" in result.stderr
    assert "\N{HUNDRED POINTS SYMBOL}" not in result.output and "\N{FIRE}" not in result.output

    named = write(tmp_path, ":thumbs_up: [bold]x.yaml", GOLDEN.read_text())
    result = invoke("validate", str(named))
    assert result.exit_code == 0 and f"{named}: ok" in result.stdout

    out = tmp_path / "run"
    run_ok(str(GOLDEN), "--runs", "1", "--out", str(out))
    result = invoke("query", str(out), "SELECT ':fire: [red]y[/red]' AS \"[bold]h :100:\"")
    assert result.exit_code == 0, result.output
    assert "[bold]h :100:" in result.stdout and ":fire: [red]y[/red]" in result.stdout
    assert "\N{FIRE}" not in result.output and "\N{HUNDRED POINTS SYMBOL}" not in result.output


# --- 13. query is safe by default ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("q") / "run"
    run_ok(str(GOLDEN), "--runs", "2", "--keep-ledgers", "--out", str(out))
    return out


def test_query_sql_cannot_reach_files_network_or_extensions(small_run, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("s3cr3t-token\n")
    target = tmp_path / "copied.csv"
    for sql in (f"SELECT * FROM read_text('{secret}')",
                f"SELECT * FROM read_csv('{secret}')",
                f"SELECT * FROM read_parquet('{small_run}/parts/*/timeline.parquet')",  # not even the run's own files
                f"COPY (SELECT * FROM summary) TO '{target}'",
                f"ATTACH '{tmp_path / 'x.duckdb'}' AS x",
                "INSTALL httpfs", "LOAD httpfs",
                "SELECT * FROM read_csv('https://example.invalid/x.csv')",
                "SET enable_external_access = true",
                "SELECT * FROM small_run"):  # a Python variable of the caller
        result = invoke("query", str(small_run), sql)
        assert result.exit_code == 2, (sql, result.output)
        assert "query failed" in result.stderr and "Traceback" not in result.output, sql
        assert "s3cr3t" not in result.output, sql
    assert not target.exists() and not (tmp_path / "x.duckdb").exists()

    # the run's own views still answer
    result = invoke("query", str(small_run), "SELECT count(DISTINCT replication) AS n FROM ledger", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout) == [{"n": 2}]

    # --unsafe: plain DuckDB, for analysts who want file access
    result = invoke("query", str(small_run), f"SELECT content FROM read_text('{secret}')", "--unsafe", "--csv")
    assert result.exit_code == 0 and "s3cr3t-token" in result.stdout


def test_query_stops_at_its_timeout(small_run):
    import subprocess
    import sys

    sql = "SELECT sum(hash(i)) FROM range(1000000000000::BIGINT) t(i)"  # hours of work
    proc = subprocess.run([sys.executable, "-m", "launderflow.cli", "query", str(small_run), sql, "--timeout", "0.3"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "query failed: the query was stopped after 0.3 s (--timeout to allow longer)" in proc.stderr


def test_query_over_a_damaged_summary_is_a_clear_error(small_run, tmp_path):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(small_run, out)
    for content in ("{not json", "[]", '{"stolen_usd": 1}', '{"stolen_usd": 1, "replications": [{"index": 0}]}'):
        (out / "summary.json").write_text(content)
        result = invoke("query", str(out), "SELECT * FROM summary")
        assert result.exit_code == 2, (content, result.output)
        assert "summary.json: damaged" in result.stderr and "Traceback" not in result.output
