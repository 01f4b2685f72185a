"""Several incidents, one set of behavioural parameters: the joint file and the simulated cube.

A *joint file* (``scenarios/targets/*_joint.yaml``) names the shared ``behaviour`` file every
incident scenario extends, the ``parameters`` to fit in it (dotted paths with a box, as in a
targets file) and the ``incidents``: each a scenario and its targets file. A parameter is applied
as an override (``load_scenario(path, {dotted: value})``, like ``--set``) to every incident.

The *cube* is simulated once and scored many times (joint calibration, every fold of the
cross-validation): ``K`` candidates from calibrate's Latin hypercube over the shared parameters
(drawn from the design seed), and for every candidate and every incident ``N`` replications with
common random numbers — replication ``i`` of an incident draws from
``SeedSequence(incident seed, spawn_key=(i,))`` whatever the candidate. It keeps every target's
value in every replication: ``values[incident][candidate, target, run]``. Nothing in the design or
the simulation reads a fact's value, so a fact can only act on a result through the scoring.

Distance of a candidate over a set of incidents: per incident the RMS of its facts' z-scores
(``(median over the runs - fact) / tolerance``, inputs and checks alike: a joint fit fits outcome
facts), then the RMS over the incidents, so that every incident weighs the same whatever its
number of facts. A candidate with a failed replication in any incident is discarded.

With an output directory, each finished (candidate, incident) cell is kept in ``cells/`` under a
name that hashes everything it depends on (the scenario with the candidate's values, the targets,
the runs, the seed, the package version): ``resume`` reuses them after an interruption.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .. import __version__
from ..scenario.loader import MAX_EXTENDS_DEPTH, Problem, ScenarioError, _parse, load_data, load_scenario
from ..scenario.schema import Name, Scenario
from .calibrate import design, evaluate, run_all
from .targets import (Parameter, Targets, _keys, _lookup, _pydantic_problem, _reference_problems, check_paths_apart,
                      load_targets, score, z_score)

FORMAT = 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


FilePath = Annotated[str, Field(min_length=1, max_length=1024)]


class IncidentEntry(_Strict):
    """One incident: its scenario (which extends the shared file) and its facts, relative to the joint file."""

    name: Name
    scenario: FilePath
    targets: FilePath


class JointSpec(_Strict):
    """A joint file: the shared behaviour file, the parameters to fit in it, and the incidents."""

    description: str = ""
    behaviour: FilePath = Field(description="the shared file every incident extends (directly or through its parents)")
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] | None = Field(default=None, description="design seed")
    parameters: list[Parameter] = Field(min_length=1)
    incidents: list[IncidentEntry] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> "JointSpec":
        check_paths_apart([p.path for p in self.parameters])
        names = [i.name for i in self.incidents]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"incident names must be unique (repeated: {', '.join(dupes)})")
        return self


def _model_for(data: Any, loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The joint-file model at ``loc`` (for "unknown field (allowed: ...)")."""
    if loc == ():
        return JointSpec
    if len(loc) == 2:
        return {"parameters": Parameter, "incidents": IncidentEntry}.get(loc[0])
    return None


@dataclass(frozen=True)
class Incident:
    name: str
    scenario_path: Path
    targets_path: Path
    spec: Targets
    scenario: Scenario  # as the file stands (its seed, horizon and names)


@dataclass(frozen=True)
class Joint:
    path: Path
    spec: JointSpec
    behaviour_path: Path
    incidents: list[Incident]
    warnings: list[Problem]  # shared parameters an incident's own files set (see _sharing_problems)

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def parameters(self) -> list[Parameter]:
        return self.spec.parameters

    def overrides(self, values: list[float | int]) -> dict[str, float | int]:
        return {p.path: v for p, v in zip(self.parameters, values)}

    def incident(self, name: str) -> Incident:
        return next(i for i in self.incidents if i.name == name)


# --- reading the joint file ----------------------------------------------------------------------


