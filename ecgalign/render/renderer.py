"""The batched printout renderer: signals (B, 12, T) in mV -> images (B, 3, H, W) + exact ground truth.

Clean images start from a cached page template (grid, labels, calibration pulses, separators, legend; built
once per configuration and device) onto which each image's header text and traces are composited sparsely.
Augmented images look the grid up through a per-image homography (ecgalign.render.geometry), blend a
per-image palette, draw text, pulses, separators, traces and pen strokes at their mapped positions, then
apply the photometric augmentations. See ecgalign.render for the conventions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
import numpy as np
import torch

from ecgalign.data.record import LEADS_12
from ecgalign.render import augment as aug
from ecgalign.render.dense import LightField, NoiseField, paint_base
from ecgalign.render.draw import (
    GRID_SCHEMES,
    GlyphAtlas,
    Polylines,
    check_scheme,
    composite,
    points_to_pixels,
    rasterize,
)
from ecgalign.render.geometry import (
    OVERSAMPLE,
    GridWarp,
    apply_homography,
    apply_homography_points,
    grid_tables,
)
from ecgalign.render.layout import PULSE_STYLES, Page, check_layout, compute_page, resolve_dpi
from ecgalign.render.traces import TraceIndex, points_polylines, segment_points
from ecgalign.render.truth import GroundTruth, json_floats

_GOLDEN = 0x9E3779B97F4A7C15


@dataclass(frozen=True)
class RenderConfig:
    """What the printout looks like. Sizes in pixels; ``dpi`` None: the page is 11 in (US Letter) wide."""

    layout: str = "3x4+II"
    width: int = 2200
    height: int = 1700
    dpi: float | None = None
    speed: float = 25.0  # paper speed, mm/s
    gain: float = 10.0  # mm/mV
    grid: str = "red"  # a GRID_SCHEMES name; "none" for a grid-less printout
    labels: bool = True
    calibration: bool = True
    separators: bool = True
    legend: bool = True  # "25 mm/s  10 mm/mV" in the footer
    trace_mm: float = 0.25  # trace line width on paper
    min_trace_px: float = 1.0  # never thinner than this (low-resolution training images)
    text_mm: float = 3.0  # cap height of labels and header
    ink: tuple[int, int, int] = (12, 12, 18)
    # other printers' conventions (issue 14; sample_wild_config draws them all)
    frame: bool = False  # a page frame (trace line width) along the image border
    pulse: str = "lead-in"  # calibration pulse: "lead-in" (flat before and after) or "flush" (ends at t = 0)
    label_position: str = "above"  # lead labels "above" or "below" the baseline
    grid_weight: float = 1.0  # grid line widths relative to the scheme's
    legend_gap_mm: float | None = None  # legend this far under the last baseline (None: at the page foot)
    row_pitch_mm: float | None = None  # row pitch (None: the rows share the page height between header and footer)
    rows_top_mm: float | None = None  # top of the first row from the page top (None: the row block centred)

    def __post_init__(self):
        check_layout(self.layout)
        check_scheme(self.grid)
        if int(self.width) < 16 or int(self.height) < 16:
            raise ValueError(f"image size must be at least 16 x 16 px, got {self.width} x {self.height}")
        if self.dpi is not None and not self.dpi > 0:
            raise ValueError(f"dpi must be positive, got {self.dpi}")
        if not (self.speed > 0 and self.gain > 0):
            raise ValueError(f"speed and gain must be positive, got speed={self.speed}, gain={self.gain}")
        if self.pulse not in PULSE_STYLES:
            raise ValueError(f"pulse must be one of {', '.join(PULSE_STYLES)}, got {self.pulse!r}")
        if self.label_position not in ("above", "below"):
            raise ValueError(f"label_position must be 'above' or 'below', got {self.label_position!r}")
        if not 0 < self.grid_weight <= 5:
            raise ValueError(f"grid_weight must be in (0, 5], got {self.grid_weight}")
        if self.legend_gap_mm is not None and not self.legend_gap_mm > 0:
            raise ValueError(f"legend_gap_mm must be positive or None, got {self.legend_gap_mm}")
        if self.row_pitch_mm is not None and not self.row_pitch_mm > 0:
            raise ValueError(f"row_pitch_mm must be positive or None, got {self.row_pitch_mm}")
        if self.rows_top_mm is not None and not self.rows_top_mm >= 0:
            raise ValueError(f"rows_top_mm must be >= 0 or None, got {self.rows_top_mm}")
        if not self.min_trace_px > 0:
            raise ValueError(f"min_trace_px must be positive, got {self.min_trace_px}")

    @classmethod
    def letter(cls, dpi: float = 200.0, **changes) -> RenderConfig:
        """US Letter landscape (11 x 8.5 in) at ``dpi``: 200 -> 2200 x 1700 px (ecg-image-kit's default)."""
        return cls(width=round(11 * dpi), height=round(8.5 * dpi), dpi=float(dpi), **changes)

    @property
    def px_per_mm(self) -> float:
        return resolve_dpi(self.width, self.dpi) / 25.4

    @property
    def trace_px(self) -> float:
        return max(self.trace_mm * self.px_per_mm, self.min_trace_px)


@dataclass
class RenderResult:
    """Images and ground truth of one batch. Coordinates are image pixels (x right, y down, pixel centres at
    integers). ``traces[p]``: (B, n_p, 2) x, y of every sample drawn in panel ``p`` of ``page.panels`` (NaN
    where the signal is NaN); ``bboxes``: (B, P, 4) tight trace box incl. line width, clipped to the image
    (NaN when missing); ``cells``: (B, P, 4, 2) corners of the allotted panel rectangle; ``label_boxes``:
    (B, P, 4); ``missing``: (B, P) panels with no finite sample; ``page_to_image``: (B, 3, 3)."""

    images: torch.Tensor
    page: Page
    config: RenderConfig
    traces: list[torch.Tensor]
    bboxes: torch.Tensor
    cells: torch.Tensor
    label_boxes: torch.Tensor
    missing: torch.Tensor
    page_to_image: torch.Tensor
    seeds: list[int]
    augment: aug.Augment
    augment_params: aug.AugParams | None

    def __len__(self) -> int:
        return self.images.shape[0]

    def ground_truth(self, i: int) -> GroundTruth:
        """Image ``i``'s ground truth, JSON-serialisable (``.to_json()``)."""
        page, cfg = self.page, self.config
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
            t = self.traces[k][i].detach().double().cpu().numpy()
            missing = bool(self.missing[i, k])
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
                    "missing": missing,
                    "x0_page_px": p.x0,
                    "x1_page_px": p.x1,
                    "baseline_y_page_px": p.baseline_y,
                    "bbox_px": None if missing else json_floats(self.bboxes[i, k]),
                    "cell_px": json_floats(self.cells[i, k].double()),
                    "label_bbox_px": json_floats(self.label_boxes[i, k].double()) if cfg.labels else None,
                    "trace_x_px": t[:, 0].copy(),
                    "trace_y_px": t[:, 1].copy(),
                }
            )
        augment = {"config": self.augment.to_dict()}
        if self.augment_params is not None:
            augment.update(self.augment_params.describe(i))
        return GroundTruth(
            width=int(self.images.shape[-1]),
            height=int(self.images.shape[-2]),
            layout=layout,
            page_to_image=self.page_to_image[i].double().tolist(),
            seed=int(self.seeds[i]),
            augment=augment,
            panels=panels,
        )


