"""CPU pretraining smoke benchmark (issue 3 target: every recipe runs 50 steps on a small synthetic store in
under 2 minutes on the 2-core CPU machine).

Each recipe runs with its own default architecture (no size overrides) through ``ecgalign.train.engine``,
on a synthetic store in the default encoder input (100 Hz, 10 s, baselines preset). Wall time includes
building the model and loading the text encoder, as a user would experience it. Prints JSON.

    python benchmarks/bench_pretrain_cpu.py [--steps 50] [--batch-size 8] [--recipes merit,esi,...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from ecgalign.data.preprocess import Preprocess
from ecgalign.synth.store import synthesize_store
from ecgalign.recipes.schema import list_recipes
from ecgalign.tasks import load_recipe
from ecgalign.train.engine import pretrain


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--records", type=int, default=400)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--recipes", default=",".join(list_recipes()))
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        synthesize_store(store, args.records, seed=0, fs=100.0, preprocess=Preprocess.preset("baselines"), workers=2)
        for name in args.recipes.split(","):
            recipe = load_recipe(name, sets=[f"optim.max_steps={args.steps}", f"data.batch_size={args.batch_size}",
                                             f"data.num_workers={args.workers}", "train.accelerator=cpu",
                                             f"train.log_every={args.steps}"])
            t0 = time.perf_counter()
            result = pretrain(recipe, store, Path(tmp) / f"run-{name}", progress=False)
            wall = time.perf_counter() - t0
            results.append({"recipe": name, "encoder": recipe.model.encoder, "steps": result.steps,
                            "batch_size": args.batch_size, "wall_s": round(wall, 1),
                            "train_samples_per_s": round(result.samples_per_s, 1),
                            "final_loss": round(result.final_loss, 4), "under_120_s": wall < 120})
            print(json.dumps(results[-1]), file=sys.stderr)
    print(json.dumps({"benchmark": "pretrain_cpu", "records": args.records, "torch_threads": torch.get_num_threads(),
                      "cpu_count": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version(),
                      "command": "python benchmarks/bench_pretrain_cpu.py " + " ".join(sys.argv[1:]),
                      "results": results}, indent=2))


if __name__ == "__main__":
    main()
