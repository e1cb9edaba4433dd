"""Exact resume of the ``eee`` task (strip and paired 12-lead sides): a run killed after step 3 (checkpoint at
step 2) and resumed ends with the same weights and the same per-step losses as one that never stopped."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

pytest.importorskip("pydicom")

from ecgalign.echo.pipeline import extract_dataset
from ecgalign.hub.io import load_weights
from ecgalign.synth.echo import EchoSynthConfig, synthesize_echo
from ecgalign.tasks import load_recipe
from ecgalign.train import engine
from ecgalign.train.engine import FAULT_ENV, pretrain

SMALL = EchoSynthConfig(rows=120, cols=160, frames=(32, 36), fps=(30, 60), studies_per_patient=(1, 2),
                        views_per_study=2, defect_fraction=0.0, still_fraction=0.0)
TINY = [("echo.encoder_kwargs={clip_size: [4, 32, 32], tubelet: [2, 16, 16], vit_dim: 32, vit_depth: 1, "
         "embed_dim: 32, depth: 1, head_dim: 16}"),
        "data.batch_size=4", "data.num_workers=0", "train.accelerator=cpu", "train.log_every=1",
        "optim.warmup_steps=1", "optim.max_steps=5", "train.checkpoint_every=2"]
RECIPES = {"eee": ["model.encoder_kwargs={embed_dim: 32, depth: 1, num_heads: 2}", "objective.shift_fraction=0.5",
                   *TINY],
           "eee-12lead": ["model.encoder=vit1d_tiny", "model.encoder_kwargs={embed_dim: 16, depth: 1, num_heads: 2}",
                          *TINY]}


class Killed(Exception):
    """Stands in for the SIGKILL the engine's fault injection sends (the test stays in one process)."""


@pytest.fixture(scope="module")
def echo_store(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("eee-resume")
    synthesize_echo(base / "D", 4, seed=2, config=SMALL)
    extract_dataset(base / "D", base / "S", shard_files=4)
    return base / "S"


def _losses(run: Path) -> list[tuple[int, str]]:
    rows = (run / "metrics.csv").read_text().strip().splitlines()
    header = rows[0].split(",")
    return [(int(r.split(",")[0]), r.split(",")[header.index("loss")]) for r in rows[1:]]


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_killed_then_resumed_equals_uninterrupted(echo_store, tmp_path, monkeypatch, name):
    recipe = load_recipe(name, sets=RECIPES[name])
    whole = pretrain(recipe, echo_store, tmp_path / "whole", progress=False)
    assert whole.steps == 5

    def kill(pid, sig):
        raise Killed(f"signal {sig} to {pid}")

    monkeypatch.setenv(FAULT_ENV, "3")
    monkeypatch.setattr(engine.os, "kill", kill)
    with pytest.raises(Killed):
        pretrain(recipe, echo_store, tmp_path / "killed", progress=False)
    monkeypatch.undo()
    assert os.environ.get(FAULT_ENV) is None
    assert not (tmp_path / "killed" / "model.safetensors").exists()
    resumed = pretrain(recipe, echo_store, tmp_path / "killed", resume=True, progress=False)
    assert resumed.resumed_from == 2 and resumed.steps == 5
    a = load_weights(tmp_path / "whole" / "model.safetensors")
    b = load_weights(tmp_path / "killed" / "model.safetensors")
    assert a.keys() == b.keys() and any(k.startswith("echo.") for k in a)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # the log reads as one run with the same loss at every step (steps 1..5 once each)
    assert _losses(tmp_path / "killed") == _losses(tmp_path / "whole")
    assert [s for s, _ in _losses(tmp_path / "killed")] == [1, 2, 3, 4, 5]
