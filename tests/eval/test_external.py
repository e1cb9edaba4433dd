"""External validation: train and select the probe on one dataset, test on another (issue 16)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from ecgalign.cli.main import app
from ecgalign.data.errors import InputError
from ecgalign.data.labels.cross_dataset import map_labels, shared_label_space
from ecgalign.eval.data import EvalData, check_disjoint, concat_eval_data
from ecgalign.eval.run import EvalConfig, external_split

runner = CliRunner()


def _data(path: str, records: list[str], patients: list[str], folds: list[int] | None = None,
          features: bool = True) -> EvalData:
    meta = pd.DataFrame({"position": np.arange(len(records)), "record_id": records, "patient_id": patients,
                         "labels_superdiagnostic": [["NORM"]] * len(records)})
    if folds is not None:
        meta["fold"] = folds
    x = np.arange(len(records) * 2, dtype=np.float32).reshape(-1, 2) if features else None
    return EvalData(path, path, "scp", meta, {"superdiagnostic": ["NORM", "MI"]}, x)


def test_identity_label_map_shares_every_class():
    space = shared_label_space("ptbxl-super", "ptbxl-super")
    assert space.shared == ["CD", "HYP", "MI", "NORM", "STTC"]
    y = np.array([[1, 0, 0, 1, 0], [0, 0, 0, 0, 0]], dtype=np.float32)
    assert np.array_equal(map_labels(y, space.shared, space.source_to_shared, space.shared), y)


def test_guard_names_the_shared_record_and_patient():
    train = _data("A", ["1", "2"], ["p1", "p2"])
    with pytest.raises(InputError, match=r"B shares 1 record\(s\) with A.*'2'"):
        check_disjoint(_data("B", ["2", "3"], ["p9", "p3"]), train)
    with pytest.raises(InputError, match=r"patient\(s\).*'p1'"):
        check_disjoint(_data("B", ["7"], ["p1"]), train)
    check_disjoint(_data("B", ["7"], ["p7"]), train)  # disjoint: no error
    other = _data("C", ["1"], ["p1"])
    other.code_system = "cpsc2018"
    check_disjoint(other, train)  # ids of another source never name the same ECG


def test_external_split_and_join():
    train = _data("A", ["1", "2", "3", "4"], ["a", "b", "c", "d"], folds=[1, 2, 2, 3])
    split, rule = external_split(train, None, 2)
    assert split.train.tolist() == [0, 3] and split.val.tolist() == [1, 2] and "fold 2" in rule
    with pytest.raises(InputError, match="no fold 7"):
        external_split(train, None, 7)
    val = _data("V", ["5"], ["e"])
    split, _ = external_split(train, val, None)
    assert split.train.tolist() == [0, 1, 2, 3] and split.val.tolist() == [4]
    joined = concat_eval_data([train, val])
    assert joined.features.shape == (5, 2) and joined.meta["source_path"].tolist() == ["A"] * 4 + ["V"]
    cpsc = _data("C", ["9"], ["z"])
    cpsc.code_system = "cpsc2018"
    with pytest.raises(InputError, match="eval shift"):
        concat_eval_data([train, cpsc])


def test_config_rejects_incoherent_external_options():
    with pytest.raises(InputError, match="--train-data"):
        EvalConfig(val_fold=3)
    with pytest.raises(InputError, match="not both"):
        EvalConfig(train_data="A", val_data="V", val_fold=3)
    with pytest.raises(InputError, match="--cv"):
        EvalConfig(train_data="A", cv=10)


def _half(source: Path, out: Path, patients: set) -> Path:
    """A PTB-XL folder holding only the records of ``patients`` (signals linked, not copied)."""
    out.mkdir()
    db = pd.read_csv(source / "ptbxl_database.csv")
    db[db["patient_id"].isin(patients)].to_csv(out / "ptbxl_database.csv", index=False)
    shutil.copy(source / "scp_statements.csv", out)
    for folder in ("records100", "records500"):
        if (source / folder).exists():
            (out / folder).symlink_to((source / folder).resolve())
    return out


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One embedding cache for the real-data tests of this module: each half is embedded once per encoder."""
    return tmp_path_factory.mktemp("external") / "cache"


