"""Every number launderflow reports about a replication, in one registry.

A :class:`Metric` is a family of numbers (``final_share``, ``share_at``, ``venue_frozen_usd`` …)
with its parameters (a state, a time, a venue, an intervention, a share), its unit, a label for
people, which direction is better for the investigators, and the function that computes it from
one replication. Binding the parameters gives a :class:`Measure` — one column of a comparison,
one target of a calibration or a backtest, one row of a report:

    >>> m = METRICS["share_at"](state="traced", at=264.0)
    >>> m.key, m.label
    ('traced_share_at_11d', 'traced at 11 d')

Everything that prints, stores, compares or scores a metric reads it from here: the summary's
per-replication records, the ``summary`` view of ``query``, ``compare`` and its tables, the
HTML report, the sensitivity figure, ``calibrate`` and ``backtest`` targets. Adding a metric is
one :func:`register` call below (plus its test); its targets-file form follows from its
parameters.

Two semantics are fixed here for every consumer:

* **a time never reached** within the horizon (e.g. half the value never cashed out) is NaN,
  "never". Statistics over replications either leave it out and count it (summary, compare) or,
  when a target is scored (calibrate, backtest), count it as later than any time;
* **a share at a time** is exact at that instant (read from the outcome book's change log), not
  snapped to the timeline grid.

The outcome book logs every change of the 12 (location, knowledge) cells; a timeline on any grid
is a cumulative sum read at the grid points, so it is exact at every grid instant.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .model.prices import EXIT_KINDS, day_price
from .model.simulate import Replication
from .model.states import LOCATIONS, N_CELLS, Location
from .scenario.schema import Scenario

# The shares victims publish ("x % traceable, y % dark, z % frozen"), under names that cannot be
# confused with the two axes: every instant they sum to the stolen value. ``reported_traceable``:
# the value's current location is known (traced, with the launderer, inside a venue, or spent on
# fees the investigators saw); ``reported_dark``: its location is not known (dark, with the
# launderer, inside a venue or in fees) or it has left the chain through an off-ramp (cashed out,
# traced or not); ``reported_frozen``: frozen or seized.
REPORTED: tuple[str, ...] = ("reported_traceable", "reported_dark", "reported_frozen")
STATES: tuple[str, ...] = (*LOCATIONS, "traced", "dark", *REPORTED)
DAY = 24.0
_IN_PLAY = [int(Location.LAUNDERER), int(Location.VENUE), int(Location.FEES)]
_OFF_CHAIN = int(Location.CASHED_OUT)
_STOPPED = [int(Location.FROZEN), int(Location.SEIZED)]


# --- reading a replication's outcome book -------------------------------------------------------


def cell_totals_at(rep: Replication, times: np.ndarray) -> np.ndarray:
    """Value in each of the 12 cells at each time (after all changes at that time): (len(times), 12)."""
    cum = np.vstack([np.zeros((1, N_CELLS)), np.cumsum(rep.log_delta, axis=0)])
    rows = np.searchsorted(rep.log_time, times, side="right")
    return cum[rows]


def state_values(cells: np.ndarray) -> np.ndarray:
    """Collapse the 12 cells to the 11 states: 6 locations, traced and dark, then the 3 reported shares."""
    cells = np.atleast_2d(cells)
    dark_cells, traced_cells = cells[:, 0::2], cells[:, 1::2]
    by_location = dark_cells + traced_cells
    traced = traced_cells.sum(axis=1)
    dark = dark_cells.sum(axis=1)
    traceable = traced_cells[:, _IN_PLAY].sum(axis=1)
    unknown = dark_cells[:, _IN_PLAY].sum(axis=1) + by_location[:, _OFF_CHAIN]
    stopped = by_location[:, _STOPPED].sum(axis=1)
    return np.column_stack([by_location, traced, dark, traceable, unknown, stopped])


def timeline_grid(horizon: float, step: float) -> np.ndarray:
    n = int(np.floor(horizon / step + 1e-9))
    grid = np.arange(n + 1) * step
    return grid if grid[-1] >= horizon - 1e-9 else np.append(grid, horizon)


def timeline(rep: Replication, grid: np.ndarray) -> np.ndarray:
    """(len(grid), 11) state values in USD (the order of :data:`STATES`)."""
    return state_values(cell_totals_at(rep, grid))


def time_to_share(rep: Replication, location: Location, share: float) -> float:
    """First time the value in ``location`` reaches ``share`` of the stolen value (NaN: never)."""
    col = int(location) * 2
    cum = np.cumsum(rep.log_delta[:, col] + rep.log_delta[:, col + 1])
    hit = np.flatnonzero(cum >= share * rep.stolen_usd * (1 - 1e-12))
    return float(rep.log_time[hit[0]]) if len(hit) else float("nan")


def final_states(rep: Replication) -> dict[str, float]:
    """USD in each of the 11 states at the horizon (float round-off of emptied states set to 0)."""
    values = state_values(rep.final_cells)[0]
    values[np.abs(values) < 1e-9 * max(rep.stolen_usd, 1.0)] = 0.0
    return {name: float(v) for name, v in zip(STATES, values)}


def launderer_cost(rep: Replication) -> float:
    """What laundering cost: network fees plus every venue's fees, commissions and haircuts."""
    return rep.network_fees + rep.venue_fees.sum()


