"""Joint calibration and leave-one-incident-out cross-validation, both scored on one simulated cube.

**Joint calibration** (``launderflow calibrate --joint``): the distance of a candidate is over every
fact of every incident (see :mod:`launderflow.analysis.joint`); ABC rejection as ``calibrate``
(accept distance <= max(1, the ``ceil(accept * K)``-th best)); for each shared parameter the
accepted candidates' median and 5-95 %; the best candidate's values are written into a file that
extends the shared behaviour file.

**Cross-validation** (``launderflow crossval``): for each held-out incident ``h``, the same ABC
rejection with a distance over the *other* incidents only — no fact of ``h`` enters the fold's
fit, by construction: the design and the simulation read no fact, and the fold's distance reads
the other incidents' cubes only. The prediction for each of ``h``'s facts pools the ``N``
replications of every accepted candidate (so it carries the parameter uncertainty): median and
5-95 %, ``z = (median - fact) / tolerance``, within tolerance ``|z| <= 1``. A fold passes when
every *check* fact of ``h`` is within tolerance; its *input* facts built ``h``'s own scenario
(route, pace: in-sample construction facts) and are shown, not counted.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..runs.lock import locked
from ..runs.outputs import write_files
from ..scenario.loader import _set_path, extends_outside_allowed, load_data, load_scenario
from .backtest import fact_row
from .calibrate import DESIGN_STREAM, _clean_json, _num, abc_rejection, extends_path, override_tree, parameter_rows
from .joint import Cube, Joint, load_joint, simulate_cube

FORMAT = 1


def _method(cube: Cube, accept: float) -> dict[str, Any]:
    return {
        "design": f"Latin hypercube, {cube.samples} candidates over the shared parameters' box "
                  f"(generator numpy default_rng([seed, {DESIGN_STREAM}]))",
        "common_random_numbers": "replication i of an incident draws from SeedSequence(incident seed, spawn_key=(i,)) "
                                 "for every candidate",
        "summary": "median over the replications",
        "distance": "per incident sqrt(mean over its facts (inputs and checks) of ((median - fact) / tolerance)^2); "
                    "then sqrt(mean over incidents of that squared): every incident weighs the same",
        "abc": f"rejection: accept distance <= max(1, distance of the ceil({accept:g} * K)-th best); a candidate "
               "with a failed replication in any incident is discarded",
        "accept_fraction": accept,
    }


def _header(cube: Cube) -> dict[str, Any]:
    joint = cube.joint
    return {"joint_file": str(joint.path), "name": joint.name, "description": joint.spec.description,
            "behaviour": str(joint.behaviour_path), "seed": cube.seed, "runs": cube.runs, "samples": cube.samples,
            "incidents": [{"name": i.name, "scenario": str(i.scenario_path), "targets": str(i.targets_path),
                           "seed": i.scenario.seed} for i in joint.incidents]}


@dataclass
class Fit:
    """ABC rejection over the candidates of a cube, with a distance over some of its incidents."""

    cube: Cube
    accept: float
    fitted_on: list[str]
    distances: np.ndarray = field(init=False)
    order: list[int] = field(init=False)
    accepted: list[int] = field(init=False)
    epsilon: float = field(init=False)

    def __post_init__(self) -> None:
        self.distances = self.cube.distances(self.fitted_on)
        self.order, self.accepted, self.epsilon = abc_rejection(self.distances, self.accept)

    @property
    def best(self) -> int | None:
        return self.order[0] if self.accepted else None

    def parameter_rows(self) -> list[dict[str, Any]]:
        best = self.best
        return parameter_rows(self.cube.joint.parameters, self.cube.candidates, self.accepted,
                              None if best is None else self.cube.candidates[best])

    def best_record(self) -> dict[str, Any] | None:
        best = self.best
        if best is None:
            return None
        return {"candidate": best, "distance": float(self.distances[best]),
                "parameters": self.cube.joint.overrides(self.cube.candidates[best])}

    def rows(self, name: str, candidates: list[int]) -> list[dict[str, Any]]:
        """The incident's facts against the pooled replications of ``candidates``."""
        incident = self.cube.joint.incident(name)
        pooled = self.cube.values[name][candidates]
        return [fact_row(target, pooled[:, t, :].ravel(), incident.scenario)
                for t, target in enumerate(incident.spec.targets)]


