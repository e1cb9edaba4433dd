"""Decoders: captioning text decoder (ESI / CoCa), query-token signal decoder (ECG-Scan). The masked-patch
decoder lives beside the ViT it decodes."""

from ecgalign.models.decoders.caption import CaptionDecoder
from ecgalign.models.decoders.signal import QuerySignalDecoder

__all__ = ["CaptionDecoder", "QuerySignalDecoder"]
