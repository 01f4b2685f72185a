"""The ``launderflow`` command line: thin adapters over the library.

Results go to stdout (tables, ``--json``); progress bars and errors go to stderr. A bad scenario
prints ``file:line: field: problem (allowed)`` lines and exits with code 2, never a traceback.
"""

from __future__ import annotations

import json
import sys
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


def _parse_sets(values: tuple[str, ...]) -> dict[str, Any]:
    """``--set clock.horizon=30d`` pairs; values are read as YAML scalars (numbers, true/false)."""
    overrides = {}
    for item in values:
        if "=" not in item:
            raise click.BadParameter(f"{item!r} is not FIELD=VALUE (e.g. clock.horizon=30d)", param_hint="--set")
        key, raw = item.split("=", 1)
        overrides[key.strip()] = parse_value(raw) if raw.strip() else raw
    return overrides


def _hold_output(*dirs: Path) -> None:
    """Hold the writer lock of these output directories until the command ends; exit 2 if one cannot
    be written or another launderflow writes into it (see launderflow.runs.lock)."""
    from .runs.lock import OutputError, acquire, release

    ctx = click.get_current_context()
    for directory in dirs:
        try:
            root = acquire(directory)
        except OutputError as exc:
            err.print(f"error: {exc}", markup=False, soft_wrap=True)
            sys.exit(2)
        ctx.call_on_close(lambda root=root: release(root))


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


def _extends_option(command: Any) -> Any:
    """``--allow-extends-outside``: let ``extends`` name scenario files outside the scenario's directory
    and the current directory (refused by default, see launderflow.scenario.loader)."""
    from .scenario.loader import allow_extends_outside

    def remember(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
        token = allow_extends_outside.set(value)
        ctx.call_on_close(lambda: allow_extends_outside.reset(token))

    return click.option("--allow-extends-outside", is_flag=True, expose_value=False, is_eager=True, callback=remember,
                        help="let extends: name scenario files outside the scenario's directory and the current one")(command)


def _scheduler_address(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """--scheduler is checked at once: a malformed address is a usage error (exit 2), not a wait."""
    from .runs.executors import check_scheduler_address

    if value is None:
        return None
    try:
        return check_scheduler_address(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _scheduler_timeout_option(command: Any) -> Any:
    """``--scheduler-timeout``: how long to wait for a dask scheduler to connect and answer."""
    from .runs.executors import DEFAULT_SCHEDULER_TIMEOUT, scheduler_timeout

    def remember(ctx: click.Context, _param: click.Parameter, value: float) -> None:
        token = scheduler_timeout.set(value)
        ctx.call_on_close(lambda: scheduler_timeout.reset(token))

    return click.option("--scheduler-timeout", type=click.FloatRange(0, 3600, min_open=True), default=DEFAULT_SCHEDULER_TIMEOUT,
                        show_default=True, metavar="SECONDS", expose_value=False, callback=remember,
                        help="give up on --scheduler if it has not answered within this time")(command)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="launderflow")
def main() -> None:
    """Simulate how stolen crypto is laundered and how policy stops it."""


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@_extends_option
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


@main.command()
@click.argument("scenario_file", type=click.Path(dir_okay=False))
@_extends_option
@_scheduler_timeout_option
@click.option("--runs", "-n", default=1, show_default=True, type=click.IntRange(1, 1_000_000), help="replications")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=None, help="master seed (default: the scenario's)")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="output directory (default: out/<scenario name>)")
@click.option("--keep-ledgers", is_flag=True, help="write every replication's ledger (always on with --runs 1)")
@click.option("--jobs", "-j", default=1, show_default=True, type=click.IntRange(1, 512), help="local worker processes")
@click.option("--scheduler", metavar="tcp://HOST:PORT", default=None, callback=_scheduler_address,
              help="run the replications on this dask.distributed scheduler's workers")
