"""Feature families of the domain classifier, computed on the benchmark view (100 Hz, 0.5-40 Hz, z-scored).

- ``spectrum``: share of each lead's power in five bands (0.5-3, 3-8, 8-15, 15-25, 25-40 Hz);
- ``covariance``: eigenvalue shares of the 8 independent leads (I, II, V1-V6) and their correlations;
- ``beats``: rhythm (RR mean, CV, successive differences) and beat-to-beat consistency per lead;
- ``shape``: per-lead skewness, kurtosis, slope statistics and the median beat (QRS-aligned, 0.7 s).
"""

from __future__ import annotations

import numpy as np
from scipy import signal as sps
from scipy import stats

FS = 100.0
BANDS: tuple[tuple[float, float], ...] = ((0.5, 3.0), (3.0, 8.0), (8.0, 15.0), (15.0, 25.0), (25.0, 40.0))
INDEPENDENT = [0, 1, 6, 7, 8, 9, 10, 11]  # I, II, V1-V6 in LEADS_12 order
_PRE, _POST = 25, 45  # median beat window: 250 ms before, 450 ms after the R peak (samples at 100 Hz)


def band_shares(x: np.ndarray) -> np.ndarray:
    """(N, 12, len(BANDS)) share of each lead's 0.5-40 Hz power per band (Welch, 2 s segments)."""
    f, p = sps.welch(x, fs=FS, nperseg=200, axis=-1)  # p: (N, 12, F)
    total = p[..., (f >= BANDS[0][0]) & (f < BANDS[-1][1])].sum(axis=-1, keepdims=True)
    parts = [p[..., (f >= lo) & (f < hi)].sum(axis=-1) for lo, hi in BANDS]
    return np.stack(parts, axis=-1) / np.maximum(total, 1e-12)


def pca_shares(x: np.ndarray) -> np.ndarray:
    """(N, 8) eigenvalue shares (descending) of the covariance of the 8 independent leads, per record."""
    z = x[:, INDEPENDENT]  # (N, 8, T)
    z = z - z.mean(axis=-1, keepdims=True)
    cov = np.einsum("nit,njt->nij", z, z) / z.shape[-1]
    ev = np.linalg.eigvalsh(cov)[:, ::-1]
    return ev / np.maximum(ev.sum(axis=1, keepdims=True), 1e-12)


def correlations(x: np.ndarray) -> np.ndarray:
    """(N, 28) correlations between the 8 independent leads (upper triangle)."""
    z = x[:, INDEPENDENT]
    z = (z - z.mean(axis=-1, keepdims=True)) / np.maximum(z.std(axis=-1, keepdims=True), 1e-9)
    c = np.einsum("nit,njt->nij", z, z) / z.shape[-1]
    iu = np.triu_indices(len(INDEPENDENT), 1)
    return c[:, iu[0], iu[1]]


def r_peaks(x: np.ndarray, fs: float = FS) -> np.ndarray:
    """R-peak sample indices of one record (12, T): peaks of the summed squared slope of all leads, at least
    250 ms apart and above 30 % of the record's 98th percentile."""
    e = (np.diff(x, axis=1) ** 2).sum(axis=0)
    k = max(1, round(0.03 * fs))
    e = np.convolve(e, np.ones(k) / k, mode="same")
    peaks, _ = sps.find_peaks(e, distance=int(0.25 * fs), height=0.3 * np.percentile(e, 98))
    return peaks


def rr_features(peaks: np.ndarray, fs: float = FS) -> np.ndarray:
    """(4,) mean RR (s), RR coefficient of variation, RMSSD / mean RR, beats."""
    rr = np.diff(peaks) / fs
    if rr.size < 2:
        return np.array([np.nan, np.nan, np.nan, float(peaks.size)])
    return np.array(
        [rr.mean(), rr.std() / rr.mean(), np.sqrt(np.mean(np.diff(rr) ** 2)) / rr.mean(), peaks.size]
    )


