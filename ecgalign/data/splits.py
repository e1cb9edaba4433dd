"""Train / validation / test splits that never put one patient on two sides.

PTB-XL's recommended split (Wagner et al. 2020; Strodthoff et al. 2020): ``strat_fold`` 1-8 train, 9
validation, 10 test — folds are patient-disjoint and label-stratified. The synthetic generator assigns folds
the same way (per patient). Datasets without folds get a seeded patient-level split.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ecgalign.data.errors import InputError

PTBXL_TRAIN_FOLDS: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8)
PTBXL_VAL_FOLDS: tuple[int, ...] = (9,)
PTBXL_TEST_FOLDS: tuple[int, ...] = (10,)


@dataclass(frozen=True)
class Split:
    """Record indices (positions in the dataset / store order) of each part."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


def fold_split(
    folds: Sequence[int | None] | np.ndarray,
    train: Sequence[int] = PTBXL_TRAIN_FOLDS,
    val: Sequence[int] = PTBXL_VAL_FOLDS,
    test: Sequence[int] = PTBXL_TEST_FOLDS,
) -> Split:
    """Split by official fold numbers; records without a fold (None/NaN) belong to no part."""
    f = pd.to_numeric(pd.Series(folds), errors="coerce").to_numpy()
    overlap = (set(train) & set(val)) | (set(train) & set(test)) | (set(val) & set(test))
    if overlap:
        raise InputError(f"folds {sorted(overlap)} are assigned to more than one split part")
    return Split(*(np.flatnonzero(np.isin(f, list(part))) for part in (train, val, test)))


def cv_fold_split(folds: Sequence[int | None] | np.ndarray, test_fold: int, n_folds: int = 10) -> Split:
    """k-fold cross-validation by fold number (BASELINES.md protocol): test fold k, validation fold k-1
    (fold n for k = 1), training on the others."""
    if not 1 <= test_fold <= n_folds:
        raise InputError(f"test_fold must be in 1..{n_folds}, got {test_fold}")
    val_fold = n_folds if test_fold == 1 else test_fold - 1
    train = [k for k in range(1, n_folds + 1) if k not in (test_fold, val_fold)]
    return fold_split(folds, train, (val_fold,), (test_fold,))


def patient_split(
    patient_ids: Sequence[str | None],
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
) -> Split:
    """Seeded split of patients (not records) into train / val / test by the given fractions.
    Records without a patient id are treated as their own patient."""
    if len(fractions) != 3 or any(f < 0 for f in fractions) or not np.isclose(sum(fractions), 1.0):
        raise InputError(f"fractions must be three non-negative numbers summing to 1, got {fractions}")
    ids = np.array([p if p is not None and p == p else f"__record_{i}" for i, p in enumerate(patient_ids)], dtype=object)
    unique = np.array(sorted(set(ids)), dtype=object)
    rng = np.random.default_rng(seed)
    unique = unique[rng.permutation(len(unique))]
    n_train = int(round(fractions[0] * len(unique)))
    n_val = int(round(fractions[1] * len(unique)))
    part_of = {p: 0 for p in unique[:n_train]} | {p: 1 for p in unique[n_train:n_train + n_val]}
    part = np.array([part_of.get(p, 2) for p in ids])
    return Split(*(np.flatnonzero(part == k) for k in range(3)))


def assert_patient_disjoint(split: Split, patient_ids: Sequence[str | None]) -> None:
    """Raise if any patient appears in two parts of ``split`` (the leakage guard used by evaluation)."""
    ids = np.asarray(patient_ids, dtype=object)
    parts = {name: {p for p in ids[getattr(split, name)] if p is not None} for name in ("train", "val", "test")}
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        shared = parts[a] & parts[b]
        if shared:
            raise InputError(f"{len(shared)} patient(s) appear in both {a} and {b}, e.g. {sorted(shared)[:3]}")
