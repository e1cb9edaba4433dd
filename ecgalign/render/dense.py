"""The per-pixel part of an augmented image: paper, warped grid, uneven light and sensor noise.

On CPU each image is painted in blocks of rows small enough to stay in cache, with scalar colours: every
operation is one pass over a few hundred kB instead of over 15 MB of a full plane, which is what bounds CPU
speed here. On other devices the whole chunk is painted at once in broadcast operations. Light and noise
are also evaluated at single pixels (``at``), so ink drawn later sees the same light and grain.
"""

from __future__ import annotations

import math

import torch

from ecgalign.render import geometry
from ecgalign.render.augment import AugParams
from ecgalign.render.geometry import GridWarp

CPU_BLOCK_ROWS = 128


class LightField:
    """Multiplicative light: separable uneven illumination fx(x) * fy(y) times up to three crease profiles."""

    def __init__(
        self,
        params: AugParams,
        idx: torch.Tensor,
        height: int,
        width: int,
        px_per_mm: float,
        device: torch.device,
    ):
        ill, cr = params.illumination[idx], params.creases[idx]
        self.has_creases = bool((cr[..., 3] > 0).any())
        self.active = bool(((ill[:, 4] > 0) | (ill[:, 5] != 0)).any()) or self.has_creases
        x, y = torch.arange(width, dtype=torch.float64), torch.arange(height, dtype=torch.float64)
        fx = 1 - ill[:, 4, None] * (1 - torch.exp(-(((x - ill[:, 0, None]) / ill[:, 2, None]) ** 2)))
        fy = 1 - ill[:, 4, None] * (1 - torch.exp(-(((y - ill[:, 1, None]) / ill[:, 3, None]) ** 2)))
        fx = fx * (1 + ill[:, 5, None] * (x / width - 0.5))
        self.fx, self.fy = fx.float().to(device), fy.float().to(device)
        theta = math.pi * cr[..., 1]
        nx, ny = torch.cos(theta), torch.sin(theta)
        offset = cr[..., 0] * (nx.abs() * width + ny.abs() * height)
        scale = 1 / ((0.3 + 1.5 * cr[..., 2]) * px_per_mm)
        # crease k of image i: d = (x * nx + y * ny - offset) * scale; light *= _profile(d, depth)
        self.creases = (
            torch.stack([nx * scale, ny * scale, offset * scale, cr[..., 3]], -1).float().to(device)
        )
        self.xs = torch.arange(width, dtype=torch.float32, device=device)

    @staticmethod
    def _profile(d: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        """A dark fold line with a lighter flank on one side; 1 where depth is 0."""
        return 1 - depth * torch.exp(-(d**2)) + 0.4 * depth * torch.exp(-((d - 2.5) ** 2) / 4)

    def rows(self, sl: slice, y0: int, y1: int, out: torch.Tensor) -> torch.Tensor:
        torch.mul(self.fy[sl, y0:y1, None], self.fx[sl, None, :], out=out)
        if self.has_creases:
            ys = torch.arange(y0, y1, dtype=torch.float32, device=out.device)
            for k in range(self.creases.shape[1]):
                cx, cy, c0, depth = (self.creases[sl, k, j, None, None] for j in range(4))
                if not bool((depth > 0).any()):
                    continue
                d = ys[None, :, None] * cy + (self.xs[None, None, :] * cx - c0)
                out.mul_(self._profile(d, depth))
        return out

    def at(self, img: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Light at pixels (x, y) of images ``img`` (all (N,) long)."""
        v = self.fx.view(-1).index_select(0, img * self.fx.shape[1] + x)
        v = v * self.fy.view(-1).index_select(0, img * self.fy.shape[1] + y)
        if self.has_creases:
            cr = self.creases[img]  # (N, 3, 4)
            d = x[:, None].float() * cr[..., 0] + y[:, None].float() * cr[..., 1] - cr[..., 2]
            v = v * self._profile(d, cr[..., 3]).prod(1)
        return v


class NoiseField:
    """Gaussian sensor noise: each image reads a shifted window of one cached normal tile, times its std."""

    def __init__(self, tile: torch.Tensor, params: AugParams, idx: torch.Tensor, height: int, width: int):
        on = params.on["noise"][idx]
        self.active = bool(on.any())
        self.tile, self.w = tile, width
        self.offsets = params.noise_offset[idx].tolist()
        self.std = torch.where(on, params.noise_std[idx], 0.0).float().tolist()
        self.dev_offsets = params.noise_offset[idx].to(tile.device)
        self.dev_std = torch.tensor(self.std, device=tile.device)

    def rows(self, sl: slice, y0: int, y1: int, out: torch.Tensor) -> torch.Tensor:
        for j, i in enumerate(range(sl.start, sl.stop)):
            oy, ox = self.offsets[i]
            torch.mul(self.tile[oy + y0 : oy + y1, ox : ox + self.w], self.std[i], out=out[j])
        return out

    def at(self, img: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Noise at pixels (x, y) of images ``img`` (all (N,) long)."""
        o = self.dev_offsets.index_select(0, img)
        flat = (o[:, 0] + y) * self.tile.shape[1] + (o[:, 1] + x)
        return self.tile.view(-1).index_select(0, flat) * self.dev_std.index_select(0, img)


def paint_base(
    canvas: torch.Tensor,
    mode: str,
    palette: torch.Tensor,
    warp: GridWarp,
    light: LightField,
    noise: NoiseField,
    buffer,
) -> None:
    """Paper and grid of every image: light * (grid - (grid - paper) * transmission) + noise.

    ``canvas`` (b, 3, H, W); ``mode``: "uint8" (rounded, clamped), "float255" (float work canvas, unclamped)
    or "float1" (float in [0, 1]); ``palette`` (b, >=2, 3): paper and grid colours, 0-255; ``buffer(name,
    shape, dtype)`` returns reusable work tensors."""
    n, _, h, w = canvas.shape
    cpu = geometry.cpu_paths(canvas.device)
    grid_c, diff = palette[:, 1], palette[:, 0] - palette[:, 1]  # (b, 3)
    if mode == "uint8":
        grid_c = grid_c + 0.5  # truncation after +0.5 rounds
    rows = CPU_BLOCK_ROWS if cpu else h
    blocks = (
        [(slice(i, i + 1), y0, min(h, y0 + rows)) for i in range(n) for y0 in range(0, h, rows)]
        if cpu
        else [(slice(0, n), 0, h)]
    )
    grid_l, diff_l = grid_c.tolist(), diff.tolist()
    for sl, y0, y1 in blocks:
        shape = (sl.stop - sl.start, y1 - y0, w)
        work = lambda name, dtype, shape=shape: buffer(name, shape, dtype)
        t, inside = warp.rows(sl, y0, y1, work)
        s = light.rows(sl, y0, y1, work("light", torch.float32)) if light.active else None
        z = noise.rows(sl, y0, y1, work("noise", torch.float32)) if noise.active else None
        q = t if s is None else torch.mul(s, t, out=work("q", torch.float32))
        p = work("plane", torch.float32)
        for ch in range(3):
            if cpu:
                g, d = grid_l[sl.start][ch], diff_l[sl.start][ch]
                if z is not None:
                    torch.add(z, q, alpha=d, out=p)
                else:
                    torch.mul(q, d, out=p)
                if s is None:
                    p.add_(g)
                else:
                    p.add_(s, alpha=g)
            else:
                g, d = grid_c[sl, ch, None, None], diff[sl, ch, None, None]
                torch.mul(q, d, out=p)
                if z is not None:
                    p.add_(z)
                p.add_(g if s is None else s * g)
            if inside is not None:
                p.copy_(torch.where(inside > 0, p, torch.full_like(p, 60.0)))
            target = canvas[sl, ch, y0:y1]
            if mode == "uint8":
                i16 = work("i16", torch.int16)
                i16.copy_(p.clamp_(0, 255))
                target.copy_(i16)
            elif mode == "float255":
                target.copy_(p)
            else:
                torch.mul(p.clamp_(0, 255), 1 / 255, out=target)
