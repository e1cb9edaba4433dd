"""Captioning loss (CoCa, Yu et al. 2022; ESI Eq. 2): next-token cross-entropy of a causal text decoder
conditioned on the ECG, padding ignored."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def caption_loss(logits: torch.Tensor, targets: torch.Tensor, pad_id: int,
                 smoothing: float = 0.0) -> dict[str, torch.Tensor]:
    """logits: (B, S, V) predictions for positions 1..S of the caption; targets: (B, S) the tokens at those
    positions (the input shifted by one); ``pad_id`` positions are ignored.

    Returns ``loss`` (mean over non-pad tokens) and ``token_acc``.
    """
    if logits.shape[:2] != targets.shape:
        raise ValueError(f"caption_loss: logits {tuple(logits.shape)} do not match targets {tuple(targets.shape)}")
    valid = targets != pad_id
    if not bool(valid.any()):
        raise ValueError("caption_loss: every target token is padding")
    flat = logits.reshape(-1, logits.shape[-1]).float()
    loss = F.cross_entropy(flat, targets.reshape(-1), ignore_index=pad_id, label_smoothing=smoothing)
    with torch.no_grad():
        token_acc = ((logits.argmax(dim=-1) == targets) & valid).sum().float() / valid.sum()
    return {"loss": loss, "token_acc": token_acc}
