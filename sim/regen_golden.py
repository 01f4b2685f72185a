"""Regenerate the pinned summaries of the golden scenarios (tests/golden/*.summary.json).

Run: ``python sim/regen_golden.py`` (from anywhere; ``--check`` only reports which files would change).

Each golden scenario ``tests/golden/<name>.yaml`` is run through the library — not the CLI — with
:data:`SEED` and :data:`RUNS` replications, in this process, and its summary
(:func:`launderflow.runs.results.summarize`, without the package version) is written to
``tests/golden/<name>.summary.json``. ``tests/test_golden.py`` runs the same function and compares
its result with the pinned file field by field, so regenerate only after a change that is meant to
move the numbers, and say so in the commit.

The numbers depend on numpy's random streams and floating-point results, so they are pinned for
the numpy (and Python) of the environment that wrote them — see :func:`environment`, stored in
``tests/golden/ENVIRONMENT.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path
from typing import Any

GOLDEN_DIR = Path(__file__).resolve().parent.parent / "tests" / "golden"
SEED = 20_241_123  # the master seed of every golden run (not the scenario's own seed)
RUNS = 3  # replications per golden scenario
UNPINNED = ("launderflow_version",)  # summary fields that are not simulation results


def scenarios() -> list[Path]:
    """The golden scenario files, in name order."""
    return sorted(GOLDEN_DIR.glob("*.yaml"))


def summary_path(scenario: Path) -> Path:
    return scenario.with_name(scenario.stem + ".summary.json")


def golden_summary(scenario: Path, seed: int = SEED, runs: int = RUNS) -> dict[str, Any]:
    """Run ``scenario`` (``runs`` replications of master seed ``seed``) and return its summary as plain JSON data."""
    from launderflow.runs.replications import run_replications
    from launderflow.runs.results import summarize
    from launderflow.scenario.loader import load_scenario

    spec = load_scenario(scenario)
    reps = dict(run_replications(spec, runs, seed))
    summary = summarize(spec, seed, reps)
    for key in UNPINNED:
        summary.pop(key, None)
    return json.loads(json.dumps(summary, allow_nan=False))  # exactly what the pinned file holds


def render(summary: dict[str, Any]) -> str:
    return json.dumps(summary, indent=2, allow_nan=False) + "\n"


def environment() -> dict[str, str]:
    """The versions the golden numbers were computed with."""
    import numpy

    from launderflow import __version__

    return {"python": platform.python_version(), "numpy": numpy.__version__, "launderflow": __version__,
            "machine": platform.machine()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report which pinned files would change")
    args = parser.parse_args(argv)
    changed = 0
    for scenario in scenarios():
        target = summary_path(scenario)
        text = render(golden_summary(scenario))
        old = target.read_text(encoding="utf-8") if target.exists() else None
        if old == text:
            print(f"{target.relative_to(GOLDEN_DIR.parent.parent)}: unchanged")
            continue
        changed += 1
        if args.check:
            print(f"{target.relative_to(GOLDEN_DIR.parent.parent)}: would change")
        else:
            target.write_text(text, encoding="utf-8")
            print(f"{target.relative_to(GOLDEN_DIR.parent.parent)}: {'rewritten' if old else 'written'}")
    if not args.check:
        (GOLDEN_DIR / "ENVIRONMENT.json").write_text(json.dumps(environment(), indent=2) + "\n", encoding="utf-8")
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
