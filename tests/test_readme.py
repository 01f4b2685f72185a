"""README's examples work as written and say what the code does."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from conftest import REPO
from launderflow.cli import main

README = REPO / "README.md"

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
    """The SQL of README's ``launderflow query out/baseline "..."`` example that contains ``needle``."""
    for sql in re.findall(r'launderflow query out/baseline "([^"]*)"', README.read_text(encoding="utf-8")):
        if needle in sql:
            return " ".join(sql.split())
    raise AssertionError(f"README has no query example with {needle!r}")


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


# --- the commands table and the bare commands ------------------------------------------------------

_spec = importlib.util.spec_from_file_location("commands", REPO / "sim" / "commands.py")
commands_table = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(commands_table)  # type: ignore[union-attr]
REGENERATE = "run `python sim/commands.py` and commit README.md"


def test_the_commands_table_is_up_to_date():
    readme = README.read_text(encoding="utf-8")
    assert commands_table.updated(readme) == readme, f"README's table of commands is stale: {REGENERATE}"


def test_every_option_of_every_command_is_in_its_row():
    """Independently of the generator: each command's row names each of its options and arguments."""
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `launderflow (\w+)[^`]*` \|.*$",
                                                         README.read_text(encoding="utf-8"), flags=re.M)}
    assert set(rows) == set(main.commands)
    for name, command in main.commands.items():
        ctx = click.Context(command, info_name=name)
        for param in command.get_params(ctx):
            if isinstance(param, click.Argument):
                assert param.make_metavar(ctx) in rows[name], (name, param.name)
            elif "--help" not in param.opts:
                assert max(param.opts, key=len) in rows[name], (name, param.opts)


def test_the_commands_check_mode(tmp_path, capsys):
    readme = tmp_path / "README.md"
    stale = README.read_text(encoding="utf-8").replace("[--keep-ledgers] ", "")
    readme.write_text(stale, encoding="utf-8")
    assert commands_table.main(["--readme", str(readme), "--check"]) == 1
    assert readme.read_text(encoding="utf-8") == stale  # --check writes nothing
    assert commands_table.main(["--readme", str(readme)]) == 0
    assert readme.read_text(encoding="utf-8") == README.read_text(encoding="utf-8")
    assert commands_table.main(["--readme", str(readme), "--check"]) == 0
    readme.write_text("# no table here\n", encoding="utf-8")
    assert commands_table.main(["--readme", str(readme), "--check"]) == 2
    assert "markers" in capsys.readouterr().err


def test_run_help_says_when_it_writes_a_ledger():
    text = " ".join(invoke("run", "--help").output.split())
    assert "and ledger" not in text
    assert "(and the ledger with --runs 1 or --keep-ledgers)" in text


def test_bare_commands_come_after_the_virtualenv_is_activated():
    """README's commands work as written: .venv/bin/... until it says to activate .venv, bare after."""
    readme = README.read_text(encoding="utf-8")
    activate = readme.index("```bash\nsource .venv/bin/activate\n```")
    assert activate < readme.index("## What a run produces")  # at the end of the Quick start
    bare = re.compile(r"^(\$ )?(launderflow|python|dask) ", flags=re.M)
    for block in re.finditer(r"^```[a-z]*\n(.*?)^```", readme, flags=re.M | re.S):
        for line in bare.finditer(block.group(1)):
            assert block.start() > activate, f"a bare command before `source .venv/bin/activate`: {line.group(0)}"
        if block.start() < activate:
            commands = [ln for ln in block.group(1).splitlines() if ln.strip()]
            assert all(ln.split()[0] in ("python3", ".venv/bin/python", ".venv/bin/launderflow") for ln in commands), commands
