"""Figures of a run or of a comparison of runs: what was traced, frozen, seized and cashed out, when.

A *run directory* is what ``launderflow run`` writes (``summary.json``, ``timeline.parquet`` and,
when the scenario has pool mixers, ``anonymity.parquet``). A *comparison directory* holds one run
directory per scenario (``DIR/<scenario>/summary.json`` …); the first scenario is the reference,
in the order of ``DIR/comparison.json`` (``{"scenarios": [...]}``) when present, else alphabetical.

Three layers, each usable on its own:

* :func:`load_runs` reads a directory into :class:`RunData` (per-replication curves reduced to
  the median and the 5–95 % range over replications, on the scenario's own time grid);
* ``plot_*(data, ax=None) -> ax`` draw one panel on a given matplotlib ``Axes`` (or on a new
  figure) — the SALib shape;
* ``*_figure(runs) -> Figure`` compose the panels, and :func:`write_figures` saves them.

Only matplotlib's object API is used (``Figure`` + ``FigureCanvasAgg``): no pyplot state, no
``matplotlib.use``. Files are deterministic — the same data gives byte-identical PNG and SVG files
(no software tag in the PNG, no date in the SVG, a fixed SVG hash salt, matplotlib's default style).
"""

from __future__ import annotations

import io
import json
import math
import os
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.patches
import matplotlib.style
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.legend_handler import HandlerTuple
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter, PercentFormatter

from ..metrics import FINAL_STATES, METRICS, REPORTED, STATES
from ..units import parse_duration
from ..runs.lock import locked
from ..runs.outputs import check_files, write_files
from ..runs.store import StoreError, refuse_links

LOCATIONS: tuple[str, ...] = STATES[:6]
TRACE_STATES: tuple[str, ...] = (*REPORTED, "cashed_out")  # the traceability panels: as victims report it
FORMATS: tuple[str, ...] = ("png", "svg")
DPI = 150  # PNG resolution; figure sizes below are in inches

TRACE_SIZE = (11.0, 7.5)
FINAL_SIZE = (11.0, 5.5)
PANEL_W, PANEL_H = 5.0, 3.4  # per panel of the multi-panel figures (outcome areas, anonymity)

# Okabe-Ito, distinguishable with colour-vision deficiencies, without its yellow (weak on white, and
# too close to its orange among eight lines): Paul Tol's wine instead. Past four scenarios the lines
# also differ by their dash (POLICY_DASHES), so that no two need be told apart by colour alone.
POLICY_COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#882255")
POLICY_DASHES = ("-", "-", "-", "-", "--", "--", ":", "-.")
STATE_COLORS = {
    "launderer": "#E69F00",
    "venue": "#CC79A7",
    "frozen": "#56B4E9",
    "seized": "#0072B2",
    "cashed_out": "#D55E00",
    "fees": "#999999",
    "traced": "#009E73",
    "dark": "#555555",
    "reported_traceable": "#009E73",
    "reported_dark": "#555555",
    "reported_frozen": "#56B4E9",
}
STATE_LABELS = {
    "launderer": "with the launderer",
    "venue": "inside a venue",
    "frozen": "frozen",
    "seized": "seized",
    "cashed_out": "cashed out",
    "fees": "fees",
    "traced": "traced",
    "dark": "dark (untraced)",
    "reported_traceable": "traceable",
    "reported_dark": "dark",
    "reported_frozen": "frozen or seized",
}
TRACE_TITLES = {
    "traced": "Traced — investigators know where it is",
    "frozen": "Frozen",
    "seized": "Seized",
    "cashed_out": "Cashed out — left the chain",
    "reported_traceable": "Traceable — its location is known",
    "reported_dark": "Dark — location unknown, or cashed out",
    "reported_frozen": "Frozen or seized",
}
# Stack order of the outcome areas, bottom to top: what policy got, what got out, what is in play.
STACK_ORDER = ("seized", "frozen", "cashed_out", "fees", "venue", "launderer")

STYLE: dict[str, Any] = {
    "svg.hashsalt": "launderflow",  # SVG ids derive from it: fixed salt, identical files
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "figure.titlesize": 13,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.35,
    "grid.linewidth": 0.6,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
}
_SAVE_OPTIONS: dict[str, dict[str, Any]] = {
    "png": {"dpi": DPI, "metadata": {"Software": None}},
    "svg": {"metadata": {"Date": None}},
}
_MAX_POINTS = 4000  # cap of a resampled time grid (unaligned event times)


class RunDirError(ValueError):
    """The directory is neither a run directory nor a comparison directory (or a file in it is bad)."""


