"""``results.json`` + a self-contained ``report.html`` (inline CSS, figures as base64 PNG, no external
asset) for an evaluation run."""

from __future__ import annotations

import base64
import html
import json
import os
from pathlib import Path
from typing import Any

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
h3{font-size:1em;margin-top:1.4em}table{border-collapse:collapse;margin:.6em 0;font-size:.85em}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:right}th{background:#f4f4f4}
td:first-child,th:first-child{text-align:left}.note{color:#666;font-size:.85em}
.figs{display:flex;flex-wrap:wrap;gap:1em}.figs figure{margin:0}.figs figcaption{font-size:.8em;color:#555}
code{background:#f4f4f4;padding:0 .3em}
"""


def fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, (int, float)) or v is None for v in value):
        return f"[{fmt(value[0], digits)}, {fmt(value[1], digits)}]"
    return html.escape(str(value))


def table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    if not rows:
        return '<p class="note">no rows</p>'
    columns = columns or list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{fmt(r.get(c))}</td>" for c in columns) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def figure_block(figures: list[tuple[str, bytes]]) -> str:
    items = []
    for caption, png in figures:
        data = base64.b64encode(png).decode("ascii")
        items.append(f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}">'
                     f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    return f'<div class="figs">{"".join(items)}</div>' if items else ""


def render(title: str, sections: list[tuple[str, str]], meta: dict[str, Any], preamble: str = "") -> str:
    """A whole page: title, ``preamble`` (HTML), a table of ``meta``, then each (heading, HTML) section."""
    meta_rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{fmt(v)}</td></tr>" for k, v in meta.items())
    meta_table = f"<table>{meta_rows}</table>" if meta_rows else ""
    body = "".join(f"<h2>{html.escape(name)}</h2>{content}" for name, content in sections)
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>{preamble}{meta_table}{body}"
            "</body></html>")


def write_outputs(out_dir: str | Path, results: dict[str, Any], report_html: str) -> dict[str, str]:
    """Atomically write ``results.json`` (strict JSON: a NaN anywhere is a bug and raises) and ``report.html``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"results": out / "results.json", "report": out / "report.html"}
    for key, text in (("results", json.dumps(results, indent=2, allow_nan=False)), ("report", report_html)):
        tmp = paths[key].with_name(f".{paths[key].name}.tmp{os.getpid()}")
        tmp.write_text(text)
        os.replace(tmp, paths[key])
    return {k: str(v) for k, v in paths.items()}


_ROLE = {"model": "pretrained (frozen)", "random_init": "random init (frozen)", "supervised": "supervised from scratch"}


def _ci_text(ci: Any) -> Any:
    if isinstance(ci, dict):
        return None if ci.get("low") is None else [ci["low"], ci["high"]]
    return ci


def _probe_rows(entry: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for role, res in entry.items():
        if role == "supervised":
            t = res["test"]
            rows.append({"encoder": _ROLE[role], "fraction": res["fraction"], "macro AUROC": t["macro_auroc"],
                         "95% CI": _ci_text(t.get("macro_auroc_ci95")), "macro F1": t.get("macro_f1"),
                         "accuracy": t.get("accuracy"), "macro AUPRC": t.get("macro_auprc"),
                         "fold mean": res.get("fold_mean_macro_auroc"), "fold SD": res.get("fold_sd_macro_auroc"),
                         "note": ("pooled out-of-fold" if res.get("pooled_over_folds")
                                  else f"best epoch {res['best_epoch']} of {res['epochs_run']}")})
            continue
        for fr in res.get("fractions", []):
            if "pooled" in fr:  # cross-validation
                p = fr["pooled"]
                rows.append({"encoder": _ROLE.get(role, role), "fraction": fr["fraction"],
                             "macro AUROC": p["macro_auroc"], "95% CI": _ci_text(p.get("macro_auroc_ci95")),
                             "fold mean": fr["fold_mean"]["macro_auroc"], "fold SD": fr["fold_sd"]["macro_auroc"],
                             "macro F1": p.get("macro_f1"), "accuracy": p.get("accuracy"),
                             "macro AUPRC": p.get("macro_auprc"), "note": "pooled out-of-fold"})
            else:
                s = fr["seed_averaged"]
                rows.append({"encoder": _ROLE.get(role, role), "fraction": fr["fraction"], "n train": fr["n_train"],
                             "macro AUROC": s["macro_auroc"], "95% CI": _ci_text(s.get("macro_auroc_ci95")),
                             "seed mean": fr["mean"]["macro_auroc"], "seed SD": fr["sd"]["macro_auroc"],
                             "macro F1": s.get("macro_f1"), "accuracy": s.get("accuracy"),
                             "macro AUPRC": s.get("macro_auprc"),
                             "note": f"{len(fr.get('excluded_classes', []))} class(es) excluded"})
    return rows


def build_report(results: dict[str, Any], figures: list[tuple[str, str, bytes]]) -> str:
    """The HTML page of an ``ecgalign.eval.run.evaluate`` result."""
    sections, meta = _sections(results, figures)
    ds, ck = results.get("dataset", {}), results.get("checkpoint", {})
    return render(f"ecgalign evaluation: {ck.get('recipe')} on {ds.get('name')}", sections, meta)


def build_combined_report(title: str, parts: list[tuple[str, dict[str, Any], list[tuple[str, str, bytes]]]],
                          preamble: str = "") -> str:
    """One page for several evaluations (e.g. the demo's synthetic and PTB-XL runs), each under its heading."""
    sections: list[tuple[str, str]] = []
    for heading, results, figures in parts:
        inner, meta = _sections(results, figures)
        meta_rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{fmt(v)}</td></tr>" for k, v in meta.items())
        body = "".join(f"<h3>{html.escape(name)}</h3>{content}" for name, content in inner)
        sections.append((heading, f"<table>{meta_rows}</table>{body}"))
    return render(title, sections, {}, preamble)


def _sections(results: dict[str, Any], figures: list[tuple[str, str, bytes]]) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    by_section: dict[str, list[tuple[str, bytes]]] = {}
    for section, caption, png in figures:
        by_section.setdefault(section, []).append((caption, png))
    sections: list[tuple[str, str]] = []
    if "linear_probe" in results:
        lp = results["linear_probe"]
        parts = [f'<p class="note">split: {html.escape(str(lp.get("split")))}; sizes {fmt(lp.get("sizes"))}. '
                 "Macro AUROC of the seed-averaged probabilities on test, its bootstrap 95% CI, and the mean / SD "
                 "over seeds; F1 and accuracy at thresholds chosen on validation.</p>"]
        for name, entry in lp.items():
            if isinstance(entry, dict) and "model" in entry:
                parts.append(f"<h3>{html.escape(name)}</h3>{table(_probe_rows(entry))}")
        parts.append(figure_block(by_section.get("linear_probe", [])))
        sections.append(("Linear probing", "".join(parts)))
    if "zero_shot" in results:
        zs = results["zero_shot"]
        if "skipped" in zs:
            sections.append(("Zero-shot", f'<p class="note">skipped: {html.escape(zs["skipped"])}</p>'))
        else:
            rows = []
            for name, entry in zs.items():
                if "skipped" in entry:
                    rows.append({"label set": name, "note": entry["skipped"]})
                    continue
                for role, m in entry.items():
                    rows.append({"label set": name, "encoder": _ROLE.get(role, role), "macro AUROC": m["macro_auroc"],
                                 "95% CI": _ci_text(m.get("macro_auroc_ci95")), "macro AUPRC": m.get("macro_auprc"),
                                 "top-1 macro F1": m.get("top1_macro_f1"), "top-1 accuracy": m.get("top1_accuracy")})
            sections.append(("Zero-shot", '<p class="note">cosine similarity to the mean prompt embedding of each '
                             "class; F1 / accuracy from the top-1 class (no threshold tuned).</p>" + table(rows)
                             + figure_block(by_section.get("zero_shot", []))))
    for key, title in (("identification", "Subject identification"), ("retrieval", "ECG ↔ report retrieval")):
        if key in results:
            block = results[key]
            if "skipped" in block:
                sections.append((title, f'<p class="note">skipped: {html.escape(block["skipped"])}</p>'))
                continue
            rows = [{"encoder": _ROLE.get(role, role), **m} for role, m in block.items()]
            sections.append((title, table(rows)))
    if "reconstruction" in results:
        rc = results["reconstruction"]
        if "skipped" in rc:
            sections.append(("Signal from printouts", f'<p class="note">skipped: {html.escape(rc["skipped"])}</p>'))
        else:
            rows = []
            for role, m in rc.items():
                row = {"encoder": _ROLE.get(role, role), "scored": m["scored"],
                       "SNR mean dB": m["snr_db"]["overall"]["mean_db"],
                       "SNR median dB": m["snr_db"]["overall"]["median_db"]}
                row.update({f"{lead} dB": v["mean_db"] for lead, v in m["snr_db"]["per_lead"].items()})
                lc = m["lead_consistency_db"]
                if "skipped" not in lc:
                    row.update({f"consistency {lead} dB": v["mean_db"] for lead, v in lc["per_lead"].items()})
                rows.append(row)
            ref = next(iter(rc.values()))["reference_lead_consistency_db"]["per_lead"]
            sections.append(("Signal from printouts", '<p class="note">per-lead SNR of the signal read back from '
                             "each printout against the record (no alignment); consistency: SNR of the Einthoven / "
                             "Goldberger limb leads derived from the read-back I and II against its own III, aVR, "
                             "aVL, aVF (the recorded signals: "
                             + ", ".join(f"{k} {fmt(v['mean_db'], 1)}" for k, v in ref.items()) + " dB).</p>"
                             + table(rows)))
    if "shift" in results:
        sh = results["shift"]
        rows = [{"test": label, "records": sh[key]["records"], "macro AUROC": sh[key]["macro_auroc"],
                 "95% CI": _ci_text(sh[key].get("macro_auroc_ci95")), "macro F1": sh[key].get("macro_f1")}
                for key, label in (("in_domain_test", "source test split"), ("transfer_test", "target dataset"))]
        sections.append(("Distribution shift", f'<p class="note">{fmt(sh["source_dataset"]["domain"])} → '
                         f'{fmt(sh["target_dataset"]["domain"])}, shared classes {fmt(", ".join(sh["shared_classes"]))}</p>'
                         + table(rows)))
    if by_section.get("embeddings"):
        sections.append(("Embeddings", figure_block(by_section["embeddings"])))
    ds, ck = results.get("dataset", {}), results.get("checkpoint", {})
    meta = {"dataset": f"{ds.get('name')} ({ds.get('path')})", "records": ds.get("embedded_records", ds.get("records")),
            "skipped": ds.get("skipped"), "recipe": ck.get("recipe"), "step": ck.get("step"),
            "encoder": (ck.get("encoder") or {}).get("name") if isinstance(ck.get("encoder"), dict) else ck.get("encoder"),
            "created": results.get("created"), "ecgalign": results.get("ecgalign_version"),
            "seconds": results.get("seconds")}
    return sections, meta
