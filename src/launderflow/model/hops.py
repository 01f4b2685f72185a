"""Playbook hops: what the launderer does with every lot that reaches a step.

A playbook compiles to a *program*: a flat list of steps, each with ``apply(world, ids, now)``
acting on all lots due at that step in the same tick (numpy index arrays, no per-lot loop) and a
``next`` index (branches make the program a graph: every branch's last step points to the hop
after the branch). A lot's ``step`` is where it is; ``next == -1`` means the playbook is done and
the value stays with the launderer.

Each step kind registers under its schema ``hop`` tag in :data:`STEPS` and builds itself from its
hop spec (``from_spec``); the five venue hops share one step kind, :class:`VenueHop`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..scenario import schema as s
from .addresses import Role
from .distributions import Distribution, from_spec
from .ops import Venue, World
from .registry import Registry
from .states import Location

DONE = -1
STEPS: Registry[Step] = Registry("playbook step", "hop")


@dataclass
class Program:
    """A theft's compiled playbook: a list of steps, each with ``apply(world, ids, now)``."""

    steps: list[Step] = field(default_factory=list)


class Step:
    """One compiled playbook step. Hooks a kind defines:

    * ``from_spec(hop, world, index)`` (classmethod): build the step from its scenario hop;
    * ``apply(world, ids, now)``: act on every lot due at this step in this tick;
    * ``mergeable`` (class attribute, default True): two steps with equal specs and the same
      ``next`` behave the same for every lot, so identical branch tails compile once — False for
      steps with state of their own (barriers, forks).
    """

    next: int
    mergeable: ClassVar[bool] = True
    hurry: bool = False  # swap_first: lots in a freezable asset skip this step's voluntary delay (set by compile_program)

    @classmethod
    def from_spec(cls, hop: Any, world: World, index: int) -> Step:
        raise NotImplementedError

    def apply(self, world: World, ids: np.ndarray, now: float) -> None:
        raise NotImplementedError

    def wake_at(self, world: World, ids: np.ndarray, times: np.ndarray) -> None:
        """Lots waited here (no move, no confirmation): the next step is due at ``times``."""
        world.lots.step[ids] = self.next
        world.lots.substep[ids] = 0
        if self.next == DONE:
            world.park(ids)
        else:
            world.schedule(ids, times)

    def advance(self, world: World, ids: np.ndarray, now: float, delay: Distribution | None) -> None:
        """Lots finished this step: point them at the next step and schedule it."""
        ids = ids[world.lots.alive[ids]]
        if len(ids) == 0:
            return
        world.lots.step[ids] = self.next
        world.lots.substep[ids] = 0
        if self.next == DONE:
            world.park(ids)
        elif self.hurry and delay is not None:
            exposed = world.asset_freezable[world.lots.asset[ids]]
            world.after(ids[exposed], now, None)
            world.after(ids[~exposed], now, delay)
        else:
            world.after(ids, now, delay)

    def hurried(self, world: World, ids: np.ndarray) -> np.ndarray:
        """Which of these lots skip this step's wait (in a freezable asset, with swap_first)."""
        if not self.hurry:
            return np.zeros(len(ids), dtype=bool)
        return world.asset_freezable[world.lots.asset[ids]]


def _delay(hop: Any) -> Distribution:
    return from_spec(getattr(hop, "delay", s.ZERO_DELAY))


@STEPS.register("transfer")
@dataclass
class Transfer(Step):
    """Each lot moves whole to one fresh wallet."""

    delay: Distribution
    next: int = DONE

    @classmethod
    def from_spec(cls, hop: Any, world: World, index: int) -> Transfer:
        return cls(_delay(hop))

    def apply(self, world: World, ids: np.ndarray, now: float) -> None:
        world.move(ids, now, "transfer")
        self.advance(world, ids, now, self.delay)


@STEPS.register("split")
@dataclass
class Split(Step):
    """Each lot fans out over ``wallets`` fresh wallets with Dirichlet-drawn shares."""

    wallets: int
    concentration: float
    delay: Distribution
    next: int = DONE

    @classmethod
    def from_spec(cls, hop: Any, world: World, index: int) -> Split:
        return cls(hop.wallets, hop.concentration, _delay(hop))

    def apply(self, world: World, ids: np.ndarray, now: float) -> None:
        k = self.wallets
        shares = world.rng.gamma(self.concentration, 1.0, size=(len(ids), k))
        shares /= shares.sum(axis=1, keepdims=True)
        children = world.fork(ids, np.full(len(ids), k), shares.ravel(), now, "split")
        self.advance(world, children, now, self.delay)


