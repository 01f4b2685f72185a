"""Score post-hoc taint policies and the live tracer against the simulator's ground truth.

Only a simulation knows which transfers really carry stolen value (``lot >= 0`` in the ledger) and
which are honest users' (``lot == -1``). Each taint policy starts from the theft addresses and
spreads over the whole ledger; the live tracer's verdict is the ``followed`` column. Both are
compared with the truth in USD: precision, recall, and innocent value wrongly tainted.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..scenario.schema import HOP_KINDS
from .taint import score, taint

POLICIES = ("poison", "haircut", "fifo")


def score_ledger(ledger: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    """Per policy (and ``live_tracer``): precision, recall, innocent value tainted, missed value."""
    time = ledger["time"]
    order = np.argsort(time, kind="stable")
    led = {k: np.asarray(v)[order] for k, v in ledger.items()}
    amount = led["value_usd"].astype(np.float64)
    truth = np.where(led["lot"] >= 0, amount, 0.0)
    theft = led["hop"] == HOP_KINDS.index("theft")
    sources = np.unique(led["dst"][theft])
    # The theft rows themselves come from the victim; start the spread from the thief's addresses.
    keep = ~theft
    out: dict[str, dict[str, Any]] = {}
    for policy in POLICIES:
        result = taint(led["time"][keep], led["src"][keep], led["dst"][keep], amount[keep], sources, policy)
        out[policy] = score(result.tainted, truth[keep], amount[keep])
    live = np.where(led["followed"][keep], amount[keep], 0.0)
    out["live_tracer"] = score(live, truth[keep], amount[keep])
    return out
