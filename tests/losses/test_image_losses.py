"""The ECG-Scan losses: Gramian volume contrastive and soft lead consistency."""

from __future__ import annotations

import math

import pytest
import torch

from ecgalign.data.leads import derive_limb_leads
from ecgalign.losses import gram_loss, gram_volume, gram_volume_matrix, lead_consistency_loss, refine_limb_leads


def _naive_volume(a, b, c):
    vs = [v / v.norm() for v in (a.double(), b.double(), c.double())]
    gram = torch.tensor([[float(u @ v) for v in vs] for u in vs], dtype=torch.float64)
    return math.sqrt(max(float(torch.linalg.det(gram)), 0.0))


def test_volume_is_the_gram_determinant_root():
    g = torch.Generator().manual_seed(0)
    a, b, c = (torch.randn(5, 7, generator=g) for _ in range(3))
    got = gram_volume(a, b, c)
    for i in range(5):
        assert got[i].item() == pytest.approx(_naive_volume(a[i], b[i], c[i]), abs=1e-5)
    eye = torch.eye(3)
    assert gram_volume(eye[:1], eye[1:2], eye[2:3]).item() == pytest.approx(1.0)  # orthonormal: unit cube
    m = gram_volume_matrix(a, b, c)
    torch.testing.assert_close(m.diagonal(), got)
    assert m[1, 3].item() == pytest.approx(_naive_volume(a[1], b[3], c[3]), abs=1e-5)


def test_gradients_stay_finite_when_the_three_vectors_align():
    v = torch.randn(4, 6)
    a, b, c = (v.clone().requires_grad_(True) for _ in range(3))
    volume = gram_volume(a, b, c)
    assert torch.all(volume < 1e-2)  # sqrt(eps)
    out = gram_loss(a, b, c, logit_scale=10.0)
    out["loss"].backward()
    for t in (a, b, c):
        assert torch.isfinite(t.grad).all()


def test_gram_loss_matches_a_naive_bidirectional_cross_entropy():
    g = torch.Generator().manual_seed(1)
    a, b, c = (torch.randn(4, 5, generator=g) for _ in range(3))
    scale = 3.0
    vol = [[_naive_volume(a[i], b[j], c[j]) for j in range(4)] for i in range(4)]

    def ce(rows):
        total = 0.0
        for i, row in enumerate(rows):
            logits = [-scale * v for v in row]
            total += -(logits[i] - math.log(sum(math.exp(x) for x in logits)))
        return total / len(rows)

    expected = 0.5 * (ce(vol) + ce([list(col) for col in zip(*vol)]))
    assert gram_loss(a, b, c, scale)["loss"].item() == pytest.approx(expected, abs=1e-4)
    with pytest.raises(ValueError, match="three"):
        gram_loss(a, b[:3], c, 1.0)


def test_lead_refinement_projects_onto_einthoven_and_goldberger():
    x = torch.zeros(1, 12, 1)
    x[0, 0] = 1.0  # I = 1, II = III = 0 violates III = II - I
    ein, gold = refine_limb_leads(x)
    assert ein[0, :, 0].tolist() == pytest.approx([2 / 3, 1 / 3, -1 / 3])  # r = 1/3 moved along (-1, 1, -1)
    assert ein[0, 2, 0].item() == pytest.approx(ein[0, 1, 0].item() - ein[0, 0, 0].item())
    assert gold[0, :, 0].tolist() == pytest.approx([-0.5, 0.5, 0.0], abs=1e-6)
    # a signal that obeys both laws is left as it is, and scores 0 against itself
    lead_i, lead_ii = torch.randn(2, 2, 50)  # two records each
    derived = derive_limb_leads(lead_i.numpy(), lead_ii.numpy())  # III, aVR, aVL, aVF
    y = torch.randn(2, 12, 50)
    y[:, 0], y[:, 1] = lead_i, lead_ii
    for k, lead in enumerate(derived):
        y[:, 2 + k] = torch.as_tensor(lead)
    ein, gold = refine_limb_leads(y)
    torch.testing.assert_close(ein, y[:, :3])
    torch.testing.assert_close(gold, y[:, 3:6])
    out = lead_consistency_loss(y, y, alpha=0.5, beta=2.0)
    assert out["loss"].item() == pytest.approx(0.0, abs=1e-10)
    noisy = y + 0.1
    assert lead_consistency_loss(noisy, y)["loss"].item() > 0
