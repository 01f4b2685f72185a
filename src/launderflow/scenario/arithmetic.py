"""Arithmetic for upper bounds that may be astronomically large: infinity instead of overflow.

``inf * 0`` is 0 here (no lot, no cost). Used by the budget walk (``budget.py``) and by the budget
terms each venue kind declares on its schema model (``schema.py``).
"""

from __future__ import annotations

import math


def mul(*xs: float) -> float:
    out = 1.0
    for x in xs:
        if x == 0:
            return 0.0
        out *= x
    return out


def div(a: float, b: float) -> float:
    if a == 0:
        return 0.0
    if b == 0 or not math.isfinite(a) and not math.isfinite(b):
        return math.inf
    return a / b


def to_float(x: int | float) -> float:
    try:
        return float(x)
    except OverflowError:  # an integer beyond float range
        return math.inf


def floor(x: float) -> float:
    return float(math.floor(x)) if math.isfinite(x) else x


def add(*xs: float) -> float:
    return math.fsum(xs) if all(math.isfinite(x) for x in xs) else math.inf
