"""The scenario schema: everything a run needs, validated before the simulation starts.

A scenario is plain data (pydantic v2 models, ``extra="forbid"`` so a mistyped key is an error,
not a silent default). Durations are written with units (``6h``) and stored in hours. Venue and
hop kinds are discriminated unions keyed by ``kind`` / ``hop``, so an error names the one kind
the author meant instead of listing every alternative's complaints.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from ..units import parse_duration


class Strict(BaseModel):
    """Base of every scenario model: unknown keys are errors and objects are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _duration(value: Any) -> float:
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return parse_duration(value)
    raise ValueError("a duration must be a number of hours or a string like '6h', '15min', '30d'")


Duration = Annotated[
    float,
    BeforeValidator(_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0, "description": "hours"},
                {"type": "string", "pattern": r"^\s*[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?\s*(s|sec|min|m|h|hr|d|w)\s*$"},
            ],
            "description": "a duration: a number of hours, or a number with a unit (s, min, h, d, w), e.g. '6h'",
        }
    ),
]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Fraction = Annotated[float, Field(ge=0.0, lt=1.0)]
NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_.\-]*$"
Name = Annotated[str, Field(pattern=NAME_PATTERN, max_length=64)]


# --- delay distributions -------------------------------------------------------------------


class FixedDelay(Strict):
    """Always the same delay."""

    dist: Literal["fixed"]
    value: Duration


class ExponentialDelay(Strict):
    """Memoryless delay with the given mean (events that happen 'at some rate')."""

    dist: Literal["exponential"]
    mean: Duration


class LogNormalDelay(Strict):
    """Right-skewed delay given by its median and the sigma of log-delay (human reaction times)."""

    dist: Literal["lognormal"]
    median: Duration
    sigma: Annotated[float, Field(ge=0.0, le=5.0)] = 1.0


class UniformDelay(Strict):
    """Any delay between ``low`` and ``high`` with equal chance."""

    dist: Literal["uniform"]
    low: Duration
    high: Duration

    @model_validator(mode="after")
    def _ordered(self) -> "UniformDelay":
        if self.high < self.low:
            raise ValueError("high must be >= low")
        return self


def _bare_duration_is_fixed(value: Any) -> Any:
    """``delay: 2h`` is shorthand for ``delay: {dist: fixed, value: 2h}``."""
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return {"dist": "fixed", "value": value}
    return value


Delay = Annotated[
    Union[FixedDelay, ExponentialDelay, LogNormalDelay, UniformDelay],
    Field(discriminator="dist"),
    BeforeValidator(_bare_duration_is_fixed),
]
ZERO_DELAY = FixedDelay(dist="fixed", value=0.0)


# --- world: clock, chains, assets ------------------------------------------------------------


class Clock(Strict):
    """How long to simulate and how finely to record it."""

    horizon: Duration = Field(description="simulated time after the first theft")
    resolution: Duration = Field(
        default=1.0 / 60.0,
        description="clock tick: moves that fall in the same tick are processed together as one batch",
    )
    timeline_step: Duration = Field(default=1.0, description="spacing of the recorded outcome timeline")

    @model_validator(mode="after")
    def _sane(self) -> "Clock":
        if self.horizon <= 0:
            raise ValueError("horizon must be > 0")
        if self.resolution <= 0 or self.timeline_step <= 0:
            raise ValueError("resolution and timeline_step must be > 0")
        if self.horizon / self.timeline_step > 200_000:
            raise ValueError("horizon/timeline_step gives more than 200,000 timeline points; use a coarser timeline_step")
        if self.horizon / self.resolution > 1e9:
            raise ValueError("horizon/resolution exceeds 1e9 ticks; use a coarser resolution")
        return self


class Chain(Strict):
    """A blockchain: how long a transfer takes to confirm and what it costs."""

    confirmation: Duration = 0.0
    fee_usd: Annotated[float, Field(ge=0.0)] = 0.0


