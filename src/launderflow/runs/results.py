"""Turn replications into the files a run leaves behind: summary.json, timeline and ledger Parquet.

Everything here is deterministic — replications are written in index order, JSON with fixed key
order, Parquet without timestamps — so the same command twice gives byte-identical files.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .. import __version__, metrics
from ..model.simulate import Replication
from ..model.states import Location
from ..scenario.schema import HOP_KINDS, Scenario


def _num(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _stats(values: np.ndarray) -> dict[str, float | None]:
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return {"median": None, "p5": None, "p95": None}
    p5, med, p95 = np.percentile(finite, [5, 50, 95])
    return {"median": _num(med), "p5": _num(p5), "p95": _num(p95)}


def at_rows(scenario: Scenario, reps: dict[int, Replication], at: list[float]) -> list[dict[str, Any]]:
    """The reported shares and the cashed-out share at the times ``at`` (hours after the start), as
    ``run --at`` shows them: one row per (time, state) with the median and 5-95 % over the replications."""
    order = sorted(reps)
    rows = []
    for m in metrics.at_measures(at):
        stats = _stats(m.values([reps[i] for i in order], scenario))
        rows.append({"metric": m.key, "runs": len(order), "median": stats["median"], "p5": stats["p5"], "p95": stats["p95"]})
    return rows


def summarize(scenario: Scenario, seed: int, reps: dict[int, Replication], at: list[float] | None = None) -> dict[str, Any]:
    """The run's summary: per-state median and 5-95 % range, and one record per replication; with
    ``at`` (``run --at``), also the shares at those times (``at_hours`` and ``at``), so that a report
    on the run shows the rows the terminal showed."""
    order = sorted(reps)
    stolen_each = np.array([reps[i].stolen_usd for i in order], dtype=np.float64)  # a stream's total varies by replication
    stolen = float(np.median(stolen_each)) if order else scenario.stolen_usd
    finals = np.array([[metrics.final_states(reps[i])[s] for s in metrics.STATES] for i in order]).reshape(-1, len(metrics.STATES))
    t50 = np.array([metrics.time_to_share(reps[i], Location.CASHED_OUT, 0.5) for i in order])
    states = {}
    for j, state in enumerate(metrics.STATES):
        usd = _stats(finals[:, j])
        share = _stats(finals[:, j] / stolen_each)  # each replication scaled by its own stolen value
        states[state] = {**{f"{k}_usd": v for k, v in usd.items()}, **{f"{k}_share": v for k, v in share.items()}}
    venues = {}
    for v, (name, spec) in enumerate(scenario.venues.items()):
        entry: dict[str, Any] = {"kind": spec.kind, "jurisdiction": spec.jurisdiction}
        for label, attr in (("inflow_usd", "venue_inflow"), ("fees_usd", "venue_fees"), ("frozen_usd", "venue_frozen"), ("seized_usd", "venue_seized"),
                            ("recovered_usd", "venue_recovered"), ("refused_lots", "refused_lots"),
                            ("refused_offers", "refusals")):
            # refused_lots: lots turned away at least once; refused_offers: every offer refused, daily retries included
            got = [getattr(reps[i], attr) for i in order]
            entry[label] = _stats(np.array([np.nan if g is None else g[v] for g in got], dtype=np.float64))
        entry["inflow_share"] = _stats(np.array([reps[i].venue_inflow[v] / reps[i].stolen_usd for i in order]))
        wd = [reps[i].withdrawals for i in order if reps[i].withdrawals is not None]
        if spec.kind == "pool_mixer" and wd:
            sets = np.concatenate([w["anonymity_set"][w["venue"] == v] for w in wd])
            linked = np.concatenate([w["linked"][w["venue"] == v] for w in wd])
            entry["launderer_withdrawals"] = int(len(sets))
            entry["anonymity_set_at_withdrawal"] = _stats(sets.astype(np.float64))
            entry["linked_share"] = _num(float(linked.mean())) if len(linked) else None
        venues[name] = entry
    cost = np.array([reps[i].network_fees + reps[i].venue_fees.sum() for i in order])
    actions = {}
    for name, action in scenario_actions(scenario).items():
        seized = np.array([reps[i].actions[name][2] for i in order], dtype=np.float64)
        applied = np.array([reps[i].actions[name][1] for i in order], dtype=np.float64)
        actions[name] = {"kind": action.kind, "applied_at_hours": _stats(applied), "seized_usd": _stats(seized)}
    summary = {
        "launderflow_version": __version__,
        "scenario": scenario.name,
        "description": scenario.description,
        "seed": seed,
        "runs": len(order),
        "horizon_hours": scenario.clock.horizon,
        "stolen_usd": stolen,
        "states": states,
        "time_to_50pct_cash_out_hours": {**_stats(t50), "never": int(np.sum(~np.isfinite(t50)))},
        "launderer_cost_usd": {**_stats(cost), "network_fees_median": _num(float(np.median([reps[i].network_fees for i in order])))},
        "venues": venues,
        "interventions": actions,
        **_day_usd(scenario, reps, order),
        "replications": [
            {
                "index": i,
                "stolen_usd": _num(reps[i].stolen_usd),  # a stream's total varies by replication
                "final_usd": {s: _num(v) for s, v in zip(metrics.STATES, finals[k])},
                "time_to_50pct_cash_out_hours": _num(t50[k]),
                "transfers": reps[i].transfers,
                "launderer_cost_usd": _num(cost[k]),
                "lots": reps[i].lots,
            }
            for k, i in enumerate(order)
        ],
    }
    if at:
        summary["at_hours"] = [float(t) for t in at]
        summary["at"] = at_rows(scenario, reps, list(at))
    if scenario.honest is not None:  # (only then: summaries of scenarios without honest users stay as they were)
        summary["collateral"] = {m.key: _stats(m.values([reps[i] for i in order], scenario))
                                 for m in [metrics.METRICS["honest_volume_usd"](), *metrics.collateral_measures()]}
    return summary


def _day_usd(scenario: Scenario, reps: dict[int, Replication], order: list[int]) -> dict[str, Any]:
    """With prices that move: what was frozen, seized and cashed out, each at its day's prices
    (``day_usd``); nothing for a scenario whose prices are fixed (its summary stays as it was)."""
    if not scenario.prices:
        return {}
    names = {"frozen_usd": "frozen_day_usd", "seized_usd": "seized_day_usd", "cashed_out_usd": "cashed_out_day_usd"}
    return {"day_usd": {label: _stats(metrics.METRICS[name]().values([reps[i] for i in order], scenario))
                        for label, name in names.items()}}


def replication_rows(stolen_usd: float, records: list[dict[str, Any]]) -> pa.Table:
    """summary.json's per-replication records as a flat table (the ``summary`` view of ``query``).

    Each record is scaled by its own ``stolen_usd`` (a stream's total varies by replication);
    ``stolen_usd`` is only the fallback for records written without one.
    """
    stolen = [float(r.get("stolen_usd") or stolen_usd) for r in records]
    cols: dict[str, pa.Array] = {
        "replication": pa.array([r["index"] for r in records], pa.int32()),
        "stolen_usd": pa.array(stolen, pa.float64()),
    }
    for state in metrics.STATES:
        cols[metrics.METRICS["final_usd"](state=state).key] = pa.array([r["final_usd"][state] for r in records], pa.float64())
    for state in metrics.STATES:
        cols[metrics.METRICS["final_share"](state=state).key] = pa.array(
            [None if r["final_usd"][state] is None else r["final_usd"][state] / s for r, s in zip(records, stolen)],
            pa.float64())
    cols["time_to_50pct_cash_out_hours"] = pa.array([r["time_to_50pct_cash_out_hours"] for r in records], pa.float64())
    cols["launderer_cost_usd"] = pa.array([r["launderer_cost_usd"] for r in records], pa.float64())
    cols["transfers"] = pa.array([r["transfers"] for r in records], pa.int64())
    cols["lots"] = pa.array([r["lots"] for r in records], pa.int64())
    return pa.table(cols)


def part_tables(scenario: Scenario, seed: int, index: int, rep: Replication) -> dict[str, pa.Table | None]:
    """The tables a stored replication carries beside itself (what ``query`` reads of an unfinished run):
    its summary row, its timeline, and its ledger and anonymity sets when it has them."""
    one = {index: rep}
    record = summarize(scenario, seed, one)["replications"][0]
    return {"summary": replication_rows(rep.stolen_usd, [record]), "timeline": timeline_table(scenario, one),
            "ledger": ledger_table(scenario, one), "anonymity": pools_table(scenario, one)}


def scenario_actions(scenario: Scenario) -> dict[str, Any]:
    """Interventions by the name the model gives them (their own, or kind_index)."""
    return {(a.name or f"{a.kind}_{i}"): a for i, a in enumerate(scenario.interventions)}


def timeline_table(scenario: Scenario, reps: dict[int, Replication]) -> pa.Table:
    """Long table (replication, time_hours, state, value_usd, share) on the scenario's grid."""
    grid = metrics.timeline_grid(scenario.clock.horizon, scenario.clock.timeline_step)
    blocks = []
    for i in sorted(reps):
        values = metrics.timeline(reps[i], grid)  # (T, S)
        blocks.append((i, values))
    n_t, n_s = len(grid), len(metrics.STATES)
    rep_col = np.repeat([i for i, _ in blocks], n_t * n_s).astype(np.int32)
    time_col = np.tile(np.repeat(grid, n_s), len(blocks))
    state_idx = np.tile(np.arange(n_s, dtype=np.int32), n_t * len(blocks))
    value_col = np.concatenate([v.ravel() for _, v in blocks]) if blocks else np.empty(0)
    stolen = np.repeat([reps[i].stolen_usd for i, _ in blocks], n_t * n_s) if blocks else np.empty(0)
    return pa.table(
        {
            "replication": rep_col,
            "time_hours": time_col,
            "state": pa.DictionaryArray.from_arrays(pa.array(state_idx), pa.array(list(metrics.STATES))),
            "value_usd": value_col,
            "share": value_col / stolen,
        }
    )


def ledger_table(scenario: Scenario, reps: dict[int, Replication]) -> pa.Table | None:
    """All kept ledgers, one row per transfer, with asset, hop and venue names."""
    assets = pa.array(list(scenario.assets))
    hops = pa.array(list(HOP_KINDS))
    venues = pa.array(list(scenario.venues) or [""])
    parts = []
    for i in sorted(reps):
        led = reps[i].ledger
        if led is None:
            continue
        n = len(led["time"])
        venue_idx = led["venue"].astype(np.int32)
        parts.append(
            pa.table(
                {
                    "replication": np.full(n, i, dtype=np.int32),
                    "time_hours": led["time"],
                    "src": led["src"],
                    "dst": led["dst"],
                    "asset": pa.DictionaryArray.from_arrays(pa.array(led["asset"].astype(np.int32)), assets),
                    "amount": led["amount"],
                    "value_usd": led["value_usd"],
                    "fee_usd": led["fee_usd"],
                    "hop": pa.DictionaryArray.from_arrays(pa.array(led["hop"].astype(np.int32)), hops),
                    "venue": pa.DictionaryArray.from_arrays(
                        pa.array(np.where(venue_idx < 0, 0, venue_idx), mask=venue_idx < 0), venues
                    ),
                    "lot": led["lot"],
                    "followed": led["followed"],
                }
            )
        )
    return pa.concat_tables(parts) if parts else None


def pools_table(scenario: Scenario, reps: dict[int, Replication]) -> pa.Table | None:
    """Pool mixers' anonymity sets over time: (replication, time_hours, venue, denomination, notes)."""
    names = list(scenario.venues)
    parts = []
    for i in sorted(reps):
        p = reps[i].pools
        if p is None:
            continue
        denoms = np.array([scenario.venues[names[v]].denominations[k] for v, k in zip(p["venue"], p["pool"])])
        parts.append(pa.table({
            "replication": np.full(len(p["time"]), i, dtype=np.int32),
            "time_hours": p["time"],
            "venue": pa.DictionaryArray.from_arrays(pa.array(p["venue"].astype(np.int32)), pa.array(names)),
            "denomination": denoms,
            "notes": p["notes"],
        }))
    return pa.concat_tables(parts) if parts else None


def write_run(out: Path, scenario: Scenario, seed: int, reps: dict[int, Replication], summary: dict[str, Any]) -> list[Path]:
    """Write summary.json, timeline.parquet, scenario.yaml (the resolved scenario, for reports) and
    (if any ledgers were kept) ledger.parquet."""
    import yaml

    out.mkdir(parents=True, exist_ok=True)
    written = [out / "summary.json", out / "timeline.parquet", out / "scenario.yaml"]
    (out / "scenario.yaml").write_text(
        "# the scenario as run (extends and --set resolved; durations in hours)\n"
        + yaml.safe_dump(scenario.model_dump(mode="json"), sort_keys=False, allow_unicode=True), encoding="utf-8")
    (out / "summary.json").write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    pq.write_table(timeline_table(scenario, reps), out / "timeline.parquet", compression="zstd")
    pools = pools_table(scenario, reps)
    if pools is not None:
        pq.write_table(pools, out / "anonymity.parquet", compression="zstd")
        written.append(out / "anonymity.parquet")
    ledger = ledger_table(scenario, reps)
    if ledger is not None:
        pq.write_table(ledger, out / "ledger.parquet", compression="zstd")
        written.append(out / "ledger.parquet")
    return written


def read_ledgers(path: Path) -> dict[int, dict[str, np.ndarray]]:
    """Read ledger.parquet back into one dict of model-coded columns per replication."""
    table = pq.read_table(path)
    hop_codes = {name: i for i, name in enumerate(HOP_KINDS)}
    reps = table["replication"].to_numpy()
    hop = np.array([hop_codes[h] for h in table["hop"].combine_chunks().dictionary.to_pylist()], dtype=np.int8)
    hop_idx = table["hop"].combine_chunks().indices.to_numpy()
    columns = {
        "time": table["time_hours"].to_numpy(),
        "src": table["src"].to_numpy(),
        "dst": table["dst"].to_numpy(),
        "value_usd": table["value_usd"].to_numpy(),
        "lot": table["lot"].to_numpy(),
        "followed": table["followed"].to_numpy(zero_copy_only=False),
        "hop": hop[hop_idx],
    }
    return {int(r): {k: v[reps == r] for k, v in columns.items()} for r in np.unique(reps)}
