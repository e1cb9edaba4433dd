"""Gramian volume contrastive loss (GRAM, Cicchetti et al., ICLR 2025; ECG-Scan section 4.2, Eq. 2-4): the
volume of the parallelepiped spanned by the normalised image, text and signal embeddings is small when the
three agree; in-batch negatives turn volumes into a bidirectional cross-entropy.

For unit vectors a, b, c with cosines x = a.b, y = a.c, z = b.c the Gram determinant is
``1 + 2xyz - x^2 - y^2 - z^2``, so the volumes of every (a_i, b_j, c_j) come from three cosine matrices
without forming 3 x 3 matrices. The determinant is clamped at ``eps`` before the square root: at perfect
alignment det = 0, where sqrt has an infinite derivative; the clamp keeps gradients finite.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def gram_volume(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Volume of (a_i, b_i, c_i) for each row: (N,) from three (N, D) embeddings (normalised here)."""
    a, b, c = (F.normalize(t.float(), dim=-1) for t in (a, b, c))
    x, y, z = (a * b).sum(-1), (a * c).sum(-1), (b * c).sum(-1)
    det = 1 + 2 * x * y * z - x * x - y * y - z * z
    return det.clamp(min=eps).sqrt()


def gram_volume_matrix(anchor: torch.Tensor, b: torch.Tensor, c: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """(N, N) volumes of (anchor_i, b_j, c_j): each anchor against every (text, signal) pair of the batch."""
    a, b, c = (F.normalize(t.float(), dim=-1) for t in (anchor, b, c))
    x = a @ b.t()  # (N, N) anchor_i . b_j
    y = a @ c.t()  # (N, N) anchor_i . c_j
    z = (b * c).sum(-1)[None, :]  # (1, N) b_j . c_j
    det = 1 + 2 * x * y * z - x * x - y * y - z * z
    return det.clamp(min=eps).sqrt()


def gram_loss(anchor: torch.Tensor, b: torch.Tensor, c: torch.Tensor, logit_scale: torch.Tensor | float,
              smoothing: float = 0.0, eps: float = 1e-6) -> dict[str, torch.Tensor]:
    """Bidirectional in-batch cross-entropy on ``-logit_scale * volume``: anchor i should span the smallest
    volume with its own (b_i, c_i) (anchor -> pairs), and pair j with its own anchor (pairs -> anchor)."""
    if not (anchor.shape == b.shape == c.shape) or anchor.ndim != 2:
        raise ValueError(f"gram_loss needs three (N, D) embeddings; got {tuple(anchor.shape)}, {tuple(b.shape)}, {tuple(c.shape)}")
    volume = gram_volume_matrix(anchor, b, c, eps)  # (N, N), rows: anchors, columns: pairs
    logits = -logit_scale * volume
    targets = torch.arange(len(anchor), device=anchor.device)
    loss = 0.5 * (F.cross_entropy(logits, targets, label_smoothing=smoothing)
                  + F.cross_entropy(logits.t(), targets, label_smoothing=smoothing))
    with torch.no_grad():
        accuracy = (logits.argmax(dim=1) == targets).float().mean()
    return {"loss": loss, "acc": accuracy, "mean_positive_volume": volume.diagonal().mean().detach()}
