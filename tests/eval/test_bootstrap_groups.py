"""The cluster (patient-level) bootstrap: records of one patient are resampled together."""

from __future__ import annotations

import numpy as np
import pytest

from ecgalign.eval.metrics import bootstrap_ci, macro_auroc, paired_bootstrap_delta


def _data(n: int = 80, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random((n, 3)) < 0.3).astype(int)
    s = y * 0.6 + rng.normal(size=(n, 3))
    return y, s


def test_grouping_copies_by_their_original_equals_the_plain_bootstrap_of_the_originals():
    y, s = _data()
    n = len(y)
    ids = [f"{i:04d}" for i in range(n)]  # sort order = row order, so the group stream is the record stream
    plain = bootstrap_ci(y, s, macro_auroc, n_boot=300)
    copies = bootstrap_ci(np.vstack([y, y, y]), np.vstack([s, s, s]), macro_auroc, n_boot=300, groups=ids * 3)
    assert copies.estimate == pytest.approx(plain.estimate)
    assert copies.low == pytest.approx(plain.low) and copies.high == pytest.approx(plain.high)
    assert copies.to_dict()["method"] == "percentile bootstrap over groups (patients)"
    assert plain.to_dict()["method"] == "percentile bootstrap over records"


def test_treating_copies_as_independent_records_understates_the_interval():
    y, s = _data()
    ids = [f"{i:04d}" for i in range(len(y))] * 3
    y3, s3 = np.vstack([y, y, y]), np.vstack([s, s, s])
    naive = bootstrap_ci(y3, s3, macro_auroc, n_boot=300)
    grouped = bootstrap_ci(y3, s3, macro_auroc, n_boot=300, groups=ids)
    assert (grouped.high - grouped.low) > 1.4 * (naive.high - naive.low)


def test_the_generic_metric_path_draws_the_same_cluster_resamples():
    y, s = _data(40, seed=3)
    groups = np.repeat(np.arange(20), 2)
    fast = bootstrap_ci(y, s, macro_auroc, n_boot=100, groups=groups)
    slow = bootstrap_ci(y, s, lambda a, b: macro_auroc(a, b), n_boot=100, groups=groups)
    assert slow.low == pytest.approx(fast.low) and slow.high == pytest.approx(fast.high)
    delta = paired_bootstrap_delta(y, s, s[::-1], n_boot=100, groups=groups)
    assert delta["n_valid"] == 100 and delta["ci"][0] is not None


def test_missing_ids_are_groups_of_their_own_and_bad_lengths_are_refused():
    y, s = _data(30)
    groups = [None] * 30
    assert bootstrap_ci(y, s, macro_auroc, n_boot=50, groups=groups).n_valid == 50
    with pytest.raises(ValueError, match="group ids"):
        bootstrap_ci(y, s, macro_auroc, n_boot=50, groups=[1, 2])
