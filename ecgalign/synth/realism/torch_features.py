"""The realism harness's feature families in torch, so gradients pass through them (``ecgalign.synth.refine``
trains against them). Same view, constants and R-peak finder as ``features``; tests hold the two together."""

from __future__ import annotations

import numpy as np
import torch

from ecgalign.synth.realism.features import _POST, _PRE, BANDS, FS, INDEPENDENT, r_peaks

MAX_BEATS = 24


def zscore(x: torch.Tensor) -> torch.Tensor:
    """Per lead, per record (population standard deviation, as the harness's view)."""
    return (x - x.mean(-1, keepdim=True)) / x.std(-1, keepdim=True, correction=0).clamp_min(1e-6)


def peak_table(view: np.ndarray) -> np.ndarray:
    """(N, MAX_BEATS) R-peak sample indices per record of a benchmark view (N, 12, 1000), found as the harness
    finds them; -1 pads. Only peaks with a whole beat window are kept, the first MAX_BEATS of them (the harness
    uses every beat; the two differ only above 144 bpm)."""
    out = np.full((len(view), MAX_BEATS), -1, dtype=np.int64)
    for n, rec in enumerate(view):
        p = r_peaks(np.asarray(rec, dtype=np.float64))
        p = p[(p >= _PRE) & (p + _POST <= view.shape[-1])][:MAX_BEATS]
        out[n, : len(p)] = p
    return out


def _quantile_top(x: torch.Tensor, share: float = 0.01) -> torch.Tensor:
    """Mean of the top ``share`` of x along the last axis: a smooth stand-in for the 99th percentile."""
    k = max(1, int(round(share * x.shape[-1])))
    return x.topk(k, dim=-1).values.mean(-1)


def record_statistics(view: torch.Tensor, peaks: torch.Tensor) -> torch.Tensor:
    """(B, F) differentiable statistics of a benchmark view (B, 12, T) with its R peaks (B, MAX_BEATS; -1 pads):
    band-power shares per lead, eigenvalue shares and correlations of the 8 independent leads, per-lead
    skewness, kurtosis, slope kurtosis and top-1 % |slope| / |x|, beat consistency and beat amplitude spread per
    lead, and the median beat of the 8 independent leads (every second sample). The same families the realism
    harness's domain classifier reads, in a form gradients pass through."""
    b, _, t = view.shape
    spec = torch.fft.rfft(view, dim=-1).abs() ** 2
    f = torch.fft.rfftfreq(t, d=1.0 / FS).to(view.device)
    inband = (f >= BANDS[0][0]) & (f < BANDS[-1][1])
    total = spec[..., inband].sum(-1).clamp_min(1e-9)
    bands = torch.stack([spec[..., (f >= lo) & (f < hi)].sum(-1) / total for lo, hi in BANDS], -1).reshape(b, -1)
    z = view[:, list(INDEPENDENT)]
    z = z - z.mean(-1, keepdim=True)
    cov = z @ z.transpose(1, 2) / t
    ev = torch.linalg.eigvalsh(cov + 1e-6 * torch.eye(len(INDEPENDENT), device=view.device)).flip(-1)
    ev = ev / ev.sum(-1, keepdim=True)
    sd = cov.diagonal(dim1=1, dim2=2).clamp_min(1e-9).sqrt()
    corr = cov / (sd[:, :, None] * sd[:, None, :])
    iu = torch.triu_indices(len(INDEPENDENT), len(INDEPENDENT), 1)
    corr = corr[:, iu[0], iu[1]]
    zs = zscore(view)
    d = torch.diff(view, dim=-1)
    dz = zscore(d)
    moments = torch.cat([
        (zs**3).mean(-1), (zs**4).mean(-1) - 3, (dz**4).mean(-1) - 3, _quantile_top(d.abs()), _quantile_top(view.abs()),
    ], dim=1)
    valid = peaks >= 0  # (B, K)
    idx = peaks.clamp_min(_PRE)[:, :, None] + torch.arange(-_PRE, _POST, device=view.device)  # (B, K, W)
    beats = torch.gather(
        view[:, None].expand(-1, peaks.shape[1], -1, -1), 3,
        idx[:, :, None, :].expand(-1, -1, view.shape[1], -1),
    )  # (B, K, 12, W)
    w = valid.float()[:, :, None, None]
    count = w.sum(1).clamp_min(1.0)
    nan = torch.tensor(float("nan"), device=view.device)
    med_beat = torch.where(w.bool(), beats, nan).nanmedian(1).values  # (B, 12, W), as the harness's median
    med_beat = torch.nan_to_num(med_beat)
    resid = (beats - med_beat[:, None]) * w
    grand = (beats * w).sum((1, 3), keepdim=True) / (count[:, None] * beats.shape[-1])
    beat_var = ((beats - grand) ** 2 * w).sum((1, 3))
    consistency = 1 - (resid**2).sum((1, 3)) / beat_var.clamp_min(1e-9)
    amp = beats.amax(-1) - beats.amin(-1)  # (B, K, 12)
    wa = valid.float()[:, :, None]
    amp_mean = (amp * wa).sum(1) / wa.sum(1).clamp_min(1.0)
    amp_sd = (((amp - amp_mean[:, None]) ** 2 * wa).sum(1) / wa.sum(1).clamp_min(1.0)).sqrt()
    amp_cv = amp_sd / amp_mean.clamp_min(1e-6)
    mb = med_beat[:, list(INDEPENDENT), ::2].reshape(b, -1)
    return torch.cat([bands, ev, corr, moments, consistency, amp_cv, mb], dim=1)
