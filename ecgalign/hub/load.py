"""``ecgalign.load``: a trained model from its folder, whatever task trained it."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ecgalign.data.errors import InputError
from ecgalign.hub.echo import EchoPairModel, echo_pair
from ecgalign.hub.io import CARD, CHECKPOINTS, WEIGHTS, latest_checkpoint, load_weights, read_run_config
from ecgalign.hub.models import MODEL_KINDS
from ecgalign.tasks import TASKS, get_task, recipe_from_dict


def _device(device: str | torch.device | None) -> torch.device:
    return torch.device(device) if device else torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load(path: str | Path, device: str | torch.device | None = None):
    """Load a run folder (its final ``model.safetensors``, or its newest checkpoint while it trains) or a
    folder holding ``model.json`` + ``model.safetensors``. Returns an ``Embedder`` (``SignalModel`` or
    ``ImageModel``, by the task's ``input_kind``)."""
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such model or run folder")
    card_path = root / CARD
    if card_path.is_file():
        try:
            card = json.loads(card_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"{card_path}: not a valid model card ({exc})") from exc
        families = {get_task(name).family for name in TASKS.names()}
        if not isinstance(card, dict) or card.get("family") not in families:
            raise InputError(f"{card_path}: model family {card.get('family') if isinstance(card, dict) else None!r} "
                             f"is not one of {sorted(families)}")
        if not isinstance(card.get("recipe_resolved"), dict):
            raise InputError(f"{card_path}: the card holds no resolved recipe ('recipe_resolved')")
        weights_path = root / WEIGHTS
        recipe = recipe_from_dict(card["recipe_resolved"])
    else:
        recipe = recipe_from_dict(read_run_config(root)["recipe"])
        ckpt = latest_checkpoint(root / CHECKPOINTS)
        if ckpt is None:
            raise FileNotFoundError(f"{root}: the run has no checkpoint yet and no final {WEIGHTS}")
        weights_path = ckpt / WEIGHTS
        card = {"family": get_task(recipe.task).family, "task": recipe.task, "recipe": recipe.name,
                "recipe_resolved": recipe.to_dict(), "checkpoint": str(ckpt)}
    if not weights_path.is_file():
        raise FileNotFoundError(f"{weights_path}: weights are missing")
    task_cls = get_task(recipe.task)
    task = task_cls.from_saved(recipe, load_weights(weights_path), card)
    return MODEL_KINDS.get(task_cls.input_kind)(task, card, _device(device), weights_path)


def load_echo(path: str | Path, device: str | torch.device | None = None) -> EchoPairModel:
    """Both towers of an echo-aligned run (``eee``, ``eee-12lead``): an ``EchoPairModel``; ``NotApplicableError``
    for a run of another task."""
    return echo_pair(load(path, device))
