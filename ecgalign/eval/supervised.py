"""The supervised-from-scratch reference every linear-probe report includes: the same encoder architecture,
randomly initialised and trained end to end with a linear head on the probe's training split (BCE,
AdamW), the epoch chosen by validation macro AUROC only. It answers "is the pretrained, frozen encoder
better than just training this network on the labels?" (../shared/BASELINES.md's supervised ResNet row)."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from torch import nn

from ecgalign.eval.metrics import macro_auroc
from ecgalign.models.encoders.ecg.base import create_encoder


def train_supervised(encoder_name: str, encoder_kwargs: dict[str, Any], spec, x_train: np.ndarray, y_train: np.ndarray,
                     x_val: np.ndarray, y_val: np.ndarray, *, epochs: int = 30, patience: int = 5, lr: float = 1e-3,
                     weight_decay: float = 1e-2, batch_size: int = 32, seed: int = 0,
                     class_weight: str | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """Encoder + linear head trained on (x_train, y_train); the returned model is the best validation epoch's.
    ``class_weight="balanced"`` weighs each class's positives by its negatives / positives in the BCE
    (:func:`balanced_pos_weight`), so that a rare class counts as much as a common one."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    encoder = create_encoder(encoder_name, input_spec=spec, **encoder_kwargs)
    model, info = train_with_head(encoder, x_train, y_train, x_val, y_val, epochs=epochs, patience=patience, lr=lr,
                                  weight_decay=weight_decay, batch_size=batch_size, generator=generator,
                                  class_weight=class_weight)
    return model, {**info, "encoder": encoder_name, "params": sum(p.numel() for p in encoder.parameters())}


def train_with_head(encoder: nn.Module, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray,
                    y_val: np.ndarray, *, epochs: int, patience: int, lr: float, weight_decay: float,
                    batch_size: int, generator: torch.Generator,
                    class_weight: str | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """``encoder`` (pooled output, ``embed_dim``) + a new linear head, trained end to end
    (:func:`train_end_to_end`) with the BCE weighted as ``class_weight`` says; the caller seeds torch, so that
    the head's initialisation follows the encoder's in one random stream. The one place a supervised or
    fine-tuned model is assembled."""
    pos_weight = pos_weight_for(class_weight, y_train)
    model = nn.Sequential()
    model.add_module("encoder", encoder)
    model.add_module("head", nn.Linear(encoder.embed_dim, y_train.shape[1]))
    model, info = train_end_to_end(model, x_train, y_train, x_val, y_val, epochs=epochs, patience=patience, lr=lr,
                                   weight_decay=weight_decay, batch_size=batch_size, generator=generator,
                                   pos_weight=pos_weight)
    return model, {**info, "class_weight": class_weight}


CLASS_WEIGHTS = (None, "balanced")


def pos_weight_for(class_weight: str | None, y_train: np.ndarray) -> np.ndarray | None:
    """The BCE ``pos_weight`` a ``class_weight`` setting gives on ``y_train``: None (unweighted) or "balanced"."""
    if class_weight not in CLASS_WEIGHTS:
        raise ValueError(f"class_weight: expected one of {list(CLASS_WEIGHTS)}, got {class_weight!r}")
    return balanced_pos_weight(y_train) if class_weight == "balanced" else None


def balanced_pos_weight(y: np.ndarray, cap: float = 100.0) -> np.ndarray:
    """Per-class BCE weight of the positives, negatives / positives of ``y`` (N, classes), capped at ``cap``; a
    class without positives in ``y`` gets 1 (nothing to weigh)."""
    y = np.asarray(y, dtype=np.float64)
    pos = y.sum(0)
    neg = len(y) - pos
    w = np.where(pos > 0, neg / np.maximum(pos, 1.0), 1.0)
    return np.clip(w, 1.0 / cap, cap).astype(np.float32)


def train_end_to_end(model: nn.Module, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
                     *, epochs: int, patience: int, lr: float, weight_decay: float, batch_size: int,
                     generator: torch.Generator,
                     pos_weight: np.ndarray | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """AdamW + BCE on every parameter of ``model`` (encoder + linear head), shuffled by ``generator``; the
    returned model holds the weights of the best validation epoch (macro AUROC), with early stopping.
    ``pos_weight`` (classes,) weighs each class's positive term in the BCE."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=None if pos_weight is None else torch.as_tensor(pos_weight))
    xt, yt = torch.from_numpy(np.ascontiguousarray(x_train)), torch.from_numpy(y_train)
    best, best_auroc, best_epoch, waited, epoch = copy.deepcopy(model.state_dict()), -1.0, 0, 0, 0
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(xt), generator=generator)
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            if len(idx) < 2:
                continue
            loss = loss_fn(model(xt[idx]), yt[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        val = macro_auroc(y_val, predict(model, x_val))
        if val is not None and val > best_auroc:
            best, best_auroc, best_epoch, waited = copy.deepcopy(model.state_dict()), val, epoch, 0
        else:
            waited += 1
            if waited >= patience:
                break
    model.load_state_dict(best)
    return model, {"best_epoch": best_epoch, "val_macro_auroc": best_auroc if best_auroc >= 0 else None,
                   "epochs_run": epoch}


@torch.no_grad()
def predict(model: nn.Module, x: np.ndarray, batch_size: int = 128) -> np.ndarray:
    model.eval()
    out = [torch.sigmoid(model(torch.from_numpy(x[i:i + batch_size]))) for i in range(0, len(x), batch_size)]
    return torch.cat(out).numpy()
