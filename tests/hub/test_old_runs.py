"""Run folders written by ecgalign 0.1.0 (tests/fixtures/runs-0.1.0, tiny models trained two steps) still load
and give the very numbers they gave when they were written (``expected.npz``, computed then)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import ecgalign

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "runs-0.1.0"


@pytest.fixture(scope="module")
def expected():
    return dict(np.load(FIXTURES / "expected.npz"))


@pytest.mark.parametrize("name", ["merit-tiny", "esi-tiny"])
def test_signal_models_of_0_1_0_give_the_same_embeddings(name, expected):
    model = ecgalign.load(FIXTURES / name, device="cpu")
    x = expected["input.signals"]
    np.testing.assert_allclose(model.features(x), expected[f"{name}.features"], atol=1e-5)
    np.testing.assert_allclose(model.encode_ecg(x), expected[f"{name}.embedding"], atol=1e-5)
    np.testing.assert_allclose(model.encode_text(["sinus rhythm", "atrial fibrillation"]), expected[f"{name}.text"],
                               atol=1e-5)


def test_image_model_of_0_1_0_gives_the_same_embeddings(expected):
    model = ecgalign.load(FIXTURES / "scan-tiny", device="cpu")
    images = expected["input.images"]
    np.testing.assert_allclose(model.image_features(images), expected["scan-tiny.image_features"], atol=1e-5)
    np.testing.assert_allclose(model.encode_image(images), expected["scan-tiny.image_embedding"], atol=1e-5)
    np.testing.assert_allclose(model.reconstruct(images)[:, :, :100], expected["scan-tiny.reconstruct"], atol=1e-5)


def test_a_0_1_0_run_folder_without_final_model_loads_its_checkpoint(tmp_path, expected):
    run = tmp_path / "merit-tiny"
    shutil.copytree(FIXTURES / "merit-tiny", run)
    (run / "model.json").unlink()
    (run / "model.safetensors").unlink()
    model = ecgalign.load(run, device="cpu")
    np.testing.assert_allclose(model.features(expected["input.signals"]), expected["merit-tiny.features"], atol=1e-5)
