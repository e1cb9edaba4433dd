"""Frozen-teacher embeddings for tasks that learn from a trained model (``Task.needs_teacher``: ECG-Scan),
computed once per (teacher weights, store content) and cached as .npy: the teacher's L2-normalised joint-space
ECG embedding of every record (its signal encoder, fed each record preprocessed to the teacher's input spec)
and its frozen text encoder's embedding of every report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ecgalign.data.errors import InputError
from ecgalign.data.store import ECGStore
from ecgalign.hub import cache_key, embed_to_parquet, load, read_embeddings
from ecgalign.hub.io import atomic_write_text


def teacher_arrays(teacher_run: str | Path, store_path: str | Path, cache_dir: str | Path,
                   device: str | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """(signal (N, P), text (N, Dt), info) for the store's records, from the cache when it has them."""
    teacher = load(teacher_run, device=device)
    if not teacher.has_joint_space or teacher.input_kind != "signal":
        raise InputError(f"{teacher_run}: the teacher needs a joint ECG-text space over signals (a merit, clip, "
                         f"esi ... run); recipe {teacher.card.get('recipe')!r} has none")
    store = ECGStore(store_path)
    key = cache_key(teacher, store_path)
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    sig_path, txt_path, info_path = (cache / f"teacher-{key}.{suffix}" for suffix in ("signal.npy", "text.npy", "json"))
    if sig_path.is_file() and txt_path.is_file() and info_path.is_file():
        return np.load(sig_path, mmap_mode="r"), np.load(txt_path, mmap_mode="r"), json.loads(info_path.read_text())
    parquet = cache / f"teacher-{key}.parquet"
    summary = embed_to_parquet(teacher, store_path, parquet)
    if summary["skipped"]:
        raise InputError(f"{store_path}: the teacher could not embed {summary['skipped']} records "
                         f"({summary['skipped_records'][:3]}); convert them out of the store first")
    _, signal = read_embeddings(parquet, "embedding")
    parquet.unlink()
    reports = [str(r or "") for r in store.column("report")]
    empty = sum(not r for r in reports)
    if empty:
        raise InputError(f"{store_path}: {empty} records have no report; ECG-Scan's text terms need one for every record")
    text = teacher.task.text(reports).float().cpu().numpy()
    info = {"teacher": str(teacher_run), "recipe": teacher.card.get("recipe"), "records": len(store),
            "text_encoder": teacher.task.text.source,
            "signal_dim": int(signal.shape[1]), "text_dim": int(text.shape[1])}
    for path, array in ((sig_path, signal), (txt_path, text)):
        tmp = path.with_name(path.name + ".tmp.npy")
        np.save(tmp, array.astype(np.float32))
        tmp.replace(path)
    atomic_write_text(info_path, json.dumps(info, indent=2))
    return signal, text, info
