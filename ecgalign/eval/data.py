"""What an evaluation sees of a dataset: per-record metadata (ids, patient, fold, report, label sets) aligned
with the model's embeddings (``ecgalign.hub.embed``: computed once per model and data content, and cached).

A dataset is a store or a raw dataset folder in any layout ecgalign reads. Records that cannot be read are
skipped, counted and reported, and dropped from both the metadata and the embeddings, so rows always align.
External validation (train on one dataset, test on another) joins several embedded datasets into one
(``concat_eval_data``) after ``check_disjoint`` made sure no record or patient of the test set is in the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ecgalign.data.errors import InputError, NotApplicableError
from ecgalign.data.readers import open_dataset
from ecgalign.data.spec import store_input_mismatch
from ecgalign.data.store import ECGStore, is_store
from ecgalign.hub.embed import cached_embeddings, image_table, is_image_table, join_rows

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
    """Metadata and label sets of a store, a raw dataset folder, or an image table (no signal is decoded)."""
    path = Path(path)
    if is_image_table(path):
        return _image_eval_data(path)
    if is_store(path):
        store = ECGStore(path)
        meta = store.meta.copy()
        meta.insert(0, "position", np.arange(len(meta)))
        code_system = str(meta["code_system"].iloc[0]) if len(meta) else ""
        return EvalData(store.manifest.get("dataset", path.name), str(path), code_system, meta, store.label_sets)
    reader = open_dataset(path, fmt)
    meta = reader.metadata().reset_index(drop=True)
    meta.insert(0, "position", np.arange(len(meta)))
    scheme = reader.label_scheme()
    sets = {name: scheme.classes(name) for name in scheme.set_names()}
    return EvalData(reader.name, str(path), scheme.code_system, meta, sets)


IMAGE_COLUMNS = {"position", "image", "record_id", "patient_id", "fold", "code_system"}


def _image_eval_data(path: Path) -> EvalData:
    """An image table (``ecgalign.hub.embed.image_table``): every other column of its CSV is a label set whose
    cells list class names separated by ``;`` (empty: no class); ``code_system`` (default ``scp``, PTB-XL's)
    picks the zero-shot prompts."""
    meta = image_table(path)
    code_system = "scp"
    if "code_system" in meta.columns and meta["code_system"].notna().any():
        code_system = str(meta["code_system"].dropna().iloc[0])
    sets: dict[str, list[str]] = {}
    for column in [c for c in meta.columns if c not in IMAGE_COLUMNS]:
        members = [[c.strip() for c in str(v).split(";") if c.strip()] if isinstance(v, str) else []
                   for v in meta[column]]
        meta[f"labels_{column}"] = members
        sets[column] = sorted({c for m in members for c in m})
        meta = meta.drop(columns=[column])
    return EvalData(path.stem, str(path), code_system, meta, sets)


def attach_embeddings(data: EvalData, model, cache_dir: str | Path | None = None, batch_size: int = 256,
                      progress=None) -> EvalData:
    """Embed ``data`` with ``model`` (or read the cached embeddings) and keep only the embedded rows, matched
    to the metadata by record id."""
    rows, features, joint, skipped = cached_embeddings(model, data.path, cache_dir, batch_size, progress)
    keep = join_rows(data.meta, rows, data.path)
    data.meta, data.features, data.joint, data.skipped = data.meta.iloc[keep].reset_index(drop=True), features, joint, skipped
    return data


def _ids(data: EvalData, column: str) -> set[str]:
    values = data.meta.get(column)
    if values is None:
        return set()
    return {str(v) for v in values if v is not None and v == v and str(v) not in ("", "nan", "None")}


def check_disjoint(test: EvalData, *others: EvalData) -> None:
    """External validation's guard: no record and no patient of ``test`` may be in a dataset the probe is
    trained or selected on. Ids are compared within one code system (ids of unrelated sources, e.g. PTB-XL
    and CPSC2018 record numbers, never name the same ECG)."""
    for other in others:
        if other.code_system != test.code_system:
            continue
        for column, what in (("record_id", "record"), ("patient_id", "patient")):
            shared = sorted(_ids(test, column) & _ids(other, column))
            if shared:
                raise InputError(f"{test.path} shares {len(shared)} {what}(s) with {other.path} (e.g. {shared[:5]}): "
                                 f"a test {what} must not be in the data the probe is trained or selected on")


def concat_eval_data(parts: list[EvalData]) -> EvalData:
    """One dataset of the embedded ``parts`` (rows in order; column ``source_path`` says where each came from).
    Keeps the label sets all parts have; their class lists are joined in first-seen order."""
    if len({p.code_system for p in parts}) > 1:
        raise InputError(f"{' and '.join(p.path for p in parts)} have different label systems "
                         f"({', '.join(sorted({p.code_system for p in parts}))}); a probe trained on one cannot be "
                         "scored on the other's labels: use `ecgalign eval shift`, which maps them onto shared classes")
    if any(p.features is None for p in parts):
        raise ValueError("concat_eval_data needs embedded datasets (run attach_embeddings first)")
    names = [n for n in parts[0].label_sets if all(n in p.label_sets for p in parts)]
    if not names:
        raise InputError(f"{' and '.join(p.path for p in parts)} share no label set")
    sets = {n: list(dict.fromkeys(c for p in parts for c in p.label_sets[n])) for n in names}
    meta = pd.concat([p.meta.assign(source_path=p.path) for p in parts], ignore_index=True)
    joint = None if any(p.joint is None for p in parts) else np.concatenate([p.joint for p in parts])
    return EvalData(" + ".join(p.name for p in parts), " + ".join(p.path for p in parts), parts[0].code_system,
                    meta, sets, np.concatenate([p.features for p in parts]), joint,
                    [s for p in parts for s in p.skipped])


def load_signals(data: EvalData, spec) -> np.ndarray:
    """(N, leads, samples) float32 of ``data``'s rows in the encoder input ``spec`` (for the supervised
    reference, which trains on signals). Held in memory: meant for evaluation-sized datasets."""
    if "source_path" in data.meta:  # a joined dataset (external validation): read each part from its source
        out = np.empty((len(data.meta), spec.num_leads, spec.samples), dtype=np.float32)
        for source, rows in data.meta.groupby("source_path", sort=False).indices.items():
            part = EvalData(data.name, str(source), data.code_system, data.meta.iloc[rows], data.label_sets)
            out[rows] = _load_signals(part, spec)
        return out
    return _load_signals(data, spec)


def _load_signals(data: EvalData, spec) -> np.ndarray:
    positions = data.meta["position"].to_numpy()
    path = Path(data.path)
    if is_image_table(path):
        raise NotApplicableError(f"{path}: a table of printout images holds no signals to compare with")
    if is_store(path):
        store = ECGStore(path)
        if not store_input_mismatch(store, spec):
            return store.signals(positions)
        pre = spec.preprocess()
        return np.stack([pre(store.record(int(i))).signal for i in positions])
    reader = open_dataset(path)
    pre = spec.preprocess()
    return np.stack([pre(reader.read(int(i))).signal for i in positions]).astype(np.float32)
