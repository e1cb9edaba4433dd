"""``ecgalign pretrain --recipe eee`` and the echo evaluation commands through the real CLI entry, on a tiny
synthetic echo dataset made by the CLI itself (``data synth-echo``, ``echo extract``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytest.importorskip("pydicom")

from ecgalign.cli.main import app

runner = CliRunner()
TINY = ["--set", ("echo.encoder_kwargs={clip_size: [4, 32, 32], tubelet: [2, 16, 16], vit_dim: 32, vit_depth: 1, "
                  "embed_dim: 32, depth: 1, head_dim: 16}"),
        "--set", "model.encoder_kwargs={embed_dim: 32, depth: 1, num_heads: 2}", "--set", "data.num_workers=0",
        "--set", "train.accelerator=cpu", "--set", "optim.warmup_steps=1", "--set", "train.log_every=1"]


def _ok(args: list[str]):
    result = runner.invoke(app, args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result


@pytest.mark.slow
def test_pretrain_eee_and_its_echo_evaluations_through_the_cli(tmp_path: Path):
    d, s, run = tmp_path / "D", tmp_path / "S", tmp_path / "run"
    _ok(["data", "synth-echo", "--n-patients", "20", "--seed", "4", "--out", str(d), "--rows", "120", "--cols", "160"])
    _ok(["echo", "extract", str(d), "--out", str(s)])
    trained = _ok(["pretrain", "--recipe", "eee", "--data", str(s), "--out", str(run), "--max-steps", "2",
                   "--batch-size", "4", "--no-progress", "--json", *TINY])
    summary = json.loads(trained.stdout)
    assert summary["steps"] == 2 and (run / "model.safetensors").is_file()
    card = json.loads((run / "model.json").read_text())
    assert card["recipe"] == "eee" and card["ecg_side"] == "strip"
    # the echo store as --data: the echo protocols read it, the others its paired 12-lead store
    out = _ok(["eval", "echo-retrieval", "--checkpoint", str(run), "--data", str(s), "--n-boot", "20", "--json",
               "--device", "cpu", "--out", str(tmp_path / "ev1")])
    results = json.loads(out.stdout)
    assert results["dataset"]["path"] == str(d / "ecg")
    assert results["echo_retrieval"]["model"]["study"]["ecg_to_echo"]["candidates"] >= 2
    assert (tmp_path / "ev1" / "report.html").read_text().count("ECG ↔ echo retrieval") == 1
    out = _ok(["eval", "echo-shift", "--checkpoint", str(run), "--data", str(d / "ecg"), "--echo", str(s),
               "--n-boot", "20", "--json", "--device", "cpu", "--out", str(tmp_path / "ev2")])
    shift = json.loads(out.stdout)["echo_shift"]
    assert set(shift) >= {"model", "random_init", "split"} and "all_shifts" in shift["model"]
    # a folder that is not an echo store is named
    bad = runner.invoke(app, ["eval", "echo-shift", "--checkpoint", str(run), "--data", str(d / "ecg"), "--echo",
                              str(d), "--device", "cpu", "--out", str(tmp_path / "ev3")])
    assert bad.exit_code != 0 and "not an echo store" in bad.output
