"""Pretraining throughput and input-pipeline headroom (issue 3: on an H100 with bf16, 100 Hz x 10 s inputs,
samples/s and GPU utilisation for ``merit`` (vit1d_small) and ``esi`` (convnext1d_tiny); the input pipeline
alone must deliver at least 5x the model's samples/s).

For each recipe: a synthetic store in the encoder input is built once (or ``--store``), the engine trains
``--steps`` steps (samples/s measured from the end of the first step, as the engine reports it), while a
thread samples GPU utilisation with nvidia-smi every 0.5 s; then the same DataLoader (same workers, batch
size, pinned memory) is iterated alone for as many batches. Prints JSON. Runs on a CPU too (small numbers,
no utilisation), which is how it is tested.

    python benchmarks/bench_pretrain_throughput.py --recipes merit,esi --steps 300 --batch-size 256 \\
        --precision bf16-mixed --workers 8 --records 20000
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

from ecgalign.data.datasets import ECGDataset
from ecgalign.data.preprocess import Preprocess
from ecgalign.data.store import ECGStore
from ecgalign.synth.store import synthesize_store
from ecgalign.tasks import load_recipe
from ecgalign.train.data import ResumableBatchSampler, make_loader
from ecgalign.train.engine import pretrain


class GPUSampler(threading.Thread):
    """Polls ``nvidia-smi`` for utilisation (%) until stopped; empty where there is no NVIDIA GPU."""

    def __init__(self, period: float = 0.5):
        super().__init__(daemon=True)
        self.period, self.values, self.stop_flag = period, [], threading.Event()
        self.available = shutil.which("nvidia-smi") is not None and torch.cuda.is_available()

    def run(self) -> None:
        while self.available and not self.stop_flag.is_set():
            out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                                  "-i", "0"], capture_output=True, text=True)
            if out.returncode == 0 and out.stdout.strip():
                self.values.append(float(out.stdout.strip().splitlines()[0]))
            time.sleep(self.period)

    def summary(self) -> dict:
        self.stop_flag.set()
        if not self.values:
            return {"available": False}
        v = sorted(self.values)
        return {"available": True, "mean": sum(v) / len(v), "median": v[len(v) // 2], "samples": len(v)}


def loader_rate(store: Path, batch_size: int, workers: int, batches: int, pin: bool) -> float:
    dataset = ECGDataset(ECGStore(store), with_report=True)
    loader = make_loader(dataset, ResumableBatchSampler(len(dataset), batch_size, seed=0), workers, pin)
    it = iter(loader)
    next(it)  # worker start-up
    t0 = time.perf_counter()
    for _ in range(batches):
        batch = next(it)
        if pin:
            batch["ecg"].cuda(non_blocking=True)
    return batches * batch_size / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--recipes", default="merit,esi")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--precision", default="bf16-mixed")
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--records", type=int, default=20000)
    ap.add_argument("--store", type=Path, default=None, help="an existing store in the default encoder input")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="extra recipe overrides")
    args = ap.parse_args()
    cuda = torch.cuda.is_available()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        store = args.store
        if store is None:
            store = Path(tmp) / "store"
            synthesize_store(store, args.records, seed=0, fs=100.0, preprocess=Preprocess.preset("baselines"),
                             workers=min(args.workers, 16))
        for name in args.recipes.split(","):
            recipe = load_recipe(name, sets=[f"optim.max_steps={args.steps}", f"data.batch_size={args.batch_size}",
                                             f"data.num_workers={args.workers}", f"train.precision={args.precision}",
                                             f"train.checkpoint_every={args.steps}", f"train.log_every={args.steps}",
                                             *args.sets])
            sampler = GPUSampler()
            sampler.start()
            result = pretrain(recipe, store, Path(tmp) / f"run-{name}", progress=False)
            gpu = sampler.summary()
            pipeline = loader_rate(store, args.batch_size, args.workers, max(20, args.steps // 2), cuda)
            results.append({"recipe": name, "encoder": recipe.model.encoder, "steps": result.steps,
                            "batch_size": args.batch_size, "precision": args.precision,
                            "train_samples_per_s": round(result.samples_per_s, 1), "gpu_utilisation_pct": gpu,
                            "input_pipeline_samples_per_s": round(pipeline, 1),
                            "pipeline_headroom": round(pipeline / result.samples_per_s, 2)})
            print(json.dumps(results[-1]), file=sys.stderr)
    print(json.dumps({"benchmark": "pretrain_throughput", "device": torch.cuda.get_device_name(0) if cuda else "cpu",
                      "torch": torch.__version__, "command": "python benchmarks/bench_pretrain_throughput.py "
                      + " ".join(sys.argv[1:]), "target_pipeline_headroom": 5, "results": results}, indent=2))


if __name__ == "__main__":
    main()