class Asset(Strict):
    """A token on one chain with a fixed USD price for the run (prices do not move in the model)."""

    chain: Name
    price_usd: Annotated[float, Field(gt=0.0)]
    freezable: bool = Field(default=False, description="its issuer can freeze balances (USDT, USDC)")


class StolenAmount(Strict):
    asset: Name
    amount: Annotated[float, Field(gt=0.0)]


# --- venues ------------------------------------------------------------------------------------

Jurisdiction = Annotated[
    str,
    Field(
        pattern=r"^([A-Z]{2}|EU|offshore|none)$",
        description="ISO 3166 country code (US, JP, KR, RU, NO, ...), EU, 'offshore', or 'none' (on-chain code)",
    ),
]


class OtcVenue(Strict):
    """An OTC broker or bank off-ramp: value that reaches it leaves the chain (cashed out)."""

    kind: Literal["otc"]
    jurisdiction: Jurisdiction
    delay: Delay = ZERO_DELAY
    haircut: Fraction = Field(default=0.0, description="share of the value kept by the broker")


Venue = Annotated[Union[OtcVenue], Field(discriminator="kind")]


# --- playbook hops ---------------------------------------------------------------------------


class TransferHop(Strict):
    """Move every lot to one fresh wallet."""

    hop: Literal["transfer"]
    delay: Delay = ZERO_DELAY


class SplitHop(Strict):
    """Fan each lot out over ``wallets`` fresh wallets (shares drawn from a Dirichlet)."""

    hop: Literal["split"]
    wallets: Annotated[int, Field(ge=1, le=1_000_000)]
    concentration: Annotated[float, Field(gt=0.0)] = Field(
        default=20.0, description="Dirichlet concentration per wallet: large = equal shares, small = uneven"
    )
    delay: Delay = ZERO_DELAY


class PeelHop(Strict):
    """A peel chain: ``length`` hops, each peeling ``fraction`` of the remainder off to a fresh wallet."""

    hop: Literal["peel"]
    length: Annotated[int, Field(ge=1, le=10_000)]
    fraction: Annotated[float, Field(gt=0.0, lt=1.0)]
    delay: Delay = ZERO_DELAY


class WaitHop(Strict):
    """Dormancy: do nothing for a while."""

    hop: Literal["wait"]
    delay: Delay


class ConsolidateHop(Strict):
    """Gather every lot of the theft that is still moving into ``wallets`` wallets (waits for all)."""

    hop: Literal["consolidate"]
    wallets: Annotated[int, Field(ge=1, le=1_000_000)]
    delay: Delay = ZERO_DELAY


class CashOutHop(Strict):
    """Hand the value to an off-ramp venue; it leaves the chain after the venue's delay."""

    hop: Literal["cash_out"]
    venue: Name


Hop = Annotated[
    Union[TransferHop, SplitHop, PeelHop, WaitHop, ConsolidateHop, CashOutHop],
    Field(discriminator="hop"),
]
HOP_KINDS: tuple[str, ...] = ("theft", "transfer", "split", "peel", "wait", "consolidate", "cash_out", "fee")


# --- knowledge ---------------------------------------------------------------------------------


class Tracing(Strict):
    """What the investigators can follow.

    The trail starts at the theft address once the theft is discovered; each hop keeps the trail
    with the probability given for its kind (1.0 = never lost). Later versions model tracer
    agents with latency and capacity; this is the knowledge axis's simplest honest form.
    """

    hop_success: dict[Literal["transfer", "split", "peel", "consolidate", "cash_out"], Probability] = Field(
        default_factory=dict, description="per-hop chance that a followed trail stays followed (default 1.0)"
    )

    def success(self, hop: str) -> float:
        return float(self.hop_success.get(hop, 1.0))  # type: ignore[call-overload]


