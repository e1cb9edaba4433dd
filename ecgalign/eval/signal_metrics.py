"""Digitisation metrics: the George B. Moody PhysioNet Challenge 2024 signal-to-noise ratio, per lead.

The Challenge scores a digitised signal lead by lead (its final ``evaluate_model.py`` and ``helper_code.py`` in
github.com/physionetchallenges/evaluation-2024 and python-example-2024, July 2024 version by Sameni, Koscova and
Reyna; re-implemented here from their description, not copied):

1. **Alignment** (``align_signals``). Both leads are quantised to ``num_quant_levels`` (256) amplitude levels
   spanning their joint finite range and drawn as binary (levels x samples) images, one pixel per finite sample;
   each image is smoothed with a Gaussian (sigma 0.5 px, ``scipy.ndimage.gaussian_filter``, reflecting edges).
   The peak of their 2-D cross-correlation, relative to the peak of the reference's auto-correlation (zero lag),
   gives a horizontal shift in samples and a vertical shift in levels (converted back to signal units). The
   estimate is shifted by them (samples moved out are lost, NaN comes in) **only if** |horizontal| <= round(0.5 fs)
   samples and |vertical| <= 1.0 mV; otherwise it is scored unshifted.
2. **SNR** (``snr_db``, the Challenge's ``compute_snr`` with ``keep_nans=True``): over the samples finite in
   both the reference and the (shifted) estimate, ``p_signal = mean(ref^2)``, ``p_noise = mean((ref - est)^2)``,
   ``SNR = 10 log10(p_signal / p_noise)`` (+inf if p_noise is 0, NaN if p_signal is 0), then multiplied by
   ``alpha = (samples finite in both) / (samples finite in the reference)``, which scales an estimate that
   leaves part of the shown signal NaN towards 0 dB. Samples where the reference is NaN (not shown in the
   image) are not scored. An estimate that is NaN wherever the reference is finite gives NaN.
3. **Mean**: ``np.nanmean`` over all (record, lead) pairs - so a lead that is NaN is left out of the mean, as in
   the Challenge. ``summarize_snr`` reports how many were.

ECG-Scan (seeds/000) compares against digitisation pipelines scored this way (Reyna et al., CinC 2024).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

CHALLENGE_QUANT_LEVELS = 256
CHALLENGE_MAX_SHIFT_S = 0.5
CHALLENGE_MAX_SHIFT_MV = 1.0


def _binarize(x: np.ndarray, levels: int, lo: float, hi: float, start: int, length: int) -> np.ndarray:
    """(levels, length) image with a 1 at (quantised amplitude, sample - start) of every finite sample."""
    out = np.zeros((levels, length))
    t = np.flatnonzero(np.isfinite(x))
    # levels 1..L as the Challenge numbers them (rounding half to even happens at the same values)
    q = np.round((levels - 1) * (x[t] - lo) / (hi - lo) + 1).astype(np.int64)
    out[np.clip(q, 1, levels) - 1, t - start] = 1.0
    return out


def align_signals(
    reference: np.ndarray,
    estimate: np.ndarray,
    num_quant_levels: int = CHALLENGE_QUANT_LEVELS,
    smooth: bool = True,
    sigma: float = 0.5,
    dtype: type = np.float64,
) -> tuple[np.ndarray, int, float]:
    """Shift ``estimate`` (T,) onto ``reference`` (T,) by the 2-D cross-correlation of their quantised images.

    Returns (shifted estimate, horizontal shift in samples, vertical shift in signal units): a positive
    horizontal shift means the estimate was late (its first samples are dropped, NaN fills the end), a negative
    one that it was early (NaN is prepended, so it grows longer, as in the Challenge), and the vertical shift has
    been subtracted from it. The images are cropped in time to the finite samples (plus a margin wider than the
    Gaussian) before correlating: the correlation's values, and so its peak, are those of the full images.
    ``dtype`` float32 halves the time of the FFTs (the peak can then differ only between lags whose
    correlations agree to about 1e-7 relative).
    """
    from scipy import fft
    from scipy.ndimage import gaussian_filter

    x_ref = np.asarray(reference, dtype=np.float64)
    x_est = np.asarray(estimate, dtype=np.float64)
    if x_ref.ndim != 1 or x_est.ndim != 1:
        raise ValueError(f"align_signals takes 1-D signals, got {x_ref.shape} and {x_est.shape}")
    fin_ref, fin_est = np.isfinite(x_ref), np.isfinite(x_est)
    if not fin_ref.any() or not fin_est.any():
        return x_est.copy(), 0, 0.0
    lo = min(x_ref[fin_ref].min(), x_est[fin_est].min())
    hi = max(x_ref[fin_ref].max(), x_est[fin_est].max())
    if not hi > lo:
        return x_est.copy(), 0, 0.0
    n = max(x_ref.size, x_est.size)
    margin = int(4.0 * sigma + 0.5) + 1 if smooth else 0  # gaussian_filter's radius (truncate=4), plus one

    def window(finite: np.ndarray) -> tuple[int, int]:
        idx = np.flatnonzero(finite)
        start, stop = max(0, idx[0] - margin), min(n, idx[-1] + 1 + margin)
        # a window touching an end keeps the whole margin there, so the reflecting edge sees the same zeros
        return (0 if start <= margin else start), (n if stop >= n - margin else stop)

    (r0, r1), (e0, e1) = window(fin_ref), window(fin_est)
    a_ref = _binarize(x_ref, num_quant_levels, lo, hi, r0, r1 - r0)
    a_est = _binarize(x_est, num_quant_levels, lo, hi, e0, e1 - e0)
    if smooth:
        a_ref = gaussian_filter(a_ref, sigma)
        a_est = gaussian_filter(a_est, sigma)
    full = (2 * num_quant_levels - 1, a_ref.shape[1] + a_est.shape[1] - 1)
    shape = [fft.next_fast_len(m, real=True) for m in full]
    spectrum = fft.rfft2(a_ref.astype(dtype), shape) * fft.rfft2(a_est[::-1, ::-1].astype(dtype), shape)
    cross = fft.irfft2(spectrum, shape)[: full[0], : full[1]]
    iv, it = np.unravel_index(np.argmax(cross), cross.shape)
    # cross[iv, it] pairs reference sample r0 + t with estimate sample e0 + t - (it - (e1 - e0 - 1))
    shift_t = int((e0 + (a_est.shape[1] - 1)) - (r0 + it))
    shift_v = float((num_quant_levels - 1 - iv) / (num_quant_levels - 1) * (hi - lo))
    if shift_t < 0:
        shifted = np.concatenate([np.full(-shift_t, np.nan), x_est])
    else:
        shifted = np.concatenate([x_est[shift_t:], np.full(shift_t, np.nan)])
    return shifted - shift_v, shift_t, shift_v


def snr_db(reference: np.ndarray, estimate: np.ndarray, keep_nans: bool = True) -> float:
    """The Challenge 2024 SNR (dB) of one lead; see the module docstring. ``keep_nans=False`` scores NaN
    estimate samples as 0 mV instead (the Challenge's other option)."""
    x_ref = np.asarray(reference, dtype=np.float64).copy()
    x_est = np.asarray(estimate, dtype=np.float64).copy()
    if x_ref.ndim != 1 or x_est.ndim != 1:
        raise ValueError(f"snr_db takes 1-D signals, got {x_ref.shape} and {x_est.shape}")
    n = max(x_ref.size, x_est.size)
    x_ref = np.concatenate([x_ref, np.full(n - x_ref.size, np.nan)])
    x_est = np.concatenate([x_est, np.full(n - x_est.size, np.nan)])
    fin_ref, fin_est = np.isfinite(x_ref), np.isfinite(x_est)
    if keep_nans:
        both = fin_ref & fin_est
    else:
        x_est[~fin_est] = 0.0
        both = fin_ref
    if not both.any():
        return float("nan")
    ref, est = x_ref[both], x_est[both]
    p_signal = float(np.mean(ref**2))
    p_noise = float(np.mean((ref - est) ** 2))
    if p_signal > 0 and p_noise > 0:
        snr = 10.0 * np.log10(p_signal / p_noise)
    elif p_noise == 0:
        snr = float("inf")
    else:
        snr = float("nan")
    if keep_nans:
        snr *= both.sum() / fin_ref.sum()
    return float(snr)


def challenge_snr(
    reference: np.ndarray,
    estimate: np.ndarray,
    fs: float,
    *,
    shift: bool = True,
    max_shift_s: float = CHALLENGE_MAX_SHIFT_S,
    max_shift_mv: float = CHALLENGE_MAX_SHIFT_MV,
    num_quant_levels: int = CHALLENGE_QUANT_LEVELS,
    dtype: type = np.float64,
) -> np.ndarray:
    """Per-lead Challenge SNR (dB) of ``estimate`` against ``reference``, both (leads, T) in mV on the same
    leads and rate (NaN in the reference: not shown, not scored). ``shift=False`` is the Challenge's
    ``--no_shift``; ``dtype`` as in ``align_signals``. Returns (leads,) float64 (NaN for a lead with nothing
    to score)."""
    ref = np.atleast_2d(np.asarray(reference, dtype=np.float64))
    est = np.atleast_2d(np.asarray(estimate, dtype=np.float64))
    if ref.shape[0] != est.shape[0]:
        raise ValueError(f"reference has {ref.shape[0]} leads, estimate {est.shape[0]}")
    max_t = round(max_shift_s * fs)
    out = np.full(ref.shape[0], np.nan)
    for j in range(ref.shape[0]):
        x = est[j]
        if shift:
            shifted, dt, dv = align_signals(ref[j], est[j], num_quant_levels, dtype=dtype)
            if abs(dt) <= max_t and abs(dv) <= max_shift_mv:
                x = shifted
        out[j] = snr_db(ref[j], x)
    return out


def summarize_snr(per_record: np.ndarray, leads: Sequence[str]) -> dict:
    """Mean and median per lead and overall of a (records, leads) SNR table, as the Challenge averages
    (``nanmean`` over (record, lead) pairs); ``nan_leads`` counts the pairs left out (NaN)."""
    table = np.asarray(per_record, dtype=np.float64).reshape(-1, len(leads))

    def stats(v: np.ndarray) -> dict:
        finite = v[~np.isnan(v)]
        return {
            "mean_db": float(np.mean(finite)) if finite.size else float("nan"),
            "median_db": float(np.median(finite)) if finite.size else float("nan"),
            "n": int(finite.size),
            "nan_leads": int(v.size - finite.size),
        }

    return {"overall": stats(table.ravel()), "per_lead": {lead: stats(table[:, k]) for k, lead in enumerate(leads)}}
