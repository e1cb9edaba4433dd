"""Trace side of the classic digitiser: trace rows, one connected path per row, calibration pulses, samples.

Geometry is in the page frame (u, v) of ``image.Shear``: runs are taken down the columns (lines of constant
u) of the row-sheared image, within a band that follows the remaining tilt of the rows.

* Rows: peaks of the ink's projection along v (the isoelectric line is where a trace spends most of its
  time), kept only if their ink spans much of the page width (header and footer text do not).
* Path: in a band around each row's baseline, every image column holds zero or more vertical runs of ink.
  A Viterbi pass picks one run per column, minimising the vertical gaps between consecutive runs (a trace is
  connected; a neighbouring row's wave that crosses into the band is not) plus a small cost per mm of
  distance from the baseline (which decides where two traces touch and part again).
* Calibration pulse: a flat top about 1 mV high ending in a fall within 1 mm onto a foot near the baseline,
  within the first 15 mm of the row's curve; its rise a pulse width earlier, or the curve's first column when
  the printer draws no flat lead-in (ecg-image-kit); its foot is 0 mV, its height 1 mV (edges located where
  the curve crosses half the height). Where t = 0 lies is decided in ``geometry``.
* Samples: a column whose run is one line thick gives its darkness-weighted centre; where the trace is steep,
  the points are where it crosses the columns' edges (the overlap of neighbouring runs) and the extreme edge
  of a peak or trough; the curve through the points is read at every sample's x.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.interpolate import Akima1DInterpolator


@dataclass
class Runs:
    """Vertical runs of ink in a band, ordered by column then y (image rows, inclusive); ``level``: the centre
    in the band's frame (v up to a fraction of a pixel), for distances to a baseline."""

    x: np.ndarray
    top: np.ndarray
    bottom: np.ndarray
    centre: np.ndarray
    level: np.ndarray


def band_runs(ink: np.ndarray, mask: np.ndarray, v0: int, v1: int, shear) -> Runs:
    """Runs of ``mask`` down each column of a ``Shear.shear_rows`` image within the band v0 <= v < v1 (the
    band follows the tilt: in column u it covers rows v + round((u - cx) tan angle)); tops, bottoms and
    darkness-weighted centres are image rows."""
    h, w = ink.shape
    shift = np.rint((np.arange(w) - shear.cx) * shear.t).astype(np.int64)  # (W,)
    rows = np.arange(v0, v1)[None, :] + shift[:, None]  # (W, band) image row of each band pixel
    valid = (rows >= 0) & (rows < h)
    rows_c = np.clip(rows, 0, h - 1)
    cols = np.arange(w)[:, None]
    m = mask[rows_c, cols] & valid  # (W, band), transposed: runs go along axis 1
    dk = np.where(valid, ink[rows_c, cols], 0).astype(np.float32)
    d = np.diff(np.pad(m, ((0, 0), (1, 1))).view(np.int8), axis=1)
    xs, starts = np.nonzero(d == 1)
    _, stops = np.nonzero(d == -1)  # one past the run's last row
    hb = v1 - v0
    yy = np.arange(hb, dtype=np.float32)
    c0 = np.pad(np.cumsum(dk, axis=1), ((0, 0), (1, 0)))
    c1 = np.pad(np.cumsum(dk * yy, axis=1), ((0, 0), (1, 0)))
    mass = (c0[xs, stops] - c0[xs, starts]).astype(np.float64)
    moment = (c1[xs, stops] - c1[xs, starts]).astype(np.float64)
    centre = np.where(mass > 0, moment / np.maximum(mass, 1e-9), (starts + stops - 1) / 2)
    off = (v0 + shift[xs]).astype(np.float64)
    return Runs(xs, starts + off, stops - 1 + off, centre + off, centre + v0)


