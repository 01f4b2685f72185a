"""Each hop kind on tiny scenarios whose answers are known in closed form."""

from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import rows, run, tiny
from launderflow import metrics
from launderflow.model.simulate import simulate

STATE = {name: i for i, name in enumerate(metrics.STATES)}
RES = 1.0 / 60.0  # the tiny scenarios' clock resolution: 1 minute, in hours
CONF = 0.05  # 3 minutes of chain confirmation, in hours


def ceil_tick(t: float, res: float = RES) -> float:
    """A time rounded up to the clock resolution (as the agenda does)."""
    return math.ceil(t / res - 1e-9) * res


def grid_for(rep, step: float = 0.25) -> np.ndarray:
    return np.arange(0.0, rep.horizon + 1e-9, step)


# --- split -----------------------------------------------------------------------------------


@pytest.mark.parametrize("wallets", [1, 3, 17])
@pytest.mark.parametrize("fee", [0.0, 5.0])
def test_split_gives_n_children_per_lot_summing_to_parent_minus_fees(wallets, fee):
    scenario = tiny(
        [{"hop": "split", "wallets": wallets, "concentration": 2.0}, {"hop": "wait", "delay": "1d"}],
        stolen=[{"asset": "ETH", "amount": 100}, {"asset": "USDC", "amount": 250_000}],
        fee=fee,
    )
    rep = run(scenario, seed=3)
    led = rep.ledger
    theft = np.flatnonzero(rows(rep, "theft"))
    split = rows(rep, "split")
    assert len(theft) == 2
    assert split.sum() == 2 * wallets
    for t in theft:
        parent_wallet, parent_value = led["dst"][t], led["value_usd"][t]
        mine = split & (led["src"] == parent_wallet)
        assert mine.sum() == wallets
        # children carry one asset: the parent's
        assert np.all(led["asset"][mine] == led["asset"][t])
        # each child pays exactly one chain fee, and value + fees is the parent's value
        np.testing.assert_allclose(led["fee_usd"][mine], fee)
        assert math.isclose(led["value_usd"][mine].sum(), parent_value - wallets * fee, rel_tol=1e-12)
        assert np.all(led["value_usd"][mine] > 0)
        # every child goes to its own fresh wallet
        assert len(np.unique(led["dst"][mine])) == wallets
        # amount is value in the asset's units
        price = scenario.assets[list(scenario.assets)[led["asset"][t]]].price_usd
        np.testing.assert_allclose(led["amount"][mine] * price, led["value_usd"][mine], rtol=1e-12)


def test_two_level_split_each_child_splits_again():
    scenario = tiny([{"hop": "split", "wallets": 4}, {"hop": "split", "wallets": 5}, {"hop": "wait", "delay": "1d"}],
                    fee=2.0)
    rep = run(scenario, seed=1)
    led = rep.ledger
    split = np.flatnonzero(rows(rep, "split"))
    assert len(split) == 4 + 4 * 5
    first = [i for i in split if led["src"][i] == led["dst"][np.flatnonzero(rows(rep, "theft"))[0]]]
    assert len(first) == 4
    for i in first:
        children = split[led["src"][split] == led["dst"][i]]
        assert len(children) == 5
        assert math.isclose(led["value_usd"][children].sum() + led["fee_usd"][children].sum(),
                            led["value_usd"][i], rel_tol=1e-12)


def test_split_concentration_large_means_equal_shares():
    rep = run(tiny([{"hop": "split", "wallets": 10, "concentration": 1e9}, {"hop": "wait", "delay": "1d"}]))
    values = rep.ledger["value_usd"][rows(rep, "split")]
    np.testing.assert_allclose(values, 10_000.0, rtol=1e-3)


# --- peel ------------------------------------------------------------------------------------


