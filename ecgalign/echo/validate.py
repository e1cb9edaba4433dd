"""Score an echo store against the ground truth the synthetic generator wrote (``synth-truth.csv`` and
``synth-truth-strips.npz``): strip recovery (Pearson r per kept clean file), planted defects rejected, clean
files kept, and stills excluded. These are the acceptance numbers of docs/results.md ("Echo")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecgalign.data.errors import InputError
from ecgalign.echo.store import EchoStore
from ecgalign.echo.strip import strip_signal

TRUTH, TRUTH_STRIPS = "synth-truth.csv", "synth-truth-strips.npz"


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r over the common length (NaN when either side is constant)."""
    n = min(a.size, b.size)
    a, b = a[:n].astype(np.float64), b[:n].astype(np.float64)
    if n < 3 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def score_store(store: str | Path, truth_root: str | Path) -> dict[str, Any]:
    """Compare ``store`` with the truth under ``truth_root``; returns summary numbers and per-file rows."""
    root = Path(truth_root)
    if not (root / TRUTH).exists():
        raise InputError(f"{root}: no {TRUTH}; scoring needs a folder written by `ecgalign data synth-echo`")
    truth = pd.read_csv(root / TRUTH, keep_default_na=False)
    strips = np.load(root / TRUTH_STRIPS)
    es = EchoStore(store)
    fs = float(es.meta["config"]["strip_fs"])
    kept = {rel: i for i, rel in enumerate(es.items.rel)}
    skipped = es.skipped().set_index("rel")
    rows = []
    for k, t in truth.iterrows():
        rel = t.dicom_filepath
        row: dict[str, Any] = {"rel": rel, "kind": t.kind, "defect": t.defect, "kept": rel in kept,
                               "reason": skipped.at[rel, "reason"] if rel in skipped.index else "", "r": np.nan}
        if rel in kept and t.kind == "cine":
            ref = strip_signal(strips[str(k)], float(t.duration_s), fs, column_delay=0.0)
            row["r"] = pearson(es.strip(kept[rel]), ref)
        rows.append(row)
    table = pd.DataFrame(rows)
    cine = table[table.kind == "cine"]
    clean, planted = cine[cine.defect == ""], cine[cine.defect != ""]
    r = clean.r.dropna()
    per_defect = {d: {"files": int(len(g)), "rejected": int((~g.kept).sum()),
                      "named_as_planted": int((g.reason == d).sum())} for d, g in planted.groupby("defect")}
    return {
        "files": len(table), "cine": len(cine), "stills": int((table.kind == "still").sum()),
        "stills_excluded": int(((table.kind == "still") & ~table.kept).sum()),
        "clean": len(clean), "clean_kept": int(clean.kept.sum()),
        "clean_kept_fraction": round(float(clean.kept.mean()), 4) if len(clean) else None,
        "planted": len(planted), "planted_rejected": int((~planted.kept).sum()),
        "planted_rejected_fraction": round(float((~planted.kept).mean()), 4) if len(planted) else None,
        "per_defect": per_defect,
        "strip_r_median": round(float(r.median()), 4) if len(r) else None,
        "strip_r_p05": round(float(r.quantile(0.05)), 4) if len(r) else None,
        "strip_r_min": round(float(r.min()), 4) if len(r) else None,
        "clean_rejected_reasons": dict(clean[~clean.kept].reason.value_counts()),
        "rows": table,
    }
