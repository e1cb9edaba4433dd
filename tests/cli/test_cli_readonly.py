"""A shared checkpoint folder is read only to evaluation (issue 16): nothing is written into it (embedding cache
and outputs go elsewhere), and when it is not writable the outputs fall back to ./ecgalign-eval/."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from typer.testing import CliRunner

from ecgalign.cli.main import app
from ecgalign.data.preprocess import Preprocess
from ecgalign.synth.store import synthesize_store

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "runs-0.1.0"


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


def test_evaluating_never_writes_into_the_checkpoint_and_falls_back_when_it_is_read_only(tmp_path, monkeypatch):
    checkpoint = tmp_path / "shared-checkpoint"
    shutil.copytree(FIXTURES / "merit-tiny", checkpoint)
    data = tmp_path / "store"
    synthesize_store(data, 40, seed=5, fs=100.0, preprocess=Preprocess.preset("baselines"))
    before = _snapshot(checkpoint)
    monkeypatch.setenv("ECGALIGN_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, *a, **k: False if Path(p) == checkpoint and mode == os.W_OK else real_access(p, mode))
    result = CliRunner().invoke(app, ["eval", "identify", "--checkpoint", str(checkpoint), "--data", str(data),
                                      "--device", "cpu", "--no-baselines"])
    assert result.exit_code == 0, result.output
    assert _snapshot(checkpoint) == before  # no cache, no eval folder, nothing touched
    assert (tmp_path / "ecgalign-eval" / "shared-checkpoint" / "store" / "results.json").is_file()
    assert any((tmp_path / "cache").rglob("*.parquet"))  # the cache went to $ECGALIGN_CACHE