@click.option("--resume", is_flag=True, help="continue the run stored in --out: run only its missing replications")
@click.option("--overwrite", is_flag=True, help="discard whatever run --out holds and start afresh")
@click.option("--set", "sets", multiple=True, metavar="FIELD=VALUE", help="override a scenario field (repeatable)")
@click.option("--at", "at", default=None, metavar="TIMES",
              help="also report traced/dark/frozen/seized/cashed-out shares at these times after the theft, e.g. 11d,60d")
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON instead of a table")
def run(scenario_file: str, runs: int, seed: int | None, out_dir: str | None, keep_ledgers: bool, jobs: int,
        scheduler: str | None, resume: bool, overwrite: bool, sets: tuple[str, ...], at: str | None,
        as_json: bool) -> None:
    """Run SCENARIO_FILE for --runs replications and write the summary and timeline (and the
    ledger with --runs 1 or --keep-ledgers).

    Every replication is stored in OUT/parts/ as soon as it finishes; after an interruption,
    the same command with --resume runs only the missing ones.
    """
    if scheduler and jobs != 1:
        raise click.UsageError("--jobs and --scheduler exclude each other (the cluster's workers do the work)")
    if resume and overwrite:
        raise click.UsageError("--resume and --overwrite exclude each other")
    times = _parse_at(at)
    scenario = load_or_exit(scenario_file, _parse_sets(sets))
    seed = scenario.seed if seed is None else seed
    target = Path(out_dir) if out_dir else Path("out") / scenario.name
    summary, written, failed = run_into(scenario, target, seed, runs, keep_ledgers or runs == 1, jobs, scheduler,
                                        resume, overwrite)
    if summary is not None:
        if as_json:
            if times:
                from .analysis.compare import compare

                summary = {**summary, "at": [r for r in compare([(scenario.name, target)], times) if "_at_" in r["metric"]]}
            click.echo(json.dumps(summary, indent=2))
        else:
            out.print(summary_table(summary))
            if times:
                from .analysis.compare import compare

                rows = [r for r in compare([(scenario.name, target)], times) if "_at_" in r["metric"]]
                out.print(comparison_table(rows, title=f"{scenario.name}: shares at given times after the theft"))
            for path in written:
                out.print(f"wrote {path}", markup=False)
    if failed:
        sys.exit(1)


def _parse_at(text: str | None) -> list[float]:
    from .analysis.compare import parse_times

    try:
        return parse_times(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--at") from None


@main.command()
@click.argument("scenario_files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@_extends_option
@_scheduler_timeout_option
@click.option("--runs", "-n", default=20, show_default=True, type=click.IntRange(1, 1_000_000), help="replications per scenario")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=None,
              help="master seed shared by every scenario (default: the first scenario's)")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="out/compare", show_default=True)
