"""ECG-Scan's online printouts per training batch (issue 14): seconds per batch of 32 pages, one CPU thread,
for the `light` and `wild` presets drawn at the encoder's size (224 x 176) and at print resolution
(`image.print_dpi`, drawn as a US Letter page at that dpi and shrunk by `fit_images`, or with ``--ink`` turned
into ink maps by `ink_images`). Synthetic records (seed 0, 100 Hz, millivolts); best of ``--repeats`` timed
passes after one warm-up. Prints JSON.

    python benchmarks/bench_scan_pages.py [--repeats 2] [--dpis 100 150 200] [--ink]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--dpis", type=float, nargs="+", default=[100.0, 150.0, 200.0])
    ap.add_argument("--ink", action="store_true", help="pages as ink maps (image.ink=true)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    from ecgalign.synth import synthesize_record
    from ecgalign.tasks import load_recipe
    from ecgalign.tasks.ecg_scan import ECGScanTask

    x = torch.from_numpy(np.stack([synthesize_record(i, 0, fs=100).signal for i in range(args.batch)])).float()
    rows = []
    for augment in ("light", "wild"):
        for dpi in [None, *args.dpis]:
            sets = ([f"image.augment={augment}", f"image.ink={str(args.ink).lower()}"]
                    + ([] if dpi is None else [f"image.print_dpi=[{dpi},{dpi}]"]))
            task = ECGScanTask(load_recipe("ecg-scan", sets=sets), 16, 16).train()
            g = torch.Generator().manual_seed(0)
            task._render(x, g)  # warm-up
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                pages = task._render(x, g)
                times.append(time.perf_counter() - t0)
            darkest = pages.min(1).values.flatten(1).min(1).values  # per page, over channels and pixels
            rows.append({"augment": augment, "print_dpi": dpi, "seconds_per_batch": round(min(times), 3),
                         "darkest_pixel_median": round(float(darkest.median()), 3)})
    print(json.dumps({"benchmark": "scan_pages", "batch": args.batch, "ink": args.ink, "threads": 1, "cpu_count": os.cpu_count(),
                      "shape": list(pages.shape[1:]), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