@dataclass(frozen=True)
class Quantiles:
    """5 %, median and 95 % over replications of some curves on one time grid.

    ``p5``, ``median`` and ``p95`` have shape ``(len(days), len(keys))``.
    """

    days: np.ndarray
    keys: tuple[Any, ...]
    p5: np.ndarray
    median: np.ndarray
    p95: np.ndarray
    replications: int

    def __getitem__(self, key: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        j = self.keys.index(key)
        return self.p5[:, j], self.median[:, j], self.p95[:, j]


@dataclass(frozen=True)
class RunData:
    """One scenario's results, ready to plot."""

    name: str
    path: Path
    summary: dict[str, Any]
    timeline: Quantiles  # keys: the 8 states; values: share of the stolen value
    anonymity: dict[str, Quantiles]  # pool-mixer venue -> notes per denomination (keys: denominations)

    @property
    def horizon_days(self) -> float:
        horizon = self.summary.get("horizon_hours")
        if isinstance(horizon, (int, float)) and horizon > 0:
            return float(horizon) / 24
        return float(self.timeline.days[-1]) if len(self.timeline.days) and self.timeline.days[-1] > 0 else 1.0


# ----------------------------------------------------------------------------------------- loading


def is_run_dir(path: Path) -> bool:
    return (path / "summary.json").is_file() and (path / "timeline.parquet").is_file()


def run_dirs(path: str | Path) -> list[tuple[str | None, Path]]:
    """``(name, run directory)`` pairs of DIR, reference first; name is None for a single run dir."""
    path = Path(path)
    if not path.exists():
        raise RunDirError(f"{path}: no such directory")
    if not path.is_dir():
        raise RunDirError(f"{path}: not a directory (expected a run or comparison directory)")
    _no_links(path)
    if is_run_dir(path):
        return [(None, path)]
    order_file = path / "comparison.json"
    if order_file.is_symlink() or any(d.is_symlink() and is_run_dir(d) for d in path.iterdir()):
        link = order_file if order_file.is_symlink() else next(d for d in path.iterdir() if d.is_symlink() and is_run_dir(d))
        raise RunDirError(f"{link} is a symbolic link: launderflow reads only the directory's own files (remove the link)")
    if order_file.is_file():
        try:
            names = json.loads(order_file.read_text(encoding="utf-8"))["scenarios"]
        except (ValueError, KeyError, TypeError, OSError) as exc:
            raise RunDirError(f"{order_file}: expected {{\"scenarios\": [names in order]}} ({exc})") from None
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
            raise RunDirError(f"{order_file}: \"scenarios\" must be a non-empty list of scenario names")
        places = {n: path / n for n in names}
        sweep = sweep_meta(path)
        if sweep is not None:  # a sweep's runs live in point_000/, point_001/, ... (labels name them)
            places = {p["label"]: path / f"point_{p['point']:03d}" for p in sweep["points"]}
        missing = [n for n in names if n not in places or not is_run_dir(places[n])]
        if missing:
            raise RunDirError(f"{order_file}: no run directory (summary.json + timeline.parquet) for "
                              f"{', '.join(repr(n) for n in missing)} under {path}")
        return [(n, places[n]) for n in names]
    subdirs = sorted((d for d in path.iterdir() if d.is_dir() and is_run_dir(d)), key=lambda d: d.name)
    if not subdirs:
        raise RunDirError(f"{path}: not a run directory (no summary.json and timeline.parquet) and not a "
                          "comparison directory (no subdirectory holds a run)")
    return [(d.name, d) for d in subdirs]


def _no_links(path: Path) -> None:
    """RunDirError if a file launderflow reads in the run directory ``path`` is a symbolic link (it
    would read, and the report would show, a file from elsewhere)."""
    try:
        refuse_links(path, reading=True)
    except StoreError as exc:
        raise RunDirError(str(exc)) from None


def sweep_meta(path: str | Path) -> dict[str, Any] | None:
    """A sweep directory's comparison.json (``parameters`` and ``points``: each with its ``point``
    number, ``label`` and the value of every parameter), or None for any other directory."""
    file = Path(path) / "comparison.json"
    if not file.is_file():
        return None
    try:
        meta = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunDirError(f"{file}: cannot read it as JSON ({exc})") from None
    if not isinstance(meta, dict) or "points" not in meta:
        return None
    points, params = meta.get("points"), meta.get("parameters")
    if (not isinstance(points, list) or not isinstance(params, list) or not points
            or not all(isinstance(p, dict) and isinstance(p.get("point"), int) and isinstance(p.get("label"), str)
                       and all(k in p for k in params) for p in points)):
        raise RunDirError(f"{file}: \"points\" must list each sweep point's number, label and parameter values")
    return meta


def sweep_rows(path: str | Path) -> list[dict[str, Any]]:
    """A sweep's comparison rows (comparison.parquet: one per point and metric)."""
    table = _read_table(Path(path) / "comparison.parquet", ("scenario", "metric", "median", "p5", "p95"))
    return table.to_pylist()


def sweep_axes(meta: dict[str, Any]) -> list[tuple[str, list[Any]]]:
    """Each swept parameter and its values, in the order the grid lists them."""
    return [(name, list(dict.fromkeys(p[name] for p in meta["points"]))) for name in meta["parameters"]]


def load_runs(path: str | Path) -> list[RunData]:
    """Read a run directory or a comparison directory; the reference scenario comes first."""
    return [load_run(run_dir, name) for name, run_dir in run_dirs(path)]


def load_run(path: str | Path, name: str | None = None) -> RunData:
    """Read one run directory (``name`` defaults to the scenario name in summary.json)."""
    path = Path(path)
    _no_links(path)
    summary_file = path / "summary.json"
    try:
        summary = json.loads(summary_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunDirError(f"{summary_file}: cannot read it as JSON ({exc})") from None
    if not isinstance(summary, dict) or not isinstance(summary.get("states"), dict) or not summary.get("stolen_usd"):
        raise RunDirError(f"{summary_file}: not a launderflow summary (needs 'stolen_usd' and 'states')")
    timeline = _read_timeline(path / "timeline.parquet", float(summary["stolen_usd"]))
    anonymity_file = path / "anonymity.parquet"
    anonymity = _read_anonymity(anonymity_file) if anonymity_file.is_file() else {}
    return RunData(name or str(summary.get("scenario") or path.name), path, summary, timeline, anonymity)


def _read_table(file: Path, columns: Sequence[str]) -> pa.Table:
    try:
        table = pq.read_table(file)
    except (OSError, pa.ArrowException) as exc:
        raise RunDirError(f"{file}: cannot read it as Parquet ({exc})") from None
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise RunDirError(f"{file}: missing column(s) {', '.join(missing)}")
    return table


def _codes(column: pa.ChunkedArray) -> tuple[np.ndarray, list[Any]]:
    """Integer codes and the values they stand for, for a dictionary or plain column."""
    array = column.combine_chunks()
    if not pa.types.is_dictionary(array.type):
        array = pc.dictionary_encode(array)
    return array.indices.to_numpy(zero_copy_only=False).astype(np.int64), array.dictionary.to_pylist()


def _read_timeline(file: Path, stolen: float) -> Quantiles:
    return quantiles(*_timeline_rows(file, stolen), STATES)


def _timeline_rows(file: Path, stolen: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The timeline as (replication, time_hours, state index, share) columns."""
    table = _read_table(file, ("replication", "time_hours", "state"))
    if "share" in table.column_names:
        share = table["share"].to_numpy()
    elif "value_usd" in table.column_names:
        share = table["value_usd"].to_numpy() / stolen
    else:
        raise RunDirError(f"{file}: missing column share (or value_usd)")
    codes, names = _codes(table["state"])
    unknown = sorted(set(names) - set(STATES))
    if unknown:
        raise RunDirError(f"{file}: unknown state(s) {', '.join(map(str, unknown))}")
    remap = np.array([STATES.index(n) for n in names], dtype=np.int64)
    return table["replication"].to_numpy(), table["time_hours"].to_numpy(), remap[codes], share


def is_paired(runs: Sequence[RunData]) -> bool:
    """Several runs on common random numbers (one seed, the same replications), as ``compare`` makes
    them: replication i of each faced the same draws, so their differences can be paired."""
    seeds = {run.summary.get("seed") for run in runs}
    if len(runs) < 2 or len(seeds) != 1 or None in seeds:
        return False
    indexes = [sorted(r.get("index") for r in run.summary.get("replications") or []) for run in runs]
    return bool(indexes[0]) and all(ix == indexes[0] for ix in indexes)


def paired_differences(runs: Sequence[RunData]) -> dict[str, Quantiles]:
    """For each run after the first: quantiles over the replications of its share curves minus the
    first run's, replication by replication (shares; up to the shortest horizon)."""
    rows = [_timeline_rows(run.path / "timeline.parquet", float(run.summary["stolen_usd"])) for run in runs]
    end = min(float(time.max()) for _, time, _, _ in rows)
    grid = np.unique(rows[0][1])
    grid = grid[grid <= end]
    if len(grid) > _MAX_POINTS:
        grid = np.linspace(grid[0], grid[-1], _MAX_POINTS)
    ref_reps, ref_cube = step_curves(*rows[0], len(STATES), grid)
    out = {}
    for run, row in zip(runs[1:], rows[1:]):
        reps, cube = step_curves(*row, len(STATES), grid)
        _, in_ref, in_run = np.intersect1d(ref_reps, reps, return_indices=True)
        out[run.name] = _over_replications(cube[in_run] - ref_cube[in_ref], grid, STATES)
    return out


def _read_anonymity(file: Path) -> dict[str, Quantiles]:
    table = _read_table(file, ("replication", "time_hours", "venue", "denomination", "notes"))
    venue_codes, venue_names = _codes(table["venue"])
    rep = table["replication"].to_numpy()
    time = table["time_hours"].to_numpy()
    denom = table["denomination"].to_numpy().astype(np.float64)
    notes = table["notes"].to_numpy().astype(np.float64)
    result = {}
    for code in sorted(set(venue_codes.tolist()), key=lambda c: str(venue_names[c])):
        mask = venue_codes == code
        denoms = tuple(float(d) for d in np.unique(denom[mask]))
        key = np.searchsorted(np.array(denoms), denom[mask])
        result[str(venue_names[code])] = quantiles(rep[mask], time[mask], key, notes[mask], denoms)
    return result


def quantiles(rep: np.ndarray, time_hours: np.ndarray, key: np.ndarray, value: np.ndarray,
              keys: Sequence[Any]) -> Quantiles:
    """Median and 5–95 % range over replications of step curves given as long rows.

    Each (replication, key) curve holds its last value until its next row (the timeline is exact
    at its grid points; pool sizes change only at events), so curves recorded at different
    instants are compared on the union of their times (or an even grid if that is very long).
    Percentiles use numpy's default (linear) method, as summary.json does.
    """
    n_keys = len(keys)
    if len(rep) == 0:
        empty = np.empty((0, n_keys))
        return Quantiles(np.empty(0), tuple(keys), empty, empty, empty, 0)
    grid = np.unique(np.asarray(time_hours, dtype=np.float64))
    if len(grid) > _MAX_POINTS:
        grid = np.linspace(grid[0], grid[-1], _MAX_POINTS)
    reps, cube = step_curves(rep, time_hours, key, value, n_keys, grid)
    return _over_replications(cube, grid, keys)


def _over_replications(cube: np.ndarray, grid: np.ndarray, keys: Sequence[Any]) -> Quantiles:
    """Quantiles over the first axis of a (replication, time, key) cube."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices before a curve starts
        p5, med, p95 = np.nanpercentile(cube, [5, 50, 95], axis=0)
    return Quantiles(grid / 24.0, tuple(keys), p5, med, p95, cube.shape[0])


def step_curves(rep: np.ndarray, time_hours: np.ndarray, key: np.ndarray, value: np.ndarray, n_keys: int,
                grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The replications (sorted) and each one's step curves on ``grid`` (hours), as a
    (replication, time, key) cube: a curve holds its last row's value until its next row."""
    rep = np.asarray(rep)
    time_hours = np.asarray(time_hours, dtype=np.float64)
    key = np.asarray(key, dtype=np.int64)
    value = np.asarray(value, dtype=np.float64)
    reps, rep_index = np.unique(rep, return_inverse=True)
    order = np.lexsort((time_hours, key, rep_index))
    group = (rep_index * n_keys + key)[order]
    t_sorted, v_sorted = time_hours[order], value[order]
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    ends = np.r_[starts[1:], len(group)]
    cube = np.full((len(reps), len(grid), n_keys), np.nan)
    for start, end in zip(starts, ends):
        g = int(group[start])
        t, v = t_sorted[start:end], v_sorted[start:end]
        at = np.searchsorted(t, grid, side="right") - 1  # last row at or before each grid instant
        cube[g // n_keys, :, g % n_keys] = np.where(at >= 0, v[np.maximum(at, 0)], np.nan)
    return reps, cube


# ---------------------------------------------------------------------------------------- plotting


def policy_color(index: int) -> str:
    return POLICY_COLORS[index % len(POLICY_COLORS)]


def policy_dash(index: int) -> str:
    return POLICY_DASHES[index % len(POLICY_DASHES)]


def policy_label(runs: Sequence[RunData], index: int) -> str:
    run = runs[index]
    reference = " (reference)" if index == 0 and len(runs) > 1 else ""
    horizon = f", {run.horizon_days:g}-day horizon" if len({r.horizon_days for r in runs}) > 1 else ""
    n = run.timeline.replications
    return f"{run.name}{reference}, {n} run{'' if n == 1 else 's'}{horizon}"


def _as_runs(data: RunData | Sequence[RunData] | str | os.PathLike) -> list[RunData]:
    """Runs from RunData, a directory (a path, or an API Run or Comparison: anything os.fspath takes)."""
    if isinstance(data, RunData):
        return [data]
    if isinstance(data, (str, os.PathLike)):
        return load_runs(os.fspath(data))
    return [d if isinstance(d, RunData) else load_run(os.fspath(d)) for d in data]


def _as_run(data: RunData | str | Path) -> RunData:
    runs = _as_runs(data)
    if len(runs) != 1:
        raise ValueError(f"expected one run, got {len(runs)}")
    return runs[0]


def new_figure(width: float, height: float) -> Figure:
    """A figure with an Agg canvas attached (object API only; no pyplot)."""
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _new_axes(ax: Axes | None, size: tuple[float, float] = (7.0, 4.5)) -> Axes:
    return ax if ax is not None else new_figure(*size).add_subplot()


def _share_axis(ax: Axes, top: float) -> None:
    ax.set_ylim(0, top)
    # Steps of 1, 2 or 5 (not 2.5): with whole-percent labels, a tick at 12.5 % would read "12%".
    ax.yaxis.set_major_locator(MaxNLocator(nbins=8, steps=[1, 2, 5, 10]))
    ax.yaxis.set_major_formatter(_PercentAboveZero(1.0))  # as few decimals as the ticks need: 0.35%, not 0.350%
    ax.set_ylabel("share of stolen value")


def _nice_top(peak: float) -> float:
    """Upper y limit for a share axis: 100 % for large shares, room above smaller ones."""
    if peak > 0.6:
        return 1.02
    if peak <= 0:
        return 0.05
    step = 10 ** math.floor(math.log10(peak * 1.15))
    return min(1.02, math.ceil(peak * 1.15 / step) * step)


def plot_traceability(data: RunData | Sequence[RunData] | str | Path, state: str = "traced",
                      ax: Axes | None = None) -> Axes:
    """Share of the stolen value in ``state`` over time: median line, 5–95 % band, one colour per scenario."""
    if state not in STATES:
        raise ValueError(f"unknown state {state!r} (one of {', '.join(STATES)})")
    runs = _as_runs(data)
    ax = _new_axes(ax)
    peak = 0.0
    for i, run in enumerate(runs):
        p5, med, p95 = run.timeline[state]
        color = policy_color(i)
        ax.fill_between(run.timeline.days, p5, p95, color=color, alpha=0.2, linewidth=0)
        ax.plot(run.timeline.days, med, color=color, linewidth=2.4 if i == 0 else 1.7, label=policy_label(runs, i),
                linestyle=policy_dash(i))
        peak = max(peak, float(np.nanmax(p95, initial=0.0)))
    ax.set_title(TRACE_TITLES.get(state, STATE_LABELS[state].capitalize()))
    ax.set_xlabel("time since the scenario starts (days)")
    ax.set_xlim(0, max(run.horizon_days for run in runs))
    _share_axis(ax, _nice_top(peak))
    if peak <= 0:
        every = "every replication" + (" of every scenario" if len(runs) > 1 else "")
        ax.text(0.5, 0.5, f"0 % {STATE_LABELS[state]} in {every}", transform=ax.transAxes,
                ha="center", va="center", color="#666666", fontsize=9)
    return ax


def plot_difference(runs: Sequence[RunData], differences: dict[str, Quantiles], state: str = "traced",
                    ax: Axes | None = None) -> Axes:
    """Paired difference of each scenario from the reference (the flat line at 0) in ``state`` over
    time, in percentage points: median line and 5–95 % band over the replications."""
    ax = _new_axes(ax)
    ax.axhline(0, color=policy_color(0), linewidth=2.4, label=policy_label(runs, 0))
    for i, run in enumerate(runs[1:], start=1):
        q = differences[run.name]
        p5, med, p95 = q[state]
        ax.fill_between(q.days, p5 * 100, p95 * 100, color=policy_color(i), alpha=0.2, linewidth=0)
        ax.plot(q.days, med * 100, color=policy_color(i), linewidth=1.7, label=policy_label(runs, i),
                linestyle=policy_dash(i))
    ax.set_title(TRACE_TITLES.get(state, STATE_LABELS[state].capitalize()))
    ax.set_xlabel("time since the scenario starts (days)")
    ax.set_xlim(0, max(run.horizon_days for run in runs))
    ax.set_ylabel(f"difference from {runs[0].name} (pp)")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: "0" if v == 0 else f"{v:+g}".replace("-", "\u2212")))
    return ax


def plot_outcome_areas(data: RunData | str | Path, ax: Axes | None = None) -> Axes:
    """Stacked median shares of the six locations over time for one scenario."""
    run = _as_run(data)
    ax = _new_axes(ax)
    days = run.timeline.days
    layers = [run.timeline[s][1] for s in STACK_ORDER]
    ax.stackplot(days, layers, colors=[STATE_COLORS[s] for s in STACK_ORDER],
                 labels=[STATE_LABELS[s] for s in STACK_ORDER], linewidth=0)
    total = np.nansum(np.vstack(layers), axis=0) if len(days) else np.zeros(1)
    ax.set_xlim(0, run.horizon_days)
    _share_axis(ax, max(1.0, float(np.nanmax(total))))
    ax.set_xlabel("time since the scenario starts (days)")
    ax.set_title(run.name)
    return ax


def plot_final_outcomes(data: RunData | Sequence[RunData] | str | Path, ax: Axes | None = None) -> Axes:
    """Grouped bars: median final share of each state per scenario, 5–95 % error bars (summary.json)."""
    runs = _as_runs(data)
    ax = _new_axes(ax, (10.0, 5.0))
    n = len(runs)
    width = 0.8 / n
    x = np.arange(len(STATES), dtype=float)
    for i, run in enumerate(runs):
        states = run.summary["states"]
        med = np.array([_f(states.get(s, {}).get("median_share")) for s in STATES])
        lo = np.array([_f(states.get(s, {}).get("p5_share")) for s in STATES])
        hi = np.array([_f(states.get(s, {}).get("p95_share")) for s in STATES])
        pos = x - 0.4 + width * (i + 0.5)
        ax.bar(pos, med, width * 0.92, color=policy_color(i), label=policy_label(runs, i), zorder=2)
        ax.errorbar(pos, med, yerr=np.vstack([np.clip(med - lo, 0, None), np.clip(hi - med, 0, None)]),
                    fmt="none", ecolor="#222222", elinewidth=1, capsize=2.5 if n < 6 else 1.5, zorder=3)
        if n <= 4:  # print the medians (a zero bar is invisible: its label says 0 %)
            for p, m, h in zip(pos, med, hi):
                if math.isfinite(m):
                    ax.text(p, max(h, m) + 0.012, share_label(m), ha="center", va="bottom",
                            color="#000000" if m >= 0.0095 else "#777777", fontsize=7.5 if n > 2 else 8.5)
    # (eleven states: long labels break after their first word so that neighbours never overlap)
    ax.set_xticks(x, [STATE_LABELS[s].replace(" ", "\n", 1) if len(STATE_LABELS[s]) > 9 else STATE_LABELS[s]
                      for s in STATES])
    ax.set_xlim(-0.6, len(STATES) - 0.4)
    _share_axis(ax, 1.16)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.grid(axis="x", visible=False)
    split = len(LOCATIONS) - 0.5
    split2 = split + 2  # traced, dark
    for at in (split, split2):
        ax.axvline(at, color="#888888", linewidth=0.8, linestyle=":")
    ax.text((split - 0.6) / 2, 1.1, "where the value ended up (sums to 100 %)", ha="center", va="center",
            fontsize=9, color="#444444")
    ax.text((split + split2) / 2, 1.1, "what investigators know", ha="center", va="center",
            fontsize=9, color="#444444")
    ax.text((split2 + len(STATES) - 0.4) / 2, 1.1, "as victims report it", ha="center", va="center",
            fontsize=9, color="#444444")
    ax.set_xlabel("final state at the horizon")
    return ax


def share_label(share: float) -> str:
    """A bar's label, in percent like every other: whole percents, one decimal below 1 % (0.4%), 0%."""
    return "0%" if share == 0 else f"{share:.1%}" if share < 0.0095 else f"{share:.0%}"


def plot_anonymity(data: RunData | str | Path, venue: str | None = None, ax: Axes | None = None,
                   asset: str | None = None, colors: dict[float, Any] | None = None, legend: bool = True) -> Axes:
    """Notes in a pool mixer's pools over time: median per denomination, 5–95 % band, log y.

    ``colors`` maps denominations to colours (default: viridis over this pool's); ``legend=False``
    leaves the legend to the caller (a figure of several panels has one).
    """
    run = _as_run(data)
    if not run.anonymity:
        raise ValueError(f"{run.name}: no anonymity data (no anonymity.parquet)")
    venue = venue if venue is not None else next(iter(run.anonymity))
    q = run.anonymity[venue]
    ax = _new_axes(ax)
    colors = colors or _denomination_colors(q.keys)
    for denom in q.keys:
        p5, med, p95 = q[denom]
        ax.fill_between(q.days, p5, p95, color=colors[denom], alpha=0.12, linewidth=0)
        ax.plot(q.days, med, color=colors[denom], linewidth=1.6, label=f"{denom:g}{' ' + asset if asset else ''}")
    _notes_axis(ax, *_notes_range([q]))
    ax.set_xlim(0, run.horizon_days)
    ax.set_xlabel("time since the scenario starts (days)")
    ax.set_ylabel("notes in the pool (log scale)")
    ax.set_title(f"{venue} — {run.name}")
    if legend:
        ax.legend(title="denomination", loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return ax


def _denomination_colors(denominations: Sequence[float]) -> dict[float, Any]:
    cmap = matplotlib.colormaps["viridis"]
    ordered = sorted(set(denominations))
    return {d: cmap(0.85 * j / max(len(ordered) - 1, 1)) for j, d in enumerate(ordered)}


def _notes_range(pools: Sequence[Quantiles]) -> tuple[float, float]:
    """The smallest positive 5 % and the largest 95 % over the pools' curves (nan, 0 if none)."""
    lowest, highest = np.inf, 0.0
    for q in pools:
        positive = q.p5[np.isfinite(q.p5) & (q.p5 > 0)]
        lowest = min(lowest, float(positive.min()) if len(positive) else np.inf)
        highest = max(highest, float(np.nanmax(q.p95, initial=0.0)))
    return lowest, highest


def _notes_axis(ax: Axes, lowest: float, highest: float) -> None:
    """A log axis from ``lowest`` to ``highest`` notes whose labelled ticks are dense enough that
    every curve has one within a factor of ~1.5 (1-2-3-5 of each decade over a few decades)."""
    ax.set_yscale("log")
    if np.isfinite(lowest) and highest > 0:
        lo, hi = lowest / 1.15, highest * 1.15
        ax.set_ylim(lo, hi)
        decades = math.log10(hi / lo)
        subs = ((1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 7.0) if decades < 1 else (1.0, 2.0, 3.0, 5.0) if decades < 2.5
                else (1.0, 2.0, 5.0) if decades < 4 else (1.0,))
        ax.yaxis.set_major_locator(LogLocator(subs=subs))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _f(x: Any) -> float:
    return float(x) if isinstance(x, (int, float)) and math.isfinite(x) else float("nan")


# ----------------------------------------------------------------------------------------- figures


def _band_note(runs: Sequence[RunData]) -> str:
    reps = sorted({run.timeline.replications for run in runs})
    counts = f"{reps[0]}" if len(reps) == 1 else f"{reps[0]}–{reps[-1]}"
    return f"line: median, band: 5–95 % of {counts} replication{'' if reps == [1] else 's'}"


def traceability_figure(runs: Sequence[RunData]) -> Figure:
    """(a) Traceable / dark / frozen (as victims report it) and cashed-out shares over time, one panel each,
    one colour per scenario."""
    fig = new_figure(*TRACE_SIZE)
    axes = fig.subplots(2, 2, sharex=True)
    for ax, state in zip(axes.flat, TRACE_STATES):
        plot_traceability(runs, state, ax=ax)
    for ax in axes[0]:
        ax.tick_params(labelbottom=True)
    _band_legend(fig, runs, axes.flat[0].get_lines()[:len(runs)])
    what = "one colour per scenario; " if len(runs) > 1 else ""
    fig.suptitle(f"Share of the stolen value traceable, dark, frozen and cashed out over time\n"
                 f"({what}{_band_note(runs)})")
    return fig


def _band_legend(fig: Figure, runs: Sequence[RunData], lines: Sequence[Any]) -> None:
    """One legend entry per scenario below the panels: its line over its band."""
    handles = [(Patch(color=policy_color(i), alpha=0.2, linewidth=0), line) for i, line in enumerate(lines)]
    ncols = min(len(runs), 3)
    order = _row_major(len(runs), ncols)
    fig.legend([handles[k] for k in order], [policy_label(runs, k) for k in order], loc="outside lower center",
               ncols=ncols, handler_map={tuple: HandlerTuple(ndivide=1)}, handlelength=3)


def traceability_difference_figure(runs: Sequence[RunData]) -> Figure | None:
    """(a') The traceability curves as paired differences from the reference scenario, where effects
    of 1-2 pp that a 0-100 % axis flattens are visible (None unless the runs are paired)."""
    if not is_paired(runs):
        return None
    differences = paired_differences(runs)
    fig = new_figure(*TRACE_SIZE)
    axes = fig.subplots(2, 2, sharex=True)
    for ax, state in zip(axes.flat, TRACE_STATES):
        plot_difference(runs, differences, state, ax=ax)
    for ax in axes[0]:
        ax.tick_params(labelbottom=True)
    _band_legend(fig, runs, axes.flat[0].get_lines()[:len(runs)])
    pairs = min(q.replications for q in differences.values())
    fig.suptitle(f"Difference from {runs[0].name} over time, paired by replication (common random numbers)\n"
                 f"(percentage points of the stolen value; line: median, band: 5–95 % of {pairs} paired differences)")
    return fig


def _row_major(n: int, ncols: int) -> list[int]:
    """Order for a legend (which fills column by column) so that it reads row by row."""
    return [k for j in range(ncols) for k in range(j, n, ncols)]


def _grid(n: int) -> tuple[int, int]:
    """Rows and columns of small multiples: at most two columns, so that a report page (about 11
    inches wide) shows the panels at their size, text included, instead of shrinking them."""
    ncols = 1 if n == 1 else 2
    return math.ceil(n / ncols), ncols


def outcome_areas_figure(runs: Sequence[RunData]) -> Figure:
    """(b) Stacked median shares of the six locations, one panel per scenario."""
    nrows, ncols = _grid(len(runs))
    fig = new_figure(max(9.0, PANEL_W * ncols + 1.0), PANEL_H * nrows + 1.5)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, sharey=True, squeeze=False)).ravel()
    for ax, run in zip(axes, runs):
        plot_outcome_areas(run, ax=ax)
    for i, ax in enumerate(axes):
        if i >= len(runs):
            ax.set_visible(False)
        elif i % ncols:
            ax.set_ylabel("")
    if len(runs) > 1:
        axes[0].set_title(f"{runs[0].name} (reference)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles[::-1], labels[::-1], loc="outside lower center", ncols=len(STACK_ORDER))
    fig.suptitle("Where the stolen value is over time: median share in each state\n"
                 f"(over {_band_note(runs).split(' of ')[1]}; medians need not sum to exactly 100 %)")
    return fig


def final_outcomes_figure(runs: Sequence[RunData]) -> Figure:
    """(c) Median final share of each state per scenario, with 5–95 % error bars."""
    fig = new_figure(*FINAL_SIZE)
    ax = plot_final_outcomes(runs, ax=fig.add_subplot())
    handles, labels = ax.get_legend_handles_labels()
    ncols = min(len(runs), 3)
    order = _row_major(len(handles), ncols)
    fig.legend([handles[k] for k in order], [labels[k] for k in order], loc="outside lower center", ncols=ncols)
    horizons = sorted({f"{run.horizon_days:g}" for run in runs})
    fig.suptitle(f"Final outcome at the horizon ({' / '.join(horizons)} days): median share of the stolen value\n"
                 "(error bars: 5–95 % of replications)")
    return fig


def _collateral(run: RunData) -> tuple[float, float, float] | None:
    """Median and 5–95 % of the honest USD stopped or turned away (summary.json's ``collateral``), summed."""
    stats = run.summary.get("collateral")
    if not isinstance(stats, dict):
        return None
    keys = ("honest_stopped_usd", "honest_turned_away_usd")
    values = [[_f((stats.get(k) or {}).get(q)) for k in keys] for q in ("median", "p5", "p95")]
    return tuple(float(np.nansum(v)) for v in values)  # type: ignore[return-value]


def plot_tradeoff(runs: Sequence[RunData], ax: Axes | None = None) -> Axes:
    """Each policy as a point: its cost to honest users (USD stopped or turned away) against its
    effect on the launderer (share of the stolen value frozen or seized), with 5–95 % bars."""
    ax = _new_axes(ax)
    peak = 0.0
    for k, run in enumerate(runs):
        cost = _collateral(run)
        effect = (run.summary.get("states") or {}).get("reported_frozen") or {}
        if cost is None or _f(effect.get("median_share")) != _f(effect.get("median_share")):
            continue
        y, low, high = (_f(effect.get(f)) for f in ("median_share", "p5_share", "p95_share"))
        ax.errorbar([cost[0] / 1e6], [y], xerr=[[max(cost[0] - cost[1], 0) / 1e6], [max(cost[2] - cost[0], 0) / 1e6]],
                    yerr=[[max(y - low, 0)], [max(high - y, 0)]], fmt="o", capsize=3, color=policy_color(k),
                    label=policy_label(runs, k))
        peak = max(peak, high)
    ax.set_xscale("symlog", linthresh=1.0)  # costs run from thousands to billions of dollars
    ax.set_xlim(left=0)
    _share_axis(ax, _nice_top(peak))
    ax.set_xlabel("cost to honest users: USD frozen, seized, refused or displaced (millions)")
    ax.set_ylabel("stolen value frozen or seized (share)")
    ax.grid(True, alpha=0.3)
    return ax


def tradeoff_figure(runs: Sequence[RunData]) -> Figure | None:
    """(e) The trade-off: effect on the launderer vs cost to honest users, per policy (only when
    some scenario models honest users)."""
    if not any(_collateral(run) is not None for run in runs):
        return None
    fig = new_figure(*FINAL_SIZE)
    ax = plot_tradeoff(runs, ax=fig.add_subplot())
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=min(len(runs), 3))
    fig.suptitle("Effect on the launderer vs cost to honest users, per policy\n(median; bars: 5–95 % of replications)")
    return fig


def scenario_asset(run: RunData, venue: str) -> str | None:
    """The asset a pool mixer takes, from a scenario.yaml / scenario.json saved beside the run, if any."""
    for name in ("scenario.yaml", "scenario.yml", "scenario.json"):
        file = run.path / name
        if file.is_file():
            try:
                import yaml

                doc = yaml.safe_load(file.read_text(encoding="utf-8"))
                asset = doc["venues"][venue]["asset"]
                return str(asset) if asset else None
            except Exception:  # noqa: BLE001 — a label nicety; the figure is fine without it
                return None
    return None


def anonymity_figure(runs: Sequence[RunData]) -> Figure | None:
    """(d) Anonymity sets of every pool mixer of every scenario that has them (None if none has).

    The panels share one log y axis (pools compare across scenarios at a glance) and one legend,
    set in the grid's empty slot when there is one.
    """
    panels = [(run, venue) for run in runs for venue in run.anonymity]
    if not panels:
        return None
    nrows, ncols = (len(panels), 1) if len(panels) <= 2 else (math.ceil(len(panels) / 2), 2)
    fig = new_figure(11.0 if ncols == 2 else 9.0, PANEL_H * nrows + 1.3)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, sharey=True, squeeze=False)).ravel()
    assets = {(run.name, venue): scenario_asset(run, venue) for run, venue in panels}
    keys = sorted({(assets[(run.name, venue)] or "", d) for run, venue in panels for d in run.anonymity[venue].keys})
    shades = _denomination_colors(range(len(keys)))
    for ax, (run, venue) in zip(axes, panels):
        asset = assets[(run.name, venue)]
        colors = {d: shades[keys.index((asset or "", d))] for d in run.anonymity[venue].keys}
        plot_anonymity(run, venue, ax=ax, asset=asset, colors=colors, legend=False)
    _notes_axis(axes[0], *_notes_range([run.anonymity[venue] for run, venue in panels]))
    for i, ax in enumerate(axes[:len(panels)]):
        if i % ncols:
            ax.set_ylabel("")
    handles: dict[str, Any] = {}
    for ax in axes[:len(panels)]:
        lines, names = ax.get_legend_handles_labels()
        handles.update(zip(names, lines))
    labels = [f"{d:g}{' ' + a if a else ''}" for a, d in keys]
    if len(panels) < len(axes):  # the empty slot holds the legend
        slot = axes[len(panels)]
        slot.axis("off")
        slot.legend([handles[label] for label in labels], labels, title="denomination", loc="center")
        for ax in axes[len(panels) + 1:]:
            ax.set_visible(False)
    else:
        fig.legend([handles[label] for label in labels], labels, title="denomination", loc="outside lower center",
                   ncols=min(len(labels), 6))
    fig.suptitle("Anonymity set of the pool mixers over time\n"
                 f"(notes in each denomination's pool; {_band_note([r for r, _ in panels])})")
    return fig


