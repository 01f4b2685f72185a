"""Price series files: a CSV or Parquet table of dated prices, read into a scenario's ``prices``.

A scenario names a file (``prices: {ETH: {series: prices/eth_2022.csv}}``); the loader reads it
here, checks every row, and puts the points into the scenario data, so the model gets numbers and
never opens a file. The table has a time column — ``date`` (an ISO date, counted from
``clock.start``) or ``time`` (hours since time zero, or a duration such as ``36h``, ``170d``) — and
``price_usd``; an optional ``note`` column (CSV: also ``#`` comment lines) says where each point
comes from. Rows must be in increasing time.

Files are read the way ``extends`` reads scenarios: relative to the scenario file that names them,
only under the scenario's directory or the current directory (unless outside files are allowed),
never through a symbolic link, never more than a few megabytes, and only regular files. Every
problem is reported as ``file:line: column: message`` (Parquet: the row number).
"""

from __future__ import annotations

import csv
import datetime
import errno
import math
import os
import stat
from pathlib import Path
from typing import Any

from ..units import parse_duration
from .schema import MAX_PRICE_POINTS, MAX_PRICE_USD, PRICE_SERIES_SUFFIXES

MAX_SERIES_BYTES = 5_000_000
TIME_COLUMNS = ("date", "time")
COLUMNS = (*TIME_COLUMNS, "price_usd", "note")


class SeriesProblem(Exception):
    """One problem with a series file: where (file, line or None) and what."""

    def __init__(self, file: str, line: int | None, column: str, message: str):
        super().__init__(message)
        self.file, self.line, self.column, self.message = file, line, column, message


def resolve(name: Any, scenario_file: str, roots: tuple[Path, ...], outside_allowed: bool) -> Path:
    """The path of a series file named in ``scenario_file``, or SeriesProblem (reported at the
    scenario's line by the caller, with ``file`` left empty)."""
    if not isinstance(name, str) or not name.strip():
        raise SeriesProblem("", None, "", "must be the path of a .csv or .parquet file")
    named = Path(scenario_file).parent / name
    try:
        path = named.resolve()
    except (RuntimeError, OSError, ValueError):
        raise SeriesProblem("", None, "", f"no such price file: {name}") from None
    if not outside_allowed and not any(path == r or path.is_relative_to(r) for r in roots):
        raise SeriesProblem("", None, "", f"{name} is outside the scenario's directory and the current directory "
                                          f"(allowed: files under {roots[0]} or {roots[1]}; --allow-extends-outside to allow it)")
    if path.suffix.lower() not in PRICE_SERIES_SUFFIXES:
        raise SeriesProblem("", None, "", f"{name} is not a price file (allowed: a {' or '.join(PRICE_SERIES_SUFFIXES)} file)")
    if named.is_symlink():
        raise SeriesProblem("", None, "", f"{name} is a symbolic link (name the file itself)")
    if not path.is_file():
        raise SeriesProblem("", None, "", f"no such price file: {name}")
    return named


def read_points(path: Path) -> list[dict[str, Any]]:
    """The points of a series file as scenario data (``{date|time: ..., price_usd: ...}``)."""
    raw = _read_bytes(path)
    if path.suffix.lower() == ".parquet":
        header, rows = _parquet_rows(raw, str(path))
    else:
        header, rows = _csv_rows(raw, str(path))
    return _points(header, rows, str(path))


def _read_bytes(path: Path) -> bytes:
    """The file's bytes: a regular file, not a symbolic link, within the size cap (checked before reading)."""
    file = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise SeriesProblem(file, None, "", "no such price file") from None
    except OSError as exc:
        why = "a symbolic link (name the file itself)" if exc.errno == errno.ELOOP else exc.strerror
        raise SeriesProblem(file, None, "", f"cannot read: {why}") from None
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SeriesProblem(file, None, "", "is not a regular file")
        raw = fh.read(MAX_SERIES_BYTES + 1)
    if len(raw) > MAX_SERIES_BYTES:
        raise SeriesProblem(file, None, "", f"file is larger than {MAX_SERIES_BYTES:,} bytes")
    return raw


