# %% [markdown]
# # 1. Your first run and its two outcome axes
#
# In this tutorial you run the bundled baseline scenario — a Ronin-sized theft laundered through a
# DEX, a Tornado-like mixer, dormancy, a bridge, exchanges and OTC desks — a few times, and read
# what comes out: where every stolen dollar is (its **location**) and whether investigators can
# still see it (its **knowledge**), at every moment.
#
# You need the package installed (`pip install -e ".[test]"` from a clone, see
# [Install](../../how-to/install/)). Open this file as a notebook (`jupyter lab`, VS Code or
# `jupytext --to notebook docs/tutorials/first_run.py`) or read it here, where it was executed
# when the site was built.
#
# The first cell finds the repository (the scenarios live there) wherever the notebook was opened.

# %%
import os
from pathlib import Path

here = Path.cwd().resolve()
os.chdir(next(p for p in (here, *here.parents) if (p / "scenarios" / "baseline.yaml").is_file()))
print("working in", Path.cwd())

# %% [markdown]
# ## Run the scenario
#
# `lf.run` does what `launderflow run` does on the command line: it runs Monte Carlo replications
# and writes a run directory. To keep the tutorial quick we run 4 replications over 90 days instead
# of the scenario's 180 (`overrides` works like `--set`), on two worker processes.

# %%
import launderflow as lf

run = lf.run("scenarios/baseline.yaml", runs=4, jobs=2, out="out/tutorials/first_run", overwrite=True,
             overrides={"clock.horizon": "90d"})
run

# %% [markdown]
# The same run from a shell would be
# `launderflow run scenarios/baseline.yaml --runs 4 --jobs 2 --set clock.horizon=90d --out out/tutorials/first_run`.
# The directory holds `summary.json`, `timeline.parquet` and the scenario as run:

# %%
sorted(p.name for p in run.path.iterdir())

# %% [markdown]
# ## The first axis: location
#
# At every instant each dollar is in exactly one of six **locations**: with the launderer, inside a
# venue (a mixer pool, a bridge in flight, an exchange account), frozen, seized, cashed out (it left
# the chain), or spent on fees. `summary.json` gives each one's median share at the horizon over the
# replications, with its 5–95 % range:

# %%
import pandas as pd

LOCATIONS = ["launderer", "venue", "frozen", "seized", "cashed_out", "fees"]
KNOWLEDGE = ["traced", "dark"]
REPORTED = ["reported_traceable", "reported_dark", "reported_frozen"]
states = run.summary["states"]
pd.DataFrame({s: states[s] for s in LOCATIONS + KNOWLEDGE + REPORTED}).T[["median_share", "p5_share", "p95_share", "median_usd"]]

# %% [markdown]
# Value is conserved: in every replication the six locations add up to the stolen value. Check it
# with the metric registry (`run.values` gives one number per replication):

# %%
import numpy as np

location_total = sum(run.values("final_share", state=s) for s in LOCATIONS)
knowledge_total = sum(run.values("final_share", state=s) for s in KNOWLEDGE)
print("locations sum to", location_total, "\nknowledge sums to", knowledge_total)
assert np.allclose(location_total, 1.0, rtol=1e-9) and np.allclose(knowledge_total, 1.0, rtol=1e-9)

# %% [markdown]
# ## The second axis: knowledge
#
# Independently of where it is, each dollar is **traced** (investigators know which address holds
# it) or **dark**. Tracing starts when the theft is discovered; software follows automatic hops, and
# value goes dark at judgment points such as mixer withdrawals, where analysts must link a note to
# its deposit. The traceability curve shows the race:

# %%
import matplotlib.pyplot as plt

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
lf.plot_traceability(run, state="traced", ax=left)
lf.plot_traceability(run, state="cashed_out", ax=right)
fig.tight_layout()

# %% [markdown]
# The traced share jumps when the theft is discovered and falls as the value passes the mixer;
# the cash-out climbs only once the dormancy ends and the desks start working. Where everything is
# at each moment, as stacked areas:

# %%
fig, ax = plt.subplots(figsize=(8, 4))
lf.plot_outcome_areas(run, ax=ax);

# %% [markdown]
# ## What victims report
#
# Victims publish a third view: "x % traceable, y % dark, z % frozen". launderflow reads it off the
# two axes (cashed-out value counts as dark: its location is no longer known) and the three always
# sum to the stolen value. At day 11, the way a victim's first update would put it:

# %%
at_11d = {s: float(np.median(run.values("share_at", state=s, at=11 * 24))) for s in REPORTED}
print({s: f"{v:.1%}" for s, v in at_11d.items()})
assert abs(sum(at_11d.values()) - 1.0) < 1e-6  # medians of shares that sum to 1 in every replication

# %% [markdown]
# ## The tables as data
#
# `run.timeline` is the traceability curve of every replication, as an Arrow table
# (`run.to_pandas("timeline")` as a DataFrame): one row per replication, time and state.

# %%
timeline = run.to_pandas("timeline")
timeline[timeline.state == "traced"].groupby("time_hours").share.median().iloc[::40]

# %% [markdown]
# ## What next
#
# * [Tutorial 2](../compare_policies/) compares policies on the same random streams.
# * [What a run produces](../../reference/outputs/) describes every file of the run directory;
#   [the model](../../model/) explains every mechanism behind these numbers.
