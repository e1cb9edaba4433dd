"""ST-MEM ViT: a 1-D vision transformer over per-lead patches with lead embeddings and SEP tokens, plus
the masked-patch decoder it is pretrained with (Na et al., "Guiding masked representation learning to
capture spatio-temporal relationship of electrocardiogram", ICLR 2024).

Each lead is cut into non-overlapping patches; all leads share one linear patch embedding. A token gets a
position embedding (patch index within its lead, shared across leads) and a learnable lead embedding. Each
lead's sequence is framed by two SEP tokens (left and right), which also get lead and position embeddings.
Position embeddings are fixed 1-D sin-cos (MAE, He et al. 2022), as in ST-MEM's pretraining code; they are
a buffer saved with the weights, on a ``num_patches + 2`` grid where the left SEP sits at 0, the patches at
1..P and the right SEP at P + 1 (ST-MEM gives its SEP tokens a zero position vector instead). Unlike ST-MEM's
reference code we embed the raw patch with a plain Linear (ST-MEM wraps it in LayerNorms, and the one over
each raw patch discards that patch's amplitude).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ecgalign.data.spec import InputSpec
from ecgalign.models.encoders.ecg.base import ECG_ENCODERS, ECGEncoder
from ecgalign.models.layers import Block, drop_path_rates, init_transformer, sincos_embedding


@dataclass
class MaskedTokens:
    """Output of ``ViT1D.forward_masked``.

    ``visible`` (B, Nv, D): normed visible patch tokens, lead-major and in time order within a lead;
    ``mask`` (B, leads, patches) bool, True = masked; ``ids_keep`` (B, Nv): flat index ``lead * patches +
    patch`` of each visible token; ``ids_restore`` (B, leads * patches): where each flat patch sits in
    ``cat([visible, masked])`` (MAE's unshuffle index).
    """

    visible: torch.Tensor
    mask: torch.Tensor
    ids_restore: torch.Tensor
    ids_keep: torch.Tensor


class ViT1D(ECGEncoder):
    """ST-MEM's encoder (Na et al. 2024). Tokens: (B, leads * patches, D) after the final norm,
    SEP tokens dropped; ``pool`` averages the patch tokens (as ST-MEM's classifier does)."""

    supports_masking = True

    def __init__(self, input_spec: InputSpec | None = None, patch_size: int = 50, embed_dim: int = 384, depth: int = 12,
                 num_heads: int | None = None, head_dim: int = 64, mlp_ratio: float = 4.0,
                 drop_path: float = 0.0, qkv_bias: bool = True):
        super().__init__()
        input_spec = input_spec or InputSpec()
        if input_spec.samples % patch_size:
            raise ValueError(f"ViT1D: {input_spec.samples} samples per lead ({input_spec.seconds:g} s at "
                             f"{input_spec.fs:g} Hz) are not a multiple of patch_size={patch_size}")
        if num_heads is None:
            if embed_dim % head_dim:
                raise ValueError(f"ViT1D: embed_dim={embed_dim} is not a multiple of head_dim={head_dim}; "
                                 "pass num_heads or a matching head_dim")
            num_heads = embed_dim // head_dim
        self.input_spec = input_spec
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.patch_size = patch_size
        self.num_leads = input_spec.num_leads
        self.num_patches = input_spec.samples // patch_size

        self.patch_embed = nn.Linear(patch_size, embed_dim)
        self.register_buffer("pos_embed", sincos_embedding(self.num_patches + 2, embed_dim))
        self.lead_embed = nn.Parameter(torch.zeros(self.num_leads, embed_dim))  # (leads, D)
        self.sep_token = nn.Parameter(torch.zeros(embed_dim))  # (D,)
        rates = drop_path_rates(drop_path, depth)
        self.blocks = nn.ModuleList(Block(embed_dim, num_heads, mlp_ratio, r, qkv_bias) for r in rates)
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)

        self.apply(init_transformer)
        nn.init.normal_(self.lead_embed, std=0.02)
        nn.init.normal_(self.sep_token, std=0.02)

    def patchify(self, x: torch.Tensor) -> torch.Tensor:  # (B, L, T) -> (B, L, P, patch_size)
        return x.unflatten(-1, (self.num_patches, self.patch_size))

    def unpatchify(self, patches: torch.Tensor) -> torch.Tensor:  # (B, L, P, patch_size) -> (B, L, T)
        return patches.flatten(-2)

    def _embed(self, x: torch.Tensor) -> torch.Tensor:  # (B, L, T) -> (B, L, P, D)
        return self.patch_embed(self.patchify(x)) + self.pos_embed[1:-1]

    def _encode(self, tokens: torch.Tensor) -> torch.Tensor:  # (B, L, K, D) -> (B, L * K, D)
        b, leads, k, d = tokens.shape
        left = (self.sep_token + self.pos_embed[0]).expand(b, leads, 1, d)
        right = (self.sep_token + self.pos_embed[-1]).expand(b, leads, 1, d)
        x = torch.cat([left, tokens, right], dim=2) + self.lead_embed[:, None, :]  # (B, L, K + 2, D)
        x = x.flatten(1, 2)
        for block in self.blocks:
            x = block(x)
        x = self.norm(x).view(b, leads, k + 2, d)
        return x[:, :, 1:-1].flatten(1, 2)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # (B, L, T) -> (B, L * P, D)
        self.check_input(x)
        return self._encode(self._embed(x))

    def forward_masked(self, x: torch.Tensor, mask_ratio: float,
                       generator: torch.Generator | None = None) -> MaskedTokens:
        """Encode a random subset of patches: each lead independently loses ``round(P * mask_ratio)``
        patches (ST-MEM's per-lead masking); SEP tokens are always kept and are dropped from ``visible``.
        ``generator`` (on ``x.device``) makes the mask reproducible."""
        self.check_input(x)
        leads, patches = self.num_leads, self.num_patches
        num_masked = round(patches * mask_ratio)
        if not 0.0 <= mask_ratio < 1.0 or num_masked >= patches:
            raise ValueError(f"mask_ratio={mask_ratio} must be in [0, 1) and leave at least one of the "
                             f"{patches} patches per lead visible")
        keep = patches - num_masked
        b = x.shape[0]
        tokens = self._embed(x)  # (B, L, P, D)
        noise = torch.rand(b, leads, patches, generator=generator, device=x.device)
        order = noise.argsort(dim=-1)  # (B, L, P): the first `keep` of each lead stay visible
        keep_idx = order[..., :keep].sort(dim=-1).values  # (B, L, K), in time order
        visible = self._encode(tokens.gather(2, keep_idx.unsqueeze(-1).expand(-1, -1, -1, tokens.shape[-1])))
        mask = torch.ones(b, leads, patches, dtype=torch.bool, device=x.device).scatter_(2, keep_idx, False)
        offset = torch.arange(leads, device=x.device).view(1, leads, 1) * patches
        ids_keep = (keep_idx + offset).flatten(1)  # (B, L * K)
        ids_shuffle = torch.cat([ids_keep, (order[..., keep:] + offset).flatten(1)], dim=1)  # (B, L * P)
        return MaskedTokens(visible=visible, mask=mask, ids_restore=ids_shuffle.argsort(dim=1),
                            ids_keep=ids_keep)


class MaskedPatchDecoder(nn.Module):
    """ST-MEM's lightweight decoder (Na et al. 2024): project the visible tokens, put a learnable
    mask token at every masked position, add decoder lead and (fixed sin-cos) position embeddings, run
    ``depth`` blocks, predict each patch's samples. ``per_lead=True`` attends within each lead only, as
    ST-MEM decodes lead by lead, so the cross-lead reasoning has to happen in the encoder. Two differences
    from ST-MEM's code: the decoder has its own lead embeddings, and it sees no SEP tokens (``visible``
    carries patch tokens only)."""

    def __init__(self, encoder_dim: int, patch_size: int, num_leads: int, num_patches: int,
                 decoder_dim: int = 256, depth: int = 4, num_heads: int = 4, mlp_ratio: float = 4.0,
                 per_lead: bool = True):
        super().__init__()
        self.patch_size = patch_size
        self.num_leads = num_leads
        self.num_patches = num_patches
        self.per_lead = per_lead
        self.embed = nn.Linear(encoder_dim, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(decoder_dim))  # (Dd,)
        self.lead_embed = nn.Parameter(torch.zeros(num_leads, decoder_dim))  # (leads, Dd)
        self.register_buffer("pos_embed", sincos_embedding(num_patches + 2, decoder_dim)[1:-1])
        self.blocks = nn.ModuleList(Block(decoder_dim, num_heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(decoder_dim, eps=1e-6)
        self.head = nn.Linear(decoder_dim, patch_size)

        self.apply(init_transformer)
        nn.init.normal_(self.mask_token, std=0.02)
        nn.init.normal_(self.lead_embed, std=0.02)

    @classmethod
    def for_encoder(cls, encoder: ViT1D, **kwargs: Any) -> MaskedPatchDecoder:
        """A decoder sized for ``encoder`` (width, patch size, leads, patches)."""
        return cls(encoder.embed_dim, encoder.patch_size, encoder.num_leads, encoder.num_patches, **kwargs)

    def forward(self, visible: torch.Tensor, ids_restore: torch.Tensor, num_leads: int,
                num_patches: int) -> torch.Tensor:  # (B, Nv, D), (B, L * P) -> (B, L, P, patch_size)
        if (num_leads, num_patches) != (self.num_leads, self.num_patches):
            raise ValueError(f"decoder built for {self.num_leads} leads x {self.num_patches} patches, "
                             f"got {num_leads} x {num_patches}")
        b, nv, _ = visible.shape
        total = num_leads * num_patches
        if ids_restore.shape != (b, total) or not 0 < nv <= total:
            raise ValueError(f"ids_restore must be (batch, {total}) with 1..{total} visible tokens; got "
                             f"ids_restore {tuple(ids_restore.shape)}, visible {tuple(visible.shape)}")
        x = self.embed(visible)  # (B, Nv, Dd)
        width = x.shape[-1]
        x = torch.cat([x, self.mask_token.expand(b, total - nv, width)], dim=1)  # (B, L * P, Dd) shuffled
        x = x.gather(1, ids_restore.unsqueeze(-1).expand(-1, -1, width))  # (B, L * P, Dd) lead-major
        x = x.view(b, num_leads, num_patches, width) + self.lead_embed[:, None, :] + self.pos_embed
        x = x.reshape(b * num_leads, num_patches, width) if self.per_lead else x.reshape(b, total, width)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x)).view(b, num_leads, num_patches, self.patch_size)


# Widths of DeiT-Ti/S and ViT-B (head width 64: 3, 6 and 12 heads); ST-MEM reports small and base.
ECG_ENCODERS.variant("vit1d_tiny", ViT1D, "D=192, 12 blocks, 3 heads.", embed_dim=192, depth=12)
ECG_ENCODERS.variant("vit1d_small", ViT1D, "D=384, 12 blocks, 6 heads (ST-MEM ViT-S).", embed_dim=384, depth=12)
ECG_ENCODERS.variant("vit1d_base", ViT1D, "D=768, 12 blocks, 12 heads (ST-MEM ViT-B).", embed_dim=768, depth=12)