def action_names(scenario: Scenario) -> list[str]:
    """Interventions as a replication names them (their own name, or ``kind_index``)."""
    return [a.name or f"{a.kind}_{i}" for i, a in enumerate(scenario.interventions)]


# --- units: how a number reads ------------------------------------------------------------------


def short_usd(value: float) -> str:
    """USD to three significant figures, for tables read by people: $512, $80.3 k, $154 k, $44.5 M,
    $1.46 B (negative values with a leading minus). Files keep every digit."""
    sign, value = ("-" if value < 0 else ""), abs(value)
    for scale, suffix in ((1e9, " B"), (1e6, " M"), (1e3, " k")):
        if value >= scale * 0.9995:  # (what rounds up to 1.00 k is shown as such, not as $1,000)
            x = value / scale
            return f"{sign}${x:.{2 if x < 9.995 else 1 if x < 99.95 else 0}f}{suffix}"
    return unsigned_zero(f"{sign}${value:,.0f}")  # -$0.40 reads $0


def unsigned_zero(text: str) -> str:
    """A number that reads zero carries no sign: ``-0.0 pp``, ``+0.0 pp`` -> ``0.0 pp``;
    ``-$0``, ``+$0`` -> ``$0``; ``-0.0%`` -> ``0.0%``. A value that rounds to zero is shown as
    zero whichever side of it it lies on, the same way in every unit."""
    if text[:1] in "+-" and not any(c in "123456789" for c in text):
        return text[1:]
    return text


def _missing(value: float | None) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


@dataclass(frozen=True)
class Unit:
    """How values of a metric read: the value itself and a difference between two of them, in
    full (files: Markdown, CSV-like tables) and short (terminal tables and the HTML report).

    Whatever reads zero is written without a sign, in every unit and form (:func:`unsigned_zero`):
    a difference of -0.004 pp is ``0.0 pp``, like one of +0.004 pp or exactly 0; a nonzero
    difference keeps its sign (``+1.3 pp``, ``-$2.40 M``)."""

    name: str
    value: Callable[[float], str]
    difference: Callable[[float], str]
    short_value: Callable[[float], str] | None = None
    short_difference: Callable[[float], str] | None = None

    def format(self, value: float | None, missing: str = "—") -> str:
        return missing if _missing(value) else unsigned_zero(self.value(float(value)))  # type: ignore[arg-type]

    def format_diff(self, value: float | None, missing: str = "—") -> str:
        return missing if _missing(value) else unsigned_zero(self.difference(float(value)))  # type: ignore[arg-type]

    def short(self, value: float | None, missing: str = "—") -> str:
        if _missing(value) or math.isinf(value):  # type: ignore[arg-type]
            return missing
        return unsigned_zero((self.short_value or self.value)(float(value)))  # type: ignore[arg-type]

    def short_diff(self, value: float | None, missing: str = "—") -> str:
        if _missing(value) or math.isinf(value):  # type: ignore[arg-type]
            return missing
        return unsigned_zero((self.short_difference or self.difference)(float(value)))  # type: ignore[arg-type]


SHARE = Unit("share", lambda v: f"{v:.1%}", lambda v: f"{v * 100:+.1f} pp")
USD = Unit("usd", lambda v: f"{'-' if v < 0 else ''}${abs(v):,.0f}", lambda v: f"{'+' if v >= 0 else '-'}${abs(v):,.0f}",
           short_usd, lambda v: ("+" if v >= 0 else "") + short_usd(v))  # $44.5 M, not $44,473,936
DAYS = Unit("days", lambda v: f"{v:.1f}", lambda v: f"{v:+.1f}")
COUNT = Unit("count", lambda v: f"{v:,.0f}", lambda v: f"{v:+,.0f}")
RATIO = Unit("ratio", lambda v: f"{v:.2f}x", lambda v: f"{v:+.2f}x")


# --- parameters -----------------------------------------------------------------------------------


def _duration_label(hours: float) -> str:
    return f"{hours / 24:g}d" if hours % 24 == 0 else f"{hours:g}h"


@dataclass(frozen=True)
class Param:
    """A metric parameter: how it is named in a key and read by people."""

    name: str
    key: Callable[[Any], str]
    label: Callable[[Any], str]


PARAMS: dict[str, Param] = {
    "state": Param("state", str, lambda v: str(v).replace("_", " ")),
    "at": Param("at", _duration_label, lambda v: _duration_label(v).replace("d", " d").replace("h", " h")),
    "venue": Param("venue", str, str),
    "intervention": Param("intervention", str, str),
    "share": Param("share", lambda v: f"{v * 100:g}pct", lambda v: f"{v:.0%}"),
    "asset": Param("asset", str, str),
    "function": Param("function", str, lambda v: str(v).replace("_", " ")),
    "start": Param("start", _duration_label, lambda v: _duration_label(v).replace("d", " d").replace("h", " h")),
}


