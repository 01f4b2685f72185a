"""The ``launderflow`` command line: thin adapters over the library.

Every command parses its options, calls the library (:mod:`launderflow.api`, the analyses), prints
tables and messages, and maps the library's exceptions to exit codes. Results go to stdout
(tables, ``--json``); progress bars and errors go to stderr. A bad scenario prints
``file:line: field: problem (allowed)`` lines and exits with code 2, never a traceback.

Exit codes: 0 done; 1 a replication (or the scheduler) failed; 2 a usage error, a bad scenario,
or an output directory that holds another run, cannot be written or is locked by another writer;
130 interrupted (what is stored stays stored: ``--resume``).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, Task, TextColumn, TimeRemainingColumn
from rich.table import Column, Table
from rich.text import Text

from . import __version__
from .scenario.loader import ScenarioError, load_scenario, parse_value
from .scenario.schema import Scenario
from .views.tables import comparison_table, summary_table

# no markup and no emoji codes: scenario values, file names and query results are printed as they are
# (":100:" in "file.yaml:100:" is not 💯, "[red]" in a value is not a style)
out = Console(highlight=False, markup=False, emoji=False)
err = Console(stderr=True, highlight=False, markup=False, emoji=False)


def _fail(problems: ScenarioError) -> None:
    for problem in problems.problems:
        err.print(str(problem), markup=False, soft_wrap=True)
    sys.exit(2)


@contextmanager
def _errors() -> Iterator[None]:
    """The library's exceptions as one-line messages and exit codes (see the module's docstring)."""
    from .runs.executors import NotAScheduler
    from .runs.experiment import RunInterrupted
    from .runs.lock import OutputError
    from .runs.store import StoreError

    try:
        yield
    except ScenarioError as exc:
        _fail(exc)
    except OutputError as exc:  # --out cannot be written, or another launderflow writes into it
        err.print(f"error: {exc}", markup=False, soft_wrap=True)
        sys.exit(2)
    except StoreError as exc:  # --out holds another run, or a part was damaged while the run went on
        err.print(getattr(exc, "cli_text", str(exc)), markup=False, soft_wrap=True)  # (in the options' words)
        sys.exit(2)
    except RunInterrupted as exc:
        err.print(f"interrupted: {exc}; the same command with --resume runs the rest", markup=False, soft_wrap=True)
        sys.exit(130)
    except NotAScheduler as exc:  # --scheduler names a service that is not a dask scheduler
        err.print(f"error: {exc}", markup=False, soft_wrap=True)
        sys.exit(2)
    except OSError as exc:  # e.g. the dask scheduler cannot be reached
        err.print(f"error: {exc}", markup=False, soft_wrap=True)
        sys.exit(1)


def load_or_exit(path: str, overrides: dict[str, Any] | None = None) -> Scenario:
    try:
        scenario = load_scenario(path, overrides)
    except ScenarioError as exc:
        _fail(exc)
        raise  # unreachable
    _warn(path, scenario)
    return scenario


def _warn(path: str, scenario: Scenario) -> None:
    """Plausibility warnings (file:line: field: warning: ...) on stderr; they do not stop anything."""
    from .scenario.plausibility import located_warnings

    for problem in located_warnings(path, scenario):
        err.print(str(problem), markup=False, soft_wrap=True)


class _NonEmptyPath(click.Path):
    """A directory (or ``backtest --out`` file) that refuses an empty string, exit code 2: ``Path("")``
    is the current directory, so ``--out ''`` would write there. (An empty scenario file is the
    loader's ``'': empty path``.)"""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not value.strip():
            self.fail("empty path (give a path; '.' for the current directory)", param, ctx)
        return super().convert(value, param, ctx)


# --- options several commands share: each declared once ----------------------------------------------

Decorator = Callable[[Any], Any]


def _options(*decorators: Decorator) -> Decorator:
    """Several option decorators as one, listed in the order ``--help`` shows them."""
    def apply(command: Any) -> Any:
        for decorator in reversed(decorators):
            command = decorator(command)
        return command
    return apply


#: options that exclude each other: checked once, for every command that has both (see _Command)
EXCLUSIVE = (
    ("jobs", "scheduler", "--jobs and --scheduler exclude each other (the cluster's workers do the work)"),
    ("resume", "overwrite", "--resume and --overwrite exclude each other"),
    ("as_csv", "as_json", "--csv and --json exclude each other"),
)


def check_exclusive(ctx: click.Context) -> None:
    """Raise a usage error (exit 2) when the command was given options that exclude each other."""
    params = ctx.params
    for first, second, message in EXCLUSIVE:
        if first in params and second in params and _given(first, params[first]) and _given(second, params[second]):
            raise click.UsageError(message, ctx=ctx)


def _given(name: str, value: Any) -> bool:
    return value != 1 if name == "jobs" else bool(value)  # --jobs 1 is the default: no pool


class _Command(click.Command):
    """A command whose exclusive options are checked before it runs (after every option was parsed)."""

    def invoke(self, ctx: click.Context) -> Any:
        check_exclusive(ctx)
        return super().invoke(ctx)


class _Group(click.Group):
    command_class = _Command

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["launderflow.argv"] = list(args)  # the command line as given (sys.argv is not, under a test runner)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        """Ctrl-C anywhere in a command: one line and exit code 130, not click's "Aborted!" and 1 (the
        commands that keep finished work say what they kept before they exit 130 themselves)."""
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            err.print("interrupted", markup=False)
            sys.exit(130)


def runs_option(default: int, help: str, most: int = 1_000_000) -> Decorator:
    return click.option("--runs", "-n", default=default, show_default=True, type=click.IntRange(1, most), help=help)


def seed_option(help: str = "master seed (default: the scenario's)") -> Decorator:
    return click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=None, help=help)


def _scheduler_address(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """--scheduler is checked at once: a malformed address is a usage error (exit 2), not a wait."""
    from .runs.executors import check_scheduler_address

    if value is None:
        return None
    try:
        return check_scheduler_address(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _scheduler_timeout(ctx: click.Context, _param: click.Parameter, value: float) -> None:
    from .runs.executors import scheduler_timeout

    token = scheduler_timeout.set(value)
    ctx.call_on_close(lambda: scheduler_timeout.reset(token))


def engine_option(command: Any) -> Any:
    """``--engine reference|compiled``: which engine simulates (both give the same bytes)."""
    return click.option("--engine", type=click.Choice(["reference", "compiled"]), default="reference",
                        show_default=True, help="reference: numpy; compiled: the tick's bookkeeping in numba "
                                                "kernels (the same results, faster)")(command)


def executor_options(command: Any) -> Any:
    """``--jobs/-j``, ``--scheduler`` (they exclude each other) and ``--scheduler-timeout``."""
    from .runs.executors import DEFAULT_SCHEDULER_TIMEOUT

    return _options(
        click.option("--jobs", "-j", default=1, show_default=True, type=click.IntRange(1, 512),
                     help="local worker processes"),
        click.option("--scheduler", metavar="tcp://HOST:PORT", default=None, callback=_scheduler_address,
                     help="run the replications on this dask.distributed scheduler's workers"),
        click.option("--scheduler-timeout", type=click.FloatRange(0, 3600, min_open=True),
                     default=DEFAULT_SCHEDULER_TIMEOUT, show_default=True, metavar="SECONDS", expose_value=False,
                     callback=_scheduler_timeout, help="give up on --scheduler if it has not answered within this time"),
    )(command)


def store_options(command: Any) -> Any:
    """``--resume`` and ``--overwrite`` (they exclude each other): what to do with runs stored in --out."""
    return _options(
        click.option("--resume", is_flag=True, help="continue the runs stored in --out: run only their missing replications"),
        click.option("--overwrite", is_flag=True, help="discard whatever runs --out holds and start afresh"),
    )(command)


def overwrite_option(what: str) -> Decorator:
    """``--overwrite`` for a command that writes its own files: replace a file of the same name that
    launderflow did not write (by default such a file is refused; nothing else is ever touched)."""
    return click.option("--overwrite", is_flag=True,
                        help=f"replace {what} even if launderflow did not write it (nothing else is touched)")


def _remember_extends_outside(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    from .scenario.loader import allow_extends_outside

    token = allow_extends_outside.set(value)
    ctx.call_on_close(lambda: allow_extends_outside.reset(token))


def extends_option(command: Any) -> Any:
    """``--allow-extends-outside``: let ``extends`` name scenario files outside the scenario's directory
    and the current directory (refused by default, see launderflow.scenario.loader)."""
    return click.option("--allow-extends-outside", is_flag=True, expose_value=False, is_eager=True,
                        callback=_remember_extends_outside,
                        help="let extends: name scenario files outside the scenario's directory and the current one")(command)


def _overrides(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> dict[str, Any]:
    """``--set clock.horizon=30d`` pairs; values are read as YAML scalars (numbers, true/false)."""
    overrides = {}
    for item in values:
        if "=" not in item:
            raise click.BadParameter(f"{item!r} is not FIELD=VALUE (e.g. clock.horizon=30d)", param_hint="--set")
        key, raw = item.split("=", 1)
        overrides[key.strip()] = parse_value(raw) if raw.strip() else raw
    return overrides


def set_option(help: str) -> Decorator:
    """``--set FIELD=VALUE`` (repeatable), given to the command as a dict of overrides."""
    return click.option("--set", "overrides", multiple=True, metavar="FIELD=VALUE", callback=_overrides, help=help)


def _grid(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> dict[str, list[Any]]:
    """``--set FIELD=V1,V2,...`` (repeatable): the sweep's axes, in order; api.sweep_points expands them."""
    grid: dict[str, list[Any]] = {}
    for item in values:
        if "=" not in item:
            raise click.BadParameter(f"{item!r} is not FIELD=V1,V2,...", param_hint="--set")
        key, raw = item.split("=", 1)
        values_ = [parse_value(v.strip()) for v in raw.split(",") if v.strip()]
        if not values_:
            raise click.BadParameter(f"{key}: no values", param_hint="--set")
        if key.strip() in grid:
            raise click.BadParameter(f"{key.strip()} is given twice (list all its values in one --set)", param_hint="--set")
        grid[key.strip()] = values_
    return grid


