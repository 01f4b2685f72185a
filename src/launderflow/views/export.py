"""A stored run's ledger as a labelled dataset: AMLworld CSV, an Elliptic-style graph, Parquet.

Detection researchers train on synthetic transactions with ground-truth labels (IBM's AMLworld,
the Elliptic Bitcoin graph). A launderflow run knows the truth of every transfer: a ledger row
carries stolen value (``lot >= 0``, label *laundering* / *illicit*) or is an honest user's
(``lot == -1``). :func:`export_run` reads one stored replication (the ``runs/`` layer) and writes:

* ``aml`` — ``aml_trans.csv`` in AMLworld's layout (its exact header, ``%Y/%m/%d %H:%M`` times)
  and its companion ``aml_patterns.txt``: every laundering transfer once, in blocks
  ``BEGIN LAUNDERING ATTEMPT - <TYPE>: <detail>`` ... ``END LAUNDERING ATTEMPT - <TYPE>``
  (:func:`attempts` says which transfers make one attempt);
* ``elliptic`` — ``elliptic_txs_features.csv`` (no header: txId, time step, features),
  ``elliptic_txs_edgelist.csv`` (``txId1,txId2``) and ``elliptic_txs_classes.csv``
  (``txId,class``: ``1`` illicit, ``2`` licit, ``unknown`` — the label an analyst would not have:
  :func:`elliptic_classes`);
* ``parquet`` — ``transfers.parquet``: the project's own ledger columns plus the label;

and ``export.json`` (what was exported, row counts, the illicit share). Every file is written in
chunks (a ledger of tens of millions of rows never becomes one table of strings), to a temporary
name and then renamed; nothing is written through a symbolic link and no existing file is replaced
without ``overwrite``. Only transfers are exported: freeze, seizure and re-identification rows are
events of the model, not transactions. docs/reference/export.md documents every field.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ..runs.lock import OutputError, locked
from ..runs.store import StoredRun, StoreError
from ..scenario.schema import HOP_KINDS, Scenario

FORMATS = ("aml", "elliptic", "parquet")
FILES: dict[str, tuple[str, ...]] = {
    "aml": ("aml_trans.csv", "aml_patterns.txt"),
    "elliptic": ("elliptic_txs_features.csv", "elliptic_txs_edgelist.csv", "elliptic_txs_classes.csv"),
    "parquet": ("transfers.parquet",),
}
META = "export.json"
AML_HEADER = ("Timestamp", "From Bank", "Account", "To Bank", "Account", "Amount Received", "Receiving Currency",
              "Amount Paid", "Payment Currency", "Payment Format", "Is Laundering")
AML_TIME_FORMAT = "%Y/%m/%d %H:%M"
DEFAULT_START = "2022-09-01 00:00"  # AMLworld's HI-Small starts on 2022/09/01
CHUNK_ROWS = 1 << 20  # rows per written chunk
NOT_TRANSFERS = frozenset({"freeze", "seizure", "recover"})
# What an observer of the chain sees a transfer do (AMLworld's "Payment Format"): never the hop kind,
# which would give the label away ("honest").
PAYMENT_FORMATS = ("Transfer", "Deposit", "Withdrawal", "Cash Out")
FIRST_VENUE_ADDRESS = 2  # address ids 0 and 1 are the off-chain and fee sinks; venue i has address 2 + i
OFF_CHAIN = 0
ELLIPTIC_FEATURES = ("value_usd", "amount", "fee_usd", "log10_value_usd", "asset", "payment_format", "venue",
                     "src_out_degree", "src_in_degree", "dst_in_degree", "dst_out_degree", "hour_of_day")


class ExportError(ValueError):
    """The export cannot be made: no such run or replication, no ledger, or files in the way."""


# --- the rows ---------------------------------------------------------------------------------------


class Rows:
    """One replication's transfers in time order, with the derived columns every format needs."""

    def __init__(self, scenario: Scenario, ledger: dict[str, np.ndarray]):
        hop = np.asarray(ledger["hop"])
        keep = ~np.isin(hop, [HOP_KINDS.index(h) for h in NOT_TRANSFERS])
        order = np.flatnonzero(keep)[np.argsort(np.asarray(ledger["time"])[keep], kind="stable")]
        self.cols = {k: np.asarray(v)[order] for k, v in ledger.items()}
        self.n = len(order)
        self.scenario = scenario
        self.asset_names = list(scenario.assets)
        self.price = np.array([a.price_usd for a in scenario.assets.values()])
        n_venues = len(scenario.venues)
        src, dst = self.cols["src"], self.cols["dst"]
        src_venue = _venue_of(src, n_venues)
        dst_venue = _venue_of(dst, n_venues)
        self.src_bank = src_venue + 1  # 0: a self-custodied wallet; v + 1: venue v's address
        self.dst_bank = np.where(dst == OFF_CHAIN, self.cols["venue"].astype(np.int64) + 1, dst_venue + 1)
        fmt = np.zeros(self.n, dtype=np.int8)  # Transfer
        fmt[(dst_venue >= 0) & (src_venue < 0)] = 1  # Deposit
        fmt[(src_venue >= 0) & (dst_venue < 0)] = 2  # Withdrawal
        fmt[dst == OFF_CHAIN] = 3  # Cash Out
        self.payment_format = fmt
        self.illicit = self.cols["lot"] >= 0
        # stolen value paid to an honest wallet (a P2P buyer, a merchant): the only cash-outs that end in a wallet
        self.to_honest = (self.illicit & (self.cols["hop"] == HOP_KINDS.index("cash_out")) & (dst != OFF_CHAIN)
                          & (dst_venue < 0))

    def amount_paid(self, sl: slice) -> np.ndarray:
        """What left the sender, in the asset's units: the value received plus the network fee."""
        c = self.cols
        return (c["value_usd"][sl] + c["fee_usd"][sl]) / self.price[c["asset"][sl]]

    def time_step(self, step_hours: float) -> np.ndarray:
        return (np.floor(self.cols["time"] / step_hours) + 1).astype(np.int64)

    def chunks(self) -> Iterator[slice]:
        for a in range(0, max(self.n, 1), CHUNK_ROWS):
            yield slice(a, min(a + CHUNK_ROWS, self.n))


