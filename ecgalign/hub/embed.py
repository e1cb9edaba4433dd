"""Embed a dataset with any ``Embedder``, streaming in batches (never the whole dataset in memory), into a
Parquet file: one row per record with its ids, fold, the pooled encoder ``features`` and, for models with
a joint ECG-text space, the normalised ``embedding``; and the content-addressed embedding cache that
evaluation and ECG-Scan teachers share.

Cache keys (``cache_key``) cover the model's weights (their content), what else shapes its embeddings
(``Embedder.cache_identity``: input kind, augmentation, digitiser settings), its input spec, and a fingerprint
of the data's content (``data_fingerprint``): editing, reordering or re-converting a dataset gives a new key,
and cached rows are joined back to the dataset by record id, never by position."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from ecgalign.data.errors import InputError
from ecgalign.data.readers import open_dataset
from ecgalign.data.record import RecordError
from ecgalign.data.spec import check_store_matches
from ecgalign.data.store import ECGStore, is_store
from ecgalign.hub.io import atomic_write_text

ProgressFn = Callable[[int, int], None]


def _store_batches(store: ECGStore, spec, batch_size: int) -> Iterator[tuple[dict[str, list], np.ndarray]]:
    meta = {c: store.column(c).tolist() for c in ("record_id", "patient_id", "fold")}
    try:
        check_store_matches(store, spec)
        direct = True
    except InputError:
        direct = False  # e.g. a raw mV store: preprocess each record to the model's input
    pre = None if direct else spec.preprocess()
    for start in range(0, len(store), batch_size):
        idx = np.arange(start, min(start + batch_size, len(store)))
        if direct:
            x = store.signals(idx)
        else:
            x = np.stack([pre(store.record(int(i))).signal for i in idx])
        yield {k: [v[i] for i in idx] for k, v in meta.items()} | {"position": idx.tolist()}, x


def _reader_batches(reader, spec, batch_size: int, skipped: list[dict[str, str]]) -> Iterator[tuple[dict[str, list], np.ndarray]]:
    pre = spec.preprocess()
    rows: dict[str, list] = {"record_id": [], "patient_id": [], "fold": [], "position": []}
    signals: list[np.ndarray] = []
    for position in range(len(reader)):
        try:
            rec = pre(reader.read(position))
        except RecordError as exc:
            skipped.append({"record_id": reader.record_id(position), "source": exc.source, "problem": exc.problem})
            continue
        for key, value in (("record_id", rec.record_id), ("patient_id", rec.patient_id), ("fold", rec.fold),
                           ("position", position)):
            rows[key].append(value)
        signals.append(rec.signal)
        if len(signals) == batch_size:
            yield rows, np.stack(signals)
            rows, signals = {k: [] for k in rows}, []
    if signals:
        yield rows, np.stack(signals)


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")


def is_image_table(path: str | Path) -> bool:
    """A folder of printout images, or a CSV listing them in an ``image`` column."""
    path = Path(path)
    if path.suffix.lower() == ".csv" and path.is_file():
        return "image" in pd.read_csv(path, nrows=0).columns
    return path.is_dir() and not is_store(path) and any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.iterdir())


def image_table(path: str | Path) -> pd.DataFrame:
    """One row per image: ``position``, ``record_id`` (the CSV's, else the file stem), ``image`` (absolute path),
    and the CSV's other columns (``patient_id``, ``fold``, label columns ...). Image paths in a CSV are relative
    to the CSV's folder."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        table = pd.read_csv(path, dtype={"record_id": str, "patient_id": str})
        if table["image"].isna().any():
            rows = [int(i) + 2 for i in np.flatnonzero(table["image"].isna())][:5]
            raise InputError(f"{path}: rows {rows} have no image")
        table["image"] = [str((path.parent / str(p)).resolve()) for p in table["image"]]
    else:
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        table = pd.DataFrame({"image": [str(p.resolve()) for p in files]})
    if "record_id" not in table.columns:
        table["record_id"] = [Path(p).stem for p in table["image"]]
    for column in ("patient_id", "fold"):
        if column not in table.columns:
            table[column] = None
    table.insert(0, "position", np.arange(len(table)))
    return table


def _image_batches(model, table: pd.DataFrame, batch_size: int,
                   skipped: list[dict[str, str]]) -> Iterator[tuple[dict[str, list], dict[str, np.ndarray]]]:
    """Rows and (features, embedding) of readable images; an unreadable image is skipped and named."""
    rows: dict[str, list] = {"record_id": [], "patient_id": [], "fold": [], "position": []}
    pixels = []

    def flush():
        x = torch.stack(pixels)
        out = {"features": model.image_features(x, batch_size, prepared=True)}  # model.images made them
        if model.has_joint_space:
            out["embedding"] = model.encode_image(x, batch_size, prepared=True)
        return out

    for row in table.itertuples(index=False):
        try:
            pixels.append(model.images(row.image)[0])
        except InputError as exc:
            skipped.append({"record_id": str(row.record_id), "source": str(row.image), "problem": str(exc)})
            continue
        for key in rows:
            rows[key].append(getattr(row, key))
        if len(pixels) == batch_size:
            yield rows, flush()
            rows, pixels = {k: [] for k in rows}, []
    if pixels:
        yield rows, flush()


def _encoded(model, batches, batch_size: int, joint: bool):
    for rows, x in batches:
        out = {"features": model.features(x, batch_size)}
        if joint:
            out["embedding"] = model.encode_ecg(x, batch_size)
        yield rows, out


def embed_to_parquet(model, data: str | Path, out: str | Path, *, batch_size: int = 256, fmt: str | None = None,
                     progress: ProgressFn | None = None) -> dict[str, Any]:
    """Embed every record of ``data`` (a store, a raw dataset folder, or for image models a folder / CSV of
    printout images); the file appears only when complete."""
    data, out = Path(data), Path(out)
    skipped: list[dict[str, str]] = []
    joint = model.has_joint_space
    if is_image_table(data):
        if model.input_kind != "image":
            raise InputError(f"{data}: a folder of images needs an image model (ecg-scan); this model reads "
                             f"{model.input_kind} input")
        table = image_table(data)
        total, encoded = len(table), _image_batches(model, table, batch_size, skipped)
    elif is_store(data):
        store = ECGStore(data)
        total, encoded = len(store), _encoded(model, _store_batches(store, model.input_spec, batch_size), batch_size,
                                              joint)
    else:
        reader = open_dataset(data, fmt)
        total = len(reader)
        encoded = _encoded(model, _reader_batches(reader, model.input_spec, batch_size, skipped), batch_size, joint)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    writer = None
    written = 0
    try:
        for rows, encodings in encoded:
            columns = {
                "position": pa.array(rows["position"], pa.int64()),
                "record_id": pa.array([str(r) for r in rows["record_id"]], pa.string()),
                "patient_id": pa.array([None if p is None or p != p else str(p) for p in rows["patient_id"]], pa.string()),
                "fold": pa.array([None if f is None or f != f else int(f) for f in rows["fold"]], pa.int64()),
                "features": _list_column(encodings["features"]),
            }
            if joint:
                columns["embedding"] = _list_column(encodings["embedding"])
            chunk = pa.table(columns)
            if writer is None:
                writer = pq.ParquetWriter(tmp, chunk.schema)
            writer.write_table(chunk)
            written += len(rows["position"])
            if progress is not None:
                progress(written + len(skipped), total)
        if writer is None:
            raise InputError(f"{data}: no record could be embedded ({len(skipped)} skipped)")
        writer.close()
        writer = None
        os.replace(tmp, out)
    finally:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
    summary = {"out": str(out), "records": written, "skipped": len(skipped), "skipped_records": skipped[:50],
               "features_dim": model.embed_dim, "joint_space": joint}
    if getattr(model, "align_rows", False):
        summary["row_alignment"] = dict(model.row_alignment)
    return summary


def _list_column(values: np.ndarray) -> pa.Array:
    values = np.ascontiguousarray(values, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), values.shape[1])


