"""Realism of the synthetic generator against real PTB-XL, and how a model trained on it transfers (issue 15).

Prints one JSON object: the time the realism harness takes, its summary (domain-classifier AUROCs, signs,
label fidelity), and with ``--transfer`` the pooled superdiagnostic macro AUROC on the real records of models
trained on synthetic records only (nothing real is seen in training; hyper-parameters are chosen on a
synthetic validation split):
- handcrafted features (the harness's spectrum, covariance, rhythm and shape families) + logistic regression;
- the toolkit's supervised 1-D encoder (ecgalign.eval.supervised, a small XResNet1D), with ``--encoder``. With the
  default (real-like) code prevalences prefer ``--n-train 5000``: a store holds fewer abnormal positives than with
  the old hand-set table (``positives`` in the output), and on 2,000 records the encoder read 0.016 lower than with
  it, on 5,000 the same (four stores each; docs/results.md, session 19). ``--class-weight balanced`` weighs each
  class's positives by its negatives / positives in the encoder's BCE. Compare several ``--seed`` values: one
  store's encoder figure moves by up to 0.06.

    python benchmarks/bench_realism.py --real ../shared/data/ptbxl-500 [--n 400] [--transfer --n-train 3000]
        [--train-seeds 5] [--real-reference] [--ablate-families] [--score-halves] [--cross-fit-prevalence]
        [--prevalence FILE] [--encoder --epochs 15]

``--train-seeds K`` repeats the logistic-regression transfer on K training stores (seeds SEED+1 .. SEED+K, each
with its own validation split) and adds ``transfer_over_seeds``: every store's chosen C and real AUROC, and the
mean and SD over stores, at the chosen C and at each C. One store's choice of C rests on a ~200-record synthetic
validation split, and differences between C values there are often smaller than its noise, so a single store
can land on either side of a target; the spread over stores is the figure to compare against one.
``--real-reference`` trains the same features and model on the real records (BASELINES.md's protocol), the
figure the synthetic-trained one is read against; ``--ablate-families`` scores the transfer with each feature
family alone and left out, at fixed C. ``--score-halves`` also scores every store on each half of the real
records (PTB-XL strat_fold 1-5 / 6-10), and ``--cross-fit-prevalence`` fits the generator's code prevalences
(``ecgalign.synth.prevalence``) on one half and scores stores generated with them on the other: a fit on the
records a figure is reported on is optimistic, and this measures by how much.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ecgalign.data.labels import SCPStatements
from ecgalign.synth.realism import compare, load_sample
from ecgalign.synth.realism.features import feature_families

CLASSES = ("NORM", "MI", "STTC", "CD", "HYP")


def _labels(codes: list[tuple[str, ...]]) -> np.ndarray:
    scp = SCPStatements.bundled()
    y = np.zeros((len(codes), len(CLASSES)), dtype=np.float32)
    for i, c in enumerate(codes):
        for name in scp.map_codes(c, "superdiagnostic"):
            y[i, CLASSES.index(name)] = 1.0
    return y


def _macro_auroc(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean([roc_auc_score(y[:, j], p[:, j]) for j in range(y.shape[1]) if 0 < y[:, j].sum() < len(y)]))


def _per_class(y: np.ndarray, p: np.ndarray) -> dict[str, float | None]:
    """AUROC of each superclass on its own (None where the class is absent or universal)."""
    return {name: (round(float(roc_auc_score(y[:, j], p[:, j])), 4) if 0 < y[:, j].sum() < len(y) else None)
            for j, name in enumerate(CLASSES)}


def _features(x: np.ndarray) -> np.ndarray:
    f = np.hstack(list(feature_families(x).values()))
    return np.nan_to_num(f, nan=0.0, posinf=0.0, neginf=0.0)


def transfer(synth, real, encoder: bool, seed: int = 0, epochs: int = 15, class_weight: str | None = None) -> dict:
    """Train on ``synth`` (90 % train, 10 % validation by patient), score on every labelled ``real`` record."""
    ys, yr = _labels(synth.codes), _labels(real.codes)
    keep = yr.sum(1) > 0
    rng = np.random.default_rng(seed)
    patients = np.unique(synth.patients)
    val_p = set(rng.choice(patients, size=max(1, len(patients) // 10), replace=False).tolist())
    val = np.array([p in val_p for p in synth.patients])
    fs, fr = _features(synth.x), _features(real.x[keep])
    best, each_c = None, {}
    for c in (0.01, 0.1, 1.0):
        models = [make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000)).fit(fs[~val], ys[~val, j])
                  for j in range(len(CLASSES))]
        score = _macro_auroc(ys[val], np.stack([m.predict_proba(fs[val])[:, 1] for m in models], 1))
        # Reported for every C so that the spread the selection rule moves over is visible; the choice below is
        # still made on the synthetic validation split alone.
        p_c = np.stack([m.predict_proba(fr)[:, 1] for m in models], 1)
        each_c[str(c)] = {"synthetic_val_auroc": round(score, 4),
                          "real_pooled_macro_auroc": round(_macro_auroc(yr[keep], p_c), 4),
                          "real_per_class_auroc": _per_class(yr[keep], p_c)}
        if best is None or score > best[0]:
            best = (score, c, p_c)
    pr = best[2]
    out = {"real_records": int(keep.sum()), "synthetic_train": int((~val).sum()),
           "handcrafted_logreg": {"C": best[1], "synthetic_val_auroc": round(best[0], 4),
                                  "real_pooled_macro_auroc": round(_macro_auroc(yr[keep], pr), 4),
                                  "real_per_class_auroc": _per_class(yr[keep], pr),
                                  "every_C": each_c},
           "prevalence": {"synthetic_train": dict(zip(CLASSES, ys[~val].mean(0).round(3).tolist())),
                          "real": dict(zip(CLASSES, yr[keep].mean(0).round(3).tolist()))},
           # What a network learns each class from: with real-like prevalences a store of a given size holds
           # fewer positives of the rarer classes than a store with abnormal codes over-represented.
           "positives": {"synthetic_train": dict(zip(CLASSES, ys[~val].sum(0).astype(int).tolist()))}}
    if encoder:
        import torch

        from ecgalign.eval.supervised import predict, train_supervised
        from ecgalign.data.spec import InputSpec

        torch.set_num_threads(os.cpu_count() or 1)
        cfg = {"layers": (1, 1, 1, 1), "widths": (32, 64, 96, 128)}
        t0 = time.perf_counter()
        net, info = train_supervised("xresnet1d_50", cfg, InputSpec(), synth.x[~val], ys[~val], synth.x[val], ys[val],
                                     epochs=epochs, patience=4, seed=seed, class_weight=class_weight)
        p = predict(net, real.x[keep])
        out["supervised_encoder"] = {**info, "config": {k: list(v) for k, v in cfg.items()},
                                     "train_s": round(time.perf_counter() - t0, 1),
                                     "real_pooled_macro_auroc": round(_macro_auroc(yr[keep], p), 4),
                                     "real_per_class_auroc": _per_class(yr[keep], p)}
    return out


def _fit_predict(c: float, xa: np.ndarray, ya: np.ndarray, xb: np.ndarray) -> np.ndarray:
    """One logistic regression per class (standardised features), fitted on a, probabilities on b."""
    return np.stack([make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000)).fit(xa, ya[:, j])
                     .predict_proba(xb)[:, 1] for j in range(ya.shape[1])], 1)


def real_reference(real, cs=(0.001, 0.01, 0.1, 1.0)) -> dict:
    """The same features and model trained on the real records themselves, with BASELINES.md's protocol (test
    fold k, validation fold k - 1, train on the other 8; C chosen on validation), pooled macro AUROC: what the
    synthetic-trained model is to be read against. Needs the records' official folds (PTB-XL strat_fold)."""
    if real.folds is None or any(f is None for f in real.folds):
        return {"skipped": "the real records carry no official folds"}
    y = _labels(real.codes)
    keep = y.sum(1) > 0
    x, y, fold = _features(real.x)[keep], y[keep], np.asarray(real.folds)[keep]
    ks = sorted(set(fold.tolist()))
    chosen, fixed = np.zeros_like(y), {c: np.zeros_like(y) for c in cs}
    for i, k in enumerate(ks):
        test, val = fold == k, fold == ks[i - 1]
        train = ~test & ~val
        best = None
        for c in cs:
            score = _macro_auroc(y[val], _fit_predict(c, x[train], y[train], x[val]))
            fixed[c][test] = _fit_predict(c, x[train], y[train], x[test])
            if best is None or score > best[0]:
                best = (score, c)
        chosen[test] = fixed[best[1]][test]
    return {"records": int(keep.sum()), "folds": len(ks),
            "pooled_macro_auroc_C_on_validation": round(_macro_auroc(y, chosen), 4),
            "pooled_macro_auroc_at_C": {str(c): round(_macro_auroc(y, p), 4) for c, p in fixed.items()}}


