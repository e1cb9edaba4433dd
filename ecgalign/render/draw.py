"""Vectorised drawing primitives in torch (CPU or GPU): calibrated grid, thick anti-aliased polylines, glyphs.

Everything that is drawn sparsely (traces, calibration pulses, separators, text, pen strokes) becomes a list
of candidate pixels ``(flat index, alpha)``; ``composite`` resolves overlaps by the largest alpha and blends
one colour over the canvas. Nothing loops over samples or pixels in Python.

Polylines are rasterised like a thick-line scan converter: every segment steps along its major axis through
the pixel centres it spans and covers a run across the minor axis whose length is the line's vertical (or
horizontal) extent ``width * sqrt(1 + slope^2)``, box-filtered at both ends (exact area anti-aliasing along
the run). Consecutive steps differ by at most one pixel on the minor axis, so a trace stays connected at any
slope, including the near-vertical QRS upstrokes where per-sample dots leave gaps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

# name -> (paper RGB, grid RGB, minor-line opacity, major-line opacity); "none" draws no grid.
GRID_SCHEMES: dict[str, tuple[tuple[int, int, int], tuple[int, int, int], float, float]] = {
    "red": ((255, 255, 253), (225, 35, 45), 0.42, 0.85),
    "pink": ((255, 252, 252), (240, 110, 140), 0.40, 0.80),
    "blue": ((253, 254, 255), (40, 90, 210), 0.38, 0.80),
    "green": ((252, 255, 252), (30, 150, 80), 0.40, 0.85),
    "bw": ((255, 255, 255), (0, 0, 0), 0.18, 0.45),
    "none": ((255, 255, 255), (255, 255, 255), 0.0, 0.0),
}
MINOR_LINE_MM, MAJOR_LINE_MM = 0.1, 0.2


def check_scheme(name: str) -> None:
    if name not in GRID_SCHEMES:
        raise ValueError(f"unknown grid scheme {name!r}; expected one of {', '.join(GRID_SCHEMES)}")


def line_coverage(
    pos: torch.Tensor, origin: float, spacing: float, width: float, every: int, major: bool
) -> torch.Tensor:
    """Fraction of a 1-px box centred at each ``pos`` covered by lines at origin + k*spacing, counting only
    the major (k % every == 0) or only the minor lines (float64)."""
    k0 = torch.floor((pos - origin) / spacing)
    cov = torch.zeros_like(pos)
    for dk in (-1.0, 0.0, 1.0, 2.0):
        k = k0 + dk
        is_major = torch.remainder(k, every) == 0
        centre = origin + k * spacing
        overlap = torch.minimum(pos + 0.5, centre + width / 2) - torch.maximum(pos - 0.5, centre - width / 2)
        cov += torch.where(is_major == major, overlap.clamp(0, 1), torch.zeros_like(overlap))
    return cov.clamp(0, 1)


def grid_alpha(
    width: int, height: int, px_per_mm: float, origin: tuple[float, float], scheme: str
) -> torch.Tensor:
    """(H, W) float32 opacity of the grid colour: 1 mm minor and 5 mm major lines through ``origin``."""
    _, _, m_minor, m_major = GRID_SCHEMES[scheme]
    if m_minor == 0 and m_major == 0:
        return torch.zeros(height, width)

    def axis(n: int, o: float) -> torch.Tensor:
        pos = torch.arange(n, dtype=torch.float64)
        minor = line_coverage(pos, o, px_per_mm, MINOR_LINE_MM * px_per_mm, 5, major=False)
        major = line_coverage(pos, o, px_per_mm, MAJOR_LINE_MM * px_per_mm, 5, major=True)
        return 1 - (1 - m_minor * minor) * (1 - m_major * major)

    ax, ay = axis(width, origin[0]), axis(height, origin[1])
    return (1 - (1 - ay[:, None]) * (1 - ax[None, :])).float()


@dataclass
class Polylines:
    """Many polylines in one flat array: ``xy`` (N, 2) float points, ``image`` (N,) the image of each point,
    ``join`` (N - 1,) whether point k connects to point k + 1 (False between polylines and at gaps)."""

    xy: torch.Tensor
    image: torch.Tensor
    join: torch.Tensor

    @staticmethod
    def cat(parts: list[Polylines]) -> Polylines:
        parts = [p for p in parts if p.xy.shape[0] > 0]
        if not parts:
            raise ValueError("no polylines")
        joins = []
        for i, p in enumerate(parts):
            joins.append(p.join)
            if i < len(parts) - 1:
                joins.append(torch.zeros(1, dtype=torch.bool, device=p.xy.device))
        return Polylines(
            torch.cat([p.xy for p in parts]), torch.cat([p.image for p in parts]), torch.cat(joins)
        )

    @staticmethod
    def from_batch(xy: torch.Tensor) -> Polylines:
        """(B, P, N, 2) -> P polylines of N points per image; segments touching a NaN point are not drawn."""
        b, p, n, _ = xy.shape
        image = torch.arange(b, device=xy.device).repeat_interleave(p * n)
        finite = torch.isfinite(xy).all(-1)  # (B, P, N)
        join = finite[..., :-1] & finite[..., 1:]
        join = torch.cat([join, torch.zeros(b, p, 1, dtype=torch.bool, device=xy.device)], -1).reshape(-1)[
            :-1
        ]
        return Polylines(xy.reshape(-1, 2), image, join)


def rasterize(
    lines: Polylines, width_px: float | torch.Tensor, height: int, width: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixels covered by the polylines drawn ``width_px`` thick (one width, or one per point: a segment takes
    its first point's): (flat index image*H*W + y*W + x, alpha)."""
    dev = lines.xy.device
    per_point = torch.is_tensor(width_px)
    empty = torch.zeros(0, dtype=torch.long, device=dev), torch.zeros(0, device=dev)
    seg_idx = lines.join.nonzero()[:, 0]
    if seg_idx.numel() == 0:
        return empty
    hw = width_px.index_select(0, seg_idx) / 2 if per_point else width_px / 2
    p0 = lines.xy.index_select(0, seg_idx)
    d = lines.xy.index_select(0, seg_idx + 1) - p0
    horiz = d[:, 0].abs() >= d[:, 1].abs()
    hz = horiz[:, None]
    ab0, dab = torch.where(hz, p0, p0.flip(1)), torch.where(hz, d, d.flip(1))  # (major, minor) axis order
    a0, b0, da, db = ab0[:, 0], ab0[:, 1], dab[:, 0], dab[:, 1]
    slope = db / torch.where(da == 0, torch.ones_like(da), da)
    limit = torch.where(horiz, float(width), float(height))
    # integer major-axis coordinates c with min(a0, a1) <= c < max(a0, a1), inside the image
    start = torch.minimum(torch.ceil(torch.minimum(a0, a0 + da)).clamp_(min=0), limit)
    stop = torch.minimum(torch.ceil(torch.maximum(a0, a0 + da)).clamp_(min=0), limit)
    count = (stop - start).clamp_(min=0).long()
    image = lines.image.index_select(0, seg_idx).to(start.dtype)
    attrs = torch.stack(
        [
            start,
            b0 + (start - a0) * slope,
            slope,
            hw * torch.sqrt(1 + slope**2),
            horiz.to(start.dtype),
            image,
            torch.ones_like(start),
        ],
        1,
    )  # (S, 7); last: weight
    seg = torch.repeat_interleave(torch.arange(count.shape[0], device=dev), count)
    first = torch.cumsum(count, 0) - count
    j = (torch.arange(seg.shape[0], device=dev) - first.index_select(0, seg)).to(start.dtype)
    steps = attrs.index_select(0, seg)
    steps[:, 0] += j
    steps[:, 1] += j * steps[:, 2]
    caps = _caps(lines, seg_idx, horiz, d, width_px / 2)
    if caps is not None:
        steps = torch.cat([steps, caps])
    if steps.shape[0] == 0:
        return empty
    a, b, e, h, img, weight = steps[:, 0], steps[:, 1], steps[:, 3], steps[:, 4] > 0, steps[:, 5], steps[:, 6]
    k_half = math.ceil(float(e.max()) + 0.5)
    p = torch.round(b)[:, None] + torch.arange(-k_half, k_half + 1, device=dev, dtype=b.dtype)  # (steps, K)
    cov = (torch.minimum(p + 0.5, (b + e)[:, None]) - torch.maximum(p - 0.5, (b - e)[:, None])).clamp_(0, 1)
    cov.mul_(weight[:, None])
    minor_max = torch.where(h, float(height - 1), float(width - 1))
    major_max = torch.where(h, float(width - 1), float(height - 1))
    # both axes: a cap's columns can lie off the page (a stroke ending at or past its edge), and an index off
    # the row would wrap into the next row or, for the last image, past the canvas
    inside = (a >= 0) & (a <= major_max)
    valid = (cov > 0) & (p >= 0) & (p <= minor_max[:, None]) & inside[:, None]
    # flat = image*H*W + row*W + col; the major coordinate a is the column of a horizontal step, else the row
    base = img.long() * (height * width) + torch.where(h, a, a * width).long()
    stride = torch.where(h, width, 1)
    flat = base[:, None] + p.long() * stride[:, None]
    sel = valid.view(-1).nonzero()[:, 0]
    return flat.view(-1).index_select(0, sel), cov.view(-1).index_select(0, sel)


