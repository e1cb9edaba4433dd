"""CPSC2018Reader: the original CPSC2018 .mat structs and REFERENCE.csv, on fixtures and on real samples."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from ecgalign.data.readers import detect_format
from ecgalign.data.readers.cpsc2018 import CPSC2018_CLASSES, CPSC2018Reader, read_reference
from ecgalign.data.record import LEADS_12, RecordError


def write_ecg(folder: Path, name: str, data: np.ndarray, sex: str = "Male", age: float = 61) -> Path:
    """NAME.mat with struct ECG {sex, age, data (12, T) float64 mV}, as the CPSC2018 release stores it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.mat"
    scipy.io.savemat(path, {"ECG": {"sex": sex, "age": age, "data": data}})
    return path


def write_reference(folder: Path, rows: list[str]) -> Path:
    path = folder / "REFERENCE.csv"
    path.write_text("Recording,First_label,Second_label,Third_label\n" + "\n".join(rows) + "\n")
    return path


@pytest.fixture
def data() -> np.ndarray:
    return np.random.default_rng(1).normal(0, 0.4, size=(12, 3000))  # (leads, T) mV


def test_values_round_trip(tmp_path, data):
    write_ecg(tmp_path, "A0002", data[:, :2500], sex="Female", age=45)
    write_ecg(tmp_path, "A0001", data)
    reader = CPSC2018Reader(tmp_path)
    assert [reader.record_id(i) for i in range(len(reader))] == ["A0001", "A0002"]
    rec = reader.read(0)
    assert rec.signal.dtype == np.float32
    np.testing.assert_allclose(rec.signal, data, rtol=1e-6, atol=1e-7)
    assert rec.leads == LEADS_12 and rec.fs == 500 and rec.dataset == "cpsc2018"
    assert (rec.age, rec.sex, rec.codes, rec.code_system) == (61.0, "M", (), "cpsc2018")
    second = reader.read(1)
    assert (second.age, second.sex, second.n_samples) == (45.0, "F", 2500)


def test_reference_labels_in_subfolders(tmp_path, data):
    write_ecg(tmp_path / "TrainingSet1", "A0001", data)
    write_ecg(tmp_path / "TrainingSet1", "A0002", data)
    write_ecg(tmp_path / "TrainingSet2", "A0003", data)
    write_reference(tmp_path, ["A0001,5,,", "A0002,1,8,9", "A0009,2,,"])
    reader = CPSC2018Reader(tmp_path)
    assert reader.labels_available and len(reader) == 3
    assert reader.read(0).codes == ("RBBB",)
    assert reader.read(1).codes == ("NORM", "STD", "STE")
    assert reader.read(2).codes == () and reader.read(2).extra["labelled"] is False
    meta = reader.metadata()
    assert list(meta.labels_cpsc2018) == [["RBBB"], ["NORM", "STD", "STE"], []]
    assert list(meta.age) == [61.0] * 3 and list(meta.n_samples) == [3000] * 3
    assert reader.label_scheme().classes("cpsc2018") == list(CPSC2018_CLASSES)


def test_reference_codes_map_to_classes(tmp_path):
    ref = write_reference(tmp_path, [f"A000{i},{i},," for i in range(1, 10)])
    labels = read_reference(ref)
    assert [labels[f"A000{i}"][0] for i in range(1, 10)] == [
        "NORM",
        "AF",
        "IAVB",
        "LBBB",
        "RBBB",
        "PAC",
        "PVC",
        "STD",
        "STE",
    ]


def test_bad_reference_code(tmp_path, data):
    write_ecg(tmp_path, "A0001", data)
    write_reference(tmp_path, ["A0001,5,,", "A0002,10,,"])
    with pytest.raises(
        ValueError, match=r"REFERENCE.csv: line 3: First_label '10' is not a CPSC2018 class code"
    ):
        read_reference(tmp_path / "REFERENCE.csv")  # the reader itself now skips that row (test_bad_input.py)


def test_without_reference_labels_are_absent(tmp_path, data):
    write_ecg(tmp_path, "A0001", data)
    reader = CPSC2018Reader(tmp_path)
    assert not reader.labels_available
    assert reader.labels_of("A0001") is None
    meta = reader.metadata()
    assert "labels_cpsc2018" not in meta.columns  # absent, not "every record unlabelled"
    assert meta.codes.tolist() == [[]]
    assert reader.describe()["labels"] == "absent (no REFERENCE.csv)"


