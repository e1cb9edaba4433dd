"""A set of records prepared for comparison: the benchmark view (100 Hz, 0.5-40 Hz, z-scored) and, for sources
in millivolts, a band-passed (0.5-100 Hz) mV view at 250 Hz for measurements.

Compare like with like: a source that is already normalised (e.g. ptbxl-unlabeled, or a store written with the
``baselines`` preset) has no mV view, so amplitude measurements are only made where both sides have one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ecgalign.data.preprocess import Preprocess
from ecgalign.data.preprocess.filters import bandpass, resample
from ecgalign.data.readers import open_dataset
from ecgalign.data.record import LEADS_12, ECGRecord, RecordError
from ecgalign.data.store import ECGStore, is_store

MV_FS = 250.0  # rate of the mV view used for measurements
MV_HIGH = 100.0  # its low-pass edge (Hz): the diagnostic bandwidth keeps QRS peaks, unlike the 40 Hz view
SECONDS = 10.0
_SYNTH_SPEC = re.compile(r"^synth:(\d+)(?::(\d+))?$")


@dataclass
class Sample:
    """Records of one source. x: (N, 12, 1000) benchmark view; mv: (N, 12, 2500) mV view or None;
    patients: (N,) patient ids (record id where unknown); codes: SCP/other codes per record (may be empty);
    skipped: records that could not be used, with the reason; likelihoods: per record, the statement likelihoods
    its source gives (PTB-XL's ``scp_codes`` values, code -> 0-100), or None where no record has any; folds:
    each record's official fold (PTB-XL ``strat_fold``; None for a record without one), or None where none has."""

    name: str
    x: np.ndarray
    mv: np.ndarray | None
    patients: np.ndarray
    codes: list[tuple[str, ...]]
    normalised: bool
    skipped: list[dict[str, str]] = field(default_factory=list)
    likelihoods: list[dict[str, float]] | None = None
    folds: list[int | None] | None = None

    def __len__(self) -> int:
        return len(self.x)

    def subset(self, indices: Iterable[int], name: str | None = None) -> Sample:
        """The records at ``indices``, in that order (skipped records are not carried over)."""
        idx = np.asarray(list(indices), dtype=np.int64)
        pick = (lambda values: None if values is None else [values[i] for i in idx])
        return Sample(name=name or self.name, x=self.x[idx], mv=None if self.mv is None else self.mv[idx],
                      patients=self.patients[idx], codes=pick(self.codes), normalised=self.normalised,
                      likelihoods=pick(self.likelihoods), folds=pick(self.folds))


def records_of(source: str, limit: int | None = None) -> Iterator[ECGRecord | dict[str, str]]:
    """Records of a store, a dataset folder, or ``synth:N[:SEED]`` (generated on the fly, mV at 500 Hz); a
    record the reader refuses comes as a dict naming it and the problem."""
    m = _SYNTH_SPEC.match(source)
    if m:
        from ecgalign.synth.generate import synthesize

        n = int(m.group(1)) if limit is None else min(int(m.group(1)), limit)
        yield from synthesize(n, int(m.group(2) or 0))
        return
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"{source}: no such store or dataset folder (or use synth:N[:SEED])")
    if is_store(path):
        store = ECGStore(path)
        for i in range(len(store) if limit is None else min(limit, len(store))):
            yield store.record(i)
        return
    reader = open_dataset(path)
    for i in range(len(reader) if limit is None else min(limit, len(reader))):
        try:
            yield reader.read(i)
        except (RecordError, OSError) as exc:
            yield {"record_id": reader.record_id(i), "source": str(path), "problem": str(exc)}


def is_normalised(rec: ECGRecord) -> bool:
    """A record already z-scored (unit variance per lead) rather than in mV."""
    pre = (rec.extra or {}).get("preprocess")
    if isinstance(pre, dict) and pre.get("normalize") not in (None, "none"):
        return True
    sd = np.nanstd(rec.signal, axis=1)
    return bool(np.all(np.abs(sd - 1.0) < 0.02))


def load_sample(source: str, *, limit: int | None = None, name: str | None = None) -> Sample:
    """Read ``source`` (store, dataset folder or ``synth:N[:SEED]``) into a Sample; records that cannot be
    used (wrong leads, too short, non-finite) are skipped, counted and listed, never fatal."""
    return sample_of(records_of(source, limit), name or source)


def sample_of(records: Iterable[ECGRecord | dict[str, str]], name: str) -> Sample:
    """A Sample of ``records`` (e.g. ``synthesize(n, seed, config=...)``); a dict in the stream is a record a
    reader refused, and is listed as skipped with the others that cannot be used."""
    source = name
    pre = Preprocess.preset("baselines")
    xs, mvs, patients, codes, skipped = [], [], [], [], []
    likelihoods: list[dict[str, float]] = []
    folds: list[int | None] = []
    normalised: bool | None = None
    for rec in records:
        if isinstance(rec, dict):
            skipped.append(rec)
            continue
        try:
            if set(LEADS_12) - set(rec.leads):
                raise ValueError(f"needs the 12 standard leads, has {list(rec.leads)}")
            if rec.seconds < SECONDS - 1e-6:
                raise ValueError(f"needs {SECONDS:g} s, has {rec.seconds:.2f} s")
            order = [rec.leads.index(lead) for lead in LEADS_12]
            sig = np.asarray(rec.signal, dtype=np.float64)[order]
            if not np.isfinite(sig).all():
                raise ValueError("non-finite samples")
            norm = is_normalised(rec)
            if normalised is None:
                normalised = norm
            elif norm != normalised:
                raise ValueError("mixes normalised and mV records")
            if norm:
                x = resample(sig, rec.fs, 100.0)[:, : int(100 * SECONDS)]
                x = (x - x.mean(axis=1, keepdims=True)) / np.maximum(x.std(axis=1, keepdims=True), 1e-6)
                mv = None
            else:
                x = pre(rec.replace(signal=sig.astype(np.float32), leads=LEADS_12)).signal
                mv = resample(bandpass(sig, rec.fs, 0.5, MV_HIGH), rec.fs, MV_FS)[:, : int(MV_FS * SECONDS)]
        except ValueError as exc:
            skipped.append({"record_id": rec.record_id, "source": rec.source, "problem": str(exc)})
            continue
        xs.append(np.asarray(x, dtype=np.float32))
        if mv is not None:
            mvs.append(mv.astype(np.float32))
        patients.append(str(rec.patient_id or rec.record_id))
        codes.append(tuple(rec.codes))
        likelihoods.append(_likelihood(rec))
        folds.append(rec.fold)
    if not xs:
        raise ValueError(f"{source}: no usable record ({len(skipped)} skipped)")
    return Sample(
        name=name,
        x=np.stack(xs),
        mv=np.stack(mvs) if mvs else None,
        patients=np.array(patients),
        codes=codes,
        normalised=bool(normalised),
        skipped=skipped,
        likelihoods=likelihoods if any(likelihoods) else None,
        folds=folds if any(f is not None for f in folds) else None,
    )


def _likelihood(rec: ECGRecord) -> dict[str, float]:
    """The record's statement likelihoods (PTB-XL readers keep them as ``extra['scp_likelihood']``), {} if none."""
    given = (rec.extra or {}).get("scp_likelihood") or {}
    out = {}
    for code, value in given.items():
        try:
            out[str(code)] = float(value)
        except (TypeError, ValueError):
            continue  # an unreadable likelihood leaves the statement without one, as if none was given
    return out
