"""DuckDB over a run directory: views ``timeline``, ``ledger``, ``summary`` and ``anonymity``.

The views read the assembled files when the run is assembled, else the stored parts (a run that
was interrupted or is still running).

Safe by default: a scenario or a run directory may come from someone else, and so may the SQL an
analyst pastes. In safe mode the run's tables are handed to DuckDB as Arrow datasets (read by
pyarrow, not by DuckDB), then DuckDB's file system access is switched off and the configuration
locked: SQL cannot read or write any file (``read_text``, ``COPY ... TO``, ``ATTACH``, ``EXPORT``),
reach the network, install or load extensions, or see Python objects. DuckDB's own temporary
folder (``.tmp`` in the current directory, which its sandbox lets SQL read and write) is switched
off — a query works in memory, within ``memory_limit`` — and a run directory's linked files are
refused (:func:`~launderflow.runs.store.refuse_links`), so the views show only the run's own files. ``unsafe=True`` gives the
plain DuckDB of earlier versions (views over ``read_parquet``, full access). Either way
:func:`execute` stops a query after a time limit.
"""

from __future__ import annotations

import json
import threading
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..runs.results import replication_rows
from ..runs.store import MANIFEST, PART_TABLES, PARTS, StoreError, refuse_links

DEFAULT_TIMEOUT = 300.0  # seconds a query may run (--timeout; 0: no limit)
DEFAULT_MEMORY_LIMIT = "4GB"  # what a safe query may use (--memory-limit; DuckDB's own default is 80 % of RAM)


class QueryTimeout(Exception):
    """The query ran longer than its time limit and was interrupted."""


def connect(root: Path | str, *, unsafe: bool = False,
            memory_limit: str = DEFAULT_MEMORY_LIMIT) -> tuple[Any, dict[str, str]]:
    """A DuckDB connection with views ``timeline``, ``ledger``, ``summary``, ``anonymity`` over a run.

    Each view reads the assembled file when there is one, else the stored parts (a run that was
    interrupted, or is still running). Returns the connection and, per view, where it reads from.
    Without ``unsafe`` the connection can read nothing but these views (see the module's doc).
    """
    import duckdb
    import pyarrow.dataset as ds

    root = Path(root)
    refuse_links(root, reading=True)
    safe = {"autoinstall_known_extensions": "false", "autoload_known_extensions": "false",
            "temp_directory": "", "memory_limit": memory_limit}  # no spilling: no folder SQL could reach
    try:
        con = duckdb.connect(config={} if unsafe else safe)
    except duckdb.Error as exc:
        raise ValueError(f"--memory-limit {memory_limit!r}: {exc}") from None
    con.execute("SET enable_progress_bar = false")
    sources: dict[str, str] = {}
    parts = sorted(p for p in (root / PARTS).glob("*") if p.name.isdigit()) if (root / PARTS).is_dir() else []
    limit = None
    manifest_path = root / MANIFEST
    if manifest_path.is_file():
        try:
            limit = int(json.loads(manifest_path.read_text(encoding="utf-8"))["runs"])
        except (ValueError, KeyError, TypeError, OSError):
            limit = None
    if limit is not None:
        parts = [p for p in parts if int(p.name) < limit]
    summary_json = root / "summary.json"

    def view(name: str, files: list[Path]) -> None:
        if unsafe:
            con.read_parquet([str(f) for f in files]).create_view(name)
        else:
            con.register(name, ds.dataset([str(f) for f in files], format="parquet"))

    for name in PART_TABLES:
        final = root / f"{name}.parquet"
        files = [p / f"{name}.parquet" for p in parts if (p / f"{name}.parquet").is_file()]
        if name == "summary" and summary_json.is_file():
            con.register("summary", _summary_rows(summary_json))
            sources[name] = str(summary_json)
        elif name != "summary" and final.is_file() and summary_json.is_file():
            view(name, [final])
            sources[name] = str(final)
        elif files and not summary_json.is_file():
            view(name, files)
            sources[name] = f"{len(files)} part(s) in {root / PARTS}"
    if not unsafe:
        for setting in ("python_enable_replacements = false", "enable_external_access = false",
                        "allow_community_extensions = false", "lock_configuration = true"):
            con.execute(f"SET {setting}")
    return con, sources


def _summary_rows(path: Path) -> Any:
    """summary.json's per-replication records as a table; StoreError if the file is damaged."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return replication_rows(doc["stolen_usd"], doc["replications"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise StoreError(f"{path}: damaged ({type(exc).__name__}: {exc}); "
                         f"run the same command with --resume to rebuild it from the parts") from None


def execute(con: Any, sql: str, timeout: float | None = DEFAULT_TIMEOUT) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run ``sql``; return its column names and rows. QueryTimeout after ``timeout`` seconds (None/0: no limit)."""
    import duckdb

    timer = threading.Timer(timeout, con.interrupt) if timeout else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        cursor = con.execute(sql)
        columns = [d[0] for d in cursor.description] if cursor.description else []
        rows = cursor.fetchall() if columns else []
    except duckdb.InterruptException:
        raise QueryTimeout(f"the query was stopped after {timeout:g} s (--timeout to allow longer)") from None
    finally:
        if timer is not None:
            timer.cancel()
    return columns, [tuple(_no_negative_zero(v) for v in row) for row in rows]


def _no_negative_zero(value: Any) -> Any:
    """-0.0 (``round(-0.001)``, a sum of values that cancel) as 0.0, also inside lists and structs,
    so that no result reads ``-0`` in the table, the CSV or the JSON: it is the same number."""
    if isinstance(value, float):
        return 0.0 if value == 0 else value
    if isinstance(value, Decimal):
        return value.copy_abs() if value.is_zero() else value
    if isinstance(value, list):
        return [_no_negative_zero(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_no_negative_zero(v) for v in value)
    if isinstance(value, dict):
        return {k: _no_negative_zero(v) for k, v in value.items()}
    return value


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
