"""ECG <-> echo retrieval and shift detection (EEE evaluation): rank metrics against hand-computed values, planted
perfect and worst embeddings, a planted alignment head, the exact per-size shift, and both protocols end to end
on 1-2 step eee runs over a tiny synthetic echo dataset (strip and paired 12-lead variants)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("pydicom")

import ecgalign
from ecgalign.data.errors import InputError, NotApplicableError
from ecgalign.echo.pipeline import extract_dataset
from ecgalign.echo.store import EchoStore
from ecgalign.eval.echo import (cross_modal_retrieval, group_means, rank_metrics, shift_detection, shift_scores,
                                true_match_ranks)
from ecgalign.eval.report import build_report
from ecgalign.eval.run import EvalConfig, evaluate
from ecgalign.hub import echo_pair, load_echo
from ecgalign.models.heads.alignment import shift_signals
from ecgalign.synth.echo import EchoSynthConfig, synthesize_echo
from ecgalign.tasks import load_recipe
from ecgalign.train.engine import pretrain

SMALL = EchoSynthConfig(rows=120, cols=160, frames=(32, 36), fps=(30, 60), studies_per_patient=(1, 2),
                        views_per_study=2, defect_fraction=0.0, still_fraction=0.0)
TINY = [("echo.encoder_kwargs={clip_size: [4, 32, 32], tubelet: [2, 16, 16], vit_dim: 32, vit_depth: 1, "
         "embed_dim: 32, depth: 1, head_dim: 16}"),
        "data.batch_size=4", "data.num_workers=0", "train.accelerator=cpu", "train.log_every=1",
        "optim.warmup_steps=1"]
TINY_STRIP = ["model.encoder_kwargs={embed_dim: 32, depth: 1, num_heads: 2}", *TINY]
TINY_12 = ["model.encoder=vit1d_tiny", "model.encoder_kwargs={embed_dim: 16, depth: 1, num_heads: 2}", *TINY]
FAST = dict(fractions=(1.0,), seeds=(0,), n_boot=50, supervised=False, plots=False)


# ------------------------------------------------------------------------------------------- metrics
def test_ranks_and_recall_against_a_hand_computed_example():
    sim = np.array([[0.9, 0.1, 0.3],   # true 0.9 is best: rank 1
                    [0.8, 0.5, 0.6],   # 0.8 and 0.6 beat 0.5: rank 3
                    [0.2, 0.7, 0.7]])  # a tie with the true 0.7 counts against it: rank 2
    ranks = true_match_ranks(sim)
    assert ranks.tolist() == [1, 3, 2]
    m = rank_metrics(ranks, 3, ks=(1, 2, 5), n_boot=200)
    assert m["recall@1"] == pytest.approx(1 / 3) and m["recall@2"] == pytest.approx(2 / 3) and m["recall@5"] == 1.0
    assert m["median_rank"] == 2.0 and m["chance_median_rank"] == 2.0
    assert m["chance_recall@1"] == pytest.approx(1 / 3) and m["chance_recall@5"] == 1.0
    ci = m["recall@1_ci95"]
    assert 0.0 <= ci["low"] <= m["recall@1"] <= ci["high"] <= 1.0 and ci["n_boot"] == 200
    with pytest.raises(ValueError, match="square"):
        true_match_ranks(np.zeros((2, 3)))


def test_group_means_are_normalised_means_per_group():
    z = np.array([[1.0, 0.0], [0.0, 1.0], [3.0, 4.0]])
    keys, means = group_means(z, np.array([7, 7, 2]))
    assert keys.tolist() == [2, 7]
    np.testing.assert_allclose(means, [[0.6, 0.8], [np.sqrt(0.5), np.sqrt(0.5)]])


def test_planted_perfect_and_worst_embeddings():
    rng = np.random.default_rng(0)
    n, files = 12, 3
    groups = np.repeat(np.arange(100, 100 + n), files)  # 12 studies of 3 files each
    centres = np.linalg.qr(rng.standard_normal((16, n)))[0].T  # (12, 16) orthonormal study directions
    z = centres[groups - 100] + 0.05 * rng.standard_normal((n * files, 16))
    perfect = cross_modal_retrieval(z, z.copy(), groups, n_boot=100)
    for direction in ("ecg_to_echo", "echo_to_ecg"):
        m = perfect[direction]
        assert m["recall@1"] == 1.0 and m["median_rank"] == 1.0 and m["candidates"] == n
        assert m["recall@1_ci95"]["low"] == 1.0 and m["chance_recall@1"] == pytest.approx(1 / n)
    # worst: each ECG study is closest to every other study's echo and farthest from its own
    worst = cross_modal_retrieval(z, -z, groups, n_boot=100)["ecg_to_echo"]
    assert worst["recall@1"] == 0.0 and worst["recall@10"] == 0.0 and worst["median_rank"] == n


def test_shift_scores_of_a_planted_head():
    aligned, shifted = np.array([-2.0, -1.0, -0.5, 0.5]), np.array([1.0, 2.0, 3.0, -0.1])
    m = shift_scores(aligned, shifted, n_boot=200)
    assert m["pairs"] == 4 and m["accuracy"] == pytest.approx(6 / 8)
    assert m["aligned_called_aligned"] == 0.75 and m["shifted_called_shifted"] == 0.75
    # AUROC by hand: of the 16 (aligned, shifted) pairs only (0.5, -0.1) is out of order
    assert m["auroc"] == pytest.approx(15 / 16)
    assert 0.0 <= m["auroc_ci95"]["low"] <= m["auroc"] <= m["auroc_ci95"]["high"] <= 1.0


def test_shift_signals_by_an_exact_number_of_tokens():
    x = torch.arange(2 * 1 * 12, dtype=torch.float32).view(2, 1, 12)
    lengths = torch.tensor([12, 6])  # 4 and 2 tokens of 3 samples
    moved, shifted = shift_signals(x, 1.0, lengths, step=3, steps=1)
    assert shifted.tolist() == [True, True]
    assert moved[0, 0].tolist() == [9, 10, 11, 0, 1, 2, 3, 4, 5, 6, 7, 8]
    assert moved[1, 0].tolist() == [15, 16, 17, 12, 13, 14, 18, 19, 20, 21, 22, 23]  # the tail stays
    moved, shifted = shift_signals(x, 1.0, lengths, step=3, steps=2)  # row 1 holds only 2 tokens: not eligible
    assert shifted.tolist() == [True, False] and torch.equal(moved[1], x[1])
    assert moved[0, 0].tolist() == [6, 7, 8, 9, 10, 11, 0, 1, 2, 3, 4, 5]


# ------------------------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def echo_runs(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("eee-eval")
    synthesize_echo(base / "D", 30, seed=3, config=SMALL)  # 3 test patients
    extract_dataset(base / "D", base / "S", shard_files=8)
    strip = load_recipe("eee", sets=[*TINY_STRIP, "optim.max_steps=2"])
    pretrain(strip, base / "S", base / "run-strip", progress=False)
    paired = load_recipe("eee-12lead", sets=[*TINY_12, "optim.max_steps=1"])
    pretrain(paired, base / "S", base / "run-12", progress=False)
    return {"D": base / "D", "S": base / "S", "strip": base / "run-strip", "paired": base / "run-12"}


def test_load_echo_exposes_both_towers_and_the_head(echo_runs):
    pair = load_echo(echo_runs["strip"], device="cpu")
    assert pair.ecg_side == "strip" and pair.has_alignment_head and pair.clips == 4
    seq = pair.sequences(EchoStore(echo_runs["S"]))
    batch = next(pair.batches(seq, np.arange(3)))
    z = pair.embed(batch)
    assert z["z_ecg"].shape == z["z_echo"].shape == (3, 32)
    np.testing.assert_allclose(np.linalg.norm(z["z_ecg"], axis=1), 1.0, rtol=1e-5)
    moved, rows = pair.shift_tokens(batch, 1)
    assert rows.tolist() == [True, True, True] and not torch.equal(moved, batch["ecg"])
    aligned, shifted = pair.align_logits(batch), pair.align_logits(batch, moved)
    assert aligned.shape == shifted.shape == (3,)
    assert not np.allclose(aligned, shifted)  # the head sees the rotation
    twin = pair.random_init(seed=0)
    assert not np.allclose(twin.embed(batch)["z_ecg"], z["z_ecg"])
    # the twin is the same one the ECG-only protocols use (SignalModel.random_init(0))
    same = echo_pair(ecgalign.load(echo_runs["strip"], device="cpu").random_init(0))
    np.testing.assert_allclose(same.embed(batch)["z_ecg"], twin.embed(batch)["z_ecg"], rtol=1e-5, atol=1e-6)
    paired = load_echo(echo_runs["paired"], device="cpu")
    assert paired.ecg_side == "paired" and not paired.has_alignment_head
    with pytest.raises(NotApplicableError, match="not recorded during the echo"):
        shift_detection(paired, EchoStore(echo_runs["S"]), np.arange(4))


def test_eval_all_on_an_echo_store_reports_both_protocols(echo_runs):
    config = EvalConfig(protocols=("echo-labels", "echo-retrieval", "echo-shift"), **FAST)
    results, figures = evaluate(ecgalign.load(echo_runs["strip"], device="cpu"), echo_runs["S"], config)
    assert results["dataset"]["path"] == str(echo_runs["D"] / "ecg")  # ECG protocols on the paired store
    assert "linear_probe" in results["echo_labels"]
    retrieval = results["echo_retrieval"]
    store = EchoStore(echo_runs["S"])
    held_out = store.items.subject_id.isin([int(p[1:]) for p in _test_patients(echo_runs)])
    for role in ("model", "random_init"):
        entry = retrieval[role]
        assert entry["files"] == int(held_out.sum()) and entry["ecg_side"] == "strip"
        study = entry["study"]["ecg_to_echo"]
        assert study["candidates"] == store.items.study_id[held_out].nunique()
        assert 0.0 <= study["recall@1"] <= study["recall@5"] <= study["recall@10"] <= 1.0
    shift = results["echo_shift"]
    for role in ("model", "random_init"):
        assert set(shift[role]["by_shift"]) == {"1", "2", "3"}
        assert 0.0 <= shift[role]["all_shifts"]["accuracy"] <= 1.0
    html = build_report(results, figures)
    assert "ECG ↔ echo retrieval" in html and "ECG-echo shift detection" in html and "R@1" in html
    json.dumps(results, allow_nan=False)


def _test_patients(runs) -> list[str]:
    """The test patients of evaluate's seeded split of the paired ECG store (recomputed from its metadata)."""
    from ecgalign.eval.data import load_eval_data
    from ecgalign.eval.run import split_of

    data = load_eval_data(runs["D"] / "ecg")
    split, _ = split_of(data)
    return sorted({str(p) for p in data.patient_ids[split.test]})


