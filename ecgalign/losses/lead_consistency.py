"""Soft lead consistency (ECG-Scan section 4.3, Eq. 6-7): the reconstructed limb leads are projected onto the
Einthoven and Goldberger constraint sets and the refined leads compared with the ground truth.

Einthoven (III = II - I): the nearest point of the plane I - II + III = 0 to the reconstruction (orthogonal
projection): with r = I - II + III, I' = I - r/3, II' = II + r/3, III' = III - r/3. Goldberger: the augmented
leads implied by the refined I', II': aVR' = -(I' + II')/2, aVL' = I' - II'/2, aVF' = II' - I'/2.
"""

from __future__ import annotations

import torch

from ecgalign.data.record import LEADS_12

_I, _II, _III, _AVR, _AVL, _AVF = (LEADS_12.index(n) for n in ("I", "II", "III", "aVR", "aVL", "aVF"))


def refine_limb_leads(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(Einthoven-refined I, II, III) and (Goldberger aVR, aVL, aVF from them), each (B, 3, T), from a
    (B, 12, T) signal in the canonical lead order."""
    lead_i, lead_ii, lead_iii = x[:, _I], x[:, _II], x[:, _III]
    r = (lead_i - lead_ii + lead_iii) / 3.0
    i2, ii2, iii2 = lead_i - r, lead_ii + r, lead_iii - r
    einthoven = torch.stack([i2, ii2, iii2], dim=1)
    goldberger = torch.stack([-(i2 + ii2) / 2, i2 - ii2 / 2, ii2 - i2 / 2], dim=1)
    return einthoven, goldberger


def lead_consistency_loss(reconstruction: torch.Tensor, target: torch.Tensor, alpha: float = 1.0,
                          beta: float = 1.0) -> dict[str, torch.Tensor]:
    """``alpha * MSE(Einthoven-refined I, II, III; truth) + beta * MSE(Goldberger aVR, aVL, aVF; truth)``."""
    if reconstruction.shape != target.shape or reconstruction.ndim != 3 or reconstruction.shape[1] != 12:
        raise ValueError(f"lead consistency needs (B, 12, T) signals in {LEADS_12} order; got "
                         f"{tuple(reconstruction.shape)} and {tuple(target.shape)}")
    einthoven, goldberger = refine_limb_leads(reconstruction.float())
    target = target.float()
    l_e = (einthoven - target[:, [_I, _II, _III]]).pow(2).mean()
    l_g = (goldberger - target[:, [_AVR, _AVL, _AVF]]).pow(2).mean()
    return {"loss": alpha * l_e + beta * l_g, "einthoven": l_e.detach(), "goldberger": l_g.detach()}
