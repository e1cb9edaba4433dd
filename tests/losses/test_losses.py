"""Each loss against a value computed by hand or by a naive reference (DESIGN.md convention 5)."""

from __future__ import annotations

import math
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from ecgalign.losses import ClipLoss, caption_loss, clip_loss, ib_cosine_penalty, masked_mse


def _naive_clip(a, b, scale, smoothing=0.0):
    """Loops, logs and exps: the textbook symmetric InfoNCE with label smoothing."""
    n = a.shape[0]
    a = [x / x.norm() for x in a.double()]
    b = [x / x.norm() for x in b.double()]

    def direction(q, k):
        total = 0.0
        for i in range(n):
            logits = [scale * float(q[i] @ k[j]) for j in range(n)]
            log_z = math.log(sum(math.exp(v) for v in logits))
            log_p = [v - log_z for v in logits]
            total += -(1 - smoothing) * log_p[i] - smoothing * sum(log_p) / n
        return total / n

    return 0.5 * (direction(a, b) + direction(b, a))


def test_clip_loss_by_hand():
    eye = torch.eye(2)
    # logits = I: each row's cross-entropy is log(1 + e^-1)
    assert clip_loss(eye, eye, 1.0)["loss"].item() == pytest.approx(math.log(1 + math.exp(-1)), abs=1e-6)
    # swapped pairs: the positive has the low logit
    out = clip_loss(eye, eye.flip(0), 1.0)
    assert out["loss"].item() == pytest.approx(math.log(1 + math.e), abs=1e-6)
    assert out["acc_a2b"].item() == 0.0 and out["acc_b2a"].item() == 0.0


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_clip_loss_matches_the_naive_reference(smoothing):
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    got = clip_loss(a, b, 3.0, smoothing)["loss"].item()
    assert got == pytest.approx(_naive_clip(a, b, 3.0, smoothing), abs=1e-5)
    module = ClipLoss(init_temperature=1 / 3.0, smoothing=smoothing)
    assert module(a, b)["loss"].item() == pytest.approx(got, abs=1e-5)


def test_clip_temperature_is_learnable_and_clamped():
    module = ClipLoss(init_temperature=0.07)
    assert module.logit_scale.item() == pytest.approx(1 / 0.07, rel=1e-5)
    a = torch.randn(4, 8, requires_grad=True)
    module(a, torch.randn(4, 8))["loss"].backward()
    assert module.log_scale.grad is not None and torch.isfinite(module.log_scale.grad)
    with torch.no_grad():
        module.log_scale.fill_(10.0)
    assert module.logit_scale.item() == pytest.approx(100.0)
    fixed = ClipLoss(learnable=False)
    assert not any(p.requires_grad for p in fixed.parameters())


def test_contrastive_shapes_are_checked():
    with pytest.raises(ValueError, match="same shape"):
        clip_loss(torch.randn(4, 8), torch.randn(3, 8), 1.0)


def test_masked_mse_scores_masked_patches_only():
    pred = torch.zeros(2, 3, 4)
    target = torch.ones(2, 3, 4)
    mask = torch.tensor([[True, False, False], [False, False, True]])
    target[~mask] = 1e6  # unmasked patches must not count
    assert masked_mse(pred, target, mask).item() == pytest.approx(1.0)
    target2 = torch.tensor([[[0.0, 2.0]]])  # per-patch normalisation: mean 1, std 1 -> (-1, 1)
    assert masked_mse(torch.tensor([[[-1.0, 1.0]]]), target2, torch.ones(1, 1, dtype=torch.bool),
                      normalize_target=True).item() == pytest.approx(0.0, abs=1e-5)
    with pytest.raises(ValueError, match="no patch"):
        masked_mse(pred, target, torch.zeros(2, 3, dtype=torch.bool))


def test_ib_penalty_by_hand():
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    assert ib_cosine_penalty(x, x).item() == pytest.approx(0.0, abs=1e-6)
    assert ib_cosine_penalty(x, -x).item() == pytest.approx(2.0)
    assert ib_cosine_penalty(x, x.flip(1)).item() == pytest.approx(1.0)


def test_caption_loss_by_hand():
    vocab = 7
    logits = torch.zeros(2, 3, vocab)  # uniform: every token costs log V
    targets = torch.tensor([[3, 4, 0], [5, 0, 0]])  # 0 = pad
    out = caption_loss(logits, targets, pad_id=0)
    assert out["loss"].item() == pytest.approx(math.log(vocab))
    logits[0, 0, 3] = 100.0  # one confident right answer: ~0 cost, 3 tokens counted
    out = caption_loss(logits, targets, pad_id=0)
    assert out["loss"].item() == pytest.approx(2 * math.log(vocab) / 3, abs=1e-4)
    assert out["token_acc"].item() == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="padding"):
        caption_loss(logits, torch.zeros(2, 3, dtype=torch.long), pad_id=0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_worker(rank, world, port, a, b, out):
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        n = a.shape[0] // world
        mine_a = a[rank * n:(rank + 1) * n].clone().requires_grad_(True)
        mine_b = b[rank * n:(rank + 1) * n].clone().requires_grad_(True)
        result = ClipLoss(init_temperature=0.5, smoothing=0.1)(mine_a, mine_b)
        result["loss"].backward()
        out[rank] = (result["loss"].item(), mine_a.grad.clone(), mine_b.grad.clone())
    finally:
        dist.destroy_process_group()


def test_cross_rank_negatives_carry_gradient_like_one_big_batch():
    """2 gloo ranks x 4 pairs == 1 process x 8 pairs: mean loss, and gradients after DDP's averaging."""
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(8, 6, generator=g), torch.randn(8, 6, generator=g)
    manager = mp.Manager()
    out = manager.dict()
    mp.spawn(_rank_worker, args=(2, _free_port(), a, b, out), nprocs=2, join=True)
    full_a, full_b = a.clone().requires_grad_(True), b.clone().requires_grad_(True)
    reference = ClipLoss(init_temperature=0.5, smoothing=0.1)(full_a, full_b)["loss"]
    reference.backward()
    assert (out[0][0] + out[1][0]) / 2 == pytest.approx(reference.item(), abs=1e-5)
    # each rank's embedding gradient holds every rank's loss (gather backward sums); DDP then divides by 2
    grad_a = torch.cat([out[0][1], out[1][1]]) / 2
    grad_b = torch.cat([out[0][2], out[1][2]]) / 2
    torch.testing.assert_close(grad_a, full_a.grad, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(grad_b, full_b.grad, atol=1e-5, rtol=1e-4)
