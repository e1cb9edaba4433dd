"""The built-in protocols of the four papers, registered with ``ecgalign.eval.protocols``: linear probing (with
the supervised-from-scratch reference), zero-shot, subject identification, ECG <-> report retrieval, signal
recovered from printouts, and distribution shift (its own command)."""

from __future__ import annotations

import html
from typing import Any

import numpy as np

from ecgalign.data.errors import NotApplicableError
from ecgalign.data.splits import Split, cv_fold_split
from ecgalign.eval import linear_probe as lp
from ecgalign.eval.data import EvalData, load_signals
from ecgalign.eval.identify import identify
from ecgalign.eval.metrics import bootstrap_ci, choose_thresholds, classification_metrics, macro_auroc
from ecgalign.eval.plots import embedding_plot, roc_plot
from ecgalign.eval.protocols import Context, per_encoder, register_protocol
from ecgalign.eval.reconstruction import reconstruction_quality
from ecgalign.eval.report import ROLE, ci_text, figure_block, fmt, table
from ecgalign.eval.retrieval import retrieval
from ecgalign.eval.supervised import predict, train_supervised
from ecgalign.eval.zero_shot import class_embeddings, zero_shot
from ecgalign.text.prompts import prompt_set


# ------------------------------------------------------------------------------------------- linear probe
def _probe_rows(entry: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for role, res in entry.items():
        if role == "supervised":
            t = res["test"]
            weighted = f" ({res['class_weight']} BCE)" if res.get("class_weight") else ""
            rows.append({"encoder": ROLE[role] + weighted, "fraction": res["fraction"], "macro AUROC": t["macro_auroc"],
                         "95% CI": ci_text(t.get("macro_auroc_ci95")), "macro F1": t.get("macro_f1"),
                         "accuracy": t.get("accuracy"), "macro AUPRC": t.get("macro_auprc"),
                         "fold mean": res.get("fold_mean_macro_auroc"), "fold SD": res.get("fold_sd_macro_auroc"),
                         "note": ("pooled out-of-fold" if res.get("pooled_over_folds")
                                  else f"best epoch {res['best_epoch']} of {res['epochs_run']}")})
            continue
        for fr in res.get("fractions", []):
            if "pooled" in fr:  # cross-validation
                p = fr["pooled"]
                rows.append({"encoder": ROLE.get(role, role), "fraction": fr["fraction"],
                             "macro AUROC": p["macro_auroc"], "95% CI": ci_text(p.get("macro_auroc_ci95")),
                             "fold mean": fr["fold_mean"]["macro_auroc"], "fold SD": fr["fold_sd"]["macro_auroc"],
                             "macro F1": p.get("macro_f1"), "accuracy": p.get("accuracy"),
                             "macro AUPRC": p.get("macro_auprc"), "note": "pooled out-of-fold"})
            else:
                s = fr["seed_averaged"]
                rows.append({"encoder": ROLE.get(role, role), "fraction": fr["fraction"], "n train": fr["n_train"],
                             "macro AUROC": s["macro_auroc"], "95% CI": ci_text(s.get("macro_auroc_ci95")),
                             "seed mean": fr["mean"]["macro_auroc"], "seed SD": fr["sd"]["macro_auroc"],
                             "macro F1": s.get("macro_f1"), "accuracy": s.get("accuracy"),
                             "macro AUPRC": s.get("macro_auprc"),
                             "note": f"{len(fr.get('excluded_classes', []))} class(es) excluded"})
    return rows


def _linear_probe_section(block: dict[str, Any], figures: dict[str, list[tuple[str, bytes]]]) -> str:
    parts = [f'<p class="note">split: {html.escape(str(block.get("split")))}; sizes {fmt(block.get("sizes"))}. '
             "Macro AUROC of the seed-averaged probabilities on test, its bootstrap 95% CI, and the mean / SD "
             "over seeds; F1 and accuracy at thresholds chosen on validation.</p>"]
    for name, entry in block.items():
        if isinstance(entry, dict) and "model" in entry:
            parts.append(f"<h3>{html.escape(name)}</h3>{table(_probe_rows(entry))}")
    parts.append(figure_block(figures.get("linear_probe", [])))
    return "".join(parts)


def _supervised(ctx: Context, y: np.ndarray, classes: list[str], folds: np.ndarray | None,
                reference: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    """Train the reference on the split (or, with ``config.cv``, once per fold, pooling the out-of-fold
    predictions as the linear probe does) and score it on test."""
    config, data, spec = ctx.config, ctx.data, ctx.model.input_spec
    name, encoder_cfg = reference
    x = load_signals(data, spec)
    parts = [ctx.split] if not config.cv else [cv_fold_split(folds, k, config.cv) for k in range(1, config.cv + 1)]
    scores = np.zeros_like(y)
    thresholds = np.zeros_like(y)
    tested = np.zeros(len(y), dtype=bool)
    runs, fold_auroc = [], []
    for part in parts:
        net, info = train_supervised(name, encoder_cfg, spec, x[part.train], y[part.train], x[part.val], y[part.val],
                                     epochs=config.supervised_epochs, class_weight=config.supervised_class_weight)
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
           "class_weight": config.supervised_class_weight, "test": metrics}
    if config.cv:
        out["pooled_over_folds"] = True
        out["fold_mean_macro_auroc"] = float(np.mean(defined)) if defined else None
        out["fold_sd_macro_auroc"] = float(np.std(defined, ddof=1)) if len(defined) > 1 else None
    return out


def _embedding_figures(data: EvalData, y: np.ndarray, classes: list[str], label_set: str):
    out = []
    for method in ("tsne", "lda", "umap"):
        png = embedding_plot(data.features, y, classes, method, title=f"{method.upper()} of encoder features, {label_set}")
        if png is not None:
            out.append(("embeddings", f"{method.upper()} ({label_set}, single-label records)", png))
    return out


def _probe_roc(data: EvalData, y: np.ndarray, classes: list[str], split: Split, label_set: str):
    x = data.features
    probe = lp.train_linear_probe(x[split.train], y[split.train], x[split.val], y[split.val], seed=0)
    png = roc_plot(y[split.test], probe.predict_proba(x[split.test]), classes,
                   title=f"linear probe ROC on test, {label_set}, 100% labels, seed 0")
    return [] if png is None else [("linear_probe", f"test ROC per class, pretrained encoder ({label_set})", png)]


@register_protocol("linear-probe", key="linear_probe", title="Linear probing", section=_linear_probe_section,
                   summary="Linear probing at label fractions, with random-init and supervised references.",
                   options=("fractions", "seeds", "cv", "supervised", "class_weight"))
def linear_probe_protocol(ctx: Context) -> dict[str, Any]:
    config, data = ctx.config, ctx.data
    section: dict[str, Any] = {"split": ctx.split_rule if not config.cv else f"{config.cv}-fold cross-validation "
                               "(test fold k, validation fold k-1)", "sizes": ctx.split.sizes()}
    reference = ctx.model.supervised_reference()
    for name in ctx.sets:
        y, classes = data.labels(name)
        folds = None
        if config.cv:  # the dataset's own folds, else label-balanced patient-grouped ones
            folds = data.folds if data.folds is not None else lp.make_folds(y, config.cv, seed=0,
                                                                           patient_ids=data.patient_ids)
        entry = {}
        for role, d in ctx.embedded.items():
            if config.cv:
                entry[role] = lp.run_cross_validation(d.features, y, classes, folds, n_folds=config.cv,
                                                      fractions=config.fractions, seeds=config.seeds,
                                                      n_boot=config.n_boot, patient_ids=d.patient_ids)
            else:
                entry[role] = lp.run_linear_probe(d.features, y, classes, ctx.split, fractions=config.fractions,
                                                  seeds=config.seeds, n_boot=config.n_boot,
                                                  patient_ids=d.patient_ids)
        supervised_sets = config.supervised_label_sets or ctx.sets[:1]
        if config.supervised and name in supervised_sets and reference is not None:
            entry["supervised"] = _supervised(ctx, y, classes, folds, reference)
        section[name] = entry
        if config.plots and name == ctx.sets[0]:
            ctx.figures.extend(_embedding_figures(data, y, classes, name))
            ctx.figures.extend(_probe_roc(data, y, classes, ctx.split, name))
    return section


# ------------------------------------------------------------------------------------------- zero-shot
def _zero_shot_section(block: dict[str, Any], figures: dict[str, list[tuple[str, bytes]]]) -> str:
    rows = []
    for name, entry in block.items():
        if "skipped" in entry:
            rows.append({"label set": name, "note": entry["skipped"]})
            continue
        for role, m in entry.items():
            rows.append({"label set": name, "encoder": ROLE.get(role, role), "macro AUROC": m["macro_auroc"],
                         "95% CI": ci_text(m.get("macro_auroc_ci95")), "macro AUPRC": m.get("macro_auprc"),
                         "top-1 macro F1": m.get("top1_macro_f1"), "top-1 accuracy": m.get("top1_accuracy")})
    return ('<p class="note">cosine similarity to the mean prompt embedding of each class; F1 / accuracy from the '
            "top-1 class (no threshold tuned).</p>" + table(rows) + figure_block(figures.get("zero_shot", [])))


@register_protocol("zero-shot", key="zero_shot", title="Zero-shot", section=_zero_shot_section,
                   summary="Zero-shot classification with the packaged clinical prompt sets.", needs=("joint_space",))
def zero_shot_protocol(ctx: Context) -> dict[str, Any]:
    data = ctx.data
    if data.prompt_dataset is None:
        raise NotApplicableError(f"no prompt sets for labels of code system {data.code_system!r}")
    out: dict[str, Any] = {}
    for name in ctx.sets:
        try:
            prompts = prompt_set(data.prompt_dataset, name)
        except ValueError as exc:  # no prompt set written for this label set
            out[name] = {"skipped": str(exc)}
            continue
        y, classes = data.labels(name)
        out[name] = {role: zero_shot(enc, ctx.embedded[role].joint, y, classes, prompts, n_boot=ctx.config.n_boot)
                     for role, enc in ctx.encoders.items()}
    first = ctx.sets[0] if ctx.sets else None
    if ctx.config.plots and first is not None and "model" in out.get(first, {}):
        y, classes = data.labels(first)
        scores = data.joint @ class_embeddings(ctx.model, prompt_set(data.prompt_dataset, first)).T
        png = roc_plot(y, scores, classes, title=f"zero-shot ROC, {first}")
        if png is not None:
            ctx.figures.append(("zero_shot", f"zero-shot ROC per class ({first})", png))
    return out


# ------------------------------------------------------------------------------------------- identify, retrieval
def _per_role_section(block: dict[str, Any], figures: dict[str, list[tuple[str, bytes]]]) -> str:
    return table([{"encoder": ROLE.get(role, role), **m} for role, m in block.items()])


@register_protocol("identify", key="identification", title="Subject identification", section=_per_role_section,
                   summary="One-shot subject identification on records of the same patient.")
def identify_protocol(ctx: Context) -> dict[str, Any]:
    return per_encoder(ctx, lambda role, d: identify(d.features, d.patient_ids))


@register_protocol("retrieval", key="retrieval", title="ECG ↔ report retrieval", section=_per_role_section,
                   summary="ECG <-> report retrieval, recall@1/5/10 both ways.", needs=("joint_space",))
def retrieval_protocol(ctx: Context) -> dict[str, Any]:
    return per_encoder(ctx, lambda role, d: retrieval(ctx.encoders[role], d.joint, d.reports))


# ------------------------------------------------------------------------------------------- reconstruction
def _reconstruction_section(block: dict[str, Any], figures: dict[str, list[tuple[str, bytes]]]) -> str:
    rows = []
    for role, m in block.items():
        row = {"encoder": ROLE.get(role, role), "scored": m["scored"],
               "SNR mean dB": m["snr_db"]["overall"]["mean_db"], "SNR median dB": m["snr_db"]["overall"]["median_db"]}
        row.update({f"{lead} dB": v["mean_db"] for lead, v in m["snr_db"]["per_lead"].items()})
        lc = m["lead_consistency_db"]
        if "skipped" not in lc:
            row.update({f"consistency {lead} dB": v["mean_db"] for lead, v in lc["per_lead"].items()})
        rows.append(row)
    ref = next(iter(block.values()))["reference_lead_consistency_db"]["per_lead"]
    return ('<p class="note">per-lead SNR of the signal read back from each printout against the record (no '
            "alignment); consistency: SNR of the Einthoven / Goldberger limb leads derived from the read-back I and "
            "II against its own III, aVR, aVL, aVF (the recorded signals: "
            + ", ".join(f"{k} {fmt(v['mean_db'], 1)}" for k, v in ref.items()) + " dB).</p>" + table(rows))


@register_protocol("reconstruction", key="reconstruction", title="Signal from printouts",
                   section=_reconstruction_section, needs=("reconstruction",),
                   summary="Signal recovered from printouts (image models with a decoder, --via-digitizer): "
                           "per-lead SNR and limb-lead consistency.")
def reconstruction_protocol(ctx: Context) -> dict[str, Any]:
    signals = load_signals(ctx.data, ctx.model.input_spec)
    if ctx.model.input_kind == "digitized":  # the random-init twin reads the very same printouts: one row
        return {"model": reconstruction_quality(ctx.model, signals)}
    return {role: reconstruction_quality(enc, signals) for role, enc in ctx.encoders.items()}


# ------------------------------------------------------------------------------------------- distribution shift
def _shift_section(block: dict[str, Any], figures: dict[str, list[tuple[str, bytes]]]) -> str:
    rows = [{"test": label, "records": block[key]["records"], "macro AUROC": block[key]["macro_auroc"],
             "95% CI": ci_text(block[key].get("macro_auroc_ci95")), "macro F1": block[key].get("macro_f1")}
            for key, label in (("in_domain_test", "source test split"), ("transfer_test", "target dataset"))
            if block.get(key)]  # no in-domain test when the probe was selected on a chosen fold (--val-fold)
    return (f'<p class="note">{fmt(block["source_dataset"]["domain"])} → {fmt(block["target_dataset"]["domain"])}, '
            f'shared classes {fmt(", ".join(block["shared_classes"]))}</p>' + table(rows))


register_protocol("shift", key="shift", title="Distribution shift", section=_shift_section, in_all=False,
                  summary="Distribution shift: probe trained on SOURCE, tested on TARGET over MERIT's shared label "
                          "space.")(None)