def _venue_of(address: np.ndarray, n_venues: int) -> np.ndarray:
    """Venue index of each address (-1: not a venue's address)."""
    v = address - FIRST_VENUE_ADDRESS
    return np.where((v >= 0) & (v < n_venues), v, -1)


ACCOUNT_BASE = 0xA000000000  # accounts read "A" + 9 hex digits: always text to pandas, like AMLworld's "8000EBD30"


def hex_accounts(address: np.ndarray, width: int = 10) -> pa.Array:
    """Address ids as upper-case hex strings (AMLworld writes accounts in hex): ``A`` then the id in
    9 hex digits (ids up to 2^36; a larger id takes more digits' room and is still unique)."""
    shifts = np.arange(width - 1, -1, -1, dtype=np.int64) * 4
    digits = ((address.astype(np.int64) + ACCOUNT_BASE)[:, None] >> shifts) & 15
    chars = np.frombuffer(b"0123456789ABCDEF", dtype=np.uint8)[digits]
    return pa.array(np.ascontiguousarray(chars).view(f"S{width}").ravel().astype(str))


# --- the edges of the graph ---------------------------------------------------------------------------


def flow_edges(rows: Rows) -> tuple[np.ndarray, np.ndarray]:
    """Edges ``a -> b`` between transfers (row positions): value that ``a`` brought moved on in ``b``.

    ``b`` continues the most recent earlier transfer of the same lot if there is one (the stolen
    value's own path, through venues too); otherwise the most recent earlier transfer into ``b``'s
    sender address (a fresh wallet's funding; at a shared venue address, the latest deposit before
    the withdrawal, as a chain observer would guess it). The off-chain sink sends nothing.
    """
    c = rows.cols
    n = rows.n
    idx = np.arange(n, dtype=np.int64)
    lot = c["lot"]
    prev = np.full(n, -1, dtype=np.int64)
    stolen = idx[lot >= 0]
    if len(stolen):
        order = stolen[np.argsort(lot[stolen], kind="stable")]  # by lot, then time order
        same = lot[order[1:]] == lot[order[:-1]]
        prev[order[1:][same]] = order[:-1][same]
    todo = idx[(prev < 0) & (c["src"] != OFF_CHAIN)]
    if len(todo) and n:
        key_in = c["dst"].astype(np.int64) * (n + 1) + idx  # transfers into each address, in time order
        sorted_in = np.sort(key_in)
        pos = np.searchsorted(sorted_in, c["src"][todo].astype(np.int64) * (n + 1) + todo) - 1
        ok = pos >= 0
        found = sorted_in[np.maximum(pos, 0)]
        ok &= found // (n + 1) == c["src"][todo]
        prev[todo[ok]] = found[ok] % (n + 1)
    b = idx[prev >= 0]
    return prev[b], b


