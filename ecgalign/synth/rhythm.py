"""Beat timing: sinus RR tachograms, atrial fibrillation and flutter, premature beats; atrial activity waves.

Sinus rhythm follows ECGSYN (McSharry et al., IEEE TBME 2003): the RR interval is modulated by a Mayer-wave
(LF, ~0.1 Hz) and a respiratory (HF, respiratory sinus arrhythmia) component. Beats are placed where the
integrated instantaneous heart rate crosses whole cycles, so the tachogram is a smooth function of time.
Atrial fibrillation has independent, irregularly irregular RR intervals (no periodicity) and fibrillatory
f-waves of drifting 4-9 Hz frequency; flutter has 250-350/min sawtooth waves conducted 2:1, 3:1, 4:1 or
variably. A PVC keeps the sinus schedule (full compensatory pause); a PAC resets the sinus node
(non-compensatory pause).
"""

from __future__ import annotations

import numpy as np

SINUS, PVC, PAC = 0, 1, 2
_GRID_DT = 0.01


def sinus_onsets(
    rng: np.random.Generator,
    hr: float,
    t0: float,
    t1: float,
    *,
    lf: float,
    hf: float,
    resp_hz: float,
    resp_phase: float,
) -> np.ndarray:
    """QRS onset times (s) in [t0, t1] for sinus rhythm at mean ``hr`` (bpm).

    lf, hf: relative RR modulation amplitudes of the LF (0.1 Hz band, three random sinusoids) and HF
    (respiratory) components.
    """
    t = np.arange(t0, t1 + 2.0, _GRID_DT)
    f_lf = rng.normal(0.1, 0.015, size=3)
    a_lf = rng.dirichlet(np.ones(3)) * lf
    ph = rng.uniform(0, 2 * np.pi, size=3)
    mod = (a_lf[:, None] * np.sin(2 * np.pi * f_lf[:, None] * t[None, :] + ph[:, None])).sum(axis=0)
    mod += hf * np.sin(2 * np.pi * resp_hz * t + resp_phase)
    rr = (60.0 / hr) * (1.0 + mod)  # (T,) instantaneous RR
    phase = np.cumsum(_GRID_DT / rr) + rng.uniform(0.0, 1.0)
    cycles = np.arange(np.ceil(phase[0]), np.floor(phase[-1]) + 1)
    onsets = np.interp(cycles, phase, t)
    return onsets[(onsets >= t0) & (onsets <= t1)]


def af_onsets(rng: np.random.Generator, hr: float, t0: float, t1: float, cv: float) -> np.ndarray:
    """Irregularly irregular ventricular response: independent log-normal RR with coefficient of variation
    ``cv``, floored by a 0.3 s refractory period."""
    mean_rr = 60.0 / hr
    n = int(np.ceil((t1 - t0) / (0.5 * mean_rr))) + 4
    s = np.sqrt(np.log1p(cv**2))
    rr = np.maximum(mean_rr * np.exp(rng.normal(-0.5 * s * s, s, size=n)), 0.3)
    onsets = t0 + rng.uniform(0, mean_rr) + np.concatenate([[0.0], np.cumsum(rr)])
    return onsets[onsets <= t1]


def flutter_onsets(
    rng: np.random.Generator,
    atrial_rate: float,
    phase: float,
    conduction: str,
    t0: float,
    t1: float,
    av_delay: float,
) -> np.ndarray:
    """QRS onsets conducted from flutter waves at ``atrial_rate`` (/min): every 2nd/3rd/4th wave, or a
    variable mix ('variable')."""
    cycle = 60.0 / atrial_rate
    n_waves = int(np.ceil((t1 - t0) / cycle)) + 8
    if conduction == "variable":
        steps = rng.choice([2, 3, 4], size=n_waves, p=[0.4, 0.2, 0.4])
    else:
        steps = np.full(n_waves, int(conduction.split(":")[0]))
    k = np.cumsum(steps) + rng.integers(0, steps[0])
    onsets = t0 - 4 * cycle + (k + phase) * cycle + av_delay
    return onsets[(onsets >= t0) & (onsets <= t1)]


