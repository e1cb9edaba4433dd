"""Image encoders for ECG printouts; importing this package registers them."""

from ecgalign.models.encoders.image.vit2d import IMAGE_ENCODERS, ViT2D, create_image_encoder, list_image_encoders

__all__ = ["IMAGE_ENCODERS", "ViT2D", "create_image_encoder", "list_image_encoders"]
