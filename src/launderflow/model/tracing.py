"""The tracing team and the information-sharing channel: the investigators' side of the race.

Knowledge of a lot goes through three stages:

1. *trail* — every hop so far was followable (each hop keeps it with the team's per-hop success);
2. *traced* — the team has actually followed the lot to its current address. A moved lot is dark
   until then: the follow-up takes the team's latency plus the wait in its work queue, which
   holds one item per hop and drains at the team's capacity (hops per hour). Flooding the zone
   with wallets lengthens the queue, so trails lag further behind the funds;
3. *flagged* — the traced address has reached the venues and issuers in the sharing coverage,
   ``sharing.latency`` after it was traced; they may then freeze what they hold of it.

Before a theft is discovered the trail exists but nobody follows it; at discovery every lot with
an intact trail is queued for follow-up.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..scenario.schema import TRACEABLE_HOPS, Tracing
from .ops import World


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
                                            and all(t.joins_after == 0 for t in self.tracers))
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
            miss = 1.0
            for t in team:
                if hop == "bridge" and not t.cross_chain:
                    continue
                p_t = t.hop_success.get(hop, self.spec.success(hop))  # type: ignore[call-overload]
                miss *= 1.0 - p_t * t.report_quality
            self._success[key] = 1.0 - miss
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

    def queue(self, ids: np.ndarray, now: float, dark: bool = False) -> None:
        """Lots with an intact trail moved (or were discovered): follow them when the team gets there.

        ``dark``: the caller has already marked them not traced (as every moved lot is).
        """
        world = self.world
        if len(ids) == 0:
            return
        if self.discovered_at is None:
            self.discovered_at = now
            self.all_joined_at = now + max((t.joins_after for t in self.tracers), default=0.0) - 1e-9
        self.followed += len(ids)
        if self.instant:
            world.set_traced(ids, np.ones(len(ids), dtype=bool))
            world.sharing.traced(ids, now)
            return
        if not dark:
            world.set_dark(ids)
        times = self.follow_times(now, len(ids))
        world.at(times, ids, self._caught_up, world.lots.hops[ids])  # (indexing copies: a snapshot)

    def _caught_up(self, ids: np.ndarray, now: float, hops: np.ndarray) -> None:
        lots = self.world.lots
        ok = (lots.hops[ids] == hops) & lots.trail[ids] & (lots.value[ids] > 0)
        ids = ids[ok]
        if len(ids):
            self.world.set_traced(ids, np.ones(len(ids), dtype=bool))
            self.world.sharing.traced(ids, now)


class Sharing:
    """Flags traced addresses to venues and issuers after a latency, within a coverage."""

    def __init__(self, world: World, spec: Tracing):
        self.world = world
        self.latency = spec.sharing.latency
        coverage = spec.sharing.coverage
        self.venues = [v for v in world.venues if v.acts_on_alerts and (coverage == "all" or v.name in coverage)]

    def traced(self, ids: np.ndarray, now: float) -> None:
        if len(ids) == 0:
            return
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