def family_ablation(synth, real, cs=(0.01, 0.1)) -> dict:
    """Transfer (trained on all of ``synth``, scored on labelled ``real``) with one feature family alone and with
    one left out, at fixed C: which family carries the transfer, and which one the choice of C acts on."""
    ys, yr = _labels(synth.codes), _labels(real.codes)
    keep = yr.sum(1) > 0
    fs = {k: np.nan_to_num(v, nan=0.0, posinf=0.0, neginf=0.0) for k, v in feature_families(synth.x).items()}
    fr = {k: np.nan_to_num(v, nan=0.0, posinf=0.0, neginf=0.0)[keep] for k, v in feature_families(real.x).items()}
    sets = {"all": list(fs), **{f"only {f}": [f] for f in fs},
            **{f"without {f}": [g for g in fs if g != f] for f in fs}}
    return {name: {str(c): round(_macro_auroc(yr[keep], _fit_predict(c, np.hstack([fs[f] for f in fam]), ys,
                                                                       np.hstack([fr[f] for f in fam]))), 4)
                   for c in cs} for name, fam in sets.items()}


def synth_sample(n: int, seed: int, prevalence: str | None = None):
    """``synth:N:SEED`` of the default generator, or of one with the code prevalences in the file ``prevalence``."""
    if prevalence is None:
        return load_sample(f"synth:{n}:{seed}")
    from ecgalign.synth import SynthConfig, synthesize
    from ecgalign.synth.prevalence import read_prevalence
    from ecgalign.synth.realism import sample_of

    config = SynthConfig(prevalence=read_prevalence(prevalence))
    return sample_of(synthesize(n, seed, config=config), f"synth:{n}:{seed} ({prevalence})")


