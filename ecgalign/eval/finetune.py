"""Full fine-tuning and the echo-derived-label protocol (EEE, seed 003_74d6fba967a030e7, Sec. 4.3: structural
disease predicted from the ECG alone).

``fine-tune``: the evaluated encoder (and its random-init twin, which is the supervised-from-scratch model of
the same architecture) trained end to end with a linear head on the split's training part (BCE, AdamW), the
epoch chosen by validation macro AUROC only, scored once on test with a bootstrap CI.

``echo-labels``: when ``echo-labels.csv`` lies beside the evaluated ECG store (``ecgalign data synth-echo``
writes it beside ``ecg/``), its per-study labels (EF < 40 %, LVH, dilated LV) are joined to the ECG records
(``record_id`` = ``s<study_id>``) and predicted from the ECG alone by linear probe and by fine-tuning, with the
LDA plot of the encoder features (the paper's figure). A patient has several studies there, so its CIs are
a cluster bootstrap over test patients, not over ECGs.
"""

from __future__ import annotations

import copy
import html
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ecgalign.data.errors import InputError, NotApplicableError
from ecgalign.data.splits import Split
from ecgalign.eval import linear_probe as lp
from ecgalign.eval.data import EvalData, load_signals
from ecgalign.eval.metrics import bootstrap_ci, choose_thresholds, classification_metrics, macro_auroc
from ecgalign.eval.plots import embedding_plot
from ecgalign.eval.protocols import Context, register_protocol
from ecgalign.eval.report import ROLE, ci_text, figure_block, table
from ecgalign.eval.supervised import predict, train_with_head

ECHO_LABELS = {"ef_lt_40": "EF<40%", "lvh": "LVH (echo)", "dilated_lv": "dilated LV"}  # csv column -> class
FINETUNED = {"model": "pretrained, fine-tuned", "random_init": "random init, fine-tuned (= supervised from scratch)"}


