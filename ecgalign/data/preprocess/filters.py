"""Resampling and filters for ECG signals (..., T), numpy/scipy; every function returns a new array.

All filters are zero-phase (forward-backward), so waveform timing (QRS onset, ST segment) is not shifted.
Float64 input stays float64; any other input comes back as float32. NaN/Inf must be repaired first
(``repair_nonfinite``): a filter would smear one missing sample over the whole lead, so they raise instead.
"""

from __future__ import annotations

import functools
from fractions import Fraction

import numpy as np
import pandas as pd
from scipy import signal as sps

from ecgalign.data.errors import InputError
from ecgalign.data.preprocess._checks import (
    as_float_signal,
    choice,
    exact_rate,
    positive_int,
    positive_number,
)

BASELINE_METHODS: tuple[str, ...] = ("butter", "median")
# Largest up/down factor resample accepts: beyond it the polyphase filter gets huge (rates like 1/3 Hz).
_MAX_RATE_FACTOR = 10_000


# ------------------------------------------------------------------------------------------ resampling
@functools.lru_cache(maxsize=32)
def _antialias_fir(up: int, down: int) -> np.ndarray:
    """resample_poly's default low-pass (Kaiser beta 5, 10 * max(up, down) taps each side), built once, with
    each of its ``up`` polyphase branches scaled to unit DC gain: the default's branches differ by up to
    0.07 %, which turns a constant (a baseline offset) into a periodic ripple when upsampling."""
    max_rate = max(up, down)
    h = sps.firwin(2 * 10 * max_rate + 1, 1.0 / max_rate, window=("kaiser", 5.0))
    for phase in range(up):
        h[phase::up] /= up * h[phase::up].sum()  # resample_poly multiplies by up again
    h.setflags(write=False)
    return h


def resample(signal: np.ndarray, fs_in: float, fs_out: float) -> np.ndarray:
    """Polyphase resampling of ``signal`` (..., T) from ``fs_in`` to ``fs_out`` Hz along the last axis.

    The up/down factors are the exact ratio of the rates as written (500 -> 100 is 1/5, 257 -> 100 is
    100/257, 62.5 -> 250 is 4/1); the output has ``round(T * fs_out / fs_in)`` samples. The edges are
    extended with the end values (``padtype="edge"``), so a baseline offset does not ring there, and a
    constant stays exactly constant. Same rate: a copy.
    NaN/Inf raise ValueError: repair them first with ``repair_nonfinite``.
    """
    x = as_float_signal(signal)  # (..., T)
    ratio = exact_rate(fs_out, "fs_out") / exact_rate(fs_in, "fs_in")
    up, down = ratio.numerator, ratio.denominator
    if max(up, down) > _MAX_RATE_FACTOR:
        raise InputError(
            f"resampling {fs_in} -> {fs_out} Hz needs up/down factors {up}/{down}; "
            f"factors above {_MAX_RATE_FACTOR} are refused: round the rates"
        )
    n_in = x.shape[-1]
    n_out = round(Fraction(n_in) * ratio)
    if n_out < 1:
        raise InputError(f"resampling {n_in} samples from {fs_in} to {fs_out} Hz leaves no sample")
    if up == down:
        return x.copy()
    y = sps.resample_poly(x, up, down, axis=-1, window=_antialias_fir(up, down), padtype="edge")
    return np.ascontiguousarray(y[..., :n_out], dtype=x.dtype)  # resample_poly gives ceil(T*up/down)


# ------------------------------------------------------------------------------------------ IIR filters
@functools.lru_cache(maxsize=64)
def _butter_sos(order: int, low: float, high: float | None, fs: float) -> np.ndarray:
    if low > 0 and high is not None:
        sos = sps.butter(order, [low, high], btype="bandpass", fs=fs, output="sos")
    elif low > 0:
        sos = sps.butter(order, low, btype="highpass", fs=fs, output="sos")
    else:
        sos = sps.butter(order, high, btype="lowpass", fs=fs, output="sos")
    sos.setflags(write=False)
    return sos


def _sosfiltfilt(sos: np.ndarray, x: np.ndarray) -> np.ndarray:
    """scipy's sosfiltfilt with its default edge padding, shortened for signals shorter than the pad."""
    trailing_zeros = min(int((sos[:, 2] == 0).sum()), int((sos[:, 5] == 0).sum()))
    padlen = min(3 * (2 * len(sos) + 1 - trailing_zeros), x.shape[-1] - 1)
    return sps.sosfiltfilt(sos.copy(), x, axis=-1, padlen=padlen).astype(x.dtype, copy=False)