def real_halves(real) -> dict:
    """The real records split by official fold (PTB-XL strat_fold 1-5 / 6-10: patient-disjoint halves)."""
    if real.folds is None or any(f is None for f in real.folds):
        raise SystemExit("--score-halves / --cross-fit-prevalence need real records with official folds (PTB-XL)")
    folds = np.asarray(real.folds)
    return {"folds 1-5": real.subset(np.flatnonzero(folds <= 5)), "folds 6-10": real.subset(np.flatnonzero(folds > 5))}


def cross_fit_prevalence(halves: dict, n_train: int, seeds: list[int], fit_n: int) -> dict:
    """For each half: code prevalences fitted to the other half's code rates (ecgalign.synth.prevalence), training
    stores generated with them, logistic-regression transfer scored on this half. Read against the same stores
    of the default generator scored on the same half (``--score-halves``): how much of a prevalence fit's gain
    holds on records it did not see."""
    from ecgalign.synth import SynthConfig, synthesize
    from ecgalign.synth.prevalence import code_rates, fit_prevalence
    from ecgalign.synth.realism import sample_of

    out = {}
    for test_name, test in halves.items():
        (fit_name, fit_on), = [(k, v) for k, v in halves.items() if k != test_name]
        fit = fit_prevalence(code_rates(fit_on.codes)[0], n=fit_n, seed=0, rounds=6)
        config = SynthConfig(prevalence=fit.prevalence)
        runs = [transfer(sample_of(synthesize(n_train, s, config=config), f"synth:{n_train}:{s} fitted"), test,
                         False, s - 1)["handcrafted_logreg"] for s in seeds]
        out[test_name] = {"prevalence_fitted_on": fit_name, "fit_largest_miss": fit.rounds[-1],
                          "prevalence": fit.prevalence, **over_seeds(runs, seeds)}
    return out


