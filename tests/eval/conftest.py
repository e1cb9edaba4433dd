"""A tiny CLIP model trained for a few seconds on synthetic data, and a held-out synthetic store."""

from __future__ import annotations

import pytest

from ecgalign.data.preprocess import Preprocess
from ecgalign.synth.store import synthesize_store


@pytest.fixture(scope="session")
def synthetic_pair(tmp_path_factory):
    """(training store, held-out store of other patients and records, run folder of a model trained on the first)."""
    from ecgalign.tasks import load_recipe
    from ecgalign.train.engine import pretrain

    root = tmp_path_factory.mktemp("zeroshot")
    pre = Preprocess.preset("baselines")
    synthesize_store(root / "train", 600, seed=11, fs=100.0, preprocess=pre, workers=2)
    synthesize_store(root / "heldout", 240, seed=12, fs=100.0, preprocess=pre)
    recipe = load_recipe("clip", {"model": {"encoder_kwargs": {"embed_dim": 64, "depth": 2, "num_heads": 2}}},
                         ["optim.max_steps=150", "data.batch_size=32", "data.num_workers=0", "train.accelerator=cpu",
                          "optim.lr=1e-3", "optim.warmup_steps=20", "train.log_every=50"])
    pretrain(recipe, root / "train", root / "run", progress=False)
    return root / "train", root / "heldout", root / "run"
