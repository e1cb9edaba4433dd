"""Ground truth as JSON, PNG writing, and rendering a stream of records to PNG + JSON sidecar files."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch

from ecgalign.data.record import LEADS_12, ECGRecord
from ecgalign.render.augment import Augment
from ecgalign.render.renderer import RenderConfig, Renderer, RenderResult

FORMAT = "ecgalign.render/1"


def _floats(values, decimals: int | None) -> list:
    """A float array as a JSON-ready list: NaN -> None, optionally rounded."""
    arr = np.asarray(values, dtype=np.float64)
    if decimals is not None:
        arr = np.round(arr, decimals)
    out = arr.tolist()
    if arr.ndim == 0:
        return None if math.isnan(out) else out
    return _nan_to_none(out)


def _nan_to_none(x):
    if isinstance(x, list):
        return [_nan_to_none(v) for v in x]
    return None if isinstance(x, float) and math.isnan(x) else x


@dataclass
class GroundTruth:
    """Everything needed to map an image back to its signal (one image; JSON-serialisable).

    ``panels``: one entry per drawn lead segment (lead II twice in 3x4+II): lead, row, col (-1: rhythm strip),
    time window (t_start_s, t_end_s; samples [sample_start, sample_stop)), missing, page geometry
    (x0/x1/baseline in page px), image-space ``bbox_px`` [x0, y0, x1, y1] of the drawn trace, ``cell_px``
    (4 corners of the allotted panel), ``label_bbox_px``, and ``trace_x_px`` / ``trace_y_px``: the image
    pixel of every sample in the window (None where the signal is NaN). ``page_to_image``: 3x3 homography.
    """

    width: int
    height: int
    layout: dict
    page_to_image: list
    seed: int
    augment: dict
    panels: list
    format: str = FORMAT

    @classmethod
    def from_result(cls, res: RenderResult, i: int) -> GroundTruth:
        page, cfg = res.page, res.config
        layout = page.to_dict()
        layout.update(
            grid_scheme=cfg.grid,
            trace_width_px=cfg.trace_px,
            labels=cfg.labels,
            calibration=cfg.calibration,
            calibration_mv=1.0,
            calibration_s=0.2,
            separators=cfg.separators,
            calibration_x0_px=page.cal_x0,
        )
        panels = []
        for k, p in enumerate(page.panels):
            t = res.traces[k][i].detach().double().cpu().numpy()
            panels.append(
                {
                    "lead": p.lead,
                    "lead_index": p.lead_index,
                    "row": p.row,
                    "col": p.col,
                    "rhythm": p.rhythm,
                    "t_start_s": p.t_start,
                    "t_end_s": p.t_end,
                    "sample_start": p.sample_start,
                    "sample_stop": p.sample_stop,
                    "missing": bool(res.missing[i, k]),
                    "x0_page_px": p.x0,
                    "x1_page_px": p.x1,
                    "baseline_y_page_px": p.baseline_y,
                    "bbox_px": None if bool(res.missing[i, k]) else _floats(res.bboxes[i, k], None),
                    "cell_px": _floats(res.cells[i, k].double(), None),
                    "label_bbox_px": None
                    if not cfg.labels
                    else _floats(res.label_boxes[i, k].double(), None),
                    "trace_x_px": _floats(t[:, 0], None),
                    "trace_y_px": _floats(t[:, 1], None),
                }
            )
        augment = {"config": res.augment.to_dict()}
        if res.augment_params is not None:
            augment.update(res.augment_params.describe(i))
        return cls(
            width=int(res.images.shape[-1]),
            height=int(res.images.shape[-2]),
            layout=layout,
            page_to_image=res.page_to_image[i].double().tolist(),
            seed=int(res.seeds[i]),
            augment=augment,
            panels=panels,
        )

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self, decimals: int | None = None, indent: int | None = None) -> str:
        """JSON text; ``decimals`` rounds the per-sample traces (2: 1/100 px; None round-trips exactly)."""
        d = self.to_dict()
        if decimals is not None:
            for p in d["panels"]:
                for key in ("trace_x_px", "trace_y_px"):
                    p[key] = [None if v is None else round(v, decimals) for v in p[key]]
        return json.dumps(d, indent=indent, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> GroundTruth:
        d = json.loads(text)
        if d.get("format") != FORMAT:
            raise ValueError(f"not an {FORMAT} ground-truth file (format={d.get('format')!r})")
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def panel(self, lead: str, rhythm: bool = False) -> dict:
        for p in self.panels:
            if p["lead"] == lead and p["rhythm"] == rhythm:
                return p
        raise KeyError(f"no {'rhythm strip' if rhythm else 'panel'} for lead {lead!r}")


def save_png(
    image: torch.Tensor, path: str | Path, compress_level: int = 6, colors: int | None = None
) -> Path:
    """Write one (3, H, W) image (uint8, or float in [0, 1]) as PNG with Pillow. ``colors``: quantise to a
    palette of that many colours first (much smaller files for previews; lossy)."""
    from PIL import Image

    x = image.detach().cpu()
    if x.is_floating_point():
        x = (x.clamp(0, 1) * 255).round().to(torch.uint8)
    path = Path(path)
    im = Image.fromarray(x.permute(1, 2, 0).contiguous().numpy())
    if colors is not None:
        im = im.quantize(colors=colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    im.save(path, compress_level=compress_level)
    return path


def write_render(
    res: RenderResult,
    i: int,
    out_dir: str | Path,
    stem: str,
    decimals: int | None = 2,
    compress_level: int = 1,
) -> tuple[Path, Path]:
    """``stem.png`` and its ground truth ``stem.json`` in ``out_dir`` (characters other than letters, digits,
    ``.``, ``_`` and ``-`` in ``stem`` become ``_``). PNG level 1: encoding, not rendering, is the slow part
    of writing files (about 0.14 s for a clean 2200 x 1700 image, 0.5 s for a noisy one), and higher levels
    save only a few per cent."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem)
    png = save_png(res.images[i], out_dir / f"{stem}.png", compress_level=compress_level)
    js = out_dir / f"{stem}.json"
    js.write_text(res.ground_truth(i).to_json(decimals=decimals))
    return png, js


