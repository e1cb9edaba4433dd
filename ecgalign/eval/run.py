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

from ecgalign import __version__
from ecgalign.data.splits import Split, fold_split, patient_split
from ecgalign.eval.data import EvalData, attach_embeddings, load_eval_data, load_signals

PROTOCOLS = ("linear-probe", "zero-shot", "identify", "retrieval", "reconstruction")


@dataclass
class EvalConfig:
    protocols: Sequence[str] = PROTOCOLS
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
        unknown = [p for p in self.protocols if p not in PROTOCOLS]
        if unknown:
            raise ValueError(f"unknown protocol(s) {unknown}; expected some of {PROTOCOLS}")
        if any(not 0 < f <= 1 for f in self.fractions):
            raise ValueError(f"label fractions must lie in (0, 1], got {list(self.fractions)}")


def _split(data: EvalData) -> tuple[Split, str]:
    folds = data.folds
    if folds is not None and set(np.unique(folds)) >= set(range(1, 11)):
        return fold_split(folds), "official folds: 1-8 train, 9 validation, 10 test"
    ids = data.patient_ids if data.patient_ids is not None else [None] * len(data.meta)
    return patient_split(ids, seed=0), "seeded patient-level split 80/10/10 (the dataset has no official folds)"


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


def _encoders(model, config: EvalConfig):
    from ecgalign.models.card import random_init_like

    yield "model", model
    if config.baselines:
        yield "random_init", random_init_like(model, seed=0)


def evaluate(model, data_path: str | Path, config: EvalConfig | None = None, *, cache_dir: str | Path | None = None,
             fmt: str | None = None, progress=None) -> tuple[dict[str, Any], list[tuple[str, str, bytes]]]:
    """Results (JSON-ready, no NaN) and figures ``(section, caption, png)`` for ``model`` on ``data_path``."""
    from ecgalign.eval import linear_probe as lp

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
    digitised = "via_digitizer" in model.card  # a signal model shown printouts read back by the digitiser
    if digitised:
        results["checkpoint"]["via_digitizer"] = model.card["via_digitizer"]
    figures: list[tuple[str, str, bytes]] = []
    encoders = dict(_encoders(model, config))
    embedded: dict[str, EvalData] = {}
    for role, encoder in encoders.items():
        data = dataclasses.replace(base, meta=base.meta.copy())
        attach_embeddings(data, encoder, cache_dir if role == "model" else None, config.batch_size, progress)
        embedded[role] = data
    data = embedded["model"]
    if digitised:  # images read, digitiser failures
        results["digitizer"] = model.summary()
    results["dataset"].update(embedded_records=int(len(data.meta)), skipped=len(data.skipped),
                              skipped_records=data.skipped[:20])
    split, split_rule = _split(data)
    lp.check_splits(split.train, split.val, split.test, data.patient_ids)

    if "linear-probe" in config.protocols:
        section: dict[str, Any] = {"split": split_rule if not config.cv else f"{config.cv}-fold cross-validation "
                                   "(test fold k, validation fold k-1)", "sizes": split.sizes()}
        for name in sets:
            y, classes = data.labels(name)
            folds = None
            if config.cv:  # the dataset's own folds, else label-balanced patient-grouped ones
                folds = data.folds if data.folds is not None else lp.make_folds(y, config.cv, seed=0,
                                                                               patient_ids=data.patient_ids)
            entry = {}
            for role, d in embedded.items():
                if config.cv:
                    entry[role] = lp.run_cross_validation(d.features, y, classes, folds, n_folds=config.cv,
                                                          fractions=config.fractions, seeds=config.seeds,
                                                          patient_ids=d.patient_ids)
                else:
                    entry[role] = lp.run_linear_probe(d.features, y, classes, split, fractions=config.fractions,
                                                      seeds=config.seeds, n_boot=config.n_boot,
                                                      patient_ids=d.patient_ids)
            supervised_sets = config.supervised_label_sets or sets[:1]
            if config.supervised and name in supervised_sets and not hasattr(model, "encode_image") \
                    and not getattr(model, "reads_images", False):
                entry["supervised"] = _supervised(model, data, y, classes, split, folds, config)
            section[name] = entry
            if config.plots and name == sets[0]:
                figures += _embedding_figures(data, y, classes, name)
                figures += _probe_roc(data, y, classes, split, name)
        results["linear_probe"] = section

    if "zero-shot" in config.protocols:
        results["zero_shot"] = _zero_shot(encoders, embedded, sets, config)
        if config.plots and sets and isinstance(results["zero_shot"].get(sets[0]), dict) \
                and "model" in results["zero_shot"][sets[0]]:
            figures += _zero_shot_roc(model, data, sets[0])

    if "identify" in config.protocols:
        from ecgalign.eval.identify import identify

        results["identification"] = _per_encoder(embedded, lambda d: identify(d.features, d.patient_ids))

    if "retrieval" in config.protocols:
        from ecgalign.eval.retrieval import retrieval

        if not model.has_joint_space:
            results["retrieval"] = {"skipped": "the model has no joint ECG-text space"}
        else:
            results["retrieval"] = {}
            for role, d in embedded.items():
                try:
                    results["retrieval"][role] = retrieval(encoders[role], d.joint, d.reports)
                except ValueError as exc:
                    results["retrieval"][role] = {"skipped": str(exc)}
    if "reconstruction" in config.protocols:
        results["reconstruction"] = _reconstruction(encoders, data, digitised)
    results["seconds"] = round(time.time() - started, 1)
    return results, figures