@click.option("--at", "at", default=None, metavar="TIMES", help="also compare shares at these times, e.g. 11d,60d")
@click.option("--jobs", "-j", default=1, show_default=True, type=click.IntRange(1, 512), help="local worker processes")
@click.option("--scheduler", metavar="tcp://HOST:PORT", default=None, callback=_scheduler_address, help="run on this dask.distributed scheduler")
@click.option("--resume", is_flag=True, help="continue stored runs (run only missing replications)")
@click.option("--overwrite", is_flag=True, help="discard stored runs in --out")
@click.option("--set", "sets", multiple=True, metavar="FIELD=VALUE", help="override a field in every scenario")
def compare(scenario_files: tuple[str, ...], runs: int, seed: int | None, out_dir: str, at: str | None, jobs: int,
            scheduler: str | None, resume: bool, overwrite: bool, sets: tuple[str, ...]) -> None:
    """Run every SCENARIO_FILE on the same random streams and compare them with the first.

    Writes OUT/<scenario>/ (one run directory each) and OUT/comparison.{csv,parquet,md,json}.
    """
    from .analysis import compare as cmp

    if scheduler and jobs != 1:
        raise click.UsageError("--jobs and --scheduler exclude each other")
    if resume and overwrite:
        raise click.UsageError("--resume and --overwrite exclude each other")
    times = _parse_at(at)
    overrides = _parse_sets(sets)
    scenarios = [load_or_exit(path, overrides) for path in scenario_files]
    names = [sc.name for sc in scenarios]
    if len(set(names)) != len(names):
        raise click.UsageError(f"scenario names must differ (got {', '.join(names)})")
    seed = scenarios[0].seed if seed is None else seed
    target = Path(out_dir)
    _hold_output(target, *(target / name for name in names))
    failed_any = False
    for sc in scenarios:
        _, _, failed = run_into(sc, target / sc.name, seed, runs, False, jobs, scheduler, resume, overwrite)
        failed_any |= failed
    rows = cmp.compare([(name, target / name) for name in names], times)
    written = cmp.write(target, rows, names, {"seed": seed, "runs": runs, "at_hours": times})
    out.print(comparison_table(rows, title=f"{len(names)} scenarios, {runs} runs each, seed {seed} (common random numbers)"))
    for path in written:
        out.print(f"wrote {path}", markup=False)
    if failed_any:
        sys.exit(1)


@main.command()
@click.argument("scenario_file", type=click.Path(dir_okay=False))
@_extends_option
@_scheduler_timeout_option
@click.option("--set", "sets", multiple=True, required=True, metavar="FIELD=V1,V2,...",
              help="a parameter and the values to try (repeatable: the grid is every combination)")
@click.option("--runs", "-n", default=10, show_default=True, type=click.IntRange(1, 1_000_000), help="replications per grid point")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=None, help="master seed shared by every grid point")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="out/sweep", show_default=True)
@click.option("--jobs", "-j", default=1, show_default=True, type=click.IntRange(1, 512), help="local worker processes")
@click.option("--scheduler", metavar="tcp://HOST:PORT", default=None, callback=_scheduler_address, help="run on this dask.distributed scheduler")
@click.option("--resume", is_flag=True, help="continue stored runs")
@click.option("--overwrite", is_flag=True, help="discard stored runs in --out")
def sweep(scenario_file: str, sets: tuple[str, ...], runs: int, seed: int | None, out_dir: str, jobs: int,
          scheduler: str | None, resume: bool, overwrite: bool) -> None:
    """Run SCENARIO_FILE over a grid of parameter values; one table and a sensitivity plot.

    Example: --set tracing.sharing.latency=1h,6h,24h --set venues.us_exchange.compliance=0.5,0.9
    """
    import itertools

    from .analysis import compare as cmp
    from .views.plots import write_sensitivity

    if scheduler and jobs != 1:
        raise click.UsageError("--jobs and --scheduler exclude each other")
    if resume and overwrite:
        raise click.UsageError("--resume and --overwrite exclude each other")
    axes: list[tuple[str, list[Any]]] = []
    for item in sets:
        if "=" not in item:
            raise click.BadParameter(f"{item!r} is not FIELD=V1,V2,...", param_hint="--set")
        key, raw = item.split("=", 1)
        values = [parse_value(v.strip()) for v in raw.split(",") if v.strip()]
        if not values:
            raise click.BadParameter(f"{key}: no values", param_hint="--set")
        axes.append((key.strip(), values))
    grid = list(itertools.product(*[values for _, values in axes]))
    points = []
    for combo in grid:
        overrides = {key: value for (key, _), value in zip(axes, combo)}
        scenario = load_or_exit(scenario_file, overrides)
        label = ", ".join(f"{key.split('.')[-1]}={value}" for key, value in overrides.items())
        points.append((label, scenario, overrides))
    seed = points[0][1].seed if seed is None else seed
    target = Path(out_dir)
    _hold_output(target, *(target / f"point_{k:03d}" for k in range(len(points))))
    failed_any = False
    runs_dirs = []
    for k, (label, scenario, overrides) in enumerate(points):
        run_dir = target / f"point_{k:03d}"
        _, _, failed = run_into(scenario, run_dir, seed, runs, False, jobs, scheduler, resume, overwrite, label=label)
        failed_any |= failed
        runs_dirs.append((label, run_dir))
    rows = cmp.compare(runs_dirs)
    params = [{"point": k, "label": label, **{key: (v if isinstance(v, (int, float, str, bool)) else str(v))
                                            for key, v in overrides.items()}}
              for k, (label, _, overrides) in enumerate(points)]
    written = cmp.write(target, rows, [label for label, _ in runs_dirs],
                        {"seed": seed, "runs": runs, "parameters": [key for key, _ in axes], "points": params})
    written += write_sensitivity(target, rows, axes, [label for label, _ in runs_dirs])
    out.print(comparison_table(rows, title=f"sweep of {' x '.join(k for k, _ in axes)}: {len(points)} points, "
                                           f"{runs} runs each, seed {seed}"))
    for path in written:
        out.print(f"wrote {path}", markup=False)
    if failed_any:
        sys.exit(1)


