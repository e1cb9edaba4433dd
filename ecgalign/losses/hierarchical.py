"""EEE's hierarchical objective (Echo-Enhanced ECG, seed 003_74d6fba967a030e7, section 3.4):
``L = L_token + L_sid + L_pid + L_align``.

Each contrastive term is a symmetric InfoNCE over a similarity matrix masked by dual-margin semi-hard
negative mining (3.4.2): besides the positive pair (i, i), anchor i keeps negative j only if
``S_ii - m < S_ij < S_ii``, with a narrow margin ``m = margin_same`` when j carries the same identifier
as i (same study, or same patient) and a wider ``m = margin_other`` otherwise. Logits outside the mask are
set to a large negative value; the mask built from the rows is used, transposed, for the b -> a direction
(the paper's ``CE(S_masked^T, y)``).

The paper states the margins on ``S = cos / tau``; here they are in cosine units (``m_cos = m * tau``), so
they keep their meaning while a learnable temperature moves. Mining is a discrete choice and carries no
gradient. ``mining`` chooses the band: ``"semi-hard"`` (the paper) keeps only negatives below the positive;
``"margin"`` keeps every negative above ``S_ii - m``, hard negatives that outrank the positive included (semi-hard
mining alone cannot repair a space where negatives outrank positives, as in a collapsed early space);
``"none"`` keeps every negative (plain InfoNCE). Contrastive terms use the aligned pairs only (3.4); ``L_align`` is the BCE of the alignment head
against ``M_shift`` (3.4.1). Identifiers are integer tensors; map string ids to integers first.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

Scale = torch.Tensor | float
MINING = ("semi-hard", "margin", "none")


def _check_pairs(a: torch.Tensor, b: torch.Tensor, ids: torch.Tensor, what: str) -> None:
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"{what}: needs two (N, D) embeddings of the same shape; got {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    if ids.shape != (a.shape[0],) or ids.dtype.is_floating_point or ids.dtype == torch.bool:
        raise ValueError(f"{what}: ids must be an integer tensor of shape ({a.shape[0]},); got {ids.dtype} "
                         f"{tuple(ids.shape)}")


def dual_margin_mask(sim: torch.Tensor, ids: torch.Tensor, margin_same: float,
                     margin_other: float, mining: str = "semi-hard") -> torch.Tensor:
    """``M_final`` of EEE 3.4.2: (N, N) bool, True on the diagonal and on the semi-hard negatives
    ``S_ii - m < S_ij < S_ii`` with ``m = margin_same`` where ``ids[i] == ids[j]`` (i != j) and
    ``m = margin_other`` where they differ. ``sim`` (N, N): similarities of a_i to b_j. ``mining="margin"``
    drops the upper bound (``S_ij > S_ii - m``), ``"none"`` keeps every pair."""
    n = sim.shape[0]
    if sim.shape != (n, n) or ids.shape != (n,):
        raise ValueError(f"dual_margin_mask: sim must be (N, N) and ids (N,); got {tuple(sim.shape)}, "
                         f"{tuple(ids.shape)}")
    if margin_same < 0 or margin_other < 0:
        raise ValueError(f"dual_margin_mask: margins must be >= 0; got {margin_same}, {margin_other}")
    if mining not in MINING:
        raise ValueError(f"dual_margin_mask: mining must be one of {MINING}; got {mining!r}")
    positive = sim.diagonal()[:, None]  # (N, 1): S_ii
    same = ids[:, None] == ids[None, :]  # (N, N)
    eye = torch.eye(n, dtype=torch.bool, device=sim.device)
    margin = torch.where(same, margin_same, margin_other)  # (N, N)
    if mining == "none":
        return torch.ones_like(same)
    kept = sim > positive - margin
    if mining == "semi-hard":
        kept &= sim < positive
    return eye | (kept & ~eye)


def dual_margin_infonce(a: torch.Tensor, b: torch.Tensor, ids: torch.Tensor, logit_scale: Scale,
                        margin_same: float = 0.1, margin_other: float = 0.3,
                        mining: str = "semi-hard") -> dict[str, torch.Tensor]:
    """``L_contrastive`` of EEE 3.4.2 over N pairs (a_i, b_i) with identifiers ``ids`` (N,): a, b (N, D)
    are L2-normalised here, ``S = logit_scale * cos(a_i, b_j)``, masked by ``dual_margin_mask``, and
    ``loss = (CE(S_masked, y) + CE(S_masked^T, y)) / 2`` with ``y = [0, ..., N - 1]``.

    Returns ``loss`` and, per anchor on average (no gradient), the mined ``negatives_same`` and
    ``negatives_other``. With no pair (N = 0) or no mined negative the loss is 0.
    """
    _check_pairs(a, b, ids, "dual_margin_infonce")
    n = a.shape[0]
    if n == 0:
        zero = (a.sum() + b.sum()).float() * 0.0
        return {"loss": zero, "negatives_same": zero.detach(), "negatives_other": zero.detach()}
    a, b = F.normalize(a.float(), dim=-1), F.normalize(b.float(), dim=-1)
    with torch.autocast(device_type=a.device.type, enabled=False):  # float32 similarities under bf16 autocast
        cos = a @ b.t()  # (N, N)
    with torch.no_grad():
        mask = dual_margin_mask(cos, ids, margin_same, margin_other, mining)
        same = ids[:, None] == ids[None, :]
        negatives = mask & ~torch.eye(n, dtype=torch.bool, device=mask.device)
        neg_same = (negatives & same).sum() / n
        neg_other = (negatives & ~same).sum() / n
    logits = (torch.as_tensor(logit_scale, device=cos.device).float() * cos).masked_fill(
        ~mask, torch.finfo(torch.float32).min)  # (N, N) float32
    targets = torch.arange(n, device=a.device)
    loss = 0.5 * (F.cross_entropy(logits, targets) + F.cross_entropy(logits.t(), targets))
    return {"loss": loss, "negatives_same": neg_same.float(), "negatives_other": neg_other.float()}


def token_pairs(ecg_tokens: torch.Tensor, echo_tokens: torch.Tensor, ids: torch.Tensor,
                padding_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Flatten token-level pairs for ``L_token`` (EEE 3.4.3): ECG token t of sequence b pairs with echo
    token t of sequence b. ``ecg_tokens``, ``echo_tokens`` (B, T, D); ``ids`` (B,) repeated per token;
    ``padding_mask`` (B, T) bool, True = padding, dropped. Returns (a (N, D), b (N, D), ids (N,))."""
    if ecg_tokens.ndim != 3 or ecg_tokens.shape != echo_tokens.shape or ids.shape != ecg_tokens.shape[:1]:
        raise ValueError(f"token_pairs: needs ECG and echo tokens (B, T, D) of one shape and ids (B,); got "
                         f"{tuple(ecg_tokens.shape)}, {tuple(echo_tokens.shape)}, {tuple(ids.shape)}")
    b, t, _ = ecg_tokens.shape
    if padding_mask is None:
        padding_mask = torch.zeros(b, t, dtype=torch.bool, device=ecg_tokens.device)
    if padding_mask.shape != (b, t) or padding_mask.dtype != torch.bool:
        raise ValueError(f"token_pairs: padding_mask must be bool ({b}, {t}), True = padding; got "
                         f"{padding_mask.dtype} {tuple(padding_mask.shape)}")
    valid = ~padding_mask  # (B, T)
    return ecg_tokens[valid], echo_tokens[valid], ids[:, None].expand(b, t)[valid]


