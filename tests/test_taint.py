"""Tests for launderflow.analysis.taint: numba kernels vs a plain-Python reference, invariants, score()."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from launderflow.analysis.taint import (
    POLICIES,
    TaintResult,
    address_taint_history,
    score,
    taint,
    tainted_share,
)

# the reference lives beside this file, not in the package
sys.path.insert(0, str(Path(__file__).resolve().parent))
from taint_reference import reference_run  # noqa: E402

RTOL = ATOL = 1e-9


# --------------------------------------------------------------------------- #
# random ledgers
# --------------------------------------------------------------------------- #

amounts = st.one_of(
    st.just(0.0),
    st.integers(1, 20).map(float),
    st.floats(0.0, 100.0, allow_nan=False, allow_infinity=False),
)


@st.composite
def ledgers(draw: st.DrawFn) -> tuple[np.ndarray, ...]:
    """Small ledgers: <= 60 transfers, <= 8 addresses, ties, self-transfers, zeros.

    Addresses routinely spend more than they received (random src/dst), and
    ids are drawn sparse (scaled) so that the np.unique remapping is exercised.
    """
    n = draw(st.integers(0, 60))
    n_addr = draw(st.integers(1, 8))
    addr = st.integers(0, n_addr - 1)
    time = np.sort(np.array(draw(st.lists(st.integers(0, 10), min_size=n, max_size=n)), float))
    src = np.array(draw(st.lists(addr, min_size=n, max_size=n)), dtype=np.int64)
    dst = np.array(draw(st.lists(addr, min_size=n, max_size=n)), dtype=np.int64)
    amount = np.array(draw(st.lists(amounts, min_size=n, max_size=n)), dtype=np.float64)
    sources = np.array(
        sorted(draw(st.sets(addr, max_size=min(3, n_addr)))), dtype=np.int64
    )
    scale = draw(st.sampled_from([1, 1_000_003]))
    return time, src * scale, dst * scale, amount, sources * scale


# --------------------------------------------------------------------------- #
# numba == reference
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("policy", POLICIES)
@settings(max_examples=200, deadline=None)
@given(ledger=ledgers())
def test_matches_reference(policy: str, ledger: tuple[np.ndarray, ...]) -> None:
    time, src, dst, amount, sources = ledger
    res = taint(time, src, dst, amount, sources, policy)
    expected, rows = reference_run(src, dst, amount, sources, policy)
    np.testing.assert_allclose(res.tainted, expected, rtol=RTOL, atol=ATOL)

    # invariants
    assert np.all(res.tainted >= 0)
    assert np.all(res.tainted <= amount)
    share = res.share
    assert np.all((share >= 0) & (share <= 1 + 1e-12))

    # history replay agrees with the reference's own state
    hist = address_taint_history(time, src, dst, amount, res)
    assert len(hist.time) == len(rows)
    if rows:
        idx, addr, tb, bal = (np.array(c) for c in zip(*rows))
        np.testing.assert_array_equal(hist.time, time[idx.astype(int)])
        np.testing.assert_array_equal(hist.address, addr)
        np.testing.assert_allclose(hist.balance, bal, rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(hist.tainted_balance, tb, rtol=RTOL, atol=ATOL)
        assert np.all(hist.tainted_balance >= 0)
        assert np.all(hist.tainted_balance <= hist.balance + ATOL)


@settings(max_examples=200, deadline=None)
@given(ledger=ledgers())
def test_policy_ordering_and_dense_ids(ledger: tuple[np.ndarray, ...]) -> None:
    """fifo, haircut <= poison per transfer; passing n_addresses changes nothing."""
    time, src, dst, amount, sources = ledger
    got = {p: taint(time, src, dst, amount, sources, p).tainted for p in POLICIES}
    assert np.all(got["haircut"] <= got["poison"] + ATOL)
    assert np.all(got["fifo"] <= got["poison"] + ATOL)

    # dense ids: same answer without the remap
    _, inv = np.unique(np.concatenate([src, dst, sources]), return_inverse=True)
    n = len(src)
    m = int(inv.max()) + 1 if inv.size else 0
    for p in POLICIES:
        dense = taint(time, inv[:n], inv[n : 2 * n], amount, inv[2 * n :], p, n_addresses=m)
        np.testing.assert_allclose(dense.tainted, got[p], rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("policy", POLICIES)
@settings(max_examples=50, deadline=None)
@given(ledger=ledgers())
def test_no_sources_nothing_tainted(policy: str, ledger: tuple[np.ndarray, ...]) -> None:
    time, src, dst, amount, _ = ledger
    res = taint(time, src, dst, amount, np.array([], dtype=np.int64), policy)
    assert not res.tainted.any()


# --------------------------------------------------------------------------- #
# hand-worked examples
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("policy", POLICIES)
def test_chain_from_source_fully_tainted(policy: str) -> None:
    # S(0) -> A(1) -> B(2) -> C(3), each passing on everything it got
    time = np.array([0.0, 1.0, 2.0])
    src = np.array([0, 1, 2])
    dst = np.array([1, 2, 3])
    amount = np.array([5.0, 5.0, 5.0])
    res = taint(time, src, dst, amount, np.array([0]), policy)
    np.testing.assert_array_equal(res.tainted, amount)
    np.testing.assert_array_equal(res.share, [1.0, 1.0, 1.0])


def test_fifo_and_haircut_differ_worked_example() -> None:
    # Addresses: S=0 (source), A=1, B=2, X=3 (clean outsider), C=4.
    # t0  X->A 10   X has nothing: shortfall is clean          -> clean, all policies
    #               A holds [10 clean]
    # t1  S->A 10   source: fully tainted                      -> 10 everywhere
    #               A holds [10 clean, 10 stolen]  (haircut: bal 20, tainted 10)
    # t2  A->B 10   fifo: oldest chunk = 10 clean              -> 0
    #               haircut: 10 * 10/20                        -> 5  (A: bal 10, tainted 5)
    #               poison: A was poisoned at t1               -> 10
    # t3  A->B 10   fifo: next chunk = 10 stolen               -> 10
    #               haircut: 10 * 5/10                         -> 5
    # t4  B->C 15   fifo: B holds [10 clean(t2), 10 stolen(t3)]: 10 clean + 5 stolen -> 5
    #               haircut: B bal 20, tainted 10: 15 * 10/20  -> 7.5
    #               poison                                     -> 15
    time = np.arange(5.0)
    src = np.array([3, 0, 1, 1, 2])
    dst = np.array([1, 1, 2, 2, 4])
    amount = np.array([10.0, 10.0, 10.0, 10.0, 15.0])
    sources = np.array([0])
    expected = {
        "fifo": [0.0, 10.0, 0.0, 10.0, 5.0],
        "haircut": [0.0, 10.0, 5.0, 5.0, 7.5],
        "poison": [0.0, 10.0, 10.0, 10.0, 15.0],
    }
    for policy, exp in expected.items():
        res = taint(time, src, dst, amount, sources, policy)
        assert res.policy == policy
        np.testing.assert_allclose(res.tainted, exp, rtol=0, atol=1e-12)

    # haircut history of B after t4: bal 20-15=5, tainted 10-7.5=2.5
    hist = address_taint_history(
        time, src, dst, amount, taint(time, src, dst, amount, sources, "haircut")
    )
    last_b = np.flatnonzero(hist.address == 2)[-1]
    assert hist.balance[last_b] == pytest.approx(5.0)
    assert hist.tainted_balance[last_b] == pytest.approx(2.5)


def test_shortfall_is_clean() -> None:
    # A receives 10 stolen, then spends 20: the extra 10 was its own clean money.
    time = np.array([0.0, 1.0])
    src = np.array([0, 1])
    dst = np.array([1, 2])
    amount = np.array([10.0, 20.0])
    assert taint(time, src, dst, amount, [0], "haircut").tainted[1] == pytest.approx(10.0)
    assert taint(time, src, dst, amount, [0], "fifo").tainted[1] == pytest.approx(10.0)
    assert taint(time, src, dst, amount, [0], "poison").tainted[1] == 20.0


def test_poison_before_first_receipt_is_clean_and_zero_amount_does_not_poison() -> None:
    time = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    src = np.array([1, 0, 2, 0, 1])
    dst = np.array([3, 2, 3, 1, 3])
    amount = np.array([4.0, 0.0, 7.0, 1.0, 2.0])
    res = taint(time, src, dst, amount, [0], "poison")
    # t0 A(1) spends before being tainted; t1 zero transfer does not poison 2;
    # t3 poisons 1, so t4 is fully tainted.
    np.testing.assert_array_equal(res.tainted, [0.0, 0.0, 0.0, 1.0, 2.0])


def test_fifo_many_chunks_one_address() -> None:
    # 200k alternating clean/stolen unit chunks pile up on A (no merging possible,
    # the chunk pool has to grow), then A spends 1001: 500 stolen + 500 clean + 1 clean
    # (the chunk sequence starts clean), and finally spends everything.
    k = 200_000
    src = np.where(np.arange(k) % 2 == 0, 5, 0)  # 5 clean outsider, 0 source
    src = np.concatenate([src, [1, 1]])
    dst = np.concatenate([np.full(k, 1), [2, 2]])
    amount = np.concatenate([np.ones(k), [1001.0, float(k)]])
    time = np.arange(k + 2, dtype=float)
    res = taint(time, src, dst, amount, [0], "fifo")
    assert res.tainted[-2] == pytest.approx(500.0)
    # the rest: k-1001 unit chunks, starting stolen -> (k-1001+1)/2 stolen, shortfall clean
    assert res.tainted[-1] == pytest.approx((k - 1001 + 1) // 2)


# --------------------------------------------------------------------------- #
# validation
# --------------------------------------------------------------------------- #


def test_unsorted_time_raises() -> None:
    with pytest.raises(ValueError, match="not sorted by time"):
        taint(np.array([0.0, 2.0, 1.0]), [0, 1, 2], [1, 2, 0], [1.0, 1.0, 1.0], [0], "poison")


def test_bad_inputs_raise() -> None:
    t, s, d, a = np.arange(2.0), np.array([0, 1]), np.array([1, 2]), np.ones(2)
    with pytest.raises(ValueError, match="unknown policy"):
        taint(t, s, d, a, [0], "lifo")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="amount"):
        taint(t, s, d, -a, [0], "fifo")
    with pytest.raises(ValueError, match="length"):
        taint(t, s[:1], d, a, [0], "fifo")
    with pytest.raises(ValueError, match="n_addresses"):
        taint(t, s, d, a, [0], "fifo", n_addresses=2)


@pytest.mark.parametrize(
    ("time", "src", "dst", "amount", "sources", "n_addresses", "match"),
    [
        ([0.0, np.nan], [0, 1], [1, 2], [1.0, 1.0], [0], None, "time contains NaN"),
        ([np.nan, 0.0], [0, 1], [1, 2], [1.0, 1.0], [0], 3, "time contains NaN"),
        ([0.0, 1.0], [0, 1], [1, 2], [1.0, np.nan], [0], None, "amount must be finite"),
        ([0.0, 1.0], [0, 1], [1, 2], [np.inf, 1.0], [0], 3, "amount must be finite"),
        ([0.0, 1.0], [0, -1], [1, 2], [1.0, 1.0], [0], None, "src contains negative"),
        ([0.0, 1.0], [0, 1], [-5, 2], [1.0, 1.0], [0], 3, "dst contains negative"),
        ([0.0, 1.0], [0, 1], [1, 2], [1.0, 1.0], [-1], None, "sources contains negative"),
        ([0.0, 1.0], [0, 1], [1, 3], [1.0, 1.0], [0], 3, "dst contains ids >= n_addresses"),
        ([0.0, 1.0], [0, 1], [1, 2], [1.0, 1.0], [7], 3, "sources contains ids >= n_addr"),
        ([], [], [], [], [4], 3, "sources contains ids >= n_addresses"),
    ],
)
def test_validation_messages(time, src, dst, amount, sources, n_addresses, match) -> None:
    """The fused validation pass reports the same errors as the numpy checks."""
    with pytest.raises(ValueError, match=match):
        taint(
            np.array(time, dtype=float), np.array(src, dtype=np.int64),
            np.array(dst, dtype=np.int64), np.array(amount, dtype=float), sources,
            "haircut", n_addresses=n_addresses,
        )


def test_empty_ledger() -> None:
    e = np.array([])
    res = taint(e, e.astype(np.int64), e.astype(np.int64), e, [3], "fifo")
    assert isinstance(res, TaintResult) and res.tainted.shape == (0,)
    assert address_taint_history(e, e, e, e, res).time.shape == (0,)


# --------------------------------------------------------------------------- #
# score
# --------------------------------------------------------------------------- #


def test_score_perfect() -> None:
    truth = np.array([0.0, 2.0, 5.0, 0.0])
    amount = np.array([1.0, 2.0, 10.0, 3.0])
    sc = score(truth.copy(), truth, amount)
    for key in ("precision", "recall", "f1", "precision_count", "recall_count", "f1_count"):
        assert sc[key] == 1.0
    assert sc["innocent_value_tainted"] == 0.0 and sc["missed_value"] == 0.0


def test_score_over_and_under_taint() -> None:
    tainted = np.array([5.0, 3.0, 0.0, 0.5])
    truth = np.array([5.0, 1.0, 2.0, 0.0])
    amount = np.array([5.0, 4.0, 2.0, 1.0])
    sc = score(tainted, truth, amount)
    # overlap = 5 + 1 + 0 + 0 = 6; sum(tainted) = 8.5; sum(truth) = 8
    assert sc["precision"] == pytest.approx(6 / 8.5)
    assert sc["recall"] == pytest.approx(6 / 8)
    assert sc["innocent_value_tainted"] == pytest.approx(2.0 + 0.5)  # t1 over by 2, t3 by 0.5
    assert sc["missed_value"] == pytest.approx(2.0)  # t2
    # flagged {0,1,3}, true {0,1,2}: 2 hits
    assert sc["precision_count"] == pytest.approx(2 / 3)
    assert sc["recall_count"] == pytest.approx(2 / 3)


def test_score_zero_denominators() -> None:
    z = np.zeros(3)
    sc = score(z, z, np.ones(3))
    assert sc["precision"] == sc["recall"] == sc["precision_count"] == sc["recall_count"] == 1.0
    sc = score(z, np.array([0.0, 1.0, 0.0]), np.ones(3))  # flagged nothing, missed 1
    assert sc["precision"] == 1.0 and sc["recall"] == 0.0 and sc["missed_value"] == 1.0
    sc = score(np.array([0.0, 1.0, 0.0]), z, np.ones(3))  # flagged innocent value
    assert sc["precision"] == 0.0 and sc["recall"] == 1.0 and sc["f1"] == 0.0


def test_tainted_share_zero_amount() -> None:
    np.testing.assert_array_equal(tainted_share([0.0, 1.0, 2.0], [0.0, 2.0, 2.0]), [0.0, 0.5, 1.0])


# --------------------------------------------------------------------------- #
# holdings at the horizon (what `launderflow taint` reports)
# --------------------------------------------------------------------------- #

def _pool_ledger() -> dict[str, np.ndarray]:
    """A theft of 100 into wallet 20, an honest 900 into pool 40, the 100 through the pool to the
    launderer's 50 (trail lost there), then an honest 100 out of the pool to 60."""
    from launderflow.scenario.schema import HOP_KINDS

    hop = {name: i for i, name in enumerate(HOP_KINDS)}
    rows = [  # time, src, dst, value, lot, hop, followed
        (0.0, 10, 20, 100.0, 0, "theft", True),
        (1.0, 30, 40, 900.0, -1, "honest", False),
        (2.0, 20, 40, 100.0, 0, "pool_mixer", True),
        (3.0, 40, 50, 100.0, 0, "pool_mixer", False),
        (4.0, 40, 60, 100.0, -1, "honest", False),
    ]
    cols = list(zip(*rows))
    return {"time": np.array(cols[0]), "src": np.array(cols[1]), "dst": np.array(cols[2]),
            "value_usd": np.array(cols[3]), "lot": np.array(cols[4]),
            "hop": np.array([hop[h] for h in cols[5]], dtype=np.int8), "followed": np.array(cols[6])}


