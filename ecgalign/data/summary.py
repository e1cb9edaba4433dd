"""Summaries of a dataset folder or a store: ``ecgalign data info`` and ``ecgalign data lead-snr``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecgalign.data.leads import lead_snr, summarize_lead_snr
from ecgalign.data.readers.base import Skipped, open_dataset
from ecgalign.data.record import RecordError
from ecgalign.data.store import PROGRESS, ECGStore, is_store

MAX_LISTED_SKIPS = 50


def _label_counts(meta: pd.DataFrame, set_names: list[str], classes: dict[str, list[str]]) -> tuple[dict, dict]:
    counts: dict[str, dict[str, int]] = {}
    unlabelled: dict[str, int] = {}
    for name in set_names:
        column = f"labels_{name}"
        if column not in meta:
            continue
        tally = Counter(c for members in meta[column] for c in members)
        counts[name] = {c: int(tally.get(c, 0)) for c in classes[name]}
        unlabelled[name] = int(sum(len(m) == 0 for m in meta[column]))
    return counts, unlabelled


def _demographics(meta: pd.DataFrame) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "patient_id" in meta:
        out["patients"] = int(meta["patient_id"].dropna().nunique())
    if "fold" in meta and meta["fold"].notna().any():
        out["folds"] = {str(int(k)): int(v) for k, v in meta["fold"].dropna().astype(int).value_counts().sort_index().items()}
    if "age" in meta and meta["age"].notna().any():
        age = meta["age"].dropna().astype(float)
        out["age"] = {"median": float(age.median()), "min": float(age.min()), "max": float(age.max()), "missing": int(meta["age"].isna().sum())}
    if "sex" in meta:
        out["sex"] = {str(k): int(v) for k, v in meta["sex"].fillna("unknown").value_counts().items()}
    if "report" in meta:
        out["records_with_report"] = int(sum(bool(r) for r in meta["report"].fillna("")))
    return out


def dataset_info(path: str | Path, fmt: str | None = None, **reader_kwargs: Any) -> dict[str, Any]:
    """One JSON-ready summary of a raw dataset folder (header-level scan, no signal decoding) or a store."""
    path = Path(path)
    if is_store(path) or (path / PROGRESS).exists():  # an interrupted conversion: ECGStore says to resume it
        store = ECGStore(path)
        meta = store.meta
        m = store.manifest
        counts, unlabelled = _label_counts(meta, list(store.label_sets), store.label_sets)
        skipped = store.skipped()
        return {
            "dataset": m.get("dataset", "unknown"),
            "kind": "store",
            "path": str(path),
            "records": len(store),
            "sampling_rates": [store.fs],
            "seconds": m["seconds"],
            "leads": list(store.leads),
            "encoding": m["encoding"],
            "code_system": m.get("code_system"),
            "label_counts": counts,
            "records_without_label": unlabelled,
            **_demographics(meta),
            "skipped": int(m.get("skipped", len(skipped))),
            "skipped_records": skipped.head(MAX_LISTED_SKIPS).to_dict("records"),
            "preprocess": m.get("preprocess"),
            "source": m.get("source"),
        }
    reader = open_dataset(path, fmt, **reader_kwargs)
    scan = reader.scan()
    meta = reader.metadata()
    bad = {s.record_id for s in scan.skipped}
    meta = meta[~meta["record_id"].astype(str).isin(bad)]
    scheme = reader.label_scheme()
    set_names = scheme.set_names()
    counts, unlabelled = _label_counts(meta, set_names, {n: scheme.classes(n) for n in set_names})
    return {
        "dataset": reader.name,
        "kind": "raw",
        "path": str(path),
        "records": scan.records,
        "sampling_rates": scan.sampling_rates,
        "leads": scan.leads,
        "code_system": scheme.code_system,
        "label_counts": counts,
        "records_without_label": unlabelled,
        **_demographics(meta),
        "skipped": len(scan.skipped),
        "skipped_records": [s.as_dict() for s in scan.skipped[:MAX_LISTED_SKIPS]],
        "unreadable_files": [s.as_dict() for s in reader.source_problems()[:MAX_LISTED_SKIPS]],
        "citation": reader.citation,
        "licence": reader.licence,
    }


def iter_signals(
    path: str | Path, fmt: str | None = None, limit: int | None = None, on_skip: Callable[[Skipped], None] | None = None,
    **reader_kwargs: Any,
) -> Iterator[tuple[str, np.ndarray, tuple[str, ...]]]:
    """(record id, signal, leads) of every record of a store or raw dataset folder; unreadable records go to
    on_skip."""
    path = Path(path)
    if is_store(path) or (path / PROGRESS).exists():  # an interrupted conversion: ECGStore says to resume it
        store = ECGStore(path)
        n = len(store) if limit is None else min(limit, len(store))
        ids = store.column("record_id")
        for i in range(n):
            yield str(ids[i]), store.signal(i), store.leads
        return
    reader = open_dataset(path, fmt, **reader_kwargs)
    n = len(reader) if limit is None else min(limit, len(reader))
    for i in range(n):
        try:
            rec = reader.read(i)
        except RecordError as exc:
            if on_skip is None:
                raise
            on_skip(Skipped(reader.record_id(i), exc.source, exc.problem))
            continue
        yield rec.record_id, rec.signal, rec.leads


def dataset_lead_snr(path: str | Path, fmt: str | None = None, limit: int | None = None, **reader_kwargs: Any) -> dict[str, Any]:
    """Mean SNR (dB) of Einthoven/Goldberger-derived vs recorded limb leads over a dataset (ECG-Scan Table 1)."""
    skipped: list[Skipped] = []
    per_record = []
    for record_id, signal, leads in iter_signals(path, fmt, limit, skipped.append, **reader_kwargs):
        if not np.isfinite(signal).all():
            skipped.append(Skipped(record_id, str(path), "non-finite samples"))
            continue
        per_record.append(lead_snr(signal, leads))
    if not per_record:
        raise RecordError(str(path), "no readable record to compute lead SNR on")
    return {
        "path": str(path),
        "records": len(per_record),
        "leads": summarize_lead_snr(per_record),
        "skipped": len(skipped),
        "skipped_records": [s.as_dict() for s in skipped[:MAX_LISTED_SKIPS]],
    }