# --- writing ------------------------------------------------------------------------------------------


def _refuse_links(out: Path) -> None:
    if out.is_symlink():
        raise ExportError(f"{out} is a symbolic link: the export writes only into a real directory "
                          f"(choose another --out)")


@contextmanager
def _atomic(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path``, renamed onto it when the block succeeds (removed if not)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
        if path.is_symlink():
            raise ExportError(f"{path} became a symbolic link while the export ran: not replaced")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _plan(out: Path, formats: Sequence[str], overwrite: bool) -> list[Path]:
    _refuse_links(out)
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} is a file, not a directory (choose another --out)")
    targets = [out / name for f in formats for name in FILES[f]] + [out / META]
    linked = [p for p in targets if p.is_symlink()]
    if linked:
        raise ExportError(f"{linked[0]} is a symbolic link: the export never writes through one (remove it)")
    present = [p.name for p in targets if p.exists()]
    if present and not overwrite:
        raise ExportError(f"{out} already holds {', '.join(present)}: choose another --out, or --overwrite to replace them")
    return targets


@contextmanager
def _csv(path: Path, schema: pa.Schema, header: Sequence[str] | None) -> Iterator[pacsv.CSVWriter]:
    """A CSV writer into a temp file renamed onto ``path``; ``header`` written as it is (no quotes)."""
    with _atomic(path) as tmp, open(tmp, "wb") as fh:
        if header is not None:
            fh.write((",".join(header) + "\n").encode("ascii"))
        with pacsv.CSVWriter(fh, schema, write_options=pacsv.WriteOptions(include_header=False, quoting_style="none")) as writer:
            yield writer


def _decimal(values: np.ndarray) -> pa.Array:
    """Floats as text that always has a decimal point or exponent ("1500.0"): pandas reads float64."""
    text = pc.cast(pa.array(values, pa.float64()), pa.string())
    return pc.if_else(pc.match_substring_regex(text, "[.eE]"), text, pc.binary_join_element_wise(text, ".0", ""))


AML_SCHEMA = pa.schema([(name, t) for name, t in zip(AML_HEADER, (
    pa.string(), pa.int64(), pa.string(), pa.int64(), pa.string(), pa.string(), pa.string(), pa.string(),
    pa.string(), pa.string(), pa.int64()))])


def _aml_table(rows: Rows, sl: slice | np.ndarray, start: datetime) -> pa.Table:
    """Rows ``sl`` (a slice or row positions) in AMLworld's transaction layout."""
    c = rows.cols
    base = np.datetime64(start.replace(tzinfo=None), "s")
    seconds = np.round(c["time"][sl] * 3600.0).astype(np.int64)
    stamps = pa.array(base + seconds.astype("timedelta64[s]"), pa.timestamp("s"))
    asset = pc.take(pa.array(rows.asset_names), pa.array(c["asset"][sl].astype(np.int32)))
    return pa.Table.from_arrays([
        pc.strftime(stamps, format=AML_TIME_FORMAT),
        pa.array(rows.src_bank[sl]), hex_accounts(c["src"][sl]),
        pa.array(rows.dst_bank[sl]), hex_accounts(c["dst"][sl]),
        _decimal(c["amount"][sl]), asset,
        _decimal(rows.amount_paid(sl)), asset,
        pc.take(pa.array(list(PAYMENT_FORMATS)), pa.array(rows.payment_format[sl].astype(np.int32))),
        pa.array(rows.illicit[sl].astype(np.int64)),
    ], schema=AML_SCHEMA)


