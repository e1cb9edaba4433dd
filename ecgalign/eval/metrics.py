"""Multi-label classification metrics and bootstrap intervals on plain arrays (no model or dataset knowledge).

``y_true`` is an (N, C) multi-hot matrix, ``scores`` an (N, C) matrix of per-class scores (sigmoid
probabilities for F1 / accuracy at the default 0.5 threshold; any monotone score for AUROC / AUPRC).
AUROC, average precision and F1 come from scikit-learn.

A class is *evaluated* when ``y_true`` has both a positive and a negative for it (and the caller did not
exclude it, e.g. because its probe never saw a positive training example). Every summary number (macro and
micro) is computed over the evaluated classes only; the others are listed in ``excluded_classes`` with the
reason, so a macro value is never NaN: it is None, with a reason, when no class can be evaluated.

Bootstrap intervals are percentile intervals over records (Efron & Tibshirani 1993): rows are resampled with
replacement and the metric is recomputed. Macro AUROC has a vectorised rank-based path (resamples as
per-record multiplicities, Mann-Whitney U with half credit for ties), tested against scikit-learn.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

MetricFn = Callable[[np.ndarray, np.ndarray], "float | None"]

_RESAMPLE_ELEMENTS = 2_000_000  # resamples are drawn in chunks of about this many (record, resample) cells


def _check(y_true: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    """(N, C) bool labels and (N, C) float64 scores; 1-D inputs are one class."""
    y = np.asarray(y_true)
    s = np.asarray(scores, dtype=np.float64)
    y = y[:, None] if y.ndim == 1 else y
    s = s[:, None] if s.ndim == 1 else s
    if y.ndim != 2 or y.shape != s.shape:
        raise ValueError(f"y_true {np.shape(y_true)} and scores {np.shape(scores)} must both be (N, C)")
    if y.size and not np.isin(y, (0, 1)).all():
        raise ValueError("y_true must be multi-hot (only 0 and 1)")
    if not np.isfinite(s).all():
        raise ValueError("scores contain NaN or infinite values")
    return y.astype(bool), s


def _names(class_names: Sequence[str] | None, n_classes: int) -> list[str]:
    names = [str(i) for i in range(n_classes)] if class_names is None else [str(c) for c in class_names]
    if len(names) != n_classes:
        raise ValueError(f"{len(names)} class names for {n_classes} score columns")
    if len(set(names)) != len(names):
        raise ValueError("class names must be unique")
    return names


def evaluable_classes(y_true: Any) -> np.ndarray:
    """(C,) bool: the classes with at least one positive and one negative in ``y_true``."""
    y = np.asarray(y_true).astype(bool)
    y = y[:, None] if y.ndim == 1 else y
    n_pos = y.sum(axis=0)
    return (n_pos > 0) & (n_pos < len(y))


def _per_class(fn: Callable, y: np.ndarray, s: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``fn(y[:, j], s[:, j])`` for every column in ``cols`` (one scikit-learn call when there are several)."""
    if len(cols) == 0:
        return np.zeros(0)
    if len(cols) == 1:
        return np.array([fn(y[:, cols[0]], s[:, cols[0]])], dtype=np.float64)
    return np.asarray(fn(y[:, cols], s[:, cols], average=None), dtype=np.float64)


def macro_auroc(y_true: Any, scores: Any) -> float | None:
    """Mean one-vs-rest AUROC over the classes of ``y_true`` with a positive and a negative (scikit-learn's
    ``roc_auc_score`` per class); None when no class has both."""
    y, s = _check(y_true, scores)
    cols = np.flatnonzero(evaluable_classes(y))
    return float(_per_class(roc_auc_score, y, s, cols).mean()) if len(cols) else None


def _thresholds(thresholds: Any, s: np.ndarray) -> tuple[np.ndarray | None, str]:
    """Thresholds broadcastable to ``s`` (one per class, or one per record and class), and how they were set."""
    if thresholds is None:
        if s.size and (s.min() < 0 or s.max() > 1):
            return None, "scores are not probabilities in [0, 1] and no thresholds were given"
        return np.full(s.shape[1], 0.5), "0.5 on probabilities (default)"
    t = np.asarray(thresholds, dtype=np.float64)
    if t.shape not in ((s.shape[1],), s.shape) or not np.isfinite(t).all():
        raise ValueError(f"thresholds must be finite, shaped (C,) or (N, C) = {s.shape}; got {t.shape}")
    return t, "given"


