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
        self._totals = np.zeros(N_CELLS, dtype=np.float64)
        self._moves: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
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
        """Move ``values[i]`` from ``from_cells[i]`` to ``to_cells[i]`` for a whole batch.

        Moves are only collected here; they are netted (two ``bincount`` calls for everything that
        happened at one instant) when the clock moves on or the totals are read.
        """
        if len(values) == 0:
            return
        self._at(time)
        self._moves.append((from_cells, to_cells, values))

    def _record(self, time: float, delta: np.ndarray) -> None:
        self._at(time)
        self._pending += delta

    def _at(self, time: float) -> None:
        pending = self._pending_time
        if time == pending:
            return
        if pending is None or abs(time - pending) > 1e-9 * max(1.0, abs(time)):  # same instant up to float error
            self._flush()
            self._pending_time = time

    def _net_moves(self) -> None:
        if self._moves:
            src = np.concatenate([m[0] for m in self._moves])
            dst = np.concatenate([m[1] for m in self._moves])
            val = np.concatenate([m[2] for m in self._moves])
            self._moves = []
            self._pending += np.bincount(dst, weights=val, minlength=N_CELLS)
            self._pending -= np.bincount(src, weights=val, minlength=N_CELLS)

    def _flush(self) -> None:
        self._net_moves()
        if self._pending_time is not None and np.count_nonzero(self._pending):
            self._times.append(self._pending_time)
            self._rows.append(self._pending)
            self._totals += self._pending
        self._pending = np.zeros(N_CELLS)

    @property
    def totals(self) -> np.ndarray:
        """Value in each of the 12 cells now."""
        self._net_moves()
        return self._totals + self._pending

    def log(self) -> tuple[np.ndarray, np.ndarray]:
        """The change log: times (k,) and net cell deltas (k, 12), one row per changing instant."""
        self._flush()
        self._pending_time = None
        times = np.array(self._times, dtype=np.float64)
        rows = np.array(self._rows, dtype=np.float64).reshape(-1, N_CELLS)
        return times, rows
