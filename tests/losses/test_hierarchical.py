"""EEE's hierarchical losses (seed 003, section 3.4) against a naive reference that builds every mask entry
in Python loops and evaluates the cross-entropies with ``math``."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ecgalign.losses.hierarchical import (
    alignment_loss,
    dual_margin_infonce,
    dual_margin_mask,
    eee_loss,
    token_pairs,
)


def naive_mask(sim: list[list[float]], ids: list[int], margin_same: float,
               margin_other: float, mining: str = "semi-hard") -> list[list[bool]]:
    n = len(ids)
    mask = [[False] * n for _ in range(n)]
    for i in range(n):
        for j in range(n):
            margin = margin_same if ids[i] == ids[j] else margin_other
            if i == j or mining == "none":
                mask[i][j] = True
            elif mining == "margin":
                mask[i][j] = sim[i][i] - margin < sim[i][j]
            else:
                mask[i][j] = sim[i][i] - margin < sim[i][j] < sim[i][i]
    return mask


def naive_cosines(a: torch.Tensor, b: torch.Tensor) -> list[list[float]]:
    rows_a, rows_b = a.double().tolist(), b.double().tolist()
    norm = [math.sqrt(sum(v * v for v in row)) for row in rows_a]
    norm_b = [math.sqrt(sum(v * v for v in row)) for row in rows_b]
    return [[sum(x * y for x, y in zip(ra, rb)) / (na * nb) for rb, nb in zip(rows_b, norm_b)]
            for ra, na in zip(rows_a, norm)]


def naive_infonce(a: torch.Tensor, b: torch.Tensor, ids: list[int], scale: float, margin_same: float,
                  margin_other: float) -> float:
    n = len(ids)
    if n == 0:
        return 0.0
    cos = naive_cosines(a, b)
    mask = naive_mask(cos, ids, margin_same, margin_other)
    a_to_b = b_to_a = 0.0
    for i in range(n):  # row i: anchor a_i against the b_j it keeps
        kept = [scale * cos[i][j] for j in range(n) if mask[i][j]]
        a_to_b += -scale * cos[i][i] + math.log(sum(math.exp(v) for v in kept))
    for j in range(n):  # row j of the transposed matrix: b_j against the a_i whose row kept j
        kept = [scale * cos[i][j] for i in range(n) if mask[i][j]]
        b_to_a += -scale * cos[j][j] + math.log(sum(math.exp(v) for v in kept))
    return 0.5 * (a_to_b + b_to_a) / n


def correlated_pairs(n: int, d: int, seed: int, noise: float = 0.7) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, d, generator=g)
    return a, a + noise * torch.randn(n, d, generator=g)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("margins", [(0.1, 0.3), (0.0, 0.5), (0.4, 0.4), (1.0, 2.5)])
def test_mask_matches_the_element_by_element_reference(seed, margins):
    g = torch.Generator().manual_seed(seed)
    n = 14
    sim = torch.rand(n, n, generator=g) * 2 - 1
    ids = torch.randint(0, 4, (n,), generator=g)  # many duplicates
    mask = dual_margin_mask(sim, ids, *margins)
    assert mask.dtype == torch.bool and mask.diagonal().all()
    assert mask.tolist() == naive_mask(sim.double().tolist(), ids.tolist(), *margins)


@pytest.mark.parametrize("mining", ["semi-hard", "margin", "none"])
@pytest.mark.parametrize("seed", range(3))
def test_every_mining_mode_matches_the_reference(seed, mining):
    g = torch.Generator().manual_seed(seed)
    sim = torch.rand(10, 10, generator=g) * 2 - 1
    ids = torch.randint(0, 3, (10,), generator=g)
    mask = dual_margin_mask(sim, ids, 0.1, 0.3, mining)
    assert mask.tolist() == naive_mask(sim.double().tolist(), ids.tolist(), 0.1, 0.3, mining)


def test_margin_mining_keeps_the_negatives_that_outrank_the_positive():
    # a collapsed space where every negative outranks its positive: semi-hard mining keeps none of them,
    # so the loss is 0 and cannot repair the ranking; "margin" keeps them and the loss is positive
    sim = torch.tensor([[0.90, 0.95, 0.97], [0.96, 0.90, 0.95], [0.97, 0.96, 0.90]])
    ids = torch.arange(3)
    assert dual_margin_mask(sim, ids, 0.1, 0.3).sum() == 3
    assert dual_margin_mask(sim, ids, 0.1, 0.3, "margin").all()
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    b = torch.tensor([[0.0, 1.0], [1.0, 0.0], [1.0, 0.9]])  # a_0, a_1 closer to each other's partner
    semi = dual_margin_infonce(a, b, ids, 10.0)
    margin = dual_margin_infonce(a, b, ids, 10.0, mining="margin")
    assert float(margin["loss"]) > float(semi["loss"]) + 1.0
    assert float(margin["negatives_other"]) > float(semi["negatives_other"])
    with pytest.raises(ValueError, match="mining"):
        dual_margin_mask(sim, ids, 0.1, 0.3, "hardest")


def test_mask_by_hand():
    sim = torch.tensor([[0.9, 0.85, 0.7, 0.95],
                        [0.1, 0.5, 0.45, 0.3],
                        [0.0, 0.0, 0.2, 0.0],
                        [0.0, 0.0, 0.0, 0.0]])
    ids = torch.tensor([1, 1, 2, 2])
    mask = dual_margin_mask(sim, ids, margin_same=0.1, margin_other=0.3)
    # row 0: j=1 same id, 0.85 in (0.8, 0.9); j=2 other id, 0.7 in (0.6, 0.9); j=3 above the positive
    # row 1: j=0 same id, 0.1 outside (0.4, 0.5); j=2, j=3 other ids, 0.45 and 0.3 in (0.2, 0.5)
    # row 2: j=0, j=1 other ids, 0.0 in (-0.1, 0.2); j=3 same id, 0.0 outside (0.1, 0.2)
    # row 3: every entry ties the positive (0.0), none strictly below it
    assert mask.tolist() == [[True, True, True, False],
                             [False, True, True, True],
                             [True, True, True, False],
                             [False, False, False, True]]


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("margins", [(0.1, 0.3), (0.3, 0.8), (2.0, 2.0)])
def test_infonce_matches_the_naive_reference(seed, margins):
    a, b = correlated_pairs(12, 8, seed)
    ids = torch.randint(0, 3, (12,), generator=torch.Generator().manual_seed(100 + seed))
    scale = torch.tensor(7.0, requires_grad=True)
    a.requires_grad_(True)
    b.requires_grad_(True)
    out = dual_margin_infonce(a, b, ids, scale, *margins)
    expected = naive_infonce(a.detach(), b.detach(), ids.tolist(), 7.0, *margins)
    assert out["loss"].item() == pytest.approx(expected, rel=1e-5, abs=1e-5)
    out["loss"].backward()
    for grad in (a.grad, b.grad, scale.grad):
        assert grad is not None and torch.isfinite(grad).all()
    cos = naive_cosines(a.detach(), b.detach())
    mask = naive_mask(cos, ids.tolist(), *margins)
    same = sum(mask[i][j] for i in range(12) for j in range(12) if i != j and ids[i] == ids[j])
    other = sum(mask[i][j] for i in range(12) for j in range(12) if ids[i] != ids[j])
    assert out["negatives_same"].item() == pytest.approx(same / 12)
    assert out["negatives_other"].item() == pytest.approx(other / 12)


def test_wide_margins_give_plain_infonce_over_the_semi_hard_negatives():
    # margins of 2 (the whole cosine range) keep every negative below its positive: with every negative
    # below the positive that is CLIP's symmetric InfoNCE
    a = torch.eye(5) * 3
    b = torch.eye(5) + 0.1
    ids = torch.arange(5)
    logits = 10.0 * F.normalize(a, dim=1) @ F.normalize(b, dim=1).t()
    clip = 0.5 * (F.cross_entropy(logits, ids) + F.cross_entropy(logits.t(), ids))
    torch.testing.assert_close(dual_margin_infonce(a, b, ids, 10.0, 2.0, 2.0)["loss"], clip)


def test_all_positive_ids_use_the_same_margin_only():
    a, b = correlated_pairs(9, 6, seed=7)
    ids = torch.full((9,), 4)
    for margins in [(0.2, 5.0), (0.2, 0.0)]:  # the other-id margin never matters
        out = dual_margin_infonce(a, b, ids, 5.0, *margins)
        assert out["loss"].item() == pytest.approx(naive_infonce(a, b, [4] * 9, 5.0, *margins), rel=1e-5)
        assert out["negatives_other"].item() == 0.0
    wide, none = (dual_margin_infonce(a, b, ids, 5.0, 0.2, other)["loss"] for other in (5.0, 0.0))
    assert wide == none


@pytest.mark.parametrize("case", ["zero_margins", "single_pair", "negatives_above_positive"])
def test_no_negative_gives_zero_loss_and_finite_gradients(case):
    if case == "zero_margins":
        a, b = correlated_pairs(6, 4, seed=1)
        margins = (0.0, 0.0)
    elif case == "single_pair":
        a, b = correlated_pairs(1, 4, seed=2)
        margins = (0.5, 0.5)
    else:  # every b_j equals every other: S_ij == S_ii, never strictly below it
        a, b = torch.randn(4, 3), torch.ones(4, 3)
        margins = (1.0, 1.0)
    a.requires_grad_(True)
    b.requires_grad_(True)
    out = dual_margin_infonce(a, b, torch.arange(len(a)) % 2, 10.0, *margins)
    assert out["loss"].item() == pytest.approx(0.0, abs=1e-6)
    assert out["negatives_same"].item() == 0.0 and out["negatives_other"].item() == 0.0
    out["loss"].backward()
    assert torch.isfinite(a.grad).all() and torch.isfinite(b.grad).all()


def test_empty_batch_gives_zero_loss_with_a_graph():
    a = torch.zeros(0, 4, requires_grad=True)
    out = dual_margin_infonce(a, torch.zeros(0, 4), torch.zeros(0, dtype=torch.long), 10.0)
    assert out["loss"].item() == 0.0
    out["loss"].backward()
    assert a.grad is not None


def test_a_masked_out_negative_does_not_change_the_loss():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    b = torch.tensor([[1.0, 0.1], [0.2, 1.0], [1.0, 0.9]])
    ids = torch.tensor([0, 1, 2])
    base = dual_margin_infonce(a, b, ids, 10.0, 0.05, 0.05)["loss"]
    assert base.item() == pytest.approx(naive_infonce(a, b, [0, 1, 2], 10.0, 0.05, 0.05), rel=1e-6)
    # a far-away b_1 stays outside every band: a different far-away value changes nothing
    moved = b.clone()
    moved[1] = torch.tensor([-1.0, 0.3])
    far = b.clone()
    far[1] = torch.tensor([-1.0, 0.5])
    assert dual_margin_infonce(a, moved, ids, 10.0, 0.05, 0.05)["loss"].item() == pytest.approx(
        naive_infonce(a, moved, [0, 1, 2], 10.0, 0.05, 0.05), rel=1e-6)
    assert naive_infonce(a, moved, [0, 1, 2], 10.0, 0.05, 0.05) == pytest.approx(
        naive_infonce(a, far, [0, 1, 2], 10.0, 0.05, 0.05), rel=1e-6)


def test_token_pairs_drop_padding_and_repeat_ids():
    g = torch.Generator().manual_seed(0)
    ecg, echo = torch.randn(3, 4, 5, generator=g), torch.randn(3, 4, 5, generator=g)
    pad = torch.tensor([[False, False, True, True], [False] * 4, [False, True, True, True]])
    ids = torch.tensor([10, 20, 10])
    a, b, flat_ids = token_pairs(ecg, echo, ids, pad)
    rows = [(s, t) for s in range(3) for t in range(4) if not pad[s, t]]
    assert torch.equal(a, torch.stack([ecg[s, t] for s, t in rows]))
    assert torch.equal(b, torch.stack([echo[s, t] for s, t in rows]))
    assert flat_ids.tolist() == [ids[s].item() for s, _ in rows]
    a, _, flat_ids = token_pairs(ecg, echo, ids)
    assert a.shape == (12, 5) and flat_ids.tolist() == [10] * 4 + [20] * 4 + [10] * 4
    with pytest.raises(ValueError, match="padding_mask must be bool"):
        token_pairs(ecg, echo, ids, pad.long())


def naive_bce(logits: list[float], shifted: list[bool]) -> float:
    total = 0.0
    for z, y in zip(logits, shifted):
        p = 1.0 / (1.0 + math.exp(-z))
        total += -math.log(p) if y else -math.log(1.0 - p)
    return total / len(logits)


def test_alignment_loss_is_bce_against_the_shift_mask():
    logits = torch.tensor([2.0, -1.0, 0.5, -3.0])
    shifted = torch.tensor([True, False, False, True])
    out = alignment_loss(logits, shifted)
    assert out["loss"].item() == pytest.approx(naive_bce(logits.tolist(), shifted.tolist()), rel=1e-6)
    assert out["accuracy"].item() == 0.5  # right on rows 0 and 1
    with pytest.raises(ValueError, match="both be"):
        alignment_loss(logits, shifted[:3])


def eee_inputs(seed: int, b: int = 6, t: int = 5, d: int = 8):
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(b, t + 1, d, generator=g)
    ecg = (base + 0.5 * torch.randn(b, t + 1, d, generator=g)).requires_grad_(True)
    echo = (base + 0.5 * torch.randn(b, t + 1, d, generator=g)).requires_grad_(True)
    pad = torch.zeros(b, t, dtype=torch.bool)
    pad[1, 3:] = True
    pad[4, 1:] = True
    return ecg, echo, pad


@pytest.mark.parametrize("seed", range(3))
def test_eee_loss_terms_match_the_reference_on_aligned_pairs_only(seed):
    ecg, echo, pad = eee_inputs(seed)
    study = torch.tensor([5, 5, 6, 7, 7, 8])
    patient = torch.tensor([1, 1, 1, 2, 2, 2])
    shifted = torch.tensor([False, False, True, False, False, True])
    logits = torch.tensor([0.3, -0.2, 1.5, -2.0, 0.1, -0.4], requires_grad=True)
    out = eee_loss(ecg[:, 0], echo[:, 0], ecg[:, 1:], echo[:, 1:], study, patient, 6.0, padding_mask=pad,
                   shifted=shifted, align_logits=logits, margin_same=0.2, margin_other=0.6)
    keep = [i for i in range(6) if not shifted[i]]
    tokens = [(s, t) for s in keep for t in range(5) if not pad[s, t]]
    a_tok = torch.stack([ecg[s, 1 + t] for s, t in tokens]).detach()
    b_tok = torch.stack([echo[s, 1 + t] for s, t in tokens]).detach()
    expected = {
        "token": naive_infonce(a_tok, b_tok, [study[s].item() for s, _ in tokens], 6.0, 0.2, 0.6),
        "sid": naive_infonce(ecg[keep, 0].detach(), echo[keep, 0].detach(), study[keep].tolist(), 6.0, 0.2,
                             0.6),
        "pid": naive_infonce(ecg[keep, 0].detach(), echo[keep, 0].detach(), patient[keep].tolist(), 6.0, 0.2,
                             0.6),
        "align": naive_bce(logits.tolist(), shifted.tolist()),
    }
    for name, value in expected.items():
        assert out[name].item() == pytest.approx(value, rel=1e-5, abs=1e-6), name
    assert out["aligned_pairs"].item() == 4
    total = out["token"] + out["sid"] + out["pid"] + out["align"]
    total.backward()
    assert all(torch.isfinite(t.grad).all() for t in (ecg, echo, logits))
    # shifted rows and padded tokens feed no contrastive term; only the alignment head sees shifted pairs
    assert ecg.grad[shifted].abs().sum() == 0 and echo.grad[shifted].abs().sum() == 0
    assert ecg.grad[1, 1 + 3:].abs().sum() == 0 and ecg.grad[4, 2:].abs().sum() == 0
    assert logits.grad[shifted].abs().sum() > 0


def test_eee_loss_with_every_pair_shifted_has_zero_contrastive_terms():
    ecg, echo, pad = eee_inputs(0)
    shifted = torch.ones(6, dtype=torch.bool)
    out = eee_loss(ecg[:, 0], echo[:, 0], ecg[:, 1:], echo[:, 1:], torch.arange(6), torch.arange(6), 10.0,
                   padding_mask=pad, shifted=shifted, align_logits=torch.zeros(6))
    assert out["token"].item() == out["sid"].item() == out["pid"].item() == 0.0
    assert out["align"].item() == pytest.approx(math.log(2.0))
    (out["token"] + out["sid"] + out["pid"]).backward()
    assert torch.isfinite(ecg.grad).all()


def test_eee_loss_without_shift_or_head_uses_every_pair():
    ecg, echo, _pad = eee_inputs(1)
    study, patient = torch.tensor([1, 1, 2, 2, 3, 3]), torch.tensor([1, 1, 1, 1, 2, 2])
    out = eee_loss(ecg[:, 0], echo[:, 0], ecg[:, 1:], echo[:, 1:], study, patient, 8.0)
    assert "align" not in out and out["aligned_pairs"].item() == 6
    assert out["sid"].item() == pytest.approx(
        naive_infonce(ecg[:, 0].detach(), echo[:, 0].detach(), study.tolist(), 8.0, 0.1, 0.3), rel=1e-5)
    a, b, ids = token_pairs(ecg[:, 1:], echo[:, 1:], study)
    assert a.shape[0] == 30
    torch.testing.assert_close(out["token"], dual_margin_infonce(a, b, ids, 8.0)["loss"])


def test_bad_inputs_name_what_was_expected():
    a = torch.randn(4, 3)
    with pytest.raises(ValueError, match="integer tensor"):
        dual_margin_infonce(a, a, torch.zeros(4), 10.0)
    with pytest.raises(ValueError, match="same shape"):
        dual_margin_infonce(a, a[:3], torch.arange(4), 10.0)
    with pytest.raises(ValueError, match="margins must be >= 0"):
        dual_margin_mask(torch.zeros(4, 4), torch.arange(4), -0.1, 0.2)
    with pytest.raises(ValueError, match="shifted must be bool"):
        eee_loss(a, a, a[:, None], a[:, None], torch.arange(4), torch.arange(4), 1.0, shifted=torch.zeros(4))
    with pytest.raises(ValueError, match="patient_ids must be"):
        eee_loss(a, a, a[:, None], a[:, None], torch.arange(4), torch.arange(3), 1.0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    ecg, echo, pad = eee_inputs(2)
    args = (torch.tensor([5, 5, 6, 7, 7, 8]), torch.tensor([1, 1, 1, 2, 2, 2]))
    shifted = torch.tensor([False, True, False, False, False, True])
    logits = torch.randn(6)
    cpu = eee_loss(ecg[:, 0], echo[:, 0], ecg[:, 1:], echo[:, 1:], *args, 9.0, padding_mask=pad,
                   shifted=shifted, align_logits=logits)
    cuda = eee_loss(*(t.cuda() for t in (ecg[:, 0], echo[:, 0], ecg[:, 1:], echo[:, 1:], *args)), 9.0,
                    padding_mask=pad.cuda(), shifted=shifted.cuda(), align_logits=logits.cuda())
    assert cpu.keys() == cuda.keys()
    for name in cpu:
        torch.testing.assert_close(cuda[name].cpu(), cpu[name], rtol=1e-4, atol=1e-5, msg=name)
