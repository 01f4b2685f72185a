"""Prices that move: each asset's USD price on the day, beside the theft-day price the book keeps.

The outcome book values every lot at its asset's ``price_usd`` — the price at the theft — so that
value is conserved at every instant and a swap converts at fixed ratios. Victims and agencies
report in the day's dollars: "$30 M seized" on 8 Sep 2022 is that day's value of the seized coins.
This module gives the day's value beside the book's, without touching the book:

* :class:`PricePaths` — each asset's price path for one replication: a dated series from the
  scenario (its points, read by the scenario loader) or a geometric Brownian motion drawn from the
  world's own stream for that asset (``prices:<asset>``), so no other component's random numbers
  change. Between points the log-price is interpolated linearly; before the first point and after
  the last the price is held flat. Assets without a path keep their theft-day price.
* :class:`ExitLog` — every freeze, seizure and cash-out at the instant it happens: time, kind,
  venue, asset, the intervention that caused it (or -1), whether the value was frozen before,
  and its value in theft-day and in the day's dollars.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ..scenario.schema import PricePath, Scenario, price_times
from .columns import ColumnBuffer
from .states import Location

YEAR = 365.25 * 24.0  # hours in a year: the unit of a path's drift and volatility
EXIT_KINDS = ("freeze", "seizure", "cash_out")  # the kinds of the exit log, by code
_KIND_OF = {Location.FROZEN: 0, Location.SEIZED: 1, Location.CASHED_OUT: 2}


def day_price(times: np.ndarray, prices: np.ndarray, at: np.ndarray | float) -> np.ndarray:
    """The price at ``at`` on a path given by its points (increasing ``times``): linear in log-price
    between two points, flat before the first and after the last. Exact at a point and on a flat
    stretch (``p_k * exp(0)``), so a constant path values everything at exactly its price."""
    at = np.asarray(at, dtype=np.float64)
    last = len(times) - 1
    k = np.clip(np.searchsorted(times, at, side="right") - 1, 0, last)
    following = np.minimum(k + 1, last)
    span = times[following] - times[k]
    frac = np.clip((at - times[k]) / np.where(span > 0, span, 1.0), 0.0, 1.0) * (span > 0)
    return prices[k] * np.exp(frac * np.log(prices[following] / prices[k]))


def gbm_points(start_price: float, path: PricePath, horizon: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A geometric Brownian motion from ``start_price`` at time zero, one point every ``path.step``
    up to (at least) the horizon: log-increments N((mu - sigma^2/2) dt, sigma^2 dt), dt in years."""
    steps = max(1, math.ceil(horizon / path.step - 1e-9))
    dt = path.step / YEAR
    mu, sigma = path.drift_per_year, path.volatility_per_year
    increments = (mu - 0.5 * sigma * sigma) * dt + sigma * math.sqrt(dt) * rng.standard_normal(steps)
    prices = start_price * np.exp(np.concatenate(([0.0], np.cumsum(increments))))  # (exactly the start at 0)
    return np.arange(steps + 1) * path.step, prices


class PricePaths:
    """Every asset's price path in one replication (assets without one: fixed at ``price_usd``)."""

    def __init__(self, scenario: Scenario, stream: Callable[[str], np.random.Generator]):
        names = list(scenario.assets)
        self.theft_price = np.array([a.price_usd for a in scenario.assets.values()], dtype=np.float64)
        self.points: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # asset -> (times, prices)
        for name, path in scenario.prices.items():
            i = names.index(name)
            if path.model == "gbm":
                self.points[i] = gbm_points(float(self.theft_price[i]), path, scenario.clock.horizon, stream(f"prices:{name}"))
            else:
                times = np.array(price_times(path, scenario.clock.start), dtype=np.float64)
                prices = np.array([p.price_usd for p in path.points or ()], dtype=np.float64)
                self.points[i] = (times, prices)
        self.moving = bool(self.points)

    def ratio(self, assets: np.ndarray, at: float) -> np.ndarray:
        """Each asset's price at ``at`` over its theft-day price: a lot's day value over its book value."""
        out = np.ones(len(assets), dtype=np.float64)
        for i, (times, prices) in self.points.items():
            mine = assets == i
            if np.count_nonzero(mine):
                out[mine] = float(day_price(times, prices, at)) / self.theft_price[i]
        return out

    def table(self) -> dict[str, np.ndarray] | None:
        """The paths' points (time, asset, price_usd), for the replication's record; None if no price moves."""
        if not self.moving:
            return None
        parts = [(t, np.full(len(t), i, dtype=np.int16), p) for i, (t, p) in sorted(self.points.items())]
        return {"time": np.concatenate([p[0] for p in parts]), "asset": np.concatenate([p[1] for p in parts]),
                "price_usd": np.concatenate([p[2] for p in parts])}


class ExitLog:
    """Freezes, seizures and cash-outs as they happen, valued at the theft's and at the day's prices.

    One row per event and asset (and per whether the value was frozen before: a seizure of frozen
    value is logged as a seizure with ``was_frozen``). ``cause`` is set by an intervention while it
    acts, so what a seizure took can be read per intervention.
    """

    def __init__(self, prices: PricePaths):
        self.prices = prices
        self.cause = -1  # the intervention acting now (-1: none)
        self.rows = ColumnBuffer({"time": np.float64, "kind": np.int8, "venue": np.int16, "asset": np.int16,
                                  "action": np.int16, "was_frozen": np.bool_, "value_usd": np.float64,
                                  "day_usd": np.float64}, capacity=256)

    def note(self, now: float, location: Location, venue: int, assets: np.ndarray, values: np.ndarray,
             was: np.ndarray) -> None:
        """Lots of ``assets`` worth ``values`` (theft-day USD) left play into ``location`` from
        locations ``was`` (one entry per lot)."""
        kind = _KIND_OF.get(location)
        if kind is None or len(values) == 0:
            return
        keys, value = self.groups(assets, values, was)
        asset = (keys // 2).astype(np.int16)
        day = value * self.prices.ratio(asset, now) if self.prices.moving else value
        self.rows.append(len(keys), time=now, kind=kind, venue=venue, asset=asset, action=self.cause,
                         was_frozen=(keys % 2).astype(bool), value_usd=value, day_usd=day)

    @staticmethod
    def groups(assets: np.ndarray, values: np.ndarray, was: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The distinct keys ``2 * asset + was frozen``, sorted, and each one's value (summed in lot
        order). The compiled engine computes the same in a kernel."""
        key = assets.astype(np.int64) * 2 + (was == int(Location.FROZEN))
        keys, group = np.unique(key, return_inverse=True)
        return keys, np.bincount(group, weights=values, minlength=len(keys))