@pytest.mark.parametrize("length,fraction", [(1, 0.5), (3, 0.2), (6, 0.1)])
def test_peel_amounts_are_geometric(length, fraction):
    value = 100_000.0
    scenario = tiny([{"hop": "peel", "length": length, "fraction": fraction, "delay": "1h"}, {"hop": "transfer"}],
                    confirmation="3min")
    rep = run(scenario, seed=5)
    led = rep.ledger
    peel = np.flatnonzero(rows(rep, "peel"))
    assert len(peel) == 2 * length
    # peel hop j (1-based) happens at (j-1) * (confirmation + delay) and splits the chain in two:
    # the peeled piece f (1-f)^(j-1) and the remainder (1-f)^j of the lot
    times = np.unique(led["time"][peel])
    assert len(times) == length
    for j, t in enumerate(times, start=1):
        assert math.isclose(t, ceil_tick((j - 1) * (CONF + 1.0)), abs_tol=1e-9)
        pair = np.sort(led["value_usd"][peel[led["time"][peel] == t]])
        expected = np.sort([fraction * (1 - fraction) ** (j - 1) * value, (1 - fraction) ** j * value])
        np.testing.assert_allclose(pair, expected, rtol=1e-12)
    # what moves on to the next step: the L peeled pieces and the final remainder, nothing else
    moved_on = np.sort(led["value_usd"][rows(rep, "transfer")])
    expected = np.sort([fraction * (1 - fraction) ** (j - 1) * value for j in range(1, length + 1)]
                       + [(1 - fraction) ** length * value])
    np.testing.assert_allclose(moved_on, expected, rtol=1e-12)
    assert math.isclose(moved_on.sum(), value, rel_tol=1e-12)


def test_peel_chain_links_each_hop_to_the_previous_remainder():
    rep = run(tiny([{"hop": "peel", "length": 4, "fraction": 0.25, "delay": "2h"}, {"hop": "wait", "delay": "1d"}]))
    led = rep.ledger
    peel = np.flatnonzero(rows(rep, "peel"))
    order = peel[np.argsort(led["time"][peel], kind="stable")]
    pairs = order.reshape(-1, 2)
    for previous, current in zip(pairs[:-1], pairs[1:]):
        remainder = previous[np.argmax(led["value_usd"][previous])]
        # both transfers of the next peel hop leave the previous remainder's wallet
        assert np.all(led["src"][current] == led["dst"][remainder])


# --- wait ------------------------------------------------------------------------------------


@pytest.mark.parametrize("delay,hours", [("5h", 5.0), ("90s", 90 / 3600), ("2.5d", 60.0), ("7min", 7 / 60)])
def test_wait_delays_the_next_move_by_exactly_the_delay(delay, hours):
    with_wait = tiny([{"hop": "transfer"}, {"hop": "wait", "delay": delay}, {"hop": "transfer"}],
                     confirmation="3min", stolen=[{"asset": "ETH", "amount": 1}])
    without = tiny([{"hop": "transfer"}, {"hop": "transfer"}], confirmation="3min", stolen=[{"asset": "ETH", "amount": 1}])
    rep_with, rep_without = run(with_wait), run(without)
    t_with = rep_with.ledger["time"][rows(rep_with, "transfer")]
    t_without = rep_without.ledger["time"][rows(rep_without, "transfer")]
    assert len(t_with) == len(t_without) == 2
    assert t_with[0] == t_without[0] == 0.0
    # without the wait the second move follows the confirmation; the wait adds its delay, rounded up
    assert math.isclose(t_without[1], ceil_tick(CONF), abs_tol=1e-9)
    assert math.isclose(t_with[1], ceil_tick(ceil_tick(CONF) + hours), abs_tol=1e-9)


def test_wait_after_theft_time_offset_and_random_delays_is_bounded():
    scenario = tiny([{"hop": "split", "wallets": 50},
                     {"hop": "wait", "delay": {"dist": "uniform", "low": "1d", "high": "2d"}},
                     {"hop": "transfer"}], confirmation="3min")
    rep = run(scenario, seed=11)
    led = rep.ledger
    split_t = led["time"][rows(rep, "split")]
    moves = led["time"][rows(rep, "transfer")]
    assert len(moves) == 50 and np.all(split_t == 0.0)
    assert moves.min() >= CONF + 24.0 - 1e-9
    assert moves.max() <= ceil_tick(CONF) + 48.0 + RES + 1e-9
    assert len(np.unique(moves)) > 10  # the delays really are drawn per lot
    # every time is on the clock grid
    np.testing.assert_allclose(np.round(moves / RES) * RES, moves, atol=1e-9)


