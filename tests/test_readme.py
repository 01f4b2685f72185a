"""README's and the docs' examples work as written and say what the code does; the CLI reference is current."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from conftest import REPO
from launderflow.cli import main

README = REPO / "README.md"
QUERY_DOC = REPO / "docs" / "how-to" / "query.md"
CLI_DOC = REPO / "docs" / "reference" / "cli.md"

# Two cash-out venues (an OTC desk and an exchange, both with haircuts), so that each kind of
# cash-out row is counted, and a short horizon so that not everything has left by the end.
TWO_DESKS = """\
name: two_desks
seed: 5
clock: {horizon: 6d, resolution: 10min, timeline_step: 6h}
chains:
  eth: {confirmation: 3min, fee_usd: 5}
assets:
  ETH: {chain: eth, price_usd: 1000}
venues:
  desk: {kind: otc, jurisdiction: offshore, delay: {dist: exponential, mean: 2d}, haircut: 0.05}
  bourse: {kind: exchange, jurisdiction: offshore, kyc: 0, freezes: false, delay: 1d, fee: 0.002, haircut: 0.01}
thefts:
  - {name: hack, victim: v, stolen: [{asset: ETH, amount: 1000}], discovered_after: 6h}
playbook:
  - {hop: split, wallets: 20, delay: {dist: exponential, mean: 1d}}
  - hop: branch
    branches:
      - {share: 0.7, playbook: [{hop: cash_out, venue: desk}]}
      - {share: 0.3, playbook: [{hop: cash_out, venue: bourse}]}
"""


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def readme_query(needle: str) -> str:
    """The SQL of the query how-to's ``launderflow query out/baseline "..."`` example that contains ``needle``."""
    for sql in re.findall(r'launderflow query out/baseline "([^"]*)"', QUERY_DOC.read_text(encoding="utf-8")):
        if needle in sql:
            return " ".join(sql.split())
    raise AssertionError(f"docs/how-to/query.md has no query example with {needle!r}")


