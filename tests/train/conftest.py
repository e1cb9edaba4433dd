"""A small synthetic store in the default encoder input (baselines preset) and tiny-model recipe overrides."""

from __future__ import annotations

import pytest

from ecgalign.data.preprocess import Preprocess
from ecgalign.synth.store import synthesize_store

TINY_VIT = {"encoder_kwargs": {"embed_dim": 32, "depth": 1, "num_heads": 2},
            "decoder": {"decoder_dim": 16, "depth": 1, "num_heads": 2}}
TINY = {
    "merit": TINY_VIT, "merit-ib": TINY_VIT, "clip": TINY_VIT, "mae": TINY_VIT,
    "esi": {"encoder_kwargs": {"depths": [1, 1, 1, 1], "dims": [8, 16, 16, 32]},
            "captioner": {"dim": 16, "depth": 1, "heads": 2}},
}
FAST = ["data.batch_size=4", "data.num_workers=0", "train.accelerator=cpu", "train.log_every=1",
        "optim.warmup_steps=2"]


@pytest.fixture(scope="session")
def train_store(tmp_path_factory):
    out = tmp_path_factory.mktemp("store") / "synthetic"
    synthesize_store(out, 48, seed=3, fs=100.0, preprocess=Preprocess.preset("baselines"))
    return out


@pytest.fixture(scope="session")
def tiny():
    """Recipe name -> model overrides that make it train in a fraction of a second."""
    return TINY


@pytest.fixture(scope="session")
def fast():
    """--set overrides for quick CPU runs."""
    return FAST
