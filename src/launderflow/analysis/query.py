"""DuckDB over a run directory: views ``timeline``, ``ledger``, ``summary`` and ``anonymity``.

The views read the assembled files when the run is assembled, else the stored parts (a run that
was interrupted or is still running).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..runs.store import MANIFEST, PART_TABLES, PARTS, replication_rows


def connect(root: Path | str) -> tuple[Any, dict[str, str]]:
    """A DuckDB connection with views ``timeline``, ``ledger``, ``summary``, ``anonymity`` over a run.

    Each view reads the assembled file when there is one, else the stored parts (a run that was
    interrupted, or is still running). Returns the connection and, per view, where it reads from.
    """
    import duckdb

    root = Path(root)
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    sources: dict[str, str] = {}
    parts = sorted(p for p in (root / PARTS).glob("*") if p.name.isdigit()) if (root / PARTS).is_dir() else []
    limit = None
    manifest_path = root / MANIFEST
    if manifest_path.is_file():
        try:
            limit = int(json.loads(manifest_path.read_text(encoding="utf-8"))["runs"])
        except (ValueError, KeyError, OSError):
            limit = None
    if limit is not None:
        parts = [p for p in parts if int(p.name) < limit]
    summary_json = root / "summary.json"
    for view in PART_TABLES:
        final = root / f"{view}.parquet"
        files = [p / f"{view}.parquet" for p in parts if (p / f"{view}.parquet").is_file()]
        if view == "summary" and summary_json.is_file():
            doc = json.loads(summary_json.read_text(encoding="utf-8"))
            con.register("summary", replication_rows(doc["stolen_usd"], doc["replications"]))
            sources[view] = str(summary_json)
        elif view != "summary" and final.is_file() and summary_json.is_file():
            con.read_parquet(str(final)).create_view(view)
            sources[view] = str(final)
        elif files and not summary_json.is_file():
            con.read_parquet([str(f) for f in files]).create_view(view)
            sources[view] = f"{len(files)} part(s) in {root / PARTS}"
    return con, sources


#: Why a run has no such view, and how to get one.
WHY_ABSENT = {
    "ledger": "the run has no ledger (only --runs 1 or --keep-ledgers keep one): run it again with "
              "--keep-ledgers --overwrite",
    "anonymity": "the run has no anonymity sets: its scenario has no pool mixer",
    "timeline": "the run has no timeline yet: no replication is stored",
    "summary": "the run has no summary yet: no replication is stored",
}


def absent_view(error: Exception, sources: dict[str, str]) -> str | None:
    """The view of this module that a failed query names but the run does not have, if any
    (DuckDB's own message would suggest an unrelated system table)."""
    found = re.search(r"Table with name (\w+) does not exist", str(error))
    view = found.group(1).lower() if found else None
    return view if view in WHY_ABSENT and view not in sources else None