def test_holdings_at_the_horizon_count_each_stolen_dollar_once() -> None:
    from launderflow.analysis.taint_score import score_ledger

    scores = score_ledger(_pool_ledger())
    held = {p: (s["marked_usd"], s["marked_innocent_usd"], s["unmarked_stolen_usd"]) for p, s in scores.items()}
    # the truth: the launderer's 50 holds the 100 stolen; the pool keeps 800, 60 holds 100, all honest
    assert {s["stolen_usd"] for s in scores.values()} == {100.0}
    assert held["poison"] == pytest.approx((1000.0, 900.0, 0.0))  # all of 40 (800), 50 and 60
    assert held["haircut"] == pytest.approx((100.0, 90.0, 90.0))  # 10 % of each pool withdrawal: 10 at 50, 10 at 60, 80 in 40
    assert held["fifo"] == pytest.approx((100.0, 100.0, 100.0))  # the honest 900 leaves first: the 100 stays in 40
    assert held["live_tracer"] == pytest.approx((100.0, 100.0, 100.0))  # the trail ends at the pool
    for marked, innocent, unmarked in held.values():
        assert marked - innocent + unmarked == pytest.approx(100.0)
    # over the transfers, the stolen 100 moved twice after the theft: flow sums count it twice
    assert scores["live_tracer"]["missed_value"] == pytest.approx(100.0)
    assert scores["live_tracer"]["true_value"] == pytest.approx(200.0)


