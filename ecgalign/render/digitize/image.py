"""Image side of the classic digitiser: loading, ink and grid maps, rotation, grid calibration.

* Ink is what is dark in every colour channel: ``1 - max(R, G, B) / paper``. A red, pink, blue or green grid
  keeps one channel bright and almost vanishes from this map; what is left of it (and a black-and-white grid)
  is removed with the grid's separable model (transmission = column profile x row profile, as paper grids are
  printed), whose profiles are column and row medians.
* The grid is what is dark in the mean of the channels. Its line period gives px/mm along x and y: the
  strongest periodicity of the column (row) median profile, identified as the 5 mm major period by its
  sub-harmonics and refined to a small fraction of a pixel by maximising the power of the comb of its
  harmonics (which include the 1 mm minor lines).
* Rotation (within +-5 degrees) is the shear that makes the projections of grid and ink along x and along y
  sharpest (a Hough transform restricted to the two line directions of a printout), coarse to fine. It is
  undone by shearing (``Shear``): each row shifted along itself (cheap, one 1-D interpolation) makes the lines
  of constant time vertical, and the remaining vertical shear is applied to coordinates, not pixels.

Paper brightness is estimated per block (median of the block, smoothed), which undoes uneven illumination.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ecgalign.render.imagefile import MAX_PIXELS, ImageError, read_image

MAX_ROTATION_DEG = 5.0
MIN_MINOR_PX, MAX_MINOR_PX = 2.0, 25.0  # px per mm searched: about 50 to 635 dpi
MIN_GRID_CONTRAST = 0.02  # darkness of the grid lines above the paper, in the mean profile


class DigitizeError(ImageError):
    """The input is not an image, or no ECG (grid, ink, trace rows) could be found in it."""


def load_image(image, name: str | None = None, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """(H, W, 3) float32 RGB in [0, 1] (``ecgalign.render.imagefile.read_image``), refused as DigitizeError."""
    try:
        return read_image(image, name=name, max_pixels=max_pixels)
    except ImageError as e:
        raise DigitizeError(str(e)) from None


def _upsample(grid: np.ndarray, h: int, w: int) -> np.ndarray:
    """Bilinear upsampling of a (nh, nw) map of block centres to (h, w) pixel centres (edges held), by
    gathers (no BLAS call: on a busy machine its spinning threads slow the numpy work that follows)."""

    def weights(n_out: int, n_in: int):
        pos = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        i0 = np.minimum(np.floor(pos).astype(np.int64), max(0, n_in - 2))
        i1 = np.minimum(i0 + 1, n_in - 1)
        return i0, i1, (pos - i0).astype(np.float32)

    y0, y1, fy = weights(h, grid.shape[0])
    rows = grid[y0] * (1 - fy)[:, None] + grid[y1] * fy[:, None]  # (h, nw)
    x0, x1, fx = weights(w, grid.shape[1])
    return rows[:, x0] * (1 - fx) + rows[:, x1] * fx


def paper_level(channel: np.ndarray, block: int) -> np.ndarray:
    """Smooth estimate of the paper's brightness at every pixel: block medians, median-filtered, interpolated."""
    from scipy.ndimage import median_filter

    h, w = channel.shape
    nh, nw = max(1, h // block), max(1, w // block)
    step = max(1, block // 8)  # about 8 x 8 samples per block
    per = block // step
    sub = channel[: nh * block : step, : nw * block : step][: nh * per, : nw * per].reshape(nh, per, nw, per)
    med = np.median(sub.transpose(0, 2, 1, 3).reshape(nh, nw, -1), axis=2)
    med = median_filter(med, size=3, mode="nearest").astype(np.float32)
    return np.maximum(_upsample(med, h, w), np.float32(0.05))


@dataclass
class Maps:
    """Per-pixel darkness maps in [0, 1] (0 = paper): ``ink`` (darkest channel, for traces) and ``grid``
    (channel mean, grid + ink, for rotation and calibration)."""

    ink: np.ndarray
    grid: np.ndarray
    colour: np.ndarray  # chroma (max - min channel) over the paper: a coloured grid without grey shading


def darkness_maps(rgb: np.ndarray) -> Maps:
    block = int(max(8, 2 * round(min(rgb.shape[:2]) / 128)))
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    v = np.maximum(np.maximum(r, g), b)
    lum = (r + g + b) * np.float32(1 / 3)
    paper = paper_level(v, block)
    ink = 1.0 - v / paper
    grid = 1.0 - lum / paper_level(lum, block)
    chroma = v - np.minimum(np.minimum(r, g), b)
    colour = chroma / paper - paper_level(chroma, block) / paper  # above the paper's own tint
    return Maps(
        np.clip(ink, 0.0, 1.0, out=ink), np.clip(grid, 0.0, 1.0, out=grid), np.clip(colour, 0.0, 1.0, out=colour)
    )


def _shear_score(xs, ys, ws, cx, cy, angles: np.ndarray, bin_px: float, sigma_bins: float) -> np.ndarray:
    """Sharpness (sum of squared histogram counts, the histogram smoothed by ``sigma_bins``) of the
    projections along both line directions of a page rotated by each angle (radians): rows
    y - (x - cx) tan a and columns x + (y - cy) tan a."""
    from scipy.ndimage import gaussian_filter1d

    scores = np.empty(angles.size)
    for k, a in enumerate(angles):
        t = math.tan(a)
        score = 0.0
        for coord in (ys - (xs - cx) * t, xs + (ys - cy) * t):
            u = np.round(coord / bin_px).astype(np.int64)
            hist = np.bincount(u - u.min(), weights=ws)
            if sigma_bins > 0:
                hist = gaussian_filter1d(hist, sigma_bins, mode="constant")
            score += hist @ hist
        scores[k] = score
    return scores


def _parabolic(scores: np.ndarray, k: int) -> float:
    if 0 < k < scores.size - 1:
        a, b, c = scores[k - 1], scores[k], scores[k + 1]
        den = a - 2 * b + c
        if den < 0:
            return float(np.clip(0.5 * (a - c) / den, -0.5, 0.5))
    return 0.0


def estimate_rotation(structure: np.ndarray, max_deg: float = MAX_ROTATION_DEG, seed: int = 0) -> float:
    """Angle (degrees, image y down: positive = content rotated clockwise on screen) by which the printout's
    horizontal lines are tilted: horizontal line ``y = y0 + (x - cx) tan(angle)``. Three stages (0.25, 0.05,
    0.005 degree steps, each refined by a parabola through the best three), on more points each time."""
    h, w = structure.shape
    ys, xs = np.nonzero(structure[::2] > 0.15)
    if ys.size < 500:
        return 0.0
    ys = ys * 2
    ws = structure[ys, xs].astype(np.float64)
    rng = np.random.default_rng(seed)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    centre, span = 0.0, max_deg
    # the histogram is smoothed so that a line tilted by half a step still adds up in one peak
    for step, n_points, bin_px, sigma in ((0.2, 40_000, 1.0, 3.0), (0.04, 100_000, 1.0, 1.0), (0.005, 200_000, 0.5, 0.0)):
        idx = rng.choice(ys.size, n_points, replace=False) if ys.size > n_points else slice(None)
        angles = centre + np.arange(-span, span + 1e-9, step)
        s = _shear_score(xs[idx].astype(np.float64), ys[idx].astype(np.float64), ws[idx], cx, cy, np.radians(angles), bin_px, sigma)
        k = int(np.argmax(s))
        centre = float(angles[k] + _parabolic(s, k) * step)
        span = 1.2 * step  # the next stage searches around the best angle, a little beyond this step
    return centre


@dataclass(frozen=True)
class Shear:
    """The page frame of a printout whose horizontal lines are tilted by ``angle_deg``: page coordinates
    u = x + (y - cy) tan(angle), v = y - (x - cx) tan(angle), in which grid lines, baselines and the time
    axis are straight again (the upright frame scaled by 1 / cos(angle); px/mm is measured in this frame, so
    the scale is consistent). ``shear_rows`` resamples the image so that its columns are lines u = const."""

    angle_deg: float
    cx: float
    cy: float

    @classmethod
    def of(cls, shape: tuple[int, int], angle_deg: float) -> Shear:
        return cls(float(angle_deg), (shape[1] - 1) / 2, (shape[0] - 1) / 2)

    @property
    def t(self) -> float:
        return math.tan(math.radians(self.angle_deg))

    def uv(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t = self.t
        return x + (y - self.cy) * t, y - (x - self.cx) * t

    def v_of(self, u: np.ndarray, y: np.ndarray) -> np.ndarray:
        """v of the point in column u, image row y, of the ``shear_rows`` image."""
        t = self.t
        return y - (u - self.cx) * t + (y - self.cy) * t * t

    def shear_rows(self, image: np.ndarray) -> np.ndarray:
        """(H, W) -> (H, W): row y shifted so that its pixel u is the image's x = u - (y - cy) tan(angle)
        (linear interpolation along the row; outside the image -> 0). Rows with the same whole-pixel shift are
        shifted together."""
        if abs(self.angle_deg) < 1e-6:
            return image
        h, w = image.shape
        d = -(np.arange(h) - self.cy) * self.t  # S[y, u] = image[y, u + d_y]
        k = np.floor(d).astype(np.int64)
        f = (d - k).astype(np.float32)
        out = np.zeros_like(image)
        for kk in np.unique(k):
            rows = np.flatnonzero(k == kk)
            fr = f[rows][:, None]
            lo, hi = max(0, -kk), min(w, w - kk)  # u with u + kk inside the image
            if lo >= hi:
                continue
            a = image[rows, lo + kk : hi + kk]
            b = np.zeros_like(a)
            b[:, : hi - lo - 1] = image[rows, lo + kk + 1 : hi + kk]
            if hi + kk < w:
                b[:, -1] = image[rows, hi + kk]
            out[rows, lo:hi] = a * (1 - fr) + b * fr
        return out


def profiles(source: np.ndarray, keep: np.ndarray, shear: Shear, every: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``source`` over the ``keep`` pixels along lines u = const (a profile over u, length W) and
    v = const (over v, length H), from every ``every``-th row / column."""
    h, w = source.shape
    t = shear.t
    out = []
    for axis in (0, 1):
        if axis == 0:
            sub, ok = source[::every], keep[::every]
        else:
            sub, ok = source[:, ::every].T, keep[:, ::every].T
        n, other = (w, h) if axis == 0 else (h, w)
        lines = np.arange(0, other, every, dtype=np.float64) - ((h - 1) / 2 if axis == 0 else (w - 1) / 2)
        shift = lines * t if axis == 0 else -lines * t
        u = np.rint(np.arange(n)[None, :] + shift[:, None]).astype(np.int64)
        sel = (u >= 0) & (u < n) & ok
        total = np.bincount(u[sel], weights=sub[sel], minlength=n)
        count = np.bincount(u[sel], minlength=n)
        out.append(total / np.maximum(count, 1))
    return out[0], out[1]


def remove_grid(ink: np.ndarray, shear: Shear) -> np.ndarray:
    """Divide out the separable grid left in the ink map (black-and-white grids; faint remains of colour
    ones): transmission (1 - profile over u) x (1 - profile over v), the profiles averaged over the pixels
    that are not ink (darkness below 0.8)."""
    gu, gv = profiles(ink, ink < 0.8, shear, every=2)
    h, w = ink.shape
    t = shear.t
    ys, xs = np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64)
    u = np.clip(np.rint(xs[None, :] + (ys[:, None] - shear.cy) * t), 0, w - 1).astype(np.int64)
    v = np.clip(np.rint(ys[:, None] - (xs[None, :] - shear.cx) * t), 0, h - 1).astype(np.int64)
    trans = (1.0 - gu.astype(np.float32))[u] * (1.0 - gv.astype(np.float32))[v]
    out = 1.0 - (1.0 - ink) / np.maximum(trans, 0.05)
    return np.clip(out, 0.0, 1.0, out=out)


def _comb_power(profile: np.ndarray, periods: np.ndarray, harmonics: int) -> np.ndarray:
    """Sum over harmonics j = 1..harmonics of |DFT of ``profile`` at frequency j / period|^2, per period."""
    x = np.arange(profile.size, dtype=np.float64)
    base = np.exp(-2j * np.pi * np.outer(1.0 / periods, x))
    phase = base.copy()
    out = np.zeros(periods.size)
    for _ in range(harmonics):
        out += np.abs((phase * profile).sum(axis=1)) ** 2  # not a BLAS matmul (see _upsample)
        phase *= base
    return out


@dataclass
class GridFit:
    px_per_mm: float
    strength: float  # power of the strongest grid frequency relative to the spectrum's median


def grid_period(profile: np.ndarray) -> GridFit | None:
    """px/mm of a 1 mm / 5 mm grid from a 1-D darkness profile across its lines, or None if not periodic."""
    p = np.asarray(profile, dtype=np.float64)
    n = p.size
    if n < 64 or np.percentile(p, 99) - np.median(p) < MIN_GRID_CONTRAST:
        return None  # no lines darker than the paper (what is left of anti-aliased ink edges is fainter)
    p = (p - np.median(p)) * np.hanning(n)
    pad = 8 * (1 << int(math.ceil(math.log2(n))))
    power = np.abs(np.fft.rfft(p, pad)) ** 2
    freqs = np.fft.rfftfreq(pad)
    lo, hi = 1.0 / (5 * MAX_MINOR_PX), min(0.45, 1.0 / MIN_MINOR_PX)
    band = (freqs >= lo) & (freqs <= hi)
    if not band.any():
        return None
    floor = float(np.median(power[band])) + 1e-12
    top = int(np.flatnonzero(band)[np.argmax(power[band])])
    f1, p1 = freqs[top], float(power[top])
    if p1 / floor < 30:
        return None

    def present(f: float) -> bool:
        i = int(round(f * pad))
        r = max(2, int(0.01 * i))
        return float(power[max(0, i - r) : i + r + 1].max()) > 0.05 * p1

    # f1 is harmonic m of the 5 mm major period M = m / f1; the largest m whose fundamental is present wins
    major = None
    for m in range(10, 0, -1):
        period = m / f1
        if not (MIN_MINOR_PX * 0.9 <= period / 5 <= MAX_MINOR_PX):
            continue
        if all(present(j / period) for j in range(1, min(m, 5) + 1)):
            major = period
            break
    if major is None:
        return None
    harmonics = int(np.clip(int(0.45 * major), 1, 6))  # below 0.45 cycles/px, up to the minor lines (the 5th)
    for rel, num in ((0.002, 9), (0.0002, 5)):
        periods = major * (1 + np.linspace(-rel, rel, num))
        s = _comb_power(p, periods, harmonics)
        i = int(np.argmax(s))
        major = periods[i] + _parabolic(s, i) * (periods[1] - periods[0])
    if not _regular_lines(np.asarray(profile, dtype=np.float64), major / 5 if major / 5 >= 3 else major):
        return None
    return GridFit(px_per_mm=float(major / 5.0), strength=p1 / floor)


def _regular_lines(profile: np.ndarray, period: float) -> bool:
    """Whether the profile has a line at (nearly) every multiple of ``period`` across the page, as a grid has
    (trace baselines, beats or text are periodic over a few places only)."""
    p = profile - np.median(profile)
    x = np.arange(p.size)
    c = np.sum(p * np.exp(-2j * np.pi * x / period))
    x0 = (-np.angle(c) * period / (2 * np.pi)) % period
    pos = np.arange(x0, p.size - 1, period)
    idx = np.clip(np.rint(pos).astype(np.int64)[:, None] + np.arange(-1, 2)[None, :], 0, p.size - 1)
    vals = p[idx].max(axis=1)
    typical = float(np.median(vals))
    return typical >= MIN_GRID_CONTRAST and float(np.mean(vals > 0.5 * typical)) >= 0.7


def grid_scale(maps: Maps, shear: Shear) -> tuple[GridFit | None, GridFit | None]:
    """(u, v) grid fits of a printout: its vertical lines give px/mm along u (time), its horizontal lines along
    v (voltage). Ink (traces, text) is left out of the profiles, or the beats, aligned in every row of a
    printout, would look periodic too."""
    keep = maps.ink < 0.5
    pu, pv = profiles(maps.grid, keep, shear)
    fit_u, fit_v = grid_period(pu), grid_period(pv)
    if fit_u is None or fit_v is None:  # a coloured grid under grey shading (wrinkles, shadows): its chroma
        cu, cv = profiles(maps.colour, keep, shear)
        fit_u, fit_v = fit_u or grid_period(cu), fit_v or grid_period(cv)
    return fit_u, fit_v
