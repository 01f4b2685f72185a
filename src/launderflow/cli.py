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
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from . import __version__
from .scenario.loader import ScenarioError, load_scenario, parse_value
from .scenario.schema import Scenario

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


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


def load_or_exit(path: str, overrides: dict[str, Any] | None = None) -> Scenario:
    try:
        return load_scenario(path, overrides)
    except ScenarioError as exc:
        _fail(exc)
        raise  # unreachable


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="launderflow")
def main() -> None:
    """Simulate how stolen crypto is laundered and how policy stops it."""


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
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
        out.print(f"{path}: ok ({scenario.name}: {len(scenario.thefts)} theft(s), "
                  f"${scenario.stolen_usd:,.0f} stolen, {len(scenario.venues)} venue(s))", markup=False)
    if bad:
        sys.exit(2)


@main.command()
def schema() -> None:
    """Print the JSON Schema of scenario files (for editors and other tools)."""
    doc = Scenario.model_json_schema()
    doc["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    doc["title"] = "launderflow scenario"
    click.echo(json.dumps(doc, indent=2, sort_keys=True))


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
        console=err,
        transient=False,
    )


@main.command()
@click.argument("scenario_file", type=click.Path(dir_okay=False))
@click.option("--runs", "-n", default=1, show_default=True, type=click.IntRange(1, 1_000_000), help="replications")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=None, help="master seed (default: the scenario's)")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="output directory (default: out/<scenario name>)")
@click.option("--keep-ledgers", is_flag=True, help="write every replication's ledger (always on with --runs 1)")
@click.option("--jobs", "-j", default=1, show_default=True, type=click.IntRange(1, 512), help="local worker processes")
@click.option("--set", "sets", multiple=True, metavar="FIELD=VALUE", help="override a scenario field (repeatable)")
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON instead of a table")
def run(scenario_file: str, runs: int, seed: int | None, out_dir: str | None, keep_ledgers: bool, jobs: int,
        sets: tuple[str, ...], as_json: bool) -> None:
    """Run SCENARIO_FILE for --runs replications and write summary, timeline and ledger."""
    from .experiment import run_replications
    from .results import summarize, write_run

    scenario = load_or_exit(scenario_file, _parse_sets(sets))
    seed = scenario.seed if seed is None else seed
    target = Path(out_dir) if out_dir else Path("out") / scenario.name
    reps = {}
    with _progress() as progress:
        task = progress.add_task(scenario.name, total=runs, rate="")
        import time

        start = time.perf_counter()
        for index, rep in run_replications(scenario, runs, seed, keep_ledgers=keep_ledgers or runs == 1, jobs=jobs):
            reps[index] = rep
            elapsed = time.perf_counter() - start
            progress.update(task, advance=1, rate=f"{len(reps) / elapsed:.2f} runs/s" if elapsed > 0 else "")
    summary = summarize(scenario, seed, reps)
    written = write_run(target, scenario, seed, reps, summary)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        out.print(summary_table(summary))
        for path in written:
            out.print(f"wrote {path}", markup=False)


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--json", "as_json", is_flag=True, help="print the scores as JSON")
def taint(run_dir: str, as_json: bool) -> None:
    """Score poison / haircut / FIFO taint and the live tracer against the ground truth of RUN_DIR's ledger."""
    from .results import read_ledgers
    from .taint_score import score_ledger

    path = Path(run_dir) / "ledger.parquet"
    if not path.is_file():
        err.print(f"{path}: no ledger (run with --runs 1 or --keep-ledgers)", markup=False)
        sys.exit(2)
    scores = {str(rep): score_ledger(ledger) for rep, ledger in read_ledgers(path).items()}
    (Path(run_dir) / "taint.json").write_text(json.dumps(scores, indent=2) + "\n", encoding="utf-8")
    if as_json:
        click.echo(json.dumps(scores, indent=2))
        return
    for rep, by_policy in scores.items():
        table = Table(title=f"replication {rep}: taint policies vs ground truth (USD)")
        for col in ("policy", "precision", "recall", "innocent value tainted", "stolen value missed"):
            table.add_column(col, justify="left" if col == "policy" else "right")
        for policy, s in by_policy.items():
            table.add_row(policy, f"{s['precision']:.3f}", f"{s['recall']:.3f}",
                          f"${s['innocent_value_tainted']:,.0f}", f"${s['missed_value']:,.0f}")
        out.print(table)
    out.print(f"wrote {Path(run_dir) / 'taint.json'}", markup=False)


def summary_table(summary: dict[str, Any]) -> Table:
    runs = summary["runs"]
    table = Table(title=f"{summary['scenario']}: ${summary['stolen_usd']:,.0f} stolen, {runs} run(s), "
                        f"seed {summary['seed']}, horizon {summary['horizon_hours'] / 24:g} days")
    table.add_column("final state")
    table.add_column("median share", justify="right")
    table.add_column("5-95 % range", justify="right")
    table.add_column("median USD", justify="right")
    for state, s in summary["states"].items():
        table.add_row(state, f"{s['median_share']:.1%}", f"{s['p5_share']:.1%} - {s['p95_share']:.1%}",
                      f"${s['median_usd']:,.0f}")
    t = summary["time_to_50pct_cash_out_hours"]
    if t["median"] is not None:
        table.caption = (f"time to 50 % cashed out: median {t['median'] / 24:.1f} d "
                         f"(5-95 %: {t['p5'] / 24:.1f} - {t['p95'] / 24:.1f} d; never in {t['never']} run(s))")
    else:
        table.caption = "50 % was never cashed out within the horizon"
    return table


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
    """Draw the figures of DIR, a run directory or a comparison directory of runs."""
    from .plots import RunDirError, write_figures

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
    from .plots import RunDirError
    from .report import write_report

    try:
        path = write_report(results_dir)
    except (RunDirError, OSError) as exc:
        _results_dir_error(exc)
    click.echo(f"wrote {path}")


if __name__ == "__main__":  # pragma: no cover
    main()
