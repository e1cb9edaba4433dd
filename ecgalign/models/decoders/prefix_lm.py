"""ECG-conditioned language decoders (MERIT section 4.2.4, appendix A.2; after MedTVT-R1 stage 1): a frozen ECG
encoder's pooled features pass through a learnable projection adapter that yields ``n_prefix`` prefix tokens in
the decoder's embedding space; the decoder predicts the report token by token after them.

Two decoders share one interface (``forward(features, ids) -> loss``, ``generate(features, prompts) -> ids``):

- ``PrefixTransformerLM``: a small causal Transformer trained from scratch over a word-level vocabulary
  (``WordTokenizer``), the offline default;
- ``HFPrefixLM``: any local Hugging Face causal LM, frozen, adapted with LoRA (peft; Hu et al. 2022), as the
  paper does with LLaMA-3.2-1B-Instruct.

With all-zero features the adapter's output is a learned constant: the "no ECG" (text prior only) decoder.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from ecgalign.data.errors import InputError

_WORD = re.compile(r"[a-z0-9]+(?:[.'/-][a-z0-9]+)*|[^\sa-z0-9]")


class WordTokenizer:
    """Lower-case word-level vocabulary of a report corpus: ids 0-3 are pad, bos, eos, unk."""

    specials = ("<pad>", "<bos>", "<eos>", "<unk>")
    pad_id, bos_id, eos_id, unk_id = 0, 1, 2, 3

    def __init__(self, words: Sequence[str]):
        self.words = list(self.specials) + [w for w in words if w not in self.specials]
        self.index = {w: i for i, w in enumerate(self.words)}

    @classmethod
    def build(cls, texts: Iterable[str], min_count: int = 1, max_size: int = 8000) -> WordTokenizer:
        """The words of ``texts`` seen at least ``min_count`` times, most frequent first."""
        counts = Counter(w for t in texts for w in cls.split(t))
        kept = [w for w, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if c >= min_count]
        return cls(kept[: max_size - len(cls.specials)])

    @staticmethod
    def split(text: str) -> list[str]:
        return _WORD.findall(str(text).lower())

    @property
    def vocab_size(self) -> int:
        return len(self.words)

    def encode(self, text: str, *, bos: bool = True, eos: bool = True) -> list[int]:
        ids = [self.index.get(w, self.unk_id) for w in self.split(text)]
        return ([self.bos_id] if bos else []) + ids + ([self.eos_id] if eos else [])

    def decode(self, ids: Iterable[int]) -> str:
        words = [self.words[i] for i in ids if i >= len(self.specials) or i == self.unk_id]
        return re.sub(r"\s+([,.;:!?)])", r"\1", " ".join(words))


class HFTokenizer:
    """A Hugging Face tokenizer behind ``WordTokenizer``'s interface (bos falls back to eos, pad to eos)."""

    def __init__(self, tokenizer):
        self.tok = tokenizer
        self.eos_id = tokenizer.eos_token_id
        if self.eos_id is None:
            raise InputError(f"tokenizer {tokenizer.name_or_path!r} has no end-of-sequence token")
        self.bos_id = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else self.eos_id
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_id

    @property
    def vocab_size(self) -> int:
        return len(self.tok)

    def encode(self, text: str, *, bos: bool = True, eos: bool = True) -> list[int]:
        ids = self.tok(str(text), add_special_tokens=False)["input_ids"]
        return ([self.bos_id] if bos else []) + ids + ([self.eos_id] if eos else [])

    def decode(self, ids: Iterable[int]) -> str:
        return self.tok.decode(list(ids), skip_special_tokens=True).strip()


class ProjectionAdapter(nn.Module):
    """Pooled ECG features (B, D) -> (B, n_prefix, H) prefix embeddings: a two-layer MLP (MERIT A.2)."""

    def __init__(self, feature_dim: int, hidden: int, n_prefix: int):
        super().__init__()
        self.n_prefix, self.hidden = n_prefix, hidden
        self.net = nn.Sequential(nn.LayerNorm(feature_dim), nn.Linear(feature_dim, hidden), nn.GELU(),
                                 nn.Linear(hidden, n_prefix * hidden))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features).view(len(features), self.n_prefix, self.hidden)  # (B, P, H)