def load_joint(path: str | Path, least: int = 1) -> Joint:
    """Read and check a joint file and every file it names; raise :class:`ScenarioError` listing
    every problem (``file:line: field: message``; an incident's own files report their own lines).
    ``least``: the fewest incidents the caller can use (cross-validation: two)."""
    path = Path(path)
    data, doc = load_data(path)
    try:
        spec = JointSpec.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError([_pydantic_problem(e, doc, _model_for) for e in exc.errors(include_url=False)]) from None
    problems: list[Problem] = []

    def problem(loc: tuple[Any, ...], message: str) -> None:
        problems.append(Problem(*doc.locate(loc), ".".join(map(str, loc)), message))

    if len(spec.incidents) < least:
        problem(("incidents",), f"needs at least {least} incidents (one to hold out, the others to fit on)")

    behaviour = (path.parent / spec.behaviour).resolve()
    if not behaviour.is_file():
        problem(("behaviour",), f"no such file: {spec.behaviour} (paths are relative to {path})")
    else:
        try:
            load_data(behaviour)
        except ScenarioError as exc:
            problems += exc.problems
    incidents = []
    warnings: list[Problem] = []
    for i, entry in enumerate(spec.incidents):
        scenario_path, targets_path = path.parent / entry.scenario, path.parent / entry.targets
        missing = [(key, file) for key, file in (("scenario", scenario_path), ("targets", targets_path))
                   if not file.is_file()]
        for key, file in missing:
            problem(("incidents", i, key), f"no such file: {getattr(entry, key)} (paths are relative to {path})")
        if missing:
            continue
        try:
            targets, scenario = load_targets(targets_path, scenario_path, need_parameters=False)
        except ScenarioError as exc:
            problems += exc.problems
            continue
        if behaviour.is_file():
            found, notes = _sharing_problems(spec, doc, i, scenario_path, behaviour)
            problems += found
            warnings += notes
        shared = Targets.model_construct(parameters=spec.parameters, targets=[])
        for p in _reference_problems(shared, scenario, scenario_path, doc):
            problems.append(Problem(p.file, p.line, p.path, f"incident {entry.name}: {p.message}"))
        incidents.append(Incident(entry.name, scenario_path, targets_path, targets, scenario))
    if problems:
        raise ScenarioError(problems)
    return Joint(path, spec, behaviour, incidents, warnings)


def _sharing_problems(spec: JointSpec, doc: Any, i: int, scenario_path: Path,
                      behaviour: Path) -> tuple[list[Problem], list[Problem]]:
    """Problems and warnings: the incident must extend the shared file; a file between them that
    sets a shared parameter itself is warned about (the fit overrides its value with the candidate's,
    but a calibrated shared file would not reach this incident)."""
    chain = _extends_chain(scenario_path)
    name = spec.incidents[i].name
    where = doc.locate(("incidents", i, "scenario"))
    if behaviour not in [file for file, _ in chain]:
        return [Problem(*where, f"incidents.{i}.scenario",
                        f"incident {name}: {scenario_path} does not extend {spec.behaviour} (directly or through "
                        f"its parents), so the shared parameters are not its behaviour")], []
    warnings = []
    for file, own in chain[: [f for f, _ in chain].index(behaviour)]:
        for j, param in enumerate(spec.parameters):
            if _lookup(own.data, param.path) is not None or _sets_list_on(own.data, param.path):
                line = own.locate(tuple(_keys(param.path)))[1]
                warnings.append(Problem(*doc.locate(("parameters", j, "path")), f"parameters.{j}.path",
                                        f"warning: incident {name}: {file}:{line} sets {param.path} itself: the "
                                        f"fit overrides it with the shared value, but {spec.behaviour} (and a "
                                        f"calibrated copy) would not reach it"))
    return [], warnings


