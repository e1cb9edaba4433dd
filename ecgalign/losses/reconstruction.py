"""Masked patch reconstruction (MAE, He et al. 2022; ST-MEM, Na et al. 2024; MERIT Eq. 4): mean squared
error over the masked patches only."""

from __future__ import annotations

import torch


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
               normalize_target: bool = False, eps: float = 1e-6) -> torch.Tensor:
    """pred, target: (..., patch) patches; mask: (...) bool or 0/1, True/1 = masked (scored).

    ``normalize_target`` standardises each target patch (MAE's per-patch normalisation) before the error.
    The loss is the mean over masked patches of the per-patch mean squared error; with no masked patch
    it raises rather than return NaN.
    """
    if pred.shape != target.shape or pred.shape[:-1] != mask.shape:
        raise ValueError(f"masked_mse: pred {tuple(pred.shape)}, target {tuple(target.shape)} and mask "
                         f"{tuple(mask.shape)} must agree (mask has the patch dimension dropped)")
    target = target.float()
    if normalize_target:
        mean = target.mean(dim=-1, keepdim=True)
        var = target.var(dim=-1, keepdim=True, unbiased=False)
        target = (target - mean) / (var + eps).sqrt()
    weight = mask.float()
    denominator = weight.sum()
    if denominator.item() == 0:
        raise ValueError("masked_mse: the mask selects no patch")
    per_patch = (pred.float() - target).pow(2).mean(dim=-1)
    return (per_patch * weight).sum() / denominator
