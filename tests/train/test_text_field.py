"""``data.text_field`` in pretraining: checked at start, trained on, saved with the run, old runs read as report."""

from __future__ import annotations

import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

import ecgalign
from ecgalign.data.errors import InputError
from ecgalign.data.store import ECGStore
from ecgalign.data.texts import record_texts
from ecgalign.recipes.schema import recipe_from_dict
from ecgalign.tasks import load_recipe
from ecgalign.train.engine import pretrain


def _esi(tiny, fast, field: str | None):
    sets = [*fast, "optim.max_steps=2", "train.checkpoint_every=2"]
    return load_recipe("esi", {"model": tiny["esi"]}, sets + ([f"data.text_field={field}"] if field else []))


def _with_description(src, dst, texts):
    shutil.copytree(src, dst)
    meta = pq.read_table(dst / "metadata.parquet")
    pq.write_table(meta.append_column("description", pa.array(texts, pa.string())), dst / "metadata.parquet")
    return dst


def test_recipe_key_defaults_validates_and_old_configs_read_as_report(tiny, fast):
    recipe = _esi(tiny, fast, None)
    assert recipe.data.text_field == "report" and recipe.to_dict()["data"]["text_field"] == "report"
    old = recipe.to_dict()
    del old["data"]["text_field"]  # a run saved before the key existed
    assert recipe_from_dict(old).data.text_field == "report"
    with pytest.raises(InputError, match="data.text_field must be one of report, description, label_names"):
        _esi(tiny, fast, "summary")


def test_missing_column_is_refused_before_training(train_store, tmp_path, tiny, fast):
    with pytest.raises(InputError, match=r"needs the metadata column 'description'"):
        pretrain(_esi(tiny, fast, "description"), train_store, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_empty_texts_are_counted_and_refused(train_store, tmp_path, tiny, fast):
    n = len(ECGStore(train_store))
    store = _with_description(train_store, tmp_path / "enriched", ["x"] * (n - 3) + ["", " ", ""])
    with pytest.raises(InputError, match=f"3 of {n} records have an empty 'description' text"):
        pretrain(_esi(tiny, fast, "description"), store, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("field", ["description", "label_names"])
def test_esi_trains_on_the_selected_text_and_saves_the_key(field, train_store, tmp_path, tiny, fast, monkeypatch):
    n = len(ECGStore(train_store))
    store = _with_description(train_store, tmp_path / "enriched", [f"waveform description {i}" for i in range(n)])
    expected = record_texts(ECGStore(store), field)
    assert expected != record_texts(ECGStore(store), "report")
    from ecgalign.tasks.ecg_text import ECGTextTask

    seen: list[str] = []
    real = ECGTextTask.forward

    def spy(self, batch, generator=None):
        seen.extend(batch["report"])
        return real(self, batch, generator)

    monkeypatch.setattr(ECGTextTask, "forward", spy)
    result = pretrain(_esi(tiny, fast, field), store, tmp_path / "run", progress=False)
    assert result.steps == 2 and np.isfinite(result.final_loss)
    assert len(seen) == 2 * 4 and set(seen) <= set(expected)
    task = ecgalign.load(tmp_path / "run", device="cpu").task  # the caption vocabulary: the selected texts' tokens
    ids = task.text.tokenize(sorted(set(expected)))["input_ids"].flatten().tolist()
    assert task.captioner.vocab_ids.tolist() == sorted(set(ids) | {task.text.pad_id})
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["recipe"]["data"]["text_field"] == field
