"""The realism harness: each measure responds to what it claims to measure, and the CLI reports it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from ecgalign.synth import SynthConfig, synthesize_record
from ecgalign.synth.realism import compare, domain_auroc, load_sample, render_html, write_html
from ecgalign.synth.realism.compare import CLASS_MIN_RECORDS, class_profiles, effect_sizes, separating_features
from ecgalign.synth.realism.features import (
    BANDS,
    band_shares,
    feature_families,
    feature_names,
    pca_shares,
    r_peaks,
)
from ecgalign.synth.realism.measure import BEAT_WAVES, beat_waves, measure, meets

runner = CliRunner()


def test_domain_auroc_separates_only_what_differs():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(120, 5)), rng.normal(size=(120, 5))
    groups = np.arange(120)
    assert abs(domain_auroc(a, b, groups, groups) - 0.5) < 0.15
    shifted = b + np.array([1.5, 0, 0, 0, 0])
    assert domain_auroc(a, shifted, groups, groups) > 0.8


def test_domain_auroc_uses_the_classifier_it_is_given():
    # A ring (class a inside, class b outside) is invisible to a linear model and plain to boosting: the factory
    # must be what is fitted, once per fold.
    rng = np.random.default_rng(2)
    a = rng.normal(size=(150, 2)) * 0.5
    b = rng.normal(size=(150, 2))
    b = b / np.linalg.norm(b, axis=1, keepdims=True) * 2.0
    groups = np.arange(150)
    made = []

    def logistic():
        made.append(1)
        return LogisticRegression()

    assert domain_auroc(a, b, groups, groups) > 0.9
    assert abs(domain_auroc(a, b, groups, groups, classifier=logistic) - 0.5) < 0.15
    assert len(made) == 5


def test_domain_auroc_groups_patients():
    # Each "patient" contributes identical records on one side only: grouped folds cannot memorise patients,
    # so features that only identify patients do not separate the sides.
    rng = np.random.default_rng(1)
    pa, pb = rng.normal(size=(30, 4)), rng.normal(size=(30, 4))
    a, b = np.repeat(pa, 4, axis=0), np.repeat(pb, 4, axis=0)
    ga, gb = np.repeat(np.arange(30), 4), np.repeat(np.arange(30), 4)
    assert domain_auroc(a, b, ga, gb) < 0.75
    with pytest.raises(ValueError, match="at least 2"):
        domain_auroc(a[:1], b, ga[:1], gb)


def test_covariance_spectrum_and_band_shares():
    rng = np.random.default_rng(2)
    t = np.arange(1000) / 100.0
    sources = rng.normal(size=(3, 1000))
    mix = rng.normal(size=(12, 3))
    dipolar = (mix @ sources)[None]  # exactly rank 3
    independent = rng.normal(size=(1, 12, 1000))
    assert 1 - pca_shares(dipolar)[0, :3].sum() < 1e-9
    assert 1 - pca_shares(independent)[0, :3].sum() > 0.4
    tone = np.tile(np.sin(2 * np.pi * 30.0 * t), (1, 12, 1))
    shares = band_shares(tone)
    assert np.allclose(shares.sum(-1), 1.0, atol=1e-6)
    assert shares[0, 0, BANDS.index((25.0, 40.0))] > 0.95


def test_measurements_agree_with_ground_truth():
    from ecgalign.data.preprocess.filters import bandpass, resample

    for code, index in (("NORM", 0), ("CLBBB", 1), ("LAFB", 2), ("SBRAD", 3)):
        rec = synthesize_record(index, 7, config=SynthConfig(conditions=(code,), exclusive=True, noise=None))
        mv = resample(bandpass(rec.signal.astype(float), rec.fs, 0.5, 100.0), rec.fs, 250.0)
        m = measure(mv)
        assert abs(m["hr_bpm"] - rec.extra["hr_bpm"]) < 4, (code, m)
        # LBBB's discordant ST-T leaves the QRS without a slope break at the J point: read about 30 ms long.
        assert abs(m["qrs_ms"] - rec.extra["qrs_ms"]) < (40 if code == "CLBBB" else 25), (code, m)
        assert abs((m["axis_deg"] - rec.extra["axis_deg"] + 180) % 360 - 180) < 20, (code, m)
        assert code == "NORM" or meets(code, m) is True, (code, m)
    assert r_peaks(np.zeros((12, 1000))).size == 0  # a flat record has no beats (and does not crash)
    assert np.isnan(measure(np.zeros((12, 2500)))["qrs_ms"])


def test_beat_waves_read_a_drawn_beat():
    """Q, R, S, ST at J + 60 ms and T of a beat drawn with known values, against the PR segment's level."""
    fs, level = 250.0, 0.2
    x = np.full(2050, level)
    bounds = []
    for a in range(200, 2000, 250):  # QRS 100 ms: Q 20 ms, R 40 ms, S 40 ms
        x[a : a + 5], x[a + 5 : a + 15], x[a + 15 : a + 25] = level - 0.3, level + 1.5, level - 0.4
        b = a + 24
        x[b + 1 : b + 100] = level - 0.1  # ST and T segment, then a T peak 200 ms after J
        x[b + 50] = level + 0.6
        bounds.append((a, b))
    mv = np.tile(x, (12, 1))
    waves = beat_waves(mv, np.array(bounds), fs)
    assert waves.shape == (len(bounds) - 1, len(BEAT_WAVES), 12)  # the last beat lacks 400 ms after J
    got = dict(zip(BEAT_WAVES, np.median(waves, axis=0)[:, 0]))
    assert got == pytest.approx({"q_mv": 0.3, "q_ms": 20.0, "r_mv": 1.5, "s_mv": 0.4, "st_mv": -0.1, "t_mv": 0.6})
    assert beat_waves(mv, np.array(bounds), fs, min_qrs_s=0.2) is None  # every QRS is shorter than 200 ms
    assert beat_waves(mv[:, :300], np.array(bounds[:1]), fs) is None