@STEPS.register("peel")
@dataclass
class Peel(Step):
    """A peel chain: at each of ``length`` hops, ``fraction`` of the remainder is peeled off.

    The peeled piece moves on to the next playbook step; the remainder moves to a fresh wallet and
    peels again after ``delay``, until the last hop, after which it moves on too.
    """

    length: int
    fraction: float
    delay: Distribution
    next: int = DONE

    @classmethod
    def from_spec(cls, hop: Any, world: World, index: int) -> Peel:
        return cls(hop.length, hop.fraction, _delay(hop))

    def pieces(self, world: World, ids: np.ndarray, now: float) -> tuple[np.ndarray, np.ndarray]:
        """Fork each lot into its peeled piece and the remainder (the pieces spent with honest
        merchants leave play); return both, in lot order. Shared with the compiled engine's kernel."""
        n = len(ids)
        shares = np.empty(2 * n)
        shares[0::2] = self.fraction
        shares[1::2] = 1.0 - self.fraction
        children = world.fork(ids, np.full(n, 2), shares, now, "peel")
        peeled, remainder = children[0::2], children[1::2]
        if world.counterparties is not None:
            peeled = world.counterparties.spend_peeled(peeled, now)
        return peeled, remainder

    def apply(self, world: World, ids: np.ndarray, now: float) -> None:
        lots = world.lots
        peeled, remainder = self.pieces(world, ids, now)
        lots.substep[remainder] += 1
        finished = lots.substep[remainder] >= self.length
        self.advance(world, np.sort(np.concatenate((peeled, remainder[finished]))), now, self.delay)
        again = remainder[~finished]
        again = again[lots.alive[again]]
        world.after(again, now, self.delay)


@STEPS.register("wait")
@dataclass
class Wait(Step):
    """Dormancy: the lots stay where they are for a drawn delay."""

    delay: Distribution
    next: int = DONE

    @classmethod
    def from_spec(cls, hop: Any, world: World, index: int) -> Wait:
        return cls(_delay(hop))

    def apply(self, world: World, ids: np.ndarray, now: float) -> None:
        if self.next == DONE:  # (the last step: no delay to draw)
            self.wake_at(world, ids, np.empty(0))
        else:
            times = now + self.delay.sample(world.rng, len(ids))
            self.wake_at(world, ids, np.where(self.hurried(world, ids), now, times))


@STEPS.register("dormant")
@dataclass
class Dormant(Step):
    """Dormancy in waves (see the schema's ``DormantHop``): phase 0 draws each arriving lot's wave
    and schedules it; phase 1 lets it go, unless attention has not faded yet (``quiet``)."""

    waves: int
    first: float
    every: float
    spread: Distribution
    quiet: float
    next: int = DONE

    @classmethod
    def from_spec(cls, hop: Any, world: World, index: int) -> Dormant:
        return cls(hop.waves, hop.first, hop.every, from_spec(hop.spread), hop.quiet)

    def apply(self, world: World, ids: np.ndarray, now: float) -> None:
        lots = world.lots
        phase = lots.substep[ids]
        arriving, due = ids[phase == 0], ids[phase == 1]
        if len(arriving):
            wave = world.rng.integers(0, self.waves, len(arriving)) if self.waves > 1 else np.zeros(len(arriving))
            leave = (world.theft_time[lots.theft[arriving]] + self.first + wave * self.every
                     + self.spread.sample(world.rng, len(arriving)))
            lots.substep[arriving] = 1
            world.schedule(arriving, np.where(self.hurried(world, arriving), now, np.maximum(leave, now)))
        if len(due) and self.quiet > 0:  # attention has not faded: wait until quiet after the last freeze
            last = world.last_stopped[lots.theft[due]]
            noisy = now - last < self.quiet
            if np.count_nonzero(noisy):
                world.schedule(due[noisy], last[noisy] + self.quiet)
                due = due[~noisy]
        if len(due):
            self.wake_at(world, due, np.full(len(due), now))


