"""ChallengeReader: PhysioNet/CinC 2020/2021 .hea + .mat records, on fixtures written here and real data."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.io
import wfdb

from ecgalign.data.labels.snomed import snomed_scheme
from ecgalign.data.readers import detect_format, open_dataset
from ecgalign.data.readers.challenge import ChallengeReader, parse_header, source_database
from ecgalign.data.record import LEADS_12, RecordError

COMMENTS = ("Age: 78", "Sex: Male", "Dx: 164889003,59118001", "Rx: Unknown", "Hx: Unknown", "Sx: Unknown")


def write_record(
    folder: Path,
    name: str,
    val: np.ndarray,
    *,
    fs: float = 500,
    gain_field: str = "1000.0(0)/mV",
    adc_zero: int = 0,
    leads: tuple[str, ...] = LEADS_12,
    comments: tuple[str, ...] = COMMENTS,
    mat: bool = True,
) -> Path:
    """Write NAME.hea (challenge style) and NAME.mat (MAT v4, int16 ``val`` (leads, samples))."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"{name} {len(leads)} {fs:g} {val.shape[1]}"]
    for k, lead in enumerate(leads):
        first = int(val[k, 0]) if k < val.shape[0] else 0
        lines.append(f"{name}.mat 16x1+24 {gain_field} 16 {adc_zero} {first} 0 0 {lead}")
    lines += [f"# {c}" for c in comments]
    (folder / f"{name}.hea").write_text("\n".join(lines) + "\n")
    if mat:
        scipy.io.savemat(folder / f"{name}.mat", {"val": val}, format="4")
    return folder / f"{name}.hea"


def digital(mv: np.ndarray, gain: float = 1000.0, baseline: int = 0) -> np.ndarray:
    return np.round(mv * gain + baseline).astype(np.int16)


@pytest.fixture
def mv() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.normal(0, 0.5, size=(12, 1000))  # (leads, T) mV


def test_values_round_trip_in_millivolts(tmp_path, mv):
    write_record(tmp_path, "E00001", digital(mv))
    rec = ChallengeReader(tmp_path).read(0)
    assert rec.signal.dtype == np.float32 and rec.signal.shape == (12, 1000)
    np.testing.assert_allclose(rec.signal, mv, atol=0.5 / 1000 + 1e-6)
    assert rec.leads == LEADS_12 and rec.fs == 500
    assert (rec.record_id, rec.dataset, rec.age, rec.sex) == ("E00001", "challenge", 78.0, "M")
    assert rec.codes == ("164889003", "59118001") and rec.code_system == "snomed"
    assert rec.extra["source_db"] == "Georgia" and rec.extra["rx"] == "Unknown"
    assert rec.report == "" and rec.patient_id is None
    assert rec.source.endswith("E00001.hea")


@pytest.mark.parametrize(
    "gain_field, adc_zero, gain, baseline, to_mv",
    [
        ("200.0(5)/mV", 0, 200.0, 5, 1.0),  # explicit baseline
        ("1000/mV", 7, 1000.0, 7, 1.0),  # baseline omitted: ADC zero
        ("1.0(0)/uV", 0, 1.0, 0, 1e-3),  # microvolts
    ],
)
def test_gain_baseline_and_units(tmp_path, mv, gain_field, adc_zero, gain, baseline, to_mv):
    physical = mv / to_mv  # in the header's units
    write_record(
        tmp_path, "A0001", digital(physical, gain, baseline), gain_field=gain_field, adc_zero=adc_zero
    )
    rec = ChallengeReader(tmp_path).read(0)
    np.testing.assert_allclose(rec.signal, mv, atol=0.5 / gain * to_mv + 1e-6)


def test_matches_wfdb_rdrecord(tmp_path, mv):
    val = digital(mv, 200.0, 3)
    val[4, 10:20] = -32768  # WFDB format 16 invalid sample
    write_record(tmp_path, "HR00001", val, gain_field="200.0(3)/mV")
    rec = ChallengeReader(tmp_path).read(0)
    ref = wfdb.rdrecord(str(tmp_path / "HR00001")).p_signal.T
    np.testing.assert_array_equal(np.isnan(rec.signal), np.isnan(ref))
    assert np.isnan(rec.signal[4, 10:20]).all()
    np.testing.assert_allclose(rec.signal, ref, atol=1e-6, equal_nan=True)


