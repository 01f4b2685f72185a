"""A run into a store: run the replications a run directory is missing, store each, assemble the files.

:func:`run_experiment` puts every finished replication into a :class:`~launderflow.runs.store.RunStore`
at once, records failures with their stage, and assembles the run's files. It is the one owner of
the run directory's contents: the store persists what it is given (parts, assembled files, their
checksums), :mod:`~launderflow.runs.results` makes the tables, and neither calls the other; :func:`run_scenario`
does the whole job for one scenario and a directory (writer lock, store, executor, progress), for
the CLI and the Python API alike.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from concurrent.futures import Executor
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..model.simulate import Replication
from ..scenario.schema import Scenario
from .executors import open_executor
from .lock import locked
from .replications import Failure, _describe, run_replications
from .results import part_tables, summarize, write_run
from .store import RunStore


@dataclass
class RunReport:
    """What :func:`run_experiment` did: which replications ran, which failed, and the files it wrote."""

    runs: int
    ran: list[int] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    summary: dict[str, Any] | None = None
    written: list[Path] = field(default_factory=list)
    assembled: bool = False
    out: Path | None = None  # the run directory (set by run_scenario)
    stored: int = 0  # replications the directory holds at the end (set by run_scenario)
    recorded_failures: int = 0  # entries of its failures.json at the end (set by run_scenario)

    @property
    def ok(self) -> bool:
        return not self.failures


def run_experiment(
    scenario: Scenario,
    store: RunStore,
    jobs: int = 1,
    executor: Executor | None = None,
    on_done: Callable[[int, Replication], None] | None = None,
    on_error: Callable[[Failure], None] | None = None,
    at: list[float] | None = None,
    engine: str = "reference",
) -> RunReport:
    """Run the replications ``store`` is missing, store each as it finishes, then assemble the files.

    A failed replication is recorded in the store (failures.json) and reported in the result; the
    others go on, and the files are assembled from those that succeeded. ``on_done``/``on_error``
    are called after the store has the replication (for progress bars). An exception from them
    (KeyboardInterrupt, say) stops the run; what is stored stays stored. ``at``: times (hours) whose
    shares summary.json keeps (``run --at``); a complete run stored with other times is re-assembled.
    """
    report = RunReport(runs=store.runs)
    store.prepare()
    todo = store.missing()

    def failed(failure: Failure) -> None:
        store.record_failure(failure.record())
        report.failures.append(failure)
        if on_error:
            on_error(failure)

    def done(index: int, rep: Replication) -> None:
        try:
            store.write_part(index, rep, part_tables(scenario, store.seed, index, rep))
        except Exception as exc:
            failed(Failure(index, store.seed, "store", _describe(exc), "".join(traceback.format_exception(exc))))
            return
        store.clear_failure(index)
        report.ran.append(index)
        if on_done:
            on_done(index, rep)

    if todo:
        for _ in run_replications(scenario, store.runs, store.seed, keep_ledgers=store.keep_ledgers, jobs=jobs,
                                  executor=executor, indices=todo, on_done=done, on_error=failed,
                                  key=f"{scenario.name}-{store.key}", engine=engine):
            pass
    stored_at = (store.summary() or {}).get("at_hours", []) if not todo and store.assembled() else None
    if todo or not store.assembled() or stored_at != [float(t) for t in at or []]:
        report.summary, report.written = assemble(scenario, store, at)
        report.assembled = True
    else:
        report.summary = store.summary()
    return report


def assemble(scenario: Scenario, store: RunStore, at: list[float] | None = None) -> tuple[dict[str, Any] | None, list[Path]]:
    """Build summary.json and the run's tables from every stored replication, in replication order,
    and put them in the store. Returns the summary and the files written (``(None, [])`` when nothing
    is stored). When some replications are missing, the summary says which (``failed_replications``).
    """
    order = store.stored()
    if not order:
        return None, store.assemble(None)
    reps = {i: store.load(i) for i in order}
    summary = summarize(scenario, store.seed, reps, at)
    missing = store.missing()
    if missing:
        summary["failed_replications"] = missing
    return summary, store.assemble(lambda tmp: write_run(tmp, scenario, store.seed, reps, summary))


# --- a scenario into a run directory, from start to finish -------------------------------------------


class Progress(Protocol):
    """What a caller sees of a run in progress (the CLI draws a bar and prints the notes with it).

    For each run directory, in this order: :meth:`note` for what opening it found, :meth:`start`
    if there are replications to run, :meth:`advance` or :meth:`failed` for each of them, and
    :meth:`finish` when its files are assembled (not after an exception). ``note`` and ``finish``
    do nothing unless overridden: subclass this class to inherit them.
    """

    def note(self, text: str) -> None:  # "DIR: 2 of 6 replications already stored", "DIR: parts/...: dropped"
        return None

    def start(self, label: str, total: int, done: int) -> None: ...
    def advance(self) -> None: ...  # one more replication stored
    def failed(self, failure: Failure) -> None: ...

    def finish(self, report: RunReport) -> None:
        return None


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`run_scenario`: still a KeyboardInterrupt, which also says what is stored."""

    def __init__(self, out: Path, runs: int, stored: int):
        super().__init__(out, runs, stored)
        self.out, self.runs, self.stored = out, runs, stored

    def __str__(self) -> str:
        return f"{self.stored} of {self.runs} replications are stored in {self.out / 'parts'}"


def run_scenario(scenario: Scenario, out: Path | str, seed: int, runs: int, keep_ledgers: bool = False,
                 jobs: int = 1, scheduler: str | None = None, resume: bool = False, overwrite: bool = False,
                 label: str | None = None, progress: Progress | None = None, at: list[float] | None = None,
                 engine: str = "reference") -> RunReport:
    """Run (or resume) ``scenario`` into the run directory ``out`` and assemble its files.

    Holds ``out``'s writer lock throughout (raises :class:`~launderflow.runs.lock.OutputError`, or
    its subclass :class:`~launderflow.runs.lock.LockedError` naming the other writer, before any
    work), opens the store (raises :class:`~launderflow.runs.store.StoreError` rather than mix or
    clobber runs), starts the executor only if there is work, and reports to ``progress``. Ctrl-C
    raises :class:`RunInterrupted`; what is stored stays stored (``resume=True`` continues it).
    """
    out = Path(out)
    with locked(out):
        store = RunStore.open(out, scenario, seed, runs, keep_ledgers, resume=resume, overwrite=overwrite)
        before = store.count()
        if progress is not None:
            for note in store.notes:
                progress.note(f"{out}: {note}")
            if resume and before:
                progress.note(f"{out}: {before} of {runs} replications already stored")
        todo = store.missing()
        try:
            with open_executor(jobs, scheduler, note=None if progress is None else progress.note) \
                    if todo else nullcontext() as executor:
                if progress is not None and todo:
                    progress.start(label or scenario.name, runs, before)
                report = run_experiment(scenario, store, jobs=jobs, executor=executor,
                                        on_done=None if progress is None else lambda index, rep: progress.advance(),
                                        on_error=None if progress is None else progress.failed, at=at, engine=engine)
        except KeyboardInterrupt as exc:
            raise RunInterrupted(out, runs, store.count()) from exc
        report.out, report.stored, report.recorded_failures = out, store.count(), len(store.failures())
        if progress is not None:
            if not report.ran and not report.failures and not report.assembled:
                progress.note(f"{out}: all {runs} replications were already stored; nothing to run")
            progress.finish(report)
        return report
