"""Echo extraction speed (issue 12, part 3): DICOMs per second for 64-frame 800x600 RGB files.

Writes ``--files`` synthetic cine loops (``ecgalign.synth.echo``, 600 rows x 800 columns, 64 frames, native RGB or
``--compression jpeg``) into a temporary folder, then times ``ecgalign.echo.pipeline.extract_dataset`` (header
probe, first-frame strip + quality checks, every frame cropped / grey / resized to 224 x 224, store write) for
each worker count in ``--workers``. The synthetic files are made once and are not timed (they are then in the
page cache); a worker pool is started before its timed run and its start-up is reported apart. Prints JSON.

    python benchmarks/bench_echo_extract.py [--files 16] [--workers 1,2] [--compression none]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=16, help="number of DICOMs (even)")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--compression", default="none", choices=("none", "jpeg"))
    parser.add_argument("--keep", type=Path, default=None, help="write the DICOMs here and keep them")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    from ecgalign.echo.extract import ExtractConfig
    from ecgalign.echo.pipeline import PoolMap, extract_dataset
    from ecgalign.synth.echo import EchoSynthConfig, synthesize_echo

    tmp = Path(tempfile.mkdtemp(prefix="bench-echo-"))
    data = args.keep or tmp / "dicoms"
    config = EchoSynthConfig(rows=600, cols=800, frames=(64, 64), fps=(30, 60), studies_per_patient=(1, 1),
                             views_per_study=2, defect_fraction=0.0, still_fraction=0.0,
                             compression=args.compression)
    t = time.perf_counter()
    synth = synthesize_echo(data, max(args.files // 2, 1), seed=0, config=config, overwrite=True)
    synth_s = time.perf_counter() - t
    size = sum(p.stat().st_size for p in Path(data).rglob("*.dcm"))
    runs = []
    try:
        for workers in (int(w) for w in args.workers.split(",")):
            out = tmp / f"store-{workers}"
            t = time.perf_counter()
            pool = PoolMap(workers) if workers > 1 else None
            if pool is not None:  # start the workers (spawn + imports) outside the timed region
                list(pool([str(tmp / "missing.dcm")] * workers, ExtractConfig()))
            startup = time.perf_counter() - t
            t = time.perf_counter()
            report = extract_dataset(data, out, map_fn=pool)
            wall = time.perf_counter() - t
            if pool is not None:
                pool.close()
            runs.append({"workers": workers, "files": report["files"], "kept": report["kept"],
                         "seconds": round(wall, 3), "pool_startup_s": round(startup, 2),
                         "dicoms_per_s": round(report["files"] / wall, 3),
                         "frames_per_s": round(64 * report["files"] / wall, 1)})
            shutil.rmtree(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps({
        "benchmark": "echo_extract", "frame": "800x600", "frames_per_file": 64, "compression": args.compression,
        "files": synth["dicoms"], "mb_per_file": round(size / synth["dicoms"] / 1e6, 2),
        "synth_seconds": round(synth_s, 2), "runs": runs, "cpu_count": os.cpu_count(),
        "machine": platform.machine(), "python": platform.python_version(),
    }, indent=2))


if __name__ == "__main__":
    main()
