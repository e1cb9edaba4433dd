"""Trace side of the classic digitiser: trace rows, one connected path per row, calibration pulses, samples.

Geometry is in the page frame (u, v) of ``image.Shear``: runs are taken down the columns (lines of constant
u) of the row-sheared image, within a band that follows the remaining tilt of the rows.

* Rows: peaks of the ink's projection along v (the isoelectric line is where a trace spends most of its
  time), kept only if their ink spans much of the page width (header and footer text do not).
* Path: in a band around each row's baseline, every image column holds zero or more vertical runs of ink.
  A Viterbi pass picks one run per column, minimising the vertical gaps between consecutive runs (a trace is
  connected; a neighbouring row's wave that crosses into the band is not) plus a small cost per mm of
  distance from the baseline (which decides where two traces touch and part again).
* Calibration pulse: the first rise and fall of the row's curve by about 1 mV within 1 mm, a pulse width
  apart, flat between and standing on the baseline; its foot is 0 mV, its height 1 mV, and the trace starts
  2.5 mm after the falling edge (edges located where the curve crosses half the height).
* Samples: a column whose run is one line thick gives its darkness-weighted centre; where the trace is steep,
  the points are where it crosses the columns' edges (the overlap of neighbouring runs) and the extreme edge
  of a peak or trough; the curve through the points is read at every sample's x.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


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


def find_pulse(
    u: np.ndarray, v: np.ndarray, baseline: float, px_per_mm_u: float, px_per_mm_v: float,
    pulse_mm: float, height_mm: float | None,
) -> Pulse | None:
    """The calibration pulse at the start of a row's curve (u increasing, v image-down): a rise and a fall of
    about ``height_mm`` (gain x 1 mV; 3 to 45 mm when unknown), each within 1 mm, ``pulse_mm`` apart, flat
    between and standing on a foot within 3 mm of ``baseline``."""
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
    lead = 2.5 * px_per_mm_u
    width = pulse_mm * px_per_mm_u
    drop = g[:-k] - g[k:]  # > 0: the curve goes up (v decreases) over 1 mm
    rises = np.flatnonzero((drop >= min_h) & (np.abs(g[:-k] - baseline) < 3 * px_per_mm_v))
    for i in rises[:: max(1, k // 2)][:40]:
        foot_v, top_v = g[i], g[i + k]
        j0 = i + int((width - 0.25 * width - 2) / step)
        j1 = min(g.size - k, i + int((width + 0.25 * width + 2) / step))
        if j0 >= j1:
            continue
        falls = np.flatnonzero(g[j0 + k : j1 + k] - g[j0:j1] >= min_h)
        if falls.size == 0:
            continue
        j = j0 + int(falls[0])
        rise_sel = (grid >= grid[i] - lead + 0.5 * px_per_mm_u) & (grid <= grid[i])
        fall_sel = (grid >= grid[j + k]) & (grid <= grid[j + k] + lead - 0.5 * px_per_mm_u)
        inner = (grid > grid[i + k]) & (grid < grid[j])
        if rise_sel.sum() < 2 or fall_sel.sum() < 2 or inner.sum() < 2:
            continue
        foot_v = float(np.median(np.concatenate([g[rise_sel], g[fall_sel]])))
        top_v = float(np.median(g[inner]))
        h = foot_v - top_v
        if not (min_h <= h <= max_h) or np.ptp(g[inner]) > 0.25 * h:
            continue
        half = foot_v - h / 2

        def crossing(a: int, b: int) -> float:
            seg = g[a : b + 1] - half
            idx = np.flatnonzero(np.sign(seg[:-1]) != np.sign(seg[1:]))
            if idx.size == 0:
                return float(grid[(a + b) // 2])
            q = int(idx[0])
            return float(grid[a + q] + step * seg[q] / (seg[q] - seg[q + 1]))

        return Pulse(crossing(i, i + k), crossing(j, j + k), foot_v, h)
    return None


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
    """y of the curve (points px increasing, py) at ``x``; NaN outside it and across gaps wider than max_gap."""
    out = np.full(x.shape, np.nan)
    if px.size < 2:
        return out
    vals = np.interp(x, px, py)
    i = np.searchsorted(px, x)
    inside = (i > 0) & (i < px.size)
    i = np.clip(i, 1, px.size - 1)
    gap_ok = (px[i] - px[i - 1]) <= max_gap
    exact = np.isin(x, px)
    good = (inside & gap_ok) | exact
    out[good] = vals[good]
    return out
