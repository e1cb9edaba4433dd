from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from ecgalign.data.splits import Split, fold_split
from ecgalign.eval import linear_probe as lp
from ecgalign.eval.linear_probe import (
    LeakageError,
    LinearProbe,
    check_splits,
    make_folds,
    run_cross_validation,
    run_linear_probe,
    stratified_fraction,
    train_linear_probe,
)

FAST = {"max_epochs": 30, "patience": 5}


def _planted(n: int = 600, d: int = 16, c: int = 3, seed: int = 0, margin: float = 4.0):
    """Multi-label data with a planted, linearly separable signal: each class shifts the features by
    ``margin`` along its own direction (30 % prevalence per class)."""
    rng = np.random.default_rng(seed)
    y = (rng.random((n, c)) < 0.3).astype(np.float32)
    directions = np.linalg.qr(rng.normal(size=(d, c)))[0].T  # (C, D) orthonormal
    x = rng.normal(size=(n, d)) + margin * y @ directions
    return x.astype(np.float32), y


def _thirds(n: int) -> Split:
    idx = np.arange(n)
    return Split(idx[: n // 3], idx[n // 3: 2 * n // 3], idx[2 * n // 3:])


def test_planted_signal_is_found():
    x, y = _planted()
    result = run_linear_probe(x, y, ["a", "b", "c"], _thirds(len(x)), fractions=(1.0,), seeds=(0,), n_boot=100)
    json.dumps(result, allow_nan=False)
    frac = result["fractions"][0]
    assert frac["seed_averaged"]["macro_auroc"] >= 0.99
    assert frac["mean"]["macro_auroc"] >= 0.99 and frac["n_train"] == 200 and frac["actual_fraction"] == 1.0
    ci = frac["seed_averaged"]["macro_auroc_ci95"]
    assert ci["low"] <= frac["seed_averaged"]["macro_auroc"] <= ci["high"]
    assert result["protocol"]["lr"] == 1e-3 and result["protocol"]["batch_size"] == 64


def test_shuffled_labels_give_chance():
    x, y = _planted(n=3000, d=16, c=4, seed=1)
    y = y[np.random.default_rng(2).permutation(len(y))]  # breaks the link between features and labels
    result = run_linear_probe(x, y, list("abcd"), _thirds(len(x)), fractions=(1.0,), seeds=(0, 1, 2), n_boot=0,
                              probe_kwargs=FAST)
    frac = result["fractions"][0]
    # null AUROC SD with 1000 test records at 30 % prevalence is ~0.02 per class; the mean of 4 classes x 3
    # seeds is well inside 0.5 +- 0.08
    assert abs(frac["mean"]["macro_auroc"] - 0.5) < 0.08
    assert frac["seed_averaged"]["macro_auroc_ci95"]["low"] is None  # n_boot = 0: no CI, and it says so
    json.dumps(result, allow_nan=False)


def test_probe_is_deterministic_and_leaves_the_global_rng_alone():
    x, y = _planted(n=300)
    state = torch.get_rng_state()
    a = train_linear_probe(x[:200], y[:200], x[200:], y[200:], seed=3, **FAST)
    assert torch.equal(state, torch.get_rng_state())
    b = train_linear_probe(x[:200], y[:200], x[200:], y[200:], seed=3, **FAST)
    c = train_linear_probe(x[:200], y[:200], x[200:], y[200:], seed=4, **FAST)
    np.testing.assert_array_equal(a.weight, b.weight)
    assert a.best_epoch == b.best_epoch and a.history == b.history
    assert not np.array_equal(a.weight, c.weight)
    assert 1 <= a.best_epoch <= a.epochs_run <= 30 and a.val_auroc == max(a.history)
    assert a.history.index(a.val_auroc) + 1 == a.best_epoch  # the first epoch reaching the best value
    p = a.predict_proba(x[200:])
    assert p.shape == (100, 3) and p.dtype == np.float32 and ((p > 0) & (p < 1)).all()


def test_early_stopping_keeps_the_best_validation_epoch():
    x, y = _planted(n=300)
    probe = train_linear_probe(x[:200], y[:200], x[200:], y[200:], max_epochs=100, patience=3)
    assert probe.epochs_run - probe.best_epoch <= 3
    after = probe.history[probe.best_epoch:]
    assert all(v <= probe.val_auroc for v in after)
    auc = roc_auc_score(y[200:], probe.predict_proba(x[200:]), average="macro")
    assert auc == pytest.approx(probe.val_auroc, abs=1e-5)  # restored weights are the selected epoch's


def test_classes_without_training_positive_are_recorded_and_excluded():
    x, y = _planted(n=600, c=3)
    split = _thirds(len(x))
    y[split.train, 1] = 0
    probe = train_linear_probe(x[split.train], y[split.train], x[split.val], y[split.val], **FAST)
    assert probe.classes_without_positive == [1] and probe.selection_classes == [0, 2]
    result = run_linear_probe(x, y, ["a", "b", "c"], split, fractions=(1.0,), seeds=(0, 1), n_boot=50,
                              probe_kwargs=FAST)
    frac = result["fractions"][0]
    assert [e["class"] for e in frac["excluded_classes"]] == ["b"]
    assert "no positive training example" in frac["excluded_classes"][0]["reason"]
    assert frac["seed_averaged"]["classes_evaluated"] == ["a", "c"]
    assert all(r["classes_without_train_positive"] == ["b"] for r in frac["runs"])
    json.dumps(result, allow_nan=False)


def test_selection_falls_back_to_validation_loss_without_evaluable_classes():
    x, y = _planted(n=300)
    y_val = np.zeros_like(y[200:])
    probe = train_linear_probe(x[:200], y[:200], x[200:], y_val, **FAST)
    assert probe.selection_metric == "val_bce" and probe.val_auroc is None


def test_leakage_guard():
    check_splits([0, 1, 2], [3], [4, 5])
    with pytest.raises(LeakageError, match="train and test"):
        check_splits([0, 1, 2], [3], [2, 4])
    with pytest.raises(LeakageError, match="val and test"):
        check_splits([0, 1], [3], [3, 4])
    patients = ["p1", "p2", "p3", "p1", None, None, float("nan")]
    with pytest.raises(LeakageError, match="patient"):
        check_splits([0, 1], [2], [3], patient_ids=patients)  # p1 in train and test
    with pytest.raises(LeakageError, match="patient"):
        check_splits([1], [0], [3], patient_ids=patients)  # p1 in val and test
    check_splits([0, 1, 4], [2, 6], [5], patient_ids=patients)  # records without an id are their own patient
    with pytest.raises(TypeError):
        check_splits(np.array([True, False]), [1], [2])


def test_protocols_refuse_leaky_splits_before_training(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("trained on a leaky split")

    monkeypatch.setattr(lp, "train_linear_probe", boom)
    x, y = _planted(n=30)
    with pytest.raises(LeakageError):
        leaky = {"train": np.arange(20), "val": np.arange(20, 25), "test": np.arange(19, 30)}
        run_linear_probe(x, y, list("abc"), leaky)
    folds = np.repeat(np.arange(1, 11), 3)
    patients = [f"p{i}" for i in range(30)]
    patients[0] = patients[29] = "shared"  # fold 1 and fold 10
    with pytest.raises(LeakageError):
        run_cross_validation(x, y, list("abc"), folds, patient_ids=patients)


def _row_ids(x: np.ndarray) -> dict[bytes, int]:
    return {row.tobytes(): i for i, row in enumerate(x)}


def test_model_selection_never_sees_test_data(monkeypatch):
    x, y = _planted(n=450)
    split = _thirds(len(x))
    ids = _row_ids(x)
    seen = {"fit": set(), "select": set(), "thresholds": 0}
    real_train, real_thresholds = lp.train_linear_probe, lp.choose_thresholds

    def spy_train(x_train, y_train, x_val, y_val, **kw):
        seen["fit"] |= {ids[r.tobytes()] for r in x_train}
        seen["select"] |= {ids[r.tobytes()] for r in x_val}
        return real_train(x_train, y_train, x_val, y_val, **kw)

    def spy_thresholds(y_val, scores_val):
        np.testing.assert_array_equal(y_val, y[split.val])  # thresholds come from validation labels only
        seen["thresholds"] += 1
        return real_thresholds(y_val, scores_val)

    monkeypatch.setattr(lp, "train_linear_probe", spy_train)
    monkeypatch.setattr(lp, "choose_thresholds", spy_thresholds)
    run_linear_probe(x, y, list("abc"), split, fractions=(0.1, 1.0), seeds=(0, 1), n_boot=20, probe_kwargs=FAST)
    assert seen["fit"] <= set(split.train.tolist()) and seen["select"] == set(split.val.tolist())
    assert seen["thresholds"] == 2 * 2 + 2  # each seed, plus the seed-averaged scores, per fraction


def test_selection_does_not_depend_on_test_labels():
    x, y = _planted(n=450)
    split = _thirds(len(x))
    flipped = y.copy()
    flipped[split.test] = 1 - flipped[split.test]
    kw = dict(fractions=(0.1, 1.0), seeds=(0, 1), n_boot=20, probe_kwargs=FAST)
    a = run_linear_probe(x, y, list("abc"), split, **kw)
    b = run_linear_probe(x, flipped, list("abc"), split, **kw)
    for fa, fb in zip(a["fractions"], b["fractions"]):
        assert fa["seed_averaged"]["thresholds"] == fb["seed_averaged"]["thresholds"]
        for ra, rb in zip(fa["runs"], fb["runs"]):
            for key in ("best_epoch", "val_auroc", "epochs_run"):
                assert ra[key] == rb[key]
        assert fa["seed_averaged"]["macro_auroc"] == pytest.approx(1 - fb["seed_averaged"]["macro_auroc"])


def _multilabel(n: int, c: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    prevalence = np.geomspace(0.4, 0.01, c)
    y = rng.random((n, c)) < prevalence
    y[rng.integers(0, n, c), np.arange(c)] = True  # every class has a positive
    return y.astype(np.float32)


@pytest.mark.parametrize("seed", range(4))
def test_stratified_fraction_sizes_coverage_and_determinism(seed):
    y = _multilabel(390, 12, seed)
    for fraction in (0.01, 0.04, 0.1, 0.5, 0.9):
        idx = stratified_fraction(y, fraction, seed)
        assert len(idx) == max(1, round(fraction * len(y))) and len(np.unique(idx)) == len(idx)
        assert idx.min() >= 0 and idx.max() < len(y)
        np.testing.assert_array_equal(idx, stratified_fraction(y, fraction, seed))
        covered = (y[idx].sum(axis=0) > 0).sum()
        if len(idx) >= y.shape[1]:
            assert covered == y.shape[1]
        else:  # impossible to cover all: the greedy still covers at least one class per row
            assert covered >= len(idx)
    half = stratified_fraction(y, 0.5, seed)
    common = y.sum(axis=0) >= 20
    np.testing.assert_allclose(y[half].sum(axis=0)[common] / y.sum(axis=0)[common], 0.5, atol=0.12)
    assert not np.array_equal(stratified_fraction(y, 0.1, seed), stratified_fraction(y, 0.1, seed + 10))
    np.testing.assert_array_equal(stratified_fraction(y, 1.0, seed), np.arange(len(y)))


def test_stratified_fraction_rejects_bad_fractions():
    y = _multilabel(50, 3, 0)
    for bad in (0, -0.1, 1.5):
        with pytest.raises(ValueError):
            stratified_fraction(y, bad, 0)
    assert len(stratified_fraction(y, 0.001, 0)) == 1


def test_make_folds_is_balanced_and_patient_grouped():
    y = _multilabel(500, 6, 1)
    rng = np.random.default_rng(0)
    patients = [f"p{i}" for i in rng.integers(0, 300, len(y))]
    folds = make_folds(y, 10, seed=0, patient_ids=patients)
    assert set(folds.tolist()) == set(range(1, 11))
    for p in set(patients):
        assert len({folds[i] for i, q in enumerate(patients) if q == p}) == 1
    sizes = np.bincount(folds)[1:]
    assert sizes.min() >= 40 and sizes.max() <= 60
    np.testing.assert_array_equal(folds, make_folds(y, 10, seed=0, patient_ids=patients))
    common = np.flatnonzero(y.sum(axis=0) >= 50)
    per_fold = np.array([y[folds == k][:, common].sum(axis=0) for k in range(1, 11)])
    assert (per_fold.max(axis=0) - per_fold.min(axis=0) <= 4).all()


def _fake_probe_factory(calls: list, weight: np.ndarray, bias: np.ndarray):
    """A train_linear_probe stand-in that records what it was given and returns a fixed probe."""

    def fake(x_train, y_train, x_val, y_val, **kw):
        calls.append((x_train, x_val))
        d = x_train.shape[1]
        return LinearProbe(mean=np.zeros(d, np.float32), std=np.ones(d, np.float32), weight=weight, bias=bias,
                           best_epoch=1, epochs_run=1, val_auroc=0.5, selection_metric="val_macro_auroc",
                           selection_classes=[0, 1], classes_without_positive=[])

    return fake


def test_cross_validation_fold_rule_fold_mean_and_pooled(monkeypatch):
    rng = np.random.default_rng(0)
    n = 400
    folds = np.tile(np.arange(1, 11), n // 10)
    y = (rng.random((n, 2)) < 0.3).astype(np.float32)
    base = y * 1.0 + rng.normal(size=(n, 2))
    x = np.column_stack([base, folds, np.arange(n)]).astype(np.float32)  # column 3: the record, to trace rows
    weight = np.array([[1.0, 0.0, 0.4, 0.0], [0.0, 1.0, -0.3, 0.0]], np.float32)  # a fold-dependent offset
    bias = np.array([-2.0, 1.0], np.float32)
    calls: list = []
    monkeypatch.setattr(lp, "train_linear_probe", _fake_probe_factory(calls, weight, bias))
    result = run_cross_validation(x, y, ["a", "b"], folds, fractions=(1.0,), seeds=(0, 1), n_boot=200)
    json.dumps(result, allow_nan=False)

    assert len(calls) == 10 * 2
    for x_train, x_val in calls[::2]:
        train_folds, val_folds = set(x_train[:, 2].astype(int)), set(x_val[:, 2].astype(int))
        (test_fold,) = set(range(1, 11)) - train_folds - val_folds
        assert val_folds == {10 if test_fold == 1 else test_fold - 1} and len(train_folds) == 8

    scores = 1 / (1 + np.exp(-(x @ weight.T + bias)))
    per_fold = [roc_auc_score(y[folds == k], scores[folds == k], average="macro") for k in range(1, 11)]
    frac = result["fractions"][0]
    assert [f["test_fold"] for f in frac["folds"]] == list(range(1, 11))
    assert [f["val_fold"] for f in frac["folds"]] == [10, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    np.testing.assert_allclose([f["macro_auroc"] for f in frac["folds"]], per_fold, atol=1e-6)
    assert frac["fold_mean"]["macro_auroc"] == pytest.approx(np.mean(per_fold), abs=1e-6)
    assert frac["fold_sd"]["macro_auroc"] == pytest.approx(np.std(per_fold, ddof=1), abs=1e-6)
    pooled = roc_auc_score(y, scores, average="macro")
    assert frac["pooled"]["macro_auroc"] == pytest.approx(pooled, abs=1e-6)
    assert abs(pooled - np.mean(per_fold)) > 0.02  # the offsets make pooling differ from averaging folds
    ci = frac["pooled"]["macro_auroc_ci95"]
    assert ci["low"] < pooled < ci["high"] and frac["pooled"]["n_records"] == n


def test_cross_validation_end_to_end_has_no_nan():
    x, y = _planted(n=300, d=8, c=3, seed=4)
    y = np.column_stack([y, np.zeros(len(y))]).astype(np.float32)
    y[:2, 3] = 1  # a class with two positives: absent from most folds' test and training parts
    patients = [f"p{i // 2}" for i in range(len(y))]
    folds = make_folds(y, 10, seed=0, patient_ids=patients)
    result = run_cross_validation(x, y, ["a", "b", "c", "rare"], folds, fractions=(0.01, 1.0), seeds=(0, 1),
                                  n_boot=100, patient_ids=patients, probe_kwargs=FAST)
    text = json.dumps(result, allow_nan=False)
    assert "NaN" not in text
    low_fraction, full = result["fractions"]
    assert full["pooled"]["macro_auroc"] > 0.9
    assert any(e["class"] == "rare" for e in low_fraction["pooled"]["excluded_classes"])
    assert result["protocol"]["n_folds"] == 10 and result["n_records_in_folds"] == len(y)
    for fold in full["folds"]:
        assert fold["n_train"] + fold["n_val"] + fold["n_test"] == len(y)


def test_cross_validation_needs_every_fold():
    x, y = _planted(n=90)
    folds = np.repeat(np.arange(1, 10), 10)  # no fold 10
    with pytest.raises(ValueError, match="fold"):
        run_cross_validation(x, y, list("abc"), folds)


def test_fold_split_input_matches_run_linear_probe():
    x, y = _planted(n=200, seed=5)
    folds = np.tile(np.arange(1, 11), 20)
    result = run_linear_probe(x, y, list("abc"), fold_split(folds), fractions=(1.0,), seeds=(0,), n_boot=0,
                              probe_kwargs=FAST)
    assert result["n_records"] == {"train": 160, "val": 20, "test": 20}