def run_into(scenario: Scenario, target: Path, seed: int, runs: int, keep_ledgers: bool, jobs: int = 1,
             scheduler: str | None = None, resume: bool = False, overwrite: bool = False,
             label: str | None = None) -> tuple[dict[str, Any] | None, list[Path], bool]:
    """Run (or resume) a scenario into a run directory with a progress bar; exit on store errors.

    Returns the summary, the files written and whether any replication failed.
    """
    import time
    from contextlib import ExitStack

    from .runs.executors import open_executor
    from .runs.experiment import run_experiment
    from .runs.store import RunStore, StoreError

    label = label or scenario.name
    _hold_output(target)
    try:
        store = RunStore.open(target, scenario, seed, runs, keep_ledgers, resume=resume, overwrite=overwrite)
    except StoreError as exc:
        err.print(str(exc), markup=False, soft_wrap=True)
        sys.exit(2)
    for note in store.notes:
        err.print(f"{target}: {note}", markup=False, soft_wrap=True)
    before = store.count()
    if resume and before:
        err.print(f"{target}: {before} of {runs} replications already stored", markup=False, soft_wrap=True)
    todo = len(store.missing())
    try:
        with ExitStack() as stack:
            executor = stack.enter_context(open_executor(jobs, scheduler)) if todo else None
            progress = stack.enter_context(_progress()) if todo else None
            bar = progress.add_task(label, total=runs, completed=before, rate="") if progress else None
            start, finished, failed = time.perf_counter(), [0], [0]

            def tick() -> None:  # the runner's completion callback: done or failed, either way one less to go
                finished[0] += 1
                elapsed = time.perf_counter() - start
                progress.update(bar, advance=1, rate=f"{finished[0] / elapsed:.2f} runs/s" if elapsed > 0 else "",
                                description=label + (f" ({failed[0]} failed)" if failed[0] else ""))

            def on_error(failure: Any) -> None:
                failed[0] += 1
                progress.console.print(f"replication {failure.index} failed ({failure.stage}): {failure.error}",
                                       markup=False, soft_wrap=True)
                tick()

            report = run_experiment(scenario, store, jobs=jobs, executor=executor,
                                    on_done=lambda index, rep: tick(), on_error=on_error)
    except KeyboardInterrupt:
        err.print(f"interrupted: {store.count()} of {runs} replications are stored in {target / 'parts'}; "
                  f"the same command with --resume runs the rest", markup=False, soft_wrap=True)
        sys.exit(130)
    except StoreError as exc:  # a part damaged while the run went on
        err.print(str(exc), markup=False, soft_wrap=True)
        sys.exit(2)
    except OSError as exc:  # e.g. the dask scheduler cannot be reached
        err.print(f"error: {exc}", markup=False, soft_wrap=True)
        sys.exit(1)
    if not report.ran and not report.failures and not report.assembled:
        err.print(f"{target}: all {runs} replications were already stored; nothing to run", markup=False, soft_wrap=True)
    failures = store.failures()
    if failures:
        err.print(f"{len(failures)} of {runs} replication(s) failed (see {target / 'failures.json'}); "
                  f"{'the files hold the other ' + str(store.count()) if store.count() else 'nothing was written'}; "
                  f"--resume retries the failed ones", markup=False, soft_wrap=True)
    return report.summary, report.written, bool(failures)


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
@click.argument("sql")
@click.option("--csv", "as_csv", is_flag=True, help="print CSV instead of a table")
@click.option("--json", "as_json", is_flag=True, help="print a JSON list of rows instead of a table")
@click.option("--timeout", type=click.FloatRange(0, None), default=300.0, show_default=True, metavar="SECONDS",
              help="stop the query after this long (0: no limit)")