def insert_ectopics(
    rng: np.random.Generator,
    onsets: np.ndarray,
    n_pvc: int,
    n_pac: int,
    window: tuple[float, float],
    sinus_reset: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Replace beats inside ``window`` by premature beats: (onsets, types) with types SINUS / PVC / PAC.

    PVC at 55-70 % of the RR; the sinus schedule continues, so coupling + pause = 2 RR (compensatory).
    PAC at 65-80 % of the RR; the sinus node resets, so later beats move earlier (pause < 2 RR). With
    ``sinus_reset`` False (AF), PVCs simply fall early. Premature beats are never adjacent.
    """
    onsets = onsets.copy()
    types = np.zeros(onsets.size, dtype=np.int64)
    inside = np.flatnonzero((onsets > window[0]) & (onsets < window[1]))
    inside = inside[(inside >= 1) & (inside < onsets.size - 1)]
    kinds = [PVC] * n_pvc + [PAC] * n_pac
    rng.shuffle(kinds)
    chosen: list[int] = []
    for cand in rng.permutation(inside):
        if len(chosen) == len(kinds):
            break
        if all(abs(int(cand) - c) > 1 for c in chosen):
            chosen.append(int(cand))
    for j, kind in zip(sorted(chosen), kinds):
        rr = onsets[j] - onsets[j - 1]
        if kind == PVC:
            onsets[j] = onsets[j - 1] + rr * rng.uniform(0.55, 0.70)
        else:
            early = onsets[j - 1] + rr * rng.uniform(0.65, 0.80)
            shift = onsets[j] - early - rr * rng.uniform(0.05, 0.12) if sinus_reset else 0.0
            onsets[j] = early
            onsets[j + 1 :] -= shift
        types[j] = kind
    return onsets, types


def fibrillatory_wave(rng: np.random.Generator, n: int, fs: float) -> np.ndarray:
    """f-waves of about unit peak amplitude: frequency wandering in 3.5-10 Hz within a second, amplitude varying
    by about +-50 %, irregular second and third harmonics (rounded to sawtooth-like), so that no two waves look
    alike (coarse or fine by the caller's amplitude)."""
    t = np.arange(n) / fs
    f0 = rng.uniform(4.5, 8.0)
    freq = np.clip(f0 + 2.0 * _slow_noise(rng, t, 1.2, 6), 3.5, 10.0)
    phase = 2 * np.pi * np.cumsum(freq) / fs + rng.uniform(0, 2 * np.pi)
    envelope = np.clip(1.0 + 0.5 * _slow_noise(rng, t, 1.5, 5), 0.2, 1.8)
    a2, a3 = rng.uniform(0.2, 0.6), rng.uniform(0.0, 0.3)  # harmonics: from rounded to sawtooth-like waves
    shape = (
        np.sin(phase)
        + a2 * np.sin(2 * phase + 2.0 * _slow_noise(rng, t, 0.8, 3))
        + a3 * np.sin(3 * phase + 2.0 * _slow_noise(rng, t, 0.8, 3))
    )
    return envelope * shape / (1.0 + a2 + a3) * 1.4


def flutter_wave(n: int, fs: float, atrial_rate: float, phase: float, t0: float) -> np.ndarray:
    """Unit sawtooth at ``atrial_rate`` (/min): slow ramp then quick return, phase-locked to flutter_onsets."""
    t = np.arange(n) / fs
    cycle = 60.0 / atrial_rate
    u = ((t - (t0 - 4 * cycle)) / cycle - phase) % 1.0  # position within the flutter cycle
    rise = 0.8
    return np.where(u < rise, -1.0 + 2.0 * u / rise, 1.0 - 2.0 * (u - rise) / (1.0 - rise))


def _slow_noise(rng: np.random.Generator, t: np.ndarray, max_hz: float, k: int) -> np.ndarray:
    """A smooth random signal in about [-1, 1]: k sinusoids below ``max_hz`` with random phases."""
    f = rng.uniform(0.02, max_hz, size=k)
    ph = rng.uniform(0, 2 * np.pi, size=k)
    return np.sin(2 * np.pi * f[:, None] * t[None, :] + ph[:, None]).sum(axis=0) / np.sqrt(k)
