"""compare / sweep / --at: paired differences with common random numbers, files and tables."""

from __future__ import annotations

import csv
import html
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from launderflow.cli import main
from launderflow.analysis.compare import compare, parse_times

SCEN = Path(__file__).parent / "scenarios"
ALL = str(SCEN / "all_venues.yaml")


def invoke(*args: str) -> object:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result


@pytest.fixture(scope="module")
def comparison(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cmp")
    policy = out / "fast_sharing.yaml"
    policy.write_text(f"extends: {ALL}\nname: fast_sharing\ntracing:\n  sharing: {{latency: 0h}}\n", encoding="utf-8")
    slow = out / "slow_sharing.yaml"
    slow.write_text(f"extends: {ALL}\nname: slow_sharing\ntracing:\n  sharing: {{latency: 30d}}\n", encoding="utf-8")
    result = invoke("compare", str(slow), str(policy), "--runs", "3", "--out", str(out / "res"), "--at", "1d,5d",
                    "--set", "clock.horizon=10d")
    assert result.exit_code == 0, result.output
    return out / "res"


def test_compare_writes_one_run_per_scenario_and_the_tables(comparison: Path) -> None:
    for name in ("slow_sharing", "fast_sharing"):
        assert (comparison / name / "summary.json").is_file()
        assert (comparison / name / "scenario.yaml").is_file()
    order = json.loads((comparison / "comparison.json").read_text())
    assert order["scenarios"] == ["slow_sharing", "fast_sharing"]
    rows = list(csv.DictReader((comparison / "comparison.csv").open()))
    metrics = {r["metric"] for r in rows}
    assert {"traced_share", "frozen_share", "seized_share", "cashed_out_share", "days_to_50pct_cash_out",
            "launderer_cost_usd", "reported_frozen_share_at_1d", "reported_dark_share_at_5d"} <= metrics
    md = (comparison / "comparison.md").read_text()
    assert "fast_sharing" in md and "Δ" in md


def test_differences_are_paired_by_replication(comparison: Path) -> None:
    rows = compare([("slow", comparison / "slow_sharing"), ("fast", comparison / "fast_sharing")])
    fast = next(r for r in rows if r["scenario"] == "fast" and r["metric"] == "frozen_share")
    slow_summary = json.loads((comparison / "slow_sharing" / "summary.json").read_text())
    fast_summary = json.loads((comparison / "fast_sharing" / "summary.json").read_text())
    stolen = slow_summary["stolen_usd"]
    diffs = [(f["final_usd"]["frozen"] - s["final_usd"]["frozen"]) / stolen
             for s, f in zip(slow_summary["replications"], fast_summary["replications"])]
    assert fast["diff_median"] == pytest.approx(float(np.median(diffs)))
    # Faster sharing freezes more in every replication (same streams): the whole interval is positive.
    assert fast["diff_p5"] > 0
    ref = next(r for r in rows if r["scenario"] == "slow" and r["metric"] == "frozen_share")
    assert ref["diff_median"] is None


def test_shares_at_times_read_the_timeline(comparison: Path) -> None:
    rows = compare([("fast", comparison / "fast_sharing")], [24.0])
    at = {r["metric"]: r["median"] for r in rows if r["metric"].endswith("_at_1d")}
    reported = ("reported_traceable", "reported_dark", "reported_frozen")
    assert set(at) == {f"{s}_share_at_1d" for s in (*reported, "cashed_out")}
    # the reported shares sum to the whole in every replication
    from launderflow.analysis.compare import per_replication
    from launderflow.metrics import METRICS

    _, values = per_replication(comparison / "fast_sharing", [METRICS["share_at"](state=s, at=24.0) for s in reported])
    np.testing.assert_allclose(sum(values.values()), 1.0, rtol=1e-9)


def test_parse_times() -> None:
    assert parse_times("11d, 60d,6h") == [264.0, 1440.0, 6.0]
    with pytest.raises(ValueError):
        parse_times("11 parsecs")


def test_run_accepts_at(tmp_path: Path) -> None:
    result = invoke("run", ALL, "--runs", "2", "--out", str(tmp_path / "r"), "--at", "2d", "--json",
                    "--set", "clock.horizon=5d")
    assert result.exit_code == 0
    summary = json.loads(result.output[result.output.index("{"):])
    assert {r["metric"] for r in summary["at"]} == {f"{s}_share_at_2d" for s in
                                                    ("reported_traceable", "reported_dark", "reported_frozen", "cashed_out")}


def test_sweep_runs_the_grid_and_draws_the_sensitivity_plot(tmp_path: Path) -> None:
    result = invoke("sweep", ALL, "--set", "tracing.sharing.latency=0h,30d", "--set", "clock.horizon=10d",
                    "--runs", "2", "--out", str(tmp_path / "sw"))
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "sw" / "comparison.json").read_text())
    assert meta["parameters"] == ["tracing.sharing.latency", "clock.horizon"]
    assert len(meta["points"]) == 2
    assert (tmp_path / "sw" / "figures" / "sensitivity.png").stat().st_size > 10_000
    rows = compare([(p["label"], tmp_path / "sw" / f"point_{p['point']:03d}") for p in meta["points"]])
    frozen = [r["median"] for r in rows if r["metric"] == "frozen_share"]
    assert frozen[0] > frozen[1]  # alerts at once freeze more than alerts after a month


