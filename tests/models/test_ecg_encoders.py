"""ECG encoders, driven by the registry (DESIGN.md convention 9): every registered encoder runs forward and
backward on a tiny batch with finite, non-zero gradients for every parameter."""

from __future__ import annotations

from itertools import pairwise

import pytest
import torch
from torch import nn

from ecgalign.models.encoders.ecg import create_encoder, list_encoders
from ecgalign.models.encoders.ecg.convnext1d import GRN
from ecgalign.models.encoders.ecg.vit1d import MaskedPatchDecoder
from ecgalign.data.spec import InputSpec

# Small architectures keep the test fast; a name missing here is tested at full size.
SMALL = {
    "vit1d_tiny": dict(embed_dim=32, depth=2, num_heads=2),
    "vit1d_small": dict(embed_dim=64, depth=2),
    "vit1d_base": dict(embed_dim=48, depth=1, num_heads=4),
    "convnext1d_tiny": dict(depths=(1, 1, 2, 1), dims=(8, 16, 24, 32)),
    "convnext1d_base": dict(depths=(1, 1, 1, 1), dims=(8, 8, 16, 16), drop_path=0.1),
    "xresnet1d_50": dict(layers=(1, 1, 2, 1), widths=(4, 8, 8, 16), stem_channels=(8, 8, 16)),
    "xresnet1d_101": dict(layers=(1, 1, 1, 1), widths=(4, 4, 8, 8), stem_channels=(4, 8, 8)),
}
BATCH = (2, 12, 1000)


def small(name: str, **extra) -> nn.Module:
    return create_encoder(name, **{**SMALL.get(name, {}), **extra})


def assert_useful_grads(modules: list[nn.Module]) -> None:
    for module in modules:
        for pname, p in module.named_parameters():
            assert p.grad is not None, f"{pname} got no gradient"
            assert torch.isfinite(p.grad).all(), f"{pname} has a non-finite gradient"
            assert p.grad.abs().sum() > 0, f"{pname} has an all-zero gradient"


def unblock_zero_init(model: nn.Module) -> None:
    """Zero-initialised norm gammas (xresnet's last BN per block, Goyal et al. 2017) make the branch they
    scale output a constant, so at step 0 everything upstream in that branch gets exactly zero gradient by
    design. Set them to one so the gradient check covers those parameters too."""
    for module in model.modules():
        norm = isinstance(module, (nn.modules.batchnorm._BatchNorm, nn.LayerNorm))
        if norm and module.weight is not None and not module.weight.detach().any():
            nn.init.ones_(module.weight)


@pytest.mark.parametrize("name", list_encoders())
def test_every_encoder_runs_forward_and_backward(name):
    torch.manual_seed(0)
    model = small(name).train()
    unblock_zero_init(model)
    x = torch.randn(*BATCH)
    tokens = model.forward_features(x)
    pooled = model.pool(tokens)
    d = model.embed_dim
    assert tokens.ndim == 3 and tokens.shape[0] == 2 and tokens.shape[2] == d and tokens.shape[1] >= 1
    assert pooled.shape == (2, d)
    assert model.input_spec == InputSpec()
    assert model.config["name"] == name
    (pooled * torch.randn_like(pooled)).sum().backward()
    assert_useful_grads([model])
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), model.pool(model.forward_features(x)))


def vit_param_count(d: int, depth: int, patch: int = 50, leads: int = 12) -> int:
    block = 12 * d * d + 13 * d  # LN, qkv, proj, LN, fc1, fc2
    return patch * d + d + leads * d + d + depth * block + 2 * d


def convnext_param_count(depths, dims, leads: int = 12) -> int:
    total = leads * dims[0] * 4 + dims[0] + 2 * dims[0]  # stem conv + LN
    total += sum(2 * cin + 2 * cin * cout + cout for cin, cout in pairwise(dims))  # LN + conv
    total += sum(n * (8 * dim * dim + 23 * dim) for n, dim in zip(depths, dims))  # dw, LN, pw1, GRN, pw2
    return total + 2 * dims[-1]


