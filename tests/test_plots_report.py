"""Figures (plots.py), the HTML report (report.py) and the `plot` / `report` commands.

Most tests use small synthetic run directories whose medians are known exactly; one test runs the
real simulator on tests/scenarios/all_venues.yaml for a few simulated days.
"""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import matplotlib.image
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from matplotlib.axes import Axes

from launderflow.views import plots
from launderflow.cli import main
from launderflow.metrics import STATES
from launderflow.views.plots import RunDirError, load_run, load_runs, write_figures
from launderflow.views.report import comparison_table, write_report

REPO = Path(__file__).resolve().parent.parent
ALL_VENUES = REPO / "tests" / "scenarios" / "all_venues.yaml"
FIGURE_NAMES = ("traceability", "outcome_areas", "final_outcomes", "anonymity", "flow")
EVIL = "<script>alert('x')</script> & \"quotes\""


def make_run(path: Path, name: str, *, reps: int = 5, horizon: float = 96.0, step: float = 6.0, frozen: float = 0.2,
             pools: bool = True, description: str = "", notes: dict[float, float] | None = None,
             paired: bool = False) -> Path:
    """A synthetic run directory. Replication r has traced = 0.5 + 0.05 r at every instant (so the median
    over 5 replications is 0.6, the 5th percentile 0.51, the 95th 0.69); the other shares ramp up linearly."""
    path.mkdir(parents=True, exist_ok=True)
    grid = np.arange(0.0, horizon + step / 2, step)
    progress = np.clip(grid / (0.75 * horizon), 0, 1)
    rows = {"replication": [], "time_hours": [], "state": [], "share": []}
    finals = []
    for r in range(reps):
        wobble = 1 + 0.02 * (r - (reps - 1) / 2)
        values = {
            "launderer": 1 - progress,
            "venue": np.zeros_like(grid),
            "frozen": progress * frozen * wobble,
            "seized": np.zeros_like(grid),
            "fees": progress * 0.05,
        }
        values["cashed_out"] = progress - values["frozen"] - values["fees"]
        values["traced"] = np.full_like(grid, 0.5 + 0.05 * r)
        values["dark"] = 1 - values["traced"]
        values["reported_frozen"] = values["frozen"] + values["seized"]
        values["reported_dark"] = values["cashed_out"] * 0 + (1 - values["traced"]) * (1 - progress) + values["cashed_out"]
        values["reported_traceable"] = 1 - values["reported_frozen"] - values["reported_dark"]
        for k, t in enumerate(grid):
            for s, state in enumerate(STATES):
                rows["replication"].append(r)
                rows["time_hours"].append(t)
                rows["state"].append(s)
                rows["share"].append(float(values[state][k]))
        finals.append([values[s][-1] for s in STATES])
    finals = np.array(finals)
    stolen = 1e6
    table = pa.table({
        "replication": pa.array(rows["replication"], pa.int32()),
        "time_hours": pa.array(rows["time_hours"], pa.float64()),
        "state": pa.DictionaryArray.from_arrays(pa.array(rows["state"], pa.int32()), pa.array(list(STATES))),
        "value_usd": pa.array(np.array(rows["share"]) * stolen),
        "share": pa.array(rows["share"], pa.float64()),
    })
    pq.write_table(table, path / "timeline.parquet")
    states = {}
    for j, state in enumerate(STATES):
        p5, med, p95 = np.percentile(finals[:, j], [5, 50, 95])
        states[state] = {"median_usd": med * stolen, "p5_usd": p5 * stolen, "p95_usd": p95 * stolen,
                         "median_share": med, "p5_share": p5, "p95_share": p95}
    summary = {
        "scenario": name, "description": description, "seed": 1, "runs": reps, "horizon_hours": horizon,
        "stolen_usd": stolen, "states": states,
        "time_to_50pct_cash_out_hours": {"median": 48.0, "p5": 42.0, "p95": 54.0, "never": 0},
        "launderer_cost_usd": {"median": 50000.0, "p5": 49000.0, "p95": 51000.0},
        "venues": {"mixer": {"kind": "pool_mixer", "jurisdiction": "none"}},
        "interventions": {},
        "replications": [{"index": r} for r in range(reps)] if paired else [],  # (compare's: one seed, same indexes)
    }
    (path / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    if pools:
        arows = {"replication": [], "time_hours": [], "venue": [], "denomination": [], "notes": []}
        levels = notes or {d: 1000 * d ** 0.5 for d in (0.1, 1.0, 10.0)}
        for r in range(reps):
            for t in grid:
                for d, level in levels.items():
                    arows["replication"].append(r)
                    arows["time_hours"].append(t)
                    arows["venue"].append(0)
                    arows["denomination"].append(d)
                    arows["notes"].append(int(level + 10 * r + t))
        pq.write_table(pa.table({
            "replication": pa.array(arows["replication"], pa.int32()),
            "time_hours": pa.array(arows["time_hours"]),
            "venue": pa.DictionaryArray.from_arrays(pa.array(arows["venue"], pa.int32()), pa.array(["mixer"])),
            "denomination": pa.array(arows["denomination"]),
            "notes": pa.array(arows["notes"], pa.int64()),
        }), path / "anonymity.parquet")
    return path


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("single") / "run", "solo", description=EVIL)


