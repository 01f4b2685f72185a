"""Export a labelled dataset and train a simple classifier on it: the data is usable (not a benchmark).

    pip install -e ".[examples]"                       # scikit-learn
    python sim/detection_example.py                    # honest_users, 60 days, into out/detection
    python sim/detection_example.py --scenario scenarios/bybit_2025_honest.yaml --horizon 20d

Runs one replication of a scenario with honest users, exports it (``launderflow export``: the
Elliptic-style features and classes, and the Parquet file's ground truth), trains a random forest
on the known labels of the early time steps — like PyTorch Geometric's Elliptic split, the first
70 % of the steps — and reports precision, recall and F1 for the illicit class on the later,
held-out steps: on their known labels (what an Elliptic user can score) and on every transfer
against the ground truth, each next to the share of illicit transfers (what a classifier that
guesses would reach as precision); then the same forest trained on every early transfer's true
label (what only synthetic data allows), scored on every held-out transfer.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def evaluate(dataset: Path, train_share: float = 0.7, seed: int = 0) -> dict[str, float]:
    """Train on the known labels of the first ``train_share`` of the time steps (Elliptic's classes:
    unknown rows are left out, as Elliptic's users do) and score the later steps twice: on their
    known labels, and on every transfer against the ground truth (transfers.parquet)."""
    import pandas as pd
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.metrics import f1_score, precision_score, recall_score

    feats = pd.read_csv(dataset / "elliptic_txs_features.csv", header=None)
    label = pd.read_csv(dataset / "elliptic_txs_classes.csv")["class"].astype(str).to_numpy()
    truth = pd.read_parquet(dataset / "transfers.parquet", columns=["is_laundering"])["is_laundering"].to_numpy()
    known = label != "unknown"
    y = label == "1"
    steps = feats[1].to_numpy()
    x = feats.drop(columns=[0, 1]).to_numpy()
    cut = np.quantile(np.unique(steps), train_share)
    train, test = (steps <= cut) & known, steps > cut

    def fit(rows: np.ndarray, target: np.ndarray) -> np.ndarray:
        model = RandomForestClassifier(n_estimators=50, min_samples_leaf=2, n_jobs=1, random_state=seed)
        return model.fit(x[rows], target[rows]).predict(x[test])

    guess = fit(train, y)

    def scores(mask: np.ndarray, target: np.ndarray) -> dict[str, float]:
        t, g = target[mask], guess[mask]
        return {"transfers": int(mask.sum()), "illicit_share": float(t.mean()) if len(t) else float("nan"),
                "precision": float(precision_score(t, g, zero_division=0)),
                "recall": float(recall_score(t, g, zero_division=0)), "f1": float(f1_score(t, g, zero_division=0))}

    everything = np.ones(int(test.sum()), bool)
    out = {"train_transfers": int(train.sum()), "last_train_step": float(cut),
           "known_labels": scores(known[test], y[test]), "ground_truth": scores(everything, truth[test])}
    guess = fit(steps <= cut, truth)  # what only synthetic data allows: every early transfer's true label
    out["trained_on_ground_truth"] = {"train_transfers": int((steps <= cut).sum()), **scores(everything, truth[test])}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", type=Path, default=ROOT / "scenarios" / "honest_users.yaml")
    parser.add_argument("--horizon", default="60d", help="clock.horizon override (default 60d)")
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "detection")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        import sklearn  # noqa: F401
    except ImportError:
        print("scikit-learn is needed: pip install -e \".[examples]\"", file=sys.stderr)
        return 2
    from launderflow import api

    run_dir, dataset = args.out / "run", args.out / "dataset"
    api.run(args.scenario, runs=1, seed=args.seed, out=run_dir, overwrite=True,
            overrides={"clock.horizon": args.horizon})
    meta = api.export_dataset(run_dir, dataset, ("elliptic", "parquet"), overwrite=True)
    scores = evaluate(dataset)
    print(json.dumps({"dataset": {k: meta[k] for k in ("rows", "illicit_rows", "licit_rows", "illicit_share", "time_steps",
                                                       "illicit_to_honest_rows", "elliptic_known")},
                      "held_out": scores}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
