"""The scenario schema: everything a run needs, validated before the simulation starts.

A scenario is plain data (pydantic v2 models, ``extra="forbid"`` so a mistyped key is an error,
not a silent default). Durations are written with units (``6h``) and stored in hours. Venue and
hop kinds are discriminated unions keyed by ``kind`` / ``hop``, so an error names the one kind
the author meant instead of listing every alternative's complaints.
"""

from __future__ import annotations

import datetime
import math
import re
from typing import Annotated, Any, Literal, Union, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_serializer,
    model_validator,
)

from ..units import parse_duration
from .arithmetic import add, div, floor, mul


class Strict(BaseModel):
    """Base of every scenario model: unknown keys are errors and objects are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


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
# Bounds on values, so that every accepted scenario can be computed in float64 without overflow or
# underflow (documented in docs/scenario-reference.md and README's Errors section):
MAX_PRICE_USD = 10**9  # per unit of an asset (BTC is ~1e5)
MAX_AMOUNT = 10**15  # units of an asset in one stolen amount
MAX_STOLEN_USD = 1e15  # all thefts together, every instalment of a stream included ($1,000 trillion)
MIN_STOLEN_USD = 1e-6  # below it the shares of the stolen value are round-off
MIN_CONCENTRATION = 0.05  # smaller: Dirichlet draws underflow to 0 and a split divides 0 by 0
MAX_CONCENTRATION = 10**12

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

    horizon: Duration = Field(description="simulated time from the scenario's time zero (thefts usually happen at 0)")
    resolution: Duration = Field(
        default=1.0 / 60.0,
        description="clock tick: moves that fall in the same tick are processed together as one batch",
    )
    timeline_step: Duration = Field(default=1.0, description="spacing of the recorded outcome timeline")
    start: datetime.date | None = Field(default=None, description="calendar date of time zero (ISO, 2022-03-23): lets price series be dated")

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> Any:
        return _without_default(handler(self), "start", None)

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
    """A token on one chain with its USD price at the theft: the outcome book values every lot at
    it (theft-day dollars); a ``prices`` path gives the day's dollars beside it."""

    chain: Name
    price_usd: Annotated[float, Field(gt=0.0, le=MAX_PRICE_USD)]
    freezable: bool = Field(default=False, description="its issuer can freeze balances (USDT, USDC)")


class StolenAmount(Strict):
    asset: Name
    amount: Annotated[float, Field(gt=0.0, le=MAX_AMOUNT)]


# --- price paths (day's dollars) ---------------------------------------------------------------

MAX_PRICE_POINTS = 100_000  # rows of one price series
MAX_PRICE_STEPS = 1_000_000  # steps of one stochastic price path over the horizon
PRICE_SERIES_SUFFIXES = (".csv", ".parquet")


def _without_default(data: Any, key: str, default: Any) -> Any:
    """Drop an optional field left at its default from a dump, so that scenarios written before the
    field existed keep their canonical JSON (a stored run's identity) byte for byte."""
    if isinstance(data, dict) and key in data and data[key] == default:
        data = {k: v for k, v in data.items() if k != key}
    return data


_GBM_FIELDS = ("drift_per_year", "volatility_per_year", "step")


class PricePoint(Strict):
    """One point of a price series: a calendar ``date`` (needs ``clock.start``) or a ``time`` since
    time zero, and the asset's USD price then."""

    date: datetime.date | None = None
    time: Duration | None = None
    price_usd: Annotated[float, Field(gt=0.0, le=MAX_PRICE_USD)]

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> Any:
        return {k: v for k, v in handler(self).items() if v is not None}

    @model_validator(mode="after")
    def _one_time(self) -> "PricePoint":
        if (self.date is None) == (self.time is None):
            raise ValueError("give a date or a time, not both")
        return self


class PricePath(Strict):
    """How one asset's USD price moves: a dated ``series`` (a CSV or Parquet file, or inline
    ``points``), or ``model: gbm`` (geometric Brownian motion from the asset's ``price_usd`` at time
    zero, drawn per replication). Prices between points are interpolated linearly in log-price and
    held flat before the first point and after the last (docs/model.md, "Prices")."""

    series: str | None = Field(default=None, description="a .csv or .parquet file (relative to the scenario file) with a date or time column and price_usd")
    points: list[PricePoint] | None = Field(default=None, max_length=MAX_PRICE_POINTS, description="the series' points; read from the series file when the scenario is loaded (a scenario as run carries them), or given inline")
    model: Literal["gbm"] | None = Field(default=None, description="gbm: a seeded geometric Brownian motion instead of a series")
    drift_per_year: Annotated[float, Field(ge=-10.0, le=10.0)] = Field(default=0.0, description="gbm: mu, the drift a year: the expected price grows as exp(mu x years)")
    volatility_per_year: Annotated[float, Field(ge=0.0, le=10.0)] = Field(default=0.0, description="gbm: standard deviation of the log-return over a year (sigma)")
    step: Annotated[Duration, Field(gt=0.0)] = Field(default=24.0, description="gbm: spacing of the drawn points")

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> Any:
        """Only what applies: a series' dump has no gbm fields, a gbm's no series or points."""
        data = handler(self)
        if self.model is None:
            data = {k: v for k, v in data.items() if k not in _GBM_FIELDS}
        return {k: v for k, v in data.items() if v is not None}

    @model_validator(mode="after")
    def _one_source(self) -> "PricePath":
        gbm_fields = [f for f in _GBM_FIELDS if f in self.model_fields_set]
        if self.model is None:
            if self.series is None and self.points is None:
                raise ValueError("give a series (a price file), points, or model: gbm")
            if gbm_fields:
                raise ValueError(f"{', '.join(gbm_fields)}: only for model: gbm (a series gives its own prices)")
            if not self.points:
                raise ValueError("the series has no points (a series file is read by load_scenario; "
                                 "a scenario built in code gives points)")
            return self
        if self.series is not None or self.points is not None:
            raise ValueError("model: gbm draws its own path: give no series or points")
        return self

    @property
    def dated(self) -> bool:
        return any(p.date is not None for p in self.points or ())


# --- venues ------------------------------------------------------------------------------------

Jurisdiction = Annotated[
    str,
    Field(
        pattern=r"^([A-Z]{2}|EU|offshore|none)$",
        description="ISO 3166 country code (US, JP, KR, RU, NO, ...), EU, 'offshore', or 'none' (on-chain code)",
    ),
]


# A venue's budget terms: upper bounds, per lot and per USD reaching it, of the lots that come out,
# the new lots it makes and the transfers it writes: ((out/lot, out/USD), (new/lot, new/USD),
# (transfers/lot, transfers/USD)). ``alternative`` 0 and 1 are two bounds; the budget takes the
# smaller (see budget.py).
BudgetTerms = tuple[tuple[float, float], tuple[float, float], tuple[float, float]]
THROUGH: BudgetTerms = ((1.0, 0.0), (0.0, 0.0), (2.0, 0.0))  # a deposit and a withdrawal per lot
OFF_CHAIN: BudgetTerms = ((0.0, 0.0), (0.0, 0.0), (2.0, 0.0))  # a deposit and the exit off the chain


class Recovery(Strict):
    """Re-identification of value whose trail was lost: of the lots that went dark here, ``share``
    is re-identified later, after an exponential time of mean ``mean_time`` (demixing heuristics
    applied with hindsight, wallet fingerprints, records). 0 = never."""

    share: Probability = Field(default=0.0, description="share of the lots lost here that are re-identified later")
    mean_time: Annotated[Duration, Field(gt=0.0)] = Field(default=30 * 24.0, description="mean time from the loss to the re-identification")


class Channel(Strict):
    """One way a freezing party learns of flagged funds: it acts with ``probability`` after ``latency``."""

    probability: Probability = Field(default=0.0, description="chance the party acts on flagged funds reaching it this way")
    latency: Delay = Field(default=ZERO_DELAY, description="from the flag (or the deposit, for screening) to the freeze")