# --- consolidate ------------------------------------------------------------------------------


def check_consolidation(rep, wallets: int, n_inputs: int, last_arrival: float | None = None) -> None:
    led = rep.ledger
    cons = rows(rep, "consolidate")
    assert cons.sum() == n_inputs, "every lot still in play must be merged, each exactly once"
    times = np.unique(led["time"][cons])
    assert len(times) == 1, f"consolidation happened at {len(times)} different times: {times}"
    if last_arrival is not None:
        assert times[0] >= last_arrival - 1e-9
    for asset in np.unique(led["asset"][cons]):
        targets = np.unique(led["dst"][cons & (led["asset"] == asset)])
        assert 1 <= len(targets) <= wallets


def test_consolidate_after_peel_waits_for_the_whole_chain():
    length, wallets = 3, 2
    scenario = tiny([{"hop": "peel", "length": length, "fraction": 0.2, "delay": "1h"},
                     {"hop": "consolidate", "wallets": wallets},
                     {"hop": "wait", "delay": "1d"}],
                    confirmation="3min", stolen=[{"asset": "ETH", "amount": 100}, {"asset": "USDC", "amount": 50_000}])
    rep = run(scenario, seed=2)
    led = rep.ledger
    last_peel = led["time"][rows(rep, "peel")].max()
    last_arrival = ceil_tick(last_peel + CONF + 1.0)
    check_consolidation(rep, wallets, n_inputs=2 * (length + 1), last_arrival=last_arrival)
    assert math.isclose(led["time"][rows(rep, "consolidate")][0], last_arrival, abs_tol=1e-9)


@pytest.mark.parametrize("seed", [0, 1])
def test_consolidate_after_split_with_random_delays_merges_once(seed):
    scenario = tiny([{"hop": "split", "wallets": 8, "delay": {"dist": "exponential", "mean": "6h"}},
                     {"hop": "consolidate", "wallets": 3},
                     {"hop": "transfer"}],
                    stolen=[{"asset": "ETH", "amount": 100}, {"asset": "USDC", "amount": 50_000}], fee=1.0)
    rep = run(scenario, seed=seed)
    check_consolidation(rep, wallets=3, n_inputs=16, last_arrival=rep.ledger["time"][rows(rep, "split")].max())
    led = rep.ledger
    cons, after = rows(rep, "consolidate"), rows(rep, "transfer")
    # the merged wallets move on: at most 3 per asset, carrying everything minus one fee per input
    assert after.sum() <= 6
    for asset in (0, 1):
        into = led["value_usd"][cons & (led["asset"] == asset)].sum()
        out = led["value_usd"][after & (led["asset"] == asset)].sum() + led["fee_usd"][after & (led["asset"] == asset)].sum()
        assert math.isclose(into, out, rel_tol=1e-12)


def test_consolidate_after_wait_waits_for_dormant_lots():
    scenario = tiny([{"hop": "split", "wallets": 5},
                     {"hop": "wait", "delay": {"dist": "uniform", "low": "1h", "high": "3d"}},
                     {"hop": "consolidate", "wallets": 1},
                     {"hop": "wait", "delay": "1d"}])
    rep = run(scenario, seed=4)
    check_consolidation(rep, wallets=1, n_inputs=5)


# --- cash out ----------------------------------------------------------------------------------


