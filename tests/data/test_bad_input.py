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
