"""Recipes (layering, typos, coercion), the resumable sampler, checkpoint files, run logs, embeddings."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from ecgalign.hub.io import latest_checkpoint, load_weights, save_weights
from ecgalign.train.checkpoint import write_checkpoint
from ecgalign.recipes.schema import list_recipes
from ecgalign.tasks import load_recipe, recipe_from_dict
from ecgalign.train.data import ResumableBatchSampler
from ecgalign.train.engine import lr_lambda, param_groups
from ecgalign.train.logs import RunLogger


def test_recipes_layer_over_defaults_and_round_trip():
    assert set(list_recipes()) >= {"merit", "merit-ib", "esi", "clip", "mae"}
    merit, ib = load_recipe("merit"), load_recipe("merit-ib")
    assert (merit.objective.contrastive, merit.objective.reconstruction, merit.objective.ib) == (1.0, 1.0, 0.0)
    assert ib.objective.ib > 0 and ib.model.encoder == merit.model.encoder  # base: merit
    esi = load_recipe("esi")
    assert esi.model.encoder.startswith("convnext1d") and esi.objective.caption == esi.objective.contrastive == 1.0
    assert load_recipe("mae").objective.needs_text is False
    assert recipe_from_dict(ib.to_dict()).to_dict() == ib.to_dict()


def test_overrides_coerce_merge_and_refuse_nonsense(tmp_path):
    recipe = load_recipe("merit", sets=["optim.lr=1e-3", "data.batch_size=16", "model.encoder_kwargs.depth=2",
                                        "model.encoder_kwargs.embed_dim=64", "train.devices=auto"])
    assert recipe.optim.lr == 0.001 and recipe.data.batch_size == 16 and recipe.train.devices == "auto"
    assert recipe.model.encoder_kwargs == {"depth": 2, "embed_dim": 64}  # dict keys merge one by one
    with pytest.raises(KeyError, match="did you mean 'objective'"):
        load_recipe("merit", {"objectiv": {}})
    with pytest.raises(ValueError, match="must be a number"):
        load_recipe("merit", sets=["optim.lr=fast"])
    with pytest.raises(ValueError, match="at least one > 0"):
        load_recipe("clip", sets=["objective.contrastive=0"])
    with pytest.raises(ValueError, match="mask_ratio"):
        load_recipe("merit", sets=["objective.mask_ratio=1.5"])
    own = tmp_path / "mine.yaml"
    own.write_text("base: clip\nname: mine\noptim: {max_steps: 7}\n")
    assert load_recipe(str(own)).optim.max_steps == 7
    loop = tmp_path / "loop.yaml"
    loop.write_text(f"base: {loop}\n")
    with pytest.raises(ValueError, match="loops"):
        load_recipe(str(loop))


def test_sampler_is_deterministic_resumable_and_splits_ranks():
    whole = ResumableBatchSampler(20, 4, seed=1)
    stream = iter(whole)
    first = [next(stream) for _ in range(7)]  # crosses an epoch (5 batches per epoch)
    assert np.array_equal(np.sort(np.concatenate(first[:5])), np.arange(20))  # an epoch covers every record once
    later = iter(ResumableBatchSampler(20, 4, seed=1, start=3))
    assert all(np.array_equal(next(later), b) for b in first[3:])
    r0, r1 = (iter(ResumableBatchSampler(20, 2, seed=1, rank=r, world=2)) for r in (0, 1))
    for k in range(5):
        assert np.array_equal(np.concatenate([next(r0), next(r1)]), first[k])  # ranks split the global batch
    with pytest.raises(ValueError, match="cannot fill"):
        ResumableBatchSampler(3, 4)


def test_schedule_and_weight_decay_groups():
    f = lr_lambda(warmup=10, total=110, min_ratio=0.1)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(60) == pytest.approx(0.55) and f(110) == pytest.approx(0.1) and f(500) == pytest.approx(0.1)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
    decay, no_decay = param_groups(model, 0.05)
    assert len(decay["params"]) == 1 and len(no_decay["params"]) == 3 and no_decay["weight_decay"] == 0.0


def test_checkpoints_are_whole_keep_the_newest_and_tied_weights_survive(tmp_path):
    emb = torch.nn.Embedding(5, 3)
    head = torch.nn.Linear(3, 5, bias=False)
    head.weight = emb.weight
    state = {"emb.weight": emb.weight, "head.weight": head.weight, "b": torch.ones(2)}
    save_weights(state, tmp_path / "w.safetensors")
    back = load_weights(tmp_path / "w.safetensors")
    assert torch.equal(back["head.weight"], emb.weight.detach()) and back["head.weight"] is back["emb.weight"]
    root = tmp_path / "ckpt"
    assert latest_checkpoint(root) is None
    for step in (1, 2, 3):
        write_checkpoint(root, step, {"b": torch.full((2,), float(step))}, {"step": step}, {"step": step}, keep=2)
    assert sorted(p.name for p in root.glob("step-*")) == ["step-00000002", "step-00000003"]
    assert latest_checkpoint(root).name == "step-00000003" and not list(root.glob(".tmp*"))
    (root / "step-00000003" / "state.pt").unlink()
    with pytest.raises(FileNotFoundError, match="incomplete"):
        latest_checkpoint(root)


def test_run_log_drops_rows_after_the_resumed_step(tmp_path):
    log = RunLogger(tmp_path)
    for step in (1, 2, 3, 4):
        log.log(step, {"loss": 1.0 / step})
    log.log(5, {"loss": 0.2, "lr": 1e-3})  # a new column rewrites the header
    log.close()
    resumed = RunLogger(tmp_path, resume_step=2)
    resumed.log(3, {"loss": 0.3, "lr": 1e-3})
    resumed.close()
    lines = (tmp_path / "metrics.csv").read_text().splitlines()
    assert lines[0] == "step,loss,lr" and [line.split(",")[0] for line in lines[1:]] == ["1", "2", "3"]


@pytest.mark.slow
def test_embed_writes_one_row_per_record_from_a_store_and_a_raw_folder(train_store, tmp_path, tiny, fast):
    import ecgalign
    from ecgalign.data.store import ECGStore
    from ecgalign.hub.embed import embed_to_parquet, read_embeddings
    from ecgalign.train.engine import pretrain

    recipe = load_recipe("clip", {"model": tiny["clip"]}, [*fast, "optim.max_steps=1"])
    pretrain(recipe, train_store, tmp_path / "run", progress=False)
    model = ecgalign.load(tmp_path / "run", device="cpu")
    summary = embed_to_parquet(model, train_store, tmp_path / "e.parquet", batch_size=10)
    assert summary["records"] == 48 and summary["joint_space"]
    meta, features = read_embeddings(tmp_path / "e.parquet")
    store = ECGStore(train_store)
    assert list(meta.record_id) == list(store.column("record_id").astype(str))
    np.testing.assert_allclose(features[:5], model.features(store.signals(range(5))), rtol=1e-4, atol=1e-5)
    _, joint = read_embeddings(tmp_path / "e.parquet", "embedding")
    np.testing.assert_allclose(np.linalg.norm(joint, axis=1), 1.0, rtol=1e-4)
    assert pq.read_schema(tmp_path / "e.parquet").names[:4] == ["position", "record_id", "patient_id", "fold"]


@pytest.mark.slow
@pytest.mark.realdata
def test_embed_a_raw_ptbxl_folder_preprocesses_to_the_model_input(shared_data, train_store, tmp_path, tiny, fast):
    import ecgalign
    from ecgalign.hub.embed import embed_to_parquet, read_embeddings
    from ecgalign.train.engine import pretrain

    recipe = load_recipe("mae", {"model": tiny["mae"]}, [*fast, "optim.max_steps=1"])
    pretrain(recipe, train_store, tmp_path / "run", progress=False)
    model = ecgalign.load(tmp_path / "run", device="cpu")
    summary = embed_to_parquet(model, shared_data / "ptbxl-500", tmp_path / "p.parquet", batch_size=128)
    assert summary["records"] == 500 and summary["skipped"] == 0 and not summary["joint_space"]
    meta, features = read_embeddings(tmp_path / "p.parquet")
    assert features.shape == (500, 32) and np.isfinite(features).all()
    assert meta.fold.between(1, 10).all() and meta.patient_id.notna().all()
