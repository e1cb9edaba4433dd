"""``EchoPairModel``: both towers of an echo-aligned run (EEE, seed 003_74d6fba967a030e7, Sec. 3.3-3.4) loaded
for evaluation: the ECG encoder, the echo encoder, the map into their joint space and, for the strip variant,
the temporal-alignment head.

A task has an echo side when its ``data_kind`` is ``"echo"``; such a task provides ``sequences(recipe, store,
seed)`` (the batches it trains on), ``embed_pair(batch, ecg)`` ([CLS] embeddings of both sides in the echo width),
``head`` (the alignment head or None) and ``ecg.token_size`` (the strip variant's token). Loading never
branches on a task's name.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from ecgalign.data.errors import NotApplicableError
from ecgalign.hub.models import seeded_fresh_copy
from ecgalign.models.heads.alignment import shift_signals
from ecgalign.tasks import Task


def has_echo_side(task: Task) -> bool:
    """Whether ``task`` was trained against echo clips (and so has an echo encoder and a joint space)."""
    return getattr(type(task), "data_kind", "ecg") == "echo"


class EchoPairModel:
    """ECG <-> echo model of a run. ``embed(batch)`` gives L2-normalised ``z_ecg``, ``z_echo`` (B, D) in the joint
    space; ``align_logits(batch, ecg)`` the alignment head's logits (positive = "shifted"), ``shift_tokens(batch,
    k)`` the batch's ECG rotated by k tokens. Batches come from ``sequences(store)``:
    every file from its first frame, as the task builds them (ECG side per the run's ``echo.ecg_side``)."""

    def __init__(self, task: Task, card: dict[str, Any], device: torch.device, weights_path: Path | None = None):
        if not has_echo_side(task):
            raise NotApplicableError(f"recipe {task.recipe.name!r} (task {task.name!r}) was not trained against echo "
                                     "clips: it has no echo encoder or ECG-echo joint space")
        self.task, self.card, self.device, self.weights_path = task.eval().to(device), card, device, weights_path

    @property
    def name(self) -> str:
        return str(self.card.get("name") or self.card.get("recipe", "model"))

    @property
    def ecg_side(self) -> str:
        """"strip" (the ECG burned into the echo screen, token-aligned) or "paired" (the study's 12-lead ECG)."""
        return str(self.task.recipe.echo.ecg_side)

    @property
    def has_alignment_head(self) -> bool:
        return getattr(self.task, "head", None) is not None

    @property
    def clips(self) -> int:
        return int(self.task.recipe.echo.clips)

    def sequences(self, store):
        """The evaluation sequences of an echo store (``ecgalign.echo.store.EchoStore``): every file from 0 s."""
        return type(self.task).sequences(self.task.recipe, store, seed=None)

    def batches(self, sequences, positions: np.ndarray, batch_size: int = 16) -> Iterator[dict[str, torch.Tensor]]:
        """``sequences.batch`` over ``positions`` in chunks, on the model's device."""
        for i in range(0, len(positions), batch_size):
            batch = sequences.batch(positions[i:i + batch_size])
            yield {k: v.to(self.device) for k, v in batch.items()}

    @torch.inference_mode()
    def embed(self, batch: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        """L2-normalised [CLS] embeddings ``z_ecg``, ``z_echo`` (B, D) of a batch's pairs."""
        z = self.task.embed_pair(batch, batch["ecg"].float())
        return {k: F.normalize(z[k].float(), dim=-1).cpu().numpy() for k in ("z_ecg", "z_echo")}

    @torch.inference_mode()
    def align_logits(self, batch: dict[str, torch.Tensor], ecg: torch.Tensor | None = None) -> np.ndarray:
        """Alignment-head logits (B,) of a batch's pairs (positive = "shifted"), with ``ecg`` in place of the
        batch's ECG when given."""
        if not self.has_alignment_head:
            raise NotApplicableError(self.no_head_reason())
        z = self.task.embed_pair(batch, batch["ecg"].float() if ecg is None else ecg)
        return self.task.head(z["z_ecg"], z["z_echo"]).float().cpu().numpy()

    def shift_tokens(self, batch: dict[str, torch.Tensor], steps: int) -> tuple[torch.Tensor, np.ndarray]:
        """The batch's ECG with every row whose valid part holds more than ``steps`` tokens rotated by exactly
        ``steps`` tokens inside it (``shift_signals``, the training's helper), and (B,) bool: which rows moved."""
        size = int(self.task.ecg.token_size)
        lengths = (~batch["echo_mask"]).sum(1) * size
        moved, shifted = shift_signals(batch["ecg"].float(), 1.0, lengths, step=size, steps=steps)
        return moved, shifted.cpu().numpy()

    def no_head_reason(self) -> str:
        if self.ecg_side != "strip":
            return (f"recipe {self.task.recipe.name!r} pairs the echo with the study's 12-lead ECG, which is not "
                    "recorded during the echo: there is no temporal alignment to detect (no alignment head)")
        return f"recipe {self.task.recipe.name!r} was trained without the alignment head (objective.align = 0)"

    def random_init(self, seed: int = 0) -> EchoPairModel:
        """The same architecture with fresh weights drawn from ``seed`` (the random-init baseline; the same twin
        as ``SignalModel.random_init(seed)``)."""
        card = {**self.card, "name": f"random-init {self.task.recipe.name}", "seed": seed, "random_init": True}
        return EchoPairModel(seeded_fresh_copy(self.task, seed), card, self.device, None)


def echo_pair(model) -> EchoPairModel:
    """The ``EchoPairModel`` of a loaded model (``ecgalign.load`` of an echo-aligned run, or its ``random_init()``
    twin); ``NotApplicableError`` for any other model."""
    task = getattr(model, "task", None)
    if not isinstance(task, Task) or not has_echo_side(task):
        raise NotApplicableError(f"{getattr(model, 'name', 'the model')} was not trained against echo clips (an "
                                 "eee / eee-12lead run has the echo encoder these protocols need)")
    return EchoPairModel(task, model.card, model.device, model.weights_path)
