"""A sharded, memory-mapped on-disk store of fixed-length ECGs for training at scale.

Layout of a store folder::

    store.json                 manifest: fs, samples, leads, encoding, shards, label sets, source, preprocessing
    signals/shard-000000.npy   (n, leads, samples) int16 (with a mV scale) or float16/float32, .npy so that
                               np.load(mmap_mode="r") gives O(1) random access without reading the file
    meta/part-000000.parquet   metadata rows of that shard (record id, patient, demographics, report, codes,
                               fold, labels_<set> list columns)
    metadata.parquet           all parts concatenated, written when the store is closed
    skipped.csv                records the writer or converter could not use, with the file and the reason

Shards and their metadata parts are written atomically (temporary name, then ``os.replace``) and a
``progress.json`` records the source position after every shard, so an interrupted conversion resumes at the
first unfinished shard (``StoreWriter(..., resume=True)``). Only memory for one shard is ever held, so a
dataset far larger than memory (MIMIC-IV-ECG: 800k records) streams through.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ecgalign._version import __version__
from ecgalign.data.errors import InputError, UnknownNameError
from ecgalign.data.labels import LabelScheme
from ecgalign.data.readers.base import Skipped
from ecgalign.data.record import ECGRecord, RecordError
from ecgalign.data.store_files import (
    CHECKSUM,
    ENCODINGS,
    LOCK_FILE,
    MANIFEST,
    PROGRESS,
    STORE_FORMAT,
    STORE_VERSION,
    HashingFile,
    StoreIntegrityError,
    StoreLock,
    atomic_write_bytes,
    atomic_write_json,
    check_shard,
    json_default,
    load_manifest,
    read_metadata,
    read_skipped,
)

__all__ = ["ENCODINGS", "MANIFEST", "PROGRESS", "STORE_FORMAT", "STORE_VERSION", "ECGStore", "StoreSpec",
           "StoreWriter", "is_store"]

# int16 default: 1 unit = 1 uV, range +-32.767 mV (PTB-XL and MIMIC-IV-ECG are stored at this resolution).
DEFAULT_INT16_UNITS_PER_MV = 1000.0
DEFAULT_SHARD_BYTES = 128 * 2**20
_META_COLUMNS = ("record_id", "dataset", "patient_id", "age", "sex", "report", "report_original", "codes",
                 "code_system", "fold", "source")


def is_store(path: str | Path) -> bool:
    return (Path(path) / MANIFEST).is_file()


@dataclass
class StoreSpec:
    """What every record in a store looks like."""

    fs: float
    samples: int
    leads: tuple[str, ...]
    encoding: str = "int16"
    units_per_mv: float = DEFAULT_INT16_UNITS_PER_MV
    shard_records: int = 0

    def __post_init__(self) -> None:
        if self.encoding not in ENCODINGS:
            raise InputError(f"store encoding must be one of {ENCODINGS}, got {self.encoding!r}")
        if self.fs <= 0 or self.samples <= 0 or not self.leads:
            raise InputError(f"invalid store shape: fs={self.fs}, samples={self.samples}, leads={self.leads}")
        self.leads = tuple(self.leads)
        if self.shard_records <= 0:
            itemsize = np.dtype(self.encoding).itemsize
            self.shard_records = max(1, DEFAULT_SHARD_BYTES // (itemsize * len(self.leads) * self.samples))

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.encoding)


@dataclass
class _Progress:
    position: int = 0  # next source position to process
    shards: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    clipped_samples: int = 0


class StoreWriter:
    """Append preprocessed records to a store, one shard at a time.

    Every record must already have the store's leads, rate and length (the converter preprocesses); a record
    that does not is skipped with the reason. ``position`` is the caller's source position (reader index or
    generator index) after the record, so ``resume_position`` tells a resumed run where to continue.
    """

    def __init__(
        self,
        out: str | Path,
        spec: StoreSpec,
        scheme: LabelScheme,
        *,
        info: dict[str, Any] | None = None,
        resume: bool = False,
        overwrite: bool = False,
    ):
        self.out = Path(out)
        self.spec = spec
        self.scheme = scheme
        self.info = dict(info or {})
        self._set_names = list(scheme.set_names())
        self._fingerprint = self._make_fingerprint()
        self._buf = np.empty((0,), dtype=spec.dtype)
        self._rows: list[dict[str, Any]] = []
        self._buf_skipped: list[dict[str, str]] = []
        self._buf_clipped = 0
        self._pending_position = 0
        self.progress = _Progress()
        self._prepare(resume, overwrite)
        self._buf = np.empty((spec.shard_records, len(spec.leads), spec.samples), dtype=spec.dtype)

    # ----------------------------------------------------------------------------------------- setup
    def _make_fingerprint(self) -> dict[str, Any]:
        return {
            "fs": self.spec.fs,
            "samples": self.spec.samples,
            "leads": list(self.spec.leads),
            "encoding": self.spec.encoding,
            "units_per_mv": self.spec.units_per_mv,
            "shard_records": self.spec.shard_records,
            "source": self.info.get("source"),
            "preprocess": self.info.get("preprocess"),
        }

    def _prepare(self, resume: bool, overwrite: bool) -> None:
        """Start fresh, resume an interrupted run, or refuse to touch an existing store."""
        progress_file = self.out / PROGRESS
        existed = self.out.exists()
        self._lock = StoreLock(self.out)  # exclusive from here on: the checks below cannot race another writer
        try:
            occupied = existed and any(f.name != LOCK_FILE for f in self.out.iterdir())
            if occupied and resume and progress_file.exists():
                self._load_progress(progress_file)
                return
            if occupied and not overwrite:
                what = "a finished store" if (self.out / MANIFEST).exists() else "files"
                hint = " or pass resume" if progress_file.exists() else ""
                raise FileExistsError(f"{self.out}: output folder already holds {what}; choose another folder, pass overwrite{hint}")
        except BaseException:
            self._lock.release(remove=True)
            raise
        if occupied:
            self._clear()
        (self.out / "signals").mkdir(parents=True, exist_ok=True)
        (self.out / "meta").mkdir(parents=True, exist_ok=True)

    def _load_progress(self, progress_file: Path) -> None:
        state = json.loads(progress_file.read_text())
        if state.get("fingerprint") != json.loads(json.dumps(self._fingerprint, default=json_default)):
            raise InputError(
                f"{self.out}: cannot resume: the interrupted run used different settings "
                f"({state.get('fingerprint')}); start a new output folder or drop resume"
            )
        self.progress = _Progress(state["position"], state["shards"], state["skipped"], state["clipped_samples"])
        self._remove_unfinished()

    def _clear(self) -> None:
        for sub in ("signals", "meta"):
            for f in (self.out / sub).glob("*"):
                f.unlink()
        for name in (MANIFEST, PROGRESS, "metadata.parquet", "skipped.csv"):
            (self.out / name).unlink(missing_ok=True)

    def _remove_unfinished(self) -> None:
        done = {s["file"] for s in self.progress.shards} | {s["meta"] for s in self.progress.shards}
        for sub in ("signals", "meta"):
            for f in (self.out / sub).glob("*"):
                if f"{sub}/{f.name}" not in done:
                    f.unlink()

    @property
    def resume_position(self) -> int:
        return self.progress.position

    @property
    def records_written(self) -> int:
        return sum(s["records"] for s in self.progress.shards) + len(self._rows)

    # ----------------------------------------------------------------------------------------- writing
    def add(self, record: ECGRecord, position: int) -> bool:
        """Buffer one record; flush a shard when full. False (and a skipped entry) if it does not fit."""
        problem = self._check(record)
        if problem:
            self.skip(Skipped(record.record_id, record.source or record.record_id, problem), position)
            return False
        k = len(self._rows)
        self._buf[k] = self._encode(record.signal)
        row = record.metadata()
        for name, members in self.scheme.label_sets(record.codes).items():
            row[f"labels_{name}"] = list(members)
        row["extra"] = json.dumps(record.extra, default=json_default)
        self._rows.append(row)
        self._pending_position = position
        if len(self._rows) == self.spec.shard_records:
            self._flush()
        return True

    def skip(self, skipped: Skipped, position: int) -> None:
        self._buf_skipped.append(skipped.as_dict())
        self._pending_position = position
        if not self._rows:  # nothing buffered: the skip can be committed right away
            self._commit_progress()

    def _check(self, record: ECGRecord) -> str | None:
        if tuple(record.leads) != self.spec.leads:
            return f"leads {list(record.leads)} differ from the store's {list(self.spec.leads)}"
        if record.signal.shape != (len(self.spec.leads), self.spec.samples):
            return f"signal shape {record.signal.shape} differs from the store's {(len(self.spec.leads), self.spec.samples)}"
        if abs(float(record.fs) - self.spec.fs) > 1e-6:
            return f"sampling rate {record.fs} Hz differs from the store's {self.spec.fs} Hz"
        if not np.isfinite(record.signal).all():
            return "signal has non-finite samples (repair NaN/Inf before writing)"
        return None

    def _encode(self, signal: np.ndarray) -> np.ndarray:
        if self.spec.encoding == "int16":
            scaled = np.rint(signal * self.spec.units_per_mv)
            limit = np.iinfo(np.int16).max
            clipped = int(np.count_nonzero(np.abs(scaled) > limit))
            self._buf_clipped += clipped
            return np.clip(scaled, -limit, limit).astype(np.int16)
        if self.spec.encoding == "float16":
            limit = float(np.finfo(np.float16).max)
            self._buf_clipped += int(np.count_nonzero(np.abs(signal) > limit))
            return np.clip(signal, -limit, limit).astype(np.float16)
        return signal.astype(np.float32)

    def _flush(self) -> None:
        n = len(self._rows)
        if n == 0:
            return
        idx = len(self.progress.shards)
        sig_name, meta_name = f"signals/shard-{idx:06d}.npy", f"meta/part-{idx:06d}.parquet"
        tmp = self.out / f"signals/.shard-{idx:06d}.{os.getpid()}.tmp.npy"
        with open(tmp, "wb") as fh:
            hashed = HashingFile(fh)
            np.lib.format.write_array(hashed, self._buf[:n], allow_pickle=False)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.out / sig_name)
        table = pa.Table.from_pandas(pd.DataFrame(self._rows), preserve_index=False)
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        meta_bytes = sink.getvalue().to_pybytes()
        atomic_write_bytes(self.out / meta_name, meta_bytes)
        self.progress.shards.append({"file": sig_name, "meta": meta_name, "records": n, "bytes": hashed.size,
                                     CHECKSUM: hashed.hexdigest(), "meta_bytes": len(meta_bytes),
                                     f"meta_{CHECKSUM}": hashlib.new(CHECKSUM, meta_bytes).hexdigest()})
        self._rows = []
        self._commit_progress()

    def _commit_progress(self) -> None:
        self.progress.skipped.extend(self._buf_skipped)
        self.progress.clipped_samples += self._buf_clipped
        self._buf_skipped, self._buf_clipped = [], 0
        self.progress.position = self._pending_position
        atomic_write_json(
            self.out / PROGRESS,
            {
                "fingerprint": self._fingerprint,
                "position": self.progress.position,
                "shards": self.progress.shards,
                "skipped": self.progress.skipped,
                "clipped_samples": self.progress.clipped_samples,
            },
        )

    def close(self) -> dict[str, Any]:
        """Flush the last shard, write metadata.parquet, skipped.csv and the manifest; return the manifest."""
        self._flush()
        self._commit_progress()
        parts = [pq.read_table(self.out / s["meta"]) for s in self.progress.shards]
        meta_path = self.out / "metadata.parquet"
        metadata_file: dict[str, Any] = {}
        if parts:
            table = pa.concat_tables(parts, promote_options="permissive")
            sink = pa.BufferOutputStream()
            pq.write_table(table, sink)
            data = sink.getvalue().to_pybytes()
            atomic_write_bytes(meta_path, data)
            metadata_file = {"bytes": len(data), CHECKSUM: hashlib.new(CHECKSUM, data).hexdigest()}
        skipped_path = self.out / "skipped.csv"
        tmp = skipped_path.with_name(f".skipped.csv.{os.getpid()}.tmp")
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=["record_id", "source", "problem"])
            writer.writeheader()
            writer.writerows(self.progress.skipped)
        os.replace(tmp, skipped_path)
        n = sum(s["records"] for s in self.progress.shards)
        if n == 0:
            self._lock.release(remove=True)
            raise RecordError(str(self.out), f"no valid record was written ({len(self.progress.skipped)} skipped; see skipped.csv)")
        manifest = {
            "format": STORE_FORMAT,
            "version": STORE_VERSION,
            "ecgalign_version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "records": n,
            "fs": self.spec.fs,
            "samples": self.spec.samples,
            "seconds": self.spec.samples / self.spec.fs,
            "leads": list(self.spec.leads),
            "encoding": self.spec.encoding,
            "units_per_mv": self.spec.units_per_mv if self.spec.encoding == "int16" else None,
            "shards": self.progress.shards,
            "metadata_file": metadata_file,
            "code_system": self.scheme.code_system,
            "label_sets": {name: self.scheme.classes(name) for name in self._set_names},
            "skipped": len(self.progress.skipped),
            "clipped_samples": self.progress.clipped_samples,
            **self.info,
        }
        atomic_write_json(self.out / MANIFEST, manifest)
        (self.out / PROGRESS).unlink(missing_ok=True)
        self._lock.release(remove=True)
        return manifest


class ECGStore:
    """Read a store: O(1) random access to signals (memory-mapped), metadata as a DataFrame, label matrices.

    ``store.signal(i)`` -> float32 (leads, samples) in the store's units (mV for int16 stores; whatever the
    preprocessing produced for float stores, e.g. z-scored). ``store.signals(indices)`` gathers a batch.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.manifest: dict[str, Any] = load_manifest(self.path)
        self.fs = float(self.manifest["fs"])
        self.samples = int(self.manifest["samples"])
        self.leads: tuple[str, ...] = tuple(self.manifest["leads"])
        self.encoding = self.manifest["encoding"]
        self._scale = 1.0 / float(self.manifest["units_per_mv"]) if self.encoding == "int16" else 1.0
        shards = self.manifest["shards"]
        self._shard_files = [self.path / s["file"] for s in shards]
        for file, shard in zip(self._shard_files, shards):  # fast path: header and size; `data verify` hashes
            check_shard(file, (shard["records"], len(self.leads), self.samples), np.dtype(self.encoding), shard)
        self._offsets = np.concatenate([[0], np.cumsum([s["records"] for s in shards])]).astype(np.int64)
        self._maps: list[np.ndarray | None] = [None] * len(shards)
        self._meta: pd.DataFrame | None = None

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def __repr__(self) -> str:
        return f"ECGStore({str(self.path)!r}, records={len(self)}, fs={self.fs:g}, samples={self.samples}, leads={len(self.leads)})"

    def __getstate__(self) -> dict[str, Any]:
        # memory maps are reopened in each DataLoader worker instead of being pickled
        state = self.__dict__.copy()
        state["_maps"] = [None] * len(self._maps)
        return state

    @property
    def label_sets(self) -> dict[str, list[str]]:
        return dict(self.manifest.get("label_sets", {}))

    @property
    def preprocess(self) -> dict[str, Any] | None:
        return self.manifest.get("preprocess")

    def _shard(self, k: int) -> np.ndarray:
        arr = self._maps[k]
        if arr is None:
            arr = np.load(self._shard_files[k], mmap_mode="r")
            self._maps[k] = arr
        return arr

    def _locate(self, index: int) -> tuple[int, int]:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"{self.path}: record index {index} out of range for {n} records")
        index %= n
        k = int(np.searchsorted(self._offsets, index, side="right") - 1)
        return k, index - int(self._offsets[k])

    def raw(self, index: int) -> np.ndarray:
        """The stored (encoded) array of one record, a view into the memory map."""
        k, j = self._locate(int(index))
        return self._shard(k)[j]

    def signal(self, index: int) -> np.ndarray:
        """Decoded float32 (leads, samples) of one record."""
        out = np.empty((len(self.leads), self.samples), dtype=np.float32)
        self._decode_into(self.raw(index), out)
        return out

    def signals(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Decoded float32 (len(indices), leads, samples).

        Records are decoded one by one straight into the output: gathering a batch with fancy indexing first
        makes int16 and float32 temporaries that cost more than the copy itself (about 10x slower here)."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = len(self)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"{self.path}: record indices out of range for {n} records")
        idx = idx % n if idx.size else idx
        out = np.empty((idx.size, len(self.leads), self.samples), dtype=np.float32)
        shard_of = np.searchsorted(self._offsets, idx, side="right") - 1
        local = idx - self._offsets[shard_of]
        for i, (k, j) in enumerate(zip(shard_of.tolist(), local.tolist())):
            self._decode_into(self._shard(k)[j], out[i])
        return out

    def _decode_into(self, arr: np.ndarray, out: np.ndarray) -> None:
        if self.encoding == "int16":
            np.multiply(arr, np.float32(self._scale), out=out, dtype=np.float32)
        else:
            out[...] = arr

    @property
    def meta(self) -> pd.DataFrame:
        """Metadata table (one row per record, in store order), loaded on first use."""
        if self._meta is None:
            self._meta = read_metadata(self.path, len(self))
        return self._meta

    def column(self, name: str) -> pd.Series:
        """One metadata column without loading the others."""
        if self._meta is not None:
            if name not in self._meta:
                raise UnknownNameError(f"{self.path}: metadata has no column {name!r}")
            return self._meta[name]
        return read_metadata(self.path, len(self), [name])[name]

    def labels(self, label_set: str) -> tuple[np.ndarray, list[str]]:
        """Multi-hot (N, C) float32 matrix and the class names of ``label_set``."""
        classes = self.label_sets.get(label_set)
        if classes is None:
            raise InputError(f"{self.path}: no label set {label_set!r}; this store has {sorted(self.label_sets)}")
        pos = {c: j for j, c in enumerate(classes)}
        members = self.column(f"labels_{label_set}")
        y = np.zeros((len(members), len(classes)), dtype=np.float32)
        for i, row in enumerate(members):
            for c in row if isinstance(row, (list, tuple, np.ndarray)) else ():
                if c not in pos:
                    raise StoreIntegrityError(f"{self.path}: record {i} has class {c!r}, not in label set {label_set!r}")
                y[i, pos[c]] = 1.0
        return y, list(classes)

    def record(self, index: int) -> ECGRecord:
        """One record with its metadata (convenient, slower than ``signal``)."""
        self._locate(int(index))  # range check with a clear error
        row = self.meta.iloc[int(index) % len(self)]
        try:
            return self._record(index, row)
        except (KeyError, TypeError, ValueError) as exc:
            raise StoreIntegrityError(f"{self.path / 'metadata.parquet'}: record {index}: bad metadata: {exc}") from None

    def _record(self, index: int, row: pd.Series) -> ECGRecord:
        return ECGRecord(
            signal=self.signal(index),
            fs=self.fs,
            leads=self.leads,
            record_id=str(row["record_id"]),
            dataset=str(row["dataset"]),
            patient_id=None if pd.isna(row["patient_id"]) else str(row["patient_id"]),
            age=None if pd.isna(row["age"]) else float(row["age"]),
            sex=None if pd.isna(row["sex"]) else str(row["sex"]),
            report=str(row["report"] or ""),
            report_original=str(row["report_original"] or ""),
            codes=tuple(row["codes"]),
            code_system=str(row["code_system"]),
            fold=None if pd.isna(row["fold"]) else int(row["fold"]),
            source=str(row["source"] or ""),
            extra=json.loads(row["extra"]) if row.get("extra") else {},
        )

    def skipped(self) -> pd.DataFrame:
        return read_skipped(self.path)