# --- where the value went: a Sankey-style flow -------------------------------------------------------

FLOW_LOCATIONS = ("launderer", "venue", "fees", "cashed_out", "frozen", "seized")
FLOW_REPORTED = ("reported_traceable", "reported_dark", "reported_frozen")
CASH_OUT_KINDS = ("otc", "exchange")


def _share(summary: dict[str, Any], state: str) -> float:
    return max(0.0, _f(((summary.get("states") or {}).get(state) or {}).get("median_share")))


def flow_data(run: RunData) -> dict[str, Any]:
    """The numbers of one run's flow picture, from its summary.json (medians over the replications, as
    shares of the stolen value): what entered each venue, the final locations and the reported shares,
    and the ribbons between them (a venue's frozen, seized and fees go to those states; cashed out is
    split over the off-ramps by their inflow; the in-play value splits into traceable and dark)."""
    s = run.summary
    venues = {name: v for name, v in (s.get("venues") or {}).items() if isinstance(v, dict)}
    stolen = _f(s.get("stolen_usd"))
    inflow = {name: max(0.0, _f((v.get("inflow_share") or {}).get("median"))) for name, v in venues.items()}
    inflow = {k: v for k, v in inflow.items() if np.isfinite(v) and v > 0}
    final = {state: _share(s, state) for state in FLOW_LOCATIONS}
    reported = {state: _share(s, state) for state in FLOW_REPORTED}
    links: list[tuple[str, str, float]] = []
    for name in inflow:
        for state, field in (("frozen", "frozen_usd"), ("seized", "seized_usd"), ("fees", "fees_usd")):
            usd = _f((venues[name].get(field) or {}).get("median"))
            if np.isfinite(usd) and usd > 0 and stolen > 0:
                links.append((name, state, usd / stolen))
    ramps = [n for n in inflow if venues[n].get("kind") in CASH_OUT_KINDS]
    ramp_inflow = sum(inflow[n] for n in ramps)
    for name in ramps:
        links.append((name, "cashed_out", final["cashed_out"] * inflow[name] / ramp_inflow))
    in_play = final["launderer"] + final["venue"] + final["fees"]
    traceable = min(reported["reported_traceable"], in_play)
    for state in ("launderer", "venue", "fees"):
        part = final[state] / in_play if in_play > 0 else 0.0
        links.append((state, "reported_traceable", traceable * part))
        links.append((state, "reported_dark", (in_play - traceable) * part))
    links.append(("cashed_out", "reported_dark", final["cashed_out"]))
    links.append(("frozen", "reported_frozen", final["frozen"]))
    links.append(("seized", "reported_frozen", final["seized"]))
    kinds = {name: str(venues[name].get("kind", "?")) for name in inflow}
    return {"inflow": inflow, "kinds": kinds, "final": final, "reported": reported, "links": links}