@pytest.fixture(scope="module")
def ptbxl_halves(shared_data, tmp_path_factory):
    source = shared_data / "ptbxl-500"
    patients = sorted(pd.read_csv(source / "ptbxl_database.csv")["patient_id"].unique())
    root = tmp_path_factory.mktemp("halves")
    return _half(source, root / "a", set(patients[::2])), _half(source, root / "b", set(patients[1::2]))


@pytest.mark.slow
def test_linear_probe_trained_on_one_ptbxl_half_tested_on_the_other(ptbxl_halves, synthetic_pair, cache, tmp_path):
    a, b = ptbxl_halves
    _, _, run = synthetic_pair
    args = ["eval", "linear-probe", "--checkpoint", str(run), "--train-data", str(a), "--val-fold", "10",
            "--data", str(b), "--task", "superdiagnostic", "--fractions", "1", "--seeds", "0", "--n-boot", "50",
            "--cache-dir", str(cache), "--threads", "1", "--out", str(tmp_path / "out")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "protocol linear-probe (1/1, " in result.output  # eval says where it is and what is left
    assert re.search(r"embedding \S+ with the random-init encoder \(4/4, \d+ s so far, about \d+ s left\)",
                     result.output), result.output
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    probe = results["linear_probe"]["superdiagnostic"]
    n_test = len(pd.read_csv(b / "ptbxl_database.csv"))
    assert results["linear_probe"]["sizes"]["test"] <= n_test and results["linear_probe"]["sizes"]["test"] > 0.9 * n_test
    assert "external validation" in results["linear_probe"]["split"]
    for role in ("model", "random_init"):
        ci = probe[role]["fractions"][-1]["seed_averaged"]["macro_auroc_ci95"]
        assert 0 <= ci["low"] <= ci["high"] <= 1
    assert 0 <= probe["supervised"]["test"]["macro_auroc"] <= 1
    cached = json.loads(runner.invoke(app, ["cache", "ls", "--cache-dir", str(cache), "--json"]).stdout)
    assert {e["data"] for e in cached["entries"]} == {str(a.resolve()), str(b.resolve())}  # what each entry holds
    # the guard: the test set inside the training set
    leak = runner.invoke(app, [*args[:5], str(b), *args[6:]])
    assert leak.exit_code != 0 and "shares" in leak.output and "record(s)" in leak.output


@pytest.mark.slow
def test_shift_ptbxl_to_ptbxl(ptbxl_halves, synthetic_pair, cache, tmp_path):
    a, b = ptbxl_halves
    _, _, run = synthetic_pair
    result = runner.invoke(app, ["eval", "shift", "--checkpoint", str(run), "--source", str(a), "--target", str(b),
                                 "--val-fold", "10", "--seeds", "0", "--n-boot", "50", "--threads", "1",
                                 "--cache-dir", str(cache), "--out", str(tmp_path / "shift")])
    assert result.exit_code == 0, result.output
    shift = json.loads((tmp_path / "shift" / "results.json").read_text())["shift"]
    assert shift["shared_classes"] == ["CD", "HYP", "MI", "NORM", "STTC"]
    assert shift["in_domain_test"] is None and 0 <= shift["transfer_test"]["macro_auroc"] <= 1


@pytest.mark.slow
def test_eval_all_external_probe_on_one_half_other_protocols_on_the_other(ptbxl_halves, synthetic_pair, cache):
    a, b = ptbxl_halves
    _, _, run = synthetic_pair
    out = cache.parent / "all"
    result = runner.invoke(app, ["eval", "all", "--checkpoint", str(run), "--train-data", str(a), "--val-fold", "10",
                                 "--data", str(b), "--task", "superdiagnostic", "--fractions", "1", "--seeds", "0",
                                 "--n-boot", "20", "--no-supervised", "--threads", "1", "--cache-dir", str(cache),
                                 "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    n_test = results["dataset"]["embedded_records"]
    sizes = results["linear_probe"]["sizes"]
    assert sizes["test"] == n_test and sizes["train"] + sizes["val"] == results["training_data"][0]["records"]
    assert results["zero_shot"]["superdiagnostic"]["model"]["records"] == n_test  # the test half alone
