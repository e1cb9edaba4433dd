"""The files of a store and their integrity: one writer at a time, checksummed shards, cheap checks on open.

- ``StoreLock``: an exclusive ``fcntl.flock`` on ``<store>/.lock`` for as long as a writer is open. The kernel
  drops the lock when the writer's process dies, so an interrupted conversion can be resumed without removing
  anything by hand, while a second live writer is refused (POSIX; not for network file systems without locks).
- ``HashingFile``: writes through to a file while hashing (sha256), so a shard is checksummed at creation
  without holding a second copy in memory.
- ``check_shard``: the fast check done on open, from the file size and the ``.npy`` header only: shape
  ``(records, leads, samples)``, dtype and byte count must be what the manifest says. ``ecgalign data verify``
  (``ecgalign.data.verify``) re-hashes every byte.
"""

from __future__ import annotations

import csv
import fcntl
import hashlib
import json
import os
import socket
import time
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ecgalign.data.errors import InputError, UnknownNameError

LOCK_FILE = ".lock"
CHECKSUM = "sha256"
_HASH_CHUNK = 8 * 2**20


class StoreIntegrityError(InputError):
    """A store file is missing, truncated, padded or altered; the message names the file."""


class StoreLockedError(InputError, FileExistsError):
    """Another live writer holds the store's lock."""


class StoreLock:
    """Exclusive lock of a store folder for one writer (created with the folder if needed)."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / LOCK_FILE
        self._fh: BinaryIO | None = None
        folder.mkdir(parents=True, exist_ok=True)
        for _ in range(5):  # the holder may unlink the file between our open and our flock: retry on a fresh one
            fh = open(self.path, "a+b")
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.seek(0)
                holder = fh.read(200).decode("utf-8", "replace").strip() or "unknown"
                fh.close()
                raise StoreLockedError(
                    f"{folder}: another writer is using this store ({holder}); wait for it or choose another folder"
                ) from None
            try:
                same = os.fstat(fh.fileno()).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                fh.seek(0)
                fh.truncate()
                fh.write(f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%dT%H:%M:%S')}".encode())
                fh.flush()
                self._fh = fh
                return
            fh.close()
        raise StoreLockedError(f"{folder}: could not take the store lock {self.path} (it keeps being replaced)")

    def release(self, remove: bool = True) -> None:
        """Drop the lock (and its file, unless another writer may want it next)."""
        if self._fh is None:
            return
        if remove:
            self.path.unlink(missing_ok=True)
        self._fh.close()  # closing the descriptor releases the flock
        self._fh = None


class HashingFile:
    """A write-only file object that hashes what passes through it (for ``np.save``)."""

    def __init__(self, fh: BinaryIO):
        self._fh = fh
        self._hash = hashlib.new(CHECKSUM)
        self.size = 0

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self._hash.update(view)
        self.size += len(view)
        return self._fh.write(view)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def file_checksum(path: Path) -> tuple[int, str]:
    """(bytes, sha256 hex) of a file, read in chunks."""
    digest = hashlib.new(CHECKSUM)
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def npy_layout(path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, byte size the header implies) from a ``.npy`` header; StoreIntegrityError naming the file."""
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
            offset = fh.tell()
    except FileNotFoundError:
        raise StoreIntegrityError(f"{path}: shard file is missing") from None
    except (ValueError, OSError, EOFError, SyntaxError, TypeError) as exc:  # numpy reports a bad header with these
        raise StoreIntegrityError(f"{path}: not a readable .npy shard: {exc}") from None
    if fortran or dtype.hasobject:
        raise StoreIntegrityError(f"{path}: shard header declares {'Fortran order' if fortran else 'objects'}")
    return tuple(shape), dtype, offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize


def check_shard(path: Path, shape: tuple[int, ...], dtype: np.dtype, entry: dict[str, Any]) -> None:
    """Fast integrity check of one shard (header and size, no data read); StoreIntegrityError naming the file."""
    found_shape, found_dtype, implied = npy_layout(path)
    if found_shape != shape or found_dtype != dtype:
        raise StoreIntegrityError(
            f"{path}: shard holds {found_dtype} {found_shape}; the manifest expects {dtype} {shape}"
        )
    size = path.stat().st_size
    recorded = entry.get("bytes")
    if size != implied or (recorded is not None and size != recorded):
        what = "truncated" if size < implied else "longer than its header declares" if size > implied else "resized"
        raise StoreIntegrityError(
            f"{path}: shard is {what}: {size} bytes, expected {recorded if recorded is not None else implied}"
        )


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary name (with the PID, so two processes never share one), fsync, rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, json.dumps(obj, indent=2, sort_keys=False, default=json_default).encode())


def json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


