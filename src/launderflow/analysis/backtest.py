"""Backtest: score a scenario, as it stands, against the facts of a targets file — no fitting.

A calibration (``calibrate``) moves parameters until the model meets its facts; a backtest only
measures how far the model is from them. Each target is run through the metric registry on every
replication; the model's value is the median over them (a time never reached counts as later
than any, see :func:`~launderflow.analysis.targets.score`), with its 5–95 % range, and

    z = (model median - fact) / tolerance,    within tolerance: |z| <= 1.

A target's ``role`` says how to read it: ``input`` facts went into building the scenario (its
route, pace and amounts), so meeting them checks the construction (in-sample); ``check`` facts
did not (out-of-sample): they are what the backtest is for. The out-of-sample protocol (docs/explanation/validation.md,
"Backtests"): calibrate on one incident, carry the fitted parameters into the others as inputs,
and backtest those on their own check facts, without refitting.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..model.simulate import Replication
from ..runs.executors import open_executor
from ..runs.replications import Failure, run_replications
from ..scenario.schema import Scenario
from .targets import Targets, describe_target, load_targets, measure_of, metric_value, score, z_score

FORMAT = 1


def fact_row(target: Any, values: np.ndarray, scenario: Scenario) -> dict[str, Any]:
    """One fact against the model's values for it (any number of them): the median and 5-95 %,
    z = (median - fact) / tolerance (a lower bound when the median is "never") and |z| <= 1."""
    med, p5, p95 = score(values)
    z, lower_bound = z_score(target, med, scenario)
    within = bool(math.isfinite(z) and abs(z) <= 1.0)
    return {"name": target.name, "role": target.role, "metric": describe_target(target),
            "unit": measure_of(target).unit.name, "fact": target.value, "tolerance": target.tolerance,
            "model_median": med, "model_p5": p5, "model_p95": p95, "z": z,
            "z_is_lower_bound": lower_bound, "within_tolerance": within, "source": target.source}


@dataclass
class Backtest:
    """The scenario's value for every target in every replication, and the verdicts."""

    scenario_path: str
    targets_path: str
    scenario: Scenario
    spec: Targets
    seed: int
    runs: int
    values: np.ndarray  # (targets, runs); NaN where a time was never reached, or a replication failed
    failures: list[Failure]

    def rows(self) -> list[dict[str, Any]]:
        return [fact_row(target, self.values[t], self.scenario) for t, target in enumerate(self.spec.targets)]

    @property
    def passed(self) -> bool:
        return not self.failures and all(r["within_tolerance"] for r in self.rows())

    def report(self) -> dict[str, Any]:
        rows = self.rows()
        counts = {role: {"targets": sum(r["role"] == role for r in rows),
                         "within_tolerance": sum(r["role"] == role and r["within_tolerance"] for r in rows)}
                  for role in ("input", "check")}
        return _clean({
            "launderflow_backtest": FORMAT,
            "scenario": self.scenario_path,
            "scenario_name": self.scenario.name,
            "targets_file": self.targets_path,
            "seed": self.seed,
            "runs": self.runs,
            "method": "model = median over the replications (a time never reached counts as later than any); "
                      "z = (model - fact) / tolerance; within tolerance: |z| <= 1; no parameter is fitted",
            "passed": self.passed,
            "counts": counts,
            "targets": rows,
            "failures": [f.record() for f in self.failures],
        })


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def backtest(scenario_path: str | Path, targets_path: str | Path, runs: int, seed: int | None = None, jobs: int = 1,
             scheduler: str | None = None, on_replication: Callable[[], None] | None = None) -> Backtest:
    """Run ``runs`` replications of the scenario and score them against the targets file's facts.

    Raises :class:`~launderflow.scenario.loader.ScenarioError` for a bad scenario or targets file
    (the targets file's ``parameters``, if any, are not used).
    """
    if runs < 1:
        raise ValueError("runs must be >= 1")
    spec, scenario = load_targets(targets_path, scenario_path, need_parameters=False)
    seed = scenario.seed if seed is None else seed
    values = np.full((len(spec.targets), runs), np.nan)
    failures: list[Failure] = []
    lock = threading.Lock()

    def done(index: int, rep: Replication) -> None:
        for t, target in enumerate(spec.targets):
            values[t, index] = metric_value(target, rep, scenario)
        if on_replication is not None:
            on_replication()

    def failed(failure: Failure) -> None:
        with lock:
            failures.append(failure)
        if on_replication is not None:
            on_replication()

    with open_executor(jobs, scheduler) as executor:
        for _ in run_replications(scenario, runs, seed, keep_ledgers=False, jobs=jobs, executor=executor,
                                  on_done=done, on_error=failed, key=f"{scenario.name}-backtest-s{seed}"):
            pass
    failures.sort(key=lambda f: f.index)
    return Backtest(str(scenario_path), str(targets_path), scenario, spec, seed, runs, values, failures)
