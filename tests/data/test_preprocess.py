"""Preprocessing: resampling, filters, NaN repair, normalisation, lead order, crop/pad, the Preprocess pipeline."""

from __future__ import annotations

import dataclasses
import json
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ecgalign.data.leads import DERIVED_LIMB_LEADS
from ecgalign.data.preprocess import (
    Preprocess,
    bandpass,
    crop_or_pad,
    highpass,
    normalize,
    notch,
    remove_baseline,
    reorder_leads,
    repair_nonfinite,
    resample,
)
from ecgalign.data.preprocess.batch import crop_or_pad_torch, normalize_torch
from ecgalign.data.record import LEADS_12, ECGRecord, RecordError

RATE_PAIRS = [(500, 100), (400, 500), (257, 100), (1000, 500), (100, 500), (360, 250), (62.5, 250)]


def tone(freq: float, fs: float, seconds: float, amp: float = 1.0, phase: float = 0.0) -> np.ndarray:
    t = np.arange(round(seconds * fs)) / fs
    return (amp * np.sin(2 * np.pi * freq * t + phase)).astype(np.float32)


def fft_peak(x: np.ndarray, fs: float) -> tuple[float, float]:
    """(frequency, amplitude) of the largest spectral line of a 1-D signal holding whole periods."""
    spectrum = np.fft.rfft(x - x.mean())
    k = int(np.argmax(np.abs(spectrum)))
    return float(np.fft.rfftfreq(x.size, 1 / fs)[k]), float(2 * np.abs(spectrum[k]) / x.size)


def gain_db(before: np.ndarray, after: np.ndarray, fs: float, trim_s: float) -> float:
    """Power ratio in dB over the signal's middle (``trim_s`` seconds dropped at both ends)."""
    k = int(trim_s * fs)
    return float(10 * np.log10(np.mean(after[k:-k].astype(float) ** 2) / np.mean(before[k:-k].astype(float) ** 2)))


def ecg_like(fs: float, seconds: float, rate_hz: float = 1.2) -> np.ndarray:
    """A train of narrow Gaussian 'QRS' pulses (1 mV, 20 ms wide) at ``rate_hz`` beats per second."""
    t = np.arange(round(seconds * fs)) / fs
    beats = np.arange(0.4, seconds, 1 / rate_hz)
    return np.exp(-0.5 * ((t[:, None] - beats[None]) / 0.02) ** 2).sum(axis=1).astype(np.float32)


def einthoven_12(n: int, rng: np.random.Generator) -> np.ndarray:
    """(12, n) float32 whose limb leads obey Einthoven/Goldberger exactly (values in multiples of 1/8)."""
    i, ii = (rng.integers(-64, 64, size=(2, n)) / 8).astype(np.float32)
    limb = [i, ii, ii - i, -(i + ii) / 2, i - ii / 2, ii - i / 2]
    chest = list(rng.normal(size=(6, n)).astype(np.float32))
    return np.stack(limb + chest)


def make_record(signal: np.ndarray, fs: float = 500.0, leads=LEADS_12, **kw) -> ECGRecord:
    return ECGRecord(signal=signal, fs=fs, leads=tuple(leads), record_id="rec1", dataset="test",
                     source="/data/rec1.hea", **kw)


# ------------------------------------------------------------------------------------------ resample
@pytest.mark.parametrize("fs_in,fs_out", RATE_PAIRS)
def test_resample_keeps_frequency_and_amplitude(fs_in, fs_out):
    x = np.stack([tone(5.0, fs_in, 4.0, amp=1.5, phase=0.3), tone(5.0, fs_in, 4.0, amp=0.5) + 0.7])  # (2, T)
    y = resample(x, fs_in, fs_out)
    assert y.dtype == np.float32 and y.shape == (2, round(4.0 * fs_out))
    for lead, amp in zip(y, (1.5, 0.5)):
        freq, measured = fft_peak(lead, fs_out)
        assert freq == pytest.approx(5.0)
        assert measured == pytest.approx(amp, rel=0.01)
    # sample by sample, away from the edges, the resampled tone is the tone sampled at fs_out
    expected = tone(5.0, fs_out, 4.0, amp=1.5, phase=0.3)
    k = int(0.5 * fs_out)
    np.testing.assert_allclose(y[0, k:-k], expected[k:-k], atol=0.01 * 1.5)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 3000), pair=st.sampled_from(RATE_PAIRS))
