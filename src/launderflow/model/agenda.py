"""The agenda: which lots move at which clock tick, driven by one simpy process.

Lots are not simpy processes. Each lot has a ``ready`` time; the agenda is a *calendar queue* of
``(tick, lot)`` entries, and a single simpy process sleeps until the next due tick and hands the
whole batch to a callback. A fan-out over 10,000 wallets with random delays costs one simpy event
per distinct tick, not one per wallet: simpy's work grows with the ticks, not the transfers (what a
batch costs is then its numpy calls; see docs/explanation/benchmark.md).

Entries are filed by window (``WINDOW`` ticks) as unsorted chunks; when the clock reaches a window
its chunks are sorted once (stable, so lots scheduled earlier come first at equal ticks), and due
ticks are then served by slicing. Entries for the window being served are inserted into it in
place (after those already there at the same tick: a linear merge, not a new sort). Entries go
stale when a lot is frozen, merged or rescheduled in the meantime; they are filtered when served
(``ready`` no longer matches), never searched for.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Generator
from typing import Any

import numpy as np
import simpy

WINDOW = 64


class Agenda:
    """Due lots keyed by integer clock tick; ``tick * resolution`` is the time."""

    def __init__(self, env: simpy.Environment, resolution: float, ready: Callable[[], np.ndarray],
                 on_due: Callable[[np.ndarray, float], None]):
        self.env = env
        self.resolution = resolution
        self._ready = ready
        self._on_due = on_due
        self._windows: list[int] = []  # heap of future windows with entries
        self._future: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
        self._window = -1  # the window being served
        self._ticks = np.empty(0, dtype=np.int64)  # its entries, sorted by tick
        self._ids = np.empty(0, dtype=np.int64)
        self._cursor = 0
        self._wake: simpy.Event | None = None
        self._sleep_until: int | None = None
        self._in_batch = False
        self._deferred: list[tuple[np.ndarray, np.ndarray]] = []
        self.batches = 0

    def tick_of(self, times: np.ndarray) -> np.ndarray:
        """Ticks at or after ``times`` (a move never happens before it is due)."""
        t = np.true_divide(times, self.resolution)
        if np.ndim(t) == 0:
            return np.ceil(t - 1e-9).astype(np.int64)
        t -= 1e-9  # in place: the same arithmetic as the scalar path, without temporaries
        return np.ceil(t, out=t).astype(np.int64)

    def schedule(self, ids: np.ndarray, ticks: np.ndarray) -> None:
        """Put lots on the agenda at their ticks (their ``ready`` must already be ``tick * resolution``).

        While a batch is being processed, requests are collected and filed once at its end.
        """
        if len(ids) == 0:
            return
        if self._in_batch:
            self._deferred.append((ids, ticks))
            return
        self._file_all(ids, ticks)

    def _file_all(self, ids: np.ndarray, ticks: np.ndarray) -> None:
        windows = ticks // WINDOW
        lo, hi = int(windows.min()), int(windows.max())
        if lo <= self._window:
            now = windows <= self._window
            self._merge_current(ids[now], ticks[now])
            ids, ticks, windows = ids[~now], ticks[~now], windows[~now]
            if len(ids) == 0:
                self._maybe_wake(int(ticks.min()) if len(ticks) else self._next_tick())
                return
            lo = int(windows.min())
        if lo == hi:
            self._file(lo, ids, ticks)
        else:  # one stable sort by window, then slices (a mask per window costs a pass per window)
            order = windows.argsort(kind="stable")
            windows = windows[order]
            cuts = (windows[1:] != windows[:-1]).nonzero()[0] + 1
            bounds = [0, *cuts.tolist(), len(order)]
            for a, b in zip(bounds[:-1], bounds[1:]):
                part = order[a:b]
                self._file(int(windows[a]), ids[part], ticks[part])
        self._maybe_wake(int(ticks.min()))

    def _file(self, window: int, ids: np.ndarray, ticks: np.ndarray) -> None:
        chunks = self._future.get(window)
        if chunks is None:
            self._future[window] = [(ticks, ids)]
            heapq.heappush(self._windows, window)
        else:
            chunks.append((ticks, ids))

    def _merge_current(self, ids: np.ndarray, ticks: np.ndarray) -> None:
        rest_t, rest_i = self._ticks[self._cursor:], self._ids[self._cursor:]
        if len(ticks) > 1 and np.count_nonzero(ticks[1:] < ticks[:-1]):
            order = ticks.argsort(kind="stable")
            ticks, ids = ticks[order], ids[order]
        # Insert the (sorted) newcomers after the entries already there at equal ticks: the same
        # order as a stable sort of the concatenation, for a linear merge instead of a sort.
        m = len(ticks)
        slots = np.searchsorted(rest_t, ticks, side="right") + np.arange(m)  # where each newcomer lands
        old = np.ones(len(rest_t) + m, dtype=bool)
        old[slots] = False
        merged_t = np.empty(len(old), dtype=np.int64)
        merged_i = np.empty(len(old), dtype=np.int64)
        merged_t[slots], merged_i[slots] = ticks, ids
        merged_t[old], merged_i[old] = rest_t, rest_i
        self._ticks, self._ids, self._cursor = merged_t, merged_i, 0

    def _maybe_wake(self, first: int) -> None:
        if self._wake is not None and not self._wake.triggered and (self._sleep_until is None or first < self._sleep_until):
            self._wake.succeed()

    def _next_tick(self) -> int | None:
        """The next due tick, opening the next window when the current one is used up."""
        while self._cursor >= len(self._ticks):
            if not self._windows:
                return None
            window = heapq.heappop(self._windows)
            chunks = self._future.pop(window)
            ticks = np.concatenate([c[0] for c in chunks]) if len(chunks) > 1 else chunks[0][0]
            ids = np.concatenate([c[1] for c in chunks]) if len(chunks) > 1 else chunks[0][1]
            order = ticks.argsort(kind="stable")
            self._window, self._ticks, self._ids, self._cursor = window, ticks[order], ids[order], 0
        return int(self._ticks[self._cursor])

    def _take_due(self, tick: int, when: float) -> np.ndarray:
        """Take the entries at ``tick`` off the agenda; return the lots still due then (``ready ==
        when``: entries of lots rescheduled, frozen or merged since are stale), sorted, once each."""
        end = self._cursor + int(np.searchsorted(self._ticks[self._cursor:], tick, side="right"))
        ids = self._ids[self._cursor:end]
        self._cursor = end
        ready = self._ready()
        return _sorted_unique(ids[ready[ids] == when])

    def run(self) -> Generator[simpy.Event, Any, None]:
        """The simpy process: sleep to the next due tick, hand over its lots, repeat."""
        while True:
            tick = self._next_tick()
            if tick is None:
                self._sleep_until = None
                self._wake = self.env.event()
                yield self._wake
                continue
            when = tick * self.resolution
            if when > self.env.now + 1e-12:
                self._sleep_until = tick
                self._wake = self.env.event()
                yield self.env.any_of([self.env.timeout(when - self.env.now), self._wake])
                if self.env.now + 1e-12 < when:
                    continue  # woken early: something was scheduled before this tick
                if self._next_tick() != tick:
                    continue
            ids = self._take_due(tick, when)
            if len(ids):
                self.batches += 1
                self._in_batch = True
                try:
                    self._on_due(ids, when)
                finally:
                    self._in_batch = False
                if self._deferred:
                    parts, self._deferred = self._deferred, []
                    self._file_all(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))


def _sorted_unique(ids: np.ndarray) -> np.ndarray:
    """``np.unique`` for lot ids (a lot may be on the agenda twice for the same tick), sort-based.

    Sorts ``ids`` in place (the caller's array is a fresh selection)."""
    ids.sort()
    if len(ids) > 1:
        repeat = ids[1:] == ids[:-1]
        if np.count_nonzero(repeat):
            return ids[np.concatenate(([True], ~repeat))]
    return ids
