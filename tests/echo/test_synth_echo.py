"""The synthetic echo generator: valid DICOMs in the MIMIC-IV-ECHO layout, deterministic, physiology linked."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
from pydicom.pixels import pixel_array

from ecgalign.data.store import ECGStore
from ecgalign.echo.dicom import US_MULTIFRAME_SOP
from ecgalign.echo.strip import StripConfig, binarise, extract_strip, rgb_to_hsv, roi_of
from ecgalign.synth.echo import EchoSynthConfig, synthesize_echo
from ecgalign.synth.echo import heart as hm
from ecgalign.synth.echo.render import TRACE_RGB

from .conftest import SMALL


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*.dcm")):
        h.update(p.read_bytes())
    return h.hexdigest()


def test_layout_tables_and_files(echo_root: Path) -> None:
    records = pd.read_csv(echo_root / "echo-record-list.csv")
    assert list(records.columns) == ["subject_id", "study_id", "acquisition_datetime", "dicom_filepath"]
    studies = pd.read_csv(echo_root / "echo-study-list.csv")
    assert set(studies.study_id) == set(records.study_id)
    assert records.subject_id.nunique() == 3
    for sub, study, rel in records[["subject_id", "study_id", "dicom_filepath"]].itertuples(index=False):
        assert rel == f"files/p{str(sub)[:2]}/p{sub}/s{study}/{Path(rel).name}"
        assert (echo_root / rel).is_file()


def test_dicoms_open_and_decode(echo_root: Path) -> None:
    truth = pd.read_csv(echo_root / "synth-truth.csv")
    for rel, kind, n, fps in truth[["dicom_filepath", "kind", "n_frames", "fps"]].itertuples(index=False):
        ds = pydicom.dcmread(echo_root / rel)
        arr = pixel_array(echo_root / rel)
        if kind == "cine":
            assert ds.SOPClassUID == US_MULTIFRAME_SOP and ds.Modality == "US"
            assert arr.shape == (n, SMALL.rows, SMALL.cols, 3) and arr.dtype == np.uint8
            assert float(ds.CineRate) == fps and abs(1000 / float(ds.FrameTime) - fps) < 1e-2
            assert 32 <= n <= 120
        else:
            assert ds.SOPClassUID != US_MULTIFRAME_SOP and arr.shape == (SMALL.rows, SMALL.cols, 3)


def test_deterministic_for_a_seed(tmp_path: Path) -> None:
    conf = EchoSynthConfig(rows=120, cols=160, frames=(32, 33), studies_per_patient=(1, 1), views_per_study=1)
    synthesize_echo(tmp_path / "a", 2, seed=5, config=conf)
    synthesize_echo(tmp_path / "b", 2, seed=5, config=conf)
    synthesize_echo(tmp_path / "c", 2, seed=6, config=conf)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b") != _digest(tmp_path / "c")
    assert (tmp_path / "a" / "synth-truth.csv").read_text() == (tmp_path / "b" / "synth-truth.csv").read_text()


@pytest.mark.slow
def test_workers_do_not_change_output(tmp_path: Path) -> None:
    conf = EchoSynthConfig(rows=120, cols=160, frames=(32, 33), studies_per_patient=(1, 1), views_per_study=1)
    synthesize_echo(tmp_path / "a", 2, seed=5, config=conf)
    synthesize_echo(tmp_path / "w", 2, seed=5, config=conf, workers=2)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "w")
    assert (tmp_path / "a" / "echo-labels.csv").read_text() == (tmp_path / "w" / "echo-labels.csv").read_text()


def test_refuses_non_empty_output(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError, match="not empty"):
        synthesize_echo(tmp_path / "x", 1)


def test_trace_colour_inside_paper_window() -> None:
    hsv = rgb_to_hsv(np.array([[TRACE_RGB]], dtype=np.uint8))[0, 0]
    assert 64 <= hsv[0] <= 91 and 97 <= hsv[1] <= 255 and 113 <= hsv[2] <= 198


def test_strip_drawn_only_in_bottom_30_percent(echo_root: Path) -> None:
    rel = pd.read_csv(echo_root / "synth-truth.csv").query("kind == 'cine'").dicom_filepath.iloc[0]
    frame = pixel_array(echo_root / rel, index=0)
    full = binarise(frame, StripConfig())
    roi = binarise(roi_of(frame, StripConfig()), StripConfig())
    assert roi.sum() > 100 and full.sum() == roi.sum()


def test_labels_follow_phenotype_and_pair_with_ecg(echo_root: Path) -> None:
    labels = pd.read_csv(echo_root / "echo-labels.csv")
    for row in labels.itertuples(index=False):
        assert row.ef_lt_40 == int(row.ef_pct < 40) and row.lvh == int(row.wall_mm >= 12)
        assert row.dilated_lv == int(row.edv_ml > 150)
        assert row.ef_lt_40 == int(row.phenotype in ("reduced_ef", "dilated_lv"))
        cir = set(str(row.cir).split()) if isinstance(row.cir, str) else set()
        assert ("CIR029" in cir) == bool(row.afib) and ("CIR022" in cir) == bool(row.ef_lt_40)
        assert ("CIR007" in cir) == (row.phenotype == "lvh")
    ecg = ECGStore(echo_root / "ecg")
    ids = list(ecg.meta.record_id)
    assert set(ids) == {f"s{s}" for s in labels.study_id}
    for row in labels.itertuples(index=False):
        codes = set(ecg.record(ids.index(f"s{row.study_id}")).codes)
        assert ("AFIB" in codes) == bool(row.afib)
        findings = {c for shown in hm.ECG_CODES.values() for c in shown}
        assert codes & findings == set(hm.ECG_CODES[row.ecg_shows])


def _shows(n: int, link: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Phenotype, shown ECG phenotype and AF of ``n`` patients drawn as the generator draws them."""
    pheno, shows, afib = [], [], []
    for i in range(n):
        ph, af, _ = hm.draw_patient(np.random.default_rng([seed, i]), link)
        pheno.append(ph)
        shows.append(hm.ecg_phenotype(np.random.default_rng([seed, i, 1]), ph, link))
        afib.append(af)
    return np.array(pheno), np.array(shows), np.array(afib)