def _caps(
    lines: Polylines,
    seg_idx: torch.Tensor,
    horiz: torch.Tensor,
    d: torch.Tensor,
    half_width: float | torch.Tensor,
) -> torch.Tensor | None:
    """Square caps (as step rows of ``rasterize``'s table: vertical runs over the columns the cap covers,
    weighted by their horizontal coverage) at the points the segment stepping leaves short: where a run
    starts or ends, where the stepping axis flips, and at turning points (spike tips), whose pixels no
    segment's half-open step range includes."""
    ok = lines.join
    n, dev = lines.xy.shape[0], ok.device
    seg_h = torch.zeros(n - 1, dtype=torch.bool, device=dev)
    seg_h[seg_idx] = horiz
    seg_d = torch.zeros(n - 1, 2, dtype=d.dtype, device=dev)
    seg_d[seg_idx] = d
    false = torch.zeros(1, dtype=torch.bool, device=dev)
    prev_ok, next_ok = torch.cat([false, ok]), torch.cat([ok, false])  # a segment ends / starts at point k
    prev_h, next_h = torch.cat([false, seg_h]), torch.cat([seg_h, false])
    zero = torch.zeros(1, 2, dtype=d.dtype, device=dev)
    prev_d, next_d = torch.cat([zero, seg_d]), torch.cat([seg_d, zero])
    # a turn along the stepping axis of either neighbour: x reverses next to a flat one, y next to a steep one
    turn_x = (prev_d[:, 0] * next_d[:, 0] <= 0) & (prev_h | next_h)
    turn_y = (prev_d[:, 1] * next_d[:, 1] <= 0) & (~prev_h | ~next_h)
    at = ((prev_ok ^ next_ok) | (prev_ok & next_ok & ((prev_h != next_h) | turn_x | turn_y))).nonzero()[:, 0]
    if at.numel() == 0:
        return None
    xy = lines.xy.index_select(0, at)
    img = lines.image.index_select(0, at).to(xy.dtype)
    hw = half_width.index_select(0, at) if torch.is_tensor(half_width) else half_width
    left = torch.floor(xy[:, 0] - hw + 0.5)
    ones = torch.ones_like(left)
    rows = []
    for k in range(math.ceil(2 * float(torch.as_tensor(hw).max())) + 1):
        col = left + k
        weight = (torch.minimum(col + 0.5, xy[:, 0] + hw) - torch.maximum(col - 0.5, xy[:, 0] - hw)).clamp(
            0, 1
        )
        rows.append(torch.stack([col, xy[:, 1], 0 * ones, hw * ones, ones, img, weight], 1))
    return torch.cat(rows)