# --- the registry -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """A family of numbers computed from one replication.

    ``compute(rep, scenario, **params)`` gives the value; ``key`` and ``label`` are templates
    filled with the parameters' key and label forms (``{state}_share_at_{at}``). ``better`` says
    which direction favours the investigators (``higher``, ``lower`` or None: neither). ``target``
    says whether facts can be stated in it (calibrate, backtest). A time metric whose value can be
    "never" (NaN) gives ``never_bound``: what a never is at least, when a distance needs a number
    (the horizon).
    """

    name: str
    unit: Unit
    key: str
    label: str
    better: str | Callable[[Mapping[str, Any]], str | None] | None
    compute: Callable[..., float]
    params: tuple[str, ...] = ()
    doc: str = ""
    target: bool = True
    never_bound: Callable[[Scenario], float] | None = None  # a time never reached is at least this (scoring)

    def __call__(self, **params: Any) -> Measure:
        missing = [p for p in self.params if p not in params]
        extra = [p for p in params if p not in self.params]
        if missing or extra:
            raise TypeError(f"metric {self.name} takes {', '.join(self.params) or 'no parameters'}"
                            f" (missing: {', '.join(missing) or '-'}; unknown: {', '.join(extra) or '-'})")
        return Measure(self, tuple((p, params[p]) for p in self.params))


@dataclass(frozen=True)
class Measure:
    """A metric with its parameters bound: one column, one target, one row."""

    metric: Metric
    params: tuple[tuple[str, Any], ...]

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.params)

    @property
    def key(self) -> str:
        return self.metric.key.format(**{p: PARAMS[p].key(v) for p, v in self.params})

    @property
    def label(self) -> str:
        return self.metric.label.format(**{p: PARAMS[p].label(v) for p, v in self.params})

    @property
    def unit(self) -> Unit:
        return self.metric.unit

    @property
    def better(self) -> str | None:
        better = self.metric.better
        return better(self.kwargs) if callable(better) else better

    def value(self, rep: Replication, scenario: Scenario) -> float:
        return float(self.metric.compute(rep, scenario, **self.kwargs))

    def values(self, reps: Sequence[Replication], scenario: Scenario) -> np.ndarray:
        return np.array([self.value(rep, scenario) for rep in reps], dtype=np.float64)

    def describe(self) -> str:
        """``venue_frozen_usd(offshore_exchange)`` and the like (the targets-file form)."""
        args = [PARAMS[p].key(v) if p in ("at", "start") else (f"{v:g}" if p == "share" else str(v)) for p, v in self.params]
        return f"{self.metric.name}({', '.join(args)})" if args else self.metric.name


METRICS: dict[str, Metric] = {}


def register(metric: Metric) -> Metric:
    """Add a metric to the registry (its name must be new, its parameters known)."""
    if metric.name in METRICS:
        raise ValueError(f"metric {metric.name!r} is already registered")
    unknown = [p for p in metric.params if p not in PARAMS]
    if unknown:
        raise ValueError(f"metric {metric.name!r}: unknown parameter(s) {', '.join(unknown)}")
    METRICS[metric.name] = metric
    return metric


def measure(key: str) -> Measure:
    """The measure whose key is ``key`` among the parameterless metrics and the final states
    (``traced_share``, ``launderer_cost_usd``, ``days_to_50pct_cash_out`` …)."""
    for m in (*[METRICS["final_share"](state=s) for s in STATES], *[METRICS["final_usd"](state=s) for s in STATES],
              *[METRICS[n]() for n, mt in METRICS.items() if not mt.params],
              METRICS["days_to_cash_out_share"](share=0.5)):
        if m.key == key:
            return m
    raise KeyError(f"no measure with key {key!r}")


_BETTER_FOR_INVESTIGATORS = {"traced": "higher", "frozen": "higher", "seized": "higher",
                             "cashed_out": "lower", "dark": "lower", "reported_traceable": "higher",
                             "reported_dark": "lower", "reported_frozen": "higher"}


def _state_better(params: Mapping[str, Any]) -> str | None:
    return _BETTER_FOR_INVESTIGATORS.get(params["state"])


def _venue_index(scenario: Scenario, venue: str) -> int:
    return list(scenario.venues).index(venue)


def _share_at(rep: Replication, scenario: Scenario, state: str, at: float) -> float:
    return float(timeline(rep, np.array([float(at)]))[0][STATES.index(state)] / rep.stolen_usd)


def _days_to_cash_out(rep: Replication, scenario: Scenario, share: float) -> float:
    return time_to_share(rep, Location.CASHED_OUT, share) / DAY


register(Metric("final_share", SHARE, "{state}_share", "{state}", _state_better,
                lambda rep, sc, state: final_states(rep)[state] / rep.stolen_usd, ("state",),
                "share of the stolen value in a state at the horizon"))
register(Metric("final_usd", USD, "{state}_usd", "{state} (USD)", _state_better,
                lambda rep, sc, state: final_states(rep)[state], ("state",),
                "USD in a state at the horizon", target=False))
register(Metric("share_at", SHARE, "{state}_share_at_{at}", "{state} at {at}", _state_better, _share_at,
                ("state", "at"), "share of the stolen value in a state at a time (exact, not on a grid)"))
register(Metric("days_to_cash_out_share", DAYS, "days_to_{share}_cash_out", "days to {share} cashed out", "higher",
                _days_to_cash_out, ("share",),
                "days from time zero until a share of the stolen value was cashed out (never: NaN)",
                never_bound=lambda scenario: scenario.clock.horizon / DAY))
register(Metric("launderer_cost_usd", USD, "launderer_cost_usd", "launderer cost (USD)", None,
                lambda rep, sc: launderer_cost(rep), (),
                "network fees plus every venue's fees, commissions and haircuts", target=False))
register(Metric("seized_usd", USD, "seized_usd", "seized (USD)", "higher",
                lambda rep, sc: final_states(rep)["seized"], (), "USD seized at the horizon (all seizures)"))
register(Metric("frozen_usd", USD, "frozen_usd", "frozen (USD)", "higher",
                lambda rep, sc: final_states(rep)["frozen"], (),
                "USD frozen at the horizon (all freezes, minus what was later seized)"))
register(Metric("venue_inflow_share", SHARE, "{venue}_inflow_share", "inflow into {venue}", None,
                lambda rep, sc, venue: float(rep.venue_inflow[_venue_index(sc, venue)] / rep.stolen_usd), ("venue",),
                "share of the stolen value that entered a venue"))
register(Metric("venue_frozen_usd", USD, "{venue}_frozen_usd", "frozen by {venue} (USD)", "higher",
                lambda rep, sc, venue: float(rep.venue_frozen[_venue_index(sc, venue)]), ("venue",),
                "USD frozen by a venue"))
register(Metric("venue_seized_usd", USD, "{venue}_seized_usd", "seized in {venue} (USD)", "higher",
                lambda rep, sc, venue: float(rep.venue_seized[_venue_index(sc, venue)]), ("venue",),
                "USD seized inside a venue"))
register(Metric("action_seized_usd", USD, "{intervention}_seized_usd", "seized by {intervention} (USD)", "higher",
                lambda rep, sc, intervention: float((rep.actions or {})[intervention][2]), ("intervention",),
                "USD seized by a named intervention (unnamed ones are kind_index)"))
def _inflow_share_at(rep: Replication, scenario: Scenario, venue: str, at: float) -> float:
    log = rep.inflows
    if log is None:
        return float("nan")
    mine = (log["venue"] == _venue_index(scenario, venue)) & (log["time"] <= at + 1e-9)
    return float(log["value_usd"][mine].sum() / rep.stolen_usd)


def _holding_sample(rep: Replication, scenario: Scenario, asset: str,
                    at: float) -> tuple[dict[str, np.ndarray], int] | None:
    """The holdings samples of an asset and the index of the last one at or before ``at`` (-1: none
    yet); None for a replication that did not record holdings."""
    log = rep.holdings
    if log is None:
        return None
    mine = log["asset"] == list(scenario.assets).index(asset)
    rows = {name: column[mine] for name, column in log.items()}
    return rows, int(np.searchsorted(rows["time"], at + 1e-9, side="right")) - 1


def _holding_at(rep: Replication, scenario: Scenario, asset: str, at: float, column: str) -> float:
    """The launderer's holdings of an asset at the last timeline sample at or before ``at``."""
    found = _holding_sample(rep, scenario, asset, at)
    if found is None:
        return float("nan")
    rows, k = found
    return float(rows[column][k]) if k >= 0 else 0.0