def _image_seeds(seed: int | Sequence[int], generator: torch.Generator | None, n: int) -> list[int]:
    if generator is not None:
        return [int(s) for s in torch.randint(0, 2**62, (n,), generator=generator)]
    if isinstance(seed, (int, np.integer)):
        return [(int(seed) * _GOLDEN + i * 0xBF58476D1CE4E5B9 + 1) % (2**63 - 1) for i in range(n)]
    seeds = [int(s) for s in seed]
    if len(seeds) != n:
        raise ValueError(f"got {len(seeds)} seeds for {n} signals")
    return seeds


def header_text(meta: str | Mapping | None) -> str:
    """One header line from a string or a mapping with any of id, age, sex, date (others appended)."""
    if meta is None or isinstance(meta, str):
        return meta or ""
    parts = []
    names = {"id": "ID", "age": "Age", "sex": "Sex", "date": "Date"}
    for key, value in meta.items():
        if value is None or value == "":
            continue
        if key == "age" and isinstance(value, float) and value.is_integer():
            value = int(value)
        parts.append(f"{names.get(key, str(key))}: {value}")
    return "   ".join(parts)


def check_signals(signals) -> torch.Tensor:
    x = torch.as_tensor(signals)
    if x.dim() == 2:
        x = x[None]
    if x.dim() != 3 or x.shape[1] != 12 or x.shape[2] < 2:
        raise ValueError(
            f"expected signals of shape (B, 12, T) or (12, T) in mV, leads in the order "
            f"{', '.join(LEADS_12)}; got {tuple(torch.as_tensor(signals).shape)}"
        )
    if not x.is_floating_point():
        raise ValueError(f"signals must be floating point (mV), got {x.dtype}")
    return x


