"""Growable numpy columns: preallocated arrays that double when full.

The ledger and other logs receive data in batches (one per simulated tick). Writing each batch
into slices of preallocated arrays costs one slice assignment per column, whatever the batch
size; the arrays double when full, so growth is amortised O(1) per row.
"""

from __future__ import annotations

import numpy as np


class ColumnBuffer:
    """A set of named columns of fixed dtypes, filled batch by batch."""

    def __init__(self, dtypes: dict[str, np.dtype | type], capacity: int = 4096):
        self.dtypes = {name: np.dtype(dt) for name, dt in dtypes.items()}
        self._cap = capacity
        self._data = {name: np.empty(capacity, dtype=dt) for name, dt in self.dtypes.items()}
        self._rows = 0

    def __len__(self) -> int:
        return self._rows

    def append(self, n: int | None = None, **columns: np.ndarray | float | int) -> None:
        """Append one batch of ``n`` rows; scalars are broadcast. Every column must be given."""
        if n is None:
            n = next((len(v) for v in columns.values() if np.ndim(v) > 0), 1)  # type: ignore[arg-type]
        if columns.keys() != self.dtypes.keys():
            missing = set(self.dtypes) - set(columns)
            raise KeyError(f"missing columns: {sorted(missing)}" if missing else f"unknown columns: {sorted(set(columns) - set(self.dtypes))}")
        start, end = self._rows, self._rows + n
        if end > self._cap:
            self._grow(end)
        data = self._data
        for name, value in columns.items():
            data[name][start:end] = value
        self._rows = end

    def _grow(self, needed: int) -> None:
        cap = max(self._cap * 2, needed)
        for name, old in self._data.items():
            new = np.empty(cap, dtype=old.dtype)
            new[: self._rows] = old[: self._rows]
            self._data[name] = new
        self._cap = cap

    def arrays(self) -> dict[str, np.ndarray]:
        """The filled part of each column (a view: copy it if the buffer keeps growing)."""
        return {name: arr[: self._rows] for name, arr in self._data.items()}
