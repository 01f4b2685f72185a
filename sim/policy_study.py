"""The bundled policy study: every policy scenario against the baseline, with figures and a report,
under the jointly calibrated behaviour — and its uncertainty.

    python sim/policy_study.py                                    # 10 runs per scenario, both cores
    python sim/policy_study.py --draws out/dprk_joint-joint/accepted.csv --draws-max 5 --runs 4
    python sim/policy_study.py --runs 40 --jobs 8 --out out/policy_study
    python sim/policy_study.py --honest --out out/policy_study_honest   # with each policy's cost to honest users
    python sim/policy_study.py --engine compiled                  # the same numbers, on the compiled engine

It runs the scenarios with common random numbers (one master seed) through the Python API, writes
the comparison table (CSV, Parquet, Markdown), the figures (PNG, SVG) and a self-contained HTML
report, and copies the figures and table that README.md shows into docs/ — so the README's numbers
can be reproduced from scratch with this one command.

With ``--draws FILE`` (the ``accepted.csv`` of ``launderflow calibrate --joint``: one accepted
parameter set of the shared behaviour per row) the whole comparison is repeated for each of the
first ``--draws-max`` parameter sets, on the same random streams, and the policy effects are
reported over every (parameter set, replication) pair: the 5–95 % range then carries the
parameter uncertainty as well as the run-to-run noise, and the range of the per-set medians shows
the parameter uncertainty alone (``docs/policy_effects.md``).
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BEHAVIOUR = ROOT / "scenarios" / "behaviour" / "dprk.yaml"  # the shared file the draws replace values of
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
EFFECTS = ["frozen", "seized", "cashed_out", "reported_traceable", "reported_frozen"]  # final shares whose paired effects are reported


def read_draws(path: Path, limit: int) -> list[dict[str, float]]:
    """The first ``limit`` parameter sets of an ``accepted.csv`` (best first), as overrides."""
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(line for line in fh if not line.startswith("#")))
    skip = {"candidate", "distance"}
    return [{k: float(v) for k, v in row.items() if k not in skip} for row in rows[:limit]]


def effects_table(per_draw: list[dict[str, dict[str, np.ndarray]]]) -> str:
    """Markdown: for each policy and state, the paired effect (policy − baseline, pp of the stolen
    value) over every (parameter set, replication) pair, and the range of the per-set medians."""
    lines = ["| policy | state | median effect | 5–95 % (runs and parameter sets) | per-set medians (min … max) |",
             "|---|---|---|---|---|"]
    for policy in POLICIES[1:]:
        for state in EFFECTS:
            diffs = [d[policy][state] - d["baseline"][state] for d in per_draw]
            pooled = np.concatenate(diffs) * 100
            medians = [float(np.median(x)) * 100 for x in diffs]
            p5, p50, p95 = np.percentile(pooled, [5, 50, 95])
            lines.append(f"| {policy} | {state.replace('_', ' ')} | {p50:+.1f} pp | {p5:+.1f} … {p95:+.1f} pp "
                         f"| {min(medians):+.1f} … {max(medians):+.1f} pp |")
    return "\n".join(lines) + "\n"


def study_parser(description: str, name: str, docs_help: str) -> argparse.ArgumentParser:
    """The options every study driver takes: runs, jobs, seed, where its run directories and its docs go."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=20220323)
    parser.add_argument("--out", type=Path, default=ROOT / "out" / name)
    parser.add_argument("--docs", type=Path, default=ROOT / "docs", help=docs_help)
    parser.add_argument("--engine", choices=["reference", "compiled"], default="reference",
                        help="which engine simulates (the same results; compiled is faster)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = study_parser(__doc__.split("\n\n")[0], "policy_study", "where README's figures and table go")
    parser.add_argument("--draws", type=Path, default=None, help="accepted.csv of a joint calibration: repeat the study for its parameter sets")
    parser.add_argument("--draws-max", type=int, default=5, help="how many of its parameter sets (best first)")
    parser.add_argument("--honest", action="store_true",
                        help="give every scenario the honest users of scenarios/honest_users.yaml: the report shows each "
                             "policy's cost to them beside its effect (writes docs/policy_study_honest.md and "
                             "docs/figures/tradeoff.png instead of README's table and figures)")
    args = parser.parse_args(argv)

    import launderflow as lf
    from launderflow.analysis.joint import behaviour_overrides
    from launderflow.metrics import METRICS
    from launderflow.scenario.loader import load_scenario
    from launderflow.views.plots import write_figures
    from launderflow.views.report import write_report
    from launderflow.views.tables import comparison_table
    from rich.console import Console

    files = [ROOT / "scenarios" / f"{name}.yaml" for name in POLICIES]
    draws = read_draws(args.draws, args.draws_max) if args.draws is not None else [{}]
    if args.honest:  # the stolen value's outcome is unchanged by honest users (docs/model.md §9b): only the collateral is added
        import yaml

        honest = yaml.safe_load((ROOT / "scenarios" / "honest_users.yaml").read_text(encoding="utf-8"))["honest"]
        # (the launderer's honest counterparties would change the outcome — merchants' spending is cashed out,
        # P2P trades pay a network fee — so the study leaves them out and its effects stay the plain study's)
        honest = {k: v for k, v in honest.items() if k != "merchants"}
        honest["venues"] = {name: {k: v for k, v in flow.items() if k != "p2p"} for name, flow in honest["venues"].items()}
        draws = [{**d, "honest": honest} for d in draws]
    per_draw: list[dict[str, dict[str, np.ndarray]]] = []
    failed: list[str] = []
    for k, overrides in enumerate(draws):
        out = args.out if k == 0 else args.out / f"draw_{k}"
        shown = {key: v for key, v in overrides.items() if key != "honest"}
        what = f" (parameter set {k + 1} of {len(draws)}: {shown})" if shown else ""
        print(f"comparing {len(files)} scenarios, {args.runs} runs each, seed {args.seed}{what}", file=sys.stderr)
        # A draw replaces the shared behaviour, not a policy's own choice of the same field (the
        # information-sharing policy's 15-minute latency stays 15 minutes under every draw).
        scenarios = []
        for file in files:
            kept = behaviour_overrides(file, BEHAVIOUR, overrides)
            if k == 0 and set(kept) != set(overrides):
                print(f"  {file.name} keeps its own {', '.join(sorted(set(overrides) - set(kept)))}", file=sys.stderr)
            scenarios.append(load_scenario(file, kept, override_label="draw {field}={value}"))
        cmp = lf.compare(scenarios, runs=args.runs, seed=args.seed, out=out, at=AT.split(","), jobs=args.jobs,
                         overwrite=True, engine=args.engine)
        failed += [name for name, run in cmp.runs.items() if not run.report.ok]
        per_draw.append({name: {s: run.values(METRICS["final_share"](state=s)) for s in EFFECTS}
                         for name, run in cmp.runs.items()})
        if k == 0:
            Console(highlight=False).print(comparison_table(cmp.rows, title=f"{len(files)} scenarios, {args.runs} runs each, "
                                                                          f"seed {args.seed} (common random numbers)"))
            written = [*cmp.written, *write_figures(out, overwrite=True), write_report(out, overwrite=True)]
            for path in written:
                print(f"wrote {path}")
    if failed:
        print(f"replications failed in {', '.join(sorted(set(failed)))}: see their failures.json", file=sys.stderr)
        return 1
    figures = args.docs / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    if args.honest:
        shutil.copyfile(args.out / "figures" / "tradeoff.png", figures / "tradeoff.png")
        shutil.copyfile(args.out / "comparison.md", args.docs / "policy_study_honest.md")
        print(f"copied the trade-off figure to {figures} and the table to {args.docs / 'policy_study_honest.md'}", file=sys.stderr)
        return 0
    for png in sorted((args.out / "figures").glob("*.png")):
        shutil.copyfile(png, figures / png.name)
    shutil.copyfile(args.out / "comparison.md", args.docs / "policy_study.md")
    if args.draws is not None:
        header = (f"Policy effects over {len(draws)} accepted parameter sets of the joint calibration "
                  f"({args.draws.name}) x {args.runs} runs, seed {args.seed}: paired differences from the baseline, "
                  f"percentage points of the stolen value at the horizon.\n\n")
        (args.docs / "policy_effects.md").write_text(header + effects_table(per_draw), encoding="utf-8")
        print((args.docs / "policy_effects.md").read_text(encoding="utf-8"))
    print(f"copied figures to {figures} and the table to {args.docs / 'policy_study.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
