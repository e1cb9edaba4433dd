"""``ecgalign render``: PNG + JSON ground truth per record; refusals for unusable input."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from ecgalign.cli.main import app
from ecgalign.data.labels import scp_scheme
from ecgalign.data.record import LEADS_12, ECGRecord
from ecgalign.data.store import StoreSpec, StoreWriter

runner = CliRunner()


def _store(path, n=3, encoding="int16", preprocess=None):
    writer = StoreWriter(path, StoreSpec(500.0, 5000, LEADS_12, encoding=encoding), scp_scheme(),
                         info={"dataset": "toy", "preprocess": preprocess})
    t = np.arange(5000) / 500.0
    for i in range(n):
        signal = np.tile((0.8 * np.sin(2 * np.pi * 1.2 * t)).astype(np.float32), (12, 1))
        writer.add(ECGRecord(signal, 500.0, LEADS_12, f"r{i}", "toy", age=50.0, sex="F"), i + 1)
    writer.close()
    return path


def test_render_writes_a_png_and_its_ground_truth_per_record(tmp_path):
    store = _store(tmp_path / "store")
    result = runner.invoke(app, ["render", "--data", str(store), "--out", str(tmp_path / "png"), "--dpi", "50",
                                 "--layout", "6x2", "--limit", "2", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["images"] == 2
    pngs = sorted((tmp_path / "png").glob("*.png"))
    assert [p.name for p in pngs] == ["toy_r0_500hz.png", "toy_r1_500hz.png"]
    assert Image.open(pngs[0]).size == (550, 425)  # 11 x 8.5 in at 50 dpi
    truth = json.loads(pngs[0].with_suffix(".json").read_text())
    assert "6x2" in json.dumps(truth) and "II" in json.dumps(truth)


def test_render_refuses_normalised_signals_and_unknown_layouts(tmp_path):
    store = _store(tmp_path / "z", encoding="float16", preprocess={"normalize": "zscore"})
    result = runner.invoke(app, ["render", "--data", str(store), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "millivolts" in result.output
    result = runner.invoke(app, ["render", "--data", str(_store(tmp_path / "mv")), "--out", str(tmp_path / "o"),
                                 "--layout", "5x5"])
    assert result.exit_code == 2 and "5x5" in result.output and "3x4+II" in result.output
