"""The agenda: which lots move at which clock tick, driven by one simpy process.

Lots are not simpy processes. Each lot has a ``ready`` time; the agenda keeps, for every future
tick, the ids of the lots due then, and a single simpy process sleeps until the next due tick and
hands the whole batch to a callback. A fan-out over 10,000 wallets with random delays therefore
costs one simpy event per distinct tick, not one per wallet — the batching that lets the model
beat a one-event-per-transfer design. Entries go stale when a lot is frozen or merged in the
meantime; they are filtered when popped (``ready`` no longer matches), never searched for.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Generator
from typing import Any

import numpy as np
import simpy


class Agenda:
    """Due lots keyed by integer clock tick; ``tick * resolution`` is the time."""

    def __init__(self, env: simpy.Environment, resolution: float, ready: Callable[[], np.ndarray],
                 on_due: Callable[[np.ndarray, float], None]):
        self.env = env
        self.resolution = resolution
        self._ready = ready
        self._on_due = on_due
        self._heap: list[int] = []
        self._due: dict[int, list[np.ndarray]] = {}
        self._wake: simpy.Event | None = None
        self._sleep_until: int | None = None
        self.batches = 0

    def tick_of(self, times: np.ndarray) -> np.ndarray:
        """Ticks at or after ``times`` (a move never happens before it is due)."""
        return np.ceil(np.asarray(times) / self.resolution - 1e-9).astype(np.int64)

    def time_of(self, ticks: np.ndarray | int) -> np.ndarray | float:
        return np.asarray(ticks) * self.resolution if np.ndim(ticks) else float(ticks) * self.resolution

    def schedule(self, ids: np.ndarray, ticks: np.ndarray) -> None:
        """Put lots on the agenda at their ticks (their ``ready`` must already be ``tick * resolution``)."""
        if len(ids) == 0:
            return
        if np.all(ticks == ticks[0]):
            groups = [(int(ticks[0]), ids)]
        else:
            order = np.argsort(ticks, kind="stable")
            sorted_ticks = ticks[order]
            cuts = np.flatnonzero(np.diff(sorted_ticks)) + 1
            starts = np.concatenate(([0], cuts))
            groups = [(int(sorted_ticks[s]), part) for s, part in zip(starts, np.split(ids[order], cuts))]
        for tick, part in groups:
            bucket = self._due.get(tick)
            if bucket is None:
                self._due[tick] = [part]
                heapq.heappush(self._heap, tick)
            else:
                bucket.append(part)
        first = groups[0][0] if len(groups) == 1 else int(ticks.min())
        if self._wake is not None and not self._wake.triggered and (self._sleep_until is None or first < self._sleep_until):
            self._wake.succeed()

    def run(self) -> Generator[simpy.Event, Any, None]:
        """The simpy process: sleep to the next due tick, hand over its lots, repeat."""
        while True:
            if not self._heap:
                self._sleep_until = None
                self._wake = self.env.event()
                yield self._wake
                continue
            tick = self._heap[0]
            when = tick * self.resolution
            if when > self.env.now + 1e-12:
                self._sleep_until = tick
                self._wake = self.env.event()
                yield self.env.any_of([self.env.timeout(when - self.env.now), self._wake])
                if self._heap[0] != tick or self.env.now + 1e-12 < when:
                    continue
            heapq.heappop(self._heap)
            parts = self._due.pop(tick)
            ids = parts[0] if len(parts) == 1 else np.concatenate(parts)
            ready = self._ready()
            ids = ids[ready[ids] == when]
            if len(ids):
                self.batches += 1
                self._on_due(np.unique(ids), when)
