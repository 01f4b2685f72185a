"""Where a replication's instructions go: numpy's compiled core, the Python interpreter, libc, ...

    python sim/instructions.py                                  # bybit_2025 over 3 days (~4 min)
    python sim/instructions.py --horizon 1d --scenario scenarios/baseline.yaml

Counts instructions with valgrind's callgrind (deterministic, unlike the clock on a shared machine)
twice, side by side: once building the world only, once building and running it. The difference is
the simulation. Each function's own instructions are grouped by the library they run in, which
bounds what any change to the Python code can gain: work inside numpy stays unless the model
makes fewer numpy calls. Needs valgrind (``apt-get install valgrind``).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The child: load the scenario, build the world, and (with a third argument) run it.
CHILD = """\
import sys
from launderflow.runs.replications import replication_rng
from launderflow.model.world import World
from launderflow.scenario.loader import load_scenario
world = World(load_scenario(sys.argv[1], {"clock.horizon": sys.argv[2]}), replication_rng(1, 0))
if len(sys.argv) > 3:
    world.run()
    print("transfers", len(world.ledger))
"""

_ROW = re.compile(r"^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.*)$")
_LIBRARY = re.compile(r"\[([^\]]*)\]\s*$")
_CPYTHON_SOURCE = re.compile(r"Python-3\.\d+")


def by_library(annotated: str) -> Counter[str]:
    """Instructions per library from ``callgrind_annotate`` output (functions' own costs)."""
    totals: Counter[str] = Counter()
    for line in annotated.splitlines():
        row = _ROW.match(line)
        if row is None or "PROGRAM TOTALS" in line:
            continue
        where = row.group(2)
        library = _LIBRARY.search(where)
        if library:
            name = Path(library.group(1)).name
        else:  # callgrind names no library for code inlined from CPython's headers: the interpreter's
            name = "libpython (inlined)" if _CPYTHON_SOURCE.search(where) else "(unknown)"
        totals[name] += int(row.group(1).replace(",", ""))
    return totals


LABELS: tuple[tuple[tuple[str, ...], str], ...] = (  # shared-object name prefixes -> a reader's name
    (("_multiarray_umath",), "numpy core"),
    (("libpython",), "Python interpreter"),
    (("libc.so",), "libc (malloc, memcpy, ...)"),
    (("_generator", "_pcg64", "_common", "_bounded"), "numpy random"),
)


def library_label(name: str) -> str:
    """A reader's name for a shared object."""
    return next((label for prefixes, label in LABELS if name.startswith(prefixes)), name)


def simulation_split(build_only: Counter[str], build_and_run: Counter[str]) -> list[tuple[str, int]]:
    """Instructions of the run alone, by reader's label, largest first."""
    split: Counter[str] = Counter()
    for name, count in build_and_run.items():
        split[library_label(name)] += count - build_only.get(name, 0)
    return [(label, count) for label, count in split.most_common() if count > 0]


def callgrind(args: list[str], out: Path) -> subprocess.Popen:
    return subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, "-c", CHILD, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def annotate(path: Path) -> str:
    return subprocess.run(["callgrind_annotate", "--threshold=100", str(path)], capture_output=True, text=True,
                          check=True).stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", type=Path, default=ROOT / "scenarios" / "bybit_2025.yaml")
    parser.add_argument("--horizon", default="3d", help="clock.horizon of the run (default 3d)")
    opts = parser.parse_args()

    from launderflow.scenario.loader import ScenarioError, load_scenario

    try:  # here, for the usual file:line message, rather than as a failure under valgrind
        load_scenario(opts.scenario, {"clock.horizon": opts.horizon}, override_label="--horizon {value}")
    except ScenarioError as exc:
        print(exc, file=sys.stderr)
        return 2
    if shutil.which("valgrind") is None or shutil.which("callgrind_annotate") is None:
        print("sim/instructions.py needs valgrind (e.g. apt-get install valgrind)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        built, ran = Path(tmp) / "build.out", Path(tmp) / "run.out"
        common = [str(opts.scenario), opts.horizon]
        jobs = [callgrind(common, built), callgrind([*common, "run"], ran)]  # side by side: 2 cores
        outputs = [job.communicate() for job in jobs]
        for job, (_, errors) in zip(jobs, outputs):
            if job.returncode:  # valgrind's and the child's messages, the last of them
                print("a run under callgrind failed:\n" + "\n".join(errors.splitlines()[-15:]), file=sys.stderr)
                return 1
        split = simulation_split(by_library(annotate(built)), by_library(annotate(ran)))
    transfers = int(outputs[1][0].split()[-1])
    total = sum(count for _, count in split)
    print(f"{opts.scenario.name}, horizon {opts.horizon}: {transfers:,} transfers, "
          f"{total / 1e9:.2f} G instructions simulating ({total / max(transfers, 1):,.0f} per transfer)")
    for label, count in split[:8]:
        print(f"  {count / 1e9:6.2f} G  {100 * count / total:5.1f} %  {label}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
