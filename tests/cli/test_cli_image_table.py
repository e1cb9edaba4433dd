"""``ecgalign image-table``: images matched to a labelled dataset by record id, written as an evaluation table."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from PIL import Image
from typer.testing import CliRunner

from ecgalign.cli.images import candidate_ids, match_record
from ecgalign.cli.main import app
from ecgalign.data.labels import scp_scheme
from ecgalign.data.record import LEADS_12, ECGRecord
from ecgalign.data.store import StoreSpec, StoreWriter
from ecgalign.eval.data import load_eval_data

runner = CliRunner()
CODES = {"1": ("NORM", "SR"), "2": ("IMI", "AFIB"), "17": ("NDT", "LVH", "SR")}


def _store(path):
    writer = StoreWriter(path, StoreSpec(100.0, 1000, LEADS_12, encoding="int16"), scp_scheme(),
                         info={"dataset": "toy"})
    for k, (rid, codes) in enumerate(CODES.items()):
        signal = np.zeros((12, 1000), dtype=np.float32)
        writer.add(ECGRecord(signal, 100.0, LEADS_12, rid, "toy", patient_id=f"p{rid}", codes=codes,
                             code_system="scp", fold=k + 1), k + 1)
    writer.close()
    return path


def _png(path, size=(60, 40)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, "white").save(path)
    return path


def test_candidate_ids_cover_our_names_foreign_names_and_a_pattern():
    import re

    assert candidate_ids("toy_17_500hz", None)[:2] == ["toy_17_500hz", "17"]
    assert candidate_ids("00017_hr-0", None)[-1] == "00017"
    assert candidate_ids("scan-A17-x", re.compile(r"A(\d+)")) == ["17"]
    assert candidate_ids("scan", re.compile(r"A(\d+)")) == []
    assert match_record(["00017"], {"17": 4}, {17: 4}) == 4  # leading zeros: the same integer id
    assert match_record(["x", "18"], {"17": 4}, {17: 4}) is None


def test_image_table_labels_each_image_by_its_record_and_evaluation_reads_it(tmp_path):
    store = _store(tmp_path / "store")
    _png(tmp_path / "img" / "a" / "00017_hr-0.png")
    _png(tmp_path / "img" / "b" / "toy_1_100hz.jpg")
    _png(tmp_path / "img" / "00002_hr-0.png", (90, 70))
    out = tmp_path / "tables" / "eik.csv"
    result = runner.invoke(app, ["image-table", str(tmp_path / "img"), "--labels", str(store), "--out", str(out),
                                 "--task", "superdiagnostic,rhythm", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["images"] == 3 and summary["unmatched"] == 0
    table = pd.read_csv(out, dtype=str).set_index("record_id")
    assert table.loc["17", "image"].endswith("00017_hr-0.png") and table.loc["1", "image"].endswith(".jpg")
    assert table.loc["2", "rhythm"] == "AFIB" and table.loc["2", "fold"] == "2"
    assert table.loc["17", "superdiagnostic"] == "HYP;STTC" and table.loc["17", "patient_id"] == "p17"
    data = load_eval_data(out)  # the table is an evaluation dataset with the store's labels
    y, classes = data.labels("superdiagnostic")
    row = list(data.meta["record_id"]).index("17")
    assert {c for c, v in zip(classes, y[row]) if v} == {"HYP", "STTC"}
    assert data.code_system == "scp" and list(data.folds) == [2, 3, 1]


def test_image_table_counts_unmatched_images_and_refuses_bad_settings(tmp_path):
    store = _store(tmp_path / "store")
    _png(tmp_path / "img" / "00001_hr-0.png")
    _png(tmp_path / "img" / "00099_hr-0.png")
    (tmp_path / "img" / "notes.txt").write_text("not an image")
    out = tmp_path / "t.csv"
    result = runner.invoke(app, ["image-table", str(tmp_path / "img"), "--labels", str(store), "--out", str(out),
                                 "--json"])
    assert result.exit_code == 3
    summary = json.loads(result.stdout)
    assert summary["images"] == 1 and summary["unmatched"] == 1 and "00099" in summary["unmatched_images"][0]
    result = runner.invoke(app, ["image-table", str(tmp_path / "img"), "--labels", str(store), "--out", str(out),
                                 "--task", "nonsense"])
    assert result.exit_code == 2 and "nonsense" in result.output and "superdiagnostic" in result.output
    result = runner.invoke(app, ["image-table", str(tmp_path / "img"), "--labels", str(store), "--out", str(out),
                                 "--id-pattern", "B(\\d+)"])
    assert result.exit_code == 2 and "--id-pattern" in result.output
    result = runner.invoke(app, ["image-table", str(tmp_path / "img" / "notes.txt"), "--labels", str(store),
                                 "--out", str(out)])
    assert result.exit_code == 2 and "not an image file" in result.output