class JointCalibration(Fit):
    """The shared parameters fitted to every fact of every incident."""

    def __init__(self, cube: Cube, accept: float):
        super().__init__(cube, accept, [i.name for i in cube.joint.incidents])

    def report(self) -> dict[str, Any]:
        best = self.best
        incidents = []
        for incident in self.cube.joint.incidents:
            entry: dict[str, Any] = {"name": incident.name}
            if best is not None:
                entry["distance"] = float(self.cube.incident_distances(incident.name)[best])
                entry["facts"] = self.rows(incident.name, [best])
            incidents.append(entry)
        return _clean_json({
            "launderflow_joint_calibration": FORMAT, **_header(self.cube),
            "method": _method(self.cube, self.accept),
            "epsilon": self.epsilon, "accepted": self.accepted, "best": self.best_record(),
            "parameters": self.parameter_rows(), "incidents_at_best": incidents, "failures": self.cube.failures,
        })

    def candidates_csv(self) -> str:
        names = [i.name for i in self.cube.joint.incidents]
        per = {n: self.cube.incident_distances(n) for n in names}
        failed: dict[int, int] = {}
        for f in self.cube.failures:
            failed[f["candidate"]] = failed.get(f["candidate"], 0) + (self.cube.runs if f["replication"] is None else 1)
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["candidate", *(p.path for p in self.cube.joint.parameters), *(f"distance_{n}" for n in names),
                         "distance", "accepted", "failed_replications"])
        accepted = set(self.accepted)
        for k, values in enumerate(self.cube.candidates):
            writer.writerow([k, *(repr(v) for v in values), *(_num(per[n][k]) for n in names), _num(self.distances[k]),
                             "true" if k in accepted else "false", failed.get(k, 0)])
        return buf.getvalue()

    def accepted_csv(self) -> str:
        """The accepted candidates' values, best first: the parameter sets a study draws from."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["candidate", *(p.path for p in self.cube.joint.parameters), "distance"])
        for k in self.accepted:
            writer.writerow([k, *(repr(v) for v in self.cube.candidates[k]), _num(self.distances[k])])
        return buf.getvalue()

    def behaviour_yaml(self, out_dir: Path) -> str:
        """A file that ``extends`` the shared behaviour file and sets the best candidate's values."""
        best = self.best
        if best is None:
            raise ValueError("no candidate succeeded: nothing to write")
        joint = self.cube.joint
        raw, _ = load_data(joint.behaviour_path)
        tree = override_tree(raw, joint.overrides(self.cube.candidates[best]))
        header = (f"# {joint.behaviour_path.name} with the best candidate of the joint calibration to the facts of\n"
                  f"# {', '.join(i.name for i in joint.incidents)} ({self.cube.samples} candidates x {self.cube.runs} "
                  f"runs, seed {self.cube.seed}; candidate {best}, distance {self.distances[best]:.3g}).\n"
                  f"# Written by `launderflow calibrate --joint {joint.path}`; see joint.json next to this file.\n")
        body = yaml.safe_dump({"extends": extends_path(joint.behaviour_path, out_dir)}, sort_keys=False, width=100)
        return header + body + yaml.safe_dump(tree, sort_keys=False, allow_unicode=True, width=100)


JOINT_FILES = ("joint.json", "candidates.csv", "accepted.csv", "cube.csv", "behaviour.calibrated.yaml")
CROSSVAL_FILES = ("crossval.json", "cube.csv")


def write_joint_outputs(cal: JointCalibration, out_dir: str | Path, overwrite: bool = False) -> list[Path]:
    """joint.json, candidates.csv, accepted.csv, cube.csv and behaviour.calibrated.yaml (checked to be
    the shared file with the best values), holding ``out_dir``'s writer lock. They are launderflow's
    own files (:func:`~launderflow.runs.outputs.write_files`): a file of the user's of the same name
    is refused unless ``overwrite``, and none is written through a link."""
    out_dir = Path(out_dir)
    with locked(out_dir):
        files = {"joint.json": json.dumps(cal.report(), indent=2) + "\n", "candidates.csv": cal.candidates_csv(),
                 "accepted.csv": cal.accepted_csv(), "cube.csv": cal.cube.csv()}
        if cal.best is not None:
            files["behaviour.calibrated.yaml"] = cal.behaviour_yaml(out_dir)
        written = write_files(out_dir, files, overwrite)
        if cal.best is not None:
            _check_behaviour(cal, out_dir / "behaviour.calibrated.yaml")
    return written


def _check_behaviour(cal: JointCalibration, path: Path) -> None:
    joint = cal.cube.joint
    with extends_outside_allowed():  # it extends the shared file the joint file named, wherever that is
        written, _ = load_data(path)
    expected, doc = load_data(joint.behaviour_path)
    values = joint.overrides(cal.cube.candidates[cal.best])  # type: ignore[index]
    for dotted, value in values.items():
        _set_path(expected, dotted, value, doc)
    if written != expected:
        raise RuntimeError(f"{path} does not hold the shared file with the best candidate's values (a bug)")
    for incident in joint.incidents:  # and every incident takes them
        load_scenario(incident.scenario_path, values)


# --- cross-validation ----------------------------------------------------------------------------------


