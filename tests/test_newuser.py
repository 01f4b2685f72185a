"""What a new user tripped over (issue 24): each fix, checked where a test can catch it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import launderflow as lf
from conftest import REPO
from launderflow.cli import main
from launderflow.metrics import measure
from launderflow.views.report import tone
from launderflow.views.tables import span

GOLDEN = REPO / "tests" / "golden" / "golden_interventions.yaml"  # 10-day horizon, sharing, pools, exchanges


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sweep") / "sw"
    result = invoke("sweep", str(GOLDEN), "--set", "tracing.sharing.latency=0.5,48", "--runs", "2", "--out", str(out))
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def at_run(tmp_path_factory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("at") / "run"
    result = invoke("run", str(GOLDEN), "--runs", "2", "--out", str(out), "--at", "2d,9d")
    assert result.exit_code == 0, result.output
    return out, result


# --- 1. a sweep has its own plot and report --------------------------------------------------------


def test_plot_and_report_work_on_a_sweep_directory(sweep_dir):
    result = invoke("plot", str(sweep_dir), "--format", "png")
    assert result.exit_code == 0, result.output
    assert (sweep_dir / "figures" / "sensitivity.png").is_file() and (sweep_dir / "figures" / "flow.png").is_file()
    result = invoke("report", str(sweep_dir))
    assert result.exit_code == 0, result.output
    text = (sweep_dir / "report.html").read_text(encoding="utf-8")
    assert "<h2>Sweep</h2>" in text and 'id="fig-sensitivity"' in text
    # the table: one row per point, its parameter value, then each outcome's median and 5-95 % range
    table = text[text.index('<table class="comparison sweep">'):]
    table = table[:table.index("</table>")]
    assert "<th>tracing.sharing.latency</th>" in table and "<th>frozen</th>" in table
    assert table.count("<tr>") == 3 and "<td>0.5</td>" in table and "<td>48</td>" in table


def test_the_python_sweep_too(sweep_dir, tmp_path):
    done = lf.sweep(str(GOLDEN), {"venues.coinbase.compliance": [0.2, 0.9]}, runs=2, out=tmp_path / "api")
    assert (tmp_path / "api" / "figures" / "sensitivity.png").is_file()
    assert invoke("report", str(done.path)).exit_code == 0


# --- 2, 23. --at: refused past the horizon, kept with the run, shown by report ----------------------


@pytest.mark.parametrize("command", ["run", "compare"])
def test_at_past_the_horizon_is_refused_before_anything_runs(command, tmp_path):
    result = CliRunner().invoke(main, [command, str(GOLDEN), "--at", "400d", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "400 d is after the horizon of golden_interventions (10 d)" in result.output
    assert not (tmp_path / "o").exists()
    with pytest.raises(ValueError, match="after the horizon"):
        lf.run(str(GOLDEN), out=tmp_path / "p", at=["11d"])


def test_at_times_are_stored_and_the_report_shows_them(at_run):
    out, result = at_run
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["at_hours"] == [48.0, 216.0]
    assert {r["metric"] for r in summary["at"]} == {f"{s}_share_at_{t}" for t in ("2d", "9d") for s in
                                                    ("reported_traceable", "reported_dark", "reported_frozen", "cashed_out")}
    assert "shares at given times after the start" in result.output
    assert invoke("report", str(out)).exit_code == 0
    text = (out / "report.html").read_text(encoding="utf-8")
    assert "Shares of the stolen value 2 d after the theft" in text and "value 9 d after" in text


def test_run_help_says_what_at_shows():
    text = invoke("run", "--help").output
    assert "traced/dark/frozen/seized" not in text and "reported traceable" in " ".join(text.split())


# --- 3, 14. backtest checks its facts and --out before the work --------------------------------------


def test_backtest_out_that_cannot_be_written_is_refused_first(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    targets = REPO / "scenarios" / "targets" / "ronin_2022.yaml"
    result = CliRunner().invoke(main, ["backtest", str(REPO / "scenarios" / "ronin_2022.yaml"), "--targets",
                                       str(targets), "--out", str(blocker / "verdict.json")])
    assert result.exit_code == 2 and "is not a directory" in result.output
    assert "Traceback" not in result.output and "backtest ronin" not in result.output  # no bar: nothing ran


def test_backtest_missing_targets_draws_no_bar(tmp_path):
    result = CliRunner().invoke(main, ["backtest", str(GOLDEN), "--targets", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [f"{tmp_path / 'nope.yaml'}: file not found"]  # no 0/10 bar first


# --- 4, 17. read-only places: the work is shown, the failure in one line ------------------------------


def test_taint_prints_the_scores_when_they_cannot_be_saved(tmp_path):
    out = tmp_path / "run"
    assert invoke("run", str(GOLDEN), "--runs", "1", "--out", str(out)).exit_code == 0
    # the directory cannot be written: a real OSError (the tests run as root, so permissions would not
    # stop it; the writer lock's file is a folder instead, and opening it fails as a read-only place does)
    (out / ".launderflow.lock").mkdir()
    result = CliRunner().invoke(main, ["taint", str(out)])
    assert result.exit_code == 0
    assert "poison" in result.output and "warning: the scores could not be saved" in result.output
    assert "Traceback" not in result.output and "wrote" not in result.output


def test_plot_where_figures_cannot_go_says_so_in_words(at_run, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    result = CliRunner().invoke(main, ["plot", str(at_run[0]), "--out", str(blocker / "figs")])
    assert result.exit_code == 2
    assert "[Errno" not in result.output and "error: cannot write" in result.output


# --- 6. API errors in the API's words, with the mismatch ----------------------------------------------


def test_store_error_names_the_api_arguments_and_the_runs(tmp_path):
    lf.run(str(GOLDEN), runs=2, seed=7, out=tmp_path / "r")
    with pytest.raises(lf.StoreError) as caught:
        lf.run(str(GOLDEN), runs=3, out=tmp_path / "r")
    text = str(caught.value)
    assert "runs: 2 in the stored run, 3 now" in text and "seed: 7 in the stored run" in text
    assert "resume=True" in text and "overwrite=True" in text and "--" not in text.replace("--keep-ledgers", "")


# --- 7. --set problems are the option's ----------------------------------------------------------------


@pytest.mark.parametrize("setting, message", [
    ("clock.horizn=30d", "--set clock.horizn=30d: clock.horizn: unknown field"),
    ("thefts.0.stolen.0.amount=-5", "--set thefts.0.stolen.0.amount=-5: thefts.0.stolen.0.amount: input should be greater than 0"),
])
def test_set_problems_name_the_option_not_a_line(setting, message, tmp_path):
    result = CliRunner().invoke(main, ["validate", str(GOLDEN)])  # (the file itself is fine)
    assert result.exit_code == 0
    result = CliRunner().invoke(main, ["run", str(GOLDEN), "--set", setting, "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and message in result.output
    assert "golden_interventions.yaml:" not in result.output


# --- 8. the colour rule ---------------------------------------------------------------------------------


def _row(median: float, low: float | None, high: float | None) -> dict:
    return {"diff_median": median, "diff_p5": low, "diff_p95": high}


def test_only_differences_whose_interval_excludes_zero_are_coloured():
    cashed, frozen, traceable = (measure(k) for k in ("cashed_out_share", "frozen_share", "reported_traceable_share"))
    assert tone(cashed, _row(-0.001, -0.002, 0.001)) == ""  # -0.1 pp [-0.2, +0.1]: no colour
    assert tone(cashed, _row(-0.1, -0.12, -0.08)) == "better"  # less cashed out, surely
    assert tone(frozen, _row(-0.017, -0.019, -0.014)) == "worse"
    assert tone(frozen, _row(0.4, None, None)) == ""  # a difference of medians: no interval, no colour
    # reported traceable falls because value moved into frozen: no better direction then
    assert tone(traceable, _row(-0.05, -0.06, -0.04), frozen_rose=True) == ""
    assert tone(traceable, _row(-0.05, -0.06, -0.04)) == "worse"


# --- 10, 16. ranges and labels read right ------------------------------------------------------------


def test_a_range_keeps_its_scale_on_both_ends_after_a_sign():
    assert span("-$137 k", "-$70.8 k", "…") == "-$137 k…-$70.8 k"
    assert span("$44.4 M", "$44.5 M") == "$44.4–44.5 M"
    assert span("+1.1 pp", "+1.6 pp", "…") == "+1.1…+1.6 pp"


def test_compare_labels_do_not_part_a_number_from_its_unit(tmp_path):
    from rich.console import Console

    from launderflow.views.tables import comparison_table

    rows = [{"scenario": name, "metric": "reported_traceable_share_at_11d", "runs": 10, "median": 0.5, "p5": 0.4,
             "p95": 0.6, "diff_median": d, "diff_p5": d, "diff_p95": d} for name, d in (("a", None), ("b", 0.01))]
    console = Console(width=80, record=True, highlight=False)
    console.print(comparison_table(rows, "t"))
    text = console.export_text()
    assert "reported traceable at 11d" in text and not re.search(r"\b11\s*\n", text)


def test_compare_at_80_columns_cuts_no_unit_off_a_range():
    """The widest rows a policy comparison has (a 22-character name, a label with a time, USD ranges
    with a scale at each end) fit 80 columns whole: no "+0.1…+0.4" without its pp, no "-$16.8 M…-$16.5"."""
    from rich.console import Console

    from launderflow.views.tables import NAME_ROOM, comparison_table

    values = {"cashed_out_share": (0.445, 0.441, 0.447, -0.455, -0.460, -0.453),
              "launderer_cost_usd": (27.9e6, 27.8e6, 28.1e6, -16.6e6, -16.78e6, -16.47e6),
              "reported_traceable_share_at_11d": (0.633, 0.608, 0.642, 0.0077, 0.0007, 0.0121)}
    rows = []
    for name in ("baseline", "x" * NAME_ROOM):
        for metric, (m, lo, hi, d, dlo, dhi) in values.items():
            diff = (d, dlo, dhi) if name != "baseline" else (None, None, None)
            rows.append({"scenario": name, "metric": metric, "runs": 10, "median": m, "p5": lo, "p95": hi,
                         "diff_median": diff[0], "diff_p5": diff[1], "diff_p95": diff[2]})
    console = Console(width=80, record=True, highlight=False)
    console.print(comparison_table(rows, "t"))
    text = console.export_text()
    assert max(len(line.rstrip()) for line in text.splitlines()) <= 80
    assert "-46.0…-45.3 pp" in text and "-$16.8 M…-$16.5 M" in text and "+0.1…+1.2 pp" in text and "Δ 5–95 %" in text


# --- 5. the docs' Python API example runs as a plain script ------------------------------------------
# (README's sections moved into the docs site, issue 26: the example is docs/reference/api.md's first block)

API_PAGE = REPO / "docs" / "reference" / "api.md"


def _api_example() -> str:
    page = API_PAGE.read_text(encoding="utf-8")
    code = page[page.index("```python") + len("```python"):]
    return code[:code.index("```")]


def test_docs_api_example_runs_as_a_plain_script(tmp_path):
    code = _api_example()
    assert "jobs=2" in code and "__main__" not in code  # workers do not re-run the script: no guard needed
    small = tmp_path / "scenarios"
    small.mkdir()
    for name in ("baseline", "combined"):  # the example's files, small: the golden case, 61 days
        text = GOLDEN.read_text(encoding="utf-8").replace("horizon: 10d", "horizon: 61d")
        (small / f"{name}.yaml").write_text(re.sub(r"(?m)^name: .*$", f"name: {name}", text), encoding="utf-8")
    script = tmp_path / "example.py"
    script.write_text(re.sub(r"runs=\d+", "runs=2", code), encoding="utf-8")
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "LockedError" not in result.stderr
    assert not list(tmp_path.glob("out/**/failures.json"))
    assert (tmp_path / "out" / "api-baseline" / "summary.json").is_file()


def test_docs_steps_do_not_collide():
    """The API example writes a directory no command in README or the docs writes (the Query page's
    run, 20 runs with seed 7, keeps out/baseline)."""
    assert 'out="out/api-baseline"' in _api_example()
    pages = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
    cli_outs = {m for page in pages for m in re.findall(r"--out\s+(out/[\w./-]+)", page.read_text(encoding="utf-8"))}
    assert "out/baseline" in cli_outs and "out/api-baseline" not in cli_outs


# --- 19. tab completion shows the API --------------------------------------------------------------


def test_dir_lists_the_api():
    names = dir(lf)
    assert {"run", "compare", "sweep", "open_run", "plot_traceability", "ScenarioError"} <= set(names)
    assert "Any" not in names and "annotations" not in names


# --- 22. refused lots and refused offers ----------------------------------------------------------


def test_refused_lots_count_each_lot_once_and_offers_count_retries(tmp_path):
    scenario = lf.load_scenario(str(REPO / "tests" / "golden" / "golden_baseline.yaml"))
    run = lf.run(scenario, runs=2, out=tmp_path / "r")
    refused = [(v["refused_lots"]["median"], v["refused_offers"]["median"]) for v in run.summary["venues"].values()]
    assert all(lots <= offers for lots, offers in refused)
    assert any(lots < offers for lots, offers in refused)  # a lot refused again on its retry counts once


# --- 24. where the value went ---------------------------------------------------------------------


def test_flow_figure_is_in_plot_and_report_and_conserves_the_final_column(at_run):
    from launderflow.views.plots import FLOW_LOCATIONS, FLOW_REPORTED, flow_data, load_run

    data = flow_data(load_run(at_run[0]))
    final, reported = sum(data["final"][s] for s in FLOW_LOCATIONS), sum(data["reported"][s] for s in FLOW_REPORTED)
    assert final == pytest.approx(1.0, abs=0.03) and reported == pytest.approx(1.0, abs=0.03)  # medians
    into = {dst: 0.0 for dst in FLOW_REPORTED}
    for src, dst, amount in data["links"]:
        if dst in into:
            into[dst] += amount
    assert sum(into.values()) == pytest.approx(final, rel=1e-9)  # every final location flows on, whole
    text = (at_run[0] / "report.html").read_text(encoding="utf-8") if (at_run[0] / "report.html").exists() else ""
    if not text:
        assert invoke("report", str(at_run[0])).exit_code == 0
        text = (at_run[0] / "report.html").read_text(encoding="utf-8")
    assert 'id="fig-flow"' in text


# --- 13. Ctrl-C is "interrupted" and 130 in every command, not click's "Aborted!" and 1 -------------


@pytest.mark.parametrize("command, module, name", [
    ("plot", "launderflow.views.plots", "write_figures"),
    ("report", "launderflow.views.report", "write_report"),
    ("taint", "launderflow.runs.results", "read_ledgers"),
])
def test_ctrl_c_exits_130_with_one_line(command, module, name, tmp_path, monkeypatch):
    assert invoke("run", str(GOLDEN), "--runs", "1", "--out", str(tmp_path / "r")).exit_code == 0  # (with its ledger)

    def pressed(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(f"{module}.{name}", pressed)
    result = CliRunner().invoke(main, [command, str(tmp_path / "r")])
    assert result.exit_code == 130
    assert result.stderr.startswith("interrupted") and "Aborted" not in result.output


# --- 15. the docs' scenario example is plausible as it stands ----------------------------------------


def test_write_a_scenario_example_validates_without_a_warning(tmp_path):
    page = (REPO / "docs" / "how-to" / "write-a-scenario.md").read_text(encoding="utf-8")
    example = page[page.index("```yaml\n") + len("```yaml\n"):]
    path = tmp_path / "my_case.yaml"
    path.write_text(example[:example.index("```")], encoding="utf-8")
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 0 and "ok (my_case" in result.stdout
    assert result.stderr == ""  # no warning (an unlimited off-ramp was one)


# --- 12. the sensitivity figure: values where they are, an axis fitted to the data -------------------


def test_sensitivity_puts_durations_at_their_hours_and_labels_ticks_plainly():
    from launderflow.views import plots

    labels = ["latency=1h", "latency=6h", "latency=24h"]
    frozen = {"latency=1h": 0.023, "latency=6h": 0.028, "latency=24h": 0.034}
    rows = [{"scenario": lab, "metric": metric, "runs": 3, "median": m, "p5": m - 0.002, "p95": m + 0.002}
            for lab in labels for metric, m in (("traced_share", 0.222), ("frozen_share", frozen[lab]),
                                                ("seized_share", 0.002), ("cashed_out_share", 0.9))]
    with plots.style_context():
        fig = plots.sensitivity_figure(rows, [("tracing.sharing.latency", ["1h", "6h", "24h"])], labels)
        fig.canvas.draw()
    traced, frozen_ax = [ax for ax in fig.axes if ax.get_visible()][:2]
    (line,) = frozen_ax.get_lines()
    np.testing.assert_array_equal(line.get_xdata(), [1.0, 6.0, 24.0])  # 6h at 6 hours, not midway
    assert frozen_ax.get_xscale() == "log" and [t.get_text() for t in frozen_ax.get_xticklabels()] == ["1h", "6h", "24h"]
    low, high = frozen_ax.get_ylim()
    assert (0.034 - 0.023) / (high - low) > 0.25  # 2.3 -> 3.4 %: a quarter of the axis or more
    shown = [t.get_text() for t in traced.get_yticklabels() if t.get_text()]
    assert "22.2%" in shown and not any(re.search(r"\.\d\d%$", text) for text in shown), shown  # not 22.20%


def test_flow_picture_fits_the_venues_to_the_theft_and_no_label_covers_another(tmp_path):
    """A dollar passes several venues (their inflows sum past 100 %): that column is scaled to the theft's
    height, so the final columns are not squeezed into a corner; labels are moved apart, none on another."""
    from launderflow.views.plots import flow_data, load_run, new_figure, plot_flow, style_context

    out = tmp_path / "r"
    assert invoke("run", str(REPO / "scenarios" / "baseline.yaml"), "--runs", "1", "--out", str(out)).exit_code == 0
    run = load_run(out)
    inflow = flow_data(run)["inflow"]
    assert sum(inflow.values()) > 1.5  # (the case in point)
    with style_context():
        ax = new_figure(5.5, 4.8).add_subplot()  # (a panel of the report's two-column figure)
        plot_flow(run, ax=ax)
        ax.figure.canvas.draw()
    bars = [p for p in ax.patches if type(p).__name__ == "Rectangle"]
    venue_x = {round(p.get_x(), 6) for p in bars}
    column_heights = [sum(p.get_height() for p in bars if round(p.get_x(), 6) == x) for x in sorted(venue_x)]
    assert max(column_heights) < 1.2  # every column about the theft's height (gaps aside)
    renderer = ax.figure.canvas.get_renderer()
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in ax.texts if t.get_text()]
    labels = [text for text, _ in boxes]
    assert any(text.startswith("tornado (pool mixer) ") for text in labels)
    for i, (a, box_a) in enumerate(boxes):
        for b, box_b in boxes[i + 1:]:
            assert not box_a.overlaps(box_b), (a, b)
