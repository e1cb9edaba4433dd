"""Everyday pretraining workflows (issue 16): any store (preprocessed on the fly), progress lines in logs,
the interval rate in metrics.csv, and --threads."""

from __future__ import annotations

import csv
import os
import re

import pytest
import torch
import yaml
from threadpoolctl import threadpool_info, threadpool_limits
from typer.testing import CliRunner

from ecgalign.cli.main import app
from ecgalign.synth.store import synthesize_store

runner = CliRunner()


@pytest.fixture(scope="module")
def raw_store(tmp_path_factory):
    """A store as `ecgalign data synth` writes it by default: raw mV at 500 Hz, not the encoder's input."""
    out = tmp_path_factory.mktemp("raw") / "raw-500hz"
    synthesize_store(out, 24, seed=5, fs=500.0)
    return out


@pytest.fixture()
def tiny_merit(tmp_path, tiny):
    path = tmp_path / "tiny-merit.yaml"
    path.write_text(yaml.safe_dump({"base": "merit", "name": "tiny-merit", "model": tiny["merit"]}))
    return path


@pytest.fixture()
def restore_threads(monkeypatch):
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.setenv(var, os.environ.get(var, ""))
    before = torch.get_num_threads()
    blas = max((p["num_threads"] for p in threadpool_info()), default=None)
    yield
    torch.set_num_threads(before)
    if blas is not None:
        threadpool_limits(limits=blas)


def _pretrain(recipe, data, out, fast, *extra):
    args = ["pretrain", "--recipe", str(recipe), "--data", str(data), "--out", str(out), "--max-steps", "12",
            *[a for s in fast for a in ("--set", s)], *extra]
    return runner.invoke(app, args)


def test_pretrain_preprocesses_a_raw_store_on_the_fly_with_periodic_progress(raw_store, tiny_merit, fast, tmp_path,
                                                                              restore_threads):
    result = _pretrain(tiny_merit, raw_store, tmp_path / "run", fast, "--log-seconds", "0.05", "--threads", "1",
                       "--set", "data.num_workers=2")
    assert result.exit_code == 0, result.output
    assert result.output.count("preprocessing each record on the fly") == 1
    assert "fs: 500.0 -> 100.0" in result.output
    lines = re.findall(r"pretrain tiny-merit: step (\d+)/12 loss [\d.]+ [\d,.]+ samples/s ETA \d\d:\d\d:\d\d",
                       result.output)
    assert len(lines) >= 2 and lines[-1] == "12", result.output  # periodic, and the last step always
    assert (tmp_path / "run" / "model.safetensors").is_file()
    with (tmp_path / "run" / "metrics.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["step"]) for r in rows] == list(range(1, 13))
    assert rows[0]["samples_per_s"] == ""  # no interval before the first step's end
    assert all(float(r["samples_per_s"]) > 0 for r in rows[1:])
    # --threads 1 is honoured: torch, the BLAS pools and the environment of loader workers
    assert torch.get_num_threads() == 1
    assert all(p["num_threads"] == 1 for p in threadpool_info())
    assert os.environ["OMP_NUM_THREADS"] == "1"


def test_strict_input_keeps_the_refusal(raw_store, tiny_merit, fast, tmp_path):
    result = _pretrain(tiny_merit, raw_store, tmp_path / "run", fast, "--strict-input")
    assert result.exit_code != 0
    assert "does not hold this encoder's input" in result.output and "fs: store 500.0" in result.output
    assert not (tmp_path / "run").exists()
