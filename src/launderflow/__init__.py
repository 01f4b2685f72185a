"""launderflow: simulate laundering of stolen crypto and the policies that stop it.

The Python API (see docs/reference/api.md): :func:`run`, :func:`compare`, :func:`sweep` and
:func:`open_run` return :class:`Run` and :class:`Comparison` objects with the summary and the
tables as Arrow tables (pandas DataFrames with the ``pandas`` extra); the ``plot_*`` functions
draw on any matplotlib ``Axes``. Names are imported on first use, so ``import launderflow`` stays
cheap for worker processes.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_API = {
    "run": "api", "compare": "api", "sweep": "api", "open_run": "api", "Run": "api", "Comparison": "api",
    "load_scenario": "scenario.loader", "ScenarioError": "scenario.loader", "StoreError": "runs.store",
    "LockedError": "runs.lock", "OutputError": "runs.lock",
    "METRICS": "metrics",
    "plot_traceability": "views.plots", "plot_outcome_areas": "views.plots", "plot_final_outcomes": "views.plots",
    "plot_anonymity": "views.plots",
}
__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'launderflow' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"launderflow.{module}"), name)


def __dir__() -> list[str]:
    """Tab completion shows the API (its names are imported on first use, see above)."""
    return sorted({*globals(), *_API} - {"Any", "annotations"})