def write_aml(rows: Rows, path: Path, start: datetime) -> None:
    """AMLworld's transaction layout, chunk by chunk."""
    with _csv(path, AML_SCHEMA, AML_HEADER) as writer:
        for sl in rows.chunks():
            writer.write_table(_aml_table(rows, sl, start))


# --- AMLworld's patterns file: the laundering attempts -----------------------------------------------

# Which AMLworld typology a laundering transfer belongs to, by the hop that made it (the rest: RANDOM).
FAN_OUT_HOPS = ("split",)
FAN_IN_HOPS = ("consolidate",)
GATHER_SCATTER_HOPS = ("swap", "bridge", "exchange", "pool_mixer", "custodial_mixer", "cash_out")
TYPOLOGIES = ("FAN-OUT", "FAN-IN", "GATHER-SCATTER", "RANDOM")


def attempts(rows: Rows, step_hours: float) -> tuple[np.ndarray, np.ndarray]:
    """The laundering attempts: ``(positions, attempt)`` — every illicit transfer's row position, in
    attempt order, and its attempt number; each transfer is in exactly one attempt.

    A launderflow theft is one long laundering operation; AMLworld lists small typed attempts. The
    mapping (docs/reference/export.md): the transfers of one **split** from one wallet make a
    FAN-OUT; those of one **consolidation** into one wallet a FAN-IN; those through one **venue**
    (swap, bridge, exchange, mixer, off-ramp) in one time step a GATHER-SCATTER (many in, many out
    of a shared address); the other hops (transfers, peel chains, branches) of one time step a
    RANDOM attempt.
    """
    c = rows.cols
    pos = np.flatnonzero(rows.illicit)
    hop = c["hop"][pos]
    kind = np.full(len(pos), 3, dtype=np.int64)
    for k, hops in enumerate((FAN_OUT_HOPS, FAN_IN_HOPS, GATHER_SCATTER_HOPS)):
        kind[np.isin(hop, [HOP_KINDS.index(h) for h in hops])] = k
    step = np.floor(c["time"][pos] / step_hours).astype(np.int64)
    venue = c["venue"][pos].astype(np.int64)
    key = np.where(kind == 0, c["src"][pos], np.where(kind == 1, c["dst"][pos],
                   np.where(kind == 2, venue * (1 << 32) + step, step)))
    order = np.lexsort((pos, key, kind))  # by typology, then its key, then time order
    pos, kind, key = pos[order], kind[order], key[order]
    new = np.ones(len(pos), dtype=bool)
    new[1:] = (kind[1:] != kind[:-1]) | (key[1:] != key[:-1])
    return pos, np.cumsum(new) - 1


def _detail(typology: str, n: int, rows: Rows, first: int) -> str:
    """The text after the typology in a BEGIN line (FAN-OUT/FAN-IN as AMLworld writes it)."""
    if typology == "FAN-OUT":
        return f"Max {n}-degree Fan-Out"
    if typology == "FAN-IN":
        return f"Max {n}-degree Fan-In"
    if typology == "GATHER-SCATTER":
        names = list(rows.scenario.venues)
        v = int(rows.cols["venue"][first])
        return f"{n} transfers through {names[v] if 0 <= v < len(names) else 'a venue'}"
    return f"{n} transfers"