def find_rows(mask: np.ndarray, n_rows: int, px_per_mm: float, shear) -> np.ndarray:
    """v of the ``n_rows`` trace baselines of a ``Shear.shear_rows`` ink mask, top to bottom (fewer if fewer
    are found)."""
    from scipy.ndimage import gaussian_filter1d
    from scipy.signal import find_peaks

    h, w = mask.shape
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return np.zeros(0)
    v = shear.v_of(xs.astype(np.float64), ys.astype(np.float64))
    vi = np.clip(np.rint(v).astype(np.int64), 0, h - 1)
    proj = gaussian_filter1d(np.bincount(vi, minlength=h).astype(np.float64), max(1.0, 0.25 * px_per_mm))
    min_sep = 0.5 * 0.85 * h / n_rows
    peaks, _ = find_peaks(proj, distance=max(1, int(min_sep / 4)))
    if peaks.size == 0:
        return np.zeros(0)
    band = 5 * px_per_mm
    # how much of the page width a candidate row's ink covers within +-5 mm (wide enough for a row whose
    # baseline wanders; header and footer text stay far below half the widest row's cover)
    cover = np.array([np.unique(xs[np.abs(v - p) <= band]).size / w for p in peaks])
    order = np.argsort(proj[peaks])[::-1]
    accepted: list[int] = []
    for i in order:
        p = peaks[i]
        if cover[i] < 0.5 * cover.max() or proj[p] < 0.1 * proj[peaks[order[0]]]:
            continue
        if all(abs(p - q) >= min_sep for q in accepted):
            accepted.append(int(p))
        if len(accepted) == n_rows:
            break
    return np.sort(np.array(accepted, dtype=np.float64))


@dataclass
class Path:
    """One run per chosen column: x (increasing), top / bottom edges and centre (image y, float)."""

    x: np.ndarray
    top: np.ndarray
    bottom: np.ndarray
    centre: np.ndarray

    def __len__(self) -> int:
        return int(self.x.size)


def trace_path(runs: Runs, baseline: float, px_per_mm: float, reset_px: float, baseline_cost_per_mm: float = 0.1) -> Path:
    """Viterbi path through the runs: gap cost 1 per px of vertical gap between runs in consecutive occupied
    columns, node cost ``baseline_cost_per_mm`` per mm from the baseline; columns more than ``reset_px``
    apart are not linked (the path restarts at no cost). Plain Python over lists: most columns hold one run."""
    n = runs.x.size
    if n == 0:
        return Path(*(np.zeros(0) for _ in range(4)))
    cols, first = np.unique(runs.x, return_index=True)
    bounds = np.append(first, n).tolist()
    node = (baseline_cost_per_mm / px_per_mm * np.abs(runs.level - baseline)).tolist()
    top, bottom = runs.top.tolist(), runs.bottom.tolist()
    cost = [0.0] * n
    back = [-1] * n
    pa = pb = px = None
    for k, x in enumerate(cols.tolist()):
        a, b = bounds[k], bounds[k + 1]
        if pa is None:
            for i in range(a, b):
                cost[i] = node[i]
        elif x - px > reset_px:
            j = min(range(pa, pb), key=cost.__getitem__)
            for i in range(a, b):
                cost[i], back[i] = cost[j] + node[i], j
        else:
            for i in range(a, b):
                ti, bi = top[i], bottom[i]
                best, arg = math.inf, pa
                for j in range(pa, pb):
                    gap = ti - bottom[j] - 1 if ti > bottom[j] else (top[j] - bi - 1 if top[j] > bi else 0.0)
                    c = cost[j] + (gap if gap > 0 else 0.0)
                    if c < best:
                        best, arg = c, j
                cost[i], back[i] = best + node[i], arg
        pa, pb, px = a, b, x
    i = min(range(pa, pb), key=cost.__getitem__)
    chosen = []
    while i >= 0:
        chosen.append(i)
        i = back[i]
    idx = np.array(chosen[::-1])
    return Path(runs.x[idx].astype(np.float64), runs.top[idx], runs.bottom[idx], runs.centre[idx])


def line_width(path: Path) -> float:
    """Trace thickness in px: the most common run height (flat stretches dominate)."""
    if len(path) == 0:
        return 1.0
    heights = (path.bottom - path.top + 1).astype(np.int64)
    return float(np.bincount(np.clip(heights, 1, 50)).argmax())


def baseline_mode(u: np.ndarray, v: np.ndarray, lo: float, hi: float, px_per_mm: float) -> float | None:
    """Most common v of the curve between u = lo and hi (the isoelectric line), to 0.1 mm."""
    sel = (u >= lo) & (u <= hi)
    if sel.sum() < 10:
        return None
    y = v[sel]
    bins = np.round((y - y.min()) / (0.1 * px_per_mm)).astype(np.int64)
    k = int(np.bincount(bins).argmax())
    return float(np.median(y[np.abs(bins - k) <= 1]))


