"""EEE's echo encoder (Echo-Enhanced ECG, seed 003_74d6fba967a030e7, section 3.3.2): a two-stage hierarchy.

1. ``TubeletViT``: each clip (C, F, H, W) is cut into 3-D spatio-temporal patches ("tubelets", ViViT's
   tubelet embedding, Arnab et al. 2021), linearly embedded by a strided Conv3d, given a [CLS] token and
   learned positions, and run through a ViT; its [CLS] is the clip feature ``z_vit``.
2. A temporal Transformer over the sequence of clip features, identical in architecture to the ECG
   encoder (``SequenceTransformer``: projection, [CLS], sinusoidal positions, padding mask), giving
   ``z_echo^cls`` and ``z_echo^tok``.

Clips come in as uint8 (the extraction store's format) or float in [0, 1], and are standardised inside
(mean 0.5, std 0.25, as the printout ViT does). Padded clips are never run through the ViT.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ecgalign.data.registry import Registry
from ecgalign.models.encoders.ecg.token_transformer import SequenceTransformer, resolve_heads
from ecgalign.models.layers import Block, drop_path_rates, init_transformer

ECHO_ENCODERS: Registry[nn.Module] = Registry("echo encoder")


def _triple(value: int | tuple[int, int, int], name: str) -> tuple[int, int, int]:
    out = (value,) * 3 if isinstance(value, int) else tuple(int(v) for v in value)
    if len(out) != 3 or min(out) < 1:
        raise ValueError(f"{name} must be a positive int or (frames, height, width); got {value!r}")
    return out  # type: ignore[return-value]


class TubeletViT(nn.Module):
    """ViT over one clip's tubelets (EEE 3.3.2, first stage). ``forward(clips (N, C, F, H, W)) -> (N, D)``,
    the normed [CLS] token. ``tubelet`` = (frames, height, width) of one patch; it must tile the clip."""

    def __init__(self, clip_size: tuple[int, int, int] = (16, 224, 224),
                 tubelet: int | tuple[int, int, int] = (2, 16, 16), in_chans: int = 1, embed_dim: int = 384,
                 depth: int = 12, num_heads: int | None = None, head_dim: int = 64, mlp_ratio: float = 4.0,
                 drop_path: float = 0.0):
        super().__init__()
        self.clip_size = _triple(clip_size, "clip_size")
        self.tubelet = _triple(tubelet, "tubelet")
        if any(c % t for c, t in zip(self.clip_size, self.tubelet)):
            raise ValueError(f"TubeletViT: clip (frames, height, width) = {self.clip_size} is not tiled by "
                             f"tubelet {self.tubelet}")
        self.grid = tuple(c // t for c, t in zip(self.clip_size, self.tubelet))  # (F', H', W')
        self.in_chans, self.embed_dim = in_chans, embed_dim
        self.num_heads = resolve_heads("TubeletViT", embed_dim, num_heads, head_dim)
        self.patch_embed = nn.Conv3d(in_chans, embed_dim, kernel_size=self.tubelet, stride=self.tubelet)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        num_patches = self.grid[0] * self.grid[1] * self.grid[2]
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + num_patches, embed_dim))
        self.blocks = nn.ModuleList(Block(embed_dim, self.num_heads, mlp_ratio, r)
                                    for r in drop_path_rates(drop_path, depth))
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.apply(init_transformer)
        nn.init.normal_(self.cls_token, std=0.02)
        nn.init.normal_(self.pos_embed, std=0.02)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:  # (N, C, F, H, W) -> (N, D)
        x = clips.float() / 255.0 if clips.dtype == torch.uint8 else clips.float()
        x = self.patch_embed((x - 0.5) / 0.25).flatten(2).transpose(1, 2)  # (N, F'H'W', D)
        x = torch.cat([self.cls_token.expand(len(x), -1, -1), x], dim=1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.norm(x[:, 0])


class EchoEncoder(nn.Module):
    """EEE's echo encoder (section 3.3.2). ``forward_features(clips (B, T, C, F, H, W), padding_mask (B, T))
    -> (B, 1 + T, D)``: [CLS] first, zeros at padded clips; ``pool`` -> [CLS] (B, D); ``tokens`` -> (B, T, D).
    ``embed_dim`` is the temporal width D, which must equal the paired ECG encoder's for the contrastive
    losses; ``clip_shape`` = (C, F, H, W) is what one clip must look like; ``max_clips`` bounds T."""

    def __init__(self, clip_size: tuple[int, int, int] = (16, 224, 224),
                 tubelet: int | tuple[int, int, int] = (2, 16, 16), in_chans: int = 1, vit_dim: int = 384,
                 vit_depth: int = 12, vit_heads: int | None = None, embed_dim: int = 256, depth: int = 4,
                 num_heads: int | None = None, head_dim: int = 64, max_clips: int = 64,
                 mlp_ratio: float = 4.0, drop_path: float = 0.0, dropout: float = 0.0):
        super().__init__()
        self.clip_vit = TubeletViT(clip_size, tubelet, in_chans, vit_dim, vit_depth, vit_heads, head_dim,
                                   mlp_ratio, drop_path)
        self.num_heads = resolve_heads("EchoEncoder", embed_dim, num_heads, head_dim)
        self.temporal = SequenceTransformer(vit_dim, embed_dim, depth, self.num_heads, max_clips, mlp_ratio,
                                            dropout)
        self.embed_dim, self.max_clips = embed_dim, max_clips
        self.clip_shape = (in_chans, *self.clip_vit.clip_size)  # (C, F, H, W)
        self.config: dict[str, Any] = {}

    def check_input(self, clips: torch.Tensor, padding_mask: torch.Tensor | None) -> None:
        if clips.ndim != 6 or tuple(clips.shape[2:]) != self.clip_shape:
            raise ValueError(f"{self.config.get('name', 'EchoEncoder')} expects clips (batch, clips, "
                             f"{', '.join(map(str, self.clip_shape))}) = (B, T, channels, frames, height, "
                             "width); "
                             f"got {tuple(clips.shape)}")
        if clips.shape[1] > self.max_clips:
            raise ValueError(f"{clips.shape[1]} clips per sequence exceed max_clips={self.max_clips}")
        if padding_mask is not None and (padding_mask.dtype != torch.bool
                                         or padding_mask.shape != clips.shape[:2]):
            raise ValueError(f"padding_mask must be bool (batch, clips) = {tuple(clips.shape[:2])}, "
                             "True = padding; "
                             f"got {padding_mask.dtype} {tuple(padding_mask.shape)}")

    def forward_features(self, clips: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        self.check_input(clips, padding_mask)
        b, t = clips.shape[:2]
        flat = clips.flatten(0, 1)  # (B * T, C, F, H, W)
        if padding_mask is None:
            z_vit = self.clip_vit(flat)  # (B * T, D_vit)
        else:
            valid = ~padding_mask.flatten()  # (B * T,)
            features = self.clip_vit(flat[valid])  # (valid clips, D_vit)
            rows = valid.nonzero().squeeze(1)
            z_vit = features.new_zeros(b * t, features.shape[1]).index_put((rows,), features)
        return self.temporal(z_vit.view(b, t, -1), padding_mask)  # (B, 1 + T, D)

    def pool(self, tokens: torch.Tensor) -> torch.Tensor:  # (B, 1 + T, D) -> (B, D)
        return tokens[:, 0]

    @staticmethod
    def tokens(features: torch.Tensor) -> torch.Tensor:  # (B, 1 + T, D) -> (B, T, D)
        return features[:, 1:]

    def forward(self, clips: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.pool(self.forward_features(clips, padding_mask))


# 16-frame greyscale clips at the paper's 224 x 224 (section 3.1); 2 x 16 x 16 tubelets as in VideoMAE.
# Temporal widths match ecg_token_{tiny,small,base}, so the pairs share one embedding space. echo_tiny
# takes 8-frame 112 x 112 clips (EchoNet-Dynamic's frame size) for CPU-scale runs.
ECHO_ENCODERS.variant("echo_tiny", EchoEncoder,
                      "8 x 112 x 112 clips; clip ViT D=192, 6 blocks; temporal D=192, 4 layers (= ecg_token_tiny).",
                      clip_size=(8, 112, 112), vit_dim=192, vit_depth=6, embed_dim=192, depth=4)
ECHO_ENCODERS.variant("echo_small", EchoEncoder,
                      "Clip ViT D=384, 12 blocks (ViT-S); temporal D=256, 4 layers (= ecg_token_small).",
                      vit_dim=384, vit_depth=12, embed_dim=256, depth=4)
ECHO_ENCODERS.variant("echo_base", EchoEncoder,
                      "Clip ViT D=768, 12 blocks (ViT-B); temporal D=512, 8 layers (= ecg_token_base).",
                      vit_dim=768, vit_depth=12, embed_dim=512, depth=8)


def create_echo_encoder(name: str, **overrides: Any) -> EchoEncoder:
    """Build a registered echo encoder; ``overrides`` replace the variant's defaults."""
    model = ECHO_ENCODERS.create(name, **overrides)
    model.config = {"name": name,
                    **{k: (list(v) if isinstance(v, tuple) else v) for k, v in overrides.items()}}
    return model


def list_echo_encoders() -> list[str]:
    return ECHO_ENCODERS.names()
