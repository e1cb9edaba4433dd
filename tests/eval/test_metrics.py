from __future__ import annotations

import json
import time

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, average_precision_score, f1_score, roc_auc_score

from ecgalign.eval.metrics import (
    auroc_by_ranks,
    bootstrap_ci,
    choose_thresholds,
    classification_metrics,
    macro_auroc,
    paired_bootstrap_delta,
)


def _data(n: int = 300, c: int = 5, seed: int = 0, signal: float = 1.0):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, c)) < 0.25).astype(np.float32)
    logits = signal * (2 * y - 1) + rng.normal(size=(n, c))
    return y, (1 / (1 + np.exp(-logits))).astype(np.float32)


def test_auroc_by_hand():
    y = np.array([1, 0, 1, 0])
    s = np.array([0.9, 0.1, 0.4, 0.6])  # pairs (pos > neg): 0.9>0.1, 0.9>0.6, 0.4>0.1, not 0.4>0.6
    assert macro_auroc(y, s) == pytest.approx(0.75)
    assert classification_metrics(y, s)["macro_auroc"] == pytest.approx(0.75)
    tied = np.array([0.5, 0.5, 0.9, 0.1])  # pos 0.5 vs neg 0.5 is a tie: half credit
    assert macro_auroc(y, tied) == pytest.approx((0.5 + 1 + 1 + 1) / 4)


def test_metrics_agree_with_sklearn_and_list_undefined_classes():
    y, s = _data()
    y[:, 1] = 0  # no positive
    y[:, 3] = 1  # no negative
    names = ["NORM", "MI", "STTC", "CD", "HYP"]
    thresholds = np.array([0.3, 0.5, 0.6, 0.5, 0.45])
    m = classification_metrics(y, s, thresholds=thresholds, class_names=names)
    json.dumps(m, allow_nan=False)
    ev = [0, 2, 4]
    assert m["classes_evaluated"] == ["NORM", "STTC", "HYP"]
    assert [(e["class"], e["reason"]) for e in m["excluded_classes"]] == [
        ("MI", "no positive in y_true"), ("CD", "no negative in y_true")]
    pred = s >= thresholds
    assert m["macro_auroc"] == pytest.approx(roc_auc_score(y[:, ev], s[:, ev], average="macro"), abs=1e-12)
    ap = average_precision_score(y[:, ev], s[:, ev], average="macro")
    assert m["macro_auprc"] == pytest.approx(ap, abs=1e-12)
    assert m["macro_f1"] == pytest.approx(f1_score(y[:, ev], pred[:, ev], average="macro"), abs=1e-12)
    assert m["subset_accuracy"] == pytest.approx(accuracy_score(y[:, ev], pred[:, ev]), abs=1e-12)
    assert m["accuracy"] == pytest.approx(np.mean([accuracy_score(y[:, j], pred[:, j]) for j in ev]), abs=1e-12)
    assert m["micro_auroc"] == pytest.approx(roc_auc_score(y[:, ev], s[:, ev], average="micro"), abs=1e-12)
    assert m["micro_f1"] == pytest.approx(f1_score(y[:, ev], pred[:, ev], average="micro"), abs=1e-12)
    for j in ev:
        assert m["per_class"][names[j]]["auroc"] == pytest.approx(roc_auc_score(y[:, j], s[:, j]), abs=1e-12)
    assert m["per_class"]["MI"]["auroc"] is None and m["per_class"]["CD"]["auroc"] is None
    assert m["per_class"]["HYP"]["threshold"] == 0.45


def test_default_threshold_exclusions_and_per_record_thresholds():
    y, s = _data(seed=1)
    m = classification_metrics(y, s)
    assert m["macro_f1"] == pytest.approx(f1_score(y, s >= 0.5, average="macro"), abs=1e-12)
    excluded = classification_metrics(y, s, exclude={2: "no positive training example"})
    assert excluded["excluded_classes"] == [{"class": "2", "index": 2, "reason": "no positive training example"}]
    kept = [0, 1, 3, 4]
    assert excluded["macro_auroc"] == pytest.approx(roc_auc_score(y[:, kept], s[:, kept]), abs=1e-12)
    assert excluded["per_class"]["2"]["auroc"] is not None  # still reported, just not averaged
    per_record = np.tile([0.4, 0.5, 0.6, 0.5, 0.5], (len(y), 1))
    per_record[: len(y) // 2, 0] = 0.7  # e.g. pooled folds, each with its own validation thresholds
    pred = s >= per_record
    assert classification_metrics(y, s, thresholds=per_record)["macro_f1"] == pytest.approx(
        f1_score(y, pred, average="macro"), abs=1e-12)


def test_scores_that_are_not_probabilities_get_auroc_but_no_default_threshold():
    y, s = _data(seed=2)
    m = classification_metrics(y, 4 * s - 2)
    assert m["macro_auroc"] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert m["macro_f1"] is None and m["accuracy"] is None and "not probabilities" in m["reason"]
    json.dumps(m, allow_nan=False)


def test_nothing_evaluable_is_none_with_a_reason():
    m = classification_metrics(np.zeros((4, 2)), np.full((4, 2), 0.2), class_names=["a", "b"])
    assert m["macro_auroc"] is None and m["macro_f1"] is None and "no class" in m["reason"]
    assert macro_auroc(np.zeros((4, 2)), np.zeros((4, 2))) is None
    json.dumps(m, allow_nan=False)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="multi-hot"):
        classification_metrics(np.full((3, 1), 2), np.zeros((3, 1)))
    with pytest.raises(ValueError, match="NaN"):
        classification_metrics(np.ones((3, 1)), np.full((3, 1), np.nan))
    with pytest.raises(ValueError, match="must both be"):
        classification_metrics(np.ones((3, 2)), np.zeros((3, 1)))


