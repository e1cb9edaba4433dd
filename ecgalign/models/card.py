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

    @property
    def has_joint_space(self) -> bool:
        return self.task.ecg_proj is not None

    @property
    def embed_dim(self) -> int:
        return int(self.task.ecg.embed_dim)

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
    vocab = state.get("captioner.vocab_ids")
    task = ECGTextTask(recipe, caption_vocab=None if vocab is None else len(vocab))
    task.load_saved_state(state)
    return PretrainedModel(task, card, _device(device), weights_path)


class PretrainedImageModel:
    """A loaded ECG-Scan model: ``encode_image`` / ``image_features`` / ``reconstruct`` take printout images
    (B, 3, H, W) at the trained size, float in [0, 1] or uint8; ``render(signals_mv)`` draws printouts the
    way training did. ``features`` / ``encode_ecg`` take ECGs as millivolt signals in ``input_spec`` and
    render them first (with ``eval_augment``: "none", "light" or "heavy"), so every evaluation protocol runs
    on images unchanged. ``encode_text`` uses the teacher's frozen text encoder and the trained projector."""

    has_joint_space = True

    def __init__(self, task, card: dict[str, Any], device: torch.device, weights_path: Path | None = None,
                 text_encoder=None):
        self.task, self.card, self.device, self.weights_path = task.eval().to(device), card, device, weights_path
        self.input_spec = task.recipe.input_spec()
        self.image_size = (task.recipe.image.height, task.recipe.image.width)
        self.eval_augment = "none"
        self._text = text_encoder
        self._rendered = 0  # images rendered so far: the seed of the next augmented one

    @property
    def name(self) -> str:
        return str(self.card.get("name") or self.card.get("recipe", "model"))

    @property
    def embed_dim(self) -> int:
        return int(self.task.image.embed_dim)

    def render(self, signals, augment: str | None = None) -> torch.Tensor:
        """Printouts (B, 3, H, W) float in [0, 1] of millivolt signals (B, 12, T) at ``input_spec.fs``."""
        from ecgalign.render import Renderer

        x = torch.as_tensor(np.asarray(signals, dtype=np.float32) if not torch.is_tensor(signals) else signals)
        x = x.float().to(self.device).reshape(-1, *x.shape[-2:])
        renderer = Renderer(self.task.render_config, device=self.device)
        seeds = list(range(self._rendered, self._rendered + len(x)))
        self._rendered += len(x)
        with torch.inference_mode():
            return renderer.render(x, self.input_spec.fs, augment=augment or self.eval_augment, seed=seeds,
                                   output="float").images

    def features(self, signals, batch_size: int = 64) -> np.ndarray:
        """Image-encoder features of the printouts of ``signals`` (mV)."""
        return np.concatenate([self.image_features(self.render(signals[i:i + batch_size]), batch_size)
                               for i in range(0, len(signals), batch_size)])

    def encode_ecg(self, signals, batch_size: int = 64) -> np.ndarray:
        """Shared-space embeddings of the printouts of ``signals`` (mV)."""
        return np.concatenate([self.encode_image(self.render(signals[i:i + batch_size]), batch_size)
                               for i in range(0, len(signals), batch_size)])

    def encode_text(self, texts: list[str]) -> np.ndarray:
        """L2-normalised text embeddings in the shared space (teacher text encoder + trained projector)."""
        if self._text is None:
            from ecgalign.models.encoders.text import TextEncoder

            self._text = TextEncoder(self.card.get("text_encoder")).to(self.device)
        with torch.inference_mode():
            z = self.task.text_proj(self._text(list(texts)).to(self.device))
            return torch.nn.functional.normalize(z, dim=-1).float().cpu().numpy()

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


def random_init_like(model, seed: int = 0):
    """The same architecture (and the same frozen text encoder) with freshly initialised trainable weights:
    the baseline every evaluation report includes."""
    from ecgalign.eval.digitized import DigitizedSignalModel, random_init_twin
    from ecgalign.tasks import ECGScanTask, ECGTextTask
    from ecgalign.train.config import recipe_from_dict

    if isinstance(model, DigitizedSignalModel):  # the same printouts, read into a random-init signal encoder
        return random_init_twin(model, seed)
    recipe = recipe_from_dict(model.card["recipe_resolved"])
    image = isinstance(model, PretrainedImageModel)
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        if image:
            task = ECGScanTask(recipe, signal_dim=model.task.signal_dim, text_dim=model.task.text_dim)
        else:
            captioner = model.task.captioner
            compact = captioner is not None and captioner.compact
            task = ECGTextTask(recipe, text_encoder=model.task.text,
                               caption_vocab=len(captioner.vocab_ids) if compact else None)
            if compact:  # the same compact vocabulary, fresh weights
                task.captioner.vocab_ids.copy_(captioner.vocab_ids)
                task.captioner.pad_index = captioner.pad_index
    finally:
        torch.random.set_rng_state(state)
    if image:
        card = {**model.card, "name": f"random-init {recipe.image.encoder}", "seed": seed, "random_init": True}
        baseline = PretrainedImageModel(task, card, model.device, None, text_encoder=model._text)
        baseline.eval_augment = model.eval_augment
        return baseline
    card = {**model.card, "name": f"random-init {model.card.get('encoder', {}).get('name', recipe.model.encoder)}",
            "seed": seed, "random_init": True}
    return PretrainedModel(task, card, model.device, None)
