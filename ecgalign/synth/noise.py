"""Recording noise at the electrodes: baseline wander, powerline, EMG and electrode motion, at a set SNR.

The four kinds are those of the MIT-BIH Noise Stress Test Database (Moody, Muldrow & Mark, Computers in
Cardiology 1984: baseline wander, muscle artefact, electrode motion) plus mains interference. Noise is made
per electrode (RA, LA, LL, V1-V6) and turned into I, II and V1-V6 the way an electrocardiograph does
(I = LA - RA, II = LL - RA, Vi = Vi - Wilson's central terminal), so derived limb leads stay exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

N_ELECTRODES = 9  # RA, LA, LL, V1..V6


@dataclass
class NoiseConfig:
    """snr_db: range the per-record SNR (dB, over I, II, V1-V6) is drawn from. line_hz: mains frequency
    (50 or 60), or None to draw one per record. motion_probability: chance a record has electrode-motion
    artefacts. Relative weights of the noise kinds are drawn per record. floor_mv: range of the rms (mV) of
    the independent electrode noise, part of the noise the SNR counts."""

    snr_db: tuple[float, float] = (16.0, 34.0)
    line_hz: float | None = None
    motion_probability: float = 0.25
    floor_mv: tuple[float, float] = (0.006, 0.016)

    def __post_init__(self) -> None:
        lo, hi = (float(v) for v in self.snr_db)
        if not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi):
            raise ValueError(f"NoiseConfig.snr_db must be a finite (low, high) range, got {self.snr_db}")
        self.snr_db = (lo, hi)
        if self.line_hz not in (None, 50, 60, 50.0, 60.0):
            raise ValueError(f"NoiseConfig.line_hz must be 50, 60 or None, got {self.line_hz}")
        lo, hi = (float(v) for v in self.floor_mv)
        if not (0.0 <= lo <= hi and np.isfinite(hi)):
            raise ValueError(f"NoiseConfig.floor_mv must be a finite (low, high) range >= 0, got {self.floor_mv}")
        self.floor_mv = (lo, hi)
        if not 0.0 <= self.motion_probability <= 1.0:
            raise ValueError(
                f"NoiseConfig.motion_probability must be in [0, 1], got {self.motion_probability}"
            )


def electrodes_to_leads(e: np.ndarray) -> np.ndarray:
    """(9, T) electrode potentials -> (8, T) leads I, II, V1..V6."""
    ra, la, ll = e[0], e[1], e[2]
    wct = (ra + la + ll) / 3.0
    return np.vstack([la - ra, ll - ra, e[3:] - wct])


@lru_cache(maxsize=8)
def _emg_filter(fs: float) -> np.ndarray:
    high = min(150.0, 0.45 * fs)
    from scipy.signal import butter  # scipy.signal takes a second to import: only when noise is made

    return butter(2, [min(15.0, 0.5 * high), high], btype="bandpass", fs=fs, output="sos").astype(np.float32)


def _power(x: np.ndarray) -> float:
    """Mean square, floored so an all-zero part cannot divide by zero."""
    flat = x.ravel()
    return max(float(np.einsum("i,i->", flat, flat)) / flat.size, 1e-24)  # einsum: no BLAS threads


def baseline_wander(
    rng: np.random.Generator, n: int, fs: float, resp_hz: float, resp_phase: float
) -> np.ndarray:
    """(9, n): respiration-locked sway plus slow drift (three 0.02-0.3 Hz sinusoids) mixed per electrode.

    Each electrode sees its own amplitude and phase of every source (a sin/cos pair). The sources are below
    1 Hz, so they are computed about every 20 ms and interpolated linearly."""
    step = max(1, round(0.02 * fs))
    coarse = np.arange(n // step + 2) * (step / fs)
    freqs = np.r_[resp_hz, rng.uniform(0.02, 0.3, size=3)]
    arg = 2 * np.pi * freqs[:, None] * coarse[None, :] + np.r_[resp_phase, 0.0, 0.0, 0.0][:, None]
    basis = np.vstack([np.sin(arg), np.cos(arg)])  # (8, C)
    amp = np.c_[rng.uniform(0.2, 1.0, size=(N_ELECTRODES, 1)), rng.uniform(0.2, 1.0, size=(N_ELECTRODES, 3))]
    phase = rng.uniform(0, 2 * np.pi, size=(N_ELECTRODES, 4))
    phase[:, 0] = rng.normal(0.0, 0.3, size=N_ELECTRODES)  # breathing moves all electrodes nearly together
    mix = np.hstack(
        [amp * np.cos(phase), amp * np.sin(phase)]
    )  # a sin(x + p) = a cos p sin x + a sin p cos x
    c = np.einsum("ek,kc->ec", mix, basis).astype(np.float32)  # (9, C); einsum: no BLAS threads
    frac = (np.arange(step) / step).astype(np.float32)
    fine = c[:, :-1, None] + (c[:, 1:] - c[:, :-1])[:, :, None] * frac  # (9, C - 1, step)
    return fine.reshape(N_ELECTRODES, -1)[:, :n]


def emg(rng: np.random.Generator, n: int, fs: float) -> np.ndarray:
    """(9, T) band-limited muscle noise, louder at the limb electrodes, with slow bursts.

    Uniform white noise is used as the source: after the band-pass it is Gaussian for all practical purposes
    (central limit theorem) and it is several times cheaper to draw."""
    white = rng.random(size=(N_ELECTRODES, n), dtype=np.float32) - np.float32(0.5)
    from scipy.signal import sosfilt

    x = sosfilt(_emg_filter(float(fs)), white, axis=-1)  # float32 throughout
    gain = np.r_[rng.uniform(0.6, 1.2, size=3), rng.uniform(0.2, 0.6, size=6)].astype(np.float32)
    t = np.arange(n, dtype=np.float32) / np.float32(fs)
    burst = (
        1.0
        + 0.8
        * np.sin(np.float32(2 * np.pi * rng.uniform(0.05, 0.4)) * t + np.float32(rng.uniform(0, 2 * np.pi)))
        ** 2
    )
    x *= gain[:, None]
    x *= burst
    return x


def powerline(rng: np.random.Generator, t: np.ndarray, line_hz: float) -> np.ndarray:
    """(9, T) mains pickup: one phase, electrode-specific amplitude, a little third harmonic."""
    ph = rng.uniform(0, 2 * np.pi)
    a = rng.uniform(0.2, 1.0, size=(N_ELECTRODES, 1))
    wave = np.sin(2 * np.pi * line_hz * t + ph) + 0.15 * np.sin(2 * np.pi * 3 * line_hz * t + 3 * ph)
    return (a * wave).astype(np.float32)


def electrode_motion(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    """(9, T): one to three transients at random electrodes (a step that decays, with a damped swing)."""
    out = np.zeros((N_ELECTRODES, t.size), dtype=np.float32)
    for _ in range(int(rng.integers(1, 4))):
        e = int(rng.integers(0, N_ELECTRODES))
        t0 = rng.uniform(t[0], t[-1])
        tau = rng.uniform(0.15, 0.8)
        dt = t - t0
        after = dt >= 0
        shape = np.exp(-dt[after] / tau) * (1.0 + 0.6 * np.sin(2 * np.pi * rng.uniform(1.0, 4.0) * dt[after]))
        out[e, after] += rng.choice([-1.0, 1.0]) * shape
    return out


def electrode_floor(rng: np.random.Generator, n: int, fs: float, rms_mv: float) -> np.ndarray:
    """(9, n) independent broadband noise at every electrode (electrode-skin interface and amplifier), about
    0-50 Hz: white noise drawn every 10 ms and interpolated linearly. Unlike baseline wander and EMG it is as
    strong at the chest electrodes as at the limbs, so it fills all 8 dimensions of the independent leads
    (real PTB-XL keeps about 0.02-0.07 % of their variance in each of the smallest 3 principal components)."""
    step = max(1, round(0.01 * fs))
    coarse = rng.standard_normal(size=(N_ELECTRODES, n // step + 2)).astype(np.float32)
    frac = (np.arange(step) / step).astype(np.float32)
    fine = coarse[:, :-1, None] + (coarse[:, 1:] - coarse[:, :-1])[:, :, None] * frac
    # Linear interpolation of unit white noise has variance 2/3 on average: rescale to rms_mv.
    return fine.reshape(N_ELECTRODES, -1)[:, :n] * np.float32(rms_mv / np.sqrt(2.0 / 3.0))


def add_noise(
    rng: np.random.Generator,
    clean: np.ndarray,
    fs: float,
    cfg: NoiseConfig,
    resp_hz: float,
    resp_phase: float,
) -> tuple[np.ndarray, dict]:
    """Noisy copy of ``clean`` (8, T) leads I, II, V1-V6 and a JSON-able description (SNR, kinds, weights).

    Each kind is normalised to unit electrode power, mixed with per-record weights, then the mixture is scaled so
    that 10 log10(P_signal / P_noise) over the eight leads equals an SNR drawn from ``cfg.snr_db``; the
    independent electrode floor (``cfg.floor_mv``) keeps its own level within that noise power. Mains is
    left out when ``fs`` is not above twice the line frequency (it would alias).
    """
    n = clean.shape[1]
    t = np.arange(n) / fs
    line_hz = cfg.line_hz or float(rng.choice([50.0, 60.0]))
    parts = {
        "baseline": (baseline_wander(rng, n, fs, resp_hz, resp_phase), rng.uniform(0.4, 0.8)),
        "emg": (emg(rng, n, fs), rng.uniform(0.1, 0.4)),
    }
    if fs > 2 * line_hz:
        parts["powerline"] = (powerline(rng, t, line_hz), rng.uniform(0.0, 0.1))
    if rng.random() < cfg.motion_probability:
        parts["motion"] = (electrode_motion(rng, t), rng.uniform(0.1, 0.3))
    total = sum(w for _, w in parts.values())
    # Each kind is brought to unit power at the electrodes, mixed, and turned into leads once.
    mixed = np.zeros((N_ELECTRODES, n), dtype=np.float32)
    for e, w in parts.values():
        e *= np.float32(np.sqrt(w / total / _power(e)))
        mixed += e
    noise = electrodes_to_leads(mixed)
    snr = float(rng.uniform(*cfg.snr_db))
    target = _power(clean) / 10 ** (snr / 10)
    floor = float(rng.uniform(*cfg.floor_mv))
    floor_leads = electrodes_to_leads(electrode_floor(rng, n, fs, floor))
    # The floor has its own level; the other kinds fill the rest of the SNR's noise power (none if the floor
    # alone exceeds it), and a last scale makes the total meet the SNR exactly.
    noise *= np.float32(np.sqrt(max(target - _power(floor_leads), 0.0) / _power(noise)))
    noise += floor_leads
    noise *= np.float32(np.sqrt(target / _power(noise)))
    info = {
        "snr_db": round(snr, 2),
        "floor_mv": round(floor, 4),
        "kinds": sorted(parts),
        "weights": {k: round(w / total, 3) for k, (_, w) in parts.items()},
    }
    if "powerline" in parts:
        info["line_hz"] = line_hz
    return clean + noise, info
