"""Decoders: captioning text decoder (ESI / CoCa). The masked-patch decoder lives beside the ViT it decodes."""

from ecgalign.models.decoders.caption import CaptionDecoder

__all__ = ["CaptionDecoder"]