def _times(_ctx: click.Context, _param: click.Parameter, text: str | None) -> list[float]:
    from .analysis.compare import parse_times

    try:
        return parse_times(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--at") from None


def _check_times(times: list[float], scenarios: list[Scenario]) -> None:
    """--at past a scenario's horizon is a usage error (exit 2), before anything runs."""
    from .analysis.compare import check_times

    try:
        check_times(times, [(sc.name, sc.clock.horizon) for sc in scenarios])
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--at") from None


def at_option(help: str) -> Decorator:
    """``--at 11d,60d``, given to the command as hours."""
    return click.option("--at", "times", default=None, metavar="TIMES", callback=_times, help=help)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="launderflow")
@click.pass_context
def main(ctx: click.Context) -> None:
    """Simulate how stolen crypto is laundered and how policy stops it."""
    from .runs.lock import command_line

    token = command_line.set(" ".join(["launderflow", *ctx.meta.get("launderflow.argv", sys.argv[1:])]))  # what the writer lock says
    ctx.call_on_close(lambda: command_line.reset(token))


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@extends_option
def validate(files: tuple[str, ...]) -> None:
    """Check scenario FILES; print every problem as file:line: field: message."""
    bad = 0
    for path in files:
        try:
            scenario = load_scenario(path)
        except ScenarioError as exc:
            bad += 1
            for problem in exc.problems:
                err.print(str(problem), markup=False, soft_wrap=True)
            continue
        _warn(path, scenario)
        out.print(f"{path}: ok ({scenario.name}: {len(scenario.thefts)} theft(s), "
                  f"${scenario.stolen_usd:,.0f} stolen, {len(scenario.venues)} venue(s))", markup=False, soft_wrap=True)
    if bad:
        sys.exit(2)


