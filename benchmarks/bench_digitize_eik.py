"""Classic digitiser on printouts we did not draw (issue 14): ecg-image-kit renders of PTB-XL records
(../shared/data/eik-renders, see its README), scored with the strict PhysioNet Challenge 2024 SNR.

Each image is digitised with the layout it is known to have (3x4+II, 25 mm/s, 10 mm/mV, 10 s at 500 Hz); the
reference is the ptbxl-500 500 Hz record with each lead NaN outside the samples its panels show (the sidecar's
``start_sample``/``end_sample``). Strict scoring as the Challenge: a lead the digitiser leaves out (all NaN), or
every lead of an image it refuses, scores 0 dB; the summary is the median (and mean) over record x lead.
Status counts (ok / suspect / failed) show whether misreads were flagged. Prints JSON (``--out``: also a file).

    python benchmarks/bench_digitize_eik.py [--sets plain-100dpi,plain-200dpi,augmented-200dpi,wrinkled-200dpi]
        [--limit N] [--workers 2] [--segmenter RUN/segmenter.pt]   # the learned digitiser option
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")


def reference(data: Path, row: dict) -> np.ndarray:
    """(12, 5000) mV: the source record, NaN outside the samples the image shows."""
    import wfdb

    rec = wfdb.rdrecord(str(data / row["source_record"]))
    names = [n.upper() for n in rec.sig_name]
    sig = rec.p_signal.T
    side = json.loads((data / "eik-renders" / row["json"]).read_text())
    ref = np.full((12, sig.shape[1]), np.nan)
    for lead in side["leads"]:
        k = LEADS.index(lead["lead_name"])
        a, b = int(lead["start_sample"]), int(lead["end_sample"])
        ref[k, a:b] = sig[names.index(LEADS[k].upper()), a:b]
    return ref


_LOADED: dict = {}


def _segmenter(path: str | None):
    """The learned trace segmenter at ``path`` (loaded once per process), or None: the classic ink map."""
    if path is None:
        return None
    if path not in _LOADED:
        import torch

        from ecgalign.render.digitize.learned import TraceSegmenter

        torch.set_num_threads(1)
        _LOADED[path] = TraceSegmenter.load(path)
    return _LOADED[path]


def run_one(args: tuple) -> dict:
    from ecgalign.eval.signal_metrics import challenge_snr
    from ecgalign.render.digitize import DigitizeError, digitize

    data, row, segmenter = args
    ref = reference(data, row)
    out = {"ecg_id": int(row["ecg_id"]), "set": row["file"].split("/")[0]}
    t0 = time.perf_counter()
    try:
        d = digitize(data / "eik-renders" / row["file"], "3x4+II", fs=500.0, seconds=10.0, segmenter=_segmenter(segmenter))
    except DigitizeError as exc:
        out.update(status="failed", reason=str(exc), snr=[0.0] * 12, seconds=time.perf_counter() - t0)
        return out
    out["seconds"] = time.perf_counter() - t0
    snr = challenge_snr(ref, d.signal, 500.0)
    shown = np.isfinite(ref).any(axis=1)
    snr = np.where(shown & ~np.isfinite(snr), 0.0, snr)  # a lead left out scores 0 dB (strict)
    out.update(status=d.status, snr=snr.tolist(), notes=d.notes, flags=d.flags, rotation_deg=d.rotation_deg,
               row_seconds=d.row_seconds, calibration=d.calibration, confidence=d.confidence)
    return out


def summarize(rows: list[dict]) -> dict:
    table = np.array([r["snr"] for r in rows], dtype=np.float64)
    vals = table[np.isfinite(table)]
    status = {s: sum(r["status"] == s for r in rows) for s in ("ok", "suspect", "failed")}
    per_record = [float(np.nanmean(r["snr"])) for r in rows]
    bad = [r for r in rows if r["status"] != "ok"]
    worst_ok = sorted((x for x in zip(per_record, rows) if x[1]["status"] == "ok"), key=lambda x: x[0])[:3]
    return {
        "images": len(rows),
        "strict_snr_db": {"median": float(np.median(vals)), "mean": float(np.mean(vals)), "pairs": int(vals.size)},
        "status": status,
        "flagged": [{"ecg_id": r["ecg_id"], "status": r["status"],
                     "why": (r.get("reason") or "; ".join(r.get("flags", [])))[:200]} for r in bad[:10]],
        "worst_unflagged_records": [{"ecg_id": r["ecg_id"], "mean_db": round(m, 2)} for m, r in worst_ok],
        "seconds_per_image": statistics.mean(r["seconds"] for r in rows),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--sets", default="plain-100dpi,plain-200dpi,augmented-200dpi,wrinkled-200dpi")
    ap.add_argument("--limit", type=int, default=None, help="first N images per set")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--out", default=None)
    ap.add_argument("--segmenter", default=None, help="learned digitiser: a segmenter.pt (or its run folder)")
    args = ap.parse_args()
    data = Path(args.data)
    with open(data / "eik-renders" / "manifest.csv", newline="") as fh:
        manifest = list(csv.DictReader(fh))
    result: dict = {"data": "eik-renders", "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
                    "workers": args.workers, "segmenter": args.segmenter, "sets": {}}
    t_all = time.perf_counter()
    for name in args.sets.split(","):
        rows = [r for r in manifest if r["file"].startswith(name + "/")][: args.limit]
        jobs = [(data, r, args.segmenter) for r in rows]
        if args.workers == 1:
            done = [run_one(j) for j in jobs]
        else:
            with ProcessPoolExecutor(args.workers) as pool:
                done = list(pool.map(run_one, jobs))
        result["sets"][name] = summarize(done)
        print(f"# {name}: {json.dumps(result['sets'][name]['strict_snr_db'])} {result['sets'][name]['status']}",
              file=sys.stderr)
    result["wall_s"] = time.perf_counter() - t_all
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
