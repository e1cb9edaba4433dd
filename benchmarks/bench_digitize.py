"""Classic digitiser quality and speed (issue 5, part 2): PhysioNet Challenge 2024 SNR per lead on rendered
ptbxl-500 printouts, clean and augmented.

Each record is rendered (ecgalign.render, US Letter at ``--dpi``, layout ``--layout``, image k seeded k) and the
image tensor is digitised directly (no PNG round trip: PNG is lossless, so only encode/decode time would
differ) with the known layout, 25 mm/s and 10 mm/mV. The reference is the rendered signal with each lead NaN
outside the windows its panels show (from the image's ground truth), so only what the image shows is scored.
Scores: ``ecgalign.eval.signal_metrics.challenge_snr`` (alignment allowances of the Challenge's final scoring
code, then per-lead SNR), averaged as the Challenge does (nanmean over record x lead), plus the same without
the alignment (``--no_shift`` in the Challenge). ``strict_snr_db``: a lead left out, or every lead of an image
the digitiser refuses, scores 0 dB; median and mean over record x lead (issue 14). Prints
JSON (and writes it to ``--out`` if given).

    python benchmarks/bench_digitize.py [--limit 50] [--augment none,light,heavy] [--dpi 200] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def run_chunk(args: tuple) -> list[dict]:
    """Render, digitise and score records ``indices`` of the dataset (one worker)."""
    import torch

    from ecgalign.data.readers import open_dataset
    from ecgalign.eval.signal_metrics import challenge_snr
    from ecgalign.render import RenderConfig, Renderer
    from ecgalign.render.digitize import digitize
    from ecgalign.render.io import record_header, record_signal

    data, indices, augment, dpi, layout, segmenter = args
    torch.set_num_threads(1)
    if segmenter is not None:
        from ecgalign.render.digitize.learned import TraceSegmenter

        segmenter = TraceSegmenter.load(segmenter)
    reader = open_dataset(data, fs=500)
    renderer = Renderer(RenderConfig.letter(dpi, layout=layout))
    out = []
    for i in indices:
        rec = reader.read(i)
        signal = record_signal(rec)
        t0 = time.perf_counter()
        res = renderer.render(torch.from_numpy(signal), rec.fs, augment=augment, seed=[i], header=[record_header(rec)])
        render_s = time.perf_counter() - t0
        gt = res.ground_truth(0)
        ref = np.full(signal.shape, np.nan)
        for p in gt.panels:
            if not p["missing"]:
                k, a, b = p["lead_index"], p["sample_start"], p["sample_stop"]
                ref[k, a:b] = signal[k, a:b]
        row = {"index": i, "record": rec.record_id, "render_s": render_s}
        t0 = time.perf_counter()
        try:
            d = digitize(res.images[0], layout, fs=rec.fs, seconds=signal.shape[1] / rec.fs, segmenter=segmenter)
        except Exception as exc:  # noqa: BLE001 - a failure is counted and skipped, never fatal
            row.update(error=f"{type(exc).__name__}: {exc}", digitize_s=time.perf_counter() - t0, status="failed",
                   strict_snr=np.where(np.isfinite(ref).any(axis=1), 0.0, np.nan).tolist())
            out.append(row)
            continue
        row["digitize_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        row["snr"] = challenge_snr(ref, d.signal, rec.fs).tolist()
        shown = np.isfinite(ref).any(axis=1)
        row["strict_snr"] = np.where(shown & ~np.isfinite(row["snr"]), 0.0, row["snr"]).tolist()
        row["status"] = d.status
        row["snr_no_shift"] = challenge_snr(ref, d.signal, rec.fs, shift=False).tolist()
        row["score_s"] = time.perf_counter() - t0
        truth = gt.layout["px_per_mm"] * float(np.hypot(*np.asarray(gt.page_to_image)[0, :2]))
        row["px_per_mm_rel_error"] = float(np.mean(d.px_per_mm) / truth - 1)
        row["notes"] = d.notes
        out.append(row)
    return out


def summarize(rows: list[dict], leads: tuple[str, ...]) -> dict:
    from ecgalign.eval.signal_metrics import summarize_snr

    ok = [r for r in rows if "snr" in r]
    failures = [r for r in rows if "error" in r]
    d: dict = {"images": len(rows), "digitised": len(ok), "failures": len(failures)}
    strict = np.array([r["strict_snr"] for r in rows], dtype=np.float64)
    strict = strict[np.isfinite(strict)]
    d["strict_snr_db"] = {"median": float(np.median(strict)), "mean": float(np.mean(strict)), "pairs": int(strict.size)}
    d["status"] = {s: sum(r["status"] == s for r in rows) for s in ("ok", "suspect", "failed")}
    if failures:
        d["failure_examples"] = [{"record": r["record"], "error": r["error"][:300]} for r in failures[:5]]
    if ok:
        snr = summarize_snr(np.array([r["snr"] for r in ok]), leads)
        plain = summarize_snr(np.array([r["snr_no_shift"] for r in ok]), leads)
        d["snr_db"] = {"mean": snr["overall"]["mean_db"], "median": snr["overall"]["median_db"],
                       "nan_leads": snr["overall"]["nan_leads"]}
        d["snr_db_no_shift"] = {"mean": plain["overall"]["mean_db"], "median": plain["overall"]["median_db"]}
        d["per_lead_db"] = {k: {"mean": round(v["mean_db"], 2), "median": round(v["median_db"], 2)}
                            for k, v in snr["per_lead"].items()}
        with warnings.catch_warnings():  # a record with no scored lead has no mean
            warnings.simplefilter("ignore", RuntimeWarning)
            per_record = np.array([np.nanmean(np.asarray(r["snr"], dtype=float)) for r in ok])
        scored = per_record[np.isfinite(per_record)]
        d["record_mean_snr_db"] = {"min": float(scored.min()), "p10": float(np.percentile(scored, 10)),
                                   "median": float(np.median(scored)), "records_with_no_scored_lead":
                                   int((~np.isfinite(per_record)).sum())} if scored.size else {}
        rel = [abs(r["px_per_mm_rel_error"]) for r in ok]
        d["px_per_mm_abs_rel_error"] = {"median": statistics.median(rel), "max": max(rel)}
        d["notes"] = sum(bool(r["notes"]) for r in ok)
    times = [r["digitize_s"] for r in rows]
    d["seconds_per_image"] = {"digitize_mean": statistics.mean(times), "digitize_median": statistics.median(times),
                              "render_mean": statistics.mean(r["render_s"] for r in rows)}
    if ok:
        d["seconds_per_image"]["score_mean"] = statistics.mean(r["score_s"] for r in ok)
    return d


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "ptbxl-500"))
    ap.add_argument("--limit", type=int, default=None, help="first N records (default: all)")
    ap.add_argument("--augment", default="none,light", help="comma-separated: none, light, heavy")
    ap.add_argument("--dpi", type=float, default=200.0)
    ap.add_argument("--layout", default="3x4+II")
    ap.add_argument("--workers", type=int, default=1, help="processes (each single-threaded)")
    ap.add_argument("--out", default=None, help="also write the JSON here")
    ap.add_argument("--segmenter", default=None, help="learned digitiser: a segmenter.pt (or its run folder)")
    args = ap.parse_args()

    from ecgalign.data.readers import open_dataset
    from ecgalign.data.record import LEADS_12

    n = len(open_dataset(args.data, fs=500))
    n = n if args.limit is None else min(n, args.limit)
    result: dict = {
        "data": Path(args.data).name, "records": n, "layout": args.layout, "dpi": args.dpi,
        "image_px": [round(11 * args.dpi), round(8.5 * args.dpi)], "workers": args.workers,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}",
        "segmenter": args.segmenter, "augment": {},
    }
    t_all = time.perf_counter()
    for augment in args.augment.split(","):
        t0 = time.perf_counter()
        chunks = [(args.data, list(range(k, n, args.workers)), augment, args.dpi, args.layout, args.segmenter)
                  for k in range(args.workers)]
        if args.workers == 1:
            rows = run_chunk(chunks[0])
        else:
            with ProcessPoolExecutor(args.workers, initializer=_init_worker) as pool:
                rows = [r for part in pool.map(run_chunk, chunks) for r in part]
        rows.sort(key=lambda r: r["index"])
        result["augment"][augment] = summarize(rows, LEADS_12)
        result["augment"][augment]["wall_s"] = time.perf_counter() - t0
        print(f"# {augment}: {json.dumps(result['augment'][augment]['strict_snr_db'])} "
              f"{result['augment'][augment]['status']}", file=sys.stderr)
    result["wall_s"] = time.perf_counter() - t_all
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
