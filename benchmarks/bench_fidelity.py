"""Label fidelity of the synthetic generator across seeds (issue 15): the share of records claiming a code whose
signal meets that code's criterion, measured the way the realism harness does (``load_sample`` + ``measure``:
0.5-100 Hz mV view at 250 Hz, QRS duration on the median beat). Prints one JSON object: per seed and code, the
records claiming the code, those judged, and the share meeting the criterion; and the minimum over seeds.

    python benchmarks/bench_fidelity.py --n 2000 --seeds 0 1
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from ecgalign.synth.realism import load_sample
from ecgalign.synth.realism.measure import fidelity, measure


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000, help="default synthetic records per seed")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = ap.parse_args()
    command = " ".join([os.path.basename(sys.executable), *sys.argv])
    out: dict = {"benchmark": "label_fidelity", "command": command, "seeds": {}}
    for seed in args.seeds:
        t0 = time.perf_counter()
        sample = load_sample(f"synth:{args.n}:{seed}")
        table = fidelity(sample.codes, [measure(mv) for mv in sample.mv])
        out["seeds"][str(seed)] = {"seconds": round(time.perf_counter() - t0, 1),
                                   **{code: {k: row[k] for k in ("records", "judged", "meets")}
                                      for code, row in table.items()}}
    codes = next(iter(out["seeds"].values())).keys() - {"seconds"}
    out["minimum_over_seeds"] = {
        code: min((s[code]["meets"] for s in out["seeds"].values() if s[code]["meets"] is not None),
                  default=None)
        for code in sorted(codes)
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
