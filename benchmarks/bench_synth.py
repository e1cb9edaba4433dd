"""Synthetic generator throughput (issue 2 target: 10,000 records of 10 s at 500 Hz in under 60 s on 2 cores).

Times ``ecgalign.synth.synthesize`` end to end (records consumed as they are yielded) at 500 and 100 Hz with
1 and 2 worker processes, default config (noise on). Prints JSON.

    python benchmarks/bench_synth.py [--n 2000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time

from ecgalign.synth import synthesize


def _cpu_s() -> float:
    """User + system CPU seconds of this process and its finished children (the pool workers)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run(n: int, fs: float, seconds: float, workers: int) -> dict:
    """Wall time and CPU time (load from other processes inflates the first, not the second)."""
    t0, c0 = time.perf_counter(), _cpu_s()
    for rec in synthesize(n, seed=0, fs=fs, seconds=seconds, workers=workers):
        assert rec.signal.shape[1] == round(fs * seconds)
    wall, cpu = time.perf_counter() - t0, _cpu_s() - c0
    return {
        "fs": fs,
        "workers": workers,
        "records": n,
        "wall_s": round(wall, 2),
        "records_per_s": round(n / wall, 1),
        "wall_s_per_10000": round(10000 * wall / n, 1),
        "cpu_ms_per_record": round(1000 * cpu / n, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=2000, help="records per configuration")
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    results = [run(args.n, fs, args.seconds, workers) for fs in (500.0, 100.0) for workers in (1, 2)]
    print(
        json.dumps(
            {
                "benchmark": "synth",
                "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
                "cpu_count": os.cpu_count(),
                "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
                "python": platform.python_version(),
                "machine": platform.machine(),
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