def write_patterns(rows: Rows, path: Path, start: datetime, step_hours: float) -> int:
    """AMLworld's ``*_Patterns.txt``: each attempt's transfers, in the transaction layout, between a
    BEGIN and an END line, a blank line after each block. Returns the number of attempts."""
    pos, attempt = attempts(rows, step_hours)
    kinds = np.full(len(pos), 3, dtype=np.int64)
    hop = rows.cols["hop"][pos]
    for k, hops in enumerate((FAN_OUT_HOPS, FAN_IN_HOPS, GATHER_SCATTER_HOPS)):
        kinds[np.isin(hop, [HOP_KINDS.index(h) for h in hops])] = k
    starts = np.flatnonzero(np.r_[True, attempt[1:] != attempt[:-1]]) if len(pos) else np.empty(0, np.int64)
    ends = np.r_[starts[1:], len(pos)].astype(np.int64)
    with _atomic(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        for a in range(0, len(starts), 4096):  # a batch of attempts at a time
            block = slice(int(starts[a]), int(ends[min(a + 4096, len(starts)) - 1]))
            sink = pa.BufferOutputStream()
            pacsv.write_csv(_aml_table(rows, pos[block], start), sink,
                            pacsv.WriteOptions(include_header=False, quoting_style="none"))
            lines = sink.getvalue().to_pybytes().decode("utf-8").splitlines()
            for s0, e0 in zip(starts[a:a + 4096], ends[a:a + 4096]):
                typology = TYPOLOGIES[kinds[s0]]
                fh.write(f"BEGIN LAUNDERING ATTEMPT - {typology}: {_detail(typology, int(e0 - s0), rows, pos[s0])}\n")
                fh.write("\n".join(lines[s0 - block.start:e0 - block.start]) + "\n")
                fh.write(f"END LAUNDERING ATTEMPT - {typology}\n\n")
    return len(starts)


def _degrees(address: np.ndarray, of: np.ndarray, rows_addr: np.ndarray) -> np.ndarray:
    """For each row, how many transfers have ``of == row's address`` (``address``: every address seen)."""
    counts = np.bincount(np.searchsorted(address, of), minlength=len(address))
    return counts[np.searchsorted(address, rows_addr)]


def elliptic_features(rows: Rows, step_hours: float) -> np.ndarray:
    """(n, 2 + len(ELLIPTIC_FEATURES)) float64: txId, time step, then the features in order."""
    c = rows.cols
    addresses = np.unique(np.concatenate([c["src"], c["dst"]]))
    feats = np.empty((rows.n, 2 + len(ELLIPTIC_FEATURES)), dtype=np.float64)
    feats[:, 0] = np.arange(rows.n)
    feats[:, 1] = rows.time_step(step_hours)
    feats[:, 2] = c["value_usd"]
    feats[:, 3] = c["amount"]
    feats[:, 4] = c["fee_usd"]
    feats[:, 5] = np.log10(np.maximum(c["value_usd"], 1e-12))
    feats[:, 6] = c["asset"]
    feats[:, 7] = rows.payment_format
    feats[:, 8] = c["venue"].astype(np.int64) + 1
    feats[:, 9] = _degrees(addresses, c["src"], c["src"])
    feats[:, 10] = _degrees(addresses, c["dst"], c["src"])
    feats[:, 11] = _degrees(addresses, c["dst"], c["dst"])
    feats[:, 12] = _degrees(addresses, c["src"], c["dst"])
    feats[:, 13] = np.floor(c["time"] % 24.0)
    return feats


KNOWN_LICIT_KINDS = ("exchange",)  # venues whose users are identified (KYC): their honest users' transfers are known licit


def elliptic_classes(rows: Rows) -> np.ndarray:
    """Each transfer's Elliptic class: ``"1"`` illicit, ``"2"`` licit, ``"unknown"``.

    Elliptic labels only what an analyst could know (most of its nodes are unknown). The rule: an
    illicit transfer is known (1) when the investigators followed the stolen value through it (the
    ledger's ``followed``: the live tracer's knowledge, not the ground truth); a licit transfer is
    known (2) when it is an honest user's deposit to or withdrawal from a venue that identifies its
    users — an exchange with ``kyc`` > 0 (the screened customers Elliptic's licit labels come from);
    every other transfer is ``unknown``. The ground truth of every row stays in the Parquet file
    and in aml_trans.csv.
    """
    names = list(rows.scenario.venues)
    known_venues = [i for i, n in enumerate(names)
                    if rows.scenario.venues[n].kind in KNOWN_LICIT_KINDS and getattr(rows.scenario.venues[n], "kyc", 0) > 0]
    out = np.full(rows.n, "unknown", dtype=object)
    out[rows.illicit & rows.cols["followed"]] = "1"
    out[~rows.illicit & np.isin(rows.cols["venue"], known_venues)] = "2"
    return out


def write_elliptic(rows: Rows, paths: Sequence[Path], step_hours: float) -> int:
    """Features, edge list and classes; returns the number of edges."""
    feats = elliptic_features(rows, step_hours)
    names = ["txId", "time_step", *ELLIPTIC_FEATURES]
    schema = pa.schema([(n, pa.int64() if j < 2 else pa.float64()) for j, n in enumerate(names)])
    with _csv(paths[0], schema, None) as writer:
        for sl in rows.chunks():
            block = feats[sl]
            arrays = [pa.array(block[:, j].astype(np.int64)) if j in (0, 1) else pa.array(block[:, j])
                      for j in range(block.shape[1])]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
    a, b = flow_edges(rows)
    with _csv(paths[1], pa.schema([("txId1", pa.int64()), ("txId2", pa.int64())]), ("txId1", "txId2")) as writer:
        for s in range(0, max(len(a), 1), CHUNK_ROWS):
            writer.write_table(pa.table({"txId1": a[s:s + CHUNK_ROWS], "txId2": b[s:s + CHUNK_ROWS]}))
    classes = elliptic_classes(rows)
    with _csv(paths[2], pa.schema([("txId", pa.int64()), ("class", pa.string())]), ("txId", "class")) as writer:
        for sl in rows.chunks():
            writer.write_table(pa.table({"txId": np.arange(sl.start, sl.stop, dtype=np.int64),
                                         "class": pa.array(classes[sl], pa.string())}))
    return len(a)


def write_parquet(rows: Rows, path: Path, replication: int, step_hours: float) -> None:
    """The project's own ledger columns (names as in ledger.parquet) plus the label, in row groups."""
    c = rows.cols
    assets = pa.array(rows.asset_names)
    hops = pa.array(list(HOP_KINDS))
    venues = pa.array(list(rows.scenario.venues) or [""])
    formats = pa.array(list(PAYMENT_FORMATS))
    step = rows.time_step(step_hours)
    classes = elliptic_classes(rows)
    writer = None
    with _atomic(path) as tmp, ExitStack() as stack:
        for sl in rows.chunks():
            venue = c["venue"][sl].astype(np.int32)
            table = pa.table({
                "replication": np.full(sl.stop - sl.start, replication, dtype=np.int32),
                "tx_id": np.arange(sl.start, sl.stop, dtype=np.int64),
                "time_hours": c["time"][sl],
                "time_step": step[sl],
                "src": c["src"][sl],
                "dst": c["dst"][sl],
                "asset": pa.DictionaryArray.from_arrays(pa.array(c["asset"][sl].astype(np.int32)), assets),
                "amount": c["amount"][sl],
                "value_usd": c["value_usd"][sl],
                "fee_usd": c["fee_usd"][sl],
                "payment_format": pa.DictionaryArray.from_arrays(pa.array(rows.payment_format[sl].astype(np.int32)), formats),
                "hop": pa.DictionaryArray.from_arrays(pa.array(c["hop"][sl].astype(np.int32)), hops),
                "venue": pa.DictionaryArray.from_arrays(pa.array(np.where(venue < 0, 0, venue), mask=venue < 0), venues),
                "lot": c["lot"][sl],
                "followed": c["followed"][sl],
                "is_laundering": rows.illicit[sl],
                "to_honest": rows.to_honest[sl],
                "elliptic_class": pa.array(classes[sl], pa.string()),
            })
            if writer is None:
                writer = stack.enter_context(pq.ParquetWriter(str(tmp), table.schema, compression="zstd"))
            writer.write_table(table)


def export_run(run_dir: str | Path, out: str | Path, formats: Sequence[str] = FORMATS, replication: int | None = None,
               start: str = DEFAULT_START, step_hours: float = 24.0, overwrite: bool = False) -> dict[str, Any]:
    """Export one stored replication of ``run_dir`` into ``out``; return what ``export.json`` says."""
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown or not formats:
        raise ExportError(f"unknown format {', '.join(unknown) or '(none)'} (allowed: {', '.join(FORMATS)})")
    if not step_hours > 0:
        raise ExportError(f"time step {step_hours!r} h: allowed: a duration > 0")
    try:
        begin = datetime.strptime(start, "%Y-%m-%d %H:%M") if " " in start else datetime.strptime(start, "%Y-%m-%d")
    except ValueError:
        raise ExportError(f"start {start!r}: allowed: a date 'YYYY-MM-DD' or 'YYYY-MM-DD HH:MM'") from None
    try:
        run = StoredRun(run_dir)
    except StoreError as exc:
        raise ExportError(str(exc)) from None
    if not run.indices:
        raise ExportError(f"{run_dir}: no stored replication to export")
    index = run.indices[0] if replication is None else replication
    if index not in run.indices:
        raise ExportError(f"{run_dir}: replication {index} is not stored (stored: {_ranges(run.indices)})")
    try:
        rep = run.replication(index, skip=("lots_table",))
    except Exception as exc:  # a damaged part: zipfile, numpy and json raise many kinds
        raise ExportError(f"{run_dir}: replication {index} cannot be read ({type(exc).__name__}: {exc})") from None
    if rep.ledger is None:
        raise ExportError(f"{run_dir}: replication {index} kept no ledger (run with --runs 1 or --keep-ledgers)")
    order = [f for f in FORMATS if f in formats]
    out = Path(out)
    _plan(out, order, overwrite)  # before the lock makes the folder
    try:
        with locked(out):  # one writer per directory, as every command that writes (runs/lock.py)
            _plan(out, order, overwrite)  # (again, now that no one else writes here)
            return _write(run, rep.ledger, out, order, index, begin, step_hours, run_dir)
    except OutputError as exc:  # another launderflow writes there, or --out cannot be written
        raise ExportError(str(exc)) from None


def _write(run: StoredRun, ledger: dict[str, np.ndarray], out: Path, order: Sequence[str], index: int,
           begin: datetime, step_hours: float, run_dir: str | Path) -> dict[str, Any]:
    """Write the chosen formats and export.json into ``out`` (checked and locked by the caller)."""
    rows = Rows(run.scenario, ledger)
    meta: dict[str, Any] = {"run": str(run_dir), "scenario": run.scenario.name,
                            "scenario_sha256": run.manifest.get("scenario_sha256"), "seed": run.manifest.get("seed"),
                            "replication": index, "start": begin.strftime("%Y-%m-%d %H:%M"), "time_step_hours": step_hours,
                            "rows": rows.n, "illicit_rows": int(rows.illicit.sum()),
                            "licit_rows": int(rows.n - rows.illicit.sum()),
                            "illicit_to_honest_rows": int(rows.to_honest.sum()),
                            "elliptic_known": {k: int(v) for k, v in zip(*np.unique(elliptic_classes(rows), return_counts=True))},
                            "illicit_share": float(rows.illicit.mean()) if rows.n else None,
                            "time_steps": int(rows.time_step(step_hours).max()) if rows.n else 0, "files": []}
    if "aml" in order:
        write_aml(rows, out / FILES["aml"][0], begin)
        meta["laundering_attempts"] = write_patterns(rows, out / FILES["aml"][1], begin, step_hours)
    if "elliptic" in order:
        meta["edges"] = write_elliptic(rows, [out / n for n in FILES["elliptic"]], step_hours)
    if "parquet" in order:
        write_parquet(rows, out / FILES["parquet"][0], index, step_hours)
    meta["files"] = [n for f in order for n in FILES[f]]
    with _atomic(out / META) as tmp:
        tmp.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return meta


def _ranges(indices: Sequence[int]) -> str:
    return ", ".join(map(str, indices[:10])) + (" ..." if len(indices) > 10 else "")
