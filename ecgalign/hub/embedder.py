"""``Embedder``: what evaluation, embedding and teachers need of any loadable model, so none of them ever
inspects a model's internals. ecgalign's own models (``SignalModel``, ``ImageModel``, ``DigitizedSignalModel``)
satisfy it; a model of another toolkit joins through a small adapter class that does too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ecgalign.data.spec import InputSpec

INPUT_KINDS = ("signal", "image", "digitized")


@runtime_checkable
class Embedder(Protocol):
    """``input_kind``: "signal" (reads the signal in ``input_spec``), "image" (renders each ECG as a printout and
    reads the image) or "digitized" (a signal model shown each ECG through its printout, read back by the classic
    digitiser). ``features`` / ``encode_ecg`` take (B, leads, samples) signals in ``input_spec`` either way."""

    card: dict[str, Any]
    input_spec: InputSpec
    input_kind: str
    weights_path: Path | None

    @property
    def name(self) -> str: ...

    @property
    def embed_dim(self) -> int: ...

    @property
    def has_joint_space(self) -> bool:
        """Whether ``encode_ecg`` / ``encode_text`` map into one ECG-text space (zero-shot, retrieval)."""

    @property
    def can_reconstruct(self) -> bool:
        """Whether ``recover_signals`` gives back the signal it was shown (image decoders, the digitiser)."""

    def features(self, signals: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """(B, embed_dim) pooled encoder features: what linear probes use."""

    def encode_ecg(self, signals: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """(B, P) L2-normalised joint-space embeddings."""

    def encode_text(self, texts: list[str]) -> np.ndarray:
        """(T, P) L2-normalised joint-space text embeddings."""

    def random_init(self, seed: int = 0) -> Embedder:
        """The same architecture with freshly initialised trainable weights (the random-init baseline)."""

    def supervised_reference(self) -> tuple[str, dict[str, Any]] | None:
        """(registered ECG encoder name, its keyword arguments) for a supervised-from-scratch reference on
        the same signals, or None when the model does not read signals (images, printouts)."""

    def recover_signals(self, signals: np.ndarray, batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
        """(estimate, reference), both (N, 12, T) in the same units; NaN marks samples not recovered."""

    def cache_identity(self) -> dict[str, Any]:
        """What, beside the weights' content, makes this model's embeddings of a dataset what they are."""

    def eval_extras(self) -> dict[str, Any]:
        """Extra sections for an evaluation's results (e.g. the digitiser's failure counts)."""
