"""ECG encoders; importing this package registers them all."""

from ecgalign.models.encoders.ecg import convnext1d, token_transformer, vit1d, xresnet1d  # noqa: F401  (register)
from ecgalign.models.encoders.ecg.base import ECGEncoder, create_encoder, list_encoders, register_encoder

__all__ = ["ECGEncoder", "create_encoder", "list_encoders", "register_encoder"]
