"""``EchoDataset``: a torch Dataset over an echo store, the batch contract of EEE's data side (seed 003, Sec. 3).

One item is one extracted echo file (a view of a study). Keys (shapes for one item; the default collate stacks
them along a new batch dimension):

    echo          float32 (frames, H, W) in [0, 1], or (clips, frames, H, W) when ``clips`` is set
    strip         float32 (strip_samples,) the burned-in ECG strip, z-scored; zero padded past ``strip_mask``
    strip_mask    bool (strip_samples,) True on real samples
    echo_start_s  float32 () time of the first echo frame within the file's strip
    strip_start_s float32 () time of the first strip sample (= echo_start_s unless that would run past the strip)
    patient_id    int64 () subject id (-1 unknown);  study_id int64 () study id (-1 unknown)
    labels        float32 (n_labels,) the store's label_names; NaN where the study has no label
    index         int64 () row of the store
    ecg           float32 (12, T) the study's paired 12-lead ECG (only with ``ecg_store``; zeros when absent)
    ecg_present   bool () whether that ECG exists (only with ``ecg_store``)

Cine loops shorter than the requested frames wrap around (they are loops). Training mode draws the window start
with torch's generator (seeded per DataLoader worker by torch); evaluation mode starts at frame 0.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ecgalign.data.store import ECGStore
from ecgalign.echo.store import EchoStore


class EchoDataset(Dataset):
    """Echo clips + ECG strips (+ paired 12-lead ECG) from an echo store; see the module docstring for keys."""

    def __init__(self, store: str | Path | EchoStore, *, frames: int = 32, clips: int | None = None,
                 strip_seconds: float = 2.0, ecg_store: str | Path | ECGStore | None = None, train: bool = False):
        self.store = store if isinstance(store, EchoStore) else EchoStore(store)
        if frames < 1 or (clips is not None and clips < 1) or strip_seconds <= 0:
            raise ValueError(f"EchoDataset: frames >= 1, clips >= 1 and strip_seconds > 0 expected, got {frames}, "
                             f"{clips}, {strip_seconds}")
        self.frames, self.clips, self.train = frames, clips, train
        self.strip_fs = float(self.store.meta["config"]["strip_fs"])
        self.strip_samples = int(round(strip_seconds * self.strip_fs))
        self.label_names = self.store.label_names
        self.ecg = None if ecg_store is None else ecg_store if isinstance(ecg_store, ECGStore) else ECGStore(ecg_store)
        self._ecg_index: dict[str, int] = {}
        if self.ecg is not None:
            self._ecg_index = {rid: i for i, rid in enumerate(self.ecg.meta.record_id)}

    def __len__(self) -> int:
        return len(self.store)

    def _starts(self, n_frames: int) -> list[int]:
        k = self.clips or 1
        slack = max(n_frames - k * self.frames, 0)
        first = int(torch.randint(0, slack + 1, ())) if self.train else 0
        return [(first + j * self.frames) % n_frames for j in range(k)]

    def __getitem__(self, i: int) -> dict[str, Any]:
        row = self.store.items.iloc[i]
        clip = self.store.clip(i)  # (F, H, W) uint8, memory-mapped
        n = clip.shape[0]
        starts = self._starts(n)
        windows = [clip[(s + np.arange(self.frames)) % n] for s in starts]  # each (frames, H, W)
        echo = torch.from_numpy(np.stack(windows).astype(np.float32) / 255.0)
        if self.clips is None:
            echo = echo[0]
        fps = float(row.fps)
        t0 = starts[0] / fps
        strip = self.store.strip(i)
        a = min(int(round(t0 * self.strip_fs)), max(strip.size - self.strip_samples, 0))
        piece = strip[a:a + self.strip_samples].astype(np.float32)
        piece = (piece - piece.mean()) / (piece.std() + 1e-6)
        out_strip = np.zeros(self.strip_samples, np.float32)
        out_strip[:piece.size] = piece
        mask = np.zeros(self.strip_samples, bool)
        mask[:piece.size] = True
        item = {
            "echo": echo,
            "strip": torch.from_numpy(out_strip),
            "strip_mask": torch.from_numpy(mask),
            "echo_start_s": torch.tensor(t0, dtype=torch.float32),
            "strip_start_s": torch.tensor(a / self.strip_fs, dtype=torch.float32),
            "patient_id": torch.tensor(int(row.subject_id), dtype=torch.int64),
            "study_id": torch.tensor(int(row.study_id), dtype=torch.int64),
            "labels": torch.from_numpy(self.store.labels(i)),
            "index": torch.tensor(i, dtype=torch.int64),
        }
        if self.ecg is not None:
            k = self._ecg_index.get(f"s{int(row.study_id)}")
            if k is None:
                item["ecg"] = torch.zeros((len(self.ecg.leads), self.ecg.samples), dtype=torch.float32)
            else:
                item["ecg"] = torch.from_numpy(np.asarray(self.ecg.signal(k), dtype=np.float32))
            item["ecg_present"] = torch.tensor(k is not None)
        return item
