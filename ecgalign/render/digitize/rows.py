"""Row alignment: move a printout's trace rows to where this toolkit's renderer draws them (issue 14).

Printers place the rows of a layout differently: ecg-image-kit stacks the four rows of 3x4+II at a ~35 mm pitch
in the lower 60 % of a Letter page, our renderer spreads them over the page between the header and footer bands,
vendors do other things. An image encoder trained on one placement reads another less well, and no amount of
page-level augmentation fully replaces knowing where the rows are. ``align_rows`` finds the rows with the
classic digitiser (its rotation and row finding, ``digitize``), takes the tilt out, and maps the page
vertically so that every row's baseline lands on the baseline ``compute_page`` gives the layout on a page of
that size (US Letter wide, as the renderer sizes its pages), with each row's band (the trace around its
baseline) moved rigidly by whole pixels and only the paper between the bands stretched or squeezed. The time
axis is not touched.

It needs nothing from the image's maker: no sidecar, no generator-specific rule. When the digitiser cannot read
the page (refused, ``failed``, or another number of rows than the layout has), the page is returned unchanged
(tilt included) with ``status="unchanged"`` and the reason, for callers to count and report.

    from ecgalign.render.digitize.rows import align_rows
    page, info = align_rows("printout.png", layout="3x4+II")   # (H, W, 3) float32 in [0, 1], RowAlignment
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ecgalign.render.digitize.core import digitize
from ecgalign.render.digitize.image import DigitizeError, Shear
from ecgalign.render.imagefile import MAX_PIXELS, read_image
from ecgalign.render.layout import LAYOUTS, check_layout, compute_page

ALIGNMENT_VERSION = 2  # part of a loaded model's embedding-cache identity: bump when the output changes
BAND_SHARE = 0.8  # each row's rigid band: this share of half the smaller of the two row pitches, either side
MIN_TILT_DEG = 0.05  # below this the page is not resampled for its tilt


@dataclass
class RowAlignment:
    """What ``align_rows`` did to one page."""

    status: str  # "aligned" or "unchanged"
    found_px: list[float] = field(default_factory=list)  # row baselines found (page frame, tilt removed)
    target_px: list[float] = field(default_factory=list)  # where the renderer draws them on this page
    rotation_deg: float = 0.0
    reason: str = ""  # why a page was left unchanged
    digitizer_status: str = ""


def target_baselines(layout: str, height: int, width: int, px_per_mm: float | None = None, speed: float = 25.0,
                     gain: float = 10.0) -> list[float]:
    """Row baselines (px) the renderer gives ``layout`` on a ``width`` x ``height`` page: at ``px_per_mm``, or by
    default with the page taken as US Letter wide, as the renderer sizes its pages (and so as an encoder trained
    on them saw the rows: positions relative to the page, not to a measured scale whose 1 % error would move the
    last row of a 200 dpi page by 15 px)."""
    dpi = None if px_per_mm is None else px_per_mm * 25.4
    page = compute_page(layout, width=width, height=height, dpi=dpi, speed=speed, gain=gain, fs=500.0, n_samples=5000)
    return [float(b) for b in page.baselines]


def row_map(found: list[float], target: list[float], height: int) -> np.ndarray:
    """(height,) source row (float) of every output row: each found baseline's band (``BAND_SHARE`` of half the
    smaller pitch, either side) moved rigidly onto its target, the paper between bands and above / below the
    first / last band stretched linearly, the page's top and bottom edges kept. Raises ValueError when the knots
    are not increasing (bands that would fold over)."""
    f, t = np.asarray(found, float), np.asarray(target, float)
    if len(f) != len(t) or len(f) == 0:
        raise ValueError(f"found {len(f)} row(s), the layout has {len(t)}")
    t = f + np.round(t - f)  # whole-pixel moves: a band is copied, not interpolated (thin lines stay sharp)
    pitch = min(np.diff(f).min() if len(f) > 1 else height, np.diff(t).min() if len(t) > 1 else height)
    keep = BAND_SHARE * 0.5 * pitch
    out_knots = np.concatenate([[0.0], np.ravel(np.c_[t - keep, t + keep]), [height - 1.0]])
    in_knots = np.concatenate([[0.0], np.ravel(np.c_[f - keep, f + keep]), [height - 1.0]])
    if not (np.all(np.diff(out_knots) > 0) and np.all(np.diff(in_knots) > 0)):
        raise ValueError("row bands overlap or leave the page")
    return np.interp(np.arange(height, dtype=float), out_knots, in_knots)


def _resample(rgb: np.ndarray, src_y: np.ndarray, shear: Shear | None) -> np.ndarray:
    """out[v, u] = rgb at page-frame (u, src_y[v]), the tilt removed when ``shear`` is given. Nearest pixel, not
    bilinear: a trace 1 px wide stays one dark pixel (interpolated at half a pixel it becomes two half-dark
    ones, which an ink map drops as paper). Outside the image: its nearest edge pixel."""
    h, w = rgb.shape[:2]
    if shear is None:  # rows only: copy whole image rows
        return np.ascontiguousarray(rgb[np.clip(np.round(src_y).astype(np.int64), 0, h - 1)])
    tt = shear.t  # page frame -> image: invert u = x + (y - cy) t, v = y - (x - cx) t
    du = np.arange(w, dtype=np.float64)[None, :] - shear.cx
    dv = src_y[:, None] - shear.cy
    x = shear.cx + (du - dv * tt) / (1.0 + tt * tt)
    y = shear.cy + (dv + du * tt) / (1.0 + tt * tt)
    xi = np.clip(np.round(x).astype(np.int64), 0, w - 1)
    yi = np.clip(np.round(y).astype(np.int64), 0, h - 1)
    return np.ascontiguousarray(rgb[yi, xi])


def plan_rows(rgb: np.ndarray, layout: str = "3x4+II", *, speed: float = 25.0, gain: float = 10.0,
              name: str = "image", max_pixels: int = MAX_PIXELS) -> RowAlignment:
    """Where the rows of the page ``rgb`` ((H, W, 3) as ``read_image`` gives) are and where they go: the digitiser's
    part of ``align_rows`` (nearly all of its cost). ``apply_plan`` then moves them; a plan can be kept and applied
    again to the same page."""
    check_layout(layout)
    h, w = rgb.shape[:2]
    n_rows = len(LAYOUTS[layout][0]) + len(LAYOUTS[layout][1])
    try:
        d = digitize(rgb, layout, speed=speed, gain=gain, name=name, max_pixels=max_pixels)
    except DigitizeError as exc:
        return RowAlignment("unchanged", reason=f"digitiser refused the page: {exc}")
    info = RowAlignment("unchanged", found_px=[float(b) for b in d.baselines_px], rotation_deg=float(d.rotation_deg),
                        digitizer_status=d.status)
    if d.status == "failed":
        info.reason = "digitiser failed: " + "; ".join(d.flags)
        return info
    if len(d.baselines_px) != n_rows:
        info.reason = f"found {len(d.baselines_px)} row(s), {layout} has {n_rows}"
        return info
    try:
        target = target_baselines(layout, h, w, None, speed, gain)
        row_map(sorted(info.found_px), target, h)  # bands that would fold over leave the page unchanged
    except ValueError as exc:
        info.reason = str(exc)
        return info
    info.target_px, info.status = target, "aligned"
    return info


def apply_plan(rgb: np.ndarray, info: RowAlignment) -> np.ndarray:
    """The page ``rgb`` with the rows of ``plan_rows``'s ``info`` moved and its tilt removed (unchanged when the
    plan says so)."""
    if info.status != "aligned":
        return rgb
    h, w = rgb.shape[:2]
    src = row_map(sorted(info.found_px), info.target_px, h)
    shear = Shear.of((h, w), info.rotation_deg) if abs(info.rotation_deg) >= MIN_TILT_DEG else None
    return _resample(rgb, src, shear)


def align_rows(image, layout: str = "3x4+II", *, speed: float = 25.0, gain: float = 10.0, name: str | None = None,
               max_pixels: int = MAX_PIXELS) -> tuple[np.ndarray, RowAlignment]:
    """The page of ``image`` (path, PIL image, array or tensor, as ``read_image``) with its rows moved to the
    renderer's baselines for ``layout``, tilt removed: ((H, W, 3) float32 RGB in [0, 1], RowAlignment). An
    unreadable file raises ImageError; a page the digitiser cannot place comes back unchanged (see module)."""
    check_layout(layout)
    label = name or (str(image) if not hasattr(image, "shape") and not hasattr(image, "convert") else "image")
    rgb = read_image(image, name=label, max_pixels=max_pixels)
    info = plan_rows(rgb, layout, speed=speed, gain=gain, name=label, max_pixels=max_pixels)
    return apply_plan(rgb, info), info
