"""A self-contained HTML page of a realism comparison: tables plus figures as inline base64 PNG."""

from __future__ import annotations

import base64
import html
import io
import os
import tempfile
from pathlib import Path

import numpy as np

from ecgalign.synth.realism.compare import Realism
from ecgalign.synth.realism.features import BANDS
from ecgalign.synth.realism.measure import likelihood_text

_HIST = (
    ("hr_bpm", "heart rate (bpm)"),
    ("rr_cv", "RR coefficient of variation"),
    ("qrs_ms", "QRS (ms)"),
    ("axis_deg", "frontal axis (deg)"),
    ("sokolow_mv", "Sokolow-Lyon (mV)"),
    ("limb_ptp_mv", "max limb QRS (mV)"),
)


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _figures(arrays: dict[str, dict[str, np.ndarray]]) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figs = []
    s, r = arrays["synthetic"], arrays["real"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.2))
    for name, d, c in (("synthetic", s, "tab:orange"), ("real", r, "tab:blue")):
        a.semilogy(np.arange(1, 9), d["pca"].mean(0), "o-", color=c, label=name)
        b.bar(
            np.arange(len(BANDS)) + (0.2 if name == "real" else -0.2),
            d["bands"].mean(0),
            0.4,
            color=c,
            label=name,
        )
    a.set(
        xlabel="principal component (I, II, V1-V6)", ylabel="mean variance share", title="covariance spectrum"
    )
    b.set_xticks(range(len(BANDS)), [f"{lo:g}-{hi:g}" for lo, hi in BANDS])
    b.set(xlabel="band (Hz)", ylabel="mean power share", title="band-power shares")
    a.legend()
    figs.append(("Covariance spectrum and band powers", _png(fig)))
    plt.close(fig)
    keys = [(k, t) for k, t in _HIST if k in s and k in r]
    if keys:
        fig, axes = plt.subplots(2, 3, figsize=(12, 6))
        for ax, (k, title) in zip(axes.ravel(), keys):
            a, b = s[k][np.isfinite(s[k])], r[k][np.isfinite(r[k])]
            lo, hi = np.percentile(np.r_[a, b], [1, 99]) if len(a) + len(b) else (0, 1)
            bins = np.linspace(lo, hi, 30)
            ax.hist(a, bins, density=True, alpha=0.5, color="tab:orange", label="synthetic")
            ax.hist(b, bins, density=True, alpha=0.5, color="tab:blue", label="real")
            ax.set_title(title)
        axes.ravel()[0].legend()
        figs.append(("Measurement distributions (all records)", _png(fig)))
        plt.close(fig)
    return figs


def _table(rows: list[list], head: list[str]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def render_html(result: Realism) -> str:
    """The page as a string."""
    s = result.summary
    syn, real = s["synthetic"], s["real"]
    parts = [
        f"<h1>ECG realism: {html.escape(syn['source'])} vs {html.escape(real['source'])}</h1>",
        (
            f"<p>{html.escape(s['view'])}. Records: synthetic {syn['records']} ({syn['skipped']} skipped), "
            f"real {real['records']} ({real['skipped']} skipped).</p>"
        ),
        "<h2>Domain classifier (patient-grouped CV, AUROC; 0.5 = indistinguishable)</h2>",
        _table([[k, v] for k, v in s["domain_auroc"].items()], ["features", "AUROC"]),
        "<h2>Most separating single features (AUROC of the feature alone; synthetic = positive)</h2>",
        _table(
            [[f["family"], f["feature"], f["auroc"], f["synthetic_median"], f["real_median"]]
             for f in s.get("separating_features", [])],
            ["family", "feature", "AUROC", "synthetic median", "real median"],
        ),
        "<h2>Class profiles: does each superclass differ from the other records alike on both sides?</h2>",
        _table(
            [[c, v["records"]["synthetic"], v["records"]["real"], v["profile_correlation"],
              "; ".join(f"{d['feature']} {d['synthetic_effect']:+.2f} / {d['real_effect']:+.2f}"
                        for d in v["largest_differences"])]
             for c, v in s.get("class_profiles", {}).items()],
            ["class", "synthetic records", "real records", "profile correlation",
             "largest differences (effect size synthetic / real)"],
        ),
        "<h2>Signs (synthetic / real)</h2>",
        _table(
            [[g["sign"], g["synthetic"], g["real"], g["ratio"], g["within_25pct"]] for g in s["signs"]],
            ["sign", "synthetic", "real", "ratio", "within 25 %"],
        ),
    ]
    for side in ("synthetic", "real"):
        fid = s["label_fidelity"].get(side) or {}
        rows = [
            [c, v["criterion"], v["records"], v["judged"], v["meets"]] for c, v in fid.items() if v["records"]
        ]
        head = ["code", "criterion", "records", "judged", "share meeting it"]
        if any("by_likelihood" in v for v in fid.values()):
            for row in rows:
                row.append(likelihood_text(fid[row[0]].get("by_likelihood") or {}))
            head.append("by statement likelihood: share (judged)")
        if rows:
            parts += [f"<h2>Label fidelity: {side}</h2>", _table(rows, head)]
    if s["distributions"]:
        rows = []
        for group, d in s["distributions"].items():
            for k, v in d.items():
                if k != "records":
                    rows.append([group, k, v["synthetic_p10_p50_p90"], v["real_p10_p50_p90"], v["ks"]])
        parts += [
            "<h2>Distributions per condition (p10 / p50 / p90)</h2>",
            _table(rows, ["condition", "measure", "synthetic", "real", "KS"]),
        ]
    for title, png in _figures(result.arrays):
        parts.append(f"<h2>{html.escape(title)}</h2><img src='data:image/png;base64,{png}'>")
    style = (
        "body{font-family:sans-serif;max-width:1200px;margin:auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px}"
    )
    head = f"<head><meta charset='utf-8'><style>{style}</style></head>"
    return f"<!doctype html><html>{head}<body>{''.join(parts)}</body></html>"


def write_html(result: Realism, out: str | Path) -> Path:
    """Write the page atomically (temporary file, then rename) and return its path."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(render_html(result))
    os.replace(tmp, out)
    return out
