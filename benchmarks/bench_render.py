"""Printout renderer speed (issue 5 target: <= 45 ms per 2200 x 1700 12-lead image per CPU core, i.e. 50x the
~2.2 s of the public ecg-image-kit).

Renders one real ptbxl-500 record (or a synthetic one when ../shared/data is absent) repeated into batches of
1, 8 and 32, clean and with the "light" preset, with ``torch.set_num_threads(1)``; per-image wall time, best
and median of ``--repeats`` timed passes after one warm-up (the machine is shared, so the best is the figure
to compare; the median shows the noise; CPU time of the process is given beside wall time). Also times the
training-resolution path (448 x 352), the "heavy" preset, and batches drawn into a reused ``out`` tensor
(a training loop's steady state: no first-touch cost of fresh memory). Prints JSON.

    python benchmarks/bench_render.py [--repeats 7] [--data ../shared/data/ptbxl-500]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from ecgalign.render import RenderConfig, Renderer

REPO = Path(__file__).resolve().parents[1]


def load_signal(data: Path) -> tuple[torch.Tensor, str]:
    if data.is_dir():
        try:
            from ecgalign.data.readers import open_dataset

            rec = open_dataset(str(data), fs=500).read(0)
            return torch.from_numpy(rec.signal), f"{data.name} record {rec.record_id} (500 Hz, 10 s)"
        except Exception as exc:  # noqa: BLE001 - fall back to synthetic, and say so
            print(f"# could not read {data}: {exc}; using a synthetic record", file=sys.stderr)
    from ecgalign.synth import synthesize_record

    rec = synthesize_record(0, seed=0, fs=500.0)
    return torch.from_numpy(rec.signal), "synthetic record 0 (500 Hz, 10 s)"


def time_config(
    renderer: Renderer, signal: torch.Tensor, batch: int, augment: str, repeats: int, reuse_out: bool = False
) -> dict:
    x = signal[None].expand(batch, -1, -1).contiguous()
    header = [{"id": "1", "age": 56, "sex": "F", "date": "1984-11-09"}] * batch
    out = renderer.render(x, 500, augment=augment, header=header, seed=0).images if reuse_out else None
    per_image, cpu_per_image = [], []
    for r in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        renderer.render(x, 500, augment=augment, header=header, seed=r, out=out)
        per_image.append((time.perf_counter() - t0) / batch * 1000)
        cpu_per_image.append((time.process_time() - c0) / batch * 1000)
    return {
        "width": renderer.config.width,
        "height": renderer.config.height,
        "batch": batch,
        "augment": augment,
        "out_reused": reuse_out,
        "ms_per_image_best": round(min(per_image), 2),
        "ms_per_image_median": round(statistics.median(per_image), 2),
        "cpu_ms_per_image_best": round(min(cpu_per_image), 2),
        "images_per_s_best": round(1000 / min(per_image), 1),
    }


def time_device(device: str, signal: torch.Tensor, batches: list[int], repeats: int) -> dict:
    """Online rendering on an accelerator (issue 5 target: >= 5,000 light-augmented images/s on an H100 at
    the training resolution, the ecg-scan recipe's image size): batches drawn into a reused tensor, timed
    between synchronisations, distinct seeds per image (every augmentation is drawn per image, as in
    training)."""
    from ecgalign.tasks import load_recipe

    image = load_recipe("ecg-scan").image
    dev = torch.device(device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    renderer = Renderer(RenderConfig(width=image.width, height=image.height), device=dev)
    rows = []
    for batch in batches:
        for augment in ("none", "light"):
            x = signal.to(dev)[None].expand(batch, -1, -1).contiguous()
            out = renderer.render(x, 500, augment=augment, seed=list(range(batch))).images  # warm-up
            sync()
            times = []
            for r in range(repeats):
                t0 = time.perf_counter()
                renderer.render(x, 500, augment=augment, seed=list(range(r * batch, (r + 1) * batch)), out=out)
                sync()
                times.append(time.perf_counter() - t0)
            rows.append({"width": image.width, "height": image.height, "batch": batch, "augment": augment,
                         "images_per_s_best": round(batch / min(times), 1),
                         "images_per_s_median": round(batch / statistics.median(times), 1)})
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or "cpu"
    return {"device": name, "target_images_per_s": 5000, "results": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "ptbxl-500")
    ap.add_argument("--batches", type=int, nargs="+", default=None,
                    help="batch sizes (default: 1 8 32 on CPU, 256 1024 with --device)")
    ap.add_argument("--device", default=None, help="e.g. cuda: time online rendering on that device only")
    args = ap.parse_args()
    signal, source = load_signal(args.data)
    if args.device:
        report = time_device(args.device, signal, args.batches or [256, 1024], args.repeats)
        print(json.dumps({"benchmark": "render_device", "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
                          "record": source, "torch": torch.__version__, **report}, indent=1))
        return
    args.batches = args.batches or [1, 8, 32]
    torch.set_num_threads(1)
    results = []
    full = Renderer(RenderConfig())
    for augment in ("none", "light"):
        for batch in args.batches:
            results.append(time_config(full, signal, batch, augment, args.repeats))
        results.append(time_config(full, signal, 8, augment, args.repeats, reuse_out=True))
    small = Renderer(RenderConfig(width=448, height=352))
    for augment in ("none", "light", "heavy"):
        results.append(time_config(small, signal, 32, augment, args.repeats))
    results.append(time_config(full, signal, 1, "heavy", max(3, args.repeats // 2)))
    print(
        json.dumps(
            {
                "benchmark": "render",
                "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
                "record": source,
                "layout": "3x4+II, 25 mm/s, 10 mm/mV, red grid, header text",
                "threads": torch.get_num_threads(),
                "target_ms_per_image": 45.0,
                "cpu_count": os.cpu_count(),
                "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
                "python": platform.python_version(),
                "torch": torch.__version__,
                "machine": platform.machine(),
                "results": results,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
