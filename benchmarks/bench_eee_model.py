"""Speed and memory of EEE's model pieces (seed 003_74d6fba967a030e7, sections 3.3-3.4), to size recipes:
one full training step (shift a fraction of the strips, ECG token Transformer + tubelet-ViT echo encoder,
alignment head, the four loss terms, backward, AdamW) per ``ecg_token_<size>`` / ``echo_<size>`` pair on
random data, and the hierarchical loss alone on a large token batch. Prints JSON.

    python benchmarks/bench_eee_model.py --sizes tiny,small --batch 8 --clips 8 --steps 5
    python benchmarks/bench_eee_model.py --device cuda --precision bf16 --sizes tiny,small,base --batch 32
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from ecgalign.losses.hierarchical import eee_loss
from ecgalign.models.encoders.ecg import create_encoder
from ecgalign.models.encoders.echo import create_echo_encoder
from ecgalign.models.heads import AlignmentHead, shift_signals
from ecgalign.data.spec import InputSpec


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def batch(size: int, clips: int, token_size: int, clip_shape: tuple[int, ...], device: torch.device,
          seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    pad = torch.zeros(size, clips, dtype=torch.bool)
    pad[::4, clips // 2:] = True  # every fourth sequence half padded
    return {
        "ecg": torch.randn(size, 1, clips * token_size, generator=g).to(device),
        "echo": torch.randint(0, 256, (size, clips, *clip_shape), dtype=torch.uint8, generator=g).to(device),
        "padding_mask": pad.to(device),
        "study_id": torch.randint(0, max(1, size // 2), (size,), generator=g).to(device),
        "patient_id": torch.randint(0, max(1, size // 4), (size,), generator=g).to(device),
    }


def bench_pair(size: str, args: argparse.Namespace, device: torch.device) -> dict:
    spec = InputSpec(fs=100.0, seconds=args.clips * 0.5, leads=("II",), bandpass=None)
    ecg = create_encoder(f"ecg_token_{size}", input_spec=spec).to(device)
    echo = create_echo_encoder(f"echo_{size}", max_clips=max(64, args.clips)).to(device)
    head = AlignmentHead(ecg.embed_dim, echo.embed_dim).to(device)
    params = [p for m in (ecg, echo, head) for p in m.parameters()]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    data = batch(args.batch, args.clips, ecg.token_size, echo.clip_shape, device, seed=0)
    lengths = (~data["padding_mask"]).sum(1) * ecg.token_size
    dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32
    generator = torch.Generator().manual_seed(0)
    times = []
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for step in range(args.steps + 1):
        sync(device)
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype, enabled=args.precision == "bf16"):
            strips, shifted = shift_signals(data["ecg"], 0.25, lengths, step=ecg.token_size,
                                            generator=generator)
            f_ecg = ecg.forward_features(strips, data["padding_mask"])
            f_echo = echo.forward_features(data["echo"], data["padding_mask"])
            z_ecg, z_echo = ecg.pool(f_ecg), echo.pool(f_echo)
            out = eee_loss(z_ecg, z_echo, ecg.tokens(f_ecg), echo.tokens(f_echo), data["study_id"],
                           data["patient_id"], 1 / 0.07, padding_mask=data["padding_mask"], shifted=shifted,
                           align_logits=head(z_ecg, z_echo))
        loss = out["token"] + out["sid"] + out["pid"] + out["align"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        sync(device)
        if step:  # the first step warms up kernels and allocators
            times.append(time.perf_counter() - start)
    per_step = sorted(times)[len(times) // 2]
    valid_clips = int((~data["padding_mask"]).sum())
    return {
        "pair": f"ecg_token_{size} + echo_{size}",
        "params_ecg_M": round(sum(p.numel() for p in ecg.parameters()) / 1e6, 2),
        "params_echo_M": round(sum(p.numel() for p in echo.parameters()) / 1e6, 2),
        "clip_shape": list(echo.clip_shape),
        "tubelets_per_clip": echo.clip_vit.pos_embed.shape[1] - 1,
        "median_step_s": round(per_step, 4),
        "sequences_per_s": round(args.batch / per_step, 2),
        "valid_clips_per_s": round(valid_clips / per_step, 2),
        "peak_memory_GiB": (round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
                            if device.type == "cuda" else None),
        "final_loss": round(loss.item(), 4),
    }


def bench_loss(tokens: int, device: torch.device, repeats: int = 5) -> dict:
    """eee_loss forward + backward with ``tokens`` token pairs (B = tokens / 20 sequences of 20)."""
    g = torch.Generator().manual_seed(1)
    b, t, d = tokens // 20, 20, 256
    ecg = torch.randn(b, t + 1, d, generator=g).to(device).requires_grad_(True)
    echo = torch.randn(b, t + 1, d, generator=g).to(device).requires_grad_(True)
    study = torch.randint(0, max(1, b // 2), (b,), generator=g).to(device)
    times = []
    for _ in range(repeats + 1):
        sync(device)
        start = time.perf_counter()
        out = eee_loss(ecg[:, 0], echo[:, 0], ecg[:, 1:], echo[:, 1:], study, study // 2, 1 / 0.07)
        (out["token"] + out["sid"] + out["pid"]).backward()
        sync(device)
        times.append(time.perf_counter() - start)
    negatives = out["token_negatives_same"] + out["token_negatives_other"]
    return {"token_pairs": b * t, "median_s": round(sorted(times[1:])[repeats // 2], 4),
            "token_negatives_per_anchor": round(negatives.item(), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--sizes", default="tiny", help="comma-separated: tiny, small, base")
    parser.add_argument("--batch", type=int, default=4, help="sequences per step")
    parser.add_argument("--clips", type=int, default=8, help="clips (= ECG tokens of 0.5 s) per sequence")
    parser.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up step")
    parser.add_argument("--loss-tokens", type=int, default=2560, help="token pairs for the loss-only timing")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    result = {
        "device": (torch.cuda.get_device_name(device) if device.type == "cuda"
                   else f"cpu x {torch.get_num_threads()} threads"),
        "torch": torch.__version__, "precision": args.precision, "batch": args.batch, "clips": args.clips,
        "pairs": [bench_pair(size, args, device) for size in args.sizes.split(",")],
        "loss_only": bench_loss(args.loss_tokens, device),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
