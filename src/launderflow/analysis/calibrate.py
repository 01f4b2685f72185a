"""Calibrate a scenario's uncertain parameters to public facts.

Method (documented, deliberately simple):

1. **Design.** ``K`` candidate parameter vectors from a Latin hypercube over the parameter box
   (McKay, Beckman & Conover 1979): each parameter's range is cut into ``K`` equal strata (equal in
   ``log`` for ``scale: log``) and every stratum is sampled exactly once. The hypercube is drawn
   from ``numpy.random.default_rng([seed, 0xCA1B])``, so the design is fixed by the seed. Sampled
   values are rounded to 6 significant digits, so a candidate is exactly what the files show.
2. **Common random numbers.** Every candidate runs the same ``N`` replications: replication ``i``
   draws from ``SeedSequence(seed, spawn_key=(i,))`` whatever the parameters, so two candidates
   differ by their parameters, not by their luck.
3. **Distance.** For each target (a public fact with its own uncertainty ``tolerance``), the
   model's value is the median over the ``N`` replications, and
   ``distance = sqrt(mean over targets of ((median - fact) / tolerance) ** 2)``:
   a distance of 1 means "one tolerance off on average".
4. **Approximate Bayesian computation by rejection** (Pritchard et al. 1999; Beaumont 2010) with a
   uniform prior on the box: accept every candidate within ``distance <= 1``, or the best
   ``accept`` fraction (default 20 %) if that is more, i.e. the ABC threshold is
   ``epsilon = max(1, distance of the ceil(accept * K)-th best)``. For each parameter the accepted
   candidates' median and 5-95 % range are its estimate and uncertainty; the best candidate is
   the point estimate written to ``calibrated.yaml``.

With a small ``K`` the 5-95 % range of a handful of accepted candidates is little more than their
span; it is an honest statement of how (un)identified a parameter is at that effort, nothing more.

The targets file (``scenarios/targets/*.yaml``) is read with the scenario loader's machinery
(duplicate keys refused, every error reported as ``file:line: field: message``).
"""

from __future__ import annotations

import copy
import csv
import hashlib
import io
import json
import math
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import yaml

from .. import __version__
from ..metrics import DAYS, METRICS, USD
from ..model.simulate import Replication
from ..runs.executors import open_executor
from ..runs.outputs import write_files
from ..runs.lock import locked
from ..runs.replications import Failure, run_replications
from ..scenario.loader import ScenarioError, extends_outside_allowed, load_data, load_scenario
from ..scenario.schema import Scenario
from .targets import Parameter, Targets, _keys, _lookup, as_value, describe_target, load_targets, metric_value, score, z_score

FORMAT = 1
DESIGN_STREAM = 0xCA1B  # the hypercube's generator: default_rng([seed, DESIGN_STREAM])
T = TypeVar("T")


# --- the design ---------------------------------------------------------------------------------------


