"""Tasks: one module per method family; a task owns model + losses + the batch contract (DESIGN.md
convention 6) and ``forward(batch, generator)`` returns named losses, so the training loop knows no modality.
Importing this package registers the built-in tasks; ``load_recipe`` / ``recipe_from_dict`` resolve a recipe
and hold it against its task's rules."""

from __future__ import annotations

from typing import Any

from ecgalign.recipes import schema
from ecgalign.recipes.schema import Recipe
from ecgalign.tasks.base import TASKS, Task, get_task, list_tasks, register_task
from ecgalign.tasks.ecg_scan import ECGScanTask
from ecgalign.tasks.ecg_text import ECGTextTask
from ecgalign.tasks.eee import EEETask

__all__ = ["TASKS", "ECGScanTask", "ECGTextTask", "EEETask", "Task", "get_task", "list_tasks", "load_recipe",
           "recipe_from_dict", "register_task"]


def load_recipe(name_or_path: str, overrides: dict[str, Any] | None = None, sets: list[str] | None = None) -> Recipe:
    """A packaged recipe name or YAML file over the schema's defaults, then ``overrides`` and ``--set``-style
    ``sets``, validated by the schema and by its task."""
    recipe = schema.load_recipe(name_or_path, overrides, sets)
    get_task(recipe.task).validate_recipe(recipe)
    return recipe


def recipe_from_dict(data: dict[str, Any]) -> Recipe:
    """A saved (resolved) recipe, validated by the schema and by its task."""
    recipe = schema.recipe_from_dict(data)
    get_task(recipe.task).validate_recipe(recipe)
    return recipe
