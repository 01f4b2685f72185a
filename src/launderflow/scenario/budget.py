"""Budget refusal: estimate what a scenario would cost from its parameters alone, before it runs.

A typo such as ``wallets: 1000000`` in three nested splits asks for 10^18 wallets; the run would
grind until it runs out of memory. :func:`budget_problems` walks the scenario once — no
simulation, no randomness, time linear in the number of hops — and computes *upper bounds* per
replication on

* **lots** (one per wallet the launderer fills: a row of the lot table): the stolen lots of every
  theft and instalment, then along the playbook (branches included) ``split`` × ``wallets``, a
  ``peel`` chain 2 × ``length`` new lots per lot (``length`` peeled pieces + ``length``
  remainders, ``length`` + 1 of which move on), a ``branch`` one piece per branch, a custodial
  mixer ``payouts`` per lot, a pool mixer its notes — at most the value reaching it divided by the
  smallest denomination (or, whichever is smaller, by the largest denomination plus the
  greedy bound per lot) — plus one unmixed remainder per lot, and a ``consolidate`` at most
  ``wallets`` × assets × instalments (never more than reach it);
* **transfers** (ledger rows): one per theft lot, one per fresh wallet of a split, peel or branch,
  one per input of a consolidation, two per lot through an exchange, DEX or bridge (deposit and
  withdrawal) or a cash-out (deposit and off-ramp), a deposit plus one payout per wallet for a
  custodial mixer, a deposit and a withdrawal per pool-mixer note;
* **honest rows** of pool mixers: ``honest_deposits_per_day`` × horizon (days) deposits (times the
  largest recovery a designation allows) plus at most as many withdrawals, plus the honest notes
  that can leave;
* **honest rows** of the ``honest`` section: a deposit and a withdrawal per honest user
  (``users_per_day`` × horizon, times the largest recovery a designation allows);
* **timeline points** (``horizon / timeline_step``), **ticks** (``horizon / resolution``) and pool
  mixers' background steps (``horizon / background_step``, one simpy event each);
* **memory**: ~:data:`BYTES_PER_ROW` bytes per lot, transfer and honest row, plus the timeline and
  the pools' anonymity log.

With substitute venues (``venue: [a, b]``) the bound takes the worst venue for every lot. Freeze
and seizure rows (at most one per lot) are not counted. The bounds are deliberately loose — a real
run creates far fewer lots (a pool mixer rarely mints one note per smallest denomination) — so the
limits are set high: a scenario is refused only when even a generous reading of it is absurd.

Each refusal points at the field responsible: for lots, transfers and memory, the hop (or theft, or
venue) at which the running total first passes the limit, e.g.
``s.yaml:14: playbook.1.wallets: would create ~1.0e+12 wallets per replication (limit 50,000,000); ...``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from . import schema as s
from .arithmetic import add as _add
from .arithmetic import div as _div
from .arithmetic import mul as _mul
from .arithmetic import to_float as _float

#: Refuse a scenario whose replications could create more lots (wallets filled) than this.
MAX_LOTS = 50_000_000
#: Refuse a scenario whose replications could write more launderer transfers (ledger rows) than this.
MAX_TRANSFERS = 50_000_000
#: Refuse a scenario whose replications would need more memory than this (estimated, see below).
MAX_MEMORY_BYTES = 2 * 1024**3
#: Rough memory of one lot or one ledger row: the lot table (~70 bytes a row, doubled while it
#: grows), the ledger (~60 bytes a row) and the copies the results make.
BYTES_PER_ROW = 100
#: Memory of one timeline point: 8 outcome states x (time, value, share, replication, state).
BYTES_PER_TIMELINE_POINT = 8 * 32
#: Memory of one row of a pool mixer's anonymity log (time, venue, pool, notes).
BYTES_PER_POOL_LOG_ROW = 20
#: Refuse a clock with more ticks (``horizon / resolution``) than this, and a pool mixer with more
#: background steps (``horizon / background_step``, one simulation event each).
MAX_TICKS = 100_000_000

Path = tuple[Any, ...]


@dataclass
class _Step:
    """What one place in the scenario adds to the totals, and why (for the message)."""

    where: Path
    lots: float = 0.0
    transfers: float = 0.0
    memory: float = 0.0
    why: str = ""


@dataclass
class Estimate:
    """Upper bounds for one replication (floats: they may be astronomically large or infinite)."""

    lots: float
    transfers: float
    honest_rows: float
    timeline_points: float
    ticks: float
    background_steps: float
    memory_bytes: float
    steps: list[_Step]


def count(x: float, unit: str = "") -> str:
    """An estimate for a message: ``~1,000,000``, ``~3.2e+15``, or ``more than 1e308`` (``unit``: e.g. ``$``)."""
    if not math.isfinite(x):
        return f"more than {unit}1e308"
    if x < 1e12:
        return f"~{unit}{round(x):,}"
    return f"~{unit}{x:.1e}"


def gib(x: float) -> str:
    """Bytes as ``~1.5 GiB`` (``~`` dropped for the exact limits)."""
    if not math.isfinite(x):
        return "more than 1e308 bytes"
    return f"~{x / 1024**3:,.1f} GiB" if x < 1e6 * 1024**3 else f"~{x / 1024**3:.1e} GiB"


# --- the walk -----------------------------------------------------------------------------------


class _Walker:
    def __init__(self, scenario: s.Scenario):
        self.scenario = scenario
        self.steps: list[_Step] = []
        self.assets = len(scenario.assets)

    def add(self, where: Path, lots: float = 0.0, transfers: float = 0.0, memory: float = 0.0, why: str = "") -> None:
        self.steps.append(_Step(where, lots, transfers, memory, why))

    def theft(self, i: int, theft: s.Theft) -> None:
        n = _mul(len(theft.stolen), theft.instalments)
        value = _mul(theft.instalments, _add(*(_mul(x.amount, self.scenario.assets[x.asset].price_usd) for x in theft.stolen)))
        where: Path = ("thefts", i, "repeat", "count") if theft.repeat is not None else ("thefts", i, "stolen")
        self.add(where, lots=n, transfers=n, why=f"the theft makes {count(n)} stolen lots")
        playbook = self.scenario.playbook_for(theft)
        base: Path = ("thefts", i, "playbook") if theft.playbook is not None else ("playbook",)
        self.walk(playbook, base, n, value, theft.instalments)

    def walk(self, hops: list[Any], base: Path, n: float, value: float, instalments: int) -> float:
        """Walk ``hops`` with at most ``n`` lots worth at most ``value`` USD; return the lots that come out.

        Each hop kind has its bound here (:data:`_HOP_BOUNDS`, keyed like the schema's ``hop``); a hop
        kind without one is an error, not a silent zero."""
        for k, hop in enumerate(hops):
            bound = _HOP_BOUNDS.get(hop.hop, _Walker.venue_hop if hop.hop in s.VENUE_FOR_HOP else None)
            if bound is None:
                raise NotImplementedError(f"hop kind {hop.hop!r} has no budget bound (scenario/budget.py)")
            n = bound(self, hop, (*base, k), n, value, instalments)
        return n

    def transfer(self, hop: Any, here: Path, n: float, value: float, instalments: int) -> float:
        self.add(here, transfers=n, why=f"{count(n)} lots reach this transfer; each moves once")
        return n

    def split(self, hop: Any, here: Path, n: float, value: float, instalments: int) -> float:
        out = _mul(n, hop.wallets)
        self.add((*here, "wallets"), lots=out, transfers=out,
                 why=f"{count(n)} lots reach this split and each fans out to {hop.wallets:,} wallets")
        return out

    def peel(self, hop: Any, here: Path, n: float, value: float, instalments: int) -> float:
        made = _mul(n, 2 * hop.length)
        self.add((*here, "length"), lots=made, transfers=made,
                 why=f"{count(n)} lots reach this peel and each peels {hop.length:,} times into 2 wallets")
        return _mul(n, hop.length + 1)

    def wait(self, hop: Any, here: Path, n: float, value: float, instalments: int) -> float:
        return n

    def consolidate(self, hop: Any, here: Path, n: float, value: float, instalments: int) -> float:
        out = min(n, _mul(hop.wallets, self.assets, instalments))
        self.add((*here, "wallets"), lots=out, transfers=n,
                 why=f"{count(n)} lots reach this consolidate; they merge into {count(out)} wallets")
        return out

    def branch(self, hop: Any, here: Path, n: float, value: float, instalments: int) -> float:
        b = len(hop.branches)
        pieces = _mul(n, b)
        self.add(here, lots=pieces, transfers=pieces,
                 why=f"{count(n)} lots reach this branch and each is divided over {b} branches")
        outs = [self.walk(branch.playbook, (*here, "branches", j, "playbook"), n, _mul(value, branch.share),
                          instalments) for j, branch in enumerate(hop.branches)]
        return _add(*outs)

    def service(self, hop: Any, here: Path, n: float, value: float, instalments: int = 1) -> float:
        """A service hop: the bound of a venue hop over every service that serves its functions."""
        names, kinds = [], []
        for name, service in self.scenario.market.services.items():
            venue = self.scenario.venues[name]
            kind = next((s.FUNCTION_KINDS[f][venue.kind] for f in hop.function
                         if f in service.function and venue.kind in s.FUNCTION_KINDS[f]), None)
            if kind is not None:
                names.append(name)
                kinds.append(kind)
        return self.venue_hop(hop, here, n, value, instalments, names, kinds)

    def venue_hop(self, hop: Any, here: Path, n: float, value: float, instalments: int = 1,
                  names: list[str] | None = None, kinds: list[str] | None = None) -> float:
        """Bound a venue hop linearly in (lots, value) for every substitute; take the worst per term."""
        best: tuple[float, float, float] | None = None
        why = ""
        names = list(hop.venue) if names is None else names
        kinds = [hop.hop] * len(names) if kinds is None else kinds
        for alternative in (0, 1):
            terms = [self.scenario.venues[name].budget_terms(self.scenario, kind, alternative) for name, kind in zip(names, kinds)]
            # terms: (lots out per lot, per USD), (new lots per lot, per USD), (transfers per lot, per USD)
            out = _add(_mul(max(t[0][0] for t in terms), n), _mul(max(t[0][1] for t in terms), value))
            made = _add(_mul(max(t[1][0] for t in terms), n), _mul(max(t[1][1] for t in terms), value))
            moved = _add(_mul(max(t[2][0] for t in terms), n), _mul(max(t[2][1] for t in terms), value))
            best = (out, made, moved) if best is None else (min(best[0], out), min(best[1], made), min(best[2], moved))
        assert best is not None
        out, made, moved = best
        mixers = [self.scenario.venues[name] for name in names]
        pools = [v for v in mixers if isinstance(v, s.PoolMixerVenue)]
        custodial = [v for v in mixers if isinstance(v, s.CustodialMixerVenue)]
        if pools:
            v = pools[0]
            why = (f"{count(n)} lots worth {count(value, '$')} reach this mix; a pool mixer takes whole notes "
                   f"(smallest {v.denominations[0]:g} {v.asset}), {count(made)} pieces")
        elif custodial:
            why = f"{count(n)} lots reach this mix and each is paid out to {max(v.payouts for v in custodial):,} wallets"
        elif kinds and all(kind == "cash_out" for kind in kinds):
            why = f"{count(n)} lots reach this cash_out; each makes a deposit and leaves the chain"
        else:
            why = f"{count(n)} lots reach this {hop.hop}; each makes a deposit and a withdrawal"
        self.add((*here, "venue" if hop.hop in s.VENUE_FOR_HOP else "function"), lots=made, transfers=moved, why=why)
        return out


_HOP_BOUNDS = {"transfer": _Walker.transfer, "split": _Walker.split, "peel": _Walker.peel, "wait": _Walker.wait,
               "dormant": _Walker.wait, "service": _Walker.service,
               "consolidate": _Walker.consolidate, "branch": _Walker.branch}


def estimate(scenario: s.Scenario) -> Estimate:
    """Upper bounds on what one replication of ``scenario`` creates (see the module docstring)."""
    walker = _Walker(scenario)
    for i, theft in enumerate(scenario.thefts):
        walker.theft(i, theft)
    clock = scenario.clock
    horizon = clock.horizon
    points = _div(horizon, clock.timeline_step) + 1
    walker.add(("clock", "timeline_step"), memory=_mul(points, BYTES_PER_TIMELINE_POINT),
               why=f"the timeline has {count(points)} points")
    honest_rows = 0.0
    background = 0.0
    for name, venue in scenario.venues.items():
        if not isinstance(venue, s.PoolMixerVenue):
            continue
        boost, exodus = 1.0, 0.0
        for action in scenario.interventions:
            if isinstance(action, s.Designation) and action.venue == name:
                boost = _mul(boost, max(1.0, action.recovery_level))
                exodus += action.exodus_per_day / 24.0
        arrivals = _mul(venue.honest_deposits_per_day / 24.0, horizon, boost)
        if venue.initial_notes is not None:
            initial = _float(sum(venue.initial_notes))
        else:
            initial = _mul(venue.honest_deposits_per_day / 24.0, venue.honest_holding)
        leave = 1.0 - math.exp(-_mul(horizon, _add(_div(1.0, venue.honest_holding), exodus)))
        leaving = min(initial, _mul(initial, leave))
        rows = _add(arrivals, arrivals, leaving)
        honest_rows = _add(honest_rows, rows)
        field = "initial_notes" if venue.initial_notes is not None and leaving > arrivals else "honest_deposits_per_day"
        walker.add(("venues", name, field), memory=_mul(rows, BYTES_PER_ROW),
                   why=f"honest users of {name} make {count(rows)} ledger rows")
        steps = _div(horizon, venue.background_step)
        background = max(background, steps)
        log_rows = _mul(steps + 1, len(venue.denominations))
        walker.add(("venues", name, "background_step"), memory=_mul(log_rows, BYTES_PER_POOL_LOG_ROW),
                   why=f"{name}'s anonymity log has {count(log_rows)} rows")
    for name, flow in (scenario.honest.venues.items() if scenario.honest is not None else ()):
        boost = max([1.0, *(a.recovery_level for a in scenario.interventions
                            if isinstance(a, s.Designation) and a.venue == (flow.venue or name))])
        rows = _mul(2.0 * flow.users_per_day / 24.0, horizon, boost)  # a deposit and a withdrawal per user
        honest_rows = _add(honest_rows, rows)
        walker.add(("honest", "venues", name, "users_per_day"), memory=_mul(rows, BYTES_PER_ROW),
                   why=f"honest users of {name} make {count(rows)} ledger rows")
    for asset, flow in (scenario.honest.transfers.items() if scenario.honest is not None else ()):
        rows = _mul(flow.per_day / 24.0, horizon)  # one ledger row per honest wallet-to-wallet payment
        honest_rows = _add(honest_rows, rows)
        walker.add(("honest", "transfers", asset, "per_day"), memory=_mul(rows, BYTES_PER_ROW),
                   why=f"honest {asset} transfers make {count(rows)} ledger rows")
    for step in walker.steps:  # lots and transfers cost memory where they are made
        step.memory = _add(step.memory, _mul(_add(step.lots, step.transfers), BYTES_PER_ROW))
    return Estimate(
        lots=_add(*(st.lots for st in walker.steps)),
        transfers=_add(*(st.transfers for st in walker.steps)),
        honest_rows=honest_rows,
        timeline_points=points,
        ticks=_div(horizon, clock.resolution),
        background_steps=background,
        memory_bytes=_add(*(st.memory for st in walker.steps)),
        steps=walker.steps,
    )


def _culprit(steps: list[_Step], attr: str, limit: float) -> _Step:
    """The step at which the running total of ``attr`` first passes ``limit``."""
    total = 0.0
    for step in steps:
        total = _add(total, getattr(step, attr))
        if total > limit:
            return step
    return max(steps, key=lambda st: getattr(st, attr))  # pragma: no cover - only called when over the limit


def budget_problems(scenario: s.Scenario) -> list[tuple[Path, str]]:
    """``(location path, message)`` for every budget the scenario would exceed (empty if none).

    Lots, transfers and memory that are over budget at the same place are reported as one problem.
    """
    est = estimate(scenario)
    found: dict[Path, tuple[list[str], str]] = {}

    def over(where: Path, what: str, why: str) -> None:
        items, _ = found.setdefault(where, ([], why))
        items.append(what)

    if est.lots > MAX_LOTS:
        step = _culprit(est.steps, "lots", MAX_LOTS)
        over(step.where, f"{count(est.lots)} wallets per replication (limit {MAX_LOTS:,})", step.why)
    if est.transfers > MAX_TRANSFERS:
        step = _culprit(est.steps, "transfers", MAX_TRANSFERS)
        over(step.where, f"{count(est.transfers)} transfers per replication (limit {MAX_TRANSFERS:,})", step.why)
    if est.memory_bytes > MAX_MEMORY_BYTES:
        step = _culprit(est.steps, "memory", MAX_MEMORY_BYTES)
        over(step.where, f"{gib(est.memory_bytes)} of memory per replication (limit {MAX_MEMORY_BYTES / 1024**3:g} GiB)", step.why)
    problems = [(where, f"would create {'; '.join(items)}; {why}") for where, (items, why) in found.items()]
    if est.ticks > MAX_TICKS:
        problems.append((("clock", "resolution"),
                         f"would run {count(est.ticks)} clock ticks (limit {MAX_TICKS:,}): horizon / resolution; "
                         f"use a coarser resolution or a shorter horizon"))
    for name, venue in scenario.venues.items():
        if isinstance(venue, s.PoolMixerVenue):
            steps = _div(scenario.clock.horizon, venue.background_step)
            if steps > MAX_TICKS:
                problems.append((("venues", name, "background_step"),
                                 f"would run {count(steps)} background steps (limit {MAX_TICKS:,}): horizon / "
                                 f"background_step; use a longer background_step"))
    return problems