register(Metric("venue_inflow_share_at", SHARE, "{venue}_inflow_share_at_{at}", "inflow into {venue} by {at}", None,
                _inflow_share_at, ("venue", "at"),
                "share of the stolen value that had entered a venue by a time (route facts: 193 BTC in mixers by day 27)"))
register(Metric("asset_share_at", SHARE, "{asset}_share_at_{at}", "held as {asset} at {at}", None,
                lambda rep, sc, asset, at: _holding_at(rep, sc, asset, at, "value_usd") / rep.stolen_usd,
                ("asset", "at"),
                "share of the stolen value held as an asset, in wallets or inside venues, at a time (sampled on the "
                "timeline grid at or before it, before that instant's moves)"))
register(Metric("wallets_at", COUNT, "{asset}_wallets_at_{at}", "{asset} wallets at {at}", None,
                lambda rep, sc, asset, at: _holding_at(rep, sc, asset, at, "wallets"), ("asset", "at"),
                "launderer wallets holding an asset at a time (an address is one wallet, however many lots it gathered; sampled like asset_share_at)"))


# --- the day's dollars (prices that move; without a price path they equal the theft-day figures) ---


def _exits(rep: Replication, kind: str) -> dict[str, np.ndarray] | None:
    """The rows of the exit log of one kind (freeze, seizure, cash_out); None for a replication
    stored before the log existed."""
    log = rep.exits
    if log is None:
        return None
    mine = log["kind"] == EXIT_KINDS.index(kind)
    return {name: column[mine] for name, column in log.items()}


def _exit_day_usd(rep: Replication, kind: str, at: float = math.inf, venue: int | None = None,
                  action: int | None = None) -> float:
    rows = _exits(rep, kind)
    if rows is None:
        return float("nan")
    mine = rows["time"] <= at + 1e-9
    if venue is not None:
        mine &= rows["venue"] == venue
    if action is not None:
        mine &= rows["action"] == action
    return float(rows["day_usd"][mine].sum())