def behaviour_overrides(scenario_path: str | Path, behaviour: str | Path,
                        overrides: dict[str, Any]) -> dict[str, Any]:
    """The shared-behaviour values among ``overrides`` that reach this scenario as the shared file's
    would: a path that a file between the scenario and ``behaviour`` sets itself (a policy's faster
    sharing, say) keeps that file's value — a draw of the behaviour replaces the behaviour, not the
    policy. Used to carry a joint fit's accepted sets into policy scenarios that extend the file."""
    chain = _extends_chain(Path(scenario_path))
    files = [file for file, _ in chain]
    shared = Path(behaviour).resolve()
    if shared not in files:
        raise ValueError(f"{scenario_path} does not extend {behaviour} (directly or through its parents)")
    own = [doc for _, doc in chain[: files.index(shared)]]
    return {path: value for path, value in overrides.items()
            if not any(_lookup(doc.data, path) is not None or _sets_list_on(doc.data, path) for doc in own)}


def _sets_list_on(data: Any, path: str) -> bool:
    """A list on the way to ``path`` is set in this file (lists are replaced whole by ``extends``)."""
    keys = _keys(path)
    node = data
    for key in keys[:-1]:
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
        if isinstance(node, list):
            return True
    return False


def _extends_chain(path: Path) -> list[tuple[Path, Any]]:
    """The file and each of its ``extends`` parents, nearest first, with each one's own parsed
    document (called on files that loaded, so the chain is valid)."""
    chain: list[tuple[Path, Any]] = []
    current = path.resolve()
    while len(chain) <= MAX_EXTENDS_DEPTH:
        doc = _parse(current)
        chain.append((current, doc))
        parent = doc.data.get("extends") if isinstance(doc.data, dict) else None
        if not isinstance(parent, str):
            break
        current = (current.parent / parent).resolve()
    return chain


# --- the cube -----------------------------------------------------------------------------------------


@dataclass
class Cube:
    """Every target's value in every replication of every (candidate, incident)."""

    joint: Joint
    seed: int  # the design seed
    runs: int
    candidates: list[list[float | int]]
    values: dict[str, np.ndarray]  # incident -> (candidates, targets, runs); NaN: never reached, or failed
    failures: list[dict[str, Any]]

    @property
    def samples(self) -> int:
        return len(self.candidates)

    def discarded(self) -> set[int]:
        """Candidates with a failed replication (or a scenario that did not load) in any incident."""
        return {f["candidate"] for f in self.failures}

    def z(self, name: str, k: int) -> np.ndarray:
        """The z-score of each of the incident's facts at candidate ``k`` (median over the runs)."""
        incident = self.joint.incident(name)
        return np.array([z_score(target, score(self.values[name][k, t])[0], incident.scenario)[0]
                         for t, target in enumerate(incident.spec.targets)])

    def incident_distances(self, name: str) -> np.ndarray:
        """Per candidate, the RMS of the incident's facts' z-scores (inf for a discarded candidate)."""
        bad = self.discarded()
        out = np.full(self.samples, math.inf)
        for k in range(self.samples):
            if k not in bad:
                with np.errstate(invalid="ignore"):
                    d = math.sqrt(float(np.mean(self.z(name, k) ** 2)))
                out[k] = d if math.isfinite(d) else math.inf
        return out

    def distances(self, names: list[str]) -> np.ndarray:
        """Per candidate, the RMS over ``names`` of the incidents' distances (each incident weighs the same)."""
        per = np.array([self.incident_distances(n) for n in names])
        return np.sqrt(np.mean(per ** 2, axis=0))

    def csv(self) -> str:
        """``incident,candidate,target,run,value`` (empty value: never reached, or failed)."""
        lines = ["incident,candidate,target,run,value"]
        for incident in self.joint.incidents:
            cube = self.values[incident.name]
            for k in range(self.samples):
                for t, target in enumerate(incident.spec.targets):
                    for r in range(self.runs):
                        x = float(cube[k, t, r])
                        lines.append(f"{incident.name},{k},{target.name},{r},{repr(x) if math.isfinite(x) else ''}")
        return "\n".join(lines) + "\n"