@pytest.mark.parametrize("haircut", [0.0, 0.05, 0.5])
def test_cash_out_leaves_after_venue_delay_minus_haircut(haircut):
    fee, value, delay = 5.0, 100_000.0, 48.0
    scenario = tiny([{"hop": "cash_out", "venue": "otc_broker"}], fee=fee, confirmation="3min", horizon="5d",
                    venue={"kind": "otc", "jurisdiction": "offshore", "delay": "2d", "haircut": haircut})
    rep = run(scenario)
    led = rep.ledger
    out = np.flatnonzero(rows(rep, "cash_out"))
    assert len(out) == 2  # deposit into the venue, then off the chain
    deposit, settle = out[np.argsort(led["time"][out])]
    assert led["time"][deposit] == 0.0
    assert led["venue"][deposit] == led["venue"][settle] == 0
    assert math.isclose(led["value_usd"][deposit], value - fee)
    assert math.isclose(led["value_usd"][settle], (value - fee) * (1 - haircut), rel_tol=1e-12)
    t_out = led["time"][settle]
    assert delay - 1e-9 <= t_out <= ceil_tick(delay + CONF) + 1e-9
    cashed = (value - fee) * (1 - haircut)
    tl = metrics.timeline(rep, np.array([0.0, delay / 2, t_out - RES, t_out, rep.horizon]))
    s = STATE
    # before the delay: everything but the fee sits in the venue, nothing cashed out
    for k in (0, 1, 2):
        assert tl[k, s["cashed_out"]] == 0.0
        assert math.isclose(tl[k, s["venue"]], value - fee)
        assert math.isclose(tl[k, s["fees"]], fee)
    # afterwards: cashed out minus the haircut, the haircut counts as fees, the venue is empty
    for k in (3, 4):
        assert math.isclose(tl[k, s["cashed_out"]], cashed, rel_tol=1e-12)
        assert math.isclose(tl[k, s["fees"]], fee + (value - fee) * haircut, rel_tol=1e-12)
        assert abs(tl[k, s["venue"]]) < 1e-6
        assert abs(tl[k, s["launderer"]]) < 1e-6
    assert math.isclose(metrics.final_states(rep)["cashed_out"], cashed, rel_tol=1e-12)


def test_cash_out_random_venue_delay_is_per_lot():
    scenario = tiny([{"hop": "split", "wallets": 30}, {"hop": "cash_out", "venue": "otc_broker"}],
                    venue={"kind": "otc", "jurisdiction": "offshore", "delay": {"dist": "exponential", "mean": "1d"},
                           "haircut": 0.1}, horizon="200d")
    rep = run(scenario, seed=9)
    led = rep.ledger
    out = rows(rep, "cash_out")
    settle = out & (led["dst"] == 0)  # AddressBook.OFF_CHAIN
    assert settle.sum() == 30
    assert len(np.unique(led["time"][settle])) > 10
    assert math.isclose(metrics.final_states(rep)["cashed_out"], 100_000.0 * 0.9, rel_tol=1e-12)


# --- fees --------------------------------------------------------------------------------------


@pytest.mark.parametrize("fee", [0.5, 7.0])
def test_fees_equal_transfers_times_chain_fee(fee):
    scenario = tiny([{"hop": "split", "wallets": 6},
                     {"hop": "transfer", "delay": "1h"},
                     {"hop": "peel", "length": 2, "fraction": 0.3},
                     {"hop": "wait", "delay": "2h"},
                     {"hop": "transfer"}],
                    fee=fee, confirmation="3min", stolen=[{"asset": "ETH", "amount": 100}, {"asset": "USDC", "amount": 9e5}])
    rep = run(scenario, seed=8)
    led = rep.ledger
    transfers = ~rows(rep, "theft")
    n = int(transfers.sum())
    assert n == 2 * (6 + 6 + 6 * 4 + 6 * 3)  # per stolen lot: split, transfer, 2 peels x 2, 3 moving on
    np.testing.assert_allclose(led["fee_usd"][transfers], fee)
    assert math.isclose(led["fee_usd"].sum(), n * fee, rel_tol=1e-12)
    assert math.isclose(metrics.final_states(rep)["fees"], n * fee, rel_tol=1e-12)
    assert math.isclose(metrics.final_states(rep)["launderer"], rep.stolen_usd - n * fee, rel_tol=1e-12)


