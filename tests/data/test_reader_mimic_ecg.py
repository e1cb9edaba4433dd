"""MIMIC-IV-ECG reader on a tiny MIMIC-IV-ECG v1.0 layout the tests write."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import wfdb

from ecgalign.data.readers import detect_format, open_dataset
from ecgalign.data.readers.mimic_ecg import REPORT_COLUMNS, MIMICECGReader
from ecgalign.data.record import LEADS_12, RecordError

HEADER_LEADS = ["I", "II", "III", "aVR", "aVF", "aVL", "V1", "V2", "V3", "V4", "V5", "V6"]  # MIMIC's order
FS, SAMPLES, GAIN = 500, 5000, 200.0
# (subject_id, study_id, report fields by index, rr_interval, p_axis, what is wrong)
STUDIES = [
    (10000032, 40689238, {0: "Sinus rhythm", 1: "Possible right atrial abnormality", 3: "Borderline ECG"}, 659, 81, None),
    (10000032, 49036311, {0: "  Sinus tachycardia ", 2: "Normal ECG except for rate"}, 600, 79, None),
    (10000980, 46642833, {0: "Atrial fibrillation with PVC(s) or aberrant ventricular conduction.", 5: "Abnormal ECG"},
     769, 29999, None),
    (10001884, 45227415, {}, 800, 60, "no-measurements"),
    (10001884, 45227416, {0: "Sinus rhythm"}, 700, 50, "truncated"),
    (10001884, 45227417, {0: "Sinus rhythm"}, 700, 50, "11-leads"),
]


def digital(study_id: int) -> np.ndarray:
    return np.random.default_rng(study_id).integers(-1000, 1000, size=(SAMPLES, 12))  # (T, leads)


def record_path(subject_id: int, study_id: int) -> str:
    return f"files/p{str(subject_id)[:4]}/p{subject_id}/s{study_id}/{study_id}"


def write_mimic(root: Path) -> Path:
    records, measurements = [], []
    for subject_id, study_id, statements, rr, p_axis, broken in STUDIES:
        path = record_path(subject_id, study_id)
        folder = root / Path(path).parent
        folder.mkdir(parents=True)
        d, leads = digital(study_id), HEADER_LEADS
        if broken == "11-leads":
            d, leads = d[:, :11], leads[:11]
        wfdb.wrsamp(str(study_id), fs=FS, units=["mV"] * len(leads), sig_name=leads, d_signal=d,
                    fmt=["16"] * len(leads), adc_gain=[GAIN] * len(leads), baseline=[0] * len(leads),
                    write_dir=str(folder))
        if broken == "truncated":
            dat = folder / f"{study_id}.dat"
            dat.write_bytes(dat.read_bytes()[:1000])
        records.append({"subject_id": subject_id, "study_id": study_id, "file_name": study_id,
                        "ecg_time": "2180-07-23 08:44:00", "path": path})
        if broken == "no-measurements":
            continue
        row = {"subject_id": subject_id, "study_id": study_id, "cart_id": 6848296, "ecg_time": "2180-07-23 08:44:00"}
        row.update({f"report_{k}": statements.get(k, "") for k in range(18)})
        row.update({"bandwidth": "0.005-150 Hz", "filtering": "60 Hz notch Baseline filter", "rr_interval": rr,
                    "p_onset": 40, "p_end": 128, "qrs_onset": 170, "qrs_end": 258, "t_end": 518, "p_axis": p_axis,
                    "qrs_axis": 77, "t_axis": 79})
        measurements.append(row)
    pd.DataFrame(records).to_csv(root / "record_list.csv", index=False)
    pd.DataFrame(measurements).to_csv(root / "machine_measurements.csv", index=False)
    return root


@pytest.fixture(scope="module")
def mimic_root(tmp_path_factory) -> Path:
    return write_mimic(tmp_path_factory.mktemp("mimic"))


@pytest.fixture()
def mimic_copy(mimic_root, tmp_path) -> Path:
    return Path(shutil.copytree(mimic_root, tmp_path / "mimic"))


def test_detected_and_opened_by_name(mimic_root):
    assert MIMICECGReader.detect(mimic_root) and detect_format(mimic_root) == "mimic-iv-ecg"
    reader = open_dataset(mimic_root)
    assert isinstance(reader, MIMICECGReader) and len(reader) == len(STUDIES)
    assert [reader.record_id(i) for i in range(len(reader))] == [str(s[1]) for s in STUDIES]
    assert "Gow" in reader.citation and "ODbL" in reader.licence
    assert reader.url == "https://physionet.org/content/mimic-iv-ecg/1.0/"


def test_signal_round_trips_in_millivolts_with_canonical_leads(mimic_root):
    reader = MIMICECGReader(mimic_root)
    for i in range(4):
        rec = reader.read(i)
        assert rec.signal.dtype == np.float32 and rec.signal.shape == (12, SAMPLES) and rec.fs == FS
        np.testing.assert_allclose(rec.signal, digital(STUDIES[i][1]).T / GAIN, rtol=0, atol=1e-6)
        assert rec.leads == ("I", "II", "III", "aVR", "aVF", "aVL", *LEADS_12[6:])  # the file's order
        assert rec.source.endswith(record_path(*STUDIES[i][:2]) + ".hea")


def test_record_fields_report_and_measurements(mimic_root):
    reader = MIMICECGReader(mimic_root)
    rec = reader.read(0)
    assert (rec.record_id, rec.patient_id, rec.dataset) == ("40689238", "10000032", "mimic-iv-ecg")
    assert rec.age is None and rec.sex is None and rec.fold is None and rec.codes == ()
    # report_2 is empty between report_1 and report_3: statements keep their order, empties are dropped
    assert rec.report_original == "Sinus rhythm\nPossible right atrial abnormality\nBorderline ECG"
    assert isinstance(rec.report, str) and rec.report.strip()
    assert reader.read(1).report_original == "Sinus tachycardia\nNormal ECG except for rate"
    extra = rec.extra
    assert extra["subject_id"] == 10000032 and extra["study_id"] == 40689238 and extra["cart_id"] == "6848296"
    assert extra["rr_interval"] == 659 and extra["qrs_axis"] == 77 and extra["p_axis"] == 81
    assert extra["bandwidth"] == "0.005-150 Hz" and extra["ecg_time"] == "2180-07-23 08:44:00"
    assert reader.read(2).extra["p_axis"] is None  # 29999: not measured
    no_row = reader.read(3)
    assert no_row.report == "" and no_row.report_original == "" and no_row.extra["rr_interval"] is None
    json.dumps(extra)


def test_report_is_normalised_sentences(mimic_root, monkeypatch):
    """The statements become one text of sentences before ``normalize_report`` sees it."""
    import ecgalign.data.readers.mimic_ecg as module

    seen = []
    monkeypatch.setattr(module, "_normalize", lambda text: seen.append(text) or text.lower())
    report, original = MIMICECGReader(mimic_root).report(2)
    assert seen == ["Atrial fibrillation with PVC(s) or aberrant ventricular conduction. Abnormal ECG."]
    assert report == seen[0].lower() and original.endswith("conduction.\nAbnormal ECG")


@pytest.mark.parametrize(
    ("index", "file", "problem"),
    [(4, "45227416.dat", "signal file is truncated"), (5, "45227417.hea", "record has 11 leads")],
)
def test_broken_records_raise_naming_the_file(mimic_root, index, file, problem):
    with pytest.raises(RecordError) as info:
        MIMICECGReader(mimic_root).read(index)
    assert Path(info.value.source).name == file and problem in info.value.problem


def test_missing_header_and_scan(mimic_copy, monkeypatch):
    (mimic_copy / f"{record_path(*STUDIES[1][:2])}.hea").unlink()
    monkeypatch.setattr(wfdb, "rdrecord", _no_decoding)
    reader = MIMICECGReader(mimic_copy)
    with pytest.raises(RecordError, match=r"49036311\.hea: header file is missing"):
        reader.check(1)
    result = reader.scan()
    assert result.records == 3 and result.sampling_rates == [500.0] and result.leads == list(LEADS_12)
    assert {s.record_id: Path(s.source).name for s in result.skipped} == {
        "49036311": "49036311.hea", "45227416": "45227416.dat", "45227417": "45227417.hea",
    }


def test_metadata_from_the_csvs_alone(mimic_root, monkeypatch):
    reader = MIMICECGReader(mimic_root)
    with monkeypatch.context() as patch:
        patch.setattr(wfdb, "rdrecord", _no_decoding)
        patch.setattr(wfdb, "rdheader", _no_decoding)
        meta = reader.metadata()
    assert list(meta.record_id) == [str(s[1]) for s in STUDIES]
    assert list(meta.patient_id) == [str(s[0]) for s in STUDIES]
    for column in ("age", "sex", "report", "report_original", "codes", "fold", "fs"):
        assert column in meta
    assert meta.codes.tolist() == [[]] * len(STUDIES) and (meta.fs == 500.0).all()
    assert meta.report_original[0] == reader.report(0)[1] == reader.read(0).report_original
    assert meta.report[3] == "" and all(isinstance(r, str) and r for r in meta.report[[0, 1, 2, 4]])
    assert reader.label_scheme().set_names() == []


def test_missing_tables_and_columns(mimic_copy):
    measurements = pd.read_csv(mimic_copy / "machine_measurements.csv")
    measurements.drop(columns=["report_17"]).to_csv(mimic_copy / "machine_measurements.csv", index=False)
    with pytest.raises(ValueError, match=r"machine_measurements\.csv: missing column\(s\) 'report_17'"):
        MIMICECGReader(mimic_copy)
    records = pd.read_csv(mimic_copy / "record_list.csv")
    records.drop(columns=["path"]).to_csv(mimic_copy / "record_list.csv", index=False)
    with pytest.raises(ValueError, match=r"record_list\.csv: missing column\(s\) 'path'"):
        MIMICECGReader(mimic_copy)
    records.to_csv(mimic_copy / "record_list.csv", index=False)
    (mimic_copy / "machine_measurements.csv").unlink()
    assert not MIMICECGReader.detect(mimic_copy)
    with pytest.raises(FileNotFoundError, match=r"machine_measurements\.csv"):
        MIMICECGReader(mimic_copy)


def test_report_columns_are_the_18_statement_fields():
    assert REPORT_COLUMNS == tuple(f"report_{k}" for k in range(18))


def _no_decoding(*args, **kwargs):
    raise AssertionError("signals and headers must not be read here")
