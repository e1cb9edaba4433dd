"""Training data: deterministic, resumable batches over a store.

The order is a pure function of (seed, epoch): epoch e shuffles all records with ``permutation(seed, e)``,
cuts them into global batches of ``world * batch_size`` (an incomplete last one is dropped) and rank r takes
its slice of each. A run that resumes after ``consumed`` batches continues with exactly the batches it would
have seen, whatever the number of loader workers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from torch.utils.data import DataLoader, Dataset, Sampler

from ecgalign.data.datasets import ECGDataset


class ResumableBatchSampler(Sampler[np.ndarray]):
    """An endless stream of this rank's batches (arrays of dataset positions), from batch ``start`` on."""

    def __init__(self, n: int, batch_size: int, seed: int = 0, rank: int = 0, world: int = 1, start: int = 0):
        if n < batch_size * world:
            raise ValueError(f"{n} records cannot fill one global batch of {world} x {batch_size}; "
                             "lower data.batch_size or use more data")
        self.n, self.batch_size, self.seed, self.rank, self.world, self.start = n, batch_size, seed, rank, world, start
        self.batches_per_epoch = n // (batch_size * world)

    def batch_at(self, k: int) -> np.ndarray:
        """This rank's k-th batch since the start of training."""
        epoch, j = divmod(k, self.batches_per_epoch)
        order = np.random.default_rng([self.seed, epoch]).permutation(self.n)
        first = (j * self.world + self.rank) * self.batch_size
        return order[first:first + self.batch_size]

    def __iter__(self) -> Iterator[np.ndarray]:
        k = self.start
        while True:
            yield self.batch_at(k)
            k += 1

    def __len__(self) -> int:  # endless; DataLoader only needs it for len(loader), which the loop never asks
        raise TypeError("ResumableBatchSampler is endless")


class _Batches(Dataset):
    """Maps a batch of positions to a collated batch with one store read."""

    def __init__(self, dataset: ECGDataset):
        self.dataset = dataset

    def __getitem__(self, positions: np.ndarray) -> dict[str, Any]:
        return self.dataset.batch(positions)

    def __len__(self) -> int:
        return len(self.dataset)


def make_loader(dataset: ECGDataset, sampler: ResumableBatchSampler, num_workers: int, pin_memory: bool) -> DataLoader:
    return DataLoader(_Batches(dataset), sampler=sampler, batch_size=None, num_workers=num_workers,
                      pin_memory=pin_memory, persistent_workers=num_workers > 0,
                      prefetch_factor=4 if num_workers > 0 else None)
