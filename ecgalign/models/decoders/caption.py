"""CoCa-style captioning decoder (Yu et al. 2022; ESI section 3.2): a causal transformer over report tokens
that cross-attends to the ECG encoder's tokens and predicts the next token. It shares the text encoder's
tokenizer (same ids), not its weights."""

from __future__ import annotations

import torch
from torch import nn


class CaptionDecoder(nn.Module):
    """``forward(ecg_tokens (B, N, De), input_ids (B, S)) -> logits (B, S - 1, V)`` predicting ids[:, 1:]."""

    def __init__(self, ecg_dim: int, vocab_size: int, dim: int = 256, depth: int = 4, heads: int = 4,
                 max_length: int = 128, dropout: float = 0.0):
        super().__init__()
        self.max_length = max_length
        self.token_embed = nn.Embedding(vocab_size, dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, max_length, dim))
        self.ecg_proj = nn.Linear(ecg_dim, dim)
        layer = nn.TransformerDecoderLayer(dim, heads, 4 * dim, dropout, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.layers = nn.TransformerDecoder(layer, depth)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab_size, bias=False)
        self.head.weight = self.token_embed.weight  # tied input/output embeddings
        nn.init.normal_(self.token_embed.weight, std=0.02)
        nn.init.normal_(self.pos_embed, std=0.02)

    def forward(self, ecg_tokens: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
        """Padding sits at the end of each row and attention is causal, so a real token never sees a pad:
        no padding mask is needed (pad targets are ignored by the loss)."""
        ids = input_ids[:, : self.max_length][:, :-1]  # (B, S-1) inputs; the targets are ids[:, 1:]
        s = ids.shape[1]
        x = self.token_embed(ids) + self.pos_embed[:, :s]
        memory = self.ecg_proj(ecg_tokens)  # (B, N, dim)
        causal = torch.triu(torch.ones(s, s, dtype=torch.bool, device=ids.device), diagonal=1)
        x = self.layers(x, memory, tgt_mask=causal, tgt_is_causal=True)
        return self.head(self.norm(x))  # (B, S-1, V)
