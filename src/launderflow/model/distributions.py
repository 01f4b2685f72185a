"""Delay distributions: small objects that draw many samples at once from an explicit generator.

A scenario names a distribution for every hop delay (``{dist: exponential, mean: 2h}``).
Each is a frozen object with ``sample(rng, n)`` returning a float64 array in hours, so a hop over
a thousand wallets draws its thousand delays in one numpy call. Randomness always comes from the
generator passed in; nothing here holds a global state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


class Distribution(Protocol):
    """Anything that draws ``n`` non-negative delays (hours) and knows its mean."""

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray: ...

    @property
    def mean(self) -> float: ...


@dataclass(frozen=True)
class Fixed:
    value: float

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.full(n, self.value, dtype=np.float64)

    @property
    def mean(self) -> float:
        return self.value


@dataclass(frozen=True)
class Exponential:
    mean_value: float

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.mean_value == 0:
            return np.zeros(n)
        return rng.exponential(self.mean_value, size=n)

    @property
    def mean(self) -> float:
        return self.mean_value


@dataclass(frozen=True)
class Uniform:
    low: float
    high: float

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.uniform(self.low, self.high, size=n)

    @property
    def mean(self) -> float:
        return 0.5 * (self.low + self.high)


@dataclass(frozen=True)
class LogNormal:
    """Log-normal parameterised by its median and the sigma of the underlying normal.

    The median is what incident reports quote ("about two hours"), so it is the natural knob.
    """

    median: float
    sigma: float

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.median == 0:
            return np.zeros(n)
        return rng.lognormal(np.log(self.median), self.sigma, size=n)

    @property
    def mean(self) -> float:
        return float(self.median * np.exp(0.5 * self.sigma**2))


def from_spec(spec: object) -> Distribution:
    """Build a distribution from a scenario delay spec (anything with ``dist`` and its fields)."""
    kind = getattr(spec, "dist")
    if kind == "fixed":
        return Fixed(spec.value)  # type: ignore[attr-defined]
    if kind == "exponential":
        return Exponential(spec.mean)  # type: ignore[attr-defined]
    if kind == "uniform":
        return Uniform(spec.low, spec.high)  # type: ignore[attr-defined]
    if kind == "lognormal":
        return LogNormal(spec.median, spec.sigma)  # type: ignore[attr-defined]
    raise ValueError(f"unknown distribution {kind!r}")
