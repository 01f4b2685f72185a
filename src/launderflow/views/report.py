"""One self-contained HTML page for a run or a comparison: the table, the figures, the scenarios.

``write_report(DIR)`` writes ``DIR/report.html``: inline CSS, figures embedded as base64 PNG, no
scripts and no external resources, so the file can be mailed or archived on its own. Every piece
of text that comes from the run files (names, descriptions, scenario files) is HTML-escaped.

The table shows what ``launderflow compare`` prints, from the same source: the rows of
:func:`launderflow.analysis.compare.compare` over each run's stored replications, one per metric
of :func:`launderflow.metrics.comparison_measures` — final shares, time to 50 % cash-out, the
launderer's cost and, for a comparison made with ``--at`` (``at_hours`` in ``comparison.json``),
the shares at those times — under the registry's labels, in its units, coloured by which
direction is better for the investigators. Differences from the reference are paired replication
by replication when the runs share a seed and replications (:func:`launderflow.views.plots.is_paired`),
and are differences of medians otherwise. A run whose replications are not stored (no
``manifest.json`` and ``parts/``) gives the numbers its ``summary.json`` holds (the same
statistics of the same metrics), without the shares at given times; the page says so.
The scenario's parameters come from ``scenario.yaml`` / ``scenario.yml`` / ``scenario.json``
beside its summary when one is there, else its description in ``summary.json``.
The page carries no timestamp: the same run files give the same bytes.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import __version__
from ..analysis.compare import compare, measure_of
from ..metrics import DISPLACEMENT, PARAMS, Measure, collateral_measures, comparison_measures, short_usd
from ..runs.lock import locked
from ..runs.outputs import check_files, write_files
from ..runs.store import MANIFEST, PARTS, StoreError
from .plots import (SENSITIVITY_METRICS, RunData, RunDirError, build_figures, is_paired, load_runs, save_figure,
                    sensitivity_figure, style_context, sweep_axes, sweep_meta, sweep_rows)
from .tables import span

SCENARIO_FILES = ("scenario.yaml", "scenario.yml", "scenario.json")

FIGURE_CAPTIONS = {
    "traceability": "Share of the stolen value traced, frozen, seized and cashed out over time. Line: median over "
                    "the replications; band: their 5–95 % range; one colour per scenario.",
    "traceability_difference": "The same shares as differences from the reference scenario, paired by "
                               "replication (common random numbers), in percentage points. Line: median; band: "
                               "5–95 % of the paired differences.",
    "outcome_areas": "Where the stolen value is over time, per scenario: the median share in each location, "
                     "stacked (medians of the parts need not add up to exactly 100 %).",
    "final_outcomes": "Final state at the horizon: median share per scenario, error bars 5–95 % of the replications.",
    "anonymity": "Anonymity set of the pool mixers: notes in each denomination's pool over time (log scale).",
    "flow": "Where the stolen value went, per scenario: the theft, the venues it passed (grey; a dollar can pass "
            "several, so that column can sum to more than 100 %), where it is at the horizon and how victims would "
            "report it (traceable, dark, frozen or seized). What a venue froze, seized or took in fees flows to "
            "those states; the cashed-out value is split over the off-ramps by their inflow. Medians of the "
            "replications, as shares of the stolen value.",
}

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #222; margin: 0; background: #fafafa; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 32px 48px; background: #fff; }
h1 { font-size: 1.7em; margin-bottom: 0.2em; }
h2 { font-size: 1.3em; margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
h3 { font-size: 1.1em; margin-top: 1.6em; }
.lead { color: #555; margin-top: 0; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
th, td { border-bottom: 1px solid #e3e3e3; padding: 6px 10px; text-align: right; vertical-align: top; }
th { background: #f2f4f7; font-weight: 600; }
th:first-child, td:first-child { text-align: left; }
th .note { display: block; font-weight: normal; }
table.comparison td { white-space: nowrap; }
table.comparison td:first-child { white-space: normal; min-width: 12em; }
table.comparison tr.section th { background: #fff; text-align: left; padding-top: 1.1em; border-bottom: 2px solid #d0d7de; }
td .range, td .delta { display: block; color: #666; font-size: 0.85em; white-space: nowrap; }
td .delta.better { color: #1a7f37; } td .delta.worse { color: #b42318; }
.reference { background: #f7fbff; }
th.reference { background: #e8f1fb; }
table.facts td, table.facts th { text-align: left; }
figure { margin: 1.5em 0; }
figure img { width: 100%; max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; margin-top: 0.4em; }
pre { background: #f6f8fa; padding: 12px; overflow-x: auto; font-size: 0.85em; line-height: 1.35; }
details summary { cursor: pointer; color: #0b5cad; }
.note { color: #666; font-size: 0.88em; }
footer { margin-top: 3em; color: #888; font-size: 0.85em; }
"""


