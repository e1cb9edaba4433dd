"""The model card (``model.json``) beside the final weights: what the model is, what input it expects, how it
was trained, and the fully resolved recipe that rebuilds it."""

from __future__ import annotations

import json
import time
from pathlib import Path

from ecgalign._version import __version__
from ecgalign.hub.io import CARD, WEIGHTS, atomic_write_text, save_weights
from ecgalign.recipes.schema import Recipe
from ecgalign.tasks import Task


def write_model(run_dir: Path, task: Task, recipe: Recipe, step: int) -> None:
    """``model.safetensors`` + ``model.json`` in ``run_dir``."""
    card = {
        "family": task.family,
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
    save_weights(task.saved_state(), run_dir / WEIGHTS, {"family": task.family})
    atomic_write_text(run_dir / CARD, json.dumps(card, indent=2))
