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

from ..distributions import Fixed
from ..scenario.schema import Tracing


class TracingTeam:
    """All tracers of a scenario pooled into one team with a shared work queue."""

    def __init__(self, world: Any, spec: Tracing):
        self.world = world
        self.spec = spec
        self.rng = world.rng.spawn(1)[0]
        tracers = spec.tracers
        self.instant = not tracers or (all(t.capacity_per_hour is None for t in tracers)
                                       and min(t.latency for t in tracers) == 0 and all(t.joins_after == 0 for t in tracers))
        self._success: dict[str, float] = {}
        self.latency = min((t.latency for t in tracers), default=0.0)
        caps = [t.capacity_per_hour for t in tracers]
        self.capacity = None if (not tracers or any(c is None for c in caps)) else float(sum(caps))  # type: ignore[arg-type]
        self.free_at = 0.0  # when the team has worked through its queue
        self.followed = 0  # hops followed (work done)
        self.backlog_log: list[tuple[float, float]] = []  # (time, hours of queued work)

    def success(self, hop: str) -> float:
        """Chance the team follows one hop of this kind: 1 - prod(1 - p_i q_i) over tracers able to."""
        if hop not in self._success:
            tracers = self.spec.tracers
            if not tracers:
                p = self.spec.success(hop)
            else:
                miss = 1.0
                for t in tracers:
                    if hop == "bridge" and not t.cross_chain:
                        continue
                    p_t = t.hop_success.get(hop, self.spec.success(hop))  # type: ignore[call-overload]
                    miss *= 1.0 - p_t * t.report_quality
                p = 1.0 - miss
            self._success[hop] = p
        return self._success[hop]

    def follow_times(self, now: float, n: int) -> np.ndarray:
        """When each of ``n`` newly queued hops will have been followed."""
        if self.capacity is None:
            return np.full(n, now + self.latency)
        start = max(now, self.free_at)
        done = start + np.arange(1, n + 1) / self.capacity
        self.free_at = float(done[-1]) if n else self.free_at
        self.backlog_log.append((now, self.free_at - now))
        return done + self.latency

    def queue(self, ids: np.ndarray, now: float) -> None:
        """Lots with an intact trail moved (or were discovered): follow them when the team gets there."""
        world = self.world
        if len(ids) == 0:
            return
        self.followed += len(ids)
        if self.instant:
            world.set_traced(ids, np.ones(len(ids), dtype=bool))
            world.sharing.traced(ids, now)
            return
        world.set_traced(ids, np.zeros(len(ids), dtype=bool))
        times = self.follow_times(now, len(ids))
        world.at(times, ids, self._caught_up, world.lots.hops[ids].copy())

    def _caught_up(self, ids: np.ndarray, now: float, hops: np.ndarray) -> None:
        lots = self.world.lots
        ok = (lots.hops[ids] == hops) & lots.trail[ids] & (lots.value[ids] > 0)
        ids = ids[ok]
        if len(ids):
            self.world.set_traced(ids, np.ones(len(ids), dtype=bool))
            self.world.sharing.traced(ids, now)


class Sharing:
    """Flags traced addresses to venues and issuers after a latency, within a coverage."""

    def __init__(self, world: Any, spec: Tracing):
        self.world = world
        self.latency = spec.sharing.latency
        coverage = spec.sharing.coverage
        self.venues = [v for v in world.venues if hasattr(v, "alert") and (coverage == "all" or v.name in coverage)]
        self.delay = Fixed(self.latency)

    def traced(self, ids: np.ndarray, now: float) -> None:
        if len(ids) == 0:
            return
        if self.latency == 0:
            self._flag(ids, now, self.world.lots.hops[ids].copy())
        else:
            self.world.at(np.full(len(ids), now + self.latency), ids, self._flag, self.world.lots.hops[ids].copy())

    def _flag(self, ids: np.ndarray, now: float, hops: np.ndarray) -> None:
        lots = self.world.lots
        ids = ids[(lots.hops[ids] == hops) & lots.traced[ids] & lots.alive[ids]]
        if len(ids) == 0:
            return
        lots.flagged[ids] = True
        for venue in self.venues:
            venue.alert(self.world, ids, now)
