"""The displacement study (issue 21): each policy with and without an adapting launderer.

    python sim/displacement_study.py                  # 10 runs per scenario, both cores
    python sim/displacement_study.py --runs 40 --jobs 8 --out out/displacement_study

Every policy of ``scenarios/displacement/`` runs twice on common random numbers: as written (the
launderer chooses services by the logit rule and learns from what it sees) and with the fixed
playbook below (the same venues in a fixed order, falling back only on refusals). Each set is
compared with its own reference (``market``), so a policy's effect is a paired difference within
one launderer; the table puts the two effects side by side and writes docs/displacement_study.md.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
POLICIES = ["market", "whack_a_mole", "bridge_designation", "freeze_network", "combined"]
# The non-adapting launderer: the venues of market.yaml in a fixed order of preference (a mix hop
# takes mixers and bridges, not the no-KYC swapper, which it therefore never uses).
FIXED_PLAYBOOK: list[dict[str, Any]] = [
    {"hop": "split", "wallets": 40, "delay": {"dist": "exponential", "mean": "12h"}},
    {"hop": "mix", "venue": ["tornado", "sinbad", "thorchain", "stargate"], "to": "BTC", "retry": "1d"},
    {"hop": "cash_out", "venue": ["binance", "otc_network"], "retry": "3d"},
]
SHOWN = [("cashed_out_share", "cashed out"), ("reported_frozen_share", "frozen or seized"),
         ("offramp_share", "reached an off-ramp"), ("launderer_cost_share", "launderer cost"),
         ("days_to_50pct_cash_out", "days to 50 % cashed out")]


def fixed(scenario: Any) -> Any:
    """The same scenario with the fixed playbook (named ``<name>_fixed``)."""
    from launderflow.scenario.schema import Scenario

    data = scenario.model_dump()
    data["playbook"], data["name"] = FIXED_PLAYBOOK, f"{scenario.name}_fixed"
    return Scenario.model_validate(data)


def cell(rows: list[dict[str, Any]], scenario: str, metric: str, difference: bool = True) -> str:
    """A comparison row as text: the paired difference from the reference (``difference``) or the
    level, median [5-95 %]."""
    from launderflow.analysis.compare import measure_of

    row = next((r for r in rows if r["scenario"] == scenario and r["metric"] == metric), None)
    keys = ("diff_median", "diff_p5", "diff_p95") if difference else ("median", "p5", "p95")
    if row is None or row[keys[0]] is None:
        return "—"
    unit = measure_of(metric).unit
    show = unit.format_diff if difference else unit.format
    return f"{show(row[keys[0]])} [{show(row[keys[1]])}, {show(row[keys[2]])}]"


def table(adapt_rows: list[dict[str, Any]], fixed_rows: list[dict[str, Any]], names: list[str]) -> str:
    lines = ["| policy | measure | fixed playbook | adapting launderer |", "|---|---|---|---|"]
    for name in names[1:]:
        for metric, label in SHOWN:
            lines.append(f"| {name} | {label} | {cell(fixed_rows, f'{name}_fixed', metric)} | {cell(adapt_rows, name, metric)} |")
        for row in adapt_rows:
            if row["scenario"] == name and row["metric"].startswith("displaced_share_") and row["median"] is not None:
                lines.append(f"| {name} | displaced by {row['metric'][len('displaced_share_'):]} (level) | "
                             f"{cell(fixed_rows, f'{name}_fixed', row['metric'], False)} | "
                             f"{cell(adapt_rows, name, row['metric'], False)} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from policy_study import study_parser

    args = study_parser(__doc__.split("\n\n")[0], "displacement_study",
                        "where docs/displacement_study.md goes").parse_args(argv)

    import launderflow as lf
    from launderflow.scenario.loader import load_scenario
    from launderflow.views.plots import write_figures
    from launderflow.views.report import write_report

    adapting = [load_scenario(ROOT / "scenarios" / "displacement" / f"{name}.yaml") for name in POLICIES]
    names = [s.name for s in adapting]
    print(f"{len(adapting)} policies x 2 launderers, {args.runs} runs each, seed {args.seed}", file=sys.stderr)
    runs: dict[str, Any] = {}
    for label, scenarios in (("adapting", adapting), ("fixed", [fixed(s) for s in adapting])):
        out = args.out / label
        cmp = lf.compare(scenarios, runs=args.runs, seed=args.seed, out=out, jobs=args.jobs, overwrite=True)
        runs[label] = cmp.rows
        for path in [*cmp.written, *write_figures(out), write_report(out)]:
            print(f"wrote {path}", file=sys.stderr)
    text = (f"# Displacement study: each policy with and without an adapting launderer\n\n"
            f"`python sim/displacement_study.py --runs {args.runs} --seed {args.seed}` "
            f"(scenarios/displacement/, common random numbers). Each cell: the policy's paired difference from "
            f"its own launderer's reference (`market`), median [5–95 %] over {args.runs} replications; "
            f"'displaced' rows are levels (share of the stolen value sent to the targets' substitutes from the "
            f"intervention until the next one, beyond their share before).\n\n" + table(runs["adapting"], runs["fixed"], names))
    args.docs.mkdir(parents=True, exist_ok=True)
    (args.docs / "displacement_study.md").write_text(text, encoding="utf-8")
    print(text)
    print(f"wrote {args.docs / 'displacement_study.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
