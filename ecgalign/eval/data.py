"""What an evaluation sees of a dataset: per-record metadata (ids, patient, fold, report, label sets) aligned
with the model's embeddings, computed once per (model weights, dataset, input spec) and cached.

A dataset is a store or a raw dataset folder in any layout ecgalign reads. Records that cannot be read are
skipped, counted and reported, and dropped from both the metadata and the embeddings, so rows always align.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecgalign.data.store import ECGStore, is_store

# code system of a dataset's labels -> the prompt sets written for it (ecgalign.text.prompts)
PROMPT_DATASET = {"scp": "ptbxl", "snomed": "challenge", "cpsc2018": "cpsc2018", "code": "code"}


@dataclass
class EvalData:
    """Metadata and label sets of one dataset, and (once ``attach`` ran) the embeddings of its records."""

    name: str
    path: str
    code_system: str
    meta: pd.DataFrame  # one row per record, column "position" = index in the source
    label_sets: dict[str, list[str]]
    features: np.ndarray | None = None  # (N, D) pooled encoder features
    joint: np.ndarray | None = None  # (N, P) joint-space embeddings, when the model has one
    skipped: list[dict[str, str]] = field(default_factory=list)

    @property
    def prompt_dataset(self) -> str | None:
        return PROMPT_DATASET.get(self.code_system)

    def labels(self, label_set: str) -> tuple[np.ndarray, list[str]]:
        """Multi-hot (N, C) float32 and the class names of ``label_set``."""
        if label_set not in self.label_sets:
            raise ValueError(f"{self.path}: no label set {label_set!r}; this dataset has "
                             f"{sorted(self.label_sets) or 'no label sets'}")
        classes = self.label_sets[label_set]
        pos = {c: j for j, c in enumerate(classes)}
        y = np.zeros((len(self.meta), len(classes)), dtype=np.float32)
        for i, members in enumerate(self.meta[f"labels_{label_set}"]):
            for c in members:
                y[i, pos[c]] = 1.0
        return y, list(classes)

    @property
    def folds(self) -> np.ndarray | None:
        fold = self.meta.get("fold")
        if fold is None or fold.isna().any():
            return None
        return fold.astype(int).to_numpy()

    @property
    def patient_ids(self) -> np.ndarray | None:
        ids = self.meta.get("patient_id")
        if ids is None or ids.isna().all():
            return None
        return ids.astype(object).where(ids.notna(), None).to_numpy()

    @property
    def reports(self) -> list[str]:
        return [str(r or "") for r in self.meta.get("report", pd.Series([""] * len(self.meta)))]


def load_eval_data(path: str | Path, fmt: str | None = None) -> EvalData:
    """Metadata and label sets of a store or raw dataset folder (no signal is decoded)."""
    path = Path(path)
    if is_store(path):
        store = ECGStore(path)
        meta = store.meta.copy()
        meta.insert(0, "position", np.arange(len(meta)))
        code_system = str(meta["code_system"].iloc[0]) if len(meta) else ""
        return EvalData(store.manifest.get("dataset", path.name), str(path), code_system, meta, store.label_sets)
    from ecgalign.data.readers import open_dataset

    reader = open_dataset(path, fmt)
    meta = reader.metadata().reset_index(drop=True)
    meta.insert(0, "position", np.arange(len(meta)))
    scheme = reader.label_scheme()
    sets = {name: scheme.classes(name) for name in scheme.set_names()}
    return EvalData(reader.name, str(path), scheme.code_system, meta, sets)


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def cache_key(model, data_path: str | Path) -> str:
    """Same weights + same data folder + same input spec -> same key."""
    weights = model.weights_path
    ident = {"weights": _digest(Path(weights)) if weights else f"random-init:{model.card.get('seed')}:"
             f"{json.dumps(model.card.get('recipe_resolved'), sort_keys=True)}",
             "data": str(Path(data_path).resolve()), "spec": model.input_spec.to_dict(),
             "augment": getattr(model, "eval_augment", None), "via_digitizer": model.card.get("via_digitizer")}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:20]


def attach_embeddings(data: EvalData, model, cache_dir: str | Path | None = None, batch_size: int = 256,
                      progress=None) -> EvalData:
    """Embed ``data`` with ``model`` (or read the cached embeddings) and keep only the embedded rows."""
    from ecgalign.eval.embed import embed_to_parquet, read_embeddings

    import tempfile

    cache = None
    if cache_dir is not None:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        cache = Path(cache_dir) / f"{cache_key(model, data.path)}.parquet"
    scratch = None
    if cache is None or not cache.is_file():
        if cache is None:
            scratch = tempfile.TemporaryDirectory(prefix="ecgalign-embed-")
        target = cache or Path(scratch.name) / "embeddings.parquet"
        summary = embed_to_parquet(model, data.path, target, batch_size=batch_size, progress=progress)
        data.skipped = summary["skipped_records"]
        if cache is not None:
            (cache.with_suffix(".json")).write_text(json.dumps({"skipped": summary["skipped_records"]}))
    else:
        target = cache
        sidecar = cache.with_suffix(".json")
        data.skipped = json.loads(sidecar.read_text())["skipped"] if sidecar.is_file() else []
    rows, features = read_embeddings(target)
    joint = read_embeddings(target, "embedding")[1] if model.has_joint_space else None
    if scratch is not None:
        scratch.cleanup()
    keep = data.meta.set_index("position").loc[rows["position"].to_numpy()].reset_index()
    data.meta, data.features, data.joint = keep, features, joint
    return data


def load_signals(data: EvalData, spec) -> np.ndarray:
    """(N, leads, samples) float32 of ``data``'s rows in the encoder input ``spec`` (for the supervised
    reference, which trains on signals). Held in memory: meant for evaluation-sized datasets."""
    positions = data.meta["position"].to_numpy()
    path = Path(data.path)
    if is_store(path):
        from ecgalign.train.data import check_store_matches

        store = ECGStore(path)
        try:
            check_store_matches(store, spec)
            return store.signals(positions)
        except ValueError:
            pre = spec.preprocess()
            return np.stack([pre(store.record(int(i))).signal for i in positions])
    from ecgalign.data.readers import open_dataset

    reader = open_dataset(path)
    pre = spec.preprocess()
    return np.stack([pre(reader.read(int(i))).signal for i in positions]).astype(np.float32)
