"""One self-contained HTML page for a run or a comparison: the table, the figures, the scenarios.

``write_report(DIR)`` writes ``DIR/report.html``: inline CSS, figures embedded as base64 PNG, no
scripts and no external resources, so the file can be mailed or archived on its own. Every piece
of text that comes from the run files (names, descriptions, scenario files) is HTML-escaped.

The numbers come from each scenario's ``summary.json`` (the same medians and 5–95 % ranges that
``launderflow run`` prints). Differences from the reference are paired replication by replication
(as ``launderflow compare`` reports them) when the runs share a seed and replications, and are
differences of medians otherwise. The scenario's parameters come from ``scenario.yaml`` /
``scenario.yml`` / ``scenario.json`` beside its summary when one is there, else its description in
``summary.json``.
The page carries no timestamp: the same run files give the same bytes.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import __version__
from ..analysis.compare import compare
from ..metrics import METRICS, short_usd
from .plots import RunData, build_figures, load_runs, save_figure, style_context

TABLE_STATES: tuple[tuple[str, str], ...] = (
    ("traced", "Traced"),
    ("frozen", "Frozen"),
    ("seized", "Seized"),
    ("cashed_out", "Cashed out"),
)
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
}

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #222; margin: 0; background: #fafafa; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 32px 48px; background: #fff; }
h1 { font-size: 1.7em; margin-bottom: 0.2em; }
h2 { font-size: 1.3em; margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
h3 { font-size: 1.1em; margin-top: 1.6em; }
.lead { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
th, td { border-bottom: 1px solid #e3e3e3; padding: 6px 10px; text-align: right; vertical-align: top; }
th { background: #f2f4f7; font-weight: 600; }
th:first-child, td:first-child { text-align: left; }
td .range, td .delta { display: block; color: #666; font-size: 0.85em; white-space: nowrap; }
td .delta.better { color: #1a7f37; } td .delta.worse { color: #b42318; }
tr.reference td { background: #f7fbff; }
table.facts td, table.facts th { text-align: left; }
figure { margin: 1.5em 0; }
figure img { width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; margin-top: 0.4em; }
pre { background: #f6f8fa; padding: 12px; overflow-x: auto; font-size: 0.85em; line-height: 1.35; }
details summary { cursor: pointer; color: #0b5cad; }
.note { color: #666; font-size: 0.88em; }
footer { margin-top: 3em; color: #888; font-size: 0.85em; }
"""



def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else None


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x * 100:.1f} %"


def _usd(x: float | None) -> str:
    return "–" if x is None else short_usd(x).replace(" ", "\u00a0")  # (no line break before the unit)


def _days(hours: float | None) -> str:
    return "–" if hours is None else f"{hours / 24:.1f}"


Paired = dict[tuple[int, str], tuple[float, float, float]]  # (run position, state) -> pp


def paired_differences(runs: Sequence[RunData]) -> Paired | None:
    """Per (position of the run, final state): median, 5th and 95th percentile of the
    replication-by-replication difference of its share from the first run's, in percentage points.

    Only when the runs were made on common random numbers (one seed, replications with the same
    indexes, as ``launderflow compare`` makes them); otherwise None, and the table compares medians.
    """
    if len(runs) < 2 or len({run.summary.get("seed") for run in runs}) != 1 or runs[0].summary.get("seed") is None:
        return None
    indexes = [sorted(r.get("index") for r in run.summary.get("replications") or []) for run in runs]
    if not indexes[0] or any(ix != indexes[0] for ix in indexes):
        return None
    rows = compare([(str(k), run.path) for k, run in enumerate(runs)])
    paired: Paired = {}
    for row in rows:
        if row["diff_median"] is not None and row["metric"].endswith("_share"):
            state = row["metric"].removesuffix("_share")
            paired[(int(row["scenario"]), state)] = (row["diff_median"] * 100, row["diff_p5"] * 100,
                                                     row["diff_p95"] * 100)
    return paired


def _share_cell(run: RunData, state: str, reference: RunData | None,
                paired: tuple[float, float, float] | None) -> str:
    s = run.summary["states"].get(state, {})
    med, lo, hi = _num(s.get("median_share")), _num(s.get("p5_share")), _num(s.get("p95_share"))
    cell = f"{_pct(med)}<span class=\"range\">{_pct(lo)} – {_pct(hi)}</span>"
    if reference is None or med is None:
        return cell
    if paired is not None:
        delta, d5, d95 = paired
        lines = [f"{delta:+.1f} pp vs reference", f"({d5:+.1f} … {d95:+.1f} pp)"]
    else:
        ref = _num(reference.summary["states"].get(state, {}).get("median_share"))
        if ref is None:
            return cell
        delta = (med - ref) * 100
        lines = [f"{delta:+.1f} pp vs reference"]
    better = METRICS["final_share"](state=state).better  # for the investigators: green, else red
    tone = "" if abs(delta) < 0.05 or better is None else " better" if (delta > 0) == (better == "higher") else " worse"
    return cell + "".join(f"<span class=\"delta{tone}\">{line}</span>" for line in lines)