def test_paired_variant_retrieves_and_skips_shift_with_the_reason(echo_runs):
    config = EvalConfig(protocols=("echo-retrieval", "echo-shift"), echo=str(echo_runs["S"]), **FAST)
    results, _ = evaluate(ecgalign.load(echo_runs["paired"], device="cpu"), echo_runs["D"] / "ecg", config)
    assert results["echo_retrieval"]["model"]["ecg_side"] == "paired"
    assert "patient" in results["echo_retrieval"]["model"]
    assert "not recorded during the echo" in results["echo_shift"]["skipped"]
    held_out = results["echo_retrieval"]["model"]["files"]
    # --echo-part all: every file of the store (each has its paired ECG here)
    every = EvalConfig(protocols=("echo-retrieval",), echo=str(echo_runs["S"]), echo_part="all", **FAST)
    results, _ = evaluate(ecgalign.load(echo_runs["paired"], device="cpu"), echo_runs["D"] / "ecg", every)
    store = EchoStore(echo_runs["S"])
    assert results["echo_retrieval"]["model"]["files"] == len(store) > held_out
    assert results["echo_retrieval"]["model"]["study"]["ecg_to_echo"]["candidates"] == store.items.study_id.nunique()
    assert results["echo_retrieval"]["split"].startswith("every file")
    with pytest.raises(InputError, match="echo-part"):
        EvalConfig(echo_part="train")