@click.option("--unsafe", is_flag=True,
              help="plain DuckDB: SQL may read and write any file, attach databases and load extensions")
def query(run_dir: str, sql: str, as_csv: bool, as_json: bool, timeout: float, unsafe: bool) -> None:
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

    if as_csv and as_json:
        raise click.UsageError("--csv and --json exclude each other")
    try:
        con, sources = connect(Path(run_dir), unsafe=unsafe)
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
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--json", "as_json", is_flag=True, help="print the scores as JSON")
def taint(run_dir: str, as_json: bool) -> None:
    """Score poison / haircut / FIFO taint and the live tracer against the ground truth of RUN_DIR's ledger.

    Per replication: the value each marks as stolen in what every address holds at the horizon,
    how much of that is innocent and how much stolen value it leaves unmarked, as shares of the
    value stolen (each dollar counted once), and precision and recall over the transfers. Writes
    RUN_DIR/taint.json (the same in USD, and the sums over transfers).
    """
    from .runs.results import read_ledgers
    from .analysis.taint_score import score_ledger

    path = Path(run_dir) / "ledger.parquet"
    if not path.is_file():
        err.print(f"{path}: no ledger (run with --runs 1 or --keep-ledgers)", markup=False)
        sys.exit(2)
    scores = {str(rep): score_ledger(ledger) for rep, ledger in read_ledgers(path).items()}
    (Path(run_dir) / "taint.json").write_text(json.dumps(scores, indent=2) + "\n", encoding="utf-8")
    if as_json:
        click.echo(json.dumps(scores, indent=2))
        return
    from .views.tables import taint_table

    for rep, by_policy in scores.items():
        out.print(taint_table(rep, by_policy))
    out.print(f"wrote {Path(run_dir) / 'taint.json'}", markup=False)


def _results_dir_error(exc: Exception) -> None:
    """A DIR that is not a run or comparison directory: one line on stderr, exit code 2."""
    err.print(f"error: {exc}", markup=False, soft_wrap=True)
    sys.exit(2)


