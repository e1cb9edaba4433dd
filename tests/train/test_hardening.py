"""Run folders are untrusted input (issue 11): resuming never runs code planted in them, damaged or foreign files
give one named error, and bad settings are refused before anything is written."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest
import torch

import ecgalign
from ecgalign.data.errors import ECGAlignError, InputError
from ecgalign.hub.io import latest_checkpoint
from ecgalign.tasks import load_recipe
from ecgalign.train.checkpoint import read_state
from ecgalign.train.engine import pretrain

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "runs-0.1.0"
MARKER = "ecgalign-planted-payload-ran"


class _Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):  # unpickling this would write the marker file
        return (Path.write_text, (self.marker, MARKER))


def test_a_planted_pickle_payload_in_state_pt_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "ran.txt"
    state = tmp_path / "state.pt"
    torch.save({"step": 1, "evil": _Payload(marker)}, state)
    with pytest.raises(InputError, match="refused to load the training state"):
        read_state(state)
    assert not marker.exists()
    with pytest.raises(pickle.UnpicklingError):  # what the unsafe default would have done instead
        torch.load(state, weights_only=True)


def test_the_state_of_a_0_1_0_run_still_reads(tmp_path):
    state = read_state(latest_checkpoint(FIXTURES / "merit-tiny" / "checkpoints") / "state.pt")
    assert state["step"] == 2 and "optimizer" in state and len(state["rng"]) == 1


def test_resuming_a_run_with_a_planted_state_refuses_before_training(train_store, tmp_path, tiny, fast):
    recipe = load_recipe("merit", {"model": tiny["merit"]}, [*fast, "optim.max_steps=2", "train.checkpoint_every=1"])
    run = pretrain(recipe, train_store, tmp_path / "run", progress=False).run_dir
    marker = tmp_path / "ran.txt"
    ckpt = latest_checkpoint(run / "checkpoints")
    torch.save({"step": 1, "evil": _Payload(marker)}, ckpt / "state.pt")
    longer = load_recipe("merit", {"model": tiny["merit"]}, [*fast, "optim.max_steps=2", "train.checkpoint_every=1"])
    with pytest.raises(InputError, match="refused"):
        pretrain(longer, train_store, run, resume=True, progress=False)
    assert not marker.exists()


def test_resume_without_config_yaml_is_refused(train_store, tmp_path, tiny, fast):
    recipe = load_recipe("merit", {"model": tiny["merit"]}, [*fast, "optim.max_steps=1"])
    run = pretrain(recipe, train_store, tmp_path / "run", progress=False).run_dir
    (run / "config.yaml").unlink()
    other = load_recipe("clip", {"model": tiny["clip"]}, [*fast, "optim.max_steps=2"])
    with pytest.raises(InputError, match="config.yaml is missing"):
        pretrain(other, train_store, run, resume=True, progress=False)


def test_a_resume_already_at_max_steps_reports_no_loss_not_nan(train_store, tmp_path, tiny, fast):
    recipe = load_recipe("merit", {"model": tiny["merit"]}, [*fast, "optim.max_steps=1"])
    run = pretrain(recipe, train_store, tmp_path / "run", progress=False).run_dir
    again = pretrain(recipe, train_store, run, resume=True, progress=False)
    assert again.steps == 1 and again.final_loss is None
    json.dumps({"final_loss": again.final_loss}, allow_nan=False)


@pytest.mark.parametrize("sets, message", [
    (["data.batch_size=2.5"], "whole number"),
    (["objective.temperature=0"], "temperature must be > 0"),
    (["objective.label_smoothing=1.5"], "label_smoothing"),
    (["objective.gram=1"], "has no gram term"),
])
def test_bad_settings_are_named(sets, message):
    with pytest.raises(InputError, match=message):
        load_recipe("merit", sets=sets)


def test_unknown_encoder_kwargs_are_refused_and_nothing_is_written(train_store, tmp_path, fast):
    recipe = load_recipe("merit", {"model": {"encoder_kwargs": {"no_such_width": 3}}}, fast)
    with pytest.raises(InputError, match="no_such_width"):
        pretrain(recipe, train_store, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_damaged_or_foreign_model_files_give_one_named_error(tmp_path):
    truncated = tmp_path / "truncated"
    shutil.copytree(FIXTURES / "merit-tiny", truncated)
    weights = truncated / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(InputError, match="model.safetensors"):
        ecgalign.load(truncated, device="cpu")
    foreign = tmp_path / "foreign"  # esi weights under a merit card: another architecture
    shutil.copytree(FIXTURES / "merit-tiny", foreign)
    shutil.copy(FIXTURES / "esi-tiny" / "model.safetensors", foreign / "model.safetensors")
    with pytest.raises(InputError, match="does not match"):
        ecgalign.load(foreign, device="cpu")
    corrupt = tmp_path / "corrupt"
    shutil.copytree(FIXTURES / "merit-tiny", corrupt)
    (corrupt / "model.json").unlink()
    (corrupt / "model.safetensors").unlink()
    (corrupt / "config.yaml").write_text("recipe: [unclosed")
    with pytest.raises(InputError, match="config.yaml"):
        ecgalign.load(corrupt, device="cpu")
    card = tmp_path / "card"
    shutil.copytree(FIXTURES / "merit-tiny", card)
    (card / "model.json").write_text("{not json")
    with pytest.raises(ECGAlignError, match="model.json"):
        ecgalign.load(card, device="cpu")
