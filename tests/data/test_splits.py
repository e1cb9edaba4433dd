from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecgalign.data.splits import assert_patient_disjoint, cv_fold_split, fold_split, patient_split


def test_ptbxl_fold_split():
    folds = [1, 2, 9, 10, 10, 8, None, 5]
    split = fold_split(folds)
    assert split.train.tolist() == [0, 1, 5, 7]
    assert split.val.tolist() == [2]
    assert split.test.tolist() == [3, 4]
    with pytest.raises(ValueError, match="more than one"):
        fold_split(folds, train=(1, 2), val=(2,), test=(3,))


def test_cv_fold_split_follows_the_baselines_protocol():
    folds = np.repeat(np.arange(1, 11), 3)
    s1 = cv_fold_split(folds, 1)
    assert set(folds[s1.test]) == {1} and set(folds[s1.val]) == {10}
    assert set(folds[s1.train]) == set(range(2, 10))
    s7 = cv_fold_split(folds, 7)
    assert set(folds[s7.test]) == {7} and set(folds[s7.val]) == {6}
    with pytest.raises(ValueError):
        cv_fold_split(folds, 11)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 30), min_size=3, max_size=200), st.integers(0, 10))
def test_patient_split_is_disjoint_and_complete(patients, seed):
    ids = [f"p{p}" for p in patients]
    split = patient_split(ids, seed=seed)
    assert_patient_disjoint(split, ids)
    together = np.sort(np.concatenate([split.train, split.val, split.test]))
    np.testing.assert_array_equal(together, np.arange(len(ids)))
    assert patient_split(ids, seed=seed).train.tolist() == split.train.tolist()


def test_leakage_guard_fires():
    split = fold_split([1, 10])
    with pytest.raises(ValueError, match="both train and test"):
        assert_patient_disjoint(split, ["same", "same"])