def bandpass(
    signal: np.ndarray, fs: float, low: float = 0.5, high: float | None = 40.0, order: int = 3
) -> np.ndarray:
    """Zero-phase Butterworth band-pass of ``signal`` (..., T): second-order sections run forward and back.

    Defaults are the PTB-XL benchmark filter of ../shared/BASELINES.md (order 3, 0.5-40 Hz, zero-phase;
    ``scipy.signal.butter(3, [0.5, 40], "bandpass")``, so the magnitude response is squared by the two
    passes). ``low=0`` drops the low edge (low-pass only). ``high=None`` or ``high >= fs/2`` drops the high
    edge (high-pass only): nothing above Nyquist is left to remove; with no low edge either, the result is
    a copy. Signals shorter than scipy's edge padding get a shorter padding instead of an error.
    """
    x = as_float_signal(signal)  # (..., T)
    fs = positive_number(fs, "fs")
    low = positive_number(low, "low", allow_zero=True)
    order = positive_int(order, "order")
    if high is not None:
        high = positive_number(high, "high")
        if low >= high:
            raise InputError(f"band-pass needs low < high, got low={low} high={high}")
        if high >= fs / 2:
            high = None
    if low >= fs / 2:
        raise InputError(f"band-pass low edge {low} Hz is at or above Nyquist ({fs / 2} Hz for fs={fs})")
    if low == 0 and high is None:
        return x.copy()
    return _sosfiltfilt(_butter_sos(order, low, high, fs), x)


def highpass(signal: np.ndarray, fs: float, cutoff: float = 0.5, order: int = 3) -> np.ndarray:
    """Zero-phase Butterworth high-pass of ``signal`` (..., T) at ``cutoff`` Hz (baseline wander removal)."""
    cutoff = positive_number(cutoff, "cutoff")
    return bandpass(signal, fs, low=cutoff, high=None, order=order)


def _rolling_median(x: np.ndarray, width: int) -> np.ndarray:
    """Centred running median over the last axis; windows shrink at the edges (pandas' skip-list median)."""
    rows = x.reshape(-1, x.shape[-1]).T  # (T, rows)
    med = pd.DataFrame(rows).rolling(width, center=True, min_periods=1).median().to_numpy()
    return med.T.reshape(x.shape)


def remove_baseline(signal: np.ndarray, fs: float, method: str = "butter", cutoff: float = 0.5) -> np.ndarray:
    """Remove baseline wander from ``signal`` (..., T).

    ``"butter"``: zero-phase Butterworth high-pass (order 3) at ``cutoff`` Hz.
    ``"median"``: subtract the baseline estimated by two cascaded median filters of 200 ms and 600 ms
    (de Chazal, O'Dwyer and Reilly, IEEE TBME 51(7), 2004: the first removes QRS complexes and P waves, the
    second T waves); ``cutoff`` is not used. Windows have an odd number of samples and shrink at the edges.
    The median method costs tens of ms per 10 s 12-lead record at 500 Hz; the Butterworth one about 1 ms.
    """
    method = choice(method, "method", BASELINE_METHODS)
    if method == "butter":
        return highpass(signal, fs, cutoff=cutoff)
    x = as_float_signal(signal)  # (..., T)
    fs = positive_number(fs, "fs")
    baseline = x.astype(np.float64)
    for seconds in (0.2, 0.6):
        baseline = _rolling_median(baseline, round(seconds * fs) // 2 * 2 + 1)
    return (x - baseline).astype(x.dtype, copy=False)


@functools.lru_cache(maxsize=16)
def _notch_ba(freq: float, quality: float, fs: float) -> tuple[np.ndarray, np.ndarray]:
    b, a = sps.iirnotch(freq, quality, fs=fs)
    b.setflags(write=False)
    a.setflags(write=False)
    return b, a


def notch(signal: np.ndarray, fs: float, freq: float = 50.0, quality: float = 30.0) -> np.ndarray:
    """Zero-phase powerline notch (``scipy.signal.iirnotch`` run forward and back) at ``freq`` Hz.

    ``quality`` is the notch's Q (centre / -3 dB bandwidth, 50 Hz / 30 = 1.7 Hz). A notch at or above
    Nyquist cannot be applied: ValueError (a record sampled at 100 Hz holds no 50 Hz hum to remove).
    """
    x = as_float_signal(signal)  # (..., T)
    fs = positive_number(fs, "fs")
    freq = positive_number(freq, "freq")
    quality = positive_number(quality, "quality")
    if freq >= fs / 2:
        raise InputError(f"notch at {freq} Hz needs a sampling rate above {2 * freq} Hz; got fs={fs} Hz")
    b, a = _notch_ba(freq, quality, fs)
    padlen = min(3 * max(len(a), len(b)), x.shape[-1] - 1)
    return sps.filtfilt(b, a, x, axis=-1, padlen=padlen).astype(x.dtype, copy=False)
