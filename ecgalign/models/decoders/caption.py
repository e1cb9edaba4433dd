"""CoCa-style captioning decoder (Yu et al. 2022; ESI section 3.2): a causal transformer over report tokens
that cross-attends to the ECG encoder's tokens and predicts the next token. It shares the text encoder's
tokenizer (same ids), not its weights.

Optionally the decoder works over a compact vocabulary: the token ids that occur in the training reports
(``vocab_ids``), plus one slot for any other id. A report corpus uses a few hundred to a few thousand of a
tokenizer's ~30k ids, and the output projection over the full vocabulary is most of the captioning cost.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class CaptionDecoder(nn.Module):
    """``forward(ecg_tokens (B, N, De), input_ids (B, S)) -> logits (B, S - 1, V')`` predicting ids[:, 1:];
    ``targets(input_ids)`` gives those targets in the decoder's own index space (V' = vocab_size, or
    len(vocab_ids) + 1 with a compact vocabulary) and ``pad_index`` the padding target to ignore."""

    def __init__(self, ecg_dim: int, vocab_size: int, dim: int = 256, depth: int = 4, heads: int = 4,
                 max_length: int = 128, dropout: float = 0.0, pad_id: int = 0,
                 vocab_ids: Sequence[int] | int | None = None):
        super().__init__()
        self.max_length = max_length
        if vocab_ids is None:
            size, self.compact = vocab_size, False
            self.pad_index = pad_id
        else:
            # an int: only the size, the ids arrive with the weights (loading a checkpoint)
            ids = torch.zeros(int(vocab_ids), dtype=torch.long) if isinstance(vocab_ids, int) else \
                torch.tensor(sorted(set(int(i) for i in vocab_ids) | {pad_id}), dtype=torch.long)
            self.register_buffer("vocab_ids", ids)  # (K,) sorted tokenizer ids kept
            size, self.compact = len(ids) + 1, True  # + one slot for ids outside the corpus vocabulary
            self.vocab_size, self.pad_id = vocab_size, pad_id
            self.pad_index = int(torch.searchsorted(ids, torch.tensor(pad_id))) if not isinstance(vocab_ids, int) else 0
        self.token_embed = nn.Embedding(size, dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, max_length, dim))
        self.ecg_proj = nn.Linear(ecg_dim, dim)
        layer = nn.TransformerDecoderLayer(dim, heads, 4 * dim, dropout, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.layers = nn.TransformerDecoder(layer, depth)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, size, bias=False)
        self.head.weight = self.token_embed.weight  # tied input/output embeddings
        nn.init.normal_(self.token_embed.weight, std=0.02)
        nn.init.normal_(self.pos_embed, std=0.02)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        if self.compact:  # ids loaded with the weights: the pad's index follows them
            self.pad_index = int(torch.searchsorted(self.vocab_ids, torch.tensor(self.pad_id)))

    def index(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Tokenizer ids -> the decoder's indices (identity without a compact vocabulary)."""
        if not self.compact:
            return input_ids
        pos = torch.searchsorted(self.vocab_ids, input_ids.contiguous()).clamp(max=len(self.vocab_ids) - 1)
        known = self.vocab_ids[pos] == input_ids
        return torch.where(known, pos, torch.full_like(pos, len(self.vocab_ids)))  # unknown -> the extra slot

    def targets(self, input_ids: torch.Tensor) -> torch.Tensor:
        """The next-token targets of ``forward``'s logits, in the decoder's index space."""
        return self.index(input_ids[:, : self.max_length][:, 1:])

    def forward(self, ecg_tokens: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
        """Padding sits at the end of each row and attention is causal, so a real token never sees a pad:
        no padding mask is needed (pad targets are ignored by the loss)."""
        ids = self.index(input_ids[:, : self.max_length][:, :-1])  # (B, S-1) inputs; targets are ids[:, 1:]
        s = ids.shape[1]
        x = self.token_embed(ids) + self.pos_embed[:, :s]
        memory = self.ecg_proj(ecg_tokens)  # (B, N, dim)
        causal = torch.triu(torch.ones(s, s, dtype=torch.bool, device=ids.device), diagonal=1)
        x = self.layers(x, memory, tgt_mask=causal, tgt_is_causal=True)
        return self.head(self.norm(x))  # (B, S-1, V')