def _time_cell(run: RunData) -> str:
    t = run.summary.get("time_to_50pct_cash_out_hours") or {}
    runs = run.summary.get("runs", run.timeline.replications)
    never = t.get("never") or 0
    med = _num(t.get("median"))
    if med is None:
        return f"never<span class=\"range\">in all {_e(runs)} runs</span>"
    cell = f"{_days(med)}<span class=\"range\">{_days(_num(t.get('p5')))} – {_days(_num(t.get('p95')))}</span>"
    if never:
        cell += f"<span class=\"range\">never in {_e(never)} of {_e(runs)} runs</span>"
    return cell


def _cost_cell(run: RunData) -> str:
    c = run.summary.get("launderer_cost_usd") or {}
    return (f"{_usd(_num(c.get('median')))}<span class=\"range\">{_usd(_num(c.get('p5')))} – "
            f"{_usd(_num(c.get('p95')))}</span>")


def comparison_table(runs: Sequence[RunData], paired: Paired | None = None) -> str:
    """The table: per scenario the median and 5–95 % range of each share, time to 50 % cash-out, cost,
    and each share's difference from the first scenario (``paired``: from :func:`paired_differences`)."""
    head = ["Scenario", "Runs", "Stolen"] + [f"{label}<br><span class=\"note\">share of stolen value</span>"
                                            for _, label in TABLE_STATES]
    head += ["Time to 50 % cash-out<br><span class=\"note\">days</span>",
             "Launderer cost<br><span class=\"note\">fees, commissions, haircuts (USD)</span>"]
    rows = []
    for i, run in enumerate(runs):
        reference = runs[0] if i > 0 else None
        name = _e(run.name) + (" <span class=\"note\">(reference)</span>" if i == 0 and len(runs) > 1 else "")
        cells = [name, _e(run.summary.get("runs", run.timeline.replications)), _usd(_num(run.summary.get("stolen_usd")))]
        cells += [_share_cell(run, state, reference, None if paired is None else paired.get((i, state)))
                  for state, _ in TABLE_STATES]
        cells += [_time_cell(run), _cost_cell(run)]
        cls = " class=\"reference\"" if i == 0 and len(runs) > 1 else ""
        rows.append(f"<tr{cls}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return ("<table class=\"comparison\">\n<thead><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead>\n"
            "<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>")


def _figures_html(runs: Sequence[RunData]) -> str:
    parts = []
    with style_context():
        for name, fig in build_figures(runs):
            buffer = io.BytesIO()
            save_figure(fig, buffer, "png")
            data = base64.b64encode(buffer.getvalue()).decode("ascii")
            caption = FIGURE_CAPTIONS.get(name, name)
            parts.append(f"<figure id=\"fig-{_e(name)}\"><img alt=\"{_e(caption)}\" src=\"data:image/png;base64,{data}\">"
                         f"<figcaption>{_e(caption)}</figcaption></figure>")
    return "\n".join(parts)


def scenario_file(run: RunData) -> Path | None:
    """The scenario file saved beside a run's summary, if any (scenario.yaml, .yml or .json)."""
    for name in SCENARIO_FILES:
        if (run.path / name).is_file():
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


def render_report(runs: Sequence[RunData], title: str | None = None) -> str:
    """The report page as a string."""
    names = [run.name for run in runs]
    if title is None:
        title = (f"launderflow: {names[0]}" if len(runs) == 1
                 else f"launderflow: {len(runs)} scenarios compared with {names[0]}")
    paired = paired_differences(runs)  # None for one run
    if len(runs) == 1:
        lead = f"One scenario, {runs[0].timeline.replications} Monte Carlo replications."
    elif paired is not None:
        lead = (f"{len(runs)} scenarios ({', '.join(names)}) on common random numbers: replication i of each "
                f"starts from the same random stream. The first, {names[0]}, is the reference: “pp vs reference” "
                "is the median of the replication-by-replication differences from it, in percentage points, with "
                "their 5–95 % range in brackets.")
    else:
        lead = (f"{len(runs)} scenarios ({', '.join(names)}); the first, {names[0]}, is the reference: "
                "“pp vs reference” is the difference of the medians in percentage points (the runs do not share "
                "a seed and replications, so they cannot be compared replication by replication).")
    body = [
        f"<h1>{_e(title)}</h1>",
        f"<p class=\"lead\">{_e(lead)}</p>",
        "<h2>Outcomes</h2>",
        "<p class=\"note\">Shares of the stolen value at the end of the horizon: median over the replications and, "
        "below it, the 90 % interval (5th–95th percentile). Time to 50 % cash-out: median days until half the stolen "
        "value had left the chain, with its 90 % interval.</p>",
        comparison_table(runs, paired),
        "<h2>Figures</h2>",
        _figures_html(runs),
        "<h2>Scenarios</h2>",
        *[scenario_section(run) for run in runs],
        f"<footer>Written by launderflow {_e(__version__)} from the summary.json, timeline.parquet and "
        "anonymity.parquet files of each run.</footer>",
    ]
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{_e(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n"
            + "\n".join(body) + "\n</main>\n</body>\n</html>\n")


def write_report(directory: str | Path) -> Path:
    """Write DIR/report.html for a run directory or a comparison directory and return its path."""
    directory = Path(directory)
    runs = load_runs(directory)
    path = directory / "report.html"
    path.write_text(render_report(runs), encoding="utf-8")
    return path
