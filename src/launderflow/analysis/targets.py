"""Targets files: public facts a scenario should reproduce, read for ``calibrate`` and ``backtest``.

A targets file names the uncertain ``parameters`` (for ``calibrate``: a dotted scenario path and a
box) and the ``targets``: facts, each with a ``value``, a ``tolerance`` (the fact's own
uncertainty) and a ``source`` (the citation). A target's ``metric`` is any metric of the registry
(:mod:`launderflow.metrics`) that takes facts, with that metric's parameters as fields
(``state``, ``at``, ``venue``, ``intervention``, ``share``): the file's schema is generated from
the registry, so a new metric is a new kind of target with no change here.

The file is read with the scenario loader's machinery (duplicate keys refused, every problem
reported as ``file:line: field: message``) and checked against its scenario (unknown venues and
interventions, a time after the horizon, a parameter path the scenario does not have).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, create_model, model_validator

from ..metrics import METRICS, SHARE, STATES, Measure, action_names
from ..model.simulate import Replication
from ..scenario.loader import Problem, ScenarioError, _clean_loc, _problem_from_pydantic, load_data, load_scenario
from ..scenario.schema import Duration, Name, Scenario
from ..units import format_duration, parse_duration


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _number(value: Any) -> float:
    """A bound: a number, or a duration with a unit (``5d``), which becomes hours like the scenario's."""
    if isinstance(value, bool):
        raise ValueError("must be a number (or a duration such as '5d')")
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValueError("must be finite")
        return float(value)
    raise ValueError("must be a number (or a duration such as '5d')")


Bound = Annotated[float, BeforeValidator(_number)]
PATH_PATTERN = r"^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*$"


class Parameter(_Strict):
    """A scenario field to fit, by its dotted path, within [low, high]."""

    path: Annotated[str, Field(pattern=PATH_PATTERN, max_length=256)]
    low: Bound
    high: Bound
    scale: Literal["linear", "log"] = "linear"
    integer: bool = Field(default=False, description="round to a whole number (for counts)")

    @model_validator(mode="after")
    def _box(self) -> "Parameter":
        if not self.high > self.low:
            raise ValueError(f"high must be greater than low (got low {self.low:g}, high {self.high:g})")
        if self.scale == "log" and self.low <= 0:
            raise ValueError(f"a log scale needs low > 0 (got {self.low:g})")
        return self


def as_value(param: Parameter, x: float) -> float | int:
    """A parameter value as the scenario takes it (a whole number for ``integer`` parameters)."""
    if param.integer:
        return int(round(x))
    return float(x)


MAX_FACT = 1e15  # a fact's magnitude: the largest theft a scenario may describe, in USD (schema.MAX_STOLEN_USD)
MIN_TOLERANCE = 1e-6  # below it z would be a number of hundreds of digits, not a verdict


class _Fact(_Strict):
    name: Name
    value: float = Field(allow_inf_nan=False, ge=-MAX_FACT, le=MAX_FACT)
    tolerance: Annotated[float, Field(ge=MIN_TOLERANCE, le=MAX_FACT, allow_inf_nan=False)] = Field(
        description="the fact's own uncertainty: the scale of the distance")
    source: Annotated[str, Field(min_length=1, max_length=500)]
    role: Literal["input", "check"] = Field(
        default="input", description="input: the scenario was built or fitted from this fact (in-sample, the "
                                     "default: nothing counts as out-of-sample unless it says so); check: it was not")

    @model_validator(mode="after")
    def _share(self) -> "_Fact":
        """A share is a fraction of the stolen value: its fact lies in [0, 1] and its tolerance is at most 1."""
        if METRICS[getattr(self, "metric")].unit is SHARE and not (0 <= self.value <= 1 and self.tolerance <= 1):
            bad = "value" if not 0 <= self.value <= 1 else "tolerance"
            raise ValueError(f"a share's {bad} must be between 0 and 1 (got {getattr(self, bad):g})")
        return self


# How each metric parameter is written in a targets file.
_PARAM_FIELDS: dict[str, Any] = {
    "state": (Literal[STATES], ...),  # type: ignore[valid-type]
    "at": (Duration, ...),
    "venue": (Name, ...),
    "intervention": (Name, ...),
    "share": (Annotated[float, Field(gt=0.0, le=1.0)], ...),
    "asset": (Name, ...),
    "function": (Literal["mixing", "cross_chain", "swapping", "off_ramp"], ...),
    "start": (Duration, ...),
}