@main.command()
@click.argument("results_dir", metavar="DIR", type=click.Path(path_type=Path))
@click.option("--out", "fig_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="where to write the figures (default: DIR/figures)")
@click.option("--format", "formats", multiple=True, type=click.Choice(["png", "svg"]),
              help="file format, repeatable (default: png and svg)")
def plot(results_dir: Path, fig_dir: Path | None, formats: tuple[str, ...]) -> None:
    """Draw the figures of DIR, a run directory or a comparison directory of runs.

    Traceability curves (and, for runs on common random numbers, their paired differences from the
    first scenario), outcome areas, final outcomes and the pool mixers' anonymity sets.
    """
    from .views.plots import RunDirError, write_figures

    try:
        written = write_figures(results_dir, fig_dir, formats or ("png", "svg"))
    except (RunDirError, OSError) as exc:
        _results_dir_error(exc)
    for path in written:
        click.echo(f"wrote {path}")


@main.command()
@click.argument("results_dir", metavar="DIR", type=click.Path(path_type=Path))
def report(results_dir: Path) -> None:
    """Write DIR/report.html: one self-contained page with the table, the figures and the scenarios."""
    from .views.plots import RunDirError
    from .views.report import write_report

    try:
        path = write_report(results_dir)
    except (RunDirError, OSError) as exc:
        _results_dir_error(exc)
    click.echo(f"wrote {path}")


@main.command()
@click.argument("scenario_file", type=click.Path(dir_okay=False))
@_extends_option
@_scheduler_timeout_option
@click.option("--targets", "targets_file", required=True, type=click.Path(dir_okay=False),
              help="YAML file: the parameters to fit (path, low, high, scale) and the facts (targets)")
@click.option("--runs", "-n", default=5, show_default=True, type=click.IntRange(1, 100_000),
              help="replications per candidate (the same seeds for every candidate)")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=None, help="master seed (default: the scenario's)")
@click.option("--samples", "-k", default=20, show_default=True, type=click.IntRange(1, 100_000),
              help="candidates (Latin hypercube over the parameter box)")
@click.option("--accept", default=0.2, show_default=True, type=click.FloatRange(0, 1, min_open=True),
              help="ABC: accept this best fraction of the candidates, or all within distance 1 if more")
@click.option("--jobs", "-j", default=1, show_default=True, type=click.IntRange(1, 512), help="local worker processes")
@click.option("--scheduler", metavar="tcp://HOST:PORT", default=None, callback=_scheduler_address,
              help="run the replications on this dask.distributed scheduler's workers")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="output directory (default: out/<scenario name>-calibration)")
def calibrate(scenario_file: str, targets_file: str, runs: int, seed: int | None, samples: int, accept: float,
              jobs: int, scheduler: str | None, out_dir: str | None) -> None:
    """Fit SCENARIO_FILE's uncertain parameters to the public facts in --targets.

    Latin-hypercube candidates with common random numbers, distance = RMS of (model median - fact)
    / tolerance, then ABC rejection. Writes OUT/calibration.json, OUT/candidates.csv and
    OUT/calibrated.yaml (the scenario with the best values; `launderflow run` it).
    """
    import time

    from .analysis.calibrate import calibrate as run_calibration
    from .analysis.calibrate import load_targets, tables, write_outputs

    if scheduler and jobs != 1:
        raise click.UsageError("--jobs and --scheduler exclude each other (the cluster's workers do the work)")
    try:
        _, base = load_targets(targets_file, scenario_file)
    except ScenarioError as exc:
        _fail(exc)
    target = Path(out_dir) if out_dir else Path("out") / f"{base.name}-calibration"
    _hold_output(target)
    total = samples * runs
    try:
        with _progress() as progress:
            bar = progress.add_task(f"calibrate {base.name}", total=total, rate="")
            start, finished = time.perf_counter(), [0]

            def tick() -> None:
                finished[0] += 1
                elapsed = time.perf_counter() - start
                progress.update(bar, advance=1, rate=f"{finished[0] / elapsed:.2f} runs/s" if elapsed > 0 else "")

            cal = run_calibration(scenario_file, targets_file, runs, seed=seed, samples=samples, accept=accept,
                                  jobs=jobs, scheduler=scheduler, on_replication=tick)
    except ScenarioError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        err.print("interrupted: nothing was written", markup=False)
        sys.exit(130)
    except OSError as exc:  # e.g. the dask scheduler cannot be reached
        err.print(f"error: {exc}", markup=False, soft_wrap=True)
        sys.exit(1)
    from rich.measure import Measurement

    for table in tables(cal):
        needed = Measurement.get(out, out.options.update(width=100_000, max_width=100_000), table).maximum
        (Console(highlight=False, markup=False, emoji=False, width=needed) if needed > out.width and not out.is_terminal else out).print(table)
    failures = cal.report()["failures"]
    if failures:
        err.print(f"{len(failures)} replication(s) or candidate(s) failed; those candidates were discarded "
                  f"(see {target / 'calibration.json'})", markup=False, soft_wrap=True)
    try:
        written = write_outputs(cal, target)
    except OSError as exc:
        err.print(f"error: cannot write {target}: {exc}", markup=False, soft_wrap=True)
        sys.exit(1)
    for path in written:
        out.print(f"wrote {path}", markup=False)
    if cal.best is None:
        err.print("every candidate failed: no calibrated scenario", markup=False)
        sys.exit(1)


