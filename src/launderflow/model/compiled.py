"""The compiled engine: the reference world with its per-tick bookkeeping in numba kernels.

``simulate(..., engine="compiled")`` builds a :class:`CompiledWorld` instead of a
:class:`~launderflow.model.world.World`. It is the same model — the same hops, venues, tracing and
interventions, the same random draws in the same order — whose primitives run as compiled kernels
(:mod:`.kernels`) over the same columnar lot state:

* the agenda is a binary heap of ``(tick, lot)`` entries: scheduling a batch (rounding to the tick,
  parking what falls after the horizon, filing) and taking a tick's due lots are one kernel call each;
* the outcome book accumulates the moves of an instant in two 12-vectors as they come, in the
  order the reference's ``bincount`` adds them;
* a transfer (``World.move``: network fee, value left, knowledge after the hop) and a fork
  (``World.fork``: dividing the lots, then moving the pieces) are one kernel call each; dividing,
  relocating, changing what is traced, ledger rows, the exit log's groups and the tracing team's
  follow-ups are kernels;
* playbook step kinds may register a kernel of their own (:func:`step_kernel`): ``dormant`` and
  ``peel`` do. A kind without one runs its reference ``apply`` on the compiled primitives;
* venue kinds may register kernels for ``enter`` and ``release`` (:func:`venue_kernel`), looked up
  by the venue's exact class: OTC desks, bridges, custodial mixers and DEXes enter by one, OTC
  desks cash out by one, pool mixers release by one (the chances of linking each note). A kind
  without one runs its own methods on the compiled primitives;
* a venue's payout to fresh wallets (``World.pay_out``, which every kind's ``pay_out`` calls:
  relocating the lots to the launderer, then moving them) is one kernel call.

The other venue and hop kinds, interventions, prices and honest traffic run the reference code.
Draws stay in Python, in the reference's order; sums keep numpy's association (pairwise where
numpy sums pairwise), so both engines give the same bytes (``tests/test_engines.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from . import kernels
from .addresses import AddressBook, Role
from .agenda import Agenda
from .book import OutcomeBook
from .lots import _COPIED
from .prices import ExitLog
from .states import N_CELLS, Location
from .tracing import Sharing, TracingTeam
from .venues.base import VenueModel
from .venues.bridge import Bridge
from .venues.custodial_mixer import CustodialMixer
from .venues.dex import Dex
from .venues.otc import OtcDesk
from .venues.pool_mixer import PoolMixer
from .distributions import Distribution
from .hops import Dormant, Peel, Step
from .world import HOP_CODE, World
from ..scenario.schema import Scenario

_FEE_CELL = 2 * int(Location.FEES)
_NO_KEEP = np.empty(0, dtype=bool)
_NO_TIMES = np.empty(0)
_OUT_OF_PLAY = frozenset({Location.FROZEN, Location.SEIZED, Location.CASHED_OUT, Location.FEES})
_LEDGER_KERNEL_COLUMNS = ["time", "src", "dst", "asset", "amount", "value_usd", "fee_usd", "hop", "lot", "venue",
                          "followed"]


StepKernel = Callable[["CompiledWorld", Step, np.ndarray, float], None]
VenueKernel = Callable[["CompiledWorld", VenueModel, np.ndarray, float, Any], Any]
STEP_KERNELS: dict[type, StepKernel] = {}  # playbook step kinds with a kernel; the others run their own apply


def step_kernel(kind: type) -> Callable[[StepKernel], StepKernel]:
    """Register ``kernel(world, step, ids, now)`` as the compiled engine's ``kind.apply``: the same
    draws in the same order, the bookkeeping in kernels (a kind without one runs its reference apply)."""

    def register(kernel: StepKernel) -> StepKernel:
        STEP_KERNELS[kind] = kernel
        return kernel

    return register


VENUE_KERNELS: dict[tuple[type, str], VenueKernel] = {}  # (venue kind, "enter" or "release"): its kernel


def venue_kernel(kind: type, method: str) -> Callable[[VenueKernel], VenueKernel]:
    """Register ``kernel(world, venue, ids, now, hop)`` as the compiled engine's ``kind.enter`` or
    ``kind.release`` (``method``), called in the venue hop's place. Looked up by the venue's exact
    class: a kind without a kernel — a subclass too, which may override what the kernel assumes —
    runs its own methods."""
    if method not in ("enter", "release"):
        raise ValueError(f"a venue kernel replaces enter or release, not {method!r}")

    def register(kernel: VenueKernel) -> VenueKernel:
        VENUE_KERNELS[kind, method] = kernel
        return kernel

    return register


class CompiledBook(OutcomeBook):
    """The outcome book with moves accumulated by a kernel as they come (no list of arrays)."""

    def __init__(self) -> None:
        super().__init__()
        self.plus = np.zeros(N_CELLS)  # what entered each cell since the last netting
        self.minus = np.zeros(N_CELLS)  # what left it
        self._dirty = False

    def accumulators(self, time: float) -> tuple[np.ndarray, np.ndarray]:
        """The two vectors a kernel adds the moves of ``time`` to (the previous instant closed)."""
        self._at(time)
        self._dirty = True
        return self.plus, self.minus

    def move(self, time: float, from_cells: np.ndarray, to_cells: np.ndarray, values: np.ndarray) -> None:
        if len(values) == 0:
            return
        plus, minus = self.accumulators(time)
        kernels.book_move(plus, minus, np.asarray(from_cells), np.asarray(to_cells), np.asarray(values, dtype=np.float64))

    def _net_moves(self) -> None:
        if self._dirty:
            self._pending += self.plus  # (the reference: += bincount(to), then -= bincount(from))
            self._pending -= self.minus
            self.plus[:] = 0.0
            self.minus[:] = 0.0
            self._dirty = False


class CompiledAgenda(Agenda):
    """The agenda as a binary heap kept by kernels; the simpy process is the reference's.

    The reference files entries by window and serves them by slicing; the heap yields the same
    next tick and the same due lots (sorted, once each, stale entries dropped), so the simpy
    process sleeps and wakes at the same instants and the batches are the same.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.heap_t = np.empty(1024, dtype=np.int64)
        self.heap_i = np.empty(1024, dtype=np.int64)
        self.size = 0

    def room(self, n: int) -> None:
        """Make room for ``n`` more entries."""
        if self.size + n > len(self.heap_t):
            cap = max(2 * len(self.heap_t), self.size + n)
            for name in ("heap_t", "heap_i"):
                old = getattr(self, name)
                new = np.empty(cap, dtype=np.int64)
                new[: self.size] = old[: self.size]
                setattr(self, name, new)

    def filed(self, first: int) -> None:
        """Entries were pushed, the earliest at tick ``first``: wake the process if it sleeps longer."""
        if not self._in_batch and first != kernels.NO_TICK:
            self._maybe_wake(first)

    def schedule(self, ids: np.ndarray, ticks: np.ndarray) -> None:
        """Entries at given ticks (``ready`` already written): the reference's interface."""
        if len(ids) == 0:
            return
        ticks = np.asarray(ticks, dtype=np.int64)
        self.room(len(ids))
        for tick, lot in zip(ticks.tolist(), np.asarray(ids).tolist()):
            self.size = kernels._push(self.heap_t, self.heap_i, self.size, tick, lot)
        self.filed(int(ticks.min()))

    def _next_tick(self) -> int | None:
        return int(self.heap_t[0]) if self.size else None

    def _take_due(self, tick: int, when: float) -> np.ndarray:
        self.size, ids = kernels.pop_due(self.heap_t, self.heap_i, self.size, tick, self._ready(), when)
        return ids


