"""Linear probing of frozen features (MERIT appendix; MERL section 4): a linear head on cached embeddings,
trained with AdamW (lr 1e-3, batch 64, up to 100 epochs) and BCE-with-logits (multi-label), the epoch chosen
by validation macro AUROC with early stopping; label fractions 1 % / 10 % / 100 % of the training part.

Test data never reaches model selection: ``train_linear_probe`` receives training and validation arrays only
(epoch choice), and ``choose_thresholds`` validation scores only (F1 thresholds); test labels are used by
the metrics alone. Every protocol function first calls ``check_splits`` (the leakage guard).

Results are JSON-ready dicts (plain floats and lists) that state the protocol used and never contain NaN:
an undefined value is None with a reason. ``run_cross_validation`` is ../shared/BASELINES.md's protocol
(test fold k, validation fold k-1, fold n for k = 1; fold mean +- SD and the pooled out-of-fold AUROC).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from scipy.special import expit
from torch import nn

from ecgalign.data.splits import cv_fold_split
from ecgalign.eval.metrics import (
    _rank_auroc,
    bootstrap_ci,
    choose_thresholds,
    classification_metrics,
    macro_auroc,
)
from ecgalign.eval.splits import LeakageError, check_splits, make_folds, stratified_fraction

__all__ = ["LeakageError", "LinearProbe", "check_splits", "make_folds", "run_cross_validation",
           "run_linear_probe", "stratified_fraction", "train_linear_probe"]

SUMMARY_METRICS = ("macro_auroc", "macro_auprc", "macro_f1", "accuracy", "subset_accuracy")
CI_ALPHA = 0.05


@dataclass
class LinearProbe:
    """A trained linear head: standardisation (train mean / std), weights, and how its epoch was chosen."""

    mean: np.ndarray  # (D,)
    std: np.ndarray  # (D,)
    weight: np.ndarray  # (C, D)
    bias: np.ndarray  # (C,)
    best_epoch: int  # 1-based
    epochs_run: int
    val_auroc: float | None  # validation macro AUROC of the chosen epoch (None when selected by loss)
    selection_metric: str  # "val_macro_auroc", or "val_bce" when no class has a val positive and negative
    selection_classes: list[int]  # classes the validation AUROC averages
    classes_without_positive: list[int]  # no positive training example: excluded from this probe's metrics
    history: list[float] = field(default_factory=list)  # selection value after each epoch
    settings: dict[str, Any] = field(default_factory=dict)

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """(N, C) logits."""
        z = (np.asarray(X, dtype=np.float32) - self.mean) / self.std
        return z @ self.weight.T + self.bias

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """(N, C) sigmoid scores, one independent probability per class."""
        return expit(self.decision_function(X)).astype(np.float32)

    def summary(self) -> dict[str, Any]:
        return {"best_epoch": self.best_epoch, "epochs_run": self.epochs_run, "val_auroc": self.val_auroc,
                "selection_metric": self.selection_metric}


def _labels(Y: Any, name: str) -> np.ndarray:
    y = np.asarray(Y, dtype=np.float32)
    if y.ndim != 2 or not np.isin(y, (0, 1)).all():
        raise ValueError(f"{name} must be an (N, C) multi-hot 0/1 matrix, got shape {y.shape}")
    return y


def _features(X: Any, name: str) -> np.ndarray:
    x = np.asarray(X, dtype=np.float32)
    if x.ndim != 2 or not np.isfinite(x).all():
        raise ValueError(f"{name} must be a finite (N, D) matrix, got shape {x.shape}")
    return x


def _adamw(params, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    try:  # the fused CPU kernel is several times faster on a 384 x 71 head (torch >= 2.4)
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


def train_linear_probe(X_train: np.ndarray, Y_train: np.ndarray, X_val: np.ndarray, Y_val: np.ndarray, *,
                       lr: float = 1e-3, weight_decay: float = 0.0, batch_size: int = 64, max_epochs: int = 100,
                       patience: int = 10, seed: int = 0) -> LinearProbe:
    """Fit nn.Linear on standardised features with BCEWithLogits and AdamW; keep the epoch with the best
    validation macro AUROC (ties: the earlier), stopping ``patience`` epochs after the last improvement.

    The validation AUROC averages the classes with a positive and a negative in ``Y_val`` and a positive in
    ``Y_train``; when there is none, selection falls back to the validation BCE (``selection_metric``).
    The head starts at zero (as logistic regression does: with lr 1e-3 and a few hundred steps on small data,
    a random start's direction would not be unlearned), so ``seed`` acts through the batch order, drawn from
    the probe's own torch.Generator: deterministic per seed, and the global RNG is neither used nor changed.
    """
    x_tr, x_va = _features(X_train, "X_train"), _features(X_val, "X_val")
    y_tr, y_va = _labels(Y_train, "Y_train"), _labels(Y_val, "Y_val")
    if len(x_tr) != len(y_tr) or len(x_va) != len(y_va) or len(x_tr) == 0 or len(x_va) == 0:
        raise ValueError(f"train {x_tr.shape}/{y_tr.shape} and val {x_va.shape}/{y_va.shape}: "
                         "rows must match and neither may be empty")
    if x_tr.shape[1] != x_va.shape[1] or y_tr.shape[1] != y_va.shape[1]:
        raise ValueError("train and validation differ in feature or class count")
    if batch_size < 1 or max_epochs < 1 or patience < 1:
        raise ValueError("batch_size, max_epochs and patience must be positive")
    mean = x_tr.mean(axis=0, dtype=np.float64)
    std = x_tr.std(axis=0, dtype=np.float64)
    std = np.where(x_tr.max(axis=0) > x_tr.min(axis=0), std, 1.0)  # constant features: leave unscaled
    mean, std = mean.astype(np.float32), std.astype(np.float32)
    xt = torch.from_numpy((x_tr - mean) / std)
    yt = torch.from_numpy(y_tr)
    xv = torch.from_numpy((x_va - mean) / std)
    yv_bool = y_va.astype(bool)
    without_positive = np.flatnonzero(y_tr.sum(axis=0) == 0)
    has_pos, has_neg = yv_bool.any(axis=0), ~yv_bool.all(axis=0)
    selection = np.flatnonzero(has_pos & has_neg & (y_tr.sum(axis=0) > 0))
    by_auroc = len(selection) > 0
    n, n_classes = xt.shape[0], yt.shape[1]

    generator = torch.Generator().manual_seed(seed)
    head = nn.utils.skip_init(nn.Linear, xt.shape[1], n_classes)
    with torch.no_grad():
        head.weight.zero_()
        head.bias.zero_()
    optimizer = _adamw(head.parameters(), lr, weight_decay)
    loss_fn = nn.BCEWithLogitsLoss()
    yv_t = torch.from_numpy(y_va)

    def validate() -> float:
        with torch.no_grad():
            logits = head(xv)
            if not by_auroc:
                return -float(loss_fn(logits, yv_t))
            auc, _ = _rank_auroc(yv_bool[:, selection], logits.numpy()[:, selection])
        return float(auc.mean())

    best_value, best_epoch, best_state = -math.inf, 0, (head.weight.detach().clone(), head.bias.detach().clone())
    history: list[float] = []
    epoch = 0
    for epoch in range(1, max_epochs + 1):
        order = torch.randperm(n, generator=generator)
        xe, ye = xt[order], yt[order]
        for start in range(0, n, batch_size):
            loss = loss_fn(head(xe[start:start + batch_size]), ye[start:start + batch_size])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        value = validate()
        history.append(value)
        if value > best_value:
            best_value, best_epoch = value, epoch
            best_state = (head.weight.detach().clone(), head.bias.detach().clone())
        elif epoch - best_epoch >= patience:
            break
    return LinearProbe(
        mean=mean, std=std, weight=best_state[0].numpy(), bias=best_state[1].numpy(), best_epoch=best_epoch,
        epochs_run=epoch, val_auroc=best_value if by_auroc else None,
        selection_metric="val_macro_auroc" if by_auroc else "val_bce", selection_classes=selection.tolist(),
        classes_without_positive=without_positive.tolist(), history=history,
        settings={"lr": lr, "weight_decay": weight_decay, "batch_size": batch_size, "max_epochs": max_epochs,
                  "patience": patience, "seed": seed},
    )


def _parts(split: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, val, test) index arrays of a ``Split``-like object or a mapping with those keys."""
    get = split.__getitem__ if isinstance(split, Mapping) else lambda k: getattr(split, k)
    try:
        return tuple(np.asarray(get(k)) for k in ("train", "val", "test"))  # type: ignore[return-value]
    except (KeyError, AttributeError) as exc:
        raise TypeError("split must have train, val and test index arrays") from exc


def _check_inputs(X: Any, Y: Any, classes: Sequence[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    x, y = _features(X, "X"), _labels(Y, "Y")
    names = [str(c) for c in classes]
    if len(x) != len(y):
        raise ValueError(f"X has {len(x)} rows, Y {len(y)}")
    if len(names) != y.shape[1]:
        raise ValueError(f"{len(names)} class names for {y.shape[1]} label columns")
    return x, y, names


def _mean_sd(values: Sequence[float | None]) -> tuple[float | None, float | None, int]:
    """Mean and sample SD (ddof = 1; None for fewer than two values) of the defined values, and their count."""
    v = [x for x in values if x is not None]
    if not v:
        return None, None, 0
    return float(np.mean(v)), (float(np.std(v, ddof=1)) if len(v) > 1 else None), len(v)


def _aggregate(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"mean": {}, "sd": {}, "n": {}}
    for key in SUMMARY_METRICS:
        out["mean"][key], out["sd"][key], out["n"][key] = _mean_sd([r[key] for r in rows])
    return out


def _ci(y: np.ndarray, scores: np.ndarray, exclude: Mapping[int, str], n_boot: int,
        groups: Sequence[Any] | None = None) -> dict[str, Any]:
    """Bootstrap CI of macro AUROC over the classes not excluded for lack of a training positive; over
    ``groups`` (the test records' patients) when given."""
    if n_boot <= 0:
        return {"low": None, "high": None, "reason": "n_boot = 0: no bootstrap"}
    keep = np.array([j not in exclude for j in range(y.shape[1])])
    if not keep.any():
        return {"low": None, "high": None, "reason": "every class is excluded"}
    ci = bootstrap_ci(y[:, keep], scores[:, keep], macro_auroc, n_boot=n_boot, alpha=CI_ALPHA, seed=0,
                      groups=groups)
    return ci.to_dict()


def _probe_fraction(x: np.ndarray, y: np.ndarray, names: list[str], train: np.ndarray, val: np.ndarray,
                    test: np.ndarray, fraction: float, seeds: Sequence[int], probe_kwargs: Mapping[str, Any],
                    score_seeds: bool = True) -> dict[str, Any]:
    """One label fraction on one split, every seed: per-seed test metrics (when ``score_seeds``), and the
    seed-averaged validation / test probabilities with validation-chosen thresholds and the union of
    exclusions."""
    runs, val_scores, test_scores = [], [], []
    missing: dict[int, list[int]] = {}
    for seed in seeds:
        subset = train[stratified_fraction(y[train], fraction, seed)]
        probe = train_linear_probe(x[subset], y[subset], x[val], y[val], seed=seed, **probe_kwargs)
        sv, st = probe.predict_proba(x[val]), probe.predict_proba(x[test])
        for j in probe.classes_without_positive:
            missing.setdefault(j, []).append(seed)
        run = {"seed": int(seed), "n_train": int(len(subset)), **probe.summary(),
               "classes_without_train_positive": [names[j] for j in probe.classes_without_positive]}
        if score_seeds:
            exclude = {j: "no positive training example" for j in probe.classes_without_positive}
            m = classification_metrics(y[test], st, thresholds=choose_thresholds(y[val], sv), class_names=names,
                                       exclude=exclude)
            run.update({k: m[k] for k in SUMMARY_METRICS})
        runs.append(run)
        val_scores.append(sv)
        test_scores.append(st)
    avg_val, avg_test = np.mean(val_scores, axis=0), np.mean(test_scores, axis=0)
    exclude = {j: f"no positive training example (seed(s) {', '.join(map(str, s))})"
               for j, s in sorted(missing.items())}
    return {"runs": runs, "val_scores": avg_val, "test_scores": avg_test,
            "thresholds": choose_thresholds(y[val], avg_val), "exclude": exclude, "missing": missing}


def _probe_settings(probe_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    defaults = {"lr": 1e-3, "weight_decay": 0.0, "batch_size": 64, "max_epochs": 100, "patience": 10}
    unknown = set(probe_kwargs) - set(defaults)
    if unknown:
        raise TypeError(f"unknown probe setting(s) {sorted(unknown)}; expected some of {sorted(defaults)}")
    return defaults | dict(probe_kwargs)


def _protocol(settings: Mapping[str, Any], fractions: Sequence[float], seeds: Sequence[int],
              n_boot: int) -> dict[str, Any]:
    return {
        "probe": "linear head on frozen features (MERIT appendix): nn.Linear (zero start), BCEWithLogits "
                 "(multi-label), AdamW",
        **settings,
        "features": "standardised with the training subset's mean and std",
        "selection": "epoch with the best validation macro AUROC (ties: earlier), early stopping after "
                     "`patience` epochs without improvement; validation only, never test",
        "thresholds": "per class, maximising F1 on validation (seed-averaged: on the seed-averaged val scores)",
        "label_fractions": "stratified_fraction of the training part: one positive per class first (rarest "
                           "first), then iterative stratification (Sechidis et al. 2011)",
        "fractions": [float(f) for f in fractions], "seeds": [int(s) for s in seeds],
        "seed_aggregation": "mean / sample SD (ddof=1) of per-seed metrics; 'seed_averaged' = metrics of the "
                            "mean of the seeds' probabilities; a seed sets the training subset and the batch "
                            "order (at fraction 1 only the batch order)",
        "exclusions": "classes without a test positive and negative, or without a training positive (in any "
                      "seed or fold that contributes), are left out of macro metrics and listed",
        "ci": f"{100 * (1 - CI_ALPHA):.0f}% percentile bootstrap over test records of the seed-averaged macro "
              f"AUROC, n_boot={int(n_boot)}",
    }


def _json_ready(obj: Any) -> Any:
    """Plain Python types; a non-finite float is a bug here (undefined values are None with a reason)."""
    if isinstance(obj, Mapping):
        return {str(k): _json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [_json_ready(v) for v in (obj.tolist() if isinstance(obj, np.ndarray) else obj)]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        if not math.isfinite(obj):
            raise ValueError("internal error: a non-finite number reached a result dict")
        return float(obj)
    return obj


def run_linear_probe(X: np.ndarray, Y: np.ndarray, classes: Sequence[str], split: Any, *,
                     fractions: Sequence[float] = (0.01, 0.1, 1.0), seeds: Sequence[int] = (0, 1, 2),
                     n_boot: int = 1000, patient_ids: Sequence[Any] | None = None,
                     probe_kwargs: Mapping[str, Any] | None = None, ci_by_patient: bool = False) -> dict[str, Any]:
    """Linear probing of features ``X`` (N, D) for labels ``Y`` (N, C) on one train / val / test ``split``
    (a ``Split`` or a mapping of index arrays): per label fraction and seed a stratified training subset, a
    probe chosen on validation, thresholds chosen on validation, metrics on test; per fraction the mean and
    SD over seeds, the metrics of the seed-averaged probabilities and a bootstrap CI of their macro AUROC
    (over test patients with ``ci_by_patient``, for data where a patient has several records)."""
    x, y, names = _check_inputs(X, Y, classes)
    train, val, test = _parts(split)
    check_splits(train, val, test, patient_ids)
    if min(len(train), len(val), len(test)) == 0:
        raise ValueError(f"every split part needs records: train {len(train)}, val {len(val)}, "
                         f"test {len(test)}")
    settings = _probe_settings(probe_kwargs or {})
    if ci_by_patient and patient_ids is None:
        raise ValueError("ci_by_patient needs patient_ids")
    groups = np.asarray(patient_ids, dtype=object)[test] if ci_by_patient else None
    out: dict[str, Any] = {
        "protocol": {"name": "linear_probe", "split": "given train / validation / test",
                     **_protocol(settings, fractions, seeds, n_boot)},
        "classes": names,
        "n_records": {"train": len(train), "val": len(val), "test": len(test)},
        "fractions": [],
    }
    for fraction in fractions:
        r = _probe_fraction(x, y, names, train, val, test, fraction, seeds, settings)
        avg = classification_metrics(y[test], r["test_scores"], thresholds=r["thresholds"], class_names=names,
                                     exclude=r["exclude"])
        n_train = r["runs"][0]["n_train"]
        out["fractions"].append({
            "fraction": float(fraction), "n_train": n_train, "actual_fraction": n_train / len(train),
            **_aggregate(r["runs"]),
            "seed_averaged": {**{k: avg[k] for k in SUMMARY_METRICS}, "micro_auroc": avg["micro_auroc"],
                              "macro_auroc_ci95": _ci(y[test], r["test_scores"], r["exclude"], n_boot, groups),
                              "per_class_auroc": {c: v["auroc"] for c, v in avg["per_class"].items()},
                              "thresholds": r["thresholds"], "classes_evaluated": avg["classes_evaluated"]},
            "excluded_classes": avg["excluded_classes"],
            "runs": r["runs"],
        })
    return _json_ready(out)


def run_cross_validation(X: np.ndarray, Y: np.ndarray, classes: Sequence[str], folds: Any, *, n_folds: int = 10,
                         fractions: Sequence[float] = (0.01, 0.1, 1.0), seeds: Sequence[int] = (0, 1, 2),
                         n_boot: int = 1000, patient_ids: Sequence[Any] | None = None,
                         probe_kwargs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """k-fold cross-validated linear probing (../shared/BASELINES.md): for test fold k, validation fold k-1
    (fold n_folds for k = 1), training on the others. ``folds``: (N,) fold numbers 1..n_folds (PTB-XL's
    ``strat_fold``; ``make_folds`` for datasets without); records in no fold take part in no fold.

    Inside each fold the seeds' probabilities are averaged first (per-seed runs list how each probe was
    selected, not per-seed test metrics: scikit-learn's per-class AUROC is the slow part of the protocol).
    Per fraction: each fold's metrics, their
    mean and sample SD over folds, and the *pooled* metrics of all out-of-fold predictions together (F1 /
    accuracy at each fold's own validation thresholds) with a bootstrap CI of the pooled macro AUROC.
    """
    x, y, names = _check_inputs(X, Y, classes)
    fold = np.asarray(folds)
    if fold.shape != (len(y),):
        raise ValueError(f"folds must hold one fold number per record: shape {fold.shape}, {len(y)} records")
    settings = _probe_settings(probe_kwargs or {})
    splits = [cv_fold_split(fold, k, n_folds) for k in range(1, n_folds + 1)]
    for k, s in enumerate(splits, start=1):
        check_splits(s.train, s.val, s.test, patient_ids)
        if min(len(s.train), len(s.val), len(s.test)) == 0:
            raise ValueError(f"fold {k}: train {len(s.train)}, val {len(s.val)}, test {len(s.test)} records; "
                             f"every fold 1..{n_folds} needs records")
    in_test = np.zeros(len(y), dtype=bool)
    for s in splits:
        in_test[s.test] = True
    out: dict[str, Any] = {
        "protocol": {"name": "linear_probe_cross_validation", "n_folds": int(n_folds),
                     "split": f"test fold k, validation fold k-1 (fold {n_folds} for k = 1), train on the "
                              f"other {n_folds - 2}",
                     "fold_aggregation": "mean and sample SD (ddof=1) over folds of the seed-averaged fold "
                                         "metrics",
                     "pooled": "metrics of all out-of-fold seed-averaged predictions together; F1 / accuracy "
                               "at each fold's validation thresholds",
                     **_protocol(settings, fractions, seeds, n_boot)},
        "classes": names,
        "n_records": int(len(y)), "n_records_in_folds": int(in_test.sum()),
        "fractions": [],
    }
    for fraction in fractions:
        oof = np.zeros(y.shape, dtype=np.float64)
        oof_thresholds = np.zeros(y.shape, dtype=np.float64)
        missing: dict[int, int] = {}
        fold_rows = []
        for k, s in enumerate(splits, start=1):
            r = _probe_fraction(x, y, names, s.train, s.val, s.test, fraction, seeds, settings,
                                score_seeds=False)
            oof[s.test], oof_thresholds[s.test] = r["test_scores"], r["thresholds"]
            for j, seeds_missing in r["missing"].items():
                missing[j] = missing.get(j, 0) + len(seeds_missing)
            m = classification_metrics(y[s.test], r["test_scores"], thresholds=r["thresholds"],
                                       class_names=names, exclude=r["exclude"])
            fold_rows.append({"test_fold": k, "val_fold": n_folds if k == 1 else k - 1,
                              "n_train": len(s.train), "n_val": len(s.val), "n_test": len(s.test),
                              "n_train_subset": r["runs"][0]["n_train"],
                              **{key: m[key] for key in SUMMARY_METRICS},
                              "excluded_classes": [e["class"] for e in m["excluded_classes"]],
                              "runs": r["runs"]})
        n_probes = n_folds * len(seeds)
        exclude = {j: f"no positive training example in {c} of {n_probes} probes (fold x seed)"
                   for j, c in sorted(missing.items())}
        pooled = classification_metrics(y[in_test], oof[in_test], thresholds=oof_thresholds[in_test],
                                        class_names=names, exclude=exclude)
        folds_agg = _aggregate(fold_rows)
        out["fractions"].append({
            "fraction": float(fraction),
            "fold_mean": folds_agg["mean"], "fold_sd": folds_agg["sd"], "n_folds_defined": folds_agg["n"],
            "pooled": {**{key: pooled[key] for key in SUMMARY_METRICS}, "micro_auroc": pooled["micro_auroc"],
                       "n_records": pooled["n_records"],
                       "macro_auroc_ci95": _ci(y[in_test], oof[in_test], exclude, n_boot),
                       "per_class_auroc": {c: v["auroc"] for c, v in pooled["per_class"].items()},
                       "classes_evaluated": pooled["classes_evaluated"],
                       "excluded_classes": pooled["excluded_classes"]},
            "folds": fold_rows,
        })
    return _json_ready(out)
