"""The market of laundering services and what the launderer has learned about each (issue 21).

A *service* is a venue offered for a function (mixing, cross-chain, swapping, off-ramp) from its
``opens`` to its ``closes`` time, with the cost, delay and perceived risk the launderer's choice
rule reads (``market.choice`` in the schema; the step that chooses is ``model/choice.py``). The
venue itself does the work, so deposits, fees, freezes and tracing are the venue machinery.

Perceived risk is learned from what the launderer can observe. A *loss* — a freeze or seizure of its
value at a service — adds its weight times the share of the value it had there that was lost (a
freeze of one deposit among many is a small loss, a raid that takes everything inside a full one),
fading with an exponential memory; ``spillover`` of it reaches the other open services like it (the
same kind of venue serving a shared function; ``spillover_among: function``: every service of the
function). A *state* — a designation, halt or shutdown — is a standing fact the launderer sees
every day it is in force: its weight holds undiminished while the state lasts and fades only from
the day it ends (a halt lifted). Alerts
on its own lots (their addresses flagged while inside a service) count as how much more of its
value there is flagged than of all its value in play. Events are observed when the launderer next decides (at a service step), so a
service nobody uses is not watched more often than the launderer acts. The market draws only from
the world's ``launderer`` stream: every other component's random numbers stay as they were.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..scenario.schema import FUNCTION_KINDS
from .columns import ColumnBuffer
from .distributions import from_spec
from .ops import World
from .states import Location

EVENTS: tuple[str, ...] = ("freeze", "seizure", "designation", "halt", "shutdown", "alert")
EVENT_CODE = {name: i for i, name in enumerate(EVENTS)}


class Market:
    """The scenario's services (in ``market.services`` order) and the launderer's learned risks."""

    def __init__(self, world: World):
        spec = world.scenario.market
        self.world = world
        self.choice = spec.choice
        self.names: list[str] = list(spec.services)
        self.venues = [world.venue(name) for name in self.names]
        self.functions: list[tuple[str, ...]] = [tuple(s.function) for s in spec.services.values()]
        self.opens = np.array([s.opens for s in spec.services.values()], dtype=np.float64)
        self.closes = np.array([np.inf if s.closes is None else s.closes for s in spec.services.values()])
        self.prior = np.array([s.perceived_risk for s in spec.services.values()], dtype=np.float64)
        self._cost = [s.cost for s in spec.services.values()]
        self._haircut = [float(getattr(world.scenario.venues[n], "haircut", 0.0)) for n in self.names]
        self.delay_days = np.array([_expected_delay(s, world.scenario.venues[n]) / 24.0
                                    for n, s in spec.services.items()], dtype=np.float64)
        self.by_venue = {v.index: j for j, v in enumerate(self.venues)}
        self.rng = world.stream("launderer")
        n = len(self.names)
        # Learned risk: a sum of event weights, each fading as exp(-age / memory), kept as its value
        # at ``_risk_time`` (one decay per observation, not one per event).
        self._risk = np.zeros(n)
        self._risk_time = 0.0
        self._observed_at = -np.inf
        self._frozen_seen = np.zeros(n)
        self._seized_seen = np.zeros(n)
        self._state_seen = np.zeros((n, 3), dtype=bool)  # designated, halted, closed
        self._standing = np.zeros(n)  # weights of the states in force (they do not fade while they hold)
        self._venue_index = np.array([v.index for v in self.venues], dtype=np.int64)
        self._flagged_share = np.zeros(n)  # excess flagged share of the launderer's value inside each service
        same_kind = self.choice.spillover_among == "kind"
        self._similar = np.array([[i != j and bool(set(self.functions[i]) & set(self.functions[j]))
                                   and (not same_kind or self.venues[i].kind == self.venues[j].kind)
                                   for j in range(n)] for i in range(n)], dtype=bool).reshape(n, n)
        self.observations = ColumnBuffer({"time": np.float64, "service": np.int16, "event": np.int8, "weight": np.float64})

    def __len__(self) -> int:
        return len(self.names)

    # --- what the choice rule reads --------------------------------------------------------------

    def serving(self, functions: list[str]) -> list[tuple[int, str]]:
        """Services offered for any of ``functions``: (service index, the fixed hop kind it stands for)."""
        out = []
        for j, (venue, served) in enumerate(zip(self.venues, self.functions)):
            for function in functions:
                if function in served and venue.kind in FUNCTION_KINDS[function]:
                    out.append((j, FUNCTION_KINDS[function][venue.kind]))
                    break
        return out

    def is_open(self, members: np.ndarray, now: float) -> np.ndarray:
        """Which of the services are offered at ``now`` (the timeline: launches and closures)."""
        return (self.opens[members] <= now) & (now < self.closes[members])

    def cost(self, members: np.ndarray) -> np.ndarray:
        """Expected cost share: the service's ``cost``, or the venue's current fee (operators' actions
        raise it) plus its haircut."""
        return np.array([self._cost[j] if self._cost[j] is not None
                         else self.venues[j].fee + self._haircut[j]
                         for j in members])

    def risk(self, members: np.ndarray, now: float) -> np.ndarray:
        """Perceived risk at ``now``: the prior, plus the faded events, plus ``alert`` times how much
        more of the launderer's value inside is flagged than of all its value (a score: may exceed 1)."""
        decayed = self._risk[members] * np.exp(-(now - self._risk_time) / self.choice.memory)
        return self.prior[members] + self._standing[members] + decayed + self.choice.alert * self._flagged_share[members]

    def utilities(self, members: np.ndarray, now: float, last: int) -> np.ndarray:
        """U_j = -cost_weight cost_j - delay_weight delay_j - risk_weight risk_j + inertia [j = last]."""
        c = self.choice
        u = -(c.cost_weight * self.cost(members) + c.delay_weight * self.delay_days[members]
              + c.risk_weight * self.risk(members, now))
        return u + c.inertia * (members == last)

    def choose(self, probabilities: np.ndarray) -> np.ndarray:
        """One draw per row of a (lots, services) probability matrix; rows with one possible
        service take it without a draw (so a single service is exactly the fixed playbook)."""
        n, m = probabilities.shape
        chosen = np.argmax(probabilities, axis=1)
        several = np.count_nonzero(probabilities > 0, axis=1) > 1
        k = int(np.count_nonzero(several))
        if k:
            cum = np.cumsum(probabilities[several], axis=1)
            u = self.rng.random(k) * cum[:, -1]
            chosen[several] = np.minimum((cum <= u[:, None]).sum(axis=1), m - 1)
        return chosen

    # --- learning ----------------------------------------------------------------------------------

    def observe(self, now: float) -> None:
        """Learn from what happened at the services since the launderer last looked (once an instant)."""
        if now == self._observed_at:
            return
        self._observed_at = now
        c = self.choice
        self._risk *= np.exp(-(now - self._risk_time) / c.memory)
        self._risk_time = now
        frozen = np.array([v.frozen_usd for v in self.venues]) - self._frozen_seen
        seized = np.array([v.seized_usd for v in self.venues]) - self._seized_seen
        lost = np.maximum(frozen, 0.0) + np.maximum(seized, 0.0)
        if lost.any():
            at_stake = lost + self._value_inside()
            for j in np.flatnonzero(lost > 0):
                share = lost[j] / at_stake[j]
                if frozen[j] > 0:
                    self._event(now, int(j), "freeze", c.freeze * share)
                if seized[j] > 0:
                    self._event(now, int(j), "seizure", c.seizure * share)
            self._frozen_seen += np.maximum(frozen, 0.0)
            self._seized_seen += np.maximum(seized, 0.0)
        for j, venue in enumerate(self.venues):
            for k, (flag, name, weight) in enumerate(((venue.designated, "designation", c.designation),
                                                      (venue.halted, "halt", c.halt),
                                                      (venue.closed, "shutdown", c.shutdown))):
                if flag and not self._state_seen[j, k]:
                    self._state(now, j, name, weight)
                elif not flag and self._state_seen[j, k] and weight > 0:  # ended: from now it fades
                    self._standing[j] = max(0.0, self._standing[j] - weight)
                    self._risk[j] += weight
                self._state_seen[j, k] = flag
        if self.choice.alert > 0:
            self._observe_alerts()

    def _value_inside(self) -> np.ndarray:
        """USD of the launderer's value inside each service now (what a freeze or a raid there could
        still take: with what was just lost, the value the launderer had at stake there)."""
        lots = self.world.lots
        inside = lots.view("alive") & (lots.view("location") == int(Location.VENUE))
        size = len(self.world.venues)
        return np.bincount(lots.view("venue")[inside], weights=lots.view("value")[inside], minlength=size)[self._venue_index]

    def _observe_alerts(self) -> None:
        """Alerts on the launderer's own lots: how much more of its value inside each service is
        flagged than of all its value in play — a current reading, not an accumulating event, so a
        service is not thought riskier for being used more, or for holding value longer when
        everything is flagged anyway."""
        lots = self.world.lots
        alive = lots.view("alive")
        location = lots.view("location")
        in_play = alive & ((location == int(Location.VENUE)) | (location == int(Location.LAUNDERER)))
        value = lots.view("value")
        flagged = lots.view("flagged")
        total_value = float(value[in_play].sum())
        overall = float(value[in_play & flagged].sum()) / total_value if total_value > 0 else 0.0
        inside = alive & (location == int(Location.VENUE))
        where = lots.view("venue")[inside]
        size = len(self.world.venues)
        total = np.bincount(where, weights=value[inside], minlength=size)[self._venue_index]
        marked = np.bincount(where[flagged[inside]], weights=value[inside][flagged[inside]], minlength=size)[self._venue_index]
        share = np.divide(marked, total, out=np.zeros(len(total)), where=total > 0)
        self._flagged_share = np.maximum(0.0, share - overall)

    def calm_after(self, members: np.ndarray, now: float, level: float) -> np.ndarray:
        """Hours until each service's perceived risk falls to ``level`` as its events fade, if
        nothing new happens (inf: its prior, standing states and alert term alone reach ``level``)."""
        decayed = self._risk[members] * np.exp(-(now - self._risk_time) / self.choice.memory)
        floor = self.prior[members] + self._standing[members] + self.choice.alert * self._flagged_share[members]
        room = level - floor
        out = np.full(len(members), np.inf)
        fades = room > 0
        out[fades] = self.choice.memory * np.log(np.maximum(decayed[fades] / room[fades], 1.0))
        return out

    def _state(self, now: float, j: int, event: str, weight: float) -> None:
        """A state began at service j (designated, halted, shut down): its weight stands there while
        the state lasts; what spills over to the services like j (``spillover_of``) is a lesson
        about them, which fades as an event does."""
        if weight <= 0:
            return
        self._standing[j] += weight
        self._spill(now, j, event, weight)
        self.observations.append(1, time=now, service=j, event=EVENT_CODE[event], weight=weight)

    def _spill(self, now: float, j: int, event: str, weight: float) -> None:
        """``spillover`` of an event's weight at the services like j that exist now (a service
        launched later, or already closed, learns nothing from it)."""
        if event in self.choice.spillover_of:
            alive = np.array([not v.closed for v in self.venues], dtype=bool)
            like = self._similar[j] & (self.opens <= now) & (now < self.closes) & alive
            self._risk[like] += self.choice.spillover * weight

    def _event(self, now: float, j: int, event: str, weight: float) -> None:
        """An event at service j: its weight there, ``spillover`` of it at the services like j that
        exist now (a service launched later, or already closed, learns nothing from it)."""
        if weight <= 0:
            return
        self._risk[j] += weight
        self._spill(now, j, event, weight)
        self.observations.append(1, time=now, service=j, event=EVENT_CODE[event], weight=weight)


def _expected_delay(service: Any, venue: Any) -> float:
    """Hours the launderer expects inside: the service's ``delay``, or the mean of the venue's."""
    if service.delay is not None:
        return float(service.delay)
    delay = getattr(venue, "delay", None)
    return float(from_spec(delay).mean) if delay is not None else 0.0


def build_market(world: World) -> Market | None:
    """The scenario's market, or None without services (a fixed playbook, as before issue 21)."""
    return Market(world) if world.scenario.market.services else None