def design_seed(joint: Joint, seed: int | None) -> int:
    """``seed`` if given, else the joint file's, else the first incident scenario's."""
    if seed is not None:
        return seed
    return joint.spec.seed if joint.spec.seed is not None else joint.incidents[0].scenario.seed


def simulate_cube(
    joint: Joint,
    samples: int,
    runs: int,
    seed: int | None = None,
    jobs: int = 1,
    scheduler: str | None = None,
    executor: Executor | None = None,
    on_replication: Callable[[], None] | None = None,
    cells: Path | None = None,
    resume: bool = False,
    engine: str = "reference",
) -> Cube:
    """Simulate every (candidate, incident) cell; the same arguments give the same cube whatever
    ``jobs`` and ``engine`` (``reference`` or ``compiled``: the same bytes). ``cells``: keep each
    finished cell there (``resume``: reuse those already kept, by either engine)."""
    if runs < 1 or samples < 1:
        raise ValueError("runs and samples must be >= 1")
    seed = design_seed(joint, seed)
    candidates = design(joint.parameters, samples, seed)
    values = {i.name: np.full((samples, len(i.spec.targets), runs), np.nan) for i in joint.incidents}
    failures: list[dict[str, Any]] = []
    lock = threading.Lock()

    def tick() -> None:
        if on_replication is not None:
            with lock:
                on_replication()

    def run_cell(cell: tuple[Incident, int], pool: Executor | None) -> None:
        incident, k = cell
        base = incident.scenario.seed
        try:
            scenario = load_scenario(incident.scenario_path, joint.overrides(candidates[k]))
        except ScenarioError as exc:
            with lock:
                failures.append({"incident": incident.name, "candidate": k, "replication": None, "stage": "load",
                                 "error": str(exc)})
            for _ in range(runs):
                tick()
            return
        kept = None if cells is None else cells / incident.name / f"{_cell_key(scenario, incident, runs, base)}.json"
        if kept is not None and resume and kept.is_file():
            values[incident.name][k] = _read_cell(kept, runs, len(incident.spec.targets))
            for _ in range(runs):
                tick()
            return
        metrics, failed = evaluate(scenario, incident.spec.targets, runs, base, pool,
                                   f"{joint.name}-{incident.name}-c{k}-d{seed}-s{base}", tick, engine)
        values[incident.name][k] = metrics
        with lock:
            failures.extend({"incident": incident.name, "candidate": k, "replication": f.index, "stage": f.stage,
                             "error": f.error} for f in failed)
        if kept is not None and not failed:
            _write_cell(kept, metrics)

    order = {i.name: j for j, i in enumerate(joint.incidents)}
    run_all([(incident, k) for k in range(samples) for incident in joint.incidents], run_cell, jobs, scheduler, executor)
    failures.sort(key=lambda f: (order[f["incident"]], f["candidate"], -1 if f["replication"] is None else f["replication"]))
    return Cube(joint, seed, runs, candidates, values, failures)


def _cell_key(scenario: Scenario, incident: Incident, runs: int, seed: int) -> str:
    # The engine is not part of the key, on purpose: the reference and compiled engines give the
    # same bytes (tests/test_engines.py), so a cell kept by one is the other's too, and the keys of
    # cells kept before the compiled engine existed stay valid.
    text = json.dumps({"launderflow": __version__, "scenario": scenario.model_dump_json(), "runs": runs, "seed": seed,
                       "targets": [t.model_dump(mode="json") for t in incident.spec.targets]}, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def _write_cell(path: Path, metrics: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [[float(x) if math.isfinite(x) else None for x in row] for row in metrics]
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"launderflow_cell": FORMAT, "values": rows}) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _read_cell(path: Path, runs: int, targets: int) -> np.ndarray:
    rows = json.loads(path.read_text(encoding="utf-8"))["values"]
    metrics = np.array([[np.nan if x is None else x for x in row] for row in rows], dtype=np.float64)
    if metrics.shape != (targets, runs):
        raise ValueError(f"{path}: a kept cell of another shape (delete it)")
    return metrics