def test_metadata_from_headers_only(tmp_path, mv):
    val = digital(mv)
    write_record(
        tmp_path / "georgia" / "g2", "E00002", val, comments=("Age: NaN", "Sex: Female", "Dx: 426783006,")
    )
    write_record(
        tmp_path / "georgia" / "g1",
        "E00001",
        val,
        comments=("Age: Unknown", "Sex: Unknown", "Dx: 713427006,,59118001,251238007"),
    )
    write_record(
        tmp_path / "ningbo" / "g1", "JS20000", val, comments=("Age: 61", "Sex: M", "Dx: 164889003,164889003")
    )
    for mat in tmp_path.rglob("*.mat"):
        mat.unlink()  # metadata must not need the signal files
    reader = ChallengeReader(tmp_path)
    meta = reader.metadata().set_index("record_id")
    assert list(meta.index) == ["E00001", "E00002", "JS20000"]
    assert pd.isna(meta.loc["E00001", "age"]) and pd.isna(meta.loc["E00002", "age"])
    assert meta.loc["JS20000", "age"] == 61.0
    assert list(meta.sex) == [None, "F", "M"]
    assert meta.loc["E00001", "codes"] == ["713427006", "59118001", "251238007"]
    assert meta.loc["E00001", "labels_scored"] == ["RBBB"]
    assert meta.loc["E00001", "labels_snomed"] == ["CRBBB", "RBBB"]
    assert meta.loc["E00001", "unknown_codes"] == ["251238007"]
    assert meta.loc["E00002", "codes"] == ["426783006"]
    assert meta.loc["JS20000", "codes"] == ["164889003"]
    assert list(meta.source_db) == ["Georgia", "Georgia", "Ningbo"]
    assert set(meta.fs) == {500.0} and set(meta.n_samples) == {1000}
    assert set(reader.label_scheme().set_names()) == {
        c[len("labels_") :] for c in meta.columns if c.startswith("labels_")
    }


@pytest.mark.parametrize(
    "name, source",
    [
        ("A0001", "CPSC2018"),
        ("Q0001", "CPSC-Extra"),
        ("I0001", "INCART"),
        ("S0001", "PTB"),
        ("HR00001", "PTB-XL"),
        ("E00001", "Georgia"),
        ("JS00001", "Chapman-Shaoxing"),
        ("JS10646", "Chapman-Shaoxing"),
        ("JS10647", "Ningbo"),
        ("X123", "unknown"),
    ],
)
def test_source_database(name, source):
    assert source_database(name) == source


def _expect_error(tmp_path: Path, match: str, filename: str) -> None:
    with pytest.raises(RecordError, match=match) as err:
        ChallengeReader(tmp_path).read(0)
    assert err.value.source.endswith(filename)


def test_missing_mat(tmp_path, mv):
    write_record(tmp_path, "E00001", digital(mv), mat=False)
    _expect_error(tmp_path, "signal file is missing", "E00001.mat")


def test_header_that_does_not_parse(tmp_path, mv):
    write_record(tmp_path, "E00001", digital(mv))
    (tmp_path / "E00001.hea").write_text("E00001 twelve 500\n")
    _expect_error(tmp_path, "does not parse", "E00001.hea")


def test_header_with_too_few_signal_lines(tmp_path, mv):
    hea = write_record(tmp_path, "E00001", digital(mv))
    lines = hea.read_text().splitlines()
    hea.write_text("\n".join(lines[:12] + lines[13:]) + "\n")
    _expect_error(tmp_path, "declares 12 leads but has 11 signal lines", "E00001.hea")


def test_unknown_lead_name(tmp_path, mv):
    write_record(tmp_path, "E00001", digital(mv), leads=LEADS_12[:11] + ("Foo",))
    _expect_error(tmp_path, "unknown ECG lead name 'Foo'", "E00001.hea")


def test_val_missing(tmp_path, mv):
    write_record(tmp_path, "E00001", digital(mv))
    scipy.io.savemat(tmp_path / "E00001.mat", {"data": digital(mv)}, format="4")
    _expect_error(tmp_path, "no variable 'val'", "E00001.mat")


def test_wrong_lead_count(tmp_path, mv):
    write_record(tmp_path, "E00001", digital(mv))
    scipy.io.savemat(tmp_path / "E00001.mat", {"val": digital(mv)[:11]}, format="4")
    _expect_error(tmp_path, r"shape \(11, 1000\) but E00001.hea declares 12 leads x 1000", "E00001.mat")


def test_transposed_val(tmp_path, mv):
    write_record(tmp_path, "E00001", digital(mv))
    scipy.io.savemat(tmp_path / "E00001.mat", {"val": digital(mv).T.copy()}, format="4")
    _expect_error(tmp_path, r"shape \(1000, 12\)", "E00001.mat")


def test_corrupt_mat(tmp_path, mv):
    write_record(tmp_path, "E00001", digital(mv))
    (tmp_path / "E00001.mat").write_bytes(b"\x00\x01garbage")
    _expect_error(tmp_path, "cannot read MATLAB file", "E00001.mat")