def _fact_model(name: str) -> type[_Fact]:
    metric = METRICS[name]
    fields = {"metric": (Literal[name], ...), **{p: _PARAM_FIELDS[p] for p in metric.params}}
    model = create_model(f"Target_{name}", __base__=_Fact, **fields)  # type: ignore[call-overload]
    model.__doc__ = metric.doc
    return model


FACTS: dict[str, type[_Fact]] = {name: _fact_model(name) for name, m in METRICS.items() if m.target}
Target = Annotated[Union[tuple(FACTS.values())], Field(discriminator="metric")]  # type: ignore[valid-type]


def check_paths_apart(paths: list[str]) -> None:
    """ValueError if two parameter paths are the same or one lies inside the other."""
    for i, a in enumerate(paths):
        for b in paths[:i]:
            if a == b or a.startswith(b + ".") or b.startswith(a + "."):
                raise ValueError(f"parameter paths overlap: {b!r} and {a!r}")


class Targets(_Strict):
    """A targets file: which scenario fields to fit (calibrate), and the facts to fit or score them against."""

    description: str = ""
    parameters: list[Parameter] = Field(default_factory=list)
    targets: list[Target] = Field(min_length=1)  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _unique(self) -> "Targets":
        check_paths_apart([p.path for p in self.parameters])
        names = [t.name for t in self.targets]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"target names must be unique (repeated: {', '.join(dupes)})")
        return self


# --- a target as a measure ---------------------------------------------------------------------------


def measure_of(target: Any) -> Measure:
    """The registry measure a target states a fact about."""
    metric = METRICS[target.metric]
    return metric(**{p: getattr(target, p) for p in metric.params})


def metric_value(target: Any, rep: Replication, scenario: Scenario) -> float:
    """The value of one target's metric in one replication (NaN: a time never reached)."""
    return measure_of(target).value(rep, scenario)


def describe_target(target: Any) -> str:
    """``venue_frozen_usd(offshore_exchange)`` and the like."""
    return measure_of(target).describe()


def score(values: np.ndarray) -> tuple[float, float, float]:
    """Median, 5th and 95th percentile of one target's values over replications.

    A time never reached within the horizon (NaN) counts as later than any time: it can be the
    median (then the model says "never", an infinite value, and the target is missed by any
    tolerance), and a percentile that falls among such replications is infinite too.
    """
    never = 1e300  # (linear interpolation towards an infinity would give NaN)
    values = np.where(np.isnan(values), never, np.asarray(values, dtype=np.float64))
    q = np.percentile(values, [50, 5, 95])
    med, p5, p95 = (math.inf if x >= never / 10 else float(x) for x in q)
    return med, p5, p95


def z_score(target: Any, median: float, scenario: Scenario) -> tuple[float, bool]:
    """``(median - fact) / tolerance``, and whether it is a lower bound: a median that is "never"
    counts as the metric's bound (the horizon), so a candidate that never gets there still ranks
    by how far the horizon is from the fact."""
    bound = measure_of(target).metric.never_bound
    censored = math.isinf(median) and bound is not None
    value = bound(scenario) if censored else median  # type: ignore[misc]
    with np.errstate(invalid="ignore"):
        return (value - target.value) / target.tolerance, censored


# --- reading the file ----------------------------------------------------------------------------


def _clean_tags(loc: tuple[Any, ...], data: Any) -> tuple[Any, ...]:
    """Drop the ``metric`` tag pydantic puts into a discriminated target's error path."""
    return _clean_loc(loc, data, tags=("metric",))