@main.command()
def schema() -> None:
    """Print the JSON Schema of scenario files (for editors and other tools)."""
    doc = Scenario.model_json_schema()
    doc["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    doc["title"] = "launderflow scenario"
    click.echo(json.dumps(doc, indent=2, sort_keys=True))


# --- progress on stderr -----------------------------------------------------------------------------


class _TimeLeft(TimeRemainingColumn):
    """``left 0:01:10`` while running, ``took 0:03:02`` when done: one column, so the bar fits 80."""

    def __init__(self) -> None:
        super().__init__(elapsed_when_finished=True, table_column=Column(no_wrap=True))

    def render(self, task: Task) -> Text:
        return Text.assemble("took " if task.finished else "left ", super().render(task))


def _progress() -> Progress:
    """One row per task; the counts and times never wrap or get cut: the bar narrows (to 10) and
    the description wraps (a sweep point's parameters) when the terminal is narrow."""
    whole = Column(no_wrap=True)
    return Progress(
        TextColumn("{task.description}", markup=False, style="bold", table_column=Column()),
        BarColumn(bar_width=max(10, min(40, err.width - 58))),
        MofNCompleteColumn(table_column=whole),
        TextColumn("{task.fields[rate]}", table_column=whole),
        _TimeLeft(),
        console=err,
        transient=False,
    )


class Bars:
    """The library's :class:`~launderflow.runs.experiment.Progress` on stderr: the notes about each
    run directory, a bar per run with work to do (replications per second, time left), a line per
    failed replication, and what failed at the end of a run. A context manager: leaving the block
    (an exception included) takes the bar off the screen."""

    def __init__(self) -> None:
        self._bar: Progress | None = None
        self.failed_runs = 0  # runs that ended with failed replications (exit code 1)

    def __enter__(self) -> Bars:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop()

    def note(self, text: str) -> None:
        err.print(text, markup=False, soft_wrap=True)

    def start(self, label: str, total: int, done: int) -> None:
        self._stop()
        self._bar = _progress()
        self._bar.start()
        self._label, self._finished, self._failed = label, 0, 0
        self._task = self._bar.add_task(label, total=total, completed=done, rate="")
        self._since = time.perf_counter()

    def advance(self) -> None:  # done or failed, either way one less to go
        assert self._bar is not None
        self._finished += 1
        elapsed = time.perf_counter() - self._since
        self._bar.update(self._task, advance=1, rate=f"{self._finished / elapsed:.2f} runs/s" if elapsed > 0 else "",
                         description=self._label + (f" ({self._failed} failed)" if self._failed else ""))

    def failed(self, failure: Any) -> None:
        assert self._bar is not None
        self._failed += 1
        self._bar.console.print(f"replication {failure.index} failed ({failure.stage}): {failure.error}",
                                markup=False, soft_wrap=True)
        self.advance()

    def finish(self, report: Any) -> None:
        self._stop()
        if report.recorded_failures:
            self.failed_runs += 1
            kept = f"the files hold the other {report.stored}" if report.stored else "nothing was written"
            err.print(f"{report.recorded_failures} of {report.runs} replication(s) failed (see "
                      f"{report.out / 'failures.json'}); {kept}; --resume retries the failed ones",
                      markup=False, soft_wrap=True)

    def _stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


# --- run, compare, sweep ---------------------------------------------------------------------------


@main.command()
@click.argument("scenario_file", type=click.Path(dir_okay=False))
@runs_option(1, "replications")
@seed_option()
@click.option("--out", "out_dir", type=_NonEmptyPath(file_okay=False), default=None,
              help="output directory (default: out/<scenario name>)")
@click.option("--keep-ledgers", is_flag=True, help="write every replication's ledger (always on with --runs 1)")
@executor_options
@store_options
@set_option("override a scenario field (repeatable)")
@extends_option
@at_option("also report the reported traceable / dark / frozen shares and the cashed-out share at these times "
           "after the start (up to the horizon), e.g. 11d,60d; kept in summary.json and shown by report")
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON instead of a table")
@engine_option
def run(scenario_file: str, runs: int, seed: int | None, out_dir: str | None, keep_ledgers: bool, jobs: int,
        scheduler: str | None, resume: bool, overwrite: bool, overrides: dict[str, Any], times: list[float],
        as_json: bool, engine: str) -> None:
    """Run SCENARIO_FILE for --runs replications and write the summary and timeline (and the
    ledger with --runs 1 or --keep-ledgers).

    Every replication is stored in OUT/parts/ as soon as it finishes; after an interruption,
    the same command with --resume runs only the missing ones.
    """
    from . import api

    scenario = load_or_exit(scenario_file, overrides)
    _check_times(times, [scenario])
    with _errors(), Bars() as bars:
        done = api.run(scenario, runs, seed, out_dir or None, jobs=jobs, scheduler=scheduler,
                       keep_ledgers=True if keep_ledgers else None, resume=resume, overwrite=overwrite,
                       progress=bars, strict=False, at=times, engine=engine)
    summary = done.report.summary
    if summary is not None:
        if as_json:
            click.echo(json.dumps(summary, indent=2))
        else:
            out.print(summary_table(summary))
            if times:
                at_rows = [{"scenario": scenario.name, "diff_median": None, "diff_p5": None, "diff_p95": None, **row}
                           for row in summary.get("at", [])]
                out.print(comparison_table(at_rows, title=f"{scenario.name}: shares at given times after the start"))
            for path in done.report.written:
                out.print(f"wrote {path}", markup=False)
    if bars.failed_runs:
        sys.exit(1)


@main.command()
@click.argument("scenario_files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@runs_option(20, "replications per scenario")
@seed_option("master seed shared by every scenario (default: the first scenario's)")
@click.option("--out", "out_dir", type=_NonEmptyPath(file_okay=False), default="out/compare", show_default=True)
@at_option("also compare shares at these times, e.g. 11d,60d")
@executor_options
@store_options
@set_option("override a field in every scenario")
@extends_option
@engine_option
def compare(scenario_files: tuple[str, ...], runs: int, seed: int | None, out_dir: str, times: list[float], jobs: int,
            scheduler: str | None, resume: bool, overwrite: bool, overrides: dict[str, Any], engine: str) -> None:
    """Run every SCENARIO_FILE on the same random streams and compare them with the first.

    Writes OUT/<scenario>/ (one run directory each) and OUT/comparison.{csv,parquet,md,json}.
    """
    from . import api

    scenarios = [load_or_exit(path, overrides) for path in scenario_files]
    names = [sc.name for sc in scenarios]
    if len(set(names)) != len(names):
        raise click.UsageError(f"scenario names must differ (got {', '.join(names)})")
    _check_times(times, scenarios)
    with _errors(), Bars() as bars:
        done = api.compare(scenarios, runs, seed, out_dir, at=times, jobs=jobs, scheduler=scheduler, resume=resume,
                           overwrite=overwrite, progress=bars, strict=False, engine=engine)
    out.print(comparison_table(done.rows, title=f"{len(names)} scenarios, {runs} runs each, seed {done.seed} "
                                                f"(common random numbers)"))
    for path in done.written:
        out.print(f"wrote {path}", markup=False)
    if bars.failed_runs:
        sys.exit(1)


@main.command()
@click.argument("scenario_file", type=click.Path(dir_okay=False))
@click.option("--set", "grid", multiple=True, required=True, metavar="FIELD=V1,V2,...", callback=_grid,
              help="a parameter and the values to try (repeatable: the grid is every combination)")
@runs_option(10, "replications per grid point")
@seed_option("master seed shared by every grid point")
@click.option("--out", "out_dir", type=_NonEmptyPath(file_okay=False), default="out/sweep", show_default=True)
@executor_options
@store_options
@extends_option
@engine_option
def sweep(scenario_file: str, grid: dict[str, list[Any]], runs: int, seed: int | None, out_dir: str, jobs: int,
          scheduler: str | None, resume: bool, overwrite: bool, engine: str) -> None:
    """Run SCENARIO_FILE over a grid of parameter values; one table and a sensitivity plot.

    Example: --set tracing.sharing.latency=1h,6h,24h --set venues.us_exchange.compliance=0.5,0.9
    """
    from . import api

    with _errors():
        points = api.sweep_points(scenario_file, grid)
    for _, scenario, _ in points:
        _warn(scenario_file, scenario)
    with _errors(), Bars() as bars:
        done = api.sweep(scenario_file, grid, runs, seed, out_dir, jobs=jobs, scheduler=scheduler, resume=resume,
                         overwrite=overwrite, progress=bars, strict=False, points=points, engine=engine)
    out.print(comparison_table(done.rows, title=f"sweep of {' x '.join(grid)}: {len(points)} points, "
                                                f"{runs} runs each, seed {done.seed}"))
    for path in done.written:
        out.print(f"wrote {path}", markup=False)
    if bars.failed_runs:
        sys.exit(1)


@main.command()
@click.argument("run_dir", type=_NonEmptyPath(file_okay=False, exists=True))
@click.argument("sql")
@click.option("--csv", "as_csv", is_flag=True, help="print CSV instead of a table")
@click.option("--json", "as_json", is_flag=True, help="print a JSON list of rows instead of a table")
@click.option("--timeout", type=click.FloatRange(0, None), default=300.0, show_default=True, metavar="SECONDS",
              help="stop the query after this long (0: no limit)")
@click.option("--memory-limit", default="4GB", show_default=True, metavar="SIZE",
              help="memory the query may use (DuckDB sizes: 500MB, 8GB); it never spills to disk")
@click.option("--unsafe", is_flag=True,
              help="plain DuckDB: SQL may read and write any file, attach databases and load extensions")
def query(run_dir: str, sql: str, as_csv: bool, as_json: bool, timeout: float, memory_limit: str, unsafe: bool) -> None:
    """Run DuckDB SQL over RUN_DIR's results: views timeline, ledger, summary, anonymity.

    The SQL sees only these views: no file access, no extensions (--unsafe lifts that).

    \b
    launderflow query out/baseline "SELECT state, median(share) FROM timeline
                                    WHERE time_hours = 720 GROUP BY state ORDER BY state"
    """
    import csv
    import io

    import duckdb

    from .analysis.query import QueryTimeout, connect, execute
    from .runs.store import StoreError

    try:
        con, sources = connect(Path(run_dir), unsafe=unsafe, memory_limit=memory_limit)
    except (StoreError, duckdb.Error, OSError, ValueError) as exc:
        err.print(f"{run_dir}: {exc}", markup=False, soft_wrap=True)
        sys.exit(2)
    if not sources:
        err.print(f"{run_dir}: no results to query (no summary.json, Parquet files or parts)", markup=False)
        sys.exit(2)
    for view, source in sources.items():
        if "part(s)" in source:
            err.print(f"note: view {view} reads {source} (the run is not assembled)", markup=False)
    try:
        columns, rows = execute(con, sql, timeout)
    except QueryTimeout as exc:
        err.print(f"query failed: {exc}", markup=False, soft_wrap=True)
        sys.exit(2)
    except duckdb.Error as exc:
        from .analysis.query import WHY_ABSENT, absent_view

        if view := absent_view(exc, sources):
            err.print(f"{run_dir}: {WHY_ABSENT[view]}", markup=False, soft_wrap=True)
            sys.exit(2)
        err.print(f"query failed: {exc}", markup=False, soft_wrap=True)
        if isinstance(exc, duckdb.PermissionException) and not unsafe:
            err.print("the SQL sees only the run's views; --unsafe gives it file access", markup=False)
        err.print(f"views: {', '.join(f'{v} ({s})' for v, s in sources.items())}", markup=False, soft_wrap=True)
        sys.exit(2)
    if as_json:
        click.echo(json.dumps([{c: _json_value(v) for c, v in zip(columns, row)} for row in rows], indent=2))
    elif as_csv:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
        click.echo(buf.getvalue(), nl=False)
    elif columns:
        table = Table()
        numeric = [all(isinstance(row[j], (int, float)) or row[j] is None for row in rows) and rows != []
                   for j in range(len(columns))]
        for name, num in zip(columns, numeric):
            table.add_column(name, justify="right" if num else "left", overflow="fold")
        for row in rows:
            table.add_row(*(_cell(v) for v in row))
        table.caption = f"{len(rows)} row(s)"
        from rich.measure import Measurement

        needed = Measurement.get(out, out.options.update(width=100_000, max_width=100_000), table).maximum
        if needed > out.width and not out.is_terminal:  # piped: print it whole rather than squeezed
            Console(highlight=False, markup=False, emoji=False, width=needed).print(table)
        else:
            if needed > out.width:
                err.print("note: the table is wider than the terminal: select fewer columns, or use --csv",
                          markup=False)
            out.print(table)
    con.close()


def _json_value(value: Any) -> Any:
    import datetime
    import decimal
    import math

    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (datetime.date, datetime.time, datetime.datetime, datetime.timedelta)):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    return value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) >= 1 else f"{value:.6g}"
    return str(value)