STORE_FORMAT = "ecgalign-store"
STORE_VERSION = 1
MANIFEST = "store.json"
PROGRESS = "progress.json"
ENCODINGS = ("int16", "float16", "float32")


def load_manifest(folder: Path) -> dict[str, Any]:
    """The checked ``store.json`` of a store folder; FileNotFoundError (with the resume hint for an interrupted
    conversion) or StoreIntegrityError naming the file and the field."""
    path = folder / MANIFEST
    if not path.is_file():
        hint = " (an unfinished conversion: resume it)" if (folder / PROGRESS).exists() else ""
        raise FileNotFoundError(f"{folder}: not an ecgalign store: {MANIFEST} is missing{hint}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise StoreIntegrityError(f"{path}: corrupt store manifest: {exc}") from None
    if not isinstance(manifest, dict):
        raise StoreIntegrityError(f"{path}: corrupt store manifest: expected a JSON object, got {type(manifest).__name__}")
    if manifest.get("format") != STORE_FORMAT:
        raise StoreIntegrityError(f"{path}: format is {manifest.get('format')!r}, expected {STORE_FORMAT!r}")
    version = manifest.get("version", 0)
    if not isinstance(version, int) or version > STORE_VERSION:
        raise StoreIntegrityError(f"{path}: store version {version!r} is newer than this ecgalign supports")
    _expect(path, manifest, "fs", lambda v: _number(v) and v > 0, "a positive number")
    _expect(path, manifest, "samples", lambda v: isinstance(v, int) and v > 0, "a positive integer")
    _expect(path, manifest, "leads", lambda v: isinstance(v, list) and v and all(isinstance(x, str) for x in v),
            "a list of lead names")
    _expect(path, manifest, "encoding", lambda v: v in ENCODINGS, f"one of {ENCODINGS}")
    if manifest["encoding"] == "int16":
        _expect(path, manifest, "units_per_mv", lambda v: _number(v) and v > 0, "a positive number")
    _expect(path, manifest, "shards", lambda v: isinstance(v, list), "a list")
    if not isinstance(manifest.get("label_sets", {}), dict):
        raise StoreIntegrityError(f"{path}: field 'label_sets' must be an object")
    for k, shard in enumerate(manifest["shards"]):
        where = f"{path}: shards[{k}]"
        if not isinstance(shard, dict) or not isinstance(shard.get("records"), int) or shard["records"] < 0:
            raise StoreIntegrityError(f"{where} must be an object with a non-negative integer 'records'")
        for key in ("file", "meta"):
            name = shard.get(key)
            if not isinstance(name, str) or not _inside(folder, name):
                raise StoreIntegrityError(f"{where}: {key} {name!r} is not a relative path inside the store")
    return manifest


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)


def _expect(path: Path, manifest: dict[str, Any], key: str, ok: Any, what: str) -> None:
    if key not in manifest or not ok(manifest[key]):
        raise StoreIntegrityError(f"{path}: field {key!r} must be {what}, got {manifest.get(key)!r}")


def _inside(folder: Path, name: str) -> bool:
    parts = Path(name).parts
    return bool(parts) and not Path(name).is_absolute() and ".." not in parts and "\\" not in name


def read_metadata(folder: Path, records: int, columns: list[str] | None = None) -> pd.DataFrame:
    """``metadata.parquet`` (or some of its columns), which must hold one row per record; StoreIntegrityError
    naming the file when it is missing or damaged, UnknownNameError for a column it does not have."""
    path = folder / "metadata.parquet"
    try:
        table = pq.read_table(path, columns=columns)
    except FileNotFoundError:
        raise StoreIntegrityError(f"{path}: the store's metadata file is missing") from None
    except (pa.ArrowException, OSError, ValueError) as exc:
        if columns is not None and ("No match for FieldRef" in str(exc) or isinstance(exc, KeyError)):
            raise UnknownNameError(f"{folder}: metadata has no column {columns[0]!r}") from None
        raise StoreIntegrityError(f"{path}: damaged metadata file: {exc}") from None
    if table.num_rows != records:
        raise StoreIntegrityError(f"{path}: {table.num_rows} rows for {records} records")
    return table.to_pandas()


def read_skipped(folder: Path) -> pd.DataFrame:
    """``skipped.csv`` (record_id, source, problem); empty when absent; StoreIntegrityError when unreadable."""
    path = folder / "skipped.csv"
    if not path.exists():
        return pd.DataFrame(columns=["record_id", "source", "problem"])
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except (ValueError, OSError, csv.Error) as exc:  # pandas' ParserError, EmptyDataError, UnicodeDecodeError
        raise StoreIntegrityError(f"{path}: damaged list of skipped records: {exc}") from None
