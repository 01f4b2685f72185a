"""The investigators' side of the race: the tracing team, re-identification and information sharing.

Knowledge of a lot goes through three stages:

1. *trail* — every hop so far was followable;
2. *traced* — the investigators know the lot's current address. Tracing software follows
   *automatic* hops (transfers, splits, peels, consolidations, DEX swaps, bridges that link their
   legs) ``tracing.auto_latency`` after they happen, whatever their number: flooding the zone with
   wallets does not outrun software. At *judgment points* (mixer payouts, exchange withdrawals,
   cash-out deposits, bridges that do not link their legs) analysts must decide: every lot they
   were following joins the team's work queue, which drains at the team's capacity (judgments per
   hour), and is dark until judged; the judgment keeps the trail with the team's success (pool
   mixers: the demixing chance). A lot that moves on before it is judged is followed from the
   judgment on (its ``judge_at``);
3. *flagged* — the traced address has reached the venues and issuers in the sharing coverage,
   ``sharing.latency`` after it was traced; they may then freeze what they hold of it.

A lost trail may be re-identified later (:class:`Recovery`): when it is lost, whether and when it
will be is drawn from the recovery of the place it was lost at; sweeps every
``tracing.recovery_step`` put the investigators back on the trail of the lots (and the pieces they
were split into) that are due. Before a theft is discovered the trail exists but nobody follows
it; at discovery software follows every lot with an intact trail, and analysts judge the lots that
passed a judgment point on the way.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import numpy as np
import simpy

from ..scenario.schema import TRACEABLE_HOPS, Recovery as RecoverySpec, Tracing
from .ops import World


def team_success(own: list[float], dependence: float) -> float:
    """The team's chance at one judgment point, from each able tracer's own chance ``p_i q_i``.

    Analytics firms share heuristics, data and each other's published addresses, so where one cannot
    link a payout the others mostly cannot either. With dependence ρ the team's chance is a mixture
    of independent successes and "as good as the best tracer":

        p = (1 - ρ) (1 - Π (1 - p_i q_i)) + ρ max_i p_i q_i

    ρ = 0 gives independence (three tracers at 0.2: 0.49); ρ = 1 the best tracer alone (0.2).
    """
    if not own:
        return 0.0
    miss = 1.0
    for p in own:
        miss *= 1.0 - p
    independent = 1.0 - miss
    if dependence <= 0.0:
        return independent
    return (1.0 - dependence) * independent + dependence * max(own)


class TracingTeam:
    """All tracers of a scenario pooled into one team with a shared work queue.

    A tracer joins ``joins_after`` the first discovery (a bounty announced later, say); until then
    it adds neither success, nor capacity, nor a shorter latency. Before anyone has joined, queued
    hops wait for the first tracer to arrive.
    """

    def __init__(self, world: World, spec: Tracing):
        self.world = world
        self.spec = spec
        self.rng = world.stream("tracing")
        self.tracers = list(spec.tracers)
        self.instant = not self.tracers or (all(t.capacity_per_hour is None for t in self.tracers)
                                            and min(t.latency for t in self.tracers) == 0
                                            and all(t.joins_after == 0 for t in self.tracers)
                                            and spec.auto_latency == 0)
        self.auto_latency = spec.auto_latency
        self._success: dict[tuple[str, tuple[int, ...]], float] = {}
        self._paces: dict[tuple[int, ...], tuple[float, float | None]] = {}
        self.free_at = 0.0  # when the team has worked through its queue
        self.followed = 0  # hops followed (work done)
        self.discovered_at: float | None = None  # the first discovery; tracers join relative to it
        self.all_joined_at = np.inf  # from then on every tracer is at work

    def active(self, now: float) -> list[Any]:
        """Tracers at work at ``now`` (all of them if there is no discovery yet to count from)."""
        if self.discovered_at is None or now >= self.all_joined_at:
            return self.tracers
        return [t for t in self.tracers if now >= self.discovered_at + t.joins_after - 1e-9]

    def success(self, hop: str, now: float | None = None) -> float:
        """Chance the team follows one hop of this kind: 1 - prod(1 - p_i q_i) over active tracers able to."""
        if not self.tracers:
            return self.spec.success(hop)
        if hop not in TRACEABLE_HOPS:  # e.g. pool-mixer payouts: demixing decides, not the team
            return 1.0
        team = self.tracers if now is None else self.active(now)
        if not team:  # nobody yet: the hop will be followed by those who join first
            team = self.active(self.discovered_at + min(t.joins_after for t in self.tracers))  # type: ignore[operator]
        key = (hop, tuple(id(t) for t in team))
        if key not in self._success:
            own = [t.hop_success.get(hop, self.spec.success(hop)) * t.report_quality  # type: ignore[call-overload]
                   for t in team if not (hop == "bridge" and not t.cross_chain)]
            self._success[key] = team_success(own, self.spec.dependence)
        return self._success[key]

    def follow_times(self, now: float, n: int) -> np.ndarray:
        """When each of ``n`` newly queued hops will have been followed."""
        start = max(now, self.free_at)
        team = self.active(start)
        if not team and self.discovered_at is not None:  # nobody has joined yet: wait for the first
            start = self.discovered_at + min(t.joins_after for t in self.tracers)
            team = self.active(start)
        latency, capacity = self._pace(team)
        if capacity is None:
            return np.full(n, start + latency)
        done = start + np.arange(1, n + 1) / capacity
        self.free_at = float(done[-1]) if n else self.free_at
        return done + latency

    def _pace(self, team: list[Any]) -> tuple[float, float | None]:
        """The team's latency (its fastest tracer's) and capacity (hops per hour; None: unlimited)."""
        key = tuple(id(t) for t in team)
        pace = self._paces.get(key)
        if pace is None:
            latency = min((t.latency for t in team), default=0.0)
            caps = [t.capacity_per_hour for t in team]
            pace = self._paces[key] = (latency, None if any(c is None for c in caps) else float(sum(caps)))
        return pace

    def _start(self, now: float, n: int) -> None:
        if self.discovered_at is None:
            self.discovered_at = now
            self.all_joined_at = now + max((t.joins_after for t in self.tracers), default=0.0) - 1e-9
        self.followed += n

    def auto(self, ids: np.ndarray, now: float) -> None:
        """Software follows these lots (their trail is intact, their theft discovered): they are
        traced ``auto_latency`` from now, or once their pending judgment is done if that is later."""
        if len(ids) == 0:
            return
        self._start(now, len(ids))
        world = self.world
        if self.instant:
            world.set_traced(ids, np.ones(len(ids), dtype=bool))
            world.sharing.traced(ids, now)
            return
        start = now if self.active(now) else self.discovered_at + min(t.joins_after for t in self.tracers)  # type: ignore[operator]
        times = np.maximum(start + self.auto_latency, world.lots.judge_at[ids])
        world.at(times, ids, self._caught_up, world.lots.hops[ids])  # (indexing copies: a snapshot)

    def judge(self, ids: np.ndarray, now: float) -> None:
        """Analysts must judge these lots (they were following them into a judgment point): each is
        one item of the work queue; the lot is traced then if its trail survived, else it stays dark."""
        if len(ids) == 0:
            return
        self._start(now, len(ids))
        world = self.world
        lots = world.lots
        if self.instant:
            lots.judge_at[ids] = now
            kept = ids[lots.trail[ids]]
            world.set_traced(kept, np.ones(len(kept), dtype=bool))
            world.sharing.traced(kept, now)
            return
        times = self.follow_times(now, len(ids))
        lots.judge_at[ids] = times
        world.at(times, ids, self._caught_up, lots.hops[ids])

    def _caught_up(self, ids: np.ndarray, now: float, hops: np.ndarray) -> None:
        lots = self.world.lots
        ok = (lots.hops[ids] == hops) & lots.trail[ids] & (lots.value[ids] > 0)
        ids = ids[ok]
        if len(ids):
            self.world.set_traced(ids, np.ones(len(ids), dtype=bool))
            self.world.sharing.traced(ids, now)


class Recovery:
    """Re-identification of lost trails: drawn when a trail is lost, applied in periodic sweeps.

    A lot whose trail is lost at a venue (a judgment point) draws, from that venue's ``recovery``
    (or ``tracing.recovery`` for an automatic hop), whether it will be re-identified and when
    (``recover_at``); the pieces it is later split into inherit that time, and a consolidation
    takes its inputs' earliest. Every ``tracing.recovery_step`` the lots that are due, still dark,
    worth something and of a discovered theft get their trail back: a ``recover`` ledger row each
    (auditable against the ground truth), software follows the live ones to where they are now,
    and value already out of play is traced at once. Draws come from the ``recovery`` stream.
    """

    def __init__(self, world: World, spec: Tracing):
        self.world = world
        self.rng = world.stream("recovery")
        self.specs: list[RecoverySpec] = [v.recovery for v in world.venues] + [spec.recovery]  # [-1]: automatic hops
        self.step = spec.recovery_step
        self.recovered_usd = np.zeros(len(self.specs))  # by the place the trail was lost (last: automatic hops)
        self.active = any(r.share > 0 for r in self.specs)
        if self.active:
            world.process(self._sweeps())

    def lost(self, ids: np.ndarray, venue: int, now: float) -> None:
        """The trail of these lots was lost at ``venue`` (-1: at an automatic hop)."""
        lots = self.world.lots
        lots.lost_at[ids] = venue
        spec = self.specs[venue]
        if spec.share <= 0:
            lots.recover_at[ids] = np.inf
            return
        found = self.rng.random(len(ids)) < spec.share
        delay = self.rng.exponential(spec.mean_time, len(ids))
        lots.recover_at[ids] = np.where(found, now + delay, np.inf)

    def _sweeps(self) -> Generator[simpy.Event, Any, None]:
        world = self.world
        while True:
            yield world.timeout(self.step)
            self.sweep(world.now)

    def sweep(self, now: float) -> None:
        world = self.world
        lots = world.lots
        due = (lots.view("recover_at") <= now) & ~lots.view("traced") & (lots.view("value") > 0)
        ids = np.flatnonzero(due)
        if len(ids) == 0:
            return
        if not world.all_discovered:
            ids = ids[world.discovered[lots.theft[ids]]]
        lots.recover_at[ids] = np.inf
        lots.trail[ids] = True
        lots.judge_at[ids] = -np.inf
        np.add.at(self.recovered_usd, lots.lost_at[ids].astype(np.int64), lots.value[ids])
        world.record(now, lots.address[ids], lots.address[ids], ids, lots.value[ids], "recover", venue=-1)
        live = lots.alive[ids]
        world.set_traced(ids[~live], np.ones(int((~live).sum()), dtype=bool))
        world.team.auto(ids[live], now)


class Sharing:
    """Flags traced addresses to venues and issuers after a latency, within a coverage."""

    def __init__(self, world: World, spec: Tracing):
        self.world = world
        self.latency = spec.sharing.latency
        coverage = spec.sharing.coverage
        self.venues = [v for v in world.venues if v.acts_on_alerts and (coverage == "all" or v.name in coverage)]
        # A robbed exchange or token project asks these parties itself, whatever the coverage.
        self.direct = [v for v in world.venues if v.acts_on_alerts and v.asked_directly]

    def traced(self, ids: np.ndarray, now: float) -> None:
        if len(ids) == 0:
            return
        for venue in self.direct:
            venue.direct_request(self.world, ids, now)
        if self.latency == 0:
            self._flag(ids, now, self.world.lots.hops[ids])
        else:
            self.world.at(now + self.latency, ids, self._flag, self.world.lots.hops[ids])

    def _flag(self, ids: np.ndarray, now: float, hops: np.ndarray) -> None:
        lots = self.world.lots
        ids = ids[(lots.hops[ids] == hops) & lots.traced[ids] & lots.alive[ids]]
        if len(ids) == 0:
            return
        lots.flagged[ids] = True
        for venue in self.venues:
            venue.alert(self.world, ids, now)