def read_embeddings(path: str | Path, column: str = "features") -> tuple[Any, np.ndarray]:
    """(metadata DataFrame, (N, D) float32 matrix of ``column``) from an embeddings file."""
    table = pq.read_table(path)
    if column not in table.column_names:
        raise KeyError(f"{path}: no column {column!r}; it has {table.column_names}")
    matrix = np.stack(table.column(column).to_numpy(zero_copy_only=False)).astype(np.float32)
    return table.drop([c for c in ("features", "embedding") if c in table.column_names]).to_pandas(), matrix


# ------------------------------------------------------------------------------------------------ cache
_SMALL = 16 << 20  # metadata files up to this size are hashed whole; larger files by size and mtime


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def data_fingerprint(path: str | Path) -> str:
    """A cheap fingerprint of a dataset's content: every file's relative path, size and modification time, and
    the full content of the small tables at its top level (a CSV reordered in place changes it); per-record files
    (headers, signals, shards) count by size and time only, so a million-record folder costs one stat each."""
    root = Path(path).resolve()
    h = hashlib.sha256()
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    for f in files:
        stat = f.stat()
        h.update(f"{f.relative_to(root) if f != root else f.name}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
        top = f == root or f.parent == root  # the dataset's tables (ptbxl_database.csv, store.json, metadata)
        if top and f.suffix.lower() in {".csv", ".json", ".parquet", ".txt", ".yaml"} and stat.st_size <= _SMALL:
            h.update(_digest(f).encode())
    return h.hexdigest()


def cache_key(model, data_path: str | Path) -> str:
    """Same weights (by content) + same data (by content) + same input spec and model settings -> same key."""
    weights = model.weights_path
    ident = {"weights": _digest(Path(weights)) if weights else f"random-init:{model.card.get('seed')}:"
             f"{json.dumps(model.card.get('recipe_resolved'), sort_keys=True)}",
             "data": data_fingerprint(data_path), "spec": model.input_spec.to_dict(),
             "model": model.cache_identity()}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:20]


