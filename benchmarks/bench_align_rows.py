"""Row alignment (``ecgalign.render.digitize.rows.align_rows``) over folders of printouts: what it did and what
it cost per page, one thread (issue 14). For each folder: pages aligned / left unchanged (with the reasons),
seconds per page (median, 90th percentile), how far the rows moved (median |found - target| per page, px and
mm) and the tilt taken out.

    E=../shared/data/eik-renders
    python benchmarks/bench_align_rows.py $E/plain-100dpi $E/plain-200dpi $E/augmented-200dpi $E/wrinkled-200dpi \
        runs/ours/dpi100 runs/ours/dpi200 [--limit N]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folders", nargs="+", type=Path, help="folders of PNG / JPEG printouts")
    ap.add_argument("--layout", default="3x4+II")
    ap.add_argument("--limit", type=int, default=0, help="pages per folder (0: all)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    import torch

    from ecgalign.render.digitize.rows import align_rows
    from ecgalign.render.imagefile import read_image

    torch.set_num_threads(args.threads)
    out: dict = {"benchmark": "align_rows", "command": " ".join([Path(sys.executable).name, *sys.argv]),
                 "layout": args.layout, "threads": args.threads, "folders": {}}
    for folder in args.folders:
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
        if args.limit:
            files = files[: args.limit]
        times, moved, tilt, counts, reasons = [], [], [], {"aligned": 0, "unchanged": 0}, []
        for path in files:
            read_image(path)  # warm the file cache: time the alignment, not the disk
            t0 = time.perf_counter()
            _, info = align_rows(path, args.layout)
            times.append(time.perf_counter() - t0)
            counts[info.status] += 1
            if info.status == "aligned":
                moved.append(float(np.median(np.abs(np.subtract(sorted(info.found_px), info.target_px)))))
                tilt.append(abs(info.rotation_deg))
            else:
                reasons.append(f"{path.name}: {info.reason}")
        t = np.asarray(times)
        out["folders"][str(folder)] = {
            "pages": len(files), **counts, "unchanged_reasons": reasons[:10],
            "seconds_per_page": {"median": round(float(np.median(t)), 3), "p90": round(float(np.percentile(t, 90)), 3)},
            "rows_moved_px_median": round(float(np.median(moved)), 1) if moved else None,
            "rows_moved_px_max": round(float(np.max(moved)), 1) if moved else None,
            "tilt_deg_median": round(float(np.median(tilt)), 3) if tilt else None,
            "tilt_deg_max": round(float(np.max(tilt)), 3) if tilt else None,
        }
        print(f"# {folder}: {counts}, {np.median(t):.2f} s/page", file=sys.stderr)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
