"""A first-come, first-served capacity in USD per hour: an OTC desk's, or a pool shared by desks.

A deposit of value v takes v / rate hours of the capacity's time, after every deposit before it, so a
large theft queues at a scarce off-ramp — and stays on the chain, inside the desk, until its turn.
A pool (``capacity_pools`` in a scenario) is one such queue shared by several desks and every theft.
"""

from __future__ import annotations

import numpy as np


class Capacity:
    def __init__(self, usd_per_day: float):
        self.rate_per_hour = usd_per_day / 24.0
        self.free_at = 0.0  # when the queue is worked through
        self.served_usd = 0.0

    def serve(self, now: float, values: np.ndarray) -> np.ndarray:
        """When each of these deposits (in order) has been served."""
        finish = max(now, self.free_at) + np.cumsum(values / self.rate_per_hour)
        if len(finish):
            self.free_at = float(finish[-1])
            self.served_usd += float(values.sum())
        return finish
