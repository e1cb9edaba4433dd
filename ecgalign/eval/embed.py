"""Embed a dataset with a trained model, streaming in batches (never the whole dataset in memory), into a
Parquet file: one row per record with its ids, fold, the pooled encoder ``features`` and, for models with
a joint ECG-text space, the normalised ``embedding``."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ecgalign.data.record import RecordError
from ecgalign.data.store import ECGStore, is_store

ProgressFn = Callable[[int, int], None]


def _store_batches(store: ECGStore, spec, batch_size: int) -> Iterator[tuple[dict[str, list], np.ndarray]]:
    from ecgalign.train.data import check_store_matches

    meta = {c: store.column(c).tolist() for c in ("record_id", "patient_id", "fold")}
    try:
        check_store_matches(store, spec)
        direct = True
    except ValueError:
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


def embed_to_parquet(model, data: str | Path, out: str | Path, *, batch_size: int = 256, fmt: str | None = None,
                     progress: ProgressFn | None = None) -> dict[str, Any]:
    """Embed every record of ``data`` (a store or a raw dataset folder); the file appears only when complete."""
    data, out = Path(data), Path(out)
    skipped: list[dict[str, str]] = []
    if is_store(data):
        store = ECGStore(data)
        total, batches = len(store), _store_batches(store, model.input_spec, batch_size)
    else:
        from ecgalign.data.readers import open_dataset

        reader = open_dataset(data, fmt)
        total, batches = len(reader), _reader_batches(reader, model.input_spec, batch_size, skipped)
    joint = model.has_joint_space
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    writer = None
    written = 0
    try:
        for rows, x in batches:
            columns = {
                "position": pa.array(rows["position"], pa.int64()),
                "record_id": pa.array([str(r) for r in rows["record_id"]], pa.string()),
                "patient_id": pa.array([None if p is None or p != p else str(p) for p in rows["patient_id"]], pa.string()),
                "fold": pa.array([None if f is None or f != f else int(f) for f in rows["fold"]], pa.int64()),
                "features": _list_column(model.features(x, batch_size)),
            }
            if joint:
                columns["embedding"] = _list_column(model.encode_ecg(x, batch_size))
            table = pa.table(columns)
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table)
            written += len(rows["position"])
            if progress is not None:
                progress(written + len(skipped), total)
        if writer is None:
            raise ValueError(f"{data}: no record could be embedded ({len(skipped)} skipped)")
        writer.close()
        writer = None
        os.replace(tmp, out)
    finally:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
    return {"out": str(out), "records": written, "skipped": len(skipped), "skipped_records": skipped[:50],
            "features_dim": model.embed_dim, "joint_space": joint}


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
