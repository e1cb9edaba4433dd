"""CODEReader: CODE-15% (exams.csv + exams_partN.hdf5) and CODE-test (ecg_tracings.hdf5) on fixtures."""

from __future__ import annotations

import pickle
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from ecgalign.data.readers import detect_format
from ecgalign.data.readers.code15 import CODE_CLASSES, CODEReader, strip_zero_padding
from ecgalign.data.record import LEADS_12, RecordError

T = 4096


def padded(rng: np.random.Generator, length: int) -> np.ndarray:
    """(4096, 12) tracing: ``length`` recorded samples centred in zeros, as the CODE files store them."""
    x = np.zeros((T, 12), np.float32)
    start = (T - length) // 2
    x[start : start + length] = rng.normal(0, 0.3, size=(length, 12))
    return x


def write_code15(root: Path) -> dict[int, np.ndarray]:
    """Two parts (each ending with the exam_id 0 filler row) and exams.csv; returns exam_id -> tracing."""
    rng = np.random.default_rng(2)
    tracings = {11: padded(rng, 4000), 12: padded(rng, 2800), 21: padded(rng, T), 22: padded(rng, 4000)}
    root.mkdir(parents=True, exist_ok=True)
    for part, ids in ((0, [11, 12]), (1, [21, 22])):
        with h5py.File(root / f"exams_part{part}.hdf5", "w") as fh:
            fh["tracings"] = np.stack([tracings[i] for i in ids] + [np.zeros((T, 12), np.float32)])
            fh["exam_id"] = np.array(ids + [0])
    exams = pd.DataFrame(
        {
            "exam_id": [11, 12, 21, 22, 99],
            "age": [50, 60, 70, 80, 40],
            "is_male": [True, False, True, False, True],
            "nn_predicted_age": [51.0, 58.0, 71.0, 79.0, 40.0],
            "1dAVb": [False, True, False, False, False],
            "RBBB": [False, False, False, True, False],
            "LBBB": [False, False, False, False, False],
            "SB": [False, False, True, False, False],
            "ST": [False, False, False, True, False],
            "AF": [True, False, False, False, False],
            "patient_id": [1, 2, 3, 3, 4],
            "death": [False, None, None, None, None],
            "timey": [3.2, None, None, None, None],
            "normal_ecg": [False, False, True, False, True],
            "trace_file": ["exams_part0.hdf5"] * 2 + ["exams_part1.hdf5"] * 2 + ["exams_part9.hdf5"],
        }
    )
    pd.concat([exams, exams.iloc[:1]]).to_csv(root / "exams.csv", index=False)  # a repeated row is ignored
    return tracings