@main.command()
@click.argument("run_dir", type=_NonEmptyPath(file_okay=False, exists=True))
@click.option("--json", "as_json", is_flag=True, help="print the scores as JSON")
@overwrite_option("RUN_DIR/taint.json")
def taint(run_dir: str, as_json: bool, overwrite: bool) -> None:
    """Score poison / haircut / FIFO taint and the live tracer against the ground truth of RUN_DIR's ledger.

    Per replication: the value each marks as stolen in what every address holds at the horizon,
    how much of that is innocent and how much stolen value it leaves unmarked, as shares of the
    value stolen (each dollar counted once), and precision and recall over the transfers. Writes
    RUN_DIR/taint.json (the same in USD, and the sums over transfers).
    """
    from contextlib import ExitStack

    from .runs.lock import LockedError, OutputError, locked
    from .runs.outputs import check_files, write_files
    from .runs.results import read_ledgers
    from .runs.store import refuse_links
    from .analysis.taint_score import score_ledger

    path = Path(run_dir) / "ledger.parquet"
    with _errors():
        refuse_links(Path(run_dir), reading=True)
    if not path.is_file():
        err.print(f"{path}: no ledger (run with --runs 1 or --keep-ledgers)", markup=False)
        sys.exit(2)
    target = Path(run_dir) / "taint.json"
    saved = None  # None: saved; else the one-line warning that says why not
    with _errors(), ExitStack() as hold:
        try:
            hold.enter_context(locked(run_dir))  # one writer: not while a run rewrites the directory
        except LockedError:
            raise
        except OutputError as exc:  # a read-only run directory: the scores are still printed
            saved = f"warning: the scores could not be saved ({exc})"
        if saved is None:
            check_files(Path(run_dir), ["taint.json"], overwrite)  # a link or the user's file: refused first
        try:
            scores = {str(rep): score_ledger(ledger) for rep, ledger in read_ledgers(path).items()}
        except KeyboardInterrupt:
            err.print("interrupted: nothing was scored", markup=False)
            sys.exit(130)
        if saved is None:
            try:
                write_files(Path(run_dir), {"taint.json": json.dumps(scores, indent=2) + "\n"}, overwrite)
            except OSError as exc:  # (the scores are still printed)
                saved = f"warning: the scores could not be saved ({_os_error(exc)})"
    if as_json:
        click.echo(json.dumps(scores, indent=2))
    else:
        from .views.tables import taint_table

        for rep, by_policy in scores.items():
            out.print(taint_table(rep, by_policy))
        if saved is None:
            out.print(f"wrote {target}", markup=False)
    if saved is not None:
        err.print(saved, markup=False, soft_wrap=True)


