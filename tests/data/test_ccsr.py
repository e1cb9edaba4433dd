"""ICD-10 -> CCSR CIR categories and the diagnoses-to-ECG linker, on MIMIC-shaped fixtures written here."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from ecgalign.cli.main import app

from ecgalign.data.labels.ccsr import (cir_categories, cir_map, link_diagnoses, load_dxccsr, normalize_icd,
                                       paper_table2)


def test_paper_table2_as_printed() -> None:
    table = paper_table2()
    assert len(table) == 51 and len({c for cats in table.values() for c in cats}) == 15
    assert table["I5022"] == ("CIR022",) and table["I509"] == ("CIR023",) and table["I4891"] == ("CIR029",)
    assert table["I110"] == ("CIR007",) and table["I739"] == ("CIR036",)


def test_cir_category_list() -> None:
    cats = cir_categories()
    assert list(cats) == [f"CIR{i:03d}" for i in range(1, 40)]
    assert cats["CIR019"] == "Heart failure" and cats["CIR017"] == "Cardiac dysrhythmias"


def test_normalize() -> None:
    assert normalize_icd(" i50.22 ") == "I5022"


def test_load_dxccsr_reads_hcup_format(tmp_path: Path) -> None:
    path = tmp_path / "DXCCSR_v2023-1.csv"
    path.write_text(
        "'ICD-10-CM CODE','ICD-10-CM CODE DESCRIPTION','Default CCSR CATEGORY IP','CCSR CATEGORY 1',"
        "'CCSR CATEGORY 1 DESCRIPTION','CCSR CATEGORY 2','CCSR CATEGORY 2 DESCRIPTION'\n"
        "'I5022','Chronic systolic heart failure','CIR019','CIR019','Heart failure',' ',' '\n"
        "'I110','Hypertensive heart disease with heart failure','CIR008','CIR008','Hypertension with "
        "complications','CIR019','Heart failure'\n"
        "'E119','Type 2 diabetes','END002','END002','Diabetes',' ',' '\n")
    full = load_dxccsr(path)
    assert full["I110"] == ("CIR008", "CIR019") and full["E119"] == ("END002",)
    assert cir_map(full) == {"I5022": ("CIR019",), "I110": ("CIR008", "CIR019")}
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a DXCCSR file"):
        load_dxccsr(bad)


def _fixtures() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    admissions = pd.DataFrame({
        "subject_id": [1, 1, 2, 3],
        "hadm_id": [100, 101, 200, 300],
        "admittime": ["2150-01-01 10:00", "2150-06-01 08:00", "2151-02-02 00:00", "bad"],
        "dischtime": ["2150-01-05 12:00", "2150-06-03 08:00", "2151-02-10 00:00", "2151-01-01"],
    })
    diagnoses = pd.DataFrame({
        "subject_id": [1, 1, 1, 2, 2, 3],
        "hadm_id": [100, 100, 101, 200, 200, 300],
        "seq_num": [1, 2, 1, 1, 2, 1],
        "icd_code": ["I5022", "I4891", "I110", "4280", "I509", "I5022"],
        "icd_version": [10, 10, 10, 9, 10, 10],
    })
    ecgs = pd.DataFrame({
        "subject_id": [1, 1, 1, 2, 3, 4],
        "study_id": [11, 12, 13, 21, 31, 41],
        "ecg_time": ["2150-01-02 09:00", "2150-06-03 09:00", "2150-03-01 00:00", "2151-02-05 00:00",
                     "2151-01-01 00:00", "2150-01-02 09:00"],
    })
    return ecgs, diagnoses, admissions


def test_link_by_subject_and_time_window() -> None:
    ecgs, dx, adm = _fixtures()
    out = link_diagnoses(ecgs, dx, adm).set_index("study_id")
    assert list(out.columns[:1]) == ["subject_id"] and "CIR022" in out.columns
    assert out.loc[11, ["CIR022", "CIR029"]].tolist() == [1, 1] and out.loc[11, "n_admissions"] == 1
    assert out.loc[12].drop(["subject_id", "n_admissions"]).sum() == 0  # 1 h after discharge: outside
    assert out.loc[13, "n_admissions"] == 0  # between admissions
    assert out.loc[21, "CIR023"] == 1 and out.loc[21, "CIR022"] == 0  # ICD-9 4280 ignored
    assert out.loc[31, "n_admissions"] == 0  # admission with an unreadable time is dropped
    assert out.loc[41, "n_admissions"] == 0  # subject without admissions
    wide = link_diagnoses(ecgs, dx, adm, after=pd.Timedelta(hours=2)).set_index("study_id")
    assert wide.loc[12, "CIR007"] == 1 and wide.loc[12, "n_admissions"] == 1


def test_link_with_other_mapping_and_errors() -> None:
    ecgs, dx, adm = _fixtures()
    out = link_diagnoses(ecgs, dx, adm, mapping={"I5022": ("CIR019",), "I509": ("CIR019",)})
    assert list(out.columns) == ["study_id", "subject_id", "CIR019", "n_admissions"]
    assert out.CIR019.tolist() == [1, 0, 0, 1, 0, 0]
    with pytest.raises(ValueError, match="admissions: missing column"):
        link_diagnoses(ecgs, dx, adm.drop(columns="dischtime"))


def test_cli_cir_labels(tmp_path: Path) -> None:
    ecgs, dx, adm = _fixtures()
    (tmp_path / "hosp").mkdir()
    ecgs.to_csv(tmp_path / "record_list.csv", index=False)
    dx.to_csv(tmp_path / "hosp" / "diagnoses_icd.csv.gz", index=False)
    adm.to_csv(tmp_path / "hosp" / "admissions.csv", index=False)
    result = CliRunner().invoke(app, ["echo", "cir-labels", str(tmp_path / "record_list.csv"), str(tmp_path / "hosp"),
                                      "--out", str(tmp_path / "labels.csv"), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["ecgs"] == 6 and summary["linked"] == 2 and summary["positives"]["CIR022"] == 1
    assert pd.read_csv(tmp_path / "labels.csv").shape == (6, 2 + 15 + 1)
