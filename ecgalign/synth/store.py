"""Write synthetic records into the same store format the converter produces (``ecgalign data synth``)."""

from __future__ import annotations

import dataclasses
import functools
import multiprocessing as mp
from collections.abc import Iterator
from pathlib import Path

from ecgalign.data.convert import ConvertReport, ProgressFn, fill_store
from ecgalign.data.labels import scp_scheme
from ecgalign.data.record import LEADS_12, ECGRecord
from ecgalign.data.store import StoreSpec, StoreWriter
from ecgalign.synth.generate import SynthConfig, synthesize_record


def _records(start: int, stop: int, seed: int, fs: float, seconds: float, config: SynthConfig,
             workers: int) -> Iterator[tuple[int, ECGRecord]]:
    make = functools.partial(synthesize_record, seed=seed, fs=fs, seconds=seconds, config=config)
    indices = range(start, stop)
    if workers <= 1:
        for i in indices:
            yield i + 1, make(i)
        return
    with mp.get_context("spawn").Pool(workers) as pool:
        for i, rec in zip(indices, pool.imap(make, indices, chunksize=32)):
            yield i + 1, rec


def synthesize_store(
    out: str | Path,
    n: int,
    *,
    seed: int = 0,
    fs: float = 500.0,
    seconds: float = 10.0,
    config: SynthConfig | None = None,
    workers: int = 1,
    resume: bool = False,
    overwrite: bool = False,
    progress: ProgressFn | None = None,
) -> ConvertReport:
    """Generate records 0..n-1 for ``seed`` into a store at ``out`` (int16 mV, the 12 standard leads)."""
    config = config or SynthConfig()
    spec = StoreSpec(fs=float(fs), samples=int(round(fs * seconds)), leads=LEADS_12, encoding="int16")
    info = {
        "dataset": "synthetic",
        "source": {"generator": "ecgalign.synth", "n": n, "seed": seed, "config": dataclasses.asdict(config)},
        "preprocess": None,
    }
    writer = StoreWriter(out, spec, scp_scheme(), info=info, resume=resume, overwrite=overwrite)
    items = _records(writer.resume_position, n, seed, fs, seconds, config, workers)
    return fill_store(writer, items, n, progress)
