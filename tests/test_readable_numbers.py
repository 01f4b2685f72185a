"""What people read: metrics named by their labels, never by machine keys, and no negative zeros
(``-0.0 pp`` in compare's table and comparison.md, ``-0`` in query results)."""

from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from launderflow.analysis.compare import markdown, write
from launderflow.cli import main
from launderflow.metrics import COUNT, DAYS, SHARE, USD, Unit
from launderflow.views.tables import comparison_table

from conftest import BASE_YAML

# unit, a difference that reads zero, a value that reads zero, the scale of its last digit
UNITS = {"share": (SHARE, "0.0 pp", "0.0%", 1e-3), "usd": (USD, "$0", "$0", 1.0), "days": (DAYS, "0.0", "0.0", 0.1),
         "count": (COUNT, "0", "0", 1.0)}
TINY = (-0.4, -1e-7, -0.0, 0.0, 1e-7, 0.4)  # times the last digit: each reads zero


@pytest.mark.parametrize("name", list(UNITS))
def test_whatever_reads_zero_is_written_without_a_sign_in_every_unit(name: str) -> None:
    unit, zero_diff, zero, digit = UNITS[name]
    for v in (t * digit for t in TINY):
        assert unit.format_diff(v) == unit.short_diff(v) == zero_diff, v
        assert unit.format(v) == unit.short(v) == zero, v
    # a difference that does not read zero keeps its sign; so does a negative value
    big = 0.6 * digit
    for form in (unit.format_diff, unit.short_diff):
        assert form(big).startswith("+") and form(-big).startswith("-")
    assert unit.format(-big).startswith("-") and unit.short(-big).startswith("-")


def test_a_unit_defined_later_gets_no_negative_zero_either() -> None:
    unit = Unit("ratio", lambda v: f"{v:.2f}", lambda v: f"{v:+.2f}x")
    assert unit.format_diff(-0.001) == unit.short_diff(-0.001) == "0.00x"
    assert unit.format(-0.001) == "0.00" and unit.format_diff(-0.01) == "-0.01x"


def _row(scenario: str, metric: str, median: float, p5: float, p95: float, diff: tuple | None = None) -> dict:
    d5, dm, d95 = diff if diff else (None, None, None)
    return {"scenario": scenario, "metric": metric, "runs": 5, "median": median, "p5": p5, "p95": p95,
            "diff_median": dm, "diff_p5": d5, "diff_p95": d95}


# A comparison whose policy changes nothing in frozen (differences of +-1e-12: float round-off) and
# delays the cash-out; the keys are the machine keys compare's rows carry.
ROWS = [
    _row("baseline", "frozen_share", 0.019, 0.017, 0.019),
    _row("policy", "frozen_share", 0.019, 0.017, 0.019, (-1e-12, -1e-12, 1e-12)),
    _row("baseline", "days_to_50pct_cash_out", 62.9, 62.5, 63.7),
    _row("policy", "days_to_50pct_cash_out", 63.0, 62.7, 63.4, (-0.01, 0.04, 0.7)),
    _row("baseline", "launderer_cost_usd", 44_463_846.0, 44_424_389.0, 44_508_640.0),
    _row("policy", "launderer_cost_usd", 44_463_846.0, 44_424_389.0, 44_508_640.0, (-0.3, -0.2, 0.4)),
    _row("baseline", "reported_dark_share_at_11d", 0.392, 0.367, 0.407),
    _row("policy", "reported_dark_share_at_11d", 0.393, 0.352, 0.432, (-0.021, 0.001, 0.036)),
]
LABELS = ("frozen", "days to 50% cashed out", "launderer cost (USD)", "reported dark at 11 d")
KEYS = ("frozen_share", "days_to_50pct_cash_out", "launderer_cost_usd", "reported_dark_share_at_11d")