class ScreeningChannel(Channel):
    """An exchange's software screening of deposits against what the investigators traced;
    ``direct_exposure`` when the deposit's trail from the theft passed automatic hops only (transfers,
    splits, swaps, linked bridges) and no judgment point — the deposit comes from the hacker's own
    labelled wallets, a severe alert — where ``probability`` is for deposits whose trail was
    re-established past a judgment point (a mixer payout linked by a heuristic, an exchange
    withdrawal an analyst judged): indirect exposure that compliance acts on less often."""

    direct_exposure: Probability | None = Field(default=None, description="probability for deposits with direct exposure: a trail from the theft through automatic hops only, no judgment point passed (default: probability)")


class VictimChannel(Channel):
    """A request from the victim or its partners; ``strong`` when the victim is itself an exchange or
    the token's own project (theft ``victim_kind``), who can press harder or act themselves."""

    strong: Probability | None = Field(default=None, description="probability when the victim is an exchange or a token project (default: probability)")
    direct: bool = Field(default=False, description="an exchange or token-project victim asks this party itself as soon as its funds are traced (its own investigators see its drained wallets), not after the sharing channel's latency — for lots before their first judgment point (beyond it the request comes with the flag at `probability`); other victims' requests still come with the flag")


class Response(Strict):
    """How a freezing party (an exchange, an issuer) responds to flagged funds, by channel.

    Each channel is an independent chance to act, with its own latency from the moment the party
    could know: ``screening`` (software screening of deposits and holdings against the shared flags:
    minutes), ``victim`` (a request from the victim or its partners: hours), ``law_enforcement`` (a
    request or court order: days to weeks; Circle acts only on these). The earliest channel that
    acts freezes the lot if it is still there. Lots worth less than ``min_usd`` are not acted on.
    """

    screening: ScreeningChannel = Field(default_factory=ScreeningChannel, description="screening against the shared flags (software)")
    victim: VictimChannel = Field(default_factory=VictimChannel, description="a request from the victim or its partners")
    law_enforcement: Channel = Field(default_factory=Channel, description="a law-enforcement request or court order")
    min_usd: Annotated[float, Field(ge=0.0)] = Field(default=0.0, description="lots worth less than this (USD) are not acted on")


class AccountHolds(Strict):
    """Deposits an exchange keeps in the account for a while, whatever the launderer wants: a
    review of a large deposit or a new account, withdrawal limits, selling in chunks. While held, a
    deposit can still be frozen by any channel (Binance recovered $5.8 M of Ronin's deposits, made
    days before the theft was discovered; Harmony's second freeze came four weeks after the
    deposits: incidents.md)."""

    probability: Probability = Field(default=0.0, description="share of deposits held")
    duration: Delay = Field(default_factory=lambda: LogNormalDelay(dist="lognormal", median=14 * 24.0, sigma=1.0),
                            description="how long a held deposit stays (from the deposit)")


class VenueBase(Strict):
    jurisdiction: Jurisdiction
    halts: bool = Field(default=False, description="can be halted (a halt makes it refuse new funds)")
    recovery: Recovery = Field(default_factory=Recovery, description="re-identification of value whose trail was lost at this venue")

    def budget_terms(self, scenario: Scenario, hop_kind: str, alternative: int) -> BudgetTerms:
        """Bounds on what a hop through this venue creates (every venue kind declares its own)."""
        raise NotImplementedError(f"venue kind {getattr(self, 'kind', type(self).__name__)!r} declares no budget terms")


class OtcVenue(VenueBase):
    """An OTC broker or bank off-ramp: value that reaches it leaves the chain (cashed out).

    ``capacity_usd_per_day`` (or a shared ``capacity_pool``) is how much it can convert a day; the
    desk books deposits only ``queue`` ahead, so the rest of a large theft waits on the chain, in the
    launderer's wallets, and tries again — one estimate puts DPRK's OTC need at ~$51 M a month.
    """

    kind: Literal["otc"]
    delay: Delay = ZERO_DELAY
    haircut: Fraction = Field(default=0.0, description="share of the value kept by the broker")
    capacity_usd_per_day: Annotated[float, Field(gt=0.0)] | None = Field(default=None, description="none = unlimited (or the pool's)")
    capacity_pool: Name | None = Field(default=None, description="draw on a capacity shared with other desks and thefts (capacity_pools)")
    queue: Duration = Field(default=24.0, description="with a capacity: how far ahead the desk books deposits; the rest waits in the launderer's wallets and retries")
    capacity_note: str = Field(default="", max_length=500, description="why this capacity (the source, or the assumption): silences the plausibility warning")

    @model_validator(mode="after")
    def _one_capacity(self) -> "OtcVenue":
        if self.capacity_pool is not None and self.capacity_usd_per_day is not None:
            raise ValueError("give capacity_usd_per_day or capacity_pool, not both")
        return self

    def budget_terms(self, scenario: Scenario, hop_kind: str, alternative: int) -> BudgetTerms:
        return OFF_CHAIN


class DexVenue(VenueBase):
    """A decentralised exchange: swaps one asset for another on the same chain.

    Output value = input x (1 - fee) x (1 - impact), impact = trade / (trade + pool_depth_usd)
    (a constant-product pool), so splitting a trade cuts its cost.
    """

    kind: Literal["dex"]
    jurisdiction: Jurisdiction = "none"
    fee: Fraction = 0.003
    pool_depth_usd: Annotated[float, Field(gt=0.0)] = 50_000_000.0
    capacity_usd_per_day: Annotated[float, Field(gt=0.0)] | None = Field(
        default=None, description="how much the launderer can swap here a day without moving the price (none: any amount at once); the rest waits in its wallets")
    queue: Duration = Field(default=1.0, description="with a capacity: how far ahead swaps are lined up; the rest waits in the launderer's wallets and retries")

    def budget_terms(self, scenario: Scenario, hop_kind: str, alternative: int) -> BudgetTerms:
        return THROUGH


class BridgeVenue(VenueBase):
    """Moves value to an asset on another chain after a delay, for a fee (THORChain-like swap or a wrapped-asset bridge)."""

    kind: Literal["bridge"]
    links_legs: bool = Field(default=True, description="its outbound transfer names the inbound one (THORChain), so tracing software follows it; false: analysts must match the legs (a judgment point)")
    delay: Delay = ZERO_DELAY
    fee: Fraction = 0.001
    fee_usd: Annotated[float, Field(ge=0.0)] = 0.0

    def budget_terms(self, scenario: Scenario, hop_kind: str, alternative: int) -> BudgetTerms:
        return THROUGH


class ExchangeVenue(VenueBase):
    """A centralised exchange: deposit, optionally trade, withdraw (or cash out to fiat).

    A traced deposit is frozen if it is still on the exchange ``freeze_latency`` after it was
    flagged, provided the exchange freezes at all (``freezes``) and complies this time
    (``compliance``). ``kyc`` is the share of accounts tied to a real identity. An eXch-like no-KYC
    swap service is an exchange with ``kyc: 0`` and ``freezes: false``.
    """

    kind: Literal["exchange"]
    kyc: Probability = 1.0
    freezes: bool = True
    compliance: Probability = Field(default=1.0, description="chance it acts on a freeze request or sanction")
    freeze_latency: Delay = Field(default_factory=lambda: FixedDelay(dist="fixed", value=6.0))
    delay: Delay = Field(default=ZERO_DELAY, description="time funds sit on the exchange before withdrawal")
    fee: Fraction = 0.001
    haircut: Fraction = Field(default=0.0, description="fiat off-ramp cost when used for cash_out")
    response: Response | None = Field(default=None, description="freezes by channel (replaces compliance and freeze_latency when given)")
    min_dwell: Delay = Field(default_factory=lambda: LogNormalDelay(dist="lognormal", median=1.0, sigma=0.5),
                             description="the shortest stay the exchange allows (confirmations, trade, withdrawal processing): an exposure-aware launderer stays no longer")
    holds: AccountHolds | None = Field(default=None, description="deposits kept in the account for a review or by withdrawal limits (none: no holds)")

    def budget_terms(self, scenario: Scenario, hop_kind: str, alternative: int) -> BudgetTerms:
        return OFF_CHAIN if hop_kind == "cash_out" else THROUGH


