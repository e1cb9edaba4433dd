"""ECG strip of an echo frame: HSV binarisation, the four quality checks, column-wise trace -> 1-D signal.

EEE (seed 003, Sec. 3.1, Fig. 2): the bottom 30 % of the first frame is the ECG region; it is binarised with the
HSV window lower (64, 97, 113), upper (91, 255, 198) (OpenCV scale: H in 0-180, S and V in 0-255), clipped to the
trace's start and end, and rejected when the waveform leaves the region (amplitude), breaks (continuity), comes
with stray in-window pixels (HSV outliers) or covers too little of the region (pixel coverage). The paper gives the
checks in words only; the thresholds here are ecgalign's, in ``StripConfig`` with the defaults documented in
docs/echo.md.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

NO_TRACE = "no_green_trace"
AMPLITUDE = "amplitude"
CONTINUITY = "continuity"
HSV_OUTLIERS = "hsv_outliers"
COVERAGE = "coverage"
QUALITY_REASONS = (NO_TRACE, AMPLITUDE, HSV_OUTLIERS, CONTINUITY, COVERAGE)


@dataclass
class StripConfig:
    """Strip extraction settings (EEE's values where the paper gives them).

    roi_fraction: bottom share of the frame holding the ECG (paper: 30 %).
    hsv_lower / hsv_upper: binarisation window, OpenCV HSV scale (paper).
    min_pixels: fewer in-window pixels than this means there is no trace.
    edge_margin_px / max_edge_fraction: amplitude check, share of trace columns touching the ROI's top or bottom.
    outlier_link_px / outlier_link_rows: in-window pixels this close to the trace (columns / rows) belong to it
        (anti-aliasing; JPEG chroma subsampling breaks steep QRS strokes into vertical pieces).
    main_min_span: a connected piece spanning at least this share of the ROI width is trace, smaller ones are
        strays; max_outlier_fraction / max_outlier_components: HSV-outlier check.
    max_gap_fraction: continuity check, longest run of trace-less columns inside the trace (share of ROI width).
    min_coverage: pixel coverage check, share of ROI columns holding trace.
    """

    roi_fraction: float = 0.30
    hsv_lower: tuple[int, int, int] = (64, 97, 113)
    hsv_upper: tuple[int, int, int] = (91, 255, 198)
    min_pixels: int = 20
    edge_margin_px: int = 1
    max_edge_fraction: float = 0.01
    outlier_link_px: int = 2
    outlier_link_rows: int = 6
    main_min_span: float = 0.05
    max_outlier_fraction: float = 0.01
    max_outlier_components: int = 3
    max_gap_fraction: float = 0.012
    min_coverage: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 < self.roi_fraction < 1.0:
            raise ValueError(f"StripConfig.roi_fraction must be in (0, 1), got {self.roi_fraction}")
        for lo, hi, top in zip(self.hsv_lower, self.hsv_upper, (180, 255, 255)):
            if not 0 <= lo <= hi <= top:
                raise ValueError(f"StripConfig HSV window {self.hsv_lower}..{self.hsv_upper} is not ordered within "
                                 "H 0-180, S 0-255, V 0-255")
        self.hsv_lower, self.hsv_upper = tuple(self.hsv_lower), tuple(self.hsv_upper)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Strip:
    """Result for one frame: ``reason`` is None when the strip passed every check."""

    reason: str | None
    detail: str = ""
    y: np.ndarray | None = None  # (end - start + 1,) trace height in pixels above the ROI's median row, per column
    start: int = -1
    end: int = -1
    metrics: dict[str, float] = field(default_factory=dict)


def rgb_to_hsv(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB (..., 3) -> uint8 HSV on OpenCV's scale (H 0-180, S 0-255, V 0-255)."""
    x = rgb.astype(np.int32)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    v = x.max(-1)
    d = v - x.min(-1)
    safe = np.maximum(d, 1)
    h = np.where(v == r, 60.0 * (g - b) / safe, np.where(v == g, 120.0 + 60.0 * (b - r) / safe,
                                                           240.0 + 60.0 * (r - g) / safe))
    h = np.where(d == 0, 0.0, np.mod(h, 360.0)) / 2.0
    s = np.where(v > 0, 255.0 * d / np.maximum(v, 1), 0.0)
    return np.stack([np.round(h), np.round(s), v], axis=-1).clip(0, 255).astype(np.uint8)


def binarise(roi_rgb: np.ndarray, config: StripConfig) -> np.ndarray:
    """In-window mask (rows, cols) of an RGB region."""
    hsv = rgb_to_hsv(roi_rgb)
    lo, hi = np.array(config.hsv_lower), np.array(config.hsv_upper)
    return np.all((hsv >= lo) & (hsv <= hi), axis=-1)


def roi_of(frame: np.ndarray, config: StripConfig) -> np.ndarray:
    """The bottom ``roi_fraction`` of a frame (rows, cols, 3)."""
    top = int(round(frame.shape[0] * (1.0 - config.roi_fraction)))
    return frame[top:]


def _split_trace(mask: np.ndarray, config: StripConfig) -> tuple[np.ndarray, np.ndarray]:
    """(trace, strays): connected pieces (after linking pixels ``outlier_link_px`` / ``outlier_link_rows`` apart)
    spanning at least ``main_min_span`` of the width are trace, and so is a short piece that sits in a column gap
    of the trace (a fragment of a broken trace: the continuity check judges it); the rest are stray pixels."""
    box = np.ones((2 * config.outlier_link_rows + 1, 2 * config.outlier_link_px + 1), bool)
    linked = ndimage.binary_dilation(mask, structure=box) if box.size > 1 else mask
    labels, n = ndimage.label(linked, structure=np.ones((3, 3), bool))
    labels = labels * mask
    if n == 0:
        return mask, np.zeros_like(mask)
    cols = np.nonzero(mask)[1]
    lab = labels[mask]
    lo = np.full(n + 1, mask.shape[1])
    hi = np.full(n + 1, -1)
    np.minimum.at(lo, lab, cols)
    np.maximum.at(hi, lab, cols)
    span = (hi - lo + 1) / mask.shape[1]
    main_ids = np.nonzero(span >= config.main_min_span)[0]
    main_ids = main_ids[main_ids > 0]
    if main_ids.size == 0:  # no long piece: keep the largest as the trace so coverage reports it
        sizes = np.bincount(lab, minlength=n + 1)
        main_ids = np.array([int(np.argmax(sizes[1:]) + 1)])
    main_cols = np.isin(labels, main_ids).any(axis=0)
    first, last = np.flatnonzero(main_cols)[[0, -1]]
    in_gap = [k for k in range(1, n + 1) if k not in set(main_ids) and hi[k] >= 0 and first < lo[k]
              and hi[k] < last and not main_cols[lo[k]:hi[k] + 1].any()]
    trace = np.isin(labels, np.r_[main_ids, in_gap]) & mask
    return trace, mask & ~trace


def extract_strip(frame: np.ndarray, config: StripConfig | None = None) -> Strip:
    """Binarise the ECG region of ``frame`` (rows, cols, 3) RGB, run the quality checks, and read the trace."""
    config = config or StripConfig()
    mask = binarise(roi_of(frame, config), config)  # (roi_rows, cols)
    rows, cols = mask.shape
    total = int(mask.sum())
    if total < config.min_pixels:
        return Strip(NO_TRACE, f"{total} pixels in the HSV window (< {config.min_pixels})", metrics={"pixels": total})
    trace, strays = _split_trace(mask, config)
    present = trace.any(axis=0)
    idx = np.nonzero(present)[0]
    start, end = int(idx[0]), int(idx[-1])
    n_cols = end - start + 1
    top_hit = trace[: config.edge_margin_px + 1].any(axis=0)
    bottom_hit = trace[rows - config.edge_margin_px - 1:].any(axis=0)
    edge_fraction = float((top_hit | bottom_hit).sum()) / n_cols
    stray_px = int(strays.sum())
    stray_components = int(ndimage.label(strays, structure=np.ones((3, 3), bool))[1]) if stray_px else 0
    gaps = _longest_run(~present[start:end + 1])
    coverage = float(present.sum()) / cols
    metrics = {"pixels": total, "start": start, "end": end, "edge_fraction": round(edge_fraction, 4),
               "outlier_fraction": round(stray_px / total, 4), "outlier_components": stray_components,
               "longest_gap_px": gaps, "coverage": round(coverage, 4)}
    if edge_fraction > config.max_edge_fraction:
        return Strip(AMPLITUDE, f"{edge_fraction:.1%} of trace columns touch the ROI edge "
                     f"(> {config.max_edge_fraction:.1%})", start=start, end=end, metrics=metrics)
    if stray_px / total > config.max_outlier_fraction or stray_components > config.max_outlier_components:
        return Strip(HSV_OUTLIERS, f"{stray_components} stray in-window pieces, {stray_px / total:.1%} of the pixels "
                     f"(limits {config.max_outlier_components}, {config.max_outlier_fraction:.1%})",
                     start=start, end=end, metrics=metrics)
    max_gap = max(1, int(round(config.max_gap_fraction * cols)))
    if gaps > max_gap:
        return Strip(CONTINUITY, f"{gaps} trace-less columns in a row (> {max_gap})", start=start, end=end,
                     metrics=metrics)
    if coverage < config.min_coverage:
        return Strip(COVERAGE, f"trace covers {coverage:.1%} of the ROI width (< {config.min_coverage:.0%})",
                     start=start, end=end, metrics=metrics)
    return Strip(None, y=trace_heights(trace[:, start:end + 1]), start=start, end=end, metrics=metrics)


def _longest_run(flags: np.ndarray) -> int:
    if not flags.any():
        return 0
    padded = np.r_[0, flags.astype(np.int8), 0]
    edges = np.flatnonzero(np.diff(padded))
    return int((edges[1::2] - edges[0::2]).max())


def trace_heights(trace: np.ndarray) -> np.ndarray:
    """Column-wise trace position: mean row of each column's trace pixels, as height above the median
    (pixels, up positive); empty columns are interpolated. (rows, n) -> (n,)."""
    rows = np.arange(trace.shape[0], dtype=np.float64)[:, None]
    count = trace.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        y = (trace * rows).sum(axis=0) / count
    ok = count > 0
    cols = np.arange(trace.shape[1])
    y = np.interp(cols, cols[ok], y[ok])
    return (np.median(y) - y).astype(np.float32)


def strip_signal(y: np.ndarray, duration_s: float, fs: float, column_delay: float = 0.5) -> np.ndarray:
    """Resample per-column heights spanning ``duration_s`` seconds to ``fs`` Hz: (n_cols,) -> (round(d*fs),).

    A polyline's pixels in column c run from sample c-1 to sample c, so their mean row is the trace half a column
    earlier: ``column_delay`` (columns) places each reading at that time."""
    if duration_s <= 0 or fs <= 0:
        raise ValueError(f"duration_s and fs must be positive, got {duration_s}, {fs}")
    t_cols = duration_s * (np.arange(y.size) - column_delay) / y.size
    t_out = np.arange(int(round(duration_s * fs))) / fs
    return np.interp(t_out, t_cols, y).astype(np.float32)