def unwritable_file(path: Path) -> str | None:
    """Why ``path`` cannot be written as a file (checked before the work that makes it), or None."""
    import os

    if path.is_dir():
        return "it is a directory"
    if path.exists():
        return None if os.access(path, os.W_OK) else "permission denied (read-only)"
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return f"{parent} is not a directory"
    return None if os.access(parent, os.W_OK | os.X_OK) else f"{parent} is not writable (read-only)"


def _os_error(exc: OSError) -> str:
    """An OSError in words: ``cannot write out/x/figures: read-only file system`` rather than ``[Errno 30] ...``."""
    what = exc.strerror or str(exc)
    where = exc.filename if exc.filename is not None else ""
    return f"cannot write {where}: {what[0].lower() + what[1:]}" if where else what


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="directory to write the dataset into")
@click.option("--format", "formats", multiple=True, type=click.Choice(["aml", "elliptic", "parquet"]),
              help="dataset layout, repeatable (default: all three)")
@click.option("--replication", type=click.IntRange(0, None), default=None, help="which stored replication (default: the first)")
@click.option("--start", default="2022-09-01 00:00", show_default=True, metavar="'YYYY-MM-DD[ HH:MM]'",
              help="calendar date of the scenario's time zero (AMLworld timestamps)")
@click.option("--step", "step", default="1d", show_default=True, metavar="DURATION", help="length of one Elliptic time step")
@click.option("--overwrite", is_flag=True, help="replace dataset files already in --out")
def export(run_dir: str, out_dir: str, formats: tuple[str, ...], replication: int | None, start: str, step: str,
           overwrite: bool) -> None:
    """Write RUN_DIR's ledger as a labelled dataset: AMLworld CSV, an Elliptic-style graph, Parquet.

    Every transfer (honest users' and the stolen value's) is one row labelled with the ground truth
    (laundering / illicit: it carries stolen value). The run must have kept its ledgers (--runs 1,
    or --keep-ledgers). Field by field: docs/reference/export.md.
    """
    from .api import export_dataset
    from .units import parse_duration
    from .views.export import ExportError

    try:
        step_hours = parse_duration(step)
        meta = export_dataset(run_dir, out_dir, formats or ("aml", "elliptic", "parquet"), replication=replication,
                              start=start, step_hours=step_hours, overwrite=overwrite)
    except (ExportError, ValueError) as exc:
        err.print(f"error: {exc}", markup=False, soft_wrap=True)
        sys.exit(2)
    out.print(f"{meta['rows']:,} transfers ({meta['illicit_rows']:,} illicit, {meta['licit_rows']:,} licit; "
              f"illicit share {meta['illicit_share'] or 0:.4%}) from replication {meta['replication']}", markup=False)
    for name in [*meta["files"], "export.json"]:
        out.print(f"wrote {Path(out_dir) / name}", markup=False)