@dataclass
class Pulse:
    rise_u: float  # where the curve crosses half the pulse height going up
    fall_u: float
    foot_v: float  # the baseline (0 mV)
    height_px: float  # 1 mV


def _crossing(grid: np.ndarray, g: np.ndarray, a: int, b: int, level: float) -> float | None:
    """First u in grid[a..b] where g crosses ``level`` (linear interpolation), or None."""
    seg = g[a : b + 1] - level
    idx = np.flatnonzero(np.sign(seg[:-1]) != np.sign(seg[1:]))
    if idx.size == 0:
        return None
    q = int(idx[0])
    return float(grid[a + q] + (grid[a + q + 1] - grid[a + q]) * seg[q] / (seg[q] - seg[q + 1]))


def find_pulse(
    u: np.ndarray, v: np.ndarray, baseline: float, px_per_mm_u: float, px_per_mm_v: float,
    pulse_mm: float, height_mm: float | None, search_mm: float = 15.0,
) -> Pulse | None:
    """The calibration pulse at the start of a row's curve (u increasing, v image-down): a flat top about
    ``height_mm`` (gain x 1 mV; 3 to 45 mm when unknown) above its foot, ending in a fall within 1 mm that
    starts at most ``search_mm`` + the pulse width after the curve's first point, on a foot within 3 mm of
    ``baseline``. The rise a pulse width before the fall is located where the curve crosses half the height;
    a pulse whose rise is the curve's first column (no flat lead-in, as ecg-image-kit draws it) is accepted
    when the curve starts on its top, the rise then put a pulse width before the fall."""
    if u.size < 10:
        return None
    step = 0.25
    grid = np.arange(u[0], u[-1], step)
    if grid.size < 10:
        return None
    g = np.interp(grid, u, v)
    min_h = (0.6 * height_mm if height_mm else 3.0) * px_per_mm_v
    max_h = (1.4 * height_mm if height_mm else 45.0) * px_per_mm_v
    k = max(1, int(round(1.0 * px_per_mm_u / step)))  # 1 mm
    width = pulse_mm * px_per_mm_u
    limit = grid[0] + (search_mm + pulse_mm) * px_per_mm_u
    falls = np.flatnonzero((g[k:] - g[:-k] >= min_h) & (grid[:-k] <= limit))  # the curve goes down over 1 mm
    for j in falls[:: max(1, k // 2)][:40]:
        top_sel = (grid >= grid[j] - 0.75 * width) & (grid <= grid[j] - 0.25 * px_per_mm_u)
        foot_sel = (grid >= grid[j + k]) & (grid <= grid[j + k] + 1.5 * px_per_mm_u)
        if top_sel.sum() < 2 or foot_sel.sum() < 2:
            continue
        top_v, foot_v = float(np.median(g[top_sel])), float(np.median(g[foot_sel]))
        h = foot_v - top_v
        if not (min_h <= h <= max_h) or np.ptp(g[top_sel]) > 0.25 * h or abs(foot_v - baseline) > 3 * px_per_mm_v:
            continue
        half = foot_v - h / 2
        fall_u = _crossing(grid, g, j, j + k, half)
        if fall_u is None:
            continue
        lo = int(np.searchsorted(grid, fall_u - 1.25 * width - px_per_mm_u))
        hi = int(np.searchsorted(grid, fall_u - 0.5 * width))
        rise_u = _crossing(grid, g, lo, hi, half) if hi > lo else None
        if rise_u is None:
            if grid[0] < fall_u - 1.25 * width - px_per_mm_u:
                continue  # a curve before the top that never rises to it: not a pulse
            rise_u = fall_u - width
        if not (0.75 * width <= fall_u - rise_u <= 1.25 * width):
            continue
        return Pulse(rise_u, fall_u, foot_v, h)
    return None


def continuity(path: Path, px_per_mm: float) -> float:
    """Fraction of the path's steps between neighbouring columns that stay connected (runs touching or less
    than 1 mm apart): near 1 for a drawn trace, low for noise or scattered text."""
    if len(path) < 2:
        return 0.0
    adj = np.diff(path.x) <= 1.0
    if not adj.any():
        return 0.0
    gap = np.maximum(path.top[1:] - path.bottom[:-1], path.top[:-1] - path.bottom[1:])
    return float(np.mean(gap[adj] <= px_per_mm))


def curve_points(path: Path, line_px: float) -> tuple[np.ndarray, np.ndarray]:
    """Points (x, y) of the trace's centre line from its path.

    A column whose run is about one line thick gives its darkness-weighted centre. A taller run (the trace
    crosses the column steeply) gives the curve where it crosses the column's edges - the middle of the
    overlap with the neighbouring column's run, about one line thick on a monotone stroke - plus, if the run
    is a peak or trough (beyond both neighbours' centres), its extreme edge less half the line width at the
    column's centre; next to such an extreme the overlap is taller, and the crossing is at its far end."""
    n = len(path)
    x, top, bottom, centre = path.x, path.top, path.bottom, path.centre
    if n < 3:
        return x.copy(), centre.copy()
    hw = (line_px - 1) / 2
    tall = (bottom - top + 1) > line_px + 1.5
    adj = np.diff(x) <= 1.0  # column i and i + 1 are neighbours
    prev_c = np.concatenate([[np.nan], centre[:-1]])
    next_c = np.concatenate([centre[1:], [np.nan]])
    adj_prev = np.concatenate([[False], adj])
    adj_next = np.concatenate([adj, [False]])
    with np.errstate(invalid="ignore"):
        peak = tall & adj_prev & adj_next & (prev_c > centre) & (next_c > centre)
        trough = tall & adj_prev & adj_next & (prev_c < centre) & (next_c < centre)
    # crossing between column i and i + 1
    lo = np.maximum(top[:-1], top[1:])
    hi = np.minimum(bottom[:-1], bottom[1:])
    edge = np.where(lo <= hi, (lo + hi) / 2, np.where(bottom[:-1] < top[1:], (bottom[:-1] + top[1:]) / 2, (top[:-1] + bottom[1:]) / 2))
    wide = (hi - lo + 1) > line_px + 1.5
    pk, tg = peak[:-1] | peak[1:], trough[:-1] | trough[1:]
    edge = np.where(wide & pk & ~tg, lo + hw, np.where(wide & tg & ~pk, hi - hw, edge))
    xs, ys = [], []
    flat = ~tall
    xs.append(x[flat])
    ys.append(centre[flat])
    ext = peak | trough
    xs.append(x[ext])
    ys.append(np.where(peak[ext], top[ext] + hw, bottom[ext] - hw))
    use_edge = adj & (tall[:-1] | tall[1:])
    xs.append(x[:-1][use_edge] + 0.5)
    ys.append(edge[use_edge])
    lonely = tall & ~ext & ~adj_prev & ~adj_next
    xs.append(x[lonely])
    ys.append(centre[lonely])
    px, py = np.concatenate(xs), np.concatenate(ys)
    order = np.argsort(px, kind="stable")
    return px[order], py[order]


def sample_curve(px: np.ndarray, py: np.ndarray, x: np.ndarray, max_gap: float) -> np.ndarray:
    """y of the curve (points px increasing, py) at ``x``; NaN outside it and across gaps wider than max_gap.

    Between points, a modified Akima cubic (local: 5 points, no overshoot at a corner) rather than straight
    lines: at 100 dpi a point is 10 ms of a 25 mm/s trace, and straight chords cut the rounded tops of QRS and
    T waves that the samples between two columns carry (+0.4 dB strict Challenge SNR on our 100 dpi pages)."""
    out = np.full(x.shape, np.nan)
    if px.size < 2:
        return out
    vals = Akima1DInterpolator(px, py, method="makima")(x) if px.size >= 3 else np.interp(x, px, py)
    i = np.searchsorted(px, x)
    inside = (i > 0) & (i < px.size)
    i = np.clip(i, 1, px.size - 1)
    gap_ok = (px[i] - px[i - 1]) <= max_gap
    exact = np.isin(x, px)
    good = (inside & gap_ok) | exact
    out[good] = vals[good]
    return out
