"""Plausibility warnings: numbers a scenario may hold but should not hold silently.

A warning does not stop a run (a scenario may model another actor than DPRK); it is printed with
the file, line and field, like an error, so the author either changes the number or says why.

* **Off-ramp capacity.** TRM Labs (via CoinDesk; ``shared/data/incidents.md``) estimates that DPRK
  would need to cash out about $51 M a month through OTC brokers: off-ramp capacity is a real
  constraint on how fast a theft gets out. An OTC desk, or a capacity pool, with no capacity at all,
  or more than :data:`TOLERATED` times that, is flagged unless its ``capacity_note`` / ``note``
  says where the number comes from.
"""

from __future__ import annotations

from pathlib import Path

from .loader import Problem, load_data
from .schema import OtcVenue, Scenario

DPRK_OTC_USD_PER_MONTH = 51e6  # TRM Labs via CoinDesk: what DPRK would need to cash out a month through OTC brokers
TOLERATED = 10.0  # times that, per desk or pool, before a capacity needs a note


def warnings(scenario: Scenario) -> list[tuple[tuple[str, ...], str]]:
    """``(field path, message)`` for every implausible number that no note explains."""
    out: list[tuple[tuple[str, ...], str]] = []
    documented = f"DPRK's documented need is ~${DPRK_OTC_USD_PER_MONTH / 1e6:.0f} M a month through OTC brokers (TRM Labs)"
    for name, venue in scenario.venues.items():
        if not isinstance(venue, OtcVenue) or venue.capacity_pool is not None or venue.capacity_note:
            continue
        if venue.capacity_usd_per_day is None:
            out.append((("venues", name), f"warning: unlimited off-ramp capacity; {documented}: give "
                                          "capacity_usd_per_day or a capacity_pool, or say why in capacity_note"))
        elif venue.capacity_usd_per_day * 30 > TOLERATED * DPRK_OTC_USD_PER_MONTH:
            out.append((("venues", name, "capacity_usd_per_day"), _too_much(venue.capacity_usd_per_day, documented,
                                                                            "capacity_note")))
    for name, pool in scenario.capacity_pools.items():
        if not pool.note and pool.usd_per_day * 30 > TOLERATED * DPRK_OTC_USD_PER_MONTH:
            out.append((("capacity_pools", name, "usd_per_day"), _too_much(pool.usd_per_day, documented, "note")))
    return out


def _too_much(per_day: float, documented: str, field: str) -> str:
    ratio = per_day * 30 / DPRK_OTC_USD_PER_MONTH
    return (f"warning: converts ${per_day * 30 / 1e6:,.0f} M a month, {ratio:.0f}x what {documented}; "
            f"lower it, or say why in {field}")


def located_warnings(path: str | Path, scenario: Scenario) -> list[Problem]:
    """The warnings of a scenario loaded from ``path``, with the line of each field."""
    found = warnings(scenario)
    if not found:
        return []
    _, doc = load_data(path)
    return [Problem(*doc.locate(loc), ".".join(loc), message) for loc, message in found]