def xresnet_param_count(layers, widths=(64, 128, 256, 512), leads: int = 12) -> int:
    def conv_bn(cin, cout, k):
        return cin * cout * k + 2 * cout

    total = conv_bn(leads, 32, 5) + conv_bn(32, 32, 5) + conv_bn(32, 64, 5)
    cin = 64
    for n, w in zip(layers, widths):
        for _ in range(n):
            total += conv_bn(cin, w, 1) + conv_bn(w, w, 5) + conv_bn(w, 4 * w, 1)
            total += conv_bn(cin, 4 * w, 1) if cin != 4 * w else 0
            cin = 4 * w
    return total


FULL_SIZE = {
    "vit1d_tiny": (192, 3, vit_param_count(192, 12)),
    "vit1d_small": (384, 6, vit_param_count(384, 12)),
    "vit1d_base": (768, 12, vit_param_count(768, 12)),
    "convnext1d_tiny": (768, None, convnext_param_count((3, 3, 9, 3), (96, 192, 384, 768))),
    "convnext1d_base": (1024, None, convnext_param_count((3, 3, 27, 3), (128, 256, 512, 1024))),
    "xresnet1d_50": (2048, None, xresnet_param_count((3, 4, 6, 3))),
    "xresnet1d_101": (2048, None, xresnet_param_count((3, 4, 23, 3))),
}


@pytest.mark.parametrize("name", list_encoders())
def test_full_size_variants_have_their_architecture(name):
    with torch.device("meta"):  # shapes and parameter counts without allocating or computing
        model = create_encoder(name)
        tokens = model.forward_features(torch.empty(*BATCH))
    assert tokens.shape[0] == 2 and tokens.shape[2] == model.embed_dim
    assert model.pool(tokens).shape == (2, model.embed_dim)
    if name in FULL_SIZE:
        dim, heads, params = FULL_SIZE[name]
        assert model.embed_dim == dim
        assert sum(p.numel() for p in model.parameters()) == params
        if heads is not None:
            assert model.num_heads == heads and len(model.blocks) == 12


def test_create_encoder_honours_overrides():
    vit = create_encoder("vit1d_small", embed_dim=128, depth=2)
    assert vit.embed_dim == 128 and len(vit.blocks) == 2 and vit.num_heads == 2
    assert vit.config == {"name": "vit1d_small", "embed_dim": 128, "depth": 2}
    assert create_encoder("vit1d_tiny", embed_dim=64, depth=1, num_heads=8).num_heads == 8
    with pytest.raises(ValueError, match="head_dim"):
        create_encoder("vit1d_tiny", embed_dim=96, depth=1)
    convnext = create_encoder("convnext1d_base", depths=(1, 1, 1, 1), dims=(8, 8, 8, 24), drop_path=0.0)
    assert convnext.embed_dim == 24 and all(len(stage) == 1 for stage in convnext.stages)
    assert all(m.p == 0.0 for m in convnext.modules() if type(m).__name__ == "DropPath")
    drop = create_encoder("convnext1d_tiny", depths=(1, 1, 1, 1), dims=(8, 8, 8, 8), drop_path=0.3)
    assert max(m.p for m in drop.modules() if type(m).__name__ == "DropPath") == pytest.approx(0.3)
    xres = create_encoder("xresnet1d_101", layers=(1, 1, 1, 1), widths=(4, 4, 4, 6))
    assert xres.embed_dim == 24 and [len(stage) for stage in xres.stages] == [1, 1, 1, 1]


@pytest.mark.parametrize("name", list_encoders())
def test_wrong_input_shape_names_the_expected_one(name):
    model = small(name)
    for shape in [(2, 12, 999), (2, 8, 1000), (12, 1000)]:
        with pytest.raises(ValueError, match=r"12 leads, 1000 samples\) = 10 s at 100 Hz"):
            model.forward_features(torch.zeros(shape))
    if model.supports_masking:
        with pytest.raises(ValueError, match="1000 samples"):
            model.forward_masked(torch.zeros(2, 12, 500), 0.5)


def test_unknown_encoder_name_suggests_a_close_one():
    with pytest.raises(KeyError, match="did you mean 'vit1d_small'"):
        create_encoder("vit1d_smal")


