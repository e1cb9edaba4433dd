"""Zero-shot, retrieval, identification, shift and the whole ``evaluate`` run with its report."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import ecgalign
from ecgalign.cli.main import app
from ecgalign.data.splits import fold_split
from ecgalign.eval.data import EvalData
from ecgalign.eval.identify import identify
from ecgalign.eval.retrieval import retrieval
from ecgalign.eval.run import EvalConfig, evaluate
from ecgalign.eval.shift import shift

runner = CliRunner()


class _Texts:
    """A stand-in model whose text embeddings are fixed unit vectors per text."""

    def __init__(self, table: dict[str, np.ndarray]):
        self.table = table

    def encode_text(self, texts):
        return np.stack([self.table[t] for t in texts])


def test_retrieval_recall_by_hand():
    e = np.eye(3, dtype=np.float32)
    model = _Texts({"a": e[0], "b": e[1], "c": e[2]})
    # records 0, 1 say "a", record 2 says "c"; record 1's ECG is closer to "c" (0.8) than to "a" (0.6)
    joint = np.stack([e[0], 0.6 * e[0] + 0.8 * e[2], e[2]])
    out = retrieval(model, joint, ["a", "a", "c", ""])
    assert out["records"] == 3 and out["distinct_reports"] == 2
    assert out["ecg_to_text_recall@1"] == pytest.approx(2 / 3)  # record 1's true text "a" is not its top-1
    assert out["text_to_ecg_recall@1"] == 1.0  # "a" finds record 0, "c" finds record 2
    assert out["ecg_to_text_chance@1"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="no record has a report"):
        retrieval(model, joint[:1], [""])


def test_identification_finds_people_only_when_the_features_know_them():
    rng = np.random.default_rng(0)
    patients = np.repeat(np.arange(40), 3).astype(str)
    person = rng.normal(size=(40, 16))
    same = person[patients.astype(int)] + 0.05 * rng.normal(size=(120, 16))
    good = identify(same, patients)
    assert good["patients"] == 40 and good["probes"] == 80 and good["top1_accuracy"] > 0.95 and good["auroc"] > 0.95
    noise = identify(rng.normal(size=(120, 16)), patients)
    assert noise["top1_accuracy"] < 0.15 and abs(noise["auroc"] - 0.5) < 0.08
    with pytest.raises(ValueError, match="patient ids"):
        identify(same, None)


def _eval_data(code_system, label_set, classes, y, x, folds):
    meta = pd.DataFrame({"position": np.arange(len(y)), "fold": folds, "patient_id": [f"p{i}" for i in range(len(y))],
                         f"labels_{label_set}": [[c for c, v in zip(classes, row) if v] for row in y]})
    return EvalData("toy", f"/toy/{code_system}", code_system, meta, {label_set: classes}, features=x)


def test_shift_maps_labels_and_transfers_a_shared_signal():
    rng = np.random.default_rng(1)
    n = 600
    norm = rng.random(n) < 0.5  # the planted signal: NORM vs CD-like records
    x = rng.normal(size=(n, 8)).astype(np.float32)
    x[:, 0] += np.where(norm, 2.0, -2.0)
    super_classes = ["CD", "HYP", "MI", "NORM", "STTC"]
    y_super = np.zeros((n, 5), np.float32)
    y_super[norm, 3] = 1
    y_super[~norm, 0] = 1
    cpsc_classes = ["NORM", "AF", "IAVB", "LBBB", "RBBB", "PAC", "PVC", "STD", "STE"]
    y_cpsc = np.zeros((n, 9), np.float32)
    y_cpsc[norm, 0] = 1
    y_cpsc[~norm, 4] = 1  # RBBB is a conduction disturbance (CD)
    folds = rng.integers(1, 11, n)
    source = _eval_data("scp", "superdiagnostic", super_classes, y_super, x, folds)
    target = _eval_data("cpsc2018", "cpsc2018", cpsc_classes, y_cpsc, x + 0.1 * rng.normal(size=x.shape).astype(np.float32), folds)
    out = shift(source, target, fold_split(folds), seeds=(0,), n_boot=100)
    assert out["shared_classes"] == ["CD", "NORM", "STTC"]
    assert out["transfer_test"]["macro_auroc"] > 0.95 and out["in_domain_test"]["macro_auroc"] > 0.95
    json.dumps(out, allow_nan=False)


@pytest.mark.slow
def test_zero_shot_of_a_model_trained_on_synthetic_data_beats_chance(synthetic_pair):
    _, heldout, run = synthetic_pair
    model = ecgalign.load(run, device="cpu")
    config = EvalConfig(protocols=("zero-shot",), label_sets=["superdiagnostic", "rhythm"], n_boot=200)
    results, _ = evaluate(model, heldout, config)
    # A 150-step toy model on 240 held-out records (CI about +-0.05). Superdiagnostic read 0.659 on the seventh-pass
    # generator and 0.646 on the eighth (its new LPFB / NST_ records are harder CD / STTC positives; CD 0.43 -> 0.39):
    # the bar is 0.62, and "beats chance" is what the two lines below it hold (random init reads 0.46-0.50).
    for name in ("superdiagnostic", "rhythm"):
        z = results["zero_shot"][name]
        assert z["model"]["macro_auroc"] > 0.62, z["model"]["macro_auroc"]
        assert z["model"]["macro_auroc"] > z["random_init"]["macro_auroc"] + 0.1
        assert z["model"]["macro_auroc_ci95"]["low"] > 0.5


@pytest.mark.slow
def test_eval_all_writes_strict_json_and_a_self_contained_report(synthetic_pair, tmp_path):
    _, heldout, run = synthetic_pair
    result = runner.invoke(app, ["eval", "all", "--checkpoint", str(run), "--data", str(heldout), "--out", str(tmp_path),
                                 "--task", "superdiagnostic", "--fractions", "0.1,1", "--seeds", "0,1", "--n-boot", "100",
                                 "--device", "cpu", "--cache-dir", str(tmp_path / "cache")])
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "results.json").read_text())  # strict: a NaN would not parse back as written
    lp = results["linear_probe"]["superdiagnostic"]
    assert set(lp) == {"model", "random_init", "supervised"}
    model_auroc = lp["model"]["fractions"][-1]["seed_averaged"]["macro_auroc"]
    assert model_auroc > lp["random_init"]["fractions"][-1]["seed_averaged"]["macro_auroc"]
    assert results["identification"]["model"]["probes"] > 0 and "model" in results["retrieval"]
    html = (tmp_path / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "data:image/png;base64," in html
    assert "http://" not in html and "https://" not in html  # no external asset
    assert "supervised from scratch" in html and "random init" in html
    # the cache (never the checkpoint folder since issue 16) makes a second run reuse the embeddings
    assert list((tmp_path / "cache").glob("*.parquet")) and not (run / "embeddings").exists()


def test_bad_input_is_named(synthetic_pair, tmp_path):
    _, heldout, run = synthetic_pair
    result = runner.invoke(app, ["eval", "zero-shot", "--checkpoint", str(tmp_path / "nothing"), "--data", str(heldout)])
    assert result.exit_code == 2 and "no such model or run folder" in result.output
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "model.json").write_text(json.dumps({"family": "someone-else"}))
    result = runner.invoke(app, ["eval", "zero-shot", "--checkpoint", str(tmp_path / "other"), "--data", str(heldout)])
    assert result.exit_code == 2 and "model family" in result.output
    result = runner.invoke(app, ["eval", "linear-probe", "--checkpoint", str(run), "--data", str(heldout),
                                 "--task", "cpsc2018", "--device", "cpu"])
    assert result.exit_code == 2 and "no label set 'cpsc2018'" in result.output
    result = runner.invoke(app, ["eval", "linear-probe", "--checkpoint", str(run), "--data", str(heldout),
                                 "--fractions", "0,1", "--device", "cpu"])
    assert result.exit_code == 2 and "fractions" in result.output
