"""How a freezing party (an exchange, a stablecoin issuer) responds to flagged funds, by channel.

Real freezes differ by the way the party learns of the funds (incidents.md): an exchange's
software screens deposits against the shared flags within minutes; the victim or its partners ask
within hours — harder when the victim is itself an exchange or the token's own project (Poloniex:
$6.54 M frozen on Tron on day 0-1); law enforcement asks, or a court orders, after days to weeks
(Circle acts only on these). Each channel is an independent chance with its own latency; the
earliest channel that acts wins, and the party freezes the lot then if it is still there. Small
lots below the party's ``min_usd`` are not acted on.

An exchange's screening needs no alert: its analytics vendor scores every deposit, so a deposit
from an address the investigators have traced is screened on arrival; the other channels act on
addresses shared through the information-sharing channel (flagged). A ``direct`` victim channel
is the exception: an exchange or a token project that was robbed watches its own drained wallets
and asks the party itself as soon as its funds are traced (Poloniex's freeze on Tron came on day
0-1), so for those thefts the victim channel runs from the trace, not from the flag — for lots
still in its own view, before their first judgment point (a mixer payout, an exchange withdrawal,
an unlinked bridge).
Beyond it the victim knows what the shared flags say, and its request comes with the flag at the
victim channel's ordinary chance.

Without a ``response`` in the scenario a party keeps the single rule it always had: it acts with
``compliance`` after ``freeze_latency`` (so older scenarios and the golden files are unchanged).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..distributions import Distribution, from_spec
from ..ops import World

STRONG_VICTIMS = ("exchange", "token_project")


class FreezeResponse:
    """When a party acts on flagged lots: ``times(world, ids, now)`` gives each lot's freeze time
    (``inf``: never). Draws come from the party's own enforcement stream, in a fixed order."""

    def __init__(self, world: World, compliance: float, latency: Distribution, spec: Any | None):
        self.compliance = compliance
        self.latency = latency
        self.spec = spec
        if spec is not None:
            self.channels: list[tuple[str, float, float | None, float | None, Distribution]] = [
                (name, ch.probability, getattr(ch, "strong", None), getattr(ch, "direct_exposure", None),
                 from_spec(ch.latency))
                for name, ch in (("screening", spec.screening), ("victim", spec.victim),
                                 ("law_enforcement", spec.law_enforcement))]
            self.min_usd = spec.min_usd
            self.strong = np.array([t.victim_kind in STRONG_VICTIMS for t in world.scenario.thefts], dtype=bool)
            self.direct = bool(spec.victim.direct) and bool(self.strong.any())

    @property
    def asked_directly(self) -> bool:
        """Whether strong victims ask this party at the trace (see the module docstring)."""
        return self.spec is not None and self.direct

    def harden(self, compliance: float | None, latency: Distribution | None) -> None:
        """A ``defences`` intervention or a policy on the party: the single rule takes the new
        compliance and latency; with channels, every channel becomes at least that likely and
        takes that latency (a faster process on every channel)."""
        if compliance is not None:
            self.compliance = compliance
        if latency is not None:
            self.latency = latency
        if self.spec is not None:
            self.channels = [(n, _at_least(p, compliance), _at_least(s, compliance), _at_least(d, compliance),
                              lat if latency is None else latency)
                             for n, p, s, d, lat in self.channels]

    def times(self, world: World, ids: np.ndarray, now: float, rng: np.random.Generator,
              only: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The lots the party will act on and when (``(ids, times)``); ``only``: one channel.

        With a ``direct`` victim channel the flag does not ask again for strong victims' lots
        (they were asked at the trace: :meth:`direct_times`)."""
        if self.spec is None:  # the single rule: compliance, then one latency
            if self.compliance < 1.0:
                ids = ids[rng.random(len(ids)) < self.compliance]
            return ids, now + self.latency.sample(rng, len(ids))
        lots = world.lots
        ids = ids[lots.value[ids] >= self.min_usd]
        n = len(ids)
        best = np.full(n, np.inf)
        for name, p, strong, direct, latency in self.channels:
            if (p <= 0.0 and not strong and not direct) or (only is not None and name != only):
                continue
            chance = np.full(n, p)
            if strong is not None:
                chance = np.where(self.strong[lots.theft[ids]], strong, p)
            if direct is not None:  # direct exposure: no judgment point between the theft and this deposit
                chance = np.where(lots.judged[ids], p, direct)
            if name == "victim" and self.direct and only is None:
                # A strong victim asked at the trace for lots still in its own view; beyond its
                # first judgment point its request travels with the flag, like any victim's.
                chance = np.where(self.strong[lots.theft[ids]], np.where(lots.judged[ids], p, 0.0), chance)
            acts = rng.random(n) < chance
            t = np.where(acts, now + latency.sample(rng, n), np.inf)
            best = np.minimum(best, t)
        keep = np.isfinite(best)
        return ids[keep], best[keep]

    def direct_times(self, world: World, ids: np.ndarray, now: float,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """A strong victim's own request, at the trace: which of these just-traced lots the party
        acts on, and when (the victim channel's ``strong`` chance and latency, from now).

        Only lots still in the victim's own view are asked about: those that have not passed a
        judgment point (a mixer payout, an exchange withdrawal, an unlinked bridge). Beyond it the victim's investigators
        know no more than the shared flags, and its request comes with the flag (:meth:`times`)."""
        lots = world.lots
        ids = ids[self.strong[lots.theft[ids]] & ~lots.judged[ids]]
        if len(ids) == 0:
            return ids, np.zeros(0)
        return self.times(world, ids, now, rng, only="victim")


def _at_least(p: float | None, floor: float | None) -> float | None:
    """``p`` raised to ``floor`` (a hardened party acts at least that often); ``None`` stays unset."""
    return p if p is None or floor is None else max(p, floor)
