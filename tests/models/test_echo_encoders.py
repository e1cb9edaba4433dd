"""EEE's model pieces (seed 003, sections 3.3-3.4): the ECG token Transformer beyond the registry-driven
checks of test_ecg_encoders.py, the tubelet-ViT echo encoder, the alignment head and the shift helper."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ecgalign.losses.hierarchical import eee_loss
from ecgalign.models.encoders.ecg import create_encoder
from ecgalign.models.encoders.ecg.token_transformer import ECGTokenTransformer, SequenceTransformer
from ecgalign.models.encoders.echo import EchoEncoder, create_echo_encoder, list_echo_encoders
from ecgalign.models.heads import AlignmentHead, shift_signals
from ecgalign.models.layers import sincos_embedding
from ecgalign.data.spec import InputSpec

STRIP = InputSpec(fs=100.0, seconds=2.0, leads=("II",), bandpass=None)  # a 1-lead echo strip, 4 tokens of 50
TINY_ECG = {"embed_dim": 16, "depth": 2, "num_heads": 2}
TINY_ECHO = {"clip_size": (4, 16, 16), "tubelet": (2, 8, 8), "vit_dim": 16, "vit_depth": 2, "vit_heads": 2,
                 "embed_dim": 16, "depth": 2, "num_heads": 2, "max_clips": 8}


def tiny_ecg(**extra) -> ECGTokenTransformer:
    return create_encoder("ecg_token_small", input_spec=STRIP, **{**TINY_ECG, **extra})


def tiny_echo(name: str = "echo_small", **extra) -> EchoEncoder:
    return create_echo_encoder(name, **{**TINY_ECHO, **extra})


def clips(b: int = 2, t: int = 3, seed: int = 0) -> torch.Tensor:  # (B, T, 1, 4, 16, 16) uint8
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (b, t, 1, 4, 16, 16), dtype=torch.uint8, generator=g)


def assert_finite_nonzero_grads(model: nn.Module) -> None:
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"
        assert p.grad.abs().sum() > 0, f"{name} has an all-zero gradient"


# ---- ECG token Transformer -------------------------------------------------------------------------------

def test_tokens_are_consecutive_windows_across_leads():
    model = create_encoder("ecg_token_small", input_spec=InputSpec(leads=("I", "II", "III")), **TINY_ECG)
    x = torch.randn(2, 3, 1000)
    tokens = model.tokenize(x)
    assert tokens.shape == (2, 20, 150)
    torch.testing.assert_close(tokens[1, 7], torch.cat([x[1, lead, 350:400] for lead in range(3)]))


def test_ecg_cls_first_tokens_after_and_pool_is_cls():
    model = tiny_ecg().eval()
    x = torch.randn(3, 1, 200)
    feats = model.forward_features(x)
    assert feats.shape == (3, 1 + 4, 16)
    assert torch.equal(model.pool(feats), feats[:, 0]) and torch.equal(model.tokens(feats), feats[:, 1:])
    assert model.num_tokens == 4 and model.embed_dim == 16


def test_positions_are_fixed_sinusoids_and_order_matters():
    model = tiny_ecg().eval()
    enc = model.encoder
    assert "pos_embed" not in dict(model.named_parameters()) and "encoder.pos_embed" not in model.state_dict()
    torch.testing.assert_close(enc.pos_embed, sincos_embedding(5, 16))
    x = torch.randn(1, 1, 200)
    swapped = torch.cat([x[..., 50:100], x[..., :50], x[..., 100:]], dim=-1)  # tokens 0 and 1 exchanged
    with torch.no_grad():
        assert not torch.allclose(model(x), model(swapped), atol=1e-4)


@pytest.mark.parametrize("train", [True, False])
def test_padded_ecg_tokens_do_not_reach_the_valid_outputs(train):
    torch.manual_seed(0)
    model = tiny_ecg().train(train)
    x = torch.randn(2, 1, 200)
    pad = torch.tensor([[False, False, True, True], [False, False, False, False]])
    scribbled = x.clone()
    scribbled[0, :, 100:] = torch.randn(1, 100) * 50
    with torch.no_grad():
        a, b = model.forward_features(x, pad), model.forward_features(scribbled, pad)
        unmasked = model.forward_features(scribbled)
    torch.testing.assert_close(a, b)
    assert (a[0, 3:] == 0).all()  # padded outputs are zero
    assert not torch.allclose(a[0, 0], unmasked[0, 0], atol=1e-4)  # without the mask the scribble leaks in
    with pytest.raises(ValueError, match="padding_mask must be bool"):
        model.forward_features(x, pad.long())


def test_sequence_transformer_layers_start_independent_and_bound_length():
    enc = SequenceTransformer(in_dim=6, embed_dim=16, depth=2, num_heads=2, max_tokens=5)
    w0, w1 = (layer.self_attn.out_proj.weight for layer in enc.layers)
    assert not torch.equal(w0, w1)
    assert enc(torch.randn(2, 5, 6)).shape == (2, 6, 16)
    with pytest.raises(ValueError, match="max_tokens=5"):
        enc(torch.randn(2, 6, 6))


def test_token_size_must_divide_the_input():
    with pytest.raises(ValueError, match="token_size=30"):
        create_encoder("ecg_token_small", token_size=30)


def token_transformer_params(d: int, depth: int, token_dim: int = 12 * 50) -> int:
    layer = 12 * d * d + 13 * d  # qkv + out proj, two LayerNorms, MLP 4x
    return token_dim * d + d + d + depth * layer + 2 * d  # projection, [CLS], layers, final norm


@pytest.mark.parametrize(("name", "dim", "heads", "depth"),
                         [("ecg_token_tiny", 192, 3, 4), ("ecg_token_small", 256, 4, 4),
                          ("ecg_token_base", 512, 8, 8)])
def test_named_ecg_variants(name, dim, heads, depth):
    with torch.device("meta"):
        model = create_encoder(name)
    assert (model.embed_dim, model.num_heads, len(model.encoder.layers)) == (dim, heads, depth)
    assert sum(p.numel() for p in model.parameters()) == token_transformer_params(dim, depth)
    assert model.input_spec == InputSpec() and model.token_size == 50


# ---- echo encoder ---------------------------------------------------------------------------------------

def test_echo_registry():
    assert list_echo_encoders() == ["echo_base", "echo_small", "echo_tiny"]
    with pytest.raises(KeyError, match="did you mean 'echo_small'"):
        create_echo_encoder("echo_smal")
    model = tiny_echo()
    assert model.config["name"] == "echo_small" and model.config["clip_size"] == [4, 16, 16]


@pytest.mark.parametrize("name", list_echo_encoders())
def test_every_echo_encoder_runs_forward_and_backward(name):
    torch.manual_seed(0)
    model = tiny_echo(name).train()
    pad = torch.tensor([[False, False, True], [False, False, False]])
    feats = model.forward_features(clips(), pad)
    assert feats.shape == (2, 1 + 3, 16)
    pooled, tokens = model.pool(feats), model.tokens(feats)
    assert pooled.shape == (2, 16) and tokens.shape == (2, 3, 16)
    ((pooled * torch.randn_like(pooled)).sum() + (tokens * torch.randn_like(tokens)).sum()).backward()
    assert_finite_nonzero_grads(model)


def test_padded_clips_are_never_encoded():
    torch.manual_seed(0)
    model = tiny_echo().eval()
    pad = torch.tensor([[False, True, True], [False, False, False]])
    x = clips()
    other = x.clone()
    other[0, 1:] = 255 - other[0, 1:]
    calls = []
    model.clip_vit.register_forward_hook(lambda module, inputs, out: calls.append(inputs[0].shape[0]))
    with torch.no_grad():
        a, b = model.forward_features(x, pad), model.forward_features(other, pad)
    torch.testing.assert_close(a, b)
    assert calls == [4, 4]  # 1 + 3 valid clips, twice
    assert (a[0, 2:] == 0).all()


def test_echo_uint8_and_unit_float_clips_agree():
    model = tiny_echo().eval()
    x = clips()
    with torch.no_grad():
        torch.testing.assert_close(model(x), model(x.float() / 255.0))


def test_clip_order_matters_to_the_temporal_stage():
    model = tiny_echo().eval()
    x = clips(b=1)
    with torch.no_grad():
        assert not torch.allclose(model(x), model(x[:, [1, 0, 2]]), atol=1e-4)


def test_echo_shape_errors_name_the_expected_clip():
    model = tiny_echo()
    with pytest.raises(ValueError, match=r"\(batch, clips, 1, 4, 16, 16\)"):
        model.forward_features(torch.zeros(2, 3, 1, 4, 16, 8))
    with pytest.raises(ValueError, match="max_clips=8"):
        model.forward_features(torch.zeros(1, 9, 1, 4, 16, 16))
    with pytest.raises(ValueError, match="padding_mask must be bool"):
        model.forward_features(clips(), torch.zeros(2, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="not tiled by tubelet"):
        tiny_echo(tubelet=(3, 8, 8))


def test_named_echo_variants_pair_with_the_ecg_variants():
    with torch.device("meta"):
        tiny, small, base = (create_echo_encoder(f"echo_{size}") for size in ("tiny", "small", "base"))
        feats = small.forward_features(torch.empty(1, 2, 1, 16, 224, 224))
    assert feats.shape == (1, 3, 256)
    assert small.clip_shape == (1, 16, 224, 224) and small.clip_vit.grid == (8, 14, 14)
    assert (small.clip_vit.embed_dim, small.clip_vit.num_heads, len(small.clip_vit.blocks)) == (384, 6, 12)
    assert (base.clip_vit.embed_dim, base.clip_vit.num_heads, len(base.clip_vit.blocks)) == (768, 12, 12)
    assert tiny.clip_shape == (1, 8, 112, 112) and tiny.clip_vit.grid == (4, 7, 7)
    with torch.device("meta"):
        ecgs = [create_encoder(f"ecg_token_{size}") for size in ("tiny", "small", "base")]
    for echo, ecg in zip([tiny, small, base], ecgs, strict=True):
        assert echo.embed_dim == ecg.embed_dim
        assert [type(m) for m in echo.temporal.layers] == [type(m) for m in ecg.encoder.layers]
        assert echo.temporal.layers[0].linear1.out_features == ecg.encoder.layers[0].linear1.out_features


# ---- alignment head and shifted pairs -------------------------------------------------------------------

def test_alignment_head_is_linear_on_the_concatenation():
    head = AlignmentHead(3, 2)
    z_ecg, z_echo = torch.randn(4, 3), torch.randn(4, 2)
    expected = torch.cat([z_ecg, z_echo], dim=1) @ head.linear.weight.t() + head.linear.bias
    torch.testing.assert_close(head(z_ecg, z_echo), expected.squeeze(1))
    with pytest.raises(ValueError, match=r"z_ecg \(B, 3\) and z_echo \(B, 2\)"):
        head(z_echo, z_ecg)


def test_shift_rotates_chosen_rows_within_their_valid_length():
    b, s, step = 8, 200, 50
    x = torch.arange(b * 2 * s, dtype=torch.float32).view(b, 2, s)
    lengths = torch.tensor([200, 200, 150, 100, 200, 50, 200, 120])
    out, shifted = shift_signals(x, 0.5, lengths, step=step, generator=torch.Generator().manual_seed(3))
    eligible = (lengths // step >= 2).nonzero().squeeze(1).tolist()  # row 5 (one step) cannot move
    assert shifted.dtype == torch.bool and shifted.sum() == round(0.5 * len(eligible)) and not shifted[5]
    for row in range(b):
        n = lengths[row].item()
        assert torch.equal(out[row, :, n:], x[row, :, n:])  # the padding tail stays put
        if not shifted[row]:
            assert torch.equal(out[row], x[row])
            continue
        valid = x[row, :, :n]
        offsets = [k for k in range(1, n) if torch.equal(out[row, :, :n], torch.roll(valid, k, dims=-1))]
        assert len(offsets) == 1 and offsets[0] % step == 0 and 0 < offsets[0] < n


def test_shift_is_seeded_and_covers_the_extremes():
    x = torch.randn(10, 1, 100)
    a = shift_signals(x, 0.3, generator=torch.Generator().manual_seed(1))
    b = shift_signals(x, 0.3, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and a[1].sum() == 3
    none, flags = shift_signals(x, 0.0)
    assert torch.equal(none, x) and not flags.any()
    _, flags = shift_signals(x, 1.0, step=50)
    assert flags.all()


def test_shift_rejects_bad_arguments():
    x = torch.randn(2, 1, 100)
    with pytest.raises(ValueError, match="fraction must be in"):
        shift_signals(x, 1.5)
    with pytest.raises(ValueError, match="lengths must be"):
        shift_signals(x, 0.5, torch.tensor([100, 101]))
    with pytest.raises(ValueError, match="signal \\(batch, leads, samples\\)"):
        shift_signals(x[0], 0.5)


def test_pieces_train_together_on_a_tiny_batch():
    """One EEE step end to end: shifted strips, both encoders, the head, all four loss terms."""
    torch.manual_seed(0)
    ecg, echo, head = tiny_ecg().train(), tiny_echo(max_clips=4).train(), AlignmentHead(16, 16)
    strips = torch.randn(4, 1, 200)
    pad = torch.tensor([[False] * 4, [False, False, True, True], [False] * 4, [False] * 4])
    lengths = (~pad).sum(1) * ecg.token_size
    moved, shifted = shift_signals(strips, 0.5, lengths, step=ecg.token_size,
                                   generator=torch.Generator().manual_seed(0))
    f_ecg, f_echo = ecg.forward_features(moved, pad), echo.forward_features(clips(4, 4), pad)
    z_ecg, z_echo = ecg.pool(f_ecg), echo.pool(f_echo)
    out = eee_loss(z_ecg, z_echo, ecg.tokens(f_ecg), echo.tokens(f_echo), torch.tensor([1, 1, 2, 3]),
                   torch.tensor([1, 1, 1, 2]), 10.0, padding_mask=pad, shifted=shifted,
                   align_logits=head(z_ecg, z_echo))
    (out["token"] + out["sid"] + out["pid"] + out["align"]).backward()
    for model in (ecg, echo, head):
        for name, p in model.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), name


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_bf16_step_on_cuda():
    torch.manual_seed(0)
    ecg, echo, head = tiny_ecg().cuda(), tiny_echo(max_clips=4).cuda(), AlignmentHead(16, 16).cuda()
    strips = torch.randn(4, 1, 200)
    pad = torch.tensor([[False] * 4, [False, False, True, True], [False] * 4, [False] * 4])
    lengths = (~pad).sum(1) * 50
    on_cpu = shift_signals(strips, 0.5, lengths, step=50, generator=torch.Generator().manual_seed(0))
    moved, shifted = shift_signals(strips.cuda(), 0.5, lengths.cuda(), step=50,
                                   generator=torch.Generator().manual_seed(0))
    assert torch.equal(moved.cpu(), on_cpu[0]) and torch.equal(shifted.cpu(), on_cpu[1])
    with torch.autocast("cuda", dtype=torch.bfloat16):
        f_ecg = ecg.forward_features(moved, pad.cuda())
        f_echo = echo.forward_features(clips(4, 4).cuda(), pad.cuda())
        z_ecg, z_echo = ecg.pool(f_ecg), echo.pool(f_echo)
        study, patient = torch.tensor([1, 1, 2, 3]).cuda(), torch.tensor([1, 1, 1, 2]).cuda()
        out = eee_loss(z_ecg, z_echo, ecg.tokens(f_ecg), echo.tokens(f_echo), study, patient, 10.0,
                       padding_mask=pad.cuda(), shifted=shifted, align_logits=head(z_ecg, z_echo))
    (out["token"] + out["sid"] + out["pid"] + out["align"]).backward()
    for model in (ecg, echo, head):
        for name, p in model.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