@main.command()
@click.argument("scenario_file", type=click.Path(dir_okay=False))
@click.option("--targets", "targets_file", required=True, type=click.Path(dir_okay=False),
              help="YAML file of facts (the calibrate targets format; its parameters are not used)")
@click.option("--runs", "-n", default=10, show_default=True, type=click.IntRange(1, 100_000), help="replications")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=None, help="master seed (default: the scenario's)")
@click.option("--jobs", "-j", default=1, show_default=True, type=click.IntRange(1, 512), help="local worker processes")
@click.option("--scheduler", metavar="tcp://HOST:PORT", default=None,
              help="run the replications on this dask.distributed scheduler's workers")
@click.option("--json", "as_json", is_flag=True, help="print the verdicts as JSON instead of a table")
@click.option("--out", "out_file", type=click.Path(dir_okay=False), default=None, help="also write the JSON to this file")
def backtest(scenario_file: str, targets_file: str, runs: int, seed: int | None, jobs: int, scheduler: str | None,
             as_json: bool, out_file: str | None) -> None:
    """Score SCENARIO_FILE against the facts in --targets, without fitting anything.

    Per fact: the model's median and 5-95 % over the runs, the fact, z = (model - fact) / tolerance
    and whether |z| <= 1. Exit code 0 when every fact is within tolerance, 1 otherwise.
    """
    import time

    from .analysis.backtest import backtest as run_backtest
    from .views.tables import backtest_table

    if scheduler and jobs != 1:
        raise click.UsageError("--jobs and --scheduler exclude each other (the cluster's workers do the work)")
    try:
        with _progress() as progress:
            bar = progress.add_task(f"backtest {Path(scenario_file).stem}", total=runs, rate="")
            start, finished = time.perf_counter(), [0]

            def tick() -> None:
                finished[0] += 1
                elapsed = time.perf_counter() - start
                progress.update(bar, advance=1, rate=f"{finished[0] / elapsed:.2f} runs/s" if elapsed > 0 else "")

            result = run_backtest(scenario_file, targets_file, runs, seed=seed, jobs=jobs, scheduler=scheduler,
                                  on_replication=tick)
    except ScenarioError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        err.print("interrupted: nothing was scored", markup=False)
        sys.exit(130)
    except OSError as exc:  # e.g. the dask scheduler cannot be reached
        err.print(f"error: {exc}", markup=False, soft_wrap=True)
        sys.exit(1)
    report = result.report()
    text = json.dumps(report, indent=2)
    if out_file:
        Path(out_file).parent.mkdir(parents=True, exist_ok=True)
        Path(out_file).write_text(text + "\n", encoding="utf-8")
    if as_json:
        click.echo(text)
    else:
        from rich.measure import Measurement

        group = backtest_table(report)
        needed = Measurement.get(out, out.options.update(width=100_000, max_width=100_000), group.renderables[1]).maximum
        (Console(highlight=False, markup=False, emoji=False, width=needed) if needed > out.width and not out.is_terminal
         else out).print(group)
    for failure in result.failures:
        err.print(f"replication {failure.index} failed ({failure.stage}): {failure.error}", markup=False, soft_wrap=True)
    if not result.passed:
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