def test_non_eee_runs_and_missing_echo_store_are_skipped_or_named(echo_runs, tmp_path):
    merit = load_recipe("merit", sets=["model.encoder_kwargs={embed_dim: 16, depth: 1, num_heads: 2}",
                                       "model.decoder={decoder_dim: 16, depth: 1, num_heads: 2}", "data.fs=500",
                                       "data.normalize=none", "data.bandpass=null", "data.num_workers=0",
                                       "data.batch_size=4", "optim.max_steps=1", "optim.warmup_steps=1",
                                       "train.accelerator=cpu"])
    pretrain(merit, echo_runs["D"] / "ecg", tmp_path / "merit", progress=False)
    model = ecgalign.load(tmp_path / "merit", device="cpu")
    with pytest.raises(NotApplicableError, match="not trained against echo"):
        load_echo(tmp_path / "merit")
    config = EvalConfig(protocols=("echo-retrieval", "echo-shift"), echo=str(echo_runs["S"]), **FAST)
    results, _ = evaluate(model, echo_runs["D"] / "ecg", config)
    assert "not trained against echo" in results["echo_retrieval"]["skipped"]
    assert "not trained against echo" in results["echo_shift"]["skipped"]
    # an eee run without an echo store: skipped, naming the option
    no_echo = EvalConfig(protocols=("echo-retrieval",), **FAST)
    results, _ = evaluate(ecgalign.load(echo_runs["strip"], device="cpu"), echo_runs["D"] / "ecg", no_echo)
    assert "--echo" in results["echo_retrieval"]["skipped"]
    with pytest.raises(InputError, match="not an echo store"):
        evaluate(model, echo_runs["D"] / "ecg", EvalConfig(protocols=("echo-retrieval",), echo=str(tmp_path), **FAST))
