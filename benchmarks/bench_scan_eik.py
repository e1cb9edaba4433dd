"""ECG-Scan image encoder on printouts we did not draw (issue 14): the same model, the same records, two
printout generators. ECG-Scan (000_290557cf3ffea0eb) §5.2 evaluates image encoders on printouts; here one set
comes from ecg-image-kit (``../shared/data/eik-renders``, the PhysioNet Challenge 2024 generator) and the other
from our renderer at the same dpi mix.

Both image tables come from ``ecgalign image-table`` (labels from ptbxl-500 by record id). For the model and
its random-init twin, on the records both tables hold:
- linear probe, cross-validated by ``strat_fold`` (test fold k, validation fold k-1, train on the rest; seeds
  averaged, as ``ecgalign eval linear-probe --cv 10`` does): pooled out-of-fold macro AUROC per printout set;
- zero-shot (cosine similarity to the packaged clinical prompts, ``ecgalign eval zero-shot``);
- the difference eik − ours with a paired bootstrap 95 % CI (the same record resamples for both sets).
With ~140 records the CIs are wide: a 0.05 difference is at the edge of what this resolves.

Diagnostics of a probe gap (``diagnostics`` in the JSON):
- ``linear_probe_joint``: the same probe on the shared-space (teacher-aligned) embeddings that zero-shot uses,
  instead of the pooled encoder features: does the gap live outside the aligned subspace?
- ``cross_generator``: probes trained on one generator's printouts (folds as above), scored on the other's;
- ``generator_auroc``: how well a logistic regression tells the two generators apart from the features
  (10-fold CV grouped by record, so a record's two printouts are never split), per feature kind;
- ``paired_cosine``: mean cosine of a record's two printouts' features against that of different records;
- ``feature_spread``: per set, the summed variance of the features over its printouts and the share of it on
  the first principal direction (a set whose features barely move, or move mostly along one nuisance
  direction, is hard to probe after per-feature standardisation).
- ``reconstruction`` (with ``--truth DATASET``, the records' source folder): the model's signal decoder on
  each printout against the record itself, Pearson correlation per record x lead (leads the decoder
  reconstructs over the whole 10 s). Per record, not per class: 140 paired records x 12 leads resolve far
  smaller differences than a 5-class AUROC on 140 records does.

``--align-rows``: both sets' pages first have their rows moved to where our renderer draws them (the
digitiser finds them; ``ecgalign.render.digitize.rows``), as ``ecgalign embed / eval --align-rows`` do; the JSON
then counts the pages aligned and those left unchanged.

    python benchmarks/bench_scan_eik.py --checkpoint RUN --eik EIK.csv --ours OURS.csv [--task superdiagnostic]
        [--truth ../shared/data/ptbxl-500] [--align-rows]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def oof_probe_scores(x: np.ndarray, y: np.ndarray, folds: np.ndarray, seeds: list[int], n_folds: int = 10,
                     score_on: np.ndarray | None = None) -> np.ndarray:
    """(N, C) out-of-fold probabilities of seed-averaged linear probes (ecgalign.eval.linear_probe).

    ``score_on``: the other printout set of the same N records, row for row; the probe trains and selects on
    ``x`` and scores ``score_on``'s test fold instead of ``x``'s."""
    from ecgalign.data.splits import cv_fold_split
    from ecgalign.eval.linear_probe import train_linear_probe

    scored = x if score_on is None else score_on
    oof = np.full(y.shape, np.nan)
    for k in range(1, n_folds + 1):
        s = cv_fold_split(folds, k, n_folds)
        if min(len(s.train), len(s.val), len(s.test)) == 0:
            raise SystemExit(f"fold {k}: train {len(s.train)}, val {len(s.val)}, test {len(s.test)} records; "
                             f"every fold 1..{n_folds} needs records")
        probs = [train_linear_probe(x[s.train], y[s.train], x[s.val], y[s.val], seed=seed).predict_proba(scored[s.test])
                 for seed in seeds]
        oof[s.test] = np.mean(probs, axis=0)
    return oof


def generator_auroc(a: np.ndarray, b: np.ndarray, n_folds: int = 10) -> float:
    """CV AUROC of a logistic regression telling printouts of set ``a`` from ``b`` (row i of both = one record;
    folds grouped by record, features standardised on the training part)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    n = len(a)
    x, t = np.concatenate([a, b]), np.r_[np.ones(n), np.zeros(n)]
    group = np.tile(np.arange(n) % n_folds, 2)
    score = np.zeros(2 * n)
    for k in range(n_folds):
        test = group == k
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
        score[test] = clf.fit(x[~test], t[~test]).predict_proba(x[test])[:, 1]
    return float(roc_auc_score(t, score))


