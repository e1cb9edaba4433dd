"""Write synthetic records into the same store format the converter produces (``ecgalign data synth``)."""

from __future__ import annotations

import dataclasses
import functools
import multiprocessing as mp
from collections.abc import Iterator
from pathlib import Path

from ecgalign.data.convert import ConvertReport, ProgressFn, fill_store, store_spec_for
from ecgalign.data.labels import scp_scheme
from ecgalign.data.preprocess import Preprocess
from ecgalign.data.record import LEADS_12, ECGRecord
from ecgalign.data.store import StoreSpec, StoreWriter
from ecgalign.synth.generate import SynthConfig, synthesize_record


@functools.lru_cache(maxsize=2)
def _refiner(path: str):
    from ecgalign.synth.refine import load_refiner

    return load_refiner(path)[0]


def _make(index: int, *, seed: int, fs: float, seconds: float, config: SynthConfig,
          preprocess: Preprocess | None, refiner: str | None = None) -> ECGRecord:
    record = synthesize_record(index, seed=seed, fs=fs, seconds=seconds, config=config)
    if refiner is not None:
        from ecgalign.synth.refine import refine_record

        record = refine_record(_refiner(refiner), record, seed=seed, index=index)
    return record if preprocess is None else preprocess(record)


def _records(start: int, stop: int, seed: int, fs: float, seconds: float, config: SynthConfig,
             preprocess: Preprocess | None, workers: int, refiner: str | None = None
             ) -> Iterator[tuple[int, ECGRecord]]:
    make = functools.partial(_make, seed=seed, fs=fs, seconds=seconds, config=config, preprocess=preprocess,
                             refiner=refiner)
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
    preprocess: Preprocess | None = None,
    workers: int = 1,
    resume: bool = False,
    overwrite: bool = False,
    progress: ProgressFn | None = None,
    refiner: str | Path | None = None,
) -> ConvertReport:
    """Generate records 0..n-1 for ``seed`` into a store at ``out``: int16 mV with the 12 standard leads, or,
    with ``preprocess``, generated at ``fs`` and stored the way that pipeline leaves them (e.g. the
    ``baselines`` preset: 100 Hz, band-passed, z-scored, float16). ``refiner``: a folder written by
    ``ecgalign data refiner-fit``; each record is refined (``ecgalign.synth.refine``) before it is stored."""
    config = config or SynthConfig()
    refiner_info = None
    if refiner is not None:
        from ecgalign.synth.refine import FS as REFINER_FS
        from ecgalign.synth.refine import describe_refiner

        if fs < REFINER_FS:
            raise ValueError(f"a refiner works on records at >= {REFINER_FS:g} Hz; --fs is {fs:g}")
        refiner_info = describe_refiner(refiner)
        refiner = str(Path(refiner).resolve())
    if preprocess is None:
        spec = StoreSpec(fs=float(fs), samples=int(round(fs * seconds)), leads=LEADS_12, encoding="int16")
    else:
        spec = store_spec_for(preprocess)
    info = {
        "dataset": "synthetic",
        "source": {"generator": "ecgalign.synth", "n": n, "seed": seed, "fs": fs, "seconds": seconds,
                   "config": dataclasses.asdict(config), "refiner": refiner_info},
        "preprocess": None if preprocess is None else preprocess.to_dict(),
    }
    writer = StoreWriter(out, spec, scp_scheme(), info=info, resume=resume, overwrite=overwrite)
    items = _records(writer.resume_position, n, seed, fs, seconds, config, preprocess, workers, refiner)
    return fill_store(writer, items, n, progress)
