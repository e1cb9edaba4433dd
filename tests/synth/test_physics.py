"""Lead physics: the derived limb leads obey Einthoven and Goldberger exactly, with and without noise."""

from __future__ import annotations

import numpy as np
import pytest

from ecgalign.data.leads import derive_limb_leads
from ecgalign.synth import NoiseConfig, SynthConfig, synthesize_record
from ecgalign.synth.noise import electrode_floor, electrodes_to_leads


@pytest.mark.parametrize("noise", [None, NoiseConfig(snr_db=(5.0, 10.0))])
@pytest.mark.parametrize("fs", [500.0, 100.0])
def test_einthoven_and_goldberger_hold_exactly(noise, fs):
    cfg = SynthConfig(noise=noise)
    for index in range(8):
        rec = synthesize_record(index, 2, fs=fs, config=cfg)
        i, ii = rec.lead("I").astype(np.float64), rec.lead("II").astype(np.float64)
        for name, derived in zip(("III", "aVR", "aVL", "aVF"), derive_limb_leads(i, ii)):
            np.testing.assert_allclose(rec.lead(name), derived, atol=1e-5, err_msg=name)


def test_noise_reaches_the_requested_snr():
    lo, hi = 8.0, 9.0
    clean = synthesize_record(3, 0, config=SynthConfig(noise=None))
    noisy = synthesize_record(3, 0, config=SynthConfig(noise=NoiseConfig(snr_db=(lo, hi))))
    assert clean.extra["snr_db"] is None and lo <= noisy.extra["snr_db"] <= hi
    independent = [0, 1, 6, 7, 8, 9, 10, 11]  # I, II, V1-V6
    s, x = clean.signal[independent].astype(float), noisy.signal[independent].astype(float)
    measured = 10 * np.log10(np.mean(s**2) / np.mean((x - s) ** 2))
    assert abs(measured - noisy.extra["snr_db"]) < 0.05


def _line_power(rec, hz: float) -> float:
    spec = np.abs(np.fft.rfft(rec.lead("I") - rec.lead("I").mean())) ** 2
    f = np.fft.rfftfreq(rec.n_samples, 1 / rec.fs)
    return float(spec[np.abs(f - hz) < 0.3].sum() / spec.sum())


def test_powerline_only_where_it_does_not_alias():
    cfg = SynthConfig(noise=NoiseConfig(line_hz=50, snr_db=(10.0, 10.0)))
    for index in range(6):
        rec = synthesize_record(index, 0, fs=100, config=cfg)
        assert "powerline" not in rec.extra["noise"]["kinds"]
    hi = [synthesize_record(i, 0, fs=500, config=cfg) for i in range(6)]
    assert all("powerline" in r.extra["noise"]["kinds"] for r in hi)
    assert max(_line_power(r, 50.0) for r in hi) > 1e-3


def test_electrode_floor_fills_every_dimension_of_the_leads():
    """The independent electrode noise reaches all 8 independent leads (chest as much as limbs), so the smallest
    principal component of the noise is not empty, and its level follows floor_mv."""
    rng = np.random.default_rng(0)
    e = electrode_floor(rng, 5000, 500.0, 0.01)
    assert e.shape == (9, 5000) and abs(float(e.std()) - 0.01) < 0.001
    leads = electrodes_to_leads(e)  # (8, T)
    ev = np.linalg.eigvalsh(np.cov(leads))
    assert ev[0] / ev.sum() > 0.02  # a pure dipole (or limb-only noise) leaves ~0 here
    with pytest.raises(ValueError, match="floor_mv"):
        NoiseConfig(floor_mv=(0.02, 0.01))


def test_noise_keeps_the_floor_within_the_snr():
    cfg = SynthConfig(noise=NoiseConfig(snr_db=(30.0, 30.0), floor_mv=(0.005, 0.005)))
    clean = synthesize_record(1, 0, config=SynthConfig(noise=None))
    noisy = synthesize_record(1, 0, config=cfg)
    assert noisy.extra["noise"]["floor_mv"] == 0.005
    independent = [0, 1, 6, 7, 8, 9, 10, 11]
    s, x = clean.signal[independent].astype(float), noisy.signal[independent].astype(float)
    assert abs(10 * np.log10(np.mean(s**2) / np.mean((x - s) ** 2)) - 30.0) < 0.05
