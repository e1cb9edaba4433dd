"""The ``eee`` task (seed 003, Sec. 3.3-3.4): recipes, the echo sequences it trains on, its loss, and
``pretrain`` + ``ecgalign.load`` on a small synthetic echo store (both ECG sides)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("pydicom")

import ecgalign
from ecgalign.data.errors import InputError
from ecgalign.echo.pipeline import extract_dataset
from ecgalign.echo.store import EchoStore
from ecgalign.synth.echo import EchoSynthConfig, synthesize_echo
from ecgalign.tasks import load_recipe
from ecgalign.tasks.eee import EEETask
from ecgalign.train.engine import pretrain

SMALL = EchoSynthConfig(rows=120, cols=160, frames=(32, 36), fps=(30, 60), studies_per_patient=(1, 2),
                        views_per_study=2, defect_fraction=0.0, still_fraction=0.0)
TINY = [("echo.encoder_kwargs={clip_size: [4, 32, 32], tubelet: [2, 16, 16], vit_dim: 32, vit_depth: 1, "
         "embed_dim: 32, depth: 1, head_dim: 16}"),
        "data.batch_size=4", "data.num_workers=0", "train.accelerator=cpu", "train.log_every=1",
        "optim.warmup_steps=1"]
TINY_STRIP = ["model.encoder_kwargs={embed_dim: 32, depth: 1, num_heads: 2}", *TINY]
TINY_12 = ["model.encoder=vit1d_tiny", "model.encoder_kwargs={embed_dim: 16, depth: 1, num_heads: 2}", *TINY]


@pytest.fixture(scope="module")
def echo_data(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("eee")
    synthesize_echo(base / "synth", 3, seed=1, config=SMALL)
    extract_dataset(base / "synth", base / "store", shard_files=4)
    return base / "synth", base / "store"


def test_packaged_recipes_and_their_rules():
    strip, paired = load_recipe("eee"), load_recipe("eee-12lead")
    assert strip.objective.weights()["token"] == 1.0 and strip.objective.weights()["align"] == 1.0
    assert paired.objective.token == 0 and paired.objective.align == 0 and paired.echo.ecg_side == "paired"
    assert paired.input_spec().num_leads == 12
    with pytest.raises(InputError, match="ecg_token"):
        load_recipe("eee", sets=["model.encoder=vit1d_tiny"])
    with pytest.raises(InputError, match="objective.token and objective.align"):
        load_recipe("eee-12lead", sets=["objective.align=1"])
    with pytest.raises(InputError, match="shift_fraction"):
        load_recipe("eee", sets=["objective.shift_fraction=1.5"])
    with pytest.raises(InputError, match="echo.ecg_side"):
        load_recipe("eee", sets=["echo.ecg_side=video"])
    from ecgalign.losses.hierarchical import MINING as LOSS_MINING
    from ecgalign.recipes.schema import MINING as RECIPE_MINING

    assert RECIPE_MINING == LOSS_MINING
    assert strip.objective.mining == "semi-hard"  # the paper's mining unless a recipe says otherwise
    assert load_recipe("eee", sets=["objective.mining=margin"]).objective.mining == "margin"
    with pytest.raises(InputError, match="objective.mining"):
        load_recipe("eee", sets=["objective.mining=hardest"])


def test_sequences_align_clips_with_strip_tokens(echo_data):
    _, store_path = echo_data
    store = EchoStore(store_path)
    recipe = load_recipe("eee", sets=TINY_STRIP)
    seq = EEETask.sequences(recipe, store, seed=None)
    assert len(seq) == len(store)
    batch = seq.batch([0, 1])
    assert batch["ecg"].shape == (2, 1, recipe.input_spec().samples)
    assert batch["echo"].shape == (2, 4, 1, 4, 32, 32) and batch["echo"].dtype == torch.uint8
    assert batch["echo_mask"].shape == (2, 4) and batch["study_id"].dtype == torch.int64
    # 32-36 frames at 30-60 fps last >= 0.53 s: at least two 0.2 s tokens are real, and the ECG is zero past them
    for b in range(2):
        valid = int((~batch["echo_mask"][b]).sum())
        assert 2 <= valid <= 4
        assert torch.all(batch["ecg"][b, 0, valid * 50:] == 0) and batch["ecg"][b, 0, :valid * 50].std() > 0.5
        assert torch.all(batch["echo"][b, valid:] == 0) and batch["echo"][b, :valid].float().std() > 0
    # clip t shows the frames of [t * 0.2 s, (t + 1) * 0.2 s): frame times follow the file's frame rate
    fps = float(store.items.fps.iloc[0])
    first = store.clip(0)[int(np.floor(0.5 * 0.2 / 4 * fps))]  # the first frame sampled in clip 0, 224 x 224
    small = torch.nn.functional.interpolate(torch.from_numpy(np.array(first))[None, None].float(), size=(32, 32), mode="area")
    assert torch.allclose(batch["echo"][0, 0, 0, 0].float(), small[0, 0].round(), atol=1)
    # training windows are deterministic in (seed, file)
    a, b = EEETask.sequences(recipe, store, seed=5).batch([2]), EEETask.sequences(recipe, store, seed=5).batch([2])
    assert torch.equal(a["ecg"], b["ecg"]) and torch.equal(a["echo"], b["echo"])


def test_loss_terms_and_shifted_pairs_left_out(echo_data):
    _, store_path = echo_data
    recipe = load_recipe("eee", sets=[*TINY_STRIP, "objective.shift_fraction=0.5"])
    task = EEETask(recipe)
    batch = EEETask.sequences(recipe, EchoStore(store_path), seed=0).batch([0, 1, 2, 3])
    out = task(batch, torch.Generator().manual_seed(0))
    assert {"token", "sid", "pid", "align", "loss"} <= set(out)
    assert float(out["aligned_pairs"]) == 2.0  # half the batch shifted, no contrastive term on them
    expected = out["token"] + out["sid"] + out["pid"] + out["align"]
    assert torch.allclose(out["loss"], expected)
    out["loss"].backward()
    assert task.head.linear.weight.grad is not None and task.echo.clip_vit is not None
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in task.ecg.parameters())


def test_pretrain_strip_and_load(echo_data, tmp_path):
    _, store_path = echo_data
    recipe = load_recipe("eee", sets=[*TINY_STRIP, "optim.max_steps=2"])
    result = pretrain(recipe, store_path, tmp_path / "run", progress=False)
    assert result.steps == 2 and np.isfinite(result.final_loss)
    model = ecgalign.load(tmp_path / "run")
    assert model.input_kind == "signal" and not model.has_joint_space
    assert model.input_spec.leads == ("II",) and model.input_spec.fs == 250
    x = np.random.default_rng(0).standard_normal((3, 1, 200)).astype(np.float32)
    feats, base = model.features(x), model.random_init().features(x)
    assert feats.shape == (3, 32) and base.shape == (3, 32) and not np.allclose(feats, base)


def test_pretrain_12lead_variant_loads_as_a_12_lead_signal_model(echo_data, tmp_path):
    synth, store_path = echo_data
    recipe = load_recipe("eee-12lead", sets=[*TINY_12, "optim.max_steps=1"])
    result = pretrain(recipe, store_path, tmp_path / "run", progress=False)
    assert result.steps == 1 and np.isfinite(result.final_loss)
    model = ecgalign.load(tmp_path / "run")
    assert model.input_spec.num_leads == 12 and model.input_spec.samples == 1000
    assert model.features(np.zeros((2, 12, 1000), np.float32)).shape == (2, 16)
    # a missing paired store is named
    bad = load_recipe("eee-12lead", sets=[*TINY_12, "optim.max_steps=1", f"echo.ecg_store={synth / 'nowhere'}"])
    with pytest.raises(Exception, match="nowhere"):
        pretrain(bad, store_path, tmp_path / "run2", progress=False)


def test_strip_recipe_must_match_the_store(echo_data, tmp_path):
    _, store_path = echo_data
    recipe = load_recipe("eee", sets=[*TINY_STRIP, "data.fs=100", "data.seconds=2"])
    with pytest.raises(InputError, match="strip rate 250"):
        pretrain(recipe, store_path, tmp_path / "run", progress=False)
