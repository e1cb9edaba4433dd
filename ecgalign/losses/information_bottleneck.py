"""The information-bottleneck proxy of MERIT section 3.2 (after Almudévar et al. 2025): a cosine-alignment
penalty between paired ECG and text embeddings, weighted by the bottleneck strength in the recipe."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def ib_cosine_penalty(ecg: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
    """Mean over pairs of ``1 - cos(ecg_i, text_i)``: 0 when every pair is aligned, 2 when opposite.
    Driving it to 0 collapses the ECG components that do not align with the report."""
    if ecg.shape != text.shape or ecg.ndim != 2:
        raise ValueError(f"ib_cosine_penalty needs two (N, D) embeddings; got {tuple(ecg.shape)} and {tuple(text.shape)}")
    return (1.0 - F.cosine_similarity(ecg.float(), text.float(), dim=-1)).mean()
