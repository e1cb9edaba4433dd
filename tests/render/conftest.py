"""Shared fixtures for the renderer tests: a synthetic record (no data needed), an ink mask, one thread."""

from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.fixture(scope="session")
def ecg() -> tuple[torch.Tensor, float]:
    """(12, 5000) mV at 500 Hz."""
    from ecgalign.synth import synthesize_record

    rec = synthesize_record(0, seed=0, fs=500.0)
    return torch.from_numpy(np.ascontiguousarray(rec.signal, dtype=np.float32)), 500.0


def ink_mask(image: torch.Tensor, threshold: int = 170) -> np.ndarray:
    """(H, W) bool: pixels darker than ``threshold`` in every channel (ink, not the red or blue grid)."""
    return (image.amax(0) < threshold).cpu().numpy()


@pytest.fixture
def ink():
    return ink_mask


@pytest.fixture(autouse=True)
def one_thread():
    """Render on one thread, as the renderer is meant to run per worker (and as its benchmark measures);
    restored afterwards so other tests in the same worker are unaffected."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
