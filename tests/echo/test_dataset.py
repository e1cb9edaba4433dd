"""EchoDataset: the documented batch contract over an echo store, with the paired 12-lead ECG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from ecgalign.echo.dataset import EchoDataset
from ecgalign.echo.store import EchoStore


def test_batch_contract(echo_root: Path, echo_store: Path) -> None:
    ds = EchoDataset(echo_store, frames=16, strip_seconds=0.5, ecg_store=echo_root / "ecg")
    batch = next(iter(DataLoader(ds, batch_size=3)))
    assert batch["echo"].shape == (3, 16, 224, 224) and batch["echo"].dtype == torch.float32
    assert 0.0 <= float(batch["echo"].min()) and float(batch["echo"].max()) <= 1.0
    assert batch["strip"].shape == (3, 125) and batch["strip_mask"].all()
    assert batch["ecg"].shape == (3, 12, 5000) and batch["ecg_present"].all()
    assert batch["labels"].shape == (3, 4) and batch["patient_id"].dtype == torch.int64
    store = EchoStore(echo_store)
    assert batch["study_id"].tolist() == store.items.study_id.iloc[:3].tolist()
    assert torch.allclose(batch["strip"][0].mean(), torch.tensor(0.0), atol=1e-4)


def test_clips_loop_and_padding(echo_store: Path) -> None:
    store = EchoStore(echo_store)
    ds = EchoDataset(store, frames=24, clips=2, strip_seconds=10.0)
    item = ds[0]
    n = int(store.items.n_frames[0])
    assert item["echo"].shape == (2, 24, 224, 224)
    expected = store.clip(0)[(24 + np.arange(24)) % n].astype(np.float32) / 255
    assert np.allclose(item["echo"][1].numpy(), expected)
    real = int(store.items.strip_len[0])
    assert item["strip_mask"].sum() == real and not item["strip"][real:].any()


def test_train_mode_keeps_echo_and_strip_aligned(echo_store: Path) -> None:
    torch.manual_seed(0)
    ds = EchoDataset(echo_store, frames=8, strip_seconds=0.2, train=True)
    starts = {float(ds[0]["echo_start_s"]) for _ in range(8)}
    assert len(starts) > 1
    for _ in range(5):
        item = ds[1]
        assert abs(float(item["echo_start_s"]) - float(item["strip_start_s"])) < 1 / 250 + 1e-6


def test_bad_arguments(echo_store: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        EchoDataset(echo_store, frames=0)
    with pytest.raises(ValueError, match="not an echo store"):
        EchoDataset(tmp_path)
