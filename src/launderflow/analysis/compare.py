"""Compare policies: per-scenario outcome tables and paired differences from a reference scenario.

Every scenario of a comparison is run with the same master seed, so replication ``i`` of each
starts from the same random stream (common random numbers): the difference of a policy from the
reference is taken replication by replication, and its interval is much narrower than the
difference of two independent intervals would be.

Reads the replications each run directory stored and computes every number with the metric
registry (:mod:`launderflow.metrics`); knows nothing of the CLI.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..metrics import METRICS, Measure, collateral_measures, comparison_measures, displacement_measures
from ..metrics import short_usd as short_usd  # (re-exported: the report's and tables' USD)
from ..runs.results import _stats
from ..runs.outputs import write_files
from ..runs.store import StoredRun


def per_replication(run_dir: Path, measures: list[Measure]) -> tuple[list[int], dict[str, np.ndarray]]:
    """Each measure's value in every stored replication of one run directory, in replication order."""
    run = StoredRun(run_dir)
    reps = run.replications()
    index = list(reps)
    values = {m.key: m.values(list(reps.values()), run.scenario) for m in measures}
    return index, values


def _interval(values: np.ndarray) -> tuple[float | None, float | None, float | None]:
    """Median, 5th and 95th percentile of the finite values (the summary's statistics)."""
    stats = _stats(np.asarray(values, dtype=np.float64))
    return stats["median"], stats["p5"], stats["p95"]


def compare(runs: list[tuple[str, Path]], at: list[float] | None = None) -> list[dict[str, Any]]:
    """One row per (scenario, metric): median and 5-95 % interval, and the paired difference from
    the first scenario (replications matched by index) with its interval."""
    scenarios = [StoredRun(path).scenario for _, path in runs]
    measures = comparison_measures(at or []) + displacement_measures(scenarios)
    if any(scenario.honest is not None for scenario in scenarios):
        measures += collateral_measures()  # the effect on the launderer and the cost to honest users side by side
    data = [(name, *per_replication(path, measures)) for name, path in runs]
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


def measure_of(key: str, at: list[float] | None = None) -> Measure:
    """The measure behind a comparison row's ``metric`` key."""
    for m in [*comparison_measures(at or _times_in_key(key)), *collateral_measures()]:
        if m.key == key:
            return m
    for m in (METRICS["offramp_share"](), METRICS["launderer_cost_share"](), METRICS["mean_cash_out_days"](),
              *[METRICS["function_flow_share"](function=f) for f in ("mixing", "cross_chain", "swapping", "off_ramp")]):
        if m.key == key:  # (the displacement measures of scenarios with services)
            return m
    if key.startswith("displaced_share_"):
        return METRICS["displaced_share"](intervention=key[len("displaced_share_"):])
    raise KeyError(f"not a comparison metric: {key!r}")


def _times_in_key(key: str) -> list[float]:
    from ..units import parse_duration

    return [parse_duration(key.rsplit("_at_", 1)[1])] if "_at_" in key else []


def _fmt(metric: str, value: float | None) -> str:
    return measure_of(metric).unit.format(value)


def _fmt_diff(metric: str, value: float | None) -> str:
    return "—" if value is None else measure_of(metric).unit.format_diff(value)


def markdown(rows: list[dict[str, Any]]) -> str:
    """A wide Markdown table: one line per scenario, one column per metric (median [5-95 %], Δ).

    Columns are headed by the metrics' labels for people (``days to 50% cashed out``); the machine
    keys (``days_to_50pct_cash_out``) stay in comparison.csv and comparison.parquet."""
    scenarios = list(dict.fromkeys(r["scenario"] for r in rows))
    metrics = list(dict.fromkeys(r["metric"] for r in rows))
    by = {(r["scenario"], r["metric"]): r for r in rows}
    labels = [measure_of(m).label for m in metrics]
    lines = ["| scenario | " + " | ".join(labels) + " |", "|---|" + "---|" * len(metrics)]
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
                 "(common random numbers), median [5–95 %]. Shares are of the stolen value, at the horizon unless "
                 "a time is given (time after the theft).")
    return "\n".join(lines) + "\n"


FILES = tuple(f"comparison.{ext}" for ext in ("csv", "parquet", "md", "json"))  # what :func:`write` writes


def write(out: Path, rows: list[dict[str, Any]], names: list[str], extra: dict[str, Any] | None = None,
          overwrite: bool = False) -> list[Path]:
    """comparison.csv, comparison.parquet, comparison.md and comparison.json (the scenario order),
    as launderflow's own files (:func:`~launderflow.runs.outputs.write_files`: a file of the user's
    of the same name is refused unless ``overwrite``)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row[k] is None else row[k]) for k in COLUMNS})
    table = pa.table({k: [row[k] for row in rows] for k in COLUMNS})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    contents = (buf.getvalue(), sink.getvalue().to_pybytes(), markdown(rows),
                json.dumps({"scenarios": names, **(extra or {})}, indent=2) + "\n")
    return write_files(out, dict(zip(FILES, contents)), overwrite)


def check_times(hours: list[float], horizons: list[tuple[str, float]]) -> None:
    """ValueError for a time past a scenario's horizon (``--at 400d`` on a 10-day run would show the
    horizon's shares labelled "at 400 d"), or before the start."""
    from ..metrics import PARAMS

    for t in hours:
        if t < 0:
            raise ValueError(f"{PARAMS['at'].label(t)} is before the start (times are after the start, >= 0)")
        for name, horizon in horizons:
            if t > horizon:
                raise ValueError(f"{PARAMS['at'].label(t)} is after the horizon of {name} ({horizon / 24:g} d): "
                                 f"give times up to the horizon (or lengthen clock.horizon)")


def parse_times(text: str | None) -> list[float]:
    """``"11d,60d"`` -> hours."""
    from ..units import parse_duration

    if not text:
        return []
    return [parse_duration(part.strip()) for part in text.split(",") if part.strip()]