@pytest.fixture(scope="module")
def comparison(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("compare")
    make_run(root / "zeta_policy", "zeta_policy", frozen=0.0, description="no freezes")
    make_run(root / "alpha_policy", "alpha_policy", frozen=0.4, pools=False, horizon=72.0, description=EVIL)
    (root / "alpha_policy" / "scenario.yaml").write_text(f"name: alpha_policy\n# {EVIL}\nseed: 1\n", encoding="utf-8")
    (root / "comparison.json").write_text(json.dumps({"scenarios": ["zeta_policy", "alpha_policy"]}), encoding="utf-8")
    (root / "comparison.csv").write_text("scenario\nzeta_policy\nalpha_policy\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def single_figures(single, tmp_path_factory) -> list[Path]:
    return write_figures(single, tmp_path_factory.mktemp("figs") / "figs")


@pytest.fixture(scope="module")
def comparison_report(comparison) -> bytes:
    """The report of the comparison, written by `launderflow report DIR`."""
    before = set(comparison.rglob("*"))
    result = CliRunner().invoke(main, ["report", str(comparison)])
    assert result.exit_code == 0, result.output
    path = comparison / "report.html"
    assert result.stdout == f"wrote {path}\n"
    assert set(comparison.rglob("*")) - before == {path}  # nothing else written
    return path.read_bytes()


def png_shape(path_or_bytes) -> tuple[int, ...]:
    source = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes
    return matplotlib.image.imread(source, format="png").shape


# ------------------------------------------------------------------------------------------ loading


def test_quantiles_over_replications(single):
    run = load_run(single)
    p5, med, p95 = run.timeline["traced"]
    assert run.timeline.replications == 5
    np.testing.assert_allclose(med, 0.6)
    np.testing.assert_allclose(p5, 0.51)
    np.testing.assert_allclose(p95, 0.69)
    np.testing.assert_allclose(run.timeline.days, np.arange(0, 97, 6) / 24)  # hours -> days
    assert run.name == "solo"
    q = run.anonymity["mixer"]
    assert q.keys == (0.1, 1.0, 10.0)
    np.testing.assert_allclose(q[1.0][1][0], 1000 + 20)  # median of 1000 + 10 r, r = 0..4


def test_unaligned_curves_hold_their_last_value():
    # replication 0 reports at t = 0 and 10, replication 1 at t = 0 and 5: compared on the union grid
    q = plots.quantiles(np.array([0, 0, 1, 1]), np.array([0.0, 10.0, 0.0, 5.0]), np.zeros(4, int),
                        np.array([1.0, 3.0, 1.0, 5.0]), ("x",))
    np.testing.assert_allclose(q.days * 24, [0, 5, 10])
    np.testing.assert_allclose(q.median[:, 0], [1.0, 3.0, 4.0])


def test_comparison_order_from_comparison_json_else_alphabetical(comparison, tmp_path):
    assert [r.name for r in load_runs(comparison)] == ["zeta_policy", "alpha_policy"]
    other = tmp_path / "cmp"
    make_run(other / "zeta", "zeta", pools=False, reps=2)
    make_run(other / "alpha", "alpha", pools=False, reps=2)
    assert [r.name for r in load_runs(other)] == ["alpha", "zeta"]
    (other / "comparison.json").write_text(json.dumps({"scenarios": ["zeta", "missing"]}))
    with pytest.raises(RunDirError, match="missing"):
        load_runs(other)


# ------------------------------------------------------------------------------------------ figures


def test_plot_functions_draw_on_given_axes(comparison):
    runs = load_runs(comparison)
    ax = plots.plot_traceability(runs, "frozen")
    assert isinstance(ax, Axes)
    assert [line.get_label() for line in ax.get_lines()][:2] == [
        "zeta_policy (reference), 5 runs, 4-day horizon", "alpha_policy, 5 runs, 3-day horizon"]
    assert "days" in ax.get_xlabel() and "share of stolen value" in ax.get_ylabel()
    assert ax.get_title().startswith("Frozen")
    fig = plots.new_figure(6, 4)
    given = fig.add_subplot()
    assert plots.plot_final_outcomes(runs, ax=given) is given
    assert len(given.patches) == 2 * len(STATES)  # one bar per state and scenario
    anon = plots.plot_anonymity(runs[0])
    assert anon.get_yscale() == "log" and "notes" in anon.get_ylabel()


def test_write_figures_single_run(single_figures):
    figs = single_figures[0].parent
    assert single_figures == [figs / f"{n}.{f}" for n in FIGURE_NAMES for f in ("png", "svg")]
    for path in single_figures:
        assert path.stat().st_size > 5000, path
    # sizes in pixels (rows, columns) at 150 dpi: 11 x 7.5 in, 9 x 4.9 in, 11 x 5.5 in, 9 x 4.7 in
    expected = {"traceability": (1125, 1650), "outcome_areas": (735, 1350), "final_outcomes": (825, 1650),
                "anonymity": (705, 1350)}
    for name, (rows, cols) in expected.items():
        assert png_shape(figs / f"{name}.png")[:2] == (rows, cols), name
    svg = (figs / "traceability.svg").read_text(encoding="utf-8")
    assert svg.lstrip().startswith("<?xml") and "</svg>" in svg


def test_write_figures_default_dir_and_formats(comparison):
    written = write_figures(comparison, formats=("png",))
    assert all(p.parent == comparison / "figures" and p.suffix == ".png" for p in written)
    assert len(written) == 5  # zeta_policy has a pool mixer, so the anonymity figure exists; and the flow
    assert png_shape(comparison / "figures" / "outcome_areas.png")[:2] == (735, 1650)  # two panels side by side
    with pytest.raises(ValueError, match="pdf"):
        write_figures(comparison, formats=("pdf",))


def test_no_anonymity_figure_without_pools(tmp_path):
    run = make_run(tmp_path / "run", "plain", pools=False, reps=2)
    written = write_figures(run, formats=("png",))
    assert {p.stem for p in written} == {"traceability", "outcome_areas", "final_outcomes", "flow"}


def test_figures_are_byte_identical_on_repeat(single, single_figures, tmp_path):
    second = write_figures(single, tmp_path / "again")
    assert len(second) == len(single_figures) == 10
    for a, b in zip(single_figures, second):
        assert a.read_bytes() == b.read_bytes(), a.name
    # and not by luck of the clock: no date in the SVG, no software tag in the PNG
    svg = second[1].read_bytes()
    png = second[0].read_bytes()
    assert b"<dc:date>" not in svg
    assert b"Software" not in png and b"matplotlib version" not in png.lower()


# ------------------------------------------------------------------------------------------- report


def test_report_is_one_self_contained_page(comparison_report):
    text = comparison_report.decode("utf-8")
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    # no external resources: every src/href is inline data or an in-page anchor
    refs = re.findall(r"""(?:src|href)\s*=\s*["']?([^"' >]*)""", text, flags=re.I)
    assert refs and all(r.startswith(("data:", "#")) for r in refs), refs
    assert not re.search(r"https?://", text)
    assert "<link" not in text and "@import" not in text and "<script" not in text.lower()
    # the table, with each scenario and its numbers; the reference first
    assert '<table class="comparison">' in text and "<td>days to 50% cashed out</td>" in text
    assert "<td>launderer cost (USD)</td>" in text
    assert text.index("zeta_policy") < text.index("alpha_policy")
    assert '60.0%<span class="range">51.0 – 69.0%</span>' in text  # traced: median and 90 % interval
    # frozen: 0 % -> 40 %, a difference of medians (not paired): without an interval, not coloured
    assert '<span class="delta">Δ +40.0 pp</span>' in text and "delta better" not in text
    assert '2.0<span class="range">1.8 – 2.2</span>' in text  # 48 h to half cashed out = 2.0 days
    # these runs keep no replications: the numbers are their summary.json's, and the page says so
    assert "no stored replications" in text and "summary.json" in text
    # figures embedded as PNG that decode
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', text)
    assert len(images) == 5
    for data in images:
        assert png_shape(base64.b64decode(data))[1] in (1350, 1650)  # 9 or 11 inches at 150 dpi


def test_report_escapes_and_shows_parameters(comparison_report):
    text = comparison_report.decode("utf-8")
    assert EVIL not in text and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;quotes&quot;" in text
    assert "scenario.yaml" in text and "name: alpha_policy" in text  # alpha's file is shown
    assert "no freezes" in text  # zeta has no scenario file: its description from summary.json


def test_report_is_deterministic(comparison, comparison_report):
    assert write_report(comparison).read_bytes() == comparison_report


def test_report_of_a_single_run_has_no_reference():
    traced = {"median_share": 0.5, "p5_share": 0.4, "p95_share": 0.6}
    runs = [plots.RunData("solo", Path("."), {"states": {"traced": traced}, "stolen_usd": 1.0, "runs": 3},
                          plots.quantiles([0], [0.0], [0], [0.5], STATES), {})]
    table = comparison_table(runs)
    assert "solo" in table and "reference" not in table and "Δ" not in table
    assert table.count("<tr") == 3  # the head, the section, traced (what summary.json does not hold is left out)
    assert "<td>traced</td><td>50.0%<span" in table


def test_report_title_counts_the_policies_besides_the_reference(tmp_path):
    root = tmp_path / "cmp"
    for name, frozen in (("base", 0.1), ("policy_a", 0.2), ("policy_b", 0.3)):
        make_run(root / name, name, frozen=frozen, pools=False)
    (root / "comparison.json").write_text(json.dumps({"scenarios": ["base", "policy_a", "policy_b"]}), encoding="utf-8")
    text = write_report(root).read_text(encoding="utf-8")
    assert "<title>launderflow: base and 2 policies</title>" in text
    assert "<h1>launderflow: base and 2 policies</h1>" in text
    assert "3 scenarios" not in text


# ---------------------------------------------------------------------------------------------- CLI


def test_cli_plot_with_out_and_format(single, tmp_path):
    result = CliRunner().invoke(main, ["plot", str(single), "--out", str(tmp_path / "f"), "--format", "svg"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "f").iterdir()) == sorted(
        [".launderflow-files.json", *(f"{n}.svg" for n in FIGURE_NAMES)])  # (the ledger of what launderflow wrote)
    assert f"wrote {tmp_path / 'f' / 'traceability.svg'}" in result.stdout


@pytest.mark.parametrize("kind", ["missing", "empty", "file", "bad_summary", "bad_parquet"])
def test_cli_bad_dir_exits_2(kind, tmp_path, single):
    target = tmp_path / "target"
    if kind == "empty":
        target.mkdir()
    elif kind == "file":
        target.write_text("not a directory")
    elif kind in ("bad_summary", "bad_parquet"):
        make_run(target, "broken", pools=False, reps=2)
        broken = "summary.json" if kind == "bad_summary" else "timeline.parquet"
        (target / broken).write_text("{ not json nor parquet")
    for command in ("plot", "report"):
        result = CliRunner().invoke(main, [command, str(target)])
        assert result.exit_code == 2, (command, result.output)
        assert isinstance(result.exception, SystemExit)  # a clean exit, not a crash
        assert "Traceback" not in result.output
        assert result.stderr.startswith(f"error: {target}"), result.stderr
    assert not (target / "report.html").exists()


def test_real_run_end_to_end(tmp_path):
    out = tmp_path / "all_venues"
    runner = CliRunner()
    result = runner.invoke(main, ["run", str(ALL_VENUES), "--runs", "2", "--set", "clock.horizon=3d", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "anonymity.parquet").is_file()
    result = runner.invoke(main, ["plot", str(out), "--format", "png"])
    assert result.exit_code == 0, result.output
    assert {p.name for p in (out / "figures").iterdir()} == {f"{n}.png" for n in FIGURE_NAMES}
    run = load_run(out)
    assert run.name == "all_venues" and run.timeline.replications == 2
    p5, med, p95 = run.timeline["cashed_out"]
    assert np.all((p5 <= med + 1e-12) & (med <= p95 + 1e-12)) and med[-1] > 0


@pytest.mark.parametrize("top", [0.04, 0.2, 0.35, 0.6, 1.0, 1.16])
def test_share_axis_labels_say_exactly_where_their_ticks_are(top):
    from launderflow.views.plots import _share_axis, new_figure

    ax = new_figure(4, 3).add_subplot()
    _share_axis(ax, top)
    ax.figure.canvas.draw()
    shown = [(t.get_loc(), t.label1.get_text()) for t in ax.yaxis.get_major_ticks() if 0 <= t.get_loc() <= top]
    assert len(shown) >= 4
    for value, label in shown:  # e.g. a tick at 12.5 % must not read "12%"
        assert float(label.rstrip("%").replace("\u2212", "-")) == pytest.approx(value * 100, abs=1e-9), (value, label)


# ------------------------------------------------------------------------------------- sensitivity


def _sweep_rows(labels: list[str], runs: int = 2) -> list[dict]:
    """Rows as `compare` gives them; seized is 0 everywhere and frozen is 0 at the last point."""
    rows = []
    for k, label in enumerate(labels):
        for metric, median in (("traced_share", 0.3), ("frozen_share", 0.1 if k < len(labels) - 1 else 0.0),
                               ("seized_share", 0.0), ("cashed_out_share", 0.6)):
            rows.append({"scenario": label, "metric": metric, "runs": runs, "median": median,
                         "p5": max(0.0, median - 0.01), "p95": median + 0.01})
    return rows


def _errorbars(ax: Axes) -> list:
    return [c for c in ax.containers if type(c).__name__ == "ErrorbarContainer"]


def test_sensitivity_of_a_grid_has_points_with_error_bars_and_no_lines(tmp_path):
    labels = ["latency=0h, compliance=0.5", "latency=0h, compliance=0.9", "latency=30d, compliance=0.5"]
    axes = [("tracing.sharing.latency", ["0h", "30d"]), ("venues.x.compliance", [0.5, 0.9])]
    first, second = (plots.write_sensitivity(tmp_path / d, _sweep_rows(labels), axes, labels) for d in ("a", "b"))
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]  # deterministic files
    with plots.style_context():
        fig = plots.sensitivity_figure(_sweep_rows(labels), axes, labels)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == ["Traced", "Frozen", "Seized", "Cashed out"]  # one panel per outcome
    for ax in panels:
        (c,) = _errorbars(ax)
        line, _, (bars,) = c.lines
        assert line.get_linestyle() == "None"  # unrelated settings are not joined by a line
        assert len(bars.get_segments()) == len(labels)  # one 5-95 % bar per point
        np.testing.assert_array_equal(line.get_xdata(), [0, 1, 2])  # one position per point, no sideways nudge
        low, high = ax.get_ylim()
        assert low <= min(c.lines[0].get_ydata()) and high > max(c.lines[0].get_ydata())  # every point in view
    # markers at 0 % are whole: seized (0 everywhere) has room below 0
    fig.canvas.draw()
    seized = panels[2]
    (c,) = _errorbars(seized)
    radius = c.lines[0].get_markersize() / 2 * fig.dpi / 72
    assert seized.transData.transform((0, 0))[1] - seized.transAxes.transform((0, 0))[1] > radius
    assert "5–95 % range of 2 replications per point" in fig._suptitle.get_text()


def test_sensitivity_of_one_numeric_parameter_joins_its_points_at_their_values():
    labels = ["compliance=0.3", "compliance=0.5", "compliance=0.9"]
    rows = _sweep_rows(labels)
    for r in rows:  # frozen 2.3 % -> 3.4 %: visible on its own axis, not flat on 0-100 %
        if r["metric"] == "frozen_share":
            r["median"], r["p5"], r["p95"] = {"compliance=0.3": (0.023, 0.021, 0.025),
                                              "compliance=0.5": (0.028, 0.026, 0.03),
                                              "compliance=0.9": (0.034, 0.032, 0.036)}[r["scenario"]]
    with plots.style_context():
        fig = plots.sensitivity_figure(rows, [("venues.x.compliance", [0.3, 0.5, 0.9])], labels)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    for ax in panels:
        (line,) = ax.get_lines()
        assert line.get_linestyle() == "-"  # a trend along a numeric parameter
        np.testing.assert_array_equal(line.get_xdata(), [0.3, 0.5, 0.9])  # exactly at their values
        assert ax.get_xlabel() == "venues.x.compliance"
        assert len(ax.collections) == 1  # the 5-95 % band
    frozen = panels[1]
    low, high = frozen.get_ylim()
    assert high < 0.1 and (0.034 - 0.023) / (high - low) > 0.2  # the change spans a fifth of the axis or more


# --------------------------------------------------------------------------------------- anonymity

TORNADO = {1.0: 18_000.0, 10.0: 9_000.0, 100.0: 2_900.0}  # the baseline's pools: notes per denomination


def _labelled_ticks(ax: Axes) -> list[float]:
    ax.figure.canvas.draw()
    low, high = ax.get_ylim()
    return [t.get_loc() for t in ax.yaxis.get_major_ticks() if low <= t.get_loc() <= high and t.label1.get_text()]


def _nearest_tick_ratio(ticks: list[float], level: float) -> float:
    return min(max(t / level, level / t) for t in ticks)


def test_anonymity_has_a_labelled_tick_near_every_pool(tmp_path):
    run = load_run(make_run(tmp_path / "run", "baseline", notes=TORNADO))
    with plots.style_context():
        fig = plots.anonymity_figure([run])
    ax = fig.axes[0]
    ticks = _labelled_ticks(ax)
    for denomination, level in TORNADO.items():  # the 100 ETH pool (~2,900 notes) too, not only 5,000-20,000
        assert _nearest_tick_ratio(ticks, level) < 1.5, (denomination, ticks)


def test_anonymity_panels_share_one_y_range_and_the_legend_fills_the_empty_slot(tmp_path):
    runs = [load_run(make_run(tmp_path / name, name, notes=notes)) for name, notes in (
        ("baseline", TORNADO), ("designation", {d: n / 6 for d, n in TORNADO.items()}), ("combined", TORNADO))]
    with plots.style_context():
        fig = plots.anonymity_figure(runs)
    panels, slot = fig.axes[:3], fig.axes[3]
    assert [ax.get_title() for ax in panels] == ["mixer — baseline", "mixer — designation", "mixer — combined"]
    assert len({ax.get_ylim() for ax in panels}) == 1  # one y range: pools compare across panels
    low, high = panels[0].get_ylim()
    assert low < 2_900 / 6 and high > 18_000  # it holds every curve
    ticks = _labelled_ticks(panels[0])
    for level in [*TORNADO.values(), *(n / 6 for n in TORNADO.values())]:
        assert _nearest_tick_ratio(ticks, level) < 1.5, (level, ticks)
    # a 2 x 2 grid for three panels: the fourth slot holds the one legend instead of staying blank
    assert slot.get_visible() and not slot.axison
    legend = slot.get_legend()
    assert legend is not None and [t.get_text() for t in legend.get_texts()] == ["1", "10", "100"]
    assert all(ax.get_legend() is None for ax in panels) and not fig.legends


# ------------------------------------------------------------------------------------ traceability


def test_every_traceability_panel_says_what_its_x_axis_is(comparison):
    with plots.style_context():
        fig = plots.traceability_figure(load_runs(comparison))
    assert len(fig.axes) == 4
    for ax in fig.axes:  # the top panels too
        assert ax.get_xlabel() == "time since the scenario starts (days)", ax.get_title()
        assert all(label.get_visible() for label in ax.get_xticklabels())


def test_paired_runs_get_a_difference_figure_in_percentage_points(tmp_path):
    root = tmp_path / "paired"
    make_run(root / "base", "base", frozen=0.2, pools=False, paired=True)
    make_run(root / "policy", "policy", frozen=0.22, pools=False, paired=True)
    (root / "comparison.json").write_text(json.dumps({"scenarios": ["base", "policy"]}), encoding="utf-8")
    runs = load_runs(root)
    assert plots.is_paired(runs)
    with plots.style_context():
        fig = plots.traceability_difference_figure(runs)
    panels = {ax.get_title(): ax for ax in fig.axes}
    assert set(panels) == {plots.TRACE_TITLES[s] for s in plots.TRACE_STATES}
    frozen = panels[plots.TRACE_TITLES["reported_frozen"]]
    assert frozen.get_ylabel() == "difference from base (pp)"
    reference, policy = frozen.get_lines()[:2]
    np.testing.assert_allclose(reference.get_ydata(), 0)  # the reference is the flat line at 0
    # replication r froze (0.22 - 0.2) x its own wobble more: the median paired difference ends at 2.0 pp
    assert policy.get_ydata()[-1] == pytest.approx(2.0)
    # what was frozen more was cashed out less: -2.0 pp at the end
    assert panels[plots.TRACE_TITLES["cashed_out"]].get_lines()[1].get_ydata()[-1] == pytest.approx(-2.0)
    assert "paired by replication" in fig.get_suptitle()
    written = write_figures(root, tmp_path / "figs", formats=("png",))
    again = write_figures(root, tmp_path / "again", formats=("png",))
    assert [p.name for p in written] == [f"{n}.png" for n in ("traceability", "traceability_difference",
                                                              "outcome_areas", "final_outcomes", "flow")]
    assert [p.read_bytes() for p in written] == [p.read_bytes() for p in again]  # deterministic


def test_no_difference_figure_without_common_random_numbers(tmp_path):
    root = tmp_path / "unpaired"
    make_run(root / "base", "base", pools=False, paired=True)
    make_run(root / "policy", "policy", pools=False, paired=True)
    summary = json.loads((root / "policy" / "summary.json").read_text())
    summary["seed"] = 2  # another seed: replication i of each saw other draws
    (root / "policy" / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    runs = load_runs(root)
    assert not plots.is_paired(runs) and plots.traceability_difference_figure(runs) is None
    assert "traceability_difference" not in {p.stem for p in write_figures(root, formats=("png",))}


# ---------------------------------------------------------------------------------- final outcomes


@pytest.mark.parametrize("share, label", [(0.0, "0%"), (0.004, "0.4%"), (0.0052, "0.5%"), (0.0096, "1%"),
                                          (0.02, "2%"), (0.746, "75%"), (1.0, "100%")])
def test_final_outcome_labels_are_all_percentages(share, label):
    assert plots.share_label(share) == label


def test_final_outcome_bars_label_zero_as_a_percentage_too(comparison):
    runs = load_runs(comparison)  # zeta_policy froze nothing; nobody seized anything
    ax = plots.plot_final_outcomes(runs)
    labels = [t.get_text() for t in ax.texts if t.get_text().endswith("%") or t.get_text() == "0"]
    assert len(labels) == 2 * len(STATES)  # one per bar
    assert all(re.fullmatch(r"\d+(\.\d)?%", text) for text in labels), labels
    assert labels.count("0%") >= 3  # zeta's frozen, both scenarios' seized