def price_ratio(rep: Replication, scenario: Scenario, asset: str, at: float) -> float:
    """An asset's price at ``at`` over its theft-day price in this replication (1: a fixed price)."""
    path = rep.prices
    index = list(scenario.assets).index(asset)
    if path is None or not np.count_nonzero(path["asset"] == index):
        return 1.0
    mine = path["asset"] == index
    price = day_price(path["time"][mine], path["price_usd"][mine], at)
    return float(price) / scenario.assets[asset].price_usd


def _asset_day_usd_at(rep: Replication, scenario: Scenario, asset: str, at: float) -> float:
    """Holdings of an asset at the last timeline sample at or before ``at``, at that sample's prices."""
    found = _holding_sample(rep, scenario, asset, at)
    if found is None:
        return float("nan")
    rows, k = found
    if k < 0:
        return 0.0
    return float(rows["value_usd"][k]) * price_ratio(rep, scenario, asset, float(rows["time"][k]))


register(Metric("frozen_day_usd_at", USD, "frozen_day_usd_at_{at}", "frozen by {at} (day's USD)", "higher",
                lambda rep, sc, at: _exit_day_usd(rep, "freeze", at), ("at",),
                "USD frozen by a time, each freeze valued at the prices of its day (all freezes by then, "
                "including value seized later: what freezers announce)"))
register(Metric("frozen_day_usd", USD, "frozen_day_usd", "frozen (day's USD)", "higher",
                lambda rep, sc: _exit_day_usd(rep, "freeze"), (),
                "USD frozen within the run, each freeze valued at the prices of its day (value seized later included)"))
register(Metric("venue_frozen_day_usd", USD, "{venue}_frozen_day_usd", "frozen by {venue} (day's USD)", "higher",
                lambda rep, sc, venue: _exit_day_usd(rep, "freeze", venue=_venue_index(sc, venue)), ("venue",),
                "USD frozen by a venue, each freeze valued at the prices of its day"))
register(Metric("seized_day_usd", USD, "seized_day_usd", "seized (day's USD)", "higher",
                lambda rep, sc: _exit_day_usd(rep, "seizure"), (),
                "USD seized within the run (frozen value included), each seizure valued at the prices of its day"))
register(Metric("action_seized_day_usd", USD, "{intervention}_seized_day_usd", "seized by {intervention} (day's USD)",
                "higher",
                lambda rep, sc, intervention: _exit_day_usd(rep, "seizure", action=action_names(sc).index(intervention)),
                ("intervention",),
                "USD seized by a named intervention, valued at the prices of the day it acted (Ronin's $30 M of 8 Sep 2022)"))
register(Metric("cashed_out_day_usd", USD, "cashed_out_day_usd", "cashed out (day's USD)", "lower",
                lambda rep, sc: _exit_day_usd(rep, "cash_out"), (),
                "USD cashed out within the run, each cash-out valued at the prices of its day"))
register(Metric("asset_day_usd_at", USD, "{asset}_day_usd_at_{at}", "held as {asset} at {at} (day's USD)", None,
                _asset_day_usd_at, ("asset", "at"),
                "value held as an asset, in wallets or inside venues, at a time, at that day's price (sampled "
                "like asset_share_at: '$40 M left in 11 BTC addresses')"))
register(Metric("transfers", COUNT, "transfers", "transfers", None, lambda rep, sc: rep.transfers, (),
                "ledger rows of the replication (stolen value's transfers and honest users')", target=False))
register(Metric("lots", COUNT, "lots", "lots", None, lambda rep, sc: rep.lots, (),
                "lots of value the replication created", target=False))


# --- collateral: what policy costs honest users (model/honest.py; NaN without an honest section) ----


def _honest(rep: Replication, scenario: Scenario, *columns: str, at: float | None = None,
            venue: str | None = None) -> float:
    """Sum of honest-log columns over the run (or up to ``at``; for one ``venue``); NaN: no honest users modelled."""
    log = rep.honest
    if log is None:
        return float("nan")
    mine = np.ones(len(log["time"]), dtype=bool)
    if at is not None:
        mine &= log["time"] <= at + 1e-9
    if venue is not None:
        mine &= log["venue"] == _venue_index(scenario, venue)
    return float(sum(log[c][mine].sum() for c in columns))


TURNED_AWAY = ("displaced_usd", "refused_halt_usd", "refused_screen_usd")  # honest value kept out of a venue
STOPPED = ("frozen_usd", "seized_usd")  # honest value frozen or seized
COLLATERAL_METRICS = ("honest_stopped_usd", "honest_turned_away_usd", "honest_displaced_users", "honest_refused_users",
                      "honest_exposed_users")

register(Metric("honest_volume_usd", USD, "honest_volume_usd", "honest deposits (USD)", None,
                lambda rep, sc: _honest(rep, sc, "deposits_usd"), (),
                "USD honest users deposited at the venues of the honest section", target=False))
register(Metric("honest_stopped_usd", USD, "honest_stopped_usd", "honest value frozen or seized (USD)", "lower",
                lambda rep, sc: _honest(rep, sc, *STOPPED), (),
                "honest users' USD frozen (exposed deposits, a shut-down custodian) or seized with a commingled venue",
                target=False))