def _ribbon(ax: Axes, x0: float, y0: tuple[float, float], x1: float, y1: tuple[float, float], color: str,
            alpha: float = 0.35) -> None:
    """A band from (x0, y0 low..high) to (x1, y1 low..high), eased with cubic curves."""
    from matplotlib.patches import PathPatch
    from matplotlib.path import Path as MPath

    mid = (x0 + x1) / 2
    verts = [(x0, y0[1]), (mid, y0[1]), (mid, y1[1]), (x1, y1[1]), (x1, y1[0]), (mid, y1[0]), (mid, y0[0]),
             (x0, y0[0]), (x0, y0[1])]
    codes = [MPath.MOVETO, MPath.CURVE4, MPath.CURVE4, MPath.CURVE4, MPath.LINETO, MPath.CURVE4, MPath.CURVE4,
             MPath.CURVE4, MPath.CLOSEPOLY]
    ax.add_patch(PathPatch(MPath(verts, codes), facecolor=color, edgecolor="none", alpha=alpha))


def plot_flow(data: RunData | str | Path, ax: Axes | None = None) -> Axes:
    """Where the stolen value went: the theft, the venues it passed, the final locations, and the
    shares as victims report them (traceable / dark / frozen or seized). Bar heights are shares of the
    stolen value, except in the venues column: a dollar can pass several venues (their inflows sum to
    300 % and more), so that column is scaled to the theft's height and each venue is labelled with its
    own share; its ribbons widen or narrow to the states' true scale."""
    run = _as_run(data)
    ax = _new_axes(ax, (8.0, 6.0))
    flow = flow_data(run)
    gap = 0.025
    xs = (0.0, 1.3, 2.75, 3.25)
    width = 0.08
    scale = 1.0 / max(1.0, sum(flow["inflow"].values()))  # the venues column fits the theft's height
    nodes: dict[str, tuple[float, float, float]] = {}  # name -> (x, bottom, height)

    def column(x: float, items: list[tuple[str, float]]) -> None:
        total = sum(h for _, h in items) + gap * max(len(items) - 1, 0)
        y = max(total, 1.0) - (max(total, 1.0) - total) / 2
        for name, height in items:
            y -= height
            nodes[name] = (x, y, height)
            y -= gap

    column(xs[0], [("stolen", 1.0)])
    column(xs[1], [(name, share * scale) for name, share in flow["inflow"].items()])
    column(xs[2], [(state, flow["final"][state]) for state in FLOW_LOCATIONS])
    column(xs[3], [(state, flow["reported"][state]) for state in FLOW_REPORTED])
    used: dict[str, float] = {}  # how much of each node's height the ribbons on each side already take

    def take(name: str, side: str, amount: float) -> tuple[float, float]:
        x, bottom, height = nodes[name]
        top = bottom + height - used.get(name + side, 0.0)
        used[name + side] = used.get(name + side, 0.0) + amount
        return (top - amount, top)

    for venue, share in flow["inflow"].items():  # the theft to each venue it reached
        _ribbon(ax, xs[0] + width / 2, take("stolen", ">", share * scale), xs[1] - width / 2,
                take(venue, "<", share * scale), "#999999", 0.25)
    for src, dst, amount in flow["links"]:
        if amount <= 0 or src not in nodes or dst not in nodes:
            continue
        _ribbon(ax, nodes[src][0] + width / 2, take(src, ">", amount * (scale if src in flow["inflow"] else 1.0)),
                nodes[dst][0] - width / 2, take(dst, "<", amount), STATE_COLORS.get(dst, "#999999"), 0.35)
    labels: dict[float, list[tuple[float, str, bool]]] = {}  # column -> (y, text, on the right)
    for name, (x, bottom, height) in nodes.items():
        color = STATE_COLORS.get(name, "#4d4d4d" if name == "stolen" else "#8c8c8c")
        ax.add_patch(matplotlib.patches.Rectangle((x - width / 2, bottom), width, max(height, 0.002),
                                                  facecolor=color, edgecolor="white", linewidth=0.5))
        if name == "stolen":  # (its amount is in the column's head: the venues' labels reach back to its bar)
            continue
        if name in flow["inflow"]:
            text = f"{name} ({flow['kinds'][name].replace('_', ' ')}) {flow['inflow'][name]:.0%}"
        else:
            text = f"{STATE_LABELS.get(name, name)} {height:.1%}"
        if height < 0.004 and name not in flow["inflow"]:
            continue  # a state nothing reached: no label over its neighbours
        # only the reported column is labelled on its right (free space); the others on their left, over
        # the light ribbons coming in, so that no label covers the next column
        labels.setdefault(x, []).append((bottom + height / 2, text, x == xs[3]))
    for x, items in labels.items():
        for y, text, right in _spread(items, 0.052):
            ax.text(x + (width / 2 + 0.03) * (1 if right else -1), y, text, ha="left" if right else "right",
                    va="center", fontsize=8, bbox={"facecolor": "white", "alpha": 0.7, "edgecolor": "none", "pad": 0.6})
    top = max(1.0, *(b + h for _, b, h in nodes.values()))
    ax.set_xlim(-0.25, 4.1)
    ax.set_ylim(-0.05, top + 0.06)
    ax.axis("off")
    stolen = f"stolen\n{short_usd_text(run.summary.get('stolen_usd'))}"
    for x, head in zip(xs, (stolen, "venues passed\n(scaled to fit)", "at the\nhorizon", "as\nreported")):
        ax.text(x, top + 0.05, head, ha="center", va="bottom", fontsize=8, color="#333333")
    ax.set_title(run.name, pad=26)
    return ax