def test_fee_larger_than_a_lot_eats_it_whole():
    # 1 ETH at $10 split in 4: each child (~$2.5) is worth less than the $5 fee
    scenario = tiny([{"hop": "split", "wallets": 4, "concentration": 1e6}, {"hop": "transfer"}],
                    fee=5.0, price=10.0, stolen=[{"asset": "ETH", "amount": 1}])
    rep = run(scenario)
    led = rep.ledger
    assert np.all(led["value_usd"] >= 0)
    assert math.isclose(led["fee_usd"].sum(), 10.0, rel_tol=1e-12)  # never more fee than value
    final = metrics.final_states(rep)
    assert math.isclose(final["fees"], 10.0, rel_tol=1e-12)
    assert final["launderer"] == 0.0


# --- knowledge ---------------------------------------------------------------------------------

EVERY_HOP = [{"hop": "split", "wallets": 5, "delay": {"dist": "exponential", "mean": "2h"}},
             {"hop": "peel", "length": 2, "fraction": 0.3, "delay": "1h"},
             {"hop": "transfer", "delay": "30min"},
             {"hop": "wait", "delay": {"dist": "uniform", "low": "1h", "high": "1d"}},
             {"hop": "consolidate", "wallets": 2},
             {"hop": "cash_out", "venue": "otc_broker"}]
ALL_ONE = {"transfer": 1.0, "split": 1.0, "peel": 1.0, "consolidate": 1.0, "cash_out": 1.0}


def test_perfect_tracing_from_the_start_traces_everything():
    rep = run(tiny(EVERY_HOP, fee=3.0, confirmation="3min", hop_success=ALL_ONE), seed=6)
    tl = metrics.timeline(rep, grid_for(rep))
    np.testing.assert_allclose(tl[:, STATE["traced"]], rep.stolen_usd, rtol=1e-12)
    np.testing.assert_allclose(tl[:, STATE["dark"]], 0.0, atol=1e-9 * rep.stolen_usd)
    assert metrics.final_states(rep)["cashed_out"] > 0  # the playbook really ran to the end


@pytest.mark.parametrize("discovered", ["21618s", "30.005h"])
def test_nothing_is_traced_before_discovery(discovered):
    # discovery instants off the one-minute grid, so that no move ties with them
    d = {"21618s": 6.005, "30.005h": 30.005}[discovered]
    rep = run(tiny(EVERY_HOP, fee=3.0, confirmation="3min", hop_success=ALL_ONE, discovered_after=discovered), seed=6)
    led = rep.ledger
    grid = np.union1d(grid_for(rep), [d - 1e-6, d])
    tl = metrics.timeline(rep, grid)
    before, after = grid < d, grid >= d
    assert np.all(tl[before, STATE["traced"]] == 0.0)
    np.testing.assert_allclose(tl[before, STATE["dark"]], rep.stolen_usd, rtol=1e-12)
    # with every hop followed, discovery traces every wallet of the theft at once, and they stay traced;
    # only value already spent on fees before discovery stays dark
    assert np.all(led["time"][rows(rep, "cash_out") & (led["dst"] == 0)] > d)  # no haircut before discovery
    dark_fees = led["fee_usd"][led["time"] < d].sum()
    assert dark_fees > 0
    np.testing.assert_allclose(tl[after, STATE["dark"]], dark_fees, rtol=1e-9)
    np.testing.assert_allclose(tl[after, STATE["traced"]], rep.stolen_usd - dark_fees, rtol=1e-12)
    assert metrics.final_states(rep)["cashed_out"] > 0


