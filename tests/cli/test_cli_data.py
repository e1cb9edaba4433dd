from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from ecgalign.cli.main import app
from ecgalign.data.labels import scp_scheme
from ecgalign.data.record import LEADS_12, ECGRecord
from ecgalign.data.store import StoreSpec, StoreWriter

runner = CliRunner()


def tiny_store(path, n=6):
    writer = StoreWriter(path, StoreSpec(100.0, 200, LEADS_12, shard_records=4), scp_scheme(), info={"dataset": "toy"})
    codes = [("NORM", "SR"), ("IMI", "SR"), ("CLBBB", "AFIB"), ("NORM", "SBRAD"), ("LVH", "ISC_", "SR"), ("NORM", "SR")]
    for i in range(n):
        sig = np.random.default_rng(i).standard_normal((12, 200)).astype(np.float32)
        rec = ECGRecord(sig, 100.0, LEADS_12, f"t{i}", "toy", patient_id=f"p{i % 4}", age=50.0 + i, sex="MF"[i % 2],
                        report="sinus rhythm", codes=codes[i % len(codes)], code_system="scp", fold=i + 1)
        writer.add(rec, i + 1)
    return writer.close()


def test_version_and_help():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("ecgalign ")
    result = runner.invoke(app, ["data", "--help"])
    for command in ("download", "convert", "info", "synth", "lead-snr"):
        assert command in result.output


def test_info_json_on_a_store(tmp_path):
    tiny_store(tmp_path / "s")
    result = runner.invoke(app, ["data", "info", str(tmp_path / "s"), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    for key in ("dataset", "records", "sampling_rates", "leads", "label_counts", "skipped"):
        assert key in info
    assert info["records"] == 6 and info["sampling_rates"] == [100.0] and info["leads"] == list(LEADS_12)
    assert info["label_counts"]["superdiagnostic"] == {"CD": 1, "HYP": 1, "MI": 1, "NORM": 3, "STTC": 1}
    assert info["label_counts"]["rhythm"]["SR"] == 4 and info["label_counts"]["rhythm"]["AFIB"] == 1
    assert info["patients"] == 4 and info["sex"] == {"M": 3, "F": 3}


def test_info_human_readable(tmp_path):
    tiny_store(tmp_path / "s")
    result = runner.invoke(app, ["data", "info", str(tmp_path / "s")])
    assert result.exit_code == 0 and "superdiagnostic" in result.output and "NORM" in result.output


def test_lead_snr_on_a_store(tmp_path):
    tiny_store(tmp_path / "s")
    result = runner.invoke(app, ["data", "lead-snr", str(tmp_path / "s"), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["records"] == 6 and set(out["leads"]) == {"III", "aVR", "aVL", "aVF"}
    assert out["leads"]["III"]["mean_db"] < 10  # random leads do not obey Einthoven


def test_wrong_folder_gives_a_clear_error(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    result = runner.invoke(app, ["data", "info", str(tmp_path)])
    assert result.exit_code == 2
    assert "not a dataset folder ecgalign can read" in result.output and str(tmp_path) in result.output
    result = runner.invoke(app, ["data", "info", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "no such dataset folder" in result.output


def test_real_ptbxl_info_and_convert_keep_the_chosen_rate(shared_data, tmp_path):
    ptbxl = shared_data / "ptbxl-500"
    result = runner.invoke(app, ["data", "info", str(ptbxl), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["dataset"] == "ptbxl" and info["records"] == 500 and info["skipped"] == 0
    assert sum(info["label_counts"]["superdiagnostic"].values()) > 488  # multi-label: 488 records carry one
    assert info["records_without_label"]["superdiagnostic"] == 12
    out = tmp_path / "store"
    result = runner.invoke(app, ["data", "convert", str(ptbxl), str(out), "--source-fs", "100", "--limit", "12", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["records"] == 12
    from ecgalign.data.store import ECGStore

    store = ECGStore(out)
    assert store.fs == 100.0 and store.samples == 1000  # --source-fs without --fs keeps the recorded rate