def test_resample_length_is_exact(n, pair):
    fs_in, fs_out = pair
    expected = round(Fraction(n) * Fraction(str(float(fs_out))) / Fraction(str(float(fs_in))))
    x = np.ones((3, n), dtype=np.float32)
    if expected == 0:
        with pytest.raises(ValueError, match="leaves no sample"):
            resample(x, fs_in, fs_out)
        return
    y = resample(x, fs_in, fs_out)
    assert y.shape == (3, expected)
    np.testing.assert_allclose(y, 1.0, atol=1e-5)  # a constant stays constant, edges included


def test_resample_same_rate_copies_and_validates():
    x = np.random.default_rng(0).normal(size=(2, 50)).astype(np.float32)
    y = resample(x, 500, 500.0)
    assert y is not x and np.array_equal(x, y)
    x[0, 3] = np.nan
    with pytest.raises(ValueError, match="repair_nonfinite"):
        resample(x, 500, 100)
    with pytest.raises(ValueError, match="fs_out"):
        resample(np.ones((2, 10)), 500, 0)
    with pytest.raises(ValueError, match="fs_in"):
        resample(np.ones((2, 10)), float("nan"), 100)
    with pytest.raises(ValueError, match="round the rates"):
        resample(np.ones((2, 10)), 1 / 3, 100)


# ------------------------------------------------------------------------------------------ filters
def test_bandpass_defaults_are_the_baselines_filter():
    import inspect

    params = inspect.signature(bandpass).parameters
    assert (params["low"].default, params["high"].default, params["order"].default) == (0.5, 40.0, 3)


@pytest.mark.parametrize("freq,expect", [(0.1, "cut"), (60.0, "cut"), (10.0, "keep")])
def test_bandpass_attenuation(freq, expect):
    fs = 500.0
    x = tone(freq, fs, 60.0, amp=1.0)[None]  # (1, T), 60 s so the 0.1 Hz drift has whole periods
    y = bandpass(x, fs)
    g = gain_db(x[0], y[0], fs, trim_s=10.0)
    if expect == "cut":
        assert g < -20.0, f"{freq} Hz only attenuated by {-g:.1f} dB"
    else:
        assert abs(g) < 1.0, f"{freq} Hz changed by {g:.2f} dB"


def test_bandpass_is_zero_phase():
    fs, n = 500.0, 5000
    t = np.arange(n)
    pulse = np.exp(-0.5 * ((t - 2500) / 10.0) ** 2).astype(np.float32)[None]  # symmetric, peak at 2500
    for filtered in (bandpass(pulse, fs), highpass(pulse, fs), notch(pulse, fs)):
        assert int(np.argmax(filtered[0])) == 2500


def test_bandpass_edges_and_short_signals():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 2000)).astype(np.float32)
    # high at or above Nyquist: high-pass only
    np.testing.assert_allclose(bandpass(x, 50.0, 0.5, 40.0), highpass(x, 50.0, 0.5), atol=1e-6)
    np.testing.assert_array_equal(bandpass(x, 50.0, 0.0, 40.0), x)  # nothing left to filter: a copy
    assert not np.allclose(bandpass(x, 500.0, 0.0, 40.0), x)  # low-pass only
    for n in (1, 2, 5, 20):  # shorter than scipy's default edge padding
        y = bandpass(rng.normal(size=(2, n)).astype(np.float32), 500.0)
        assert y.shape == (2, n) and np.isfinite(y).all()
    with pytest.raises(ValueError, match="low < high"):
        bandpass(x, 500.0, 40.0, 0.5)
    with pytest.raises(ValueError, match="Nyquist"):
        bandpass(x, 50.0, 30.0, None)
    with pytest.raises(ValueError, match="order"):
        bandpass(x, 500.0, order=0)