def record_signal(rec: ECGRecord) -> np.ndarray:
    """The record's signal in LEADS_12 order (12, T); leads the record lacks are NaN (rendered absent)."""
    out = np.full((12, rec.signal.shape[1]), np.nan, dtype=np.float32)
    for k, lead in enumerate(rec.leads):
        if lead in LEADS_12:
            out[LEADS_12.index(lead)] = rec.signal[k]
    return out


def record_header(rec: ECGRecord) -> dict:
    """Header fields of a record: id, age, sex and (PTB-XL) recording date."""
    date = (rec.extra or {}).get("recording_date")
    return {"id": rec.record_id, "age": rec.age, "sex": rec.sex, "date": date}


def render_records(
    records: Iterable[ECGRecord],
    out_dir: str | Path,
    *,
    config: RenderConfig | None = None,
    augment: str | Augment = "none",
    seed: int = 0,
    batch_size: int = 8,
    limit: int | None = None,
    header: bool = True,
    decimals: int | None = 2,
    device: str | None = None,
) -> Iterator[tuple[Path, Path]]:
    """Render records to ``out_dir/<dataset>_<record_id>.png`` + ``.json`` (what ``ecgalign render`` does).

    Image k of the stream uses seed ``seed + k`` (reproducible whatever the batch size). Records are batched
    while their sampling rate and length agree. Yields the written (png, json) paths.
    """
    renderer = Renderer(config or RenderConfig(), device=device)
    batch: list[ECGRecord] = []
    done = 0

    def flush():
        nonlocal done
        signals = torch.from_numpy(np.stack([record_signal(r) for r in batch]))
        headers = [record_header(r) for r in batch] if header else None
        res = renderer.render(
            signals,
            batch[0].fs,
            augment=augment,
            seed=[seed + done + j for j in range(len(batch))],
            header=headers,
        )
        paths = [
            write_render(res, j, out_dir, f"{r.dataset}_{r.record_id}", decimals) for j, r in enumerate(batch)
        ]
        done += len(batch)
        batch.clear()
        return paths

    for rec in records:
        if limit is not None and done + len(batch) >= limit:
            break
        if batch and (rec.fs != batch[0].fs or rec.signal.shape[1] != batch[0].signal.shape[1]):
            yield from flush()
        batch.append(rec)
        if len(batch) >= batch_size:
            yield from flush()
    if batch:
        yield from flush()
