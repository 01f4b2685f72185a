"""Terminal tables (rich): a run's summary and comparisons of runs, sized for an 80-column terminal."""

from __future__ import annotations

import re
from typing import Any

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from ..metrics import METRICS, SHARE, USD

#: The longest scenario name a comparison row shows whole in an 80-column terminal; with a longer
#: one (a sweep point's parameters) the rows show #1, #2, ... and a legend above gives each name.
NAME_ROOM = 22


def summary_table(summary: dict[str, Any]) -> Group:
    """The run's final states (the registry's labels and units), with what was run above and the
    time to 50 % cash-out below.

    Heading and footnote are lines of their own, not the table's title and caption, so that they
    use the console's width instead of wrapping at the table's.
    """
    runs = summary["runs"]
    heading = Text(f"{summary['scenario']}: ${summary['stolen_usd']:,.0f} stolen, {runs} run(s), "
                   f"seed {summary['seed']}, horizon {summary['horizon_hours'] / 24:g} days", style="bold")
    table = Table()
    table.add_column("final state")
    table.add_column("median share", justify="right")
    table.add_column("5-95 % range", justify="right")
    table.add_column("median USD", justify="right")
    for state, s in summary["states"].items():
        share = METRICS["final_share"](state=state)  # (its label: cashed out, reported traceable)
        table.add_row(share.label, SHARE.format(s["median_share"]),
                      f"{SHARE.format(s['p5_share'])} - {SHARE.format(s['p95_share'])}", USD.format(s["median_usd"]))
    t = summary["time_to_50pct_cash_out_hours"]
    reached = runs - t["never"]
    if t["median"] is not None:
        # (the median and range are over the runs in which half was cashed out)
        footnote = (f"half cashed out after {t['median'] / 24:.1f} d (median; 5-95 %: {t['p5'] / 24:.1f}-"
                    f"{t['p95'] / 24:.1f} d) in {reached} of {runs} runs")
    else:
        footnote = f"50 % was never cashed out within the horizon ({reached} of {runs} runs reached it)"
    return Group(heading, table, Text(footnote))


def span(low: str, high: str, dash: str = "–") -> str:
    """``low–high`` with a unit they share written once: 17.0–17.7%, $44.4–44.5 M, +1.1…+1.6 pp
    (the terminal's and the HTML report's ranges; ``dash`` may carry spaces)."""
    if low == high == "—":  # no value (e.g. half was never cashed out)
        return "—"
    for unit in ("%", " pp", " M", " B", " k"):
        # a scale (k, M, B) is written once only after a "$" written once: "-$137…-$70.8 k" would read as -$137
        if low.endswith(unit) and high.endswith(unit) and (unit in ("%", " pp") or low.startswith("$")):
            low = low.removesuffix(unit)
            break
    if low.startswith("$") and high.startswith("$") and any(c in "123456789" for c in low):
        high = high[1:]  # ($0–$0, not $0–0)
    return f"{low}{dash}{high}"


#: How the comparison tables say what their metrics are (the labels are the registry's).
METRICS_NOTE = "shares are of the stolen value, at the horizon unless a time is given (time after the theft)"


def comparison_table(rows: list[dict[str, Any]], title: str) -> Group:
    """Per metric a heading line, then one line per scenario: median, 5-95 % range, and the paired
    difference from the first scenario (one line per metric when there is one scenario).

    Metrics are named by their label in the registry (``days to 50% cashed out``, ``launderer
    cost (USD)``), never by their machine key; the numbers are in its units' short forms.
    Numbers never wrap or get cut; the metric heads its own line rather than taking a column, so
    the table fits an 80-column terminal with scenario names up to :data:`NAME_ROOM` characters.
    Longer names (sweep points: ``latency=1h, compliance=0.5``) would wrap inside the rows, so the
    rows then show numbers and a legend gives the names, each on one line.
    """
    from ..analysis.compare import measure_of

    def fmt(metric: str, value: float | None, diff: bool = False) -> str:
        unit = measure_of(metric).unit
        return unit.short_diff(value) if diff else unit.short(value)

    scenarios = list(dict.fromkeys(r["scenario"] for r in rows))
    metrics = list(dict.fromkeys(r["metric"] for r in rows))
    by = {(r["scenario"], r["metric"]): r for r in rows}
    paired = len(scenarios) > 1
    keyed = paired and max(map(len, scenarios)) > NAME_ROOM
    shown = {sc: f"#{k + 1}" if keyed else sc for k, sc in enumerate(scenarios)}
    legend = [Text(f"{shown[sc]:>4}  {sc}") for sc in scenarios] if keyed else []
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)  # (2 spaces between columns: 80 fit)
    # Labels fold rather than end in "…": sweep points differ at the end of long names.
    longest = max((len(re.sub(r"(\d) ([dh])\b", r"\1\2", measure_of(m).label)) for m in metrics), default=12)
    table.add_column("metric / scenario" if paired else "metric", overflow="fold", min_width=min(max(12, longest), 26))
    for name in ("median", "5–95 %", *(("Δ", "Δ 5–95 %") if paired else ())):
        table.add_column(name, justify="right", no_wrap=True)
    for m in metrics:
        label = re.sub(r"(\d) ([dh])\b", r"\1\2", measure_of(m).label)  # "at 11d": a wrap never parts 11 from d
        if paired:  # the metric heads a section of one line per scenario
            table.add_row(Text(label, style="bold"))
        present = [sc for sc in scenarios if (sc, m) in by]
        for k, sc in enumerate(present):
            r = by[(sc, m)]
            cells = [f"  {shown[sc]}" if paired else label, fmt(m, r["median"]), span(fmt(m, r["p5"]), fmt(m, r["p95"]), "–")]
            if paired:
                if r["diff_median"] is None:
                    cells += ["", ""]
                else:
                    cells += [fmt(m, r["diff_median"], diff=True),
                              span(fmt(m, r["diff_p5"], diff=True), fmt(m, r["diff_p95"], diff=True), "…")]
            table.add_row(*cells, end_section=paired and k == len(present) - 1)
    note = "median and 5–95 % over replications" + (f"; Δ = difference from {shown[scenarios[0]]}, paired by "
                                                    "replication (common random numbers)" if paired else "")
    note += f"; {METRICS_NOTE}"
    return Group(Text(title, style="bold"), *legend, table, Text(note))