def test_lost_split_trail_stays_lost():
    playbook = [{"hop": "transfer", "delay": "2h"},
                {"hop": "split", "wallets": 10},
                {"hop": "transfer", "delay": "1h"},
                {"hop": "peel", "length": 2, "fraction": 0.2},
                {"hop": "consolidate", "wallets": 2},
                {"hop": "cash_out", "venue": "otc_broker"}]
    rep = run(tiny(playbook, fee=1.0, hop_success={**ALL_ONE, "split": 0.0}), seed=1)
    led = rep.ledger
    t_split = led["time"][rows(rep, "split")]
    assert np.all(t_split == t_split[0]) and t_split[0] > 0
    grid = grid_for(rep)
    tl = metrics.timeline(rep, grid)
    before = grid < t_split[0]
    np.testing.assert_allclose(tl[before, STATE["traced"]], rep.stolen_usd, rtol=1e-12)
    # after the split only the fees paid from traced wallets (first transfer, the split itself) stay traced
    traced_fee = led["fee_usd"][(rows(rep, "transfer") & (led["time"] < t_split[0])) | rows(rep, "split")].sum()
    assert traced_fee == 11.0
    np.testing.assert_allclose(tl[~before, STATE["traced"]], traced_fee, rtol=1e-9)
    assert metrics.final_states(rep)["cashed_out"] > 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_consolidation_resumes_the_trail_if_any_input_was_traced(seed):
    playbook = [{"hop": "split", "wallets": 20},
                {"hop": "transfer", "delay": "1h"},
                {"hop": "consolidate", "wallets": 1},
                {"hop": "wait", "delay": "1d"}]
    rep = run(tiny(playbook, hop_success={"split": 0.5}), seed=seed)
    led = rep.ledger
    t_merge = np.unique(led["time"][rows(rep, "consolidate")])
    assert len(t_merge) == 1
    t_split = led["time"][rows(rep, "split")][0]
    mid = metrics.timeline(rep, np.array([(t_split + t_merge[0]) / 2]))[0]
    # between split and merge about half the wallets are followed ...
    assert 0 < mid[STATE["traced"]] < rep.stolen_usd
    # ... so the single merged wallet is traced, and all of the value with it
    after = metrics.timeline(rep, np.array([t_merge[0], rep.horizon]))
    np.testing.assert_allclose(after[:, STATE["traced"]], rep.stolen_usd, rtol=1e-12)


def test_consolidation_of_only_dark_inputs_stays_dark():
    playbook = [{"hop": "split", "wallets": 6}, {"hop": "consolidate", "wallets": 1}, {"hop": "wait", "delay": "1d"}]
    rep = run(tiny(playbook, hop_success={"split": 0.0}))
    tl = metrics.timeline(rep, grid_for(rep, 1.0))
    np.testing.assert_allclose(tl[:, STATE["traced"]], 0.0, atol=1e-9)
    assert rows(rep, "consolidate").sum() == 6


def test_simulate_is_a_function_of_the_generator():
    scenario = tiny(EVERY_HOP, fee=3.0, hop_success={"split": 0.7, "peel": 0.8})
    a = simulate(scenario, np.random.default_rng(42))
    b = simulate(scenario, np.random.default_rng(42))
    c = simulate(scenario, np.random.default_rng(43))
    for key in a.ledger:
        np.testing.assert_array_equal(a.ledger[key], b.ledger[key])
    np.testing.assert_array_equal(a.log_delta, b.log_delta)
    assert not np.array_equal(a.ledger["time"], c.ledger["time"]) or not np.array_equal(a.log_delta, c.log_delta)


def test_consolidate_barrier_opens_when_the_last_blocking_lots_are_eaten_by_fees():
    # $40 peeled in halves with a $5 fee: the first piece ($15) reaches the barrier at 1h; the second
    # peel leaves two $2.50 lots that the $5 fee of their transfer eats at 2h. Nothing is left in play
    # before the barrier then, so the first piece must be consolidated rather than wait forever.
    scenario = tiny([{"hop": "peel", "length": 2, "fraction": 0.5, "delay": "1h"},
                     {"hop": "transfer"},
                     {"hop": "consolidate", "wallets": 1},
                     {"hop": "wait", "delay": "1h"}],
                    fee=5.0, stolen=[{"asset": "ETH", "amount": 0.04}])
    rep = run(scenario)
    led = rep.ledger
    eaten = rows(rep, "transfer") & (led["value_usd"] == 0)
    assert eaten.sum() == 2 and np.all(led["time"][eaten] == 2.0)
    cons = np.flatnonzero(rows(rep, "consolidate"))
    assert len(cons) == 1, "the lot waiting at the barrier was never consolidated"
    assert led["time"][cons[0]] == 2.0
    assert math.isclose(led["value_usd"][cons[0]], 5.0)
    final = metrics.final_states(rep)
    assert math.isclose(final["launderer"], 5.0) and math.isclose(final["fees"], 35.0)


