"""The Python API: what the command line does, for notebooks and scripts.

    import launderflow as lf

    run = lf.run("scenarios/baseline.yaml", runs=8, jobs=2)        # -> Run (writes out/baseline/)
    run.summary["states"]["cashed_out"]["median_share"]
    run.timeline                                                     # pyarrow.Table
    run.to_pandas("timeline")                                        # pandas.DataFrame (pip install launderflow[pandas])
    cmp = lf.compare(["scenarios/baseline.yaml", "scenarios/combined.yaml"], runs=10, at=["11d", "60d"])
    cmp.rows                                                         # median, 5-95 %, paired difference per metric
    lf.plot_traceability(cmp, ax=ax)                                 # any matplotlib Axes
    lf.open_run("out/baseline")                                      # a run written earlier, or by the CLI

Every function writes and reads the same run directories as the CLI, with the same bytes: a run
made here can be plotted, queried or resumed from the command line and the other way round.
Errors are exceptions: :class:`~launderflow.scenario.loader.ScenarioError` for a bad scenario
(its ``problems`` hold file, line and field), :class:`~launderflow.runs.store.StoreError` for a
directory that holds another run, :class:`~launderflow.runs.lock.LockedError` for a directory
another process is writing into (every function holds its output directories' writer lock while it
works, as the CLI does; see :mod:`launderflow.runs.lock`), and
:class:`~launderflow.runs.experiment.RunInterrupted` (a KeyboardInterrupt) for Ctrl-C during a run.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .analysis import compare as comparison
from .metrics import METRICS, Measure, measure
from .model.simulate import Replication
from .runs.experiment import Progress, RunReport, run_scenario
from .runs.lock import locked
from .runs.outputs import check_files, refuse_linked
from .runs.store import StoredRun
from .scenario.loader import load_scenario
from .scenario.schema import Scenario
from .units import parse_duration

ScenarioLike = str | os.PathLike | Scenario


def _scenario(scenario: ScenarioLike, overrides: Mapping[str, Any] | None = None) -> Scenario:
    if isinstance(scenario, Scenario):
        if overrides:
            raise ValueError("overrides apply to scenario files: pass the file's path, or change the Scenario object")
        return scenario
    return load_scenario(scenario, dict(overrides or {}), override_label="overrides {field}={value}")


def _out(out: str | os.PathLike) -> Path:
    """An output directory; ValueError for an empty path (``Path("")`` would be the current directory)."""
    if not os.fspath(out).strip():
        raise ValueError("out: empty path (give a directory; '.' for the current one)")
    return Path(out)


def _hours(times: Sequence[float | str], specs: Sequence[Scenario] = ()) -> list[float]:
    """Times (hours, or durations like "11d") as hours; refused (ValueError) past a scenario's horizon,
    where a share "at 400 d" would be the horizon's under another name."""
    hours = [parse_duration(t) if isinstance(t, str) else float(t) for t in times]
    comparison.check_times(hours, [(spec.name, spec.clock.horizon) for spec in specs])
    return hours


def _to_pandas(table: pa.Table | None, what: str) -> Any:
    if table is None:
        raise ValueError(f"this run has no {what}")
    try:
        return table.to_pandas()
    except ModuleNotFoundError as exc:  # pyarrow imports pandas on demand
        raise ModuleNotFoundError("DataFrames need pandas: pip install 'launderflow[pandas]'") from exc


