"""Page -> image homographies: mapping points (ground truth, ink) and sampling the grid of a warped page.

The grid is separable on the page: its transmission (1 - opacity) is ``tx(u) * ty(v)`` for page coordinates
(u, v). A warped image therefore needs no 2-D resampling of a page bitmap: each output pixel's (u, v) comes
from the inverse homography (one broadcast add per axis when affine) and ``tx``, ``ty`` are looked up in 1-D
tables sampled every 1/16 px (nearest: at most 1/32 px off). On CPU this is about twice as fast as
``grid_sample`` of a page bitmap and as exact (the tables are area-sampled line coverages).
"""

from __future__ import annotations

import torch

from ecgalign.render.draw import GRID_SCHEMES, MAJOR_LINE_MM, MINOR_LINE_MM, line_coverage

OVERSAMPLE = 16


def apply_homography(xy: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Map (B, N, 2) points by per-image homographies (B, 3, 3) (in float64; returned in xy's dtype)."""
    if xy.shape[0] == 0:
        return xy
    m = m.to(device=xy.device, dtype=torch.float64)
    if bool((m == torch.eye(3, dtype=m.dtype, device=m.device)).all()):
        return xy
    p = xy.double()
    q = torch.cat([p, torch.ones_like(p[..., :1])], -1) @ m.transpose(1, 2)
    return (q[..., :2] / q[..., 2:]).to(xy.dtype)


def apply_homography_points(xy: torch.Tensor, owner: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Map (N, 2) points, point k by the homography of image ``owner[k]`` (m: (B, 3, 3))."""
    mi = m.to(device=xy.device, dtype=torch.float64)[owner]
    p = torch.cat([xy.double(), torch.ones_like(xy[:, :1], dtype=torch.float64)], 1)
    q = torch.einsum("nij,nj->ni", mi, p)
    return (q[:, :2] / q[:, 2:]).to(xy.dtype)


def grid_tables(
    width: int,
    height: int,
    px_per_mm: float,
    origin: tuple[float, float],
    scheme: str,
    device: torch.device,
    weight: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Transmission tables along page x and y, entry i at page coordinate i / OVERSAMPLE - 1; off the page
    (beyond the outer pixel edges) the transmission is 1. Also the matching on-page indicator tables.
    ``weight`` scales the grid lines' widths."""
    _, _, m_minor, m_major = GRID_SCHEMES[scheme]
    out = []
    for n, o in ((width, origin[0]), (height, origin[1])):
        pos = torch.arange((n + 2) * OVERSAMPLE, dtype=torch.float64) / OVERSAMPLE - 1
        minor = line_coverage(pos, o, px_per_mm, weight * MINOR_LINE_MM * px_per_mm, 5, major=False)
        major = line_coverage(pos, o, px_per_mm, weight * MAJOR_LINE_MM * px_per_mm, 5, major=True)
        trans = (1 - m_minor * minor) * (1 - m_major * major)
        inside = (pos >= -0.5) & (pos <= n - 0.5)
        out.append(
            (torch.where(inside, trans, torch.ones_like(trans)).float().to(device), inside.float().to(device))
        )
    (tx, ix), (ty, iy) = out
    return tx, ty, ix, iy


def cpu_paths(device: torch.device) -> bool:
    """Whether drawing takes the per-image CPU paths (scalar colours, cache-sized row blocks, integer grid
    lookups) rather than the batched ones used on accelerators. Tests switch it to compare both."""
    return device.type == "cpu"


class GridWarp:
    """Grid transmission of b pages seen through image -> page homographies, a block of rows at a time.

    ``image_to_page`` None: the unwarped page (the cached transmission). On CPU, near-axis-aligned affine
    maps use integer index arithmetic (``_affine_rows``); otherwise (perspective, and every batch on an
    accelerator, where one batched kernel beats per-image loops) the homography is evaluated per pixel.
    ``inside`` (on-page mask) is computed only when ``need_inside``."""

    def __init__(
        self,
        image_to_page: torch.Tensor | None,
        tables: tuple,
        static: torch.Tensor,
        height: int,
        width: int,
        need_inside: bool,
    ):
        self.tables, self.static, self.h, self.w = tables, static, height, width
        self.need_inside = need_inside
        self.mode = "static"
        if image_to_page is None:
            return
        m = image_to_page.cpu().double()
        dev = tables[0].device
        if cpu_paths(dev) and not need_inside and _near_axis_affine(m):
            self.mode = "affine"
            self.rows_x = [_affine_rows(m[i], 0, tables[0], height, width) for i in range(m.shape[0])]
            self.rows_y = [_affine_rows(m[i], 1, tables[1], height, width) for i in range(m.shape[0])]
        else:
            self.mode = "homography"
            scale = torch.tensor(
                [[OVERSAMPLE, 0, OVERSAMPLE + 0.5], [0, OVERSAMPLE, OVERSAMPLE + 0.5], [0, 0, 1]],
                dtype=torch.float64,
            )
            self.g = (scale @ m).float().to(dev)  # image px -> table index + 0.5 (so truncation rounds)
            self.projective = bool((self.g[:, 2, :2] != 0).any())
            self.xs = torch.arange(width, dtype=torch.float32, device=dev)

    def rows(self, sl: slice, y0: int, y1: int, work) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Transmission (k, y1 - y0, W) of images ``sl`` (and the on-page mask or None); ``work(name, dtype)``
        gives (k, y1 - y0, W) buffers."""
        if self.mode == "static":
            return self.static[y0:y1].expand(sl.stop - sl.start, -1, -1), None
        t = work("t", torch.float32)
        idx = work("i", torch.int32)
        if self.mode == "affine":
            sel = work("u", torch.float32)
            for j, i in enumerate(range(sl.start, sl.stop)):
                (fx, (ax, bx)), (fy, (ay, by)) = self.rows_x[i], self.rows_y[i]
                torch.add(ax[None, :], bx[y0:y1, None], out=idx[j])
                torch.index_select(fx, 0, idx[j].view(-1), out=t[j].view(-1))
                torch.add(ay[None, :], by[y0:y1, None], out=idx[j])
                torch.index_select(fy, 0, idx[j].view(-1), out=sel[j].view(-1))
                t[j].mul_(sel[j])
            return t, None
        g = self.g[sl]
        ys = torch.arange(y0, y1, dtype=torch.float32, device=g.device)
        u = work("u", torch.float32)
        den = None
        if self.projective:
            den = work("den", torch.float32)
            _page_coordinate(g, 2, self.xs, ys, den, None)
        inside = work("in", torch.float32) if self.need_inside else None
        tx, ty, ix, iy = self.tables
        for k, (table, ins) in enumerate(((tx, ix), (ty, iy))):
            _page_coordinate(g, k, self.xs, ys, u, den)
            u.clamp_(0, table.shape[0] - 1)
            idx.copy_(u)
            flat = idx.view(-1)
            if k == 0:
                torch.index_select(table, 0, flat, out=t.view(-1))
                if inside is not None:
                    torch.index_select(ins, 0, flat, out=inside.view(-1))
            else:
                t.mul_(torch.index_select(table, 0, flat, out=u.view(-1)).view_as(t))
                if inside is not None:
                    inside.mul_(torch.index_select(ins, 0, flat).view_as(t))
        return t, inside


def _page_coordinate(
    g: torch.Tensor, k: int, xs: torch.Tensor, ys: torch.Tensor, out: torch.Tensor, den: torch.Tensor | None
) -> None:
    """out (b, rows, W) = row k of g (b, 3, 3) applied to (x, y, 1), divided by ``den`` when projective."""
    torch.add(
        (g[:, k, 0, None] * xs)[:, None, :], (g[:, k, 1, None] * ys + g[:, k, 2, None])[:, :, None], out=out
    )
    if den is not None:
        out.div_(den)


def _near_axis_affine(m: torch.Tensor) -> bool:
    """Affine, not mirrored, within 45 degrees of the axes (so each table axis has a fast variable)."""
    affine = bool((m[:, 2, :2] == 0).all()) and bool((m[:, 2, 2] == 1).all())
    return affine and bool(((m[:, 0, 0] > m[:, 0, 1].abs()) & (m[:, 1, 1] > m[:, 1, 0].abs())).all())


def _affine_rows(m: torch.Tensor, axis: int, table: torch.Tensor, height: int, width: int):
    """Integer lookup of one table axis under an affine map ``m`` (3, 3), image px -> page px.

    Page coordinate ``c = a*f + b*s + d``, with f the image coordinate along which it changes fastest (x for
    the page x axis, y for y) and s the other one, is ``a * (f + (b*s + d)/a)``: with j = O*f + round(O*(b*s
    + d)/a) (O = OVERSAMPLE), c ~ a*j/O, so one 1-D table ``fine[j]`` and an integer broadcast sum j give
    every pixel's value (nearest at 1/(2*O) px per step). Returns ``fine`` and the integer offsets to add
    (along x (W,), along y (H,))."""
    a, b, d = float(m[axis, axis]), float(m[axis, 1 - axis]), float(m[axis, 2])
    n_fast, n_slow = (width, height) if axis == 0 else (height, width)
    slow = torch.arange(n_slow, dtype=torch.float64)
    k = torch.round(OVERSAMPLE * (b * slow + d) / a).long()
    k0 = int(k.min())
    j = torch.arange(k0, OVERSAMPLE * (n_fast - 1) + int(k.max()) + 1, dtype=torch.float64)
    src = torch.floor(a * j + OVERSAMPLE + 0.5).long().clamp(0, table.shape[0] - 1)
    fine = table[src.to(table.device)]
    fast = (torch.arange(n_fast, dtype=torch.int32) * OVERSAMPLE).to(table.device)
    slow_off = (k - k0).to(torch.int32).to(table.device)
    return fine, ((fast, slow_off) if axis == 0 else (slow_off, fast))
