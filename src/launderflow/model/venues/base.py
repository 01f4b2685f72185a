"""What every venue shares: identity, jurisdiction, one deposit address, taking lots in and paying them out.

A venue hop offers lots to a venue (``refuses``), the venue takes them in (``enter``: the lots move
to the venue's address and sit there, location VENUE, until their release time), and later
releases them (``release``), returning the lots that go back to the launderer. Subclasses decide
fees, delays and what happens inside; all value changes go through the world's primitives.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ..addresses import AddressBook, Role
from ..distributions import from_spec
from ..ops import World
from ..registry import Registry
from ..states import Location

VENUES: Registry[VenueModel] = Registry("venue kind", "kind")


class VenueModel:
    """A venue of some kind. A kind registers with ``@VENUES.register(kind)`` and may override:

    * ``on_enter(world, ids, now, hop)`` — what happens once lots are inside (default: they are
      held for the venue's ``delay``); ``enter`` itself for venues that take lots in another way;
    * ``release(world, ids, now, hop)`` — lots are due out (default: paid out to fresh wallets);
      return those back with the launderer;
    * ``refuses(world, ids, now)`` — extend the default refusals (halted, shut down, designated
      and avoided, complying with a designation of a venue in the lots' history);
    * ``acts_on_alerts`` and ``alert(world, ids, now)`` — act on lots flagged by the sharing
      channel (default: ignore them); ``compliance`` — chance it acts on a request or sanction;
      ``asked_directly`` and ``direct_request(world, ids, now)`` — a robbed exchange or token
      project asks it at the trace, before any flag (default: never);
    * ``judgment_point`` — its payouts need the analysts' judgment, a queue of limited capacity
      where trails may be lost (default: no — tracing software follows them);
    * ``removed(world, ids)`` — lots inside it were frozen or seized (default: nothing to update);
    * ``has_honest_users``, ``set_honest_rate(cause, factor)``, ``add_exodus(per_hour)`` — honest
      traffic that designations and operator actions scale (default: none);
    * ``harden(defences)`` — a ``defences`` intervention (default: nothing to harden);
    * ``scale_fee(factor)`` — operators' action on its proportional ``fee`` (capped at 0.5);
    * ``logs()`` — per-run logs it keeps (default: none).

    Its schema model (``scenario/schema.py``) declares the venue's budget terms.
    """

    kind: ClassVar[str] = "venue"
    acts_on_alerts: ClassVar[bool] = False
    judgment_point: bool = False
    has_honest_users: ClassVar[bool] = False
    compliance: float = 1.0
    fee: float = 0.0

    @classmethod
    def from_spec(cls, spec: Any, world: World, index: int, name: str) -> VenueModel:
        return cls(world, index, name, spec)

    def __init__(self, world: World, index: int, name: str, spec: Any):
        self.world = world
        self.index = index
        self.name = name
        self.spec = spec
        self.jurisdiction: str = spec.jurisdiction
        self.recovery = spec.recovery  # re-identification of trails lost here
        self.can_halt: bool = spec.halts
        self.halted = False
        self.closed = False  # shut down for good (seized infrastructure)
        self.address = int(world.addresses.new(1, -1, Role.VENUE)[0])
        # Own streams: the launderer's delays here and the venue's enforcement draws (compliance,
        # freeze latency) never shift each other, so a policy change leaves the laundering as it was.
        self.rng = world.stream(f"venue:{name}")
        self.policy_rng = world.stream(f"venue-policy:{name}")
        self.frozen_usd = 0.0
        self.seized_usd = 0.0
        self.designated = False  # under sanctions itself
        self.sanctioned_links = np.uint64(0)  # bits of designated venues whose funds it refuses
        delay = getattr(spec, "delay", None)
        self.delay = from_spec(delay) if delay is not None else None

    # --- the hop protocol ------------------------------------------------------------------------

    def refuses(self, world: World, ids: np.ndarray, now: float) -> np.ndarray:
        """Which of these lots the venue turns away now.

        Halted or closed venues take nothing; a launderer who avoids designated venues does not
        use one; a venue complying with a designation refuses funds whose history touched the
        designated venue (each time with its ``compliance``, if it has one).
        """
        if self.halted or self.closed or (self.designated and world.scenario.launderer.avoids_designated):
            return np.ones(len(ids), dtype=bool)
        if not self.sanctioned_links:
            return np.zeros(len(ids), dtype=bool)
        linked = (world.lots.touched[ids] & self.sanctioned_links) != 0
        if self.compliance < 1.0:
            linked &= self.policy_rng.random(len(ids)) < self.compliance
        return linked

    def enter(self, world: World, ids: np.ndarray, now: float, hop: Any) -> None:
        ids = self.take_in(world, ids, now, self.kind if hop.kind == "mix" else hop.kind)
        if len(ids):
            self.on_enter(world, ids, now, hop)

    def on_enter(self, world: World, ids: np.ndarray, now: float, hop: Any) -> None:
        """Decide when the lots come out (default: after the venue's delay)."""
        self.hold(world, ids, now, self.delay)

    def release(self, world: World, ids: np.ndarray, now: float, hop: Any) -> np.ndarray:
        """Lots are due out; return those that are back with the launderer."""
        return self.pay_out(world, ids, now, hop.kind)

    def alert(self, world: World, ids: np.ndarray, now: float) -> None:
        """Lots were flagged as stolen (only called when ``acts_on_alerts``)."""

    def reopens(self, now: float, ids: np.ndarray) -> np.ndarray | None:
        """For lots it just turned away: when each could be taken, if it was turned away for lack of
        room (NaN otherwise, or ``None`` for all: the hop's ``retry`` applies)."""
        return None

    @property
    def asked_directly(self) -> bool:
        """Whether strong victims ask this party as soon as their funds are traced."""
        return False

    def direct_request(self, world: World, ids: np.ndarray, now: float) -> None:
        """Lots were just traced; their victim may ask this party directly (if ``asked_directly``)."""

    # --- policy hooks (interventions) --------------------------------------------------------------

    def designate(self) -> None:
        """This venue is designated under sanctions."""
        self.designated = True

    def refuse_links_to(self, venue: Any) -> None:
        """Comply with a designation of ``venue``: refuse funds whose history touched it."""
        self.sanctioned_links |= np.uint64(1 << venue.index)

    def halt(self, halted: bool = True) -> None:
        self.halted = halted

    def set_honest_rate(self, cause: str, factor: float) -> None:
        """Scale honest traffic by ``factor`` for ``cause`` (venues without honest users: nothing)."""

    def add_exodus(self, per_hour: float) -> None:
        """Honest users leave at an extra rate (venues without honest users: nothing)."""

    def harden(self, defences: Any) -> None:
        """A ``defences`` intervention (venues with nothing to harden: nothing)."""

    def scale_fee(self, factor: float) -> None:
        """Operators' action: the proportional fee is multiplied, capped at 0.5 (no fee: stays 0)."""
        self.fee = min(0.5, self.fee * factor)

    def logs(self) -> dict[str, Any]:
        """Logs kept during the run, by name (``ColumnBuffer``s): none by default."""
        return {}

    # --- building blocks -----------------------------------------------------------------------

    def take_in(self, world: World, ids: np.ndarray, now: float, hop_kind: str) -> np.ndarray:
        """Move lots to the venue's address (one transfer each) and mark them inside it."""
        lots = world.lots
        world.note_inflow(self, ids)
        flagged = lots.flagged[ids].copy()  # the deposit comes from an address already shared as stolen
        # A deposit to a venue's labelled address keeps the lot's knowledge; a deposit into an
        # off-ramp (OTC, P2P, a cash-out account) is a judgment point: whose desk is it?
        cash_out = hop_kind == "cash_out"
        world.move(ids, now, hop_kind, dst=self.address, venue=self.index, trace=cash_out, judged=cash_out)
        lots.flagged[ids] |= flagged  # the venue screens the deposit against the flagged addresses
        ids = ids[lots.alive[ids]]
        world.relocate(ids, Location.VENUE, self.index)
        lots.substep[ids] = 1
        lots.entered[ids] = now
        lots.held[ids] = False  # only the venue that holds a lot (an exchange's hold) sets it
        lots.touched[ids] |= np.uint64(1 << self.index)
        return ids

    def hold(self, world: World, ids: np.ndarray, now: float, delay: Any) -> None:
        world.schedule(ids, self.leave_times(len(ids), now, delay))

    def leave_times(self, n: int, now: float, delay: Any) -> np.ndarray:
        """When ``n`` lots that arrive now leave, after a draw of ``delay`` each (none: now)."""
        return np.full(n, now) if delay is None else now + delay.sample(self.rng, n)

    def charge(self, world: World, ids: np.ndarray, rate: float, fixed_usd: float = 0.0) -> None:
        """Take the venue's fee: ``rate`` of each lot plus a fixed USD amount."""
        if rate > 0 or fixed_usd > 0:
            world.spend(ids, world.lots.value[ids] * rate + fixed_usd, venue=self.index)

    def pay_out(self, world: World, ids: np.ndarray, now: float, hop_kind: str,
                keep: np.ndarray | None = None) -> np.ndarray:
        """Withdraw lots from the venue to fresh launderer wallets (``keep``: which trails survive,
        when the venue decides that itself); a world primitive (``World.pay_out``), which the
        compiled engine runs in one kernel."""
        return world.pay_out(self, ids, now, hop_kind, keep)

    def cash_out(self, world: World, ids: np.ndarray, now: float, haircut: float) -> np.ndarray:
        """Value leaves the chain: the haircut is a fee, the rest is cashed out (a P2P trade pays an
        honest buyer on chain instead: model/counterparties.py)."""
        lots = world.lots
        ids = ids[lots.alive[ids]]
        self.charge(world, ids, haircut)
        ids = ids[lots.value[ids] > 0]
        dst, fee = (AddressBook.OFF_CHAIN, 0.0) if world.counterparties is None else world.counterparties.buyers(self, ids)
        world.record(now, self.address, dst, ids, lots.value[ids], "cash_out", self.index, fee)
        world.relocate(ids, Location.CASHED_OUT, self.index)
        return ids[:0]

    def removed(self, world: World, ids: np.ndarray) -> None:
        """Lots inside the venue were frozen or seized (venues that count their holdings override this)."""

    def freeze_lots(self, world: World, ids: np.ndarray, now: float, where: np.ndarray) -> None:
        """Freeze whole lots at ``where`` (their address, or the venue's for deposits)."""
        if len(ids) == 0:
            return
        self.removed(world, ids[world.lots.location[ids] == int(Location.VENUE)])
        self.frozen_usd += float(world.lots.value[ids].sum())
        world.record(now, where, where, ids, world.lots.value[ids], "freeze", self.index)
        world.relocate(ids, Location.FROZEN, self.index)

    def seize(self, world: World, ids: np.ndarray, now: float) -> float:
        """Seize whole lots held by (or frozen at) this venue; return the USD seized."""
        if len(ids) == 0:
            return 0.0
        value = float(world.lots.value[ids].sum())
        self.removed(world, ids[world.lots.location[ids] == int(Location.VENUE)])
        self.seized_usd += value
        world.record(now, np.full(len(ids), self.address), np.full(len(ids), self.address), ids,
                     world.lots.value[ids], "seizure", self.index)
        world.relocate(ids, Location.SEIZED, self.index)
        return value

    def shut_down(self, now: float) -> float:
        """Close the venue for good and seize what it holds; return the USD seized."""
        self.closed = True
        return self.seize(self.world, self.inside(self.world), now)

    def inside(self, world: World, ids: np.ndarray | None = None) -> np.ndarray:
        """Lots currently held by this venue (optionally among ``ids``)."""
        lots = world.lots
        if ids is None:
            mask = (lots.view("location") == int(Location.VENUE)) & (lots.view("venue") == self.index) & lots.view("alive")
            return np.flatnonzero(mask)
        keep = (lots.location[ids] == int(Location.VENUE)) & (lots.venue[ids] == self.index) & lots.alive[ids]
        return ids[keep]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {self.jurisdiction})"
