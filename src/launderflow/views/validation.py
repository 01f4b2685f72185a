"""Terminal tables of a joint calibration and of a leave-one-incident-out cross-validation (rich)."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from ..analysis.calibrate import parameters_table
from .tables import facts_table


def joint_tables(report: dict[str, Any]) -> list[Any]:
    """The shared parameters (best, accepted median, 5-95 %), then each incident's facts at the best candidate."""
    title = (f"{report['name']}: {report['samples']} candidates x {report['runs']} runs x "
             f"{len(report['incidents'])} incidents, seed {report['seed']} — {len(report['accepted'])} accepted "
             f"(distance <= {_g(report['epsilon'])})")
    params = parameters_table(report["parameters"], title)
    best = report["best"]
    params.caption = "every candidate failed" if best is None else \
        f"best: candidate {best['candidate']}, distance {best['distance']:.3g}"
    out: list[Any] = [params]
    for incident in report["incidents_at_best"]:
        if "facts" in incident:
            out.append(Group(Text(f"{incident['name']} at the best candidate (distance {incident['distance']:.3g}; "
                                  f"model: median and 5–95 % over the runs)", style="bold"),
                             facts_table(incident["facts"])))
    return out


def crossval_tables(report: dict[str, Any]) -> list[Any]:
    """A table per fold (the held-out incident's facts against the pooled prediction), then the summary."""
    out: list[Any] = []
    for fold in report["folds"]:
        verdict = "PASSED" if fold["passed"] else "not every check met"
        heading = Text(f"fold {fold['held_out']}: fitted on {', '.join(fold['fitted_on'])} — "
                       f"{len(fold['accepted'])} accepted (distance <= {_g(fold['epsilon'])}); {verdict}", style="bold")
        out.append(Group(heading, facts_table(fold["facts"])))
    summary = Table(box=box.SIMPLE_HEAD, pad_edge=False,
                    title=f"leave-one-incident-out: {report['samples']} candidates x {report['runs']} runs, "
                          f"seed {report['seed']} — {'PASSED' if report['passed'] else 'not every fold passed'}")
    for name, justify in (("held out", "left"), ("checks within", "right"), ("inputs within", "right"),
                          ("accepted", "right"), ("epsilon", "right"), ("passed", "left")):
        summary.add_column(name, justify=justify)  # type: ignore[arg-type]
    for fold in report["folds"]:
        summary.add_row(fold["held_out"], f"{fold['checks_within']} / {fold['checks_total']}",
                        f"{fold['inputs_within']} / {fold['inputs_total']}", str(len(fold["accepted"])),
                        _g(fold["epsilon"]), "yes" if fold["passed"] else "NO")
    note = Text("model: the held-out incident's facts over the pooled runs of every candidate accepted on the other "
                "incidents' facts (median, 5–95 %); z = (model − fact) / tolerance; a fold passes when every check "
                "is within tolerance; input facts built the held-out scenario itself (in-sample), and set no parameter")
    out.append(Group(summary, note))
    return out


def _g(x: float | None) -> str:
    return "-" if x is None else f"{x:.3g}"