class IssuerVenue(VenueBase):
    """A stablecoin issuer (Tether/Circle-like): freezes traced addresses holding its token after a latency."""

    kind: Literal["issuer"]
    asset: Name
    freeze_latency: Delay = Field(default_factory=lambda: FixedDelay(dist="fixed", value=24.0))
    compliance: Probability = 1.0
    response: Response | None = Field(default=None, description="freezes by channel (replaces compliance and freeze_latency when given)")

    def budget_terms(self, scenario: Scenario, hop_kind: str, alternative: int) -> BudgetTerms:
        return ((0.0, 0.0), (0.0, 0.0), (0.0, 0.0))  # not a hop venue: no lot passes through it


class CustodialMixerVenue(VenueBase):
    """A custodial mixer (Sinbad/Blender/ChipMixer-like): holds deposits a while and pays out from its reserves.

    Payouts come from the mixer's own wallets, so the trail survives only with
    ``tracing.hop_success.custodial_mixer``. What it holds when it is shut down is seized.
    """

    kind: Literal["custodial_mixer"]
    delay: Delay = Field(default_factory=lambda: ExponentialDelay(dist="exponential", mean=24.0))
    fee: Fraction = 0.02
    payouts: Annotated[int, Field(ge=1, le=10_000)] = Field(default=4, description="fresh wallets each deposit is paid out to")

    def budget_terms(self, scenario: Scenario, hop_kind: str, alternative: int) -> BudgetTerms:
        k = float(self.payouts)  # a deposit, then each lot paid out to ``payouts`` wallets
        return (k, 0.0), (k, 0.0), (1.0 + k, 0.0)


class Demixing(Strict):
    """Chances that the launderer's habits let an analyst link a deposit to its withdrawal.

    P(link) = h + (1 - h) / A, with h = 1 - prod(1 - h_i) over the habits the launderer shows and A
    the anonymity set (notes in the pool) at withdrawal. Defaults from the Tornado Cash heuristic
    studies: address reuse and transactional linkage link 5.1-12.6 % of withdrawals, FIFO temporal
    matching adds 15-22 pp (arXiv 2510.09433); gas-price fingerprints and multi-denomination
    matching are among Tutela's heuristics (arXiv 2201.06811; Wang et al., arXiv 2201.09035).
    """

    address_reuse: Probability = Field(default=0.09, description="link chance when the launderer reuses or links addresses")
    quick_round_trip: Probability = Field(default=0.18, description="link chance when withdrawing soon after depositing (FIFO timing)")
    quick_threshold: Duration = Field(default=24.0, description="a round trip shorter than this counts as quick")
    unique_amounts: Probability = Field(default=0.05, description="link chance from multi-denomination / unique totals")
    gas_fingerprint: Probability = Field(default=0.05, description="link chance from a distinctive gas price")


class Habits(Strict):
    """Which demixing habits the launderer shows in a pool mixer."""

    reuses_addresses: bool = False
    unique_amounts: bool = True
    gas_fingerprint: bool = False


class PoolMixerVenue(VenueBase):
    """A pool mixer (Tornado-Cash-like): fixed denominations, honest users making the anonymity set.

    Honest users deposit into each pool at ``honest_deposits_per_day`` (split over pools by
    ``honest_pool_weights``) and each honest note is withdrawn after an exponential time of mean
    ``honest_holding``; the pool's anonymity set is the number of notes in it. The launderer
    deposits whole denominations (the remainder below the smallest stays in the wallet and moves
    on), waits ``delay``, withdraws each note to a fresh address and pays ``relayer_fee``.
    """

    kind: Literal["pool_mixer"]
    jurisdiction: Jurisdiction = "none"
    asset: Name
    denominations: list[Annotated[float, Field(gt=0.0)]] = Field(default_factory=lambda: [0.1, 1.0, 10.0, 100.0], min_length=1)
    initial_notes: list[Annotated[int, Field(ge=0)]] | None = Field(default=None, description="notes in each pool at time 0 (default: the honest steady state)")
    honest_deposits_per_day: Annotated[float, Field(ge=0.0)] = 200.0
    honest_pool_weights: list[Annotated[float, Field(ge=0.0)]] | None = None
    honest_holding: Annotated[Duration, Field(gt=0.0)] = Field(default=30 * 24.0, description="mean time an honest note stays in the pool (hours; > 0)")
    background_step: Annotated[Duration, Field(ge=1.0 / 60.0)] = Field(default=1.0, description="honest traffic is generated in batches of this length (hours; >= 1 minute)")
    delay: Delay = Field(default_factory=lambda: ExponentialDelay(dist="exponential", mean=48.0))
    relayer_fee: Fraction = 0.005
    demixing: Demixing = Field(default_factory=Demixing)
    habits: Habits = Field(default_factory=Habits)

    def budget_terms(self, scenario: Scenario, hop_kind: str, alternative: int) -> BudgetTerms:
        """Notes: at most the value over the smallest denomination (alternative 0), or greedy, largest
        first: value over the largest plus fewer than d[k+1]/d[k] + 1 of each smaller one per lot (1)."""
        price = scenario.assets[self.asset].price_usd
        d = self.denominations
        if alternative == 0:
            per_usd = div(1.0, mul(price, d[0]))
            return (1.0, per_usd), (1.0, per_usd), (0.0, mul(2.0, per_usd))
        per_lot = add(*(floor(div(d[k + 1], d[k])) + 1.0 for k in range(len(d) - 1)))
        per_usd = div(1.0, mul(price, d[-1]))
        return (1.0 + per_lot, per_usd), (1.0 + per_lot, per_usd), (mul(2.0, per_lot), mul(2.0, per_usd))

    @model_validator(mode="after")
    def _pools(self) -> "PoolMixerVenue":
        n = len(self.denominations)
        if sorted(self.denominations) != list(self.denominations) or len(set(self.denominations)) != n:
            raise ValueError("denominations must be strictly increasing")
        for field in ("initial_notes", "honest_pool_weights"):
            value = getattr(self, field)
            if value is not None and len(value) != n:
                raise ValueError(f"{field} needs one entry per denomination ({n})")
        return self


Venue = Annotated[
    Union[OtcVenue, DexVenue, BridgeVenue, ExchangeVenue, IssuerVenue, CustodialMixerVenue, PoolMixerVenue],
    Field(discriminator="kind"),
]
VENUE_KINDS = ("otc", "dex", "bridge", "exchange", "issuer", "custodial_mixer", "pool_mixer")


# --- playbook hops ---------------------------------------------------------------------------


class TransferHop(Strict):
    """Move every lot to one fresh wallet."""

    hop: Literal["transfer"]
    delay: Delay = ZERO_DELAY