@pytest.mark.parametrize(
    "content, match",
    [
        ({"val": np.zeros((12, 10))}, "no MATLAB struct 'ECG'"),
        ({"ECG": {"sex": "Male", "age": 3}}, "no field 'data'"),
        (
            {"ECG": {"sex": "Male", "age": 3, "data": np.zeros((11, 100))}},
            r"\(12, samples\) array, got float64 \(11, 100\)",
        ),
    ],
)
def test_bad_struct(tmp_path, content, match):
    scipy.io.savemat(tmp_path / "A0001.mat", content)
    with pytest.raises(RecordError, match=match) as err:
        CPSC2018Reader(tmp_path).read(0)
    assert err.value.source.endswith("A0001.mat")


def test_all_nan_lead_and_corrupt_file(tmp_path, data):
    bad = data.copy()
    bad[2] = np.nan
    write_ecg(tmp_path, "A0001", bad)
    write_ecg(tmp_path, "A0002", data)
    (tmp_path / "A0003.mat").write_bytes(b"MATLAB 5.0 but truncated")
    reader = CPSC2018Reader(tmp_path)
    with pytest.raises(RecordError, match="lead.*III.*no finite sample") as err:
        reader.read(0)
    assert err.value.source.endswith("A0001.mat")
    with pytest.raises(RecordError, match="cannot read MATLAB file"):
        reader.read(2)
    skipped = []
    assert [r.record_id for r in reader.iter_records(on_skip=skipped.append)] == ["A0002"]
    assert [s.record_id for s in skipped] == ["A0001", "A0003"]
    scan = reader.scan()
    assert scan.records == 1 and [s.record_id for s in scan.skipped] == ["A0001", "A0003"]


def test_age_and_sex_oddities(tmp_path, data):
    write_ecg(tmp_path, "A0001", data, sex="Unknown", age=float("nan"))
    write_ecg(tmp_path, "A0002", data, sex="female", age=-1)
    reader = CPSC2018Reader(tmp_path)
    assert [(r.age, r.sex) for r in reader.iter_records()] == [(None, None), (None, "F")]


def test_detect(tmp_path, data):
    cpsc = tmp_path / "cpsc"
    write_ecg(cpsc / "TrainingSet1", "A0001", data)
    assert CPSC2018Reader.detect(cpsc) and detect_format(cpsc) == "cpsc2018"
    challenge = tmp_path / "challenge"  # the same names in the challenge layout: .hea + .mat with val
    challenge.mkdir()
    scipy.io.savemat(challenge / "A0001.mat", {"val": np.zeros((12, 10), np.int16)}, format="4")
    (challenge / "A0001.hea").write_text("A0001 12 500 10\n")
    assert not CPSC2018Reader.detect(challenge)
    other = tmp_path / "other"
    other.mkdir()
    scipy.io.savemat(other / "A0001.mat", {"val": np.zeros((12, 10))})
    assert not CPSC2018Reader.detect(other)
    with pytest.raises(FileNotFoundError, match="no CPSC2018 A\\*.mat"):
        CPSC2018Reader(challenge)


@pytest.mark.realdata
def test_real_cpsc2018_samples(shared_data):
    root = shared_data / "samples" / "cpsc2018"
    reader = CPSC2018Reader(root)
    assert len(reader) == 10 and detect_format(root) == "cpsc2018"
    start = time.perf_counter()
    records = [reader.read(i) for i in range(len(reader))]
    elapsed = time.perf_counter() - start
    print(f"read 10 cpsc2018 samples in {elapsed * 1000:.0f} ms")
    assert [r.record_id for r in records] == [f"A{n}" for n in range(1980, 1990)]
    for rec in records:
        assert rec.leads == LEADS_12 and rec.fs == 500
        assert 6 <= rec.seconds <= 60
        median_ii = float(np.median(np.abs(rec.lead("II"))))
        assert 0.01 < median_ii < 5, (rec.record_id, median_ii)
        assert rec.age is not None and 0 < rec.age < 120
        assert rec.sex in ("M", "F")
        assert rec.codes == ()
    assert [r.sex for r in records[:3]] == ["M", "F", "M"] and records[0].age == 52.0
    meta = reader.metadata()
    assert "labels_cpsc2018" not in meta.columns