class Fold(Fit):
    """One incident held out: the fit on the others, and the prediction of the held-out facts."""

    def __init__(self, cube: Cube, accept: float, held_out: str):
        self.held_out = held_out
        super().__init__(cube, accept, [i.name for i in cube.joint.incidents if i.name != held_out])

    def prediction(self) -> list[dict[str, Any]]:
        rows = self.rows(self.held_out, self.accepted) if self.accepted else []
        for row in rows:
            row["in_sample"] = row["role"] == "input"  # built the incident's own scenario (construction)
        return rows

    def report(self) -> dict[str, Any]:
        rows = self.prediction()
        checks = [r for r in rows if r["role"] == "check"]
        inputs = [r for r in rows if r["role"] == "input"]
        return {"held_out": self.held_out, "fitted_on": self.fitted_on, "accepted": self.accepted,
                "epsilon": self.epsilon, "best": self.best_record(), "parameters": self.parameter_rows(),
                "checks_total": len(checks), "checks_within": sum(r["within_tolerance"] for r in checks),
                "inputs_total": len(inputs), "inputs_within": sum(r["within_tolerance"] for r in inputs),
                "passed": bool(self.accepted) and all(r["within_tolerance"] for r in checks),
                "facts": rows}


class CrossValidation:
    """Leave-one-incident-out: one fold per incident, every fold scored on the same cube."""

    def __init__(self, cube: Cube, accept: float):
        if len(cube.joint.incidents) < 2:
            raise ValueError("cross-validation needs at least two incidents")
        self.cube = cube
        self.accept = accept
        self.folds = [Fold(cube, accept, i.name) for i in cube.joint.incidents]

    def report(self) -> dict[str, Any]:
        folds = [f.report() for f in self.folds]
        return _clean_json({
            "launderflow_crossval": FORMAT, **_header(self.cube), "method": {
                **_method(self.cube, self.accept),
                "folds": "for each incident h: ABC rejection with the distance over the other incidents only "
                         "(no fact of h sets any parameter); prediction for h = its facts over the pooled "
                         "replications of every accepted candidate: median and 5-95 %, z = (median - fact) / "
                         "tolerance; a fold passes when every check fact of h has |z| <= 1 (input facts are "
                         "in-sample construction facts of h's scenario: shown, not counted)"},
            "passed": all(f["passed"] for f in folds),
            "folds": folds, "failures": self.cube.failures,
        })


def write_crossval_outputs(cv: CrossValidation, report: dict[str, Any], out_dir: str | Path,
                           overwrite: bool = False) -> list[Path]:
    """crossval.json and cube.csv, holding ``out_dir``'s writer lock (launderflow's own files, as
    :func:`write_joint_outputs` writes them)."""
    out_dir = Path(out_dir)
    with locked(out_dir):
        return write_files(out_dir, dict(zip(CROSSVAL_FILES, (json.dumps(report, indent=2) + "\n", cv.cube.csv()))),
                           overwrite)


# --- entry points -------------------------------------------------------------------------------------


def calibrate_joint(joint: Joint | str | Path, runs: int = 5, samples: int = 20, seed: int | None = None,
                    accept: float = 0.2, jobs: int = 1, scheduler: str | None = None,
                    on_replication: Callable[[], None] | None = None, cells: Path | None = None,
                    resume: bool = False, engine: str = "reference") -> JointCalibration:
    """Fit the joint file's shared parameters to every fact of every incident; raises
    :class:`~launderflow.scenario.loader.ScenarioError` for a bad joint file (or a file it names).
    ``engine``: ``reference`` or ``compiled`` (the same results)."""
    if not 0 < accept <= 1:
        raise ValueError("accept must be in (0, 1]")
    cube = simulate_cube(joint if isinstance(joint, Joint) else load_joint(joint), samples, runs, seed, jobs=jobs, scheduler=scheduler,
                         on_replication=on_replication, cells=cells, resume=resume, engine=engine)
    return JointCalibration(cube, accept)


def crossval(joint: Joint | str | Path, runs: int = 3, samples: int = 24, seed: int | None = None, accept: float = 0.2,
             jobs: int = 1, scheduler: str | None = None, on_replication: Callable[[], None] | None = None,
             cells: Path | None = None, resume: bool = False, engine: str = "reference") -> CrossValidation:
    """Leave-one-incident-out cross-validation of the joint file's shared parameters (see the module doc);
    ``engine``: ``reference`` or ``compiled`` (the same results)."""
    if not 0 < accept <= 1:
        raise ValueError("accept must be in (0, 1]")
    joint = joint if isinstance(joint, Joint) else load_joint(joint, least=2)
    if len(joint.incidents) < 2:
        raise ValueError("cross-validation needs at least two incidents")
    cube = simulate_cube(joint, samples, runs, seed, jobs=jobs, scheduler=scheduler, on_replication=on_replication,
                         cells=cells, resume=resume, engine=engine)
    return CrossValidation(cube, accept)
