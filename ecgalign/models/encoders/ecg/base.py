"""The interface every ECG encoder implements (DESIGN.md convention 4)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ecgalign.data.errors import InputError
from ecgalign.data.registry import Registry
from ecgalign.data.spec import InputSpec

ECG_ENCODERS: Registry[ECGEncoder] = Registry("ECG encoder")
register_encoder = ECG_ENCODERS.register


class ECGEncoder(nn.Module):
    """Base class. Subclasses set ``embed_dim`` and ``input_spec`` and implement ``forward_features``.

    ``forward_features(x)``: (B, leads, samples) -> tokens (B, N, D); ``pool(tokens)`` -> (B, D);
    ``forward(x)`` = ``pool(forward_features(x))``. ``config`` holds the registry name and the keyword
    arguments that rebuild the same architecture (saved beside the weights).
    """

    embed_dim: int
    input_spec: InputSpec
    supports_masking: bool = False

    def __init__(self) -> None:
        super().__init__()
        self.config: dict[str, Any] = {}

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # (B, L, T) -> (B, N, D)
        raise NotImplementedError

    def pool(self, tokens: torch.Tensor) -> torch.Tensor:  # (B, N, D) -> (B, D)
        return tokens.mean(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.forward_features(x))

    def check_input(self, x: torch.Tensor) -> None:
        spec = self.input_spec
        if x.ndim != 3 or x.shape[1] != spec.num_leads or x.shape[2] != spec.samples:
            raise ValueError(
                f"{self.config.get('name', type(self).__name__)} expects (batch, {spec.num_leads} leads, "
                f"{spec.samples} samples) = {spec.seconds:g} s at {spec.fs:g} Hz; got {tuple(x.shape)}"
            )


def create_encoder(name: str, **overrides: Any) -> ECGEncoder:
    """Build a registered encoder; ``overrides`` replace the variant's defaults."""
    import ecgalign.models.encoders.ecg  # noqa: F401  (registers the built-in encoders)

    try:
        model = ECG_ENCODERS.create(name, **overrides)
    except TypeError as exc:  # a keyword the architecture does not take (model.encoder_kwargs in a recipe)
        if "argument" not in str(exc):
            raise
        raise InputError(f"encoder {name!r}: {exc}; check model.encoder_kwargs") from exc
    model.config = {"name": name, **{k: v for k, v in overrides.items() if k != "input_spec"}}  # spec saved apart
    return model


def list_encoders() -> list[str]:
    import ecgalign.models.encoders.ecg  # noqa: F401

    return ECG_ENCODERS.names()