def _spread(items: list[tuple[float, str, bool]], step: float) -> list[tuple[float, str, bool]]:
    """Label positions moved apart, top to bottom, so that labels ``step`` apart do not overlap; kept
    above -0.04 (the axes' bottom) by moving the whole run of them up."""
    ordered = sorted(items, key=lambda item: -item[0])
    ys: list[float] = []
    for y, _, _ in ordered:
        ys.append(min(y, ys[-1] - step) if ys else y)
    lift = max(0.0, -0.03 - ys[-1]) if ys else 0.0
    return [(y + lift, text, right) for y, (_, text, right) in zip(ys, ordered)]


def short_usd_text(value: Any) -> str:
    from ..metrics import short_usd

    return short_usd(_f(value)) if np.isfinite(_f(value)) else "?"


def flow_figure(runs: Sequence[RunData]) -> Figure:
    """(e) Where the value went, one flow per scenario, side by side (two per row)."""
    ncols = 1 if len(runs) == 1 else 2
    nrows = math.ceil(len(runs) / ncols)
    fig = new_figure(9.0 if ncols == 1 else 11.0, 4.8 * nrows + 0.9)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax, run in zip(axes, runs):
        plot_flow(run, ax=ax)
    for ax in axes[len(runs):]:
        ax.set_visible(False)
    fig.suptitle("Where the stolen value went: the venues it passed, where it is at the horizon, as victims report it\n"
                 "(medians of the replications, shares of the stolen value; a dollar can pass several venues, so\n"
                 "that column is scaled to fit; cashed out is split over the off-ramps by their inflow)")
    return fig