@STEPS.register("consolidate")
@dataclass
class Consolidate(Step):
    """Gather every moving lot of the theft into ``wallets`` wallets per asset.

    A barrier: arriving lots are parked until no lot of the theft is still in play at a step that
    leads here (``feeders``) — except lots an exchange holds in an account (``holds``): the
    launderer cannot move them and consolidates what it has. Lots that arrive after the barrier
    opened (a hold released) go to the same wallets as the first ones, one per asset and group,
    as a launderer sends late funds to the addresses it gathered the rest in. A merged wallet is
    traced if any lot merged into it was — analysts who know one input know the wallet — which
    is how trails resume at consolidation points.
    """

    index: int
    wallets: int
    delay: Distribution
    next: int = DONE
    feeders: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int32))
    gathered: dict[int, dict[int, int]] = field(default_factory=dict)  # theft -> (asset, group) key -> address
    mergeable: ClassVar[bool] = False

    @classmethod
    def from_spec(cls, hop: Any, world: World, index: int) -> Consolidate:
        return cls(index, hop.wallets, _delay(hop))

    def apply(self, world: World, ids: np.ndarray, now: float) -> None:
        world.park(ids)
        world.lots.substep[ids] = 1  # waiting at the barrier
        world.wait_at_barrier(int(world.lots.theft[ids[0]]), self.index)
        self.try_release(world, int(world.lots.theft[ids[0]]), now)

    def try_release(self, world: World, theft: int, now: float) -> bool:
        lots = world.lots
        mine = (lots.view("theft") == theft) & lots.view("alive")
        step = lots.view("step")
        in_flight = (step == self.index) & (lots.view("substep") != 1)  # on their way here (delay, confirmation)
        held = lots.view("held") & (lots.view("location") == int(Location.VENUE))  # kept by an exchange
        if np.any(mine & ~held & (np.isin(step, self.feeders) | in_flight)):
            return False
        waiting = np.flatnonzero(mine & (lots.view("step") == self.index) & (lots.view("substep") == 1)
                                 & (lots.view("location") == int(Location.LAUNDERER)))
        world.barrier_opened(theft, self.index)
        if len(waiting):
            self._merge(world, waiting, now)
        return True

    def _merge(self, world: World, ids: np.ndarray, now: float) -> None:
        lots = world.lots
        fee = world.network_fee(ids)  # each input pays its own transfer into the merged wallet
        k = min(self.wallets, len(ids))
        group = world.rng.permutation(len(ids)) % k
        key = lots.asset[ids].astype(np.int64) * self.wallets + group  # one target per (asset, wallet)
        targets, inverse = np.unique(key, return_inverse=True)
        asset = (targets // self.wallets).astype(np.int16)
        merged = world.merge(ids, inverse, len(targets), asset, self.index, now, fee,
                             wallets=self._wallets(world, int(lots.theft[ids[0]]), targets, asset))
        world.hop_knowledge(merged, "consolidate")
        self.advance(world, merged, now, self.delay)

    def _wallets(self, world: World, theft: int, targets: np.ndarray, asset: np.ndarray) -> np.ndarray:
        """The address of each target: the one this theft gathered that (asset, group) in before,
        else a fresh launderer wallet."""
        known = self.gathered.setdefault(theft, {})
        wallets = np.array([known.get(int(t), -1) for t in targets], dtype=np.int64)
        fresh = wallets < 0
        if np.any(fresh):
            wallets[fresh] = world.addresses.new(int(np.count_nonzero(fresh)), world.asset_chain[asset[fresh]], Role.LAUNDERER)
            known.update(zip(targets[fresh].tolist(), wallets[fresh].tolist()))
        return wallets


@STEPS.register("branch")
@dataclass
class Fork(Step):
    """Parallel branches: each lot is divided by the branch shares; piece ``b`` runs branch ``b``."""

    shares: np.ndarray
    starts: list[int]
    next: int = DONE
    mergeable: ClassVar[bool] = False

    @classmethod
    def from_spec(cls, hop: Any, world: World, index: int) -> Fork:
        return cls(np.array([b.share for b in hop.branches]), [])  # starts: filled in as the branches compile

    def apply(self, world: World, ids: np.ndarray, now: float) -> None:
        b = len(self.shares)
        children = world.fork(ids, np.full(len(ids), b), np.tile(self.shares, len(ids)), now, "branch")
        entry = np.tile(np.asarray(self.starts, dtype=np.int32), len(ids))
        alive = world.lots.alive[children]
        children, entry = children[alive], entry[alive]
        world.lots.step[children] = entry
        world.lots.substep[children] = 0
        world.after(children, now, None)


@STEPS.register(*s.VENUE_FOR_HOP)
@dataclass
class VenueHop(Step):
    """Pass lots through a venue, falling back to the next substitute when one refuses.

    Phase 0 (``substep == 0``): offer the lots to each venue in the playbook's order; a venue takes
    those it does not refuse; lots that every substitute refuses try again after ``retry``.
    Phase 1: the venue releases them (or they left the chain / were frozen inside it).
    """

    kind: str
    venues: list[Venue]
    to_asset: int | None
    delay: Distribution
    retry: Distribution
    next: int = DONE
    refusals: int = 0
    offramp: Any = None  # just_in_time: (capacity, booking window) of the off-ramp this conversion feeds
    held_back: int = 0  # conversions held back until that off-ramp had room (lot-attempts)

    @classmethod
    def from_spec(cls, hop: Any, world: World, index: int) -> VenueHop:
        venues = [world.venue(name) for name in hop.venue]
        target = getattr(hop, "to", None)
        to_asset = world.asset_index[target] if target is not None else None
        return cls(hop.hop, venues, to_asset, _delay(hop), from_spec(hop.retry))

    def apply(self, world: World, ids: np.ndarray, now: float) -> None:
        lots = world.lots
        phase = lots.substep[ids]
        entering, leaving = ids[phase == 0], ids[phase == 1]
        if self.to_asset is not None and self.kind in ("swap", "bridge"):
            there = lots.asset[entering] == self.to_asset  # already holds the target asset: nothing to do
            self.advance(world, entering[there], now, None)
            entering = entering[~there]
        if self.to_asset is not None and self.kind == "swap":
            # A DEX swaps within one chain: lots on another chain skip the swap (counted as refusals).
            elsewhere = world.asset_chain[lots.asset[entering]] != world.asset_chain[self.to_asset]
            if np.count_nonzero(elsewhere):
                world.note_refusal(self.venues[0], entering[elsewhere])
                self.advance(world, entering[elsewhere], now, None)
                entering = entering[~elsewhere]
        if self.offramp is not None and len(entering):
            entering = self._just_in_time(world, entering, now)
        for venue in self.venues:
            if len(entering) == 0:
                break
            refused = venue.refuses(world, entering, now)
            taken = entering[~refused]
            if len(taken):
                world.enter_venue(venue, taken, now, self)
            n_refused = np.count_nonzero(refused)
            if n_refused:
                self.refusals += n_refused
                world.note_refusal(venue, entering[refused])
            entering = entering[refused]
        if len(entering):  # try again later — at least one clock tick later, or it would loop at this instant
            turns = np.full(len(entering), np.nan)
            for venue in self.venues:  # a venue busy with earlier swaps: come back when it has room again
                t = venue.reopens(now, entering)
                if t is not None:
                    turns = np.fmin(turns, t)
            room = ~np.isnan(turns)
            if room.any():
                world.schedule(entering[room], np.maximum(turns[room], now + world.resolution))
                entering = entering[~room]
            if len(entering):
                world.schedule(entering, np.maximum(now + self.retry.sample(world.rng, len(entering)), now + world.resolution))
        if len(leaving):
            where = lots.venue[leaving]
            if where[0] == where[-1] and np.count_nonzero(where != where[0]) == 0:  # the usual case: one venue
                groups = [(int(where[0]), leaving)]
            else:
                groups = [(int(v), leaving[where == v]) for v in np.unique(where)]
            for v, group in groups:
                out = world.release_venue(world.venues[v], group, now, self)
                self.advance(world, out, now, self.delay)


    def _just_in_time(self, world: World, ids: np.ndarray, now: float) -> np.ndarray:
        """Backpressure: convert into a freezable asset only what the off-ramp ahead could book now
        (counting value already converted for it and on its way); the rest waits in its current,
        less exposed form and tries again after ``retry``."""
        capacity, queue = self.offramp
        exposure = world.scenario.launderer.exposure
        window = queue + exposure.lead_time  # type: ignore[union-attr]
        values = world.lots.value[ids]
        fits = capacity.room(now, values, window, claims=True)
        ids, held = ids[fits], ids[~fits]
        capacity.claim(now, float(values[fits].sum()), exposure.claim_for)  # type: ignore[union-attr]
        if len(held):  # try again when the off-ramp's booked time has shrunk back to the window
            self.held_back += len(held)
            opens = now + capacity.booked_hours(now) - window
            world.schedule(held, np.full(len(held), max(opens, now + world.resolution)))
        world.lots.claimed[ids] = True
        return ids


def compile_program(world: World, hops: list[Any]) -> Program:
    """Turn a playbook (scenario hops) into a flat program of steps with ``next`` links."""
    steps: list[Any] = []
    specs: list[Any] = []  # the scenario hop each step was compiled from

    def build(hops: list[Any]) -> tuple[int, list[int]]:
        """Compile ``hops``; return the first step index and the indices whose next is still open."""
        first: int | None = None
        open_ends: list[int] = []
        for hop in hops:
            index = len(steps)
            if first is None:
                first = index
            for end in open_ends:
                steps[end].next = index
            steps.append(None)
            specs.append(hop)
            steps[index] = STEPS.build(hop, world, index)
            if isinstance(hop, s.BranchHop):
                starts, ends = [], []
                for branch in hop.branches:
                    start, branch_ends = build(branch.playbook)
                    starts.append(start)
                    ends += branch_ends
                steps[index].starts = starts
                open_ends = ends
            else:
                open_ends = [index]
        assert first is not None
        return first, open_ends

    build(hops)
    _merge_equal_tails(steps, specs)
    parents: list[list[int]] = [[] for _ in steps]  # steps that lead directly to each step
    for index in _reachable(steps):
        for child in _successors(steps[index]):
            parents[child].append(index)
    for index, step in enumerate(steps):
        if isinstance(step, Consolidate):
            step.feeders = _ancestors(index, parents)
    exposure = world.scenario.launderer.exposure
    if exposure is not None:
        _manage_exposure(world, steps, exposure)
    return Program(steps)


def _converts(world: World, step: Any) -> bool | None:
    """Whether a step takes lots out of a freezable asset (True), into one (False), or neither (None).
    A ``service`` step converts when every service it may choose does (``converts``)."""
    if isinstance(step, VenueHop):
        if step.to_asset is None or step.kind == "cash_out":
            return None
    elif not (getattr(step, "converts", False) and step.to_asset is not None):
        return None
    return not bool(world.asset_freezable[step.to_asset])


def _cashes_out(step: Any) -> bool:
    """A cash-out: a ``cash_out`` hop, or a ``service`` step whose every function is the off-ramp."""
    return (isinstance(step, VenueHop) and step.kind == "cash_out") or bool(getattr(step, "cashes_out", False))


def _manage_exposure(world: World, steps: list[Any], exposure: Any) -> None:
    """Mark the steps an exposure-aware launderer plays differently (see the schema's ``Exposure``).

    ``swap_first``: a step whose next steps lead, before any cash-out or fork, to a conversion out
    of a freezable asset lets freezable lots skip its voluntary delay. ``just_in_time``: a
    conversion into a freezable asset whose next steps lead, still freezable, to a cash-out at a
    desk with a capacity is held back until that desk could book the value.
    """
    def ahead(index: int) -> Any:
        """Follow ``next`` from ``index``: the first step that converts, cashes out or forks."""
        seen = set()
        while index != DONE and index not in seen:
            seen.add(index)
            step = steps[index]
            if isinstance(step, Fork) or _cashes_out(step) or _converts(world, step) is not None:
                return step
            index = step.next
        return None

    for index in _reachable(steps):
        step = steps[index]
        if exposure.swap_first and step.next != DONE and not isinstance(step, (Fork, Consolidate)):
            step.hurry = _converts(world, ahead(step.next)) is True
        if exposure.just_in_time and _converts(world, step) is False and step.next != DONE:
            desk = ahead(step.next)
            if _cashes_out(desk):
                step.offramp = next(((v.capacity, v.queue) for v in desk.venues
                                     if getattr(v, "capacity", None) is not None), None)


def _merge_equal_tails(steps: list[Any], specs: list[Any]) -> None:
    """Compile identical tails once: two steps with the same hop and the same next step behave
    the same for every lot, so lots at either are one group per tick — branches that end the same
    way (``cash_out`` at the same desks, say) cost one batch of numpy calls, not one per branch.
    The later step stays in the list (indices do not move) but nothing leads to it any more.
    """
    changed = True
    while changed:
        changed = False
        live = _reachable(steps)
        for j in live:
            twin = next((i for i in live if i < j and steps[i].mergeable
                         and type(steps[i]) is type(steps[j]) and specs[i] == specs[j]
                         and steps[i].next == steps[j].next), None)
            if twin is None:
                continue
            for step in steps:
                if step.next == j:
                    step.next = twin
                if isinstance(step, Fork):
                    step.starts = [twin if start == j else start for start in step.starts]
            changed = True
            break


def _reachable(steps: list[Any]) -> list[int]:
    """Indices of the steps a lot can reach from the first one, in ascending order."""
    seen: set[int] = set()
    stack = [0] if steps else []
    while stack:
        index = stack.pop()
        if index in seen:
            continue
        seen.add(index)
        stack.extend(_successors(steps[index]))
    return sorted(seen)


def _successors(step: Any) -> list[int]:
    """The steps a lot goes to from ``step``: its next one, or a fork's branch starts."""
    return ([step.next] if step.next != DONE else []) + (list(step.starts) if isinstance(step, Fork) else [])


def _ancestors(index: int, parents: list[list[int]]) -> np.ndarray:
    seen: set[int] = set()
    stack = list(parents[index])
    while stack:
        p = stack.pop()
        if p not in seen:
            seen.add(p)
            stack.extend(parents[p])
    return np.array(sorted(seen), dtype=np.int32)
