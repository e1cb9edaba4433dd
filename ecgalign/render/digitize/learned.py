"""Learned digitiser option: a small U-Net that marks the ECG trace's pixels (issue 14).

The 2024 PhysioNet Challenge's strongest digitisers segment the trace with a U-Net trained on rendered
printouts, then vectorise the mask. Ours is trained on ``ecgalign.render`` printouts drawn with every page
convention and scanner/photo artefact at random (``sample_wild_config`` + ``augment="wild"``): the renderer
gives unlimited exact ground truth (every trace sample's pixel position, and the calibration pulses), so the
target mask is the trace polylines rasterised at the printout's line width. Grid, text, separators, page
frames and pen strokes are background: the network learns to drop them.

The network sees the classic digitiser's three darkness maps (``image.darkness_maps``: darkest channel,
channel mean and chroma, each with the paper's brightness divided out), not raw RGB, so paper tint and uneven
light are already gone from its input. Its output replaces the classic pipeline's ink map; rows, the trace
path, calibration pulses, time origin and lead windows are found as before (``core.digitize(...,
segmenter=...)``), so the result carries the same status, confidence and flags.

    seg = TraceSegmenter.load("runs/seg/segmenter.pt")
    res = digitize("printout.png", "3x4+II", segmenter=seg)

    fit = train_segmenter(signals, 500.0, "runs/seg", steps=2000)   # (N, 12, T) mV; resumes from runs/seg

Training is deterministic given ``seed`` (page k is drawn from seed and k; a step's crops from seed and the
step), checkpoints every ``save_every`` steps (atomically) and resumes from the last one.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ecgalign.render.digitize.image import DigitizeError, darkness_maps

FORMAT = "ecgalign.trace-segmenter"
VERSION = 1
CHECKPOINT = "segmenter-train.pt"  # resumable training state (network, optimiser, step)
FINAL = "segmenter.pt"  # the trained segmenter (spec + weights)
THRESHOLD = 0.5  # probability above which a pixel is trace ink


@dataclass(frozen=True)
class SegmenterSpec:
    """Architecture of the U-Net: ``widths`` per level (each level halves the resolution)."""

    widths: tuple[int, ...] = (8, 16, 32, 64)
    in_channels: int = 3

    def __post_init__(self):
        if len(self.widths) < 2 or any(int(w) < 1 for w in self.widths):
            raise ValueError(f"widths must list at least two positive channel counts, got {self.widths}")

    @property
    def multiple(self) -> int:
        """Input sides are padded to a multiple of this."""
        return 2 ** (len(self.widths) - 1)


class _Block(nn.Sequential):
    def __init__(self, c_in: int, c_out: int):
        super().__init__(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
        )


class TraceUNet(nn.Module):
    """(B, 3, H, W) darkness maps -> (B, 1, H, W) trace logits; H and W multiples of ``spec.multiple``."""

    def __init__(self, spec: SegmenterSpec = SegmenterSpec()):
        super().__init__()
        w = list(spec.widths)
        self.spec = spec
        self.down = nn.ModuleList([_Block(spec.in_channels, w[0])] + [_Block(a, b) for a, b in zip(w, w[1:])])
        self.up = nn.ModuleList([nn.ConvTranspose2d(b, a, 2, stride=2) for a, b in zip(w, w[1:])])
        self.merge = nn.ModuleList([_Block(2 * a, a) for a in w[:-1]])
        self.head = nn.Conv2d(w[0], 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for k, block in enumerate(self.down):
            x = block(x if k == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        x = skips.pop()
        for k in range(len(self.up) - 1, -1, -1):
            x = self.merge[k](torch.cat([skips.pop(), self.up[k](x)], 1))
        return self.head(x)


def input_maps(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB in [0, 1] -> (3, H, W) float32 network input: ink, grid and colour darkness maps."""
    m = darkness_maps(np.asarray(rgb, dtype=np.float32))
    return np.stack([m.ink, m.grid, m.colour])


