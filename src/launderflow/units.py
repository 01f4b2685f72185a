"""Durations and money amounts as scenario authors write them.

Scenario files say ``6h``, ``15min`` or ``30d`` rather than bare numbers, because a bare number
hides its unit and unit slips are the most common modelling error. Internally the simulation
clock runs in hours (``HOUR = 1.0``); every duration is converted once, at load time.
"""

from __future__ import annotations

import re

SECOND = 1.0 / 3600.0
MINUTE = 1.0 / 60.0
HOUR = 1.0
DAY = 24.0
WEEK = 7 * DAY

UNITS: dict[str, float] = {
    "s": SECOND,
    "sec": SECOND,
    "min": MINUTE,
    "m": MINUTE,
    "h": HOUR,
    "hr": HOUR,
    "d": DAY,
    "w": WEEK,
}

_DURATION = re.compile(r"^\s*([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([a-z]+)\s*$")


def parse_duration(text: str | int | float) -> float:
    """Return a duration in hours from ``"90min"``, ``"6h"``, ``"2.5d"``, ``"1w"`` or a number of hours."""
    if isinstance(text, bool):
        raise ValueError("a duration must be a number of hours or a string like '6h', '15min', '30d'")
    if isinstance(text, (int, float)):
        try:
            value = float(text)
        except OverflowError:
            raise ValueError("a duration must be finite and >= 0") from None
    else:
        match = _DURATION.match(text)
        if match is None or match.group(2) not in UNITS:
            raise ValueError(
                f"{text!r} is not a duration (write a number and a unit: "
                f"{', '.join(sorted(UNITS))}, e.g. '6h', '15min', '30d')"
            )
        try:
            value = float(match.group(1)) * UNITS[match.group(2)]
        except OverflowError:
            raise ValueError("a duration must be finite and >= 0") from None
    if value != value or value < 0 or value == float("inf"):
        raise ValueError("a duration must be finite and >= 0")
    return value


def format_duration(hours: float) -> str:
    """Short human form of a duration in hours (``'36h'`` -> ``'1.5d'``)."""
    if hours >= DAY and hours % 1 == 0 and hours % DAY == 0:
        return f"{hours / DAY:g}d"
    if hours >= DAY:
        return f"{hours / DAY:.3g}d"
    if hours >= 1:
        return f"{hours:.3g}h"
    return f"{hours * 60:.3g}min"
