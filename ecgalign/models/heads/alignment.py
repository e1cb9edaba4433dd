"""EEE's temporal-alignment sub-task (Echo-Enhanced ECG, seed 003_74d6fba967a030e7, sections 3.4 and 3.4.1):
a fraction of ECG sequences is deliberately misaligned from its echo clips (``M_shift``), and a linear
classifier on ``[z_ecg^cls, z_echo^cls]`` predicts which pairs were shifted (trained with
``ecgalign.losses.hierarchical.alignment_loss``)."""

from __future__ import annotations

import math

import torch
from torch import nn


class AlignmentHead(nn.Module):
    """``Linear([z_ecg^cls, z_echo^cls]) -> 1`` (EEE 3.4.1). ``forward(z_ecg (B, D_ecg), z_echo (B, D_echo))``
    -> logits (B,); a positive logit means "shifted" (the paper's BCE target is ``M_shift``)."""

    def __init__(self, ecg_dim: int, echo_dim: int):
        super().__init__()
        self.ecg_dim, self.echo_dim = ecg_dim, echo_dim
        self.linear = nn.Linear(ecg_dim + echo_dim, 1)

    def forward(self, z_ecg: torch.Tensor, z_echo: torch.Tensor) -> torch.Tensor:
        if (z_ecg.ndim != 2 or z_echo.ndim != 2 or len(z_ecg) != len(z_echo)
                or z_ecg.shape[1] != self.ecg_dim or z_echo.shape[1] != self.echo_dim):
            raise ValueError(f"AlignmentHead expects z_ecg (B, {self.ecg_dim}) and z_echo "
                             f"(B, {self.echo_dim}); "
                             f"got {tuple(z_ecg.shape)} and {tuple(z_echo.shape)}")
        return self.linear(torch.cat([z_ecg, z_echo], dim=1)).squeeze(1)  # (B,)


def shift_signals(signal: torch.Tensor, fraction: float, lengths: torch.Tensor | None = None, step: int = 1,
                  generator: torch.Generator | None = None, steps: int | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Misalign a fraction of an aligned batch (EEE 3.4, ``M_shift``): rotate the chosen rows' signals in
    time, within each row's valid length, by a random non-zero multiple of ``step`` samples.

    ``signal`` (B, leads, S), row b valid on ``[0, lengths[b])`` (default: all S); samples past the valid
    length are left as they are. A row can be shifted only if ``lengths[b] >= 2 * step``; of those eligible
    rows, ``round(fraction * eligible)`` are picked at random. Pass ``step = token_size`` to move whole ECG
    tokens against the echo clips. ``generator`` (a CPU generator) makes the choice reproducible.
    ``steps`` (evaluation, per shift size): rotate every chosen row by exactly ``steps * step`` samples; only
    rows whose valid part holds at least ``steps + 1`` steps are eligible.

    Returns ``(shifted signal (B, leads, S), shifted (B,) bool)``; pairs whose ``shifted`` is False are
    the aligned pairs the contrastive terms use.
    """
    if signal.ndim != 3:
        raise ValueError(f"shift_signals expects signal (batch, leads, samples); got {tuple(signal.shape)}")
    if not 0.0 <= fraction <= 1.0 or step < 1 or (steps is not None and steps < 1):
        raise ValueError(f"shift_signals: fraction must be in [0, 1], step >= 1 and steps >= 1; got "
                         f"fraction={fraction}, step={step}, steps={steps}")
    b, _, s = signal.shape
    if lengths is None:
        lengths = torch.full((b,), s, dtype=torch.long)
    lengths = lengths.detach().to("cpu", torch.long)
    if lengths.shape != (b,) or bool((lengths < 1).any()) or bool((lengths > s).any()):
        raise ValueError(f"shift_signals: lengths must be ({b},) with values in [1, {s}]; "
                         f"got {lengths.tolist()}")
    whole = lengths // step  # (B,) whole steps in each valid part
    eligible = (whole >= (2 if steps is None else steps + 1)).nonzero().squeeze(1)
    count = math.floor(fraction * len(eligible) + 0.5)
    chosen = eligible[torch.randperm(len(eligible), generator=generator)[:count]]
    offset = torch.zeros(b, dtype=torch.long)
    if count and steps is not None:
        offset[chosen] = step * steps
    elif count:
        draws = torch.rand(count, generator=generator)  # one uniform per shifted row -> k in [1, whole - 1]
        offset[chosen] = step * (1 + (draws * (whole[chosen] - 1)).long().clamp(max=whole[chosen] - 2))
    shifted = offset > 0
    idx = torch.arange(s)[None, :]  # (1, S)
    source = torch.where(idx < lengths[:, None], (idx - offset[:, None]) % lengths[:, None], idx)  # (B, S)
    source = source.to(signal.device)[:, None, :].expand_as(signal)
    return signal.gather(2, source), shifted.to(signal.device)