class SplitHop(Strict):
    """Fan each lot out over ``wallets`` fresh wallets (shares drawn from a Dirichlet)."""

    hop: Literal["split"]
    wallets: Annotated[int, Field(ge=1, le=1_000_000)]
    concentration: Annotated[float, Field(ge=MIN_CONCENTRATION, le=MAX_CONCENTRATION)] = Field(
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


class DormantHop(Strict):
    """Long dormancy in waves, the way Lazarus leaves converted value in thousands of wallets for
    weeks or months and then moves it out in batches.

    Each lot is drawn into one of ``waves`` waves (equal chances); wave k leaves ``first`` + k x
    ``every`` after the theft, each lot within ``spread`` of its wave's time, and never before it
    arrived. With ``quiet``, a wave also waits until nothing of the theft has been frozen or seized
    for that long (attention fading).
    """

    hop: Literal["dormant"]
    waves: Annotated[int, Field(ge=1, le=1000)] = 1
    first: Duration = Field(description="the first wave leaves this long after the theft")
    every: Duration = Field(default=30 * 24.0, description="time between waves")
    spread: Delay = Field(default=ZERO_DELAY, description="within a wave, each lot leaves after a draw of this")
    quiet: Duration = Field(default=0.0, description="a wave waits until nothing of the theft was frozen or seized for this long (0: no wait)")


class ConsolidateHop(Strict):
    """Gather every lot of the theft that is still moving into ``wallets`` wallets (waits for all)."""

    hop: Literal["consolidate"]
    wallets: Annotated[int, Field(ge=1, le=1_000_000)]
    delay: Delay = ZERO_DELAY


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


Substitutes = Annotated[
    list[Name],
    BeforeValidator(_one_or_many),
    Field(min_length=1, description="a venue, or a list of substitutes tried in order when one refuses"),
]


class VenueHopBase(Strict):
    venue: Substitutes
    delay: Delay = Field(default=ZERO_DELAY, description="dwell at the new address after leaving the venue")
    retry: Delay = Field(default_factory=lambda: FixedDelay(dist="fixed", value=24.0),
                         description="wait before trying again when every substitute refuses")


class CashOutHop(VenueHopBase):
    """Hand the value to an off-ramp (otc or exchange); it leaves the chain."""

    hop: Literal["cash_out"]


class SwapHop(VenueHopBase):
    """Swap to another asset on a DEX (e.g. stablecoins to ETH before the issuer can freeze them)."""

    hop: Literal["swap"]
    to: Name


class BridgeHop(VenueHopBase):
    """Move to an asset on another chain through a bridge."""

    hop: Literal["bridge"]
    to: Name


class ExchangeHop(VenueHopBase):
    """Deposit at an exchange, optionally trade to ``to``, withdraw to a fresh wallet."""

    hop: Literal["exchange"]
    to: Name | None = None


class MixHop(VenueHopBase):
    """Pass through a mixer (pool or custodial) — or, as a substitute, a bridge to asset ``to``.

    Listing a bridge after the mixers models the switch Lazarus made after the Tornado Cash
    designation: when every mixer refuses (or is avoided), the funds cross chains instead.
    """

    hop: Literal["mix"]
    to: Name | None = Field(default=None, description="asset reached when a bridge substitute is used")


FUNCTIONS: tuple[str, ...] = ("mixing", "cross_chain", "swapping", "off_ramp")
# Venue kinds that can serve each function, and the fixed-playbook hop a service of that kind
# stands for (so a deposit is the same ledger row as in a fixed playbook).
FUNCTION_KINDS: dict[str, dict[str, str]] = {
    "mixing": {"pool_mixer": "mix", "custodial_mixer": "mix"},
    "cross_chain": {"bridge": "bridge", "exchange": "exchange"},
    "swapping": {"dex": "swap", "exchange": "exchange"},
    "off_ramp": {"otc": "cash_out", "exchange": "cash_out"},
}
Function = Literal["mixing", "cross_chain", "swapping", "off_ramp"]


def _one_or_many_functions(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class ServiceHop(Strict):
    """Use a service by its function: the launderer chooses, lot by lot, among the services of
    ``market.services`` that serve ``function`` and are open now (``market.choice``, a logit over
    cost, delay and perceived risk with a switching cost). A list of functions lets it substitute
    across them (mixers or bridges). A venue that refuses passes the lot to a choice among the rest;
    when all refuse, it tries again after ``retry``. With one service this is the fixed hop.
    """

    hop: Literal["service"]
    function: Annotated[list[Function], BeforeValidator(_one_or_many_functions), Field(min_length=1)] = Field(
        description="a function (mixing, cross_chain, swapping, off_ramp), or a list the launderer may substitute across")
    to: Name | None = Field(default=None, description="asset reached through a cross_chain or swapping service")
    delay: Delay = Field(default=ZERO_DELAY, description="dwell at the new address after leaving the service")
    retry: Delay = Field(default_factory=lambda: FixedDelay(dist="fixed", value=24.0),
                         description="wait before trying again when every open service refuses")


class Branch(Strict):
    share: Annotated[float, Field(gt=0.0, le=1.0)]
    playbook: list["Hop"] = Field(min_length=1)


class BranchHop(Strict):
    """Send shares of every lot down parallel sub-playbooks; each rejoins at the next hop."""

    hop: Literal["branch"]
    branches: list[Branch] = Field(min_length=1)

    @model_validator(mode="after")
    def _shares(self) -> "BranchHop":
        total = math.fsum(b.share for b in self.branches)
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"branch shares must sum to 1 (they sum to {total:g})")
        return self


Hop = Annotated[
    Union[TransferHop, SplitHop, PeelHop, WaitHop, DormantHop, ConsolidateHop, CashOutHop, SwapHop, BridgeHop,
          ExchangeHop, MixHop, BranchHop, ServiceHop],
    Field(discriminator="hop"),
]
Branch.model_rebuild()
BranchHop.model_rebuild()
HOP_KINDS: tuple[str, ...] = ("theft", "transfer", "split", "peel", "wait", "consolidate", "cash_out", "fee",
                              "swap", "bridge", "exchange", "pool_mixer", "custodial_mixer", "branch",
                              "freeze", "seizure", "honest", "recover")
TRACEABLE_HOPS = ("transfer", "split", "peel", "consolidate", "cash_out", "swap", "bridge", "exchange",
                  "custodial_mixer", "branch")  # hop kinds whose trail survival a scenario may set
AUTOMATIC_HOPS = ("transfer", "split", "peel", "consolidate", "branch", "swap", "bridge")  # software follows them (a bridge if it links its legs)
JUDGMENT_HOPS = ("pool_mixer", "custodial_mixer", "exchange", "cash_out", "bridge")  # analysts decide (a bridge if it does not)
VENUE_FOR_HOP = {
    "cash_out": ("otc", "exchange"),
    "swap": ("dex",),
    "bridge": ("bridge",),
    "exchange": ("exchange",),
    "mix": ("pool_mixer", "custodial_mixer", "bridge"),
}


# --- knowledge ---------------------------------------------------------------------------------


HopSuccess = dict[Literal[TRACEABLE_HOPS], Probability]  # type: ignore[valid-type]


class Tracer(Strict):
    """One investigating party: an analytics firm, the victim, law enforcement or a crowd bounty.

    ``hop_success`` gives its chance to follow one hop of each kind (default: the scenario-wide
    ``tracing.hop_success``); without ``cross_chain`` it cannot follow bridges at all. A crowd's
    reports are right with probability ``report_quality``, which scales its success.
    """

    name: Name
    kind: Literal["analytics", "victim", "law_enforcement", "crowd"]
    latency: Duration = Field(default=0.0, description="time to follow one hop once work on it starts")
    capacity_per_hour: Annotated[float, Field(gt=0.0)] | None = Field(default=None, description="hops it can follow per hour (none = unlimited)")
    cross_chain: bool = True
    hop_success: HopSuccess = Field(default_factory=dict)
    report_quality: Probability = 1.0
    joins_after: Duration = Field(default=0.0, description="starts this long after the discovery (e.g. a bounty announced later)")


class Sharing(Strict):
    """How traced addresses reach venues and issuers: after ``latency``, to the venues in ``coverage``."""

    latency: Duration = Field(default=0.0, description="from traced to flagged at the venues (0: at once)")
    coverage: list[Name] | Literal["all"] = "all"


class Tracing(Strict):
    """What the investigators can follow, how fast, and whom they tell.

    The trail starts at the theft address once the theft is discovered. Tracing software follows
    *automatic* hops (transfers, splits, peels, consolidations, branches, DEX swaps, bridges that
    link their legs) ``auto_latency`` after they happen, with no analyst capacity; the trail is
    lost there only with ``1 - hop_success[hop]`` (default: never). At *judgment points* (pool-
    and custodial-mixer payouts, exchange withdrawals, cash-out deposits, bridges that do not link
    their legs) analysts must decide: each lot they were following joins the team's work queue,
    is judged once the team has worked through the items before it (capacity, latency), and keeps
    its trail with the team's success ``1 - prod(1 - p_i)`` over its tracers (pool mixers: the
    demixing chance). Until then it is dark. Lost value may be re-identified later (``recovery``
    here for automatic-hop losses, each venue's own ``recovery`` for its judgment points). Without
    tracers the team is instant: every followable hop is followed at once.
    """

    hop_success: HopSuccess = Field(
        default_factory=dict, description="per-hop chance that a followed trail stays followed (default 1.0)"
    )
    tracers: list[Tracer] = Field(default_factory=list)
    auto_latency: Duration = Field(default=10.0 / 60.0, description="delay of tracing software following an automatic hop (with tracers)")
    dependence: Probability = Field(
        default=0.0, description="how much tracers share methods at a judgment point: 0 = independent successes, 1 = the team is as good as its best tracer")
    sharing: Sharing = Field(default_factory=Sharing)
    resume_at_kyc: Probability = Field(
        default=0.5, description="chance a lost trail resumes when funds enter a KYC venue (times its kyc level)"
    )
    recovery: Recovery = Field(default_factory=Recovery, description="re-identification of value lost at automatic hops")
    recovery_step: Annotated[Duration, Field(ge=1.0 / 60.0)] = Field(default=24.0, description="re-identifications due are applied in sweeps this far apart")

    def success(self, hop: str) -> float:
        return float(self.hop_success.get(hop, 1.0))  # type: ignore[call-overload]


# --- interventions ----------------------------------------------------------------------------


class InterventionBase(Strict):
    name: Name | None = None
    at: Duration = Field(description="when: time since the scenario's time zero (or since the first theft's discovery with after_discovery)")
    after_discovery: bool = False


class Designation(InterventionBase):
    """A sanction designation of a venue (Tornado-Cash-like, OFAC 8 Aug 2022).

    From then, venues in ``complying`` jurisdictions refuse funds whose history touched it (each
    time with their ``compliance``); honest deposits drop by ``volume_drop`` and honest notes leave
    at an extra ``exodus_per_day`` (the anonymity set shrinks); the contract keeps working, and
    honest volume moves linearly to ``recovery_level`` of its old level over ``recovery_time`` (for
    Tornado Cash it kept falling: -68 % in the first month, still -89 % a year later).
    """

    kind: Literal["designation"]
    venue: Name
    complying: list[Annotated[str, Field(pattern=r"^([A-Z]{2}|EU|offshore|none)$")]] = Field(default_factory=lambda: ["US", "EU", "JP", "KR"])
    volume_drop: Probability = Field(default=0.7, description="Chainalysis: Tornado inflow -68 % in 30 days; deposits -71 % (Liu et al. 2025)")
    exodus_per_day: Annotated[float, Field(ge=0.0)] = 0.02
    recovery_level: Annotated[float, Field(ge=0.0, le=2.0)] = Field(default=0.108, description="a year later Tornado inflows were still 89.2 % below the pre-sanction level (Chainalysis, 2023)")
    recovery_time: Duration = Field(default=365 * 24.0, description="the time to reach recovery_level (Chainalysis's figure is a year after)")


class Operators(InterventionBase):
    """Designation or indictment of operators, relayers and front-ends (Tornado Cash, Aug 2023)."""

    kind: Literal["operators"]
    venue: Name
    honest_rate_factor: Annotated[float, Field(ge=0.0, le=1.0)] = 0.6
    relayer_fee_factor: Annotated[float, Field(ge=1.0, le=100.0)] = 2.0


class Seizure(InterventionBase):
    """Law enforcement seizes traced value in reachable venues and value frozen there."""

    kind: Literal["seizure"]
    jurisdictions: list[Annotated[str, Field(pattern=r"^([A-Z]{2}|EU|offshore|none)$")]] = Field(default_factory=lambda: ["US"])
    venues: list[Name] | None = Field(default=None, description="limit to these venues (default: all in reach)")
    share: Probability = Field(default=1.0, description="chance each reachable lot is actually seized (about this share of the value)")


class Shutdown(InterventionBase):
    """A venue is shut down (custodial mixer, off-ramp, exchange) and what it holds is seized."""

    kind: Literal["shutdown"]
    venue: Name


class Halt(InterventionBase):
    """A venue that can halt (``halts: true``) stops taking new funds, from ``at`` for ``duration``."""

    kind: Literal["halt"]
    venue: Name
    duration: Duration | None = None


class Defences(InterventionBase):
    """Hardened defences at exchanges: more KYC, faster freezes, more compliance."""

    kind: Literal["defences"]
    venues: list[Name] | None = Field(default=None, description="default: every exchange")
    kyc: Probability | None = None
    freeze_latency: Delay | None = None
    compliance: Probability | None = None
    freezes: bool | None = Field(default=None, description="make them freeze flagged deposits (or stop); default: unchanged")


Intervention = Annotated[
    Union[Designation, Operators, Seizure, Shutdown, Halt, Defences], Field(discriminator="kind")
]


class CapacityPool(Strict):
    """Off-ramp capacity shared by several desks (and every theft): the launderer's network of OTC
    brokers converts at most ``usd_per_day``, first come, first served across its desks. A scenario
    of one incident among many the same network serves at once (DPRK's thefts of a year) gets its
    ``share`` of it; a scenario that holds all those thefts (a stream) keeps the whole."""

    usd_per_day: Annotated[float, Field(gt=0.0)] = Field(description="USD the pool converts a day")
    share: Annotated[float, Field(gt=0.0, le=1.0)] = Field(
        default=1.0,
        description="the part of usd_per_day this scenario's thefts get: a network serving the same launderer's other "
                    "thefts at the same time gives one incident only its share (1: the scenario holds every theft it serves)")
    note: str = Field(default="", max_length=500, description="where the capacity comes from (a source, or ASSUMPTION)")


class Exposure(Strict):
    """How a launderer keeps value away from freezers (Orbit and Phemex swapped freezable stablecoins
    first; value waits as ETH or BTC, not as USDT — incidents.md).

    * ``swap_first``: a lot in a freezable asset takes none of the playbook's voluntary delays
      (waits, dormancy, the delays after splits and transfers) before the hop that swaps it out;
    * ``just_in_time``: a conversion into a freezable asset waits, in the current form, until the
      off-ramp that the playbook leads to could book the value within its queue plus ``lead_time``
      (backpressure); each conversion holds a claim on the off-ramp for ``claim_for``, and the
      off-ramp takes claimed value when it arrives;
    * ``short_dwell``: at an exchange that freezes, the launderer leaves as soon as the exchange
      allows (its ``min_dwell``), not after the hop's ``delay``.
    """

    swap_first: bool = True
    just_in_time: bool = True
    short_dwell: bool = True
    lead_time: Duration = Field(default=24.0, description="just_in_time converts what the off-ramp could book within its queue plus this (the time a converted lot takes to get there)")
    claim_for: Annotated[Duration, Field(gt=0.0)] = Field(default=72.0, description="how long a conversion's claim on the off-ramp's capacity lasts (until its value arrives there)")
class Service(Strict):
    """A venue offered to the launderer for a function, with what the choice rule reads of it.

    The venue does the work (deposits, fees, freezes, tracing): the service only says when it is
    open and how it looks to the launderer. ``cost`` and ``delay`` default to the venue's own
    (its fee plus haircut, the mean of its delay).
    """

    function: Annotated[list[Function], BeforeValidator(_one_or_many_functions), Field(min_length=1)] = Field(
        description="what it is used for: mixing, cross_chain, swapping, off_ramp (or a list)")
    opens: Duration = Field(default=0.0, description="launch: offered from this time (since time zero)")
    closes: Duration | None = Field(default=None, description="offered until this time (a closure; none: open to the end)")
    cost: Fraction | None = Field(default=None, description="share of the value the launderer expects to pay (default: the venue's fee + haircut)")
    delay: Duration | None = Field(default=None, description="time the launderer expects the value to spend inside (default: the mean of the venue's delay)")
    perceived_risk: Probability = Field(default=0.0, description="the launderer's prior chance of losing value there")
    note: str = Field(default="", max_length=500, description="where its dates and numbers come from (a source, or ASSUMPTION)")

    @model_validator(mode="after")
    def _dates(self) -> "Service":
        if self.closes is not None and self.closes <= self.opens:
            raise ValueError("closes must be after opens")
        return self


class Choice(Strict):
    """The launderer's choice rule: a multinomial logit. A lot at a service step goes to open
    service j with probability exp(U_j) / sum_k exp(U_k), where

        U_j = -cost_weight * cost_j - delay_weight * delay_j (days) - risk_weight * risk_j(t)
              + inertia * [j is the service this step used last]

    and the perceived risk is learned from what the launderer observes at j: a loss there (a freeze
    or seizure of its value) adds its weight times the share of the value it had at stake there
    that was taken, fading as exp(-age / memory), and ``spillover`` of it reaches the other
    services like j ("others like it"); a state of j (designated, halted, shut down) adds its weight
    for as long as it holds and fades only from its end; alerts on its own lots add ``alert`` times
    how much more of its value inside j is flagged than of all its value in play: risk_j(t) =
    perceived_risk_j + states in force + sum of the faded weights + alert term (a score that may exceed 1). Reactions (off by default): above ``fragment_above`` a lot is split
    into smaller deposits made one after another, each choosing again with what the launderer has
    learned meanwhile; above ``pause_above`` at every open service, lots wait. Every default is an
    ASSUMPTION.
    """

    cost_weight: Annotated[float, Field(ge=0.0, le=1e6)] = Field(default=100.0, description="utility lost per unit of cost share (100: 1 % of fee = 1)")
    delay_weight: Annotated[float, Field(ge=0.0, le=1e6)] = Field(default=0.1, description="utility lost per day of expected delay")
    risk_weight: Annotated[float, Field(ge=0.0, le=1e6)] = Field(default=10.0, description="utility lost per unit of perceived risk")
    inertia: Annotated[float, Field(ge=0.0, le=1e6)] = Field(default=0.5, description="switching cost: utility added to the service used last")
    memory: Annotated[Duration, Field(gt=0.0)] = Field(default=30 * 24.0, description="time constant of the exponential memory of losses (and of states once they end)")
    spillover: Probability = Field(default=0.3, description="share of an event's weight felt at the other services of the same function")
    freeze: Probability = Field(default=0.5, description="risk added by a freeze of all the value the launderer had at stake at the service (a part: that share of it)")
    seizure: Probability = Field(default=0.8, description="risk added by a seizure of all the launderer's value inside the service (a part: that share of it)")
    designation: Probability = Field(default=0.5, description="risk added by a designation of the service, for as long as it is in force")
    halt: Probability = Field(default=0.3, description="risk added by a halt of the service while it lasts (fading after)")
    shutdown: Probability = Field(default=1.0, description="risk added by a shutdown (takedown) of the service, for good")
    alert: Probability = Field(default=0.2, description="risk added per unit of excess flagged share of the launderer's value inside the service (over all its value in play)")
    spillover_among: Literal["kind", "function"] = Field(
        default="kind", description="'others like it': the open services of a shared function that are the same kind of venue "
                                    "(kind), or every open service of a shared function (function)")
    spillover_of: list[Literal["freeze", "seizure", "designation", "halt", "shutdown"]] = Field(
        default_factory=lambda: ["freeze", "seizure"], max_length=5,
        description="events whose spill-over reaches the services like the one where they happened: the launderer's "
                    "losses there (freeze, seizure) by default; actions against one operator (designation, halt, shutdown) stay with it")
    fragment_above: Annotated[float, Field(gt=0.0, le=1e6)] | None = Field(
        default=None, description="perceived risk of the chosen service above which a lot is split into `fragments` "
                                  "deposits, `fragment_every` apart, each choosing again (none: never)")
    fragments: Annotated[int, Field(ge=2, le=100)] = Field(default=4, description="deposits a fragmented lot is split into")
    fragment_every: Annotated[Duration, Field(gt=0.0)] = Field(default=24.0, description="time between a fragmented lot's deposits")
    pause_above: Annotated[float, Field(gt=0.0, le=1e6)] | None = Field(
        default=None, description="when every open service of the step is perceived riskier than this, lots wait "
                                  "until one is not (none: never)")


class Market(Strict):
    """The services the launderer chooses among at ``service`` hops, and how it chooses (issue 21)."""

    services: dict[Name, Service] = Field(default_factory=dict, max_length=64, description="by venue name: the venue offered as a service")
    choice: Choice = Field(default_factory=Choice)


class Launderer(Strict):
    """How the launderer adapts."""

    avoids_designated: bool = Field(default=True, description="treat designated venues as refusing (fall back to substitutes)")
    exposure: Exposure | None = Field(default=None, description="keep value away from freezers (none: the playbook as written)")


class Repeat(Strict):
    """A stream instead of one event: ``count`` takings, ``every`` apart (e.g. IT workers' salaries)."""

    count: Annotated[int, Field(ge=1, le=1_000_000)]
    every: Delay


class Theft(Strict):
    """One theft (or, with ``repeat``, a stream of illicit income): what, when, from whom, when noticed.

    For a stream, ``stolen`` is one instalment and ``discovered_after`` counts from the first; once
    discovered, later instalments are followed from the moment they arrive.
    """

    name: Name
    victim: str = Field(min_length=1, max_length=200)
    victim_kind: Literal["exchange", "token_project", "bridge", "wallet", "other"] = Field(
        default="other", description="an exchange or a token's own project presses freezers harder (a Response's victim.strong)")
    time: Duration = 0.0
    stolen: list[StolenAmount] = Field(min_length=1)
    discovered_after: Duration = Field(default=0.0, description="investigators start tracing this long after the theft")
    playbook: list[Hop] | None = Field(default=None, description="this theft's own playbook (default: the scenario's)")
    repeat: Repeat | None = None

    @property
    def instalments(self) -> int:
        return 1 if self.repeat is None else self.repeat.count


# --- honest users at every venue kind (optional; default: none) ---------------------------------

HONEST_KINDS = ("exchange", "dex", "bridge", "otc", "custodial_mixer")  # pool mixers model their own honest users
COMMINGLED_BY_DEFAULT = ("custodial_mixer",)  # venues whose wallets hold every user's funds together


class HonestVenueFlow(Strict):
    """Honest users of one venue: deposits (swaps, crossings, trades) at a rate, each a lognormal
    amount; each user's value comes back out — to a fresh honest wallet — after an exponential time
    of mean ``holding`` (0: in the same step, a swap or a crossing), minus the venue's ``fee``."""

    venue: Name | None = Field(default=None, description="the venue these users go to (default: the entry's own name); several entries may name one venue, e.g. its users of different assets")
    users_per_day: Annotated[float, Field(ge=0.0, le=1e8)] = Field(description="honest deposits (swaps, crossings, trades) a day, undisturbed")
    median_usd: Annotated[float, Field(gt=0.0, le=1e9)] = Field(default=1000.0, description="median USD of one honest deposit")
    sigma: Annotated[float, Field(ge=0.0, le=4.0)] = Field(default=1.5, description="lognormal spread of the amounts (mean = median x exp(sigma^2/2))")
    asset: Name = Field(description="the asset honest users bring")
    to: Name | None = Field(default=None, description="the asset they take out (a swap or a bridge; default: the same)")
    holding: Duration = Field(default=0.0, description="mean time an honest user's value stays inside (hours; 0: out in the same step)")
    commingled: bool | None = Field(default=None, description="the venue keeps every user's funds in the same wallets, so a seizure there takes honest funds too (default: custodial mixers only)")
    cash_out: Probability | None = Field(default=None, description="share of honest users whose value leaves the chain here (sold for cash) instead of going to a wallet (default: 0.5 at OTC desks, else 0)")
    large_share: Probability = Field(default=0.0, description="share of the deposits made by large holders (institutions, market makers), whose amounts have median large_median_usd")
    large_median_usd: Annotated[float, Field(gt=0.0, le=1e10)] = Field(default=200_000.0, description="median USD of a large holder's deposit")
    p2p: Probability = Field(default=0.0, description="OTC desks: share of the launderer's cash-outs here that are P2P trades, paid on chain to an honest buyer's wallet")
    source: str = Field(default="", max_length=500, description="where the volume comes from (a citation, or ASSUMPTION)")


class HonestTransfers(Strict):
    """Honest wallet-to-wallet payments in one asset: a Poisson number every step, each a lognormal
    amount from a recent honest recipient to a fresh honest wallet."""

    per_day: Annotated[float, Field(ge=0.0, le=1e8)] = Field(description="honest transfers a day")
    median_usd: Annotated[float, Field(gt=0.0, le=1e9)] = Field(default=300.0, description="median USD of one transfer")
    sigma: Annotated[float, Field(ge=0.0, le=4.0)] = Field(default=1.5, description="lognormal spread of the amounts")
    large_share: Probability = Field(default=0.0, description="share of the transfers made by large holders, whose amounts have median large_median_usd")
    large_median_usd: Annotated[float, Field(gt=0.0, le=1e10)] = Field(default=200_000.0, description="median USD of a large holder's transfer")
    source: str = Field(default="", max_length=500, description="where the volume comes from (a citation, or ASSUMPTION)")


class HonestFlow(Strict):
    """Honest traffic at the listed venues, sampled every ``step`` in whole arrays (like a pool
    mixer's background traffic), and the rule by which policy reaches it (docs/model.md)."""

    step: Annotated[Duration, Field(ge=1.0 / 60.0)] = Field(default=1.0, description="honest traffic is generated in batches of this length (hours; >= 1 minute)")
    venues: dict[Name, HonestVenueFlow] = Field(min_length=1, description="venue name (or any name, with `venue:`) -> honest users")
    memory: Annotated[Duration, Field(gt=0.0)] = Field(
        default=30 * 24.0, description="an honest deposit is funded by an honest withdrawal of the last `memory` (screening and exposure reach it through that)")
    transfers: dict[Name, HonestTransfers] = Field(default_factory=dict, description="asset -> honest wallet-to-wallet payments in it (default: none)")
    merchants: Probability = Field(default=0.0, description="chance that a piece a peel chain peels off is spent at once with an honest merchant (default: 0)")


def honest_problems(scenario: Any) -> list[tuple[tuple[Any, ...], str]]:
    """Cross-references of the section: venues that exist and take honest users, assets that exist."""
    honest = getattr(scenario, "honest", None)
    if honest is None or honest.venues is None:
        return []
    venues, assets = scenario.venues or {}, scenario.assets or {}
    problems: list[tuple[tuple[Any, ...], str]] = []
    for key, flow in honest.venues.items():
        where = ("honest", "venues", key)
        name = key if flow is None or flow.venue is None else flow.venue
        venue = venues.get(name)
        if name not in venues:
            takers = sorted(n for n, v in venues.items() if v is not None and v.kind in HONEST_KINDS)
            problems.append((where, f"unknown venue {name!r} ({'defined: ' + ', '.join(takers) if takers else 'none defined'})"))
        elif venue is not None and venue.kind not in HONEST_KINDS:
            why = ("pool mixers model their own honest users (honest_deposits_per_day)" if venue.kind == "pool_mixer"
                   else "an issuer is not a venue users pass through")
            problems.append((where, f"venue {name!r} is a {venue.kind}: {why} (allowed: {', '.join(HONEST_KINDS)})"))
        if flow is None:
            continue
        if flow.p2p > 0 and venue is not None and venue.kind != "otc":
            problems.append(((*where, "p2p"), f"venue {name!r} is a {venue.kind}: only an OTC desk's cash-outs can be P2P trades (allowed: 0 here)"))
        for field in ("asset", "to"):
            asset = getattr(flow, field)
            if asset is not None and asset not in assets:
                problems.append(((*where, field), f"unknown asset {asset!r} (defined: {', '.join(sorted(assets)) or 'none'})"))
    for asset in honest.transfers or {}:  # (null: pydantic reports it; here nothing to cross-check)
        if asset not in assets:
            problems.append((("honest", "transfers", asset), f"unknown asset {asset!r} (defined: {', '.join(sorted(assets)) or 'none'})"))
    return problems


class Scenario(Strict):
    """A complete scenario: the world, the theft(s), the launderer's playbook and the knowledge model."""

    name: Name
    description: str = ""
    sources: list[str] = Field(default_factory=list, description="where the numbers come from")
    seed: Annotated[int, Field(ge=0, lt=2**63)] = 0
    clock: Clock
    chains: dict[Name, Chain] = Field(min_length=1)
    assets: dict[Name, Asset] = Field(min_length=1)
    venues: dict[Name, Venue] = Field(default_factory=dict, max_length=64)
    thefts: list[Theft] = Field(min_length=1)
    playbook: list[Hop] = Field(default_factory=list)
    tracing: Tracing = Field(default_factory=Tracing)
    interventions: list[Intervention] = Field(default_factory=list)
    launderer: Launderer = Field(default_factory=Launderer)
    capacity_pools: dict[Name, CapacityPool] = Field(default_factory=dict, description="off-ramp capacity shared by desks (otc capacity_pool)")
    profiles: dict[Name, dict[str, Any]] = Field(
        default_factory=dict, description="venue settings shared by name: a venue with 'profile: NAME' takes those it does not set itself (behaviour files)")
    prices: dict[Name, PricePath] = Field(default_factory=dict, description="assets whose USD price moves (default: every price fixed at price_usd)")
    honest: HonestFlow | None = Field(default=None, description="honest users at exchanges, DEXes, bridges, OTC desks and custodial mixers (default: none)")

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> Any:
        """Optional sections left at their defaults (no moving prices, no honest users) are not dumped."""
        return _without_default(_without_default(handler(self), "prices", {}), "honest", None)
    market: Market = Field(default_factory=Market, description="services by function and the launderer's choice rule (service hops)")

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
        return math.fsum(s.amount * self.assets[s.asset].price_usd * t.instalments for t in self.thefts for s in t.stolen)


def reference_problems(scenario: Scenario) -> list[tuple[tuple[Any, ...], str]]:
    """Cross-references pydantic cannot see: names that must exist elsewhere in the scenario.

    Returns ``(location path, message)`` pairs so the loader can point at the offending line. Also
    takes a partial scenario (:func:`~launderflow.scenario.partial.partial_scenario`), whose values
    that failed validation are ``None``: those were reported already and are not checked here.
    """
    problems: list[tuple[tuple[Any, ...], str]] = []
    chains, assets, venues = scenario.chains, scenario.assets, scenario.venues
    for name, asset in (assets or {}).items():
        if asset is not None and _missing(asset.chain, chains):
            problems.append((("assets", name, "chain"), _unknown("chain", asset.chain, chains)))
    for i, theft in enumerate(scenario.thefts or []):
        if theft is None:
            continue
        for j, stolen in enumerate(theft.stolen or []):
            if stolen is not None and _missing(stolen.asset, assets):
                problems.append((("thefts", i, "stolen", j, "asset"), _unknown("asset", stolen.asset, assets)))
        if theft.playbook is not None:
            problems += _hop_problems(scenario, theft.playbook, ("thefts", i, "playbook"))
    for name, venue in (venues or {}).items():
        asset = getattr(venue, "asset", None)
        if _missing(asset, assets):
            problems.append((("venues", name, "asset"), _unknown("asset", asset, assets)))
        elif venue is not None and venue.kind == "issuer" and asset is not None and assets and \
                assets[asset] is not None and assets[asset].freezable is False:
            problems.append((("venues", name, "asset"), f"asset {asset!r} is not freezable (set freezable: true on it to let its issuer freeze)"))
    problems += _hop_problems(scenario, scenario.playbook or [], ("playbook",))
    for i, action in enumerate(scenario.interventions or []):
        names = getattr(action, "venues", None) or []
        single = getattr(action, "venue", None)
        for j, name in enumerate(([single] if single else []) + list(names)):
            if _missing(name, venues):
                loc = ("interventions", i, "venue") if single and j == 0 else ("interventions", i, "venues", j - (1 if single else 0))
                problems.append((loc, _unknown("venue", name, venues)))
        if isinstance(action, Halt) and venues and venues.get(single) is not None and venues[single].halts is False:
            problems.append((("interventions", i, "venue"), f"venue {single!r} cannot halt (set halts: true on it)"))
    pools = scenario.capacity_pools or {}
    for name, venue in (venues or {}).items():
        pool = getattr(venue, "capacity_pool", None)
        if pool is not None and pool not in pools:
            problems.append((("venues", name, "capacity_pool"), _unknown("capacity pool", pool, pools)))
    sharing = scenario.tracing.sharing if scenario.tracing is not None else None
    coverage = sharing.coverage if sharing is not None else "all"
    if coverage != "all":
        for j, name in enumerate(coverage or []):
            if _missing(name, venues):
                problems.append((("tracing", "sharing", "coverage", j), _unknown("venue", name, venues)))
    if scenario.playbook is not None and not scenario.playbook and \
            any(t is not None and t.playbook is None for t in scenario.thefts or []):
        problems.append((("playbook",), "is empty but a theft has no playbook of its own (give at least one hop)"))
    problems += _price_problems(scenario)
    problems += honest_problems(scenario)
    problems += _market_problems(scenario)
    if not problems:
        problems += _stolen_value_problems(scenario)
    return problems


def _price_problems(scenario: Scenario) -> list[tuple[tuple[Any, ...], str]]:
    """Price paths name known assets; dated points need ``clock.start``; times increase; a drawn
    path has a bounded number of steps."""
    problems: list[tuple[tuple[Any, ...], str]] = []
    assets, clock = scenario.assets, scenario.clock
    for name, path in (scenario.prices or {}).items():
        if path is None:
            continue
        where = ("prices", name, "series" if path.series is not None else "points" if path.points is not None else "model")
        if _missing(name, assets):
            problems.append((("prices", name), _unknown("asset", name, assets)))
        if path.model == "gbm":
            if clock is not None and clock.horizon and path.step and clock.horizon / path.step > MAX_PRICE_STEPS:
                problems.append((("prices", name, "step"), f"horizon/step gives more than {MAX_PRICE_STEPS:,} price steps; use a longer step"))
            continue
        if any(p is None for p in path.points or ()):
            continue  # (a point pydantic refused: reported as such)
        if path.dated and (clock is None or clock.start is None):
            problems.append((where, "dated prices need clock.start (the calendar date of time zero)"))
            continue
        if clock is not None:
            times = price_times(path, clock.start)
            back = next((k for k in range(1, len(times)) if times[k] <= times[k - 1]), None)
            if back is not None:
                problems.append((where, f"point {back + 1} is not after point {back} (times must increase)"))
    return problems


def price_times(path: PricePath, start: datetime.date | None) -> list[float]:
    """Hours since time zero of each point of a series (a date counts from ``start``, at 00:00)."""
    out = []
    for p in path.points or ():
        if p.date is not None:
            out.append((p.date - start).days * 24.0)  # type: ignore[operator]
        else:
            out.append(float(p.time))  # type: ignore[arg-type]
    return out
def _market_problems(scenario: Scenario) -> list[tuple[tuple[Any, ...], str]]:
    """Each service is a venue of a kind that can serve its functions."""
    problems: list[tuple[tuple[Any, ...], str]] = []
    market = scenario.market
    venues = scenario.venues
    if market is None or market.services is None or venues is None:
        return problems
    for name, service in market.services.items():
        if name not in venues:
            problems.append((("market", "services", name), _unknown("venue", name, venues)))
            continue
        venue = venues[name]
        if service is None or venue is None or service.function is None:
            continue
        for f, function in enumerate(service.function):
            if function is None:
                continue
            kinds = FUNCTION_KINDS[function]
            if venue.kind not in kinds:
                loc = ("market", "services", name, "function") if len(service.function) == 1 else ("market", "services", name, "function", f)
                problems.append((loc, f"venue {name!r} is a {venue.kind}; a {function} service needs a {' or '.join(kinds)}"))
    return problems


def _service_hop_problems(scenario: Scenario, hop: ServiceHop, here: tuple[Any, ...]) -> list[tuple[tuple[Any, ...], str]]:
    """A service hop needs services for its functions, and ``to`` where one changes the asset."""
    problems: list[tuple[tuple[Any, ...], str]] = []
    market = scenario.market
    services = market.services if market is not None and market.services is not None else {}
    unreadable = any(s is None or s.function is None or None in s.function for s in services.values())
    for f, function in enumerate(hop.function or []):
        if function is None or unreadable:
            continue  # (a service that failed validation was reported already: no second complaint)
        if not any(s is not None and s.function is not None and function in s.function for s in services.values()):
            loc = (*here, "function") if len(hop.function) == 1 else (*here, "function", f)
            declared = sorted({g for s in services.values() if s is not None for g in (s.function or [])})
            problems.append((loc, f"no service in market.services serves {function!r} "
                                  f"(served: {', '.join(declared) if declared else 'none'})"))
    target = hop.to
    if _missing(target, scenario.assets):
        problems.append(((*here, "to"), _unknown("asset", target, scenario.assets)))
    if target is None and any(f in ("cross_chain", "swapping") for f in hop.function or []):
        problems.append(((*here, "to"), "a service hop for cross_chain or swapping needs 'to' (the asset it reaches)"))
    return problems


def _stolen_value_problems(scenario: Scenario) -> list[tuple[tuple[Any, ...], str]]:
    """The total stolen value must be one the model can compute shares of (see MAX_STOLEN_USD)."""
    total = 0.0
    for i, theft in enumerate(scenario.thefts or []):
        if theft is None or theft.stolen is None:
            return []  # (a partly valid scenario: its field problems are reported instead)
        for s in theft.stolen:
            asset = (scenario.assets or {}).get(s.asset) if s is not None else None
            if asset is None or s.amount is None or asset.price_usd is None or theft.instalments is None:
                return []
            total += s.amount * asset.price_usd * theft.instalments
        if total > MAX_STOLEN_USD:
            return [(("thefts", i, "stolen"), f"the thefts steal ${total:.3g} in total up to here "
                     f"(allowed: at most ${MAX_STOLEN_USD:.0e}, amount x price_usd x instalments over all thefts)")]
    if total < MIN_STOLEN_USD:
        return [(("thefts", 0, "stolen"), f"the thefts steal ${total:.3g} in total "
                 f"(allowed: at least ${MIN_STOLEN_USD:.0e})")]
    return []


def _hop_problems(scenario: Scenario, hops: list[Any], where: tuple[Any, ...]) -> list[tuple[tuple[Any, ...], str]]:
    problems: list[tuple[tuple[Any, ...], str]] = []
    venues, assets = scenario.venues, scenario.assets
    for k, hop in enumerate(hops):
        if hop is None:
            continue
        if isinstance(hop, BranchHop):
            for b, branch in enumerate(hop.branches or []):
                if branch is not None and branch.playbook is not None:
                    problems += _hop_problems(scenario, branch.playbook, (*where, k, "branches", b, "playbook"))
            continue
        if isinstance(hop, ServiceHop):
            problems += _service_hop_problems(scenario, hop, (*where, k))
            continue
        kinds = VENUE_FOR_HOP.get(hop.hop)
        if kinds is None:
            continue
        fitting = {n: v for n, v in (venues or {}).items() if v is not None and v.kind in kinds}
        for v, name in enumerate(hop.venue or []):
            if name is None or venues is None:
                continue
            loc = (*where, k, "venue") if len(hop.venue) == 1 else (*where, k, "venue", v)
            if name not in venues:
                problems.append((loc, _unknown("venue", name, fitting)))
            elif venues[name] is not None and venues[name].kind not in kinds:
                problems.append((loc, f"venue {name!r} is a {venues[name].kind}; a {hop.hop} hop needs a {' or '.join(kinds)} ({_allowed(fitting)})"))
        target = getattr(hop, "to", None)
        if _missing(target, assets):
            problems.append(((*where, k, "to"), _unknown("asset", target, assets)))
        if hop.hop == "mix" and target is None and any(
                getattr((venues or {}).get(n), "kind", None) == "bridge" for n in hop.venue or []):
            problems.append(((*where, k, "to"), "a mix hop with a bridge substitute needs 'to' (the asset on the other chain)"))
    return problems


def _missing(name: str | None, known: dict[str, Any] | None) -> bool:
    """``name`` is given and ``known`` (None: itself invalid, so unknown) does not define it."""
    return name is not None and known is not None and name not in known


def _unknown(what: str, name: str, known: dict[str, Any]) -> str:
    return f"unknown {what} {name!r} ({_allowed(known)})"


def _allowed(known: dict[str, Any]) -> str:
    return "defined: " + ", ".join(sorted(known)) if known else "none defined"


def union_tags(union: Any, field: str) -> dict[str, type[BaseModel]]:
    """The models of a discriminated union (``Venue``, ``Hop``, ``Delay``, ``Intervention``) by tag."""
    members = get_args(get_args(union)[0])
    return {get_args(m.model_fields[field].annotation)[0]: m for m in members}


def is_valid_name(text: str) -> bool:
    return re.match(NAME_PATTERN, text) is not None