def _reconstruction(encoders: dict[str, Any], data: EvalData, digitised: bool) -> dict[str, Any]:
    """Signal recovered from printouts, for image models with a signal decoder and the digitiser path."""
    from ecgalign.eval.reconstruction import reconstruction_quality

    model = encoders["model"]
    decoder = getattr(getattr(model, "task", None), "decoder", None)
    if not digitised and not (hasattr(model, "reconstruct") and decoder is not None):
        return {"skipped": "the model recovers no signal from printouts (a signal model, or an image model "
                           "trained without the signal decoder)"}
    signals = load_signals(data, model.input_spec)
    if digitised:  # the random-init twin reads the very same printouts: one row
        return {"model": reconstruction_quality(model, signals)}
    return {role: reconstruction_quality(enc, signals) for role, enc in encoders.items()}


def _per_encoder(embedded: dict[str, EvalData], fn) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for role, d in embedded.items():
        try:
            out[role] = fn(d)
        except ValueError as exc:
            out[role] = {"skipped": str(exc)}
    return out


def _zero_shot(encoders: dict[str, Any], embedded: dict[str, EvalData], sets: list[str], config: EvalConfig) -> dict[str, Any]:
    from ecgalign.eval.zero_shot import zero_shot
    from ecgalign.text.prompts import prompt_set

    if not encoders["model"].has_joint_space:
        return {"skipped": "the model has no joint ECG-text space (no text objective)"}
    data = embedded["model"]
    if data.prompt_dataset is None:
        return {"skipped": f"no prompt sets for labels of code system {data.code_system!r}"}
    out: dict[str, Any] = {}
    for name in sets:
        try:
            prompts = prompt_set(data.prompt_dataset, name)
        except ValueError as exc:
            out[name] = {"skipped": str(exc)}
            continue
        y, classes = data.labels(name)
        out[name] = {role: zero_shot(enc, embedded[role].joint, y, classes, prompts, n_boot=config.n_boot)
                     for role, enc in encoders.items()}
    return out


def _zero_shot_roc(model, data: EvalData, label_set: str) -> list[tuple[str, str, bytes]]:
    from ecgalign.eval.plots import roc_plot
    from ecgalign.eval.zero_shot import class_embeddings
    from ecgalign.text.prompts import prompt_set

    y, classes = data.labels(label_set)
    scores = data.joint @ class_embeddings(model, prompt_set(data.prompt_dataset, label_set)).T
    png = roc_plot(y, scores, classes, title=f"zero-shot ROC, {label_set}")
    return [] if png is None else [("zero_shot", f"zero-shot ROC per class ({label_set})", png)]


