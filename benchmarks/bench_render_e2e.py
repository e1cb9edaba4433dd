"""``ecgalign render`` end to end (issue 14): records on disk -> PNG + JSON ground truth on disk, at 200 dpi.

Runs the command's code path (``ecgalign.render.io.render_records`` over the ptbxl-500 reader, as ``ecgalign
render --data ... --dpi 200`` does) for N and M records in one process and reports the marginal cost per
printout, (t_M - t_N) / (M - N): start-up, imports and template building cancel out. Wall and CPU time
(``--workers`` 1: one process, torch threads 1). ecg-image-kit cannot be installed here (not on PyPI); its
timings measured on this machine are quoted from ../shared/data/eik-renders/README.md (plain 200 dpi: 1.78 CPU s
per image excluding 5-8 s start-up), not re-measured in this run. Prints JSON.

    python benchmarks/bench_render_e2e.py [--small 10] [--large 40] [--source-fs 500] [--workers 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
EIK_CPU_S_PER_IMAGE = 1.78  # ../shared/data/eik-renders/README.md, plain 200 dpi, excl. start-up
EIK_STARTUP_CPU_S = 5.0  # same README: 4.7-5.5 CPU s of imports


def run(data: str, n: int, fs: int, workers: int, out: Path) -> dict:
    from ecgalign.data.readers import open_dataset
    from ecgalign.render import RenderConfig
    from ecgalign.render.io import render_records

    reader = open_dataset(data, fs=fs)
    t0, c0 = time.perf_counter(), time.process_time()
    written = list(render_records(reader.iter_records(), out, config=RenderConfig.letter(200.0), limit=n,
                                  workers=workers, threads=1))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    size = sum(p.stat().st_size + j.stat().st_size for p, j in written)
    return {"images": len(written), "wall_s": wall, "cpu_s_main_process": cpu, "mb_written": size / 1e6}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "ptbxl-500"))
    ap.add_argument("--small", type=int, default=10)
    ap.add_argument("--large", type=int, default=40)
    ap.add_argument("--source-fs", type=int, default=500)
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(1)
    scratch = Path(tempfile.mkdtemp(prefix="bench_render_e2e."))
    try:
        run(args.data, 2, args.source_fs, args.workers, scratch / "warm")  # imports, first templates
        small = run(args.data, args.small, args.source_fs, args.workers, scratch / "small")
        large = run(args.data, args.large, args.source_fs, args.workers, scratch / "large")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    k = large["images"] - small["images"]
    marginal_wall = (large["wall_s"] - small["wall_s"]) / k
    marginal_cpu = (large["cpu_s_main_process"] - small["cpu_s_main_process"]) / k
    eik_40 = EIK_STARTUP_CPU_S + EIK_CPU_S_PER_IMAGE * args.large
    result = {
        "command_path": "ecgalign.render.io.render_records (ecgalign render --dpi 200)",
        "data": Path(args.data).name, "source_fs": args.source_fs, "dpi": 200, "image_px": [2200, 1700],
        "workers": args.workers, "torch_threads": 1,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}",
        "small": small, "large": large,
        "marginal_ms_per_printout": {"wall": 1000 * marginal_wall, "cpu": 1000 * marginal_cpu if args.workers == 1 else None},
        "large_run_s_per_printout_incl_startup": large["wall_s"] / large["images"],
        "ecg_image_kit_quoted": {"cpu_s_per_image": EIK_CPU_S_PER_IMAGE, "startup_cpu_s": EIK_STARTUP_CPU_S,
                                 "source": "../shared/data/eik-renders/README.md (not measured in this run)",
                                 f"cpu_s_for_{args.large}": eik_40},
        f"throughput_ratio_vs_ecg_image_kit_{args.large}_printouts": eik_40 / large["wall_s"],
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