def composite(
    canvas: torch.Tensor,
    flat: torch.Tensor,
    alpha: torch.Tensor,
    colour: torch.Tensor,
    scratch: torch.Tensor,
    reduce: str = "amax",
) -> None:
    """Blend ``colour`` over ``canvas`` (B, 3, H, W) at pixels ``flat`` (image * H * W + y * W + x) with
    ``alpha``. ``colour``: (3,) for all, or (N, 3) per candidate (e.g. ink under uneven light), in the
    canvas's units (0-255, or 0-1 for a float canvas in [0, 1]).

    Overlapping candidates keep the largest alpha (``reduce="amax"``, for strokes) or add up to at most 1
    (``"sum"``, for bilinearly splatted text, which then keeps its ink under rotation); ``scratch``: a zero
    float buffer of B*H*W, left zero.
    """
    if flat.numel() == 0:
        return
    _, _, h, w = canvas.shape
    hw = h * w
    if reduce == "sum":
        scratch.index_add_(0, flat, alpha)
        a = scratch.index_select(0, flat).clamp_(max=1)
    else:
        scratch.scatter_reduce_(0, flat, alpha, "amax")
        a = scratch.index_select(0, flat)
    scratch.index_fill_(0, flat, 0)
    base = flat + torch.div(flat, hw, rounding_mode="floor") * (2 * hw)  # channel 0 in the flat canvas
    view = canvas.view(-1)
    col = colour.to(device=flat.device, dtype=torch.float32)
    for c in range(3):
        at = base + c * hw
        bg = view.index_select(0, at).float()
        new = torch.lerp(bg, col[..., c].expand_as(bg), a)
        if canvas.dtype == torch.uint8:
            new = new.round_().clamp_(0, 255)
        view.index_copy_(0, at, new.to(canvas.dtype))


