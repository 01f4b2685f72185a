"""The model's boundary: what hops, venues, tracing and interventions may do to the world.

Two small typed interfaces, below everything that uses them:

* :class:`World` — the operations on lots of value. Every change of value goes through one of
  them (``move``, ``fork``, ``divide``, ``merge``, ``relocate``, ``spend``), so conservation is
  enforced in one place; knowledge changes through ``hop_knowledge``, ``set_traced`` and
  ``resume_trail``; time through ``schedule``, ``after``, ``at`` and ``park``.
  :class:`launderflow.model.world.World` implements it.
* :class:`Venue` — what the world, the hops, tracing and interventions ask of a venue. The hooks
  and their defaults are in :class:`launderflow.model.venues.base.VenueModel`.

Hops, venues, tracing and interventions import this module, never ``world.py``: the world builds
them, they act on it through this interface, and no import goes back up.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any, Protocol, runtime_checkable

import numpy as np
import simpy

from ..scenario.schema import Scenario
from .addresses import AddressBook
from .capacity import Capacity
from .distributions import Distribution
from .lots import LotTable
from .prices import ExitLog, PricePaths
from .states import Location


@runtime_checkable
class Venue(Protocol):
    """A venue as the rest of the model sees it (defaults: ``venues.base.VenueModel``)."""

    name: str
    index: int
    kind: str
    jurisdiction: str
    address: int
    acts_on_alerts: bool  # issuers and exchanges freeze flagged lots; others ignore alerts
    asked_directly: bool  # a robbed exchange or token project asks it at the trace, before the flag
    judgment_point: bool  # its payouts need analysts' judgment (else software follows them)
    frozen_usd: float
    seized_usd: float
    fee: float  # proportional fee (operators' actions scale it)
    designated: bool
    halted: bool
    closed: bool  # shut down for good

    def refuses(self, world: World, ids: np.ndarray, now: float) -> np.ndarray: ...
    def enter(self, world: World, ids: np.ndarray, now: float, hop: Any) -> None: ...
    def release(self, world: World, ids: np.ndarray, now: float, hop: Any) -> np.ndarray: ...
    def alert(self, world: World, ids: np.ndarray, now: float) -> None: ...
    def direct_request(self, world: World, ids: np.ndarray, now: float) -> None: ...
    def reopens(self, now: float, ids: np.ndarray) -> np.ndarray | None: ...
    def inside(self, world: World, ids: np.ndarray | None = None) -> np.ndarray: ...
    def seize(self, world: World, ids: np.ndarray, now: float) -> float: ...
    def shut_down(self, now: float) -> float: ...
    def logs(self) -> dict[str, Any]: ...


@runtime_checkable
class World(Protocol):
    """One replication's world, as hops, venues, tracing and interventions use it."""

    scenario: Scenario
    lots: LotTable
    addresses: AddressBook
    rng: np.random.Generator  # the launderer's own draws (delays, shares, groups)
    resolution: float  # the clock tick (hours)
    horizon: float
    venues: list[Venue]
    asset_index: dict[str, int]
    asset_chain: np.ndarray  # chain of each asset
    asset_price: np.ndarray  # USD price of each asset
    asset_freezable: np.ndarray  # its issuer can freeze balances (USDT, USDC)
    chain_fee: np.ndarray  # transfer fee of each chain (USD)
    all_discovered: bool  # every theft is known
    theft_time: np.ndarray  # when each theft happened (a stream: its first instalment)
    last_stopped: np.ndarray  # when value of each theft was last frozen or seized (-inf: never)
    capacity_pools: dict[str, Capacity]  # off-ramp capacity shared by desks
    prices: PricePaths  # the day's prices of the assets (the book values lots at the theft's)
    exits: ExitLog  # freezes, seizures and cash-outs as they happen (``cause``: the acting intervention)
    market: Any  # services by function and the launderer's learned risks (model/services.py); None without services
    counterparties: Any  # honest wallets the launderer pays (model/counterparties.py); None without them

    # --- time -------------------------------------------------------------------------------------

    @property
    def now(self) -> float: ...
    def stream(self, name: str) -> np.random.Generator: ...
    def process(self, generator: Generator[simpy.Event, Any, Any]) -> None: ...
    def timeout(self, delay: float) -> simpy.Event: ...
    def schedule(self, ids: np.ndarray, times: np.ndarray) -> None: ...
    def after(self, ids: np.ndarray, now: float, delay: Distribution | None) -> None: ...
    def at(self, times: np.ndarray | float, ids: np.ndarray, action: Callable[..., None], *payload: np.ndarray) -> None: ...
    def park(self, ids: np.ndarray) -> None: ...

    # --- value ------------------------------------------------------------------------------------

    def move(self, ids: np.ndarray, now: float, hop: str, dst: np.ndarray | int | None = None, venue: int = -1,
             trace: bool = True, judged: bool = False, keep: np.ndarray | None = None) -> None: ...
    def fork(self, parents: np.ndarray, counts: np.ndarray, shares: np.ndarray, now: float, hop: str,
             src: np.ndarray | int | None = None, venue: int = -1, judged: bool = False) -> np.ndarray: ...
    def divide(self, parents: np.ndarray, counts: np.ndarray, values: np.ndarray, requeue: bool = True,
               owner: np.ndarray | None = None) -> np.ndarray: ...
    def merge(self, ids: np.ndarray, group: np.ndarray, n_groups: int, asset: np.ndarray, step: int,
              now: float, fee: np.ndarray, wallets: np.ndarray) -> np.ndarray: ...
    def pay_out(self, venue: Venue, ids: np.ndarray, now: float, hop_kind: str,
                keep: np.ndarray | None = None) -> np.ndarray: ...
    def relocate(self, ids: np.ndarray, location: Location, venue: int = -1) -> None: ...
    def spend(self, ids: np.ndarray, amounts: np.ndarray, venue: int = -1) -> None: ...
    def network_fee(self, ids: np.ndarray) -> np.ndarray: ...
    def record(self, now: float, src: np.ndarray | int, dst: np.ndarray | int, lots: np.ndarray,
               values: np.ndarray, hop: str, venue: int | np.ndarray = -1, fee: np.ndarray | float = 0.0,
               asset: np.ndarray | None = None) -> None: ...
    def record_honest(self, now: float, src: np.ndarray | int, dst: np.ndarray | int, asset: int, amount: float,
                      venue: int) -> None: ...

    # --- knowledge --------------------------------------------------------------------------------

    def hop_knowledge(self, ids: np.ndarray, hop: str, judged: bool = False, keep: np.ndarray | None = None,
                      venue: int = -1) -> None: ...
    def set_traced(self, ids: np.ndarray, traced: np.ndarray) -> None: ...
    def set_dark(self, ids: np.ndarray) -> None: ...
    def resume_trail(self, ids: np.ndarray, now: float) -> None: ...
    def shares_with(self, venue: Venue) -> bool: ...

    # --- venues and the launderer's program -------------------------------------------------------

    def venue(self, name: str) -> Venue: ...
    def enter_venue(self, venue: Venue, ids: np.ndarray, now: float, hop: Any) -> None: ...
    def release_venue(self, venue: Venue, ids: np.ndarray, now: float, hop: Any) -> np.ndarray: ...
    def note_inflow(self, venue: Venue, ids: np.ndarray) -> None: ...
    def note_refusal(self, venue: Venue, ids: np.ndarray) -> None: ...
    def wait_at_barrier(self, theft: int, step: int) -> None: ...
    def barrier_opened(self, theft: int, step: int) -> None: ...


