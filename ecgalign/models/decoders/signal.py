"""Query-token signal decoder (ECG-Scan appendix A.1): learnable query tokens, one per ``patch`` samples of
the 10 s signal, each plus a learned position embedding and the projected image latent; a transformer
encoder over the queries; a linear map of each token to ``patch x leads`` values, reshaped to the signal.
During training a random share of the queries is replaced by a learnable mask token, so the reconstruction
has to come from the image latent rather than from positions alone."""

from __future__ import annotations

import torch
from torch import nn

from ecgalign.models.layers import Block, init_transformer


class QuerySignalDecoder(nn.Module):
    """``forward(latent (B, latent_dim), generator=None) -> (B, leads, samples)``."""

    def __init__(self, latent_dim: int, samples: int, leads: int = 12, patch: int = 8, dim: int = 256,
                 depth: int = 4, num_heads: int = 4, mask_ratio: float = 0.25):
        super().__init__()
        if samples % patch:
            raise ValueError(f"QuerySignalDecoder: {samples} samples are not a multiple of patch={patch}")
        if not 0.0 <= mask_ratio < 1.0:
            raise ValueError(f"QuerySignalDecoder: mask_ratio must be in [0, 1), got {mask_ratio}")
        self.samples, self.leads, self.patch, self.mask_ratio = samples, leads, patch, mask_ratio
        n = samples // patch
        self.queries = nn.Parameter(torch.zeros(n, dim))
        self.pos_embed = nn.Parameter(torch.zeros(n, dim))
        self.mask_token = nn.Parameter(torch.zeros(dim))
        self.latent_proj = nn.Linear(latent_dim, dim)
        self.blocks = nn.ModuleList(Block(dim, num_heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, patch * leads)
        self.apply(init_transformer)
        for p in (self.queries, self.pos_embed, self.mask_token):
            nn.init.normal_(p, std=0.02)

    def forward(self, latent: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        b, n = latent.shape[0], self.queries.shape[0]
        q = self.queries.expand(b, -1, -1)  # (B, n, dim)
        if self.training and self.mask_ratio > 0:
            masked = torch.rand(b, n, generator=generator, device=latent.device) < self.mask_ratio  # (B, n)
            q = torch.where(masked[..., None], self.mask_token.expand(b, n, -1), q)
        x = q + self.pos_embed + self.latent_proj(latent)[:, None, :]
        for block in self.blocks:
            x = block(x)
        out = self.head(self.norm(x)).view(b, n, self.leads, self.patch)  # (B, n, leads, patch)
        return out.permute(0, 2, 1, 3).reshape(b, self.leads, self.samples)