def _results_dir_error(exc: Exception) -> None:
    """A DIR that is not a run or comparison directory: one line on stderr, exit code 2."""
    err.print(f"error: {exc}", markup=False, soft_wrap=True)
    sys.exit(2)


@main.command()
@click.argument("results_dir", metavar="DIR", type=_NonEmptyPath(path_type=Path))
@click.option("--out", "fig_dir", type=_NonEmptyPath(file_okay=False, path_type=Path), default=None,
              help="where to write the figures (default: DIR/figures)")
@click.option("--format", "formats", multiple=True, type=click.Choice(["png", "svg"]),
              help="file format, repeatable (default: png and svg)")
@overwrite_option("a figure file")
def plot(results_dir: Path, fig_dir: Path | None, formats: tuple[str, ...], overwrite: bool) -> None:
    """Draw the figures of DIR, a run, comparison or sweep directory.

    Traceability curves (and, for runs on common random numbers, their paired differences from the
    first scenario), outcome areas, final outcomes, the pool mixers' anonymity sets, where the value
    went (a flow from the theft through the venues to the final states), and for a sweep the
    sensitivity of the final outcomes to the swept parameter.
    """
    from .runs.lock import OutputError
    from .views.plots import RunDirError, write_figures

    try:
        written = write_figures(results_dir, fig_dir, formats or ("png", "svg"), overwrite=overwrite)
    except (RunDirError, OutputError) as exc:
        _results_dir_error(exc)
    except OSError as exc:
        err.print(f"error: {_os_error(exc)}", markup=False, soft_wrap=True)
        sys.exit(2)
    for path in written:
        click.echo(f"wrote {path}")


@main.command()
@click.argument("results_dir", metavar="DIR", type=_NonEmptyPath(path_type=Path))
@overwrite_option("DIR/report.html")
def report(results_dir: Path, overwrite: bool) -> None:
    """Write DIR/report.html: one self-contained page with the table, the figures and the scenarios.

    DIR is a run, comparison or sweep directory (a sweep's page opens with its sensitivity figure and
    a table of its points); a run made with --at shows the shares at those times too.
    """
    from .runs.lock import OutputError
    from .views.plots import RunDirError
    from .views.report import write_report

    try:
        path = write_report(results_dir, overwrite=overwrite)
    except (RunDirError, OutputError) as exc:
        _results_dir_error(exc)
    except OSError as exc:
        err.print(f"error: {_os_error(exc)}", markup=False, soft_wrap=True)
        sys.exit(2)
    click.echo(f"wrote {path}")


# --- calibrate, backtest -------------------------------------------------------------------------------


ACCEPT_HELP = "ABC: accept this best fraction of the candidates, or all within distance 1 if more"
RESUME_HELP = "reuse the (candidate, incident) cells kept in --out by an interrupted run of the same command"
CALIBRATE_RESUME_HELP = ("reuse the candidates (with --joint: the (candidate, incident) cells) kept in --out by an "
                         "interrupted run of the same command, and run only the rest (--overwrite: start again)")


@main.command()
@click.argument("scenario_file", type=click.Path(dir_okay=False), required=False)
@click.option("--targets", "targets_file", type=click.Path(dir_okay=False),
              help="YAML file: the parameters to fit (path, low, high, scale) and the facts (targets)")
@click.option("--joint", "joint_file", type=click.Path(dir_okay=False), default=None,
              help="fit the shared parameters of this joint file to every fact of its incidents instead "
                   "(no SCENARIO_FILE or --targets)")
@runs_option(5, "replications per candidate (the same seeds for every candidate)", most=100_000)
@seed_option()
@click.option("--samples", "-k", default=20, show_default=True, type=click.IntRange(1, 100_000),
              help="candidates (Latin hypercube over the parameter box)")
@click.option("--accept", default=0.2, show_default=True, type=click.FloatRange(0, 1, min_open=True), help=ACCEPT_HELP)
@executor_options
@extends_option
@click.option("--resume", is_flag=True, help=CALIBRATE_RESUME_HELP)
@click.option("--out", "out_dir", type=_NonEmptyPath(file_okay=False), default=None,
              help="output directory (default: out/<scenario name>-calibration, out/<joint name>-joint)")