def fine_tune(encoder: nn.Module, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, *,
              epochs: int = 30, patience: int = 5, lr: float = 3e-4, weight_decay: float = 1e-2, batch_size: int = 32,
              seed: int = 0, class_weight: str | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """``encoder`` (pooled output (B, D), ``embed_dim``) + a linear head trained end to end on (x_train (N, L, S),
    y_train (N, C)); returns the model of the best validation epoch (macro AUROC) and what happened.
    ``class_weight="balanced"`` weighs each class's positives by negatives / positives in the BCE."""
    torch.manual_seed(seed)
    return train_with_head(encoder, x_train, y_train, x_val, y_val, epochs=epochs, patience=patience, lr=lr,
                           weight_decay=weight_decay, batch_size=batch_size,
                           generator=torch.Generator().manual_seed(seed), class_weight=class_weight)


def _trainable(encoder) -> nn.Module:
    module = getattr(encoder, "trainable_encoder", None)
    if module is None:
        raise NotApplicableError(f"{getattr(encoder, 'name', 'the model')} has no trainable signal encoder "
                                 "(fine-tuning needs a signal model)")
    return module()


def fine_tune_scores(ctx: Context, y: np.ndarray, classes: list[str], ci_by_patient: bool = False) -> dict[str, Any]:
    """Fine-tune each encoder of ``ctx`` on ``y`` over ``ctx.split``; test metrics with a bootstrap CI (over
    test patients with ``ci_by_patient`` when the data carry patient ids)."""
    split, config = ctx.split, ctx.config
    patients = ctx.data.patient_ids if ci_by_patient else None
    groups = None if patients is None else np.asarray(patients, dtype=object)[split.test]
    x = load_signals(ctx.data, ctx.model.input_spec)
    out: dict[str, Any] = {}
    for role, encoder in ctx.encoders.items():
        try:
            module = _trainable(encoder)
        except NotApplicableError as exc:
            out[role] = {"skipped": str(exc)}
            continue
        net, info = fine_tune(module, x[split.train], y[split.train], x[split.val], y[split.val],
                              epochs=config.supervised_epochs, class_weight=config.supervised_class_weight)
        scores = predict(net, x[split.test])
        metrics = classification_metrics(y[split.test], scores,
                                         thresholds=choose_thresholds(y[split.val], predict(net, x[split.val])),
                                         class_names=classes)
        metrics["macro_auroc_ci95"] = bootstrap_ci(y[split.test], scores, macro_auroc, n_boot=config.n_boot,
                                                   groups=groups).to_dict()
        out[role] = {**info, "test": lp._json_ready(metrics)}
    return out


def _fine_tune_rows(entry: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for role, res in entry.items():
        if "skipped" in res:
            rows.append({"encoder": FINETUNED.get(role, role), "note": res["skipped"]})
            continue
        t = res["test"]
        rows.append({"encoder": FINETUNED.get(role, role), "macro AUROC": t["macro_auroc"],
                     "95% CI": ci_text(t.get("macro_auroc_ci95")), "macro F1": t.get("macro_f1"),
                     "note": f"best epoch {res['best_epoch']} of {res['epochs_run']}"
                             + (f"; {res['class_weight']} BCE" if res.get("class_weight") else "")})
    return rows


def _fine_tune_section(block: dict[str, Any], figures: dict[str, list[tuple[str, bytes]]]) -> str:
    note = (f'<p class="note">split: {html.escape(str(block.get("split")))}; encoder + linear head trained end to '
            "end, epoch chosen on validation macro AUROC; test macro AUROC with its bootstrap 95% CI.</p>")
    parts = [note]
    for name, entry in block.items():
        if isinstance(entry, dict) and "model" in entry:
            parts.append(f"<h3>{html.escape(name)}</h3>{table(_fine_tune_rows(entry))}")
    return "".join(parts)


@register_protocol("fine-tune", key="fine_tune", title="Full fine-tuning", section=_fine_tune_section,
                   summary="Encoder + linear head trained end to end per label set (selection on validation); "
                           "the random-init row is supervised from scratch.", options=("supervised", "class_weight"),
                   in_all=False)
def fine_tune_protocol(ctx: Context) -> dict[str, Any]:
    section: dict[str, Any] = {"split": ctx.split_rule, "sizes": ctx.split.sizes()}
    for name in ctx.sets:
        y, classes = ctx.data.labels(name)
        section[name] = fine_tune_scores(ctx, y, classes)
    return section


# ------------------------------------------------------------------------------------------- echo-derived labels
def echo_labels_csv(data: EvalData) -> Path:
    """``echo-labels.csv`` in or beside the evaluated dataset folder."""
    root = Path(data.path)
    for candidate in (root / "echo-labels.csv", root.parent / "echo-labels.csv"):
        if candidate.is_file():
            return candidate
    raise NotApplicableError(f"no echo-labels.csv in or beside {root} (ecgalign data synth-echo writes one beside "
                             "its ecg/ store)")


def echo_labels(data: EvalData, path: Path) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Multi-hot (N', C) echo-derived labels, their class names, and the rows of ``data`` (N') that have them."""
    table_ = pd.read_csv(path)
    missing = [c for c in ("study_id", *ECHO_LABELS) if c not in table_.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {missing}; expected study_id and {list(ECHO_LABELS)}")
    by_record = {f"s{int(s)}": row for s, row in zip(table_.study_id, table_[list(ECHO_LABELS)].to_numpy())}
    rows = [i for i, rid in enumerate(data.meta["record_id"].astype(str)) if rid in by_record]
    if not rows:
        raise NotApplicableError(f"{path}: no study matches a record of {data.path} (record ids s<study_id>)")
    y = np.stack([by_record[str(data.meta["record_id"].iloc[i])] for i in rows]).astype(np.float32)
    return y, list(ECHO_LABELS.values()), np.asarray(rows, dtype=np.int64)


def _restrict(split: Split, rows: np.ndarray) -> Split:
    """``split`` over the subset ``rows`` of the dataset, in subset positions."""
    where = {int(r): k for k, r in enumerate(rows)}
    parts = [np.asarray([where[int(i)] for i in part if int(i) in where], dtype=np.int64)
             for part in (split.train, split.val, split.test)]
    return Split(*parts)


def _echo_section(block: dict[str, Any], figures: dict[str, list[tuple[str, bytes]]]) -> str:
    probe_rows = []
    for role, res in block["linear_probe"].items():
        for fr in res.get("fractions", []):
            s = fr["seed_averaged"]
            probe_rows.append({"encoder": ROLE.get(role, role), "fraction": fr["fraction"],
                               "macro AUROC": s["macro_auroc"], "95% CI": ci_text(s.get("macro_auroc_ci95")),
                               **{f"AUROC {c}": v for c, v in s.get("per_class_auroc", {}).items()}})
    return (f'<p class="note">labels: {html.escape(block["labels"])}; {block["records"]} records with a label; '
            f'split sizes {block["sizes"]}.</p><h3>Linear probe</h3>{table(probe_rows)}'
            f'<h3>Fine-tuning</h3>{table(_fine_tune_rows(block["fine_tune"]))}'
            + figure_block(figures.get("echo_labels", [])))


@register_protocol("echo-labels", key="echo_labels", title="Echo-derived labels from the ECG alone",
                   section=_echo_section, options=("fractions", "seeds", "supervised", "class_weight"),
                   summary="EF<40%, LVH and dilated LV (echo-labels.csv beside the store) by linear probe and "
                           "fine-tuning, with the LDA plot (EEE).")
def echo_labels_protocol(ctx: Context) -> dict[str, Any]:
    path = echo_labels_csv(ctx.data)
    y, classes, rows = echo_labels(ctx.data, path)
    split = _restrict(ctx.split, rows)
    if min(len(split.train), len(split.val), len(split.test)) == 0:
        raise NotApplicableError(f"too few labelled records for a train / validation / test split: {split.sizes()}")
    config = ctx.config
    out: dict[str, Any] = {"labels": str(path), "classes": classes, "records": len(rows), "sizes": split.sizes(),
                           "linear_probe": {}}
    for role, d in ctx.embedded.items():
        patients = None if d.patient_ids is None else d.patient_ids[rows]
        out["linear_probe"][role] = lp.run_linear_probe(d.features[rows], y, classes, split,
                                                        fractions=config.fractions, seeds=config.seeds,
                                                        n_boot=config.n_boot, patient_ids=patients,
                                                        ci_by_patient=patients is not None)
    sub = copy.copy(ctx)
    sub.embedded = {role: _subset(d, rows) for role, d in ctx.embedded.items()}
    sub.split = split
    out["fine_tune"] = fine_tune_scores(sub, y, classes, ci_by_patient=True) if config.supervised else {}
    if config.plots:
        none = (y.sum(axis=1) == 0).astype(np.float32)[:, None]  # studies without any of the findings
        png = embedding_plot(ctx.data.features[rows], np.hstack([y, none]), [*classes, "no echo finding"], "lda",
                             title="LDA of encoder features, echo labels")
        if png is not None:
            ctx.figures.append(("echo_labels", "LDA of the pretrained encoder's features (single-label records)", png))
    return out


def _subset(data: EvalData, rows: np.ndarray) -> EvalData:
    out = copy.copy(data)
    out.meta = data.meta.iloc[rows].reset_index(drop=True)
    out.features = None if data.features is None else data.features[rows]
    out.joint = None if data.joint is None else data.joint[rows]
    return out