@pytest.fixture(scope="module")
def two_desks(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("desks")
    (root / "two_desks.yaml").write_text(TWO_DESKS, encoding="utf-8")
    result = invoke("run", str(root / "two_desks.yaml"), "--runs", "3", "--keep-ledgers", "--out", str(root / "run"))
    assert result.exit_code == 0, result.output
    return root / "run"


def test_the_ledger_query_adds_up_to_the_cashed_out_value(two_desks):
    result = invoke("query", str(two_desks), readme_query("FROM ledger"), "--json")
    assert result.exit_code == 0, result.output
    per_venue = {row["venue"]: row["usd_per_run"] for row in json.loads(result.stdout)}
    assert set(per_venue) == {"desk", "bourse"}
    summary = json.loads((two_desks / "summary.json").read_text(encoding="utf-8"))
    cashed_out = [rep["final_usd"]["cashed_out"] for rep in summary["replications"]]
    assert 0 < sum(per_venue.values()) == pytest.approx(sum(cashed_out) / len(cashed_out), rel=1e-9)


def test_query_of_a_run_without_a_ledger_says_how_to_get_one(tmp_path):
    (tmp_path / "two_desks.yaml").write_text(TWO_DESKS, encoding="utf-8")
    assert invoke("run", str(tmp_path / "two_desks.yaml"), "--runs", "2", "--out", str(tmp_path / "run")).exit_code == 0
    result = invoke("query", str(tmp_path / "run"), readme_query("FROM ledger"))
    assert result.exit_code == 2
    assert result.output.strip() == (f"{tmp_path / 'run'}: the run has no ledger (only --runs 1 or --keep-ledgers "
                                     "keep one): run it again with --keep-ledgers --overwrite")
    # and the advice works: the same out directory, now with ledgers
    again = invoke("run", str(tmp_path / "two_desks.yaml"), "--runs", "2", "--out", str(tmp_path / "run"),
                   "--keep-ledgers", "--overwrite")
    assert again.exit_code == 0, again.output
    assert invoke("query", str(tmp_path / "run"), readme_query("FROM ledger")).exit_code == 0
    # a view the scenario cannot have (no pool mixer) is explained too; other errors stay DuckDB's
    result = invoke("query", str(tmp_path / "run"), "SELECT * FROM anonymity")
    assert result.exit_code == 2 and "no anonymity sets: its scenario has no pool mixer" in result.output
    result = invoke("query", str(tmp_path / "run"), "SELECT * FROM nowhere")
    assert result.exit_code == 2 and "query failed: Catalog Error" in result.output


# --- the command-line reference and the bare commands ------------------------------------------------

REGENERATE = "run `python sim/commands.py` and commit docs/reference/cli.md"


def commands_py(*args: str) -> subprocess.CompletedProcess[str]:
    """sim/commands.py in a fresh interpreter: click caches each command's help option from the first
    context it is given, so in this process the tests' own contexts could change what --help shows."""
    return subprocess.run([sys.executable, str(REPO / "sim" / "commands.py"), *args], capture_output=True, text=True)


def test_the_cli_reference_is_up_to_date():
    result = commands_py("--check")
    assert result.returncode == 0, f"docs/reference/cli.md is stale: {REGENERATE}\n{result.stderr}"


def test_every_option_of_every_command_is_in_its_row():
    """Independently of the generator: each command's row names each of its options and arguments."""
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `launderflow (\w+)[^`]*` \|.*$",
                                                         CLI_DOC.read_text(encoding="utf-8"), flags=re.M)}
    assert set(rows) == set(main.commands)
    for name, command in main.commands.items():
        ctx = click.Context(command, info_name=name, parent=click.Context(main, info_name="launderflow"))
        for param in command.get_params(ctx):
            if isinstance(param, click.Argument):
                assert param.make_metavar(ctx) in rows[name], (name, param.name)
            elif "--help" not in param.opts:
                assert max(param.opts, key=len) in rows[name], (name, param.opts)


def test_every_command_has_its_help_on_the_page():
    text = CLI_DOC.read_text(encoding="utf-8")
    for name, command in main.commands.items():
        assert f"## launderflow {name}\n" in text, name
        usage = CliRunner().invoke(main, [name, "--help"], prog_name="launderflow").output.splitlines()[0]
        assert usage.startswith("Usage: launderflow ") and f"```text\n{usage}\n" in text, name  # as a terminal shows it


def test_the_commands_check_mode(tmp_path):
    page = tmp_path / "cli.md"
    stale = CLI_DOC.read_text(encoding="utf-8").replace("[--keep-ledgers] ", "")
    page.write_text(stale, encoding="utf-8")
    result = commands_py("--output", str(page), "--check")
    assert result.returncode == 1 and "stale" in result.stderr
    assert page.read_text(encoding="utf-8") == stale  # --check writes nothing
    assert commands_py("--output", str(page)).returncode == 0
    assert page.read_text(encoding="utf-8") == CLI_DOC.read_text(encoding="utf-8")
    assert commands_py("--output", str(page), "--check").returncode == 0
    assert commands_py("--output", str(tmp_path / "none.md"), "--check").returncode == 1  # a missing page is stale


def test_run_help_says_when_it_writes_a_ledger():
    text = " ".join(invoke("run", "--help").output.split())
    assert "and ledger" not in text
    assert "(and the ledger with --runs 1 or --keep-ledgers)" in text


def test_bare_commands_come_after_the_virtualenv_is_activated():
    """README's commands work as written: .venv/bin/... until it says to activate .venv, bare after."""
    readme = README.read_text(encoding="utf-8")
    activate = readme.index("```bash\nsource .venv/bin/activate\n```")
    assert activate < readme.index("## One example")  # at the end of the Quick start
    bare = re.compile(r"^(\$ )?(launderflow|python|dask) ", flags=re.M)
    for block in re.finditer(r"^```[a-z]*\n(.*?)^```", readme, flags=re.M | re.S):
        for line in bare.finditer(block.group(1)):
            assert block.start() > activate, f"a bare command before `source .venv/bin/activate`: {line.group(0)}"
        if block.start() < activate:
            commands = [ln for ln in block.group(1).splitlines() if ln.strip()]
            assert all(ln.split()[0] in ("python3", ".venv/bin/python", ".venv/bin/launderflow") for ln in commands), commands
