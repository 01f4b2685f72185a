"""The outcome book: how much stolen value sits in each (location, knowledge) cell, over time.

Every change of a lot's cell goes through :meth:`OutcomeBook.move`, which nets a whole batch into
one 12-vector of deltas with ``bincount``. Changes at the same instant are netted into one log
row, so the log has one row per instant at which anything changed. The running totals always
sum to the value stolen so far (conservation), and the timeline on any grid is a cumulative sum of
the log — exact, not sampled by a polling process.
"""

from __future__ import annotations

import numpy as np

from .states import N_CELLS


class OutcomeBook:
    def __init__(self) -> None:
        self.totals = np.zeros(N_CELLS, dtype=np.float64)
        self.stolen = 0.0
        self._times: list[float] = []
        self._rows: list[np.ndarray] = []
        self._pending_time: float | None = None
        self._pending = np.zeros(N_CELLS)

    def add(self, time: float, cells: np.ndarray, values: np.ndarray) -> None:
        """New stolen value enters the book (a theft)."""
        self.stolen += float(values.sum())
        self._record(time, np.bincount(cells, weights=values, minlength=N_CELLS))

    def move(self, time: float, from_cells: np.ndarray, to_cells: np.ndarray, values: np.ndarray) -> None:
        """Move ``values[i]`` from ``from_cells[i]`` to ``to_cells[i]`` for a whole batch."""
        if len(values) == 0:
            return
        delta = np.bincount(to_cells, weights=values, minlength=N_CELLS)
        delta -= np.bincount(from_cells, weights=values, minlength=N_CELLS)
        self._record(time, delta)

    def _record(self, time: float, delta: np.ndarray) -> None:
        pending = self._pending_time
        if pending is None or abs(time - pending) > 1e-9 * max(1.0, abs(time)):  # same instant up to float error
            self._flush()
            self._pending_time = time
        self._pending += delta
        self.totals += delta

    def _flush(self) -> None:
        if self._pending_time is not None and np.any(self._pending):
            self._times.append(self._pending_time)
            self._rows.append(self._pending)
        self._pending = np.zeros(N_CELLS)

    def log(self) -> tuple[np.ndarray, np.ndarray]:
        """The change log: times (k,) and net cell deltas (k, 12), one row per changing instant."""
        self._flush()
        self._pending_time = None
        times = np.array(self._times, dtype=np.float64)
        rows = np.array(self._rows, dtype=np.float64).reshape(-1, N_CELLS)
        return times, rows