def _model_for(data: Any, loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The targets-file model at ``loc`` (for "unknown field (allowed: ...)")."""
    if loc == ():
        return Targets
    if len(loc) == 2 and loc[0] == "parameters":
        return Parameter
    if len(loc) == 2 and loc[0] == "targets":
        try:
            item = data["targets"][loc[1]]
        except (KeyError, IndexError, TypeError):
            return None
        return FACTS.get(item.get("metric")) if isinstance(item, dict) else None
    return None


def _pydantic_problem(err: dict[str, Any], doc: Any, model_for: Any = None) -> Problem:
    """A pydantic error as ``file:line: field: message``; ``model_for(data, loc)`` names the model at
    ``loc`` for "unknown field (allowed: ...)" (default: the targets file's)."""
    err = dict(err)
    loc = _clean_tags(tuple(err["loc"]), doc.data)
    if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
        node = _lookup(doc.data, ".".join(map(str, loc))) if loc else doc.data
        if isinstance(node, dict) and "metric" in node:
            loc = (*loc, "metric")
    err["loc"] = loc
    problem = _problem_from_pydantic(err, doc)  # the scenario loader's wording and line lookup
    if err["type"] == "extra_forbidden":
        model = (model_for or _model_for)(doc.data, loc[:-1])
        allowed = f" (allowed: {', '.join(model.model_fields)})" if model is not None else ""
        problem = Problem(problem.file, problem.line, problem.path, "unknown field" + allowed)
    return problem


def load_targets(path: str | Path, scenario_path: str | Path, need_parameters: bool = True) -> tuple[Targets, Scenario]:
    """Read and check a targets file against its scenario; raise :class:`ScenarioError` listing every problem.

    The scenario's own problems come first (and alone): a targets file cannot be checked against a
    scenario that does not load. ``need_parameters``: calibrate needs at least one; backtest none.
    """
    data, doc = load_data(path)
    try:
        spec = Targets.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError([_pydantic_problem(e, doc) for e in exc.errors(include_url=False)]) from None
    if need_parameters and not spec.parameters:
        raise ScenarioError([Problem(*doc.locate(("parameters",)), "parameters",
                                     "calibrate needs at least one parameter to fit (a list of path, low, high)")])
    if need_parameters and all(target.role == "check" for target in spec.targets):
        raise ScenarioError([Problem(*doc.locate(("targets",)), "targets",
                                     "every target is a check (out-of-sample, never fitted): calibrate needs at "
                                     "least one with role: input")])
    scenario = load_scenario(scenario_path)
    problems = _reference_problems(spec, scenario, scenario_path, doc)
    if problems:
        raise ScenarioError(problems)
    return spec, scenario


def _reference_problems(spec: Targets, scenario: Scenario, scenario_path: str | Path, doc: Any) -> list[Problem]:
    problems: list[Problem] = []

    def problem(loc: tuple[Any, ...], message: str) -> None:
        problems.append(Problem(*doc.locate(loc), ".".join(map(str, loc)), message))

    raw, _ = load_data(scenario_path)
    for i, param in enumerate(spec.parameters):
        current = _lookup(raw, param.path)
        if isinstance(current, (dict, list, bool)):
            problem(("parameters", i, "path"), f"{param.path} is a {type(current).__name__} in the scenario, "
                                               f"not a number")
            continue
        for bound in ("low", "high"):
            value = as_value(param, getattr(param, bound))
            try:
                load_scenario(scenario_path, {param.path: value})
            except ScenarioError as exc:
                first = exc.problems[0]
                missing = _missing_prefix(raw, param.path)
                if missing is not None and first.path.startswith(missing):
                    problem(("parameters", i, "path"), f"no such field in the scenario: {param.path} "
                                                       f"({missing} is not in {scenario_path})")
                    break
                if "no such field" in first.message or first.message.startswith(("unknown field", "index out of range")):
                    problem(("parameters", i, "path"), f"no such field in the scenario: {param.path} "
                                                       f"({first.path}: {first.message})")
                    break
                problem(("parameters", i, bound), f"the scenario refuses {param.path} = {value!r} "
                                                  f"({first.path}: {first.message})")
    actions = action_names(scenario)
    for j, target in enumerate(spec.targets):
        venue = getattr(target, "venue", None)
        if venue is not None and venue not in scenario.venues:
            problem(("targets", j, "venue"), f"unknown venue {venue!r} (defined: {', '.join(scenario.venues) or 'none'})")
        asset = getattr(target, "asset", None)
        if asset is not None and asset not in scenario.assets:
            problem(("targets", j, "asset"), f"unknown asset {asset!r} (defined: {', '.join(scenario.assets)})")
        name = getattr(target, "intervention", None)
        if name is not None and name not in actions:
            problem(("targets", j, "intervention"),
                    f"unknown intervention {name!r} (defined: {', '.join(actions) or 'none'})")
        at = getattr(target, "at", None)
        if at is not None and at > scenario.clock.horizon + 1e-9:
            problem(("targets", j, "at"), f"is after the scenario's horizon ({format_duration(at)} > "
                                          f"{format_duration(scenario.clock.horizon)})")
    return problems


def _keys(path: str) -> list[Any]:
    return [int(k) if k.isdigit() else k for k in path.split(".")]


def _missing_prefix(data: Any, path: str) -> str | None:
    """The first section on ``path`` (not its last key) that the scenario file does not have, if any."""
    node = data
    keys = _keys(path)
    for i, key in enumerate(keys[:-1]):
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            return ".".join(map(str, keys[: i + 1]))
    return None


def _lookup(data: Any, path: str) -> Any:
    node = data
    for key in _keys(path):
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            return None
    return node
