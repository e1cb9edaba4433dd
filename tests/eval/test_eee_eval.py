"""Fine-tuning and the echo-derived-label protocol (EEE evaluation): the training loop, the label join, the
split restriction, and ``evaluate`` end to end on an ``eee-12lead`` run over a small synthetic echo dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from ecgalign.data.errors import InputError, NotApplicableError
from ecgalign.data.splits import Split
from ecgalign.eval.data import EvalData
from ecgalign.eval.finetune import _restrict, echo_labels, echo_labels_csv, fine_tune
from ecgalign.eval.metrics import macro_auroc
from ecgalign.eval.supervised import predict


class _Mean(nn.Module):
    """A tiny encoder: per-lead mean and SD -> a linear layer (B, 4)."""

    embed_dim = 4

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 2, S) -> (B, 4)
        return self.linear(torch.cat([x.mean(-1), x.std(-1)], dim=1))


def _toy(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=(n, 2)).astype(np.float32)
    x = rng.standard_normal((n, 2, 50)).astype(np.float32)
    x[:, 0] += 0.8 * y[:, :1]  # class 0 shifts lead 0
    x[:, 1] *= 1 + y[:, 1:2]  # class 1 widens lead 1
    return x, y


def test_fine_tune_learns_and_returns_the_best_validation_epoch():
    (xt, yt), (xv, yv), (xs, ys) = _toy(128, 0), _toy(48, 1), _toy(48, 2)
    net, info = fine_tune(_Mean(), xt, yt, xv, yv, epochs=8, patience=8, lr=5e-2)
    assert 1 <= info["best_epoch"] <= info["epochs_run"] == 8
    assert info["val_macro_auroc"] == pytest.approx(macro_auroc(yv, predict(net, xv)))  # the kept weights
    assert macro_auroc(ys, predict(net, xs)) > 0.85
    # an untrainable head (lr 0) stays where it started: the loop really trains
    still, _ = fine_tune(_Mean(), xt, yt, xv, yv, epochs=2, lr=0.0)
    assert macro_auroc(ys, predict(still, xs)) < macro_auroc(ys, predict(net, xs))


def _data(tmp_path: Path, ids: list[str]) -> EvalData:
    store = tmp_path / "ecg"
    store.mkdir()
    meta = pd.DataFrame({"position": range(len(ids)), "record_id": ids})
    return EvalData("toy", str(store), "scp", meta, {})


def test_echo_labels_join_by_study_and_name_bad_tables(tmp_path):
    data = _data(tmp_path, ["s11", "s12", "s13", "x9"])
    with pytest.raises(NotApplicableError, match="no echo-labels.csv"):
        echo_labels_csv(data)
    pd.DataFrame({"study_id": [13, 11, 99], "ef_lt_40": [1, 0, 1], "lvh": [0, 1, 0],
                  "dilated_lv": [1, 0, 0]}).to_csv(tmp_path / "echo-labels.csv", index=False)
    y, classes, rows = echo_labels(data, echo_labels_csv(data))
    assert classes == ["EF<40%", "LVH (echo)", "dilated LV"]
    assert rows.tolist() == [0, 2] and y.tolist() == [[0, 1, 0], [1, 0, 1]]
    pd.DataFrame({"study_id": [11], "ef": [1]}).to_csv(tmp_path / "echo-labels.csv", index=False)
    with pytest.raises(InputError, match="missing column"):
        echo_labels(data, tmp_path / "echo-labels.csv")


def test_split_restricted_to_labelled_rows():
    split = Split(np.array([0, 1, 2, 5]), np.array([3, 6]), np.array([4, 7]))
    sub = _restrict(split, np.array([1, 3, 4, 5]))
    assert sub.train.tolist() == [0, 3] and sub.val.tolist() == [1] and sub.test.tolist() == [2]


@pytest.mark.slow
def test_evaluate_eee_12lead_on_echo_labels(tmp_path_factory):
    pytest.importorskip("pydicom")
    from ecgalign.echo.pipeline import extract_dataset
    from ecgalign.eval.report import build_report
    from ecgalign.eval.run import EvalConfig, evaluate
    from ecgalign.hub import load
    from ecgalign.synth.echo import EchoSynthConfig, synthesize_echo
    from ecgalign.tasks import load_recipe
    from ecgalign.train.engine import pretrain

    base = tmp_path_factory.mktemp("eee-eval")
    config = EchoSynthConfig(rows=120, cols=160, frames=(32, 34), fps=(30, 60), studies_per_patient=(2, 2),
                             views_per_study=1, defect_fraction=0.0, still_fraction=0.0)
    synthesize_echo(base / "D", 10, seed=2, config=config)
    extract_dataset(base / "D", base / "S", shard_files=8)
    recipe = load_recipe("eee-12lead", sets=[
        "model.encoder=vit1d_tiny", "model.encoder_kwargs={embed_dim: 16, depth: 1, num_heads: 2}",
        ("echo.encoder_kwargs={clip_size: [4, 32, 32], vit_dim: 32, vit_depth: 1, embed_dim: 32, depth: 1, "
         "head_dim: 16}"), "data.batch_size=4", "data.num_workers=0", "optim.max_steps=2", "optim.warmup_steps=1"])
    pretrain(recipe, base / "S", base / "run", progress=False)
    model = load(base / "run", device="cpu")
    config = EvalConfig(protocols=("echo-labels", "fine-tune"), label_sets=["superdiagnostic"], fractions=(1.0,),
                        seeds=(0,), n_boot=20, supervised_epochs=2)
    results, figures = evaluate(model, base / "D" / "ecg", config)
    block = results["echo_labels"]
    assert block["records"] == 20 and block["classes"] == ["EF<40%", "LVH (echo)", "dilated LV"]
    assert set(block["linear_probe"]) == {"model", "random_init"} and set(block["fine_tune"]) == {"model", "random_init"}
    assert all(r["epochs_run"] >= 1 for r in block["fine_tune"].values())
    by_patient = "percentile bootstrap over groups (patients)"  # a patient has several studies here
    assert all(r["test"]["macro_auroc_ci95"]["method"] == by_patient for r in block["fine_tune"].values())
    probe = block["linear_probe"]["model"]["fractions"][0]["seed_averaged"]["macro_auroc_ci95"]
    assert probe.get("method") == by_patient or probe["low"] is None
    assert set(results["fine_tune"]["superdiagnostic"]) == {"model", "random_init"}
    assert any(section == "echo_labels" for section, _, _ in figures)
    html = build_report(results, figures)
    assert "Echo-derived labels from the ECG alone" in html and "Full fine-tuning" in html


def test_folds_that_mix_patients_give_way_to_a_patient_split():
    from ecgalign.eval.run import split_of

    n = 40
    meta = pd.DataFrame({"position": range(n), "record_id": [f"r{i}" for i in range(n)],
                         "patient_id": [f"p{i // 2}" for i in range(n)], "fold": [1 + i % 10 for i in range(n)]})
    split, rule = split_of(EvalData("toy", "toy", "scp", meta, {}))
    assert "patient-level" in rule and "several parts" in rule
    owners = [{meta.patient_id[i] for i in part} for part in (split.train, split.val, split.test)]
    assert not (owners[0] & owners[1] or owners[0] & owners[2] or owners[1] & owners[2])
    meta["fold"] = [1 + (i // 2) % 10 for i in range(n)]  # patient-grouped folds stay official
    assert split_of(EvalData("toy", "toy", "scp", meta, {}))[1].startswith("official folds")
