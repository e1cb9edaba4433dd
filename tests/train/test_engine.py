"""The pretraining engine: every recipe trains, exact resume after SIGKILL, NaN stops cleanly, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import ecgalign
from ecgalign.cli.main import app
from ecgalign.hub.io import latest_checkpoint, load_weights
from ecgalign.recipes.schema import list_recipes
from ecgalign.recipes import schema
from ecgalign.tasks import get_task, load_recipe
from ecgalign.train.engine import FAULT_ENV, NonFiniteLossError, pretrain

runner = CliRunner()


# every packaged recipe of a task that trains on signal stores alone (those that learn from a teacher have
# their own tests: tests/train/test_ecg_scan.py, and those trained on echo stores: tests/train/test_eee.py); a
# new recipe must bring tiny overrides in conftest.TINY
SIGNAL_RECIPES = [r for r in list_recipes() if not get_task(schema.load_recipe(r).task).needs_teacher
                  and get_task(schema.load_recipe(r).task).data_kind == "ecg"]


@pytest.mark.parametrize("name", SIGNAL_RECIPES)
def test_every_recipe_trains_and_loads(name, train_store, tmp_path, tiny, fast):
    assert name in tiny, f"recipe {name!r} has no tiny-model overrides in tests/train/conftest.py"
    recipe = load_recipe(name, {"model": tiny[name]}, [*fast, "optim.max_steps=3", "train.checkpoint_every=2"])
    result = pretrain(recipe, train_store, tmp_path / "run", progress=False)
    assert result.steps == 3 and np.isfinite(result.final_loss)
    card = json.loads((tmp_path / "run" / "model.json").read_text())
    assert card["recipe"] == name and card["input_spec"]["fs"] == 100.0 and card["step"] == 3
    rows = (tmp_path / "run" / "metrics.csv").read_text().strip().splitlines()
    assert rows[0].startswith("step,") and len(rows) == 4
    model = ecgalign.load(tmp_path / "run", device="cpu")
    x = np.random.default_rng(0).standard_normal((3, 12, 1000)).astype(np.float32)
    features = model.features(x)
    assert features.shape == (3, model.task.ecg.embed_dim) and np.isfinite(features).all()
    if recipe.objective.needs_text:
        z, t = model.encode_ecg(x), model.encode_text(["sinus rhythm", "atrial fibrillation"])
        assert z.shape == (3, 256) and t.shape == (2, 256)
        np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1.0, rtol=1e-5)
    else:
        with pytest.raises(ValueError, match="no text objective"):
            model.encode_ecg(x)


def _cli_run(store, out, *extra, env=None):
    # tiny ViT; one loader worker so the resumed position really goes through a DataLoader worker
    args = [sys.executable, "-m", "ecgalign.cli.main", "pretrain", "--recipe", "merit", "--data", str(store),
            "--out", str(out), "--no-progress", "--max-steps", "8", "--batch-size", "4",
            "--set", "model.encoder_kwargs={embed_dim: 32, depth: 1, num_heads: 2}",
            "--set", "model.decoder={decoder_dim: 16, depth: 1, num_heads: 2}",
            "--set", "data.num_workers=1", "--set", "train.checkpoint_every=3", "--set", "train.accelerator=cpu",
            "--set", "optim.warmup_steps=2", "--set", "train.log_every=1", *extra]
    return subprocess.run(args, capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})})


@pytest.mark.slow
def test_sigkill_mid_training_then_resume_gives_the_same_weights(train_store, tmp_path):
    whole = _cli_run(train_store, tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr
    killed = _cli_run(train_store, tmp_path / "killed", env={FAULT_ENV: "5"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert latest_checkpoint(tmp_path / "killed" / "checkpoints").name == "step-00000003"
    assert not (tmp_path / "killed" / "model.safetensors").exists()
    refused = _cli_run(train_store, tmp_path / "killed")
    assert refused.returncode == 2 and "--resume" in refused.stderr
    resumed = _cli_run(train_store, tmp_path / "killed", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from 3" in resumed.stderr
    a = load_weights(tmp_path / "whole" / "model.safetensors")
    b = load_weights(tmp_path / "killed" / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # the log reads as one run: steps 1..8 once each
    steps = [int(line.split(",")[0]) for line in (tmp_path / "killed" / "metrics.csv").read_text().splitlines()[1:]]
    assert steps == list(range(1, 9))


def test_resume_refuses_a_changed_recipe(train_store, tmp_path, tiny, fast):
    recipe = load_recipe("clip", {"model": tiny["clip"]}, [*fast, "optim.max_steps=2"])
    pretrain(recipe, train_store, tmp_path / "run", progress=False)
    changed = load_recipe("clip", {"model": tiny["clip"]}, [*fast, "optim.max_steps=2", "optim.lr=0.1"])
    with pytest.raises(ValueError, match="optim.lr"):
        pretrain(changed, train_store, tmp_path / "run", resume=True, progress=False)


def test_resume_accepts_a_run_saved_before_a_recipe_key_existed(train_store, tmp_path, tiny, fast):
    import yaml

    recipe = load_recipe("clip", {"model": tiny["clip"]}, [*fast, "optim.max_steps=2", "train.checkpoint_every=1"])
    pretrain(recipe, train_store, tmp_path / "run", progress=False)
    config = tmp_path / "run" / "config.yaml"
    saved = yaml.safe_load(config.read_text())
    del saved["recipe"]["model"]["caption_vocab"]  # as written by an older version
    config.write_text(yaml.safe_dump(saved))
    longer = load_recipe("clip", {"model": tiny["clip"]}, [*fast, "optim.max_steps=3", "train.checkpoint_every=1"])
    with pytest.raises(ValueError, match="optim.max_steps"):  # a real change is still refused...
        pretrain(longer, train_store, tmp_path / "run", resume=True, progress=False)
    result = pretrain(recipe, train_store, tmp_path / "run", resume=True, progress=False)  # ...a new key is not
    assert result.steps == 2


def test_nan_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(train_store, tmp_path, monkeypatch, tiny, fast):
    from ecgalign.tasks import ECGTextTask

    original = ECGTextTask.forward

    calls = []

    def poisoned(self, batch, generator=None):
        out = original(self, batch, generator)
        calls.append(1)
        if len(calls) == 3:  # the third optimiser step
            out["loss"] = out["loss"] * float("nan")
        return out

    monkeypatch.setattr(ECGTextTask, "forward", poisoned)
    recipe = load_recipe("mae", {"model": tiny["mae"]}, [*fast, "optim.max_steps=6", "train.checkpoint_every=2"])
    with pytest.raises(NonFiniteLossError, match=r"step 3: loss is nan.*step-00000002"):
        pretrain(recipe, train_store, tmp_path / "run", progress=False)
    assert latest_checkpoint(tmp_path / "run" / "checkpoints").name == "step-00000002"
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_bad_input_gives_clear_errors(train_store, tmp_path):
    result = runner.invoke(app, ["pretrain", "--recipe", "merti", "--data", str(train_store), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "did you mean 'merit'" in result.output
    result = runner.invoke(app, ["pretrain", "--recipe", "merit", "--data", str(train_store), "--out", str(tmp_path / "r"),
                                 "--set", "optim.weight_decai=1"])
    assert result.exit_code == 2 and "unknown key 'optim.weight_decai'" in result.output
    assert "did you mean 'weight_decay'" in result.output
    result = runner.invoke(app, ["pretrain", "--recipe", "clip", "--data", str(tmp_path), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "not an ecgalign store" in result.output
    result = runner.invoke(app, ["pretrain", "--recipe", "clip", "--data", str(train_store), "--out", str(tmp_path / "r"),
                                 "--text-encoder", str(tmp_path / "no-such-model"), "--set", "train.accelerator=cpu",
                                 "--set", "model.encoder_kwargs={embed_dim: 32, depth: 1, num_heads: 2}"])
    assert result.exit_code == 2 and "no-such-model" in result.output and "no such folder" in result.output
    result = runner.invoke(app, ["pretrain", "--recipe", "clip", "--data", str(train_store), "--out", str(tmp_path / "r"),
                                 "--set", "data.fs=500"])
    assert result.exit_code == 2 and "does not hold this encoder's input" in result.output
    result = runner.invoke(app, ["pretrain", "--recipe", "esi", "--data", str(train_store), "--out", str(tmp_path / "r"),
                                 "--set", "objective.reconstruction=1", "--set", "train.accelerator=cpu"])
    assert result.exit_code == 2 and "masked-modelling path" in result.output


def test_unpaired_signals_join_the_reconstruction_only(train_store, tmp_path, monkeypatch, tiny, fast):
    from ecgalign.tasks import ECGTextTask

    seen = []
    original = ECGTextTask.forward

    def spy(self, batch, generator=None):
        seen.append((batch["ecg"].shape[0], batch["ecg_unpaired"].shape[0], len(batch["report"])))
        return original(self, batch, generator)

    monkeypatch.setattr(ECGTextTask, "forward", spy)
    recipe = load_recipe("merit", {"model": tiny["merit"]}, [*fast, "optim.max_steps=2", "data.unpaired_batch_size=3"])
    pretrain(recipe, train_store, tmp_path / "run", unpaired=train_store, progress=False)
    assert seen == [(4, 3, 4), (4, 3, 4)]
    with pytest.raises(ValueError, match="reconstruction term"):
        pretrain(load_recipe("clip", {"model": tiny["clip"]}, fast), train_store, tmp_path / "r2", unpaired=train_store,
                 progress=False)


def test_a_store_with_missing_reports_is_refused_before_training(tmp_path, tiny, fast):
    from ecgalign.data.labels import scp_scheme
    from ecgalign.data.preprocess import Preprocess
    from ecgalign.data.record import LEADS_12, ECGRecord
    from ecgalign.data.store import StoreSpec, StoreWriter

    writer = StoreWriter(tmp_path / "store", StoreSpec(100.0, 1000, LEADS_12, encoding="float16"), scp_scheme(),
                         info={"dataset": "toy", "preprocess": Preprocess.preset("baselines").to_dict()})
    for i in range(8):
        signal = np.random.default_rng(i).standard_normal((12, 1000)).astype(np.float32)
        writer.add(ECGRecord(signal, 100.0, LEADS_12, f"r{i}", "toy", report="" if i in (2, 5) else "sinus rhythm"), i + 1)
    writer.close()
    with pytest.raises(ValueError, match="2 of 8 records have no report.*--unpaired"):
        pretrain(load_recipe("clip", {"model": tiny["clip"]}, fast), tmp_path / "store", tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_init_from_starts_a_run_from_trained_weights(train_store, tmp_path, tiny, fast):
    """`train.init_from` (`--init-from`) loads every weight of a finished model (or a run's newest checkpoint)
    before step 1: with lr 1e-12 the fine-tune ends on the weights it started from, and without it the
    same recipe starts from its own random init. A path with no weights, or weights of another
    architecture, is refused by name before training."""
    base = load_recipe("clip", {"model": tiny["clip"]}, [*fast, "optim.max_steps=2", "train.checkpoint_every=1"])
    pretrain(base, train_store, tmp_path / "base", progress=False)
    trained = load_weights(tmp_path / "base" / "model.safetensors")
    frozen = [*fast, "optim.max_steps=1", "optim.lr=1e-12", "optim.weight_decay=0"]
    for source in (tmp_path / "base", latest_checkpoint(tmp_path / "base" / "checkpoints")):
        out = tmp_path / f"ft-{source.name}"
        pretrain(load_recipe("clip", {"model": tiny["clip"]}, [*frozen, f"train.init_from={source}"]), train_store,
                 out, progress=False)
        after = load_weights(out / "model.safetensors")
        assert all(torch.allclose(after[k], trained[k], atol=1e-6) for k in trained)
    pretrain(load_recipe("clip", {"model": tiny["clip"]}, [*frozen, "train.seed=5"]), train_store, tmp_path / "fresh",
             progress=False)
    fresh = load_weights(tmp_path / "fresh" / "model.safetensors")
    assert any(not torch.allclose(fresh[k], trained[k], atol=1e-3) for k in trained)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="train.init_from .*no model.safetensors"):
        pretrain(load_recipe("clip", {"model": tiny["clip"]}, [*frozen, f"train.init_from={tmp_path / 'empty'}"]),
                 train_store, tmp_path / "bad", progress=False)
    wider = {**tiny["clip"], "encoder_kwargs": {**tiny["clip"].get("encoder_kwargs", {}), "embed_dim": 48}}
    with pytest.raises(ValueError, match="does not match"):
        pretrain(load_recipe("clip", {"model": wider}, [*frozen, f"train.init_from={tmp_path / 'base'}"]),
                 train_store, tmp_path / "bad2", progress=False)
    res = runner.invoke(app, ["pretrain", "--recipe", "clip", "--data", str(train_store), "--out", str(tmp_path / "cli"),
                              "--init-from", str(tmp_path / "empty"), "--no-progress"])
    assert res.exit_code != 0 and "init_from" in res.output
