"""Regression tests of the bad-input catalogue (docs/reliability.md): one bad file, record or cell is skipped,
counted and named; it never sinks a dataset and never escapes as an unnamed exception."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from ecgalign.cli.main import app
from ecgalign.data.readers.code15 import CODEReader
from ecgalign.data.record import RecordError
from tests.data.test_reader_challenge import digital as challenge_digital
from tests.data.test_reader_challenge import write_record as write_challenge
from tests.data.test_reader_code15 import T, write_code15
from tests.data.test_wfdb_io import digital as wfdb_digital
from tests.data.test_wfdb_io import write as write_wfdb

runner = CliRunner()


# ------------------------------------------------------------------------------------------------ CODE-15
def test_code15_truncated_part_is_reported_by_convert(tmp_path):
    src = tmp_path / "code15"
    write_code15(src)
    part = src / "exams_part1.hdf5"
    part.write_bytes(part.read_bytes()[:2000])  # truncated download
    result = runner.invoke(app, ["data", "convert", str(src), str(tmp_path / "store"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["records"] == 2
    assert [f["source"] for f in report["unreadable_files"]] == [str(part)]
    assert "cannot open HDF5 file" in report["unreadable_files"][0]["problem"]
    manifest = json.loads((tmp_path / "store" / "store.json").read_text())
    assert manifest["source"]["unreadable_files"] == report["unreadable_files"]
    text = runner.invoke(app, ["data", "convert", str(src), str(tmp_path / "store2")])
    assert text.exit_code == 0 and "exams_part1.hdf5" in text.output and "could not be read" in text.output


@pytest.mark.parametrize("dtype", ["string", "compound"])
def test_code15_string_or_compound_tracings_skip_per_record(tmp_path, dtype):
    src = tmp_path / "code15"
    write_code15(src)
    with h5py.File(src / "exams_part0.hdf5", "r+") as fh:
        del fh["tracings"]
        if dtype == "string":
            fh["tracings"] = np.full((3, T, 12), b"x", dtype="S1")
        else:
            fh["tracings"] = np.zeros((3, T, 12), dtype=[("a", "<f4"), ("b", "<i4")])
    reader = CODEReader(src)
    with pytest.raises(RecordError, match="exams_part0.hdf5.*real numbers"):
        reader.read(0)
    assert reader.read(2).record_id == "21"
    result = runner.invoke(app, ["data", "convert", str(src), str(tmp_path / "store"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["records"] == 2 and json.loads(result.stdout)["skipped"] == 2


def test_code15_string_exam_ids_make_that_part_unreadable(tmp_path):
    src = tmp_path / "code15"
    write_code15(src)
    with h5py.File(src / "exams_part0.hdf5", "r+") as fh:
        del fh["exam_id"]
        fh["exam_id"] = np.array([b"a", b"b", b"c"])
    reader = CODEReader(src)
    assert len(reader) == 2 and "'exam_id' is not integer" in reader.source_problems()[0].problem


# ------------------------------------------------------------------------------------------------ WFDB gain 0
def test_challenge_gain_zero_is_a_named_error(tmp_path):
    mv = np.random.default_rng(0).normal(0, 0.5, size=(12, 500))
    hea = write_challenge(tmp_path, "E00001", challenge_digital(mv), gain_field="0(0)/mV")
    from ecgalign.data.readers.challenge import ChallengeReader

    with pytest.raises(RecordError, match=r"E00001\.hea: signal line 1: ADC gain is 0"):
        ChallengeReader(tmp_path).read(0)
    assert str(hea) in str(ChallengeReader(tmp_path).scan().skipped[0].source)


def test_wfdb_gain_zero_is_a_named_error(tmp_path):
    hea = write_wfdb(tmp_path, "r1", wfdb_digital(50))
    text = hea.read_text().replace(" 1000.0(0)/mV", " 0(0)/mV").replace(" 1000(0)/mV", " 0(0)/mV")
    assert " 0(0)/mV" in text
    hea.write_text(text)
    from ecgalign.data.readers.wfdb_io import read_record

    with pytest.raises(RecordError, match=r"r1\.hea: signal line 1: ADC gain is 0"):
        read_record(hea)


# ------------------------------------------------------------------------------------------------ PTB-XL cells
def _ptbxl_with(tmp_path, ecg_id: int, column: str, value: object):
    import pandas as pd

    from tests.data.test_reader_ptbxl import write_ptbxl

    root = write_ptbxl(tmp_path / "ptbxl")
    table = pd.read_csv(root / "ptbxl_database.csv")
    table[column] = table[column].astype(object)
    table.loc[table.ecg_id == ecg_id, column] = value
    table.to_csv(root / "ptbxl_database.csv", index=False)
    return root


def test_ptbxl_scp_codes_with_none_likelihood_skips_that_row(tmp_path):
    from ecgalign.data.labels.scp import parse_scp_codes
    from ecgalign.data.readers.ptbxl import PTBXLReader

    with pytest.raises(ValueError, match=r"likelihood of 'NORM' is None"):
        parse_scp_codes("{'NORM': None}")
    reader = PTBXLReader(_ptbxl_with(tmp_path, 2, "scp_codes", "{'NORM': None}"))
    with pytest.raises(RecordError, match=r"ptbxl_database\.csv: ecg_id 2: scp_codes .*likelihood of 'NORM' is None"):
        reader.read(1)
    assert reader.read(0).record_id == "1"
    assert reader.metadata().loc[1, "codes"] == []
    assert any(s.record_id == "2" and "NORM" in s.problem for s in reader.scan().skipped)


@pytest.mark.parametrize("column", ["patient_id", "strat_fold"])
def test_ptbxl_non_numeric_cell_skips_that_row_only(tmp_path, column):
    from ecgalign.data.readers.ptbxl import PTBXLReader

    root = _ptbxl_with(tmp_path, 3, column, "abc")
    reader = PTBXLReader(root)
    meta = reader.metadata()  # the table still loads
    assert len(meta) == 9 and meta.loc[0, "record_id"] == "1"
    with pytest.raises(RecordError, match=rf"ptbxl_database\.csv: row 3 \(ecg_id 3\), column '{column}': 'abc' is not an integer"):
        reader.read(2)
    assert reader.read(0).record_id == "1" and reader.read(1).record_id == "2"
    result = runner.invoke(app, ["data", "convert", str(root), str(tmp_path / "store"), "--json", "--fs", "100",
                                 "--seconds", "1"])
    assert result.exit_code == 0, result.output
    skipped = (tmp_path / "store" / "skipped.csv").read_text()
    assert f"column '{column}'" in skipped and "row 3" in skipped


# ------------------------------------------------------------------------------------------------ CPSC2018
def test_cpsc_bad_reference_line_skips_that_record(tmp_path):
    from ecgalign.data.readers.cpsc2018 import CPSC2018Reader
    from tests.data.test_reader_cpsc2018 import write_ecg, write_reference

    data = np.random.default_rng(1).normal(0, 0.4, size=(12, 3000))
    write_ecg(tmp_path, "A0001", data)
    write_ecg(tmp_path, "A0002", data)
    write_reference(tmp_path, ["A0001,5,,", "A0002,10,,"])
    reader = CPSC2018Reader(tmp_path)
    assert reader.read(0).codes == ("RBBB",)
    with pytest.raises(RecordError, match=r"REFERENCE\.csv: line 3: First_label '10' is not a CPSC2018 class code"):
        reader.read(1)
    assert [s.record_id for s in reader.scan().skipped] == ["A0002"]


# ------------------------------------------------------------------------------------------------ WFDB '/'
@pytest.mark.parametrize("line", ["ab/cd ef", "rec/abc 12 500 5000", "a/b/2 12 500 5000", "/ 1 2 3", "x/1 12"])
def test_random_header_with_a_slash_is_not_called_multi_segment(tmp_path, line):
    from ecgalign.data.readers.wfdb_io import parse_header

    hea = tmp_path / "r.hea"
    hea.write_text(line + "\n")
    with pytest.raises(RecordError, match=r"r\.hea: header does not parse") as info:
        parse_header(hea)
    assert "multi-segment" not in str(info.value)
    hea.write_text("r/2 12 500 5000\nseg1 2500\nseg2 2500\n")
    with pytest.raises(RecordError, match="multi-segment records are not supported"):
        parse_header(hea)


# ------------------------------------------------------------------------------------------------ found by fuzzing
def test_code15_bad_exam_id_row_is_named_and_the_rest_indexed(tmp_path):
    import pandas as pd

    src = tmp_path / "code15"
    write_code15(src)
    exams = pd.read_csv(src / "exams.csv").astype({"exam_id": object, "patient_id": object})
    exams.loc[4, "exam_id"] = "x9"  # the unmatched row 99
    exams.loc[1, "patient_id"] = "p?"
    exams.to_csv(src / "exams.csv", index=False)
    reader = CODEReader(src)
    assert len(reader) == 4 and reader.read(1).patient_id is None and reader.read(0).patient_id == "1"
    assert [(p.record_id, p.problem) for p in reader.source_problems()] == [
        ("exams.csv row 5", "column 'exam_id': 'x9' is not an integer")]


def test_code15_damaged_hdf5_is_a_named_problem(tmp_path):
    src = tmp_path / "code15"
    write_code15(src)
    part = src / "exams_part0.hdf5"
    raw = bytearray(part.read_bytes())
    raw[800:1400] = bytes(range(256)) * 2 + bytes(88)  # superblock intact, B-tree garbage
    part.write_bytes(bytes(raw))
    reader = CODEReader(src)
    problems = {p.source for p in reader.source_problems()}
    for i in range(len(reader)):
        try:
            reader.read(i)
        except RecordError as exc:
            problems.add(exc.source)
    assert problems and problems <= {str(part)}


def test_mimic_non_integer_ids_and_measurements_skip_their_row(tmp_path):
    import pandas as pd

    from ecgalign.data.readers.mimic_ecg import MIMICECGReader
    from tests.data.test_reader_mimic_ecg import write_mimic

    root = write_mimic(tmp_path / "mimic")
    records = pd.read_csv(root / "record_list.csv").astype({"study_id": object})
    first = records.loc[0, "study_id"]
    records.loc[0, "study_id"] = "s-1"
    records.to_csv(root / "record_list.csv", index=False)
    table = pd.read_csv(root / "machine_measurements.csv").astype({"rr_interval": object})
    second = records.loc[1, "study_id"]
    table.loc[table.study_id == second, "rr_interval"] = "fast"
    table.to_csv(root / "machine_measurements.csv", index=False)
    reader = MIMICECGReader(root)
    assert len(reader) == len(records) - 1 and str(first) not in {reader.record_id(i) for i in range(len(reader))}
    assert reader.source_problems()[0].problem == "column 'study_id': 's-1' is not an integer"
    with pytest.raises(RecordError, match=rf"machine_measurements\.csv: study_id {second}, column 'rr_interval': 'fast'"):
        reader.read(0)


def test_npz_damaged_archive_is_an_input_error(tmp_path):
    from ecgalign.data.errors import InputError
    from ecgalign.data.readers.npz_signals import NPZSignalsReader

    np.savez(tmp_path / "signals.npz", X=np.zeros((2, 12, 10), np.float16))
    (tmp_path / "signals.npz").write_bytes((tmp_path / "signals.npz").read_bytes()[:100])
    with pytest.raises(InputError, match=r"signals\.npz: cannot read array X"):
        NPZSignalsReader(tmp_path)


def test_header_with_non_decimal_digits_does_not_parse(tmp_path):
    from ecgalign.data.readers.wfdb_io import parse_header

    (tmp_path / "r.hea").write_bytes("r 12 500 5000¹\n".encode("latin-1"))
    with pytest.raises(RecordError, match="must read 'NAME NSIG FS NSAMP'"):
        parse_header(tmp_path / "r.hea")


def test_store_with_damaged_metadata_names_the_file(tmp_path):
    from ecgalign.data.store import ECGStore
    from ecgalign.data.store_files import StoreIntegrityError
    from tests.data.test_store import make_record, write

    write(tmp_path / "s", [make_record(i) for i in range(3)])
    meta = tmp_path / "s" / "metadata.parquet"
    meta.write_bytes(meta.read_bytes()[:40] + bytes(200) + meta.read_bytes()[240:])
    store = ECGStore(tmp_path / "s")
    with pytest.raises(StoreIntegrityError, match=r"metadata\.parquet"):
        store.meta
    (tmp_path / "s" / "skipped.csv").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(StoreIntegrityError, match=r"skipped\.csv"):
        store.skipped()


def test_data_info_lists_rows_that_name_no_record(tmp_path):
    import pandas as pd

    from tests.data.test_reader_mimic_ecg import write_mimic

    root = write_mimic(tmp_path / "mimic")
    records = pd.read_csv(root / "record_list.csv").astype({"subject_id": object})
    records.loc[1, "subject_id"] = "[/]x"
    records.to_csv(root / "record_list.csv", index=False)
    result = runner.invoke(app, ["data", "info", str(root), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["unreadable_files"] == [{
        "record_id": "record_list.csv row 2", "source": str(root / "record_list.csv"),
        "problem": "column 'subject_id': '[/]x' is not an integer"}]
    text = runner.invoke(app, ["data", "info", str(root)])
    assert text.exit_code == 0 and "unreadable record_list.csv row 2" in text.output and "'[/]x'" in text.output