class Run:
    """A run directory: the scenario as run, its summary, and its tables as Arrow tables.

    ``os.fspath(run)`` is its directory, so a Run goes wherever a path does (the plot functions,
    ``open_run``, the CLI).
    """

    def __init__(self, path: str | os.PathLike, report: RunReport | None = None):
        self.path = Path(path)
        self._stored = StoredRun(self.path)
        self.scenario: Scenario = self._stored.scenario
        self.report = report

    def __fspath__(self) -> str:
        return str(self.path)

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}: {self.scenario.name}, {len(self.indices)} replication(s))"

    @property
    def name(self) -> str:
        return self.scenario.name

    @property
    def indices(self) -> list[int]:
        """The stored replications' indices."""
        return self._stored.indices

    @property
    def summary(self) -> dict[str, Any] | None:
        """summary.json (None while the run is not assembled)."""
        path = self.path / "summary.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None

    def _table(self, name: str) -> pa.Table | None:
        path = self.path / f"{name}.parquet"
        return pq.read_table(path) if path.is_file() else None

    @property
    def timeline(self) -> pa.Table:
        """``(replication, time_hours, state, value_usd, share)`` on the scenario's timeline grid."""
        table = self._table("timeline")
        if table is None:
            raise FileNotFoundError(f"{self.path}: no timeline.parquet (the run is not assembled)")
        return table

    @property
    def ledger(self) -> pa.Table | None:
        """One row per transfer (runs of one replication, or with ``keep_ledgers``), else None."""
        return self._table("ledger")

    @property
    def anonymity(self) -> pa.Table | None:
        """Pool mixers' notes over time, when the scenario has pool mixers."""
        return self._table("anonymity")

    def to_pandas(self, table: str = "timeline") -> Any:
        """``timeline``, ``ledger`` or ``anonymity`` as a pandas DataFrame."""
        if table not in ("timeline", "ledger", "anonymity"):
            raise ValueError(f"unknown table {table!r} (timeline, ledger or anonymity)")
        return _to_pandas(getattr(self, table), table)

    def replications(self, ledgers: bool = False) -> dict[int, Replication]:
        """The stored replications, losslessly (without their ledgers unless ``ledgers``)."""
        return self._stored.replications(skip=() if ledgers else ("ledger", "lots_table"))

    def values(self, metric: str | Measure, **params: Any) -> np.ndarray:
        """One metric in every stored replication, in index order: a key (``"traced_share"``), a
        registry name with its parameters (``"share_at", state="dark", at=264``) or a Measure."""
        if isinstance(metric, str):
            metric = METRICS[metric](**params) if metric in METRICS else measure(metric)
        return metric.values(list(self.replications().values()), self.scenario)


def open_run(path: str | os.PathLike) -> Run:
    """A run directory written earlier (by :func:`run` or ``launderflow run``)."""
    return Run(path)


def export_dataset(run_dir: str | os.PathLike, out: str | os.PathLike, formats: Sequence[str] = ("aml", "elliptic", "parquet"),
                   *, replication: int | None = None, start: str = "2022-09-01 00:00", step_hours: float = 24.0,
                   overwrite: bool = False) -> dict[str, Any]:
    """Write a stored run's ledger as a labelled dataset (``launderflow export``; docs/reference/export.md);
    return what ``out/export.json`` records (row counts, the illicit share, the files)."""
    from .views.export import export_run

    return export_run(run_dir, out, formats, replication, start, step_hours, overwrite)


def run(scenario: ScenarioLike, runs: int = 1, seed: int | None = None, out: str | os.PathLike | None = None, *,
        jobs: int = 1, scheduler: str | None = None, keep_ledgers: bool | None = None,
        overrides: Mapping[str, Any] | None = None, resume: bool = False, overwrite: bool = False,
        progress: Progress | None = None, strict: bool = True, at: Sequence[float | str] = (),
        engine: str = "reference") -> Run:
    """Run ``runs`` replications of a scenario (a file or a Scenario) into ``out`` (default
    ``out/<name>``), like ``launderflow run``; return the Run. Ledgers are kept with one replication
    unless ``keep_ledgers`` says otherwise; failed replications are in ``run.report.failures``.
    When every replication failed it raises RuntimeError with the first error, unless not ``strict``.
    ``at``: times (hours or "11d", up to the horizon) whose reported shares summary.json keeps, as
    ``run --at`` does. ``engine``: ``reference`` (numpy) or ``compiled`` (numba kernels; the same
    results, faster), as ``run --engine``."""
    spec = _scenario(scenario, overrides)
    times = _hours(at, [spec])
    seed = spec.seed if seed is None else seed
    target = _out(out) if out is not None else Path("out") / spec.name
    keep = runs == 1 if keep_ledgers is None else keep_ledgers
    report = _api_words(run_scenario, spec, target, seed, runs, keep, jobs, scheduler, resume, overwrite,
                        progress=progress, at=times, engine=engine)
    return _checked(Run(target, report), strict)