def beat_matrix(x: np.ndarray, peaks: np.ndarray) -> np.ndarray:
    """(B, 12, 70) beats around each R peak that fits the window."""
    keep = peaks[(peaks >= _PRE) & (peaks + _POST <= x.shape[1])]
    if keep.size == 0:
        return np.zeros((0, x.shape[0], _PRE + _POST), dtype=x.dtype)
    idx = keep[:, None] + np.arange(-_PRE, _POST)[None, :]
    return np.transpose(x[:, idx], (1, 0, 2))


def beat_features(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rhythm + beat consistency (4 + 12 + 12,) and the median beat of leads I, II, V1-V6 (8 * 70 / 2,)."""
    peaks = r_peaks(x)
    beats = beat_matrix(x, peaks)
    if len(beats) < 2:
        return np.full(4 + 24, np.nan), np.full(len(INDEPENDENT) * (_PRE + _POST) // 2, np.nan)
    med = np.median(beats, axis=0)  # (12, 70)
    resid = beats - med[None]
    consistency = 1.0 - resid.var(axis=(0, 2)) / np.maximum(beats.var(axis=(0, 2)), 1e-9)  # (12,)
    amp = np.ptp(beats, axis=2)  # (B, 12)
    amp_cv = amp.std(axis=0) / np.maximum(amp.mean(axis=0), 1e-9)
    rhythm = np.r_[rr_features(peaks), consistency, amp_cv]
    return rhythm, med[INDEPENDENT, ::2].ravel()


def shape_features(x: np.ndarray) -> np.ndarray:
    """(12 * 5,) per-lead skewness, kurtosis, slope kurtosis, 99th percentile of |slope| and of |x|."""
    d = np.diff(x, axis=-1)
    return np.concatenate(
        [
            stats.skew(x, axis=-1),
            stats.kurtosis(x, axis=-1),
            stats.kurtosis(d, axis=-1),
            np.percentile(np.abs(d), 99, axis=-1),
            np.percentile(np.abs(x), 99, axis=-1),
        ]
    )


_LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
_SHAPE_STATS = ("skewness", "kurtosis", "slope kurtosis", "slope p99", "|x| p99")
_MEDIAN_POINTS = (_PRE + _POST + 1) // 2  # the median beat is kept at every second sample (50 Hz)


def feature_names() -> dict[str, list[str]]:
    """Column names of each family of ``feature_families``, e.g. "band 25-40 Hz V4", "median beat II +10 ms"
    (median-beat times are relative to the R peak the beat features detect)."""
    ind = [_LEADS[i] for i in INDEPENDENT]
    iu = np.triu_indices(len(INDEPENDENT), 1)
    return {
        "spectrum": [f"band {lo:g}-{hi:g} Hz {lead}" for lead in _LEADS for lo, hi in BANDS],
        "covariance": [f"eigenvalue share {k + 1}" for k in range(len(INDEPENDENT))]
        + [f"corr({ind[a]}, {ind[b]})" for a, b in zip(*iu)],
        "beats": ["RR mean", "RR CV", "RMSSD / RR", "beats"]
        + [f"beat consistency {lead}" for lead in _LEADS]
        + [f"beat amplitude CV {lead}" for lead in _LEADS],
        "shape": [f"{stat} {lead}" for stat in _SHAPE_STATS for lead in _LEADS]
        + [f"median beat {lead} {10 * (2 * k - _PRE):+d} ms" for lead in ind for k in range(_MEDIAN_POINTS)],
    }


def feature_families(x: np.ndarray) -> dict[str, np.ndarray]:
    """Feature matrix (N, F) per family for the benchmark view x (N, 12, 1000)."""
    beats = [beat_features(r) for r in x]
    rhythm = np.stack([b[0] for b in beats])
    median_beat = np.stack([b[1] for b in beats])
    shape = np.stack([shape_features(r) for r in x])
    return {
        "spectrum": band_shares(x).reshape(len(x), -1),
        "covariance": np.hstack([pca_shares(x), correlations(x)]),
        "beats": rhythm,
        "shape": np.hstack([shape, median_beat]),
    }