def taint_table(replication: str, scores: dict[str, dict[str, Any]]) -> Group:
    """One replication's taint policies and live tracer against the truth, in holdings at the horizon.

    Sums over transfers count stolen value once per hop (billions for a theft of millions), so the
    table shows holdings, each dollar once, as shares of the stolen value; precision and recall
    (ratios) stay over the transfers. The USD figures are in taint.json.
    """
    from ..analysis.compare import short_usd

    stolen = next(iter(scores.values()))["stolen_usd"]

    def share(usd: float) -> str:
        return f"{usd / stolen:.1%}" if stolen > 0 else "—"

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("policy", no_wrap=True)
    for name in ("marked stolen", "innocent", "stolen unmarked", "precision", "recall"):
        table.add_column(name, justify="right", no_wrap=True)
    for policy, s in scores.items():
        table.add_row(policy.replace("_", " "), share(s["marked_usd"]), share(s["marked_innocent_usd"]),
                      share(s["unmarked_stolen_usd"]), f"{s['precision']:.3f}", f"{s['recall']:.3f}")
    heading = Text(f"replication {replication}: the value each taint policy marks as stolen at the horizon, "
                   f"as a share of the {short_usd(stolen)} stolen", style="bold")
    note = Text("Summed over what every address holds at the horizon (the ledger replayed; what left the chain "
                "is held off chain), each dollar once: innocent = marked but not stolen, stolen unmarked = "
                "stolen but not marked; marked - innocent + unmarked = 100%. (Where the live tracer loses a "
                "trail, it marks the value at the last address it followed.) Precision and recall: "
                "value-weighted over the transfers.")
    honest = next(iter(scores.values())).get("honest_addresses") or 0
    if not honest:
        return Group(heading, table, note)
    flagged = Text(f"Honest users' addresses flagged (received a transfer the policy taints; of {honest:,.0f}): " + "; ".join(
        f"{p.replace('_', ' ')} {s['honest_addresses_flagged']:,.0f} ({s['honest_false_positive_rate']:.1%})"
        for p, s in scores.items()) + ".")
    return Group(heading, table, note, flagged)


def facts_table(rows: list[dict[str, Any]]) -> Table:
    """Facts against the model: per fact the role, metric, fact, tolerance, the model's median and
    5-95 %, z and whether |z| <= 1 (rows as :func:`launderflow.analysis.backtest.fact_row` makes them)."""
    from ..analysis.calibrate import _fmt_metric  # (one row reads in one unit: USD in fixed millions)

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for name, justify in (("target", "left"), ("role", "left"), ("metric", "left"), ("fact", "right"),
                          ("tol.", "right"), ("model", "right"), ("5–95 %", "right"), ("z", "right"), ("ok", "left")):
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for row in rows:
        m = row["metric"].split("(")[0]
        z = row["z"]
        z_text = "-" if z is None else (">" if row["z_is_lower_bound"] else "") + f"{z:+.2f}"
        low, high = (_fmt_metric(m, row[k]) if row[k] is not None else "never" for k in ("model_p5", "model_p95"))
        table.add_row(row["name"], row["role"], row["metric"], _fmt_metric(m, row["fact"]), _fmt_metric(m, row["tolerance"]),
                      _fmt_metric(m, row["model_median"]) if row["model_median"] is not None else "never",
                      f"{low} – {high}", z_text, "yes" if row["within_tolerance"] else "NO")
    return table


def backtest_table(report: dict[str, Any]) -> Group:
    """The backtest's verdicts: per fact the model's median and 5-95 %, the fact, z, within tolerance."""
    table = facts_table(report["targets"])
    counts = report["counts"]
    verdict = "; ".join(f"{role}: {c['within_tolerance']} of {c['targets']} within tolerance"
                        for role, c in counts.items() if c["targets"])
    heading = Text(f"backtest of {report['scenario_name']} against {report['targets_file']}: {report['runs']} runs, "
                   f"seed {report['seed']} — {'PASSED' if report['passed'] else 'not all facts met'}", style="bold")
    note = Text(f"{verdict}. model: median over the runs, no parameter fitted; z = (model − fact) / tolerance; "
                "input facts built the scenario (in-sample), check facts did not (out-of-sample)")
    return Group(heading, table, note)