class GlyphAtlas:
    """Printable ASCII glyphs rendered once with Pillow (DejaVu Sans, bundled with matplotlib) at one pixel
    size, kept as sparse point lists on a device; text is laid out by advancing glyph widths (no kerning)."""

    def __init__(self, size_px: int, device: torch.device | str = "cpu"):
        from pathlib import Path

        import matplotlib
        import numpy as np
        from PIL import Image, ImageDraw, ImageFont

        self.size_px = max(4, int(size_px))
        font = ImageFont.truetype(
            str(Path(matplotlib.get_data_path()) / "fonts/ttf/DejaVuSans.ttf"), self.size_px
        )
        ascent, descent = font.getmetrics()
        self.height = ascent + descent
        self.ascent = ascent
        chars = [chr(c) for c in range(32, 127)]
        self.index = {ch: i for i, ch in enumerate(chars)}
        advances, xs, ys, alphas, counts = [], [], [], [], []
        for ch in chars:
            adv = font.getlength(ch)
            cell = Image.new("L", (math.ceil(adv) + 4, self.height + 2), 0)
            ImageDraw.Draw(cell).text((1, 0), ch, fill=255, font=font, anchor="la")
            arr = np.asarray(cell, dtype=np.float32) / 255.0
            yy, xx = np.nonzero(arr)
            advances.append(adv)
            xs.append(xx - 1)
            ys.append(yy)
            alphas.append(arr[yy, xx])
            counts.append(len(xx))
        self.advance = torch.tensor(advances, dtype=torch.float32)
        self.counts = torch.tensor(counts)
        self.first = torch.cumsum(self.counts, 0) - self.counts
        self.px = torch.from_numpy(np.concatenate(xs).astype(np.float32)).to(device)
        self.py = torch.from_numpy(np.concatenate(ys).astype(np.float32)).to(device)
        self.pa = torch.from_numpy(np.concatenate(alphas)).to(device)
        self.device = torch.device(device)

    def text_width(self, text: str) -> float:
        return float(sum(self.advance[self.index.get(ch, 31)] for ch in text))

    def points(
        self, items: list[tuple[int, float, float, str]]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Ink points of ``(image, x, y, text)`` items (x, y: top-left of the text box, page pixels).

        Returns (image (N,) long, xy (N, 2) float at integer pixel positions, alpha (N,))."""
        gids, gx, gy, gimg = [], [], [], []
        for image, x, y, text in items:
            ids = [self.index.get(ch, self.index["?"]) for ch in text]
            if not ids:
                continue
            adv = self.advance[ids]
            offs = torch.cumsum(adv, 0) - adv
            gids.append(torch.tensor(ids))
            gx.append(torch.round(x + offs))
            gy.append(torch.full((len(ids),), float(round(y))))
            gimg.append(torch.full((len(ids),), int(image), dtype=torch.long))
        if not gids:
            z = torch.zeros(0, device=self.device)
            return z.long(), z.reshape(0, 2), z
        ids = torch.cat(gids)
        counts = self.counts[ids]
        sel = torch.repeat_interleave(ids, counts)
        owner = torch.repeat_interleave(torch.arange(ids.shape[0]), counts)
        local = torch.arange(int(counts.sum())) - (torch.cumsum(counts, 0) - counts)[owner]
        src = (self.first[sel] + local).to(self.device)
        owner = owner.to(self.device)
        x = self.px[src] + torch.cat(gx).to(self.device)[owner]
        y = self.py[src] + torch.cat(gy).to(self.device)[owner]
        return torch.cat(gimg).to(self.device)[owner], torch.stack([x, y], 1), self.pa[src]


def points_to_pixels(
    image: torch.Tensor, xy: torch.Tensor, alpha: torch.Tensor, height: int, width: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Splat points at sub-pixel positions bilinearly (4 neighbours) -> (flat index, alpha) candidates."""
    x0, y0 = torch.floor(xy[:, 0]), torch.floor(xy[:, 1])
    fx, fy = xy[:, 0] - x0, xy[:, 1] - y0
    flats, alphas = [], []
    for dx, dy, wgt in (
        (0, 0, (1 - fx) * (1 - fy)),
        (1, 0, fx * (1 - fy)),
        (0, 1, (1 - fx) * fy),
        (1, 1, fx * fy),
    ):
        x, y = x0 + dx, y0 + dy
        keep = (x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1) & (wgt > 1e-3)
        flats.append((image * (height * width) + y.long() * width + x.long())[keep])
        alphas.append((alpha * wgt)[keep])
    return torch.cat(flats), torch.cat(alphas)