@overwrite_option("a file of the same name in --out (calibration.json, candidates.csv, ...)")
@engine_option
def calibrate(scenario_file: str | None, targets_file: str | None, joint_file: str | None, runs: int, seed: int | None,
              samples: int, accept: float, jobs: int, scheduler: str | None, resume: bool, out_dir: str | None,
              overwrite: bool, engine: str) -> None:
    """Fit SCENARIO_FILE's uncertain parameters to the public facts in --targets (or, with --joint,
    the parameters several incidents share to all their facts).

    Latin-hypercube candidates with common random numbers, distance = RMS of (model median - fact)
    / tolerance, then ABC rejection. Writes OUT/calibration.json, OUT/candidates.csv and
    OUT/calibrated.yaml (the scenario with the best values; `launderflow run` it). With --joint:
    OUT/joint.json, candidates.csv, accepted.csv, cube.csv and behaviour.calibrated.yaml.
    """
    if joint_file is not None:
        if scenario_file or targets_file:
            raise click.UsageError("--joint takes no SCENARIO_FILE or --targets (the joint file names them)")
        _calibrate_joint(joint_file, runs, seed, samples, accept, jobs, scheduler, resume, out_dir, overwrite, engine)
        return
    for given, what in ((scenario_file, "SCENARIO_FILE"), (targets_file, "--targets")):
        if given is not None and not str(given).strip():
            raise click.UsageError(f"{what}: '': empty path (give the path of a YAML file)")
    if not scenario_file or not targets_file:
        raise click.UsageError("calibrate needs SCENARIO_FILE and --targets FILE (or --joint FILE)")
    from .analysis.calibrate import OUTPUT_FILES, FinishedCandidates, load_targets, tables, write_outputs
    from .analysis.calibrate import calibrate as run_calibration
    from .runs.lock import locked
    from .runs.outputs import check_files, refuse_linked

    with _errors():
        spec, base = load_targets(targets_file, scenario_file)
    target = Path(out_dir) if out_dir else Path("out") / f"{base.name}-calibration"
    kept = FinishedCandidates(target, base, spec, base.seed if seed is None else seed, runs, samples)
    with _errors(), locked(target):  # held from the start: a second writer is refused before the work
        check_files(target, OUTPUT_FILES, overwrite)  # and a file of the user's too
        refuse_linked(target, kept.dir.name)  # (the kept candidates: never written through a link)
        if kept.count() and resume:
            err.print(f"{kept.dir}: {kept.count()} of {samples} candidates finished earlier are used as they are",
                      markup=False, soft_wrap=True)
        elif kept.count() and overwrite:
            kept.clear()
        elif kept.count():  # as `run` does with an unfinished run
            err.print(f"{target} holds an unfinished calibration of these targets ({kept.count()} of {samples} "
                      f"candidates kept in {kept.dir}): add --resume to finish it, or --overwrite to start again",
                      markup=False, soft_wrap=True)
            sys.exit(2)
        try:
            with Bars() as bars:
                bars.start(f"calibrate {base.name}", samples * runs, 0)
                cal = run_calibration(scenario_file, targets_file, runs, seed=seed, samples=samples, accept=accept,
                                      jobs=jobs, scheduler=scheduler, on_replication=bars.advance, keep=target,
                                      resume=resume, engine=engine)
        except KeyboardInterrupt:
            err.print(f"interrupted: {kept.count()} of {samples} candidates finished and are kept in {kept.dir}; "
                      "the same command with --resume runs the rest", markup=False, soft_wrap=True)
            sys.exit(130)
        _print_wide(*tables(cal))
        failures = cal.report()["failures"]
        if failures:
            err.print(f"{len(failures)} replication(s) or candidate(s) failed; those candidates were discarded "
                      f"(see {target / 'calibration.json'})", markup=False, soft_wrap=True)
        try:
            written = write_outputs(cal, target, overwrite)
        except OSError as exc:
            err.print(f"error: cannot write {target}: {exc}", markup=False, soft_wrap=True)
            sys.exit(1)
        kept.clear()
    for path in written:
        out.print(f"wrote {path}", markup=False)
    if cal.best is None:
        err.print("every candidate failed: no calibrated scenario", markup=False)
        sys.exit(1)


def _simulate_cube(label: str, total: int, out_dir: Path | None, work: Callable[..., Any]) -> Any:
    """Run ``work(on_replication=..., cells=...)`` under a progress bar; Ctrl-C exits 130 (the
    finished cells stay in OUT/cells for --resume)."""
    try:
        with Bars() as bars:
            bars.start(label, total, 0)
            return work(on_replication=bars.advance, cells=None if out_dir is None else out_dir / "cells")
    except KeyboardInterrupt:
        kept = f"; the finished cells are kept in {out_dir / 'cells'}: the same command with --resume runs the rest" \
            if out_dir is not None else ""
        err.print(f"interrupted: nothing was scored{kept}", markup=False, soft_wrap=True)
        sys.exit(130)


def _joint_warnings(joint: Any) -> None:
    for problem in joint.warnings:
        err.print(str(problem), markup=False, soft_wrap=True)


def _cube_failures(failures: list[dict[str, Any]], where: Path | None) -> None:
    if failures:
        err.print(f"{len(failures)} replication(s) or candidate scenario(s) failed; those candidates were discarded"
                  + (f" (see {where})" if where else ""), markup=False, soft_wrap=True)


def _calibrate_joint(joint_file: str, runs: int, seed: int | None, samples: int, accept: float, jobs: int,
                     scheduler: str | None, resume: bool, out_dir: str | None, overwrite: bool, engine: str) -> None:
    from .analysis.crossval import JOINT_FILES, calibrate_joint, write_joint_outputs
    from .analysis.joint import load_joint
    from .runs.lock import locked
    from .runs.outputs import check_files, refuse_linked
    from .views.validation import joint_tables

    with _errors():
        joint = load_joint(joint_file)
    _joint_warnings(joint)
    target = Path(out_dir) if out_dir else Path("out") / f"{joint.name}-joint"
    with _errors(), locked(target):
        check_files(target, JOINT_FILES, overwrite)  # before the work: the user's files, links
        refuse_linked(target, "cells")  # (the kept cells: never written through a link)
        cal = _simulate_cube(f"calibrate {joint.name}", samples * runs * len(joint.incidents), target,
                             lambda **kw: calibrate_joint(joint, runs, samples, seed, accept, jobs, scheduler,
                                                          resume=resume, engine=engine, **kw))
        _print_wide(*joint_tables(cal.report()))
        _cube_failures(cal.cube.failures, target / "joint.json")
        written = write_joint_outputs(cal, target, overwrite)
    for path in written:
        out.print(f"wrote {path}", markup=False)
    if cal.best is None:
        err.print("every candidate failed: no calibrated behaviour", markup=False)
        sys.exit(1)


@main.command()
@click.argument("joint_file", type=click.Path(dir_okay=False))
@click.option("--samples", "-k", default=24, show_default=True, type=click.IntRange(1, 100_000),
              help="candidates (Latin hypercube over the shared parameters' box), simulated once for every fold")
@runs_option(3, "replications per candidate and incident (the same seeds for every candidate)", most=100_000)
@seed_option("design seed (default: the joint file's, else the first incident's)")
@click.option("--accept", default=0.2, show_default=True, type=click.FloatRange(0, 1, min_open=True), help=ACCEPT_HELP)
@executor_options
@extends_option
@click.option("--json", "as_json", is_flag=True, help="print everything as JSON instead of tables")
@click.option("--resume", is_flag=True, help=RESUME_HELP)
@click.option("--out", "out_dir", type=_NonEmptyPath(file_okay=False), default=None,
              help="also write OUT/crossval.json and OUT/cube.csv, and keep finished cells for --resume")