class Renderer:
    """Renders batches for one ``RenderConfig`` and keeps its page templates and work buffers (not
    thread-safe: use one per worker). ``device``: where images are drawn (default: the signals' device).
    ``chunk_pixels``: images are drawn in groups of about this many pixels (bounds the work buffers)."""

    def __init__(
        self,
        config: RenderConfig | None = None,
        device: torch.device | str | None = None,
        chunk_pixels: int | None = None,
    ):
        self.config = config or RenderConfig()
        self.device = torch.device(device) if device is not None else None
        self.chunk_pixels = chunk_pixels
        self._cache: dict = {}

    # ------------------------------------------------------------------ cached page parts
    def page(self, fs: float, n_samples: int) -> Page:
        c = self.config
        key = ("page", float(fs), int(n_samples))
        if key not in self._cache:
            self._cache[key] = compute_page(
                c.layout, c.width, c.height, c.dpi, c.speed, c.gain, fs, n_samples, c.label_position == "below",
                row_pitch_mm=c.row_pitch_mm, rows_top_mm=c.rows_top_mm,
            )
        return self._cache[key]

    def _atlas(self, device: torch.device) -> GlyphAtlas:
        key = ("atlas", str(device))
        if key not in self._cache:
            size = round(self.config.text_mm * self.config.px_per_mm / 0.73)  # cap height ~0.73 em
            self._cache[key] = GlyphAtlas(size, device)
        return self._cache[key]

    def _static_text(self, page: Page) -> list[tuple[int, float, float, str]]:
        c = self.config
        items = []
        if c.labels:
            items += [(0, p.label_xy[0], p.label_xy[1], p.lead) for p in page.panels]
        if c.legend:
            y = page.height - 5.0 * page.px_per_mm
            if c.legend_gap_mm is not None:
                y = min(y, page.baselines[-1] + c.legend_gap_mm * page.px_per_mm)
            items.append((0, page.cal_x0, y, f"{c.speed:g} mm/s   {c.gain:g} mm/mV   {page.fs:g} Hz"))
        return items

    def _parts(self, page: Page, device: torch.device) -> dict:
        """Per page and device: grid tables and transmission, trace index, static text points and lines
        (page px), and the clean uint8 template (3, H, W)."""
        key = ("parts", page.fs, page.n_samples, str(device))
        if key in self._cache:
            return self._cache[key]
        c = self.config
        h, w = page.height, page.width
        tables = grid_tables(w, h, page.px_per_mm, page.grid_origin, c.grid, device, c.grid_weight)
        rows, cols = ((torch.arange(n, device=device) + 1) * OVERSAMPLE for n in (h, w))
        trans = tables[1][rows][:, None] * tables[0][cols][None, :]  # (H, W) grid transmission, 1 - opacity
        paper, grid_rgb, _, _ = GRID_SCHEMES[c.grid]
        paper_t = torch.tensor(paper, dtype=torch.float32, device=device)[:, None, None]
        grid_t = torch.tensor(grid_rgb, dtype=torch.float32, device=device)[:, None, None]
        template = (grid_t + (paper_t - grid_t) * trans[None]).round_().to(torch.uint8)[None].contiguous()
        text = self._atlas(device).points(self._static_text(page))
        segments = (page.calibration_polylines(c.pulse) if c.calibration else []) + (
            page.separator_segments() if c.separators else []
        )
        if c.frame:  # page frame: a closed line just inside the image border
            e = max(0.0, c.trace_px / 2 - 0.5)  # the outer pixel row and column fully covered
            segments.append([(e, e), (w - 1 - e, e), (w - 1 - e, h - 1 - e), (e, h - 1 - e), (e, e)])
        lines, join = segment_points(segments, device)
        scratch = torch.zeros(h * w, device=device)
        ink = torch.tensor(c.ink, dtype=torch.float32, device=device)
        if text[0].numel():
            flat, a = points_to_pixels(text[0], text[1], text[2], h, w)
            composite(template, flat, a, ink, scratch, reduce="sum")
        if segments:
            flat, a = rasterize(points_polylines(lines[None], join), c.trace_px, h, w)
            composite(template, flat, a, ink, scratch)
        parts = {
            "tables": tables,
            "trans": trans,
            "text": text,
            "lines": (lines, join),
            "template": template[0],
            "traces": TraceIndex(page, device),
        }
        self._cache[key] = parts
        return parts

    def _buffer(self, name: str, shape: tuple, device: torch.device, dtype=torch.float32) -> torch.Tensor:
        """A reusable work buffer (re-allocating tens of MB per image costs more than the drawing on CPU)."""
        key = ("buf", name, str(device), dtype)
        size = int(np.prod(shape))
        buf = self._cache.get(key)
        if buf is None or buf.numel() < size:
            buf = torch.zeros(size, device=device, dtype=dtype)
            self._cache[key] = buf
        return buf[:size].view(shape)

    def _noise_tile(self, device: torch.device) -> torch.Tensor:
        key = ("noise", str(device))
        if key not in self._cache:
            g = torch.Generator(device=device).manual_seed(0x5EED)
            c = self.config
            self._cache[key] = torch.randn(c.height + 32, c.width + 32, generator=g, device=device)
        return self._cache[key]

    # ------------------------------------------------------------------ public entry point
    def render(
        self,
        signals,
        fs: float,
        *,
        augment: str | aug.Augment | None = "none",
        seed: int | Sequence[int] = 0,
        generator: torch.Generator | None = None,
        header: Sequence[str | Mapping | None] | None = None,
        output: str = "uint8",
        out: torch.Tensor | None = None,
    ) -> RenderResult:
        """Draw ``signals`` (B, 12, T) or (12, T), mV, sampled at ``fs`` Hz.

        ``augment``: "none" | "light" | "heavy" | an ``Augment``. Image i's randomness comes from its own
        seed: ``seed`` (int: per-image seeds derived from it and i; a sequence: one per image) or
        ``generator`` (seeds drawn from it), so a batch renders exactly like its images one at a time.
        ``header``: per-image text or mapping (id, age, sex, date). ``output``: "uint8" (B, 3, H, W) 0-255
        or "float" (0-1 float32).
        ``out``: an image tensor to draw into (contiguous, that shape and dtype, on the drawing device);
        reusing one across calls saves the first-touch cost of fresh memory (a few ms per full-size image
        on CPU).
        """
        x = check_signals(signals)
        if output not in ("uint8", "float"):
            raise ValueError(f"output must be 'uint8' or 'float', got {output!r}")
        if not fs > 0:
            raise ValueError(f"fs must be positive, got {fs}")
        device = self.device or x.device
        x = x.to(device=device, dtype=torch.float32)
        b = x.shape[0]
        if header is not None and len(header) != b:
            raise ValueError(f"got {len(header)} headers for {b} signals")
        augment = aug.resolve_augment(augment)
        seeds = _image_seeds(seed, generator, b)
        c = self.config
        page = self.page(fs, x.shape[2])
        parts = self._parts(page, device)
        index: TraceIndex = parts["traces"]
        params = aug.sample_params(augment, seeds, c.height, c.width) if augment.enabled else None
        m = params.page_to_image if params is not None else torch.eye(3, dtype=torch.float64).expand(b, 3, 3)
        page_points, missing = index.page_points(x)
        points = apply_homography(page_points, m)
        dtype = torch.uint8 if output == "uint8" else torch.float32
        if out is None:
            images = torch.empty(b, 3, c.height, c.width, device=device, dtype=dtype)
        elif (
            out.shape != (b, 3, c.height, c.width)
            or out.dtype != dtype
            or out.device.type != torch.device(device).type
            or (torch.device(device).index is not None and out.device.index != torch.device(device).index)
            or not out.is_contiguous()
        ):
            raise ValueError(
                f"out must be a contiguous {dtype} tensor of shape {(b, 3, c.height, c.width)} on "
                f"{device}, got {out.dtype} {tuple(out.shape)} on {out.device}"
            )
        else:
            images = out
        chunk = max(
            1, (self.chunk_pixels or (2**22 if device.type == "cpu" else 2**26)) // (c.height * c.width)
        )
        headers = [header_text(h) for h in header] if header is not None else [""] * b
        for s in range(0, b, chunk):
            e = min(b, s + chunk)
            lines = index.polylines(points[s:e])
            if params is None:
                self._draw_clean(page, lines, headers[s:e], device, images[s:e])
            else:
                self._draw_augmented(
                    page, lines, headers[s:e], params, torch.arange(s, e), device, images[s:e]
                )
        cells, labels = _cells_and_labels(page, m, self._atlas(device), c.labels)
        return RenderResult(
            images,
            page,
            c,
            index.split(points),
            index.boxes(points, c.trace_px / 2, c.width, c.height).cpu(),
            cells,
            labels,
            missing,
            m.clone(),
            seeds,
            augment,
            params,
        )

    # ------------------------------------------------------------------ drawing
    def _header_items(self, headers: list[str], page: Page) -> list[tuple[int, float, float, str]]:
        y = 3.0 * page.px_per_mm
        return [(i, page.cal_x0, y, text) for i, text in enumerate(headers) if text]

    def _draw_clean(
        self, page: Page, traces: Polylines, headers: list[str], device: torch.device, out: torch.Tensor
    ) -> None:
        c = self.config
        n, h, w = out.shape[0], page.height, page.width
        template = self._parts(page, device)["template"]
        canvas = (
            out if out.dtype == torch.uint8 else self._buffer("canvas8", (n, 3, h, w), device, torch.uint8)
        )
        canvas.copy_(template.expand(n, 3, h, w))
        scratch = self._buffer("scratch", (n * h * w,), device)
        ink = torch.tensor(c.ink, dtype=torch.float32, device=device)
        items = self._header_items(headers, page)
        if items:
            img, xy, a = self._atlas(device).points(items)
            flat, a = points_to_pixels(img, xy, a, h, w)
            composite(canvas, flat, a, ink, scratch, reduce="sum")
        flat, a = rasterize(traces, c.trace_px, h, w)
        composite(canvas, flat, a, ink, scratch)
        if canvas is not out:
            torch.mul(canvas, 1 / 255, out=out)

    def _palette(self, params: aug.AugParams, idx: torch.Tensor, device: torch.device) -> torch.Tensor:
        """(b, 6, 3) paper, grid, ink and three pen colours after grid-colour and colour shifts (0-255)."""
        c = self.config
        paper, grid_rgb, _, _ = GRID_SCHEMES[c.grid]
        n = idx.shape[0]
        base = torch.tensor([paper, grid_rgb, c.ink], dtype=torch.float64).expand(n, 3, 3).clone()
        gc = params.grid_colour[idx]
        base[:, 1] = torch.lerp(base[:, 1], gc[:, :3], gc[:, 3:4])
        colours = torch.cat([base, aug.PEN_COLOURS.double().expand(n, 3, 3)], 1)
        return aug.palette_transform(colours, params.colour[idx]).float().to(device)

    def _draw_augmented(
        self,
        page: Page,
        traces: Polylines,
        headers: list[str],
        params: aug.AugParams,
        idx: torch.Tensor,
        device: torch.device,
        out: torch.Tensor,
    ) -> None:
        c = self.config
        n, h, w, mm = out.shape[0], page.height, page.width, page.px_per_mm
        parts = self._parts(page, device)
        m = params.page_to_image[idx]
        on = {k: v[idx] for k, v in params.on.items()}
        palette = self._palette(params, idx, device)
        geometric = bool(torch.stack([on[g] for g in aug.GEOMETRIC]).any())
        warp = GridWarp(
            torch.linalg.inv(m) if geometric else None,
            parts["tables"],
            parts["trans"],
            h,
            w,
            need_inside=bool(on["perspective"].any()),
        )
        light = LightField(params, idx, h, w, mm, device)
        noise = NoiseField(self._noise_tile(device), params, idx, h, w)
        post = bool((on["photocopy"] | on["blur"] | on["jpeg"]).any())
        mode = "float255" if post else ("uint8" if out.dtype == torch.uint8 else "float1")
        canvas = self._buffer("canvas", (n, 3, h, w), device) if post else out
        paint_base(
            canvas,
            mode,
            palette,
            warp,
            light,
            noise,
            lambda name, shape, dtype: self._buffer(name, shape, device, dtype),
        )
        scale = 1 / 255 if mode == "float1" else 1.0
        scratch = self._buffer("scratch", (n * h * w,), device)

        def paint(
            flat: torch.Tensor, alpha: torch.Tensor, colour: torch.Tensor, reduce: str = "amax"
        ) -> None:
            """Ink of per-image ``colour`` (b, 3) under the image's light and noise."""
            img = torch.div(flat, h * w, rounding_mode="floor")
            col = colour[img]
            if light.active or noise.active:
                pix = flat - img * (h * w)
                y, x = torch.div(pix, w, rounding_mode="floor"), pix % w
                if light.active:
                    col = col * light.at(img, x, y)[:, None]
                if noise.active:
                    col = col + noise.at(img, x, y)[:, None]
            composite(canvas, flat, alpha, col.clamp_(0, 255) * scale, scratch, reduce)

        ink = palette[:, 2]
        img, xy, a = parts["text"]
        img = torch.arange(n, device=device).repeat_interleave(img.shape[0])
        xy, a = xy.repeat(n, 1), a.repeat(n)
        items = self._header_items(headers, page)
        if items:
            himg, hxy, ha = self._atlas(device).points(items)
            img, xy, a = torch.cat([img, himg]), torch.cat([xy, hxy]), torch.cat([a, ha])
        if img.numel():
            paint(*points_to_pixels(img, apply_homography_points(xy, img, m), a, h, w), ink, reduce="sum")
        lines, join = parts["lines"]
        if lines.numel():
            traces = Polylines.cat(
                [points_polylines(apply_homography(lines.expand(n, -1, -1), m), join), traces]
            )
        paint(*rasterize(traces, c.trace_px, h, w), ink)

        if bool(on["handwriting"].any()):
            sxy, widths, pen = aug.stroke_polylines(params, idx, h, w, mm)
            sxy = apply_homography(sxy.reshape(n, -1, 2).float().to(device), m).reshape(sxy.shape)
            for k in range(int(params.strokes[idx][:, :, 7].sum(1).max())):  # one pass per stroke slot
                lines = Polylines.from_batch(sxy[:, k : k + 1])
                width_px = widths[:, k].float().to(device).repeat_interleave(sxy.shape[2])
                paint(
                    *rasterize(lines, width_px, h, w),
                    palette[torch.arange(n, device=device), 3 + pen[:, k].to(device)],
                )

        if post:
            for name, fn in (
                ("photocopy", lambda x, s: aug.photocopy(x, params.photocopy[idx][s])),
                ("blur", lambda x, s: aug.gaussian_blur(x, params.blur_sigma_mm[idx][s] * mm)),
                ("jpeg", lambda x, s: aug.jpeg_like(x, params.jpeg_quality[idx][s])),
            ):
                sel = on[name].nonzero()[:, 0]
                if sel.numel():
                    canvas[sel.to(device)] = fn(canvas[sel.to(device)], sel)
            canvas.clamp_(0, 255)
            if out.dtype == torch.uint8:
                out.copy_(canvas.round_())
            else:
                torch.mul(canvas, 1 / 255, out=out)


