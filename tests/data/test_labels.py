from __future__ import annotations

import pandas as pd
import pytest

from ecgalign.data.labels import BENCHMARK_LABEL_SETS, FixedScheme, SCPStatements, parse_scp_codes, scp_scheme


def test_bundled_table_has_the_benchmark_sizes():
    s = SCPStatements.bundled()
    sizes = {name: len(s.classes(name)) for name in (*BENCHMARK_LABEL_SETS, "diagnostic")}
    assert sizes == {"superdiagnostic": 5, "subdiagnostic": 23, "form": 19, "rhythm": 12, "all": 71, "diagnostic": 44}
    assert s.classes("superdiagnostic") == ["CD", "HYP", "MI", "NORM", "STTC"]


def test_mapping_rules_ignore_likelihood_and_unknown_codes():
    s = SCPStatements.bundled()
    codes = parse_scp_codes("{'IMI': 15.0, 'LNGQT': 0.0, 'SR': 0.0, 'PVC': 100.0, 'XYZ': 50.0}")
    sets = s.label_sets(codes)
    assert sets["superdiagnostic"] == ["MI", "STTC"]
    assert sets["subdiagnostic"] == ["IMI", "STTC"]
    assert sets["form"] == ["LNGQT", "PVC"]  # LNGQT is both diagnostic and form
    assert sets["rhythm"] == ["SR"]
    assert sets["all"] == ["IMI", "LNGQT", "PVC", "SR"]
    assert sets["diagnostic"] == ["IMI", "LNGQT"]


def test_from_csv_and_bad_inputs(tmp_path):
    table = pd.DataFrame(
        {"description": ["normal ECG", "sinus rhythm"], "diagnostic": [1, None], "form": [None, None], "rhythm": [None, 1],
         "diagnostic_class": ["NORM", None], "diagnostic_subclass": ["NORM", None]},
        index=["NORM", "SR"],
    )
    table.to_csv(tmp_path / "scp.csv")
    s = SCPStatements.from_csv(tmp_path / "scp.csv")
    assert s.classes("rhythm") == ["SR"] and s.classes("superdiagnostic") == ["NORM"]
    table.drop(columns=["form"]).to_csv(tmp_path / "bad.csv")
    with pytest.raises(ValueError, match="bad.csv: SCP statement table lacks columns \\['form'\\]"):
        SCPStatements.from_csv(tmp_path / "bad.csv")
    with pytest.raises(ValueError, match="unknown PTB-XL label set 'super'"):
        s.classes("super")
    with pytest.raises(ValueError, match="row 7: cannot parse scp_codes"):
        parse_scp_codes("{'NORM': 100", source="row 7")


def test_schemes():
    scheme = scp_scheme()
    assert scheme.code_system == "scp" and "rhythm" in scheme.set_names()
    fixed = FixedScheme("code", {"code": ["1dAVb", "RBBB", "AF"]})
    assert fixed.label_sets(["AF", "1dAVb", "other"]) == {"code": ["1dAVb", "AF"]}
    with pytest.raises(ValueError, match="unknown label set"):
        fixed.classes("x")