def latin_hypercube(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` points in [0, 1)^d, one in each of the ``n`` strata of every dimension (McKay et al. 1979)."""
    u = np.empty((n, d))
    for j in range(d):
        u[:, j] = (rng.permutation(n) + rng.random(n)) / n
    return u


def design(params: list[Parameter], samples: int, seed: int) -> list[list[float | int]]:
    """The candidates: a Latin hypercube scaled to the box, rounded to 6 significant digits."""
    rng = np.random.default_rng([seed, DESIGN_STREAM])
    units = latin_hypercube(samples, len(params), rng)
    out: list[list[float | int]] = []
    for row in units:
        values: list[float | int] = []
        for p, u in zip(params, row):
            if p.scale == "log":
                x = math.exp(math.log(p.low) + u * (math.log(p.high) - math.log(p.low)))
            else:
                x = p.low + u * (p.high - p.low)
            x = min(max(float(f"{x:.6g}"), p.low), p.high)
            values.append(as_value(p, x))
        out.append(values)
    return out


# --- running ------------------------------------------------------------------------------------------


@dataclass
class Candidate:
    index: int
    values: list[float | int]
    metrics: np.ndarray  # (targets, runs), nan where a replication failed
    failures: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None  # the candidate's scenario did not load

    @property
    def ok(self) -> bool:
        return self.error is None and not self.failures

    def medians(self) -> np.ndarray:
        """Each target's median over the replications ("never" counts as later than any time)."""
        return np.array([score(row)[0] for row in self.metrics]) if self.ok else np.full(len(self.metrics), np.nan)

    def distance(self, targets: list[Any], scenario: Scenario) -> float:
        """RMS of the fitted targets' z-scores (a time never reached counts as the horizon: a lower
        bound). ``check`` targets are out-of-sample: reported, never fitted."""
        if not self.ok:
            return math.inf
        z = np.array([z_score(t, m, scenario)[0] for t, m in zip(targets, self.medians()) if t.role != "check"])
        if len(z) == 0:
            return math.inf
        d = math.sqrt(float(np.mean(z ** 2)))
        return d if math.isfinite(d) else math.inf  # a metric the model could not give (nan) disqualifies


def abc_rejection(distances: np.ndarray, accept: float) -> tuple[list[int], list[int], float]:
    """ABC rejection over candidates' distances: ``(order, accepted, epsilon)``.

    ``order`` ranks every candidate (ties by index); the accepted are the finite ones within
    distance 1, or the best ``ceil(accept * K)`` if that is more; ``epsilon`` is
    ``max(1, the last accepted distance)`` (infinite when none is finite).
    """
    order = sorted(range(len(distances)), key=lambda k: (distances[k], k))
    finite = [k for k in order if math.isfinite(distances[k])]
    n_best = math.ceil(accept * len(distances))
    within = [k for k in finite if distances[k] <= 1.0]
    accepted = finite[: max(n_best, len(within))]
    epsilon = max(1.0, float(distances[accepted[-1]])) if accepted else math.inf
    return order, accepted, epsilon


def parameter_rows(params: list[Parameter], values: list[list[float | int]], accepted: list[int],
                   best: list[float | int] | None) -> list[dict[str, Any]]:
    """Per parameter: the box, the best value, and the accepted candidates' median, 5-95 % and that
    range's share of the box (in log for ``scale: log``)."""
    rows = []
    for j, p in enumerate(params):
        chosen = np.array([float(values[k][j]) for k in accepted])
        row: dict[str, Any] = {"path": p.path, "low": p.low, "high": p.high, "scale": p.scale,
                               "best": None if best is None else best[j]}
        if len(chosen):
            p5, med, p95 = (float(x) for x in np.percentile(chosen, [5, 50, 95]))
            if p.scale == "log":
                width = (math.log(p95) - math.log(p5)) / (math.log(p.high) - math.log(p.low))
            else:
                width = (p95 - p5) / (p.high - p.low)
            row.update(accepted_median=med, accepted_p5=p5, accepted_p95=p95, width_of_box=width)
        else:
            row.update(accepted_median=None, accepted_p5=None, accepted_p95=None, width_of_box=None)
        rows.append(row)
    return rows


@dataclass
class Calibration:
    scenario_path: str
    targets_path: str
    scenario: Scenario
    spec: Targets
    seed: int
    runs: int
    samples: int
    accept: float
    candidates: list[Candidate]
    distances: np.ndarray = field(init=False)
    order: list[int] = field(init=False)
    accepted: list[int] = field(init=False)
    epsilon: float = field(init=False)

    def __post_init__(self) -> None:
        self.distances = np.array([c.distance(self.spec.targets, self.scenario) for c in self.candidates])
        self.order, self.accepted, self.epsilon = abc_rejection(self.distances, self.accept)

    @property
    def best(self) -> Candidate | None:
        return self.candidates[self.order[0]] if self.accepted else None

    def overrides(self, candidate: Candidate) -> dict[str, Any]:
        return {p.path: v for p, v in zip(self.spec.parameters, candidate.values)}

    def parameter_rows(self) -> list[dict[str, Any]]:
        best = self.best
        return parameter_rows(self.spec.parameters, [c.values for c in self.candidates], self.accepted,
                              None if best is None else best.values)

    def target_rows(self) -> list[dict[str, Any]]:
        rows = []
        best = self.best
        for t, target in enumerate(self.spec.targets):
            row: dict[str, Any] = {"name": target.name, "role": target.role, "metric": describe_target(target),
                                   "fact": target.value, "tolerance": target.tolerance, "source": target.source}
            if best is not None:
                med, p5, p95 = score(best.metrics[t])
                z, censored = z_score(target, med, self.scenario)
                row.update(model_median=med, model_p5=p5, model_p95=p95, z=z)
                if censored:
                    row["z_is_lower_bound"] = True  # the median run never got there within the horizon
            rows.append(row)
        return rows

    def report(self) -> dict[str, Any]:
        best = self.best
        text = self.scenario.model_dump_json()
        return _clean_json({
            "launderflow_calibration": FORMAT,
            "scenario": self.scenario_path,
            "scenario_name": self.scenario.name,
            "scenario_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
            "targets_file": self.targets_path,
            "seed": self.seed,
            "runs": self.runs,
            "samples": self.samples,
            "method": {
                "design": f"Latin hypercube, {self.samples} candidates over the parameter box "
                          f"(generator numpy default_rng([seed, {DESIGN_STREAM}]))",
                "common_random_numbers": "replication i of every candidate draws from SeedSequence(seed, spawn_key=(i,))",
                "summary": "median over the replications",
                "distance": "sqrt(mean over targets of ((model median - fact) / tolerance)^2)",
                "abc": f"rejection: accept distance <= max(1, distance of the ceil({self.accept:g} * K)-th best)",
                "accept_fraction": self.accept,
            },
            "epsilon": self.epsilon,
            "accepted": self.accepted,
            "best": None if best is None else {
                "candidate": best.index, "distance": float(self.distances[best.index]),
                "parameters": self.overrides(best),
            },
            "parameters": self.parameter_rows(),
            "targets": self.target_rows(),
            "failures": [f for c in self.candidates for f in c.failures]
                        + [{"candidate": c.index, "stage": "load", "error": c.error}
                           for c in self.candidates if c.error],
        })


def _clean_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean_json(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    return value


def calibrate(
    scenario_path: str | Path,
    targets_path: str | Path,
    runs: int,
    seed: int | None = None,
    samples: int = 20,
    accept: float = 0.2,
    jobs: int = 1,
    scheduler: str | None = None,
    executor: Executor | None = None,
    on_replication: Callable[[], None] | None = None,
    keep: str | Path | None = None,
    resume: bool = False,
    engine: str = "reference",
) -> Calibration:
    """Run the calibration; raises :class:`ScenarioError` for a bad scenario or targets file.

    ``on_replication`` is called once per replication done or failed (``samples * runs`` in all),
    from worker-feeding threads when the replications run in other processes. ``keep``: a directory
    where every finished candidate is kept the moment it finishes (:class:`FinishedCandidates`);
    ``resume``: use the candidates kept there by the same calibration, interrupted, and run only the
    others, with the same results. ``engine``: ``reference`` or ``compiled``; both give the same
    bytes, so the kept candidates' key leaves it out (either engine resumes the other's work).
    """
    if runs < 1 or samples < 1 or not 0 < accept <= 1:
        raise ValueError("runs and samples must be >= 1 and accept in (0, 1]")
    spec, scenario = load_targets(targets_path, scenario_path)
    seed = scenario.seed if seed is None else seed
    params = spec.parameters
    candidates = [Candidate(k, values, np.full((len(spec.targets), runs), np.nan))
                  for k, values in enumerate(design(params, samples, seed))]
    lock = threading.Lock()
    finished = None if keep is None else FinishedCandidates(Path(keep), scenario, spec, seed, runs, samples)
    kept = set(finished.restore(candidates)) if finished is not None and resume else set()
    if on_replication is not None:
        for _ in range(len(kept) * runs):  # (the progress bar counts them as done)
            on_replication()

    def run_candidate(cand: Candidate, pool: Executor | None) -> None:
        if cand.index in kept:
            return
        try:
            cand_scenario = load_scenario(scenario_path, {p.path: v for p, v in zip(params, cand.values)})
        except ScenarioError as exc:
            cand.error = str(exc)
            for _ in range(runs):
                _tick()
            return
        cand.metrics, failures = evaluate(cand_scenario, spec.targets, runs, seed, pool,
                                          f"{scenario.name}-cal{cand.index}-s{seed}", _tick, engine)
        cand.failures = [{"candidate": cand.index, "replication": f.index, "stage": f.stage, "error": f.error}
                         for f in failures]
        if finished is not None and cand.ok:
            finished.add(cand)

    def _tick() -> None:
        if on_replication is not None:
            with lock:
                on_replication()

    run_all(candidates, run_candidate, jobs, scheduler, executor)
    return Calibration(str(scenario_path), str(targets_path), scenario, spec, seed, runs, samples, accept,
                       candidates)


class FinishedCandidates:
    """Candidates that finished, one small JSON file each in ``DIR/candidates-done/`` (written under a
    temporary name, then renamed), under a key of everything that decides their numbers (scenario,
    targets, seed, runs, samples, the package version): Ctrl-C in ``calibrate`` loses only the
    candidates in flight, and the same command with ``--resume`` goes on from there with
    byte-identical outputs (a candidate's numbers depend on nothing else). Files of another key are
    ignored, and all of them go once the outputs are written."""

    def __init__(self, out: Path, scenario: Scenario, spec: Targets, seed: int, runs: int, samples: int):
        text = json.dumps([__version__, scenario.model_dump_json(), spec.model_dump_json(), seed, runs, samples])
        self.key = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
        self.dir = out / "candidates-done"

    def restore(self, candidates: list[Candidate]) -> list[int]:
        """Fill in the candidates kept under this key; their indices."""
        found = []
        for cand in candidates:
            path = self.dir / f"{self.key}-{cand.index:05d}.json"
            try:
                doc = json.loads(path.read_text(encoding="utf-8"))
                metrics = np.array(doc["metrics"], dtype=np.float64)
            except (OSError, ValueError, KeyError, TypeError):
                continue  # absent or damaged: run it again
            if doc.get("values") != cand.values or metrics.shape != cand.metrics.shape:
                continue
            cand.metrics[:] = metrics
            found.append(cand.index)
        return found

    def add(self, cand: Candidate) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / f"{self.key}-{cand.index:05d}.json"
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"values": cand.values, "metrics": cand.metrics.tolist()}), encoding="utf-8")
        os.replace(tmp, path)

    def count(self) -> int:
        return len(list(self.dir.glob(f"{self.key}-*.json"))) if self.dir.is_dir() else 0

    def clear(self) -> None:
        """Remove the kept candidates (of every key) once the outputs are written."""
        if self.dir.is_dir() and not self.dir.is_symlink():
            for path in self.dir.iterdir():
                if path.suffix in (".json", ".tmp") and path.is_file():
                    path.unlink()
            try:
                self.dir.rmdir()
            except OSError:
                pass  # something else is in there: left alone


def evaluate(scenario: Scenario, targets: list[Any], runs: int, seed: int, pool: Executor | None, key: str,
             tick: Callable[[], None], engine: str = "reference") -> tuple[np.ndarray, list[Failure]]:
    """Every target's value in each of ``runs`` replications of ``scenario`` (common random numbers:
    replication ``i`` draws from ``SeedSequence(seed, spawn_key=(i,))``), as a (targets, runs) array
    (NaN where a replication failed), and the failures in replication order. ``tick`` is called once
    per replication done or failed; ``engine`` simulates them (the same values with either)."""
    metrics = np.full((len(targets), runs), np.nan)
    failures: list[Failure] = []
    lock = threading.Lock()

    def done(index: int, rep: Replication) -> None:
        for t, target in enumerate(targets):
            metrics[t, index] = metric_value(target, rep, scenario)
        tick()

    def failed(failure: Failure) -> None:
        with lock:
            failures.append(failure)
        tick()

    for _ in run_replications(scenario, runs, seed, keep_ledgers=False, executor=pool,
                              on_done=done, on_error=failed, key=key, engine=engine):
        pass
    failures.sort(key=lambda f: f.index)
    return metrics, failures


def run_all(items: Sequence[T], run: Callable[[T, Executor | None], None], jobs: int = 1,
            scheduler: str | None = None, executor: Executor | None = None) -> None:
    """``run(item, pool)`` for every item: in this process for ``jobs`` 1, else on the executor
    ``--jobs``/``--scheduler`` open (or the one given), fed from several threads (:func:`_feed`)."""
    if executor is None and jobs <= 1 and not scheduler:
        for item in items:
            run(item, None)
        return
    with open_executor(jobs, scheduler) if executor is None else _given(executor) as pool:
        _feed(items, lambda item: run(item, pool), width=max(2, (jobs if executor is None and not scheduler else 8) + 1))


def _feed(candidates: Sequence[T], run: Callable[[T], None], width: int) -> None:
    """Run the candidates (or any work items) from ``width`` feeding threads, so every worker stays
    busy across candidates.

    The threads are daemons: after Ctrl-C (raised here, in the main thread) nothing new starts, the
    caller's ``open_executor`` stops the workers, and a thread still waiting on one cannot keep the
    process alive. An error in a thread is raised here.
    """
    todo = list(candidates)
    lock = threading.Lock()
    stop = threading.Event()
    errors: list[BaseException] = []

    def loop() -> None:
        while not stop.is_set():
            with lock:
                if not todo:
                    return
                cand = todo.pop(0)
            try:
                run(cand)
            except BaseException as exc:  # handed to the main thread
                errors.append(exc)
                stop.set()

    threads = [threading.Thread(target=loop, name=f"launderflow-calibrate-{i}", daemon=True)
               for i in range(min(width, len(candidates)))]
    for t in threads:
        t.start()
    try:
        for t in threads:
            while t.is_alive():
                t.join(timeout=0.2)
    except BaseException:
        stop.set()
        raise
    if errors:
        raise errors[0]


class _given:
    def __init__(self, executor: Executor):
        self.executor = executor

    def __enter__(self) -> Executor:
        return self.executor

    def __exit__(self, *exc: Any) -> None:
        return None


# --- files ----------------------------------------------------------------------------------------------


def candidates_csv(cal: Calibration) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    names = [t.name for t in cal.spec.targets]
    writer.writerow(["candidate", *(p.path for p in cal.spec.parameters), *(f"{n}_median" for n in names),
                     "distance", "accepted", "failed_replications"])
    accepted = set(cal.accepted)
    for cand in cal.candidates:
        d = cal.distances[cand.index]
        writer.writerow([cand.index, *(repr(v) for v in cand.values), *(_num(m) for m in cand.medians()),
                         _num(d), "true" if cand.index in accepted else "false",
                         len(cand.failures) if cand.error is None else cal.runs])
    return buf.getvalue()


def _num(x: float) -> str:
    x = float(x)
    return repr(x) if math.isfinite(x) else ""


def override_tree(raw: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """The mapping a file that ``extends`` ``raw`` needs to set each dotted path to its value.

    Mappings merge under ``extends`` but lists are replaced whole, so a path into a list copies that
    list from ``raw`` and sets the value in the copy.
    """
    tree: dict[str, Any] = {}
    for path, value in values.items():
        keys = _keys(path)
        cut = next((i for i, k in enumerate(keys) if isinstance(k, int)), None)
        if cut is None:
            node = tree
            for k in keys[:-1]:
                node = node.setdefault(k, {})
            node[keys[-1]] = value
            continue
        # lists are replaced whole by extends: copy the list from the scenario and set the value in it
        node = tree
        for k in keys[: cut - 1]:
            node = node.setdefault(k, {})
        if keys[cut - 1] not in node:
            node[keys[cut - 1]] = copy.deepcopy(_lookup(raw, ".".join(map(str, keys[:cut]))))
        inner = node[keys[cut - 1]]
        for k in keys[cut:-1]:
            inner = inner[k]
        inner[keys[-1]] = value
    return tree


def extends_path(parent: str | Path, out_dir: Path) -> str:
    """How a file written in ``out_dir`` names ``parent`` in its ``extends`` (relative when it can)."""
    parent_abs = Path(parent).resolve()
    try:
        return Path(os.path.relpath(parent_abs, out_dir.resolve())).as_posix()
    except ValueError:  # another drive
        return parent_abs.as_posix()


def calibrated_yaml(cal: Calibration, out_dir: Path) -> str:
    """A scenario that ``extends`` the calibrated one and sets the best candidate's values."""
    best = cal.best
    if best is None:
        raise ValueError("no candidate succeeded: nothing to write")
    raw, _ = load_data(cal.scenario_path)
    tree = override_tree(raw, {p.path: v for p, v in zip(cal.spec.parameters, best.values)})
    parent = extends_path(cal.scenario_path, out_dir)
    name = f"{cal.scenario.name}_calibrated"[:64]
    dist = float(cal.distances[best.index])
    header = (f"# {name}: {cal.scenario.name} with the best candidate of a calibration to the facts in\n"
              f"# {cal.targets_path} ({cal.samples} candidates x {cal.runs} runs, seed {cal.seed}; "
              f"candidate {best.index}, distance {dist:.3g}).\n"
              f"# Written by `launderflow calibrate`; see calibration.json next to this file.\n")
    head = {"extends": parent, "name": name,
            "description": f"{cal.scenario.name} calibrated to {Path(cal.targets_path).name} "
                           f"(candidate {best.index} of {cal.samples}, distance {dist:.3g})"}
    body = yaml.safe_dump(head, sort_keys=False, allow_unicode=True, width=100)
    body += yaml.safe_dump(tree, sort_keys=False, allow_unicode=True, width=100) if tree else ""
    return header + body


OUTPUT_FILES = ("calibration.json", "candidates.csv", "calibrated.yaml")  # what write_outputs writes


def write_outputs(cal: Calibration, out_dir: str | Path, overwrite: bool = False) -> list[Path]:
    """Write calibration.json, candidates.csv and calibrated.yaml (checked to load as the best candidate),
    holding ``out_dir``'s writer lock (:class:`~launderflow.runs.lock.LockedError` if another process has it).

    They are launderflow's own files (:func:`~launderflow.runs.outputs.write_files`): a file of the
    same name that launderflow did not write is refused unless ``overwrite``; nothing else is touched."""
    with locked(out_dir):
        return _write_outputs(cal, Path(out_dir), overwrite)


def _write_outputs(cal: Calibration, out_dir: Path, overwrite: bool) -> list[Path]:
    files = {"calibration.json": json.dumps(cal.report(), indent=2) + "\n", "candidates.csv": candidates_csv(cal)}
    if cal.best is not None:
        files["calibrated.yaml"] = calibrated_yaml(cal, out_dir)
    written = write_files(out_dir, files, overwrite)
    if cal.best is not None:
        path = out_dir / "calibrated.yaml"
        with extends_outside_allowed():  # it extends the scenario the user named, wherever that is
            loaded = load_scenario(path)
        expected = load_scenario(cal.scenario_path, cal.overrides(cal.best))
        same = loaded.model_copy(update={"name": expected.name, "description": expected.description})
        if same.model_dump_json() != expected.model_dump_json():
            raise RuntimeError(f"{path} does not reproduce the best candidate's scenario (a bug)")
    return written


# --- tables -----------------------------------------------------------------------------------------------


def _fmt_value(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, int):
        return str(x)
    return f"{x:.4g}"


def _fmt_metric(metric: str, x: Any) -> str:
    """A fact, tolerance or model value in its metric's unit; USD in fixed millions, so that the
    numbers of one row read in one unit."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if math.isinf(x):
        return "never"
    unit = METRICS[metric].unit
    if unit is USD:
        return f"${x / 1e6:,.2f} M" if abs(x) >= 1e5 else f"${x:,.0f}"
    if unit is DAYS:
        return f"{x:.1f} d"
    return unit.format(x)


def parameters_table(rows: list[dict[str, Any]], title: str) -> Any:
    """The parameters' box, best value, accepted median and 5-95 %, and that range's share of the box."""
    from rich.table import Table

    params = Table(title=title)
    for col, justify in (("parameter", "left"), ("box", "right"), ("best", "right"), ("accepted median", "right"),
                         ("5-95 %", "right"), ("of box", "right")):
        params.add_column(col, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        box = f"{row['low']:.4g} - {row['high']:.4g}" + (" (log)" if row["scale"] == "log" else "")
        rng = "-" if row["accepted_p5"] is None else f"{_fmt_value(row['accepted_p5'])} - {_fmt_value(row['accepted_p95'])}"
        width = "-" if row["width_of_box"] is None else f"{row['width_of_box']:.0%}"
        params.add_row(row["path"], box, _fmt_value(row["best"]), _fmt_value(row["accepted_median"]), rng, width)
    return params


def tables(cal: Calibration) -> list[Any]:
    """Two rich tables: the parameters (best, accepted median, 5-95 %) and the targets (fact, model, z)."""
    from rich.table import Table

    best = cal.best
    title = (f"{cal.scenario.name}: {cal.samples} candidates x {cal.runs} runs, seed {cal.seed} — "
             f"{len(cal.accepted)} accepted (distance <= {cal.epsilon:.3g})")
    params = parameters_table(cal.parameter_rows(), title)
    if best is not None:
        params.caption = f"best: candidate {best.index}, distance {cal.distances[best.index]:.3g}"
    else:
        params.caption = "every candidate failed"
    facts = Table(title="targets at the best candidate (model: median and 5-95 % over the runs)")
    for col, justify in (("target", "left"), ("metric", "left"), ("fact", "right"), ("tolerance", "right"),
                         ("model", "right"), ("5-95 %", "right"), ("z", "right")):
        facts.add_column(col, justify=justify)  # type: ignore[arg-type]
    for target, row in zip(cal.spec.targets, cal.target_rows()):
        m = target.metric
        rng = f"{_fmt_metric(m, row.get('model_p5'))} - {_fmt_metric(m, row.get('model_p95'))}" if best else "-"
        z = row.get("z")
        facts.add_row(row["name"] + (" (check)" if row["role"] == "check" else ""), row["metric"], _fmt_metric(m, row["fact"]), _fmt_metric(m, row["tolerance"]),
                      _fmt_metric(m, row.get("model_median")), rng,
                      "-" if z is None else (">" if row.get("z_is_lower_bound") else "") + f"{z:+.2f}")
    return [params, facts]