@pytest.mark.parametrize("ratio", [0.0, 0.3, 0.5, 0.75, 0.9])
def test_vit_masks_the_same_number_of_patches_in_every_lead(ratio):
    vit = small("vit1d_small").eval()
    x = torch.randn(*BATCH)
    out = vit.forward_masked(x, ratio, generator=torch.Generator().manual_seed(0))
    leads, patches = vit.num_leads, vit.num_patches
    masked = round(patches * ratio)
    visible = leads * (patches - masked)
    assert out.mask.shape == (2, leads, patches) and out.mask.dtype == torch.bool
    assert (out.mask.sum(dim=-1) == masked).all()
    assert out.visible.shape == (2, visible, vit.embed_dim)
    assert out.ids_keep.shape == (2, visible) and out.ids_restore.shape == (2, leads * patches)
    assert not out.mask.flatten(1).gather(1, out.ids_keep).any()
    assert (out.ids_keep.diff(dim=1) > 0).all()  # lead-major, time order within a lead
    # ids_restore points the visible patches at the first Nv slots of cat([visible, mask tokens])
    assert torch.equal((out.ids_restore < visible).view(2, leads, patches), ~out.mask)


def test_vit_mask_is_seeded():
    vit = small("vit1d_small").eval()
    x = torch.randn(*BATCH)
    a, b, c = (vit.forward_masked(x, 0.75, generator=torch.Generator().manual_seed(s)) for s in (1, 1, 2))
    assert torch.equal(a.mask, b.mask) and torch.equal(a.ids_restore, b.ids_restore)
    torch.testing.assert_close(a.visible, b.visible)
    assert not torch.equal(a.mask, c.mask)
    for bad in (1.0, -0.1, 0.99):
        with pytest.raises(ValueError, match="mask_ratio"):
            vit.forward_masked(x, bad)