def over_seeds(runs: list[dict], seeds: list[int]) -> dict:
    """Mean and SD (ddof 1) over training stores of the real pooled AUROC, at the chosen C and at each C."""

    def stat(values: list[float]) -> dict:
        v = np.asarray(values, dtype=float)
        return {"mean": round(float(v.mean()), 4), "sd": round(float(v.std(ddof=1)) if v.size > 1 else 0.0, 4),
                "min": round(float(v.min()), 4), "max": round(float(v.max()), 4)}

    return {
        "train_seeds": seeds,
        "each": [{"seed": s, "C": r["C"], "real_pooled_macro_auroc": r["real_pooled_macro_auroc"],
                  "synthetic_val_auroc": r["synthetic_val_auroc"]} for s, r in zip(seeds, runs)],
        "chosen_C": stat([r["real_pooled_macro_auroc"] for r in runs]),
        "at_each_C": {c: stat([r["every_C"][c]["real_pooled_macro_auroc"] for r in runs]) for c in runs[0]["every_C"]},
        "C_chosen_counts": {c: sum(str(r["C"]) == c for r in runs) for c in runs[0]["every_C"]},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--real", required=True, help="real dataset folder or store, e.g. ../shared/data/ptbxl-500")
    ap.add_argument("--n", type=int, default=400, help="synthetic records for the realism comparison")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--transfer", action="store_true", help="also train on synthetic and score on real")
    ap.add_argument("--n-train", type=int, default=3000, help="synthetic training records for --transfer")
    ap.add_argument("--train-seeds", type=int, default=1,
                    help="with --transfer: repeat the logistic-regression transfer on this many training stores")
    ap.add_argument("--real-reference", action="store_true",
                    help="with --transfer: the same model trained on the real records (BASELINES.md's protocol)")
    ap.add_argument("--ablate-families", action="store_true",
                    help="with --transfer: transfer with each feature family alone and left out (first store)")
    ap.add_argument("--score-halves", action="store_true",
                    help="with --transfer: also score every training store on each half of the real records by fold")
    ap.add_argument("--cross-fit-prevalence", action="store_true",
                    help="with --transfer: fit code prevalences on one half of the real records, score on the other")
    ap.add_argument("--fit-n", type=int, default=20_000,
                    help="generated records counted per round of --cross-fit-prevalence")
    ap.add_argument("--prevalence", default=None,
                    help="generate every synthetic store with these code prevalences (a prevalence-fit file or a JSON "
                         "object; benchmarks/prevalence_hand_set.json is the generator before the fit)")
    ap.add_argument("--encoder", action="store_true", help="with --transfer: also the supervised 1-D encoder")
    ap.add_argument("--class-weight", choices=("balanced",), default=None,
                    help="with --encoder: weigh each class's positives by negatives / positives in the BCE")
    ap.add_argument("--epochs", type=int, default=15, help="most epochs of the encoder (early stop after 4)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    real = load_sample(args.real)
    t1 = time.perf_counter()
    synth = synth_sample(args.n, args.seed, args.prevalence)
    t2 = time.perf_counter()
    result = compare(synth, real)
    t3 = time.perf_counter()
    s = result.summary
    out = {
        "benchmark": "realism",
        "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
        "cpu_count": os.cpu_count(),
        "timing_s": {"load_real": round(t1 - t0, 1), "generate_and_load_synthetic": round(t2 - t1, 1),
                     "compare": round(t3 - t2, 1)},
        "records": {"synthetic": s["synthetic"]["records"], "real": s["real"]["records"]},
        "domain_auroc": s["domain_auroc"],
        "signs": [{k: g[k] for k in ("sign", "synthetic", "real", "ratio", "within_25pct")} for g in s["signs"]],
        "label_fidelity_synthetic": {k: v["meets"] for k, v in s["label_fidelity"]["synthetic"].items()},
        "class_profiles": s["class_profiles"],
    }
    if args.transfer:
        train = synth_sample(args.n_train, args.seed + 1, args.prevalence)
        out["transfer"] = transfer(train, real, args.encoder, args.seed, args.epochs, args.class_weight)
        if args.real_reference:
            out["real_reference"] = real_reference(real)
        if args.ablate_families:
            out["family_ablation"] = family_ablation(train, real)
        seeds = [args.seed + k for k in range(1, args.train_seeds + 1)]
        halves = real_halves(real) if args.score_halves or args.cross_fit_prevalence else {}
        runs, by_half = [out["transfer"]["handcrafted_logreg"]], {h: [] for h in halves if args.score_halves}
        for k, s in enumerate(seeds):
            store = train if k == 0 else synth_sample(args.n_train, s, args.prevalence)
            if k > 0:
                runs.append(transfer(store, real, False, s - 1)["handcrafted_logreg"])
            for h in by_half:
                by_half[h].append(transfer(store, halves[h], False, s - 1)["handcrafted_logreg"])
        if args.train_seeds > 1:
            out["transfer_over_seeds"] = over_seeds(runs, seeds)
        if by_half:
            out["transfer_by_half"] = {h: {"records": len(halves[h]), **over_seeds(r, seeds)}
                                       for h, r in by_half.items()}
        if args.cross_fit_prevalence:
            out["cross_fit_prevalence"] = cross_fit_prevalence(halves, args.n_train, seeds, args.fit_n)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
