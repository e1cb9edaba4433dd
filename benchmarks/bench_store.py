"""Store random-access throughput vs parsing the same WFDB files on the fly (issue 2 target: >= 50x).

Measured on PTB-XL at 100 Hz (../shared/data/ptbxl-500 by default). Both paths read the same records in the
same shuffled order, warm page cache for both (each pass is repeated; the best pass counts). Prints JSON.

    python benchmarks/bench_store.py [--ptbxl PATH] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import wfdb

from ecgalign.data.convert import convert
from ecgalign.data.preprocess import Preprocess
from ecgalign.data.readers import open_dataset
from ecgalign.data.store import ECGStore


def best_rate(fn, n: int, repeats: int) -> float:
    """Records per second of the fastest of ``repeats`` passes."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return n / best


def main() -> None:
    default = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ptbxl-500"
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--ptbxl", type=Path, default=default)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args()
    if not (args.ptbxl / "ptbxl_database.csv").exists():
        sys.exit(f"{args.ptbxl}: PTB-XL folder not found (pass --ptbxl)")

    reader = open_dataset(args.ptbxl, "ptbxl", fs=100)
    n = len(reader)
    order = np.random.default_rng(0).permutation(n)
    paths = [str(args.ptbxl / f) for f in pd.read_csv(args.ptbxl / "ptbxl_database.csv")["filename_lr"]]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        convert(reader, Path(tmp) / "store", Preprocess(fs=100.0, seconds=10.0))
        convert_s = time.perf_counter() - t0
        store = ECGStore(Path(tmp) / "store")

        def wfdb_bare():
            for i in order:
                wfdb.rdsamp(paths[i])

        def wfdb_reader():
            for i in order:
                reader.read(int(i))

        def store_single():
            for i in order:
                store.signal(int(i))

        def store_batched():
            for k in range(0, n, args.batch):
                store.signals(order[k:k + args.batch])

        rates = {
            "wfdb_rdsamp": best_rate(wfdb_bare, n, args.repeats),
            "wfdb_via_reader": best_rate(wfdb_reader, n, args.repeats),
            "store_single": best_rate(store_single, n, args.repeats),
            "store_batched": best_rate(store_batched, n, args.repeats),
        }
    baseline = rates["wfdb_rdsamp"]
    print(json.dumps({
        "benchmark": "store_vs_wfdb",
        "dataset": str(args.ptbxl),
        "records": n,
        "fs": 100,
        "records_per_s": {k: round(v, 1) for k, v in rates.items()},
        "ratio_store_single_vs_wfdb": round(rates["store_single"] / baseline, 1),
        "ratio_store_batched_vs_wfdb": round(rates["store_batched"] / baseline, 1),
        "target_ratio": 50,
        "convert_seconds": round(convert_s, 2),
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine()},
        "command": "python benchmarks/bench_store.py " + " ".join(sys.argv[1:]),
    }, indent=2))


if __name__ == "__main__":
    main()
