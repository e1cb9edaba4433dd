"""``evaluate``: the protocols of all four papers on one checkpoint and one dataset, beside a randomly
initialised encoder of the same architecture (and, for linear probing, a supervised-from-scratch reference),
into one results dict and the figures of its HTML report.

Splits: ``cv`` > 0 runs k-fold cross-validation on the dataset's folds (PTB-XL ``strat_fold``; test k,
validation k-1), otherwise the official split (folds 1-8 / 9 / 10) when the dataset has folds, else a
seeded patient-level 80/10/10 split. Model selection uses the validation part only.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ecgalign._version import __version__
from ecgalign.data.errors import InputError, NotApplicableError
from ecgalign.data.splits import Split, fold_split, patient_split
from ecgalign.eval import linear_probe as lp
from ecgalign.eval.data import EvalData, attach_embeddings, load_eval_data
from ecgalign.eval.protocols import Context, get_protocol, list_protocols


def default_protocols() -> tuple[str, ...]:
    """Every registered protocol that ``eval all`` runs, in registration order."""
    return tuple(name for name in list_protocols() if get_protocol(name).in_all)


@dataclass
class EvalConfig:
    protocols: Sequence[str] = field(default_factory=default_protocols)
    label_sets: Sequence[str] | None = None  # None: every label set of the dataset
    fractions: Sequence[float] = (0.01, 0.1, 1.0)
    seeds: Sequence[int] = (0, 1, 2)
    cv: int = 0
    n_boot: int = 1000
    baselines: bool = True
    supervised: bool = True
    supervised_epochs: int = 30
    supervised_label_sets: Sequence[str] | None = None  # None: the first evaluated label set only
    plots: bool = True
    batch_size: int = 256
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        runnable = [p for p in list_protocols() if get_protocol(p).run is not None]
        unknown = [p for p in self.protocols if p not in runnable]
        if unknown:
            raise InputError(f"unknown protocol(s) {unknown}; expected some of {runnable}")
        if any(not 0 < f <= 1 for f in self.fractions):
            raise InputError(f"label fractions must lie in (0, 1], got {list(self.fractions)}")


def split_of(data: EvalData) -> tuple[Split, str]:
    """The official folds (1-8 / 9 / 10) when the dataset has them, else a seeded patient-level 80/10/10 split."""
    folds = data.folds
    ids = data.patient_ids if data.patient_ids is not None else [None] * len(data.meta)
    why = "the dataset has no official folds"
    if folds is not None and set(np.unique(folds)) >= set(range(1, 11)):
        split = fold_split(folds)
        if _patient_disjoint(split, ids):
            return split, "official folds: 1-8 train, 9 validation, 10 test"
        why = "the dataset's folds put records of one patient in several parts"
    return patient_split(ids, seed=0), f"seeded patient-level split 80/10/10 ({why})"


def _patient_disjoint(split: Split, ids) -> bool:
    parts = [{ids[int(i)] for i in part if ids[int(i)] is not None} for part in (split.train, split.val, split.test)]
    return not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])


def _usable_label_sets(data: EvalData, wanted: Sequence[str] | None) -> list[str]:
    if wanted:
        for name in wanted:
            data.labels(name)  # raises naming the dataset and its label sets
        return list(wanted)
    usable = []
    for name in data.label_sets:
        y, _ = data.labels(name)
        if ((y.sum(axis=0) > 0) & (y.sum(axis=0) < len(y))).sum() >= 2:
            usable.append(name)
    return usable


def evaluate(model, data_path: str | Path, config: EvalConfig | None = None, *, cache_dir: str | Path | None = None,
             fmt: str | None = None, progress=None) -> tuple[dict[str, Any], list[tuple[str, str, bytes]]]:
    """Results (JSON-ready, no NaN) and figures ``(section, caption, png)`` for ``model`` (any
    ``ecgalign.hub.Embedder``) on ``data_path``."""
    config = config or EvalConfig()
    started = time.time()
    base = load_eval_data(data_path, fmt)
    sets = _usable_label_sets(base, config.label_sets)
    results: dict[str, Any] = {
        "ecgalign_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "checkpoint": {k: model.card.get(k) for k in ("recipe", "step", "encoder", "input_spec", "text_encoder")},
        "dataset": {"name": base.name, "path": base.path, "records": int(len(base.meta)), "label_sets": sets},
        "protocol": {**{k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in vars(config).items()}},
    }
    if "via_digitizer" in model.card:  # a signal model shown printouts read back by the digitiser
        results["checkpoint"]["via_digitizer"] = model.card["via_digitizer"]
    encoders = {"model": model}
    if config.baselines:
        encoders["random_init"] = model.random_init(seed=0)
    embedded: dict[str, EvalData] = {}
    for role, encoder in encoders.items():
        data = dataclasses.replace(base, meta=base.meta.copy())
        attach_embeddings(data, encoder, cache_dir if role == "model" else None, config.batch_size, progress)
        embedded[role] = data
    data = embedded["model"]
    results.update(model.eval_extras())
    results["dataset"].update(embedded_records=int(len(data.meta)), skipped=len(data.skipped),
                              skipped_records=data.skipped[:20])
    split, split_rule = split_of(data)
    lp.check_splits(split.train, split.val, split.test, data.patient_ids)
    ctx = Context(model, encoders, embedded, sets, split, split_rule, config)
    for name in config.protocols:
        protocol = get_protocol(name)
        why = protocol.unmet_need(model)
        if why is not None:
            results[protocol.key] = {"skipped": why}
            continue
        try:
            results[protocol.key] = protocol.run(ctx)
        except NotApplicableError as exc:
            results[protocol.key] = {"skipped": str(exc)}
    results["seconds"] = round(time.time() - started, 1)
    return results, ctx.figures