def test_load_sample_skips_bad_records(tmp_path):
    x = np.random.default_rng(3).normal(size=(4, 12, 1000))
    x = ((x - x.mean(-1, keepdims=True)) / x.std(-1, keepdims=True)).astype(
        np.float16
    )  # z-scored, as published
    x[2, 5] = np.nan  # a lead with no finite sample: the reader refuses it
    np.savez(tmp_path / "signals.npz", X=x, ecg_id=np.arange(4))
    sample = load_sample(str(tmp_path))
    assert len(sample) == 3 and sample.normalised and sample.mv is None
    assert len(sample.skipped) == 1 and sample.skipped[0]["record_id"] == "2"
    with pytest.raises(FileNotFoundError, match="synth:N"):
        load_sample(str(tmp_path / "absent"))


def test_separating_features_name_the_feature_that_differs():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 12, 1000))
    fa, fb = feature_families(x[:15]), feature_families(x[15:])
    names = feature_names()
    assert all(len(names[k]) == fa[k].shape[1] for k in fa)
    assert "median beat II +10 ms" in names["shape"] and "band 25-40 Hz V4" in names["spectrum"]
    j = names["covariance"].index("corr(I, V6)")
    fa["covariance"][:, j] += 5.0  # only this feature differs between the sets
    top = separating_features(fa, fb, top=3)
    assert top[0]["feature"] == "corr(I, V6)" and top[0]["auroc"] == 1.0 and len(top) == 3


def test_class_profiles_find_a_class_that_moves_other_features():
    rng = np.random.default_rng(0)
    names = feature_names()
    fam = {k: len(v) for k, v in names.items()}

    def features(n):
        return {k: rng.normal(size=(n, m)) for k, m in fam.items()}

    n = 80
    codes = [("SR", "IMI") if i % 4 == 0 else ("SR", "NORM") for i in range(n)]  # MI: a quarter; NORM the rest
    fa, fb = features(n), features(n)
    mi = np.array(["IMI" in c for c in codes])
    q = names["shape"].index("median beat II -30 ms")
    st = names["shape"].index("median beat II +90 ms")
    fa["shape"][mi, q] -= 3.0  # synthetic MI: a deep Q in II
    fb["shape"][mi, st] += 3.0  # real MI: the ST segment instead
    p = class_profiles(fa, fb, codes, codes, top=2)
    assert set(p) == {"NORM", "MI"} and p["MI"]["records"] == {"synthetic": 20, "real": 20}
    assert {d["feature"] for d in p["MI"]["largest_differences"]} == {"median beat II -30 ms", "median beat II +90 ms"}
    assert p["MI"]["profile_correlation"] < 0.2
    same = class_profiles(fa, fa, codes, codes)
    assert same["MI"]["profile_correlation"] == 1.0 and same["MI"]["largest_differences"][0]["synthetic_effect"] == \
        same["MI"]["largest_differences"][0]["real_effect"]
    few = [("SR", "IMI") if i < CLASS_MIN_RECORDS - 1 else ("SR", "NORM") for i in range(n)]
    assert "MI" not in class_profiles(fa, fb, few, codes)  # too few MI records on one side: not profiled
    assert class_profiles(fa, fb, [()] * n, codes) == {}  # unlabeled records (ptbxl-unlabeled): nothing to profile
    f = np.c_[np.r_[np.ones(5), np.zeros(5)], np.full(10, np.nan), np.ones(10)]
    d = effect_sizes(f, np.arange(10) < 5)
    assert d[0] == 10.0 and d[1] == 0.0 and d[2] == 0.0  # no spread within groups: the cap; no values or no
    assert effect_sizes(-f, np.arange(10) < 5)[0] == -10.0  # difference: 0