def test_all_nan_lead(tmp_path, mv):
    val = digital(mv)
    val[7] = -32768
    write_record(tmp_path, "E00001", val)
    _expect_error(tmp_path, "lead.*V2.*no finite sample", "E00001.hea")


def test_scan_and_iter_records_report_skips(tmp_path, mv):
    write_record(tmp_path, "E00001", digital(mv))
    write_record(tmp_path, "E00002", digital(mv), mat=False)
    write_record(tmp_path, "E00003", digital(mv))
    (tmp_path / "E00003.hea").write_text("garbage\n")
    write_record(tmp_path, "E00004", digital(mv))
    scipy.io.savemat(tmp_path / "E00004.mat", {"val": digital(mv)[:6]}, format="4")
    reader = ChallengeReader(tmp_path)

    scan = reader.scan()  # header level: the .mat shape of E00004 is not checked
    assert scan.records == 2 and scan.sampling_rates == [500.0] and scan.leads == list(LEADS_12)
    assert [(s.record_id, Path(s.source).name) for s in scan.skipped] == [
        ("E00002", "E00002.mat"),
        ("E00003", "E00003.hea"),
    ]

    skipped = []
    records = list(reader.iter_records(on_skip=skipped.append))
    assert [r.record_id for r in records] == ["E00001"]
    assert [s.record_id for s in skipped] == ["E00002", "E00003", "E00004"]
    assert "shape (6, 1000)" in skipped[2].problem
    with pytest.raises(RecordError):
        list(reader.iter_records())


def test_detect(tmp_path, mv):
    write_record(tmp_path / "training" / "georgia" / "g1", "E00001", digital(mv))
    assert ChallengeReader.detect(tmp_path)
    assert detect_format(tmp_path) == "challenge"
    assert isinstance(open_dataset(tmp_path), ChallengeReader)
    wfdb_only = tmp_path / "wfdb"
    wfdb_only.mkdir()
    wfdb.wrsamp(
        "r1", fs=500, units=["mV"], sig_name=["I"], p_signal=mv[:1].T, fmt=["16"], write_dir=str(wfdb_only)
    )
    assert not ChallengeReader.detect(wfdb_only)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert not ChallengeReader.detect(empty)
    with pytest.raises(FileNotFoundError, match="no .hea headers"):
        ChallengeReader(empty)


def test_parse_header_date_and_comments_without_space(tmp_path, mv):
    hea = write_record(tmp_path, "A0001", digital(mv), comments=("Age: 74", "Sex: Female", "Dx: 426783006"))
    lines = hea.read_text().splitlines()
    lines[0] += " 05-Feb-2020 11:39:16"
    hea.write_text("\n".join(line.replace("# ", "#") for line in lines) + "\n")
    header = parse_header(hea)
    assert header.n_samples == 1000 and header.fs == 500
    assert header.comments["age"] == "74" and header.codes == ("426783006",)


@pytest.mark.realdata
def test_real_cinc2021_samples(shared_data):
    root = shared_data / "samples" / "cinc2021"
    reader = ChallengeReader(root)
    assert len(reader) == 50 and detect_format(root) == "challenge"
    start = time.perf_counter()
    records = [reader.read(i) for i in range(len(reader))]
    elapsed = time.perf_counter() - start
    print(f"read 50 cinc2021 samples in {elapsed * 1000:.0f} ms")
    scheme = snomed_scheme()
    unmapped = sorted({c for r in records for c in r.codes if scheme.abbreviation(c) is None})
    assert unmapped == [], f"Dx codes missing from the SNOMED table: {unmapped}"
    sources = {}
    for rec in records:
        assert rec.leads == LEADS_12 and rec.fs == 500 and rec.signal.shape == (12, 5000)
        median_ii = float(np.median(np.abs(rec.lead("II"))))
        assert 0.01 < median_ii < 5, (rec.record_id, median_ii)
        assert rec.age is not None and 0 < rec.age < 120
        assert rec.sex in ("M", "F")
        assert rec.codes
        sources[rec.extra["source_db"]] = sources.get(rec.extra["source_db"], 0) + 1
        ref = wfdb.rdrecord(str(root / rec.record_id)).p_signal.T
        np.testing.assert_allclose(rec.signal, ref, atol=1e-6)
    assert sources == {"Georgia": 20, "PTB-XL": 10, "Ningbo": 20}
    meta = reader.metadata()
    assert meta.unknown_codes.map(len).sum() == 0
    assert all(len(labels) > 0 for labels in meta.labels_snomed)
    assert reader.scan().skipped == []