def test_compare_terminal_table_names_metrics_by_their_labels_and_prints_no_negative_zero() -> None:
    console = Console(width=80, record=True, file=open(os.devnull, "w"))
    console.print(comparison_table(ROWS, "2 scenarios"))
    text = console.export_text()
    heads = [line.strip() for line in text.splitlines() if line.startswith(" ") and not line.startswith("   ")
             and line.strip() and not line.strip().startswith(("metric", "─"))]
    # each metric heads its section under its label, in order ("11d": a wrap never parts the number from its unit)
    assert heads == [label.replace("11 d", "11d") for label in LABELS]
    for raw in ("50pct", "cash out", "cost usd", "_", "share at", "dark share"):
        assert raw not in text, raw
    assert not re.search(r"-0\.0\b|-\$0\b", text)
    assert re.search(r"policy +1\.9% +1\.7–1\.9% +0\.0 pp +0\.0…0\.0 pp", text)  # frozen: a zero difference
    assert re.search(r"policy +\$44\.5 M .* \$0 +\$0…\$0", text)  # cost: 30 cents either way reads $0
    assert re.search(r"policy +39\.3% .* \+0\.1 pp +-2\.1…\+3\.6 pp", text)  # a real difference keeps its sign


def test_comparison_md_heads_columns_with_labels_and_the_files_keep_the_keys(tmp_path: Path) -> None:
    md = markdown(ROWS)
    header = [cell.strip() for cell in md.splitlines()[0].strip("|").split("|")]
    assert header == ["scenario", *LABELS]
    assert "-0.0" not in md and "-$0" not in md
    assert "Δ 0.0 pp [0.0 pp, 0.0 pp]" in md and "Δ $0 [$0, $0]" in md

    write(tmp_path, ROWS, ["baseline", "policy"])
    assert (tmp_path / "comparison.md").read_text(encoding="utf-8") == md
    keys = list(dict.fromkeys(r["metric"] for r in csv.DictReader((tmp_path / "comparison.csv").open())))
    assert keys == list(KEYS)  # machine keys stay machine keys
    import pyarrow.parquet as pq

    assert list(dict.fromkeys(pq.read_table(tmp_path / "comparison.parquet")["metric"].to_pylist())) == list(KEYS)


def test_run_table_names_states_by_their_labels_and_prints_no_negative_zero() -> None:
    from launderflow.metrics import STATES
    from launderflow.views.tables import summary_table

    states = {s: {"median_share": 0.25, "p5_share": 0.2, "p95_share": 0.3, "median_usd": 2.5e5} for s in STATES}
    states["seized"] = {"median_share": -1e-13, "p5_share": -1e-13, "p95_share": 0.0, "median_usd": -1e-7}
    summary = {"scenario": "case", "stolen_usd": 1e6, "runs": 3, "seed": 1, "horizon_hours": 240.0, "states": states,
               "time_to_50pct_cash_out_hours": {"median": 48.0, "p5": 24.0, "p95": 72.0, "never": 0}}
    console = Console(width=80, record=True, file=open(os.devnull, "w"))
    console.print(summary_table(summary))
    text = console.export_text()
    firsts = [line.split("│")[1].strip() for line in text.splitlines() if line.count("│") == 5]
    assert firsts == [s.replace("_", " ") for s in STATES]  # cashed out, reported traceable, ...
    assert "│ seized             │         0.0% │   0.0% - 0.0% │         $0 │" in text
    assert "-0" not in text and "$-" not in text


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    (root / "tiny.yaml").write_text(BASE_YAML, encoding="utf-8")
    result = CliRunner().invoke(main, ["run", str(root / "tiny.yaml"), "--runs", "2", "--out", str(root / "run")])
    assert result.exit_code == 0, result.output
    return root / "run"


# round() of a small negative number, an exact -0.0, one inside a list, and a sum that cancels
NEGATIVE_ZEROS = ("SELECT round(-0.001::DOUBLE, 2) AS a, -0.0::DOUBLE AS b, [-0.0::DOUBLE, 1.5] AS c, "
                  "round(min(cashed_out_share) - max(cashed_out_share) - 0.2, 0) AS d FROM summary")


@pytest.mark.parametrize("form", ["table", "--csv", "--json"])
def test_query_results_show_no_negative_zero(tiny_run: Path, form: str) -> None:
    args = ["query", str(tiny_run), NEGATIVE_ZEROS] + ([] if form == "table" else [form])
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert not re.search(r"-0(?![.\d]*[1-9])", result.stdout), result.stdout
    if form == "--json":
        assert json.loads(result.stdout) == [{"a": 0.0, "b": 0.0, "c": [0.0, 1.5], "d": 0.0}]
    elif form == "--csv":
        assert result.stdout.splitlines()[1] == "0.0,0.0,\"[0.0, 1.5]\",0.0"
