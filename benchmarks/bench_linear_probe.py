"""Wall time of linear probing on cached embeddings, ptbxl-500 sized: 500 records x 384-dim float32 features,
the five PTB-XL label sets (superdiagnostic 5, subdiagnostic 23, form 19, rhythm 12, all 71 classes) x label
fractions 0.01 / 0.1 / 1 x seeds 0 / 1 / 2, with the official split (strat_fold 1-8 / 9 / 10) and with
10-fold cross-validation, bootstrap CIs (1000 resamples) included. Target: under 60 s on 2 CPU cores.

Labels and folds are ptbxl-500's when ../shared/data/ptbxl-500 exists (else synthesized with the same shapes);
the features are synthetic, with a planted signal so the probes train as they would on a useful encoder.
Prints one JSON object.

    python benchmarks/bench_linear_probe.py [--data ../shared/data/ptbxl-500] [--n-boot 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from ecgalign.data.splits import fold_split
from ecgalign.eval.linear_probe import run_cross_validation, run_linear_probe, train_linear_probe

LABEL_SETS = {"superdiagnostic": 5, "subdiagnostic": 23, "form": 19, "rhythm": 12, "all": 71}
FRACTIONS = (0.01, 0.1, 1.0)
SEEDS = (0, 1, 2)
N_RECORDS, DIM = 500, 384


def _default_data() -> Path:
    env = os.environ.get("ECGALIGN_SHARED_DATA")
    root = Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"
    return root / "ptbxl-500"


def ptbxl_labels(path: Path) -> tuple[dict[str, tuple[np.ndarray, list[str]]], np.ndarray, np.ndarray]:
    """{label set: (Y, classes)}, strat_fold and patient ids of ptbxl-500."""
    from ecgalign.data.readers import open_dataset

    reader = open_dataset(path, fs=100)
    meta, scheme = reader.metadata(), reader.label_scheme()
    sets = {}
    for name in LABEL_SETS:
        classes = scheme.classes(name)
        col = {c: j for j, c in enumerate(classes)}
        y = np.zeros((len(meta), len(classes)), dtype=np.float32)
        for i, members in enumerate(meta[f"labels_{name}"]):
            y[i, [col[c] for c in members]] = 1.0
        sets[name] = (y, list(classes))
    return sets, meta["fold"].astype(int).to_numpy(), meta["patient_id"].astype(str).to_numpy()


def synthetic_labels(seed: int = 0) -> tuple[dict[str, tuple[np.ndarray, list[str]]], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    sets = {}
    for name, c in LABEL_SETS.items():
        prevalence = np.geomspace(0.4, 0.004, c)
        y = (rng.random((N_RECORDS, c)) < prevalence).astype(np.float32)
        sets[name] = (y, [f"{name}_{j}" for j in range(c)])
    patients = np.arange(N_RECORDS)
    return sets, rng.permutation(np.arange(N_RECORDS) % 10 + 1), patients.astype(str)


def planted_features(sets: dict[str, tuple[np.ndarray, list[str]]], seed: int = 0) -> np.ndarray:
    """(N, 384) float32: noise plus a weak shift per class of every label set (scaled so that the official
    split's superdiagnostic macro AUROC is about 0.8, like BASELINES.md's useful encoders)."""
    rng = np.random.default_rng(seed)
    y = np.concatenate([s[0] for s in sets.values()], axis=1)
    x = rng.normal(size=(len(y), DIM)) + 0.1 * y @ rng.normal(size=(y.shape[1], DIM)) / np.sqrt(3)
    return x.astype(np.float32)


def _probe_stats(results: list[dict]) -> dict:
    runs = [r for res in results for frac in res["fractions"]
            for r in ([x for fold in frac["folds"] for x in fold["runs"]] if "folds" in frac else frac["runs"])]
    epochs = np.array([r["epochs_run"] for r in runs])
    return {"probes": len(runs), "mean_epochs_run": round(float(epochs.mean()), 1),
            "share_best_at_last_epoch": round(float(np.mean([r["best_epoch"] == 100 for r in runs])), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=_default_data())
    parser.add_argument("--n-boot", type=int, default=1000)
    args = parser.parse_args()
    real = args.data.is_dir()
    sets, folds, patients = ptbxl_labels(args.data) if real else synthetic_labels()
    x = planted_features(sets)

    start = time.perf_counter()  # first probe of the process: torch.optim imports torch._dynamo (one-time)
    y0 = sets["superdiagnostic"][0]
    train_linear_probe(x[:8], y0[:8], x[8:16], y0[8:16], max_epochs=1)
    warmup = time.perf_counter() - start

    out: dict = {
        "benchmark": "linear probe on cached embeddings",
        "labels": f"ptbxl-500 ({args.data})" if real else "synthetic (ptbxl-500 not found)",
        "features": f"synthetic {x.shape[0]} x {x.shape[1]} float32 with a planted signal",
        "grid": f"{len(sets)} label sets x fractions {list(FRACTIONS)} x seeds {list(SEEDS)}",
        "n_boot": args.n_boot, "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
        "warmup_s": round(warmup, 2), "target_s": 60,
    }
    for protocol in ("strat_fold", "cv10"):
        seconds, results, summary = {}, [], {}
        for name, (y, classes) in sets.items():
            start = time.perf_counter()
            if protocol == "strat_fold":
                res = run_linear_probe(x, y, classes, fold_split(folds), fractions=FRACTIONS, seeds=SEEDS,
                                       n_boot=args.n_boot, patient_ids=patients)
                summary[name] = {f["fraction"]: f["seed_averaged"]["macro_auroc"] for f in res["fractions"]}
            else:
                res = run_cross_validation(x, y, classes, folds, n_folds=10, fractions=FRACTIONS, seeds=SEEDS,
                                           n_boot=args.n_boot, patient_ids=patients)
                summary[name] = {f["fraction"]: f["pooled"]["macro_auroc"] for f in res["fractions"]}
            seconds[name] = round(time.perf_counter() - start, 2)
            json.dumps(res, allow_nan=False)
            results.append(res)
        out[protocol] = {"seconds": round(sum(seconds.values()), 2), "per_label_set_s": seconds,
                         **_probe_stats(results),
                         "macro_auroc" if protocol == "strat_fold" else "pooled_macro_auroc": summary}
    out["total_s"] = round(out["strat_fold"]["seconds"] + out["cv10"]["seconds"], 2)
    start = time.perf_counter()  # upper bound: no early stopping, every probe runs all 100 epochs
    for y, classes in sets.values():
        run_linear_probe(x, y, classes, fold_split(folds), fractions=FRACTIONS, seeds=SEEDS, n_boot=args.n_boot,
                         patient_ids=patients, probe_kwargs={"patience": 100})
    out["strat_fold_all_100_epochs_s"] = round(time.perf_counter() - start, 2)
    out["meets_target"] = {"strat_fold": out["strat_fold"]["seconds"] < 60, "cv10": out["cv10"]["seconds"] < 60,
                           "both": out["total_s"] < 60}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
