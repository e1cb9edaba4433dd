"""What every task is (DESIGN.md convention 6) and the task registry.

A task owns its model, its loss terms and its batch contract, and says everything the engine and the model
loader need to know about it through class attributes and class methods, so neither ever branches on a task's
name. A new task is one module with one ``@register_task("name")`` class (and a recipe YAML naming it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from ecgalign.data.datasets import ECGDataset
from ecgalign.data.errors import InputError
from ecgalign.data.registry import Registry
from ecgalign.data.store import ECGStore
from ecgalign.recipes.schema import Recipe

TASKS: Registry[type[Task]] = Registry("task")


def register_task(name: str):
    """Class decorator: register a ``Task`` subclass under ``name`` (the ``task:`` of a recipe)."""

    def decorator(cls: type[Task]) -> type[Task]:
        cls.name = name
        TASKS.register(name)(cls)
        return cls

    return decorator


class Task(nn.Module):
    """Base class. ``forward(batch, generator)`` returns named loss terms and their weighted sum ``loss``."""

    name: ClassVar[str]
    family: ClassVar[str]  # the model card's family ("ecgalign.<task>")
    input_kind: ClassVar[str]  # what a loaded model reads: "signal" or "image" (ecgalign.hub picks its wrapper)
    loss_terms: ClassVar[tuple[str, ...]]  # the objective.* weights this task computes
    needs_teacher: ClassVar[bool] = False  # learns from a frozen trained model's embeddings (``--teacher``)
    data_kind: ClassVar[str] = "ecg"  # what ``pretrain --data`` names: an ECG store ("ecg") or an echo store ("echo")

    def __init__(self, recipe: Recipe) -> None:
        super().__init__()
        self.recipe = recipe
        weights = recipe.objective.weights()
        self.weights: dict[str, float] = {term: weights[term] for term in self.loss_terms}

    # ------------------------------------------------------------------------------------ the recipe
    @classmethod
    def validate_recipe(cls, recipe: Recipe) -> None:
        """Raise ``InputError`` unless ``recipe`` makes sense for this task (subclasses add their rules)."""
        foreign = [term for term, w in recipe.objective.weights().items() if w > 0 and term not in cls.loss_terms]
        if foreign:
            raise InputError(f"recipe {recipe.name!r}: task {cls.name!r} has no {', '.join(foreign)} term "
                             f"(its terms: {', '.join(cls.loss_terms)})")

    @classmethod
    def reads_reports(cls, recipe: Recipe) -> bool:
        """Whether batches must carry each record's report text."""
        return False

    @classmethod
    def unpaired_problem(cls, recipe: Recipe) -> str | None:
        """Why ``--unpaired`` signal-only records cannot be used with ``recipe`` (None: they can)."""
        return f"task {cls.name!r} takes no --unpaired signals"

    # ------------------------------------------------------------------------------------ training data
    @classmethod
    def open_store(cls, recipe: Recipe, data: Path):
        """The training data at ``data`` (``pretrain --data``). Default: an ``ECGStore``; the engine checks it
        against the recipe's input spec and preprocesses on the fly where it can (``data_kind == "ecg"``)."""
        return ECGStore(data)

    @classmethod
    def training_dataset(cls, recipe: Recipe, store, seed: int, extra: dict[str, Any] | None = None,
                         preprocess=None):
        """What the engine draws batches from: ``len()`` and ``batch(positions) -> dict`` with an ``ecg``
        tensor (B, ...) among the keys. Default: the store's records (+ reports when the task reads them),
        through ``preprocess`` when the store does not hold the encoder's input."""
        return ECGDataset(store, with_report=cls.reads_reports(recipe), seed=seed, extra=extra, preprocess=preprocess,
                          text_field=recipe.data.text_field)

    # ------------------------------------------------------------------------------------ building
    @classmethod
    def for_training(cls, recipe: Recipe, store, context: dict[str, Any]) -> Task:
        """A fresh model for training on ``store``; ``context`` holds what the engine prepared (``teacher_*``)."""
        raise NotImplementedError

    @classmethod
    def from_saved(cls, recipe: Recipe, state: dict[str, torch.Tensor], card: dict[str, Any]) -> Task:
        """The model of a saved run, its weights loaded."""
        raise NotImplementedError

    def fresh_copy(self) -> Task:
        """The same architecture with newly initialised trainable weights (frozen parts are shared): the
        random-init baseline of every evaluation."""
        raise NotImplementedError

    # ------------------------------------------------------------------------------------ saving
    def card_fields(self) -> dict[str, Any]:
        """What the model card says about this task's model."""
        return {}

    def saved_state(self) -> dict[str, torch.Tensor]:
        return self.state_dict()

    def load_saved_state(self, state: dict[str, torch.Tensor]) -> None:
        try:
            missing, unexpected = self.load_state_dict(state, strict=False)
        except RuntimeError as exc:  # a tensor of another shape: the weights belong to another architecture
            raise InputError(f"checkpoint does not match the model {self.recipe.name!r}: "
                             f"{str(exc).splitlines()[-1].strip() or exc}") from exc
        missing = [k for k in missing if not self._frozen_key(k)]
        if missing or unexpected:
            raise InputError(f"checkpoint does not match the model: missing {missing[:5]}, unexpected {unexpected[:5]}")

    def _frozen_key(self, key: str) -> bool:
        """Weights that are not saved because a named frozen component supplies them."""
        return False

    def weighted_sum(self, out: dict[str, torch.Tensor]) -> torch.Tensor:
        return sum(w * out[k] for k, w in self.weights.items() if w > 0)


def get_task(name: str) -> type[Task]:
    return TASKS.get(name)


def list_tasks() -> list[str]:
    return TASKS.names()
