"""The bundled policy study: every policy scenario against the baseline, with figures and a report.

    python sim/policy_study.py                 # 10 runs per scenario, both cores
    python sim/policy_study.py --runs 40 --jobs 8 --out out/policy_study

It runs the scenarios with common random numbers (one master seed) through the Python API, writes
the comparison table (CSV, Parquet, Markdown), the figures (PNG, SVG) and a self-contained HTML
report, and copies the figures and table that README.md shows into docs/ — so the README's numbers
can be reproduced from scratch with this one command.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
POLICIES = [
    "baseline",
    "tornado_designation",
    "founders_and_frontends",
    "seizures",
    "hardened_defences",
    "information_sharing",
    "stablecoin_freezes",
    "combined",
]
AT = "11d,60d"  # the way victims publish updates ("11 days after the theft ...")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=20220323)
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "policy_study")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs", help="where README's figures and table go")
    args = parser.parse_args(argv)

    import launderflow as lf
    from launderflow.views.plots import write_figures
    from launderflow.views.report import write_report
    from launderflow.views.tables import comparison_table
    from rich.console import Console

    files = [ROOT / "scenarios" / f"{name}.yaml" for name in POLICIES]
    print(f"comparing {len(files)} scenarios, {args.runs} runs each, seed {args.seed}", file=sys.stderr)
    cmp = lf.compare(files, runs=args.runs, seed=args.seed, out=args.out, at=AT.split(","), jobs=args.jobs,
                     overwrite=True)
    failed = [name for name, run in cmp.runs.items() if not run.report.ok]
    Console(highlight=False).print(comparison_table(cmp.rows, title=f"{len(files)} scenarios, {args.runs} runs each, "
                                                                  f"seed {args.seed} (common random numbers)"))
    written = [*cmp.written, *write_figures(args.out), write_report(args.out)]
    for path in written:
        print(f"wrote {path}")
    if failed:
        print(f"replications failed in {', '.join(failed)}: see their failures.json", file=sys.stderr)
        return 1
    figures = args.docs / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    for png in sorted((args.out / "figures").glob("*.png")):
        shutil.copyfile(png, figures / png.name)
    shutil.copyfile(args.out / "comparison.md", args.docs / "policy_study.md")
    print(f"copied figures to {figures} and the table to {args.docs / 'policy_study.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
