"""``ecgalign demo``'s hand-over: the model at OUT (so ``--checkpoint OUT`` works) and the next commands."""

from __future__ import annotations

import shutil
from pathlib import Path

import ecgalign
from ecgalign.cli.demo import next_steps, publish_model

RUN = Path(__file__).resolve().parents[1] / "fixtures" / "runs-0.1.0" / "merit-tiny"


def test_the_demo_folder_loads_as_a_checkpoint(tmp_path):
    out = tmp_path / "demo"
    shutil.copytree(RUN, out / "merit")
    (out / "synthetic-train").mkdir()  # the demo folder also holds its stores
    publish_model(out / "merit", out)
    model = ecgalign.load(out, device="cpu")
    assert model.card["recipe"] == ecgalign.load(out / "merit", device="cpu").card["recipe"]
    assert not list(out.glob(".*.tmp"))


def test_next_steps_name_the_checkpoint_and_exact_commands(tmp_path):
    text = next_steps(tmp_path / "demo", Path("/data/ptbxl-500"))
    assert f"checkpoint: {tmp_path / 'demo'}" in text
    assert f"ecgalign eval all --checkpoint {tmp_path / 'demo'} --data /data/ptbxl-500" in text
    assert "ecgalign eval shift" in text and "ecgalign embed" in text
    assert "--data " + str(tmp_path / "demo" / "synthetic-heldout") in next_steps(tmp_path / "demo", None)