def service_flows(run: RunData) -> tuple[list[str], Quantiles] | None:
    """Cumulative share of the stolen value that entered each service of a run's market, over time
    (median and 5–95 % over the stored replications); None without services or replications."""
    from ..runs.store import StoredRun  # (a run directory's replications: only this figure reads them)

    try:
        stored = StoredRun(run.path)
        services = list(stored.scenario.market.services)
        reps = stored.replications() if services else {}
    except Exception:  # noqa: BLE001 — a run without readable replications has no such figure
        return None
    if not services or not reps:
        return None
    venues = list(stored.scenario.venues)
    index = np.array([venues.index(name) for name in services])
    rows: list[tuple[np.ndarray, ...]] = []
    for i, rep in reps.items():
        log = rep.inflows or {"venue": np.empty(0, dtype=np.int64), "time": np.empty(0), "value_usd": np.empty(0)}
        for k, v in enumerate(index):
            mine = log["venue"] == v
            t = np.concatenate(([0.0], log["time"][mine], [rep.horizon]))
            cum = np.cumsum(np.concatenate(([0.0], log["value_usd"][mine], [0.0]))) / rep.stolen_usd
            rows.append((np.full(len(t), i), t, np.full(len(t), k), cum))
    rep_col, time_col, key_col, value_col = (np.concatenate(c) for c in zip(*rows))
    return services, quantiles(rep_col, time_col, key_col, value_col, list(range(len(services))))