register(Metric("honest_frozen_usd", USD, "honest_frozen_usd", "honest value frozen (USD)", "lower",
                lambda rep, sc: _honest(rep, sc, "frozen_usd"), (), "honest users' USD frozen", target=False))
register(Metric("honest_seized_usd", USD, "honest_seized_usd", "honest value seized (USD)", "lower",
                lambda rep, sc: _honest(rep, sc, "seized_usd"), (), "honest users' USD seized with a commingled venue",
                target=False))
register(Metric("honest_turned_away_usd", USD, "honest_turned_away_usd", "honest value turned away (USD)", "lower",
                lambda rep, sc: _honest(rep, sc, *TURNED_AWAY), (),
                "USD of honest users displaced by a designation or refused by a halt or by screening", target=False))
register(Metric("honest_displaced_users", COUNT, "honest_displaced_users", "honest users displaced", "lower",
                lambda rep, sc: _honest(rep, sc, "displaced"), (),
                "honest users a designation or operators action kept away (pool mixers: expected)", target=False))
register(Metric("honest_refused_users", COUNT, "honest_refused_users", "honest users refused", "lower",
                lambda rep, sc: _honest(rep, sc, "refused_halt", "refused_screen"), (),
                "honest users refused by a halted or shut venue, or by screening against a designated venue", target=False))
register(Metric("honest_exposed_users", COUNT, "honest_exposed_users", "honest users exposed", "lower",
                lambda rep, sc: _honest(rep, sc, "exposed"), (),
                "honest withdrawals from a commingled venue while it held traced stolen value (flagged by screening)",
                target=False))
register(Metric("honest_tainted_usd", USD, "honest_tainted_usd", "stolen value paid to honest wallets (USD)", None,
                lambda rep, sc: _honest(rep, sc, "tainted_usd"), (),
                "USD of stolen value the launderer paid to honest wallets (P2P buyers, merchants): innocent holders of it",
                target=False))
register(Metric("honest_collateral_usd_at", USD, "honest_collateral_usd_at_{at}", "honest collateral by {at} (USD)", "lower",
                lambda rep, sc, at: _honest(rep, sc, *STOPPED, *TURNED_AWAY, at=at), ("at",),
                "honest USD stopped or turned away up to a time (collateral over time)", target=False))
register(Metric("venue_honest_collateral_usd", USD, "{venue}_honest_collateral_usd", "honest collateral at {venue} (USD)",
                "lower", lambda rep, sc, venue: _honest(rep, sc, *STOPPED, *TURNED_AWAY, venue=venue), ("venue",),
                "honest USD stopped or turned away at one venue", target=False))


def collateral_measures() -> list[Measure]:
    """What a comparison adds when its scenarios model honest users: the cost to them, beside the effect."""
    return [METRICS[name]() for name in COLLATERAL_METRICS]
# --- displacement: where the flow goes when a service is hit (issue 21) ------------------------------


def _inflow_by(rep: Replication, venues: Sequence[int], start: float = -math.inf, end: float = math.inf) -> float:
    """USD of stolen value that entered any of ``venues`` in [start, end)."""
    log = rep.inflows
    if log is None:
        return float("nan")
    mine = np.isin(log["venue"], np.asarray(list(venues), dtype=np.int64)) & (log["time"] >= start) & (log["time"] < end)
    return float(log["value_usd"][mine].sum())


def _function_venues(scenario: Scenario, function: str) -> list[int]:
    """Venues offered as services for ``function`` (``market.services``)."""
    names = list(scenario.venues)
    return [names.index(n) for n, s in scenario.market.services.items() if function in s.function]


def _targets(spec: Any) -> list[str]:
    """The venues an intervention names (``venue``, or ``venues``)."""
    single = getattr(spec, "venue", None)
    return [single] if single else list(getattr(spec, "venues", None) or [])


def substitutes(scenario: Scenario, venue: str) -> list[str]:
    """The venues the launderer can turn to instead of ``venue``: the other services sharing one of
    its functions, and the venues listed with it in a fixed hop's substitutes."""
    out: dict[str, None] = {}
    service = scenario.market.services.get(venue)
    if service is not None:
        for name, other in scenario.market.services.items():
            if name != venue and set(other.function) & set(service.function):
                out[name] = None

    def walk(hops: Sequence[Any]) -> None:
        for hop in hops:
            for branch in getattr(hop, "branches", None) or []:
                walk(branch.playbook)
            listed = getattr(hop, "venue", None)
            if isinstance(listed, list) and venue in listed:
                out.update((n, None) for n in listed if n != venue)

    walk(scenario.playbook)
    for theft in scenario.thefts:
        walk(theft.playbook or [])
    return list(out)