def _api_words(call: Any, *args: Any, **kwargs: Any) -> Any:
    """``call(*args, **kwargs)``, with a StoreError's advice in the API's words (``resume=True``,
    ``overwrite=True``, another ``out``) rather than the command line's options."""
    from .runs.store import StoreError

    try:
        return call(*args, **kwargs)
    except StoreError as exc:
        text = str(exc)
        for option, argument in (("--resume", "resume=True"), ("--overwrite", "overwrite=True"), ("--out", "out")):
            text = text.replace(option, argument)
        api_error = StoreError(text)
        api_error.cli_text = str(exc)  # type: ignore[attr-defined]  # (what the command line prints)
        raise api_error from None


def _checked(run: Run, strict: bool = True) -> Run:
    """A run with nothing stored is an error when ``strict`` (a run with some failed replications is
    not: see ``run.report.failures``; ``resume=True`` retries them)."""
    if strict and run.report is not None and run.report.failures and not run.indices:
        first = run.report.failures[0]
        raise RuntimeError(f"every replication of {run.name} failed; replication {first.index} ({first.stage}): "
                           f"{first.error}" + (" — in a script, put calls with jobs > 1 under "
                                               "`if __name__ == \"__main__\":`" if first.stage == "worker" else ""))
    return run


class Comparison:
    """Runs on common random numbers and their comparison with the first (the reference)."""

    def __init__(self, path: Path, runs: dict[str, Run], rows: list[dict[str, Any]], written: list[Path],
                 seed: int | None = None):
        self.path = path
        self.runs = runs
        self.rows = rows
        self.written = written  # the comparison's files (and a sweep's figures)
        self.seed = seed  # the master seed every run shared

    def __fspath__(self) -> str:
        return str(self.path)

    def __repr__(self) -> str:
        return f"Comparison({str(self.path)!r}: {', '.join(self.runs)})"

    @property
    def table(self) -> pa.Table:
        """The rows as an Arrow table (``comparison.parquet``'s columns)."""
        return pa.table({k: [row[k] for row in self.rows] for k in comparison.COLUMNS})

    def to_pandas(self) -> Any:
        return _to_pandas(self.table, "comparison")


def compare(scenarios: Sequence[ScenarioLike], runs: int = 20, seed: int | None = None,
            out: str | os.PathLike = "out/compare", *, at: Sequence[float | str] = (), jobs: int = 1,
            scheduler: str | None = None, overrides: Mapping[str, Any] | None = None, resume: bool = False,
            overwrite: bool = False, progress: Progress | None = None, strict: bool = True,
            engine: str = "reference") -> Comparison:
    """Run every scenario with the same seed into ``out/<name>`` and compare them with the first,
    like ``launderflow compare``; ``at``: also compare the shares at these times (hours or "11d").
    ``engine``: ``reference`` or ``compiled`` (the same results), as :func:`run`.

    ``out`` and every run directory in it are locked before the first replication runs. A scenario
    whose every replication failed raises RuntimeError, unless not ``strict``: then the others still
    run, and its rows are empty."""
    specs = [_scenario(s, overrides) for s in scenarios]
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"scenario names must differ (got {', '.join(names)})")
    seed = specs[0].seed if seed is None else seed
    target = _out(out)
    times = _hours(at, specs)
    check_files(target, comparison.FILES, overwrite)  # before any work (and any folder made): the user's files
    with _locked(target, *(target / name for name in names)):
        check_files(target, comparison.FILES, overwrite)  # (again, now that no one else writes here)
        done = {}
        for spec in specs:
            report = _api_words(run_scenario, spec, target / spec.name, seed, runs, False, jobs, scheduler, resume, overwrite,
                                progress=progress, engine=engine)
            done[spec.name] = _checked(Run(target / spec.name, report), strict)
        rows = comparison.compare([(name, target / name) for name in names], times)
        written = comparison.write(target, rows, names, {"seed": seed, "runs": runs, "at_hours": times}, overwrite)
    return Comparison(target, done, rows, written, seed)


