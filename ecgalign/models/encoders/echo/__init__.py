"""Echo encoders (EEE, seed 003_74d6fba967a030e7 section 3.3.2); importing this package registers them."""

from ecgalign.models.encoders.echo.tubelet_vit import (
    ECHO_ENCODERS,
    EchoEncoder,
    TubeletViT,
    create_echo_encoder,
    list_echo_encoders,
)

__all__ = ["ECHO_ENCODERS", "EchoEncoder", "TubeletViT", "create_echo_encoder", "list_echo_encoders"]