class _PrefixLM(nn.Module):
    """Shared loss and greedy decoding over ``_logits(prefix (B, P, H), ids (B, S)) -> (B, P + S, V)``."""

    adapter: ProjectionAdapter
    pad_id: int
    eos_id: int
    max_length: int

    def _logits(self, prefix: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, features: torch.Tensor, ids: torch.Tensor, loss_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Mean next-token cross-entropy of ``ids`` (B, S; bos first, right-padded) after the ECG prefix;
        ``loss_mask`` (B, S) marks the target positions scored (default: every non-pad token)."""
        prefix = self.adapter(features)
        logits = self._logits(prefix, ids)[:, prefix.shape[1]: -1]  # (B, S - 1, V): position t predicts t + 1
        target = ids[:, 1:].clone()
        mask = target != self.pad_id if loss_mask is None else loss_mask[:, 1:].bool()
        target[~mask] = -100
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=-100)

    @torch.no_grad()
    def generate(self, features: torch.Tensor, prompts: Sequence[Sequence[int]], max_new_tokens: int = 48) -> list[list[int]]:
        """Greedy continuation of each prompt (bos + optional question tokens) after its ECG prefix; returns
        the new ids up to (not including) eos."""
        prefix = self.adapter(features)
        out: list[list[int]] = []
        for i, prompt in enumerate(prompts):
            ids = torch.tensor([list(prompt)], dtype=torch.long, device=features.device)
            new: list[int] = []
            for _ in range(min(max_new_tokens, self.max_length - ids.shape[1])):
                nxt = int(self._logits(prefix[i: i + 1], ids)[0, -1].argmax())
                if nxt == self.eos_id:
                    break
                new.append(nxt)
                ids = torch.cat([ids, ids.new_tensor([[nxt]])], dim=1)
            out.append(new)
        return out


class PrefixTransformerLM(_PrefixLM):
    """Causal Transformer decoder trained from scratch, conditioned only through its ECG prefix."""

    def __init__(self, feature_dim: int, vocab_size: int, dim: int = 128, depth: int = 2, heads: int = 4,
                 n_prefix: int = 4, max_length: int = 64, dropout: float = 0.1, pad_id: int = 0, eos_id: int = 2):
        super().__init__()
        self.pad_id, self.eos_id, self.max_length = pad_id, eos_id, max_length
        self.adapter = ProjectionAdapter(feature_dim, dim, n_prefix)
        self.token_embed = nn.Embedding(vocab_size, dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, n_prefix + max_length, dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout, batch_first=True, norm_first=True,
                                           activation="gelu")
        self.blocks = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)

    def _logits(self, prefix: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        x = torch.cat([prefix, self.token_embed(ids)], dim=1)  # (B, P + S, H)
        n = x.shape[1]
        causal = torch.triu(torch.full((n, n), float("-inf"), device=x.device), diagonal=1)
        h = self.norm(self.blocks(x + self.pos_embed[:, :n], mask=causal))
        return h @ self.token_embed.weight.T  # (B, P + S, V), tied output projection


class HFPrefixLM(_PrefixLM):
    """A local Hugging Face causal LM with LoRA adapters (peft) after the ECG prefix; the base weights stay
    frozen, the adapter and the LoRA weights train (MERIT A.2)."""

    def __init__(self, feature_dim: int, lm: nn.Module, n_prefix: int = 4, max_length: int = 64, lora_r: int = 8,
                 lora_alpha: int = 16, pad_id: int = 0, eos_id: int = 2, target_modules: str | list[str] = "all-linear"):
        super().__init__()
        try:  # optional heavy dependency, imported only when a Hugging Face decoder is asked for
            from peft import LoraConfig, get_peft_model
        except ImportError:
            raise ImportError("LoRA decoders need peft: pip install 'ecgalign[generate]'") from None
        self.pad_id, self.eos_id, self.max_length = pad_id, eos_id, max_length
        hidden = lm.get_input_embeddings().embedding_dim
        self.adapter = ProjectionAdapter(feature_dim, hidden, n_prefix)
        config = LoraConfig(r=lora_r, lora_alpha=lora_alpha, lora_dropout=0.0, target_modules=target_modules,
                            task_type="CAUSAL_LM")
        self.lm = get_peft_model(lm, config)

    def _logits(self, prefix: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        embeds = self.lm.get_input_embeddings()(ids)
        x = torch.cat([prefix.to(embeds.dtype), embeds], dim=1)  # (B, P + S, H)
        return self.lm(inputs_embeds=x).logits.float()


def load_hf_decoder(path: str | Path, feature_dim: int, **kwargs) -> tuple[HFPrefixLM, HFTokenizer]:
    """A local Hugging Face causal-LM folder (weights + tokenizer) as an ``HFPrefixLM``; never the hub."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise InputError(f"{path}: not a Hugging Face model folder (no config.json); expected a local causal LM "
                         "with its tokenizer, or decoder 'transformer'")
    from transformers import AutoModelForCausalLM, AutoTokenizer  # heavy: only for a Hugging Face decoder

    tokenizer = HFTokenizer(AutoTokenizer.from_pretrained(path, local_files_only=True))
    lm = AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
    model = HFPrefixLM(feature_dim, lm, pad_id=tokenizer.pad_id, eos_id=tokenizer.eos_id, **kwargs)
    return model, tokenizer
