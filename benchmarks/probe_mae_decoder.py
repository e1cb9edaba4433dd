"""Why did the tiny `mae` (and `merit`'s reconstruction term) stay at MSE ~1.0 on CPU? A diagnostic, not a
speed benchmark: masked modelling on a task whose answer is a copy. Lead II of synthetic records is copied to
all 12 leads, so a masked patch equals the same-time patch of any other lead (visible for ~96 % of masked
patches at 75 % per-lead masking). Predicting zero scores 1.0 (z-scored signals).

The same tiny ViT (64-d, 2 layers) is trained with ST-MEM's per-lead decoder (each lead decoded alone, so the
encoder must carry other leads' same-time content into that lead's visible tokens) and with a joint decoder
(attends across leads). If the masking / restore plumbing were wrong, neither could learn the copy. Prints
JSON: the reconstruction loss every 100 steps for both.

    python benchmarks/probe_mae_decoder.py [--steps 800] [--records 256]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch


def run(per_lead: bool, x: torch.Tensor, steps: int, seed: int) -> list[tuple[int, float]]:
    from ecgalign.tasks import ECGTextTask
    from ecgalign.tasks import load_recipe

    torch.manual_seed(seed)
    recipe = load_recipe("mae", {"model": {"encoder_kwargs": {"embed_dim": 64, "depth": 2, "num_heads": 2},
                                           "decoder": {"decoder_dim": 32, "depth": 1, "num_heads": 2,
                                                       "per_lead": per_lead}}})
    task = ECGTextTask(recipe)
    opt = torch.optim.AdamW(task.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(seed)
    curve = []
    for step in range(steps + 1):
        idx = torch.randint(0, len(x), (32,), generator=gen)
        out = task({"ecg": x[idx]}, generator=gen)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        if step % 100 == 0:
            curve.append((step, round(float(out["reconstruction"]), 4)))
    return curve


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--records", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    from ecgalign.data.preprocess import Preprocess
    from ecgalign.data.store import ECGStore
    from ecgalign.synth.store import synthesize_store

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        synthesize_store(Path(tmp) / "s", args.records, seed=args.seed, fs=100.0, preprocess=Preprocess.preset("baselines"))
        base = torch.from_numpy(ECGStore(Path(tmp) / "s").signals(list(range(args.records))))
    x = base[:, 1:2].expand(-1, 12, -1).contiguous()  # lead II in every lead
    result = {"benchmark": "probe_mae_decoder", "steps": args.steps, "records": args.records, "batch_size": 32,
              "command": f"python benchmarks/probe_mae_decoder.py --steps {args.steps} --records {args.records}"}
    for name, per_lead in (("per_lead_decoder", True), ("joint_decoder", False)):
        t0 = time.perf_counter()
        result[name] = {"loss_every_100_steps": run(per_lead, x, args.steps, args.seed),
                        "seconds": round(time.perf_counter() - t0, 1)}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