def classification_metrics(y_true: Any, scores: Any, thresholds: Any = None,
                           class_names: Sequence[str] | None = None, *,
                           exclude: Mapping[int, str] | None = None) -> dict[str, Any]:
    """Macro / micro AUROC, AUPRC, F1 and accuracy of multi-label ``scores`` against ``y_true``.

    ``thresholds``: per class (C,) or per record and class (N, C, e.g. pooled folds each with its own
    validation thresholds); a record is predicted positive for a class when its score is >= the threshold.
    Default 0.5, for sigmoid probabilities (without thresholds, scores outside [0, 1] get no F1/accuracy).
    ``exclude``: class index -> reason, for classes to leave out of every summary (e.g. no positive training
    example). Multi-label accuracy is the mean over evaluated classes of the per-class binary accuracy;
    ``subset_accuracy`` is the fraction of records whose whole evaluated label vector is predicted exactly.
    ``micro_*`` pool all (record, evaluated class) pairs into one binary problem.
    """
    y, s = _check(y_true, scores)
    n, c = y.shape
    names = _names(class_names, c)
    n_pos = y.sum(axis=0)
    reasons: dict[int, list[str]] = {int(j): [str(why)] for j, why in (exclude or {}).items()}
    if any(not 0 <= j < c for j in reasons):
        raise ValueError(f"exclude names class indices outside 0..{c - 1}: {sorted(reasons)}")
    for j in range(c):
        if n_pos[j] == 0:
            reasons.setdefault(j, []).append("no positive in y_true")
        elif n_pos[j] == n:
            reasons.setdefault(j, []).append("no negative in y_true")
    evaluated = np.array([j not in reasons for j in range(c)], dtype=bool)
    ev = np.flatnonzero(evaluated)
    defined = np.flatnonzero(evaluable_classes(y))
    auroc = np.full(c, np.nan)
    auprc = np.full(c, np.nan)
    auroc[defined] = _per_class(roc_auc_score, y, s, defined)
    auprc[defined] = _per_class(average_precision_score, y, s, defined)
    t, threshold_rule = _thresholds(thresholds, s)
    pred = None if t is None else s >= t
    f1 = np.full(c, np.nan)
    acc = np.full(c, np.nan)
    if pred is not None:
        with_pos = np.flatnonzero(n_pos > 0)
        if len(with_pos):
            f1[with_pos] = _per_class(partial(f1_score, zero_division=0), y, pred, with_pos)
        acc = (pred == y).mean(axis=0) if n else acc

    def value(x: float) -> float | None:
        return None if math.isnan(x) else float(x)

    def macro(per: np.ndarray) -> float | None:
        return float(per[ev].mean()) if len(ev) and not np.isnan(per[ev]).any() else None

    no_binary = None if pred is not None else threshold_rule
    out: dict[str, Any] = {
        "n_records": int(n),
        "n_classes": int(c),
        "classes_evaluated": [names[j] for j in ev],
        "excluded_classes": [{"class": names[j], "index": j, "reason": "; ".join(reasons[j])}
                             for j in sorted(reasons)],
        "macro_auroc": macro(auroc),
        "macro_auprc": macro(auprc),
        "macro_f1": macro(f1),
        "accuracy": macro(acc),
        "subset_accuracy": None,
        "micro_auroc": None,
        "micro_auprc": None,
        "micro_f1": None,
        "thresholds": threshold_rule,
    }
    if len(ev):
        yf, sf = y[:, ev].ravel(), s[:, ev].ravel()
        out["micro_auroc"] = float(roc_auc_score(yf, sf))
        out["micro_auprc"] = float(average_precision_score(yf, sf))
        if pred is not None:
            out["micro_f1"] = float(f1_score(yf, pred[:, ev].ravel(), zero_division=0))
            out["subset_accuracy"] = float((pred[:, ev] == y[:, ev]).all(axis=1).mean())
    if not len(ev):
        out["reason"] = "no class has both a positive and a negative (and is not excluded)"
    elif no_binary:
        out["reason"] = f"no F1 / accuracy: {no_binary}"
    per_threshold = t if t is not None and t.ndim == 1 else None
    out["per_class"] = {
        names[j]: {"auroc": value(auroc[j]), "auprc": value(auprc[j]), "f1": value(f1[j]),
                   "accuracy": value(acc[j]), "n_positive": int(n_pos[j]),
                   "threshold": None if per_threshold is None else float(per_threshold[j])}
        for j in range(c)
    }
    return out


