"""A trained model on disk: ``model.safetensors`` + ``model.json`` (the model card: what it is, what input it
expects, how it was trained, the label order of any head), and ``ecgalign.load`` to get it back."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ecgalign import __version__
from ecgalign.train.checkpoint import atomic_write_text, load_weights, save_weights

CARD = "model.json"
WEIGHTS = "model.safetensors"
FAMILY = "ecgalign.ecg-text"
FAMILIES = {"ecg-text": FAMILY, "ecg-scan": "ecgalign.ecg-scan"}


def write_model(run_dir: Path, task, recipe, step: int) -> None:
    family = FAMILIES[recipe.task]
    card = {
        "family": family,
        "task": recipe.task,
        "ecgalign_version": __version__,
        "recipe": recipe.name,
        "description": recipe.description,
        "step": step,
        **task.card_fields(),
        "objectives": {k: v for k, v in task.weights.items() if v > 0},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "recipe_resolved": recipe.to_dict(),
    }
    save_weights(task.saved_state(), run_dir / WEIGHTS, {"family": family})
    atomic_write_text(run_dir / CARD, json.dumps(card, indent=2))


class PretrainedModel:
    """A loaded ecgalign model. Inputs are tensors or arrays (B, leads, samples) in ``input_spec`` (use
    ``preprocess(record)`` for a raw ``ECGRecord``)."""

    def __init__(self, task, card: dict[str, Any], device: torch.device, weights_path: Path | None = None):
        self.task, self.card, self.device = task.eval().to(device), card, device
        self.input_spec = task.ecg.input_spec
        self.weights_path = weights_path  # None for a randomly initialised model

    @property
    def name(self) -> str:
        return str(self.card.get("name") or self.card.get("recipe", "model"))

    def _tensor(self, signals) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(signals, dtype=np.float32) if not torch.is_tensor(signals) else signals)
        if x.ndim == 2:
            x = x[None]
        return x.float().to(self.device)

    def preprocess(self, record):
        """A raw record -> the encoder's input array (leads, samples)."""
        return self.input_spec.preprocess()(record).signal

    def features(self, signals, batch_size: int = 256) -> np.ndarray:
        """Pooled encoder features (B, embed_dim): what linear probes use."""
        return self._batched(self.task.features, signals, batch_size)

    def encode_ecg(self, signals, batch_size: int = 256) -> np.ndarray:
        """L2-normalised ECG embeddings in the joint ECG-text space (B, proj_dim)."""
        return self._batched(self.task.encode_ecg, signals, batch_size)

    def encode_text(self, texts: list[str]) -> np.ndarray:
        """L2-normalised text embeddings in the joint space (B, proj_dim)."""
        return self.task.encode_text(list(texts)).float().cpu().numpy()

    def _batched(self, fn, signals, batch_size: int) -> np.ndarray:
        x = self._tensor(signals)
        self.task.ecg.check_input(x)
        with torch.inference_mode():
            return torch.cat([fn(x[i:i + batch_size]).float().cpu() for i in range(0, len(x), batch_size)]).numpy()


