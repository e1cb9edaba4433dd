"""Evaluation-side splitting: the leakage guard every protocol calls, label-stratified training subsets
(the 1 % / 10 % label fractions of MERIT / MERL linear probing) and label-balanced, patient-grouped folds for
datasets without official ones. Train / val / test from fold numbers live in ``ecgalign.data.splits``.

Stratification follows the iterative stratification of Sechidis, Tsoumakas & Vlahavas (2011), "On the
stratification of multi-label data": the rarest label first, each of its examples to the part that most
still wants that label.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ecgalign.data.splits import Split, assert_patient_disjoint


class LeakageError(ValueError):
    """A record or a patient is shared between parts of an evaluation split."""


def _indices(name: str, idx: Any) -> np.ndarray:
    a = np.asarray(idx)
    if a.dtype == bool:
        raise TypeError(f"{name}: pass index arrays, not boolean masks")
    if a.ndim != 1 or (a.size and not np.issubdtype(a.dtype, np.integer)):
        raise TypeError(f"{name}: expected a 1-D integer index array, got dtype {a.dtype} shape {a.shape}")
    if a.size and a.min() < 0:
        raise ValueError(f"{name}: negative record index {int(a.min())}")
    return a.astype(np.int64)


def _patient_tokens(patient_ids: Sequence[Any]) -> np.ndarray:
    """Patient ids as strings; missing ones (None, NaN, empty) become None, i.e. a patient of their own."""
    out = np.empty(len(patient_ids), dtype=object)
    for i, p in enumerate(patient_ids):
        missing = p is None or (isinstance(p, float) and p != p) or str(p) in ("", "nan", "None", "<NA>")
        out[i] = None if missing else str(p)
    return out


def check_splits(train_idx: Any, val_idx: Any, test_idx: Any, patient_ids: Sequence[Any] | None = None) -> None:
    """Raise LeakageError when a record index is in two parts or, given ``patient_ids`` (one per record,
    indexed like the splits), when a patient has records in two parts (train/val as well as test: a patient
    shared by train and validation would also flatter the model selection)."""
    given = (("train", train_idx), ("val", val_idx), ("test", test_idx))
    parts = {name: _indices(name, idx) for name, idx in given}
    for a, b in (("train", "test"), ("val", "test"), ("train", "val")):
        shared = np.intersect1d(parts[a], parts[b])
        if shared.size:
            raise LeakageError(f"{shared.size} record(s) are in both {a} and {b}, "
                               f"e.g. indices {shared[:5].tolist()}")
    if patient_ids is None:
        return
    ids = _patient_tokens(patient_ids)
    top = max((int(p.max()) for p in parts.values() if p.size), default=-1)
    if top >= len(ids):
        raise ValueError(f"record index {top} is outside the {len(ids)} patient ids")
    try:
        assert_patient_disjoint(Split(parts["train"], parts["val"], parts["test"]), ids)
    except ValueError as exc:
        raise LeakageError(str(exc)) from exc


def _binary_labels(Y: Any) -> np.ndarray:
    y = np.asarray(Y)
    if y.ndim != 2:
        raise ValueError(f"labels must be an (N, C) multi-hot matrix, got shape {y.shape}")
    if y.size and not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be multi-hot (only 0 and 1)")
    return y.astype(bool)


def _iterative_stratification(labels: np.ndarray, sizes: np.ndarray, want_label: np.ndarray,
                              want_size: np.ndarray, rng: np.random.Generator,
                              capacity: np.ndarray | None = None) -> np.ndarray:
    """Part (0..K-1) of each of G groups (Sechidis et al. 2011, algorithm 1, for groups of records).

    labels (G, C): positives of each class in each group; sizes (G,): records per group; want_label (K, C)
    and want_size (K,): how many positives / records each part still wants (updated in place); capacity
    (K,): optional hard record limits (exact part sizes when every group is one record).
    """
    n_groups = len(labels)
    part = np.full(n_groups, -1)
    order = rng.permutation(n_groups)  # random order of examples within a label; random tie-breaks below
    left = labels.sum(axis=0).astype(np.float64)  # positives not yet assigned, per class
    cap = None if capacity is None else capacity.astype(np.int64).copy()

    def place(g: int, want: np.ndarray) -> None:
        fits = np.ones(len(want_size), dtype=bool) if cap is None else cap >= sizes[g]
        if not fits.any():
            fits = cap == cap.max()
        best = fits & (want == want[fits].max())
        if best.sum() > 1:
            best &= want_size == want_size[best].max()
        ties = np.flatnonzero(best)
        k = int(ties[0] if len(ties) == 1 else rng.choice(ties))
        part[g] = k
        want_label[k] -= labels[g]
        want_size[k] -= sizes[g]
        if cap is not None:
            cap[k] -= sizes[g]

    while (left > 0).any():
        classes = np.flatnonzero(left > 0)
        c = classes[np.argmin(left[classes])]
        for g in order[(labels[order, c] > 0) & (part[order] < 0)]:
            place(int(g), want_label[:, c])
            left -= labels[g]
    for g in order[part[order] < 0]:  # groups without any positive: by the sizes still wanted
        place(int(g), want_size)
    return part


def stratified_fraction(Y: Any, fraction: float, seed: int = 0) -> np.ndarray:
    """Sorted row indices of a label-stratified subset of ``Y`` (N, C) of size round(fraction * N), at least 1.

    Rule: first, every class with a positive in ``Y`` gets one positive in the subset, rarest class first
    (when the budget is smaller than the classes still uncovered, the row covering most of them is taken);
    the rest of the budget is filled by iterative stratification (Sechidis et al. 2011) towards
    fraction x (positives of each class). A class can stay without a positive only when the subset has fewer
    rows than there are classes; the probe then reports it (``LinearProbe.classes_without_positive``).
    fraction = 1 returns every row. Deterministic for a seed.
    """
    y = _binary_labels(Y)
    n = len(y)
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction}")
    if n == 0:
        raise ValueError("stratified_fraction: no rows")
    size = min(n, max(1, round(fraction * n)))
    if size == n:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    counts = y.sum(axis=0)
    chosen = np.zeros(n, dtype=bool)
    covered = np.zeros(y.shape[1], dtype=bool)
    order = rng.permutation(n)
    for c in np.argsort(counts, kind="stable"):
        taken = int(chosen.sum())
        if taken == size:
            break
        if counts[c] == 0 or covered[c]:
            continue
        candidates = order[y[order, c] & ~chosen[order]]
        uncovered = (counts > 0) & ~covered
        if size - taken < uncovered.sum():
            pick = candidates[int(np.argmax(y[candidates][:, uncovered].sum(axis=1)))]
        else:
            pick = candidates[0]
        chosen[pick] = True
        covered |= y[pick]
    rest = np.flatnonzero(~chosen)
    budget = size - int(chosen.sum())
    if budget:
        want_label = np.stack([fraction * counts - y[chosen].sum(axis=0), (1 - fraction) * counts])
        want_label = want_label.astype(np.float64)
        want_size = np.array([budget, len(rest) - budget], dtype=np.float64)
        part = _iterative_stratification(y[rest].astype(np.float64), np.ones(len(rest)), want_label, want_size,
                                         rng, capacity=np.array([budget, len(rest) - budget]))
        chosen[rest[part == 0]] = True
    return np.flatnonzero(chosen)


def make_folds(Y: Any, n_folds: int = 10, seed: int = 0,
               patient_ids: Sequence[Any] | None = None) -> np.ndarray:
    """(N,) fold numbers 1..n_folds, label-balanced by iterative stratification (Sechidis et al. 2011) and,
    given ``patient_ids``, patient-grouped (all records of a patient in one fold; records without an id are
    patients of their own) -- for datasets without official folds such as PTB-XL's ``strat_fold``."""
    y = _binary_labels(Y)
    n = len(y)
    if n_folds < 2:
        raise ValueError(f"n_folds must be at least 2, got {n_folds}")
    if patient_ids is None:
        group = np.arange(n)
    else:
        if len(patient_ids) != n:
            raise ValueError(f"{len(patient_ids)} patient ids for {n} label rows")
        tokens = _patient_tokens(patient_ids)
        keys = np.array([f"p:{p}" if p is not None else f"r:{i}" for i, p in enumerate(tokens)], dtype=object)
        _, group = np.unique(keys, return_inverse=True)
    n_groups = int(group.max()) + 1 if n else 0
    if n_groups < n_folds:
        raise ValueError(f"{n_groups} patients/records cannot fill {n_folds} folds")
    labels = np.zeros((n_groups, y.shape[1]))
    np.add.at(labels, group, y.astype(np.float64))
    sizes = np.bincount(group, minlength=n_groups).astype(np.float64)
    want_label = np.tile(labels.sum(axis=0) / n_folds, (n_folds, 1))
    want_size = np.full(n_folds, n / n_folds)
    part = _iterative_stratification(labels, sizes, want_label, want_size, np.random.default_rng(seed))
    return part[group] + 1
