"""A first-come, first-served capacity in USD per hour: an OTC desk's, or a pool shared by desks.

A deposit of value v takes v / rate hours of the capacity's time, after every deposit before it, so a
large theft queues at a scarce off-ramp — and stays on the chain, inside the desk, until its turn.
A pool (``capacity_pools`` in a scenario) is one such queue shared by several desks and every theft.
A desk books deposits only as far ahead as its ``queue`` (:meth:`Capacity.room`): the rest stays in
the launderer's wallets and tries again later — value waits for scarce off-ramps with the launderer,
not inside the desk.
"""

from __future__ import annotations

from collections import deque

import numpy as np


class Capacity:
    def __init__(self, usd_per_day: float):
        self.rate_per_hour = usd_per_day / 24.0
        self.free_at = 0.0  # when the queue is worked through
        self.served_usd = 0.0
        # Claims of value on its way here (an exposure-aware launderer converted it for this
        # off-ramp): [expiry, USD] pairs, oldest first (time only moves on and every claim lasts
        # as long, so they arrive in expiry order); deposits use them up, time ends them.
        self.claims: deque[list[float]] = deque()

    def claimed(self, now: float) -> float:
        """USD claimed by value still on its way (claims not yet used up or expired)."""
        while self.claims and self.claims[0][0] <= now:
            self.claims.popleft()
        return sum(c[1] for c in self.claims)

    def booked_hours(self, now: float, claims: bool = True) -> float:
        """Hours of work booked ahead of ``now`` (the queue, and the claims of value on its way)."""
        return max(self.free_at - now, 0.0) + (self.claimed(now) / self.rate_per_hour if claims else 0.0)

    def claim(self, now: float, usd: float, lasts: float) -> None:
        """Value converted for this capacity will arrive within ``lasts`` hours: hold room for it."""
        if usd > 0:
            self.claims.append([now + lasts, usd])

    def room(self, now: float, values: np.ndarray, horizon: float, claims: bool = False) -> np.ndarray:
        """Which of these deposits (in order) can be booked now: those that start within ``horizon``
        hours of now (``claims``: counting the value already on its way as booked). An idle capacity
        takes at least the first deposit, however large."""
        if len(values) == 0:
            return np.zeros(0, dtype=bool)
        backlog = max(self.free_at - now, 0.0)
        if claims:
            backlog += self.claimed(now) / self.rate_per_hour
        starts = backlog + np.concatenate(([0.0], np.cumsum(values[:-1] / self.rate_per_hour)))
        fits = starts <= horizon + 1e-9
        if len(values) and backlog <= 1e-9:
            fits[0] = True
        return fits

    def serve(self, now: float, values: np.ndarray) -> np.ndarray:
        """When each of these deposits (in order) has been served."""
        finish = max(now, self.free_at) + np.cumsum(values / self.rate_per_hour)
        if len(finish):
            self.free_at = float(finish[-1])
            self.served_usd += float(values.sum())
        return finish

    def use_claims(self, usd: float) -> None:
        """A deposit arrived: it uses up the claims made for it (oldest first)."""
        while usd > 0 and self.claims:
            take = min(usd, self.claims[0][1])
            self.claims[0][1] -= take
            usd -= take
            if self.claims[0][1] <= 1e-9:
                self.claims.popleft()
