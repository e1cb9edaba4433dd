"""Subject identification (ESI section 4.4): can the representation tell people apart?

One-shot, on records of the same patient: among patients with at least two records, each patient's first
record (dataset order) is the gallery entry, every other record of theirs a probe. A probe is identified by
its most similar gallery entry (cosine similarity of standardised features): top-1 / top-5 accuracy. AUROC
separates genuine (same patient) from impostor (different patients) probe-gallery similarities.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ecgalign.data.errors import NotApplicableError
from sklearn.metrics import roc_auc_score


def identify(features: np.ndarray, patient_ids: np.ndarray | None) -> dict[str, Any]:
    if patient_ids is None:
        raise NotApplicableError("identification needs patient ids; this dataset has none")
    ids = np.asarray([str(p) if p is not None else "" for p in patient_ids])
    patients, first, counts = np.unique(ids, return_index=True, return_counts=True)
    repeat = [(p, f) for p, f, c in zip(patients, first, counts) if c >= 2 and p]
    if len(repeat) < 2:
        raise NotApplicableError(f"identification needs at least 2 patients with 2+ records; found {len(repeat)}")
    x = (features - features.mean(axis=0)) / (features.std(axis=0) + 1e-6)
    x /= np.linalg.norm(x, axis=1, keepdims=True) + 1e-12
    gallery_ids = np.array([p for p, _ in repeat])
    gallery = x[[f for _, f in repeat]]  # (G, D)
    gallery_rows = {f for _, f in repeat}
    probes = np.array([i for i in range(len(ids)) if ids[i] in set(gallery_ids) and i not in gallery_rows])
    sim = x[probes] @ gallery.T  # (Q, G)
    truth = np.searchsorted(gallery_ids, ids[probes])  # gallery_ids are sorted (np.unique)
    rank = (sim > sim[np.arange(len(probes)), truth][:, None]).sum(axis=1)
    genuine = np.zeros_like(sim, dtype=bool)
    genuine[np.arange(len(probes)), truth] = True
    return {
        "patients": len(repeat), "probes": int(len(probes)),
        "top1_accuracy": float((rank < 1).mean()), "top5_accuracy": float((rank < 5).mean()),
        "chance_top1": 1.0 / len(repeat),
        "auroc": float(roc_auc_score(genuine.ravel(), sim.ravel())),
    }