def write_code_test(root: Path, n: int = 3, annotations: bool = True) -> np.ndarray:
    rng = np.random.default_rng(3)
    tracings = np.stack([padded(rng, 4000) for _ in range(n)])
    root.mkdir(parents=True, exist_ok=True)
    with h5py.File(root / "ecg_tracings.hdf5", "w") as fh:
        fh["tracings"] = tracings
    pd.DataFrame({"age": [30 + i for i in range(n)], "sex": ["M", "F"] * (n // 2) + ["M"] * (n % 2)}).to_csv(
        root / "attributes.csv", index=False
    )
    if annotations:
        (root / "annotations").mkdir()
        gold = pd.DataFrame(0, index=range(n), columns=["1dAVb", "RBBB", "LBBB", "SB", "AF", "ST"])
        gold.loc[1, ["LBBB", "AF"]] = 1
        gold.to_csv(root / "annotations" / "gold_standard.csv", index=False)
        gold.assign(RBBB=1).to_csv(root / "annotations" / "dnn.csv", index=False)
    return tracings


def test_code15_records_padding_and_labels(tmp_path):
    tracings = write_code15(tmp_path)
    reader = CODEReader(tmp_path)
    assert reader.variant == "code15" and len(reader) == 4  # filler rows (exam_id 0) are not records
    assert [reader.record_id(i) for i in range(4)] == ["11", "12", "21", "22"]
    rec = reader.read(1)
    assert rec.signal.dtype == np.float32 and rec.signal.shape == (12, 2800)
    np.testing.assert_array_equal(rec.signal, tracings[12][648 : 648 + 2800].T)
    assert (rec.extra["pad_start"], rec.extra["pad_end"], rec.extra["stored_samples"]) == (648, 648, T)
    assert rec.leads == LEADS_12 and rec.fs == 400 and rec.dataset == "code15"
    assert (rec.record_id, rec.patient_id, rec.age, rec.sex) == ("12", "2", 60.0, "F")
    assert rec.codes == ("1dAVb",) and rec.code_system == "code" and rec.report == ""
    assert rec.source.endswith("exams_part0.hdf5") and rec.extra["normal_ecg"] is False
    full = reader.read(2)
    assert full.n_samples == T and full.extra["pad_start"] == 0
    assert reader.read(3).codes == ("RBBB", "ST") and reader.read(3).patient_id == "3"
    assert reader.read(0).extra["pad_start"] == 48


def test_code15_metadata_without_tracings(tmp_path):
    write_code15(tmp_path)
    reader = CODEReader(tmp_path)
    meta = reader.metadata()
    assert list(meta.record_id) == ["11", "12", "21", "22"]  # exam 99 is in exams.csv but in no part file
    assert list(meta.patient_id) == ["1", "2", "3", "3"]
    assert list(meta.sex) == ["M", "F", "M", "F"]
    assert list(meta.labels_code) == [["AF"], ["1dAVb"], ["SB"], ["RBBB", "ST"]]
    assert (
        reader.label_scheme().classes("code")
        == list(CODE_CLASSES)
        == ["1dAVb", "RBBB", "LBBB", "SB", "AF", "ST"]
    )


def test_amplitude_scale(tmp_path):
    tracings = write_code15(tmp_path)
    rec = CODEReader(tmp_path, amplitude_scale=0.5).read(2)
    np.testing.assert_allclose(rec.signal, 0.5 * tracings[21].T, rtol=1e-6)
    with pytest.raises(ValueError, match="amplitude_scale"):
        CODEReader(tmp_path, amplitude_scale=0)


def test_random_access_keeps_one_handle_per_part_and_pickles(tmp_path):
    tracings = write_code15(tmp_path)
    reader = CODEReader(tmp_path)
    assert reader._handles == {}  # lazily opened
    np.testing.assert_array_equal(reader.read(3).signal, tracings[22][48:-48].T)
    np.testing.assert_array_equal(reader.read(0).signal, tracings[11][48:-48].T)
    assert sorted(reader._handles) == [0, 1]
    clone = pickle.loads(pickle.dumps(reader))
    np.testing.assert_array_equal(clone.read(1).signal, reader.read(1).signal)
    reader.close()
    assert reader._handles == {}
    with reader:
        assert reader.read(2).record_id == "21"
    assert reader._handles == {}
    with pytest.raises(IndexError):
        reader.read(4)


def test_zeros_inside_the_recording_are_kept():
    x = np.zeros((10, 12), np.float32)
    x[2:8] = 1.0
    x[4] = 0.0
    kept, start, end = strip_zero_padding(x)
    assert (kept.shape[0], start, end) == (6, 2, 2) and not kept[2].any()
    empty, start, end = strip_zero_padding(np.zeros((10, 12), np.float32))
    assert empty.shape[0] == 0 and (start, end) == (10, 0)


def test_code_test_layout(tmp_path):
    tracings = write_code_test(tmp_path)
    reader = CODEReader(tmp_path)
    assert reader.variant == "code-test" and len(reader) == 3 and detect_format(tmp_path) == "code15"
    rec = reader.read(1)
    np.testing.assert_array_equal(rec.signal, tracings[1][48:-48].T)
    assert (rec.record_id, rec.dataset, rec.patient_id, rec.age, rec.sex) == (
        "1",
        "code-test",
        None,
        31.0,
        "F",
    )
    assert rec.codes == ("LBBB", "AF")  # gold standard, not dnn.csv
    assert "normal_ecg" not in rec.extra
    assert list(reader.metadata().labels_code) == [[], ["LBBB", "AF"], []]


def test_code_test_without_annotations_has_no_labels(tmp_path):
    write_code_test(tmp_path, annotations=False)
    reader = CODEReader(tmp_path)
    assert "labels_code" not in reader.metadata().columns
    assert reader.read(0).codes == () and reader.describe()["labels"] == "absent"


def test_all_zero_tracing_and_nan_lead(tmp_path):
    tracings = write_code_test(tmp_path)
    tracings[0] = 0.0
    tracings[2, :, 5] = np.nan
    with h5py.File(tmp_path / "ecg_tracings.hdf5", "w") as fh:
        fh["tracings"] = tracings
    reader = CODEReader(tmp_path)
    with pytest.raises(RecordError, match="row 0 .* all zeros") as err:
        reader.read(0)
    assert err.value.source.endswith("ecg_tracings.hdf5")
    with pytest.raises(RecordError, match="lead.*aVF.*no finite sample"):
        reader.read(2)
    skipped = []
    assert [r.record_id for r in reader.iter_records(on_skip=skipped.append)] == ["1"]
    assert [s.record_id for s in skipped] == ["0", "2"]


def test_index_out_of_range_and_missing_keys(tmp_path):
    write_code15(tmp_path)
    with h5py.File(tmp_path / "exams_part1.hdf5", "w") as fh:  # exam_id lists 2 records, tracings holds 1
        fh["tracings"] = np.ones((1, T, 12), np.float32)
        fh["exam_id"] = np.array([21, 22])
    with h5py.File(tmp_path / "exams_part2.hdf5", "w") as fh:
        fh["exam_id"] = np.array([31])
    with h5py.File(tmp_path / "exams_part3.hdf5", "w") as fh:
        fh["tracings"] = np.ones((1, T, 12), np.float32)
    reader = CODEReader(tmp_path)
    assert [reader.record_id(i) for i in range(len(reader))] == ["11", "12", "21", "22", "31"]
    with pytest.raises(RecordError, match=r"row 1 \(record 22\) out of range: 'tracings' has 1 rows") as err:
        reader.read(3)
    assert err.value.source.endswith("exams_part1.hdf5")
    with pytest.raises(RecordError, match="no dataset 'tracings'") as err:
        reader.read(4)
    assert err.value.source.endswith("exams_part2.hdf5")
    scan = reader.scan()
    assert scan.records == 3 and scan.sampling_rates == [400.0] and scan.leads == list(LEADS_12)
    problems = {s.record_id: (Path(s.source).name, s.problem) for s in scan.skipped}
    assert set(problems) == {"exams_part3.hdf5", "22", "31"}
    assert "no dataset 'exam_id'" in problems["exams_part3.hdf5"][1]
    assert problems["31"][0] == "exams_part2.hdf5"


def test_wrong_lead_count(tmp_path):
    write_code_test(tmp_path)
    with h5py.File(tmp_path / "ecg_tracings.hdf5", "w") as fh:
        fh["tracings"] = np.ones((3, T, 8), np.float32)
    with pytest.raises(RecordError, match=r"\(records, samples, 12 leads\), got shape \(3, 4096, 8\)"):
        CODEReader(tmp_path).read(0)


def test_detect(tmp_path):
    write_code15(tmp_path / "c15")
    assert CODEReader.detect(tmp_path / "c15") and detect_format(tmp_path / "c15") == "code15"
    assert not CODEReader.detect(tmp_path)
    with pytest.raises(FileNotFoundError, match="ecg_tracings.hdf5"):
        CODEReader(tmp_path)
