"""torch Datasets over an on-disk store.

A batch is a dict with documented keys (DESIGN.md convention 6):

- ``ecg``: float32 (B, leads, samples) — the stored signal after ``preprocess`` (a record-level pipeline such as
  ``InputSpec.preprocess()``, for stores that do not hold the encoder's input) and ``transform``;
- ``index``: int64 (B,) — record positions in the store;
- ``report``: list[str] of length B — the record's training text (when ``with_report``): the ``text_field``
  column (``ecgalign.data.texts``: the report by default, or the CQA description, or the label names);
- ``labels``: float32 (B, C) multi-hot of ``label_set`` (when given); class names in ``dataset.classes``;
- one key per ``extra`` array (per-record rows, e.g. precomputed teacher embeddings).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ecgalign.data.errors import InputError
from ecgalign.data.record import ECGRecord
from ecgalign.data.store import ECGStore
from ecgalign.data.texts import record_texts

Transform = Callable[[np.ndarray, np.random.Generator], np.ndarray]


class ECGDataset(Dataset):
    """Records of a store (optionally a subset of indices) as training examples."""

    def __init__(
        self,
        store: ECGStore | str | Path,
        indices: Sequence[int] | np.ndarray | None = None,
        *,
        label_set: str | None = None,
        with_report: bool = True,
        transform: Transform | None = None,
        seed: int = 0,
        extra: dict[str, np.ndarray] | None = None,
        preprocess: Callable[[ECGRecord], ECGRecord] | None = None,
        text_field: str = "report",
    ):
        self.store = store if isinstance(store, ECGStore) else ECGStore(store)
        n = len(self.store)
        self.indices = np.arange(n) if indices is None else np.asarray(indices, dtype=np.int64)
        if self.indices.size and (self.indices.min() < 0 or self.indices.max() >= n):
            raise IndexError(f"{self.store.path}: indices out of range for {n} records")
        self.transform = transform
        self.preprocess = preprocess
        self.seed = seed
        self.epoch = 0
        self.reports: list[str] | None = None
        if with_report:
            self.reports = record_texts(self.store, text_field)
        self.extra = dict(extra or {})
        for key, values in self.extra.items():
            if len(values) != n:
                raise InputError(f"{self.store.path}: extra array {key!r} has {len(values)} rows for {n} records")
        self.labels: np.ndarray | None = None
        self.classes: list[str] = []
        if label_set is not None:
            self.labels, self.classes = self.store.labels(label_set)

    def __len__(self) -> int:
        return int(self.indices.size)

    def set_epoch(self, epoch: int) -> None:
        """Change the random stream of transforms (called by the training loop each epoch)."""
        self.epoch = epoch

    def __getitem__(self, i: int) -> dict[str, Any]:
        index = int(self.indices[i])
        signal = self._signal(index)  # (leads, samples)
        if self.transform is not None:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            signal = self.transform(signal, rng)
        item: dict[str, Any] = {"ecg": torch.from_numpy(np.ascontiguousarray(signal, dtype=np.float32)), "index": index}
        if self.reports is not None:
            item["report"] = self.reports[index]
        if self.labels is not None:
            item["labels"] = torch.from_numpy(self.labels[index])
        for key, values in self.extra.items():
            item[key] = torch.from_numpy(np.asarray(values[index], dtype=np.float32))
        return item

    def _signal(self, index: int) -> np.ndarray:
        if self.preprocess is None:
            return self.store.signal(index)
        return np.asarray(self.preprocess(self.store.record(index)).signal, dtype=np.float32)

    def batch(self, positions: Sequence[int] | np.ndarray) -> dict[str, Any]:
        """The collated batch of dataset positions ``positions`` in one store read (``store.signals``);
        equal to collating ``[self[i] for i in positions]``."""
        positions = np.asarray(positions, dtype=np.int64)
        index = self.indices[positions]
        if self.transform is None and self.preprocess is None:
            signals = self.store.signals(index)
        else:
            signals = np.stack([self[int(i)]["ecg"].numpy() for i in positions])
        out: dict[str, Any] = {"ecg": torch.from_numpy(signals), "index": torch.from_numpy(index)}
        if self.reports is not None:
            out["report"] = [self.reports[int(i)] for i in index]
        if self.labels is not None:
            out["labels"] = torch.from_numpy(self.labels[index])
        for key, values in self.extra.items():
            out[key] = torch.from_numpy(np.asarray(values[index], dtype=np.float32))
        return out