def choose_thresholds(y_val: Any, scores_val: Any) -> np.ndarray:
    """(C,) per-class thresholds that maximise F1 on validation (predict positive when score >= threshold).

    The threshold sits midway between the lowest validation score predicted positive at the best cut and the
    next lower score, so validation predictions are those of the best cut; ties in F1 go to the higher
    threshold. Classes without a validation positive get 0.5.
    """
    y, s = _check(y_val, scores_val)
    out = np.full(y.shape[1], 0.5)
    for j in np.flatnonzero(y.any(axis=0)):
        order = np.argsort(-s[:, j], kind="stable")
        sj, yj = s[order, j], y[order, j]
        cut = np.flatnonzero(np.r_[sj[1:] != sj[:-1], True])  # last position of each run of equal scores
        tp = np.cumsum(yj)[cut]
        f1 = 2 * tp / (cut + 1 + yj.sum())
        i = cut[int(np.argmax(f1))]
        lowest = sj[i]
        if i + 1 < len(sj):
            mid = 0.5 * (lowest + sj[i + 1])
            out[j] = mid if sj[i + 1] < mid <= lowest else lowest
        else:
            out[j] = lowest
    return out


class ConfidenceInterval(tuple):
    """``(low, high)`` (None, None when it cannot be computed) that also carries how it was computed:
    ``estimate`` (the metric on all records), ``n_boot``, ``n_valid``, ``n_skipped`` (resamples on which the
    metric was undefined), ``n_partial`` (macro AUROC only: resamples where some class lost all its positives
    or negatives and was left out of that resample's mean), ``alpha`` and ``reason``."""

    def __new__(cls, low: float | None, high: float | None, *, estimate: float | None, n_boot: int,
                n_valid: int, n_partial: int | None, alpha: float, reason: str | None = None,
                unit: str = "records") -> ConfidenceInterval:
        self = super().__new__(cls, (low, high))
        self.estimate, self.n_boot, self.n_valid, self.n_partial = estimate, n_boot, n_valid, n_partial
        self.n_skipped, self.alpha, self.reason, self.unit = n_boot - n_valid, alpha, reason, unit
        return self

    @property
    def low(self) -> float | None:
        return self[0]

    @property
    def high(self) -> float | None:
        return self[1]

    def to_dict(self) -> dict[str, Any]:
        out = {"low": self.low, "high": self.high, "estimate": self.estimate, "alpha": self.alpha,
               "method": f"percentile bootstrap over {self.unit}", "n_boot": self.n_boot, "n_valid": self.n_valid,
               "n_skipped": self.n_skipped, "n_partial": self.n_partial}
        return out | ({"reason": self.reason} if self.reason else {})


