"""Zero-shot classification (CLIP, Radford et al. 2021; MERIT appendix; ESI section 4): every class is
described by several clinical prompts (``ecgalign.text.prompts``), the class embedding is the normalised
mean of its prompts' joint-space embeddings, and an ECG's score for a class is the cosine similarity.

No label is used to fit anything: AUROC and AUPRC are computed from the similarities directly; F1 and
accuracy from the top-1 class (each record predicted positive for its most similar class only), so no
threshold is tuned on the evaluated records.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import f1_score

from ecgalign.eval.metrics import bootstrap_ci, classification_metrics, macro_auroc


def class_embeddings(model, prompts: dict[str, list[str]]) -> np.ndarray:
    """(C, P) one L2-normalised embedding per class: the mean of its prompts' normalised embeddings."""
    rows = []
    for cls, texts in prompts.items():
        if not texts:
            raise ValueError(f"zero-shot: class {cls!r} has no prompt")
        z = model.encode_text(texts).mean(axis=0)
        rows.append(z / np.linalg.norm(z))
    return np.stack(rows).astype(np.float32)


def zero_shot(model, joint: np.ndarray, y: np.ndarray, classes: list[str], prompts: dict[str, list[str]],
              n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Zero-shot metrics of ECG embeddings ``joint`` (N, P) against labels ``y`` (N, C) of ``classes``."""
    missing = [c for c in classes if c not in prompts]
    if missing:
        raise ValueError(f"zero-shot: no prompts for class(es) {missing}")
    text = class_embeddings(model, {c: prompts[c] for c in classes})
    scores = joint @ text.T  # (N, C) cosine similarities
    metrics = classification_metrics(y, scores, class_names=classes)
    top1 = np.zeros_like(y)
    top1[np.arange(len(y)), scores.argmax(axis=1)] = 1.0
    labelled = y.sum(axis=1) > 0
    metrics.pop("macro_f1", None)
    metrics.pop("accuracy", None)
    metrics["top1_macro_f1"] = float(f1_score(y[labelled], top1[labelled], average="macro", zero_division=0))
    metrics["top1_accuracy"] = float((y[labelled] * top1[labelled]).sum(axis=1).mean())  # top-1 is a true label
    metrics["macro_auroc_ci95"] = bootstrap_ci(y, scores, macro_auroc, n_boot=n_boot, seed=seed).to_dict()
    metrics["prompts_per_class"] = {c: len(prompts[c]) for c in classes}
    metrics["records"] = int(len(y))
    return metrics