def alignment_loss(logits: torch.Tensor, shifted: torch.Tensor) -> dict[str, torch.Tensor]:
    """``L_align`` of EEE 3.4.1: ``BCEWithLogits(logits, M_shift)``, ``logits`` (B,) from the alignment
    head, ``shifted`` (B,) bool (True = artificially misaligned). Returns ``loss`` and ``accuracy``."""
    if logits.ndim != 1 or shifted.shape != logits.shape:
        raise ValueError(f"alignment_loss: logits and shifted must both be (B,); got {tuple(logits.shape)} "
                         f"and {tuple(shifted.shape)}")
    target = shifted.to(torch.float32)
    loss = F.binary_cross_entropy_with_logits(logits.float(), target)
    with torch.no_grad():
        accuracy = ((logits > 0) == shifted.bool()).float().mean()
    return {"loss": loss, "accuracy": accuracy}


def eee_loss(ecg_cls: torch.Tensor, echo_cls: torch.Tensor, ecg_tokens: torch.Tensor,
             echo_tokens: torch.Tensor, study_ids: torch.Tensor, patient_ids: torch.Tensor,
             logit_scale: Scale, *, padding_mask: torch.Tensor | None = None,
             shifted: torch.Tensor | None = None, align_logits: torch.Tensor | None = None,
             margin_same: float = 0.1, margin_other: float = 0.3,
             mining: str = "semi-hard") -> dict[str, torch.Tensor]:
    """The named terms of EEE's objective (3.4.3), weights left to the caller:

    - ``token``: ``dual_margin_infonce`` on ECG/echo token pairs with study ids (padding dropped);
    - ``sid``: on the [CLS] pairs with study ids;  ``pid``: on the [CLS] pairs with patient ids;
    - ``align`` (when ``align_logits`` is given): ``alignment_loss`` against ``shifted``.

    Shapes: ``*_cls`` (B, D); ``*_tokens`` (B, T, D); ``study_ids``, ``patient_ids`` (B,) integers;
    ``padding_mask`` (B, T) True = padding; ``shifted`` (B,) bool, True = misaligned pair, left out of the
    three contrastive terms. Also returned, without gradient: ``aligned_pairs``, ``align_accuracy`` and the
    mean mined negatives per anchor ``{token,sid,pid}_negatives_{same,other}``.
    """
    b = ecg_cls.shape[0]
    if shifted is None:
        shifted = torch.zeros(b, dtype=torch.bool, device=ecg_cls.device)
    if shifted.shape != (b,) or shifted.dtype != torch.bool:
        raise ValueError(f"eee_loss: shifted must be bool ({b},); got {shifted.dtype} {tuple(shifted.shape)}")
    for name, ids in (("study_ids", study_ids), ("patient_ids", patient_ids)):
        if ids.shape != (b,):
            raise ValueError(f"eee_loss: {name} must be ({b},); got {tuple(ids.shape)}")
    keep = ~shifted
    pad = None if padding_mask is None else padding_mask[keep]
    levels = {
        "token": token_pairs(ecg_tokens[keep], echo_tokens[keep], study_ids[keep], pad),
        "sid": (ecg_cls[keep], echo_cls[keep], study_ids[keep]),
        "pid": (ecg_cls[keep], echo_cls[keep], patient_ids[keep]),
    }
    out: dict[str, torch.Tensor] = {}
    for level, (a, z, ids) in levels.items():
        terms = dual_margin_infonce(a, z, ids, logit_scale, margin_same, margin_other, mining)
        out[level] = terms["loss"]
        out[f"{level}_negatives_same"] = terms["negatives_same"]
        out[f"{level}_negatives_other"] = terms["negatives_other"]
    out["aligned_pairs"] = keep.sum().float()
    if align_logits is not None:
        align = alignment_loss(align_logits, shifted)
        out["align"], out["align_accuracy"] = align["loss"], align["accuracy"]
    return out
