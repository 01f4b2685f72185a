"""Compare policies: per-scenario outcome tables and paired differences from a reference scenario.

Every scenario of a comparison is run with the same master seed, so replication ``i`` of each
starts from the same random stream (common random numbers): the difference of a policy from the
reference is taken replication by replication, and its interval is much narrower than the
difference of two independent intervals would be.

Reads only the files a run leaves (summary.json, timeline.parquet); knows nothing of the CLI.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..runs.results import _stats

FINAL_STATES = ("traced", "frozen", "seized", "cashed_out")
AT_STATES = ("traced", "dark", "frozen", "seized", "cashed_out")


def _per_replication(run_dir: Path, at: list[float]) -> tuple[list[int], dict[str, np.ndarray]]:
    """Per-replication metrics of one run directory, keyed by metric name, in replication order."""
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    stolen = float(summary["stolen_usd"])
    reps = sorted(summary["replications"], key=lambda r: r["index"])
    index = [r["index"] for r in reps]
    metrics: dict[str, np.ndarray] = {}
    for state in FINAL_STATES:
        metrics[f"{state}_share"] = np.array([(r["final_usd"][state] or 0.0) / (r.get("stolen_usd") or stolen) for r in reps])
    t50 = [r["time_to_50pct_cash_out_hours"] for r in reps]
    metrics["days_to_50pct_cash_out"] = np.array([np.nan if t is None else t / 24.0 for t in t50])
    metrics["launderer_cost_usd"] = np.array([r.get("launderer_cost_usd") or 0.0 for r in reps])
    if at:
        table = pq.read_table(run_dir / "timeline.parquet", columns=["replication", "time_hours", "state", "share"])
        rep = table["replication"].to_numpy()
        time = table["time_hours"].to_numpy()
        state = np.array(table["state"].to_pylist())
        share = table["share"].to_numpy()
        for t in at:
            grid = np.unique(time)
            nearest = grid[np.searchsorted(grid, t - 1e-9)] if t <= grid[-1] else grid[-1]
            for s in AT_STATES:
                sel = (time == nearest) & (state == s)
                by_rep = dict(zip(rep[sel].tolist(), share[sel].tolist()))
                metrics[f"{s}_share_at_{_label(t)}"] = np.array([by_rep.get(i, np.nan) for i in index])
    return index, metrics


def _label(hours: float) -> str:
    return f"{hours / 24:g}d" if hours % 24 == 0 else f"{hours:g}h"


def _interval(values: np.ndarray) -> tuple[float | None, float | None, float | None]:
    """Median, 5th and 95th percentile of the finite values (the summary's statistics)."""
    stats = _stats(np.asarray(values, dtype=np.float64))
    return stats["median"], stats["p5"], stats["p95"]


def compare(runs: list[tuple[str, Path]], at: list[float] | None = None) -> list[dict[str, Any]]:
    """One row per (scenario, metric): median and 5-95 % interval, and the paired difference from
    the first scenario (replications matched by index) with its interval."""
    at = at or []
    data = [(name, *_per_replication(path, at)) for name, path in runs]
    ref_name, ref_index, ref_metrics = data[0]
    rows = []
    for name, index, metrics in data:
        common = sorted(set(index) & set(ref_index))
        pos = {i: k for k, i in enumerate(index)}
        ref_pos = {i: k for k, i in enumerate(ref_index)}
        for metric, values in metrics.items():
            med, p5, p95 = _interval(values)
            row: dict[str, Any] = {"scenario": name, "metric": metric, "runs": len(values),
                                   "median": med, "p5": p5, "p95": p95}
            if name != ref_name and metric in ref_metrics:
                diff = np.array([values[pos[i]] - ref_metrics[metric][ref_pos[i]] for i in common])
                row["diff_median"], row["diff_p5"], row["diff_p95"] = _interval(diff)
            else:
                row["diff_median"] = row["diff_p5"] = row["diff_p95"] = None
            rows.append(row)
    return rows


COLUMNS = ("scenario", "metric", "runs", "median", "p5", "p95", "diff_median", "diff_p5", "diff_p95")


def short_usd(value: float) -> str:
    """USD to three significant figures, for tables read by people: $512, $80.3 k, $154 k, $44.5 M,
    $1.46 B (negative values with a leading minus). Files keep every digit."""
    sign, value = ("-", -value) if value < 0 else ("", value)
    for scale, suffix in ((1e9, " B"), (1e6, " M"), (1e3, " k")):
        if value >= scale * 0.9995:  # (what rounds up to 1.00 k is shown as such, not as $1,000)
            x = value / scale
            return f"{sign}${x:.{2 if x < 9.995 else 1 if x < 99.95 else 0}f}{suffix}"
    return f"{sign}${value:,.0f}"


def _fmt(metric: str, value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if "share" in metric:
        return f"{value:.1%}"
    if metric.startswith("days"):
        return f"{value:.1f}"
    return f"${value:,.0f}"


def _fmt_diff(metric: str, value: float | None) -> str:
    if value is None:
        return "—"
    if "share" in metric:
        return f"{value * 100:+.1f} pp"
    if metric.startswith("days"):
        return f"{value:+.1f}"
    return f"{'+' if value >= 0 else '-'}${abs(value):,.0f}"


def markdown(rows: list[dict[str, Any]]) -> str:
    """A wide Markdown table: one line per scenario, one column per metric (median [5-95 %], Δ)."""
    scenarios = list(dict.fromkeys(r["scenario"] for r in rows))
    metrics = list(dict.fromkeys(r["metric"] for r in rows))
    by = {(r["scenario"], r["metric"]): r for r in rows}
    lines = ["| scenario | " + " | ".join(metrics) + " |", "|---|" + "---|" * len(metrics)]
    for s in scenarios:
        cells = []
        for m in metrics:
            r = by.get((s, m))
            if r is None:
                cells.append("")
                continue
            text = f"{_fmt(m, r['median'])} [{_fmt(m, r['p5'])} – {_fmt(m, r['p95'])}]"
            if r["diff_median"] is not None:
                text += f"<br>Δ {_fmt_diff(m, r['diff_median'])} [{_fmt_diff(m, r['diff_p5'])}, {_fmt_diff(m, r['diff_p95'])}]"
            cells.append(text)
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"Median [5–95 % over replications]; Δ: difference from {scenarios[0]} paired by replication "
                 "(common random numbers), median [5–95 %].")
    return "\n".join(lines) + "\n"


def write(out: Path, rows: list[dict[str, Any]], names: list[str], extra: dict[str, Any] | None = None) -> list[Path]:
    """comparison.csv, comparison.parquet, comparison.md and comparison.json (the scenario order)."""
    out.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row[k] is None else row[k]) for k in COLUMNS})
    (out / "comparison.csv").write_text(buf.getvalue(), encoding="utf-8")
    table = pa.table({k: [row[k] for row in rows] for k in COLUMNS})
    pq.write_table(table, out / "comparison.parquet", compression="zstd")
    (out / "comparison.md").write_text(markdown(rows), encoding="utf-8")
    (out / "comparison.json").write_text(json.dumps({"scenarios": names, **(extra or {})}, indent=2) + "\n", encoding="utf-8")
    return [out / f"comparison.{ext}" for ext in ("csv", "parquet", "md", "json")]


def parse_times(text: str | None) -> list[float]:
    """``"11d,60d"`` -> hours."""
    from ..units import parse_duration

    if not text:
        return []
    return [parse_duration(part.strip()) for part in text.split(",") if part.strip()]