# --- compiling playbooks -------------------------------------------------------------------


def _program(scenario):
    from launderflow.model.world import World

    return World(scenario, np.random.default_rng(0)).programs[0].steps


def test_branches_ending_the_same_way_share_their_tail_steps():
    tail = [{"hop": "transfer"}, {"hop": "cash_out", "venue": "otc_broker"}]
    scenario = tiny([{"hop": "branch", "branches": [
        {"share": 0.5, "playbook": [{"hop": "wait", "delay": "1h"}, *tail]},
        {"share": 0.3, "playbook": [{"hop": "wait", "delay": "2d"}, *tail]},
        {"share": 0.2, "playbook": [{"hop": "wait", "delay": "1h"}, {"hop": "transfer", "delay": "1h"},
                                    {"hop": "cash_out", "venue": "otc_broker"}]}]}])
    steps = _program(scenario)
    fork = steps[0]
    waits = [steps[start] for start in fork.starts]
    # branches 0 and 2 start with the same wait but continue differently: kept apart
    assert fork.starts[0] != fork.starts[2]
    # branches 0 and 1 differ in the wait, then run the same transfer -> cash_out: one compiled tail
    assert waits[0].next == waits[1].next
    assert waits[2].next != waits[0].next  # a transfer with another delay is another step
    # the third branch's cash_out is the shared one (same hop, same end)
    assert steps[waits[2].next].next == steps[waits[0].next].next


def test_shared_tail_keeps_every_branch_and_its_value():
    tail = [{"hop": "transfer"}, {"hop": "cash_out", "venue": "otc_broker"}]
    shares = (0.6, 0.4)
    scenario = tiny([{"hop": "branch", "branches": [
        {"share": shares[0], "playbook": [{"hop": "wait", "delay": "1h"}, *tail]},
        {"share": shares[1], "playbook": [{"hop": "wait", "delay": "3d"}, *tail]}]}],
        venue={"kind": "otc", "jurisdiction": "offshore", "delay": "1d", "haircut": 0.0})
    rep = run(scenario)
    led = rep.ledger
    out = rows(rep, "cash_out") & (led["dst"] == 0)  # off-chain: value that left
    # one cash-out per branch, one after each branch's own wait (1 h vs 3 d, then the desk's day)
    times = np.sort(led["time"][out])
    assert len(times) == 2
    assert math.isclose(times[0], ceil_tick(1.0) + 24.0, abs_tol=1e-9)
    assert math.isclose(times[1], ceil_tick(72.0) + 24.0, abs_tol=1e-9)
    np.testing.assert_allclose(np.sort(led["value_usd"][out]), np.sort(np.array(shares) * 100_000), rtol=1e-12)


def test_consolidation_after_a_shared_tail_waits_for_the_slow_branch():
    tail = [{"hop": "transfer"}]
    scenario = tiny([{"hop": "branch", "branches": [
        {"share": 0.5, "playbook": [{"hop": "wait", "delay": "1h"}, *tail]},
        {"share": 0.5, "playbook": [{"hop": "wait", "delay": "5d"}, *tail]}]},
        {"hop": "consolidate", "wallets": 1}, {"hop": "wait", "delay": "1d"}])
    steps = _program(scenario)
    barrier = next(st for st in steps if type(st).__name__ == "Consolidate")
    fork = steps[0]
    # both waits and the one shared transfer feed the barrier
    assert set(fork.starts) <= set(barrier.feeders.tolist())
    assert steps[fork.starts[0]].next in barrier.feeders.tolist()
    rep = run(scenario)
    cons = rows(rep, "consolidate")
    assert cons.sum() == 2
    assert np.all(rep.ledger["time"][cons] >= ceil_tick(120.0) - 1e-9)