class CompiledTeam(TracingTeam):
    """The tracing team whose follow-ups are scheduled and delivered by kernels."""

    def auto(self, ids: np.ndarray, now: float) -> None:
        if len(ids) == 0 or self.instant:
            return super().auto(ids, now)
        self._start(now, len(ids))
        world = self.world
        start = now if self.active(now) else self.discovered_at + min(t.joins_after for t in self.tracers)  # type: ignore[operator]
        lots = world.lots
        soon, m, ticks, hops = kernels.follow_ups(ids, start + self.auto_latency, lots.judge_at, lots.hops,
                                                  float(world.horizon), float(world.resolution))
        if m < len(ids):
            if m == 0:
                return
            ids, hops = ids[soon], hops[soon]
        world._call_groups(ticks, self._caught_up, ids, (hops,))

    def _caught_up(self, ids: np.ndarray, now: float, hops: np.ndarray) -> None:
        world = self.world
        lots = world.lots
        ids, src, dst, values = kernels.caught_up(ids, hops, lots.hops, lots.trail, lots.value, lots.traced,
                                                  lots.location)
        if len(values):
            world.book.move(world.env.now, src, dst, values)
        if len(ids):
            world.sharing.traced(ids, now)


class CompiledSharing(Sharing):
    """Information sharing whose flags are checked and set by a kernel."""

    def _flag(self, ids: np.ndarray, now: float, hops: np.ndarray) -> None:
        lots = self.world.lots
        ids = kernels.flag(ids, hops, lots.hops, lots.traced, lots.alive, lots.flagged)
        for venue in self.venues if len(ids) else ():
            venue.alert(self.world, ids, now)