def cached_embeddings(model, data_path: str | Path, cache_dir: str | Path | None = None, batch_size: int = 256,
                      progress: ProgressFn | None = None) -> tuple[pd.DataFrame, np.ndarray, np.ndarray | None,
                                                                   list[dict[str, str]]]:
    """(rows, features (N, D), joint embeddings (N, P) or None, skipped records) of every readable record of
    ``data_path``, from ``cache_dir`` when it holds them for this model and this content. ``rows`` has the
    columns position, record_id, patient_id, fold. Without ``cache_dir`` nothing is kept."""
    cache = None
    if cache_dir is not None:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        cache = Path(cache_dir) / f"{cache_key(model, data_path)}.parquet"
    scratch = None
    try:
        if cache is None or not cache.is_file():
            if cache is None:
                scratch = tempfile.TemporaryDirectory(prefix="ecgalign-embed-")
            target = cache or Path(scratch.name) / "embeddings.parquet"
            summary = embed_to_parquet(model, data_path, target, batch_size=batch_size, progress=progress)
            skipped = summary["skipped_records"]
            if cache is not None:
                about = {"model": str(model.weights_path or "random-init"), "recipe": model.card.get("recipe"),
                         "data": str(Path(data_path).resolve()), "records": summary["records"],
                         "created": time.strftime("%Y-%m-%dT%H:%M:%S")}  # what `ecgalign cache ls` shows
                atomic_write_text(cache.with_suffix(".json"), json.dumps({"skipped": skipped, **about}))
        else:
            target = cache
            sidecar = cache.with_suffix(".json")
            skipped = json.loads(sidecar.read_text())["skipped"] if sidecar.is_file() else []
        rows, features = read_embeddings(target)
        joint = read_embeddings(target, "embedding")[1] if model.has_joint_space else None
    finally:
        if scratch is not None:
            scratch.cleanup()
    return rows, features, joint, skipped


def join_rows(meta: pd.DataFrame, rows: pd.DataFrame, source: str) -> np.ndarray:
    """Indices into ``meta`` of each embedded row, matched by record id (and position where ids repeat);
    a row that matches no record raises, naming it: cached embeddings never align by position alone."""
    ids = meta["record_id"].astype(str).to_numpy()
    keys = list(zip(ids, meta["position"].to_numpy())) if len(set(ids)) < len(ids) else list(ids)
    index = {k: i for i, k in enumerate(keys)}
    wanted = (list(zip(rows["record_id"].astype(str), rows["position"])) if isinstance(keys[0], tuple)
              else list(rows["record_id"].astype(str)))
    missing = [w for w in wanted if w not in index]
    if missing:
        raise InputError(f"{source}: embeddings of records {missing[:3]} match no record of the dataset; "
                         "the data changed since they were computed (delete the cache)")
    return np.array([index[w] for w in wanted], dtype=np.int64)