class Theft(Strict):
    """One theft: what was taken, when, from whom, and when the victim noticed."""

    name: Name
    victim: str = Field(min_length=1, max_length=200)
    time: Duration = 0.0
    stolen: list[StolenAmount] = Field(min_length=1)
    discovered_after: Duration = Field(default=0.0, description="investigators start tracing this long after the theft")
    playbook: list[Hop] | None = Field(default=None, description="this theft's own playbook (default: the scenario's)")


class Scenario(Strict):
    """A complete scenario: the world, the theft(s), the launderer's playbook and the knowledge model."""

    name: Name
    description: str = ""
    sources: list[str] = Field(default_factory=list, description="where the numbers come from")
    seed: Annotated[int, Field(ge=0, lt=2**63)] = 0
    clock: Clock
    chains: dict[Name, Chain] = Field(min_length=1)
    assets: dict[Name, Asset] = Field(min_length=1)
    venues: dict[Name, Venue] = Field(default_factory=dict)
    thefts: list[Theft] = Field(min_length=1)
    playbook: list[Hop] = Field(default_factory=list)
    tracing: Tracing = Field(default_factory=Tracing)

    @field_validator("thefts")
    @classmethod
    def _unique_theft_names(cls, thefts: list[Theft]) -> list[Theft]:
        names = [t.name for t in thefts]
        if len(set(names)) != len(names):
            raise ValueError("theft names must be unique")
        return thefts

    def playbook_for(self, theft: Theft) -> list[Any]:
        return list(theft.playbook) if theft.playbook is not None else list(self.playbook)

    @property
    def stolen_usd(self) -> float:
        return math.fsum(s.amount * self.assets[s.asset].price_usd for t in self.thefts for s in t.stolen)


def reference_problems(scenario: Scenario) -> list[tuple[tuple[Any, ...], str]]:
    """Cross-references pydantic cannot see: names that must exist elsewhere in the scenario.

    Returns ``(location path, message)`` pairs so the loader can point at the offending line.
    """
    problems: list[tuple[tuple[Any, ...], str]] = []
    for name, asset in scenario.assets.items():
        if asset.chain not in scenario.chains:
            problems.append((("assets", name, "chain"), _unknown("chain", asset.chain, scenario.chains)))
    for i, theft in enumerate(scenario.thefts):
        for j, stolen in enumerate(theft.stolen):
            if stolen.asset not in scenario.assets:
                problems.append((("thefts", i, "stolen", j, "asset"), _unknown("asset", stolen.asset, scenario.assets)))
        if theft.playbook is not None:
            problems += _hop_problems(scenario, theft.playbook, ("thefts", i, "playbook"))
    problems += _hop_problems(scenario, scenario.playbook, ("playbook",))
    if not scenario.playbook and any(t.playbook is None for t in scenario.thefts):
        problems.append((("playbook",), "is empty but a theft has no playbook of its own (give at least one hop)"))
    return problems


def _hop_problems(scenario: Scenario, hops: list[Any], where: tuple[Any, ...]) -> list[tuple[tuple[Any, ...], str]]:
    problems = []
    for k, hop in enumerate(hops):
        if isinstance(hop, CashOutHop):
            venue = scenario.venues.get(hop.venue)
            offramps = {n: v for n, v in scenario.venues.items() if v.kind == "otc"}
            if venue is None:
                problems.append(((*where, k, "venue"), _unknown("venue", hop.venue, offramps)))
            elif venue.kind != "otc":
                problems.append(((*where, k, "venue"), f"venue {hop.venue!r} is a {venue.kind}, not an off-ramp ({_allowed(offramps)})"))
    return problems


def _unknown(what: str, name: str, known: dict[str, Any]) -> str:
    return f"unknown {what} {name!r} ({_allowed(known)})"


def _allowed(known: dict[str, Any]) -> str:
    return "defined: " + ", ".join(sorted(known)) if known else "none defined"


def is_valid_name(text: str) -> bool:
    return re.match(NAME_PATTERN, text) is not None
