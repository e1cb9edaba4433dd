"""Torch versions of the per-record operations that training applies to whole batches (B, leads, T).

Same semantics as ``normalize`` and ``crop_or_pad`` in ``ecgalign.data.preprocess.arrays``; they run on the
tensor's device and keep its floating dtype (statistics in float32 at least; integer input gives float32).
"""

from __future__ import annotations

import torch

from ecgalign.data.errors import InputError
from ecgalign.data.preprocess._checks import choice, positive_int, positive_number
from ecgalign.data.preprocess.arrays import CROP_MODES, NORMALIZE_METHODS


def normalize_torch(x: torch.Tensor, method: str = "zscore", eps: float = 1e-6) -> torch.Tensor:
    """Per-lead normalisation of ``x`` (..., T) over its last axis; see ``arrays.normalize``."""
    method = choice(method, "method", NORMALIZE_METHODS)
    eps = positive_number(eps, "eps")
    if x.ndim < 1 or x.shape[-1] == 0:
        raise InputError(f"x must have shape (..., T) with T > 0, got {tuple(x.shape)}")
    out_dtype = x.dtype if x.dtype.is_floating_point else torch.float32
    if method == "none":
        return x.to(out_dtype, copy=True)
    work = x if x.dtype == torch.float64 else x.float()
    if method == "zscore":
        center = work.mean(dim=-1, keepdim=True)
        scale = work.std(dim=-1, keepdim=True, correction=0)
    elif method == "minmax":
        center = work.amin(dim=-1, keepdim=True)
        scale = work.amax(dim=-1, keepdim=True) - center
    else:
        q = torch.tensor([0.25, 0.5, 0.75], dtype=work.dtype, device=work.device)
        q25, center, q75 = torch.quantile(work, q, dim=-1, keepdim=True)
        scale = q75 - q25
        scale = torch.where(scale > eps, scale, work.std(dim=-1, keepdim=True, correction=0))
    out = (work - center) / scale.clamp_min(eps)
    if method == "robust":
        limit = torch.finfo(out_dtype).max
        out = out.clamp(-limit, limit)
    return out.to(out_dtype)


def crop_or_pad_torch(
    x: torch.Tensor,
    n_samples: int,
    mode: str = "start",
    generator: torch.Generator | None = None,
    pad_value: float = 0.0,
) -> torch.Tensor:
    """Crop or pad ``x`` (..., T) to ``n_samples``; see ``arrays.crop_or_pad`` for where windows and padding go.

    ``"random"`` on a batch (B, leads, T) draws one offset per record (every dimension before the last two),
    shared by its leads so they stay aligned; a (leads, T) or (T,) input gets one offset.
    """
    mode = choice(mode, "mode", CROP_MODES)
    n_samples = positive_int(n_samples, "n_samples")
    if x.ndim < 1 or x.shape[-1] == 0:
        raise InputError(f"x must have shape (..., T) with T > 0, got {tuple(x.shape)}")
    n_t = x.shape[-1]
    if n_t < n_samples:
        short = n_samples - n_t
        before = short // 2 if mode == "center" else 0
        return torch.nn.functional.pad(x, (before, short - before), value=float(pad_value))
    if mode != "random":
        offset = (n_t - n_samples) // 2 if mode == "center" else 0
        return x[..., offset : offset + n_samples].clone()
    records = x.shape[:-2] if x.ndim >= 3 else ()
    draw_on = generator.device if generator is not None else torch.device("cpu")
    offsets = torch.randint(0, n_t - n_samples + 1, records, generator=generator, device=draw_on)  # per record
    index = offsets.to(x.device)[..., None] + torch.arange(n_samples, device=x.device)  # (*records, n)
    index = index.unsqueeze(-2).expand(*x.shape[:-1], n_samples) if x.ndim >= 2 else index
    return torch.gather(x, -1, index)