def service_flows_figure(runs: Sequence[RunData]) -> Figure | None:
    """(f) Flows by service over time: the cumulative share of the stolen value that entered each
    service, one panel per scenario with services (None if none has)."""
    panels = [(run, flows) for run in runs if (flows := service_flows(run)) is not None]
    if not panels:
        return None
    nrows, ncols = _grid(len(panels))
    fig = new_figure(max(9.0, PANEL_W * ncols + 1.0), PANEL_H * nrows + 1.5)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, sharey=True, squeeze=False)).ravel()
    peak = 0.0
    for ax, (run, (services, q)) in zip(axes, panels):
        for k, name in enumerate(services):
            color = POLICY_COLORS[k % len(POLICY_COLORS)]
            ax.fill_between(q.days, q.p5[:, k], q.p95[:, k], color=color, alpha=0.2, linewidth=0)
            ax.plot(q.days, q.median[:, k], color=color, linewidth=1.8, label=name)
            peak = max(peak, float(np.nanmax(q.p95[:, k], initial=0.0)))
        ax.set_title(run.name)
        ax.set_xlabel("time since the scenario starts (days)")
        ax.set_xlim(0, run.horizon_days)
        ax.legend(loc="upper left", fontsize=8)
    for ax in axes:
        _share_axis(ax, _nice_top(peak))
    for i, ax in enumerate(axes):
        if i >= len(panels):
            ax.set_visible(False)
        elif i % ncols:
            ax.set_ylabel("")
    fig.suptitle("Flows by service over time: share of the stolen value that has entered each service\n"
                 f"(median, band 5–95 % over {_band_note([run for run, _ in panels]).split(' of ')[1]})")
    return fig


FIGURES = (
    ("traceability", traceability_figure),
    ("traceability_difference", traceability_difference_figure),
    ("outcome_areas", outcome_areas_figure),
    ("final_outcomes", final_outcomes_figure),
    ("anonymity", anonymity_figure),
    ("flow", flow_figure),
    ("tradeoff", tradeoff_figure),
    ("service_flows", service_flows_figure),
)


@contextmanager
def style_context() -> Iterator[None]:
    """matplotlib's default style plus ours and a fixed SVG hash salt (independent of the user's rc)."""
    with matplotlib.style.context("default"), matplotlib.rc_context(STYLE):
        yield


def build_figures(runs: Sequence[RunData]) -> list[tuple[str, Figure]]:
    """All figures for these runs as ``(name, figure)``; call inside :func:`style_context`."""
    out = []
    for name, build in FIGURES:
        fig = build(runs)
        if fig is not None:
            out.append((name, fig))
    return out


def save_figure(fig: Figure, target: Any, fmt: str) -> None:
    """Save deterministically (no date, no software tag); ``target`` is a path or a binary file."""
    if fmt not in _SAVE_OPTIONS:
        raise ValueError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    with matplotlib.rc_context({"svg.hashsalt": STYLE["svg.hashsalt"]}):
        fig.savefig(target, format=fmt, **_SAVE_OPTIONS[fmt])


def figure_names(formats: Sequence[str] = FORMATS) -> list[str]:
    """Every file :func:`write_figures` may write (the figures a run lacks aside)."""
    return [f"{name}.{fmt}" for name, _ in FIGURES for fmt in formats]


def _figure_bytes(fig: Figure, fmt: str) -> bytes:
    buffer = io.BytesIO()
    save_figure(fig, buffer, fmt)
    return buffer.getvalue()


