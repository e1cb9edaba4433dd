"""The learned refiner (ecgalign.synth.refine) against real PTB-XL: realism, label fidelity and transfer (issue 15).

Fits a refiner on unlabeled real records (``--fit-real``, e.g. ptbxl-unlabeled; or loads one with
``--refiner``), writes ``--n`` generated records of ``--seed`` with and without it into stores, and measures both
with the realism harness against ``--real`` (records the refiner never saw): domain-classifier AUROC per family
(gradient boosting, the harness's, and a logistic regression on the same features as a second classifier), the
signs, label fidelity. With ``--transfer``: a logistic regression on the harness features trained on ``--n-train``
records of seed + 1, refined and not, scored on the labelled real records (bench_realism's protocol). With
``--cnn``: also the domain AUROC of a small 1-D CNN trained on the signals (3 patient-grouped folds).
Prints one JSON object.

    python benchmarks/bench_refiner.py --fit-real ../shared/data/ptbxl-unlabeled --real ../shared/data/ptbxl-500 \\
        [--steps 1500] [--n 500] [--transfer --n-train 2000] [--cnn] [--refiner DIR] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ecgalign.synth.realism import compare, load_sample
from ecgalign.synth.realism.compare import domain_auroc
from ecgalign.synth.realism.features import feature_families
from ecgalign.synth.refine import RefinerConfig, fit_refiner, save_refiner, synthetic_inputs
from ecgalign.synth.store import synthesize_store


def _logreg_auroc(synth, real) -> dict[str, float]:
    """Domain AUROC of a logistic regression (standardised features, C = 0.1) per family: a second classifier."""
    fs, fr = feature_families(synth.x), feature_families(real.x)
    fs["all"], fr["all"] = np.hstack(list(fs.values())), np.hstack(list(fr.values()))

    def clf():
        return make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))

    return {k: round(domain_auroc(np.nan_to_num(fs[k]), np.nan_to_num(fr[k]), synth.patients, real.patients,
                                  classifier=clf), 4) for k in fs}


def _cnn_auroc(synth, real, folds: int = 3, epochs: int = 6, seed: int = 0) -> float:
    """Domain AUROC of a small 1-D CNN (XResNet1D) trained on the benchmark view itself, out of fold with folds
    grouped by patient: a classifier that reads none of the harness's features (and none of the refiner's)."""
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedGroupKFold

    from ecgalign.data.spec import InputSpec
    from ecgalign.eval.supervised import predict, train_supervised

    x = np.concatenate([synth.x, real.x]).astype(np.float32)
    y = np.r_[np.ones(len(synth.x)), np.zeros(len(real.x))].astype(np.float32)[:, None]
    g = np.r_[np.char.add("s:", synth.patients.astype(str)), np.char.add("r:", real.patients.astype(str))]
    score = np.zeros(len(y))
    cfg = {"layers": (1, 1, 1, 1), "widths": (16, 32, 48, 64)}
    split = StratifiedGroupKFold(folds, shuffle=True, random_state=seed).split(x, y[:, 0], g)
    for k, (train, test) in enumerate(split):
        rng = np.random.default_rng(seed + k)
        val = rng.random(len(train)) < 0.15
        net, _ = train_supervised("xresnet1d_50", cfg, InputSpec(), x[train[~val]], y[train[~val]], x[train[val]],
                                  y[train[val]], epochs=epochs, patience=3, seed=seed + k)
        score[test] = predict(net, x[test])[:, 0]
    return round(float(roc_auc_score(y[:, 0], score)), 4)


def _measure(store: Path, real, cnn: bool) -> dict:
    sample = load_sample(str(store))
    s = compare(sample, real).summary
    return {
        "domain_auroc": s["domain_auroc"],
        "domain_auroc_logreg": _logreg_auroc(sample, real),
        "domain_auroc_cnn": _cnn_auroc(sample, real) if cnn else None,
        "signs": [{k: g[k] for k in ("sign", "synthetic", "real", "ratio", "within_25pct")} for g in s["signs"]],
        "label_fidelity": {k: v["meets"] for k, v in s["label_fidelity"]["synthetic"].items()},
        "separating_features": s.get("separating_features", [])[:8],
        "class_profile_correlation": {k: v["profile_correlation"] for k, v in s["class_profiles"].items()},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--real", required=True, help="labelled real records to measure against (not used to fit)")
    ap.add_argument("--fit-real", help="unlabeled real records to fit the refiner on")
    ap.add_argument("--refiner", help="use this saved refiner instead of fitting one")
    ap.add_argument("--out", help="save the fitted refiner here")
    ap.add_argument("--n-fit", type=int, default=3000, help="generated records in fitting (seed --fit-seed)")
    ap.add_argument("--fit-seed", type=int, default=7)
    ap.add_argument("--steps", type=int, default=RefinerConfig.steps)
    ap.add_argument("--set", action="append", default=[], help="RefinerConfig field=value (repeatable)")
    ap.add_argument("--n", type=int, default=500, help="generated records measured (seed --seed)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--transfer", action="store_true")
    ap.add_argument("--cnn", action="store_true", help="also a 1-D CNN domain classifier on the signals (slow)")
    ap.add_argument("--n-train", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    if not (args.refiner or args.fit_real):
        ap.error("give --fit-real (fit a refiner) or --refiner (use a saved one)")
    torch.set_num_threads(args.threads)
    out: dict = {"benchmark": "refiner", "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
                 "cpu_count": os.cpu_count()}
    timing: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        ref = Path(args.refiner) if args.refiner else Path(args.out or Path(tmp) / "refiner")
        if not args.refiner:
            t = time.perf_counter()
            fit_real = load_sample(args.fit_real)
            synth = synthetic_inputs(args.n_fit, args.fit_seed, workers=args.workers)
            overrides = {}
            for item in args.set:
                key, _, value = item.partition("=")
                overrides[key] = json.loads(value)
            config = RefinerConfig(steps=args.steps, **overrides)
            fit = fit_refiner(synth, fit_real.x, config, log_every=max(1, args.steps // 10))
            save_refiner(ref, fit, {"real": args.fit_real, "real_records": len(fit_real),
                                    "synthetic": {"n": args.n_fit, "seed": args.fit_seed}})
            timing["fit"] = round(time.perf_counter() - t, 1)
            out["fit"] = {"config": vars(config), "history": fit.history, "real_records": len(fit_real)}
        out["refiner"] = str(ref)
        real = load_sample(args.real)
        for name, refiner in (("generated", None), ("refined", ref)):
            t = time.perf_counter()
            store = Path(tmp) / name
            synthesize_store(store, args.n, seed=args.seed, workers=args.workers, refiner=refiner)
            timing[f"synth_{name}"] = round(time.perf_counter() - t, 1)
            t = time.perf_counter()
            out[name] = _measure(store, real, args.cnn)
            timing[f"measure_{name}"] = round(time.perf_counter() - t, 1)
            if args.transfer:
                from bench_realism import transfer

                store = Path(tmp) / f"{name}-train"
                synthesize_store(store, args.n_train, seed=args.seed + 1, workers=args.workers, refiner=refiner)
                out[name]["transfer"] = transfer(load_sample(str(store)), real, False, args.seed)
    out["timing_s"] = timing
    print(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