def test_choose_thresholds_maximises_validation_f1():
    y, s = _data(n=200, seed=3, signal=0.7)
    s = np.round(s, 2)  # ties
    y[:, 4] = 0
    t = choose_thresholds(y, s)
    assert t[4] == 0.5
    for j in range(4):
        best = max(f1_score(y[:, j], s[:, j] >= c) for c in np.unique(s[:, j]))
        assert f1_score(y[:, j], s[:, j] >= t[j]) == pytest.approx(best, abs=1e-12)


def test_rank_auroc_agrees_with_sklearn():
    y, s = _data(n=120, c=7, seed=4)
    for scores in (s, np.round(s, 1)):
        auc, ok = auroc_by_ranks(y, scores)
        assert ok.all()
        np.testing.assert_allclose(auc, roc_auc_score(y, scores, average=None), atol=1e-12)
    y[:, 0] = 0
    assert not auroc_by_ranks(y, s)[1][0]


def test_vectorised_bootstrap_equals_sklearn_on_every_resample():
    y, s = _data(n=80, seed=5)
    y[:3, 2], y[3:, 2] = 1, 0  # a rare class: some resamples lose it (counted in n_partial)
    s = np.round(s, 1)  # ties
    fast = bootstrap_ci(y, s, macro_auroc, n_boot=300, seed=7)
    slow = bootstrap_ci(y, s, lambda a, b: macro_auroc(a, b), n_boot=300, seed=7)  # scikit-learn per resample
    assert fast.low == pytest.approx(slow.low, abs=1e-12) and fast.high == pytest.approx(slow.high, abs=1e-12)
    assert fast.n_partial > 0 and slow.n_partial is None
    assert fast.estimate == pytest.approx(macro_auroc(y, s))


def test_bootstrap_is_fast_and_contains_the_estimate():
    y, s = _data(n=500, seed=6)
    start = time.perf_counter()
    ci = bootstrap_ci(y, s, macro_auroc, n_boot=1000, seed=0)
    assert time.perf_counter() - start < 1.0
    low, high = ci
    assert low < ci.estimate < high
    d = ci.to_dict()
    assert d["n_boot"] == 1000 and d["n_skipped"] == 0
    json.dumps(d, allow_nan=False)
    assert bootstrap_ci(y, s, macro_auroc, seed=0) == ci  # seeded


def test_bootstrap_narrows_with_more_data():
    small = bootstrap_ci(*_data(n=150, seed=8), macro_auroc, n_boot=400)
    large = bootstrap_ci(*_data(n=2400, seed=8), macro_auroc, n_boot=400)
    assert (large.high - large.low) < 0.5 * (small.high - small.low)  # expected ratio ~ sqrt(150 / 2400) = 0.25


def test_bootstrap_skips_and_counts_undefined_resamples():
    y = np.array([[1], [0], [0], [0]], dtype=np.float32)
    s = np.array([[0.9], [0.2], [0.4], [0.1]], dtype=np.float32)
    ci = bootstrap_ci(y, s, macro_auroc, n_boot=2000, seed=1)
    assert ci.n_skipped + ci.n_valid == 2000
    # undefined when a resample lost the positive or all the negatives
    assert ci.n_skipped == pytest.approx(2000 * (0.75 ** 4 + 0.25 ** 4), abs=120)
    none = bootstrap_ci(np.zeros((5, 1)), np.zeros((5, 1)), macro_auroc, n_boot=50)
    assert tuple(none) == (None, None) and none.n_skipped == 50 and "defined on 0" in none.reason


def test_paired_bootstrap_delta():
    y, good = _data(n=400, seed=9, signal=1.5)
    _, weak = _data(n=400, seed=9, signal=0.3)
    rng = np.random.default_rng(0)
    weak = np.where(rng.random(weak.shape) < 0.5, weak, rng.random(weak.shape))
    d = paired_bootstrap_delta(y, good, weak, n_boot=500)
    json.dumps(d, allow_nan=False)
    assert d["delta"] == pytest.approx(macro_auroc(y, good) - macro_auroc(y, weak))
    assert 0 < d["ci"][0] < d["delta"] < d["ci"][1] and d["p_a_not_better"] == 0.0
    reverse = paired_bootstrap_delta(y, weak, good, n_boot=500)
    assert reverse["mean_delta"] == pytest.approx(-d["mean_delta"])
    same = paired_bootstrap_delta(y, good, good, n_boot=100)
    assert same["ci"] == [0.0, 0.0] and same["delta"] == 0.0