def paired_cosine(a: np.ndarray, b: np.ndarray) -> dict:
    """Mean cosine similarity of a record's two printouts (diagonal) and of different records (off-diagonal),
    after centring each set on its own mean (a generator offset alone would otherwise look like agreement)."""
    a, b = a - a.mean(0), b - b.mean(0)
    a = a / np.linalg.norm(a, axis=1, keepdims=True).clip(1e-12)
    b = b / np.linalg.norm(b, axis=1, keepdims=True).clip(1e-12)
    sim = a @ b.T
    off = ~np.eye(len(a), dtype=bool)
    return {"same_record": float(np.diag(sim).mean()), "different_records": float(sim[off].mean())}


def feature_spread(x: np.ndarray) -> dict:
    c = x - x.mean(0)
    ev = np.linalg.svd(c, compute_uv=False) ** 2
    return {"total_variance": float(c.var(0).sum()), "first_direction_share": float(ev[0] / ev.sum())}


def row_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation along the last axis, NaN where either row is flat or not finite."""
    a = a - a.mean(-1, keepdims=True)
    b = b - b.mean(-1, keepdims=True)
    den = np.sqrt((a * a).sum(-1) * (b * b).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a * b).sum(-1) / den
    return np.where(np.isfinite(r) & (den > 1e-12), r, np.nan)


def reconstruction_agreement(model, truth: str, ids: list[str], eik_images: list[str], ours_images: list[str],
                             n_boot: int, seed: int = 0) -> dict:
    """The decoder's reconstruction of each record from its two printouts against the record (read from
    ``truth`` at the model's rate): per-record mean correlation over 12 leads, per set, and the paired
    bootstrap of eik − ours over records."""
    import inspect

    from ecgalign.data.readers import detect_format, get_reader, open_dataset

    fs = float(model.task.recipe.data.fs)
    takes_fs = "fs" in inspect.signature(get_reader(detect_format(truth)).__init__).parameters
    reader = open_dataset(truth, fs=int(fs)) if takes_fs else open_dataset(truth)  # PTB-XL ships 100 and 500 Hz
    index = {str(reader.record_id(i)): i for i in range(len(reader))}
    missing = [r for r in ids if r not in index]
    if missing:
        raise SystemExit(f"{truth}: records {missing[:5]} of the tables are not in the truth folder")
    samples = int(round(fs * model.task.recipe.data.seconds))
    ref = []
    for r in ids:
        rec = reader.read(index[r])
        if abs(float(rec.fs) - fs) > 1e-6:
            raise SystemExit(f"{truth}: record {r} is at {rec.fs:g} Hz; the model reconstructs {fs:g} Hz")
        ref.append(np.asarray(rec.signal, dtype=np.float64)[:, :samples])
    ref = np.stack(ref)
    out: dict = {"fs": fs, "metric": "Pearson r per record x lead, then the record's mean over leads"}
    per_record = {}
    for name, images in (("eik", eik_images), ("ours", ours_images)):
        rec = model.reconstruct(images)[..., :samples].astype(np.float64)
        r = row_correlation(rec, ref)  # (N, 12)
        per_record[name] = np.nanmean(r, axis=1)
        out[name] = {"median_r": float(np.nanmedian(r)), "mean_r": float(np.nanmean(r)),
                     "per_lead_mean_r": [float(v) for v in np.nanmean(r, axis=0)]}
    d = per_record["eik"] - per_record["ours"]
    rng = np.random.default_rng(seed)
    boots = [np.nanmean(d[rng.integers(0, len(d), len(d))]) for _ in range(n_boot)]
    out["eik_minus_ours"] = float(np.nanmean(d))
    out["eik_minus_ours_ci95"] = [float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))]
    return out


def compare(y: np.ndarray, a: np.ndarray, b: np.ndarray, n_boot: int) -> dict:
    """Macro AUROC of score sets ``a`` (eik) and ``b`` (ours) with bootstrap CIs, and the paired difference."""
    from ecgalign.eval.metrics import bootstrap_ci, macro_auroc, paired_bootstrap_delta

    delta = paired_bootstrap_delta(y, a, b, metric_fn=macro_auroc, n_boot=n_boot)
    return {"eik": delta["a"], "eik_ci95": list(bootstrap_ci(y, a, macro_auroc, n_boot=n_boot)),
            "ours": delta["b"], "ours_ci95": list(bootstrap_ci(y, b, macro_auroc, n_boot=n_boot)),
            "eik_minus_ours": delta["delta"], "eik_minus_ours_ci95": delta["ci"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", required=True, help="an ecg-scan run or model folder")
    ap.add_argument("--eik", required=True, help="image table of the ecg-image-kit printouts")
    ap.add_argument("--ours", required=True, help="image table of our printouts of the same records")
    ap.add_argument("--task", default="superdiagnostic", help="label set(s), comma-separated")
    ap.add_argument("--seeds", default="0,1,2", help="probe seeds averaged per fold")
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--cache-dir", default=None, help="embedding cache (default: ecgalign's)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None, help="also write the JSON here")
    ap.add_argument("--align-rows", action="store_true", help="move each printout's rows to the renderer's "
                    "baselines before encoding (both tables; ecgalign.render.digitize.rows)")
    ap.add_argument("--truth", default=None, help="the records' source folder (e.g. ../shared/data/ptbxl-500): "
                    "adds the reconstruction diagnostic")
    args = ap.parse_args()

    import torch

    import ecgalign
    from ecgalign.eval.data import attach_embeddings, load_eval_data
    from ecgalign.eval.zero_shot import class_embeddings
    from ecgalign.text.prompts import prompt_set

    torch.set_num_threads(args.threads)
    t_all = time.perf_counter()
    model = ecgalign.load(args.checkpoint, device="cpu")
    if model.input_kind != "image":
        raise SystemExit(f"{args.checkpoint}: an image model (ecg-scan) is needed, this one reads {model.input_kind}")
    model.align_rows = args.align_rows
    seeds = [int(s) for s in args.seeds.split(",")]
    result: dict = {"checkpoint": str(args.checkpoint), "eik": args.eik, "ours": args.ours, "seeds": seeds,
                    "n_boot": args.n_boot, "align_rows": args.align_rows, "tasks": {}}
    for role, enc in (("model", model), ("random_init", model.random_init(seed=0))):
        t0 = time.perf_counter()
        eik = attach_embeddings(load_eval_data(args.eik), enc, args.cache_dir)
        ours = attach_embeddings(load_eval_data(args.ours), enc, args.cache_dir)
        shared = sorted(set(eik.meta["record_id"].astype(str)) & set(ours.meta["record_id"].astype(str)))
        ie = {r: i for i, r in enumerate(eik.meta["record_id"].astype(str))}
        io = {r: i for i, r in enumerate(ours.meta["record_id"].astype(str))}
        re_, ro = [ie[r] for r in shared], [io[r] for r in shared]
        folds = eik.folds[re_]
        if not np.array_equal(folds, ours.folds[ro]):
            raise SystemExit("the two tables give the same record different folds")
        result["records"] = len(shared)
        result["skipped"] = {"eik": len(eik.skipped), "ours": len(ours.skipped)}
        for task in [t.strip() for t in args.task.split(",") if t.strip()]:
            y, classes = eik.labels(task)
            y = y[re_]
            section = result["tasks"].setdefault(task, {"classes": classes})
            probe = [oof_probe_scores(d.features[rows], y, folds, seeds) for d, rows in ((eik, re_), (ours, ro))]
            section.setdefault("linear_probe", {})[role] = compare(y, probe[0], probe[1], args.n_boot)
            diag = section.setdefault("diagnostics", {}).setdefault(role, {})
            cross = [oof_probe_scores(fit.features[fit_rows], y, folds, seeds, score_on=other.features[other_rows])
                     for (fit, fit_rows), (other, other_rows) in (((ours, ro), (eik, re_)), ((eik, re_), (ours, ro)))]
            diag["cross_generator"] = {"trained_on_ours_scored_on_eik": compare(y, cross[0], probe[1], args.n_boot),
                                       "trained_on_eik_scored_on_ours": compare(y, probe[0], cross[1], args.n_boot)}
            kinds = {"features": (eik.features[re_], ours.features[ro])}
            if eik.joint is not None and ours.joint is not None:
                kinds["joint"] = (eik.joint[re_], ours.joint[ro])
                joint = [oof_probe_scores(d.joint[rows], y, folds, seeds) for d, rows in ((eik, re_), (ours, ro))]
                diag["linear_probe_joint"] = compare(y, joint[0], joint[1], args.n_boot)
            diag["generator_auroc"] = {k: generator_auroc(a, b) for k, (a, b) in kinds.items()}
            diag["paired_cosine"] = {k: paired_cosine(a, b) for k, (a, b) in kinds.items()}
            diag["feature_spread"] = {"eik": feature_spread(kinds["features"][0]), "ours": feature_spread(kinds["features"][1])}
            if eik.joint is not None and ours.joint is not None:
                prompts = prompt_set(eik.prompt_dataset, task)
                text = class_embeddings(enc, {c: prompts[c] for c in classes})  # (C, P)
                zs = [d.joint[rows] @ text.T for d, rows in ((eik, re_), (ours, ro))]
                section.setdefault("zero_shot", {})[role] = compare(y, zs[0], zs[1], args.n_boot)
        if role == "model" and args.truth and getattr(model, "can_reconstruct", False):
            result["reconstruction"] = reconstruction_agreement(
                model, args.truth, shared, [str(eik.meta["image"].iloc[i]) for i in re_],
                [str(ours.meta["image"].iloc[i]) for i in ro], args.n_boot)
        result.setdefault("seconds", {})[role] = time.perf_counter() - t0
        print(f"# {role}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    if args.align_rows:
        result["row_alignment"] = dict(model.row_alignment)  # the model's own pages (not the random init's)
    result["wall_s"] = time.perf_counter() - t_all
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
