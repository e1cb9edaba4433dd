"""Distribution shift (MERIT appendix B, Table 5): a linear probe trained on a source dataset (its train
split, selection on its validation split) is tested on the whole target dataset, both label spaces mapped
onto the shared classes of ``ecgalign.data.labels.cross_dataset``. Records with no shared label are left
out on both sides. The in-domain test score of the same probe is reported beside the transfer score (when the
split has a test part: a probe selected on a chosen fold trains on all the rest). Two datasets of one label
set (PTB-XL -> another PTB-XL) share all their classes (the identity map)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ecgalign.data.errors import InputError
from ecgalign.data.labels.cross_dataset import map_labels, shared_label_space
from ecgalign.eval.data import EvalData

# (code system of the labels, label set) -> shift domain of Table 5
DOMAINS = {"scp": ("superdiagnostic", "ptbxl-super"), "cpsc2018": ("cpsc2018", "cpsc2018"), "snomed": ("snomed", "csn")}


def domain_of(data: EvalData) -> tuple[str, str]:
    if data.code_system not in DOMAINS:
        raise InputError(f"{data.path}: labels of code system {data.code_system!r} have no distribution-shift "
                         f"label map (PTB-XL superclasses, CPSC2018 and Chapman-Shaoxing-Ningbo have)")
    return DOMAINS[data.code_system]


def shift(source: EvalData, target: EvalData, split, *, seeds=(0, 1, 2), n_boot: int = 1000) -> dict[str, Any]:
    from ecgalign.eval.linear_probe import check_splits, train_linear_probe
    from ecgalign.eval.metrics import bootstrap_ci, choose_thresholds, classification_metrics, macro_auroc

    (src_set, src_domain), (tgt_set, tgt_domain) = domain_of(source), domain_of(target)
    space = shared_label_space(src_domain, tgt_domain)
    ys, cs = source.labels(src_set)
    yt, ct = target.labels(tgt_set)
    Ys = map_labels(ys, cs, space.source_to_shared, space.shared).astype(np.float32)
    Yt = map_labels(yt, ct, space.target_to_shared, space.shared).astype(np.float32)
    check_splits(split.train, split.val, split.test, source.patient_ids)
    labelled = lambda idx, y: idx[y[idx].any(axis=1)]  # noqa: E731
    train, val, test = (labelled(part, Ys) for part in (split.train, split.val, split.test))
    target_rows = np.flatnonzero(Yt.any(axis=1))
    if len(target_rows) == 0:
        raise InputError(f"{target.path}: no record carries a class shared with {src_domain} ({space.shared})")
    in_domain, transfer = [], []
    for seed in seeds:
        probe = train_linear_probe(source.features[train], Ys[train], source.features[val], Ys[val], seed=seed)
        thresholds = choose_thresholds(Ys[val], probe.predict_proba(source.features[val]))
        if len(test):
            in_domain.append((probe.predict_proba(source.features[test]), thresholds))
        transfer.append((probe.predict_proba(target.features[target_rows]), thresholds))

    def summary(y: np.ndarray, runs) -> dict[str, Any]:
        scores = np.mean([s for s, _ in runs], axis=0)
        thresholds = np.mean([t for _, t in runs], axis=0)
        out = classification_metrics(y, scores, thresholds=thresholds, class_names=space.shared)
        out["macro_auroc_ci95"] = bootstrap_ci(y, scores, macro_auroc, n_boot=n_boot).to_dict()
        out["records"] = int(len(y))
        return out

    return {
        "source_dataset": {"name": source.name, "path": source.path, "domain": src_domain},
        "target_dataset": {"name": target.name, "path": target.path, "domain": tgt_domain},
        "shared_classes": list(space.shared), "seeds": list(seeds),
        "source_dropped": list(getattr(space, "source_dropped", [])), "target_dropped": list(getattr(space, "target_dropped", [])),
        "train_records": int(len(train)), "val_records": int(len(val)),
        "in_domain_test": summary(Ys[test], in_domain) if in_domain else None,
        "transfer_test": summary(Yt[target_rows], transfer),
    }