def test_compare_same_generator_is_indistinguishable(tmp_path):
    a, b = load_sample("synth:40:0"), load_sample("synth:40:1")
    result = compare(a, b, folds=3)
    s = json.loads(json.dumps(result.summary))  # JSON-able
    assert s["best_domain_auroc"] < 0.8
    assert set(s["domain_auroc"]) == {"spectrum", "covariance", "beats", "shape", "all"}
    assert all(0.6 < g["ratio"] < 1.6 for g in s["signs"][:4])  # covariance and spectrum signs
    assert "LVH" in s["label_fidelity"]["synthetic"]
    assert len(s["separating_features"]) == 15 and "Most separating single features" in render_html(result)
    assert "NORM" in s["class_profiles"] and "Class profiles" in render_html(result)
    assert "<img src='data:image/png;base64," in render_html(result)
    assert write_html(result, tmp_path / "r.html").read_text().startswith("<!doctype html>")


@pytest.mark.slow
def test_realism_cli_on_ptbxl(shared_data, tmp_path):
    from ecgalign.cli.main import app

    out = tmp_path / "page.html"
    res = runner.invoke(
        app,
        [
            "data",
            "realism",
            "synth:60",
            str(shared_data / "ptbxl-500"),
            "--limit",
            "60",
            "--json",
            "--html",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert summary["real"]["records"] == 60 and out.is_file()
    assert 0.0 <= summary["best_domain_auroc"] <= 1.0
    real_fid = summary["label_fidelity"]["real"]
    assert any(v.get("by_likelihood") for v in real_fid.values())  # PTB-XL's likelihoods reach the real side
    assert not any("by_likelihood" in v for v in summary["label_fidelity"]["synthetic"].values())
    assert "by statement likelihood" in out.read_text()
    text = runner.invoke(app, ["data", "realism", "synth:60", str(shared_data / "ptbxl-500"), "--limit", "60"])
    assert text.exit_code == 0, text.output
    assert "label fidelity" in text.output and "(likelihood " in text.output
    bad = runner.invoke(app, ["data", "realism", "synth:10", str(tmp_path / "nowhere")])
    assert bad.exit_code != 0 and "no such store" in bad.output


@pytest.mark.parametrize(
    "code",
    ["CLBBB", "CRBBB", "LVH", "LAFB", "IMI", "AMI", "ASMI", "LMI", "ILMI", "ALMI", "NST_", "STD_", "LPFB", "IVCD"],
)
def test_label_fidelity_of_noisy_records(code):
    """The harness reads the claimed criterion in >= 90 % of noisy records with companions (issue 15's
    fidelity line). CRBBB read 0.92 on 2000 default records of seed 0 when the QRS was delineated per beat, where
    electrode noise hid the slow terminal forces; it must not come back."""
    from ecgalign.data.preprocess.filters import bandpass, resample

    cfg = SynthConfig(conditions=(code,))
    hits = []
    for i in range(40):
        rec = synthesize_record(i, 11, config=cfg)
        mv = resample(bandpass(rec.signal.astype(float), rec.fs, 0.5, 100.0), rec.fs, 250.0)
        hits.append(meets(code, measure(mv)))
    judged = [h for h in hits if h is not None]
    assert len(judged) >= 36 and np.mean(judged) >= 0.9, (code, np.mean(judged))


def test_qrs_duration_on_the_median_beat_survives_noise():
    # A noisy CRBBB record (seed 0, index 1556 of the default population: truth 147 ms) read 116 ms per beat.
    from ecgalign.data.preprocess.filters import bandpass, resample
    from ecgalign.synth.realism.features import r_peaks
    from ecgalign.synth.realism.measure import median_beat_qrs_ms

    rec = synthesize_record(1556, 0)
    assert "CRBBB" in rec.codes
    mv = resample(bandpass(rec.signal.astype(float), rec.fs, 0.5, 100.0), rec.fs, 250.0)
    assert abs(measure(mv)["qrs_ms"] - rec.extra["qrs_ms"]) < 15
    assert np.isnan(median_beat_qrs_ms(mv, np.array([1, 2490])))  # no whole beat


def test_fidelity_by_statement_likelihood():
    """With PTB-XL's likelihoods, each code's share is also given per likelihood bin, so a criterion can be read
    against the statements the cardiologists were sure of; rhythm statements (likelihood 0) have their own bin."""
    from ecgalign.synth.realism.measure import fidelity, likelihood_text

    q = [{"q_inferior": v} for v in (1.0, 1.0, 0.0, 0.0, float("nan"), 1.0)]
    codes = [("IMI",), ("IMI",), ("IMI",), ("IMI",), ("IMI",), ("SR",)]
    lik = [{"IMI": 100.0}, {"IMI": 100.0}, {"IMI": 15.0}, {"IMI": 50.0}, {"IMI": 100.0}, {"SR": 0.0}]
    imi = fidelity(codes, q, lik)["IMI"]
    assert (imi["records"], imi["judged"], imi["meets"]) == (5, 4, 0.5)
    # the unjudged record (NaN) counts in no bin; bins without a judged record are left out
    assert imi["by_likelihood"] == {"100": {"judged": 2, "meets": 1.0}, "50-99": {"judged": 1, "meets": 0.0},
                                    "1-49": {"judged": 1, "meets": 0.0}}
    assert likelihood_text(imi["by_likelihood"]) == "likelihood 100: 1.00 of 2; 50-99: 0.00 of 1; 1-49: 0.00 of 1"
    assert "by_likelihood" not in fidelity(codes, q)["IMI"]  # no likelihoods (synthetic records): no bins
    assert fidelity(codes, q, lik)["LVH"] == {"criterion": "Sokolow-Lyon >= 3.5 mV", "records": 0, "judged": 0,
                                              "meets": None}


def test_load_sample_keeps_statement_likelihoods_and_folds(monkeypatch):
    import ecgalign.synth.realism.sample as sample_mod

    recs = [synthesize_record(i, 0).replace(fold=None) for i in range(3)]
    recs[0] = recs[0].replace(extra={**recs[0].extra, "scp_likelihood": {"IMI": 35, "SR": 0.0, "X": "?"}}, fold=3)
    monkeypatch.setattr(sample_mod, "records_of", lambda source, limit=None: iter(recs))
    s = load_sample("anything")
    assert s.likelihoods == [{"IMI": 35.0, "SR": 0.0}, {}, {}]  # an unreadable value is dropped, not fatal
    assert s.folds == [3, None, None]
    monkeypatch.setattr(sample_mod, "records_of", lambda source, limit=None: iter(recs[1:]))
    s = load_sample("anything")
    assert s.likelihoods is None and s.folds is None  # no record gives any


def test_sample_of_records_and_subset():
    from ecgalign.synth import synthesize
    from ecgalign.synth.realism import sample_of

    s = sample_of(synthesize(4, 2, config=SynthConfig(conditions=("AFIB",))), name="afib")
    assert s.name == "afib" and len(s) == 4 and all("AFIB" in c for c in s.codes) and s.mv is not None
    part = s.subset([3, 1])
    assert len(part) == 2 and part.codes == [s.codes[3], s.codes[1]] and part.folds == [s.folds[3], s.folds[1]]
    assert np.array_equal(part.x[0], s.x[3]) and np.array_equal(part.mv[1], s.mv[1])
    assert list(part.patients) == [s.patients[3], s.patients[1]] and part.likelihoods is None