@overwrite_option("crossval.json or cube.csv in --out")
@engine_option
def crossval(joint_file: str, samples: int, runs: int, seed: int | None, accept: float, jobs: int,
             scheduler: str | None, as_json: bool, resume: bool, out_dir: str | None, overwrite: bool, engine: str) -> None:
    """Leave-one-incident-out validation of the parameters JOINT_FILE's incidents share.

    For each incident: fit the shared parameters (ABC rejection) on the other incidents' facts only,
    then predict this one's facts from the accepted candidates' pooled runs (median, 5-95 %, z,
    within tolerance). One candidate cube is simulated and re-scored per fold. Exit code 0 when
    every check of every fold is within tolerance, 1 otherwise.
    """
    from .analysis.crossval import crossval as run_crossval
    from .analysis.crossval import CROSSVAL_FILES, write_crossval_outputs
    from .analysis.joint import load_joint
    from .runs.lock import locked
    from .runs.outputs import check_files, refuse_linked
    from .views.validation import crossval_tables

    if resume and out_dir is None:
        raise click.UsageError("--resume needs --out (where the cells were kept)")
    with _errors():
        joint = load_joint(joint_file, least=2)
    _joint_warnings(joint)
    target = Path(out_dir) if out_dir else None
    with _errors(), (locked(target) if target is not None else nullcontext()):
        if target is not None:
            check_files(target, CROSSVAL_FILES, overwrite)  # before the work: the user's files, links
            refuse_linked(target, "cells")  # (the kept cells: never written through a link)
        cv = _simulate_cube(f"crossval {joint.name}", samples * runs * len(joint.incidents), target,
                            lambda **kw: run_crossval(joint, runs, samples, seed, accept, jobs, scheduler,
                                                      resume=resume, engine=engine, **kw))
        report = cv.report()
        written = write_crossval_outputs(cv, report, target, overwrite) if target is not None else []
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        _print_wide(*crossval_tables(report))
        for path in written:
            out.print(f"wrote {path}", markup=False)
    _cube_failures(cv.cube.failures, target / "crossval.json" if target else None)
    if not report["passed"]:
        sys.exit(1)


def _print_wide(*tables: Any, measure: Any = None) -> None:
    """Print each table on stdout; piped, a table wider than the terminal is printed whole, not squeezed
    (``measure``: the part whose width counts, when the renderable is a group)."""
    from rich.measure import Measurement

    for table in tables:
        needed = Measurement.get(out, out.options.update(width=100_000, max_width=100_000),
                                 table if measure is None else measure(table)).maximum
        (Console(highlight=False, markup=False, emoji=False, width=needed) if needed > out.width and not out.is_terminal
         else out).print(table)


@main.command()
@click.argument("scenario_file", type=click.Path(dir_okay=False))
@click.option("--targets", "targets_file", required=True, type=click.Path(dir_okay=False),
              help="YAML file of facts (the calibrate targets format; its parameters are not used)")
@runs_option(10, "replications", most=100_000)
@seed_option()
@executor_options
@extends_option
@click.option("--json", "as_json", is_flag=True, help="print the verdicts as JSON instead of a table")
@click.option("--out", "out_file", type=_NonEmptyPath(dir_okay=False), default=None, help="also write the JSON to this file")
@overwrite_option("the --out file")
def backtest(scenario_file: str, targets_file: str, runs: int, seed: int | None, jobs: int, scheduler: str | None,
             as_json: bool, out_file: str | None, overwrite: bool) -> None:
    """Score SCENARIO_FILE against the facts in --targets, without fitting anything.

    Per fact: the model's median and 5-95 % over the runs, the fact, z = (model - fact) / tolerance
    and whether |z| <= 1. Exit code 0 when every fact is within tolerance, 1 otherwise.
    """
    from contextlib import nullcontext

    from .analysis.backtest import backtest as run_backtest
    from .analysis.targets import load_targets
    from .runs.lock import file_lock_name, locked
    from .runs.outputs import check_files, write_files
    from .views.tables import backtest_table

    with _errors():  # the facts and the scenario are checked before the bar is drawn
        load_targets(targets_file, scenario_file, need_parameters=False)
    out = Path(out_file) if out_file else None
    if out is not None:
        problem = unwritable_file(out)
        if problem:
            err.print(f"error: cannot write {out_file}: {problem}", markup=False, soft_wrap=True)
            sys.exit(2)
    # the --out file's own writer lock, held from the start (a second backtest writing it is refused
    # before the work); backtests writing other files in the same folder go on
    with _errors(), (locked(out.parent, name=file_lock_name(out.name)) if out else nullcontext()):
        if out is not None:
            check_files(out.parent, [out.name], overwrite)
        try:
            with Bars() as bars:
                bars.start(f"backtest {Path(scenario_file).stem}", runs, 0)
                result = run_backtest(scenario_file, targets_file, runs, seed=seed, jobs=jobs, scheduler=scheduler,
                                      on_replication=bars.advance)
        except KeyboardInterrupt:
            err.print("interrupted: nothing was scored", markup=False)
            sys.exit(130)
        report = result.report()
        text = json.dumps(report, indent=2)
        if as_json:
            click.echo(text)
        else:
            _print_wide(backtest_table(report), measure=lambda group: group.renderables[1])
        if out is not None:
            try:
                write_files(out.parent, {out.name: text + "\n"}, overwrite)
            except OSError as exc:  # (it could be written when the backtest started)
                err.print(f"error: cannot write {out_file}: {exc.strerror or exc}", markup=False, soft_wrap=True)
                sys.exit(2)
    for failure in result.failures:
        err.print(f"replication {failure.index} failed ({failure.stage}): {failure.error}", markup=False, soft_wrap=True)
    if not result.passed:
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