def write_figures(run_or_compare_dir: str | Path, out_dir: str | Path | None = None,
                  formats: Sequence[str] = FORMATS, overwrite: bool = False) -> list[Path]:
    """Draw every figure of a run or comparison directory into ``out_dir`` (default DIR/figures).

    Writes ``traceability``, ``outcome_areas``, ``final_outcomes``, ``flow``, when any scenario has
    pool mixers ``anonymity``, and for a sweep directory ``sensitivity`` — each in every format — and
    returns the paths written. They are
    launderflow's own files (:func:`~launderflow.runs.outputs.write_files`): a file of the user's
    of the same name, or a linked ``figures/``, is refused (the former unless ``overwrite``),
    and nothing else in the folder is touched. Holds the writer lock of DIR (or ``out_dir``).
    """
    formats = tuple(dict.fromkeys(formats))
    bad = [f for f in formats if f not in _SAVE_OPTIONS]
    if bad or not formats:
        raise ValueError(f"unknown format(s) {', '.join(map(repr, bad))} (use {', '.join(FORMATS)})")
    runs = load_runs(run_or_compare_dir)
    if out_dir is None:  # DIR/figures: the folder is checked too (a linked figures/ is refused)
        root, prefix = Path(run_or_compare_dir), "figures/"
    else:
        root, prefix = Path(out_dir), ""
    sweep = sweep_meta(run_or_compare_dir)
    names = figure_names(formats) + ([f"sensitivity.{fmt}" for fmt in formats] if sweep is not None else [])
    with locked(root):  # one writer per directory
        check_files(root, [prefix + name for name in names], overwrite)  # before drawing
        files = {}
        with style_context():
            for name, fig in build_figures(runs):
                for fmt in formats:
                    files[f"{prefix}{name}.{fmt}"] = _figure_bytes(fig, fmt)
            if sweep is not None:  # a sweep: the final outcomes against the swept parameter too
                fig = sensitivity_figure(sweep_rows(run_or_compare_dir), sweep_axes(sweep), sweep["scenarios"])
                for fmt in formats:
                    files[f"{prefix}sensitivity.{fmt}"] = _figure_bytes(fig, fmt)
        return write_files(root, files, overwrite)


SENSITIVITY_METRICS = tuple(METRICS["final_share"](state=s).key for s in FINAL_STATES)  # traced_share, ...


def sensitivity_figure(rows: Sequence[dict[str, Any]], axes: Sequence[tuple[str, Sequence[Any]]],
                       labels: Sequence[str]) -> Figure:
    """Final shares against the swept parameter(s), one panel per outcome: median and 5-95 % of the
    replications per point.

    With one numeric swept parameter its values are the x axis, drawn where they are (0.3 at 0.3):
    a line joins the medians over a band of their 5-95 % range. With others every grid point is one
    x position labelled with its values, with error bars and no line (a line would suggest a trend
    between unrelated settings). Each panel's y axis fits its outcome, so that a change of a point
    or two (frozen 2.3 → 3.4 %) shows instead of lying flat on a 0-100 % axis.
    """
    by = {(r["scenario"], r["metric"]): r for r in rows}
    fig = new_figure(11.0, 7.0)
    panels = fig.subplots(2, 2, sharex=True)
    where = _numeric_positions(axes[0][1]) if len(axes) == 1 else None
    numeric = where is not None
    x = where if where is not None else np.arange(len(labels), dtype=float)
    log = numeric and bool(np.all(x > 0)) and x.max() / x.min() >= 20  # 1h, 6h, 24h: not crowded at the left
    for ax, metric in zip(panels.flat, SENSITIVITY_METRICS):
        state = metric.replace("_share", "")
        med = np.array([_f(by.get((lab, metric), {}).get("median")) for lab in labels])
        lo = np.array([_f(by.get((lab, metric), {}).get("p5")) for lab in labels])
        hi = np.array([_f(by.get((lab, metric), {}).get("p95")) for lab in labels])
        color = STATE_COLORS.get(state, "#333333")
        if numeric:
            order = np.argsort(x)
            ax.fill_between(x[order], lo[order], hi[order], color=color, alpha=0.2, linewidth=0)
            ax.plot(x[order], med[order], "o-", color=color, markersize=5, linewidth=1.8)
        else:
            ax.errorbar(x, med, yerr=np.vstack([np.clip(med - lo, 0, None), np.clip(hi - med, 0, None)]),
                        fmt="o", linestyle="none", color=color, markersize=6, elinewidth=1.4, capsize=4, zorder=3)
        ax.set_title(TRACE_TITLES.get(state, STATE_LABELS.get(state, state)).split(" — ")[0])
        _fitted_share_axis(ax, np.nanmin(lo, initial=np.inf), np.nanmax(hi, initial=0.0))
        if numeric:
            if log:
                ax.set_xscale("log")
                ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlabel(axes[0][0] + (" (log scale)" if log else ""))
            ax.set_xticks(x, [v if isinstance(v, str) else f"{v:g}" for v in axes[0][1]])
            ax.minorticks_off()
            ax.margins(x=0.06)  # the end points off the spines
        elif len(axes) == 1:  # one parameter of named values: the values are the labels
            ax.set_xticks(x, [str(v) for v in axes[0][1]])
            ax.set_xlim(x[0] - 0.5, x[-1] + 0.5)
            ax.grid(axis="x", visible=False)
            ax.set_xlabel(axes[0][0])
        else:
            ax.set_xticks(x, [lab.replace(", ", "\n") for lab in labels], fontsize=8)
            ax.set_xlim(x[0] - 0.5, x[-1] + 0.5)
            ax.grid(axis="x", visible=False)
            ax.set_xlabel(" × ".join(name for name, _ in axes))
        ax.tick_params(labelbottom=True)
    for ax in panels[:, 1]:
        ax.set_ylabel("")
    runs = sorted({int(r["runs"]) for r in rows if isinstance(r.get("runs"), int)})
    count = "" if not runs else f" of {runs[0]}" if len(runs) == 1 else f" of {runs[0]}–{runs[-1]}"
    fig.suptitle(f"Sensitivity of the final outcomes to {' × '.join(name for name, _ in axes)}\n"
                 f"(median and 5–95 % range{count} replications per point; each panel's axis fits its outcome)")
    return fig


def _numeric_positions(values: Sequence[Any]) -> np.ndarray | None:
    """Where a swept parameter's values sit on a numeric axis — numbers as they are, durations
    (``"6h"``, ``"2d"``) in hours — or None when they are not all numbers or all durations."""
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return np.array([float(v) for v in values])
    if all(isinstance(v, str) for v in values):
        try:
            return np.array([parse_duration(v) for v in values])
        except ValueError:
            return None
    return None


class _PercentAboveZero(PercentFormatter):
    """Percent tick labels with as few decimals as the ticks need (22.2 %, not 22.20 %; 12.5 %, not
    12 %), none below 0 % (the room left there for markers is not a share)."""

    def __call__(self, x: float, pos: int | None = None) -> str:
        if x < -1e-12:
            return ""
        shown = [100 * t for t in self.axis.get_majorticklocs()] if self.axis is not None else [100 * x]
        decimals = next((d for d in range(5) if all(abs(round(t, d) - t) < 1e-9 for t in shown)), 4)
        return f"{100 * x:.{decimals}f}%"


def _fitted_share_axis(ax: Axes, low: float, high: float) -> None:
    """A share axis around [low, high], with room to see the band: 0 at the bottom unless the values
    sit far above it."""
    if not np.isfinite(low) or not np.isfinite(high):
        low, high = 0.0, 0.05
    span_ = max(high - low, 0.005)
    bottom = 0.0 if low < 1.5 * span_ else max(0.0, low - 0.25 * span_)
    top = min(1.02, high + 0.25 * span_) if high > 0 else 0.05
    top = max(top, bottom + 0.005)
    if bottom == 0:  # room below 0 %: markers there are whole, not cut by the axis
        bottom = -0.04 * top
    ax.set_ylim(bottom, top)
    ax.yaxis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]))
    ax.yaxis.set_major_formatter(_PercentAboveZero(1.0, decimals=None))
    ax.set_ylabel("final share of stolen value")


def write_sensitivity(out_dir: str | Path, rows: Sequence[dict[str, Any]], axes: Sequence[tuple[str, Sequence[Any]]],
                      labels: Sequence[str], formats: Sequence[str] = FORMATS, overwrite: bool = False) -> list[Path]:
    """Save the sweep's sensitivity figure as OUT/figures/sensitivity.{png,svg} (launderflow's own
    files, as :func:`write_figures` writes them)."""
    with style_context():
        fig = sensitivity_figure(rows, axes, labels)
        files = {f"figures/sensitivity.{fmt}": _figure_bytes(fig, fmt) for fmt in formats}
    return write_files(out_dir, files, overwrite)