def _cells_and_labels(
    page: Page, m: torch.Tensor, atlas: GlyphAtlas, labels: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Panel cells as image-space quads (B, P, 4, 2) and label boxes (B, P, 4; NaN without labels)."""
    b = m.shape[0]
    quads = []
    for p in page.panels:
        x0, y0, x1, y1 = p.cell
        quads.append([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])
    for p in page.panels:
        lx, ly = p.label_xy
        lw = atlas.text_width(p.lead)
        quads.append([(lx, ly), (lx + lw, ly), (lx + lw, ly + atlas.height), (lx, ly + atlas.height)])
    q = torch.tensor(quads, dtype=torch.float64).reshape(1, -1, 2).expand(b, -1, -1)
    q = apply_homography(q, m).reshape(b, -1, 4, 2)
    n = len(page.panels)
    cells, lab = q[:, :n], q[:, n:]
    label_boxes = torch.cat([lab.amin(2), lab.amax(2)], -1)
    if not labels:
        label_boxes[:] = float("nan")
    return cells.float(), label_boxes.float()


def render_ecg(
    signals, fs: float, *, config: RenderConfig | None = None, device=None, **kwargs
) -> RenderResult:
    """One-off rendering (``Renderer(config).render(...)``); keep a ``Renderer`` to reuse its caches."""
    return Renderer(config or RenderConfig(), device=device).render(signals, fs, **kwargs)
