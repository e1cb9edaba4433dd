"""PTB-XL reader on a PTB-XL-layout folder the tests write (4 good records + one broken record of each kind),
and on ../shared/data/ptbxl-500 when present."""

from __future__ import annotations

import ast
import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import wfdb

from ecgalign.data.readers import detect_format, open_dataset
from ecgalign.data.readers.ptbxl import PTBXLReader
from ecgalign.data.record import LEADS_12, RecordError

HEADER_LEADS = ["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]  # as PTB-XL writes them
STATEMENTS = pd.DataFrame(
    [
        ("NORM", "normal ECG", 1, None, None, "NORM", "NORM"),
        ("IMI", "inferior myocardial infarction", 1, None, None, "MI", "IMI"),
        ("LVH", "left ventricular hypertrophy", 1, None, None, "HYP", "LVH"),
        ("NDT", "non-diagnostic T abnormalities", 1, 1, None, "STTC", "STTC"),
        ("LVOLT", "low QRS voltages", None, 1, None, None, None),
        ("SR", "sinus rhythm", None, None, 1, None, None),
        ("AFIB", "atrial fibrillation", None, None, 1, None, None),
    ],
    columns=["code", "description", "diagnostic", "form", "rhythm", "diagnostic_class", "diagnostic_subclass"],
).set_index("code")
# ecg_id -> (scp_codes, report, what is wrong with the record)
ROWS = {
    1: ("{'NORM': 100.0, 'LVOLT': 0.0, 'SR': 0.0}", "sinusrhythmus periphere niederspannung", None),
    2: ("{'SR': 0.0, 'IMI': 50.0, 'LVH': 100.0}", "sinusrhythmus linkstyp lvh", None),
    3: ("{'AFIB': 100.0, 'NDT': 35.0}", "vorhofflimmern", None),
    4: ("{'NORM': 100.0}", "sinusrhythmus normales ekg", None),
    5: ("{'NORM': 100.0}", "sinusrhythmus", "truncated"),
    6: ("{'NORM': 100.0}", "sinusrhythmus", "no-header"),
    7: ("{'NORM': 100.0}", "sinusrhythmus", "nan-lead"),
    8: ("{'NORM': 100.0}", "sinusrhythmus", "11-leads"),
    9: ("{'NORM': 100.0, 'SR'", "sinusrhythmus", "bad-scp"),
}
SAMPLES = {100: 100, 500: 500}  # 1 s records keep the fixture tiny


def digital(ecg_id: int, fs: int) -> np.ndarray:
    return np.random.default_rng(ecg_id * 1000 + fs).integers(-3000, 3000, size=(SAMPLES[fs], 12))  # (T, leads)


def write_ptbxl(root: Path) -> Path:
    rows = []
    for ecg_id, (scp, report, broken) in ROWS.items():
        for fs, suffix in ((100, "lr"), (500, "hr")):
            folder = root / f"records{fs}" / "00000"
            folder.mkdir(parents=True, exist_ok=True)
            d = digital(ecg_id, fs)
            leads = HEADER_LEADS
            if broken == "nan-lead":
                d[:, 8] = -32768  # WFDB's invalid sample in every row of V3
            if broken == "11-leads":
                d, leads = d[:, :11], leads[:11]
            name = f"{ecg_id:05d}_{suffix}"
            wfdb.wrsamp(name, fs=fs, units=["mV"] * len(leads), sig_name=leads, d_signal=d, fmt=["16"] * len(leads),
                        adc_gain=[1000.0] * len(leads), baseline=[0] * len(leads), write_dir=str(folder))
            if broken == "truncated":
                dat = folder / f"{name}.dat"
                dat.write_bytes(dat.read_bytes()[:-100])
            if broken == "no-header":
                (folder / f"{name}.hea").unlink()
        rows.append({
            "ecg_id": ecg_id, "patient_id": 15700.0 + ecg_id, "age": 300.0 if ecg_id == 2 else 40.0 + ecg_id,
            "sex": ecg_id % 2, "height": np.nan, "weight": 70.0, "nurse": 2.0, "site": 0.0, "device": "CS-12   E",
            "recording_date": f"1984-11-{ecg_id:02d} 09:17:34", "report": report, "scp_codes": scp,
            "heart_axis": "LAD" if ecg_id == 2 else np.nan, "validated_by_human": ecg_id != 3, "second_opinion": False,
            "static_noise": " , I-V1,  " if ecg_id == 1 else np.nan, "strat_fold": ecg_id,
            "filename_lr": f"records100/00000/{ecg_id:05d}_lr", "filename_hr": f"records500/00000/{ecg_id:05d}_hr",
        })
    pd.DataFrame(rows).to_csv(root / "ptbxl_database.csv", index=False)
    STATEMENTS.to_csv(root / "scp_statements.csv")
    return root


@pytest.fixture(scope="module")
def ptbxl_root(tmp_path_factory) -> Path:
    return write_ptbxl(tmp_path_factory.mktemp("ptbxl"))


@pytest.fixture()
def ptbxl_copy(ptbxl_root, tmp_path) -> Path:
    return Path(shutil.copytree(ptbxl_root, tmp_path / "ptbxl"))


def test_detected_and_opened_by_name(ptbxl_root):
    assert PTBXLReader.detect(ptbxl_root)
    assert detect_format(ptbxl_root) == "ptbxl"
    reader = open_dataset(ptbxl_root)
    assert isinstance(reader, PTBXLReader) and len(reader) == len(ROWS)
    assert [reader.record_id(i) for i in range(len(reader))] == [str(i) for i in ROWS]
    assert reader.licence == "CC BY 4.0" and "Wagner" in reader.citation and "Goldberger" in reader.citation
    assert reader.url == "https://physionet.org/content/ptb-xl/1.0.3/"


@pytest.mark.parametrize("fs", [100, 500])
def test_signal_round_trips_in_millivolts(ptbxl_root, fs):
    reader = PTBXLReader(ptbxl_root, fs=fs)
    for i in range(4):
        rec = reader.read(i)
        assert rec.signal.dtype == np.float32 and rec.signal.shape == (12, SAMPLES[fs])
        np.testing.assert_allclose(rec.signal, digital(i + 1, fs).T / 1000.0, rtol=0, atol=1e-6)
        assert rec.fs == fs and rec.leads == LEADS_12
        assert rec.source.endswith(f"records{fs}/00000/{i + 1:05d}_{'lr' if fs == 100 else 'hr'}.hea")


def test_record_fields(ptbxl_root):
    reader = PTBXLReader(ptbxl_root)
    rec = reader.read(1)  # ecg_id 2
    assert (rec.record_id, rec.patient_id, rec.dataset) == ("2", "15702", "ptbxl")
    assert rec.age == 90.0 and rec.sex == "M" and rec.fold == 2  # 300 = over 89; 0 = male
    assert reader.read(0).sex == "F" and reader.read(0).age == 41.0
    assert rec.codes == ("LVH", "IMI", "SR") and rec.code_system == "scp"  # by descending likelihood
    assert rec.report_original == "sinusrhythmus linkstyp lvh"
    assert isinstance(rec.report, str) and rec.report.strip()
    extra = rec.extra
    assert extra["scp_likelihood"] == {"SR": 0.0, "IMI": 50.0, "LVH": 100.0} and extra["ecg_id"] == 2
    assert extra["recording_date"] == "1984-11-02 09:17:34" and extra["device"] == "CS-12   E"
    assert extra["validated_by_human"] is True and extra["heart_axis"] == "LAD"
    assert extra["nurse"] == 2 and extra["weight"] == 70.0 and extra["height"] is None
    assert reader.read(0).extra["heart_axis"] is None and reader.read(2).extra["validated_by_human"] is False
    json.dumps(extra)


@pytest.mark.parametrize(
    ("index", "file", "problem"),
    [
        (4, "00005_lr.dat", "signal file is truncated"),
        (5, "00006_lr.hea", "header file is missing"),
        (6, "00007_lr.hea", "lead(s) V3 contain no finite sample"),
        (7, "00008_lr.hea", "record has 11 leads"),
        (8, "ptbxl_database.csv", "ecg_id 9: cannot parse scp_codes"),
    ],
)
def test_broken_records_raise_naming_the_file(ptbxl_root, index, file, problem):
    with pytest.raises(RecordError) as info:
        PTBXLReader(ptbxl_root).read(index)
    assert Path(info.value.source).name == file
    assert problem in info.value.problem and file in str(info.value)


def test_header_that_does_not_parse_and_missing_dat(ptbxl_copy):
    folder = ptbxl_copy / "records100" / "00000"
    (folder / "00001_lr.hea").write_text("00001_lr twelve 100 100\n")
    (folder / "00002_lr.dat").unlink()
    reader = PTBXLReader(ptbxl_copy)
    with pytest.raises(RecordError, match=r"00001_lr\.hea: header does not parse"):
        reader.read(0)
    with pytest.raises(RecordError, match=r"00002_lr\.dat: signal file is missing"):
        reader.read(1)


def test_scan_reports_header_level_problems_without_decoding(ptbxl_root, monkeypatch):
    monkeypatch.setattr(wfdb, "rdrecord", _no_decoding)
    result = PTBXLReader(ptbxl_root).scan()
    assert result.records == 5 and result.sampling_rates == [100.0] and result.leads == list(LEADS_12)
    # the all-NaN lead (ecg_id 7) is only visible once the signal is decoded
    assert {s.record_id: Path(s.source).name for s in result.skipped} == {
        "5": "00005_lr.dat", "6": "00006_lr.hea", "8": "00008_lr.hea", "9": "ptbxl_database.csv",
    }


def test_iteration_skips_and_reports_every_broken_record(ptbxl_root):
    skipped = []
    records = list(PTBXLReader(ptbxl_root, fs=500).iter_records(on_skip=skipped.append))
    assert [r.record_id for r in records] == ["1", "2", "3", "4"]
    assert [s.record_id for s in skipped] == ["5", "6", "7", "8", "9"]
    assert all(s.problem for s in skipped)


def test_metadata_and_label_sets_from_the_csv_alone(ptbxl_root, monkeypatch):
    monkeypatch.setattr(wfdb, "rdrecord", _no_decoding)
    reader = PTBXLReader(ptbxl_root)
    meta = reader.metadata().set_index("record_id")
    assert len(meta) == len(ROWS)
    for column in ("patient_id", "age", "sex", "report", "report_original", "codes", "fold", "fs"):
        assert column in meta
    row = meta.loc["2"]
    assert (row.patient_id, row.age, row.sex, row.fold, row.fs) == ("15702", 90.0, "M", 2, 100.0)
    assert row.codes == ["LVH", "IMI", "SR"] and row.report_original == "sinusrhythmus linkstyp lvh"
    assert row.labels_superdiagnostic == ["HYP", "MI"] and row.labels_subdiagnostic == ["IMI", "LVH"]
    assert row.labels_form == [] and row.labels_rhythm == ["SR"] and row.labels_all == ["IMI", "LVH", "SR"]
    row = meta.loc["3"]
    assert row.labels_superdiagnostic == ["STTC"] and row.labels_form == ["NDT"] and row.labels_rhythm == ["AFIB"]
    assert meta.loc["1"].labels_form == ["LVOLT"]
    assert meta.loc["9"].codes == [] and meta.loc["9"].labels_all == []  # bad literal: scan reports it
    assert reader.label_scheme().classes("superdiagnostic") == ["HYP", "MI", "NORM", "STTC"]  # the folder's table


def test_bundled_statement_table_without_scp_statements_csv(ptbxl_copy):
    (ptbxl_copy / "scp_statements.csv").unlink()
    scheme = PTBXLReader(ptbxl_copy).label_scheme()
    assert scheme.classes("superdiagnostic") == ["CD", "HYP", "MI", "NORM", "STTC"]
    assert len(scheme.classes("all")) == 71


def test_bad_arguments_and_missing_columns(ptbxl_copy):
    with pytest.raises(ValueError, match="100 and 500 Hz; got fs=250"):
        PTBXLReader(ptbxl_copy, fs=250)
    table = pd.read_csv(ptbxl_copy / "ptbxl_database.csv")
    table.drop(columns=["strat_fold"]).to_csv(ptbxl_copy / "ptbxl_database.csv", index=False)
    with pytest.raises(ValueError, match=r"ptbxl_database\.csv: missing column\(s\) 'strat_fold'"):
        PTBXLReader(ptbxl_copy)
    table.drop(columns=["filename_hr"]).to_csv(ptbxl_copy / "ptbxl_database.csv", index=False)
    assert len(PTBXLReader(ptbxl_copy, fs=100)) == len(ROWS)
    with pytest.raises(ValueError, match="'filename_hr'"):
        PTBXLReader(ptbxl_copy, fs=500)
    (ptbxl_copy / "ptbxl_database.csv").unlink()
    assert not PTBXLReader.detect(ptbxl_copy)
    with pytest.raises(FileNotFoundError, match="ptbxl_database.csv"):
        PTBXLReader(ptbxl_copy)


def _no_decoding(*args, **kwargs):
    raise AssertionError("signals must not be decoded here")


# ------------------------------------------------------------------------------------------- real data
@pytest.fixture(scope="module")
def ptbxl500(shared_data) -> Path:
    root = shared_data / "ptbxl-500"
    if not root.is_dir():
        pytest.skip("../shared/data/ptbxl-500 is not present")
    return root


@pytest.mark.realdata
@pytest.mark.parametrize("fs", [100, 500])
def test_real_ptbxl_opens_and_record_1_matches_wfdb(ptbxl500, fs):
    reader = open_dataset(ptbxl500, fs=fs)
    assert isinstance(reader, PTBXLReader) and len(reader) == 500
    scan = reader.scan()
    assert (scan.records, scan.sampling_rates, scan.leads, scan.skipped) == (500, [float(fs)], list(LEADS_12), [])
    rec = reader.read(0)
    reference, fields = wfdb.rdsamp(str(ptbxl500 / ("records100/00000/00001_lr" if fs == 100 else "records500/00000/00001_hr")))
    assert rec.record_id == "1" and rec.signal.shape == (12, 10 * fs) and fields["units"] == ["mV"] * 12
    np.testing.assert_allclose(rec.signal, reference.T, rtol=0, atol=1e-6)
    assert rec.leads == LEADS_12 and fields["sig_name"][3:6] == ["AVR", "AVL", "AVF"]
    assert rec.report_original == "sinusrhythmus periphere niederspannung" and rec.report.strip()


@pytest.mark.realdata
def test_real_headers_parse_as_wfdb_parses_them(ptbxl500):
    from ecgalign.data.readers.wfdb_io import parse_header

    for hea in sorted(ptbxl500.glob("records*/00000/*.hea"))[::20]:
        ours, ref = parse_header(hea), wfdb.rdheader(str(hea.with_suffix("")))
        assert (ours.fs, ours.n_samples, len(ours.leads)) == (ref.fs, ref.sig_len, ref.n_sig)
        assert [lead.upper() for lead in ours.leads] == [name.upper() for name in ref.sig_name]
        assert ours.files[0].path.name == ref.file_name[0] and ours.files[0].fmt == ref.fmt[0]


@pytest.mark.realdata
def test_real_label_counts_match_the_benchmark_rules(ptbxl500):
    """Counts through the reader equal counts computed here straight from the two CSVs, following Strodthoff et
    al. 2020: diagnostic == 1 -> diagnostic_class / diagnostic_subclass, form == 1, rhythm == 1, all; every
    listed statement counts whatever its likelihood."""
    database = pd.read_csv(ptbxl500 / "ptbxl_database.csv", index_col="ecg_id")
    statements = pd.read_csv(ptbxl500 / "scp_statements.csv", index_col=0)
    codes = database.scp_codes.apply(lambda text: list(ast.literal_eval(text)))
    diagnostic = statements[statements.diagnostic == 1]
    rules = {
        "superdiagnostic": lambda cs: {diagnostic.loc[c, "diagnostic_class"] for c in cs if c in diagnostic.index},
        "subdiagnostic": lambda cs: {diagnostic.loc[c, "diagnostic_subclass"] for c in cs if c in diagnostic.index},
        "form": lambda cs: {c for c in cs if c in statements.index and statements.loc[c, "form"] == 1},
        "rhythm": lambda cs: {c for c in cs if c in statements.index and statements.loc[c, "rhythm"] == 1},
        "all": set,
    }
    meta = PTBXLReader(ptbxl500).metadata()
    for name, rule in rules.items():
        expected = Counter(label for cs in codes for label in rule(cs))
        got = Counter(label for labels in meta[f"labels_{name}"] for label in labels)
        assert got == expected, name
    assert set(Counter(c for cs in meta.labels_superdiagnostic for c in cs)) == {"CD", "HYP", "MI", "NORM", "STTC"}