def test_notch_removes_powerline_only():
    fs = 500.0
    hum = tone(50.0, fs, 20.0)[None]
    assert gain_db(hum[0], notch(hum, fs)[0], fs, trim_s=3.0) < -20.0
    for freq in (10.0, 45.0, 55.0):  # Q = 30: the notch is 1.7 Hz wide, 5 Hz away is untouched
        keep = tone(freq, fs, 20.0)[None]
        assert abs(gain_db(keep[0], notch(keep, fs)[0], fs, trim_s=3.0)) < 1.0
    assert gain_db(hum[0], notch(tone(60.0, fs, 20.0)[None], fs, freq=60.0)[0], fs, 3.0) < -20.0
    with pytest.raises(ValueError, match="above 100.0 Hz"):
        notch(hum, 100.0, freq=50.0)


@pytest.mark.parametrize("method", ["median", "butter"])
def test_remove_baseline_reduces_drift_and_keeps_qrs(method):
    fs, seconds = 500.0, 20.0
    clean = ecg_like(fs, seconds)
    drift = tone(0.15, fs, seconds, amp=1.0) + 0.5  # 1 mV wander around a 0.5 mV offset
    y = remove_baseline((clean + drift)[None], fs, method=method)[0]
    k = int(2 * fs)
    residual_before = np.sqrt(np.mean((drift[k:-k]) ** 2))
    residual_after = np.sqrt(np.mean((y - clean)[k:-k] ** 2))
    assert residual_after < residual_before / 5
    peaks = np.flatnonzero(clean[k:-k] > 0.999) + k
    assert np.abs(y[peaks] - clean[peaks]).max() < 0.25  # QRS height survives


def test_remove_baseline_validates():
    with pytest.raises(ValueError, match="'butter', 'median'"):
        remove_baseline(np.zeros((1, 100)), 500.0, method="medain")


# ------------------------------------------------------------------------------------------ NaN repair
def test_repair_nonfinite_neighbour_average_edges_and_count():
    x = np.array([[np.nan, np.nan, 1.0, np.nan, 3.0, 4.0, np.nan, np.inf, np.nan, 10.0, -np.inf],
                  [0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8.5, 9.5, 10.5]], dtype=np.float32)
    before = x.copy()
    y, n = repair_nonfinite(x)
    assert n == 7
    assert np.array_equal(x, before, equal_nan=True)  # input untouched
    assert y[0, 3] == (y[0, 2] + y[0, 4]) / 2 == 2.0  # isolated gap: mean of neighbours
    np.testing.assert_allclose(y[0, 6:9], [5.5, 7.0, 8.5])  # longer gap: straight line 4 -> 10
    assert y[0, 0] == y[0, 1] == 1.0 and y[0, 10] == 10.0  # edges: nearest finite value
    np.testing.assert_array_equal(y[1], x[1])
    assert y.dtype == np.float32


def test_repair_nonfinite_clean_and_dead_leads():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    y, n = repair_nonfinite(x)
    assert n == 0 and y is not x and np.array_equal(x, y)
    x[2] = np.nan
    with pytest.raises(ValueError, match="lead 2 has no finite sample"):
        repair_nonfinite(x)


# ------------------------------------------------------------------------------------------ normalisation
finite_signals = hnp.arrays(
    np.float32,
    hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=40),
    elements=st.floats(allow_nan=False, allow_infinity=False, width=32),
)


@settings(max_examples=150, deadline=None)
@given(x=finite_signals, method=st.sampled_from(["zscore", "minmax", "robust", "none"]))
def test_normalize_output_is_finite(x, method):
    y = normalize(x, method)
    assert y.shape == x.shape and y.dtype == np.float32 and np.isfinite(y).all()
    if method == "minmax":
        assert y.min() >= 0 and y.max() <= 1 + 1e-6


@settings(max_examples=150, deadline=None)
@given(x=finite_signals)
def test_normalize_zscore_mean_zero_std_one(x):
    y = normalize(x, "zscore").astype(np.float64)
    std = x.astype(np.float64).std(axis=-1)
    moving = std > 1e-5
    np.testing.assert_allclose(y[moving].mean(axis=-1), 0.0, atol=1e-4)
    np.testing.assert_allclose(y[moving].std(axis=-1), 1.0, rtol=1e-4)
    np.testing.assert_allclose(y[std == 0], 0.0)  # flat lead: zeros, not NaN