def load(path: str | Path, device: str | torch.device | None = None) -> PretrainedModel:
    """Load a run folder (its final ``model.safetensors``, or its newest checkpoint while it trains) or a
    folder holding ``model.json`` + ``model.safetensors``."""
    from ecgalign.tasks import ECGTextTask
    from ecgalign.train.checkpoint import WEIGHTS as CKPT_WEIGHTS
    from ecgalign.train.checkpoint import latest_checkpoint
    from ecgalign.train.config import recipe_from_dict

    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such model or run folder")
    card_path = root / CARD
    if card_path.is_file():
        card = json.loads(card_path.read_text())
        if card.get("family") not in FAMILIES.values():
            raise ValueError(f"{card_path}: model family {card.get('family')!r} is not one of {sorted(FAMILIES.values())}")
        weights_path = root / WEIGHTS
        recipe = recipe_from_dict(card["recipe_resolved"])
    else:
        from ecgalign.train.engine import load_run_recipe

        recipe, _ = load_run_recipe(root)
        ckpt = latest_checkpoint(root / "checkpoints")
        if ckpt is None:
            raise FileNotFoundError(f"{root}: the run has no checkpoint yet and no final {WEIGHTS}")
        weights_path = ckpt / CKPT_WEIGHTS
        card = {"family": FAMILIES[recipe.task], "task": recipe.task, "recipe": recipe.name,
                "recipe_resolved": recipe.to_dict(), "checkpoint": str(ckpt)}
    if not weights_path.is_file():
        raise FileNotFoundError(f"{weights_path}: weights are missing")
    state = load_weights(weights_path)
    if recipe.task == "ecg-scan":
        from ecgalign.tasks import ECGScanTask

        task = ECGScanTask(recipe, signal_dim=state["image_proj.0.weight"].shape[0],
                           text_dim=state["text_proj.0.weight"].shape[1])
        task.load_saved_state(state)
        return PretrainedImageModel(task, card, _device(device), weights_path)
    task = ECGTextTask(recipe)
    task.load_saved_state(state)
    return PretrainedModel(task, card, _device(device), weights_path)


class PretrainedImageModel:
    """A loaded ECG-Scan model: ``encode_image`` / ``image_features`` / ``reconstruct`` take printout images
    (B, 3, H, W) at the trained size, float in [0, 1] or uint8; ``render(signals_mv, fs)`` draws printouts
    the way training did (without augmentation)."""

    def __init__(self, task, card: dict[str, Any], device: torch.device, weights_path: Path | None = None):
        self.task, self.card, self.device, self.weights_path = task.eval().to(device), card, device, weights_path
        self.input_spec = task.recipe.input_spec()
        self.image_size = (task.recipe.image.height, task.recipe.image.width)

    @property
    def name(self) -> str:
        return str(self.card.get("name") or self.card.get("recipe", "model"))

    def render(self, signals, fs: float) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(signals, dtype=np.float32) if not torch.is_tensor(signals) else signals)
        return self.task._render(x.float().to(self.device).reshape(-1, *x.shape[-2:]), None)

    def _batched(self, fn, images, batch_size: int) -> np.ndarray:
        x = torch.as_tensor(images)
        if x.ndim == 3:
            x = x[None]
        with torch.inference_mode():
            return torch.cat([fn(x[i:i + batch_size].to(self.device)).float().cpu()
                              for i in range(0, len(x), batch_size)]).numpy()

    def encode_image(self, images, batch_size: int = 64) -> np.ndarray:
        """L2-normalised image embeddings in the shared (teacher signal) space."""
        return self._batched(self.task.encode_image, images, batch_size)

    def image_features(self, images, batch_size: int = 64) -> np.ndarray:
        """Pooled image-encoder features: what linear probes use."""
        return self._batched(self.task.image_features, images, batch_size)

    def reconstruct(self, images, batch_size: int = 64) -> np.ndarray:
        """Reconstructed 12-lead signals (in units of the record's standard deviation)."""
        return self._batched(self.task.reconstruct, images, batch_size)


def _device(device: str | torch.device | None) -> torch.device:
    return torch.device(device) if device else torch.device("cuda" if torch.cuda.is_available() else "cpu")


def random_init_like(model: PretrainedModel, seed: int = 0) -> PretrainedModel:
    """The same architecture (and the same frozen text encoder) with freshly initialised trainable weights:
    the baseline every evaluation report includes."""
    from ecgalign.tasks import ECGTextTask
    from ecgalign.train.config import recipe_from_dict

    recipe = recipe_from_dict(model.card["recipe_resolved"])
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        task = ECGTextTask(recipe, text_encoder=model.task.text)
    finally:
        torch.random.set_rng_state(state)
    card = {**model.card, "name": f"random-init {model.card.get('encoder', {}).get('name', recipe.model.encoder)}",
            "seed": seed, "random_init": True}
    return PretrainedModel(task, card, model.device, None)
