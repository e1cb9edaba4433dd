"""ECG <-> report retrieval in the joint space: recall@K both ways.

Reports repeat ("sinus rhythm. normal ecg." is thousands of records), so retrieval runs over the distinct
report texts: ECG -> text is a hit when the ECG's own report text is among the K most similar distinct
texts; text -> ECG is a hit when any record carrying that text is among the K most similar ECGs. Records
without a report are left out. Chance levels are reported beside the recalls.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ecgalign.data.errors import NotApplicableError


def retrieval(model, joint: np.ndarray, reports: list[str], ks: tuple[int, ...] = (1, 5, 10)) -> dict[str, Any]:
    keep = [i for i, r in enumerate(reports) if r]
    if not keep:
        raise NotApplicableError("retrieval: no record has a report")
    texts = sorted({reports[i] for i in keep})
    index = {t: j for j, t in enumerate(texts)}
    ecg = joint[keep]  # (N, P), normalised
    owner = np.array([index[reports[i]] for i in keep])  # (N,) text of each ECG
    text = model.encode_text(texts)  # (T, P)
    sim = ecg @ text.T  # (N, T)
    out: dict[str, Any] = {"records": len(keep), "distinct_reports": len(texts)}
    # rank of the true text for each ECG (0 = best)
    true = sim[np.arange(len(keep)), owner]
    rank_e2t = (sim >= true[:, None]).sum(axis=1) - 1  # ties count against the true text
    # for each text, the best rank among its ECGs
    order = np.argsort(-sim, axis=0)  # (N, T) ECG order per text
    ranks = np.empty_like(order)
    ranks[order, np.arange(len(texts))] = np.arange(len(keep))[:, None]
    best = np.full(len(texts), len(keep))
    np.minimum.at(best, owner, ranks[np.arange(len(keep)), owner])
    for k in ks:
        out[f"ecg_to_text_recall@{k}"] = float((rank_e2t < k).mean())
        out[f"text_to_ecg_recall@{k}"] = float((best < k).mean())
        out[f"ecg_to_text_chance@{k}"] = float(min(1.0, k / len(texts)))
        counts = np.bincount(owner, minlength=len(texts))
        # chance that a random ranking puts at least one of the text's c ECGs in the top k
        out[f"text_to_ecg_chance@{k}"] = float(np.mean([1 - _none_in_top(len(keep), c, k) for c in counts]))
    return out


def _none_in_top(n: int, c: int, k: int) -> float:
    """P(no one of c marked items among the first k of a random order of n)."""
    p = 1.0
    for j in range(min(k, n)):
        p *= max(0.0, (n - c - j) / (n - j))
    return p