def _probe_roc(data: EvalData, y: np.ndarray, classes: list[str], split: Split, label_set: str) -> list[tuple[str, str, bytes]]:
    from ecgalign.eval.linear_probe import train_linear_probe
    from ecgalign.eval.plots import roc_plot

    x = data.features
    probe = train_linear_probe(x[split.train], y[split.train], x[split.val], y[split.val], seed=0)
    png = roc_plot(y[split.test], probe.predict_proba(x[split.test]), classes,
                   title=f"linear probe ROC on test, {label_set}, 100% labels, seed 0")
    return [] if png is None else [("linear_probe", f"test ROC per class, pretrained encoder ({label_set})", png)]


def _supervised(model, data: EvalData, y: np.ndarray, classes: list[str], split: Split, folds: np.ndarray | None,
                config: EvalConfig) -> dict[str, Any]:
    """Train the reference on ``split`` (or, with ``config.cv``, once per fold, pooling the out-of-fold
    predictions as the linear probe does) and score it on test."""
    from ecgalign.data.splits import cv_fold_split
    from ecgalign.eval.metrics import bootstrap_ci, choose_thresholds, classification_metrics, macro_auroc
    from ecgalign.eval.supervised import predict, train_supervised

    spec = model.input_spec
    encoder_cfg = dict(model.task.ecg.config)
    name = encoder_cfg.pop("name")
    x = load_signals(data, spec)
    parts = [split] if not config.cv else [cv_fold_split(folds, k, config.cv) for k in range(1, config.cv + 1)]
    scores = np.zeros_like(y)
    thresholds = np.zeros_like(y)
    tested = np.zeros(len(y), dtype=bool)
    runs, fold_auroc = [], []
    for part in parts:
        net, info = train_supervised(name, encoder_cfg, spec, x[part.train], y[part.train], x[part.val], y[part.val],
                                     epochs=config.supervised_epochs)
        scores[part.test] = predict(net, x[part.test])
        thresholds[part.test] = choose_thresholds(y[part.val], predict(net, x[part.val]))
        tested[part.test] = True
        fold_auroc.append(macro_auroc(y[part.test], scores[part.test]))
        runs.append(info)
    metrics = classification_metrics(y[tested], scores[tested], thresholds=thresholds[tested], class_names=classes)
    metrics["macro_auroc_ci95"] = bootstrap_ci(y[tested], scores[tested], macro_auroc, n_boot=config.n_boot).to_dict()
    defined = [a for a in fold_auroc if a is not None]
    out = {"fraction": 1.0, "seeds": [0], "encoder": name, "params": runs[0]["params"],
           "best_epoch": runs[0]["best_epoch"] if len(runs) == 1 else [r["best_epoch"] for r in runs],
           "epochs_run": runs[0]["epochs_run"] if len(runs) == 1 else [r["epochs_run"] for r in runs],
           "test": metrics}
    if config.cv:
        out["pooled_over_folds"] = True
        out["fold_mean_macro_auroc"] = float(np.mean(defined)) if defined else None
        out["fold_sd_macro_auroc"] = float(np.std(defined, ddof=1)) if len(defined) > 1 else None
    return out


def _embedding_figures(data: EvalData, y: np.ndarray, classes: list[str], label_set: str) -> list[tuple[str, str, bytes]]:
    from ecgalign.eval.plots import embedding_plot

    out = []
    for method in ("tsne", "lda", "umap"):
        png = embedding_plot(data.features, y, classes, method, title=f"{method.upper()} of encoder features, {label_set}")
        if png is not None:
            out.append(("embeddings", f"{method.upper()} ({label_set}, single-label records)", png))
    return out