class TraceSegmenter:
    """A trained ``TraceUNet`` and how to run it on a whole page (tiles with overlap, one thread-safe pass)."""

    def __init__(self, net: TraceUNet, meta: dict | None = None, tile: int = 768, overlap: int = 64):
        self.net = net.eval()
        self.meta = dict(meta or {})
        self.tile, self.overlap = int(tile), int(overlap)

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> TraceSegmenter:
        """Load ``segmenter.pt`` (from ``train_segmenter``); a run folder finds it inside. Clear errors for a
        missing file or one that is not a trace segmenter."""
        path = Path(path)
        if path.is_dir():
            path = path / FINAL
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no trace segmenter here (train one: ecgalign train-digitizer)")
        try:
            blob = torch.load(path, map_location=device, weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
            raise ValueError(f"{path}: not a readable trace segmenter file ({type(exc).__name__}: {exc})") from None
        if not isinstance(blob, dict) or blob.get("format") != FORMAT:
            raise ValueError(f"{path}: not a trace segmenter (expected format {FORMAT!r}, "
                             f"got {blob.get('format') if isinstance(blob, dict) else type(blob).__name__!r})")
        if int(blob.get("version", -1)) > VERSION:
            raise ValueError(f"{path}: segmenter format version {blob['version']} is newer than this ecgalign "
                             f"reads ({VERSION}); upgrade ecgalign")
        net = TraceUNet(SegmenterSpec(**{**blob["spec"], "widths": tuple(blob["spec"]["widths"])}))
        net.load_state_dict(blob["state_dict"])
        return cls(net.to(device), blob.get("meta"))

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        blob = {"format": FORMAT, "version": VERSION, "spec": asdict(self.net.spec),
                "state_dict": self.net.state_dict(), "meta": self.meta}
        _atomic_save(blob, path)
        return path

    @torch.no_grad()
    def probability(self, rgb: np.ndarray) -> np.ndarray:
        """(H, W, 3) RGB in [0, 1] -> (H, W) float32 probability that a pixel is trace ink."""
        return self.probability_of_maps(input_maps(rgb))

    @torch.no_grad()
    def probability_of_maps(self, maps: np.ndarray) -> np.ndarray:
        """(3, H, W) ``input_maps`` -> (H, W) float32 trace probability, computed tile by tile (each tile
        padded by ``overlap`` px of context, which is dropped from its output)."""
        h, w = maps.shape[1:]
        mult = self.net.spec.multiple
        dev = next(self.net.parameters()).device
        out = np.empty((h, w), dtype=np.float32)
        x = torch.from_numpy(np.ascontiguousarray(maps, dtype=np.float32))
        step, ov = self.tile, self.overlap
        for y0 in range(0, h, step):
            for x0 in range(0, w, step):
                y1, x1 = min(h, y0 + step), min(w, x0 + step)
                a, b = max(0, y0 - ov), max(0, x0 - ov)
                c1, d1 = min(h, y1 + ov), min(w, x1 + ov)
                patch = x[:, a:c1, b:d1]
                ph, pw = patch.shape[1:]
                pad_h, pad_w = (-ph) % mult, (-pw) % mult
                patch = F.pad(patch[None], (0, pad_w, 0, pad_h), mode="replicate" if min(ph, pw) > 1 else "constant")
                prob = torch.sigmoid(self.net(patch.to(dev)))[0, 0, :ph, :pw].cpu().numpy()
                out[y0:y1, x0:x1] = prob[y0 - a : y0 - a + (y1 - y0), x0 - b : x0 - b + (x1 - x0)]
        return out


# ---------------------------------------------------------------------------------------------- training
def _atomic_save(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@dataclass
class Page:
    """One rendered training printout: network input maps (3, H, W), target trace mask (H, W) and where the
    trace pixels are (for crops centred on the trace)."""

    maps: np.ndarray
    target: np.ndarray
    trace_yx: np.ndarray
    dpi: float


def render_page(signal: np.ndarray, fs: float, seed: int, dpi: tuple[float, float] = (100.0, 300.0),
                layout: str = "3x4+II", augment: str = "wild") -> Page:
    """Draw one printout of ``signal`` (12, T) mV with a random page convention (``sample_wild_config(seed)``)
    and ``augment`` artefacts, and its exact trace mask: every drawn trace sample and calibration pulse
    rasterised at the printout's line width (pixels at least 30 % covered)."""
    from ecgalign.render.draw import Polylines, rasterize
    from ecgalign.render.geometry import apply_homography
    from ecgalign.render.renderer import Renderer
    from ecgalign.render.traces import points_polylines, segment_points
    from ecgalign.render.wild import sample_wild_config

    cfg = sample_wild_config(seed, layout=layout, dpi=dpi)
    res = Renderer(cfg).render(torch.as_tensor(signal, dtype=torch.float32), fs, augment=augment, seed=seed)
    h, w = res.images.shape[-2:]
    parts = [Polylines.from_batch(t[0][None, None]) for t in res.traces if t.shape[1] > 1]
    if cfg.calibration:
        pts, join = segment_points(res.page.calibration_polylines(cfg.pulse))
        parts.append(points_polylines(apply_homography(pts[None], res.page_to_image[:1]), join))
    flat, alpha = rasterize(Polylines.cat(parts), cfg.trace_px, h, w)
    cover = torch.zeros(h * w)
    cover.index_put_((flat,), alpha, accumulate=True)
    target = (cover >= 0.3).view(h, w).numpy()
    rgb = res.images[0].permute(1, 2, 0).numpy().astype(np.float32) * np.float32(1 / 255)
    return Page(input_maps(rgb), target, np.argwhere(target), float(cfg.dpi or 0.0))


def crops(page: Page, n: int, size: int, rng: np.random.Generator, on_trace: float = 0.6) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random ``size`` x ``size`` crops of a page (a share ``on_trace`` centred on a trace pixel, the
    rest anywhere: text, frames, margins); pages smaller than ``size`` are padded with paper (zeros)."""
    c, h, w = page.maps.shape
    xs = np.zeros((n, c, size, size), dtype=np.float32)
    ys = np.zeros((n, 1, size, size), dtype=np.float32)
    for k in range(n):
        if page.trace_yx.size and rng.random() < on_trace:
            cy, cx = page.trace_yx[rng.integers(len(page.trace_yx))]
            y0, x0 = int(cy) - size // 2 + int(rng.integers(-size // 4, size // 4 + 1)), int(cx) - size // 2
        else:
            y0, x0 = int(rng.integers(0, max(1, h - size + 1))), int(rng.integers(0, max(1, w - size + 1)))
        y0, x0 = int(np.clip(y0, 0, max(0, h - size))), int(np.clip(x0, 0, max(0, w - size)))
        hh, ww = min(size, h - y0), min(size, w - x0)
        xs[k, :, :hh, :ww] = page.maps[:, y0 : y0 + hh, x0 : x0 + ww]
        ys[k, 0, :hh, :ww] = page.target[y0 : y0 + hh, x0 : x0 + ww]
    return xs, ys


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy plus soft Dice (the trace covers 1-2 % of a page: Dice keeps the thin line from
    being traded for background)."""
    bce = F.binary_cross_entropy_with_logits(logits, target)
    p = torch.sigmoid(logits)
    inter = (p * target).sum()
    dice = 1 - (2 * inter + 1) / (p.sum() + target.sum() + 1)
    return bce + dice


def _counts(prob: np.ndarray, target: np.ndarray, threshold: float, tolerance: int) -> np.ndarray:
    """Predicted pixels near the target, predicted pixels, target pixels near a prediction, target pixels."""
    from scipy.ndimage import binary_dilation

    pred = np.asarray(prob) > threshold
    target = np.asarray(target, dtype=bool)
    near_target = binary_dilation(target, iterations=tolerance) if tolerance > 0 else target
    near_pred = binary_dilation(pred, iterations=tolerance) if tolerance > 0 else pred
    return np.array([np.logical_and(pred, near_target).sum(), pred.sum(),
                     np.logical_and(target, near_pred).sum(), target.sum()], dtype=np.float64)


def _scores(c: np.ndarray) -> dict:
    precision, recall = c[0] / max(1.0, c[1]), c[2] / max(1.0, c[3])
    f1 = 2 * precision * recall / max(1e-12, precision + recall)
    return {"precision": round(float(precision), 4), "recall": round(float(recall), 4), "f1": round(float(f1), 4)}


def pixel_scores(prob: np.ndarray, target: np.ndarray, threshold: float = THRESHOLD, tolerance: int = 0) -> dict:
    """Precision, recall and F1 of ``prob > threshold`` against a boolean target; with ``tolerance`` t > 0 a
    predicted pixel within t px of the target counts as right, and a target pixel within t px of a prediction
    as found (a line drawn a pixel wider is not a false trace for a digitiser; a grid line or text is)."""
    return _scores(_counts(prob, target, threshold, tolerance))


def train_segmenter(
    signals: np.ndarray,
    fs: float,
    out: str | Path,
    *,
    steps: int = 2000,
    batch: int = 12,
    crop: int = 192,
    lr: float = 2e-3,
    seed: int = 0,
    dpi: tuple[float, float] = (100.0, 300.0),
    page_reuse: int = 4,
    val_pages: int = 4,
    save_every: int = 200,
    spec: SegmenterSpec = SegmenterSpec(),
    resume: bool = True,
    log: Callable[[dict], None] | None = None,
) -> dict:
    """Train a ``TraceSegmenter`` on printouts of ``signals`` ((N, 12, T) mV at ``fs``) and write
    ``out/segmenter.pt`` (+ ``out/log.jsonl``, and ``segmenter-train.pt`` to resume). Page k (one every
    ``page_reuse`` steps) shows record k mod N with ``sample_wild_config`` conventions and "wild" artefacts
    at ``dpi``; each step takes ``batch`` crops of ``crop`` px. The last ``val_pages`` records (or the first,
    with fewer than 2 * val_pages records) are held out as validation pages: pixel precision / recall / F1
    at each save. Returns the final validation scores and timings."""
    x = np.asarray(signals, dtype=np.float32)
    if x.ndim != 3 or x.shape[1] != 12 or x.shape[0] < 1:
        raise ValueError(f"signals must be (N, 12, T) millivolts with N >= 1, got shape {x.shape}")
    if not (steps >= 1 and batch >= 1 and crop >= spec.multiple and crop % spec.multiple == 0 and page_reuse >= 1):
        raise ValueError(f"steps, batch and page_reuse must be >= 1 and crop a multiple of {spec.multiple}, got "
                         f"steps={steps}, batch={batch}, crop={crop}, page_reuse={page_reuse}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    n_val = val_pages if x.shape[0] >= 2 * val_pages else 0
    train_x, val_x = (x[:-n_val], x[-n_val:]) if n_val else (x, x[:0])
    torch.manual_seed(seed)
    net = TraceUNet(spec)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    start = 0
    ckpt = out / CHECKPOINT
    if resume and ckpt.is_file():
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        if state.get("steps") != steps or state.get("seed") != seed:
            raise ValueError(f"{ckpt}: a run with steps={state.get('steps')}, seed={state.get('seed')} is in this "
                             f"folder; resume it with the same settings or use another --out")
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        start = int(state["step"])
    val = [render_page(val_x[k], fs, seed=10_000_019 + k, dpi=dpi) for k in range(n_val)]
    page, page_no = None, -1
    t0, scores = time.perf_counter(), {}
    net.train()
    for step in range(start, steps):
        k = step // page_reuse
        if k != page_no:
            page_no = k
            page = render_page(train_x[k % len(train_x)], fs, seed=seed * 1_000_003 + k, dpi=dpi)
        rng = np.random.default_rng([seed, step])
        xb, yb = crops(page, batch, crop, rng)
        loss = segmentation_loss(net(torch.from_numpy(xb)), torch.from_numpy(yb))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        done = step + 1
        if done % save_every == 0 or done == steps:
            net.eval()
            seg = TraceSegmenter(net)
            scores = _validate(seg, val)
            net.train()
            entry = {"step": done, "loss": round(float(loss.detach()), 5), "seconds": round(time.perf_counter() - t0, 1),
                     **scores}
            _atomic_save({"net": net.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                          "step": done, "steps": steps, "seed": seed}, ckpt)
            with open(out / "log.jsonl", "a") as f:
                f.write(json.dumps(entry) + "\n")
            if log:
                log(entry)
    net.eval()
    meta = {"steps": steps, "batch": batch, "crop": crop, "lr": lr, "seed": seed, "dpi": list(dpi),
            "records": int(train_x.shape[0]), "fs": float(fs), "augment": "wild", "validation": scores}
    TraceSegmenter(net, meta).save(out / FINAL)
    return {"out": str(out / FINAL), "steps": steps, "resumed_from": start, "validation": scores,
            "seconds": round(time.perf_counter() - t0, 1)}


def _validate(seg: TraceSegmenter, pages: list[Page]) -> dict:
    """Pixel scores pooled over the validation pages: exact, and within 1 px (``pixel_scores``)."""
    if not pages:
        return {}
    probs = [seg.probability_of_maps(p.maps) for p in pages]
    exact = _scores(sum(_counts(q, p.target, THRESHOLD, 0) for q, p in zip(probs, pages)))
    near = _scores(sum(_counts(q, p.target, THRESHOLD, 1) for q, p in zip(probs, pages)))
    return {**exact, **{f"{k}_1px": v for k, v in near.items()}}


__all__ = [
    "SegmenterSpec",
    "TraceUNet",
    "TraceSegmenter",
    "render_page",
    "crops",
    "segmentation_loss",
    "pixel_scores",
    "train_segmenter",
    "input_maps",
    "THRESHOLD",
]
