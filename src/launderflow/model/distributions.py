"""Delay distributions: small objects that draw many samples at once from an explicit generator.

A scenario names a distribution for every hop delay (``{dist: exponential, mean: 2h}``).
Each is a frozen object with ``sample(rng, n)`` returning a float64 array in hours, so a hop over
a thousand wallets draws its thousand delays in one numpy call. Randomness always comes from the
generator passed in; nothing here holds a global state. Each kind registers under its schema
``dist`` tag in :data:`DISTRIBUTIONS` and builds itself from its spec (``from_spec``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from .registry import Registry


class Distribution(Protocol):
    """Anything that draws ``n`` non-negative delays (hours) and knows its mean."""

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray: ...

    @property
    def mean(self) -> float: ...


DISTRIBUTIONS: Registry[Distribution] = Registry("delay distribution", "dist")


@DISTRIBUTIONS.register("fixed")
@dataclass(frozen=True)
class Fixed:
    value: float

    @classmethod
    def from_spec(cls, spec: Any) -> Fixed:
        return cls(spec.value)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.full(n, self.value, dtype=np.float64)

    @property
    def mean(self) -> float:
        return self.value


@DISTRIBUTIONS.register("exponential")
@dataclass(frozen=True)
class Exponential:
    mean_value: float

    @classmethod
    def from_spec(cls, spec: Any) -> Exponential:
        return cls(spec.mean)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.mean_value == 0:
            return np.zeros(n)
        return rng.exponential(self.mean_value, size=n)

    @property
    def mean(self) -> float:
        return self.mean_value


@DISTRIBUTIONS.register("uniform")
@dataclass(frozen=True)
class Uniform:
    low: float
    high: float

    @classmethod
    def from_spec(cls, spec: Any) -> Uniform:
        return cls(spec.low, spec.high)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.uniform(self.low, self.high, size=n)

    @property
    def mean(self) -> float:
        return 0.5 * (self.low + self.high)


@DISTRIBUTIONS.register("lognormal")
@dataclass(frozen=True)
class LogNormal:
    """Log-normal parameterised by its median and the sigma of the underlying normal.

    The median is what incident reports quote ("about two hours"), so it is the natural knob.
    """

    median: float
    sigma: float

    @classmethod
    def from_spec(cls, spec: Any) -> LogNormal:
        return cls(spec.median, spec.sigma)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.median == 0:
            return np.zeros(n)
        return rng.lognormal(np.log(self.median), self.sigma, size=n)

    @property
    def mean(self) -> float:
        return float(self.median * np.exp(0.5 * self.sigma**2))


def from_spec(spec: Any) -> Distribution:
    """Build a distribution from a scenario delay spec (anything with ``dist`` and its fields)."""
    return DISTRIBUTIONS.build(spec)