def test_normalize_methods_by_hand():
    x = np.array([[1.0, 2.0, 3.0, 4.0, 100.0], [5.0, 5.0, 5.0, 5.0, 5.0]], dtype=np.float32)
    np.testing.assert_allclose(normalize(x, "minmax")[0], (x[0] - 1) / 99, rtol=1e-6)
    np.testing.assert_allclose(normalize(x, "robust")[0], (x[0] - 3) / 2, rtol=1e-6)  # IQR 4 - 2
    np.testing.assert_allclose(normalize(x, "zscore")[0], (x[0] - x[0].mean()) / x[0].std(), rtol=1e-5)
    for method in ("zscore", "minmax", "robust"):
        np.testing.assert_array_equal(normalize(x, method)[1], 0.0)
    spiky = np.zeros((1, 40), dtype=np.float32)
    spiky[0, 7] = 2.0  # IQR 0: robust falls back to the standard deviation instead of dividing by eps
    np.testing.assert_allclose(normalize(spiky, "robust"), spiky / spiky.std(), rtol=1e-6)
    with pytest.raises(ValueError, match="'zscore', 'minmax', 'robust', 'none'"):
        normalize(x, "z-score")
    with pytest.raises(ValueError, match="repair_nonfinite"):
        normalize(np.array([[1.0, np.nan]]), "zscore")


# ------------------------------------------------------------------------------------------ lead order
@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 64), keep=st.permutations(["I", "II"] + list(LEADS_12[6:])))
def test_reorder_derive_reproduces_limb_leads_exactly(seed, n, keep):
    full = einthoven_12(n, np.random.default_rng(seed))
    present = list(keep)  # I, II and the chest leads in any order; III, aVR, aVL, aVF missing
    partial = full[[LEADS_12.index(name) for name in present]]
    out, filled = reorder_leads(partial, present, LEADS_12, missing="derive")
    assert filled == DERIVED_LIMB_LEADS
    np.testing.assert_array_equal(out, full)


def test_reorder_select_zero_and_errors():
    x = np.arange(12 * 3, dtype=np.float32).reshape(12, 3)
    out, filled = reorder_leads(x, LEADS_12, ["V6", "avr", "I"])
    np.testing.assert_array_equal(out, x[[11, 3, 0]])
    assert filled == ()
    out, filled = reorder_leads(x[:2], ["I", "II"], ["II", "V1", "I"], missing="zero")
    np.testing.assert_array_equal(out, [x[1], np.zeros(3), x[0]])
    assert filled == ("V1",)
    with pytest.raises(ValueError, match="V1 not in the signal"):
        reorder_leads(x[:2], ["I", "II"], ["I", "V1"])
    with pytest.raises(ValueError, match="cannot derive lead\\(s\\) V1"):
        reorder_leads(x[:2], ["I", "II"], ["I", "V1"], missing="derive")
    with pytest.raises(ValueError, match="I and II are both needed"):
        reorder_leads(x[:1], ["I"], ["I", "III"], missing="derive")
    with pytest.raises(ValueError, match="2 leads but leads_in names 3"):
        reorder_leads(x[:2], ["I", "II", "III"], ["I"])
    with pytest.raises(ValueError, match="more than once"):
        reorder_leads(x[:2], ["I", "I"], ["I"])
    with pytest.raises(ValueError, match="unknown ECG lead name"):
        reorder_leads(x[:2], ["I", "X7"], ["I"])


# ------------------------------------------------------------------------------------------ crop / pad
@settings(max_examples=200, deadline=None)
@given(n_in=st.integers(1, 300), n_out=st.integers(1, 300), mode=st.sampled_from(["start", "center", "random"]),
       seed=st.integers(0, 2**16))