def _resample_indices(n: int, n_boot: int, seed: int) -> Iterator[np.ndarray]:
    """Chunks (B, n) of row indices drawn with replacement; the stream depends on (n, seed) only."""
    rng = np.random.default_rng(seed)
    chunk = max(1, _RESAMPLE_ELEMENTS // max(n, 1))
    for start in range(0, n_boot, chunk):
        yield rng.integers(0, n, size=(min(chunk, n_boot - start), n))


def _multiplicities(idx: np.ndarray, n: int) -> np.ndarray:
    """(B, n) how often each record occurs in each resample of ``idx`` (B, n)."""
    b = idx.shape[0]
    flat = (idx + n * np.arange(b)[:, None]).ravel()
    return np.bincount(flat, minlength=b * n).reshape(b, n)


def _group_codes(groups: Any, n: int) -> np.ndarray:
    """(n,) integer code of each record's group (e.g. its patient); a missing id is a group of its own."""
    values = list(groups)
    if len(values) != n:
        raise ValueError(f"bootstrap: {len(values)} group ids for {n} records")
    keys = [f"\0row{i}" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
            for i, v in enumerate(values)]
    return np.unique(np.asarray(keys, dtype=object).astype(str), return_inverse=True)[1].reshape(-1)


def _resample_weights(n: int, n_boot: int, seed: int, codes: np.ndarray | None) -> Iterator[np.ndarray]:
    """Chunks (B, n) of record multiplicities. Without ``codes``: records drawn with replacement (the stream
    of ``_resample_indices``). With ``codes`` (n,): a cluster bootstrap, groups drawn with replacement and each
    drawn group bringing all its records, so records of one patient are never treated as independent."""
    if codes is None:
        for idx in _resample_indices(n, n_boot, seed):
            yield _multiplicities(idx, n)
        return
    n_groups = int(codes.max()) + 1 if len(codes) else 0
    for idx in _resample_indices(n_groups, n_boot, seed):
        yield _multiplicities(idx, n_groups)[:, codes]


class _WeightedAUROC:
    """Per-class AUROC of many resamples at once, each given as record multiplicities ``w`` (B, N):
    AUC = sum over (positive, negative) pairs of w_i w_j ([s_i > s_j] + [s_i = s_j] / 2) / (W_pos W_neg)."""

    def __init__(self, y: np.ndarray, s: np.ndarray, cols: np.ndarray):
        self.classes = []
        for j in cols:
            order = np.argsort(s[:, j], kind="stable")
            sj = s[order, j]
            starts = np.flatnonzero(np.r_[True, sj[1:] != sj[:-1]])
            ties = len(starts) < len(sj)
            self.classes.append((order, y[order, j], starts if ties else None))

    def __call__(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """((B, K) AUROC per resample and class, (B, K) whether it is defined)."""
        auc = np.zeros((w.shape[0], len(self.classes)))
        ok = np.zeros_like(auc, dtype=bool)
        for k, (order, pos, starts) in enumerate(self.classes):
            wk = w[:, order].astype(np.float64)
            wp, wn = wk * pos, wk * ~pos
            if starts is not None:
                wp, wn = np.add.reduceat(wp, starts, axis=1), np.add.reduceat(wn, starts, axis=1)
            below = np.cumsum(wn, axis=1) - wn
            num = (wp * (below + 0.5 * wn)).sum(axis=1)
            n_pos, n_neg = wp.sum(axis=1), wn.sum(axis=1)
            ok[:, k] = (n_pos > 0) & (n_neg > 0)
            auc[:, k] = num / np.where(ok[:, k], n_pos * n_neg, 1.0)
        return auc, ok


def _bootstrap_values(y: np.ndarray, score_sets: Sequence[np.ndarray], metric_fn: MetricFn, n_boot: int,
                      seed: int, codes: np.ndarray | None = None) -> tuple[np.ndarray, int | None]:
    """((K, n_boot) metric of each score set on each resample, NaN where undefined; n_partial or None).
    All score sets share the resamples (a paired bootstrap); ``codes`` (n,) makes it a cluster bootstrap."""
    if len(y) == 0:
        raise ValueError("bootstrap: no records")
    values = np.full((len(score_sets), n_boot), np.nan)
    fast = metric_fn is macro_auroc
    cols = np.flatnonzero(evaluable_classes(y))
    aurocs = [_WeightedAUROC(y, s, cols) for s in score_sets] if fast else []
    lost, done = 0, 0
    if codes is not None:
        chunks = ((None, w) for w in _resample_weights(len(y), n_boot, seed, codes))
    else:
        chunks = ((idx, None) for idx in _resample_indices(len(y), n_boot, seed))
    for idx, w in chunks:
        if idx is None and not fast:  # cluster bootstrap: the records each resample holds, repeated
            idx = [np.repeat(np.arange(len(y)), row) for row in w]
        b = len(idx) if w is None else w.shape[0]
        if fast:
            w = _multiplicities(idx, len(y)) if w is None else w
            for k, auroc in enumerate(aurocs):
                auc, ok = auroc(w)  # ok depends on the labels only: the same for every score set
                count = ok.sum(axis=1)
                mean = (auc * ok).sum(axis=1) / np.maximum(count, 1)
                values[k, done:done + b] = np.where(count > 0, mean, np.nan)
            lost += int(((count > 0) & (count < len(cols))).sum())
        else:
            for i in range(b):
                for k, s in enumerate(score_sets):
                    v = metric_fn(y[idx[i]], s[idx[i]])
                    values[k, done + i] = np.nan if v is None else float(v)
        done += b
    return values, (lost if fast else None)


def bootstrap_ci(y_true: Any, scores: Any, metric_fn: MetricFn, n_boot: int = 1000, alpha: float = 0.05,
                 seed: int = 0, groups: Any = None) -> ConfidenceInterval:
    """Percentile bootstrap ``(low, high)`` of ``metric_fn(y_true, scores)`` over records (rows resampled
    with replacement), or over ``groups`` (one id per row, e.g. the patient) when given: a cluster bootstrap
    for data where one patient contributes several records. Resamples where the metric is undefined (returns None or NaN) are skipped and counted
    in ``n_skipped``; with fewer than two valid resamples the bounds are None. ``metric_fn=macro_auroc``
    takes a vectorised path (1000 resamples of 500 x 5 in a few tens of milliseconds)."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    y, s = _check(y_true, scores)
    v = metric_fn(y, s)
    estimate = None if v is None or math.isnan(v) else float(v)
    codes = None if groups is None else _group_codes(groups, len(y))
    values, n_partial = _bootstrap_values(y, [s], metric_fn, int(n_boot), seed, codes)
    valid = values[0][~np.isnan(values[0])]
    info = dict(estimate=estimate, n_boot=int(n_boot), n_valid=len(valid), n_partial=n_partial, alpha=alpha,
                unit="records" if codes is None else "groups (patients)")
    if len(valid) < 2:
        reason = f"the metric is defined on {len(valid)} of {n_boot} resamples"
        return ConfidenceInterval(None, None, **info, reason=reason)
    low, high = np.percentile(valid, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return ConfidenceInterval(float(low), float(high), **info)


def paired_bootstrap_delta(y: Any, scores_a: Any, scores_b: Any, *, metric_fn: MetricFn = macro_auroc,
                           n_boot: int = 1000, alpha: float = 0.05, seed: int = 0,
                           groups: Any = None) -> dict[str, Any]:
    """Paired bootstrap of ``metric(a) - metric(b)`` for two score sets on the same records (the same
    resamples for both): the difference on all records, its bootstrap mean, percentile CI and the share of
    resamples where a is not better (a one-sided bootstrap p-value). BASELINES.md: on ptbxl-500, about +0.03
    macro AUROC is the smallest difference this resolves."""
    y, a = _check(y, scores_a)
    _, b = _check(y, scores_b)
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    ma, mb = metric_fn(y, a), metric_fn(y, b)
    codes = None if groups is None else _group_codes(groups, len(y))
    values, n_partial = _bootstrap_values(y, [a, b], metric_fn, int(n_boot), seed, codes)
    delta = values[0] - values[1]
    delta = delta[~np.isnan(delta)]
    out: dict[str, Any] = {
        "metric": getattr(metric_fn, "__name__", "metric"),
        "a": None if ma is None else float(ma), "b": None if mb is None else float(mb),
        "delta": None if ma is None or mb is None else float(ma - mb),
        "mean_delta": None, "ci": [None, None], "p_a_not_better": None, "alpha": alpha,
        "n_boot": int(n_boot), "n_valid": len(delta), "n_skipped": int(n_boot) - len(delta),
        "n_partial": n_partial,
    }
    if len(delta) >= 2:
        low, high = np.percentile(delta, [100 * alpha / 2, 100 * (1 - alpha / 2)])
        out.update(mean_delta=float(delta.mean()), ci=[float(low), float(high)],
                   p_a_not_better=float((delta <= 0).mean()))
    else:
        out["reason"] = f"the metric is defined on {len(delta)} of {n_boot} resamples"
    return out


def auroc_by_ranks(y_true: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    """((C,) AUROC per class from ranks (Mann-Whitney U, midranks for ties), (C,) whether it is defined):
    the linear probe's per-epoch validation score, one vectorised pass over all classes."""
    y, s = _check(y_true, scores)
    return _rank_auroc(y, s)


def _rank_auroc(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """auroc_by_ranks on checked (N, C) bool labels and finite scores."""
    n_pos = y.sum(axis=0)
    n_neg = len(y) - n_pos
    ok = (n_pos > 0) & (n_neg > 0)
    order = np.argsort(s, axis=0)
    s_sorted = np.take_along_axis(s, order, axis=0)
    if (s_sorted[1:] == s_sorted[:-1]).any():
        u = (rankdata(s, axis=0) * y).sum(axis=0) - n_pos * (n_pos + 1) / 2
    else:  # no ties: U = number of (positive, negative) pairs with the negative ranked below
        y_sorted = np.take_along_axis(y, order, axis=0)
        u = (y_sorted * np.cumsum(~y_sorted, axis=0)).sum(axis=0)
    return np.where(ok, u / np.where(ok, n_pos * n_neg, 1), 0.0), ok
