"""The bundled policy study: every policy scenario against the baseline, with figures and a report.

    python sim/policy_study.py                 # 10 runs per scenario, both cores
    python sim/policy_study.py --runs 40 --jobs 8 --out out/policy_study

It runs the scenarios with common random numbers (one master seed), writes the comparison table
(CSV, Parquet, Markdown), the figures (PNG, SVG) and a self-contained HTML report, and copies the
figures and table that README.md shows into docs/ — so the README's numbers can be reproduced
from scratch with this one command.
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

    from click.testing import CliRunner

    from launderflow.cli import main as cli

    files = [str(ROOT / "scenarios" / f"{name}.yaml") for name in POLICIES]
    steps = [
        ["compare", *files, "--runs", str(args.runs), "--seed", str(args.seed), "--jobs", str(args.jobs),
         "--out", str(args.out), "--at", AT, "--overwrite"],
        ["plot", str(args.out)],
        ["report", str(args.out)],
    ]
    runner = CliRunner()
    for step in steps:
        print("launderflow " + " ".join(step), file=sys.stderr)
        result = runner.invoke(cli, step, catch_exceptions=False)
        print(result.output)
        if result.exit_code != 0:
            return result.exit_code
    figures = args.docs / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    for png in sorted((args.out / "figures").glob("*.png")):
        shutil.copyfile(png, figures / png.name)
    shutil.copyfile(args.out / "comparison.md", args.docs / "policy_study.md")
    print(f"copied figures to {figures} and the table to {args.docs / 'policy_study.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
