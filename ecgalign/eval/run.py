"""``evaluate``: the protocols of all four papers on one checkpoint and one dataset, beside a randomly
initialised encoder of the same architecture (and, for linear probing, a supervised-from-scratch reference),
into one results dict and the figures of its HTML report.

Splits: ``cv`` > 0 runs k-fold cross-validation on the dataset's folds (PTB-XL ``strat_fold``; test k,
validation k-1), otherwise the official split (folds 1-8 / 9 / 10) when the dataset has folds, else a
seeded patient-level 80/10/10 split. Model selection uses the validation part only.

External validation (``train_data``): the probe (and the supervised reference) is trained and selected on
another dataset and tested on the whole of ``data_path``: validation is ``val_data``, or fold ``val_fold`` of the
training dataset, or its own validation part (``split_of``), whose other parts all train. No record or patient
of the test dataset may be in the others (``check_disjoint``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ecgalign._version import __version__
from ecgalign.data.errors import InputError, NotApplicableError
from ecgalign.data.splits import Split, fold_split, patient_split
from ecgalign.eval import linear_probe as lp
from ecgalign.eval.data import EvalData, attach_embeddings, check_disjoint, concat_eval_data, load_eval_data
from ecgalign.eval.echo import is_echo_store, paired_ecg_store
from ecgalign.eval.protocols import Context, get_protocol, list_protocols
from ecgalign.eval.supervised import CLASS_WEIGHTS


class _Eta:
    """'(k/n, 12 s so far, about 30 s left)': the time left estimated from the mean of the steps done."""

    def __init__(self, total: int):
        self.total, self.finished, self.t0 = total, 0, time.time()

    def before(self) -> str:
        spent = time.time() - self.t0
        left = "" if not self.finished else f", about {spent / self.finished * (self.total - self.finished):.0f} s left"
        return f"({self.finished + 1}/{self.total}, {spent:.0f} s so far{left})"

    def done(self) -> None:
        self.finished += 1


def default_protocols() -> tuple[str, ...]:
    """Every registered protocol that ``eval all`` runs, in registration order."""
    return tuple(name for name in list_protocols() if get_protocol(name).in_all)


# the protocols that train on the split, and so on --train-data under external validation
EXTERNAL_PROTOCOLS = ("linear-probe",)


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
    supervised_class_weight: str | None = None  # None or "balanced": BCE positives weighed by negatives / positives
    supervised_label_sets: Sequence[str] | None = None  # None: the first evaluated label set only
    plots: bool = True
    batch_size: int = 256
    generation: dict[str, Any] = field(default_factory=dict)  # GenerationConfig fields for "generate"
    train_data: str | None = None  # external validation: train and select the probe here, test on the dataset
    val_data: str | None = None  # ... selecting on this dataset
    val_fold: int | None = None  # ... or on this fold of train_data
    echo: str | None = None  # an echo store for echo-retrieval / echo-shift (default: --data when it is one)
    echo_part: str = "test"  # ... its held-out (test) patients, or "all" of it (a store the run never saw)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        runnable = [p for p in list_protocols() if get_protocol(p).run is not None]
        unknown = [p for p in self.protocols if p not in runnable]
        if unknown:
            raise InputError(f"unknown protocol(s) {unknown}; expected some of {runnable}")
        if any(not 0 < f <= 1 for f in self.fractions):
            raise InputError(f"label fractions must lie in (0, 1], got {list(self.fractions)}")
        if (self.val_data or self.val_fold is not None) and not self.train_data:
            raise InputError("--val-data / --val-fold choose the validation part of --train-data; pass --train-data")
        if self.val_data and self.val_fold is not None:
            raise InputError("pass either --val-data or --val-fold, not both")
        if self.supervised_class_weight not in CLASS_WEIGHTS:
            raise InputError(f"--class-weight must be one of {[w for w in CLASS_WEIGHTS if w]} or left out, "
                             f"got {self.supervised_class_weight!r}")
        if self.echo_part not in ("test", "all"):
            raise InputError(f"--echo-part must be 'test' or 'all', got {self.echo_part!r}")
        if self.train_data and self.cv:
            raise InputError("--cv cross-validates within one dataset; it does not combine with --train-data")


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


def external_split(train: EvalData, val: EvalData | None, val_fold: int | None) -> tuple[Split, str]:
    """Train / validation rows of ``train`` (and ``val``), as positions in ``concat([train, val?])``; test empty."""
    n = len(train.meta)
    if val is not None:
        return (Split(np.arange(n), np.arange(n, n + len(val.meta)), np.array([], dtype=np.int64)),
                f"trained on {train.path}, selected on {val.path}")
    if val_fold is not None:
        folds = train.folds
        if folds is None:
            raise InputError(f"{train.path}: --val-fold needs a dataset with folds for every record; pass --val-data")
        if val_fold not in set(folds.tolist()):
            raise InputError(f"{train.path}: no fold {val_fold}; its folds are {sorted(set(folds.tolist()))}")
        return (Split(np.flatnonzero(folds != val_fold), np.flatnonzero(folds == val_fold), np.array([], dtype=np.int64)),
                f"trained on {train.path} folds other than {val_fold}, selected on fold {val_fold}")
    own, rule = split_of(train)
    return (Split(np.sort(np.concatenate([own.train, own.test])), own.val, np.array([], dtype=np.int64)),
            f"trained and selected on {train.path} ({rule}; its test part also trains)")


def _external(embedded: dict[str, EvalData], extra: dict[str, list[EvalData]], config: EvalConfig
              ) -> tuple[dict[str, EvalData], Split, str]:
    """Join each role's training (+ validation) data with the test data; the split that trains on the former."""
    test = embedded["model"]
    train, *val = extra["model"]
    check_disjoint(test, *extra["model"])
    split, rule = external_split(train, val[0] if val else None, config.val_fold)
    first = sum(len(p.meta) for p in extra["model"])
    split = Split(split.train, split.val, np.arange(first, first + len(test.meta)))
    joined = {role: concat_eval_data([*extra[role], data]) for role, data in embedded.items()}
    return joined, split, f"{rule}; tested on all of {test.path} (external validation)"


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
             fmt: str | None = None, progress=None, log: Callable[[str], None] | None = None
             ) -> tuple[dict[str, Any], list[tuple[str, str, bytes]]]:
    """Results (JSON-ready, no NaN) and figures ``(section, caption, png)`` for ``model`` (any
    ``ecgalign.hub.Embedder``) on ``data_path``. ``log`` receives one line per embedding and protocol step,
    with the time spent and an estimate of what is left."""
    config = config or EvalConfig()
    started = time.time()
    log = log or (lambda line: None)
    if config.echo and not is_echo_store(config.echo):
        raise InputError(f"{config.echo}: not an echo store (make one with `ecgalign echo extract`)")
    if is_echo_store(data_path):  # the ECG protocols read its paired 12-lead store, the echo ones the store
        config = dataclasses.replace(config, echo=config.echo or str(data_path))
        data_path = paired_ecg_store(data_path)
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
    sources = [load_eval_data(p, fmt) for p in (config.train_data, config.val_data) if p]
    if sources:
        check_disjoint(base, *sources)  # metadata only: fails before any embedding
    embedded: dict[str, EvalData] = {}
    extra: dict[str, list[EvalData]] = {}
    steps = [(role, d) for role in encoders for d in (*sources, base)]
    eta = _Eta(len(steps))
    for role, encoder in encoders.items():
        cache = cache_dir if role == "model" else None
        parts = []
        for source in (*sources, base):
            log(f"embedding {source.name} with the {role.replace('_', '-')} encoder {eta.before()}")
            parts.append(attach_embeddings(dataclasses.replace(source, meta=source.meta.copy()), encoder, cache,
                                           config.batch_size, progress))
            eta.done()
        *extra[role], embedded[role] = parts
    data = embedded["model"]
    results.update(model.eval_extras())
    results["dataset"].update(embedded_records=int(len(data.meta)), skipped=len(data.skipped),
                              skipped_records=data.skipped[:20])
    split, split_rule = split_of(data)
    lp.check_splits(split.train, split.val, split.test, data.patient_ids)
    ctx = probe_ctx = Context(model, encoders, embedded, sets, split, split_rule, config)
    if sources:  # the probe trains on the other datasets; every other protocol sees the test dataset alone
        results["training_data"] = [{"name": s.name, "path": s.path, "records": int(len(s.meta)),
                                     "skipped": len(s.skipped)} for s in extra["model"]]
        joined, split, split_rule = _external(embedded, extra, config)
        lp.check_splits(split.train, split.val, split.test, joined["model"].patient_ids)
        probe_ctx = Context(model, encoders, joined, sets, split, split_rule, config, ctx.figures)
    runnable = [name for name in config.protocols if get_protocol(name).unmet_need(model) is None]
    eta = _Eta(len(runnable))
    for name in config.protocols:
        protocol = get_protocol(name)
        why = protocol.unmet_need(model)
        if why is not None:
            results[protocol.key] = {"skipped": why}
            continue
        log(f"protocol {name} {eta.before()}")
        try:
            results[protocol.key] = protocol.run(probe_ctx if name in EXTERNAL_PROTOCOLS else ctx)
        except NotApplicableError as exc:
            results[protocol.key] = {"skipped": str(exc)}
        eta.done()
    results["seconds"] = round(time.time() - started, 1)
    return results, ctx.figures