def _csv_rows(raw: bytes, file: str) -> tuple[list[str], list[tuple[int | None, dict[str, Any]]]]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SeriesProblem(file, raw[: exc.start].count(b"\n") + 1, "", "not valid UTF-8 (save the file as UTF-8)") from None
    header: list[str] | None = None
    header_line = 1
    rows: list[tuple[int | None, dict[str, Any]]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            cells = [c.strip() for c in next(csv.reader([line]))]
        except csv.Error as exc:
            raise SeriesProblem(file, number, "", f"malformed CSV: {exc}") from None
        if header is None:
            header, header_line = _header(cells, file, number), number
            continue
        if len(cells) != len(header):
            raise SeriesProblem(file, number, "", f"{len(cells)} cells, the header has {len(header)}")
        rows.append((number, dict(zip(header, cells))))
        if len(rows) > MAX_PRICE_POINTS:
            raise SeriesProblem(file, number, "", f"more than {MAX_PRICE_POINTS:,} rows")
    if header is None:
        raise SeriesProblem(file, 1, "", "the file is empty (expected a header: date or time, price_usd)")
    if not rows:
        raise SeriesProblem(file, header_line, "", "the series has no rows (expected one or more below the header)")
    return header, rows


def _parquet_rows(raw: bytes, file: str) -> tuple[list[str], list[tuple[int | None, dict[str, Any]]]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(pa.BufferReader(raw))
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise SeriesProblem(file, None, "", f"unreadable Parquet: {' '.join(str(exc).split())[:200]}") from None
    header = _header([str(n) for n in table.column_names], file, None)
    if table.num_rows > MAX_PRICE_POINTS:
        raise SeriesProblem(file, None, "", f"more than {MAX_PRICE_POINTS:,} rows")
    columns = {name: table[name].to_pylist() for name in header}
    rows = [(None, {name: columns[name][k] for name in header}) for k in range(table.num_rows)]
    return header, rows


def _header(cells: list[str], file: str, line: int | None) -> list[str]:
    unknown = [c for c in cells if c not in COLUMNS]
    if unknown:
        raise SeriesProblem(file, line, unknown[0], f"unknown column (allowed: {', '.join(COLUMNS)})")
    if len(set(cells)) != len(cells):
        raise SeriesProblem(file, line, "", "a column appears twice")
    times = [c for c in cells if c in TIME_COLUMNS]
    if len(times) != 1 or "price_usd" not in cells:
        raise SeriesProblem(file, line, "", "needs one time column (date or time) and price_usd")
    return cells


def _points(header: list[str], rows: list[tuple[int | None, dict[str, Any]]], file: str) -> list[dict[str, Any]]:
    if not rows:
        raise SeriesProblem(file, None, "", "the series has no rows")
    column = "date" if "date" in header else "time"
    out: list[dict[str, Any]] = []
    previous: tuple[float, int | None] | None = None
    for k, (line, row) in enumerate(rows):
        where = (file, line) if line is not None else (f"{file} (row {k + 1})", None)
        when = _date(row[column], *where) if column == "date" else _time(row[column], *where)
        price = _price(row["price_usd"], *where)
        order = when.toordinal() * 24.0 if isinstance(when, datetime.date) else when
        if previous is not None and order <= previous[0]:
            raise SeriesProblem(*where, column, "not after the row before it (rows must be in increasing time)")
        previous = (order, line)
        out.append({column: when, "price_usd": price})
    return out


def _date(value: Any, file: str, line: int | None) -> datetime.date:
    if isinstance(value, datetime.datetime):
        value = value.date()
    if isinstance(value, datetime.date):
        return value
    try:
        return datetime.date.fromisoformat(str(value))
    except ValueError:
        raise SeriesProblem(file, line, "date", f"not an ISO date like 2022-09-08 (got {str(value)[:40]!r})") from None


def _time(value: Any, file: str, line: int | None) -> float:
    hours = math.nan
    if not isinstance(value, bool):
        try:
            hours = float(value)  # a number of hours (a CSV cell is text: "170" is 170 h)
        except (ValueError, TypeError):
            try:
                hours = parse_duration(str(value))
            except ValueError:
                pass
    if not math.isfinite(hours) or hours < 0:
        raise SeriesProblem(file, line, "time", f"not a time since time zero (hours, or a duration like '170d'; got {str(value)[:40]!r})")
    return hours


def _price(value: Any, file: str, line: int | None) -> float:
    try:
        price = float(value)
    except (ValueError, TypeError):
        price = math.nan
    if not (math.isfinite(price) and 0 < price <= MAX_PRICE_USD):
        raise SeriesProblem(file, line, "price_usd", f"not a price (allowed: a number > 0 and <= {MAX_PRICE_USD:.0e}; got {str(value)[:40]!r})")
    return price
