"""The echo store: extracted clips (uint8, one ``.npy`` chunk per shard), strip signals, ids and labels.

Layout of a store folder::

    echo-store.json          format, extraction config, label names, source, final report
    progress.json            committed shard numbers (the resume point)
    clips-KKKKK.npy          (frames in shard, size, size) uint8, clips back to back
    strips-KKKKK.npy         (samples in shard,) float32, strips back to back (pixels above the trace median)
    items-KKKKK.parquet      one row per kept file: ids, offsets, header facts, labels
    skipped-KKKKK.csv        one row per left-out file: rel, reason, detail, stage

A shard is committed by writing its four files under temporary names, renaming them, then rewriting
``progress.json`` atomically; a resumed run drops uncommitted shards and skips every file already committed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecgalign.data.errors import InputError
from ecgalign.echo.extract import Extracted, ExtractConfig, Rejected

FORMAT = "ecgalign-echo-store/1"
META, PROGRESS = "echo-store.json", "progress.json"


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _atomic_npy(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp.npy")
    np.save(tmp, array)
    os.replace(tmp, path)


def _shard_files(out: Path, k: int) -> dict[str, Path]:
    return {"clips": out / f"clips-{k:05d}.npy", "strips": out / f"strips-{k:05d}.npy",
            "items": out / f"items-{k:05d}.parquet", "skipped": out / f"skipped-{k:05d}.csv"}


class EchoStoreWriter:
    """Buffer extracted files and commit them shard by shard (atomic, resumable)."""

    def __init__(self, out: str | Path, config: ExtractConfig, *, label_names: list[str], info: dict[str, Any],
                 resume: bool = False, overwrite: bool = False):
        self.out = Path(out)
        self.config = config
        self.label_names = list(label_names)
        self.meta = json.loads(json.dumps({"format": FORMAT, "config": config.as_dict(),
                                           "label_names": self.label_names, **info}))
        self.committed: list[int] = []
        self.done: set[str] = set()
        self._prepare(resume, overwrite)
        self._reset()

    def _prepare(self, resume: bool, overwrite: bool) -> None:
        meta_path = self.out / META
        if self.out.exists() and any(self.out.iterdir()):
            if resume and meta_path.exists():
                old = json.loads(meta_path.read_text())
                if old.get("config") != self.meta["config"] or old.get("label_names") != self.label_names:
                    raise InputError(f"{self.out}: the store was made with a different extraction config or "
                                     "labels; resume with the same options or use --overwrite")
                if (self.out / PROGRESS).exists():
                    self.committed = list(json.loads((self.out / PROGRESS).read_text())["shards"])
                for k in self.committed:
                    files = _shard_files(self.out, k)
                    self.done.update(pd.read_parquet(files["items"], columns=["rel"]).rel)
                    self.done.update(pd.read_csv(files["skipped"], usecols=["rel"]).rel.astype(str))
                keep = {p.name for k in self.committed for p in _shard_files(self.out, k).values()}
                for p in self.out.iterdir():
                    if p.name not in keep | {META, PROGRESS}:
                        p.unlink()
                return
            if not overwrite:
                raise FileExistsError(f"{self.out} is not empty; use --resume to continue or --overwrite to replace")
            for p in self.out.iterdir():
                if p.is_file():
                    p.unlink()
        self.out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(meta_path, json.dumps(self.meta, indent=2))
        atomic_write_text(self.out / PROGRESS, json.dumps({"shards": []}))

    def _reset(self) -> None:
        self._clips: list[np.ndarray] = []
        self._strips: list[np.ndarray] = []
        self._items: list[dict[str, Any]] = []
        self._skipped: list[dict[str, str]] = []

    def add(self, item: Extracted | Rejected, rel: str, ids: dict[str, Any], labels: dict[str, Any]) -> None:
        if isinstance(item, Rejected):
            self._skipped.append({"rel": rel, "reason": item.reason, "detail": item.detail, "stage": item.stage})
            return
        h = item.header
        self._items.append({
            "rel": rel, "subject_id": int(ids["subject_id"]), "study_id": int(ids["study_id"]),
            "patient_id": h.patient_id, "study_uid": h.study_uid, "series_uid": h.series_uid, "sop_uid": h.sop_uid,
            "n_frames": int(item.clip.shape[0]), "fps": h.fps, "rows": h.rows, "cols": h.cols,
            "strip_len": int(item.strip.size), "strip_duration_s": float(item.strip_duration_s),
            "trace_start": int(item.metrics["start"]), "trace_end": int(item.metrics["end"]),
            **{f"label_{k}": v for k, v in labels.items()},
        })
        self._clips.append(item.clip)
        self._strips.append(item.strip)

    @property
    def pending(self) -> int:
        return len(self._items) + len(self._skipped)

    def commit(self) -> None:
        """Write the buffered shard and record it in progress.json."""
        if not self.pending:
            return
        k = max(self.committed, default=-1) + 1
        files = _shard_files(self.out, k)
        size = self.config.echo_size
        tail = () if self.config.grayscale else (3,)
        clips = np.concatenate(self._clips) if self._clips else np.zeros((0, size, size, *tail), np.uint8)
        strips = np.concatenate(self._strips) if self._strips else np.zeros(0, np.float32)
        items = pd.DataFrame(self._items, columns=None if self._items else ["rel"])
        if self._items:
            items["clip_offset"] = np.r_[0, np.cumsum(items.n_frames)[:-1]].astype(np.int64)
            items["strip_offset"] = np.r_[0, np.cumsum(items.strip_len)[:-1]].astype(np.int64)
            items["shard"] = k
        _atomic_npy(files["clips"], clips)
        _atomic_npy(files["strips"], strips)
        tmp = files["items"].with_name(files["items"].name + ".tmp")
        items.to_parquet(tmp, index=False)
        os.replace(tmp, files["items"])
        tmp = files["skipped"].with_name(files["skipped"].name + ".tmp")
        pd.DataFrame(self._skipped, columns=["rel", "reason", "detail", "stage"]).to_csv(tmp, index=False)
        os.replace(tmp, files["skipped"])
        self.committed.append(k)
        atomic_write_text(self.out / PROGRESS, json.dumps({"shards": self.committed}))
        self.done.update(it["rel"] for it in self._items)
        self.done.update(s["rel"] for s in self._skipped)
        self._reset()

    def close(self, report: dict[str, Any]) -> None:
        self.commit()
        self.meta["report"] = report
        atomic_write_text(self.out / META, json.dumps(self.meta, indent=2, default=str))


class EchoStore:
    """Read a store: ``items`` (one row per clip), ``clip(i)`` (frames, H, W) uint8 memory-mapped, ``strip(i)``."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        meta = self.path / META
        if not meta.exists():
            raise InputError(f"{self.path}: not an echo store (no {META}); make one with `ecgalign echo extract`")
        self.meta = json.loads(meta.read_text())
        if self.meta.get("format") != FORMAT:
            raise InputError(f"{meta}: format {self.meta.get('format')!r}, expected {FORMAT!r}")
        shards = json.loads((self.path / PROGRESS).read_text())["shards"]
        parts = [pd.read_parquet(_shard_files(self.path, k)["items"]) for k in shards]
        parts = [p for p in parts if len(p)]
        self.items = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["rel", "shard"])
        self.label_names: list[str] = list(self.meta.get("label_names", []))
        self._arrays: dict[tuple[str, int], np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.items)

    def __getstate__(self) -> dict[str, Any]:  # memory maps are reopened in each DataLoader worker
        return {**self.__dict__, "_arrays": {}}

    def _array(self, kind: str, shard: int) -> np.ndarray:
        key = (kind, shard)
        if key not in self._arrays:
            self._arrays[key] = np.load(_shard_files(self.path, shard)[kind], mmap_mode="r")
        return self._arrays[key]

    def clip(self, i: int) -> np.ndarray:
        row = self.items.iloc[i]
        start = int(row.clip_offset)
        return self._array("clips", int(row.shard))[start:start + int(row.n_frames)]

    def strip(self, i: int) -> np.ndarray:
        row = self.items.iloc[i]
        start = int(row.strip_offset)
        return np.asarray(self._array("strips", int(row.shard))[start:start + int(row.strip_len)])

    def labels(self, i: int) -> np.ndarray:
        row = self.items.iloc[i]
        return np.array([row[f"label_{n}"] for n in self.label_names], dtype=np.float32)

    def skipped(self) -> pd.DataFrame:
        shards = json.loads((self.path / PROGRESS).read_text())["shards"]
        parts = [pd.read_csv(_shard_files(self.path, k)["skipped"]) for k in shards]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["rel", "reason"])


MapFn = Callable[[list[str], ExtractConfig], Iterable[Extracted | Rejected]]


def batched(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]