COLOUR_RULE = ("A Δ is green (better for the investigators) or red (worse) only when its 5–95 % range excludes "
               "zero and the metric has a better direction; reported traceable has none when reported frozen "
               "rose (value that gets frozen leaves \"traceable\"), and is then not coloured.")


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else None


def _usd(x: float | None) -> str:
    return "–" if x is None else short_usd(x).replace(" ", "\u00a0")  # (no line break before the unit)


def _days(hours: float | None) -> str:
    return "–" if hours is None else f"{hours / 24:.1f}"


def _reads_zero(text: str) -> bool:
    return not any(c in "123456789" for c in text)


# --- the rows: compare's, from the stored replications (else from summary.json) ------------------


def comparison_times(directory: str | Path) -> list[float]:
    """The ``--at`` times (hours) a directory was made with: ``at_hours`` in a comparison's
    comparison.json or a run's summary.json; none when made without ``--at``."""
    file = Path(directory) / "comparison.json"
    if not file.is_file():
        summary = Path(directory) / "summary.json"  # a run made with run --at keeps its times there
        if not summary.is_file():
            return []
        file = summary
    try:
        times = json.loads(file.read_text(encoding="utf-8")).get("at_hours") or []
    except (OSError, ValueError, AttributeError) as exc:
        raise RunDirError(f"{file}: cannot read it as JSON ({exc})") from None
    if not isinstance(times, list) or not all(_num(t) is not None and t >= 0 for t in times):
        raise RunDirError(f"{file}: \"at_hours\" must be a list of times in hours (>= 0)")
    return [float(t) for t in times]


def _has_replications(run: RunData) -> bool:
    parts = run.path / PARTS
    return (run.path / MANIFEST).is_file() and parts.is_dir() and any(p.name.isdigit() for p in parts.iterdir())


def _summary_stats(summary: dict[str, Any], m: Measure) -> tuple[float | None, float | None, float | None] | None:
    """What summary.json holds of a measure: median, 5th and 95th percentile (a None median: no
    replication had a value, e.g. half was never cashed out), or None when it does not hold it."""
    name, kw, scale = m.metric.name, m.kwargs, 1.0
    if name == "final_share":
        stats, fields = (summary.get("states") or {}).get(kw["state"]), ("median_share", "p5_share", "p95_share")
    elif name == "days_to_cash_out_share" and kw["share"] == 0.5:
        stats, fields, scale = summary.get("time_to_50pct_cash_out_hours"), ("median", "p5", "p95"), 1 / 24  # (hours)
    elif name == "launderer_cost_usd":
        stats, fields = summary.get("launderer_cost_usd"), ("median", "p5", "p95")
    elif name.startswith("honest_"):
        stats, fields = (summary.get("collateral") or {}).get(m.key), ("median", "p5", "p95")
    else:
        return None
    if not isinstance(stats, dict) or fields[0] not in stats:
        return None
    median, low, high = (None if _num(stats.get(f)) is None else _num(stats.get(f)) * scale for f in fields)  # type: ignore[operator]
    return median, low, high


def _summary_rows(runs: Sequence[RunData]) -> list[dict[str, Any]]:
    """compare's rows (without differences) from what each run's summary.json holds."""
    rows = []
    for k, run in enumerate(runs):
        for m in [*comparison_measures(), *collateral_measures()]:
            stats = _summary_stats(run.summary, m)
            if stats is not None:
                rows.append({"scenario": str(k), "metric": m.key, "runs": run.summary.get("runs"),
                             "median": stats[0], "p5": stats[1], "p95": stats[2],
                             "diff_median": None, "diff_p5": None, "diff_p95": None})
    return rows


