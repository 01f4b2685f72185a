# %% [markdown]
# # 2. Comparing policies
#
# A policy question is a comparison: *with* information sharing, or the papers' combined
# recommendation, how much more is frozen, and how much less gets out? In this tutorial you run the
# baseline and two policies on **common random numbers**, read their **paired differences**, and
# write the self-contained HTML **report**.
#
# It assumes [tutorial 1](../first_run/) (the two outcome axes). Like it, it runs few replications
# over a shortened horizon so that it executes in about a minute; the numbers in the
# [policy study](../../explanation/policy-study/) come from the same code with 10 runs over 180 days.

# %%
import os
from pathlib import Path

here = Path.cwd().resolve()
os.chdir(next(p for p in (here, *here.parents) if (p / "scenarios" / "baseline.yaml").is_file()))

# %% [markdown]
# ## The scenarios
#
# Every policy scenario `extends: baseline.yaml` and changes only the policy, so a difference in
# the results comes from the policy. `information_sharing.yaml` sends alerts to every venue within
# 15 minutes instead of two days; `combined.yaml` adds the Tornado designation, a mixer takedown,
# seizures at day 150, hardened exchanges and prompt stablecoin freezes:

# %%
print(Path("scenarios/information_sharing.yaml").read_text())

# %% [markdown]
# ## Run them on the same random streams
#
# `lf.compare` runs every scenario with the same seed: replication *i* of each scenario draws from
# the same random stream, so the difference between two scenarios in replication *i* is the
# policy's effect in one and the same world. We run 4 replications over 100 days (the scenarios say
# 180: the seizures at day 150 are then left out) and also ask for the shares at days 11 and 60,
# the way victims publish updates.

# %%
import launderflow as lf

SCENARIOS = ["scenarios/baseline.yaml", "scenarios/information_sharing.yaml", "scenarios/combined.yaml"]
cmp = lf.compare(SCENARIOS, runs=4, jobs=2, out="out/tutorials/compare", overwrite=True,
                 overrides={"clock.horizon": "100d"}, at=["11d", "60d"])
cmp

# %% [markdown]
# ## Paired differences
#
# `cmp.to_pandas()` has one row per scenario and metric: the median over the replications, its
# 5–95 % range and, for the policies, the difference from the baseline paired by replication (its
# median and 5–95 % range). The final shares as victims report them, and the cashed-out share:

# %%
rows = cmp.to_pandas()
final = ["reported_traceable_share", "reported_dark_share", "reported_frozen_share", "cashed_out_share"]
table = rows[rows.metric.isin(final)].pivot(index="scenario", columns="metric", values="median")[final]
table.loc[[Path(s).stem for s in SCENARIOS]].style.format("{:.1%}")

# %%
diffs = rows[rows.metric.isin(final) & (rows.scenario != "baseline")]
diffs[["scenario", "metric", "diff_median", "diff_p5", "diff_p95"]].style.format(
    {c: "{:+.1%}" for c in ("diff_median", "diff_p5", "diff_p95")})

# %% [markdown]
# Read the differences, not the levels: the pairing removes the luck of the draw that the two
# scenarios share, so even 4 replications give a narrow range for an effect. Information sharing
# moves the frozen share; only the combination also cuts what is cashed out, by starving the
# off-ramps (over the full 180 days; within 100 days the desks are still working through their
# queue, so it shows mostly in the frozen share). The numbers this notebook computed:

# %%
def effect(scenario: str, metric: str) -> float:
    row = rows[(rows.scenario == scenario) & (rows.metric == metric)].iloc[0]
    return float(row.diff_median)

for name in ("information_sharing", "combined"):
    print(f"{name}: frozen or seized {effect(name, 'reported_frozen_share'):+.1%}, "
          f"cashed out {effect(name, 'cashed_out_share'):+.1%}")
assert effect("combined", "reported_frozen_share") > effect("information_sharing", "reported_frozen_share") > 0

# %% [markdown]
# ## The curves
#
# Each scenario's median traceability curve with its 5–95 % band, on one axes:

# %%
import matplotlib.pyplot as plt

fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
lf.plot_traceability(cmp, state="reported_frozen", ax=left)
lf.plot_traceability(cmp, state="cashed_out", ax=right)
fig.tight_layout()

# %% [markdown]
# ## The report
#
# The report is one HTML page — the table with every metric and its paired difference, the
# figures and the scenarios — that can be mailed or archived on its own. From the command line it is
# `launderflow plot out/tutorials/compare --format png && launderflow report out/tutorials/compare`; in Python:

# %%
from launderflow.views.plots import write_figures
from launderflow.views.report import write_report

figures = write_figures(cmp, formats=["png"])
report = write_report(cmp)
print("figures:", *sorted(Path(f).name for f in figures))
print("report:", report, f"({report.stat().st_size / 1e6:.1f} MB)")

# %% [markdown]
# Open `out/tutorials/compare/report.html` in a browser. For numbers you would quote, rerun with
# the scenarios' own horizon and more replications (`runs=10` or more), and read
# [the model](../../model/) — in particular "behaviours to know before quoting a number".
#
# Next: [tutorial 3](../incident_backtest/) checks a scenario against a real incident.
