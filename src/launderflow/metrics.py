"""Outcome metrics from a replication's change log: timelines, final shares, times to thresholds.

The outcome book logs every change of the 12 (location, knowledge) cells; a timeline on any grid
is a cumulative sum read at the grid points, so it is exact at every grid instant.
"""

from __future__ import annotations

import numpy as np

from .model.simulate import Replication
from .model.states import LOCATIONS, N_CELLS, Location

STATES: tuple[str, ...] = (*LOCATIONS, "traced", "dark")


def cell_totals_at(rep: Replication, times: np.ndarray) -> np.ndarray:
    """Value in each of the 12 cells at each time (after all changes at that time): (len(times), 12)."""
    cum = np.vstack([np.zeros((1, N_CELLS)), np.cumsum(rep.log_delta, axis=0)])
    rows = np.searchsorted(rep.log_time, times, side="right")
    return cum[rows]


def state_values(cells: np.ndarray) -> np.ndarray:
    """Collapse 12 cells to the 8 reported states: 6 locations, then traced and dark."""
    cells = np.atleast_2d(cells)
    by_location = cells[:, 0::2] + cells[:, 1::2]
    traced = cells[:, 1::2].sum(axis=1)
    dark = cells[:, 0::2].sum(axis=1)
    return np.column_stack([by_location, traced, dark])


def timeline_grid(horizon: float, step: float) -> np.ndarray:
    n = int(np.floor(horizon / step + 1e-9))
    grid = np.arange(n + 1) * step
    return grid if grid[-1] >= horizon - 1e-9 else np.append(grid, horizon)


def timeline(rep: Replication, grid: np.ndarray) -> np.ndarray:
    """(len(grid), 8) state values in USD."""
    return state_values(cell_totals_at(rep, grid))


def time_to_share(rep: Replication, location: Location, share: float) -> float:
    """First time the value in ``location`` reaches ``share`` of the stolen value (nan if never)."""
    col = int(location) * 2
    cum = np.cumsum(rep.log_delta[:, col] + rep.log_delta[:, col + 1])
    hit = np.flatnonzero(cum >= share * rep.stolen_usd * (1 - 1e-12))
    return float(rep.log_time[hit[0]]) if len(hit) else float("nan")


def final_states(rep: Replication) -> dict[str, float]:
    values = state_values(rep.final_cells)[0]
    values[np.abs(values) < 1e-9 * max(rep.stolen_usd, 1.0)] = 0.0  # float round-off of emptied states
    return {name: float(v) for name, v in zip(STATES, values)}
