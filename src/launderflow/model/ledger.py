"""The transfer ledger: one row per on-chain or venue transfer, kept as numpy columns.

Its columns are the analysis API — written as one Parquet file that pandas, DuckDB or the taint
analysis read directly. ``value_usd`` is the stolen value carried at the scenario's fixed prices;
``amount`` is the same in the asset's own units.
"""

from __future__ import annotations

import numpy as np

from .columns import ColumnBuffer

LEDGER_COLUMNS: dict[str, type] = {
    "time": np.float64,  # hours after the scenario's time zero
    "src": np.int64,  # address ids (see AddressBook)
    "dst": np.int64,
    "asset": np.int16,
    "amount": np.float64,  # filled in at the end of the run: value_usd / the asset's price
    "value_usd": np.float64,
    "fee_usd": np.float64,  # network fee paid by this transfer (already deducted from value_usd)
    "hop": np.int8,  # index into HOP_KINDS
    "lot": np.int64,  # the lot that moved (-1: not stolen value)
    "venue": np.int16,  # venue involved, -1 for plain wallet-to-wallet transfers
    "followed": np.bool_,  # the investigators' trail covers this transfer (live tracer's verdict)
}


class Ledger(ColumnBuffer):
    def __init__(self) -> None:
        super().__init__(LEDGER_COLUMNS)
