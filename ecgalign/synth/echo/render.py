"""Render one synthetic echo cine loop: an apical-four-chamber-like sector above, the green ECG sweep below.

The top 70 % of every frame is a B-mode sector (apex at the top, 76 degree opening, speckle, depth gain, bright
sector edges, screen text and a depth scale); the LV and RV cavities follow the LV volume curve of
``heart.lv_volume``, so they contract in time with the paired ECG. The bottom 30 % holds the ECG strip the
scanner burns into the screen (EEE, seed 003, Sec. 3.1): one lead drawn as a 2-pixel green polyline in the colour
window of the paper's HSV threshold, a white lead label and a yellow sweep marker (both outside that window).
Planted defects reproduce what the paper's four quality checks reject.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

TRACE_RGB = (40, 170, 100)  # HSV (OpenCV scale) (74, 195, 170): inside lower (64, 97, 113), upper (91, 255, 198)
MARKER_RGB = (230, 200, 40)  # yellow: hue 26, outside the window
TEXT_RGB = (235, 235, 235)  # white: saturation 0, outside the window
ROI_FRACTION = 0.30
DEPTH_CM = 16.0
DEFECTS: tuple[str, ...] = ("amplitude", "continuity", "hsv_outliers", "coverage")


@dataclass
class StripPlan:
    """Where and how the ECG strip is drawn; ``values`` are the displayed samples in mV, one per column."""

    x0: int
    x1: int  # inclusive last column of the trace
    baseline: float  # row (frame coordinates) of 0 mV
    px_per_mv: float
    values: np.ndarray  # (x1 - x0 + 1,) mV at each trace column
    defect: str | None = None
    gaps: list[tuple[int, int]] = field(default_factory=list)


@lru_cache(maxsize=4)
def _geometry(rows: int, cols: int, view: int) -> dict[str, np.ndarray | float]:
    """Polar grid, sector mask and depth gain of the echo region (cached per frame size and view)."""
    h = int(round(rows * (1 - ROI_FRACTION)))
    apex_y, apex_x = 0.03 * rows, cols / 2.0
    radius = 0.95 * h - apex_y
    half_angle = np.deg2rad(38.0 - 4.0 * view)
    yy, xx = np.mgrid[0:h, 0:cols].astype(np.float32)
    dy, dx = yy - apex_y, xx - apex_x
    r = np.hypot(dx, dy)
    theta = np.arctan2(dx, dy)
    sector = (r <= radius) & (np.abs(theta) <= half_angle)
    edge = sector & ((np.abs(np.abs(theta) - half_angle) * r < 1.5) | (radius - r < 1.5))
    depth = np.clip(r / radius, 0, 1)
    gain = (0.55 + 0.6 * depth) * np.exp(-1.1 * depth) + 0.25 * np.exp(-((depth - 0.05) / 0.04) ** 2)
    return {"h": h, "xx": xx, "yy": yy, "sector": sector, "edge": edge, "gain": gain.astype(np.float32),
            "apex_x": apex_x, "apex_y": apex_y, "px_per_cm": radius / DEPTH_CM}


def _ellipse(g: dict, cx: float, cy: float, a: float, b: float, tilt: float) -> np.ndarray:
    """Normalised elliptic radius (1 on the boundary) of each echo pixel; ``a`` is the long (near-vertical) axis."""
    c, s = np.cos(tilt), np.sin(tilt)
    u = (g["xx"] - cx) * c - (g["yy"] - cy) * s
    v = (g["xx"] - cx) * s + (g["yy"] - cy) * c
    return np.sqrt((u / b) ** 2 + (v / a) ** 2)


def _chamber_axes(volume_ml: float, edv_ml: float, ppc: float) -> tuple[float, float]:
    """Prolate-ellipsoid LV (V = 4/3 pi a b^2): long half-axis shortens little, short axis carries the rest."""
    a_cm = 4.2 * (edv_ml / 120.0) ** (1 / 3) * (volume_ml / edv_ml) ** 0.15
    b_cm = np.sqrt(max(volume_ml, 5.0) / (4.0 / 3.0 * np.pi * a_cm))
    return a_cm * ppc, b_cm * ppc


def text_overlay(rows: int, cols: int, lines: list[str], depth_marks: bool = True) -> np.ndarray:
    """RGBA overlay with screen text (top left), a depth scale (right of the sector) and the strip's lead label."""
    img = Image.new("RGBA", (cols, rows), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        draw.text((4, 3 + 11 * i), line, fill=(*TEXT_RGB, 255))
    g = _geometry(rows, cols, 0)
    if depth_marks:
        for k in range(0, int(DEPTH_CM) + 1, 2):
            y = g["apex_y"] + k * g["px_per_cm"]
            if y < g["h"] - 2:
                draw.line([(cols - 18, y), (cols - 12, y)], fill=(*TEXT_RGB, 255))
    draw.text((4, int(rows * (1 - ROI_FRACTION)) + 3), "II", fill=(*TEXT_RGB, 255))
    return np.asarray(img)


def render_echo(rng: np.random.Generator, rows: int, cols: int, view: int, volumes: np.ndarray, edv_ml: float,
                wall_mm: float) -> np.ndarray:
    """Grey echo region for every frame: (frames, h, cols) uint8, with h the top 70 % of ``rows``."""
    g = _geometry(rows, cols, view)
    h, ppc = g["h"], g["px_per_cm"]
    base_speckle = rng.rayleigh(0.8, size=(h, cols)).astype(np.float32)
    tilt = np.deg2rad(rng.uniform(-8, 8) + 6 * view)
    lv_x, lv_y = g["apex_x"] + 1.6 * ppc, g["apex_y"] + 5.6 * ppc
    rv_x, rv_y = g["apex_x"] - 2.3 * ppc, g["apex_y"] + 6.2 * ppc
    wall_px = wall_mm / 10.0 * ppc
    out = np.empty((len(volumes), h, cols), dtype=np.uint8)
    for k, vol in enumerate(volumes):
        a, b = _chamber_axes(vol, edv_ml, ppc)
        frac = vol / edv_ml
        tissue = np.full((h, cols), 0.42, dtype=np.float32)
        lv_outer = _ellipse(g, lv_x, lv_y, a + wall_px, b + wall_px, tilt)
        tissue[lv_outer < 1] = 0.85
        tissue[_ellipse(g, lv_x, lv_y, a, b, tilt) < 1] = 0.05
        tissue[_ellipse(g, rv_x, rv_y, 0.8 * a, 0.6 * b, tilt - 0.15) < 1] = 0.06
        atrial = 1.0 + 0.25 * (1.0 - frac)  # atria fill while the ventricles empty
        tissue[_ellipse(g, lv_x + 0.3 * ppc, lv_y + 6.0 * ppc, 2.0 * ppc * atrial, 1.9 * ppc * atrial, 0) < 1] = 0.05
        tissue[_ellipse(g, rv_x - 0.2 * ppc, rv_y + 5.4 * ppc, 1.8 * ppc * atrial, 1.7 * ppc * atrial, 0) < 1] = 0.06
        speckle = 0.7 * base_speckle + 0.3 * rng.rayleigh(0.8, size=(h, cols)).astype(np.float32)
        img = tissue * speckle * g["gain"] * 255.0
        img[~g["sector"]] = 0
        img[g["edge"]] = 150
        out[k] = np.clip(img, 0, 255).astype(np.uint8)
    return out


def plan_strip(rng: np.random.Generator, rows: int, cols: int, values_at: np.ndarray, defect: str | None) -> StripPlan:
    """Lay out the strip. ``values_at(x)`` was sampled by the caller at the trace columns, so it sets x0/x1 via
    its length; the gain keeps the trace inside the ROI unless the ``amplitude`` defect overdrives it."""
    roi_top = int(round(rows * (1 - ROI_FRACTION)))
    roi_h = rows - roi_top
    x0 = int(round(cols * rng.uniform(0.04, 0.07)))
    x1 = x0 + len(values_at) - 1
    centred = values_at - np.median(values_at)
    span = max(float(np.max(np.abs(centred))), 0.2)
    px_per_mv = min(0.34 * roi_h / span, 0.5 * roi_h)
    baseline = roi_top + roi_h * rng.uniform(0.45, 0.55) + np.median(values_at) * px_per_mv
    plan = StripPlan(x0, x1, baseline, px_per_mv, values_at.astype(np.float64), defect)
    n = len(values_at)
    if defect == "amplitude":  # overdrive until the largest deflection leaves the ROI (even on a flat clip)
        true_span = max(float(np.max(np.abs(centred))), 1e-3)
        plan.px_per_mv = max(plan.px_per_mv * rng.uniform(2.6, 3.6), rng.uniform(0.65, 0.9) * roi_h / true_span)
        plan.baseline = roi_top + roi_h * 0.5 + np.median(values_at) * plan.px_per_mv
    elif defect == "continuity":
        for _ in range(int(rng.integers(2, 4))):
            w = int(max(4, n * rng.uniform(0.04, 0.09)))
            start = int(rng.integers(int(0.1 * n), int(0.9 * n) - w))
            plan.gaps.append((start, start + w))
    return plan


def draw_strip(frame: np.ndarray, plan: StripPlan, rng: np.random.Generator, coverage_cut: float = 1.0) -> None:
    """Draw the trace into ``frame`` (rows, cols, 3) in place: for each column the vertical run from the previous
    sample to this one, 2 px thick, clipped to the frame (a real screen clips an overdriven trace at its edge)."""
    rows = frame.shape[0]
    roi_top = int(round(rows * (1 - ROI_FRACTION)))
    y = plan.baseline - plan.values * plan.px_per_mv  # (n,) rows
    y = np.clip(y, roi_top, rows - 1)
    keep = np.ones(len(y), dtype=bool)
    for a, b in plan.gaps:
        keep[a:b] = False
    last = int(round((len(y) - 1) * coverage_cut))
    keep[last + 1:] = False
    prev = np.r_[y[0], y[:-1]]
    lo = np.floor(np.minimum(prev, y) - 0.5).astype(int)
    hi = np.ceil(np.maximum(prev, y) + 0.5).astype(int)
    r = np.arange(roi_top, rows)[:, None]
    mask = (r >= np.clip(lo, roi_top, rows - 1)) & (r <= np.clip(hi, roi_top, rows - 1)) & keep[None, :]
    region = frame[roi_top:rows, plan.x0:plan.x1 + 1]
    region[mask] = TRACE_RGB
    if plan.defect == "hsv_outliers":
        roi_h, cols = rows - roi_top, frame.shape[1]
        for _ in range(int(rng.integers(25, 60))):
            yy, xx = int(rng.integers(0, roi_h - 3)), int(rng.integers(0, cols - 3))
            s = int(rng.integers(1, 4))
            frame[roi_top + yy:roi_top + yy + s, xx:xx + s] = TRACE_RGB


def draw_marker(frame: np.ndarray, plan: StripPlan, position: float) -> None:
    """The yellow sweep-position tick above the trace (moves with the frame; outside the HSV window)."""
    rows = frame.shape[0]
    roi_top = int(round(rows * (1 - ROI_FRACTION)))
    x = int(plan.x0 + position * (plan.x1 - plan.x0))
    frame[roi_top + 1:roi_top + 5, max(x - 1, 0):x + 2] = MARKER_RGB
