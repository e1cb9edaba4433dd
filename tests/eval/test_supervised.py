"""The supervised-from-scratch trainer: class-balanced BCE weights and their effect on what the model learns."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ecgalign.data.spec import InputSpec
from ecgalign.eval.supervised import balanced_pos_weight, train_end_to_end, train_supervised

TINY = dict(layers=(1, 1, 1, 1), widths=(4, 8, 8, 8), stem_channels=(4, 4, 8))


def test_balanced_pos_weight_is_negatives_over_positives():
    y = np.zeros((10, 3), dtype=np.float32)
    y[:5, 0] = 1          # 5 / 5 -> 1
    y[:1, 1] = 1          # 9 / 1 -> 9
    # class 2 has no positives: nothing to weigh
    np.testing.assert_allclose(balanced_pos_weight(y), [1.0, 9.0, 1.0])
    y_all = np.ones((4, 1), dtype=np.float32)  # no negatives: capped below, not 0
    assert balanced_pos_weight(y_all, cap=100.0)[0] == pytest.approx(0.01)
    y_rare = np.zeros((1000, 1), dtype=np.float32)
    y_rare[0] = 1
    assert balanced_pos_weight(y_rare, cap=50.0)[0] == 50.0


def test_train_supervised_rejects_unknown_class_weight():
    x = np.zeros((4, 12, 1000), dtype=np.float32)
    y = np.zeros((4, 2), dtype=np.float32)
    with pytest.raises(ValueError, match="class_weight"):
        train_supervised("xresnet1d_50", TINY, InputSpec(), x, y, x, y, epochs=1, class_weight="inverse")


def _one_step_bias(pos_weight):
    """The bias of a zero-initialised linear model after one full-batch AdamW step on a class with 10 %
    positives. At logit 0 the BCE gradient is mean(0.5 * (1 + (w - 1) y) - w y): positive (the bias goes down)
    without weights, 0 at w = 9 (negatives / positives), negative (the bias goes up) for w > 9."""
    y = np.zeros((200, 1), dtype=np.float32)
    y[:20] = 1
    x = np.zeros((200, 1), dtype=np.float32)
    model = nn.Linear(1, 1)
    nn.init.zeros_(model.weight)
    nn.init.zeros_(model.bias)
    train_end_to_end(model, x, y, x, y, epochs=1, patience=1, lr=0.1, weight_decay=0.0, batch_size=200,
                     generator=torch.Generator().manual_seed(0), pos_weight=pos_weight)
    return model.bias.item()


def test_pos_weight_reaches_the_loss():
    assert _one_step_bias(None) == pytest.approx(-0.1, abs=1e-3)
    balanced = balanced_pos_weight(np.r_[np.ones(20), np.zeros(180)][:, None])
    assert balanced[0] == pytest.approx(9.0)
    # (at w = 9 exactly the gradient is float noise, which Adam's normalised step would amplify: not asserted)
    assert _one_step_bias(np.array([3.0], dtype=np.float32)) == pytest.approx(-0.1, abs=1e-3)
    assert _one_step_bias(np.array([20.0], dtype=np.float32)) == pytest.approx(0.1, abs=1e-3)


class _MeanEncoder(nn.Module):
    """A trainable stand-in for a signal encoder: each lead's mean through a linear map."""

    embed_dim = 3

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(12, 3)

    def forward(self, x):
        return self.proj(x.mean(-1))


def _toy(n=120, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 12, 50)).astype(np.float32)
    y = np.zeros((n, 2), dtype=np.float32)
    y[:, 0] = x[:, 0].mean(-1) > 0
    y[:, 1] = x[:, 1].mean(-1) > 0.2  # the rarer class
    return x, y


def test_fine_tune_passes_the_class_weight_to_the_loss():
    from ecgalign.eval.finetune import fine_tune

    x, y = _toy()
    runs = {}
    for cw in (None, "balanced"):
        torch.manual_seed(0)
        net, info = fine_tune(_MeanEncoder(), x, y, x, y, epochs=1, batch_size=120, class_weight=cw)
        assert info["class_weight"] == cw
        runs[cw] = net.head.bias.detach().clone()
    assert not torch.allclose(runs[None], runs["balanced"])
    with pytest.raises(ValueError, match="class_weight"):
        fine_tune(_MeanEncoder(), x, y, x, y, epochs=1, class_weight="inverse")


def test_eval_config_and_cli_take_the_class_weight():
    from typer.testing import CliRunner

    from ecgalign.cli.main import app
    from ecgalign.data.errors import InputError
    from ecgalign.eval.run import EvalConfig

    assert EvalConfig(supervised_class_weight="balanced").supervised_class_weight == "balanced"
    with pytest.raises(InputError, match="--class-weight"):
        EvalConfig(supervised_class_weight="inverse")
    for command in ("linear-probe", "fine-tune", "all"):
        result = CliRunner().invoke(app, ["eval", command, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0 and "--class-weight" in result.output, command


def test_the_report_names_a_weighted_supervised_reference():
    from ecgalign.eval.builtin import _probe_rows

    res = {"fraction": 1.0, "best_epoch": 3, "epochs_run": 5, "test": {"macro_auroc": 0.8}}
    assert _probe_rows({"supervised": res})[0]["encoder"] == "supervised from scratch"
    weighted = _probe_rows({"supervised": {**res, "class_weight": "balanced"}})[0]["encoder"]
    assert weighted == "supervised from scratch (balanced BCE)"


def test_the_fine_tune_table_notes_the_class_weight():
    from ecgalign.eval.finetune import _fine_tune_rows

    res = {"best_epoch": 2, "epochs_run": 4, "test": {"macro_auroc": 0.7}}
    assert _fine_tune_rows({"random_init": res})[0]["note"] == "best epoch 2 of 4"
    assert _fine_tune_rows({"random_init": {**res, "class_weight": "balanced"}})[0]["note"].endswith("; balanced BCE")