def test_crop_or_pad_always_returns_n_samples(n_in, n_out, mode, seed):
    x = np.random.default_rng(seed).normal(size=(3, n_in)).astype(np.float32)
    y, info = crop_or_pad(x, n_out, mode=mode, rng=seed, pad_value=-7.0)
    assert y.shape == (3, n_out) and info.original_samples == n_in
    region = info.signal_region
    np.testing.assert_array_equal(y[:, region], x[:, info.offset : info.offset + info.kept])
    assert info.pad_before + info.kept + info.pad_after == n_out
    padding = np.ones(n_out, bool)
    padding[region] = False
    assert (y[:, padding] == -7.0).all()
    if n_in >= n_out:
        assert info.pad_before == info.pad_after == 0 and 0 <= info.offset <= n_in - n_out
        assert info.offset == {"start": 0, "center": (n_in - n_out) // 2}.get(mode, info.offset)
    else:
        assert info.pad_before == ((n_out - n_in) // 2 if mode == "center" else 0)


def test_crop_or_pad_random_is_seeded_and_validates():
    x = np.arange(1000, dtype=np.float32)[None]
    offsets = {crop_or_pad(x, 10, "random", rng=np.random.default_rng(s))[1].offset for s in range(20)}
    assert len(offsets) > 10
    a, b = crop_or_pad(x, 10, "random", rng=3), crop_or_pad(x, 10, "random", rng=3)
    assert a[1] == b[1] and np.array_equal(a[0], b[0])
    with pytest.raises(ValueError, match="n_samples"):
        crop_or_pad(x, 0)
    with pytest.raises(ValueError, match="n_samples"):
        crop_or_pad(x, 10.5)
    with pytest.raises(ValueError, match="'start', 'center', 'random'"):
        crop_or_pad(x, 10, mode="middle")


# ------------------------------------------------------------------------------------------ input safety
@pytest.mark.parametrize("call", [
    lambda x: resample(x, 500, 100), lambda x: bandpass(x, 500), lambda x: highpass(x, 500),
    lambda x: notch(x, 500), lambda x: remove_baseline(x, 500, "median"), lambda x: repair_nonfinite(x),
    lambda x: normalize(x, "robust"), lambda x: reorder_leads(x, LEADS_12, LEADS_12[::-1]),
    lambda x: crop_or_pad(x, 100, "center"), lambda x: crop_or_pad(x, 900, "center"),
])
def test_functions_never_modify_their_input(call):
    x = np.random.default_rng(0).normal(size=(12, 500)).astype(np.float32)
    before = x.copy()
    result = call(x)
    out = result[0] if isinstance(result, tuple) else result
    assert out is not x and not np.shares_memory(out, x)
    np.testing.assert_array_equal(x, before)


# ------------------------------------------------------------------------------------------ Preprocess
def test_preprocess_dict_round_trip():
    configs = [Preprocess(), Preprocess.preset("raw"), Preprocess.preset("baselines"),
               Preprocess(fs=250, seconds=5, crop="random", leads=("ii", "V1"), missing_leads="zero",
                          bandpass=(0, 45), notch=60, baseline="median", normalize="robust",
                          repair_nan=False)]
    for config in configs:
        data = json.loads(json.dumps(config.to_dict()))
        assert Preprocess.from_dict(data) == config
    assert configs[3].leads == ("II", "V1") and configs[3].bandpass == (None, 45.0)


@pytest.mark.parametrize("field,value", [
    ("crop", "centre"), ("normalize", "z-score"), ("missing_leads", "derived"), ("baseline", "none"),
    ("fs", -100), ("seconds", "10"), ("bandpass", (40, 0.5)), ("notch", 0), ("leads", "I"),
    ("leads", ("I", "I")), ("leads", ("I", "V7")), ("repair_nan", "yes"), ("bandpass", (0, None)),
])
def test_preprocess_typo_names_the_field(field, value):
    with pytest.raises(ValueError, match=f"Preprocess.{field}"):
        Preprocess(**{field: value})
    with pytest.raises(ValueError, match=f"Preprocess.{field}"):
        Preprocess.from_dict({**Preprocess().to_dict(), field: value})
    with pytest.raises(ValueError, match=f"Preprocess.{field}"):
        dataclasses.replace(Preprocess.preset("baselines"), **{field: value})


def test_preprocess_unknown_field_and_presets():
    with pytest.raises(ValueError, match="unknown field\\(s\\) normalise"):
        Preprocess.from_dict({"normalise": "zscore"})
    assert {"raw", "baselines"} <= set(Preprocess.presets())
    with pytest.raises(ValueError, match="'raw', 'baselines'"):
        Preprocess.preset("baseline")
    base = Preprocess.preset("baselines")
    assert (base.fs, base.seconds, base.bandpass, base.normalize, base.leads) == (
        100.0, 10.0, (0.5, 40.0), "zscore", LEADS_12)
    raw = Preprocess.preset("raw")
    assert raw.normalize == "none" and raw.bandpass is None and raw.baseline is None and raw.notch is None
    assert Preprocess.preset("baselines", fs=250).fs == 250.0


def test_baselines_preset_is_the_composition_of_the_steps():
    rng = np.random.default_rng(5)
    x = (rng.normal(size=(12, 5000)) + np.linspace(0, 3, 5000)).astype(np.float32)
    out = Preprocess.preset("baselines")(make_record(x))
    expected = normalize(resample(bandpass(x, 500.0, 0.5, 40.0, order=3), 500.0, 100.0), "zscore")
    np.testing.assert_array_equal(out.signal, expected)
    assert out.fs == 100.0 and out.leads == LEADS_12 and out.signal.dtype == np.float32


def test_preprocess_repairs_reorders_pads_and_logs():
    rng = np.random.default_rng(7)
    full = einthoven_12(3000, rng) + 0.5  # 6 s at 500 Hz, offset so that padding would bias statistics
    order = ["V3", "II", "I", "V1", "V2", "III", "V4", "V5", "V6", "aVL"]  # aVR and aVF missing
    x = full[[LEADS_12.index(name) for name in order]].copy()
    x[order.index("V2"), [10, 200, 201]] = np.nan
    x[order.index("aVL")] = np.nan  # a dead lead: dropped, then derived
    record = make_record(x, leads=order, extra={"keep": 1})
    signal_before = x.copy()
    pre = Preprocess(fs=100, seconds=10, crop="center", missing_leads="derive", normalize="zscore")
    out = pre(record, rng=0)
    assert out.signal.shape == (12, 1000) and out.fs == 100.0 and out.leads == LEADS_12
    log = out.extra["preprocess"]
    assert out.extra["keep"] == 1 and "preprocess" not in record.extra
    assert log["repaired_samples"] == 3 and log["dropped_leads"] == ["aVL"]
    assert log["filled_leads"] == ["aVR", "aVL", "aVF"]
    assert log["original_samples"] == 3000 and log["original_fs"] == 500.0
    assert log["crop"] == {"original_samples": 600, "offset": 0, "kept": 600, "pad_before": 200,
                           "pad_after": 200}
    np.testing.assert_array_equal(out.signal[:, :200], 0.0)  # padding stays 0 ...
    np.testing.assert_array_equal(out.signal[:, 800:], 0.0)
    body = out.signal[:, 200:800].astype(np.float64)  # ... and statistics come from the recorded part
    np.testing.assert_allclose(body.mean(axis=1), 0.0, atol=1e-5)
    np.testing.assert_allclose(body.std(axis=1), 1.0, rtol=1e-4)
    assert np.array_equal(record.signal, signal_before, equal_nan=True) and record.fs == 500.0
    json.dumps(out.extra)  # stores keep it as JSON


def test_preprocess_errors_name_the_record():
    x = np.random.default_rng(0).normal(size=(12, 500)).astype(np.float32)
    x[2] = np.nan
    with pytest.raises(RecordError, match="/data/rec1.hea: lead\\(s\\) III contain no finite sample"):
        Preprocess()(make_record(x))
    with pytest.raises(RecordError, match="/data/rec1.hea: .*notch at 50.0 Hz"):
        Preprocess(notch=50.0, leads=("I", "II"))(make_record(x[:2], fs=100.0, leads=("I", "II")))
    with pytest.raises(RecordError, match="V1"):
        Preprocess()(make_record(x[:2], leads=("I", "II")))
    y = x.copy()
    y[2] = 0.0
    y[5, 7] = np.nan
    with pytest.raises(RecordError, match="repair_nonfinite"):
        Preprocess(repair_nan=False, fs=100)(make_record(y))


def test_preprocess_random_crop_follows_rng_and_raw_keeps_millivolts():
    x = np.random.default_rng(3).normal(size=(12, 10000)).astype(np.float32)  # 20 s
    pre = Preprocess.preset("raw", crop="random")
    a, b = pre(make_record(x), rng=11), pre(make_record(x), rng=11)
    offset = a.extra["preprocess"]["crop"]["offset"]
    assert b.extra["preprocess"]["crop"]["offset"] == offset
    np.testing.assert_array_equal(a.signal, x[:, offset : offset + 5000])  # raw: same rate, values untouched


# ------------------------------------------------------------------------------------------ torch versions
@pytest.mark.parametrize("method", ["zscore", "minmax", "robust", "none"])
def test_normalize_torch_matches_numpy(method):
    x = np.random.default_rng(0).normal(size=(4, 12, 200)).astype(np.float32)
    x[1, 3] = 2.0  # a flat lead
    x[2, 5, 50:] = 0.0  # IQR 0 but not flat
    got = normalize_torch(torch.from_numpy(x), method)
    assert got.dtype == torch.float32 and torch.isfinite(got).all()
    np.testing.assert_allclose(got.numpy(), normalize(x, method), atol=1e-5)


@pytest.mark.parametrize("n_out", [50, 200, 333])
@pytest.mark.parametrize("mode", ["start", "center"])
def test_crop_or_pad_torch_matches_numpy(mode, n_out):
    x = np.random.default_rng(0).normal(size=(4, 12, 200)).astype(np.float32)
    got = crop_or_pad_torch(torch.from_numpy(x), n_out, mode=mode, pad_value=1.5)
    np.testing.assert_array_equal(got.numpy(), crop_or_pad(x, n_out, mode=mode, pad_value=1.5)[0])


def test_crop_or_pad_torch_random_keeps_leads_aligned():
    batch, leads, n_t = 16, 12, 300
    ramp = torch.arange(n_t, dtype=torch.float32)
    x = ramp.expand(batch, leads, n_t) + 1000 * torch.arange(leads, dtype=torch.float32)[:, None]
    out = crop_or_pad_torch(x, 40, mode="random", generator=torch.Generator().manual_seed(0))
    assert out.shape == (batch, leads, 40)
    starts = out[:, 0, 0]
    assert len(set(starts.tolist())) > 1  # records get their own offsets ...
    lead_offsets = 1000 * torch.arange(leads, dtype=torch.float32)[:, None]
    expected = starts[:, None, None] + torch.arange(40.0) + lead_offsets
    torch.testing.assert_close(out, expected)  # ... shared by all their leads, contiguous windows
    again = crop_or_pad_torch(x, 40, mode="random", generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, again)
    single = crop_or_pad_torch(x[0], 40, mode="random")
    assert single.shape == (leads, 40)


# ------------------------------------------------------------------------------------------ real data
@pytest.mark.realdata
def test_baselines_preset_on_ptbxl(shared_data):
    import wfdb

    from ecgalign.data.record import canonical_lead_name

    records = sorted((shared_data / "ptbxl-500" / "records500" / "00000").glob("*_hr.hea"))[:5]
    if not records:
        pytest.skip("ptbxl-500 not present")
    pre = Preprocess.preset("baselines")
    for header in records:
        signal, fields = wfdb.rdsamp(str(header.with_suffix("")))  # (T, leads) in mV
        leads = [canonical_lead_name(name) for name in fields["sig_name"]]
        out = pre(make_record(signal.T.astype(np.float32), fs=float(fields["fs"]), leads=leads))
        assert out.signal.shape == (12, 1000) and np.isfinite(out.signal).all()
        np.testing.assert_allclose(out.signal.std(axis=1), 1.0, rtol=1e-3)
        # power above 40 Hz is gone, the QRS band (5-15 Hz) is not
        spectrum = np.abs(np.fft.rfft(out.signal, axis=1)) ** 2
        freqs = np.fft.rfftfreq(1000, 1 / 100)
        assert spectrum[:, freqs > 45].sum() < 1e-3 * spectrum.sum()