def _displaced_share(rep: Replication, scenario: Scenario, intervention: str) -> float:
    """Flow displaced to substitutes by an intervention, as a share of the stolen value.

    With T the venues it names and S their substitutes: of the value that entered T or S after the
    intervention (until the next intervention, so that sequential takedowns are told apart), what
    went to S beyond the share S had before it, max(0, S_after - S_before / (T+S)_before x (T+S)_after) / stolen. NaN when the intervention is
    not in the scenario, never applied, or its targets have no substitutes."""
    names = list(scenario.venues)
    specs = dict(zip(action_names(scenario), scenario.interventions))
    spec = specs.get(intervention)
    applied = (rep.actions or {}).get(intervention, ("", float("nan"), 0.0))[1]
    if spec is None or math.isnan(applied):
        return float("nan")
    targets = [t for t in _targets(spec) if t in names]
    subs = {s for t in targets for s in substitutes(scenario, t)} - set(targets)
    if not targets or not subs:
        return float("nan")
    t_idx, s_idx = [names.index(t) for t in targets], [names.index(s) for s in subs]
    later = [a[1] for a in (rep.actions or {}).values() if a[1] > applied]  # the next intervention ends the window
    end = min(later) if later else math.inf
    sub_before, all_before = _inflow_by(rep, s_idx, end=applied), _inflow_by(rep, s_idx + t_idx, end=applied)
    sub_after, all_after = _inflow_by(rep, s_idx, applied, end), _inflow_by(rep, s_idx + t_idx, applied, end)
    before = sub_before / all_before if all_before > 0 else 0.0
    return max(0.0, sub_after - before * all_after) / rep.stolen_usd


def _offramp_share(rep: Replication, scenario: Scenario) -> float:
    """Share of the stolen value that entered an off-ramp: an ``off_ramp`` service or a venue of a
    ``cash_out`` hop."""
    names = list(scenario.venues)
    ramps = set(_function_venues(scenario, "off_ramp"))

    def walk(hops: Sequence[Any]) -> None:
        for hop in hops:
            for branch in getattr(hop, "branches", None) or []:
                walk(branch.playbook)
            if hop.hop == "cash_out":
                ramps.update(names.index(n) for n in hop.venue)

    walk(scenario.playbook)
    for theft in scenario.thefts:
        walk(theft.playbook or [])
    return _inflow_by(rep, sorted(ramps)) / rep.stolen_usd


def _mean_cash_out_days(rep: Replication, scenario: Scenario) -> float:
    """Value-weighted mean time at which value was cashed out, in days (NaN: nothing was)."""
    col = int(Location.CASHED_OUT) * 2
    out = rep.log_delta[:, col] + rep.log_delta[:, col + 1]
    total = out.sum()
    return float((rep.log_time * out).sum() / total / DAY) if total > 0 else float("nan")


register(Metric("function_flow_share", SHARE, "{function}_flow_share", "flow through {function} services", None,
                lambda rep, sc, function: (_inflow_by(rep, _function_venues(sc, function)) / rep.stolen_usd
                                           if _function_venues(sc, function) else float("nan")), ("function",),
                "share of the stolen value that entered the services of a function (market.services; none: NaN)"))
register(Metric("displaced_share", SHARE, "displaced_share_{intervention}", "displaced by {intervention}", None,
                _displaced_share, ("intervention",),
                "share of the stolen value that went to the substitutes of the venues an intervention names, from it "
                "until the next intervention, beyond their share before it (NaN: no substitutes)"))
register(Metric("offramp_share", SHARE, "offramp_share", "reached an off-ramp", "lower", _offramp_share, (),
                "share of the stolen value that entered an off-ramp (off_ramp services and cash_out venues)"))
register(Metric("launderer_cost_share", SHARE, "launderer_cost_share", "launderer cost (share)", None,
                lambda rep, sc: launderer_cost(rep) / rep.stolen_usd, (),
                "the launderer's cost (network and venue fees, haircuts) as a share of the stolen value"))
register(Metric("mean_cash_out_days", DAYS, "mean_cash_out_days", "mean day cashed out", "higher",
                _mean_cash_out_days, (), "value-weighted mean time at which value was cashed out, in days (none: NaN)"))


def _laundering_venues(scenario: Scenario) -> list[int]:
    """Venues offered as services for a function other than the off-ramp (mixing, cross-chain, swapping)."""
    names = list(scenario.venues)
    return [names.index(n) for n, s in scenario.market.services.items() if set(s.function) - {"off_ramp"}]


def _function_share_between(rep: Replication, scenario: Scenario, function: str, start: float, at: float) -> float:
    """Of the value entering laundering services (not off-ramps) in [start, at), the share that
    entered the services of ``function`` (NaN: none entered)."""
    total = _inflow_by(rep, _laundering_venues(scenario), start, at)
    if not total > 0:
        return float("nan")
    return _inflow_by(rep, _function_venues(scenario, function), start, at) / total


def _venue_inflow_growth(rep: Replication, scenario: Scenario, venue: str, start: float, at: float) -> float:
    """Inflow into a venue in [start, at) over its inflow in the window of the same length just
    before (NaN: nothing entered before; inf: something after)."""
    v = [_venue_index(scenario, venue)]
    before = _inflow_by(rep, v, start - (at - start), start)
    after = _inflow_by(rep, v, start, at)
    if before > 0:
        return after / before
    return float("inf") if after > 0 else float("nan")