def test_compare_refuses_duplicate_names(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["compare", ALL, ALL, "--runs", "1", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "names must differ" in result.output


def test_summary_reports_the_share_of_stolen_value_entering_each_venue(comparison: Path) -> None:
    summary = json.loads((comparison / "slow_sharing" / "summary.json").read_text())
    venues = summary["venues"]
    # Every lot is split, swapped (USDC only: the ETH is already ETH) and then mixed in the pool.
    assert 0.9 < venues["tornado"]["inflow_share"]["median"] <= 1.0
    assert venues["uniswap"]["inflow_share"]["median"] == pytest.approx(2e6 / 17e6, rel=0.01)


def _row(scenario: str, metric: str, median: float, p5: float, p95: float, diff: tuple | None = None) -> dict:
    d5, dm, d95 = diff if diff else (None, None, None)
    return {"scenario": scenario, "metric": metric, "median": median, "p5": p5, "p95": p95,
            "diff_median": dm, "diff_p5": d5, "diff_p95": d95}


def test_terminal_table_fits_80_columns_with_every_number_whole() -> None:
    from rich.console import Console

    from launderflow.views.tables import comparison_table

    names = ["baseline", "information_sharing", "sanction_and_freeze"]  # long names, as the bundled ones
    rows = []
    for k, name in enumerate(names):
        paired = (0.011 * k, 0.013 * k, 0.016 * k) if k else None
        rows.append(_row(name, "cashed_out_share", 0.9012 - 0.1 * k, 0.8991, 0.9123, paired))
        usd = (-2_429_518.0 * k, -2_404_153.0 * k, -2_302_211.0 * k) if k else None
        rows.append(_row(name, "launderer_cost_usd", 44_473_936.0, 44_420_157.0, 44_496_812.0, usd))
    console = Console(width=80, record=True, file=open(os.devnull, "w"))
    console.print(comparison_table(rows, "3 scenarios, 5 runs each"))
    lines = console.export_text().splitlines()
    assert max(len(line) for line in lines) <= 80
    text = "\n".join(lines)
    assert "sanction_and_freeze" in text
    assert not re.search(r"…(\s|$)", text, re.MULTILINE)  # nothing cut short (a range's "…" is followed by a number)
    assert "89.9–91.2%" in text  # a share's range: the unit once
    assert "+1.3 pp" in text and "+1.1…+1.6 pp" in text  # a paired difference and its range, in points
    assert "$44.5 M" in text and "$44.4–44.5 M" in text  # USD to 3 figures in millions, not 11 digits
    assert "-$2.40 M" in text and "-$2.43 M…-$2.30 M" in text  # after a sign, the scale on both ends
    assert "Δ = difference from baseline" in text


@pytest.mark.parametrize("value, shown", [(512, "$512"), (999.6, "$1.00 k"), (9_996, "$10.0 k"), (80_310, "$80.3 k"),
                                          (99_951, "$100 k"), (999_600, "$1.00 M"), (44_473_936, "$44.5 M"),
                                          (1.46e9, "$1.46 B")])
def test_terminal_usd_has_three_figures_and_rounds_across_units(value: float, shown: str) -> None:
    from launderflow.analysis.compare import short_usd

    assert short_usd(value) == shown
    assert short_usd(-value) == "-" + shown


def _report_cells(text: str) -> dict[str, list[str]]:
    """The report's comparison table: per metric label, each scenario column's HTML."""
    table = text[text.index('<table class="comparison">'):text.index("</table>")]
    cells = {}
    for row in re.findall(r"<tr>(.*?)</tr>", table, flags=re.S):
        tds = re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S)
        if tds:
            cells[html.unescape(tds[0])] = tds[1:]
    return cells


def _lines(cell: str) -> list[str]:
    """A cell's text, one line per span (median, range, Δ, Δ range)."""
    return html.unescape(re.sub(r"<[^>]+>", "", re.sub(r"<span", "\n<span", cell))).splitlines()


def _report_of(comparison: Path, tmp_path: Path) -> tuple[Path, str]:
    import shutil

    from launderflow.views.report import write_report

    copy = tmp_path / "res"
    shutil.copytree(comparison, copy)
    return copy, write_report(copy).read_text(encoding="utf-8")


def test_report_shows_every_row_compare_printed(comparison: Path, tmp_path: Path) -> None:
    """The report's table and compare's are one: the same metrics under the same labels, the
    --at rows, and every paired difference (days to 50 % and launderer cost too), coloured by
    which direction is better for the investigators."""
    from launderflow.analysis.compare import measure_of
    from launderflow.views.report import tone as report_tone
    from launderflow.views.tables import span

    copy, text = _report_of(comparison, tmp_path)
    at = json.loads((copy / "comparison.json").read_text())["at_hours"]
    assert at == [24.0, 120.0]
    names = ["slow_sharing", "fast_sharing"]
    rows = compare([(n, copy / n) for n in names], at)
    cells = _report_cells(text)
    labels = [measure_of(m).label for m in dict.fromkeys(r["metric"] for r in rows)]
    assert list(cells) == labels  # every metric compare printed, in its order, under its label
    assert {"reported dark at 5 d", "cashed out at 1 d", "days to 50% cashed out", "launderer cost (USD)"} <= set(cells)
    for r in rows:
        m = measure_of(r["metric"])
        u = m.unit
        cell = cells[m.label][names.index(r["scenario"])]
        column = _lines(cell)
        assert column[:2] == [u.short(r["median"]), span(u.short(r["p5"]), u.short(r["p95"]), " – ")], r
        if r["scenario"] == names[0]:
            assert len(column) == 2 and r["diff_median"] is None
            continue
        delta = u.short_diff(r["diff_median"])
        frozen = next((f for f in rows if f["scenario"] == r["scenario"]
                       and f["metric"] == r["metric"].replace("reported_traceable", "reported_frozen")), None)
        frozen_rose = "reported_traceable" in r["metric"] and frozen is not None and frozen["diff_p5"] > 0
        note = ["frozen rose: no better direction"] if frozen_rose else []
        assert column[2:] == [f"Δ {delta}", span(u.short_diff(r["diff_p5"]), u.short_diff(r["diff_p95"]), " … "),
                              *note], r
        reads_zero = not re.search(r"[1-9]", delta)
        colour = report_tone(m, r, frozen_rose)  # only an interval that excludes 0, by the better direction
        expected = "" if reads_zero or not colour else f" {colour}"
        assert re.findall(r'<span class="delta([a-z ]*)">', cell) == [expected] * len(column[2:]), (r["metric"], expected)
    # the rows the report used to leave out, and the colouring of their differences
    fast = {r["metric"]: r for r in rows if r["scenario"] == names[1]}
    assert fast["days_to_50pct_cash_out"]["diff_median"] != 0 and fast["launderer_cost_usd"]["diff_median"] != 0
    assert 'class="delta">Δ -$' in cells["launderer cost (USD)"][1]  # cheaper, but not better or worse: no colour
    assert fast["frozen_share"]["diff_p5"] > 0 and 'class="delta better">Δ +' in cells["frozen"][1]
    assert fast["cashed_out_share"]["diff_p95"] < 0 and 'class="delta better">Δ -' in cells["cashed out"][1]
    assert "<h1>launderflow: slow_sharing and 1 policy</h1>" in text and "2 scenarios compared" not in text
    assert "common random numbers" in text


def test_report_without_common_random_numbers_compares_medians(comparison: Path, tmp_path: Path) -> None:
    from launderflow.analysis.compare import measure_of
    from launderflow.views import report
    from launderflow.views.plots import is_paired, load_runs

    copy, _ = _report_of(comparison, tmp_path)
    assert report.is_paired is is_paired and not hasattr(report, "paired_differences")  # one pairing check
    runs = load_runs(copy)
    assert is_paired(runs)
    summary_file = copy / "fast_sharing" / "summary.json"
    summary = json.loads(summary_file.read_text())
    summary["seed"] += 1  # not common random numbers: no pairing
    summary_file.write_text(json.dumps(summary))
    text = report.write_report(copy).read_text(encoding="utf-8")
    cells = _report_cells(text)
    rows = compare([(n, copy / n) for n in ("slow_sharing", "fast_sharing")], [24.0, 120.0])
    med = {(r["scenario"], r["metric"]): r["median"] for r in rows}
    for key in ("frozen_share", "days_to_50pct_cash_out", "launderer_cost_usd", "reported_dark_share_at_5d"):
        m = measure_of(key)
        column = _lines(cells[m.label][1])
        assert column[2:] == [f"Δ {m.unit.short_diff(med['fast_sharing', key] - med['slow_sharing', key])}"], key
    assert "difference of the medians" in text


def test_sweep_table_and_progress_fit_80_columns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from rich.console import Console

    from launderflow import cli

    table, progress = io.StringIO(), io.StringIO()
    monkeypatch.setattr(cli, "out", Console(file=table, width=80, highlight=False))
    monkeypatch.setattr(cli, "err", Console(file=progress, width=80, highlight=False))
    result = invoke("sweep", ALL, "--set", "tracing.sharing.latency=0h,30d", "--set", "venues.binance.compliance=0.5,0.9",
                    "--set", "clock.horizon=3d", "--runs", "2", "--out", str(tmp_path / "sw"))
    assert result.exit_code == 0, result.output
    labels = [p["label"] for p in json.loads((tmp_path / "sw" / "comparison.json").read_text())["points"]]
    assert len(labels) == 4 and min(map(len, labels)) > 30  # "latency=0h, compliance=0.5, horizon=3d"
    lines = table.getvalue().splitlines()
    assert max(map(len, lines)) <= 80
    for k, label in enumerate(labels, start=1):
        assert f"  #{k}  {label}" in lines  # the legend: each label whole, on its own line
        rows = [line for line in lines if line.startswith(f"   #{k} ")]
        metrics = {r["metric"] for r in compare([(label, tmp_path / "sw" / "point_000")])}
        assert len(rows) == len(metrics) and all(re.search(r"\d|—", row[5:]) for row in rows)  # each metric: numbers, or — for never
    assert not any(line.strip().startswith(("compliance=", "horizon=")) for line in lines)  # no wrapped labels
    bars = progress.getvalue().splitlines()
    assert max(map(len, bars)) <= 80 and "…" not in progress.getvalue()  # nothing cut short
    done = [line for line in bars if "2/2" in line]
    assert len(done) == 4 and all(re.search(r" \d+\.\d\d runs/s took \d+:\d\d:\d\d$", line) for line in done), done