def test_vit_visible_tokens_ignore_masked_content():
    vit = small("vit1d_small").eval()
    x = torch.randn(*BATCH)
    out = vit.forward_masked(x, 0.6, generator=torch.Generator().manual_seed(3))
    scribbled = vit.unpatchify(torch.where(out.mask[..., None], torch.randn(*out.mask.shape, 50),
                                           vit.patchify(x)))
    again = vit.forward_masked(scribbled, 0.6, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(again.visible, out.visible)
    # with no blocks a visible token is just its embedded patch, so ids_keep must pick the same tokens
    flat = create_encoder("vit1d_small", embed_dim=64, depth=0).eval()
    out = flat.forward_masked(x, 0.5, generator=torch.Generator().manual_seed(4))
    full = flat.forward_features(x)
    torch.testing.assert_close(out.visible, full.gather(1, out.ids_keep[..., None].expand(-1, -1, 64)))


def test_patchify_roundtrip():
    vit = small("vit1d_tiny")
    x = torch.randn(*BATCH)
    p = vit.patchify(x)
    assert p.shape == (2, 12, 20, 50)
    assert torch.equal(p[1, 3, 7], x[1, 3, 350:400])
    assert torch.equal(vit.unpatchify(p), x)


@pytest.mark.parametrize("per_lead", [True, False])
def test_vit_encoder_and_decoder_train_together(per_lead):
    torch.manual_seed(0)
    vit = small("vit1d_small").train()
    decoder = MaskedPatchDecoder.for_encoder(vit, decoder_dim=32, depth=1, num_heads=2, per_lead=per_lead)
    x = torch.randn(*BATCH)
    out = vit.forward_masked(x, 0.5, generator=torch.Generator().manual_seed(0))
    pred = decoder(out.visible, out.ids_restore, vit.num_leads, vit.num_patches)
    assert pred.shape == (2, 12, 20, 50)
    loss = (pred - vit.patchify(x)).square().mean(dim=-1)[out.mask].mean()
    loss.backward()
    assert_useful_grads([vit, decoder])
    with pytest.raises(ValueError, match="12 leads x 20 patches"):
        decoder(out.visible, out.ids_restore, 6, 20)


def test_decoder_puts_each_visible_token_back_in_its_place():
    vit = small("vit1d_small").eval()
    out = vit.forward_masked(torch.randn(*BATCH), 0.75, generator=torch.Generator().manual_seed(5))
    decoder = MaskedPatchDecoder.for_encoder(vit, decoder_dim=16, depth=0).eval()
    with torch.no_grad():
        base = decoder(out.visible, out.ids_restore, 12, 20).flatten(1, 2)  # (B, L * P, patch)
        nudged = out.visible.clone()
        nudged[:, 7] += 1.0
        moved = decoder(nudged, out.ids_restore, 12, 20).flatten(1, 2)
    changed = (moved - base).abs().amax(dim=-1) > 0  # (B, L * P)
    for b in range(2):
        assert changed[b].nonzero().flatten().tolist() == [out.ids_keep[b, 7].item()]


def test_per_lead_decoder_keeps_leads_apart():
    vit = small("vit1d_small").eval()
    out = vit.forward_masked(torch.randn(*BATCH), 0.5, generator=torch.Generator().manual_seed(6))
    nudged = out.visible.clone()
    nudged[:, :10] += 1.0  # the first lead's 10 visible tokens
    for per_lead, leaks in [(True, False), (False, True)]:
        decoder = MaskedPatchDecoder.for_encoder(vit, decoder_dim=16, depth=1, num_heads=2, per_lead=per_lead)
        with torch.no_grad():
            diff = (decoder(nudged, out.ids_restore, 12, 20) - decoder(out.visible, out.ids_restore, 12, 20))
        assert diff[:, 0].abs().max() > 0
        assert bool(diff[:, 1:].abs().max() > 1e-6) is leaks


@pytest.mark.parametrize("name", list_encoders())
def test_another_input_spec(name):
    spec = InputSpec(fs=500.0, seconds=10.0, leads=("I", "II", "V1"))
    model = small(name, input_spec=spec).train()
    tokens = model.forward_features(torch.randn(2, 3, 5000))
    assert model.input_spec is spec and tokens.shape[2] == model.embed_dim
    with pytest.raises(ValueError, match=r"3 leads, 5000 samples\) = 10 s at 500 Hz"):
        model.forward_features(torch.randn(*BATCH))


def test_vit_at_500_hz_with_250_sample_patches():
    vit = small("vit1d_small", input_spec=InputSpec(fs=500.0, seconds=10.0), patch_size=250)
    x = torch.randn(2, 12, 5000)
    assert vit.forward_features(x).shape == (2, 12 * 20, 64)
    assert vit.forward_masked(x, 0.75).mask.shape == (2, 12, 20)
    assert torch.equal(vit.unpatchify(vit.patchify(x)), x)


def test_vit_rejects_a_patch_size_that_does_not_divide_the_input():
    with pytest.raises(ValueError, match="patch_size=75"):
        create_encoder("vit1d_tiny", patch_size=75)


def test_xresnet_blocks_start_as_their_shortcut():
    model = small("xresnet1d_50").train()
    block = model.stages[1][0]
    last_bn = block.convs[-1][1]
    assert not last_bn.weight.any()
    x = torch.randn(2, 4 * 4, 64)  # stage 1 output: 4 * widths[0] channels
    y = block(x)
    torch.testing.assert_close(y, torch.relu(block.shortcut(x)))
    y.sum().backward()
    assert last_bn.weight.grad.abs().sum() > 0


def test_grn_matches_the_paper():
    grn = GRN(6)
    x = torch.randn(2, 9, 6)  # (B, T, C)
    torch.testing.assert_close(grn(x), x)  # gamma = beta = 0: identity
    nn.init.normal_(grn.gamma)
    nn.init.normal_(grn.beta)
    gx = x.square().sum(dim=1, keepdim=True).sqrt()  # aggregate: per-channel L2 norm over time
    nx = gx / (gx.mean(dim=-1, keepdim=True) + 1e-6)  # normalise across channels
    torch.testing.assert_close(grn(x), grn.gamma * (x * nx) + grn.beta + x)  # recalibrate, plus residual
