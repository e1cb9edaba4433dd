"""Symmetric InfoNCE / CLIP loss (Radford et al. 2021; MERIT Eq. 2, ESI Eq. 1) with a learnable
temperature, optional label smoothing, and negatives gathered from every data-parallel rank *with* gradient
(open_clip's ``gather_with_grad`` + local loss), so two ranks with 4 pairs each train exactly like one
process with the 8 pairs."""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` (B, D) from every rank in rank order; gradients flow back to each rank's part.
    Without an initialised process group (or with one rank) ``x`` is returned unchanged."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    import torch.distributed.nn.functional as dist_fn

    return torch.cat(dist_fn.all_gather(x), dim=0)


def _directional(queries: torch.Tensor, keys: torch.Tensor, scale: torch.Tensor | float, offset: int,
                 smoothing: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy of each query against all keys, its positive at key ``offset + i``; and top-1 accuracy."""
    logits = scale * queries @ keys.t()  # (Nq, Nk)
    targets = torch.arange(queries.shape[0], device=queries.device) + offset
    loss = F.cross_entropy(logits, targets, label_smoothing=smoothing)
    with torch.no_grad():
        accuracy = (logits.argmax(dim=1) == targets).float().mean()
    return loss, accuracy


def _check(a: torch.Tensor, b: torch.Tensor) -> None:
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"contrastive loss needs two (N, D) embeddings of the same shape; got {tuple(a.shape)} and {tuple(b.shape)}")


def clip_loss(a: torch.Tensor, b: torch.Tensor, logit_scale: torch.Tensor | float,
              smoothing: float = 0.0) -> dict[str, torch.Tensor]:
    """Symmetric InfoNCE of N pairs (a_i, b_i): mean of the a->b and b->a cross-entropies of
    ``logit_scale * cos(a_i, b_j)``. Inputs are L2-normalised here.

    Returns ``loss`` and the in-batch retrieval accuracies ``acc_a2b``, ``acc_b2a``.
    """
    _check(a, b)
    a, b = F.normalize(a.float(), dim=-1), F.normalize(b.float(), dim=-1)
    loss_ab, acc_ab = _directional(a, b, logit_scale, 0, smoothing)
    loss_ba, acc_ba = _directional(b, a, logit_scale, 0, smoothing)
    return {"loss": 0.5 * (loss_ab + loss_ba), "acc_a2b": acc_ab, "acc_b2a": acc_ba}


class ClipLoss(nn.Module):
    """CLIP loss with a learnable temperature (``logit_scale = exp(log_scale)``, initialised to 1/0.07 and
    clamped at 100 as in CLIP) and cross-rank negatives.

    Each rank scores its own a's against all ranks' b's and its own b's against all ranks' a's. The mean of
    these per-rank losses (what the data-parallel gradient average optimises) is exactly ``clip_loss`` on the
    global batch.
    """

    def __init__(self, init_temperature: float = 0.07, learnable: bool = True, smoothing: float = 0.0,
                 max_scale: float = 100.0):
        super().__init__()
        value = torch.tensor(math.log(1.0 / init_temperature))
        if learnable:
            self.log_scale = nn.Parameter(value)
        else:
            self.register_buffer("log_scale", value)
        self.smoothing = smoothing
        self.max_scale = max_scale

    @property
    def logit_scale(self) -> torch.Tensor:
        return self.log_scale.exp().clamp(max=self.max_scale)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> dict[str, torch.Tensor]:
        _check(a, b)
        a, b = F.normalize(a.float(), dim=-1), F.normalize(b.float(), dim=-1)
        all_a, all_b = gather_with_grad(a), gather_with_grad(b)
        offset = dist.get_rank() * a.shape[0] if all_a.shape[0] != a.shape[0] else 0
        scale = self.logit_scale
        loss_ab, acc_ab = _directional(a, all_b, scale, offset, self.smoothing)
        loss_ba, acc_ba = _directional(b, all_a, scale, offset, self.smoothing)
        return {"loss": 0.5 * (loss_ab + loss_ba), "acc_a2b": acc_ab, "acc_b2a": acc_ba,
                "logit_scale": scale.detach()}