def _locked(target: Path, *dirs: Path) -> ExitStack:
    """Hold the writer lock of ``target`` and of its run directories ``dirs`` (taken in order: none is
    held if one is refused). A run directory that is a symbolic link is refused (OutputError): the
    runs would be written outside ``target``."""
    for directory in dirs:
        refuse_linked(target, directory.name)
    dirs = (target, *dirs)
    stack = ExitStack()
    with stack:
        for directory in dirs:
            stack.enter_context(locked(directory))
        return stack.pop_all()


def sweep_points(scenario: str | os.PathLike, grid: Mapping[str, Sequence[Any]]) -> list[tuple[str, Scenario, dict[str, Any]]]:
    """Every combination of the grid's values: ``(label, scenario, overrides)``, the first axis slowest."""
    points = []
    for combo in itertools.product(*grid.values()):
        overrides = dict(zip(grid, combo))
        label = ", ".join(f"{key.split('.')[-1]}={value}" for key, value in overrides.items())
        points.append((label, load_scenario(scenario, overrides), overrides))
    return points


def sweep(scenario: str | os.PathLike, grid: Mapping[str, Sequence[Any]], runs: int = 10, seed: int | None = None,
          out: str | os.PathLike = "out/sweep", *, jobs: int = 1, scheduler: str | None = None,
          resume: bool = False, overwrite: bool = False, progress: Progress | None = None, strict: bool = True,
          points: Sequence[tuple[str, Scenario, dict[str, Any]]] | None = None, engine: str = "reference") -> Comparison:
    """Run a scenario file over a grid of parameter values (``{"tracing.sharing.latency": [1, 6, 24]}``),
    like ``launderflow sweep``: one run directory per point, a comparison and a sensitivity figure.

    ``points``: ``sweep_points(scenario, grid)`` if already made (to look at them first). ``out`` and
    every point's directory are locked before the first replication runs. A point whose every
    replication failed raises RuntimeError, unless not ``strict``: then its rows are empty. ``engine``:
    ``reference`` or ``compiled`` (the same results), as :func:`run`."""
    from .views.plots import write_sensitivity

    if points is None:
        points = sweep_points(scenario, grid)
    elif [overrides for _, _, overrides in points] != [dict(zip(grid, c)) for c in itertools.product(*grid.values())]:
        raise ValueError("points are not this grid's (make them with sweep_points(scenario, grid))")
    seed = points[0][1].seed if seed is None else seed
    target = _out(out)
    dirs = [target / f"point_{k:03d}" for k in range(len(points))]
    own = [*comparison.FILES, *(f"figures/sensitivity.{fmt}" for fmt in ("png", "svg"))]
    check_files(target, own, overwrite)  # before any work (and any folder made): the user's files are refused
    with _locked(target, *dirs):
        check_files(target, own, overwrite)  # (again, now that no one else writes here)
        done: list[tuple[str, Run]] = []
        for (label, spec, _), run_dir in zip(points, dirs):
            report = _api_words(run_scenario, spec, run_dir, seed, runs, False, jobs, scheduler, resume, overwrite,
                                label=label, progress=progress, engine=engine)
            done.append((label, _checked(Run(run_dir, report), strict)))
        labels = [label for label, _ in done]
        rows = comparison.compare([(label, run.path) for label, run in done])
        params = [{"point": k, "label": label, **{key: (v if isinstance(v, (int, float, str, bool)) else str(v))
                                                for key, v in overrides.items()}}
                  for k, (label, _, overrides) in enumerate(points)]
        written = comparison.write(target, rows, labels,
                                   {"seed": seed, "runs": runs, "parameters": list(grid), "points": params}, overwrite)
        written += write_sensitivity(target, rows, list(grid.items()), labels, overwrite=overwrite)
    return Comparison(target, dict(done), rows, written, seed)