class CompiledExitLog(ExitLog):
    """The exit log whose per-event groups (asset, was frozen) are summed by a kernel."""

    @staticmethod
    def groups(assets: np.ndarray, values: np.ndarray, was: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return kernels.exit_groups(assets, np.asarray(values, dtype=np.float64), was, int(Location.FROZEN))


class CompiledWorld(World):
    """The world whose bookkeeping primitives are kernels (see the module's docstring)."""

    book_class = CompiledBook
    agenda_class = CompiledAgenda
    team_class = CompiledTeam
    sharing_class = CompiledSharing
    exits_class = CompiledExitLog
    book: CompiledBook
    agenda: CompiledAgenda

    def __init__(self, scenario: Scenario, rng: np.random.Generator):
        super().__init__(scenario, rng)
        # The ledger kernel writes these columns; a ledger with others is written by the reference.
        self._ledger_kernel = list(self.ledger.dtypes) == _LEDGER_KERNEL_COLUMNS
        self._copied: tuple[np.ndarray, ...] = (np.empty(0),)
        self._clock = (float(self.horizon), float(self.resolution))  # (what every scheduling kernel takes)

    def schedule(self, ids: np.ndarray, times: np.ndarray) -> None:
        if len(ids):
            self.file(len(ids), kernels.schedule, np.asarray(ids, dtype=np.int64), np.asarray(times, dtype=np.float64))

    def file(self, n: int, kernel: Callable[..., tuple[int, int]], *args: Any) -> None:
        """Run a scheduling kernel that puts at most ``n`` entries on the agenda: ``kernel(*args,
        horizon, resolution, clock, ready, heap_t, heap_i, size)`` returns the heap's size and its first tick."""
        agenda = self.agenda
        if agenda.size + n > len(agenda.heap_t):
            agenda.room(n)
        agenda.size, first = kernel(*args, self._clock[0], self._clock[1], float(self.env.now),
                                    self.lots.ready, agenda.heap_t, agenda.heap_i, agenda.size)
        if first != kernels.NO_TICK and not agenda._in_batch:  # (agenda.filed, inlined: the hottest call)
            agenda._maybe_wake(first)

    def _to_fees(self, ids: np.ndarray, value: np.ndarray, amounts: np.ndarray) -> np.ndarray:
        if len(ids) == 0:
            return value - amounts
        lots = self.lots
        plus, minus = self.book.accumulators(self.env.now)
        return kernels.to_fees(ids, value, np.asarray(amounts, dtype=np.float64), lots.value, lots.location, lots.traced,
                               lots.alive, lots.ready, plus, minus, _FEE_CELL)

    def _due_groups(self, ids: np.ndarray) -> tuple[np.ndarray, list[int]]:
        ids, bounds = kernels.due_groups(ids, self.lots.theft, self.lots.step)
        return ids, bounds.tolist()

    def _apply(self, step: Any, ids: np.ndarray, now: float) -> None:
        kernel = STEP_KERNELS.get(type(step))
        if kernel is None:
            step.apply(self, ids, now)
        else:
            kernel(self, step, ids, now)

    def enter_venue(self, venue: VenueModel, ids: np.ndarray, now: float, hop: Any) -> None:
        kernel = VENUE_KERNELS.get((type(venue), "enter"))
        if kernel is None:
            venue.enter(self, ids, now, hop)
        else:
            kernel(self, venue, ids, now, hop)

    def release_venue(self, venue: VenueModel, ids: np.ndarray, now: float, hop: Any) -> np.ndarray:
        kernel = VENUE_KERNELS.get((type(venue), "release"))
        return venue.release(self, ids, now, hop) if kernel is None else kernel(self, venue, ids, now, hop)

    def after(self, ids: np.ndarray, now: float, delay: Distribution | None) -> None:
        extra = None if delay is None else delay.sample(self.rng, len(ids))
        if len(ids):
            self.file(len(ids), kernels.schedule_after, np.asarray(ids, dtype=np.int64), float(now),
                      self.asset_confirmation, self.lots.asset,
                      _NO_TIMES if extra is None else np.asarray(extra, dtype=np.float64), extra is not None)

    def at(self, times: np.ndarray, ids: np.ndarray, action: Any, *payload: np.ndarray) -> None:
        if len(ids) == 0 or np.ndim(times) == 0:
            return super().at(times, ids, action, *payload)
        times = np.asarray(times, dtype=np.float64)
        soon, m, ticks = kernels.at_ticks(times, float(self.horizon), float(self.resolution))
        if m < len(times):
            if m == 0:
                return
            ids, payload = ids[soon], tuple(p[soon] for p in payload)
        self._call_groups(ticks, action, ids, payload)

    def _held(self, n_assets: int) -> tuple[np.ndarray, np.ndarray]:
        lots = self.lots
        n = len(lots)
        return kernels.holdings(lots.alive[:n], lots.value[:n], lots.location[:n], lots.asset[:n], lots.address[:n],
                                n_assets, int(Location.LAUNDERER))

    def set_traced(self, ids: np.ndarray, traced: np.ndarray) -> None:
        if len(ids) == 0:
            return
        lots = self.lots
        src, dst, values = kernels.set_traced(ids, traced, lots.traced, lots.location, lots.value)
        if len(values):
            self.book.move(self.env.now, src, dst, values)

    def relocate(self, ids: np.ndarray, location: Location, venue: int = -1) -> None:
        lots = self.lots
        now = self.env.now
        before, after, asset, value = kernels.relocate(ids, int(location), venue, lots.location, lots.venue,
                                                       lots.traced, lots.value, lots.asset)
        if location in _OUT_OF_PLAY:
            self.exits.note(now, location, venue, asset, value, before >> 1)
            lots.retire(ids, spent=False)
            if location in (Location.FROZEN, Location.SEIZED) and len(ids):
                np.maximum.at(self.last_stopped, lots.theft[ids], now)
        self.book.move(now, before, after, value)

    def record(self, now: float, src: np.ndarray | int, dst: np.ndarray | int, lots: np.ndarray,
               values: np.ndarray, hop: str, venue: int | np.ndarray = -1, fee: np.ndarray | float = 0.0,
               asset: np.ndarray | None = None) -> None:
        ledger = self.ledger
        n = len(lots)
        if not self._ledger_kernel or n == 0:
            return super().record(now, src, dst, lots, values, hop, venue, fee, asset)
        if ledger._used + n > ledger._cap:
            ledger._make_room(n)
        d = ledger._data
        kernels.ledger_rows(ledger._used, d["time"], d["src"], d["dst"], d["asset"], d["amount"], d["value_usd"],
                            d["fee_usd"], d["hop"], d["lot"], d["venue"], d["followed"], float(now), src, dst,
                            self.lots.asset[lots] if asset is None else asset, values, fee, HOP_CODE[hop], lots,
                            venue, self.lots.trail)
        ledger._used += n
        ledger._rows += n

    def divide(self, parents: np.ndarray, counts: np.ndarray, values: np.ndarray, requeue: bool = True,
               owner: np.ndarray | None = None) -> np.ndarray:
        if len(parents) == 0 or counts.min() < 1:  # (the reference's behaviour, whatever it is)
            return super().divide(parents, counts, values, requeue, owner)
        lots = self.lots
        if owner is None:
            owner = parents.repeat(counts)
        children = lots.add(len(owner))  # rows at their defaults; the kernel fills them
        pending = kernels.divide(parents, counts, np.asarray(values, dtype=np.float64), owner, int(children[0]),
                                 lots.value, lots.alive, lots.ready, self._copied_columns(),
                                 lots.trail, lots.traced, lots.theft, self.discovered, self.all_discovered)
        if requeue and len(pending):
            self.team.auto(pending, self.env.now)  # (a pending judgment is kept: judge_at is inherited)
        return children

    def move(self, ids: np.ndarray, now: float, hop: str, dst: np.ndarray | int | None = None, venue: int = -1,
             trace: bool = True, judged: bool = False, keep: np.ndarray | None = None) -> None:
        """``World.move`` with the fee, the value left and the knowledge after the hop in one kernel."""
        if len(ids) == 0:
            return
        lots = self.lots
        keep = self._keep(ids, hop, keep) if trace else None
        plus, minus = self.book.accumulators(self.env.now)
        fee, total, asset, value, src, lost, follow = kernels.move(
            ids, trace, judged, _NO_KEEP if keep is None else keep, keep is not None, self.team.instant, self.asset_fee,
            lots.asset, lots.value, lots.address, lots.location, lots.traced, lots.alive, lots.ready, plus, minus,
            _FEE_CELL, lots.hops, lots.flagged, lots.judged, lots.trail, lots.theft, lots.judge_at, self.discovered,
            self.all_discovered)
        self._moved(ids, now, hop, dst, venue, trace, judged, fee, total, asset, value, src, lost, follow)

    def fork(self, parents: np.ndarray, counts: np.ndarray, shares: np.ndarray, now: float, hop: str,
             src: np.ndarray | int | None = None, venue: int = -1, judged: bool = False) -> np.ndarray:
        """``World.fork``: dividing the lots and moving the pieces in one kernel."""
        if len(parents) == 0 or counts.min() < 1 or (src is not None and (np.ndim(src) or src < 0)):
            return super().fork(parents, counts, shares, now, hop, src, venue, judged)
        lots = self.lots
        owner = parents.repeat(counts)
        start = int(lots.add(len(owner))[0])  # rows at their defaults; the kernel fills them
        keep = self._keep(owner, hop, None)  # (one draw per piece, as the reference's move of the pieces)
        plus, minus = self.book.accumulators(self.env.now)
        children, fee, total, asset, value, source, lost, follow = kernels.fork(
            parents, counts, np.asarray(shares, dtype=np.float64), owner, start, self._copied_columns(),
            -1 if src is None else int(src), _NO_KEEP if keep is None else keep, keep is not None, judged,
            self.team.instant, self.asset_fee, lots.asset, lots.value, lots.address, lots.location, lots.traced,
            lots.alive, lots.ready, plus, minus, _FEE_CELL, lots.hops, lots.flagged, lots.judged, lots.trail, lots.theft, lots.judge_at, self.discovered,
            self.all_discovered)
        self._moved(children, now, hop, None, venue, True, judged, fee, total, asset, value, source, lost, follow)
        return children

    def pay_out(self, venue: VenueModel, ids: np.ndarray, now: float, hop_kind: str,
                keep: np.ndarray | None = None) -> np.ndarray:
        """``World.pay_out``: the relocation and the move in one kernel."""
        lots = self.lots
        alive = lots.alive[ids]
        ids = ids[alive]
        if len(ids) == 0:
            return ids
        judged = venue.judgment_point
        keep = self._keep(ids, hop_kind, None if keep is None else keep[alive])
        plus, minus = self.book.accumulators(self.env.now)
        fee, total, asset, value, src, lost, follow = kernels.pay_out(
            ids, venue.address, int(Location.LAUNDERER), _NO_KEEP if keep is None else keep, keep is not None, judged,
            self.team.instant, self.asset_fee, lots.asset, lots.value, lots.address, lots.location, lots.venue,
            lots.traced, lots.alive, lots.ready, plus, minus, _FEE_CELL, lots.hops, lots.flagged, lots.judged,
            lots.trail, lots.theft, lots.judge_at, self.discovered, self.all_discovered)
        self._moved(ids, now, hop_kind, None, venue.index, True, judged, fee, total, asset, value, src, lost, follow)
        return ids[lots.alive[ids]]

    def _keep(self, ids: np.ndarray, hop: str, keep: np.ndarray | None) -> np.ndarray | None:
        """The trails that survive a hop: the venue's own draw, else the team's (``hop_knowledge``'s draw)."""
        if keep is None:
            team = self.team
            p = team.success(hop, self.env.now)
            if p < 1.0:
                keep = team.rng.random(len(ids)) < p
        return keep

    def _moved(self, ids: np.ndarray, now: float, hop: str, dst: np.ndarray | int | None, venue: int, trace: bool,
               judged: bool, fee: np.ndarray, total: float, asset: np.ndarray, value: np.ndarray, src: np.ndarray,
               lost: np.ndarray, follow: np.ndarray) -> None:
        """The rest of ``World.move`` after its kernel, in the reference's order: the new addresses,
        the calls into tracing, the ledger rows."""
        if dst is None:
            dst = self.addresses.new(len(ids), self.asset_chain[asset], Role.LAUNDERER)
        if total > 0:
            self.network_fees += total
        self.lots.address[ids] = dst
        if trace:
            self._follow(lost, follow, venue, judged)
        self.record(now, src, dst, ids, value, hop, venue, fee, asset)

    def _follow(self, lost: np.ndarray, follow: np.ndarray, venue: int, judged: bool) -> None:
        """``hop_knowledge``'s calls into tracing: trails lost (their re-identification drawn), the
        lots to follow to the analysts' queue (a judgment point) or to the software."""
        now = self.env.now
        if len(lost):
            self.recovery.lost(lost, venue if judged else -1, now)
        if judged and not self.team.instant:
            self.team.judge(follow, now)
        else:
            self.team.auto(follow, now)

    def hop_knowledge(self, ids: np.ndarray, hop: str, judged: bool = False, keep: np.ndarray | None = None,
                      venue: int = -1) -> None:
        if len(ids) == 0:
            return
        lots = self.lots
        now = self.env.now
        team = self.team
        keep = self._keep(ids, hop, keep)
        lost, follow, dark_from, dark_value = kernels.hop_knowledge(
            ids, judged, _NO_KEEP if keep is None else keep, keep is not None, team.instant, lots.hops, lots.flagged,
            lots.judged, lots.trail, lots.traced, lots.theft, lots.location, lots.value, lots.judge_at,
            self.discovered, self.all_discovered)
        if len(dark_from):
            self.book.move(now, dark_from + 1, dark_from, dark_value)
        self._follow(lost, follow, venue, judged)

    def _copied_columns(self) -> tuple[np.ndarray, ...]:
        """The lot columns a divided lot's pieces copy (rebuilt when the table has grown)."""
        lots = self.lots
        if self._copied[0] is not getattr(lots, _COPIED[0]):
            self._copied = tuple(getattr(lots, name) for name in _COPIED)
        return self._copied



@step_kernel(Dormant)
def _dormant(world: CompiledWorld, step: Dormant, ids: np.ndarray, now: float) -> None:
    """``Dormant.apply``: the draws here, in its order (waves, then spreads); the rest in one kernel."""
    lots = world.lots
    arriving, due = kernels.split_phases(ids, lots.substep)
    n = len(arriving)
    wave = np.zeros(n)
    spread = _NO_TIMES
    if n:
        if step.waves > 1:
            wave = world.rng.integers(0, step.waves, n)
        spread = np.asarray(step.spread.sample(world.rng, n), dtype=np.float64)
    world.file(len(ids), kernels.dormant, arriving, due, wave, spread, world.theft_time, lots.theft, float(step.first),
               float(step.every), step.hurry, world.asset_freezable, lots.asset, float(step.quiet), world.last_stopped,
               float(now), step.next, lots.step, lots.substep)


@step_kernel(Peel)
def _peel(world: CompiledWorld, step: Peel, ids: np.ndarray, now: float) -> None:
    """``Peel.apply``: the fork as the reference's; the hop count and who moves on in a kernel."""
    peeled, remainder = step.pieces(world, ids, now)
    moving, again = kernels.peel_tail(peeled, remainder, world.lots.substep, step.length, world.lots.alive)
    step.advance(world, moving, now, step.delay)
    world.after(again, now, step.delay)


def _base_enter(world: CompiledWorld, venue: VenueModel, ids: np.ndarray, now: float, hop: Any) -> None:
    """``VenueModel.enter`` (``take_in``, then the kind's ``on_enter``): the move as ``World.move``,
    what follows it in one kernel."""
    lots = world.lots
    hop_kind = venue.kind if hop.kind == "mix" else hop.kind
    cash_out = hop_kind == "cash_out"
    world.note_inflow(venue, ids)
    snapshot = lots.flagged[ids]  # the deposit comes from an address already shared as stolen
    world.move(ids, now, hop_kind, dst=venue.address, venue=venue.index, trace=cash_out, judged=cash_out)
    plus, minus = world.book.accumulators(world.env.now)
    ids = kernels.taken_in(ids, snapshot, lots.flagged, lots.alive, int(Location.VENUE), venue.index, lots.location,
                           lots.venue, lots.traced, lots.value, lots.asset, plus, minus, lots.substep, lots.entered,
                           float(now), lots.held, lots.touched, np.uint64(1 << venue.index))
    if len(ids):
        venue.on_enter(world, ids, now, hop)


for _kind in (OtcDesk, Bridge, CustodialMixer, Dex):  # (Exchange runs its own code; PoolMixer has its own enter)
    assert _kind.enter is VenueModel.enter and _kind.take_in is VenueModel.take_in, _kind
    venue_kernel(_kind, "enter")(_base_enter)


@venue_kernel(OtcDesk, "release")
def _otc_release(world: CompiledWorld, venue: OtcDesk, ids: np.ndarray, now: float, hop: Any) -> np.ndarray:
    """``OtcDesk.release``, the desk's ``cash_out`` (haircut, ledger rows, out of play) in one kernel;
    with honest counterparties (a P2P buyer's wallet) the reference's."""
    ledger = world.ledger
    if world.counterparties is not None or not world._ledger_kernel:
        return venue.release(world, ids, now, hop)
    lots = world.lots
    if ledger._used + len(ids) > ledger._cap:
        ledger._make_room(len(ids))
    d = ledger._data
    plus, minus = world.book.accumulators(world.env.now)
    total, out, asset, value, was = kernels.cash_out(
        ids, float(venue.haircut), 0.0, venue.haircut > 0, lots.value, lots.alive, lots.ready, lots.location,
        lots.traced, plus, minus, _FEE_CELL, int(Location.CASHED_OUT), venue.index, lots.venue, lots.asset, ledger._used,
        d["time"], d["src"], d["dst"], d["asset"], d["amount"], d["value_usd"], d["fee_usd"], d["hop"], d["lot"],
        d["venue"], d["followed"], float(now), venue.address, AddressBook.OFF_CHAIN, HOP_CODE["cash_out"], lots.trail)
    ledger._used += len(out)
    ledger._rows += len(out)
    if total > 0:
        world.venue_fees[venue.index] += total
    world.exits.note(world.env.now, Location.CASHED_OUT, venue.index, asset, value, was)
    return ids[:0]


assert OtcDesk.cash_out is VenueModel.cash_out and OtcDesk.charge is VenueModel.charge  # (what _otc_release does)


@venue_kernel(PoolMixer, "release")
def _pool_release(world: CompiledWorld, venue: PoolMixer, ids: np.ndarray, now: float, hop: Any) -> np.ndarray:
    """``PoolMixer.release``: each note's chance of being linked in a kernel, then the venue's own
    ``withdraw`` (the draw, the logs, the relayer's fee and the payout, whose kernel is ``pay_out``)."""
    lots = world.lots
    ids = ids[lots.alive[ids]]
    d = venue.demixing
    pools, anonymity, p_link = kernels.link_chances(ids, lots.tag, venue.honest, venue.launderer, lots.entered,
                                                    float(now), venue.habits_miss(), float(d.quick_threshold),
                                                    1.0 - d.quick_round_trip)
    return venue.withdraw(world, ids, now, pools, anonymity, p_link)


