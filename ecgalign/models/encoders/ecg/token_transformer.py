"""EEE's ECG encoder (Echo-Enhanced ECG, seed 003_74d6fba967a030e7, section 3.3.1): a standard Transformer
encoder over ECG tokens. Tokens are linearly projected to ``D_embed``, a learnable [CLS] token is prepended,
fixed sinusoidal positions are added, and ``L_ecg`` layers run over the sequence. The final [CLS] is the
sequence representation ``z_ecg^cls`` and the token outputs are ``z_ecg^tok``.

``SequenceTransformer`` is that encoder over any token sequence; the echo encoder's temporal stage
(section 3.3.2, "identical in architecture to the ECG encoder") is the same module over clip features.
``ECGTokenTransformer`` cuts a (B, leads, samples) signal into consecutive windows of ``token_size``
samples, each window (all leads) one token, so it serves the one-lead echo strip the paper uses and the
toolkit's 12-lead input alike. The paper states no token length or width; the variants below are ours.
"""

from __future__ import annotations


import torch
from torch import nn

from ecgalign.data.spec import InputSpec
from ecgalign.models.encoders.ecg.base import ECG_ENCODERS, ECGEncoder
from ecgalign.models.layers import init_transformer, sincos_embedding


def resolve_heads(name: str, embed_dim: int, num_heads: int | None, head_dim: int) -> int:
    """``num_heads`` if given, else ``embed_dim / head_dim`` (which must divide)."""
    if num_heads is not None:
        return num_heads
    if embed_dim % head_dim:
        raise ValueError(f"{name}: embed_dim={embed_dim} is not a multiple of head_dim={head_dim}; "
                         "pass num_heads or a matching head_dim")
    return embed_dim // head_dim


class SequenceTransformer(nn.Module):
    """Linear token projection, learnable [CLS], sinusoidal positions, ``depth`` pre-norm Transformer
    layers with a key-padding mask, final LayerNorm (EEE section 3.3.1).

    ``forward(tokens (B, T, in_dim), padding_mask (B, T) bool, True = padding) -> (B, 1 + T, D)``: [CLS]
    first; outputs at padded positions are zero. ``max_tokens`` bounds T (the position table's length).
    """

    def __init__(self, in_dim: int, embed_dim: int, depth: int, num_heads: int, max_tokens: int,
                 mlp_ratio: float = 4.0, dropout: float = 0.0):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"SequenceTransformer: embed_dim={embed_dim} is not divisible by "
                             f"{num_heads} heads")
        self.in_dim, self.embed_dim, self.max_tokens = in_dim, embed_dim, max_tokens
        self.proj = nn.Linear(in_dim, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(embed_dim))  # (D,)
        self.register_buffer("pos_embed", sincos_embedding(max_tokens + 1, embed_dim), persistent=False)
        # layers built one by one (not nn.TransformerEncoder, which deep-copies one layer's initial weights)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(embed_dim, num_heads, int(embed_dim * mlp_ratio), dropout,
                                       activation="gelu", batch_first=True, norm_first=True)
            for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.apply(init_transformer)
        nn.init.normal_(self.cls_token, std=0.02)

    def forward(self, tokens: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        b, t, _ = tokens.shape  # (B, T, in_dim)
        if t > self.max_tokens:
            raise ValueError(f"sequence of {t} tokens is longer than this encoder's "
                             f"max_tokens={self.max_tokens}")
        x = self.proj(tokens)  # (B, T, D)
        x = torch.cat([self.cls_token.expand(b, 1, -1), x], dim=1) + self.pos_embed[: t + 1]  # (B, 1 + T, D)
        key_mask = None
        if padding_mask is not None:
            if padding_mask.shape != (b, t) or padding_mask.dtype != torch.bool:
                raise ValueError(f"padding_mask must be bool (batch, tokens) = ({b}, {t}), True = padding; "
                                 f"got {padding_mask.dtype} {tuple(padding_mask.shape)}")
            key_mask = torch.cat([padding_mask.new_zeros(b, 1), padding_mask], dim=1)  # (B, 1 + T), CLS kept
        for layer in self.layers:
            x = layer(x, src_key_padding_mask=key_mask)
        x = self.norm(x)
        return x if key_mask is None else x.masked_fill(key_mask[..., None], 0.0)


class ECGTokenTransformer(ECGEncoder):
    """EEE's ECG encoder (section 3.3.1). ``forward_features(x (B, leads, samples), padding_mask (B, T))``
    -> (B, 1 + T, D) with [CLS] first and T = samples / token_size; ``pool`` -> the [CLS] token (B, D);
    ``tokens(features)`` -> the token part (B, T, D). ``padding_mask`` (True = padded token) serves
    variable-length strips padded at the end."""

    def __init__(self, input_spec: InputSpec | None = None, token_size: int = 50, embed_dim: int = 256, depth: int = 4,
                 num_heads: int | None = None, head_dim: int = 64, mlp_ratio: float = 4.0,
                 dropout: float = 0.0):
        super().__init__()
        input_spec = input_spec or InputSpec()
        if token_size < 1 or input_spec.samples % token_size:
            raise ValueError(f"ECGTokenTransformer: {input_spec.samples} samples per lead "
                             f"({input_spec.seconds:g} s at {input_spec.fs:g} Hz) are not a multiple of "
                             f"token_size={token_size}")
        self.input_spec = input_spec
        self.embed_dim = embed_dim
        self.token_size = token_size
        self.num_tokens = input_spec.samples // token_size
        self.num_heads = resolve_heads("ECGTokenTransformer", embed_dim, num_heads, head_dim)
        self.encoder = SequenceTransformer(input_spec.num_leads * token_size, embed_dim, depth,
                                           self.num_heads, self.num_tokens, mlp_ratio, dropout)

    def tokenize(self, x: torch.Tensor) -> torch.Tensor:  # (B, L, S) -> (B, T, L * token_size)
        return x.unflatten(-1, (self.num_tokens, self.token_size)).permute(0, 2, 1, 3).flatten(2)

    def forward_features(self, x: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        self.check_input(x)
        return self.encoder(self.tokenize(x), padding_mask)  # (B, 1 + T, D)

    def pool(self, tokens: torch.Tensor) -> torch.Tensor:  # (B, 1 + T, D) -> (B, D)
        return tokens[:, 0]

    @staticmethod
    def tokens(features: torch.Tensor) -> torch.Tensor:  # (B, 1 + T, D) -> (B, T, D)
        return features[:, 1:]


# Token = 50 samples (0.5 s at 100 Hz); head width 64. The echo encoders' temporal stages match these widths.
ECG_ENCODERS.variant("ecg_token_tiny", ECGTokenTransformer,
                     "D=192, 4 layers, 3 heads (pairs with echo_tiny for CPU-scale runs).", embed_dim=192, depth=4)
ECG_ENCODERS.variant("ecg_token_small", ECGTokenTransformer, "D=256, 4 layers, 4 heads.", embed_dim=256, depth=4)
ECG_ENCODERS.variant("ecg_token_base", ECGTokenTransformer, "D=512, 8 layers, 8 heads.", embed_dim=512, depth=8)
