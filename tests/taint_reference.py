"""Plain-Python reference implementations of the taint policies.

Deliberately naive (dicts, sets, deques, original address ids, no merging of
chunks, no remapping) so that it can be read against the semantics in
``launderflow.analysis.taint``'s docstring and used to check the numba kernels. It
applies the same floating-point clamps, so results agree to rounding.
Used by tests/test_taint.py and sim/bench_taint.py (the latter adds this
directory to ``sys.path``).
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable, Sequence


def _clamp(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else hi if x > hi else x


def reference_taint(
    src: Sequence[int],
    dst: Sequence[int],
    amount: Sequence[float],
    sources: Iterable[int],
    policy: str,
) -> list[float]:
    """Stolen value carried by each transfer (ledger assumed time-sorted)."""
    return reference_run(src, dst, amount, sources, policy, history=False)[0]


def reference_run(
    src: Sequence[int],
    dst: Sequence[int],
    amount: Sequence[float],
    sources: Iterable[int],
    policy: str,
    history: bool = True,
) -> tuple[list[float], list[tuple[int, int, float, float]]]:
    """Return (tainted per transfer, history rows; empty unless ``history``).

    History rows are ``(transfer index, address, tainted_balance, balance)``
    after each transfer, sender first, one row for a self-transfer.
    """
    src = [int(x) for x in src]
    dst = [int(x) for x in dst]
    amount = [float(x) for x in amount]
    srcs = {int(x) for x in sources}
    out: list[float] = []
    rows: list[tuple[int, int, float, float]] = []

    balance: dict[int, float] = defaultdict(float)  # shared shortfall rule

    def spend_balance(s: int, a: float) -> None:
        balance[s] = max(balance[s], a) - a

    if policy == "poison":
        poisoned = set(srcs)

        def tainted_balance(w: int) -> float:
            return balance[w] if w in poisoned else 0.0

        for i, (s, d, a) in enumerate(zip(src, dst, amount)):
            t = a if s in poisoned else 0.0
            out.append(t)
            spend_balance(s, a)
            balance[d] += a
            if t > 0:
                poisoned.add(d)
            for w in ((s,) if s == d else (s, d)) if history else ():
                rows.append((i, w, tainted_balance(w), balance[w]))

    elif policy == "haircut":
        tb: dict[int, float] = defaultdict(float)
        for i, (s, d, a) in enumerate(zip(src, dst, amount)):
            if s in srcs:
                t = a
            else:
                b = max(balance[s], a)  # shortfall is the address's own clean money
                t = _clamp(a * (tb[s] / b), 0.0, a) if b > 0 else 0.0
                tb[s] = _clamp(tb[s] - t, 0.0, b - a)
            out.append(t)
            spend_balance(s, a)
            balance[d] += a
            if d not in srcs:
                tb[d] += t
            for w in ((s,) if s == d else (s, d)) if history else ():
                rows.append((i, w, balance[w] if w in srcs else tb[w], balance[w]))

    elif policy == "fifo":
        queues: dict[int, deque[list[float]]] = defaultdict(deque)  # [amount, tainted]
        for i, (s, d, a) in enumerate(zip(src, dst, amount)):
            if s in srcs:
                t = a
            else:
                q = queues[s]
                need, t = a, 0.0
                while need > 0 and q:
                    ca, ct = q[0]
                    if ca <= need:
                        q.popleft()
                        t += ct
                        need -= ca
                    else:
                        take = min(ct * (need / ca), ct)
                        t += take
                        q[0] = [ca - need, _clamp(ct - take, 0.0, ca - need)]
                        need = 0.0
                # any remaining need is the address's own clean money
                t = _clamp(t, 0.0, a)
            out.append(t)
            spend_balance(s, a)
            balance[d] += a
            if d not in srcs:
                queues[d].append([a, t])
            for w in ((s,) if s == d else (s, d)) if history else ():
                tbw = balance[w] if w in srcs else sum(c[1] for c in queues[w])
                rows.append((i, w, tbw, balance[w]))
    else:
        raise ValueError(f"unknown policy {policy!r}")
    return out, rows
