"""The learned refiner (ecgalign.synth.refine): exact lead relations, no-op when untrained, statistics the
harness reads, a fit that moves generated records towards a real set, saving, stores and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy import stats
from typer.testing import CliRunner

from ecgalign.data.record import LEADS_12
from ecgalign.synth import synthesize_record
from ecgalign.synth.realism.features import band_shares, beat_features, correlations, pca_shares
from ecgalign.synth.refine import (
    INDEPENDENT,
    FitResult,
    Refiner,
    RefinerConfig,
    band_limit,
    describe_refiner,
    fit_refiner,
    load_refiner,
    peak_table,
    record_statistics,
    refine_array,
    refine_record,
    save_refiner,
    synthetic_inputs,
    view_of,
)

runner = CliRunner()


def _view(bp: np.ndarray) -> np.ndarray:
    return view_of(torch.from_numpy(bp[:, list(INDEPENDENT)].copy())).numpy()


def _shaken(seed: int = 0) -> Refiner:
    """A refiner whose output layer is not zero, so it changes records."""
    torch.manual_seed(seed)
    net = Refiner(channels=8, blocks=2, noise_channels=2)
    torch.nn.init.normal_(net.out.weight, std=0.05)
    return net.eval()


@pytest.fixture(scope="module")
def bp():
    return synthetic_inputs(24, 3)


def test_refined_records_keep_einthoven_and_goldberger_exactly():
    rec = synthesize_record(0, 0)
    sig = rec.signal[[rec.leads.index(lead) for lead in LEADS_12]]
    out = refine_array(_shaken(), sig, rec.fs, seed=1).astype(np.float64)
    i, ii, iii, avr, avl, avf = out[:6]
    assert np.abs(out - sig).max() > 1e-3  # it did change the record
    for got, want in ((iii, ii - i), (avr, -(i + ii) / 2), (avl, i - ii / 2), (avf, ii - i / 2)):
        np.testing.assert_allclose(got, want, atol=1e-4)
    assert out.shape == sig.shape and np.isfinite(out).all()


def test_an_untrained_refiner_changes_nothing_and_noise_is_seeded():
    rec = synthesize_record(2, 0, fs=250)
    sig = rec.signal[[rec.leads.index(lead) for lead in LEADS_12]]
    np.testing.assert_allclose(refine_array(Refiner(channels=8, blocks=1), sig, 250.0), sig, atol=1e-6)
    net = _shaken()
    a, b = refine_array(net, sig, 250.0, seed=5), refine_array(net, sig, 250.0, seed=5)
    c = refine_array(net, sig, 250.0, seed=6)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-5


def test_the_correction_stays_in_the_benchmark_band():
    net = _shaken(1)
    x = torch.from_numpy(synthetic_inputs(2, 0)[:, list(INDEPENDENT)].copy())
    with torch.no_grad():
        d = net(x, torch.Generator().manual_seed(0))
    spec = torch.fft.rfft(d, dim=-1).abs() ** 2
    f = torch.fft.rfftfreq(d.shape[-1], 0.01)
    assert float(spec[..., f > 45].sum() / spec.sum()) < 1e-3
    assert float(spec[..., f < 0.2].sum() / spec.sum()) < 1e-3
    np.testing.assert_allclose(band_limit(torch.ones(1, 1000)).numpy(), 0.0, atol=1e-6)


def test_record_statistics_are_the_harness_families(bp):
    view = _view(bp)
    peaks = peak_table(view)
    f = record_statistics(torch.from_numpy(view), torch.from_numpy(peaks)).numpy()
    n_bands = 12 * 5
    # band shares: a periodogram instead of the harness's Welch estimate, so close, not equal
    shares = band_shares(view.astype(np.float64)).reshape(len(view), -1)
    assert np.corrcoef(f[:, :n_bands].ravel(), shares.ravel())[0, 1] > 0.97
    np.testing.assert_allclose(f[:, n_bands : n_bands + 8], pca_shares(view.astype(np.float64)), atol=1e-4)
    np.testing.assert_allclose(f[:, n_bands + 8 : n_bands + 36], correlations(view.astype(np.float64)), atol=1e-4)
    skew = f[:, n_bands + 36 : n_bands + 48]
    kurt = f[:, n_bands + 48 : n_bands + 60]
    np.testing.assert_allclose(skew, stats.skew(view, axis=-1), atol=1e-3)
    np.testing.assert_allclose(kurt, stats.kurtosis(view, axis=-1), atol=1e-2)
    assert f.shape[1] == n_bands + 36 + 60 + 24 + 8 * 35
    # the median beat at the harness's own R peaks (torch takes the lower middle of an even count)
    med = np.stack([beat_features(v.astype(np.float64))[1] for v in view])
    got = f[:, -8 * 35 :]
    assert np.corrcoef(got.ravel(), med.ravel())[0, 1] > 0.99
    assert np.abs(got - med).mean() < 0.05
    assert (peaks[:, :5] >= 0).all()  # every 10 s record has at least five whole beats


def test_fitting_moves_generated_records_towards_the_real_set(bp):
    # "Real": other generated records with 25-40 Hz content added; the refiner should add such content.
    rng = np.random.default_rng(0)
    other = synthetic_inputs(32, 4)
    hf = band_limit(torch.from_numpy(rng.normal(size=other.shape).astype(np.float32)))
    hf = torch.fft.irfft(torch.fft.rfft(hf) * (torch.fft.rfftfreq(1000, 0.01) > 25), n=1000).numpy()
    real = other + 0.6 * hf * other.std(axis=-1, keepdims=True) / hf.std(axis=-1, keepdims=True)
    real_view = _view(real)
    cfg = RefinerConfig(steps=120, batch_size=12, channels=16, blocks=2, lr=2e-3, adv_signal=0, adv_features=0,
                        mmd=1.0, identity=0.2)
    fit = fit_refiner(bp, real_view, cfg, log_every=40)
    assert isinstance(fit, FitResult) and [r["step"] for r in fit.history] == [40, 80, 120]
    x = torch.from_numpy(bp[:, list(INDEPENDENT)].copy())
    with torch.no_grad():
        refined = view_of(x, fit.refiner(x, torch.Generator().manual_seed(0))).numpy()
    share = lambda v: band_shares(v.astype(np.float64))[:, :, -1].mean()  # noqa: E731
    before, after, target = share(_view(bp)), share(refined), share(real_view)
    assert target > before + 0.05
    assert after > before + 0.4 * (target - before), (before, after, target)


def test_save_load_round_trip_and_clear_errors(tmp_path, bp):
    fit = FitResult(_shaken(2), RefinerConfig(channels=8, blocks=2, noise_channels=2), {}, [{"step": 1}], 1.0)
    save_refiner(tmp_path / "r", fit, {"real": "somewhere"})
    net, meta = load_refiner(tmp_path / "r")
    assert meta["info"] == {"real": "somewhere"} and meta["config"]["channels"] == 8
    sig = synthesize_record(0, 1).signal
    np.testing.assert_allclose(refine_array(net, sig, 500.0, seed=3), refine_array(fit.refiner, sig, 500.0, seed=3),
                               atol=1e-6)
    assert len(describe_refiner(tmp_path / "r")["sha256"]) == 64
    with pytest.raises(FileNotFoundError, match="refiner.json"):
        load_refiner(tmp_path / "nothing")
    meta["version"] = 99
    (tmp_path / "r" / "refiner.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="version"):
        load_refiner(tmp_path / "r")
    meta["version"], meta["config"]["wings"] = 1, 2
    (tmp_path / "r" / "refiner.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="RefinerConfig"):
        load_refiner(tmp_path / "r")
    with pytest.raises(ValueError, match=r"\(N, 12, 1000\)"):
        fit_refiner(bp[:, :, :500], _view(bp))
    with pytest.raises(ValueError, match="non-finite"):
        bad = _view(bp)
        bad[0, 0, 0] = np.nan
        fit_refiner(bp, bad)
    with pytest.raises(ValueError, match="identity"):
        RefinerConfig(identity=-1)


def test_refine_record_keeps_labels_and_refuses_missing_leads():
    rec = synthesize_record(1, 0)
    out = refine_record(_shaken(), rec, seed=0, index=1)
    assert out.codes == rec.codes and out.report == rec.report and out.extra["refined"] is True
    assert np.abs(out.signal - rec.signal).max() > 1e-3
    with pytest.raises(ValueError, match="missing"):
        refine_record(_shaken(), rec.replace(signal=rec.signal[:8], leads=rec.leads[:8]))


def test_cli_fits_a_refiner_and_synth_applies_it(tmp_path):
    from ecgalign.cli.main import app
    from ecgalign.data.store import ECGStore

    real = tmp_path / "real"
    r = runner.invoke(app, ["data", "synth", "--n", "12", "--seed", "9", "--preset", "baselines", "--out", str(real)])
    assert r.exit_code == 0, r.output
    ref = tmp_path / "ref"
    args = ["data", "refiner-fit", "--real", str(real), "--out", str(ref), "--n", "12", "--steps", "3",
            "--batch-size", "4", "--threads", "1", "--json"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["real_records"] == 12 and out["last"]["step"] == 3
    r = runner.invoke(app, args)
    assert r.exit_code != 0 and "--overwrite" in r.output
    plain, refined = tmp_path / "plain", tmp_path / "refined"
    assert runner.invoke(app, ["data", "synth", "--n", "3", "--out", str(plain)]).exit_code == 0
    r = runner.invoke(app, ["data", "synth", "--n", "3", "--out", str(refined), "--refiner", str(ref)])
    assert r.exit_code == 0, r.output
    a, b = ECGStore(plain), ECGStore(refined)
    assert b.manifest["source"]["refiner"]["sha256"] == describe_refiner(ref)["sha256"]
    assert a.manifest["source"]["refiner"] is None
    diffs = [np.abs(a.record(i).signal - b.record(i).signal).max() for i in range(3)]
    assert all(d > 0 for d in diffs) and all(a.record(i).codes == b.record(i).codes for i in range(3))
    from ecgalign.synth.store import synthesize_store

    synthesize_store(tmp_path / "two", 3, workers=2, refiner=ref)  # pool workers draw the same refiner noise
    c = ECGStore(tmp_path / "two")
    assert all(np.array_equal(b.record(i).signal, c.record(i).signal) for i in range(3))
    r = runner.invoke(app, ["data", "synth", "--n", "3", "--out", str(tmp_path / "x"), "--refiner", str(tmp_path)])
    assert r.exit_code != 0 and "refiner-fit" in r.output
    low_rate = ["data", "synth", "--n", "3", "--fs", "50", "--out", str(tmp_path / "y"), "--refiner", str(ref)]
    r = runner.invoke(app, low_rate)
    assert r.exit_code != 0 and ">= 100 Hz" in r.output and not (tmp_path / "y").exists()


def test_cli_defaults_are_the_config_defaults():
    import inspect

    from ecgalign.cli.data import refiner_fit_cmd

    params = inspect.signature(refiner_fit_cmd).parameters
    assert params["steps"].default.default == RefinerConfig.steps
    assert params["identity"].default.default == RefinerConfig.identity
    assert params["batch_size"].default.default == RefinerConfig.batch_size


def test_qrs_mask_marks_the_qrs_windows_only():
    from ecgalign.synth.refine import qrs_mask

    peaks = torch.tensor([[100, 300, -1], [-1, -1, -1]])
    m = qrs_mask(peaks, 1000)
    assert m.shape == (2, 1000)
    assert m[0, 94:109].all() and m[0, 294:309].all()
    assert m[0].sum() == 2 * 15 and m[1].sum() == 0