def comparison_rows(runs: Sequence[RunData], at: Sequence[float] = ()) -> tuple[list[dict[str, Any]], str | None]:
    """The table's rows, ``scenario`` being the run's position (the reference is ``"0"``), and a
    note when they are not compare's own.

    From the stored replications: :func:`~launderflow.analysis.compare.compare`'s rows, with the
    shares at the times ``at``. When a run has no stored replications, or they cannot be read:
    the same metrics from each summary.json, without the shares at given times. Differences are
    paired when the runs are (:func:`~launderflow.views.plots.is_paired`), else differences of the
    medians (no interval).
    """
    missing = [run.name for run in runs if not _has_replications(run)]
    note = None
    if not missing:
        try:
            rows = compare([(str(k), run.path) for k, run in enumerate(runs)], list(at))
        except (StoreError, OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            note = f"The stored replications could not be read ({type(exc).__name__}: {exc})"
    else:
        note = f"{', '.join(missing)}: no stored replications (manifest.json and parts/)"
    if note is not None:
        rows = _summary_rows(runs)
        note += "; the numbers are those of each run's summary.json" + (
            f", without the shares at {', '.join(PARAMS['at'].label(t) for t in at)}" if at else "") + "."
    if len(runs) > 1 and (note is not None or not is_paired(runs)):
        medians = {(r["scenario"], r["metric"]): r["median"] for r in rows}
        for r in rows:
            ref = medians.get(("0", r["metric"]))
            both = r["scenario"] != "0" and r["median"] is not None and ref is not None
            r["diff_median"] = r["median"] - ref if both else None
            r["diff_p5"] = r["diff_p95"] = None
    return rows, note


# --- the table ----------------------------------------------------------------------------------


def _section(m: Measure) -> str:
    if "at" in m.kwargs:
        return f"Shares of the stolen value {PARAMS['at'].label(m.kwargs['at'])} after the theft"
    if m.metric.name == "final_share":
        return "Shares of the stolen value at the horizon"
    if m.metric.name.startswith("honest_"):
        return "Cost to honest users (collateral)"
    if m.metric.name in DISPLACEMENT:
        return "Displacement: where the flow went (services)"
    return "Time and cost"


def tone(m: Measure, row: dict[str, Any], frozen_rose: bool = False) -> str:
    """How a difference is coloured: ``better`` / ``worse`` for the investigators only when its 5–95 %
    interval excludes zero (a difference of medians, without an interval, is not coloured) and the
    metric has a better direction; reported traceable has none when reported frozen rose (value that
    is frozen is no longer "traceable": a fall is then no loss). Else "" (no colour)."""
    better = m.better
    low, high = row.get("diff_p5"), row.get("diff_p95")
    if better is None or low is None or high is None or row.get("diff_median") is None:
        return ""
    if m.kwargs.get("state") == "reported_traceable" and frozen_rose:
        return ""
    if low <= 0 <= high:
        return ""
    return "better" if (row["diff_median"] > 0) == (better == "higher") else "worse"


def _frozen_rose(by: dict[tuple[str, str], dict[str, Any]], scenario: str, key: str) -> bool:
    """The reported frozen share (at the same time) rose in ``scenario``, its interval above zero."""
    row = by.get((scenario, key.replace("reported_traceable", "reported_frozen")))
    return row is not None and row.get("diff_p5") is not None and row["diff_p5"] > 0


def _cell(run: RunData, m: Measure, row: dict[str, Any] | None, frozen_rose: bool = False) -> str:
    if row is None:
        return "–"
    unit = m.unit
    runs = row.get("runs") or run.summary.get("runs", run.timeline.replications)
    never = 0  # replications in which half was never cashed out (summary.json counts them)
    if m.key == "days_to_50pct_cash_out":
        never = (run.summary.get("time_to_50pct_cash_out_hours") or {}).get("never") or 0
    if row["median"] is None:
        if m.metric.never_bound is not None:  # a time never reached in any replication
            return f"never<span class=\"range\">in all {_e(runs)} runs</span>"
        return "–"
    cell = f"{_e(unit.short(row['median']))}<span class=\"range\">{_e(span(unit.short(row['p5']), unit.short(row['p95']), ' – '))}</span>"
    if never:
        cell += f"<span class=\"range\">never in {_e(never)} of {_e(runs)} runs</span>"
    if row["diff_median"] is None:
        return cell
    delta = unit.short_diff(row["diff_median"])
    lines = [f"Δ {delta}"]
    if row["diff_p5"] is not None:
        lines.append(span(unit.short_diff(row["diff_p5"]), unit.short_diff(row["diff_p95"]), " … "))
    colour = tone(m, row, frozen_rose)
    if colour and _reads_zero(delta):
        colour = ""
    if not colour and frozen_rose and m.kwargs.get("state") == "reported_traceable" and row["diff_p5"] is not None:
        lines.append("frozen rose: no better direction")
    cls = f" {colour}" if colour else ""
    return cell + "".join(f"<span class=\"delta{cls}\">{_e(line)}</span>" for line in lines)


def comparison_table(runs: Sequence[RunData], rows: list[dict[str, Any]] | None = None) -> str:
    """The table: one line per metric (the registry's label), one column per scenario (the
    reference first): median, 5–95 % range and the difference from the reference.
    ``rows``: from :func:`comparison_rows` (computed when not given)."""
    if rows is None:
        rows = comparison_rows(runs)[0]
    by = {(r["scenario"], r["metric"]): r for r in rows}
    several = len(runs) > 1
    head = ["<th>Metric</th>"]
    for i, run in enumerate(runs):
        n = run.summary.get("runs", run.timeline.replications)
        facts = [f"{n} run{'' if n == 1 else 's'}",
                 f"{_usd(_num(run.summary.get('stolen_usd')))} stolen"]
        if i == 0 and several:
            facts.insert(0, "reference")
        cls = " class=\"reference\"" if i == 0 and several else ""
        head.append(f"<th{cls}>{_e(run.name)}<span class=\"note\">{_e(' · '.join(facts))}</span></th>")
    lines, section = [], None
    for key in dict.fromkeys(r["metric"] for r in rows):
        m = measure_of(key)
        if _section(m) != section:
            section = _section(m)
            lines.append(f"<tr class=\"section\"><th colspan=\"{len(runs) + 1}\">{_e(section)}</th></tr>")
        cells = [f"<td>{_e(m.label)}</td>"]
        for i, run in enumerate(runs):
            cls = " class=\"reference\"" if i == 0 and several else ""
            cells.append(f"<td{cls}>{_cell(run, m, by.get((str(i), key)), _frozen_rose(by, str(i), key))}</td>")
        lines.append("<tr>" + "".join(cells) + "</tr>")
    return ("<div class=\"scroll\"><table class=\"comparison\">\n<thead><tr>" + "".join(head)
            + "</tr></thead>\n<tbody>\n" + "\n".join(lines) + "\n</tbody>\n</table></div>")


def _figures_html(runs: Sequence[RunData]) -> str:
    parts = []
    with style_context():
        for name, fig in build_figures(runs):
            buffer = io.BytesIO()
            save_figure(fig, buffer, "png")
            data = base64.b64encode(buffer.getvalue()).decode("ascii")
            caption = FIGURE_CAPTIONS.get(name, name)
            width = round(fig.get_figwidth() * 96)  # its size in inches, in CSS pixels: text at the size it was set
            parts.append(f"<figure id=\"fig-{_e(name)}\"><img alt=\"{_e(caption)}\" style=\"width: {width}px\" "
                         f"src=\"data:image/png;base64,{data}\">"
                         f"<figcaption>{_e(caption)}</figcaption></figure>")
    return "\n".join(parts)


def scenario_file(run: RunData) -> Path | None:
    """The scenario file saved beside a run's summary, if any (scenario.yaml, .yml or .json)."""
    for name in SCENARIO_FILES:
        if (run.path / name).is_file() and not (run.path / name).is_symlink():  # (a link: a file from elsewhere)
            return run.path / name
    return None


def _facts(run: RunData) -> str:
    s = run.summary
    horizon = _num(s.get("horizon_hours"))
    rows = [
        ("Stolen", f"{_usd(_num(s.get('stolen_usd')))} (${_num(s.get('stolen_usd')) or 0:,.0f})"),
        ("Replications", s.get("runs", run.timeline.replications)),
        ("Seed", s.get("seed", "–")),
        ("Horizon", "–" if horizon is None else f"{horizon / 24:g} days"),
    ]
    venues = s.get("venues") or {}
    if venues:
        rows.append(("Venues", "; ".join(f"{name} ({v.get('kind', '?')}, {v.get('jurisdiction', '?')})"
                                         for name, v in venues.items())))
    actions = s.get("interventions") or {}
    rows.append(("Interventions", "; ".join(
        f"{name} ({a.get('kind', '?')}, applied at day {_days(_num((a.get('applied_at_hours') or {}).get('median')))})"
        for name, a in actions.items()) or "none"))
    return "<table class=\"facts\">" + "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows) + "</table>"


def scenario_section(run: RunData) -> str:
    description = str(run.summary.get("description") or "").strip()
    parts = [f"<h3 id=\"scenario-{_e(run.name)}\">{_e(run.name)}</h3>"]
    parts.append(f"<p>{_e(description)}</p>" if description else "<p class=\"note\">No description in summary.json.</p>")
    parts.append(_facts(run))
    file = scenario_file(run)
    if file is not None:
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            parts.append(f"<p class=\"note\">{_e(file.name)} could not be read ({_e(exc)}).</p>")
        else:
            lines = len(text.splitlines())
            parts.append(f"<details><summary>Scenario parameters: {_e(file.name)} ({lines} lines)</summary>"
                         f"<pre>{_e(text)}</pre></details>")
    else:
        parts.append(f"<p class=\"note\">No {' / '.join(SCENARIO_FILES)} beside this run's summary.json; "
                     "the description above is the one recorded in summary.json.</p>")
    return "\n".join(parts)


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    save_figure(fig, buffer, "png")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def sweep_section(sweep: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """A sweep's own view: the swept parameter(s) on the x axis with each outcome's 5–95 % band, and
    a table of every point (its parameter values, then each outcome's median and 5–95 % range)."""
    labels = list(sweep["scenarios"])
    with style_context():
        data = _png(sensitivity_figure(rows, sweep_axes(sweep), labels))
    caption = ("Final shares at each sweep point: median over the replications, band (or bars) 5–95 %. "
               "Each panel's axis fits its outcome.")
    by = {(r["scenario"], r["metric"]): r for r in rows}
    params = list(sweep["parameters"])
    head = "".join(f"<th>{_e(p)}</th>" for p in params) + "".join(
        f"<th>{_e(measure_of(m).label)}</th>" for m in SENSITIVITY_METRICS)
    lines = []
    for point in sweep["points"]:
        cells = "".join(f"<td>{_e(point[p])}</td>" for p in params)
        for metric in SENSITIVITY_METRICS:
            r = by.get((point["label"], metric))
            unit = measure_of(metric).unit
            cells += ("<td>–</td>" if r is None or r.get("median") is None else
                      f"<td>{_e(unit.short(r['median']))}<span class=\"range\">"
                      f"{_e(span(unit.short(r['p5']), unit.short(r['p95']), ' – '))}</span></td>")
        lines.append(f"<tr>{cells}</tr>")
    return ("<h2>Sweep</h2>\n"
            f"<figure id=\"fig-sensitivity\"><img alt=\"{_e(caption)}\" src=\"data:image/png;base64,{data}\">"
            f"<figcaption>{_e(caption)}</figcaption></figure>\n"
            "<div class=\"scroll\"><table class=\"comparison sweep\">\n<thead><tr>" + head + "</tr></thead>\n<tbody>\n"
            + "\n".join(lines) + "\n</tbody>\n</table></div>")


def render_report(runs: Sequence[RunData], title: str | None = None, at: Sequence[float] = (),
                  sweep: dict[str, Any] | None = None, sweep_rows_: list[dict[str, Any]] | None = None) -> str:
    """The report page as a string (``at``: the times, in hours, of the shares ``compare --at`` or
    ``run --at`` showed; ``sweep``: a sweep directory's comparison.json, whose own section comes first)."""
    names = [run.name for run in runs]
    others = len(runs) - 1
    if title is None:
        title = (f"launderflow: {names[0]}" if not others
                 else f"launderflow: {names[0]} and {others} {'policy' if others == 1 else 'policies'}")
    rows, data_note = comparison_rows(runs, at)
    paired = data_note is None and is_paired(runs)
    if not others:
        n = runs[0].timeline.replications
        lead = f"One scenario, {n} Monte Carlo replication{'' if n == 1 else 's'}."
    elif paired:
        lead = (f"{names[0]}, the reference, and {others} {'policy' if others == 1 else 'policies'} "
                f"({', '.join(names[1:])}) on common random numbers: replication i of each starts from the same "
                f"random stream. Δ is the median of the replication-by-replication differences from {names[0]}, "
                "with their 5–95 % range below it. " + COLOUR_RULE)
    else:
        why = ("the replications that would pair them are not stored" if is_paired(runs) else
               "the runs do not share a seed and replications, so they cannot be compared replication by replication")
        lead = (f"{names[0]}, the reference, and {others} {'policy' if others == 1 else 'policies'} "
                f"({', '.join(names[1:])}). Δ is the difference of the medians from {names[0]}'s ({why}); "
                "without an interval it is not coloured.")
    if sweep is not None:
        title = f"launderflow: sweep of {' × '.join(sweep['parameters'])}" if title.startswith("launderflow: ") else title
        scenario = str(runs[0].summary.get("scenario") or names[0])
        lead = (f"A sweep of {scenario} over {' × '.join(sweep['parameters'])}: {len(names)} points on common random "
                f"numbers. In the Outcomes table the first point ({names[0]}) is the reference. "
                + lead.split(". ", 1)[-1])
    body = [
        f"<h1>{_e(title)}</h1>",
        f"<p class=\"lead\">{_e(lead)}</p>",
        *([sweep_section(sweep, sweep_rows_ or [])] if sweep is not None else []),
        "<h2>Outcomes</h2>",
        "<p class=\"note\">The metrics <code>launderflow compare</code> prints: median over the replications and, "
        "below it, the 90 % interval (5th–95th percentile). Shares are of the stolen value, at the horizon unless a "
        "time after the theft is given; days to 50 % cashed out: until half the stolen value had left the chain; "
        "launderer cost: network fees plus every venue's fees, commissions and haircuts.</p>",
        *([f"<p class=\"note\">{_e(data_note)}</p>"] if data_note else []),
        comparison_table(runs, rows),
        "<h2>Figures</h2>",
        _figures_html(runs),
        "<h2>Scenarios</h2>",
        *[scenario_section(run) for run in runs],
        f"<footer>Written by launderflow {_e(__version__)} from the summary.json, timeline.parquet, "
        "anonymity.parquet and stored replications of each run.</footer>",
    ]
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{_e(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n"
            + "\n".join(body) + "\n</main>\n</body>\n</html>\n")


def write_report(directory: str | Path, overwrite: bool = False) -> Path:
    """Write DIR/report.html for a run directory or a comparison directory and return its path.

    It is launderflow's own file (:func:`~launderflow.runs.outputs.write_files`): never written
    through a link, and a report.html launderflow did not write is refused unless ``overwrite``.
    Holds DIR's writer lock (:class:`~launderflow.runs.lock.LockedError`) while it writes."""
    directory = Path(directory)
    runs = load_runs(directory)
    sweep = sweep_meta(directory)
    rows = sweep_rows(directory) if sweep is not None else None
    with locked(directory):  # one writer per directory: not while a run rewrites it
        check_files(directory, ["report.html"], overwrite)  # before the figures are drawn
        html_text = render_report(runs, at=comparison_times(directory), sweep=sweep, sweep_rows_=rows)
        return write_files(directory, {"report.html": html_text}, overwrite)[0]
