"""A ViT trained from scratch on ECG printouts (Dosovitskiy et al. 2021), for non-square images: the patch
grid is (H / p) x (W / p), positions are learned per grid cell, a CLS token is the pooled embedding.

ECG-Scan (000_290557cf3ffea0eb) adapts a CLIP ViT with LoRA; that needs CLIP weights and open_clip, an
optional extra. This from-scratch ViT is the core path. Images come in as float (B, 3, H, W) in [0, 1]
(the renderer's ``output="float"``) or uint8, and are standardised inside (mean 0.5, std 0.25 per channel).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ecgalign.data.registry import Registry
from ecgalign.models.layers import Block, drop_path_rates, init_transformer

IMAGE_ENCODERS: Registry[nn.Module] = Registry("image encoder")


class ViT2D(nn.Module):
    """``forward_features(images) -> (B, 1 + N, D)`` (CLS first, then the patch grid row by row, normed);
    ``pool(tokens) -> (B, D)`` the CLS token; ``embed_dim``; ``image_size`` (H, W)."""

    def __init__(self, image_size: tuple[int, int] = (352, 448), patch_size: int = 16, embed_dim: int = 384,
                 depth: int = 12, num_heads: int | None = None, head_dim: int = 64, mlp_ratio: float = 4.0,
                 drop_path: float = 0.0, in_chans: int = 3):
        super().__init__()
        h, w = (int(v) for v in image_size)
        if h % patch_size or w % patch_size:
            raise ValueError(f"ViT2D: image size {h} x {w} is not a multiple of patch_size={patch_size}")
        if num_heads is None:
            if embed_dim % head_dim:
                raise ValueError(f"ViT2D: embed_dim={embed_dim} is not a multiple of head_dim={head_dim}")
            num_heads = embed_dim // head_dim
        self.image_size, self.patch_size, self.embed_dim, self.in_chans = (h, w), patch_size, embed_dim, in_chans
        self.grid = (h // patch_size, w // patch_size)
        self.patch_embed = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.grid[0] * self.grid[1], embed_dim))
        self.blocks = nn.ModuleList(Block(embed_dim, num_heads, mlp_ratio, r) for r in drop_path_rates(drop_path, depth))
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.apply(init_transformer)
        nn.init.normal_(self.cls_token, std=0.02)
        nn.init.normal_(self.pos_embed, std=0.02)
        self.config: dict[str, Any] = {}

    def check_input(self, x: torch.Tensor) -> None:
        h, w = self.image_size
        if x.ndim != 4 or x.shape[1] != self.in_chans or tuple(x.shape[2:]) != (h, w):
            raise ValueError(f"ViT2D expects images (batch, {self.in_chans}, {h}, {w}); got {tuple(x.shape)} "
                             "(render at this size, e.g. RenderConfig(width=W, height=H))")

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:  # (B, 3, H, W) -> (B, 1 + N, D)
        self.check_input(images)
        x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
        x = (x - 0.5) / 0.25
        x = self.patch_embed(x).flatten(2).transpose(1, 2)  # (B, N, D)
        x = torch.cat([self.cls_token.expand(len(x), -1, -1), x], dim=1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    def pool(self, tokens: torch.Tensor) -> torch.Tensor:  # (B, 1 + N, D) -> (B, D)
        return tokens[:, 0]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.pool(self.forward_features(images))


IMAGE_ENCODERS.variant("vit2d_tiny", ViT2D, "D=192, 12 blocks.", embed_dim=192, depth=12)
IMAGE_ENCODERS.variant("vit2d_small", ViT2D, "D=384, 12 blocks.", embed_dim=384, depth=12)


def create_image_encoder(name: str, **overrides: Any) -> ViT2D:
    model = IMAGE_ENCODERS.create(name, **overrides)
    model.config = {"name": name, **{k: (list(v) if isinstance(v, tuple) else v) for k, v in overrides.items()}}
    return model


def list_image_encoders() -> list[str]:
    return IMAGE_ENCODERS.names()
