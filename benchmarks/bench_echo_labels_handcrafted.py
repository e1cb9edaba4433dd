"""Handcrafted-feature baseline for the echo-derived labels (EEE table of docs/results.md, issue 12).

The ECGs of a synthetic echo set's paired store (``ecgalign data synth-echo``: ``D/ecg`` + ``D/echo-labels.csv``)
in the baselines view (100 Hz, 0.5-40 Hz, z-scored), the synthetic-realism harness's handcrafted feature
families (spectrum, covariance, beats/rhythm, shape) and a logistic regression per label (C chosen on
validation macro AUROC), on the same split ``ecgalign eval echo-labels`` uses (``eval.run.split_of``: a seeded
patient-level 80/10/10 split for these stores). Prints one JSON object: test macro AUROC with its bootstrap 95 %
CI, per-class AUROCs, split sizes, the chosen C and the time taken.

    python benchmarks/bench_echo_labels_handcrafted.py D/ecg [--n-boot 1000]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ecgalign.data.preprocess import Preprocess
from ecgalign.data.store import ECGStore
from ecgalign.eval.metrics import bootstrap_ci, macro_auroc
from ecgalign.eval.run import split_of
from ecgalign.synth.realism.features import feature_families

LABELS = ("ef_lt_40", "lvh", "dilated_lv")


def load(store_path: Path) -> tuple[np.ndarray, np.ndarray, SimpleNamespace]:
    """Baselines-view signals (N, 12, 1000), labels (N, 3) and the split's view of the store's metadata."""
    store = ECGStore(store_path)
    labels_csv = store_path.parent / "echo-labels.csv"
    if not labels_csv.is_file():
        sys.exit(f"{labels_csv}: not found (ecgalign data synth-echo writes it beside ecg/)")
    table = pd.read_csv(labels_csv)
    by_record = {f"s{int(s)}": row for s, row in zip(table.study_id, table[list(LABELS)].to_numpy())}
    meta = store.meta
    missing = [r for r in meta.record_id.astype(str) if r not in by_record]
    if missing:
        sys.exit(f"{labels_csv}: no labels for {len(missing)} record(s), e.g. {missing[:3]}")
    pre = Preprocess.preset("baselines")
    x = np.stack([pre(store.record(i)).signal for i in range(len(store))]).astype(np.float64)
    y = np.stack([by_record[str(r)] for r in meta.record_id]).astype(np.float32)
    folds = meta["fold"].astype(int).to_numpy() if "fold" in meta and meta["fold"].notna().all() else None
    ids = meta["patient_id"].astype(object).to_numpy() if "patient_id" in meta else None
    return x, y, SimpleNamespace(meta=meta, folds=folds, patient_ids=ids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", type=Path, help="the paired ECG store D/ecg of a synthetic echo set")
    parser.add_argument("--n-boot", type=int, default=1000)
    args = parser.parse_args()
    t0 = time.perf_counter()
    x, y, data = load(args.store)
    split, rule = split_of(data)
    f = np.hstack(list(feature_families(x).values()))
    f = np.nan_to_num(f, nan=0.0, posinf=0.0, neginf=0.0)
    best = None
    for c in (0.001, 0.01, 0.1, 1.0, 10.0):
        models = [make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))
                  .fit(f[split.train], y[split.train, j]) for j in range(y.shape[1])]
        val = np.stack([m.predict_proba(f[split.val])[:, 1] for m in models], axis=1)
        score = macro_auroc(y[split.val], val)
        if best is None or (score is not None and score > best[0]):
            best = (score, c, models)
    _, c, models = best
    test = np.stack([m.predict_proba(f[split.test])[:, 1] for m in models], axis=1)
    groups = np.asarray(data.patient_ids, dtype=object)[split.test]  # a patient's studies resample together
    ci = bootstrap_ci(y[split.test], test, macro_auroc, n_boot=args.n_boot, groups=groups)
    print(json.dumps({
        "store": str(args.store), "split": rule, "sizes": split.sizes(), "features": int(f.shape[1]),
        "C": c, "val_macro_auroc": round(best[0], 4),
        "test_macro_auroc": round(macro_auroc(y[split.test], test), 4), "ci95": ci.to_dict(),
        "per_class_auroc": {k: round(float(roc_auc_score(y[split.test, j], test[:, j])), 4)
                            for j, k in enumerate(LABELS) if 0 < y[split.test, j].sum() < len(split.test)},
        "test_positives": dict(zip(LABELS, y[split.test].sum(0).astype(int).tolist())),
        "seconds": round(time.perf_counter() - t0, 1),
    }, indent=2))


if __name__ == "__main__":
    main()