def _chi2_p(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import chi2_contingency

    table = pd.crosstab(a, b).to_numpy()
    return float(chi2_contingency(table).pvalue)


def test_ecg_link_zero_makes_the_ecg_independent_of_the_echo_phenotype() -> None:
    pheno, shows, afib = _shows(6000, 0.0)
    assert _chi2_p(pheno, shows) > 0.01 and _chi2_p(pheno, afib) > 0.01
    for ph in hm.PHENOTYPES:  # every phenotype's ECG shows the population mix
        share = np.mean(shows[pheno == ph] == "normal")
        assert share == pytest.approx(hm.PHENOTYPE_PROBS[0], abs=0.04)
    linked, _, _ = _shows(6000, 1.0)
    assert (linked == pheno).all()  # same draws: the phenotypes do not depend on the link


def test_ecg_link_one_ties_the_ecg_to_the_phenotype_and_default_lies_between() -> None:
    pheno, shows, afib = _shows(6000, 1.0)
    assert (shows == pheno).all() and _chi2_p(pheno, afib) < 1e-6
    link = hm.ECG_LINK_DEFAULT
    pheno, shows, _ = _shows(6000, link)
    probs = dict(zip(hm.PHENOTYPES, hm.PHENOTYPE_PROBS))
    for ph in hm.PHENOTYPES:  # own findings with probability link + (1 - link) * prevalence
        assert np.mean(shows[pheno == ph] == ph) == pytest.approx(link + (1 - link) * probs[ph], abs=0.04)
    lvh_sign = shows == "lvh"
    sensitivity, false_pos = lvh_sign[pheno == "lvh"].mean(), lvh_sign[pheno != "lvh"].mean()
    assert 0.5 < sensitivity < 0.7 and 0.05 < false_pos < 0.2


def test_ecg_link_changes_the_ecg_not_the_echo_phenotype(tmp_path: Path) -> None:
    conf = dict(rows=120, cols=160, frames=(32, 32), studies_per_patient=(1, 1), views_per_study=1,
                defect_fraction=0.0, still_fraction=0.0)
    tables = {}
    for link in (0.0, 1.0):
        synthesize_echo(tmp_path / str(link), 12, seed=3, config=EchoSynthConfig(ecg_link=link, **conf))
        tables[link] = pd.read_csv(tmp_path / str(link) / "echo-labels.csv")
    echo_cols = ["study_id", "phenotype", "edv_ml", "ef_pct", "wall_mm", "ef_lt_40", "lvh", "dilated_lv"]
    pd.testing.assert_frame_equal(tables[0.0][echo_cols], tables[1.0][echo_cols])
    assert (tables[1.0].ecg_shows == tables[1.0].phenotype).all()
    assert (tables[0.0].ecg_shows != tables[0.0].phenotype).any()


def test_lv_contracts_after_each_qrs() -> None:
    heart = hm.Heart("normal", False, edv_ml=120.0, ef_pct=60.0, wall_mm=9.0, emd_s=0.06)
    onsets = np.array([0.2, 1.0, 1.8])
    t = np.arange(0, 2.6, 0.001)
    v = hm.lv_volume(t, onsets, heart)
    assert v.max() == pytest.approx(120.0) and v.min() == pytest.approx(120.0 * 0.4, rel=1e-3)
    for onset in onsets:
        beat = (t >= onset) & (t < onset + 0.7)
        assert np.all(v[(t >= onset) & (t < onset + heart.emd_s)] == pytest.approx(120.0))
        t_min = t[beat][np.argmin(v[beat])]
        assert onset + heart.emd_s + 0.2 < t_min < onset + heart.emd_s + 0.4


def test_afib_stroke_volume_follows_rr() -> None:
    heart = hm.Heart("normal", True, edv_ml=120.0, ef_pct=60.0, wall_mm=9.0, emd_s=0.05)
    onsets = np.array([0.0, 0.5, 1.5, 2.0, 3.0])
    t = np.arange(0, 3.8, 0.001)
    v = hm.lv_volume(t, onsets, heart)
    mins = [v[(t >= a) & (t < a + 0.45)].min() for a in onsets[1:]]
    assert mins[0] > mins[1]  # the beat after a short RR ejects less


def test_jpeg_option_decodes_with_trace(tmp_path: Path) -> None:
    conf = EchoSynthConfig(rows=120, cols=160, frames=(32, 32), studies_per_patient=(1, 1), views_per_study=2,
                           compression="jpeg", defect_fraction=0.0, still_fraction=0.0)
    synthesize_echo(tmp_path / "j", 2, seed=2, config=conf)
    rels = pd.read_csv(tmp_path / "j" / "echo-record-list.csv").dicom_filepath
    for rel in rels:  # JPEG fringes must not fail a clean strip
        assert extract_strip(pixel_array(tmp_path / "j" / rel, index=0)).reason is None
    rel = rels.iloc[0]
    ds = pydicom.dcmread(tmp_path / "j" / rel)
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.JPEGBaseline8Bit
    assert ds.PhotometricInterpretation == "YBR_FULL_422"
    frame = pixel_array(tmp_path / "j" / rel, index=3)
    assert frame.shape == (120, 160, 3)
    assert binarise(roi_of(frame, StripConfig()), StripConfig()).sum() > 100


@pytest.mark.parametrize("bad", [dict(frames=(20, 40)), dict(frames=(32, 130)), dict(compression="png"),
                                 dict(rows=60), dict(studies_per_patient=(0, 2)), dict(defect_fraction=1.5),
                                 dict(ecg_link=-0.1), dict(ecg_link=1.2)])
def test_config_validation(bad: dict) -> None:
    with pytest.raises(ValueError, match="EchoSynthConfig"):
        EchoSynthConfig(**bad)