def test_cli_taint_reports_shares_of_the_stolen_value(tmp_path: Path) -> None:
    import json
    import re

    from click.testing import CliRunner

    from launderflow.cli import main

    golden = Path(__file__).resolve().parent / "golden" / "golden_venues.yaml"
    assert CliRunner().invoke(main, ["run", str(golden), "--out", str(tmp_path / "run")]).exit_code == 0
    result = CliRunner().invoke(main, ["taint", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    scores = json.loads((tmp_path / "run" / "taint.json").read_text())["0"]
    stolen = scores["poison"]["stolen_usd"]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert stolen == pytest.approx(summary["stolen_usd"], rel=1e-9)  # the holdings add up to the theft
    text = " ".join(result.output.split())
    assert "the value each taint policy marks as stolen at the horizon, as a share of the" in text
    assert "each dollar once" in text
    for policy, label in (("poison", "poison"), ("haircut", "haircut"), ("live_tracer", "live tracer")):
        s = scores[policy]
        shares = [f"{s[k] / stolen:.1%}" for k in ("marked_usd", "marked_innocent_usd", "unmarked_stolen_usd")]
        assert re.search(rf"^ {label} +{' +'.join(map(re.escape, shares))} ", result.output, flags=re.M), label
    assert not re.search(r"\$[\d,]{9,}", result.output)  # no flow sums in dollars
