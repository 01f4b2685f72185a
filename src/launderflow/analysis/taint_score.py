"""Score post-hoc taint policies and the live tracer against the simulator's ground truth.

Only a simulation knows which transfers really carry stolen value (``lot >= 0`` in the ledger) and
which are honest users' (``lot == -1``). Each taint policy starts from the theft addresses and
spreads over the whole ledger; the live tracer's verdict is the ``followed`` column. Both are
compared with the truth in USD, two ways:

* over the transfers: precision, recall, and the innocent (and the stolen) value of the transfers
  wrongly (not) tainted. These are sums over *flows*: stolen value that moves ten times counts ten
  times, so they are not comparable with the theft;
* over the holdings at the horizon: what every address holds once the ledger is replayed (value
  that left the chain sits at the off-chain address), the part each policy marks as stolen, and
  the truth. Here each dollar counts once, so the figures add up to the theft: marked − innocent
  + missed = stolen.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..scenario.schema import HOP_KINDS
from .taint import TaintResult, address_taint_history, score, taint

POLICIES = ("poison", "haircut", "fifo")


def score_ledger(ledger: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    """Per policy (and ``live_tracer``): the transfer scores of :func:`~launderflow.analysis.taint.score`
    and the holdings at the horizon of :func:`_holdings` (``stolen_usd``, ``marked_usd``,
    ``marked_innocent_usd``, ``unmarked_stolen_usd``)."""
    time = ledger["time"]
    order = np.argsort(time, kind="stable")
    led = {k: np.asarray(v)[order] for k, v in ledger.items()}
    amount = led["value_usd"].astype(np.float64)
    truth = np.where(led["lot"] >= 0, amount, 0.0)
    theft = led["hop"] == HOP_KINDS.index("theft")
    sources = np.unique(led["dst"][theft])
    # The theft rows themselves come from the victim; start the spread from the thief's addresses.
    keep = ~theft
    held = _Holdings(led, amount, truth, theft, sources)
    out: dict[str, dict[str, Any]] = {}
    innocent = _Innocent(led["dst"][keep], truth[keep] > 0, led["lot"][keep] < 0)
    for policy in POLICIES:
        result = taint(led["time"][keep], led["src"][keep], led["dst"][keep], amount[keep], sources, policy)
        out[policy] = (score(result.tainted, truth[keep], amount[keep]) | held.of_policy(policy, result.tainted)
                       | innocent.flagged(result.tainted))
    live = np.where(led["followed"][keep], amount[keep], 0.0)
    out["live_tracer"] = score(live, truth[keep], amount[keep]) | held.of_flows(live) | innocent.flagged(live)
    return out


class _Innocent:
    """Honest users' addresses a verdict flags: those that received a transfer it taints.

    An honest address is one that received honest users' transfers (``lot == -1``) and never a
    transfer carrying stolen value — venues' shared addresses, which receive both, are not honest
    users. Its false-positive rate is the share of honest addresses flagged.
    """

    def __init__(self, dst: np.ndarray, stolen: np.ndarray, honest: np.ndarray):
        self.dst = dst
        receivers = np.unique(dst[honest])
        self.honest = np.setdiff1d(receivers, np.unique(dst[stolen]), assume_unique=True)

    def flagged(self, tainted: np.ndarray) -> dict[str, float]:
        hit = np.intersect1d(np.unique(self.dst[tainted > 0]), self.honest, assume_unique=True)
        n = len(self.honest)
        return {"honest_addresses": float(n), "honest_addresses_flagged": float(len(hit)),
                "honest_false_positive_rate": float(len(hit) / n) if n else 0.0}


class _Holdings:
    """What every address holds at the horizon, the stolen part of it, and what a verdict marks.

    The ledger is replayed with the taint rules (an address that spends more than it received held
    clean money of its own), theft rows included: the thief's first wallets receive the stolen
    value, which the policies' verdicts (made without those rows) then spread.
    """

    def __init__(self, led: dict[str, np.ndarray], amount: np.ndarray, truth: np.ndarray, theft: np.ndarray,
                 sources: np.ndarray):
        self.led, self.amount, self.theft, self.sources = led, amount, theft, sources
        self.ids, index = np.unique(np.concatenate([led["src"], led["dst"]]), return_inverse=True)
        self.src_i, self.dst_i = index[: len(amount)], index[len(amount):]
        # the stolen value each address holds: received minus sent (the victims' negative balance is no holding)
        self.stolen = np.maximum(self._net(truth), 0.0)
        self.balance: np.ndarray | None = None

    def _net(self, values: np.ndarray) -> np.ndarray:
        n = len(self.ids)
        return np.bincount(self.dst_i, values, n) - np.bincount(self.src_i, values, n)

    def _figures(self, marked: np.ndarray) -> dict[str, float]:
        return {"stolen_usd": float(self.stolen.sum()), "marked_usd": float(marked.sum()),
                "marked_innocent_usd": float(np.maximum(marked - self.stolen, 0.0).sum()),
                "unmarked_stolen_usd": float(np.maximum(self.stolen - marked, 0.0).sum())}

    def of_policy(self, policy: str, tainted: np.ndarray) -> dict[str, float]:
        """The tainted balance each address is left with under ``policy`` (its verdict on the
        non-theft transfers; the theft rows carry their whole value)."""
        full = self.amount.copy()
        full[~self.theft] = tainted
        led = self.led
        history = address_taint_history(led["time"], led["src"], led["dst"], self.amount,
                                        TaintResult(policy, full, self.amount, self.sources))
        last = len(history.address) - 1 - np.unique(history.address[::-1], return_index=True)[1]
        where = np.searchsorted(self.ids, history.address[last])
        marked = np.zeros(len(self.ids))
        marked[where] = history.tainted_balance[last]
        if self.balance is None:
            self.balance = np.zeros(len(self.ids))
            self.balance[where] = history.balance[last]
        return self._figures(marked)

    def of_flows(self, verdict: np.ndarray) -> dict[str, float]:
        """Holdings marked by a verdict on each transfer (the live tracer's): what the marked
        transfers brought to an address minus what they took away, at most what it holds."""
        assert self.balance is not None, "of_policy first: it replays the balances"
        full = self.amount.copy()  # the theft itself is known
        full[~self.theft] = verdict
        return self._figures(np.clip(self._net(full), 0.0, self.balance))
