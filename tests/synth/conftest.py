"""Helpers for the synthetic-ECG tests: records by condition, and an independent delineator.

R peaks and P waves come from neurokit2. QRS onset/offset come from the summed absolute slope of all 12 leads
(the spatial-velocity idea of QRS detection) around neurokit's R peaks: neurokit2's own QRS onsets/offsets
(``ecg_delineate`` dwt/cwt) were tried and rejected, because on wide complexes they land in the P or T wave
(e.g. 300 ms for a 150 ms LBBB).
"""

from __future__ import annotations

import types
import warnings

import numpy as np
import pytest

from ecgalign.synth import SynthConfig, synthesize_record


def _records(code: str, n: int, seed: int = 5, noisy: bool = False):
    cfg = (
        SynthConfig(conditions=(code,), exclusive=True)
        if noisy
        else SynthConfig(conditions=(code,), exclusive=True, noise=None)
    )
    return [synthesize_record(i, seed, config=cfg) for i in range(n)]


def _r_peaks(rec) -> np.ndarray:
    """neurokit2 R peaks on the lead with the tallest upward deflection (its detector wants upright QRS)."""
    nk = pytest.importorskip("neurokit2")
    lead = int(np.argmax(rec.signal.max(axis=1) - np.median(rec.signal, axis=1)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        x = nk.ecg_clean(rec.signal[lead].astype(float), sampling_rate=rec.fs)
        return np.asarray(nk.ecg_peaks(x, sampling_rate=rec.fs)[1]["ECG_R_Peaks"])


def _rr_cv(rec) -> float:
    rr = np.diff(_r_peaks(rec)) / rec.fs
    return float(rr.std() / rr.mean())


def _heart_rate(rec) -> float:
    return float(60.0 / np.mean(np.diff(_r_peaks(rec)) / rec.fs))


def _qrs_bounds(rec, frac: float = 0.1) -> np.ndarray:
    """(beats, 2) QRS onset/offset samples: where the summed absolute slope of all 12 leads exceeds ``frac`` of
    its peak in a +-160 ms window around each R peak, above the slope level just outside that window."""
    fs = rec.fs
    v = np.abs(np.diff(rec.signal.astype(float), axis=1)).sum(axis=0) * fs
    k = max(1, int(0.008 * fs))
    v = np.convolve(v, np.ones(k) / k, mode="same")
    half, side = int(0.16 * fs), int(0.1 * fs)
    bounds = []
    for p in _r_peaks(rec):
        lo, hi = p - half, p + half
        if lo - side < 0 or hi + side > v.size:
            continue
        w = v[lo:hi]
        base = np.median(np.r_[v[lo - side : lo], v[hi : hi + side]])
        above = np.flatnonzero(w > base + frac * (w.max() - base))
        bounds.append((lo + above[0], lo + above[-1]))
    return np.array(bounds)


def _qrs_ms(rec) -> float:
    b = _qrs_bounds(rec)
    return float(np.median(b[:, 1] - b[:, 0]) / rec.fs * 1000)


def _p_wave(rec) -> tuple[float, float]:
    """neurokit2 "peak" delineation of lead II: (std over beats of the P-peak -> R-peak distance, median PR
    from its P onsets to the QRS onsets of _qrs_bounds), both in ms."""
    nk = pytest.importorskip("neurokit2")
    fs, r = rec.fs, _r_peaks(rec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        x = nk.ecg_clean(rec.signal[1].astype(float), sampling_rate=fs)
        waves, _ = nk.ecg_delineate(x, r, sampling_rate=fs, method="peak")
    peaks = np.flatnonzero(waves["ECG_P_Peaks"].to_numpy())
    onsets = np.flatnonzero(waves["ECG_P_Onsets"].to_numpy())
    p_to_r = []
    for p in r:
        c = peaks[(peaks < p - 0.06 * fs) & (peaks > p - 0.4 * fs)]
        p_to_r.append((p - c[-1]) / fs * 1000 if c.size else np.nan)
    pr = []
    for q_on, _ in _qrs_bounds(rec):
        c = onsets[(onsets < q_on) & (onsets > q_on - 0.4 * fs)]
        pr.append((q_on - c[-1]) / fs * 1000 if c.size else np.nan)
    return float(np.nanstd(p_to_r)), float(np.nanmedian(pr))


def _net_qrs_area(rec, lead: str) -> float:
    """Sum of the lead over every QRS window (mV * samples); clean records have a zero baseline."""
    x = rec.lead(lead).astype(float)
    return float(sum(x[a : b + 1].sum() for a, b in _qrs_bounds(rec)))


def _qrs_peak_to_peak(rec, lead: str) -> float:
    """Median over beats of the QRS peak-to-peak amplitude in ``lead`` (mV)."""
    x = rec.lead(lead).astype(float)
    return float(np.median([np.ptp(x[a : b + 1]) for a, b in _qrs_bounds(rec)]))


def _qrs_extreme(rec, lead: str, sign: int) -> float:
    """Median over beats of the largest positive (sign=1) or negative (sign=-1) QRS deflection (mV)."""
    x = rec.lead(lead).astype(float) * sign
    return float(np.median([max(x[a : b + 1].max(), 0.0) for a, b in _qrs_bounds(rec)]))


@pytest.fixture(scope="session")
def ecg():
    """The helpers above, for tests: ecg.records(code, n), ecg.r_peaks(rec), ecg.qrs_bounds(rec), ..."""
    return types.SimpleNamespace(
        records=_records,
        r_peaks=_r_peaks,
        rr_cv=_rr_cv,
        heart_rate=_heart_rate,
        qrs_bounds=_qrs_bounds,
        qrs_ms=_qrs_ms,
        p_wave=_p_wave,
        net_qrs_area=_net_qrs_area,
        qrs_peak_to_peak=_qrs_peak_to_peak,
        qrs_extreme=_qrs_extreme,
    )


@pytest.fixture(scope="session")
def population():
    """2,000 clean default records at 100 Hz (two worker processes), shared by the label, report and patient
    tests."""
    from ecgalign.synth import synthesize

    return list(synthesize(2000, 21, fs=100, config=SynthConfig(noise=None), workers=2))
