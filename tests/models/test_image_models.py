"""The image ViT and the query-token signal decoder."""

from __future__ import annotations

import pytest
import torch

from ecgalign.models.decoders import QuerySignalDecoder
from ecgalign.models.encoders.image import create_image_encoder, list_image_encoders


def test_every_image_encoder_runs_forward_and_backward_on_non_square_images():
    assert set(list_image_encoders()) >= {"vit2d_tiny", "vit2d_small"}
    for name in list_image_encoders():
        model = create_image_encoder(name, image_size=(64, 96), patch_size=16, embed_dim=32, depth=1, num_heads=2)
        x = torch.rand(2, 3, 64, 96)
        tokens = model.forward_features(x)
        assert tokens.shape == (2, 1 + 4 * 6, 32) and model.pool(tokens).shape == (2, 32)
        model(x).sum().backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
        assert model.config["name"] == name and model.config["image_size"] == [64, 96]
    uint8 = (torch.rand(1, 3, 64, 96) * 255).to(torch.uint8)
    torch.testing.assert_close(model(uint8), model(uint8.float() / 255))  # uint8 and [0, 1] floats agree


def test_image_size_errors_name_the_expected_shape():
    with pytest.raises(ValueError, match="not a multiple of patch_size"):
        create_image_encoder("vit2d_tiny", image_size=(60, 96))
    model = create_image_encoder("vit2d_tiny", image_size=(64, 96), embed_dim=32, depth=1, num_heads=2)
    with pytest.raises(ValueError, match=r"\(batch, 3, 64, 96\)"):
        model(torch.rand(1, 3, 96, 64))


def test_signal_decoder_shapes_masking_and_dependence_on_the_latent():
    torch.manual_seed(0)
    decoder = QuerySignalDecoder(latent_dim=16, samples=80, leads=12, patch=8, dim=32, depth=1, num_heads=2,
                                 mask_ratio=0.5)
    z = torch.randn(3, 16)
    decoder.eval()
    out = decoder(z)
    assert out.shape == (3, 12, 80)
    assert not torch.allclose(out[0], out[1])  # the latent drives the output
    torch.testing.assert_close(decoder(z), out)  # no masking at eval time
    decoder.train()
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    torch.testing.assert_close(decoder(z, g1), decoder(z, g2))  # seeded masks repeat
    assert not torch.allclose(decoder(z, torch.Generator().manual_seed(2)), out)
    with pytest.raises(ValueError, match="multiple of patch"):
        QuerySignalDecoder(16, samples=81)