def _venue_share(rep: Replication, scenario: Scenario, venue: str, start: float, at: float) -> float:
    """Of the value entering laundering services (not off-ramps) in [start, at), the share that
    entered ``venue`` (NaN: none entered)."""
    total = _inflow_by(rep, _laundering_venues(scenario), start, at)
    return _inflow_by(rep, [_venue_index(scenario, venue)], start, at) / total if total > 0 else float("nan")


def _share_growth(share: Callable[[float, float], float], start: float, at: float) -> float:
    """A share of the laundering flow in [start, at) over the same share in the window of the same
    length just before: a move of the launderer's choices, apart from how much was stolen in each
    window (NaN: no flow before or after; inf: none of it before and some after)."""
    before = share(start - (at - start), start)
    after = share(start, at)
    if math.isnan(before) or math.isnan(after):
        return float("nan")
    if before > 0:
        return after / before
    return float("inf") if after > 0 else float("nan")


def _venue_share_growth(rep: Replication, scenario: Scenario, venue: str, start: float, at: float) -> float:
    """A venue's share of the laundering flow, over its share in the window just before."""
    return _share_growth(lambda a, b: _venue_share(rep, scenario, venue, a, b), start, at)


def _function_share_growth(rep: Replication, scenario: Scenario, function: str, start: float, at: float) -> float:
    """The share of the laundering flow that entered a function's services, over that share in the
    window just before (mixers 2023 over 2022: Chainalysis's 0.40 / 0.76)."""
    return _share_growth(lambda a, b: _function_share_between(rep, scenario, function, a, b), start, at)


register(Metric("function_share_between", SHARE, "{function}_share_{start}_to_{at}",
                "{function} share of laundering flow, {start} to {at}", None, _function_share_between,
                ("function", "start", "at"),
                "of the value entering laundering services (not off-ramps) between two times, the share that entered "
                "the services of a function (mixers vs bridges by year)"))
register(Metric("function_share_growth", RATIO, "{function}_share_growth_{start}_to_{at}",
                "{function} share growth, {start} to {at}", None, _function_share_growth, ("function", "start", "at"),
                "a function's share of the value entering laundering services between two times over its share in as "
                "long a window just before (mixers 2023 over 2022: down; bridges: up)"))
register(Metric("venue_inflow_growth", RATIO, "{venue}_growth_{start}_to_{at}", "{venue} inflow growth, {start} to {at}",
                None, _venue_inflow_growth, ("venue", "start", "at"),
                "inflow into a venue between two times over its inflow in as long a window just before (YoMix x5 in 2023)"))
register(Metric("venue_share_growth", RATIO, "{venue}_share_growth_{start}_to_{at}",
                "{venue} share growth, {start} to {at}", None, _venue_share_growth, ("venue", "start", "at"),
                "a venue's share of the value entering laundering services between two times over its share in as long "
                "a window just before: the launderer's move to it, apart from how much was stolen in each window"))


DISPLACEMENT: tuple[str, ...] = ("function_flow_share", "displaced_share", "offramp_share", "launderer_cost_share",
                                 "mean_cash_out_days", "function_share_between", "function_share_growth",
                                 "venue_inflow_growth", "venue_share_growth")


def displacement_measures(scenarios: Sequence[Scenario]) -> list[Measure]:
    """What ``compare`` and the report add when a scenario has services: flow per function, the
    flow each intervention displaced, the share reaching an off-ramp, the launderer's cost and
    delay. Empty when none has services (the tables of fixed playbooks stay as they were)."""
    if not any(sc.market.services for sc in scenarios):
        return []
    functions = [f for f in ("mixing", "cross_chain", "swapping", "off_ramp")
                 if any(f in s.function for sc in scenarios for s in sc.market.services.values())]
    names = list(dict.fromkeys(n for sc in scenarios for n, spec in zip(action_names(sc), sc.interventions)
                               if any(substitutes(sc, t) for t in _targets(spec) if t in sc.venues)))
    return ([METRICS["function_flow_share"](function=f) for f in functions]
            + [METRICS["displaced_share"](intervention=n) for n in names]
            + [METRICS["offramp_share"](), METRICS["launderer_cost_share"](), METRICS["mean_cash_out_days"]()])


# --- the standard sets -----------------------------------------------------------------------------

FINAL_STATES: tuple[str, ...] = ("traced", "frozen", "seized", "cashed_out")  # what a comparison shows at the horizon
AT_STATES: tuple[str, ...] = (*REPORTED, "cashed_out")  # and at given times, the way victims publish updates


def comparison_measures(at: Sequence[float] = ()) -> list[Measure]:
    """What ``compare`` (and the report) show, in order: final shares (the two axes, then as
    reported), time to half cashed out, the launderer's cost, then the reported shares at the
    given times."""
    out = [METRICS["final_share"](state=s) for s in (*FINAL_STATES, *REPORTED)]
    out += [METRICS["days_to_cash_out_share"](share=0.5), METRICS["launderer_cost_usd"]()]
    out += [METRICS["share_at"](state=s, at=float(t)) for t in at for s in AT_STATES]
    return out


def at_measures(at: Sequence[float]) -> list[Measure]:
    """The shares at given times (``run --at``)."""
    return [METRICS["share_at"](state=s, at=float(t)) for t in at for s in AT_STATES]
