"""Convert a dataset (any reader, or the synthetic generator) into an on-disk store, once.

Every record is read, preprocessed to the store's fixed rate / length / lead order, and appended; a record
that cannot be read or preprocessed is skipped, counted and listed in ``skipped.csv`` while every valid record
is kept. Work is spread over worker processes (each opens the reader once) and results are written in source
order, so the output does not depend on the number of workers; an interrupted run resumes at its last
finished shard.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ecgalign.data.errors import InputError
from ecgalign.data.labels import LabelScheme
from ecgalign.data.preprocess import Preprocess
from ecgalign.data.readers.base import Reader, Skipped
from ecgalign.data.record import ECGRecord, RecordError
from ecgalign.data.store import StoreSpec, StoreWriter

ProgressFn = Callable[[int, int], None]


@dataclass
class ConvertReport:
    out: str
    records: int
    skipped: int
    clipped_samples: int
    manifest: dict[str, Any]
    unreadable_files: list[dict[str, str]] = field(default_factory=list)  # whole source files no record came from

    def as_dict(self) -> dict[str, Any]:
        return {"out": self.out, "records": self.records, "skipped": self.skipped, "clipped_samples": self.clipped_samples,
                "unreadable_files": self.unreadable_files}


def store_spec_for(preprocess: Preprocess, encoding: str | None = None) -> StoreSpec:
    """The fixed record shape a preprocessing pipeline produces; int16 mV unless signals are normalised."""
    if preprocess.fs is None or preprocess.seconds is None:
        raise InputError("a store needs a fixed sampling rate and length: set preprocess fs and seconds")
    if encoding is None:
        encoding = "int16" if preprocess.normalize == "none" else "float16"
    if encoding == "int16" and preprocess.normalize != "none":
        raise InputError("int16 stores hold millivolts; normalised signals need encoding float16 or float32")
    return StoreSpec(fs=float(preprocess.fs), samples=int(round(preprocess.seconds * preprocess.fs)),
                     leads=tuple(preprocess.leads), encoding=encoding)


# ------------------------------------------------------------------------------------- worker side
_WORKER: dict[str, Any] = {}


def _init_worker(reader: Reader, preprocess: Preprocess, seed: int) -> None:
    _WORKER.update(reader=reader, preprocess=preprocess, seed=seed)


def _process_one(index: int) -> ECGRecord | Skipped:
    reader: Reader = _WORKER["reader"]
    try:
        record = reader.read(index)
    except RecordError as exc:
        return Skipped(reader.record_id(index), exc.source, exc.problem)
    try:
        return _WORKER["preprocess"](record, rng=np.random.default_rng([_WORKER["seed"], index]))
    except (RecordError, ValueError) as exc:  # a preprocessing step refused this record
        return Skipped(record.record_id, record.source or record.record_id, f"preprocessing: {exc}")


def iter_processed(
    reader: Reader, preprocess: Preprocess, start: int, stop: int, *, workers: int = 1, seed: int = 0
) -> Iterator[tuple[int, ECGRecord | Skipped]]:
    """(next position, preprocessed record or Skipped) for reader indices start..stop-1, in order."""
    indices = range(start, stop)
    if workers <= 1:
        _init_worker(reader, preprocess, seed)
        for i in indices:
            yield i + 1, _process_one(i)
        return
    ctx = mp.get_context("spawn")
    with ctx.Pool(workers, initializer=_init_worker, initargs=(reader, preprocess, seed)) as pool:
        for i, item in zip(indices, pool.imap(_process_one, indices, chunksize=8)):
            yield i + 1, item


def fill_store(
    writer: StoreWriter, items: Iterator[tuple[int, ECGRecord | Skipped]], total: int, progress: ProgressFn | None
) -> ConvertReport:
    """Write ``(position, record-or-Skipped)`` items into ``writer`` and close it."""
    done = writer.resume_position
    for position, item in items:
        if isinstance(item, Skipped):
            writer.skip(item, position)
        else:
            writer.add(item, position)
        done += 1
        if progress is not None:
            progress(done, total)
    manifest = writer.close()
    unreadable = list(manifest.get("source", {}).get("unreadable_files", []))
    return ConvertReport(str(writer.out), manifest["records"], manifest["skipped"], manifest["clipped_samples"], manifest,
                         unreadable)


def convert(
    reader: Reader,
    out: str | Path,
    preprocess: Preprocess,
    *,
    encoding: str | None = None,
    workers: int = 1,
    resume: bool = False,
    overwrite: bool = False,
    limit: int | None = None,
    seed: int = 0,
    progress: ProgressFn | None = None,
) -> ConvertReport:
    """Convert ``reader``'s records (the first ``limit`` if given) into a store at ``out``."""
    spec = store_spec_for(preprocess, encoding)
    scheme: LabelScheme = reader.label_scheme()
    total = len(reader) if limit is None else min(limit, len(reader))
    info = {
        "dataset": reader.name,
        "source": {**reader.describe(), "records_in_source": len(reader), "limit": limit,
                   "unreadable_files": [p.as_dict() for p in reader.source_problems()]},
        "preprocess": preprocess.to_dict(),
        "seed": seed,
    }
    writer = StoreWriter(out, spec, scheme, info=info, resume=resume, overwrite=overwrite)
    items = iter_processed(reader, preprocess, writer.resume_position, total, workers=workers, seed=seed)
    return fill_store(writer, items, total, progress)
