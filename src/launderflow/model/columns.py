"""Growable numpy columns: preallocated arrays filled batch by batch, in chunks.

The ledger and other logs receive data in batches (one per simulated tick). Writing each batch
into slices of preallocated arrays costs one slice assignment per column, whatever the batch
size. A buffer doubles while it is under ``CHUNK`` rows; past that a full chunk is kept as it
is and a new one started, so growing never copies the rows already written (a ledger of millions
of rows would otherwise be copied at every doubling and sit in an array up to twice its size).
"""

from __future__ import annotations

import numpy as np

CHUNK = 1 << 18  # rows per chunk once a buffer is this large


class ColumnBuffer:
    """A set of named columns of fixed dtypes, filled batch by batch."""

    def __init__(self, dtypes: dict[str, np.dtype | type], capacity: int = 4096):
        self.dtypes = {name: np.dtype(dt) for name, dt in dtypes.items()}
        self._sealed: list[dict[str, np.ndarray]] = []  # full chunks, trimmed to their rows
        self._cap = capacity  # of the chunk being filled
        self._data = {name: np.empty(capacity, dtype=dt) for name, dt in self.dtypes.items()}
        self._used = 0  # rows in the chunk being filled
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
        start, end = self._used, self._used + n
        if end > self._cap:
            self._make_room(n)
            start, end = self._used, self._used + n
        data = self._data
        for name, value in columns.items():
            data[name][start:end] = value
        self._used = end
        self._rows += n

    def _make_room(self, n: int) -> None:
        used = self._used
        if self._cap < CHUNK:  # still small: double (copies at most CHUNK rows in all)
            cap = max(self._cap * 2, used + n)
            for name, old in self._data.items():
                new = np.empty(cap, dtype=old.dtype)
                new[:used] = old[:used]
                self._data[name] = new
            self._cap = cap
            return
        if used:
            self._sealed.append({name: col[:used] for name, col in self._data.items()})
        self._cap = max(CHUNK, n)
        self._data = {name: np.empty(self._cap, dtype=dt) for name, dt in self.dtypes.items()}
        self._used = 0

    def arrays(self, copy: bool = False) -> dict[str, np.ndarray]:
        """Every row of each column.

        Without ``copy`` a buffer that fits in one chunk returns views (copy them if the buffer
        keeps growing); with ``copy``, or once there are several chunks, fresh arrays.
        """
        current = {name: col[: self._used] for name, col in self._data.items()}
        if not self._sealed:
            return {name: col.copy() for name, col in current.items()} if copy else current
        parts = [*self._sealed, current]
        return {name: np.concatenate([p[name] for p in parts]) for name in self.dtypes}
